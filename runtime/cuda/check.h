/* Checking macros for CUDA, cuBLAS and cuDNN calls inside runtime/cuda/. Each evaluates the
 * call once; on failure it writes "CALL failed at FILE:LINE: reason" into the ErrBuf in scope
 * (named `eb`) and returns -1 from the enclosing function. Nothing here exits. */
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

#define CUDA_CHECK(call)                                                                                 \
	do {                                                                                                 \
		cudaError_t e_ = (call);                                                                         \
		if (e_ != cudaSuccess) {                                                                         \
			snprintf(eb.msg, eb.len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#define CUBLAS_CHECK(call)                                                                               \
	do {                                                                                                 \
		cublasStatus_t s_ = (call);                                                                      \
		if (s_ != CUBLAS_STATUS_SUCCESS) {                                                               \
			snprintf(eb.msg, eb.len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cublasGetStatusString(s_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#define CUDNN_CHECK(call)                                                                                \
	do {                                                                                                 \
		cudnnStatus_t s_ = (call);                                                                       \
		if (s_ != CUDNN_STATUS_SUCCESS) {                                                                \
			snprintf(eb.msg, eb.len, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudnnGetErrorString(s_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

/* After a kernel launch: the launch's own error (bad configuration), named by the kernel. */
#define LAUNCH_CHECK(what)                                                                               \
	do {                                                                                                 \
		cudaError_t e_ = cudaGetLastError();                                                             \
		if (e_ != cudaSuccess) {                                                                         \
			snprintf(eb.msg, eb.len, "launch of %s failed at %s:%d: %s", what, __FILE__, __LINE__, cudaGetErrorString(e_)); \
			return -1;                                                                                   \
		}                                                                                                \
	} while (0)

#endif
