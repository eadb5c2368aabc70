/* The GPU entry points of runtime/backend_impl.h for a build without CUDA (CMake compiles this
 * file instead of runtime/cuda/backend_cuda.c when nvcc, cuBLAS or cuDNN is missing): there is
 * never a GPU, and asking for one says why. */
#include <stdio.h>

#include "runtime/backend_impl.h"

Backend *
backend_gpu_open(Exec *e, const BackendOptions *o, char *note, size_t notelen, char *err, size_t errlen)
{
	(void)e, (void)o, (void)note, (void)notelen;
	snprintf(err, errlen, "this build has no CUDA backend");
	return NULL;
}

bool
backend_gpu_launches(const struct Plan *plan, int g, int *library, int *own)
{
	(void)plan, (void)g;
	*library = *own = 0;
	return false;
}
