/* GPU smoke test (label `cuda`): finds a GPU and creates cuBLAS and cuDNN handles on it.
 * Exits 77 (CTest: skipped) when no usable GPU or driver is present, so CPU-only machines pass. */
#include <stdio.h>

#include "runtime/cuda/cuda_backend.h"

int
main(void)
{
	char msg[512];
	int n = nnc_cuda_device_count(msg, sizeof msg);
	if (n <= 0) {
		printf("skipped: no usable GPU (%s)\n", n < 0 ? msg : "0 devices");
		return 77;
	}
	printf("device 0: %s\n", msg);
	if (nnc_cuda_selftest(msg, sizeof msg) != 0) {
		fprintf(stderr, "FAIL: %s\n", msg);
		return 1;
	}
	printf("ok: %s\n", msg);
	return 0;
}
