/* Checking macros for CUDA, cuBLAS and cuDNN calls (and kernel launchers, which return
 * cudaError_t) inside runtime/cuda/. Each evaluates the call once; on failure it writes "CALL
 * failed at FILE:LINE: reason" into an ErrBuf and returns -1 from the enclosing function.
 * Nothing here exits. */
#ifndef NNC_CUDA_CHECK_H
#define NNC_CUDA_CHECK_H

#include <cstdio>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

struct ErrBuf {
	char *msg;
	size_t len;
};

/* The _IN forms write into the ErrBuf EB; the plain forms into the `eb` in scope. */
#define CUDA_CHECK_IN(EB, call)                                                                          \
	do {                                                                                                 \
		cudaError_t e_ = (call);                                                                         \
		if (e_ != cudaSuccess) {                                                                         \
			snprintf((EB).msg, (EB).len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#define CUBLAS_CHECK_IN(EB, call)                                                                        \
	do {                                                                                                 \
		cublasStatus_t s_ = (call);                                                                      \
		if (s_ != CUBLAS_STATUS_SUCCESS) {                                                               \
			snprintf((EB).msg, (EB).len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cublasGetStatusString(s_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#define CUDNN_CHECK_IN(EB, call)                                                                         \
	do {                                                                                                 \
		cudnnStatus_t s_ = (call);                                                                       \
		if (s_ != CUDNN_STATUS_SUCCESS) {                                                                \
			snprintf((EB).msg, (EB).len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudnnGetErrorString(s_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#define CUDA_CHECK(call) CUDA_CHECK_IN(eb, call)
#define CUBLAS_CHECK(call) CUBLAS_CHECK_IN(eb, call)
#define CUDNN_CHECK(call) CUDNN_CHECK_IN(eb, call)

#endif
