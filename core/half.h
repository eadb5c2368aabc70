/* IEEE 754 binary16 ("half", fp16) for the runtime: the storage type nnc_half, scalar and bulk
 * conversions to and from float, in-place rounding of floats to fp16 values, and the counters a
 * numerics monitor needs before values are stored in fp16.
 *
 * Invariants. float -> half rounds to nearest, ties to even, for every input: normals,
 * subnormal results (nearest multiple of 2^-24), rounding up into the next binade, and overflow
 * (|x| >= 65520 after rounding, i.e. anything that does not round to at most 65504) to +-inf.
 * Signed zeros keep their sign. A NaN stays a NaN with its sign, comes out quiet, and keeps the
 * top 10 bits of its payload (so it can never turn into inf). half -> float is exact; a half
 * NaN comes back quiet with its payload in the top bits of the float's. The scalar functions
 * are portable C on integer bits and never depend on the FPU rounding mode. The bulk functions
 * use F16C when the CPU has it (chosen at run time) and the same portable code otherwise; both
 * paths give bit-identical results for every input (tests/half/ checks this), and neither
 * depends on MXCSR's rounding mode or its DAZ/FTZ bits. The F16C path may set MXCSR's sticky
 * exception flags (inexact, overflow, invalid); the portable path leaves them alone. */
#ifndef NNC_HALF_H
#define NNC_HALF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A binary16 value as its bits: 1 sign, 5 exponent (bias 15), 10 fraction bits. */
typedef uint16_t nnc_half;

#define HALF_MAX 65504.0f              /* largest finite fp16, (2 - 2^-10) * 2^15 */
#define HALF_MIN_NORMAL 0x1p-14f       /* smallest positive normal fp16 */
#define HALF_MIN_SUBNORMAL 0x1p-24f    /* smallest positive subnormal fp16 */

/* HALF_MAX as a function, for callers that want a value rather than a macro. */
float half_max(void);

/* Scalar conversions (portable C, no tables). */
nnc_half half_from_float(float x);
float half_to_float(nnc_half h);

/* True when storing x in fp16 and loading it back gives x's exact bits: every fp16 value,
 * +-0 and +-inf; a NaN only when it is quiet with its payload in the top 10 fraction bits. */
bool half_is_exact(float x);

/* Bulk conversions of n elements; src and dst must not overlap. Any n, any alignment. */
void half_from_float_n(const float *src, nnc_half *dst, size_t n);
void half_to_float_n(const nnc_half *src, float *dst, size_t n);
/* Round each x[i] in place to the nearest fp16 value, kept as a float: exactly what an fp16
 * store followed by a load gives, half_to_float(half_from_float(x[i])). */
void half_round_f32_n(float *x, size_t n);

/* True when the bulk functions use F16C on this machine (x86 with F16C and OS-enabled AVX). */
bool half_f16c_available(void);

/* The bulk conversions through a named implementation, for tests and benchmarks. Asking for
 * HALF_IMPL_F16C where half_f16c_available() is false runs the portable code (never faults). */
typedef enum { HALF_IMPL_PORTABLE, HALF_IMPL_F16C } HalfImpl;
void half_from_float_n_impl(HalfImpl impl, const float *src, nnc_half *dst, size_t n);
void half_to_float_n_impl(HalfImpl impl, const nnc_half *src, float *dst, size_t n);
void half_round_f32_n_impl(HalfImpl impl, float *x, size_t n);

/* What storing values in fp16 would do to them. Each field counts inputs:
 *   count              values examined
 *   nan                NaN inputs
 *   inf                +-inf inputs
 *   overflow           finite inputs that round to +-inf (|x| >= 65520)
 *   underflow_to_zero  nonzero inputs that round to +-0 (|x| <= 2^-25, f32 subnormals included)
 *   subnormal          inputs whose fp16 result is a nonzero subnormal (2^-25 < |x| < 1023.5 * 2^-24)
 * The categories are disjoint. */
typedef struct {
	uint64_t count;
	uint64_t nan;
	uint64_t inf;
	uint64_t overflow;
	uint64_t underflow_to_zero;
	uint64_t subnormal;
	uint64_t vanished; /* optimizer updates: elements whose f32 update was not zero but left the
	                    * stored fp16 weight unchanged (filled by the executor) */
} HalfStats;

/* Adds the classification of x[0..n) to *s (so one HalfStats can gather a whole step); start
 * from a zeroed HalfStats. */
void half_classify_n(const float *x, size_t n, HalfStats *s);

#endif
