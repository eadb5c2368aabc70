/* Tests of the fp16-accumulation kernels (runtime/cpu/acc16.h), CTest entry cpu_acc16:
 *   round        cpu_acc16_round against half_to_float(half_from_float(x)) bit for bit on every
 *                fp16 value, its float neighbours, every midpoint between consecutive fp16
 *                values and the floats either side of it, and every 251st of all 2^32 float
 *                bit patterns (NaNs, infinities, subnormals included); cpu_acc16_round_double
 *                against an independent double -> fp16 rounding (below) on the same
 *                midpoints, doubles within 2^-40 of them (where rounding through float would
 *                create a false tie) and random doubles of every scale
 *   reference    every kernel against naive loops written here from the documented model,
 *                with each fp16 operation computed exactly in double (a sum or product of two
 *                fp16 values is exact in double) and rounded once by ref_round: results must
 *                be bit-identical
 *   model        the model is really fp16 accumulation: 4096 products 1*1 sum to 2048 (f32
 *                kernels: 4096); ties to even in a sum and in a product; one rounding per
 *                multiply (no fused multiply-add); overflow of a partial sum to inf
 *   threads      every kernel at 1, 2 and 3 threads on one workload: bit-identical
 *   bound        on random data of moderate size, each result within the error bound of
 *                acc16.h of the f32 kernel: |acc16 - f32| <= gamma_(K+2) * S + K * 2^-25 +
 *                K * 2^-23 * S, S the sum of the terms' magnitudes (the f64 kernel run on
 *                absolute values), K the longest sum (the last term allows for the f32
 *                kernel's own error); batch norm, softmax and the loss against the f32
 *                kernels within the tolerances given in test_loose
 * Usage: test_acc16 [all]: "all" also compares cpu_acc16_round with the half.h functions on
 * all 2^32 floats (about 25 s; not registered). Fixed seeds; exit status 1 on any failure. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/cpu/acc16.h"
#include "core/half.h"
#include "tests/check.h"


static uint32_t
fbits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	return u;
}

static float
bitsf(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

static void *
xalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size);
	if (!p) {
		fprintf(stderr, "test_acc16: out of memory\n");
		exit(2);
	}
	return p;
}

/* ---- random numbers (splitmix64) ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t
rnext(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double
runif(void)
{
	return (double)(rnext() >> 11) * 0x1p-53;
}

/* count fp16 values, uniform in [lo, hi) before rounding. */
static float *
rand16(size_t count, double lo, double hi)
{
	float *p = xalloc(count, sizeof *p);
	for (size_t i = 0; i < count; i++)
		p[i] = half_to_float(half_from_float((float)(lo + (hi - lo) * runif())));
	return p;
}

/* ---- the reference rounding, independent of acc16.h ------------------------------------- */

static float
hround(float x)
{
	return half_to_float(half_from_float(x));
}

/* The value of the fp16 magnitude bits b, with the infinity pattern counting as 65536 (the
 * overflow threshold 65520 is then the midpoint, which rounds to it: 65504 is odd). */
static double
hval(unsigned b)
{
	return b >= 0x7c00 ? 65536.0 : (double)half_to_float((nnc_half)b);
}

/* d rounded once to fp16 (nearest, ties to even), from the double itself: bracket |d| between
 * consecutive fp16 magnitudes and compare with their midpoint, which is exact in double. */
static float
ref_round(double d)
{
	if (isnan(d))
		return hround((float)d);
	double a = fabs(d);
	unsigned lo = half_from_float((float)a) & 0x7fff;
	if (lo > 0x7c00)
		lo = 0x7c00;
	while (lo > 0 && hval(lo) > a)
		lo--;
	while (lo < 0x7c00 && hval(lo + 1) <= a)
		lo++;
	if (lo < 0x7c00) {
		double mid = (hval(lo) + hval(lo + 1)) / 2;
		if (a > mid || (a == mid && (lo & 1)))
			lo++;
	}
	return half_to_float((nnc_half)(lo | (signbit(d) ? 0x8000u : 0)));
}

/* fp16 operations on fp16 operands, exactly in double, then one rounding. */
static float
radd(float a, float b)
{
	return ref_round((double)a + (double)b);
}

static float
rsub(float a, float b)
{
	return ref_round((double)a - (double)b);
}

static float
rmul(float a, float b)
{
	return ref_round((double)a * (double)b);
}

static float
rdivn(float s, double count)
{
	return ref_round((double)s / count);
}

/* ---- comparisons ------------------------------------------------------------------------- */

static void
same_bits(const char *what, const float *got, const float *want, size_t count)
{
	checks++;
	for (size_t i = 0; i < count; i++)
		if (fbits(got[i]) != fbits(want[i])) {
			check_fail("%s: element %zu is %.9g (0x%08x), the reference %.9g (0x%08x)", what, i,
				got[i], (unsigned)fbits(got[i]), want[i], (unsigned)fbits(want[i]));
			return;
		}
}

/* ---- round ------------------------------------------------------------------------------- */

static long round_mismatches;

static void
check_round_f(float x)
{
	if (fbits(cpu_acc16_round(x)) != fbits(hround(x)) && round_mismatches++ < 5)
		check_fail("cpu_acc16_round(%a = 0x%08x) = 0x%08x, half.h gives 0x%08x", x,
			(unsigned)fbits(x), (unsigned)fbits(cpu_acc16_round(x)),
			(unsigned)fbits(hround(x)));
}

static void
check_round_d(double d)
{
	if (fbits(cpu_acc16_round_double(d)) != fbits(ref_round(d)) && round_mismatches++ < 5)
		check_fail("cpu_acc16_round_double(%a) = %a, the reference gives %a", d,
			cpu_acc16_round_double(d), ref_round(d));
}

static void
test_round(bool all)
{
	round_mismatches = 0;
	for (unsigned h = 0; h < 0x10000; h++) {
		float v = half_to_float((nnc_half)h);
		check_round_f(v);
		check_round_f(nextafterf(v, INFINITY));
		check_round_f(nextafterf(v, -INFINITY));
		check_round_d(v);
		if ((h & 0x7fff) >= 0x7c00)
			continue;
		/* The midpoint to the next magnitude (65520 after 65504), exact in float. */
		double next = hval((h & 0x7fff) + 1) * (h & 0x8000 ? -1 : 1);
		double mid = ((double)v + next) / 2;
		float mf = (float)mid;
		check_round_f(mf);
		check_round_f(nextafterf(mf, INFINITY));
		check_round_f(nextafterf(mf, -INFINITY));
		check_round_d(mid);
		check_round_d(nextafter(mid, INFINITY));
		check_round_d(nextafter(mid, -INFINITY));
		check_round_d(mid * (1 + 0x1p-40));
		check_round_d(mid * (1 - 0x1p-40));
		check_round_d(mid * (1 + 0x1p-26));
		check_round_d(mid * (1 - 0x1p-26));
	}
	/* Every 251st bit pattern (251 is odd, so all low-bit patterns occur). */
	for (uint64_t u = 0; u < 0x100000000u; u += 251)
		check_round_f(bitsf((uint32_t)u));
	rng_state = 1;
	for (int i = 0; i < 1000000; i++) {
		double d = ldexp(runif(), (int)(rnext() % 80) - 60) * (rnext() & 1 ? 1 : -1);
		check_round_d(d);
		check_round_d((double)bitsf((uint32_t)rnext()));
	}
	check_round_d(NAN);
	check_round_d(-INFINITY);
	check_round_d(1e300);
	check_round_d(-1e-300);
	check_round_d(-0.0);
	if (all) {
		for (uint64_t u = 0; u < 0x100000000u; u++)
			check_round_f(bitsf((uint32_t)u));
		printf("round: all 2^32 floats compared\n");
	}
	checks++;
	if (round_mismatches)
		check_fail("round: %ld mismatches", round_mismatches);
}

/* ---- naive references ------------------------------------------------------------------- */

static void
ref_conv_forward(const CpuConv *cv, const float *x, const float *w, const float *b, float *y)
{
	int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (int i = 0; i < cv->n; i++)
		for (int o = 0; o < cv->k; o++)
			for (int oy = 0; oy < cv->oh; oy++)
				for (int ox = 0; ox < cv->ow; ox++) {
					float acc = 0;
					for (int cj = 0; cj < cpg; cj++)
						for (int r = 0; r < cv->kh; r++)
							for (int s = 0; s < cv->kw; s++) {
								int iy = oy * cv->sh - cv->ph + r, ix = ox * cv->sw - cv->pw + s;
								if (iy < 0 || iy >= cv->h || ix < 0 || ix >= cv->w)
									continue;
								int ci = o / kpg * cpg + cj;
								float xv = x[((i * cv->c + ci) * cv->h + iy) * cv->w + ix];
								float wv = w[((o * cpg + cj) * cv->kh + r) * cv->kw + s];
								acc = radd(acc, rmul(xv, wv));
							}
					if (b)
						acc = radd(acc, b[o]);
					y[((i * cv->k + o) * cv->oh + oy) * cv->ow + ox] = acc;
				}
}

/* Written as a search over output positions, unlike the kernel's division. */
static void
ref_conv_backward_data(const CpuConv *cv, const float *dy, const float *w, float *dx)
{
	int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (int i = 0; i < cv->n; i++)
		for (int ci = 0; ci < cv->c; ci++)
			for (int iy = 0; iy < cv->h; iy++)
				for (int ix = 0; ix < cv->w; ix++) {
					float acc = 0;
					int g = ci / cpg;
					for (int o = g * kpg; o < (g + 1) * kpg; o++)
						for (int r = 0; r < cv->kh; r++)
							for (int s = 0; s < cv->kw; s++)
								for (int oy = 0; oy < cv->oh; oy++)
									for (int ox = 0; ox < cv->ow; ox++) {
										if (oy * cv->sh - cv->ph + r != iy ||
											ox * cv->sw - cv->pw + s != ix)
											continue;
										float g1 = dy[((i * cv->k + o) * cv->oh + oy) * cv->ow + ox];
										float wv = w[((o * cpg + ci % cpg) * cv->kh + r) * cv->kw + s];
										acc = radd(acc, rmul(g1, wv));
									}
					dx[((i * cv->c + ci) * cv->h + iy) * cv->w + ix] = acc;
				}
}

static void
ref_conv_backward_filter(const CpuConv *cv, const float *x, const float *dy, float *dw)
{
	int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (int o = 0; o < cv->k; o++)
		for (int cj = 0; cj < cpg; cj++)
			for (int r = 0; r < cv->kh; r++)
				for (int s = 0; s < cv->kw; s++) {
					float acc = 0;
					int ci = o / kpg * cpg + cj;
					for (int i = 0; i < cv->n; i++)
						for (int oy = 0; oy < cv->oh; oy++)
							for (int ox = 0; ox < cv->ow; ox++) {
								int iy = oy * cv->sh - cv->ph + r, ix = ox * cv->sw - cv->pw + s;
								if (iy < 0 || iy >= cv->h || ix < 0 || ix >= cv->w)
									continue;
								float g1 = dy[((i * cv->k + o) * cv->oh + oy) * cv->ow + ox];
								float xv = x[((i * cv->c + ci) * cv->h + iy) * cv->w + ix];
								acc = radd(acc, rmul(g1, xv));
							}
					dw[((o * cpg + cj) * cv->kh + r) * cv->kw + s] = acc;
				}
}

static void
ref_bias(const float *dy, int n, int c, int hw, float *db)
{
	for (int j = 0; j < c; j++) {
		float acc = 0;
		for (int i = 0; i < n; i++)
			for (int t = 0; t < hw; t++)
				acc = radd(acc, dy[(i * c + j) * hw + t]);
		db[j] = acc;
	}
}

static void
ref_dense(const float *x, const float *w, const float *b, int n, int f, int u, float *y,
	float *dx_from_y, float *dw_from_y)
{
	/* y = x w^T + b; then, treating y as dy: dx = dy w, dw = dy^T x. */
	for (int r = 0; r < n; r++)
		for (int j = 0; j < u; j++) {
			float acc = 0;
			for (int i = 0; i < f; i++)
				acc = radd(acc, rmul(x[r * f + i], w[j * f + i]));
			y[r * u + j] = b ? radd(acc, b[j]) : acc;
		}
	for (int r = 0; r < n; r++)
		for (int i = 0; i < f; i++) {
			float acc = 0;
			for (int j = 0; j < u; j++)
				acc = radd(acc, rmul(y[r * u + j], w[j * f + i]));
			dx_from_y[r * f + i] = acc;
		}
	for (int j = 0; j < u; j++)
		for (int i = 0; i < f; i++) {
			float acc = 0;
			for (int r = 0; r < n; r++)
				acc = radd(acc, rmul(y[r * u + j], x[r * f + i]));
			dw_from_y[j * f + i] = acc;
		}
}

static void
ref_bn_stats(const float *x, int n, int c, int hw, double eps, float *mean, float *invstd,
	float *varu)
{
	double count = (double)n * hw;
	for (int j = 0; j < c; j++) {
		float s = 0, q = 0;
		for (int i = 0; i < n; i++)
			for (int t = 0; t < hw; t++)
				s = radd(s, x[(i * c + j) * hw + t]);
		mean[j] = rdivn(s, count);
		for (int i = 0; i < n; i++)
			for (int t = 0; t < hw; t++) {
				float d = rsub(x[(i * c + j) * hw + t], mean[j]);
				q = radd(q, rmul(d, d));
			}
		invstd[j] = ref_round(1.0 / sqrt((double)rdivn(q, count) + eps));
		varu[j] = rdivn(q, count - 1);
	}
}

static void
ref_bn_backward(const float *dy, const float *x, int n, int c, int hw, const float *mean,
	const float *invstd, const float *w, float *dx, float *dw, float *db)
{
	double count = (double)n * hw;
	for (int j = 0; j < c; j++) {
		float sdy = 0, sdyx = 0;
		for (int i = 0; i < n; i++)
			for (int t = 0; t < hw; t++) {
				size_t e = ((size_t)i * c + j) * hw + t;
				sdy = radd(sdy, dy[e]);
				sdyx = radd(sdyx, rmul(dy[e], rmul(rsub(x[e], mean[j]), invstd[j])));
			}
		dw[j] = sdyx;
		db[j] = sdy;
		float gain = w ? rmul(w[j], invstd[j]) : invstd[j];
		for (int i = 0; i < n; i++)
			for (int t = 0; t < hw; t++) {
				size_t e = ((size_t)i * c + j) * hw + t;
				float xhat = rmul(rsub(x[e], mean[j]), invstd[j]);
				float inner = rsub(rsub(dy[e], rdivn(sdy, count)), rmul(xhat, rdivn(sdyx, count)));
				dx[e] = rmul(gain, inner);
			}
	}
}

static double
ref_divisor(const CpuPool *p, int oy, int ox)
{
	int rows = 0, cols = 0;
	for (int r = 0; r < p->kh; r++) {
		int iy = oy * p->sh - p->ph + r;
		rows += iy < p->h + p->ph;
	}
	for (int s = 0; s < p->kw; s++) {
		int ix = ox * p->sw - p->pw + s;
		cols += ix < p->w + p->pw;
	}
	return (double)rows * cols;
}

static void
ref_avgpool(const CpuPool *p, const float *x, float *y, const float *dy, float *dx)
{
	for (int pl = 0; pl < p->n * p->c; pl++) {
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				float acc = 0;
				for (int r = 0; r < p->kh; r++)
					for (int s = 0; s < p->kw; s++) {
						int iy = oy * p->sh - p->ph + r, ix = ox * p->sw - p->pw + s;
						if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
							acc = radd(acc, x[(pl * p->h + iy) * p->w + ix]);
					}
				y[(pl * p->oh + oy) * p->ow + ox] = rdivn(acc, ref_divisor(p, oy, ox));
			}
		/* Backward as a gather: each input sums the windows containing it, in order. */
		for (int iy = 0; iy < p->h; iy++)
			for (int ix = 0; ix < p->w; ix++) {
				float acc = 0;
				for (int oy = 0; oy < p->oh; oy++)
					for (int ox = 0; ox < p->ow; ox++) {
						int dyy = iy - (oy * p->sh - p->ph), dxx = ix - (ox * p->sw - p->pw);
						if (dyy < 0 || dyy >= p->kh || dxx < 0 || dxx >= p->kw)
							continue;
						float g = rdivn(dy[(pl * p->oh + oy) * p->ow + ox], ref_divisor(p, oy, ox));
						acc = radd(acc, g);
					}
				dx[(pl * p->h + iy) * p->w + ix] = acc;
			}
	}
}

/* exp terms of one row and their fp16 sum. */
static float
ref_exps(const float *x, int k, float *e, float *m_out)
{
	float m = x[0];
	for (int j = 1; j < k; j++)
		m = x[j] > m ? x[j] : m;
	float s = 0;
	for (int j = 0; j < k; j++) {
		e[j] = ref_round(exp((double)rsub(x[j], m)));
		s = radd(s, e[j]);
	}
	*m_out = m;
	return s;
}

static void
ref_softmax(const float *x, int n, int k, float *y, const float *dy, float *dx)
{
	float *e = xalloc((size_t)k, sizeof *e), m;
	for (int r = 0; r < n; r++) {
		float s = ref_exps(x + r * k, k, e, &m);
		for (int j = 0; j < k; j++)
			y[r * k + j] = ref_round((double)e[j] / s);
		float t = 0;
		for (int j = 0; j < k; j++)
			t = radd(t, rmul(dy[r * k + j], y[r * k + j]));
		for (int j = 0; j < k; j++)
			dx[r * k + j] = rmul(y[r * k + j], rsub(dy[r * k + j], t));
	}
	free(e);
}

static float
ref_xent(const float *x, const int32_t *lab, int n, int k, double eps, double dloss, float *dx)
{
	float *e = xalloc((size_t)k, sizeof *e), m, total = 0;
	float sc = ref_round(dloss / n);
	for (int r = 0; r < n; r++) {
		const float *row = x + r * k;
		float s = ref_exps(row, k, e, &m);
		float lse = radd(m, ref_round(log((double)s)));
		float l = rsub(lse, row[lab[r]]);
		if (eps != 0) {
			float xs = 0;
			for (int j = 0; j < k; j++)
				xs = radd(xs, row[j]);
			l = radd(rmul(ref_round(1 - eps), l), rmul(ref_round(eps), rsub(lse, rdivn(xs, k))));
		}
		total = radd(total, l);
		for (int j = 0; j < k; j++) {
			float p = ref_round((double)e[j] / s);
			float t = ref_round(eps / k + (j == lab[r] ? 1 - eps : 0));
			dx[r * k + j] = rmul(sc, rsub(p, t));
		}
	}
	free(e);
	return rdivn(total, n);
}

/* ---- reference group ---------------------------------------------------------------------- */

static void
test_conv_case(CpuConv cv, const char *name)
{
	char what[128];
	CHECK(cpu_conv_setup(&cv) == 0);
	size_t nx = (size_t)cv.n * cv.c * cv.h * cv.w, ny = (size_t)cv.n * cv.k * cv.oh * cv.ow;
	size_t nw = (size_t)cv.k * (cv.c / cv.groups) * cv.kh * cv.kw;
	float *x = rand16(nx, -2, 2), *w = rand16(nw, -1, 1), *b = rand16((size_t)cv.k, -1, 1);
	float *dy = rand16(ny, -1, 1);
	float *y = xalloc(ny, sizeof *y), *ry = xalloc(ny, sizeof *y);
	float *dx = xalloc(nx, sizeof *dx), *rdx = xalloc(nx, sizeof *dx);
	float *dw = xalloc(nw, sizeof *dw), *rdw = xalloc(nw, sizeof *dw);
	float *db = xalloc((size_t)cv.k, sizeof *db), *rdb = xalloc((size_t)cv.k, sizeof *db);
	for (int with_bias = 0; with_bias < 2; with_bias++) {
		CHECK(cpu_acc16_conv2d_forward(&cv, x, w, with_bias ? b : NULL, y) == 0);
		ref_conv_forward(&cv, x, w, with_bias ? b : NULL, ry);
		snprintf(what, sizeof what, "%s forward%s", name, with_bias ? " + bias" : "");
		same_bits(what, y, ry, ny);
	}
	CHECK(cpu_acc16_conv2d_backward_data(&cv, dy, w, dx) == 0);
	ref_conv_backward_data(&cv, dy, w, rdx);
	snprintf(what, sizeof what, "%s backward data", name);
	same_bits(what, dx, rdx, nx);
	CHECK(cpu_acc16_conv2d_backward_filter(&cv, x, dy, dw) == 0);
	ref_conv_backward_filter(&cv, x, dy, rdw);
	snprintf(what, sizeof what, "%s backward filter", name);
	same_bits(what, dw, rdw, nw);
	cpu_acc16_bias_backward(dy, cv.n, cv.k, cv.oh * cv.ow, db);
	ref_bias(dy, cv.n, cv.k, cv.oh * cv.ow, rdb);
	snprintf(what, sizeof what, "%s bias backward", name);
	same_bits(what, db, rdb, (size_t)cv.k);
	CpuConv bad = cv;
	bad.oh++;
	CHECK(cpu_acc16_conv2d_forward(&bad, x, w, b, y) == -1);
	void *ps[] = {x, w, b, dy, y, ry, dx, rdx, dw, rdw, db, rdb};
	for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
		free(ps[i]);
}

static void
test_reference(void)
{
	rng_state = 42;
	test_conv_case((CpuConv){.n = 2, .c = 4, .h = 7, .w = 6, .k = 6, .kh = 3, .kw = 2, .sh = 2,
		.sw = 1, .ph = 1, .pw = 1, .groups = 2}, "conv grouped strided");
	test_conv_case((CpuConv){.n = 3, .c = 3, .h = 8, .w = 8, .k = 5, .kh = 3, .kw = 3, .sh = 1,
		.sw = 1, .ph = 1, .pw = 1, .groups = 1}, "conv 3x3");
	test_conv_case((CpuConv){.n = 2, .c = 4, .h = 9, .w = 7, .k = 8, .kh = 3, .kw = 3, .sh = 2,
		.sw = 2, .ph = 1, .pw = 2, .groups = 4}, "conv depthwise");
	test_conv_case((CpuConv){.n = 2, .c = 6, .h = 5, .w = 5, .k = 4, .kh = 1, .kw = 1, .sh = 1,
		.sw = 1, .ph = 0, .pw = 0, .groups = 1}, "conv 1x1");

	/* dense */
	{
		int n = 5, f = 37, u = 7;
		float *x = rand16((size_t)n * f, -2, 2), *w = rand16((size_t)u * f, -1, 1);
		float *b = rand16((size_t)u, -1, 1);
		float *y = xalloc((size_t)n * u, 4), *ry = xalloc((size_t)n * u, 4);
		float *dx = xalloc((size_t)n * f, 4), *rdx = xalloc((size_t)n * f, 4);
		float *dw = xalloc((size_t)u * f, 4), *rdw = xalloc((size_t)u * f, 4);
		for (int with_bias = 0; with_bias < 2; with_bias++) {
			const float *bb = with_bias ? b : NULL;
			cpu_acc16_dense_forward(x, w, bb, n, f, u, y);
			ref_dense(x, w, bb, n, f, u, ry, rdx, rdw);
			same_bits(with_bias ? "dense forward + bias" : "dense forward", y, ry,
				(size_t)n * u);
			cpu_acc16_dense_backward_data(y, w, n, f, u, dx);
			same_bits("dense backward data", dx, rdx, (size_t)n * f);
			cpu_acc16_dense_backward_weight(y, x, n, f, u, dw);
			same_bits("dense backward weight", dw, rdw, (size_t)u * f);
		}
		void *ps[] = {x, w, b, y, ry, dx, rdx, dw, rdw};
		for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
			free(ps[i]);
	}

	/* batch norm: an offset mean, so that d = x - mean rounds */
	{
		int n = 4, c = 3, hw = 30;
		size_t cnt = (size_t)n * c * hw;
		float *x = rand16(cnt, 2, 5), *dy = rand16(cnt, -1, 1), *w = rand16((size_t)c, 0.5, 2);
		float got[6][3], want[6][3];
		float *dx = xalloc(cnt, 4), *rdx = xalloc(cnt, 4);
		CHECK(cpu_acc16_batchnorm_stats(x, n, c, hw, 1e-5, got[0], got[1], got[2]) == 0);
		ref_bn_stats(x, n, c, hw, 1e-5, want[0], want[1], want[2]);
		same_bits("batchnorm mean", got[0], want[0], 3);
		same_bits("batchnorm invstd", got[1], want[1], 3);
		same_bits("batchnorm var_unbiased", got[2], want[2], 3);
		for (int with_w = 0; with_w < 2; with_w++) {
			cpu_acc16_batchnorm_backward_data(dy, x, n, c, hw, got[0], got[1],
				with_w ? w : NULL, dx, got[3], got[4]);
			ref_bn_backward(dy, x, n, c, hw, got[0], got[1], with_w ? w : NULL, rdx, want[3],
				want[4]);
			same_bits(with_w ? "batchnorm backward dx (affine)" : "batchnorm backward dx", dx,
				rdx, cnt);
			same_bits("batchnorm backward dw", got[3], want[3], 3);
			same_bits("batchnorm backward db", got[4], want[4], 3);
		}
		cpu_acc16_batchnorm_backward_params(dy, x, n, c, hw, got[0], got[1], got[5], got[2]);
		same_bits("batchnorm params dw", got[5], want[3], 3);
		same_bits("batchnorm params db", got[2], want[4], 3);
		float one[1];
		CHECK(cpu_acc16_batchnorm_stats(x, 1, 1, 1, 1e-5, one, one, one) == -1);
		free(x), free(dy), free(w), free(dx), free(rdx);
	}

	/* pooling */
	{
		CpuPool p = {.n = 2, .c = 3, .h = 7, .w = 8, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
			.ph = 1, .pw = 1};
		CHECK(cpu_pool_setup(&p) == 0);
		size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * p.oh * p.ow;
		float *x = rand16(nx, -3, 3), *dy = rand16(ny, -3, 3);
		float *y = xalloc(ny, 4), *ry = xalloc(ny, 4), *dx = xalloc(nx, 4), *rdx = xalloc(nx, 4);
		cpu_acc16_avgpool2d_forward(&p, x, y);
		cpu_acc16_avgpool2d_backward(&p, dy, dx);
		ref_avgpool(&p, x, ry, dy, rdx);
		same_bits("avgpool forward", y, ry, ny);
		same_bits("avgpool backward", dx, rdx, nx);
		/* global: [n, c, hw] with hw = h * w of x */
		int hw = p.h * p.w;
		cpu_acc16_global_avgpool_forward(x, p.n, p.c, hw, y);
		for (int pl = 0; pl < p.n * p.c; pl++) {
			float acc = 0;
			for (int t = 0; t < hw; t++)
				acc = radd(acc, x[pl * hw + t]);
			ry[pl] = rdivn(acc, hw);
		}
		same_bits("global avgpool forward", y, ry, (size_t)p.n * p.c);
		cpu_acc16_global_avgpool_backward(dy, p.n, p.c, hw, dx);
		for (int pl = 0; pl < p.n * p.c; pl++)
			for (int t = 0; t < hw; t++)
				rdx[pl * hw + t] = rdivn(dy[pl], hw);
		same_bits("global avgpool backward", dx, rdx, nx);
		free(x), free(dy), free(y), free(ry), free(dx), free(rdx);
	}

	/* softmax and the loss */
	{
		int n = 6, k = 10;
		size_t cnt = (size_t)n * k;
		float *x = rand16(cnt, -6, 6), *dy = rand16(cnt, -1, 1);
		float *y = xalloc(cnt, 4), *ry = xalloc(cnt, 4), *dx = xalloc(cnt, 4),
		      *rdx = xalloc(cnt, 4);
		int32_t lab[6] = {0, 9, 3, 3, 7, 1};
		cpu_acc16_softmax_forward(x, n, k, y);
		ref_softmax(x, n, k, ry, dy, rdx);
		same_bits("softmax forward", y, ry, cnt);
		cpu_acc16_softmax_backward(ry, dy, n, k, dx);
		same_bits("softmax backward", dx, rdx, cnt);
		const double epss[] = {0, 0.1}, dlosses[] = {1, 1024};
		for (int e = 0; e < 2; e++) {
			float loss, rloss = ref_xent(x, lab, n, k, epss[e], dlosses[e], rdx);
			CHECK(cpu_acc16_softmax_xent_forward(x, lab, n, k, epss[e], &loss) == 0);
			same_bits(e ? "xent forward (smoothing)" : "xent forward", &loss, &rloss, 1);
			CHECK(cpu_acc16_softmax_xent_backward(x, lab, n, k, epss[e], dlosses[e], dx) == 0);
			same_bits(e ? "xent backward (smoothing, scaled)" : "xent backward", dx, rdx, cnt);
		}
		lab[2] = 10;
		float loss = 7;
		CHECK(cpu_acc16_softmax_xent_forward(x, lab, n, k, 0, &loss) == -1 && loss == 7);
		CHECK(cpu_acc16_softmax_xent_backward(x, lab, n, k, 0, 1, dx) == -1);
		free(x), free(dy), free(y), free(ry), free(dx), free(rdx);
	}
}

/* ---- model -------------------------------------------------------------------------------- */

static float
dense1(const float *x, const float *w, int f)
{
	float y;
	cpu_acc16_dense_forward(x, w, NULL, 1, f, 1, &y);
	return y;
}

static void
test_model(void)
{
	enum { F = 4096 };
	float *ones = xalloc(F, sizeof *ones), y;
	for (int i = 0; i < F; i++)
		ones[i] = 1;
	/* 2048 + 1 = 2049 is a tie between 2048 and 2050; it rounds to 2048 (even). */
	CHECK(dense1(ones, ones, F) == 2048.0f);
	cpu_dense_forward_f32(ones, ones, NULL, 1, F, 1, &y);
	CHECK(y == 4096.0f);
	cpu_acc16_bias_backward(ones, 1, 1, F, &y);
	CHECK(y == 2048.0f);
	cpu_acc16_global_avgpool_forward(ones, 1, 1, F, &y);
	CHECK(y == 0.5f);
	cpu_global_avgpool_forward_f32(ones, 1, 1, F, &y);
	CHECK(y == 1.0f);
	float mean, invstd;
	CHECK(cpu_acc16_batchnorm_stats(ones, 1, 1, F, 0, &mean, &invstd, NULL) == 0);
	CHECK(mean == 0.5f);
	/* Sums of ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even);
	 * (1 + 2^-10) + 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9 -> 1 + 2^-9 (even). */
	float x2[2] = {1, 0x1p-11f}, w2[2] = {1, 1};
	CHECK(dense1(x2, w2, 2) == 1.0f);
	x2[0] = 1 + 0x1p-10f;
	CHECK(dense1(x2, w2, 2) == 1 + 0x1p-9f);
	/* A product tie: (1 + 2^-10) * 1.5 = 1.5 + 2^-10 + 2^-11 -> 1.5 + 2^-9 (even). */
	float a = 1 + 0x1p-10f, b = 1.5f;
	CHECK(dense1(&a, &b, 1) == 1.5f + 0x1p-9f);
	/* One rounding per multiply, none fused: (1 + 2^-10)(1 + 2^-9) - 1 is exactly
	 * 2^-9 + 2^-10 + 2^-19, an fp16 value, but the product rounds to 1 + 2^-9 + 2^-10 first. */
	float xf[2] = {1 + 0x1p-10f, -1}, wf[2] = {1 + 0x1p-9f, 1};
	CHECK(dense1(xf, wf, 2) == 0x1p-9f + 0x1p-10f);
	cpu_dense_forward_f32(xf, wf, NULL, 1, 2, 1, &y);
	CHECK(y == 0x1p-9f + 0x1p-10f + 0x1p-19f);
	/* Overflow of a partial sum: 30000 + 30000 + 30000 passes 65504, and inf stays. */
	float big[4] = {30000, 30000, 30000, -30000};
	CHECK(isinf(dense1(big, ones, 4)));
	cpu_dense_forward_f32(big, ones, NULL, 1, 4, 1, &y);
	CHECK(y == 60000.0f);
	/* The softmax of 4096 equal logits: each e = 1, their fp16 sum saturates at 2048, so each
	 * probability is 2^-11 rather than 2^-12. */
	float *p = xalloc(F, sizeof *p);
	cpu_acc16_softmax_forward(ones, 1, F, p);
	CHECK(p[0] == 0x1p-11f && p[F - 1] == 0x1p-11f);
	free(p);
	free(ones);
}

/* ---- threads ------------------------------------------------------------------------------ */

/* Runs every kernel on one fixed workload and returns all outputs, concatenated. */
static float *
workload(size_t *count)
{
	rng_state = 7;
	CpuConv cv = {.n = 4, .c = 6, .h = 12, .w = 11, .k = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 2,
		.ph = 1, .pw = 1, .groups = 2};
	cpu_conv_setup(&cv);
	size_t nx = (size_t)cv.n * cv.c * cv.h * cv.w, ny = (size_t)cv.n * cv.k * cv.oh * cv.ow;
	size_t nw = (size_t)cv.k * (cv.c / cv.groups) * cv.kh * cv.kw;
	int n = 24, f = 50, u = 30, k = 40;
	CpuPool p = {.n = cv.n, .c = cv.c, .h = cv.h, .w = cv.w, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
		.ph = 1, .pw = 1};
	cpu_pool_setup(&p);
	size_t np = (size_t)p.n * p.c * p.oh * p.ow;
	size_t total = ny + nx + nw + cv.k + (size_t)n * u + (size_t)n * f + (size_t)u * f +
		3 * (size_t)cv.c + nx + 2 * (size_t)cv.c + np + nx + (size_t)cv.n * cv.c + nx +
		2 * (size_t)n * k + 1 + (size_t)n * k;
	float *out = xalloc(total, sizeof *out), *o = out;
	float *x = rand16(nx, -2, 2), *w = rand16(nw, -1, 1), *b = rand16((size_t)cv.k, -1, 1);
	float *dy = rand16(ny, -1, 1), *dx2 = rand16(nx, -1, 1);
	float *dx = rand16((size_t)n * f, -2, 2), *dw = rand16((size_t)u * f, -1, 1);
	float *dl = rand16((size_t)n * k, -5, 5), *dg = rand16((size_t)n * k, -1, 1);
	int32_t *lab = xalloc((size_t)n, sizeof *lab);
	for (int r = 0; r < n; r++)
		lab[r] = (int32_t)(rnext() % (uint64_t)k);
	cpu_acc16_conv2d_forward(&cv, x, w, b, o), o += ny;
	cpu_acc16_conv2d_backward_data(&cv, dy, w, o), o += nx;
	cpu_acc16_conv2d_backward_filter(&cv, x, dy, o), o += nw;
	cpu_acc16_bias_backward(dy, cv.n, cv.k, cv.oh * cv.ow, o), o += cv.k;
	cpu_acc16_dense_forward(dx, dw, NULL, n, f, u, o), o += (size_t)n * u;
	cpu_acc16_dense_backward_data(o - (size_t)n * u, dw, n, f, u, o), o += (size_t)n * f;
	cpu_acc16_dense_backward_weight(o - (size_t)n * f - (size_t)n * u, dx, n, f, u, o);
	o += (size_t)u * f;
	float *st = o;
	cpu_acc16_batchnorm_stats(x, cv.n, cv.c, cv.h * cv.w, 1e-5, st, st + cv.c, st + 2 * cv.c);
	o += 3 * (size_t)cv.c;
	cpu_acc16_batchnorm_backward_data(dx2, x, cv.n, cv.c, cv.h * cv.w, st, st + cv.c, NULL, o,
		o + nx, o + nx + cv.c);
	o += nx + 2 * (size_t)cv.c;
	cpu_acc16_avgpool2d_forward(&p, x, o), o += np;
	cpu_acc16_avgpool2d_backward(&p, o - np, o), o += nx;
	cpu_acc16_global_avgpool_forward(x, cv.n, cv.c, cv.h * cv.w, o), o += (size_t)cv.n * cv.c;
	cpu_acc16_global_avgpool_backward(o - (size_t)cv.n * cv.c, cv.n, cv.c, cv.h * cv.w, o);
	o += nx;
	cpu_acc16_softmax_forward(dl, n, k, o), o += (size_t)n * k;
	cpu_acc16_softmax_backward(o - (size_t)n * k, dg, n, k, o), o += (size_t)n * k;
	cpu_acc16_softmax_xent_forward(dl, lab, n, k, 0.1, o), o += 1;
	cpu_acc16_softmax_xent_backward(dl, lab, n, k, 0.1, 1, o), o += (size_t)n * k;
	if ((size_t)(o - out) != total)
		check_fail("workload: wrote %zu of %zu outputs", (size_t)(o - out), total);
	void *ps[] = {x, w, b, dy, dx2, dx, dw, dl, dg, lab};
	for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
		free(ps[i]);
	*count = total;
	return out;
}

static void
test_threads(void)
{
	size_t n1, n;
	cpu_threads_init(1);
	float *one = workload(&n1);
	for (int t = 2; t <= 3; t++) {
		cpu_threads_init(t);
		float *other = workload(&n);
		char what[64];
		snprintf(what, sizeof what, "workload at %d threads vs 1", t);
		if (n == n1)
			same_bits(what, other, one, n);
		free(other);
	}
	cpu_threads_shutdown();
	free(one);
}

/* ---- bound -------------------------------------------------------------------------------- */

static double worst_ratio;

/* |got - f32| <= gamma_(K+2) S + K 2^-25 + K 2^-23 S elementwise; S from the f64 kernel on
 * absolute values. */
static void
within_bound(const char *what, const float *got, const float *f32, const double *s, size_t count,
	int K)
{
	const double u = 0x1p-11, gamma = (K + 2) * u / (1 - (K + 2) * u);
	checks++;
	for (size_t i = 0; i < count; i++) {
		double bound = gamma * s[i] + K * 0x1p-25 + K * 0x1p-23 * s[i];
		double err = fabs((double)got[i] - f32[i]);
		if (bound > 0 && err / bound > worst_ratio)
			worst_ratio = err / bound;
		if (!(err <= bound)) {
			check_fail("%s: element %zu: acc16 %.9g, f32 %.9g, error %.3g > bound %.3g", what, i,
				got[i], f32[i], err, bound);
			return;
		}
	}
}

static double *
absd(const float *x, size_t count)
{
	double *d = xalloc(count, sizeof *d);
	for (size_t i = 0; i < count; i++)
		d[i] = fabs((double)x[i]);
	return d;
}

static void *
conv_ws(const CpuConv *cv, size_t *bytes, bool f64)
{
	size_t m = 0;
	for (int pass = 0; pass < 3; pass++) {
		size_t b = f64 ? cpu_conv2d_workspace_f64(cv, (CpuConvPass)pass, 1)
			       : cpu_conv2d_workspace_f32(cv, (CpuConvPass)pass, 1);
		m = b > m ? b : m;
	}
	*bytes = m;
	return xalloc(m + 64, 1);
}

static void
test_bound(void)
{
	rng_state = 99;
	worst_ratio = 0;
	CpuConv cv = {.n = 4, .c = 16, .h = 10, .w = 10, .k = 12, .kh = 3, .kw = 3, .sh = 1,
		.sw = 1, .ph = 1, .pw = 1, .groups = 1};
	CHECK(cpu_conv_setup(&cv) == 0);
	size_t nx = (size_t)cv.n * cv.c * cv.h * cv.w, ny = (size_t)cv.n * cv.k * cv.oh * cv.ow;
	size_t nw = (size_t)cv.k * cv.c * cv.kh * cv.kw, b32, b64;
	float *x = rand16(nx, -2, 2), *w = rand16(nw, -1, 1), *b = rand16(64, -1, 1);
	float *dy = rand16(ny, -1, 1);
	double *ax = absd(x, nx), *aw = absd(w, nw), *ab = absd(b, 64),
	       *ady = absd(dy, ny);
	void *ws32 = conv_ws(&cv, &b32, false), *ws64 = conv_ws(&cv, &b64, true);
	size_t big = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
	float *g = xalloc(big, 4), *r32 = xalloc(big, 4);
	double *s = xalloc(big, sizeof *s);

	cpu_acc16_conv2d_forward(&cv, x, w, b, g);
	cpu_conv2d_forward_f32(&cv, x, w, b, r32, ws32, b32);
	cpu_conv2d_forward_f64(&cv, ax, aw, ab, s, ws64, b64);
	within_bound("conv forward", g, r32, s, ny, cv.c * 9 + 1);
	cpu_acc16_conv2d_backward_data(&cv, dy, w, g);
	cpu_conv2d_backward_data_f32(&cv, dy, w, r32, ws32, b32);
	cpu_conv2d_backward_data_f64(&cv, ady, aw, s, ws64, b64);
	within_bound("conv backward data", g, r32, s, nx, cv.k * 9);
	cpu_acc16_conv2d_backward_filter(&cv, x, dy, g);
	cpu_conv2d_backward_filter_f32(&cv, x, dy, r32, ws32, b32);
	cpu_conv2d_backward_filter_f64(&cv, ax, ady, s, ws64, b64);
	within_bound("conv backward filter", g, r32, s, nw, cv.n * cv.oh * cv.ow);
	cpu_acc16_bias_backward(dy, cv.n, cv.k, cv.oh * cv.ow, g);
	cpu_bias_backward_f32(dy, cv.n, cv.k, cv.oh * cv.ow, r32);
	cpu_bias_backward_f64(ady, cv.n, cv.k, cv.oh * cv.ow, s);
	within_bound("bias backward", g, r32, s, (size_t)cv.k, cv.n * cv.oh * cv.ow);

	/* dense over the same buffers: x as [40, 40], w as [36, 40] */
	int n = 40, f = 40, u = 36;
	cpu_acc16_dense_forward(x, w, b, n, f, u, g);
	cpu_dense_forward_f32(x, w, b, n, f, u, r32);
	cpu_dense_forward_f64(ax, aw, ab, n, f, u, s);
	within_bound("dense forward", g, r32, s, (size_t)n * u, f + 1);
	cpu_acc16_dense_backward_data(dy, w, n, f, u, g);
	cpu_dense_backward_data_f32(dy, w, n, f, u, r32);
	cpu_dense_backward_data_f64(ady, aw, n, f, u, s);
	within_bound("dense backward data", g, r32, s, (size_t)n * f, u);
	cpu_acc16_dense_backward_weight(dy, x, n, f, u, g);
	cpu_dense_backward_weight_f32(dy, x, n, f, u, r32);
	cpu_dense_backward_weight_f64(ady, ax, n, f, u, s);
	within_bound("dense backward weight", g, r32, s, (size_t)u * f, n);

	/* pooling (the division by the window size is one more rounding: K + 2 covers it) */
	CpuPool p = {.n = cv.n, .c = cv.c, .h = cv.h, .w = cv.w, .kh = 3, .kw = 3, .sh = 2,
		.sw = 2, .ph = 1, .pw = 1};
	CHECK(cpu_pool_setup(&p) == 0);
	size_t np = (size_t)p.n * p.c * p.oh * p.ow;
	cpu_acc16_avgpool2d_forward(&p, x, g);
	cpu_avgpool2d_forward_f32(&p, x, r32);
	cpu_avgpool2d_forward_f64(&p, ax, s);
	within_bound("avgpool forward", g, r32, s, np, 9);
	cpu_acc16_avgpool2d_backward(&p, x, g);
	cpu_avgpool2d_backward_f32(&p, x, r32);
	cpu_avgpool2d_backward_f64(&p, ax, s);
	within_bound("avgpool backward", g, r32, s, nx, 8); /* 4 windows, 4 divisions */
	cpu_acc16_global_avgpool_forward(x, cv.n, cv.c, cv.h * cv.w, g);
	cpu_global_avgpool_forward_f32(x, cv.n, cv.c, cv.h * cv.w, r32);
	cpu_global_avgpool_forward_f64(ax, cv.n, cv.c, cv.h * cv.w, s);
	within_bound("global avgpool forward", g, r32, s, (size_t)cv.n * cv.c, cv.h * cv.w);
	printf("bound: worst |acc16 - f32| / bound = %.3f\n", worst_ratio);

	void *ps[] = {x, w, b, dy, ax, aw, ab, ady, ws32, ws64, g, r32, s};
	for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
		free(ps[i]);
}

/* Batch norm, softmax and the loss against f32 (sums of 100 to 200 terms, divisions, exp):
 * relative error of the statistics and of batch norm's parameter gradients within 2^-6,
 * probabilities within 2^-9 absolutely, the loss within 2^-7 relatively, the input gradients
 * (batch norm's dx, the loss's dlogits) within 2^-7 of their largest magnitude. Observed
 * errors are 5 to 20 times smaller (the test prints them). */
static double
max_rel(const float *a, const float *b, size_t count, bool scale_by_max)
{
	double worst = 0, m = 0;
	for (size_t i = 0; i < count; i++)
		m = fmax(m, fabs((double)b[i]));
	for (size_t i = 0; i < count; i++) {
		double d = fabs((double)a[i] - b[i]);
		double r = scale_by_max ? d / m : d / fmax(fabs((double)b[i]), 1e-30);
		worst = fmax(worst, r);
	}
	return worst;
}

static void
test_loose(void)
{
	rng_state = 5;
	int n = 8, c = 4, hw = 25;
	size_t cnt = (size_t)n * c * hw;
	float *x = rand16(cnt, 1, 3), *dy = rand16(cnt, -1, 1);
	float m16[4], i16[4], v16[4], m32[4], i32[4], v32[4], dw16[4], db16[4], dw32[4], db32[4];
	float *dx16 = xalloc(cnt, 4), *dx32 = xalloc(cnt, 4);
	cpu_acc16_batchnorm_stats(x, n, c, hw, 1e-5, m16, i16, v16);
	cpu_batchnorm_stats_f32(x, n, c, hw, 1e-5, m32, i32, v32);
	double e_stats = fmax(max_rel(m16, m32, 4, false),
		fmax(max_rel(i16, i32, 4, false), max_rel(v16, v32, 4, false)));
	/* Both backward passes from the same (f32) statistics. */
	cpu_acc16_batchnorm_backward_data(dy, x, n, c, hw, m32, i32, NULL, dx16, dw16, db16);
	cpu_batchnorm_backward_data_f32(dy, x, n, c, hw, m32, i32, NULL, dx32, dw32, db32);
	double e_dx = max_rel(dx16, dx32, cnt, true);
	double e_par = fmax(max_rel(dw16, dw32, 4, true), max_rel(db16, db32, 4, true));
	printf("loose: batchnorm stats rel %.2g, params rel %.2g, dx %.2g of max\n", e_stats,
		e_par, e_dx);
	CHECK(e_stats <= 0x1p-6);
	CHECK(e_par <= 0x1p-6);
	CHECK(e_dx <= 0x1p-7);

	int rows = 16, k = 100;
	float *l = rand16((size_t)rows * k, -4, 4), *p16 = xalloc((size_t)rows * k, 4),
	      *p32 = xalloc((size_t)rows * k, 4);
	int32_t lab[16];
	for (int r = 0; r < rows; r++)
		lab[r] = (int32_t)(rnext() % (uint64_t)k);
	cpu_acc16_softmax_forward(l, rows, k, p16);
	cpu_softmax_forward_f32(l, rows, k, p32);
	double e_p = 0;
	for (size_t i = 0; i < (size_t)rows * k; i++)
		e_p = fmax(e_p, fabs((double)p16[i] - p32[i]));
	float loss16, loss32;
	cpu_acc16_softmax_xent_forward(l, lab, rows, k, 0.1, &loss16);
	cpu_softmax_xent_forward_f32(l, lab, rows, k, 0.1, &loss32);
	double e_loss = fabs((double)loss16 - loss32) / fabs((double)loss32);
	cpu_acc16_softmax_xent_backward(l, lab, rows, k, 0.1, 1, p16);
	cpu_softmax_xent_backward_f32(l, lab, rows, k, 0.1, 1, p32);
	double e_g = max_rel(p16, p32, (size_t)rows * k, true);
	printf("loose: softmax abs %.2g, loss rel %.2g, xent grad %.2g of max\n", e_p, e_loss, e_g);
	CHECK(e_p <= 0x1p-9);
	CHECK(e_loss <= 0x1p-7);
	CHECK(e_g <= 0x1p-7);
	free(x), free(dy), free(dx16), free(dx32), free(l), free(p16), free(p32);
}

int
main(int argc, char **argv)
{
	bool all = argc > 1 && strcmp(argv[1], "all") == 0;
	struct {
		const char *name;
		void (*fn)(void);
	} groups[] = {{"reference", test_reference}, {"model", test_model},
		{"threads", test_threads}, {"bound", test_bound}, {"loose", test_loose}};
	clock_t t0 = clock();
	test_round(all);
	printf("round: %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
	for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
		clock_t t = clock();
		groups[g].fn();
		printf("%s: %.2f s\n", groups[g].name, (double)(clock() - t) / CLOCKS_PER_SEC);
	}
	printf("test_acc16: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
