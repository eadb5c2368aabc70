/* Tests for the fp16 conversions (core/half.c). Covered: a table of known values worked out
 * by hand (ties to even in the normal and subnormal ranges, rounding into the next binade and to
 * 2^-14, the 65504/65520 edge, overflow, signed zeros, NaN sign and payload); half -> float for
 * all 65536 patterns against an independent ldexp reference; the half -> float -> half round
 * trip for all patterns; float -> half on a structured set (every sign, exponent and top 11
 * fraction bits, each with 20 low patterns: 2^24.3 floats) against an independent double-
 * precision oracle; the F16C and portable bulk paths bit for bit (all 65536 halves; the
 * structured set; and either all 2^32 floats with --all, or by default a dense stride sample of
 * 2^26.0 floats), skipped with a note where the CPU has no F16C; half_round_f32_n equal to
 * from-then-to; the same with MXCSR set to DAZ, FTZ and round-up; bulk tails and alignments;
 * half_is_exact; and the classification counters, per value against the conversion and on a
 * crafted array. Deterministic. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/half.h"
#include "tests/check.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#else
#define HAVE_MXCSR 0
#endif

static uint32_t
bits(float x)
{
	uint32_t b;
	memcpy(&b, &x, sizeof b);
	return b;
}

static float
fl(uint32_t b)
{
	float x;
	memcpy(&x, &b, sizeof x);
	return x;
}


static bool f16c;         /* the CPU has F16C: compare the two bulk paths */
static uint64_t compared; /* values compared in the bulk loops (each CHECK covers many) */

/* --- independent references --------------------------------------------------------------- */

/* The value of a half pattern from its fields with ldexp (NaN for NaN patterns). */
static double
ref_value(nnc_half h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v;
	if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
	return (h & 0x8000) ? -v : v;
}

/* float -> half by double arithmetic: scale |x| so one fp16 ulp is 1, round with rint (the
 * default rounding mode is to nearest even), and encode. Independent of the bit tricks in
 * half.c; the NaN rule is the documented one (quiet, top 10 payload bits). */
static nnc_half
ref_from_float(float x)
{
	uint32_t b = bits(x);
	int sign = (b >> 31) ? 0x8000 : 0;
	if (isnan(x))
		return (nnc_half)(sign | 0x7e00 | ((b >> 13) & 0x3ff));
	double a = fabs((double)x);
	if (a >= 65520.0)
		return (nnc_half)(sign | 0x7c00);
	if (a < 0x1p-14) /* subnormal range: the nearest multiple of 2^-24; 1024 encodes 2^-14 */
		return (nnc_half)(sign | (int)rint(a * 0x1p24));
	int e;
	frexp(a, &e); /* a in [2^(e-1), 2^e): the fp16 ulp there is 2^(e-11) */
	int q = (int)rint(ldexp(a, 11 - e));
	int be = e - 1 + 15;
	if (q == 2048) { /* rounded up into the next binade */
		q = 1024;
		be++;
	}
	return (nnc_half)(sign | be << 10 | (q - 1024));
}

/* The classification half_classify_n should give x, from its fp16 result. */
static void
ref_classify(float x, HalfStats *s)
{
	nnc_half h = half_from_float(x);
	s->count++;
	if (isnan(x))
		s->nan++;
	else if (isinf(x))
		s->inf++;
	else if ((h & 0x7fff) == 0x7c00)
		s->overflow++;
	else if (x != 0 && (h & 0x7fff) == 0)
		s->underflow_to_zero++;
	else if ((h & 0x7c00) == 0 && (h & 0x3ff) != 0)
		s->subnormal++;
}

static bool
stats_equal(const HalfStats *a, const HalfStats *b)
{
	return a->count == b->count && a->nan == b->nan && a->inf == b->inf && a->overflow == b->overflow &&
	       a->underflow_to_zero == b->underflow_to_zero && a->subnormal == b->subnormal;
}

/* --- known values --------------------------------------------------------------------------- */

static void
test_constants(void)
{
	CHECK(half_max() == 65504.0f);
	CHECK(HALF_MAX == 65504.0f);
	CHECK(HALF_MIN_NORMAL == ldexpf(1, -14));
	CHECK(HALF_MIN_SUBNORMAL == ldexpf(1, -24));
	CHECK(half_to_float(0x7bff) == HALF_MAX);
	CHECK(half_to_float(0x0400) == HALF_MIN_NORMAL);
	CHECK(half_to_float(0x0001) == HALF_MIN_SUBNORMAL);
	CHECK(sizeof(nnc_half) == 2);
}

static void
test_known_from(void)
{
	const float sub = 0x1p-24f; /* one subnormal step */
	static const struct known {
		float x;
		nnc_half want;
		const char *what;
	} table[] = {
		{0.0f, 0x0000, "+0"},
		{-0.0f, 0x8000, "-0"},
		{1.0f, 0x3c00, "1"},
		{-2.0f, 0xc000, "-2"},
		{0.5f, 0x3800, "0.5"},
		{65504.0f, 0x7bff, "max"},
		{-65504.0f, 0xfbff, "-max"},
		{65519.99f, 0x7bff, "65519.99 (just under the tie) -> max"},
		{65520.0f, 0x7c00, "65520 (tie, 65504 is odd) -> inf"},
		{-65520.0f, 0xfc00, "-65520 -> -inf"},
		{65512.0f, 0x7bff, "65512 -> max"},
		{65488.0f, 0x7bfe, "65488 (tie between 65472 and 65504) -> 65472 (even)"},
		{65536.0f, 0x7c00, "65536 -> inf"},
		{1e5f, 0x7c00, "1e5 -> inf"},
		{-1e5f, 0xfc00, "-1e5 -> -inf"},
		{FLT_MAX, 0x7c00, "FLT_MAX -> inf"},
		{-FLT_MAX, 0xfc00, "-FLT_MAX -> -inf"},
		{0x1p-14f, 0x0400, "2^-14 (min normal)"},
		{0x1p-15f, 0x0200, "2^-15 (subnormal, exact)"},
		{0x1p-24f, 0x0001, "2^-24 (min subnormal)"},
		{-0x1p-24f, 0x8001, "-2^-24"},
		{0x1p-25f, 0x0000, "2^-25 (tie between 0 and 2^-24) -> 0"},
		{-0x1p-25f, 0x8000, "-2^-25 -> -0"},
		{0x1.000002p-25f, 0x0001, "just above 2^-25 -> 2^-24"},
		{0x1p-26f, 0x0000, "2^-26 -> 0"},
		{3 * 0x1p-25f, 0x0002, "3 * 2^-25 = 1.5 * 2^-24 (tie) -> 2 * 2^-24"},
		{5 * 0x1p-25f, 0x0002, "5 * 2^-25 = 2.5 * 2^-24 (tie) -> 2 * 2^-24"},
		{3 * 0x1p-26f, 0x0001, "0.75 * 2^-24 -> 2^-24"},
		{1023 * sub, 0x03ff, "largest subnormal"},
		{1022.5f * sub, 0x03fe, "1022.5 * 2^-24 (tie) -> 1022 (even)"},
		{1023.5f * sub, 0x0400, "1023.5 * 2^-24 (tie) -> 2^-14 (min normal)"},
		{1023.75f * sub, 0x0400, "1023.75 * 2^-24 -> 2^-14"},
		{0x1.ffbffep-15f, 0x03ff, "just under 1023.5 * 2^-24 -> largest subnormal"},
		{1e-40f, 0x0000, "f32 subnormal -> 0"},
		{-1e-40f, 0x8000, "negative f32 subnormal -> -0"},
		{FLT_MIN, 0x0000, "FLT_MIN -> 0"},
		{1.0f + 0x1p-11f, 0x3c00, "1 + 2^-11 (tie) -> 1"},
		{1.0f + 3 * 0x1p-11f, 0x3c02, "1 + 3 * 2^-11 (tie) -> 1 + 2^-9"},
		{1.0f + 0x1p-11f + 0x1p-23f, 0x3c01, "just above 1 + 2^-11 -> 1 + 2^-10"},
		{2.0f - 0x1p-11f, 0x4000, "2 - 2^-11 (tie) -> 2 (next binade)"},
		{0x1.ffdffep0f, 0x3fff, "just under 2 - 2^-11 -> 2 - 2^-10"},
		{1.0f / 3.0f, 0x3555, "1/3"},
		{0.1f, 0x2e66, "0.1"},
		{3.14159265f, 0x4248, "pi"},
		{-3.14159265f, 0xc248, "-pi"},
		{2048.0f + 1.0f, 0x6800, "2049 (tie) -> 2048"},
		{2048.0f + 3.0f, 0x6802, "2051 (tie) -> 2052"},
		{INFINITY, 0x7c00, "inf"},
		{-INFINITY, 0xfc00, "-inf"},
	};
	for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
		const struct known *t = &table[i];
		nnc_half h = half_from_float(t->x);
		checks++;
		if (h != t->want) {
			failures++;
			fprintf(stderr, "half_from_float(%a) [%s] = 0x%04x, want 0x%04x\n", (double)t->x, t->what, h, t->want);
		}
		nnc_half hb[3];
		float xs[3] = {t->x, t->x, t->x};
		half_from_float_n_impl(HALF_IMPL_PORTABLE, xs, hb, 3);
		half_from_float_n_impl(HALF_IMPL_F16C, xs, hb + 1, 2);
		CHECK(hb[0] == t->want && hb[1] == t->want && hb[2] == t->want);
		CHECK(ref_from_float(t->x) == t->want); /* the oracle agrees with the hand values */
	}
}

static void
test_known_to(void)
{
	CHECK(half_to_float(0x3c00) == 1.0f);
	CHECK(half_to_float(0xc000) == -2.0f);
	CHECK(half_to_float(0x7bff) == 65504.0f);
	CHECK(half_to_float(0x0001) == 0x1p-24f);
	CHECK(half_to_float(0x03ff) == 1023 * 0x1p-24f);
	CHECK(half_to_float(0x0200) == 0x1p-15f);
	CHECK(half_to_float(0x0400) == 0x1p-14f);
	CHECK(half_to_float(0x3555) == 0.333251953125f);
	CHECK(half_to_float(0x4248) == 3.140625f);
	CHECK(half_to_float(0x3c01) == 1.0f + 0x1p-10f);
	CHECK(bits(half_to_float(0x0000)) == 0x00000000u);
	CHECK(bits(half_to_float(0x8000)) == 0x80000000u);
	CHECK(half_to_float(0x7c00) == INFINITY);
	CHECK(half_to_float(0xfc00) == -INFINITY);
}

static void
test_nan(void)
{
	static const struct {
		uint32_t f;
		nnc_half h;
	} from[] = {
		{0x7fc00000u, 0x7e00}, /* the default quiet NaN */
		{0xffc00000u, 0xfe00}, /* negative */
		{0x7f800001u, 0x7e00}, /* signalling, payload only in the dropped bits: quiet, not inf */
		{0xff800001u, 0xfe00},
		{0x7f801fffu, 0x7e00},
		{0x7f802000u, 0x7e01}, /* signalling with the lowest kept payload bit */
		{0x7fa00000u, 0x7f00}, /* signalling, payload in the top bits: kept, quieted */
		{0x7fffffffu, 0x7fff},
		{0xffd55555u, 0xfeaa},
	};
	for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
		nnc_half h = half_from_float(fl(from[i].f));
		checks++;
		if (h != from[i].h) {
			failures++;
			fprintf(stderr, "half_from_float(0x%08x) = 0x%04x, want 0x%04x\n", from[i].f, h, from[i].h);
		}
		nnc_half hb[2];
		float xs[1] = {fl(from[i].f)};
		half_from_float_n_impl(HALF_IMPL_PORTABLE, xs, hb, 1);
		half_from_float_n_impl(HALF_IMPL_F16C, xs, hb + 1, 1);
		CHECK(hb[0] == from[i].h && hb[1] == from[i].h);
	}
	static const struct {
		nnc_half h;
		uint32_t f;
	} to[] = {
		{0x7e00, 0x7fc00000u},
		{0xfe00, 0xffc00000u},
		{0x7c01, 0x7fc02000u}, /* signalling: comes back quiet, payload kept */
		{0xfd00, 0xffe00000u},
		{0x7fff, 0x7fffe000u},
	};
	for (size_t i = 0; i < sizeof to / sizeof *to; i++) {
		float x = half_to_float(to[i].h);
		CHECK(isnan(x));
		checks++;
		if (bits(x) != to[i].f) {
			failures++;
			fprintf(stderr, "half_to_float(0x%04x) = 0x%08x, want 0x%08x\n", to[i].h, bits(x), to[i].f);
		}
	}
	CHECK(isnan(half_to_float(half_from_float(NAN))));
	CHECK(!signbit(half_to_float(half_from_float(NAN))));
	CHECK(signbit(half_to_float(half_from_float(-NAN))));
}

/* --- all 65536 halves ----------------------------------------------------------------------- */

static void
test_to_float_all(void)
{
	static nnc_half hs[65536];
	static float port[65536], fast[65536];
	long bad_ref = 0, bad_bulk = 0, bad_trip = 0;
	for (uint32_t i = 0; i < 65536; i++)
		hs[i] = (nnc_half)i;
	half_to_float_n_impl(HALF_IMPL_PORTABLE, hs, port, 65536);
	for (uint32_t i = 0; i < 65536; i++) {
		nnc_half h = (nnc_half)i;
		float x = half_to_float(h);
		double r = ref_value(h);
		bool nan = ((h >> 10) & 0x1f) == 31 && (h & 0x3ff);
		if (nan) {
			uint32_t want = (h & 0x8000u) << 16 | 0x7fc00000u | (h & 0x3ffu) << 13;
			bad_ref += bits(x) != want;
		} else {
			bad_ref += (double)x != r || !signbit(x) != !signbit(r);
		}
		bad_bulk += bits(port[i]) != bits(x);
		/* Round trip: every non-NaN pattern comes back as itself; a NaN as itself, quieted. */
		nnc_half back = half_from_float(x);
		bad_trip += back != (nan ? (h | 0x200) : h);
	}
	CHECK(bad_ref == 0);
	CHECK(bad_bulk == 0);
	CHECK(bad_trip == 0);
	if (bad_ref || bad_bulk || bad_trip)
		fprintf(stderr, "half -> float: %ld off the reference, %ld bulk != scalar, %ld round trips differ\n",
			bad_ref, bad_bulk, bad_trip);
	compared += 3 * 65536;

	if (f16c) {
		half_to_float_n_impl(HALF_IMPL_F16C, hs, fast, 65536);
		long bad = 0;
		for (uint32_t i = 0; i < 65536; i++) {
			if (bits(fast[i]) != bits(port[i]) && bad++ < 5)
				fprintf(stderr, "half_to_float 0x%04x: F16C 0x%08x, portable 0x%08x\n", i, bits(fast[i]),
					bits(port[i]));
		}
		CHECK(bad == 0);
		/* The default entry point uses the F16C path here. */
		half_to_float_n(hs, port, 65536);
		CHECK(memcmp(port, fast, sizeof fast) == 0);
		compared += 65536;
	}
}

static void
test_is_exact(void)
{
	CHECK(half_is_exact(1.0f));
	CHECK(half_is_exact(-0.0f));
	CHECK(half_is_exact(65504.0f));
	CHECK(half_is_exact(0x1p-24f));
	CHECK(half_is_exact(1023 * 0x1p-24f));
	CHECK(half_is_exact(INFINITY));
	CHECK(half_is_exact(-INFINITY));
	CHECK(half_is_exact(fl(0x7fc00000u)));
	CHECK(!half_is_exact(fl(0x7fc00001u))); /* payload bits that fp16 drops */
	CHECK(!half_is_exact(fl(0x7fa00000u))); /* signalling: comes back quiet */
	CHECK(!half_is_exact(1.0f / 3.0f));
	CHECK(!half_is_exact(65520.0f));
	CHECK(!half_is_exact(1e5f));
	CHECK(!half_is_exact(0x1p-25f));
	CHECK(!half_is_exact(1e-40f));
	CHECK(!half_is_exact(1.0f + 0x1p-11f));
	long bad = 0;
	for (uint32_t i = 0; i < 65536; i++)
		bad += !half_is_exact(half_to_float((nnc_half)i));
	CHECK(bad == 0);
}

/* --- bulk entry points: every length up to 40 at four alignments, nothing written past n ---- */

static uint32_t
lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005u + 1442695040888963407u;
	return (uint32_t)(*s >> 32);
}

static void
test_bulk_tails(void)
{
	enum { N = 48, GUARD = 8 };
	float src[N + GUARD];
	nnc_half hsrc[N + GUARD];
	uint64_t seed = 12345;
	for (int i = 0; i < N + GUARD; i++) {
		/* Exponents around the fp16 range (2^-30 .. 2^17), random signs and fractions. */
		uint32_t r = lcg(&seed);
		uint32_t e = 97 + r % 48;
		src[i] = fl((r & 0x80000000u) | e << 23 | (lcg(&seed) & 0x7fffffu));
		hsrc[i] = (nnc_half)lcg(&seed);
	}
	src[3] = NAN;
	src[5] = -INFINITY;
	src[9] = -0.0f;
	for (int impl = 0; impl < 2; impl++) {
		for (size_t off = 0; off < 4; off++) {
			for (size_t n = 0; n + off <= 40; n++) {
				nnc_half hd[N + GUARD];
				float fd[N + GUARD], rd[N + GUARD];
				bool ok = true;
				for (size_t i = 0; i < N + GUARD; i++) {
					hd[i] = 0xdead;
					fd[i] = -1234.5f;
					rd[i] = src[i];
				}
				half_from_float_n_impl((HalfImpl)impl, src + off, hd + off, n);
				half_to_float_n_impl((HalfImpl)impl, hsrc + off, fd + off, n);
				half_round_f32_n_impl((HalfImpl)impl, rd + off, n);
				for (size_t i = 0; i < N + GUARD; i++) {
					bool in = i >= off && i < off + n;
					if (in) {
						ok &= hd[i] == half_from_float(src[i]);
						ok &= bits(fd[i]) == bits(half_to_float(hsrc[i]));
						ok &= bits(rd[i]) == bits(half_to_float(half_from_float(src[i])));
					} else {
						ok &= hd[i] == 0xdead && fd[i] == -1234.5f && bits(rd[i]) == bits(src[i]);
					}
				}
				checks++;
				if (!ok) {
					failures++;
					fprintf(stderr, "bulk %s, offset %zu, n %zu: wrong values or a write outside [0, n)\n",
						impl ? "F16C" : "portable", off, n);
				}
			}
		}
	}
	/* The default entry points agree with the portable code on these too. */
	nnc_half a[N], b[N];
	float ra[N], rb[N];
	half_from_float_n(src, a, N);
	half_from_float_n_impl(HALF_IMPL_PORTABLE, src, b, N);
	CHECK(memcmp(a, b, sizeof a) == 0);
	memcpy(ra, src, sizeof ra);
	memcpy(rb, src, sizeof rb);
	half_round_f32_n(ra, N);
	half_round_f32_n_impl(HALF_IMPL_PORTABLE, rb, N);
	CHECK(memcmp(ra, rb, sizeof ra) == 0);
}

/* --- float -> half over many floats -------------------------------------------------------- */

enum { CHUNK = 1 << 16 };

/* The chunk's floats through both paths: the conversion, and half_round_f32_n against
 * from-then-to. Returns the number of disagreements (first few reported). */
static long
compare_chunk(const uint32_t *in, size_t n, bool with_round)
{
	static float x[CHUNK], r0[CHUNK], r1[CHUNK];
	static nnc_half h0[CHUNK], h1[CHUNK];
	static long reported;
	long bad = 0;
	memcpy(x, in, n * sizeof *x);
	half_from_float_n_impl(HALF_IMPL_PORTABLE, x, h0, n);
	if (f16c) {
		half_from_float_n_impl(HALF_IMPL_F16C, x, h1, n);
		if (memcmp(h0, h1, n * sizeof *h0) != 0) {
			for (size_t i = 0; i < n; i++) {
				if (h0[i] == h1[i])
					continue;
				bad++;
				if (reported++ < 8)
					fprintf(stderr, "half_from_float(0x%08x): portable 0x%04x, F16C 0x%04x\n", in[i], h0[i],
						h1[i]);
			}
		}
		compared += n;
	}
	if (with_round) {
		memcpy(r0, x, n * sizeof *x);
		half_round_f32_n_impl(HALF_IMPL_PORTABLE, r0, n);
		half_to_float_n_impl(HALF_IMPL_PORTABLE, h0, r1, n);
		if (memcmp(r0, r1, n * sizeof *r0) != 0 && reported++ < 8) {
			bad++;
			fprintf(stderr, "half_round_f32_n (portable) differs from from-then-to near 0x%08x\n", in[0]);
		}
		compared += n;
		if (f16c) {
			memcpy(r1, x, n * sizeof *x);
			half_round_f32_n_impl(HALF_IMPL_F16C, r1, n);
			if (memcmp(r0, r1, n * sizeof *r0) != 0 && reported++ < 8) {
				bad++;
				fprintf(stderr, "half_round_f32_n: F16C differs from portable near 0x%08x\n", in[0]);
			}
			compared += n;
		}
	}
	return bad;
}

/* Low 12 bits (below the round bit of a normal result) tried with every top-20-bit pattern. */
static const uint32_t lows[] = {
	0x000, 0x001, 0x002, 0x003, 0x100, 0x3ff, 0x400, 0x555, 0x7fe, 0x7ff,
	0x800, 0x801, 0xaaa, 0xc00, 0xffe, 0xfff,
};
enum { NLOW = sizeof lows / sizeof *lows, NRAND = 4, PER_TOP = NLOW + NRAND };

static void
test_structured(void)
{
	static uint32_t in[CHUNK];
	long bad_oracle = 0, bad_paths = 0, bad_class = 0;
	uint64_t seed = 777;
	size_t k = 0;
	for (uint32_t top = 0; top < (1u << 20); top++) {
		for (int j = 0; j < PER_TOP; j++) {
			uint32_t low = j < NLOW ? lows[j] : lcg(&seed) & 0xfffu;
			uint32_t b = top << 12 | low;
			float x = fl(b);
			nnc_half h = half_from_float(x);
			if (h != ref_from_float(x) && bad_oracle++ < 8)
				fprintf(stderr, "half_from_float(0x%08x) = 0x%04x, oracle 0x%04x\n", b, h, ref_from_float(x));
			HalfStats got = {0}, want = {0};
			half_classify_n(&x, 1, &got);
			ref_classify(x, &want);
			if (!stats_equal(&got, &want) && bad_class++ < 8)
				fprintf(stderr, "half_classify_n(0x%08x) disagrees with the conversion (0x%04x)\n", b, h);
			in[k++] = b;
			if (k == CHUNK) {
				bad_paths += compare_chunk(in, k, true);
				k = 0;
			}
		}
	}
	bad_paths += compare_chunk(in, k, true);
	compared += 2ull * PER_TOP << 20;
	CHECK(bad_oracle == 0);
	CHECK(bad_class == 0);
	CHECK(bad_paths == 0);
}

/* All 2^32 floats (all = true), or every STRIDE-th bit pattern: 2^32 / 63 = 2^26.02 floats,
 * an odd stride so every residue of the low bits is hit. */
enum { STRIDE = 63 };

static void
test_many_floats(bool all)
{
	static uint32_t in[CHUNK];
	long bad = 0;
	uint64_t step = all ? 1 : STRIDE, total = 0;
	size_t k = 0;
	for (uint64_t b = 0; b < (1ull << 32); b += step) {
		in[k++] = (uint32_t)b;
		if (k == CHUNK) {
			bad += compare_chunk(in, k, !all);
			total += k;
			k = 0;
		}
	}
	bad += compare_chunk(in, k, !all);
	total += k;
	CHECK(bad == 0);
	const char *what = all ? "F16C vs portable"
	                 : f16c ? "F16C vs portable, half_round_f32_n vs from-then-to"
	                        : "half_round_f32_n vs from-then-to";
	printf("test_half: %s: %llu floats: %s\n", all ? "all floats" : "dense sample", (unsigned long long)total, what);
}

/* The F16C path ignores MXCSR's rounding mode and DAZ/FTZ (the CPU kernels may set them):
 * with DAZ, FTZ and rounding toward +inf set, the paths still agree on every half and on a
 * stride sample of floats that includes every f32 subnormal range step. */
static void
test_mxcsr(void)
{
#if HAVE_MXCSR
	if (!f16c)
		return;
	static nnc_half hs[65536];
	static float a[65536], b[65536];
	static uint32_t in[CHUNK];
	long bad = 0;
	unsigned saved = _mm_getcsr();
	_mm_setcsr(0x1f80u | 0x8000u | 0x0040u | 0x4000u); /* masked, FTZ, DAZ, round up */
	for (uint32_t i = 0; i < 65536; i++)
		hs[i] = (nnc_half)i;
	half_to_float_n_impl(HALF_IMPL_F16C, hs, a, 65536);
	half_to_float_n_impl(HALF_IMPL_PORTABLE, hs, b, 65536);
	bad += memcmp(a, b, sizeof a) != 0;
	size_t k = 0;
	for (uint64_t v = 0; v < (1ull << 32); v += 251) {
		in[k++] = (uint32_t)v;
		if (k == CHUNK) {
			bad += compare_chunk(in, k, true);
			k = 0;
		}
	}
	bad += compare_chunk(in, k, true);
	_mm_setcsr(saved);
	CHECK(bad == 0);
	compared += 65536;
#endif
}

/* --- classification on a crafted array ------------------------------------------------------ */

static void
test_classify(void)
{
	const float x[] = {
		0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 0x1p-14f, 1023.5f * 0x1p-24f, /* none */
		65520.0f, -65520.0f, 1e5f, FLT_MAX,                                           /* overflow */
		INFINITY, -INFINITY,                                                          /* inf */
		NAN, -NAN,                                                                    /* nan */
		0x1p-25f, -0x1p-25f, 1e-40f,                                                  /* to zero */
		0x1p-24f, 3 * 0x1p-26f, 1023 * 0x1p-24f, 0x1.ffbffep-15f, -0x1p-15f,         /* subnormal */
	};
	size_t n = sizeof x / sizeof *x;
	HalfStats s = {0};
	half_classify_n(x, n, &s);
	CHECK(s.count == n);
	CHECK(s.overflow == 4);
	CHECK(s.inf == 2);
	CHECK(s.nan == 2);
	CHECK(s.underflow_to_zero == 3);
	CHECK(s.subnormal == 5);
	half_classify_n(x, n, &s); /* counts add up across calls */
	CHECK(s.count == 2 * n && s.overflow == 8 && s.inf == 4 && s.nan == 4);
	CHECK(s.underflow_to_zero == 6 && s.subnormal == 10);
	HalfStats e = {0};
	half_classify_n(x, 0, &e);
	CHECK(e.count == 0 && e.nan == 0 && e.subnormal == 0);
}

int
main(int argc, char **argv)
{
	bool all = argc > 1 && strcmp(argv[1], "--all") == 0;
	if (argc > 2 || (argc == 2 && !all)) {
		fprintf(stderr, "usage: %s [--all]\n", argv[0]);
		return 2;
	}
	double t0 = nnc_seconds();
	f16c = half_f16c_available();
	if (!f16c) {
		printf("test_half: no F16C on this CPU: F16C-vs-portable comparisons skipped\n");
		if (all)
			return 77; /* --all compares the two paths and nothing else it does is new */
	}
	test_constants();
	test_known_from();
	test_known_to();
	test_nan();
	test_to_float_all();
	test_is_exact();
	test_bulk_tails();
	test_classify();
	test_structured();
	test_many_floats(all);
	test_mxcsr();
	printf("test_half: %llu values compared in bulk, %.2f s\n", (unsigned long long)compared, nnc_seconds() - t0);
	return check_exit("test_half");
}
