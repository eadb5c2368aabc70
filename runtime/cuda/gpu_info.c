/* What this machine offers the CUDA backend (runtime/backend.h's backend_gpu_describe and
 * runtime/backend_impl.h's backend_gpu_count), in a file of its own so that `nnc version` can say
 * it without linking the executors. runtime/gpu_info_none.c stands in where the build has no CUDA. */
#include <stdio.h>

#include "runtime/backend_impl.h"
#include "runtime/cuda/cuda_backend.h"

int
backend_gpu_count(char *msg, size_t msglen)
{
	return nnc_cuda_device_count(msg, msglen);
}

const char *
backend_gpu_describe(char *buf, size_t n)
{
	char msg[1024];
	int count = nnc_cuda_device_count(msg, sizeof msg);
	snprintf(buf, n, "cuda (built for sm_90; %s)", count > 0 || msg[0] ? msg : "no GPU");
	return buf;
}
