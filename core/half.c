/* IEEE 754 binary16 conversions (see half.h). The portable code works on the integer bits of
 * the float (round to nearest even by hand, no tables, no FPU rounding); the F16C code converts
 * 8 values per instruction with the rounding given in the instruction's immediate, so MXCSR's
 * rounding mode never matters. F16C is compiled per function with a target attribute, so the
 * build needs no -march flag, and it is chosen at run time. The portable NaN rule (set the quiet
 * bit, keep the top payload bits) is the one F16C applies, which keeps the two paths
 * bit-identical for every input, NaNs included. */
#include "core/half.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HALF_HAVE_F16C_CODE 1
#include <immintrin.h>
#define F16C_TARGET __attribute__((target("f16c,avx")))
/* __builtin_cpu_supports("f16c") is known to GCC 12 on; clang 14 rejects the string, so clang
 * and older GCCs read CPUID themselves. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define HALF_CPU_SUPPORTS_F16C 1
#else
#define HALF_CPU_SUPPORTS_F16C 0
#include <cpuid.h>
#endif
#else
#define HALF_HAVE_F16C_CODE 0
#endif

/* Float bit patterns of |x| used as thresholds below. */
enum {
	F32_INF = 0x7f800000,        /* +inf */
	F32_OVERFLOW = 0x477ff000,   /* 65520 = 65504 + 16: the tie that rounds (to even) to inf */
	F32_MIN_NORMAL = 0x38800000, /* 2^-14: smallest value with a normal fp16 result */
	F32_HALF_TINY = 0x33000000,  /* 2^-25: at or below it everything rounds to zero */
	F32_SUB_LIMIT = 0x387fe000,  /* 1023.5 * 2^-24: from it on results round to 2^-14 */
};

static inline uint32_t
f32_bits(float x)
{
	uint32_t b;
	memcpy(&b, &x, sizeof b);
	return b;
}

static inline float
f32_from_bits(uint32_t b)
{
	float x;
	memcpy(&x, &b, sizeof x);
	return x;
}

static inline nnc_half
from_bits(uint32_t x)
{
	nnc_half sign = (nnc_half)((x >> 16) & 0x8000u);
	uint32_t ax = x & 0x7fffffffu;
	if (ax >= F32_INF) {
		if (ax == F32_INF)
			return (nnc_half)(sign | 0x7c00u);
		/* NaN: quiet it and keep the top 10 payload bits; the quiet bit keeps it off inf. */
		return (nnc_half)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
	}
	if (ax >= F32_OVERFLOW)
		return (nnc_half)(sign | 0x7c00u);
	if (ax >= F32_MIN_NORMAL) {
		/* Rebias the exponent (127 -> 15), then drop 13 fraction bits rounding to nearest
		 * even. A carry out of the fraction moves into the exponent, which is exactly the
		 * next binade (65504 is the largest it reaches, given the overflow test above). */
		uint32_t r = ax - ((uint32_t)(127 - 15) << 23);
		r += 0xfffu + ((r >> 13) & 1u);
		return (nnc_half)(sign | (r >> 13));
	}
	if (ax <= F32_HALF_TINY)
		return sign;
	/* Subnormal result: the nearest integer to |x| / 2^-24, 1..1024 (1024 is 2^-14, whose
	 * encoding 0x0400 is just that integer). |x| = m * 2^(e - 150) with the implicit bit in m,
	 * so |x| / 2^-24 = m >> (126 - e), and the shift is 14..24 here. */
	uint32_t e = ax >> 23;
	uint32_t m = (ax & 0x7fffffu) | 0x800000u;
	uint32_t shift = 126 - e;
	uint32_t q = m >> shift;
	uint32_t rem = m & ((1u << shift) - 1);
	uint32_t tie = 1u << (shift - 1);
	if (rem > tie || (rem == tie && (q & 1u)))
		q++;
	return (nnc_half)(sign | q);
}

static inline uint32_t
to_bits(nnc_half h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	if (e == 0x1f) /* inf, or a NaN that comes back quiet (as F16C does) */
		return sign | F32_INF | (m ? 0x400000u | m << 13 : 0);
	if (e != 0)
		return sign | (e + 127 - 15) << 23 | m << 13;
	if (m == 0)
		return sign;
	/* Subnormal m * 2^-24 = (m / 1024) * 2^-14: shift the leading one up to the implicit bit,
	 * one exponent step per shift. */
	e = 127 - 14;
	while (!(m & 0x400u)) {
		m <<= 1;
		e--;
	}
	return sign | e << 23 | (m & 0x3ffu) << 13;
}

float
half_max(void)
{
	return HALF_MAX;
}

nnc_half
half_from_float(float x)
{
	return from_bits(f32_bits(x));
}

float
half_to_float(nnc_half h)
{
	return f32_from_bits(to_bits(h));
}

bool
half_is_exact(float x)
{
	uint32_t b = f32_bits(x);
	return to_bits(from_bits(b)) == b;
}

/* --- portable bulk paths ------------------------------------------------------------------ */

static void
from_n_portable(const float *src, nnc_half *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = from_bits(f32_bits(src[i]));
}

static void
to_n_portable(const nnc_half *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = f32_from_bits(to_bits(src[i]));
}

static void
round_n_portable(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = f32_from_bits(to_bits(from_bits(f32_bits(x[i]))));
}

/* --- F16C bulk paths: 8 at a time, the tail through a zero-padded block of 8 ---------------- */

#if HALF_HAVE_F16C_CODE
F16C_TARGET
static void
from_n_f16c(const float *src, nnc_half *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
		_mm_storeu_si128((__m128i *)(void *)(dst + i), h);
	}
	if (i < n) {
		float in[8] = {0};
		nnc_half out[8];
		memcpy(in, src + i, (n - i) * sizeof *src);
		__m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT);
		_mm_storeu_si128((__m128i *)(void *)out, h);
		memcpy(dst + i, out, (n - i) * sizeof *dst);
	}
}

F16C_TARGET
static void
to_n_f16c(const nnc_half *src, float *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
	}
	if (i < n) {
		nnc_half in[8] = {0};
		float out[8];
		memcpy(in, src + i, (n - i) * sizeof *src);
		_mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)in)));
		memcpy(dst + i, out, (n - i) * sizeof *dst);
	}
}

F16C_TARGET
static void
round_n_f16c(float *x, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
		_mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
	}
	if (i < n) {
		float buf[8] = {0};
		memcpy(buf, x + i, (n - i) * sizeof *x);
		__m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(buf), _MM_FROUND_TO_NEAREST_INT);
		_mm256_storeu_ps(buf, _mm256_cvtph_ps(h));
		memcpy(x + i, buf, (n - i) * sizeof *x);
	}
}
#endif

bool
half_f16c_available(void)
{
#if HALF_HAVE_F16C_CODE && HALF_CPU_SUPPORTS_F16C
	/* The 256-bit forms need the OS to save YMM state, which libgcc's "avx" bit includes. */
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#elif HALF_HAVE_F16C_CODE
	/* CPUID leaf 1: F16C and AVX, and OSXSAVE so that XCR0 can say the OS saves XMM and YMM. */
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return false;
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_F16C))
		return false;
	unsigned lo, hi;
	__asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)hi;
	return (lo & 6u) == 6u;
#else
	return false;
#endif
}

#if HALF_HAVE_F16C_CODE
static bool
use_f16c(HalfImpl impl)
{
	return impl == HALF_IMPL_F16C && half_f16c_available();
}
#endif

void
half_from_float_n_impl(HalfImpl impl, const float *src, nnc_half *dst, size_t n)
{
#if HALF_HAVE_F16C_CODE
	if (use_f16c(impl)) {
		from_n_f16c(src, dst, n);
		return;
	}
#else
	(void)impl;
#endif
	from_n_portable(src, dst, n);
}

void
half_to_float_n_impl(HalfImpl impl, const nnc_half *src, float *dst, size_t n)
{
#if HALF_HAVE_F16C_CODE
	if (use_f16c(impl)) {
		to_n_f16c(src, dst, n);
		return;
	}
#else
	(void)impl;
#endif
	to_n_portable(src, dst, n);
}

void
half_round_f32_n_impl(HalfImpl impl, float *x, size_t n)
{
#if HALF_HAVE_F16C_CODE
	if (use_f16c(impl)) {
		round_n_f16c(x, n);
		return;
	}
#else
	(void)impl;
#endif
	round_n_portable(x, n);
}

void
half_from_float_n(const float *src, nnc_half *dst, size_t n)
{
	half_from_float_n_impl(HALF_IMPL_F16C, src, dst, n);
}

void
half_to_float_n(const nnc_half *src, float *dst, size_t n)
{
	half_to_float_n_impl(HALF_IMPL_F16C, src, dst, n);
}

void
half_round_f32_n(float *x, size_t n)
{
	half_round_f32_n_impl(HALF_IMPL_F16C, x, n);
}

void
half_classify_n(const float *x, size_t n, HalfStats *s)
{
	uint64_t nan = 0, inf = 0, overflow = 0, underflow = 0, subnormal = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t a = f32_bits(x[i]) & 0x7fffffffu;
		nan += a > F32_INF;
		inf += a == F32_INF;
		overflow += a >= F32_OVERFLOW && a < F32_INF;
		underflow += a != 0 && a <= F32_HALF_TINY;
		subnormal += a > F32_HALF_TINY && a < F32_SUB_LIMIT;
	}
	s->count += n;
	s->nan += nan;
	s->inf += inf;
	s->overflow += overflow;
	s->underflow_to_zero += underflow;
	s->subnormal += subnormal;
}
