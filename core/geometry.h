/* The window geometry of convolutions and pooling, in one place for shape inference
 * (core/infer.c), autodiff, both executors and the CPU kernels: the output size of a window
 * sliding over a padded dimension, and pooling's default stride. */
#ifndef NNC_GEOMETRY_H
#define NNC_GEOMETRY_H

#include <stdint.h>

/* Outputs of a window of K elements with stride S over N elements padded by P on each side:
 * floor((N + 2P - K) / S) + 1, or 0 when the window does not fit (N + 2P < K). S > 0. */
static inline int64_t
nnc_window_out(int64_t n, int64_t k, int64_t s, int64_t p)
{
	int64_t span = n + 2 * p - k;
	return span < 0 ? 0 : span / s + 1;
}

/* A pooling's stride along dimension D (0: height, 1: width): its attribute, or its kernel where
 * the attribute is 0, the default (PyTorch's stride=None: non-overlapping windows). */
static inline int64_t
nnc_pool_stride(const int64_t *stride, const int64_t *kernel, int d)
{
	return stride[d] ? stride[d] : kernel[d];
}

#endif
