/* GPU smoke test (label `cuda`): finds a GPU and creates cuBLAS and cuDNN handles on it.
 * Exits 77 (CTest: skipped) when no usable GPU or driver is present, so CPU-only machines pass. */
#include <stdio.h>

#include "runtime/cuda/cuda_backend.h"
#include "tests/unit/gpu_probe.h"

int
main(void)
{
	if (gpu_probe() != 0)
		return 77;
	char msg[512];
	if (nnc_cuda_selftest(msg, sizeof msg) != 0) {
		fprintf(stderr, "FAIL: %s\n", msg);
		return 1;
	}
	printf("ok: %s\n", msg);
	return 0;
}
