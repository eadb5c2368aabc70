/* runtime/cuda/gpu_info.c's entry points for a build without CUDA: there is never a GPU, and
 * asking for one says why. */
#include <stdio.h>

#include "runtime/backend_impl.h"

int
backend_gpu_count(char *msg, size_t msglen)
{
	snprintf(msg, msglen, "this build has no CUDA backend (nvcc, cuBLAS and cuDNN were not found when it was built)");
	return 0;
}

const char *
backend_gpu_describe(char *buf, size_t n)
{
	snprintf(buf, n, "no GPU backend (CUDA was not found when this build was made)");
	return buf;
}
