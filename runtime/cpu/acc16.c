/* The fp16-accumulation reference kernels of acc16.h: direct loops in which every operation is
 * an fp16 operation (one rounding by R = cpu_acc16_round), in the summation orders acc16.h
 * documents. Each parallel item (an output plane, an input plane, an output channel, a row, a
 * batch-norm channel) computes all of its outputs alone, start to finish, so where chunk
 * boundaries fall never changes a bit. The loops here are written to read in the documented
 * order; test_acc16.c checks them against separately written loops. */
#include "runtime/cpu/acc16.h"

#include <math.h>

enum { WORK_PER_CHUNK = 4096 }; /* multiply-adds per parallel chunk, roughly */

/* ---- fp16 arithmetic on fp16 values held in floats ---------------------------------------- */

static inline float
r16(float v)
{
	return cpu_acc16_round(v);
}

static inline float
add16(float a, float b)
{
	return r16(a + b);
}

static inline float
sub16(float a, float b)
{
	return r16(a - b);
}

static inline float
mul16(float a, float b)
{
	return r16(a * b);
}

/* a / b for fp16 a, b: the double quotient carries 53 >= 2 * 11 bits, so rounding it once more
 * to fp16 is the correctly rounded fp16 quotient. */
static inline float
div16(float a, float b)
{
	return cpu_acc16_round_double((double)a / (double)b);
}

/* R(s / count) for an integer count, the quotient formed in double. */
static inline float
div_count(float s, double count)
{
	return cpu_acc16_round_double((double)s / count);
}

/* An operand as loaded: R of the stored float (the identity on fp16 values). */
static inline float
ld(const float *p, size_t i)
{
	return r16(p[i]);
}

static size_t
grain_for(size_t work_per_item)
{
	if (work_per_item >= WORK_PER_CHUNK)
		return 1;
	return WORK_PER_CHUNK / (work_per_item ? work_per_item : 1);
}

/* ---- conv2d ------------------------------------------------------------------------------- */

typedef struct {
	const CpuConv *cv;
	const float *x, *w, *b, *dy;
	float *y, *dx, *dw;
} ConvArgs;

/* True when cv is what cpu_conv_setup accepts, with oh and ow set by it. */
static bool
conv_valid(const CpuConv *cv)
{
	CpuConv c = *cv;
	return cpu_conv_setup(&c) == 0 && c.oh == cv->oh && c.ow == cv->ow;
}

/* Item pl = img*k + o: the output plane (img, o). */
static void
conv_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (size_t pl = p0; pl < p1; pl++) {
		const size_t img = pl / (size_t)cv->k;
		const int o = (int)(pl % (size_t)cv->k), c0 = o / kpg * cpg;
		float *y = a->y + pl * cv->oh * cv->ow;
		for (int oy = 0; oy < cv->oh; oy++)
			for (int ox = 0; ox < cv->ow; ox++) {
				float acc = 0.0f;
				for (int cj = 0; cj < cpg; cj++) {
					const float *xp = a->x + (img * cv->c + c0 + cj) * cv->h * cv->w;
					const float *wp = a->w + ((size_t)o * cpg + cj) * cv->kh * cv->kw;
					for (int r = 0; r < cv->kh; r++) {
						int iy = oy * cv->sh - cv->ph + r;
						if (iy < 0 || iy >= cv->h)
							continue;
						for (int s = 0; s < cv->kw; s++) {
							int ix = ox * cv->sw - cv->pw + s;
							if (ix < 0 || ix >= cv->w)
								continue;
							float prod = mul16(ld(xp, (size_t)iy * cv->w + ix),
								ld(wp, (size_t)r * cv->kw + s));
							acc = add16(acc, prod);
						}
					}
				}
				if (a->b)
					acc = add16(acc, ld(a->b, (size_t)o));
				y[oy * cv->ow + ox] = acc;
			}
	}
}

int
cpu_acc16_conv2d_forward(const CpuConv *cv, const float *x, const float *w, const float *b,
	float *y)
{
	if (!conv_valid(cv))
		return -1;
	ConvArgs a = {.cv = cv, .x = x, .w = w, .b = b, .y = y};
	size_t work = (size_t)cv->oh * cv->ow * (cv->c / cv->groups) * cv->kh * cv->kw;
	cpu_parallel_for((size_t)cv->n * cv->k, grain_for(work), conv_fwd_planes, &a);
	return 0;
}

/* The output index o in [0, out) that reads input index in at kernel offset off, or -1. */
static int
tap_source(int in, int off, int stride, int pad, int out)
{
	int t = in + pad - off;
	if (t < 0 || t % stride != 0 || t / stride >= out)
		return -1;
	return t / stride;
}

/* Item pl = img*c + ci: the input-gradient plane (img, ci). */
static void
conv_bwd_data_planes(void *ctx, size_t p0, size_t p1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (size_t pl = p0; pl < p1; pl++) {
		const size_t img = pl / (size_t)cv->c;
		const int ci = (int)(pl % (size_t)cv->c), g = ci / cpg, cj = ci % cpg;
		float *dx = a->dx + pl * cv->h * cv->w;
		for (int iy = 0; iy < cv->h; iy++)
			for (int ix = 0; ix < cv->w; ix++) {
				float acc = 0.0f;
				for (int o = g * kpg; o < (g + 1) * kpg; o++) {
					const float *dyp = a->dy + (img * cv->k + o) * cv->oh * cv->ow;
					const float *wp = a->w + ((size_t)o * cpg + cj) * cv->kh * cv->kw;
					for (int r = 0; r < cv->kh; r++) {
						int oy = tap_source(iy, r, cv->sh, cv->ph, cv->oh);
						if (oy < 0)
							continue;
						for (int s = 0; s < cv->kw; s++) {
							int ox = tap_source(ix, s, cv->sw, cv->pw, cv->ow);
							if (ox < 0)
								continue;
							float prod = mul16(ld(dyp, (size_t)oy * cv->ow + ox),
								ld(wp, (size_t)r * cv->kw + s));
							acc = add16(acc, prod);
						}
					}
				}
				dx[iy * cv->w + ix] = acc;
			}
	}
}

int
cpu_acc16_conv2d_backward_data(const CpuConv *cv, const float *dy, const float *w, float *dx)
{
	if (!conv_valid(cv))
		return -1;
	ConvArgs a = {.cv = cv, .dy = dy, .w = w, .dx = dx};
	size_t work = (size_t)cv->h * cv->w * (cv->k / cv->groups) * cv->kh * cv->kw;
	cpu_parallel_for((size_t)cv->n * cv->c, grain_for(work), conv_bwd_data_planes, &a);
	return 0;
}

/* Item o: the weight gradient of output channel o, all its cpg*kh*kw entries. */
static void
conv_bwd_filter_channels(void *ctx, size_t o0, size_t o1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int cpg = cv->c / cv->groups, kpg = cv->k / cv->groups;
	for (size_t o = o0; o < o1; o++) {
		const int c0 = (int)o / kpg * cpg;
		float *dw = a->dw + o * cpg * cv->kh * cv->kw;
		for (int cj = 0; cj < cpg; cj++)
			for (int r = 0; r < cv->kh; r++)
				for (int s = 0; s < cv->kw; s++) {
					float acc = 0.0f;
					for (size_t img = 0; img < (size_t)cv->n; img++) {
						const float *xp = a->x + (img * cv->c + c0 + cj) * cv->h * cv->w;
						const float *dyp = a->dy + (img * cv->k + o) * cv->oh * cv->ow;
						for (int oy = 0; oy < cv->oh; oy++) {
							int iy = oy * cv->sh - cv->ph + r;
							if (iy < 0 || iy >= cv->h)
								continue;
							for (int ox = 0; ox < cv->ow; ox++) {
								int ix = ox * cv->sw - cv->pw + s;
								if (ix < 0 || ix >= cv->w)
									continue;
								float prod = mul16(ld(dyp, (size_t)oy * cv->ow + ox),
									ld(xp, (size_t)iy * cv->w + ix));
								acc = add16(acc, prod);
							}
						}
					}
					dw[((size_t)cj * cv->kh + r) * cv->kw + s] = acc;
				}
	}
}

int
cpu_acc16_conv2d_backward_filter(const CpuConv *cv, const float *x, const float *dy, float *dw)
{
	if (!conv_valid(cv))
		return -1;
	ConvArgs a = {.cv = cv, .x = x, .dy = dy, .dw = dw};
	size_t work = (size_t)cv->n * cv->oh * cv->ow * (cv->c / cv->groups) * cv->kh * cv->kw;
	cpu_parallel_for((size_t)cv->k, grain_for(work), conv_bwd_filter_channels, &a);
	return 0;
}

/* ---- bias gradient ------------------------------------------------------------------------ */

typedef struct {
	const float *x, *dy, *w, *b, *mean, *invstd;
	float *y, *dx, *dw, *db, *mean_out, *invstd_out, *var_unbiased;
	int n, c, hw, f, u;
	double eps;
} PlaneArgs;

static void
bias_channels(void *ctx, size_t c0, size_t c1)
{
	const PlaneArgs *a = ctx;
	for (size_t ch = c0; ch < c1; ch++) {
		float acc = 0.0f;
		for (size_t img = 0; img < (size_t)a->n; img++) {
			const float *dy = a->dy + (img * a->c + ch) * a->hw;
			for (int i = 0; i < a->hw; i++)
				acc = add16(acc, ld(dy, (size_t)i));
		}
		a->db[ch] = acc;
	}
}

void
cpu_acc16_bias_backward(const float *dy, int n, int c, int hw, float *db)
{
	PlaneArgs a = {.dy = dy, .db = db, .n = n, .c = c, .hw = hw};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw), bias_channels, &a);
}

/* ---- dense -------------------------------------------------------------------------------- */

/* Item r: row r of y = x . w^T + b. */
static void
dense_fwd_rows(void *ctx, size_t r0, size_t r1)
{
	const PlaneArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const float *x = a->x + r * a->f;
		for (int u = 0; u < a->u; u++) {
			const float *w = a->w + (size_t)u * a->f;
			float acc = 0.0f;
			for (int i = 0; i < a->f; i++)
				acc = add16(acc, mul16(ld(x, (size_t)i), ld(w, (size_t)i)));
			if (a->b)
				acc = add16(acc, ld(a->b, (size_t)u));
			a->y[r * a->u + u] = acc;
		}
	}
}

void
cpu_acc16_dense_forward(const float *x, const float *w, const float *b, int n, int f, int u,
	float *y)
{
	PlaneArgs a = {.x = x, .w = w, .b = b, .y = y, .n = n, .f = f, .u = u};
	cpu_parallel_for((size_t)n, grain_for((size_t)f * u), dense_fwd_rows, &a);
}

/* Item r: row r of dx = dy . w. */
static void
dense_bwd_data_rows(void *ctx, size_t r0, size_t r1)
{
	const PlaneArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const float *dy = a->dy + r * a->u;
		for (int i = 0; i < a->f; i++) {
			float acc = 0.0f;
			for (int u = 0; u < a->u; u++)
				acc = add16(acc, mul16(ld(dy, (size_t)u), ld(a->w, (size_t)u * a->f + i)));
			a->dx[r * a->f + i] = acc;
		}
	}
}

void
cpu_acc16_dense_backward_data(const float *dy, const float *w, int n, int f, int u, float *dx)
{
	PlaneArgs a = {.dy = dy, .w = w, .dx = dx, .n = n, .f = f, .u = u};
	cpu_parallel_for((size_t)n, grain_for((size_t)f * u), dense_bwd_data_rows, &a);
}

/* Item u: row u of dw = dy^T . x, summed over the batch in order. */
static void
dense_bwd_weight_units(void *ctx, size_t u0, size_t u1)
{
	const PlaneArgs *a = ctx;
	for (size_t u = u0; u < u1; u++)
		for (int i = 0; i < a->f; i++) {
			float acc = 0.0f;
			for (size_t r = 0; r < (size_t)a->n; r++)
				acc = add16(acc, mul16(ld(a->dy, r * a->u + u), ld(a->x, r * a->f + i)));
			a->dw[u * a->f + i] = acc;
		}
}

void
cpu_acc16_dense_backward_weight(const float *dy, const float *x, int n, int f, int u, float *dw)
{
	PlaneArgs a = {.dy = dy, .x = x, .dw = dw, .n = n, .f = f, .u = u};
	cpu_parallel_for((size_t)u, grain_for((size_t)n * f), dense_bwd_weight_units, &a);
}

/* ---- batch norm: element (img, ch, i) of [n, c, hw] is at (img*c + ch)*hw + i -------------- */

static const float *
bn_plane(const float *t, const PlaneArgs *a, size_t img, size_t ch)
{
	return t + (img * a->c + ch) * a->hw;
}

static void
bn_stats_channels(void *ctx, size_t c0, size_t c1)
{
	const PlaneArgs *a = ctx;
	const double count = (double)a->n * a->hw;
	for (size_t ch = c0; ch < c1; ch++) {
		float s = 0.0f;
		for (size_t img = 0; img < (size_t)a->n; img++) {
			const float *x = bn_plane(a->x, a, img, ch);
			for (int i = 0; i < a->hw; i++)
				s = add16(s, ld(x, (size_t)i));
		}
		const float m = div_count(s, count);
		float q = 0.0f;
		for (size_t img = 0; img < (size_t)a->n; img++) {
			const float *x = bn_plane(a->x, a, img, ch);
			for (int i = 0; i < a->hw; i++) {
				float d = sub16(ld(x, (size_t)i), m);
				q = add16(q, mul16(d, d));
			}
		}
		const float var = div_count(q, count);
		a->mean_out[ch] = m;
		a->invstd_out[ch] = cpu_acc16_round_double(1.0 / sqrt((double)var + a->eps));
		if (a->var_unbiased)
			a->var_unbiased[ch] = div_count(q, count - 1);
	}
}

int
cpu_acc16_batchnorm_stats(const float *x, int n, int c, int hw, double eps, float *mean,
	float *invstd, float *var_unbiased)
{
	if (var_unbiased && (size_t)n * hw < 2)
		return -1;
	PlaneArgs a = {.x = x, .mean_out = mean, .invstd_out = invstd,
		.var_unbiased = var_unbiased, .n = n, .c = c, .hw = hw, .eps = eps};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw * 2), bn_stats_channels, &a);
	return 0;
}

static void
bn_backward_channels(void *ctx, size_t c0, size_t c1)
{
	const PlaneArgs *a = ctx;
	const double count = (double)a->n * a->hw;
	for (size_t ch = c0; ch < c1; ch++) {
		const float m = ld(a->mean, ch), inv = ld(a->invstd, ch);
		float sdy = 0.0f, sdyx = 0.0f;
		for (size_t img = 0; img < (size_t)a->n; img++) {
			const float *x = bn_plane(a->x, a, img, ch), *dy = bn_plane(a->dy, a, img, ch);
			for (int i = 0; i < a->hw; i++) {
				float g = ld(dy, (size_t)i), xhat = mul16(sub16(ld(x, (size_t)i), m), inv);
				sdy = add16(sdy, g);
				sdyx = add16(sdyx, mul16(g, xhat));
			}
		}
		if (a->dw)
			a->dw[ch] = sdyx;
		if (a->db)
			a->db[ch] = sdy;
		if (!a->dx)
			continue;
		const float mdy = div_count(sdy, count), mdyx = div_count(sdyx, count);
		const float gain = a->w ? mul16(ld(a->w, ch), inv) : inv;
		for (size_t img = 0; img < (size_t)a->n; img++) {
			const float *x = bn_plane(a->x, a, img, ch), *dy = bn_plane(a->dy, a, img, ch);
			float *dx = a->dx + (img * a->c + ch) * a->hw;
			for (int i = 0; i < a->hw; i++) {
				float xhat = mul16(sub16(ld(x, (size_t)i), m), inv);
				float t = sub16(sub16(ld(dy, (size_t)i), mdy), mul16(xhat, mdyx));
				dx[i] = mul16(gain, t);
			}
		}
	}
}

void
cpu_acc16_batchnorm_backward_data(const float *dy, const float *x, int n, int c, int hw,
	const float *mean, const float *invstd, const float *w, float *dx, float *dw, float *db)
{
	PlaneArgs a = {.dy = dy, .x = x, .mean = mean, .invstd = invstd, .w = w, .dx = dx,
		.dw = dw, .db = db, .n = n, .c = c, .hw = hw};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw * 3), bn_backward_channels, &a);
}

void
cpu_acc16_batchnorm_backward_params(const float *dy, const float *x, int n, int c, int hw,
	const float *mean, const float *invstd, float *dw, float *db)
{
	PlaneArgs a = {.dy = dy, .x = x, .mean = mean, .invstd = invstd, .dw = dw, .db = db,
		.n = n, .c = c, .hw = hw};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw * 2), bn_backward_channels, &a);
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct {
	const CpuPool *p;
	const float *x;
	float *y;
} PoolArgs;

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1), columns [*x0, *x1). */
static void
window(const CpuPool *p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
	int ys = oy * p->sh - p->ph, xs = ox * p->sw - p->pw;
	*y0 = ys < 0 ? 0 : ys;
	*x0 = xs < 0 ? 0 : xs;
	*y1 = ys + p->kh > p->h ? p->h : ys + p->kh;
	*x1 = xs + p->kw > p->w ? p->w : xs + p->kw;
}

/* count_include_pad's divisor: the window clipped to the padded input only. */
static double
divisor(const CpuPool *p, int oy, int ox)
{
	int ys = oy * p->sh - p->ph, xs = ox * p->sw - p->pw;
	int ye = ys + p->kh > p->h + p->ph ? p->h + p->ph : ys + p->kh;
	int xe = xs + p->kw > p->w + p->pw ? p->w + p->pw : xs + p->kw;
	return (double)(ye - ys) * (xe - xs);
}

static void
avgpool_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		const float *x = a->x + pl * p->h * p->w;
		float *y = a->y + pl * p->oh * p->ow;
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				int y0, y1, x0, x1;
				window(p, oy, ox, &y0, &y1, &x0, &x1);
				float acc = 0.0f;
				for (int iy = y0; iy < y1; iy++)
					for (int ix = x0; ix < x1; ix++)
						acc = add16(acc, ld(x, (size_t)iy * p->w + ix));
				y[oy * p->ow + ox] = div_count(acc, divisor(p, oy, ox));
			}
	}
}

/* Here a->x is dy and a->y is dx. */
static void
avgpool_bwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		const float *dy = a->x + pl * p->oh * p->ow;
		float *dx = a->y + pl * p->h * p->w;
		for (size_t i = 0; i < (size_t)p->h * p->w; i++)
			dx[i] = 0.0f;
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				int y0, y1, x0, x1;
				window(p, oy, ox, &y0, &y1, &x0, &x1);
				float g = div_count(ld(dy, (size_t)oy * p->ow + ox), divisor(p, oy, ox));
				for (int iy = y0; iy < y1; iy++)
					for (int ix = x0; ix < x1; ix++) {
						float *d = dx + (size_t)iy * p->w + ix;
						*d = add16(*d, g);
					}
			}
	}
}

void
cpu_acc16_avgpool2d_forward(const CpuPool *p, const float *x, float *y)
{
	PoolArgs a = {.p = p, .x = x, .y = y};
	size_t work = (size_t)p->oh * p->ow * p->kh * p->kw;
	cpu_parallel_for((size_t)p->n * p->c, grain_for(work), avgpool_fwd_planes, &a);
}

void
cpu_acc16_avgpool2d_backward(const CpuPool *p, const float *dy, float *dx)
{
	PoolArgs a = {.p = p, .x = dy, .y = dx};
	size_t work = (size_t)p->oh * p->ow * p->kh * p->kw;
	cpu_parallel_for((size_t)p->n * p->c, grain_for(work), avgpool_bwd_planes, &a);
}

static void
gap_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PlaneArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++) {
		const float *x = a->x + pl * a->hw;
		float acc = 0.0f;
		for (int i = 0; i < a->hw; i++)
			acc = add16(acc, ld(x, (size_t)i));
		a->y[pl] = div_count(acc, a->hw);
	}
}

static void
gap_bwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PlaneArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++) {
		float g = div_count(ld(a->dy, pl), a->hw);
		float *dx = a->dx + pl * a->hw;
		for (int i = 0; i < a->hw; i++)
			dx[i] = g;
	}
}

void
cpu_acc16_global_avgpool_forward(const float *x, int n, int c, int hw, float *y)
{
	PlaneArgs a = {.x = x, .y = y, .hw = hw};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), gap_fwd_planes, &a);
}

void
cpu_acc16_global_avgpool_backward(const float *dy, int n, int c, int hw, float *dx)
{
	PlaneArgs a = {.dy = dy, .dx = dx, .hw = hw};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), gap_bwd_planes, &a);
}

/* ---- softmax and cross-entropy: row r of [n, k] is at r*k ---------------------------------- */

typedef struct {
	const float *x, *dy;
	const int32_t *labels;
	float *y;
	int k;
	double eps;
	float scale;
} RowArgs;

static float
row_max(const float *x, int k)
{
	float m = ld(x, 0);
	for (int j = 1; j < k; j++)
		if (ld(x, (size_t)j) > m)
			m = ld(x, (size_t)j);
	return m;
}

/* e_j = R(exp(x_j (-) m)). */
static float
row_exp(const float *x, int j, float m)
{
	return cpu_acc16_round_double(exp((double)sub16(ld(x, (size_t)j), m)));
}

static float
row_expsum(const float *x, int k, float m)
{
	float s = 0.0f;
	for (int j = 0; j < k; j++)
		s = add16(s, row_exp(x, j, m));
	return s;
}

static void
softmax_fwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const float *x = a->x + r * a->k;
		float *y = a->y + r * a->k;
		float m = row_max(x, a->k), s = row_expsum(x, a->k, m);
		for (int j = 0; j < a->k; j++)
			y[j] = div16(row_exp(x, j, m), s);
	}
}

static void
softmax_bwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const float *y = a->x + r * a->k, *dy = a->dy + r * a->k;
		float *dx = a->y + r * a->k;
		float dot = 0.0f;
		for (int j = 0; j < a->k; j++)
			dot = add16(dot, mul16(ld(dy, (size_t)j), ld(y, (size_t)j)));
		for (int j = 0; j < a->k; j++)
			dx[j] = mul16(ld(y, (size_t)j), sub16(ld(dy, (size_t)j), dot));
	}
}

void
cpu_acc16_softmax_forward(const float *x, int n, int k, float *y)
{
	RowArgs a = {.x = x, .y = y, .k = k};
	cpu_parallel_for((size_t)n, grain_for((size_t)k * 8), softmax_fwd_rows, &a);
}

void
cpu_acc16_softmax_backward(const float *y, const float *dy, int n, int k, float *dx)
{
	RowArgs a = {.x = y, .dy = dy, .y = dx, .k = k};
	cpu_parallel_for((size_t)n, grain_for((size_t)k * 2), softmax_bwd_rows, &a);
}

static bool
labels_valid(const int32_t *labels, int n, int k)
{
	for (int r = 0; r < n; r++)
		if (labels[r] < 0 || labels[r] >= k)
			return false;
	return true;
}

int
cpu_acc16_softmax_xent_forward(const float *logits, const int32_t *labels, int n, int k,
	double eps, float *loss)
{
	if (!labels_valid(labels, n, k))
		return -1;
	const float keep = cpu_acc16_round_double(1 - eps), smooth = cpu_acc16_round_double(eps);
	float total = 0.0f;
	for (int r = 0; r < n; r++) {
		const float *x = logits + (size_t)r * k;
		float m = row_max(x, k);
		float lse = add16(m, cpu_acc16_round_double(log((double)row_expsum(x, k, m))));
		float row = sub16(lse, ld(x, (size_t)labels[r]));
		if (eps != 0) {
			float xs = 0.0f;
			for (int j = 0; j < k; j++)
				xs = add16(xs, ld(x, (size_t)j));
			float uniform = sub16(lse, div_count(xs, k));
			row = add16(mul16(keep, row), mul16(smooth, uniform));
		}
		total = add16(total, row);
	}
	*loss = div_count(total, n);
	return 0;
}

static void
xent_bwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const float *x = a->x + r * a->k;
		float *dx = a->y + r * a->k;
		float m = row_max(x, a->k), s = row_expsum(x, a->k, m);
		for (int j = 0; j < a->k; j++) {
			double target = a->eps / a->k + (j == a->labels[r] ? 1 - a->eps : 0);
			float p = div16(row_exp(x, j, m), s);
			dx[j] = mul16(a->scale, sub16(p, cpu_acc16_round_double(target)));
		}
	}
}

int
cpu_acc16_softmax_xent_backward(const float *logits, const int32_t *labels, int n, int k,
	double eps, double dloss, float *dlogits)
{
	if (!labels_valid(labels, n, k))
		return -1;
	RowArgs a = {.x = logits, .labels = labels, .y = dlogits, .k = k, .eps = eps,
		.scale = cpu_acc16_round_double(dloss / n)};
	cpu_parallel_for((size_t)n, grain_for((size_t)k * 8), xent_bwd_rows, &a);
	return 0;
}
