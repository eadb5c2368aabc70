/* Stochastic rounding of fp16 weight updates (recipe optimizer.rounding: stochastic), as inline
 * functions that the CPU executor (runtime/exec.c) and the GPU's update kernels
 * (runtime/cuda/kernels_math.cuh) share, so both store the same bits.
 *
 * nnc_round_stochastic_f16(x, r) returns one of the two fp16 values around x (as a float,
 * which any round-to-nearest conversion then stores exactly): with lo the one toward zero and
 * hi the next one away from it, hi with probability (|x| - |lo|) / (|hi| - |lo|) over the
 * 32-bit draw r, so the expected result is x (unbiased) whenever the part of x below lo's ulp
 * has at most 32 bits -- every f32 at or above 2^-33 in magnitude (below, the chance of hi
 * is rounded up to the next multiple of 2^-32); fp16 values come back as
 * they are. Beyond the largest finite fp16 (|x| > 65504), and for inf and NaN, x is returned
 * unchanged (stored by round-to-nearest: 65504 up to 65520, inf above, as without this).
 *
 * The draw for element i (in the plan's storage order) of the parameter held by plan value V at optimizer update STEP
 * (updates done before it: Exec.step, StepScalars.step) is the high half of
 * mix64(key + (i + 1) * GOLDEN) with key = key3(seed ^ NNC_SROUND_DOMAIN, STEP, V): a pure
 * function of the recipe's seed and the position, so runs repeat exactly and a resumed run
 * draws what the uninterrupted one would. */
#ifndef NNC_SROUND_H
#define NNC_SROUND_H

#include <stdint.h>

#include "runtime/splitmix.h"

#define NNC_SROUND_DOMAIN 0x73726f756e643136ULL /* "sround16" */

static inline NNC_HD uint64_t
nnc_sround_key(uint64_t seed, uint64_t step, uint64_t value)
{
	return nnc_key3(seed ^ NNC_SROUND_DOMAIN, step, value);
}

static inline NNC_HD uint32_t
nnc_sround_bits(uint64_t key, uint64_t i)
{
	return (uint32_t)(nnc_mix64(key + (i + 1) * NNC_GOLDEN) >> 32);
}

/* On the bits of x, x = M * 2^(E - 150) with M its 24-bit significand (f32 subnormals: E = 1
 * without the implicit bit): fp16's ulp at x is 2^(max(E - 127, -14) - 10), so the lowest
 * SHIFT = 13 bits of M fall below it (more for fp16 subnormals); they are REM, the fraction
 * REM / 2^SHIFT of an ulp, and the result rounds up when r < ceil(REM * 2^(32 - SHIFT)). */
static inline NNC_HD float
nnc_round_stochastic_f16(float x, uint32_t r)
{
	union {
		float f;
		uint32_t u;
	} v = {x};
	uint32_t sign = v.u & 0x80000000u, a = v.u & 0x7fffffffu;
	if (a == 0 || a > 0x477fe000u) /* zero; beyond 65504, inf, NaN */
		return x;
	int e = (int)(a >> 23);
	uint32_t m = (a & 0x7fffffu) | (e ? 0x800000u : 0);
	e = e ? e : 1;
	int shift = e - 127 >= -14 ? 13 : 126 - e;
	uint64_t rem = shift < 24 ? m & ((1u << shift) - 1) : m, threshold;
	if (shift <= 32)
		threshold = rem << (32 - shift);
	else if (shift - 32 < 40)
		threshold = (rem + ((uint64_t)1 << (shift - 32)) - 1) >> (shift - 32);
	else
		threshold = rem != 0;
	uint32_t up = (uint64_t)r < threshold;
	if (shift < 24)
		v.u = sign | ((a - (uint32_t)rem) + (up << shift));
	else
		v.u = sign | (up ? 0x33800000u : 0); /* 2^-24 or zero */
	return v.f;
}

#endif
