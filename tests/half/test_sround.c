/* Stochastic rounding to fp16 (runtime/sround.h): every result is one of the two fp16 values
 * around x, fp16 values and out-of-range inputs come back as they are, the chance of rounding up
 * is exactly the fraction of an ulp x lies above the lower value (over all 2^32 draws, counted
 * in closed form for sampled draws), and the mean of many rounded updates converges to the
 * exact value -- where rounding to nearest loses every update below half an ulp. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "core/half.h"
#include "runtime/sround.h"
#include "tests/check.h"

/* The fp16 neighbours of x: *lo toward zero, *hi the next away from zero (as floats). */
static void
neighbours(float x, float *lo, float *hi)
{
	float a = fabsf(x), n = half_to_float(half_from_float(a));
	float below = n <= a ? n : half_to_float((nnc_half)(half_from_float(a) - 1));
	float above = below == a ? a : half_to_float((nnc_half)(half_from_float(below) + 1));
	*lo = x < 0 ? -below : below;
	*hi = x < 0 ? -above : above;
}

int
main(void)
{
	uint64_t rng = 42;
	/* fp16 values, zeros, out of range and non-finite inputs are returned as they are */
	const float same[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0x1p-24f, 0x1p-14f, 70000.0f, -1e9f, INFINITY, -INFINITY};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
		for (uint32_t r = 0; r < 4; r++)
			CHECK(nnc_round_stochastic_f16(same[i], r * 0x55555555u) == same[i]);
	CHECK(isnan(nnc_round_stochastic_f16(NAN, 7)));

	/* random x over the whole fp16 range (normals, subnormals, both signs): the result is one
	 * of the two neighbours and stored by round-to-nearest it is exact; draws below the
	 * threshold round up, at or above it down */
	int bad = 0;
	for (int t = 0; t < 200000; t++) {
		uint32_t bits = nnc_rng_u32(&rng);
		int e = (int)(nnc_rng_u32(&rng) % 40) - 25; /* 2^-25 .. 2^14 */
		float x = ldexpf(1.0f + (float)(bits >> 9) * 0x1p-23f, e) * (bits & 1 ? -1.0f : 1.0f);
		float lo, hi;
		neighbours(x, &lo, &hi);
		uint32_t r = nnc_rng_u32(&rng);
		float y = nnc_round_stochastic_f16(x, r);
		bad += !(y == lo || y == hi) || half_to_float(half_from_float(y)) != y;
		if (lo != hi) {
			/* P(up) = (|x| - |lo|) / (|hi| - |lo|): the threshold on r is that times 2^32 */
			double p = (fabs((double)x) - fabs((double)lo)) / (fabs((double)hi) - fabs((double)lo));
			double threshold = ldexp(p, 32);
			bad += (y == hi) != ((double)r < threshold);
		}
	}
	CHECK(bad == 0);

	/* unbiased: many rounded updates of one weight average to the exact sum. A step of 0.3 ulp
	 * on 1.0 (ulp 2^-10) vanishes under rounding to nearest; stochastically, 1024 of them
	 * move the weight by 1024 * 0.3 ulp on average (it stays in [1, 2), one ulp). */
	float step = 0.3f * 0x1p-10f, w = 1.0f, wn = 1.0f;
	uint64_t key = nnc_sround_key(1, 0, 5);
	for (int i = 0; i < 1024; i++) {
		w = nnc_round_stochastic_f16(w + step, nnc_sround_bits(key + (uint64_t)i, (uint64_t)i));
		wn = half_to_float(half_from_float(wn + step));
	}
	double exact = 1.0 + 1024.0 * (double)step, sd = sqrt(1024 * 0.21) * 0x1p-10;
	CHECK(wn == 1.0f);
	CHECK(fabs((double)w - exact) < 4 * sd);
	/* the mean of one rounding over many draws converges to x: 1 + 0.3 ulp */
	double sum = 0;
	enum { DRAWS = 1 << 20 };
	for (uint32_t i = 0; i < DRAWS; i++)
		sum += nnc_round_stochastic_f16(1.0f + step, nnc_sround_bits(key, i));
	double mean = sum / DRAWS, want = 1.0 + (double)step;
	CHECK(fabs(mean - want) < 5 * sqrt(0.21 / DRAWS) * 0x1p-10);

	/* the draws: a pure function of (seed, step, value, element), different when any differs */
	CHECK(nnc_sround_bits(nnc_sround_key(3, 4, 5), 6) == nnc_sround_bits(nnc_sround_key(3, 4, 5), 6));
	CHECK(nnc_sround_bits(nnc_sround_key(3, 4, 5), 6) != nnc_sround_bits(nnc_sround_key(3, 5, 5), 6));
	CHECK(nnc_sround_bits(nnc_sround_key(3, 4, 5), 6) != nnc_sround_bits(nnc_sround_key(3, 4, 6), 6));
	CHECK(nnc_sround_bits(nnc_sround_key(3, 4, 5), 6) != nnc_sround_bits(nnc_sround_key(3, 4, 5), 7));
	CHECK(nnc_sround_bits(nnc_sround_key(3, 4, 5), 6) != nnc_sround_bits(nnc_sround_key(2, 4, 5), 6));
	return check_exit("sround");
}
