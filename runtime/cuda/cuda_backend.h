/* C interface of the CUDA backend. Nothing outside runtime/cuda/ includes CUDA headers; the
 * rest of nnc calls these functions, which report failures as text instead of exiting. The
 * backend is built only where nvcc, cuBLAS and cuDNN are found (NNC_HAVE_CUDA). */
#ifndef NNC_CUDA_BACKEND_H
#define NNC_CUDA_BACKEND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the number of usable GPUs (>= 0) and describes the first one (name, compute
 * capability, memory) in msg; returns -1 with the reason in msg when the driver or runtime is
 * unusable (no GPU, no driver). */
int nnc_cuda_device_count(char *msg, size_t msglen);

/* Creates and destroys cuBLAS and cuDNN handles on device 0, proving the libraries load and
 * link. Returns 0, or -1 with the failing call, file and line in msg. */
int nnc_cuda_selftest(char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif
