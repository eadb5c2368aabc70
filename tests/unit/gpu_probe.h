/* For the `cuda` test programs: whether a usable GPU is there. Prints "device 0: ..." and
 * returns 0 when one is, or prints why not and returns 77 (CTest: skipped). */
#ifndef NNC_TESTS_GPU_PROBE_H
#define NNC_TESTS_GPU_PROBE_H

#include <stdio.h>

#include "runtime/cuda/cuda_backend.h"

static inline int
gpu_probe(void)
{
	char msg[512];
	int n = nnc_cuda_device_count(msg, sizeof msg);
	if (n <= 0) {
		printf("skipped: no usable GPU (%s)\n", n < 0 ? msg : "0 devices");
		return 77;
	}
	printf("device 0: %s\n", msg);
	return 0;
}

#endif
