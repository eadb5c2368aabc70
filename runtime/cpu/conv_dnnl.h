/* f32 convolutions through oneDNN (conv_dnnl.c), beside the im2col kernels of kernels.h and
 * with their conventions (CpuConv, NCHW activations, OIHW weights, the caller's workspace).
 * A convolution is prepared once per shape, pass, bias and thread count
 * (cpu_dnnl_conv_prepare, which the executor calls when it starts), after which running it
 * allocates nothing. Built without oneDNN (NNC_HAVE_DNNL undefined), or with the environment
 * variable NNC_CPU_CONV=im2col, nothing is ever prepared and callers use the im2col kernels;
 * NNC_CPU_CONV=dnnl prepares every shape oneDNN has a JIT kernel for (bench/cpu_conv.sh).
 *
 * Determinism: forward and backward-data results are bit-identical for any thread count;
 * backward-filter sums the batch in per-thread partial sums, so its results are the same from
 * run to run at one thread count, not across thread counts (docs/cpu.md). */
#ifndef NNC_CPU_CONV_DNNL_H
#define NNC_CPU_CONV_DNNL_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/cpu/kernels.h"

#ifdef NNC_HAVE_DNNL
/* Prepares pass PASS of convolution CV (with a bias: BIAS, forward only) for THREADS threads.
 * Returns the workspace bytes its run needs (at least 1), or 0 when oneDNN is not used for it:
 * no JIT kernel, or a shape where im2col measured faster (1x1 over fewer than 128 channels, 3x3
 * over fewer than 16 but depthwise; conv_dnnl.c). */
size_t cpu_dnnl_conv_prepare(const CpuConv *cv, CpuConvPass pass, bool bias, int threads);
/* Whether that pass was prepared (the kernels below then run it). */
bool cpu_dnnl_conv_ready(const CpuConv *cv, CpuConvPass pass, bool bias, int threads);
/* The three passes, as cpu_conv2d_forward_act_f32, _backward_data_f32 and
 * _backward_filter_f32 compute them (within rounding: other summation orders). They return -1,
 * writing nothing, when the pass was not prepared or WS_BYTES is less than it needs. */
int cpu_dnnl_conv_forward(const CpuConv *cv, const float *x, const float *w, const float *b, float *y, void *ws,
	size_t ws_bytes, Epilogue act, int threads);
int cpu_dnnl_conv_backward_data(const CpuConv *cv, const float *dy, const float *w, float *dx, void *ws,
	size_t ws_bytes, int threads);
int cpu_dnnl_conv_backward_filter(const CpuConv *cv, const float *x, const float *dy, float *dw, void *ws,
	size_t ws_bytes, int threads);
/* The implementation oneDNN chose for a prepared pass (e.g. "jit:avx512_core"), or NULL. */
const char *cpu_dnnl_conv_impl(const CpuConv *cv, CpuConvPass pass, bool bias, int threads);
#else
static inline size_t
cpu_dnnl_conv_prepare(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	(void)cv, (void)pass, (void)bias, (void)threads;
	return 0;
}
static inline bool
cpu_dnnl_conv_ready(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	(void)cv, (void)pass, (void)bias, (void)threads;
	return false;
}
static inline int
cpu_dnnl_conv_forward(const CpuConv *cv, const float *x, const float *w, const float *b, float *y, void *ws,
	size_t ws_bytes, Epilogue act, int threads)
{
	(void)cv, (void)x, (void)w, (void)b, (void)y, (void)ws, (void)ws_bytes, (void)act, (void)threads;
	return -1;
}
static inline int
cpu_dnnl_conv_backward_data(const CpuConv *cv, const float *dy, const float *w, float *dx, void *ws,
	size_t ws_bytes, int threads)
{
	(void)cv, (void)dy, (void)w, (void)dx, (void)ws, (void)ws_bytes, (void)threads;
	return -1;
}
static inline int
cpu_dnnl_conv_backward_filter(const CpuConv *cv, const float *x, const float *dy, float *dw, void *ws,
	size_t ws_bytes, int threads)
{
	(void)cv, (void)x, (void)dy, (void)dw, (void)ws, (void)ws_bytes, (void)threads;
	return -1;
}
static inline const char *
cpu_dnnl_conv_impl(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	(void)cv, (void)pass, (void)bias, (void)threads;
	return NULL;
}
#endif

#endif
