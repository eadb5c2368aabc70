/* Tests of the CPU backend (runtime/cpu), in groups that CTest runs as separate entries:
 *   rng          Philox4x32-10 against Random123's known answers; stream arithmetic; a saved
 *                and restored generator and a mask drawn in pieces reproduce the same bits
 *   reference    the f64 forward kernels against naive loops written here from the
 *                definitions (convolution, pooling with padding and ties, batch norm, dense,
 *                softmax cross-entropy with label smoothing, concat, dropout statistics);
 *                batch norm folded into a convolution's weights against the batch norm
 *   gradcheck    every backward kernel, in double, against central differences of its
 *                forward kernel: dL/dx of L = sum(y * r) for a fixed random r, step 1e-5;
 *                the worst relative error max|a - n| / max(|a|, |n|, 1e-3 * max|n|) must be
 *                at most 1e-6
 *   precision    every kernel in f32 against f64 on the same (float-representable) inputs:
 *                max|f32 - f64| <= 1e-5 * max|f64| per output (float rounding over the short
 *                sums here is ~1e-7 of the magnitude; an indexing error is of order 1); and
 *                every fused kernel (epilogue, prologue) against its unfused kernels, bit for bit
 *   optim        SGD (momentum, Nesterov, weight decay), Adam, AdamW against values worked
 *                out by hand (derivations beside them), in both precisions
 *   determinism  a workload of every parallel kernel run with 1, 2 and 3 threads, and with a
 *                one-slot conv workspace, must give bit-identical f32 results
 *   workspace    conv2d run with exactly the bytes its workspace function reports (ASan
 *                catches any overrun in the sanitizer build); one byte less or a misaligned
 *                workspace must be refused with -1 and the output left untouched
 * Usage: test_cpu_kernels [GROUP...] (no argument: all). Fixed seeds; exit status 1 on any
 * failure, each reported with the kernel, the tensor and the worst element. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/cpu/kernels.h"
#include "tests/check.h"

static bool verbose; /* NNC_TEST_VERBOSE set: print each gradcheck's worst error */

/* Test memory: every allocation is recorded and released at the end of each group. */
enum { MAX_ALLOCS = 8192 };
static void *allocs[MAX_ALLOCS];
static int nallocs;

static void *
talloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p || nallocs == MAX_ALLOCS) {
		fprintf(stderr, "test_cpu_kernels: out of test memory\n");
		abort();
	}
	allocs[nallocs++] = p;
	return p;
}

static void
tfree_all(void)
{
	while (nallocs > 0)
		free(allocs[--nallocs]);
}

#define DNEW(count) ((double *)talloc((size_t)(count) * sizeof(double)))
#define FNEW(count) ((float *)talloc((size_t)(count) * sizeof(float)))

static CpuRng data_rng;

/* Uniform on [lo, hi), rounded to float so the f32 and f64 kernels can see the same values. */
static double
uni(double lo, double hi)
{
	return (float)(lo + (hi - lo) * cpu_rng_uniform(&data_rng));
}

static double *
drand(size_t count, double lo, double hi)
{
	double *x = DNEW(count);
	for (size_t i = 0; i < count; i++)
		x[i] = uni(lo, hi);
	return x;
}

static double
maxabs(const double *x, size_t count)
{
	double m = 0;
	for (size_t i = 0; i < count; i++)
		if (fabs(x[i]) > m)
			m = fabs(x[i]);
	return m;
}

/* Fails with the worst element when |got - want| > tol * max(max|want|, 1e-300). */
static void
expect_close(const char *what, const double *got, const double *want, size_t count, double tol)
{
	double scale = maxabs(want, count), worst = 0;
	size_t at = 0;
	for (size_t i = 0; i < count; i++) {
		double e = fabs(got[i] - want[i]);
		if (!(e <= worst)) {
			worst = e;
			at = i;
		}
	}
	checks++;
	if (!(worst <= tol * (scale > 1e-300 ? scale : 1e-300)))
		check_fail("%s: element %zu: got %.10g, want %.10g (error %.3g, scale %.3g)", what, at,
			got[at], want[at], worst, scale);
}

/* ---- shapes and cases -------------------------------------------------------------------- */

typedef struct {
	const char *name;
	CpuConv cv;
	bool bias;
} ConvCase;

static const ConvCase conv_cases[] = {
	{"3x3 s1 p1", {.n = 2, .c = 3, .h = 6, .w = 6, .k = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
		.ph = 1, .pw = 1, .groups = 1}, true},
	{"3x2 s2 p(1,0)", {.n = 2, .c = 2, .h = 7, .w = 6, .k = 3, .kh = 3, .kw = 2, .sh = 2,
		.sw = 2, .ph = 1, .pw = 0, .groups = 1}, true},
	{"5x5 s(2,1) p2", {.n = 1, .c = 2, .h = 7, .w = 5, .k = 2, .kh = 5, .kw = 5, .sh = 2,
		.sw = 1, .ph = 2, .pw = 2, .groups = 1}, false},
	{"7x7 s2 p3 on 5x5", {.n = 2, .c = 1, .h = 5, .w = 5, .k = 2, .kh = 7, .kw = 7, .sh = 2,
		.sw = 2, .ph = 3, .pw = 3, .groups = 1}, true},
	{"grouped g2 3x3 p1", {.n = 2, .c = 4, .h = 5, .w = 5, .k = 6, .kh = 3, .kw = 3, .sh = 1,
		.sw = 1, .ph = 1, .pw = 1, .groups = 2}, true},
	{"depthwise 3x3 s2 p1", {.n = 2, .c = 4, .h = 7, .w = 7, .k = 4, .kh = 3, .kw = 3, .sh = 2,
		.sw = 2, .ph = 1, .pw = 1, .groups = 4}, true},
	{"depthwise x2 3x1 s(1,2) p(1,0)", {.n = 2, .c = 3, .h = 5, .w = 6, .k = 6, .kh = 3,
		.kw = 1, .sh = 1, .sw = 2, .ph = 1, .pw = 0, .groups = 3}, false},
	{"pointwise 1x1", {.n = 2, .c = 4, .h = 4, .w = 3, .k = 5, .kh = 1, .kw = 1, .sh = 1,
		.sw = 1, .groups = 1}, true},
	{"pointwise 1x1 g2", {.n = 2, .c = 4, .h = 3, .w = 3, .k = 6, .kh = 1, .kw = 1, .sh = 1,
		.sw = 1, .groups = 2}, false},
	{"1x1 s2 projection", {.n = 3, .c = 3, .h = 6, .w = 5, .k = 4, .kh = 1, .kw = 1, .sh = 2,
		.sw = 2, .groups = 1}, false},
	/* More images than the 8 fixed ranges of backward-filter; the flipped backward-data
	 * convolution with a non-square plane, and with padding 0 (its own padding 2). */
	{"3x3 s1 p1 batch 10", {.n = 10, .c = 2, .h = 4, .w = 5, .k = 3, .kh = 3, .kw = 3,
		.sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 1}, false},
	{"3x3 s1 p0", {.n = 2, .c = 2, .h = 5, .w = 6, .k = 3, .kh = 3, .kw = 3, .sh = 1,
		.sw = 1, .groups = 1}, true},
};
enum { NCONV = sizeof conv_cases / sizeof conv_cases[0] };


/* A workspace big enough for all three passes. */
static size_t
conv_ws_max_f32(const CpuConv *cv)
{
	size_t most = 0;
	for (int ps = 0; ps < 3; ps++) {
		size_t b = cpu_conv2d_workspace_f32(cv, (CpuConvPass)ps, 0);
		most = b > most ? b : most;
	}
	return most;
}

static size_t
conv_ws_max_f64(const CpuConv *cv)
{
	size_t most = 0;
	for (int ps = 0; ps < 3; ps++) {
		size_t b = cpu_conv2d_workspace_f64(cv, (CpuConvPass)ps, 0);
		most = b > most ? b : most;
	}
	return most;
}

static CpuConv
conv_case(int i)
{
	CpuConv cv = conv_cases[i].cv;
	if (cpu_conv_setup(&cv) != 0) {
		check_fail("conv case %s: cpu_conv_setup refused it", conv_cases[i].name);
		exit(1);
	}
	return cv;
}

typedef struct {
	const char *name;
	CpuPool p;
} PoolCase;

static const PoolCase pool_cases[] = {
	{"k3 s2 p1", {.n = 2, .c = 2, .h = 7, .w = 7, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1,
		.pw = 1}},
	{"k2 s2", {.n = 2, .c = 3, .h = 6, .w = 5, .kh = 2, .kw = 2, .sh = 2, .sw = 2}},
	{"k3x2 s(2,1) p1", {.n = 1, .c = 2, .h = 6, .w = 5, .kh = 3, .kw = 2, .sh = 2, .sw = 1,
		.ph = 1, .pw = 1}},
	{"k3 s1 p1 overlapping", {.n = 1, .c = 2, .h = 5, .w = 4, .kh = 3, .kw = 3, .sh = 1,
		.sw = 1, .ph = 1, .pw = 1}},
};
enum { NPOOL = sizeof pool_cases / sizeof pool_cases[0] };

static CpuPool
pool_case(int i)
{
	CpuPool p = pool_cases[i].p;
	if (cpu_pool_setup(&p) != 0) {
		check_fail("pool case %s: cpu_pool_setup refused it", pool_cases[i].name);
		exit(1);
	}
	return p;
}

static size_t
pool_in(const CpuPool *p)
{
	return (size_t)p->n * p->c * p->h * p->w;
}

static size_t
pool_out(const CpuPool *p)
{
	return (size_t)p->n * p->c * p->oh * p->ow;
}

/* ---- naive references, straight from the definitions ------------------------------------- */

static void
naive_conv(const CpuConv *cv, const double *x, const double *w, const double *b, double *y)
{
	int cg = cv->c / cv->groups, kg = cv->k / cv->groups;
	for (int n = 0; n < cv->n; n++)
		for (int co = 0; co < cv->k; co++)
			for (int oy = 0; oy < cv->oh; oy++)
				for (int ox = 0; ox < cv->ow; ox++) {
					double s = b ? b[co] : 0;
					for (int ci = 0; ci < cg; ci++)
						for (int i = 0; i < cv->kh; i++)
							for (int j = 0; j < cv->kw; j++) {
								int iy = oy * cv->sh - cv->ph + i, ix = ox * cv->sw - cv->pw + j;
								if (iy < 0 || iy >= cv->h || ix < 0 || ix >= cv->w)
									continue;
								int cin = co / kg * cg + ci;
								s += w[((co * cg + ci) * cv->kh + i) * cv->kw + j] *
									x[(((size_t)n * cv->c + cin) * cv->h + iy) * cv->w + ix];
							}
					y[(((size_t)n * cv->k + co) * cv->oh + oy) * cv->ow + ox] = s;
				}
}

/* Max (first in scan order on ties, with its index) or count_include_pad average. */
static void
naive_pool(const CpuPool *p, const double *x, bool max, double *y, long *argmax)
{
	for (int pl = 0; pl < p->n * p->c; pl++)
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				double best = -INFINITY, sum = 0;
				long arg = -1;
				for (int i = 0; i < p->kh; i++)
					for (int j = 0; j < p->kw; j++) {
						int iy = oy * p->sh - p->ph + i, ix = ox * p->sw - p->pw + j;
						if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w)
							continue;
						long at = ((long)pl * p->h + iy) * p->w + ix;
						sum += x[at];
						if (arg < 0 || x[at] > best) {
							best = x[at];
							arg = at;
						}
					}
				size_t o = ((size_t)pl * p->oh + oy) * p->ow + ox;
				y[o] = max ? best : sum / (p->kh * p->kw);
				if (argmax)
					argmax[o] = arg;
			}
}

/* ---- rng --------------------------------------------------------------------------------- */

static void
test_rng(void)
{
	/* Random123 kat_vectors, the three philox4x32 10 lines: counter, key, expected output. */
	static const uint32_t kat[3][10] = {
		{0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
		{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
			0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
		{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
			0x94fdcceb, 0x5001e420, 0x24126ea1},
	};
	for (int t = 0; t < 3; t++) {
		uint32_t out[4];
		cpu_philox4x32_10(kat[t], kat[t] + 4, out);
		for (int i = 0; i < 4; i++)
			CHECK(out[i] == kat[t][6 + i]);
	}

	CpuRng r, saved;
	cpu_rng_seed(&r, 0x0123456789abcdefull);
	uint32_t first[11];
	for (int i = 0; i < 11; i++)
		first[i] = cpu_rng_at(&r, (uint64_t)i);
	for (int i = 0; i < 11; i++)
		CHECK(cpu_rng_next(&r) == first[i]);
	saved = r;
	uint32_t a = cpu_rng_next(&r), b = cpu_rng_next(&r);
	r = saved;
	CHECK(cpu_rng_next(&r) == a && cpu_rng_next(&r) == b);
	cpu_rng_skip(&r, 1000);
	CHECK(r.counter == saved.counter + 1002);

	/* Uniforms: all in [0, 1), mean near 1/2. */
	double s = 0;
	bool in_range = true;
	for (int i = 0; i < 20000; i++) {
		double u = cpu_rng_uniform(&r);
		in_range = in_range && u >= 0 && u < 1;
		s += u;
	}
	CHECK(in_range && fabs(s / 20000 - 0.5) < 0.01);

	/* A dropout mask drawn in two calls equals one drawn at once (the stream continues), at
	 * any thread count. */
	enum { N = 50001, CUT = 12345 };
	float *whole = FNEW(N), *parts = FNEW(N);
	CpuRng r1, r2;
	cpu_rng_seed(&r1, 7);
	cpu_rng_seed(&r2, 7);
	cpu_threads_init(2);
	cpu_dropout_mask_f32(&r1, 0.3, whole, N);
	cpu_threads_init(1);
	cpu_dropout_mask_f32(&r2, 0.3, parts, CUT);
	cpu_dropout_mask_f32(&r2, 0.3, parts + CUT, N - CUT);
	CHECK(memcmp(whole, parts, N * sizeof(float)) == 0);
	CHECK(r1.counter == N && r2.counter == N);
	tfree_all();
}

/* ---- reference --------------------------------------------------------------------------- */

static void
test_reference(void)
{
	char what[160];
	for (int t = 0; t < NCONV; t++) {
		CpuConv cv = conv_case(t);
		double *x = drand(cpu_conv_x_numel(&cv), -1, 1), *w = drand(cpu_conv_w_numel(&cv), -1, 1);
		double *b = conv_cases[t].bias ? drand((size_t)cv.k, -1, 1) : NULL;
		double *y = DNEW(cpu_conv_y_numel(&cv)), *want = DNEW(cpu_conv_y_numel(&cv));
		size_t wsb = cpu_conv2d_workspace_f64(&cv, CPU_CONV_FORWARD, 0);
		void *ws = wsb ? talloc(wsb) : NULL;
		CHECK(cpu_conv2d_forward_f64(&cv, x, w, b, y, ws, wsb) == 0);
		naive_conv(&cv, x, w, b, want);
		snprintf(what, sizeof what, "conv2d_forward_f64 [%s] vs naive", conv_cases[t].name);
		expect_close(what, y, want, cpu_conv_y_numel(&cv), 1e-13);
		/* Batch norm folded into the weights and bias == the inference batch norm of the
		 * convolution (with and without affine parameters). */
		double *rm = drand((size_t)cv.k, -1, 1), *rv = drand((size_t)cv.k, 0.1, 2);
		double *sc = drand((size_t)cv.k, 0.5, 1.5), *sh = drand((size_t)cv.k, -1, 1);
		double *wf = DNEW(cpu_conv_w_numel(&cv)), *bf = DNEW(cv.k), *folded = DNEW(cpu_conv_y_numel(&cv));
		for (int affine = 0; affine < 2; affine++) {
			const double *s = affine ? sc : NULL, *h = affine ? sh : NULL;
			cpu_batchnorm_inference_f64(y, cv.n, cv.k, cv.oh * cv.ow, rm, rv, 1e-3, s, h, want, EPI_NONE);
			cpu_batchnorm_fold_weight_f64(w, cv.k, cpu_conv_w_numel(&cv) / (size_t)cv.k, rv, 1e-3, s, wf);
			cpu_batchnorm_fold_bias_f64(cv.k, rm, rv, 1e-3, s, h, b, bf);
			CHECK(cpu_conv2d_forward_f64(&cv, x, wf, bf, folded, ws, wsb) == 0);
			snprintf(what, sizeof what, "conv2d with batch norm folded [%s]%s", conv_cases[t].name,
				affine ? " affine" : "");
			expect_close(what, folded, want, cpu_conv_y_numel(&cv), 1e-12);
		}
	}

	for (int t = 0; t < NPOOL; t++) {
		CpuPool p = pool_case(t);
		double *x = drand(pool_in(&p), -1, 1), *y = DNEW(pool_out(&p)),
			*want = DNEW(pool_out(&p));
		cpu_maxpool2d_forward_f64(&p, x, y);
		naive_pool(&p, x, true, want, NULL);
		snprintf(what, sizeof what, "maxpool2d_forward_f64 [%s] vs naive", pool_cases[t].name);
		expect_close(what, y, want, pool_out(&p), 0);
		cpu_avgpool2d_forward_f64(&p, x, y);
		naive_pool(&p, x, false, want, NULL);
		snprintf(what, sizeof what, "avgpool2d_forward_f64 [%s] vs naive", pool_cases[t].name);
		expect_close(what, y, want, pool_out(&p), 1e-15);
	}

	/* Channels-last pooling (CpuPool.nhwc: the strided planes of the average pools, the
	 * channel-vector max pools) gives the NCHW kernels' bits on the transposed tensors, forward
	 * and backward, with ties (values from a small set) and a NaN. */
	for (int t = 0; t < NPOOL; t++) {
		CpuPool p = pool_case(t), q = p;
		q.nhwc = true;
		size_t ni = pool_in(&p), no = pool_out(&p);
		int hw = p.h * p.w, ohw = p.oh * p.ow;
		double *x = DNEW(ni), *dy = drand(no, -1, 1), *xt = DNEW(ni), *dyt = DNEW(no);
		double *y = DNEW(no), *yt = DNEW(no), *dx = DNEW(ni), *dxt = DNEW(ni);
		for (size_t i = 0; i < ni; i++)
			x[i] = (double)((i * 7 + 3) % 4);
		x[ni / 2] = NAN;
		for (int img = 0; img < p.n; img++)
			for (int ch = 0; ch < p.c; ch++) {
				for (int e = 0; e < hw; e++)
					xt[((size_t)img * hw + e) * p.c + ch] = x[((size_t)img * p.c + ch) * hw + e];
				for (int e = 0; e < ohw; e++)
					dyt[((size_t)img * ohw + e) * p.c + ch] = dy[((size_t)img * p.c + ch) * ohw + e];
			}
		for (int kind = 0; kind < 2; kind++) {
			if (kind) {
				cpu_avgpool2d_forward_f64(&p, x, y);
				cpu_avgpool2d_forward_f64(&q, xt, yt);
				cpu_avgpool2d_backward_f64(&p, dy, dx);
				cpu_avgpool2d_backward_f64(&q, dyt, dxt);
			} else {
				cpu_maxpool2d_forward_f64(&p, x, y);
				cpu_maxpool2d_forward_f64(&q, xt, yt);
				cpu_maxpool2d_backward_f64(&p, x, dy, dx);
				cpu_maxpool2d_backward_f64(&q, xt, dyt, dxt);
			}
			bool same_y = true, same_dx = true;
			for (int img = 0; img < p.n; img++)
				for (int ch = 0; ch < p.c; ch++) {
					for (int e = 0; e < ohw; e++) {
						double a = y[((size_t)img * p.c + ch) * ohw + e], b = yt[((size_t)img * ohw + e) * p.c + ch];
						same_y &= a == b || (isnan(a) && isnan(b));
					}
					for (int e = 0; e < hw; e++)
						same_dx &= dx[((size_t)img * p.c + ch) * hw + e] == dxt[((size_t)img * hw + e) * p.c + ch];
				}
			snprintf(what, sizeof what, "%s nhwc forward [%s]: the nchw bits", kind ? "avgpool" : "maxpool",
				pool_cases[t].name);
			checks++;
			if (!same_y)
				check_fail("%s", what);
			snprintf(what, sizeof what, "%s nhwc backward [%s]: the nchw bits", kind ? "avgpool" : "maxpool",
				pool_cases[t].name);
			checks++;
			if (!same_dx)
				check_fail("%s", what);
		}
	}

	/* Max-pool ties: on a plane of equal values each dy goes to its window's first element
	 * in scan order (the top-left valid tap), as PyTorch's backward does. */
	{
		CpuPool p = pool_case(3);
		double *x = DNEW(pool_in(&p)), *dy = drand(pool_out(&p), 0.5, 1), *dx = DNEW(pool_in(&p));
		double *want = DNEW(pool_in(&p)), *y = DNEW(pool_out(&p));
		long *arg = talloc(pool_out(&p) * sizeof(long));
		for (size_t i = 0; i < pool_in(&p); i++)
			x[i] = 2.5;
		naive_pool(&p, x, true, y, arg);
		for (size_t o = 0; o < pool_out(&p); o++)
			want[arg[o]] += dy[o];
		cpu_maxpool2d_backward_f64(&p, x, dy, dx);
		expect_close("maxpool2d_backward_f64 ties go to the first maximum", dx, want, pool_in(&p),
			1e-15);
	}

	/* Batch norm on [3, 2, 5]: statistics, normalization, the running update and inference. */
	{
		enum { N = 3, C = 2, HW = 5 };
		double *x = drand(N * C * HW, -2, 3), *w = drand(C, 0.5, 1.5), *b = drand(C, -1, 1);
		double mean[C], invstd[C], varu[C], want_y[N * C * HW], y[N * C * HW];
		CHECK(cpu_batchnorm_stats_f64(x, N, C, HW, 1e-5, mean, invstd, varu) == 0);
		double rm[C] = {0.5, -0.25}, rv[C] = {2, 0.5}, rm0[C] = {0.5, -0.25}, rv0[C] = {2, 0.5};
		cpu_batchnorm_update_running_f64(C, 0.1, mean, varu, rm, rv);
		for (int c = 0; c < C; c++) {
			double s = 0, ss = 0;
			for (int n = 0; n < N; n++)
				for (int i = 0; i < HW; i++)
					s += x[(n * C + c) * HW + i];
			double m = s / (N * HW);
			for (int n = 0; n < N; n++)
				for (int i = 0; i < HW; i++)
					ss += pow(x[(n * C + c) * HW + i] - m, 2);
			double var = ss / (N * HW);
			CHECK(fabs(mean[c] - m) < 1e-14);
			CHECK(fabs(invstd[c] - 1 / sqrt(var + 1e-5)) < 1e-12);
			CHECK(fabs(varu[c] - ss / (N * HW - 1)) < 1e-14);
			CHECK(fabs(rm[c] - (0.9 * rm0[c] + 0.1 * m)) < 1e-14);
			CHECK(fabs(rv[c] - (0.9 * rv0[c] + 0.1 * ss / (N * HW - 1))) < 1e-14);
			for (int n = 0; n < N; n++)
				for (int i = 0; i < HW; i++) {
					int e = (n * C + c) * HW + i;
					want_y[e] = (x[e] - m) / sqrt(var + 1e-5) * w[c] + b[c];
				}
		}
		cpu_batchnorm_apply_f64(x, N, C, HW, mean, invstd, w, b, y, EPI_NONE);
		expect_close("batchnorm_apply_f64 vs definition", y, want_y, N * C * HW, 1e-13);
		cpu_batchnorm_inference_f64(x, N, C, HW, rm, rv, 1e-3, NULL, NULL, y, EPI_NONE);
		for (int e = 0; e < N * C * HW; e++)
			want_y[e] = (x[e] - rm[e / HW % C]) / sqrt(rv[e / HW % C] + 1e-3);
		expect_close("batchnorm_inference_f64 (no affine) vs definition", y, want_y, N * C * HW,
			1e-13);
		CHECK(cpu_batchnorm_stats_f64(x, 1, C, 1, 1e-5, mean, invstd, varu) == -1);
		CHECK(cpu_batchnorm_stats_f64(x, 1, C, 1, 1e-5, mean, invstd, NULL) == 0);
	}

	/* Dense, softmax, cross-entropy with label smoothing, top-1 counting. */
	{
		enum { N = 4, F = 5, U = 3 };
		double *x = drand(N * F, -1, 1), *w = drand(U * F, -1, 1), *b = drand(U, -1, 1);
		double y[N * U], want[N * U];
		cpu_dense_forward_f64(x, w, b, N, F, U, y);
		for (int n = 0; n < N; n++)
			for (int u = 0; u < U; u++) {
				want[n * U + u] = b[u];
				for (int f = 0; f < F; f++)
					want[n * U + u] += x[n * F + f] * w[u * F + f];
			}
		expect_close("dense_forward_f64 vs definition", y, want, N * U, 1e-14);

		const int32_t labels[N] = {2, 0, 1, 2};
		for (int e = 0; e < 3; e++) {
			double eps = e * 0.15, loss, want_loss = 0;
			CHECK(cpu_softmax_xent_forward_f64(y, labels, N, U, eps, &loss) == 0);
			for (int n = 0; n < N; n++) {
				double z = 0;
				for (int u = 0; u < U; u++)
					z += exp(y[n * U + u]);
				for (int u = 0; u < U; u++) {
					double nlp = -log(exp(y[n * U + u]) / z);
					want_loss += ((u == labels[n]) * (1 - eps) + eps / U) * nlp / N;
				}
			}
			snprintf(what, sizeof what, "softmax_xent_forward_f64 eps %.2f vs definition", eps);
			expect_close(what, &loss, &want_loss, 1, 1e-14);
		}
		double p[N * U];
		cpu_softmax_forward_f64(y, N, U, p);
		for (int n = 0; n < N; n++) {
			double z = 0;
			for (int u = 0; u < U; u++)
				z += exp(y[n * U + u]);
			for (int u = 0; u < U; u++)
				want[n * U + u] = exp(y[n * U + u]) / z;
		}
		expect_close("softmax_forward_f64 vs definition", p, want, N * U, 1e-15);

		double logits[3 * 4] = {0, 1, 3, 3, /* tie: first max is class 2 */ 5, 0, 0, 0,
			-1, -2, -3, -0.5};
		const int32_t lab[3] = {2, 1, 3}, bad[3] = {2, 4, 0};
		CHECK(cpu_count_correct_f64(logits, lab, 3, 4) == 2);
		CHECK(cpu_count_correct_f64(logits, bad, 3, 4) == -1);
		double loss = 42;
		CHECK(cpu_softmax_xent_forward_f64(logits, bad, 3, 4, 0, &loss) == -1 && loss == 42);
	}

	/* GELU at known points (x * Phi(x)), relu6 clamps. */
	{
		double x[4] = {-1, 0, 1, 2}, y[4];
		double want[4] = {-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416};
		cpu_gelu_forward_f64(x, y, 4);
		expect_close("gelu_forward_f64 at -1, 0, 1, 2", y, want, 4, 1e-15);
		double r[4] = {-3, 2, 6, 9}, r6[4], want6[4] = {0, 2, 6, 6};
		cpu_relu6_forward_f64(r, r6, 4);
		expect_close("relu6_forward_f64", r6, want6, 4, 0);
	}

	/* Concat of [2, {2,1,3}, 3] along channels, element by element. */
	{
		const int cs[3] = {2, 1, 3};
		double *xs[3], y[2 * 6 * 3];
		for (int i = 0; i < 3; i++)
			xs[i] = drand(2 * (size_t)cs[i] * 3, -1, 1);
		cpu_concat_forward_f64(3, (const double *const *)xs, cs, 2, 3, y);
		bool same = true;
		for (int n = 0; n < 2; n++)
			for (int c = 0, in = 0, base = 0; c < 6; c++) {
				if (c - base >= cs[in])
					base += cs[in++];
				for (int i = 0; i < 3; i++)
					same = same && y[(n * 6 + c) * 3 + i] == xs[in][(n * cs[in] + c - base) * 3 + i];
			}
		CHECK(same);
	}

	/* Dropout: about p of the mask is 0, the rest exactly 1 / (1 - p); p = 0 and 1 degenerate. */
	{
		enum { N = 100000 };
		double *m = DNEW(N);
		CpuRng r;
		cpu_rng_seed(&r, 99);
		cpu_dropout_mask_f64(&r, 0.2, m, N);
		long zeros = 0, other = 0;
		for (int i = 0; i < N; i++) {
			zeros += m[i] == 0;
			other += m[i] != 0 && m[i] != 1 / (1 - 0.2);
		}
		CHECK(other == 0 && labs(zeros - N / 5) < 600);
		cpu_dropout_mask_f64(&r, 0, m, 1000);
		cpu_dropout_mask_f64(&r, 1, m + 1000, 1000);
		bool ok = true;
		for (int i = 0; i < 1000; i++)
			ok = ok && m[i] == 1 && m[1000 + i] == 0;
		CHECK(ok);
	}

	/* Shape validation. */
	{
		CpuConv bad = {.n = 1, .c = 3, .h = 4, .w = 4, .k = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
			.groups = 2};
		CHECK(cpu_conv_setup(&bad) == -1);
		bad.groups = 1;
		bad.kh = 7;
		CHECK(cpu_conv_setup(&bad) == -1);
		CpuPool badp = {.n = 1, .c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 2};
		CHECK(cpu_pool_setup(&badp) == -1);
	}
	tfree_all();
}

/* ---- gradcheck --------------------------------------------------------------------------- */

typedef void ForwardFn(void *ctx, double *y);

static const double GRAD_STEP = 1e-5, GRAD_TOL = 1e-6;

/* Compares analytic = dL/dx, L = sum(y(x) * r), with central differences, perturbing x in
 * place (the forward reads it through ctx). */
static void
gradcheck(const char *kernel, const char *tensor, ForwardFn *fwd, void *ctx, size_t ny,
	const double *r, double *x, size_t nx, const double *analytic)
{
	double *y = DNEW(ny), *num = DNEW(nx);
	for (size_t e = 0; e < nx; e++) {
		double save = x[e], lp = 0, lm = 0;
		x[e] = save + GRAD_STEP;
		fwd(ctx, y);
		for (size_t i = 0; i < ny; i++)
			lp += y[i] * r[i];
		x[e] = save - GRAD_STEP;
		fwd(ctx, y);
		for (size_t i = 0; i < ny; i++)
			lm += y[i] * r[i];
		x[e] = save;
		num[e] = (lp - lm) / (2 * GRAD_STEP);
	}
	double floor = 1e-3 * maxabs(num, nx), worst = 0;
	size_t at = 0;
	for (size_t e = 0; e < nx; e++) {
		double denom = fmax(fmax(fabs(analytic[e]), fabs(num[e])), floor);
		double err = denom > 0 ? fabs(analytic[e] - num[e]) / denom : 0;
		if (!(err <= worst)) {
			worst = err;
			at = e;
		}
	}
	checks++;
	if (verbose)
		printf("  gradcheck %-60s d%-6s worst relative error %.2e\n", kernel, tensor, worst);
	if (!(worst <= GRAD_TOL))
		check_fail("gradcheck %s d%s: worst element %zu of %zu: analytic %.12g, numeric %.12g, "
			"relative error %.3g > %.0e", kernel, tensor, at, nx, analytic[at], num[at], worst,
			GRAD_TOL);
}

static double *
cotangent(size_t ny)
{
	return drand(ny, -1, 1);
}

typedef struct {
	const CpuConv *cv;
	double *x, *w, *b;
	void *ws;
	size_t wsb;
} ConvCtx;

static void
conv_fwd(void *ctx, double *y)
{
	ConvCtx *c = ctx;
	if (cpu_conv2d_forward_f64(c->cv, c->x, c->w, c->b, y, c->ws, c->wsb) != 0)
		check_fail("conv2d_forward_f64 refused its workspace");
}

static void
grad_conv(void)
{
	char name[160];
	for (int t = 0; t < NCONV; t++) {
		CpuConv cv = conv_case(t);
		ConvCtx c = {.cv = &cv, .x = drand(cpu_conv_x_numel(&cv), -1, 1), .w = drand(cpu_conv_w_numel(&cv), -1, 1),
			.b = conv_cases[t].bias ? drand((size_t)cv.k, -1, 1) : NULL};
		c.wsb = conv_ws_max_f64(&cv);
		c.ws = c.wsb ? talloc(c.wsb) : NULL;
		size_t ny = cpu_conv_y_numel(&cv);
		double *r = cotangent(ny), *dx = DNEW(cpu_conv_x_numel(&cv)), *dw = DNEW(cpu_conv_w_numel(&cv));
		CHECK(cpu_conv2d_backward_data_f64(&cv, r, c.w, dx, c.ws, c.wsb) == 0);
		CHECK(cpu_conv2d_backward_filter_f64(&cv, c.x, r, dw, c.ws, c.wsb) == 0);
		snprintf(name, sizeof name, "conv2d_backward_data_f64 [%s]", conv_cases[t].name);
		gradcheck(name, "x", conv_fwd, &c, ny, r, c.x, cpu_conv_x_numel(&cv), dx);
		snprintf(name, sizeof name, "conv2d_backward_filter_f64 [%s]", conv_cases[t].name);
		gradcheck(name, "w", conv_fwd, &c, ny, r, c.w, cpu_conv_w_numel(&cv), dw);
		if (c.b) {
			double *db = DNEW(cv.k);
			cpu_bias_backward_f64(r, cv.n, cv.k, cv.oh * cv.ow, db);
			snprintf(name, sizeof name, "bias_backward_f64 [conv %s]", conv_cases[t].name);
			gradcheck(name, "b", conv_fwd, &c, ny, r, c.b, (size_t)cv.k, db);
		}
	}
}

typedef struct {
	int n, c, hw;
	double *x, *w, *b, *mean, *invstd;
} BnCtx;

static void
bn_fwd(void *ctx, double *y)
{
	BnCtx *c = ctx;
	cpu_batchnorm_stats_f64(c->x, c->n, c->c, c->hw, 1e-5, c->mean, c->invstd, NULL);
	cpu_batchnorm_apply_f64(c->x, c->n, c->c, c->hw, c->mean, c->invstd, c->w, c->b, y, EPI_NONE);
}

static void
grad_batchnorm(void)
{
	static const struct {
		const char *name;
		int n, c, hw;
		bool affine;
	} cases[] = {
		{"[3,2,4x3] affine", 3, 2, 12, true},
		{"[3,2,4x3] no affine", 3, 2, 12, false},
		{"[6,3] affine", 6, 3, 1, true},
	};
	char name[160];
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		int n = cases[t].n, c = cases[t].c, hw = cases[t].hw;
		size_t count = (size_t)n * c * hw;
		BnCtx b = {.n = n, .c = c, .hw = hw, .x = drand(count, -2, 3), .mean = DNEW(c),
			.invstd = DNEW(c)};
		if (cases[t].affine) {
			b.w = drand((size_t)c, 0.5, 1.5);
			b.b = drand((size_t)c, -1, 1);
		}
		double *r = cotangent(count), *y = DNEW(count), *dx = DNEW(count);
		double *dw = DNEW(c), *db = DNEW(c), *dw2 = DNEW(c), *db2 = DNEW(c);
		bn_fwd(&b, y);
		cpu_batchnorm_backward_data_f64(r, b.x, n, c, hw, b.mean, b.invstd, b.w, dx, dw2, db2);
		cpu_batchnorm_backward_params_f64(r, b.x, n, c, hw, b.mean, b.invstd, dw, db);
		CHECK(memcmp(dw, dw2, (size_t)c * sizeof *dw) == 0);
		CHECK(memcmp(db, db2, (size_t)c * sizeof *db) == 0);
		snprintf(name, sizeof name, "batchnorm_backward_data_f64 %s", cases[t].name);
		gradcheck(name, "x", bn_fwd, &b, count, r, b.x, count, dx);
		if (cases[t].affine) {
			snprintf(name, sizeof name, "batchnorm_backward_params_f64 %s", cases[t].name);
			gradcheck(name, "w", bn_fwd, &b, count, r, b.w, (size_t)c, dw);
			gradcheck(name, "b", bn_fwd, &b, count, r, b.b, (size_t)c, db);
		}
	}
}

typedef struct {
	void (*fwd)(const double *, double *, size_t);
	double *x;
	size_t count;
} UnaryCtx;

static void
unary_fwd(void *ctx, double *y)
{
	UnaryCtx *c = ctx;
	c->fwd(c->x, y, c->count);
}

static void
grad_activations(void)
{
	enum { N = 64 };
	static const struct {
		const char *name;
		void (*fwd)(const double *, double *, size_t);
		void (*bwd)(const double *, const double *, double *, size_t);
		bool given_y;
		double lo, hi;
	} acts[] = {
		{"relu_backward_f64", cpu_relu_forward_f64, cpu_relu_backward_f64, false, -1, 1},
		{"relu6_backward_f64", cpu_relu6_forward_f64, cpu_relu6_backward_f64, false, -2, 8},
		{"gelu_backward_f64", cpu_gelu_forward_f64, cpu_gelu_backward_f64, false, -4, 4},
		{"tanh_backward_f64 (given y)", cpu_tanh_forward_f64, cpu_tanh_backward_f64, true, -3, 3},
	};
	for (size_t t = 0; t < sizeof acts / sizeof acts[0]; t++) {
		UnaryCtx c = {.fwd = acts[t].fwd, .x = drand(N, acts[t].lo, acts[t].hi), .count = N};
		double *r = cotangent(N), *y = DNEW(N), *dx = DNEW(N);
		acts[t].fwd(c.x, y, N);
		acts[t].bwd(acts[t].given_y ? y : c.x, r, dx, N);
		gradcheck(acts[t].name, "x", unary_fwd, &c, N, r, c.x, N, dx);
	}
}

typedef struct {
	const CpuPool *p;
	double *x;
	bool max;
} PoolCtx;

static void
pool_fwd(void *ctx, double *y)
{
	PoolCtx *c = ctx;
	if (c->max)
		cpu_maxpool2d_forward_f64(c->p, c->x, y);
	else
		cpu_avgpool2d_forward_f64(c->p, c->x, y);
}

typedef struct {
	int n, c, hw;
	double *x;
} GapCtx;

static void
gap_fwd(void *ctx, double *y)
{
	GapCtx *c = ctx;
	cpu_global_avgpool_forward_f64(c->x, c->n, c->c, c->hw, y);
}

static void
grad_pooling(void)
{
	char name[160];
	for (int t = 0; t < NPOOL; t++) {
		CpuPool p = pool_case(t);
		double *r = cotangent(pool_out(&p)), *dx = DNEW(pool_in(&p));
		PoolCtx c = {.p = &p, .x = drand(pool_in(&p), -1, 1), .max = true};
		cpu_maxpool2d_backward_f64(&p, c.x, r, dx);
		snprintf(name, sizeof name, "maxpool2d_backward_f64 [%s]", pool_cases[t].name);
		gradcheck(name, "x", pool_fwd, &c, pool_out(&p), r, c.x, pool_in(&p), dx);
		c.max = false;
		cpu_avgpool2d_backward_f64(&p, r, dx);
		snprintf(name, sizeof name, "avgpool2d_backward_f64 [%s]", pool_cases[t].name);
		gradcheck(name, "x", pool_fwd, &c, pool_out(&p), r, c.x, pool_in(&p), dx);
	}
	GapCtx g = {.n = 2, .c = 3, .hw = 10, .x = drand(60, -1, 1)};
	double *r = cotangent(6), *dx = DNEW(60);
	cpu_global_avgpool_backward_f64(r, 2, 3, 10, dx);
	gradcheck("global_avgpool_backward_f64", "x", gap_fwd, &g, 6, r, g.x, 60, dx);
}

typedef struct {
	int n, f, u;
	double *x, *w, *b;
} DenseCtx;

static void
dense_fwd(void *ctx, double *y)
{
	DenseCtx *c = ctx;
	cpu_dense_forward_f64(c->x, c->w, c->b, c->n, c->f, c->u, y);
}

typedef struct {
	int n, k;
	double *x, eps;
	const int32_t *labels;
} XentCtx;

static void
softmax_fwd(void *ctx, double *y)
{
	XentCtx *c = ctx;
	cpu_softmax_forward_f64(c->x, c->n, c->k, y);
}

static void
xent_fwd(void *ctx, double *y)
{
	XentCtx *c = ctx;
	if (cpu_softmax_xent_forward_f64(c->x, c->labels, c->n, c->k, c->eps, y) != 0)
		check_fail("softmax_xent_forward_f64 refused valid labels");
}

static void
grad_dense_softmax(void)
{
	/* 37 rows: more than two DENSE_ROWS blocks, the last one partial; 40 features: two
	 * weight-gradient column blocks. */
	DenseCtx d = {.n = 37, .f = 40, .u = 3};
	d.x = drand((size_t)d.n * d.f, -1, 1);
	d.w = drand((size_t)d.u * d.f, -1, 1);
	d.b = drand((size_t)d.u, -1, 1);
	size_t ny = (size_t)d.n * d.u;
	double *r = cotangent(ny), *dx = DNEW((size_t)d.n * d.f), *dw = DNEW((size_t)d.u * d.f),
		*db = DNEW(d.u);
	cpu_dense_backward_data_f64(r, d.w, d.n, d.f, d.u, dx);
	cpu_dense_backward_weight_f64(r, d.x, d.n, d.f, d.u, dw);
	cpu_bias_backward_f64(r, d.n, d.u, 1, db);
	gradcheck("dense_backward_data_f64", "x", dense_fwd, &d, ny, r, d.x, (size_t)d.n * d.f, dx);
	gradcheck("dense_backward_weight_f64", "w", dense_fwd, &d, ny, r, d.w, (size_t)d.u * d.f, dw);
	gradcheck("bias_backward_f64 [dense]", "b", dense_fwd, &d, ny, r, d.b, (size_t)d.u, db);

	enum { N = 5, K = 7 };
	static const int32_t labels[N] = {0, 6, 3, 3, 1};
	XentCtx s = {.n = N, .k = K, .x = drand(N * K, -3, 3), .labels = labels};
	double *rs = cotangent(N * K), *y = DNEW(N * K), *dxs = DNEW(N * K);
	cpu_softmax_forward_f64(s.x, N, K, y);
	cpu_softmax_backward_f64(y, rs, N, K, dxs);
	gradcheck("softmax_backward_f64 (given y)", "x", softmax_fwd, &s, N * K, rs, s.x, N * K, dxs);

	char name[96];
	const double eps[3] = {0, 0.1, 0.3};
	for (int e = 0; e < 3; e++) {
		s.eps = eps[e];
		double dloss = 0.7, dl[N * K];
		CHECK(cpu_softmax_xent_backward_f64(s.x, labels, N, K, s.eps, dloss, dl) == 0);
		snprintf(name, sizeof name, "softmax_xent_backward_f64 eps %.1f", s.eps);
		gradcheck(name, "logits", xent_fwd, &s, 1, &dloss, s.x, N * K, dl);
	}
}

typedef struct {
	double *x, *mask, s;
	size_t count;
	int mode; /* 0 dropout, 1 scale */
} LinCtx;

static void
lin_fwd(void *ctx, double *y)
{
	LinCtx *c = ctx;
	if (c->mode == 0)
		cpu_dropout_apply_f64(c->x, c->mask, y, c->count);
	else
		cpu_scale_f64(c->x, c->s, y, c->count);
}

typedef struct {
	double *xs[3];
	const int *cs;
} ConcatCtx;

static void
concat_fwd(void *ctx, double *y)
{
	ConcatCtx *c = ctx;
	cpu_concat_forward_f64(3, (const double *const *)c->xs, c->cs, 2, 4, y);
}

static void
grad_misc(void)
{
	enum { N = 40 };
	CpuRng rng;
	cpu_rng_seed(&rng, 5);
	LinCtx l = {.x = drand(N, -1, 1), .mask = DNEW(N), .s = -1.75, .count = N};
	cpu_dropout_mask_f64(&rng, 0.4, l.mask, N);
	double *r = cotangent(N), *dx = DNEW(N);
	cpu_dropout_apply_f64(r, l.mask, dx, N);
	gradcheck("dropout_apply_f64 (backward: same call on dy)", "x", lin_fwd, &l, N, r, l.x, N, dx);
	l.mode = 1;
	cpu_scale_f64(r, l.s, dx, N);
	gradcheck("scale_f64 (backward: same call on dy)", "x", lin_fwd, &l, N, r, l.x, N, dx);

	static const int cs[3] = {2, 1, 3};
	ConcatCtx c = {.cs = cs};
	double *dxs[3];
	for (int i = 0; i < 3; i++) {
		c.xs[i] = drand(2 * (size_t)cs[i] * 4, -1, 1);
		dxs[i] = DNEW(2 * (size_t)cs[i] * 4);
	}
	double *rc = cotangent(2 * 6 * 4);
	cpu_concat_backward_f64(3, rc, cs, 2, 4, dxs);
	for (int i = 0; i < 3; i++)
		gradcheck("concat_backward_f64", i == 0 ? "x0" : i == 1 ? "x1" : "x2", concat_fwd, &c,
			2 * 6 * 4, rc, c.xs[i], 2 * (size_t)cs[i] * 4, dxs[i]);
}

static void
test_gradcheck(void)
{
	grad_conv();
	grad_batchnorm();
	grad_activations();
	grad_pooling();
	grad_dense_softmax();
	grad_misc();
	tfree_all();
}

/* ---- precision: f32 against f64 ---------------------------------------------------------- */

static const double PREC_TOL = 1e-5;

typedef struct {
	float *f;
	double *d;
	size_t n;
} Pair;

static Pair
pair_rand(size_t n, double lo, double hi)
{
	Pair p = {FNEW(n), drand(n, lo, hi), n};
	for (size_t i = 0; i < n; i++)
		p.f[i] = (float)p.d[i];
	return p;
}

static Pair
pair_out(size_t n)
{
	return (Pair){FNEW(n), DNEW(n), n};
}

static void
pair_check(const char *kernel, Pair out)
{
	double *f = DNEW(out.n);
	for (size_t i = 0; i < out.n; i++)
		f[i] = out.f[i];
	char what[200];
	snprintf(what, sizeof what, "%s: f32 vs f64", kernel);
	expect_close(what, f, out.d, out.n, PREC_TOL);
}

static void
prec_conv(void)
{
	char name[160];
	for (int t = 0; t < NCONV; t++) {
		CpuConv cv = conv_case(t);
		Pair x = pair_rand(cpu_conv_x_numel(&cv), -1, 1), w = pair_rand(cpu_conv_w_numel(&cv), -1, 1);
		Pair b = pair_rand((size_t)cv.k, -1, 1), dy = pair_rand(cpu_conv_y_numel(&cv), -1, 1);
		Pair y = pair_out(cpu_conv_y_numel(&cv)), dx = pair_out(cpu_conv_x_numel(&cv)),
			dw = pair_out(cpu_conv_w_numel(&cv)), db = pair_out(cv.k);
		size_t wf = conv_ws_max_f32(&cv), wd = conv_ws_max_f64(&cv);
		void *wsf = wf ? talloc(wf) : NULL, *wsd = wd ? talloc(wd) : NULL;
		CHECK(cpu_conv2d_forward_f32(&cv, x.f, w.f, b.f, y.f, wsf, wf) == 0);
		CHECK(cpu_conv2d_forward_f64(&cv, x.d, w.d, b.d, y.d, wsd, wd) == 0);
		CHECK(cpu_conv2d_backward_data_f32(&cv, dy.f, w.f, dx.f, wsf, wf) == 0);
		CHECK(cpu_conv2d_backward_data_f64(&cv, dy.d, w.d, dx.d, wsd, wd) == 0);
		CHECK(cpu_conv2d_backward_filter_f32(&cv, x.f, dy.f, dw.f, wsf, wf) == 0);
		CHECK(cpu_conv2d_backward_filter_f64(&cv, x.d, dy.d, dw.d, wsd, wd) == 0);
		cpu_bias_backward_f32(dy.f, cv.n, cv.k, cv.oh * cv.ow, db.f);
		cpu_bias_backward_f64(dy.d, cv.n, cv.k, cv.oh * cv.ow, db.d);
		snprintf(name, sizeof name, "conv2d_forward [%s]", conv_cases[t].name);
		pair_check(name, y);
		snprintf(name, sizeof name, "conv2d_backward_data [%s]", conv_cases[t].name);
		pair_check(name, dx);
		snprintf(name, sizeof name, "conv2d_backward_filter [%s]", conv_cases[t].name);
		pair_check(name, dw);
		snprintf(name, sizeof name, "bias_backward [%s]", conv_cases[t].name);
		pair_check(name, db);
		/* The epilogue (conv2d+relu) == conv, then the activation kernel, bit for bit, on every
		 * path (im2col, pointwise, depthwise); some outputs must be clipped for this to bite. */
		for (int a = 0; a < 2; a++) {
			Epilogue act = a ? EPI_RELU6 : EPI_RELU;
			float *fused = talloc(cpu_conv_y_numel(&cv) * sizeof *fused), *sep = talloc(cpu_conv_y_numel(&cv) * sizeof *sep);
			for (size_t i = 0; i < cpu_conv_y_numel(&cv); i++)
				sep[i] = y.f[i] * 8;
			CHECK(cpu_conv2d_forward_act_f32(&cv, x.f, w.f, b.f, fused, wsf, wf, act) == 0);
			CHECK(cpu_conv2d_forward_f32(&cv, x.f, w.f, b.f, sep, wsf, wf) == 0);
			(a ? cpu_relu6_forward_f32 : cpu_relu_forward_f32)(sep, sep, cpu_conv_y_numel(&cv));
			size_t zeros = 0;
			for (size_t i = 0; i < cpu_conv_y_numel(&cv); i++)
				zeros += fused[i] == 0;
			CHECK(zeros > 0);
			CHECK(memcmp(fused, sep, cpu_conv_y_numel(&cv) * sizeof *fused) == 0);
		}
	}
}

static void
prec_batchnorm(void)
{
	enum { N = 4, C = 3, HW = 20, CNT = N * C * HW };
	Pair x = pair_rand(CNT, -2, 5), w = pair_rand(C, 0.5, 1.5), b = pair_rand(C, -1, 1);
	Pair dy = pair_rand(CNT, -1, 1), mean = pair_out(C), invstd = pair_out(C), varu = pair_out(C);
	Pair y = pair_out(CNT), dx = pair_out(CNT), dw = pair_out(C), db = pair_out(C);
	Pair rm = pair_rand(C, -1, 1), rv = pair_rand(C, 0.5, 2);
	CHECK(cpu_batchnorm_stats_f32(x.f, N, C, HW, 1e-5, mean.f, invstd.f, varu.f) == 0);
	CHECK(cpu_batchnorm_stats_f64(x.d, N, C, HW, 1e-5, mean.d, invstd.d, varu.d) == 0);
	pair_check("batchnorm_stats mean", mean);
	pair_check("batchnorm_stats invstd", invstd);
	pair_check("batchnorm_stats var_unbiased", varu);
	cpu_batchnorm_apply_f32(x.f, N, C, HW, mean.f, invstd.f, w.f, b.f, y.f, EPI_NONE);
	cpu_batchnorm_apply_f64(x.d, N, C, HW, mean.d, invstd.d, w.d, b.d, y.d, EPI_NONE);
	pair_check("batchnorm_apply", y);
	cpu_batchnorm_backward_data_f32(dy.f, x.f, N, C, HW, mean.f, invstd.f, w.f, dx.f, NULL, NULL);
	cpu_batchnorm_backward_data_f64(dy.d, x.d, N, C, HW, mean.d, invstd.d, w.d, dx.d, NULL, NULL);
	pair_check("batchnorm_backward_data", dx);
	cpu_batchnorm_backward_params_f32(dy.f, x.f, N, C, HW, mean.f, invstd.f, dw.f, db.f);
	cpu_batchnorm_backward_params_f64(dy.d, x.d, N, C, HW, mean.d, invstd.d, dw.d, db.d);
	pair_check("batchnorm_backward_params dw", dw);
	pair_check("batchnorm_backward_params db", db);
	cpu_batchnorm_update_running_f32(C, 0.1, mean.f, varu.f, rm.f, rv.f);
	cpu_batchnorm_update_running_f64(C, 0.1, mean.d, varu.d, rm.d, rv.d);
	pair_check("batchnorm_update_running mean", rm);
	pair_check("batchnorm_update_running var", rv);
	cpu_batchnorm_inference_f32(x.f, N, C, HW, rm.f, rv.f, 1e-5, w.f, b.f, y.f, EPI_NONE);
	cpu_batchnorm_inference_f64(x.d, N, C, HW, rm.d, rv.d, 1e-5, w.d, b.d, y.d, EPI_NONE);
	pair_check("batchnorm_inference", y);

	/* Each epilogue (the fuse pass) is bit-identical to the separate activation kernel. */
	Pair fused = pair_out(CNT);
	for (int t = 0; t < 4; t++) {
		bool inference = t & 1;
		Epilogue act = t & 2 ? EPI_RELU6 : EPI_RELU;
		if (inference) {
			cpu_batchnorm_inference_f32(x.f, N, C, HW, rm.f, rv.f, 1e-5, w.f, b.f, y.f, EPI_NONE);
			cpu_batchnorm_inference_f32(x.f, N, C, HW, rm.f, rv.f, 1e-5, w.f, b.f, fused.f, act);
		} else {
			cpu_batchnorm_apply_f32(x.f, N, C, HW, mean.f, invstd.f, w.f, b.f, y.f, EPI_NONE);
			cpu_batchnorm_apply_f32(x.f, N, C, HW, mean.f, invstd.f, w.f, b.f, fused.f, act);
		}
		(act == EPI_RELU ? cpu_relu_forward_f32 : cpu_relu6_forward_f32)(y.f, y.f, CNT);
		int zeros = 0;
		for (int i = 0; i < CNT; i++)
			zeros += fused.f[i] == 0;
		CHECK(memcmp(y.f, fused.f, CNT * sizeof(float)) == 0);
		CHECK(zeros > 0 && zeros < CNT); /* the activation clipped some values, not all */
	}
}

static void
prec_elementwise(void)
{
	enum { N = 3000 };
	Pair x = pair_rand(N, -4, 8), x2 = pair_rand(N, -1, 1), dy = pair_rand(N, -1, 1);
	Pair y = pair_out(N), dx = pair_out(N);
#define PREC_UNARY(op, arg)                                      \
	do {                                                         \
		cpu_##op##_forward_f32(x.f, y.f, N);                     \
		cpu_##op##_forward_f64(x.d, y.d, N);                     \
		pair_check(#op "_forward", y);                           \
		cpu_##op##_backward_f32(arg.f, dy.f, dx.f, N);           \
		cpu_##op##_backward_f64(arg.d, dy.d, dx.d, N);           \
		pair_check(#op "_backward", dx);                         \
	} while (0)
	PREC_UNARY(relu, x);
	PREC_UNARY(relu6, x);
	PREC_UNARY(gelu, x);
	PREC_UNARY(tanh, y);
#undef PREC_UNARY
	cpu_add_f32(x.f, x2.f, y.f, N);
	cpu_add_f64(x.d, x2.d, y.d, N);
	pair_check("add", y);
	for (int t = 0; t < 2; t++) { /* fused add+act == add, then the activation kernel */
		Epilogue act = t ? EPI_RELU6 : EPI_RELU;
		int clipped = 0;
		cpu_add_f32(x.f, x2.f, y.f, N);
		cpu_add_act_f32(x.f, x2.f, dx.f, N, act);
		for (int i = 0; i < N; i++)
			clipped += y.f[i] < 0 || (act == EPI_RELU6 && y.f[i] > 6);
		(t ? cpu_relu6_forward_f32 : cpu_relu_forward_f32)(y.f, y.f, N);
		CHECK(memcmp(y.f, dx.f, N * sizeof(float)) == 0);
		CHECK(clipped > 0);
		cpu_add_act_f64(x.d, x2.d, y.d, N, act);
		pair_check(t ? "add_act relu6" : "add_act relu", y);
	}
	cpu_scale_f32(x.f, 0.3, y.f, N);
	cpu_scale_f64(x.d, 0.3, y.d, N);
	pair_check("scale", y);
	Pair mask = pair_out(N);
	CpuRng r1, r2;
	cpu_rng_seed(&r1, 11);
	cpu_rng_seed(&r2, 11);
	cpu_dropout_mask_f32(&r1, 0.3, mask.f, N);
	cpu_dropout_mask_f64(&r2, 0.3, mask.d, N);
	pair_check("dropout_mask", mask);
	cpu_dropout_apply_f32(x.f, mask.f, y.f, N);
	cpu_dropout_apply_f64(x.d, mask.d, y.d, N);
	pair_check("dropout_apply", y);

	const int cs[3] = {2, 3, 1};
	Pair a = pair_rand(2 * 2 * 5, -1, 1), b = pair_rand(2 * 3 * 5, -1, 1), c = pair_rand(2 * 5, -1, 1);
	Pair cat = pair_out(2 * 6 * 5);
	const float *xf[3] = {a.f, b.f, c.f};
	const double *xd[3] = {a.d, b.d, c.d};
	cpu_concat_forward_f32(3, xf, cs, 2, 5, cat.f);
	cpu_concat_forward_f64(3, xd, cs, 2, 5, cat.d);
	pair_check("concat_forward", cat);
	Pair da = pair_out(a.n), dbb = pair_out(b.n), dc = pair_out(c.n);
	float *df[3] = {da.f, dbb.f, dc.f};
	double *dd[3] = {da.d, dbb.d, dc.d};
	cpu_concat_backward_f32(3, cat.f, cs, 2, 5, df);
	cpu_concat_backward_f64(3, cat.d, cs, 2, 5, dd);
	pair_check("concat_backward 0", da);
	pair_check("concat_backward 1", dbb);
	pair_check("concat_backward 2", dc);
}

static void
prec_pool_dense_loss(void)
{
	char name[160];
	for (int t = 0; t < NPOOL; t++) {
		CpuPool p = pool_case(t);
		Pair x = pair_rand(pool_in(&p), -1, 1), dy = pair_rand(pool_out(&p), -1, 1);
		Pair y = pair_out(pool_out(&p)), dx = pair_out(pool_in(&p));
		cpu_maxpool2d_forward_f32(&p, x.f, y.f);
		cpu_maxpool2d_forward_f64(&p, x.d, y.d);
		snprintf(name, sizeof name, "maxpool2d_forward [%s]", pool_cases[t].name);
		pair_check(name, y);
		cpu_maxpool2d_backward_f32(&p, x.f, dy.f, dx.f);
		cpu_maxpool2d_backward_f64(&p, x.d, dy.d, dx.d);
		snprintf(name, sizeof name, "maxpool2d_backward [%s]", pool_cases[t].name);
		pair_check(name, dx);
		cpu_avgpool2d_forward_f32(&p, x.f, y.f);
		cpu_avgpool2d_forward_f64(&p, x.d, y.d);
		snprintf(name, sizeof name, "avgpool2d_forward [%s]", pool_cases[t].name);
		pair_check(name, y);
		cpu_avgpool2d_backward_f32(&p, dy.f, dx.f);
		cpu_avgpool2d_backward_f64(&p, dy.d, dx.d);
		snprintf(name, sizeof name, "avgpool2d_backward [%s]", pool_cases[t].name);
		pair_check(name, dx);
	}
	Pair gx = pair_rand(3 * 4 * 9, -1, 1), gy = pair_out(12), gdx = pair_out(3 * 4 * 9);
	cpu_global_avgpool_forward_f32(gx.f, 3, 4, 9, gy.f);
	cpu_global_avgpool_forward_f64(gx.d, 3, 4, 9, gy.d);
	pair_check("global_avgpool_forward", gy);
	cpu_global_avgpool_backward_f32(gy.f, 3, 4, 9, gdx.f);
	cpu_global_avgpool_backward_f64(gy.d, 3, 4, 9, gdx.d);
	pair_check("global_avgpool_backward", gdx);

	enum { N = 20, F = 70, U = 10 };
	Pair x = pair_rand(N * F, -1, 1), w = pair_rand(U * F, -1, 1), b = pair_rand(U, -1, 1);
	Pair y = pair_out(N * U), dy = pair_rand(N * U, -1, 1), dx = pair_out(N * F),
		dw = pair_out(U * F), db = pair_out(U);
	cpu_dense_forward_f32(x.f, w.f, b.f, N, F, U, y.f);
	cpu_dense_forward_f64(x.d, w.d, b.d, N, F, U, y.d);
	pair_check("dense_forward", y);
	for (int a = 0; a < 2; a++) { /* dense+act == dense, then the activation kernel */
		Epilogue act = a ? EPI_RELU6 : EPI_RELU;
		float fused[N * U], sep[N * U];
		for (int i = 0; i < N * U; i++)
			fused[i] = y.f[i] * 4; /* bigger than relu6's bound in places */
		cpu_act_f32(fused, N * U, act);
		size_t zeros = 0, six = 0;
		for (int i = 0; i < N * U; i++) {
			zeros += fused[i] == 0;
			six += fused[i] == 6;
		}
		CHECK(zeros > 0 && (a == 0 || six > 0));
		cpu_dense_forward_act_f32(x.f, w.f, b.f, N, F, U, fused, act);
		cpu_dense_forward_f32(x.f, w.f, b.f, N, F, U, sep);
		(a ? cpu_relu6_forward_f32 : cpu_relu_forward_f32)(sep, sep, N * U);
		CHECK(memcmp(fused, sep, sizeof fused) == 0);
	}
	cpu_dense_backward_data_f32(dy.f, w.f, N, F, U, dx.f);
	cpu_dense_backward_data_f64(dy.d, w.d, N, F, U, dx.d);
	pair_check("dense_backward_data", dx);
	cpu_dense_backward_weight_f32(dy.f, x.f, N, F, U, dw.f);
	cpu_dense_backward_weight_f64(dy.d, x.d, N, F, U, dw.d);
	pair_check("dense_backward_weight", dw);
	cpu_bias_backward_f32(dy.f, N, U, 1, db.f);
	cpu_bias_backward_f64(dy.d, N, U, 1, db.d);
	pair_check("bias_backward [dense]", db);

	int32_t labels[N];
	for (int i = 0; i < N; i++)
		labels[i] = (i * 7) % U;
	Pair logits = pair_rand(N * U, -5, 5), p = pair_out(N * U), dp = pair_out(N * U);
	cpu_softmax_forward_f32(logits.f, N, U, p.f);
	cpu_softmax_forward_f64(logits.d, N, U, p.d);
	pair_check("softmax_forward", p);
	cpu_softmax_backward_f32(p.f, dy.f, N, U, dp.f);
	cpu_softmax_backward_f64(p.d, dy.d, N, U, dp.d);
	pair_check("softmax_backward", dp);
	Pair loss = pair_out(1);
	CHECK(cpu_softmax_xent_forward_f32(logits.f, labels, N, U, 0.1, loss.f) == 0);
	CHECK(cpu_softmax_xent_forward_f64(logits.d, labels, N, U, 0.1, loss.d) == 0);
	pair_check("softmax_xent_forward", loss);
	CHECK(cpu_softmax_xent_backward_f32(logits.f, labels, N, U, 0.1, 1, dp.f) == 0);
	CHECK(cpu_softmax_xent_backward_f64(logits.d, labels, N, U, 0.1, 1, dp.d) == 0);
	pair_check("softmax_xent_backward", dp);
	CHECK(cpu_count_correct_f32(logits.f, labels, N, U) ==
		cpu_count_correct_f64(logits.d, labels, N, U));
}

static void
prec_optim(void)
{
	enum { N = 500 };
	Pair p = pair_rand(N, -1, 1), g = pair_rand(N, -1, 1), buf = pair_out(N);
	CpuSgd sgd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
	for (long t = 1; t <= 3; t++) {
		cpu_sgd_step_f32(&sgd, t, p.f, g.f, buf.f, N);
		cpu_sgd_step_f64(&sgd, t, p.d, g.d, buf.d, N);
	}
	pair_check("sgd_step (3 Nesterov steps) p", p);
	Pair q = pair_rand(N, -1, 1), m = pair_out(N), v = pair_out(N);
	CpuAdam adam = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
		.decoupled = true};
	for (long t = 1; t <= 3; t++) {
		cpu_adam_step_f32(&adam, t, q.f, g.f, m.f, v.f, N);
		cpu_adam_step_f64(&adam, t, q.d, g.d, m.d, v.d, N);
	}
	pair_check("adam_step (3 AdamW steps) p", q);
	pair_check("adam_step (3 AdamW steps) exp_avg_sq", v);
}

/* Prologues: the _pro kernels, given dz and the activation's output y, equal the activation
 * backward kernel followed by the plain kernel, bit for bit -- on planes shorter and longer
 * than a masking run (hw 20 and 2500), for relu and relu6, with y in both masked ranges and
 * exactly on their bounds (0, 6). */
static void
prec_prologue(void)
{
	static const int hws[2] = {20, 2500};
	for (int t = 0; t < 4; t++) {
		int n = 3, c = 2, hw = hws[t & 1];
		Epilogue act = t & 2 ? EPI_RELU6 : EPI_RELU;
		size_t cnt = (size_t)n * c * hw;
		Pair x = pair_rand(cnt, -2, 5), dz = pair_rand(cnt, -1, 1), y = pair_rand(cnt, -3, 9);
		Pair st = pair_rand((size_t)2 * c, 0.5, 1.5), w = pair_rand((size_t)c, 0.5, 1.5);
		for (size_t i = 0; i < cnt; i += 7) /* the mask's boundaries exactly */
			y.f[i] = i % 2 ? 0 : 6;
		float *dy = FNEW(cnt), *dx0 = FNEW(cnt), *dx1 = FNEW(cnt);
		float db0[2], db1[2], dw0[2], dw1[2], dwb0[2], dwb1[2], s0[2], s1[2];
		(act == EPI_RELU ? cpu_relu_backward_f32 : cpu_relu6_backward_f32)(y.f, dz.f, dy, cnt);
		cpu_bias_backward_f32(dy, n, c, hw, db0);
		cpu_bias_backward_pro_f32(dz.f, y.f, act, n, c, hw, db1);
		cpu_batchnorm_backward_params_f32(dy, x.f, n, c, hw, st.f, st.f + c, dw0, s0);
		cpu_batchnorm_backward_params_pro_f32(dz.f, y.f, act, x.f, n, c, hw, st.f, st.f + c, dw1, s1);
		cpu_batchnorm_backward_data_f32(dy, x.f, n, c, hw, st.f, st.f + c, w.f, dx0, dwb0, NULL);
		cpu_batchnorm_backward_data_pro_f32(dz.f, y.f, act, x.f, n, c, hw, st.f, st.f + c, w.f, dx1, dwb1, NULL);
		size_t masked = 0;
		for (size_t i = 0; i < cnt; i++)
			masked += dy[i] == 0;
		CHECK(masked > 0 && masked < cnt);
		CHECK(memcmp(db0, db1, sizeof db0) == 0);
		CHECK(memcmp(dw0, dw1, sizeof dw0) == 0 && memcmp(s0, s1, sizeof s0) == 0);
		CHECK(memcmp(dwb0, dwb1, sizeof dwb0) == 0);
		CHECK(memcmp(dx0, dx1, cnt * sizeof *dx0) == 0);
	}
}

/* cpu_ew_range, the block kernels of fused chains, over pieces of a tensor equals each
 * whole-tensor elementwise kernel, bit for bit. */
static void
prec_ew_range(void)
{
	enum { N = 3000 };
	Pair a = pair_rand(N, -3, 9), b = pair_rand(N, -2, 2);
	float *whole = FNEW(N), *parts = FNEW(N);
	for (int op = 0; op < NEW; op++) {
		switch ((Elementwise)op) {
		case EW_relu: cpu_relu_forward_f32(a.f, whole, N); break;
		case EW_relu6: cpu_relu6_forward_f32(a.f, whole, N); break;
		case EW_gelu: cpu_gelu_forward_f32(a.f, whole, N); break;
		case EW_tanh: cpu_tanh_forward_f32(a.f, whole, N); break;
		case EW_add: cpu_add_f32(a.f, b.f, whole, N); break;
		case EW_mulv: cpu_dropout_apply_f32(a.f, b.f, whole, N); break;
		case EW_relu_bwd: cpu_relu_backward_f32(a.f, b.f, whole, N); break;
		case EW_relu6_bwd: cpu_relu6_backward_f32(a.f, b.f, whole, N); break;
		case EW_gelu_bwd: cpu_gelu_backward_f32(a.f, b.f, whole, N); break;
		case EW_tanh_bwd: cpu_tanh_backward_f32(a.f, b.f, whole, N); break;
		case NEW: break;
		}
		for (size_t i0 = 0; i0 < N; i0 += 1000)
			cpu_ew_range_f32((Elementwise)op, a.f, b.f, parts, i0, i0 + 1000);
		CHECK(memcmp(whole, parts, N * sizeof *whole) == 0);
	}
}

static void
test_precision(void)
{
	prec_conv();
	prec_batchnorm();
	prec_prologue();
	prec_ew_range();
	prec_elementwise();
	prec_pool_dense_loss();
	prec_optim();
	tfree_all();
}

/* ---- optimizers against hand-computed values --------------------------------------------- */

/* Runs three steps on one parameter starting at 1 with the gradients g[t] and checks p after
 * each step, in both precisions (f64 to 1e-13, f32 to 1e-6 relative). */
static void
expect_steps(const char *what, const CpuSgd *sgd, const CpuAdam *adam, const double g[3],
	const double want[3])
{
	double pd = 1, bd = 0, md = 0, vd = 0;
	float pf = 1, bf = 0, mf = 0, vf = 0;
	for (int t = 0; t < 3; t++) {
		double gd = g[t];
		float gf = (float)g[t];
		if (sgd) {
			cpu_sgd_step_f64(sgd, t + 1, &pd, &gd, &bd, 1);
			cpu_sgd_step_f32(sgd, t + 1, &pf, &gf, &bf, 1);
		} else {
			cpu_adam_step_f64(adam, t + 1, &pd, &gd, &md, &vd, 1);
			cpu_adam_step_f32(adam, t + 1, &pf, &gf, &mf, &vf, 1);
		}
		checks++;
		if (!(fabs(pd - want[t]) <= 1e-13 * fabs(want[t])) ||
			!(fabs(pf - want[t]) <= 1e-6 * fabs(want[t])))
			check_fail("%s: step %d: f64 %.15g, f32 %.9g, want %.15g", what, t + 1, pd, (double)pf,
				want[t]);
	}
}

static void
test_optim(void)
{
	const double g[3] = {0.5, -0.25, 1.0};

	/* Plain SGD, lr 0.1: p -= 0.1 g. */
	CpuSgd plain = {.lr = 0.1};
	expect_steps("sgd", &plain, NULL, g, (const double[3]){0.95, 0.975, 0.875});

	/* Momentum 0.9: buf = 0.5, 0.9*0.5 - 0.25 = 0.2, 0.9*0.2 + 1 = 1.18; p -= 0.1 buf. */
	CpuSgd mom = {.lr = 0.1, .momentum = 0.9};
	expect_steps("sgd momentum", &mom, NULL, g, (const double[3]){0.95, 0.93, 0.812});

	/* Nesterov: same buffers; the step uses g + 0.9 buf = 0.95, -0.07, 2.062. */
	CpuSgd nest = {.lr = 0.1, .momentum = 0.9, .nesterov = true};
	expect_steps("sgd nesterov", &nest, NULL, g, (const double[3]){0.905, 0.912, 0.7058});

	/* Weight decay 0.01, constant g 0.5: d = 0.5 + 0.01 p = 0.51, 0.50949, 0.50852151;
	 * buf = 0.51, 0.96849, 1.38016251; p = 0.949, 0.852151, 0.714134749. */
	const double g_const[3] = {0.5, 0.5, 0.5};
	CpuSgd wd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
	expect_steps("sgd weight decay", &wd, NULL, g_const,
		(const double[3]){0.949, 0.852151, 0.714134749});

	/* Adam with a constant gradient: the bias-corrected moments are g and g^2 exactly, so each
	 * step is lr * g / (|g| + eps); eps = 0.1 makes its place visible: 0.1 * 0.5/0.6 = 1/12. */
	CpuAdam adam = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 0.1};
	expect_steps("adam constant gradient", NULL, &adam, g_const,
		(const double[3]){1 - 1.0 / 12, 1 - 2.0 / 12, 1 - 3.0 / 12});

	/* Adam, eps 1e-8. Step 1: m = 0.05, v = 0.00025, mhat = 0.5, sqrt(vhat) = 0.5,
	 * p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002. Step 2: m = 0.05 + 0.1(-0.25 - 0.05)
	 * = 0.02, v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225, mhat = 0.02 / 0.19,
	 * sqrt(vhat) = sqrt(0.00031225 / 0.001999) = 0.3952254, p -= 0.1 * 0.1052632 / 0.3952254
	 * = 0.0266337. Step 3 likewise. */
	CpuAdam adam2 = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
	expect_steps("adam", NULL, &adam2, g,
		(const double[3]){0.900000002, 0.8733662987078463, 0.8075551396770898});

	/* Adam with L2 weight decay 0.1, eps 0.1. Step 1: g' = 0.5 + 0.1 * 1 = 0.6,
	 * p = 1 - 0.1 * 0.6 / 0.7 = 0.9142857142857143. */
	CpuAdam l2 = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 0.1, .weight_decay = 0.1};
	expect_steps("adam L2", NULL, &l2, g,
		(const double[3]){0.9142857142857143, 0.8770221700148022, 0.8128775706781838});

	/* AdamW, decay 0.1: p *= 1 - 0.1 * 0.1 first, then the Adam step on the raw gradient.
	 * Step 1: 0.99 - 0.1 * 0.5 / 0.6 = 0.9066666666666666. */
	CpuAdam w = l2;
	w.decoupled = true;
	expect_steps("adamw", NULL, &w, g,
		(const double[3]){0.9066666666666666, 0.8763443935636753, 0.810410655344543});

	/* A parameter vector: every element takes the same path as a scalar would. */
	enum { N = 40000 };
	float *p = FNEW(N), *gr = FNEW(N), *m = FNEW(N), *v = FNEW(N);
	for (int i = 0; i < N; i++) {
		p[i] = 1;
		gr[i] = 0.5f;
	}
	cpu_adam_step_f32(&adam2, 1, p, gr, m, v, N);
	bool same = true;
	for (int i = 0; i < N; i++)
		same = same && p[i] == p[0] && m[i] == m[0] && v[i] == v[0];
	CHECK(same && fabs(p[0] - 0.900000002) < 1e-6);
	tfree_all();
}

/* ---- determinism ------------------------------------------------------------------------- */

enum { MAX_OUTS = 64 };

typedef struct {
	const char *name[MAX_OUTS];
	float *data[MAX_OUTS];
	size_t n[MAX_OUTS];
	int count;
} Outs;

static float *
out_new(Outs *o, const char *name, size_t n)
{
	if (o->count == MAX_OUTS) {
		fprintf(stderr, "test_cpu_kernels: too many outputs\n");
		abort();
	}
	o->name[o->count] = name;
	o->n[o->count] = n;
	return o->data[o->count++] = FNEW(n);
}

static float *
frand_fixed(uint64_t seed, size_t n, double lo, double hi)
{
	CpuRng r;
	cpu_rng_seed(&r, seed);
	float *x = FNEW(n);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(lo + (hi - lo) * cpu_rng_uniform(&r));
	return x;
}

/* Every parallel kernel on shapes big enough to be split at 2 and 3 threads; one_slot limits
 * the im2col convolutions to a single col buffer. Inputs depend only on fixed seeds. */
static void
det_workload(Outs *o, bool one_slot)
{
	static const CpuConv convs[3] = {
		{.n = 5, .c = 8, .h = 12, .w = 12, .k = 12, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1,
			.pw = 1, .groups = 1},
		{.n = 4, .c = 16, .h = 10, .w = 10, .k = 16, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
			.ph = 1, .pw = 1, .groups = 16},
		{.n = 3, .c = 16, .h = 8, .w = 8, .k = 24, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
			.groups = 1},
	};
	static const char *names[3][4] = {
		{"conv im2col y", "conv im2col dx", "conv im2col dw", "conv im2col db"},
		{"conv depthwise y", "conv depthwise dx", "conv depthwise dw", "conv depthwise db"},
		{"conv pointwise y", "conv pointwise dx", "conv pointwise dw", "conv pointwise db"},
	};
	for (int t = 0; t < 3; t++) {
		CpuConv cv = convs[t];
		CHECK(cpu_conv_setup(&cv) == 0);
		float *x = frand_fixed(100 + t, cpu_conv_x_numel(&cv), -1, 1);
		float *w = frand_fixed(200 + t, cpu_conv_w_numel(&cv), -1, 1);
		float *b = frand_fixed(300 + t, cv.k, -1, 1);
		float *dy = frand_fixed(400 + t, cpu_conv_y_numel(&cv), -1, 1);
		size_t wsb[3];
		void *ws[3];
		for (int ps = 0; ps < 3; ps++) {
			wsb[ps] = cpu_conv2d_workspace_f32(&cv, (CpuConvPass)ps, one_slot ? 1 : 0);
			ws[ps] = wsb[ps] ? talloc(wsb[ps]) : NULL;
		}
		CHECK(cpu_conv2d_forward_f32(&cv, x, w, b, out_new(o, names[t][0], cpu_conv_y_numel(&cv)), ws[0],
			wsb[0]) == 0);
		CHECK(cpu_conv2d_backward_data_f32(&cv, dy, w, out_new(o, names[t][1], cpu_conv_x_numel(&cv)),
			ws[1], wsb[1]) == 0);
		CHECK(cpu_conv2d_backward_filter_f32(&cv, x, dy, out_new(o, names[t][2], cpu_conv_w_numel(&cv)),
			ws[2], wsb[2]) == 0);
		cpu_bias_backward_f32(dy, cv.n, cv.k, cv.oh * cv.ow, out_new(o, names[t][3], cv.k));
	}

	enum { N = 8, C = 16, HW = 32 * 32, CNT = N * C * HW };
	float *x = frand_fixed(1, CNT, -2, 3), *dy = frand_fixed(2, CNT, -1, 1);
	float *w = frand_fixed(3, C, 0.5, 1.5), *b = frand_fixed(4, C, -1, 1);
	float *mean = out_new(o, "bn mean", C), *invstd = out_new(o, "bn invstd", C);
	CHECK(cpu_batchnorm_stats_f32(x, N, C, HW, 1e-5, mean, invstd, out_new(o, "bn varu", C)) == 0);
	cpu_batchnorm_apply_f32(x, N, C, HW, mean, invstd, w, b, out_new(o, "bn y", CNT), EPI_NONE);
	cpu_batchnorm_backward_data_f32(dy, x, N, C, HW, mean, invstd, w, out_new(o, "bn dx", CNT),
		out_new(o, "bn dw", C), out_new(o, "bn db", C));
	cpu_gelu_forward_f32(x, out_new(o, "gelu y", CNT), CNT);
	cpu_gelu_backward_f32(x, dy, out_new(o, "gelu dx", CNT), CNT);
	cpu_global_avgpool_forward_f32(x, N, C, HW, out_new(o, "gap y", N * C));

	CpuPool p = {.n = N, .c = C, .h = 32, .w = 32, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1,
		.pw = 1};
	CHECK(cpu_pool_setup(&p) == 0);
	float *pdy = frand_fixed(5, pool_out(&p), -1, 1);
	cpu_maxpool2d_forward_f32(&p, x, out_new(o, "maxpool y", pool_out(&p)));
	cpu_maxpool2d_backward_f32(&p, x, pdy, out_new(o, "maxpool dx", CNT));
	cpu_avgpool2d_forward_f32(&p, x, out_new(o, "avgpool y", pool_out(&p)));
	cpu_avgpool2d_backward_f32(&p, pdy, out_new(o, "avgpool dx", CNT));

	enum { DN = 100, DF = 200, DU = 10 };
	float *dx_in = frand_fixed(6, DN * DF, -1, 1), *dw_in = frand_fixed(7, DU * DF, -1, 1);
	float *logits = out_new(o, "dense y", DN * DU);
	cpu_dense_forward_f32(dx_in, dw_in, b, DN, DF, DU, logits);
	float *dl = out_new(o, "xent dlogits", DN * DU);
	int32_t labels[DN];
	for (int i = 0; i < DN; i++)
		labels[i] = i % DU;
	CHECK(cpu_softmax_xent_backward_f32(logits, labels, DN, DU, 0.1, 1, dl) == 0);
	cpu_dense_backward_data_f32(dl, dw_in, DN, DF, DU, out_new(o, "dense dx", DN * DF));
	cpu_dense_backward_weight_f32(dl, dx_in, DN, DF, DU, out_new(o, "dense dw", DU * DF));
	cpu_softmax_forward_f32(logits, DN, DU, out_new(o, "softmax y", DN * DU));

	CpuRng rng;
	cpu_rng_seed(&rng, 1234);
	cpu_dropout_mask_f32(&rng, 0.5, out_new(o, "dropout mask", CNT), CNT);
	float *pp = out_new(o, "adamw p", CNT), *m = FNEW(CNT), *v = FNEW(CNT);
	memcpy(pp, x, CNT * sizeof(float));
	CpuAdam adam = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.05,
		.decoupled = true};
	for (long t = 1; t <= 2; t++)
		cpu_adam_step_f32(&adam, t, pp, dy, m, v, CNT);
	float *ps = out_new(o, "sgd p", CNT), *buf = FNEW(CNT);
	memcpy(ps, x, CNT * sizeof(float));
	CpuSgd sgd = {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
	for (long t = 1; t <= 2; t++)
		cpu_sgd_step_f32(&sgd, t, ps, dy, buf, CNT);
}

static void
test_determinism(void)
{
	static const int threads[] = {1, 2, 3};
	Outs ref = {0};
	cpu_threads_init(1);
	det_workload(&ref, false);
	for (int t = 0; t < 4; t++) {
		Outs got = {0};
		bool one_slot = t == 3;
		cpu_threads_init(one_slot ? 2 : threads[t]);
		det_workload(&got, one_slot);
		CHECK(got.count == ref.count);
		for (int i = 0; i < ref.count && i < got.count; i++) {
			checks++;
			if (memcmp(ref.data[i], got.data[i], ref.n[i] * sizeof(float)) != 0) {
				size_t at = 0;
				while (at < ref.n[i] && memcmp(&ref.data[i][at], &got.data[i][at], sizeof(float)) == 0)
					at++;
				check_fail("determinism: %s differs with %d threads%s at element %zu: %.9g vs %.9g "
					"(1 thread)", ref.name[i], cpu_threads_count(),
					one_slot ? " and a one-slot workspace" : "", at, (double)got.data[i][at],
					(double)ref.data[i][at]);
			}
		}
	}
	cpu_threads_init(2);
	tfree_all();
}

/* ---- workspace --------------------------------------------------------------------------- */

static void
test_workspace(void)
{
	static const CpuConvPass passes[3] = {CPU_CONV_FORWARD, CPU_CONV_BACKWARD_DATA,
		CPU_CONV_BACKWARD_FILTER};
	static const char *pass_names[3] = {"forward", "backward_data", "backward_filter"};
	for (int threads = 1; threads <= 2; threads++) {
		cpu_threads_init(threads);
		for (int t = 0; t < NCONV; t++) {
			CpuConv cv = conv_case(t);
			float *x = frand_fixed(10, cpu_conv_x_numel(&cv), -1, 1), *w = frand_fixed(11, cpu_conv_w_numel(&cv), -1, 1);
			float *dy = frand_fixed(12, cpu_conv_y_numel(&cv), -1, 1);
			size_t outn[3] = {cpu_conv_y_numel(&cv), cpu_conv_x_numel(&cv), cpu_conv_w_numel(&cv)};
			for (int ps = 0; ps < 3; ps++) {
				size_t bytes = cpu_conv2d_workspace_f32(&cv, passes[ps], threads);
				CHECK(bytes == cpu_conv2d_workspace_f32(&cv, passes[ps], 0));
				bool direct = cv.groups == cv.c && cv.groups > 1;
				bool pointwise = cv.kh == 1 && cv.kw == 1 && cv.sh == 1 && cv.sw == 1 &&
					cv.ph == 0 && cv.pw == 0;
				CHECK((bytes == 0) == (direct || pointwise));
				/* A full im2col matrix per slot, a slot per thread up to the batch (forward,
				 * backward-data) or up to min(n, 8) image ranges (backward-filter). Backward-data
				 * with stride 1 and padding below the kernel runs as a forward convolution of dy:
				 * its col is that of the flipped convolution, and the flipped weights come
				 * first; backward-filter keeps a partial gradient per image range but the first. */
				size_t npos = (size_t)cv.oh * cv.ow, hw = (size_t)cv.h * cv.w;
				size_t wbytes = (cpu_conv_w_numel(&cv) * sizeof(float) + 63) / 64 * 64;
				bool flip = cv.sh == 1 && cv.sw == 1 && cv.ph < cv.kh && cv.pw < cv.kw;
				size_t groups = cv.n < 8 ? (size_t)cv.n : 8;
				size_t slot = ps == 1 && flip ? (size_t)cv.k * cv.kh * cv.kw * hw * sizeof(float)
					: (size_t)cv.c * cv.kh * cv.kw * npos * sizeof(float);
				size_t fixed = ps == 1 && flip ? wbytes : ps == 2 ? (groups - 1) * wbytes : 0;
				size_t most = ps < 2 ? (size_t)cv.n : groups;
				size_t slots = (size_t)threads < most ? (size_t)threads : most;
				CHECK(bytes == 0 || bytes == fixed + slots * ((slot + 63) / 64 * 64));

				/* Exactly the reported size: malloc'd to the byte, so ASan sees any overrun. */
				unsigned char *ws = bytes ? malloc(bytes) : NULL;
				float *out = FNEW(outn[ps]), *big_out = FNEW(outn[ps]);
				int rc = ps == 0 ? cpu_conv2d_forward_f32(&cv, x, w, NULL, out, ws, bytes)
					: ps == 1 ? cpu_conv2d_backward_data_f32(&cv, dy, w, out, ws, bytes)
					: cpu_conv2d_backward_filter_f32(&cv, x, dy, out, ws, bytes);
				checks++;
				if (rc != 0)
					check_fail("workspace: conv2d_%s [%s] refused its reported workspace of %zu bytes",
						pass_names[ps], conv_cases[t].name, bytes);
				/* The same with a generous workspace gives the same bits. */
				size_t big = bytes * 4 + 4096;
				unsigned char *bws = talloc(big);
				rc = ps == 0 ? cpu_conv2d_forward_f32(&cv, x, w, NULL, big_out, bws, big)
					: ps == 1 ? cpu_conv2d_backward_data_f32(&cv, dy, w, big_out, bws, big)
					: cpu_conv2d_backward_filter_f32(&cv, x, dy, big_out, bws, big);
				CHECK(rc == 0 && memcmp(out, big_out, outn[ps] * sizeof(float)) == 0);
				free(ws);
				if (bytes == 0)
					continue;

				/* Too small for one slot, or misaligned: refused, output untouched. */
				size_t small = bytes / slots - 1;
				for (int bad = 0; bad < 2; bad++) {
					unsigned char *sws = talloc(bytes + 8);
					void *arg = bad == 0 ? (void *)sws : (void *)(sws + 1);
					size_t len = bad == 0 ? small : bytes;
					for (size_t i = 0; i < outn[ps]; i++)
						out[i] = 12345.0f;
					rc = ps == 0 ? cpu_conv2d_forward_f32(&cv, x, w, NULL, out, arg, len)
						: ps == 1 ? cpu_conv2d_backward_data_f32(&cv, dy, w, out, arg, len)
						: cpu_conv2d_backward_filter_f32(&cv, x, dy, out, arg, len);
					bool untouched = true;
					for (size_t i = 0; i < outn[ps]; i++)
						untouched = untouched && out[i] == 12345.0f;
					checks++;
					if (rc != -1 || !untouched)
						check_fail("workspace: conv2d_%s [%s] accepted a %s workspace", pass_names[ps],
							conv_cases[t].name, bad == 0 ? "too small" : "misaligned");
				}
			}
		}
	}
	cpu_threads_init(2);
	tfree_all();
}

/* ---- driver ------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*run)(void);
} groups[] = {
	{"rng", test_rng},
	{"reference", test_reference},
	{"gradcheck", test_gradcheck},
	{"precision", test_precision},
	{"optim", test_optim},
	{"determinism", test_determinism},
	{"workspace", test_workspace},
};
enum { NGROUPS = sizeof groups / sizeof groups[0] };

static void
run_group(int g)
{
	struct timespec t0, t1;
	int f0 = failures, c0 = checks;
	cpu_rng_seed(&data_rng, 0x5eed0000u + (uint64_t)g);
	cpu_threads_init(2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	groups[g].run();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("%-12s %4d checks, %d failed, %.0f ms\n", groups[g].name, checks - c0,
		failures - f0, ms);
}

int
main(int argc, char **argv)
{
	verbose = getenv("NNC_TEST_VERBOSE") != NULL;
	if (argc < 2) {
		for (int g = 0; g < NGROUPS; g++)
			run_group(g);
	}
	for (int a = 1; a < argc; a++) {
		int g = 0;
		while (g < NGROUPS && strcmp(groups[g].name, argv[a]) != 0)
			g++;
		if (g == NGROUPS) {
			fprintf(stderr, "test_cpu_kernels: no group '%s'\n", argv[a]);
			return 2;
		}
		run_group(g);
	}
	cpu_threads_shutdown();
	return failures ? 1 : 0;
}
