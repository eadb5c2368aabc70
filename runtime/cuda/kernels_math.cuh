/* The scalar functions of the CUDA kernels (kernels.cu), callable on the host too, so that
 * tests/unit/test_cuda_host.cu checks them against their CPU twins on machines without a GPU:
 * the activations and their backward as prologues and elementwise ops, the pooling window
 * arithmetic, and the Philox4x32-10 stream of dropout masks. */
#ifndef NNC_CUDA_KERNELS_MATH_CUH
#define NNC_CUDA_KERNELS_MATH_CUH

#include <cmath>
#include <cstdint>

#include "runtime/cuda/kernels.cuh"

#define HD __host__ __device__ inline

HD float
act(float y, int a)
{
	if (a == 1)
		return y > 0.0f ? y : 0.0f;
	if (a == 2)
		return y > 0.0f ? (y < 6.0f ? y : 6.0f) : 0.0f;
	return y;
}

/* The activation backward as a prologue: dz through the activation whose output was y. */
HD float
act_grad(float dz, float y, int pro)
{
	if (pro == 1)
		return y > 0.0f ? dz : 0.0f;
	if (pro == 2)
		return y > 0.0f && y < 6.0f ? dz : 0.0f;
	return dz;
}

/* ---- elementwise programs (cpu_ew_range's expressions; erf, tanh and exp in float, as the
 * CPU's float kernels call them through <tgmath.h>) ---- */

HD float
ew1(int op, float a, float b)
{
	const float half = 0.5f, one = 1.0f, six = 6.0f;
	const float SQRT1_2 = 0.70710678118654752440f, INV_SQRT_2PI = 0.39894228040143267794f;
	switch (op) {
	case EW_RELU: return a > 0.0f ? a : 0.0f;
	case EW_RELU6: return a > 0.0f ? (a < six ? a : six) : 0.0f;
	case EW_GELU: return a * half * (one + erff(a * SQRT1_2));
	case EW_TANH: return tanhf(a);
	case EW_ADD: return a + b;
	case EW_MUL: return a * b;
	case EW_RELU_BWD: return a > 0.0f ? b : 0.0f;
	case EW_RELU6_BWD: return a > 0.0f && a < six ? b : 0.0f;
	case EW_GELU_BWD:
		return b * (half * (one + erff(a * SQRT1_2)) + a * (expf(-half * a * a) * INV_SQRT_2PI));
	case EW_TANH_BWD: return b * (one - a * a);
	}
	return 0.0f;
}

HD void
window(const Pool &p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
	int ys = oy * p.sh - p.ph, xs = ox * p.sw - p.pw;
	*y0 = ys > 0 ? ys : 0;
	*y1 = ys + p.kh < p.h ? ys + p.kh : p.h;
	*x0 = xs > 0 ? xs : 0;
	*x1 = xs + p.kw < p.w ? xs + p.kw : p.w;
}

HD int
avg_divisor(const Pool &p, int oy, int ox)
{
	int ys = oy * p.sh - p.ph, xs = ox * p.sw - p.pw;
	int ye = ys + p.kh < p.h + p.ph ? ys + p.kh : p.h + p.ph;
	int xe = xs + p.kw < p.w + p.pw ? xs + p.kw : p.w + p.pw;
	return (ye - ys) * (xe - xs);
}

/* The output windows that contain input row iy: oy in [lo, hi). */
HD void
windows_over(int i, int k, int s, int pad, int out, int *lo, int *hi)
{
	int a = i + pad - k + 1;
	*lo = a <= 0 ? 0 : (a + s - 1) / s;
	int b = (i + pad) / s + 1;
	*hi = b < out ? b : out;
}

HD uint32_t
philox_at(uint64_t key, uint64_t idx)
{
	uint64_t block = idx >> 2;
	uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
	uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
	for (int r = 0; r < 10; r++) {
		uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
		c0 = n0, c1 = n1, c2 = n2, c3 = n3;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
	uint32_t out[4] = {c0, c1, c2, c3};
	return out[idx & 3];
}


#undef HD

#endif
