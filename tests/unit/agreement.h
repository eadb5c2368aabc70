/* When a tensor computed by the GPU agrees with the CPU's: the rule of test_cuda_vs_cpu, here so
 * that the CPU-only test_agreement can check the rule itself (a GPU is rarely at hand, and a
 * comparison that passes everything would pass unnoticed there).
 *
 * Bounds, with scale the tensor's largest finite |cpu|:
 *  - a step that sums nothing (an op without OPF_ACC in the op table: elementwise ops, casts,
 *    updates, batch-norm apply, copies) computes each element by the same formula on both
 *    backends (device code is built without contraction, docs/cuda.md), so each element agrees
 *    within AGREE_ULPS_F32 (2^-20, 8 fp32 ulps: the math library's exp, tanh and erf differ by a
 *    few) or AGREE_ULPS_F16 (2^-10, one fp16 rounding those can flip) of itself; near zero, within
 *    2^-126 (a subnormal fp32 result flushed) or 2^-24 (fp16's subnormal step). An element a thousand times smaller than the largest
 *    cannot be wrong by all of itself there.
 *  - A step that sums (OPF_ACC: convolutions, dense layers, reductions; cuDNN and cuBLAS among
 *    them, whose FFT and Winograd algorithms have normwise, not elementwise, error bounds) is held
 *    to two bounds instead. Tensor-wide: max |gpu - cpu| / scale <= 1e-4 where the result is stored in fp32 (cuDNN and
 *    cuBLAS sum in other orders than the CPU), 1e-2 in fp16 (a few fp16 roundings of 4.9e-4);
 *  - per element: |gpu - cpu| / max(|cpu|, AGREE_FLOOR * scale) <= 2e-3 in fp32, 2e-2 in fp16.
 *    Elements near zero come from cancellation, where the order of summation moves them by more
 *    than their own size; the floor keeps them from failing, and the bound keeps an element a
 *    thousand times smaller than the largest from being wrong by all of itself (the tensor-wide
 *    bound alone allowed that until 2026-12-04).
 *  - Inf of one sign on both sides agrees (overflow: loss-scaled gradients do it); NaN on both
 *    sides agrees only where the step's operands hold non-finite values (ops->operands_finite
 *    false); any other NaN/Inf on one side only fails, unless ops->overflow_ok (may be NULL)
 *    explains it (an fp16 convolution whose exact result is beyond fp16's range: counted, with
 *    the first such element and its exact value, and reported by the caller as a note).
 * Measured on the H200, 2026-12-04: fp32 weight gradients differ by up to 1.7e-4 of the element. */
#ifndef NNC_TESTS_AGREEMENT_H
#define NNC_TESTS_AGREEMENT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#define AGREE_TOL_F32 1e-4
#define AGREE_TOL_F16 1e-2
#define AGREE_EL_F32 2e-3
#define AGREE_EL_F16 2e-2
#define AGREE_FLOOR 0.1
#define AGREE_ULPS_F32 (1.0 / (1 << 20))
#define AGREE_ULPS_F16 (1.0 / (1 << 10))
#define AGREE_MIN_F32 0x1p-106 /* the relative bound times this is fp32's smallest normal, 2^-126 */
#define AGREE_MIN_F16 0x1p-14  /* fp16's smallest normal: below it one rounding is 2^-24 */

typedef struct AgreeOps {
	double (*value)(void *ctx, bool gpu, size_t i);
	bool (*overflow_ok)(void *ctx, size_t i, double gpu, double cpu, double *exact);
	bool (*operands_finite)(void *ctx);
	void *ctx;
} AgreeOps;

typedef struct Agreement {
	bool fail;
	bool nonfinite; /* the failure is a NaN/Inf mismatch (at: its element) */
	size_t at;      /* the element reported: the first mismatch, else the worst by the bound broken */
	double error;   /* its relative error, and the bound it is held to */
	double tol;
	long overflowed; /* elements overflow_ok explained; the first, and its exact value */
	size_t first_overflow;
	double first_exact;
} Agreement;

/* N elements stored in fp16 (F16) or fp32, computed by a step that sums (SUMS: OPF_ACC) or not. */
static inline Agreement
agreement(size_t n, bool f16, bool sums, const AgreeOps *o)
{
	Agreement r = {0};
	double scale = 0;
	for (size_t i = 0; i < n; i++) {
		double b = o->value(o->ctx, false, i);
		if (isfinite(b))
			scale = fmax(scale, fabs(b));
	}
	scale = fmax(scale, 1e-30);
	double worst = 0, worst_el = 0;
	size_t at = 0, at_el = 0;
	int finite_ops = -1; /* operands_finite, asked once when needed */
	for (size_t i = 0; i < n; i++) {
		double a = o->value(o->ctx, true, i), b = o->value(o->ctx, false, i);
		if (isnan(a) != isnan(b) || isinf(a) != isinf(b)) {
			double exact = 0;
			if (o->overflow_ok && o->overflow_ok(o->ctx, i, a, b, &exact)) {
				if (r.overflowed++ == 0)
					r.first_overflow = i, r.first_exact = exact;
				continue;
			}
			r.nonfinite = true;
			r.at = i;
			break;
		}
		if (!isfinite(a)) {
			if (isnan(a) && finite_ops < 0)
				finite_ops = o->operands_finite(o->ctx);
			if ((isinf(a) && a != b) || (isnan(a) && finite_ops)) {
				r.nonfinite = true;
				r.at = i;
				break;
			}
			continue;
		}
		double d = fabs(a - b) / scale,
		       e = sums ? fabs(a - b) / fmax(fabs(b), AGREE_FLOOR * scale)
		                : fabs(a - b) / fmax(fabs(b), f16 ? AGREE_MIN_F16 : AGREE_MIN_F32);
		if (d > worst)
			worst = d, at = i;
		if (e > worst_el)
			worst_el = e, at_el = i;
	}
	double tol = f16 ? AGREE_TOL_F16 : AGREE_TOL_F32,
	       tol_el = sums ? (f16 ? AGREE_EL_F16 : AGREE_EL_F32) : (f16 ? AGREE_ULPS_F16 : AGREE_ULPS_F32);
	if (r.nonfinite) {
		r.fail = true;
		r.tol = tol;
		return r;
	}
	r.at = at, r.error = worst, r.tol = tol;
	if (worst <= tol && worst_el > tol_el) /* report the element that fails */
		r.at = at_el, r.error = worst_el, r.tol = tol_el;
	r.fail = worst > tol || worst_el > tol_el;
	return r;
}

#endif
