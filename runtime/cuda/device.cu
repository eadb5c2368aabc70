/* Device discovery and library handles for the CUDA backend (see cuda_backend.h). Every CUDA,
 * cuBLAS and cuDNN call goes through a checking macro of check.h. */
#include "runtime/cuda/cuda_backend.h"

#include "runtime/cuda/check.h"

extern "C" int
nnc_cuda_device_count(char *msg, size_t msglen)
{
	ErrBuf eb = {msg, msglen};
	int n = 0;
	msg[0] = 0;
	cudaError_t ce = cudaGetDeviceCount(&n);
	if (ce == cudaErrorInsufficientDriver || ce == cudaErrorNoDevice) {
		/* the usual case on a machine without an NVIDIA GPU: say so plainly */
		snprintf(msg, msglen, "%s (CUDA: %s)",
			ce == cudaErrorNoDevice ? "no NVIDIA GPU found" : "no NVIDIA GPU driver is loaded on this machine",
			cudaGetErrorString(ce));
		return -1;
	}
	if (ce != cudaSuccess) {
		snprintf(msg, msglen, "cudaGetDeviceCount failed at %s:%d: %s", __FILE__, __LINE__, cudaGetErrorString(ce));
		return -1;
	}
	if (n > 0) {
		cudaDeviceProp p;
		CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
		snprintf(msg, msglen, "%s, sm_%d%d, %.1f GiB", p.name, p.major, p.minor,
			(double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
	}
	return n;
}

extern "C" int
nnc_cuda_selftest(char *msg, size_t msglen)
{
	ErrBuf eb = {msg, msglen};
	msg[0] = 0;
	CUDA_CHECK(cudaSetDevice(0));
	cublasHandle_t blas;
	CUBLAS_CHECK(cublasCreate(&blas));
	cudnnHandle_t dnn;
	cudnnStatus_t s = cudnnCreate(&dnn);
	if (s != CUDNN_STATUS_SUCCESS) {
		cublasDestroy(blas);
		snprintf(msg, msglen, "cudnnCreate failed at %s:%d: %s", __FILE__, __LINE__, cudnnGetErrorString(s));
		return -1;
	}
	CUDNN_CHECK(cudnnDestroy(dnn));
	CUBLAS_CHECK(cublasDestroy(blas));
	snprintf(msg, msglen, "cuBLAS and cuDNN %zu handles created on device 0", cudnnGetVersion());
	return 0;
}
