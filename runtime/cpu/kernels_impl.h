/* The generic source of every CPU kernel, compiled once per element type: kernels_f32.c and
 * kernels_f64.c define REAL, FN(name) (the suffixed public name) and GEMM (cblas_sgemm or
 * cblas_dgemm), include <tgmath.h> so that exp, log, sqrt, erf and tanh follow REAL, and then
 * include this file. Everything static here is private to its translation unit.
 *
 * Parallelism and determinism. Each kernel splits its work into items whose bounds depend
 * only on the shapes (images, channels, planes, rows, fixed-size blocks of GEMM columns, fixed
 * ranges of images) and hands them to cpu_parallel_for. One item is always computed by one
 * thread with the same sequence of operations, and where items are summed (the partial
 * weight gradients below) they are added in item order, so the result does not depend on the
 * thread count. Long sums run in LANES interleaved accumulators combined by a fixed tree.
 *
 * conv2d has three algorithms, picked by conv_path:
 *   - depthwise (groups == c, one input channel per group): direct loops, no workspace;
 *     forward items are output planes, backward-data items input planes (each gathers the
 *     planes of its channel multiplier), backward-filter items output channels.
 *   - pointwise (1x1, stride 1, no padding): the input image [c, h*w] is already the im2col
 *     matrix, so each group is one GEMM per image, no workspace.
 *   - im2col: image -> col [c*kh*kw, oh*ow], row (ci, i, j) holding the input tap at kernel
 *     offset (i, j) for every output position, then per group g a GEMM of the group's weights
 *     [k/groups, (c/groups)*kh*kw] with the group's rows of col. Forward and backward-data
 *     items are workspace "slots", each running a contiguous range of images through its own
 *     full col with single-threaded GEMMs. Backward-data with stride 1 (and padding below the
 *     kernel size) is the forward pass of the flipped convolution of dy (bwd_flip); otherwise
 *     it is a GEMM into col and a scatter-add (col2im).
 * Backward-filter on the pointwise path splits the weight gradient, seen as each group's
 * k/groups x kcol matrix, into column blocks (wgrad_cols wide); an item is one (group, block),
 * each slot owns a contiguous range of items and sums the batch into its blocks in image
 * order. On the im2col path the batch is cut into at most WGRAD_GROUPS fixed image ranges;
 * each slot owns whole ranges and sums each range's images in order (full im2col, one GEMM per
 * image and group) into dw or the range's partial, and the partials are then added to dw in
 * range order.
 *
 * OpenBLAS runs single-threaded inside items (cpu_threads_init sets it so); its results for a
 * given call do not depend on which thread makes it. */
#include <cblas.h>
#include <stdint.h>
#include <string.h>

typedef double Acc;

/* The reductions below are bandwidth- and latency-bound loops that GCC vectorizes; on x86-64
 * they are also built for AVX-512 and AVX2 and picked at load time (function multiversioning).
 * The C standard mode keeps -ffp-contract=off and nothing is reassociated, so every version
 * gives the same bits (a ResNet-20 trained 3 steps with the AVX2 and the AVX-512 versions
 * exports identical weights). */
#ifndef NNC_MULTIVERSION
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NNC_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#endif
#ifndef NNC_MULTIVERSION
#define NNC_MULTIVERSION
#endif

enum {
	GRAIN = 16384,   /* elementwise work per parallel chunk, in elements */
	WGRAD_COLS = 32, /* columns of a dense weight-gradient block */
	DENSE_ROWS = 16, /* batch rows per dense forward / backward-data GEMM */
};

static const REAL one = 1, zero = 0, half = (REAL)0.5;

/* Items per chunk so that a chunk does about GRAIN elements of work. */
static size_t
grain_for(size_t work_per_item)
{
	if (work_per_item >= GRAIN)
		return 1;
	return GRAIN / (work_per_item ? work_per_item : 1);
}

/* The output positions o in [0, out) whose input tap o*stride - pad + off falls inside
 * [0, in), as the half-open range [*lo, *hi) (empty when *lo == *hi). */
static void
tap_range(int out, int stride, int pad, int off, int in, int *lo, int *hi)
{
	int first = pad - off, last = in - 1 + pad - off;
	int l = first > 0 ? (first + stride - 1) / stride : 0;
	int h = last < 0 ? 0 : last / stride + 1;
	if (h > out)
		h = out;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

static void
fill(REAL *p, size_t count, REAL v)
{
	for (size_t i = 0; i < count; i++)
		p[i] = v;
}

/* Deterministic sums of many elements. A channel's values are added into LANES independent
 * Acc accumulators (element e of a run goes to lane e % LANES, runs start at lane 0), which
 * the compiler turns into vector adds, and the lanes are then combined by a fixed pairwise
 * tree. The order depends only on the sizes, never on the threads. */
enum { LANES = 16 };

static void
lanes_clear(Acc *l)
{
	for (int k = 0; k < LANES; k++)
		l[k] = 0;
}

static Acc
lanes_total(const Acc *l)
{
	Acc t[LANES];
	for (int k = 0; k < LANES; k++)
		t[k] = l[k];
	for (int w = LANES / 2; w >= 1; w /= 2)
		for (int k = 0; k < w; k++)
			t[k] = t[k] + t[k + w];
	return t[0];
}

/* l[e % LANES] += p[e] for e in [0, n). */
static inline void
lanes_sum(Acc *restrict l, const REAL *restrict p, int n)
{
	int e = 0;
	for (; e + LANES <= n; e += LANES)
		for (int k = 0; k < LANES; k++)
			l[k] += p[e + k];
	for (int k = 0; e + k < n; k++)
		l[k] += p[e + k];
}

/* l[e % LANES] += (p[e] - m)^2. */
static inline void
lanes_sqdev(Acc *restrict l, const REAL *restrict p, Acc m, int n)
{
	int e = 0;
	for (; e + LANES <= n; e += LANES)
		for (int k = 0; k < LANES; k++) {
			Acc d = p[e + k] - m;
			l[k] += d * d;
		}
	for (int k = 0; e + k < n; k++) {
		Acc d = p[e + k] - m;
		l[k] += d * d;
	}
}

/* ls[e % LANES] += dy[e]; lp[e % LANES] += dy[e] * (x[e] - m). */
static inline void
lanes_dot(Acc *restrict ls, Acc *restrict lp, const REAL *restrict dy, const REAL *restrict x,
	Acc m, int n)
{
	int e = 0;
	for (; e + LANES <= n; e += LANES)
		for (int k = 0; k < LANES; k++) {
			ls[k] += dy[e + k];
			lp[k] += (Acc)dy[e + k] * ((Acc)x[e + k] - m);
		}
	for (int k = 0; e + k < n; k++) {
		ls[k] += dy[e + k];
		lp[k] += (Acc)dy[e + k] * ((Acc)x[e + k] - m);
	}
}

/* ---- conv2d ------------------------------------------------------------------------------ */

typedef enum { PATH_IM2COL, PATH_POINTWISE, PATH_DEPTHWISE } ConvPath;

static ConvPath
conv_path(const CpuConv *cv)
{
	if (cv->groups > 1 && cv->groups == cv->c)
		return PATH_DEPTHWISE;
	if (cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0)
		return PATH_POINTWISE;
	return PATH_IM2COL;
}

/* Columns of a weight-gradient block: a function of the shape only, never of the threads. */
static int
wgrad_cols(int kcol)
{
	return kcol >= 128 ? 32 : 8;
}

static size_t
wgrad_items(const CpuConv *cv)
{
	int kcol = cv->c / cv->groups * cv->kh * cv->kw;
	return (size_t)cv->groups * (size_t)((kcol + wgrad_cols(kcol) - 1) / wgrad_cols(kcol));
}

static size_t
round64(size_t bytes)
{
	return (bytes + 63) & ~(size_t)63;
}

/* Backward-data as a forward convolution: with stride 1 and padding below the kernel size,
 * dx is dy convolved (padding kh-1-ph, kw-1-pw) with the weights flipped in space and with
 * their in/out channels swapped. That is one well-shaped GEMM per image instead of a GEMM
 * with only k/groups of depth followed by a scatter-add. Sets *t to that convolution. */
static bool
bwd_flip(const CpuConv *cv, CpuConv *t)
{
	if (cv->sh != 1 || cv->sw != 1 || cv->ph >= cv->kh || cv->pw >= cv->kw)
		return false;
	*t = (CpuConv){.n = cv->n, .c = cv->k, .h = cv->oh, .w = cv->ow, .k = cv->c, .kh = cv->kh,
		.kw = cv->kw, .sh = 1, .sw = 1, .ph = cv->kh - 1 - cv->ph, .pw = cv->kw - 1 - cv->pw,
		.groups = cv->groups};
	return cpu_conv_setup(t) == 0 && t->oh == cv->h && t->ow == cv->w;
}

/* Backward-filter on the im2col path sums the batch in WGRAD_GROUPS (at most) fixed ranges
 * of images: range 0 straight into dw, each later one into its own partial, then the
 * partials are added to dw in range order. */
enum { WGRAD_GROUPS = 8 };

static int
wgrad_groups(const CpuConv *cv)
{
	return cv->n < WGRAD_GROUPS ? cv->n : WGRAD_GROUPS;
}

/* Bytes at the start of the workspace shared by all slots: the flipped weights of the
 * backward-data flip path, or the partial weight gradients of backward-filter. */
static size_t
fixed_bytes(const CpuConv *cv, CpuConvPass pass)
{
	CpuConv t;
	size_t wsize = (size_t)cv->k * (cv->c / cv->groups) * cv->kh * cv->kw * sizeof(REAL);
	if (pass == CPU_CONV_BACKWARD_DATA && bwd_flip(cv, &t))
		return round64(wsize);
	if (pass == CPU_CONV_BACKWARD_FILTER)
		return (size_t)(wgrad_groups(cv) - 1) * round64(wsize);
	return 0;
}

/* One slot's scratch: a full col (of the flipped convolution on the flip path). */
static size_t
slot_bytes(const CpuConv *cv, CpuConvPass pass)
{
	CpuConv t;
	if (pass == CPU_CONV_BACKWARD_DATA && bwd_flip(cv, &t))
		cv = &t;
	return round64((size_t)cv->c * cv->kh * cv->kw * cv->oh * cv->ow * sizeof(REAL));
}

/* The most slots a pass can use: one per thread, but no more than it has items. */
static size_t
max_slots(const CpuConv *cv, CpuConvPass pass, int threads)
{
	size_t items = pass == CPU_CONV_BACKWARD_FILTER ? (size_t)wgrad_groups(cv) : (size_t)cv->n;
	return (size_t)threads < items ? (size_t)threads : items;
}

size_t
FN(cpu_conv2d_workspace)(const CpuConv *cv, CpuConvPass pass, int threads)
{
	if (conv_path(cv) != PATH_IM2COL)
		return 0;
	if (threads <= 0)
		threads = cpu_threads_count();
	return fixed_bytes(cv, pass) + max_slots(cv, pass, threads) * slot_bytes(cv, pass);
}

/* Slots that ws holds for the pass, at most max_slots for the pool; 0 if not even one fits. */
static int
ws_slots(const CpuConv *cv, CpuConvPass pass, const void *ws, size_t ws_bytes)
{
	size_t fixed = fixed_bytes(cv, pass);
	if ((uintptr_t)ws % sizeof(REAL) != 0 || ws_bytes < fixed)
		return 0;
	size_t s = (ws_bytes - fixed) / slot_bytes(cv, pass);
	size_t most = max_slots(cv, pass, cpu_threads_count());
	return (int)(s < most ? s : most);
}

/* Stride 1 in both directions with an output as wide as the input (3x3 pad 1, 5x5 pad 2, ...):
 * then col row (ci, i, j) at column q is the input plane at q + (i - ph)*w + (j - pw), so
 * the valid taps of the whole row are one contiguous run of the plane; only the columns
 * whose tap wraps into the neighbouring input row (ox outside [ox0, ox1)) differ. */
static bool
same_width_s1(const CpuConv *cv)
{
	return cv->sh == 1 && cv->sw == 1 && cv->ow == cv->w;
}

/* Row (ci, i, j) of image x's im2col matrix into dst: x[ci][oy*sh - ph + i][ox*sw - pw + j]
 * at column oy*ow + ox, 0 in the padding. */
static void
im2col_row(const CpuConv *cv, const REAL *x, int ci, int i, int j, REAL *restrict dst)
{
	const int ow = cv->ow, oh = cv->oh, sw = cv->sw;
	const REAL *plane = x + (size_t)ci * cv->h * cv->w;
	int oy0, oy1, ox0, ox1;
	tap_range(oh, cv->sh, cv->ph, i, cv->h, &oy0, &oy1);
	tap_range(ow, sw, cv->pw, j, cv->w, &ox0, &ox1);
	const int shift = j - cv->pw;
	if (oy0 >= oy1 || ox0 >= ox1) {
		fill(dst, (size_t)oh * ow, zero);
		return;
	}
	fill(dst, (size_t)oy0 * ow, zero);
	fill(dst + (size_t)oy1 * ow, (size_t)(oh - oy1) * ow, zero);
	if (same_width_s1(cv)) {
		/* One run from the first valid tap to the last, then zero the wrapped columns. */
		size_t q0 = (size_t)oy0 * ow + ox0, q1 = (size_t)(oy1 - 1) * ow + ox1;
		ptrdiff_t off = (ptrdiff_t)(i - cv->ph) * cv->w + shift;
		memcpy(dst + q0, plane + (ptrdiff_t)q0 + off, (q1 - q0) * sizeof(REAL));
		if (ox0 > 0 || ox1 < ow)
			for (int oy = oy0; oy < oy1; oy++) {
				REAL *d = dst + (size_t)oy * ow;
				for (int ox = 0; ox < ox0; ox++)
					d[ox] = zero;
				for (int ox = ox1; ox < ow; ox++)
					d[ox] = zero;
			}
		return;
	}
	for (int oy = oy0; oy < oy1; oy++) {
		REAL *restrict d = dst + (size_t)oy * ow;
		const REAL *restrict src = plane + (size_t)(oy * cv->sh - cv->ph + i) * cv->w + shift;
		for (int ox = 0; ox < ox0; ox++)
			d[ox] = zero;
		if (sw == 1)
			memcpy(d + ox0, src + ox0, (size_t)(ox1 - ox0) * sizeof(REAL));
		else if (sw == 2)
			for (int ox = ox0; ox < ox1; ox++)
				d[ox] = src[2 * ox];
		else
			for (int ox = ox0; ox < ox1; ox++)
				d[ox] = src[ox * sw];
		for (int ox = ox1; ox < ow; ox++)
			d[ox] = zero;
	}
}

/* Rows [r0, r1) of the im2col matrix of image x, row r0 first: row r = (ci*kh + i)*kw + j
 * holds x[ci][oy*sh - ph + i][ox*sw - pw + j] at column oy*ow + ox, and 0 in the padding. */
static void
im2col_rows(const CpuConv *cv, const REAL *x, int r0, int r1, REAL *out)
{
	const size_t npos = (size_t)cv->oh * cv->ow;
	int j = r0 % cv->kw, i = r0 / cv->kw % cv->kh, ci = r0 / (cv->kw * cv->kh);
	for (int r = r0; r < r1; r++) {
		im2col_row(cv, x, ci, i, j, out + (size_t)(r - r0) * npos);
		if (++j == cv->kw) {
			j = 0;
			if (++i == cv->kh) {
				i = 0;
				ci++;
			}
		}
	}
}

static void
im2col(const CpuConv *cv, const REAL *x, REAL *col)
{
	im2col_rows(cv, x, 0, cv->c * cv->kh * cv->kw, col);
}

/* The adjoint of im2col: each col entry is added back to the input tap it was copied from.
 * dx must be zeroed; every dx element receives its contributions in (ci, i, j, oy, ox) order.
 * col is scratch: the stride-1 same-width path zeroes its wrapped columns and then adds whole
 * runs (a +0 changes no sum). */
static void
col2im(const CpuConv *cv, REAL *col, REAL *dx)
{
	const int ow = cv->ow, oh = cv->oh, sw = cv->sw;
	const size_t npos = (size_t)oh * ow;
	const bool flat = same_width_s1(cv);
	for (int ci = 0; ci < cv->c; ci++) {
		REAL *plane = dx + (size_t)ci * cv->h * cv->w;
		for (int i = 0; i < cv->kh; i++) {
			int oy0, oy1;
			tap_range(oh, cv->sh, cv->ph, i, cv->h, &oy0, &oy1);
			for (int j = 0; j < cv->kw; j++) {
				int ox0, ox1;
				tap_range(ow, sw, cv->pw, j, cv->w, &ox0, &ox1);
				if (oy0 >= oy1 || ox0 >= ox1)
					continue;
				REAL *row = col + ((size_t)(ci * cv->kh + i) * cv->kw + j) * npos;
				int shift = j - cv->pw;
				if (flat) {
					size_t q0 = (size_t)oy0 * ow + ox0, q1 = (size_t)(oy1 - 1) * ow + ox1;
					if (ox0 > 0 || ox1 < ow)
						for (int oy = oy0; oy < oy1; oy++) {
							REAL *r = row + (size_t)oy * ow;
							for (int ox = 0; ox < ox0; ox++)
								r[ox] = zero;
							for (int ox = ox1; ox < ow; ox++)
								r[ox] = zero;
						}
					REAL *restrict dst = plane + (ptrdiff_t)q0 + (ptrdiff_t)(i - cv->ph) * cv->w + shift;
					const REAL *restrict src = row + q0;
					for (size_t q = 0; q < q1 - q0; q++)
						dst[q] += src[q];
					continue;
				}
				for (int oy = oy0; oy < oy1; oy++) {
					const REAL *restrict src = row + (size_t)oy * ow;
					REAL *restrict dst = plane + (size_t)(oy * cv->sh - cv->ph + i) * cv->w + shift;
					if (sw == 1)
						for (int ox = ox0; ox < ox1; ox++)
							dst[ox] += src[ox];
					else
						for (int ox = ox0; ox < ox1; ox++)
							dst[ox * sw] += src[ox];
				}
			}
		}
	}
}

/* The epilogue: runtime/ew.h's formula of each NNC_EPILOGUES activation, as the separate ops
 * compute them, so fused and unfused results are identical. */
static void
act_plane(REAL *y, size_t count, Epilogue act)
{
	switch (act) {
#define E(name, op)                              \
	case EPI_##name:                             \
		for (size_t i = 0; i < count; i++)       \
			y[i] = NNC_EWF_##op(REAL, y[i], zero); \
		break;
		NNC_EPILOGUES(E)
#undef E
	default:
		break;
	}
}

/* A prologue: g[e] = the gradient dz[e] through the activation whose output was y[e], with
 * runtime/ew.h's <op>_bwd formulas, so fused and unfused results are identical.
 * Kernels that reduce the masked gradient do it in runs of MASK_RUN elements (a multiple of LANES, so
 * every element keeps its lane and the sums their order). */
enum { MASK_RUN = 1024 };

static void
act_grad_run(REAL *restrict g, const REAL *restrict dz, const REAL *restrict y, int n, Epilogue pro)
{
	switch (pro) {
#define E(name, op)                                        \
	case EPI_##name:                                       \
		for (int e = 0; e < n; e++)                        \
			g[e] = NNC_EWF_##op##_bwd(REAL, y[e], dz[e]); \
		break;
		NNC_EPILOGUES(E)
#undef E
	default:
		break;
	}
}

/* Elements [e0, e0 + len) of the gradient a kernel reads: dz itself without a prologue, else
 * dz masked through the activation output y into BUF. */
static const REAL *
grad_run(REAL *restrict buf, const REAL *dz, const REAL *y, int e0, int len, Epilogue pro)
{
	if (pro == EPI_NONE)
		return dz + e0;
	act_grad_run(buf, dz + e0, y + e0, len, pro);
	return buf;
}

typedef struct {
	const CpuConv *cv;
	ConvPath path;
	const REAL *x, *w, *b, *dy;
	REAL *y, *dx, *dw;
	unsigned char *ws;
	size_t slot_bytes;
	int slots;
	Epilogue act; /* forward epilogue, applied to each image's output while it is in cache */
} ConvArgs;

/* Per-group GEMM dimensions: kg output channels, kcol = (c/groups)*kh*kw col rows, npos
 * output positions; group g's weights are the kg x kcol matrix at w + g*kg*kcol. */
typedef struct {
	int kg, kcol, npos;
} ConvDims;

static ConvDims
conv_dims(const CpuConv *cv)
{
	return (ConvDims){
		.kg = cv->k / cv->groups,
		.kcol = cv->c / cv->groups * cv->kh * cv->kw,
		.npos = cv->oh * cv->ow,
	};
}

static void
conv_forward_slots(void *ctx, size_t s0, size_t s1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	ConvDims d = conv_dims(cv);
	const size_t in_image = (size_t)cv->c * cv->h * cv->w, out_image = (size_t)cv->k * d.npos;
	for (size_t s = s0; s < s1; s++) {
		REAL *col = a->path == PATH_IM2COL ? (REAL *)(a->ws + s * a->slot_bytes) : NULL;
		size_t first = (size_t)cv->n * s / a->slots, end = (size_t)cv->n * (s + 1) / a->slots;
		for (size_t img = first; img < end; img++) {
			const REAL *x = a->x + img * in_image;
			REAL *y = a->y + img * out_image;
			const REAL *b_mat = x;
			if (a->path == PATH_IM2COL) {
				im2col(cv, x, col);
				b_mat = col;
			}
			for (int g = 0; g < cv->groups; g++)
				GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, d.kg, d.npos, d.kcol, one,
					a->w + (size_t)g * d.kg * d.kcol, d.kcol,
					b_mat + (size_t)g * d.kcol * d.npos, d.npos, zero,
					y + (size_t)g * d.kg * d.npos, d.npos);
			if (a->b)
				for (int co = 0; co < cv->k; co++) {
					REAL *plane = y + (size_t)co * d.npos;
					for (int p = 0; p < d.npos; p++)
						plane[p] += a->b[co];
				}
			act_plane(y, out_image, a->act);
		}
	}
}

/* Depthwise, output plane (img, co): co reads input channel co / (k/c) through its own
 * kh x kw filter; the bias starts the sum, then taps in (i, j) order. */
static void
dw_forward_planes(void *ctx, size_t p0, size_t p1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int mult = cv->k / cv->c;
	for (size_t pl = p0; pl < p1; pl++) {
		int img = (int)(pl / (size_t)cv->k), co = (int)(pl % (size_t)cv->k);
		const REAL *xp = a->x + ((size_t)img * cv->c + co / mult) * cv->h * cv->w;
		const REAL *wk = a->w + (size_t)co * cv->kh * cv->kw;
		REAL *yp = a->y + pl * cv->oh * cv->ow;
		fill(yp, (size_t)cv->oh * cv->ow, a->b ? a->b[co] : zero);
		for (int i = 0; i < cv->kh; i++) {
			int oy0, oy1;
			tap_range(cv->oh, cv->sh, cv->ph, i, cv->h, &oy0, &oy1);
			for (int j = 0; j < cv->kw; j++) {
				int ox0, ox1;
				tap_range(cv->ow, cv->sw, cv->pw, j, cv->w, &ox0, &ox1);
				REAL wv = wk[i * cv->kw + j];
				int shift = j - cv->pw;
				for (int oy = oy0; oy < oy1; oy++) {
					const REAL *restrict xr = xp + (size_t)(oy * cv->sh - cv->ph + i) * cv->w;
					REAL *restrict yr = yp + (size_t)oy * cv->ow;
					if (cv->sw == 1)
						for (int ox = ox0; ox < ox1; ox++)
							yr[ox] += wv * xr[ox + shift];
					else
						for (int ox = ox0; ox < ox1; ox++)
							yr[ox] += wv * xr[ox * cv->sw + shift];
				}
			}
		}
		act_plane(yp, (size_t)cv->oh * cv->ow, a->act);
	}
}

int
FN(cpu_conv2d_forward)(const CpuConv *cv, const REAL *x, const REAL *w, const REAL *b, REAL *y,
	void *ws, size_t ws_bytes)
{
	return FN(cpu_conv2d_forward_act)(cv, x, w, b, y, ws, ws_bytes, EPI_NONE);
}

int
FN(cpu_conv2d_forward_act)(const CpuConv *cv, const REAL *x, const REAL *w, const REAL *b, REAL *y,
	void *ws, size_t ws_bytes, Epilogue act)
{
	ConvArgs a = {.cv = cv, .path = conv_path(cv), .x = x, .w = w, .b = b, .y = y, .ws = ws, .act = act};
	if (a.path == PATH_DEPTHWISE) {
		size_t planes = (size_t)cv->n * cv->k;
		cpu_parallel_for(planes, grain_for((size_t)cv->oh * cv->ow * cv->kh * cv->kw),
			dw_forward_planes, &a);
		return 0;
	}
	if (a.path == PATH_POINTWISE) {
		a.slots = cv->n;
	} else {
		a.slots = ws_slots(cv, CPU_CONV_FORWARD, ws, ws_bytes);
		a.slot_bytes = slot_bytes(cv, CPU_CONV_FORWARD);
		if (a.slots == 0)
			return -1;
	}
	cpu_parallel_for((size_t)a.slots, 1, conv_forward_slots, &a);
	return 0;
}

static void
conv_backward_data_slots(void *ctx, size_t s0, size_t s1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	ConvDims d = conv_dims(cv);
	const size_t in_image = (size_t)cv->c * cv->h * cv->w, out_image = (size_t)cv->k * d.npos;
	for (size_t s = s0; s < s1; s++) {
		REAL *col = a->path == PATH_IM2COL ? (REAL *)(a->ws + s * a->slot_bytes) : NULL;
		size_t first = (size_t)cv->n * s / a->slots, end = (size_t)cv->n * (s + 1) / a->slots;
		for (size_t img = first; img < end; img++) {
			const REAL *dy = a->dy + img * out_image;
			REAL *dx = a->dx + img * in_image;
			REAL *dcol = a->path == PATH_IM2COL ? col : dx;
			for (int g = 0; g < cv->groups; g++)
				GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, d.kcol, d.npos, d.kg, one,
					a->w + (size_t)g * d.kg * d.kcol, d.kcol,
					dy + (size_t)g * d.kg * d.npos, d.npos, zero,
					dcol + (size_t)g * d.kcol * d.npos, d.npos);
			if (a->path == PATH_IM2COL) {
				fill(dx, in_image, zero);
				col2im(cv, col, dx);
			}
		}
	}
}

/* Depthwise, input plane (img, ci): every output channel ci*mult + m of the multiplier
 * scatters dy * w back to the taps it read, in (m, i, j, oy, ox) order. */
static void
dw_backward_data_planes(void *ctx, size_t p0, size_t p1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int mult = cv->k / cv->c;
	for (size_t pl = p0; pl < p1; pl++) {
		int img = (int)(pl / (size_t)cv->c), ci = (int)(pl % (size_t)cv->c);
		REAL *dxp = a->dx + pl * cv->h * cv->w;
		fill(dxp, (size_t)cv->h * cv->w, zero);
		for (int m = 0; m < mult; m++) {
			int co = ci * mult + m;
			const REAL *dyp = a->dy + ((size_t)img * cv->k + co) * cv->oh * cv->ow;
			const REAL *wk = a->w + (size_t)co * cv->kh * cv->kw;
			for (int i = 0; i < cv->kh; i++) {
				int oy0, oy1;
				tap_range(cv->oh, cv->sh, cv->ph, i, cv->h, &oy0, &oy1);
				for (int j = 0; j < cv->kw; j++) {
					int ox0, ox1;
					tap_range(cv->ow, cv->sw, cv->pw, j, cv->w, &ox0, &ox1);
					REAL wv = wk[i * cv->kw + j];
					int shift = j - cv->pw;
					for (int oy = oy0; oy < oy1; oy++) {
						REAL *restrict dxr = dxp + (size_t)(oy * cv->sh - cv->ph + i) * cv->w;
						const REAL *restrict dyr = dyp + (size_t)oy * cv->ow;
						if (cv->sw == 1)
							for (int ox = ox0; ox < ox1; ox++)
								dxr[ox + shift] += wv * dyr[ox];
						else
							for (int ox = ox0; ox < ox1; ox++)
								dxr[ox * cv->sw + shift] += wv * dyr[ox];
					}
				}
			}
		}
	}
}

int
FN(cpu_conv2d_backward_data)(const CpuConv *cv, const REAL *dy, const REAL *w, REAL *dx,
	void *ws, size_t ws_bytes)
{
	ConvArgs a = {.cv = cv, .path = conv_path(cv), .w = w, .dy = dy, .dx = dx, .ws = ws};
	if (a.path == PATH_DEPTHWISE) {
		size_t planes = (size_t)cv->n * cv->c;
		size_t work = (size_t)cv->oh * cv->ow * cv->kh * cv->kw * (size_t)(cv->k / cv->c);
		cpu_parallel_for(planes, grain_for(work), dw_backward_data_planes, &a);
		return 0;
	}
	if (a.path == PATH_POINTWISE) {
		a.slots = cv->n;
	} else {
		a.slots = ws_slots(cv, CPU_CONV_BACKWARD_DATA, ws, ws_bytes);
		a.slot_bytes = slot_bytes(cv, CPU_CONV_BACKWARD_DATA);
		if (a.slots == 0)
			return -1;
		CpuConv t;
		if (bwd_flip(cv, &t)) {
			/* wf[ci][col][i][j] = w[g*kg + col][ci - g*cg][kh-1-i][kw-1-j], ci in group g. */
			REAL *wf = ws;
			const int cg = cv->c / cv->groups, kg = cv->k / cv->groups, taps = cv->kh * cv->kw;
			for (int ci = 0; ci < cv->c; ci++) {
				int g = ci / cg;
				for (int col = 0; col < kg; col++) {
					const REAL *src = w + ((size_t)(g * kg + col) * cg + (ci - g * cg)) * taps;
					REAL *dst = wf + ((size_t)ci * kg + col) * taps;
					for (int q = 0; q < taps; q++)
						dst[q] = src[taps - 1 - q];
				}
			}
			ConvArgs f = {.cv = &t, .path = PATH_IM2COL, .x = dy, .w = wf, .y = dx,
				.ws = (unsigned char *)ws + fixed_bytes(cv, CPU_CONV_BACKWARD_DATA),
				.slot_bytes = a.slot_bytes, .slots = a.slots};
			cpu_parallel_for((size_t)a.slots, 1, conv_forward_slots, &f);
			return 0;
		}
	}
	cpu_parallel_for((size_t)a.slots, 1, conv_backward_data_slots, &a);
	return 0;
}

/* The pointwise path (the input image is its own col): slot s owns items
 * [items*s/slots, items*(s+1)/slots); item t is (group t / nblocks, column block t % nblocks)
 * of dw seen as the groups' kg x kcol matrices. Images run outermost so that dy and x of one
 * image stay in cache across the slot's blocks; each block sums the batch in image order. */
static void
conv_wgrad_slots(void *ctx, size_t s0, size_t s1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	ConvDims d = conv_dims(cv);
	const int cols = wgrad_cols(d.kcol), nblocks = (d.kcol + cols - 1) / cols;
	const size_t items = wgrad_items(cv);
	const size_t in_image = (size_t)cv->c * cv->h * cv->w, out_image = (size_t)cv->k * d.npos;
	for (size_t s = s0; s < s1; s++) {
		size_t first = items * s / (size_t)a->slots, end = items * (s + 1) / (size_t)a->slots;
		for (size_t img = 0; img < (size_t)cv->n; img++) {
			const REAL *x = a->x + img * in_image, *dy = a->dy + img * out_image;
			for (size_t t = first; t < end; t++) {
				int g = (int)(t / (size_t)nblocks), c0 = (int)(t % (size_t)nblocks) * cols;
				int ncols = d.kcol - c0 < cols ? d.kcol - c0 : cols;
				int r0 = g * d.kcol + c0;
				const REAL *b_mat = x + (size_t)r0 * d.npos;
				GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, d.kg, ncols, d.npos, one,
					dy + (size_t)g * d.kg * d.npos, d.npos, b_mat, d.npos,
					img == 0 ? zero : one, a->dw + (size_t)g * d.kg * d.kcol + c0, d.kcol);
			}
		}
	}
}

/* The im2col path: slot s owns image ranges [G*s/slots, G*(s+1)/slots) of the G fixed ones;
 * range q covers images [n*q/G, n*(q+1)/G) and sums them in order, one full-width GEMM per
 * image and group, into dw (q == 0) or its partial (q - 1 of the fixed workspace). */
static void
conv_wgrad_ranges(void *ctx, size_t s0, size_t s1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	ConvDims d = conv_dims(cv);
	const size_t G = (size_t)wgrad_groups(cv), wsize = (size_t)cv->k * d.kcol;
	const size_t in_image = (size_t)cv->c * cv->h * cv->w, out_image = (size_t)cv->k * d.npos;
	const size_t part_bytes = round64(wsize * sizeof(REAL));
	for (size_t s = s0; s < s1; s++) {
		REAL *col = (REAL *)(a->ws + (G - 1) * part_bytes + s * a->slot_bytes);
		for (size_t q = G * s / (size_t)a->slots; q < G * (s + 1) / (size_t)a->slots; q++) {
			REAL *dst = q == 0 ? a->dw : (REAL *)(a->ws + (q - 1) * part_bytes);
			size_t first = (size_t)cv->n * q / G, end = (size_t)cv->n * (q + 1) / G;
			for (size_t img = first; img < end; img++) {
				const REAL *x = a->x + img * in_image, *dy = a->dy + img * out_image;
				im2col(cv, x, col);
				for (int g = 0; g < cv->groups; g++)
					GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, d.kg, d.kcol, d.npos, one,
						dy + (size_t)g * d.kg * d.npos, d.npos, col + (size_t)g * d.kcol * d.npos,
						d.npos, img == first ? zero : one, dst + (size_t)g * d.kg * d.kcol, d.kcol);
			}
		}
	}
}

typedef struct {
	REAL *dw;
	const unsigned char *parts;
	size_t part_bytes;
	int nparts;
} PartArgs;

/* dw[e] += partial 0, then partial 1, ... */
static void
wgrad_add_parts(void *ctx, size_t e0, size_t e1)
{
	const PartArgs *p = ctx;
	for (int q = 0; q < p->nparts; q++) {
		const REAL *restrict src = (const REAL *)(p->parts + (size_t)q * p->part_bytes);
		REAL *restrict dst = p->dw;
		for (size_t e = e0; e < e1; e++)
			dst[e] += src[e];
	}
}

/* Depthwise, output channel co: dw[co][i][j] = sum over images and output positions of
 * dy[img][co][oy][ox] * x[img][co / mult][oy*sh - ph + i][ox*sw - pw + j], in that order. */
static void
dw_backward_filter_channels(void *ctx, size_t c0, size_t c1)
{
	const ConvArgs *a = ctx;
	const CpuConv *cv = a->cv;
	const int mult = cv->k / cv->c;
	for (size_t co = c0; co < c1; co++) {
		for (int i = 0; i < cv->kh; i++) {
			int oy0, oy1;
			tap_range(cv->oh, cv->sh, cv->ph, i, cv->h, &oy0, &oy1);
			for (int j = 0; j < cv->kw; j++) {
				int ox0, ox1;
				tap_range(cv->ow, cv->sw, cv->pw, j, cv->w, &ox0, &ox1);
				int shift = j - cv->pw;
				Acc acc = 0;
				for (int img = 0; img < cv->n; img++) {
					const REAL *xp = a->x + ((size_t)img * cv->c + co / (size_t)mult) * cv->h * cv->w;
					const REAL *dyp = a->dy + ((size_t)img * cv->k + co) * cv->oh * cv->ow;
					for (int oy = oy0; oy < oy1; oy++) {
						const REAL *xr = xp + (size_t)(oy * cv->sh - cv->ph + i) * cv->w;
						const REAL *dyr = dyp + (size_t)oy * cv->ow;
						for (int ox = ox0; ox < ox1; ox++)
							acc += (Acc)dyr[ox] * xr[ox * cv->sw + shift];
					}
				}
				a->dw[(co * cv->kh + (size_t)i) * cv->kw + j] = (REAL)acc;
			}
		}
	}
}

int
FN(cpu_conv2d_backward_filter)(const CpuConv *cv, const REAL *x, const REAL *dy, REAL *dw,
	void *ws, size_t ws_bytes)
{
	ConvArgs a = {.cv = cv, .path = conv_path(cv), .x = x, .dy = dy, .dw = dw, .ws = ws};
	if (a.path == PATH_DEPTHWISE) {
		size_t work = (size_t)cv->n * cv->oh * cv->ow * cv->kh * cv->kw;
		cpu_parallel_for((size_t)cv->k, grain_for(work), dw_backward_filter_channels, &a);
		return 0;
	}
	if (a.path == PATH_POINTWISE) {
		a.slots = (int)(wgrad_items(cv) < (size_t)cpu_threads_count() ? wgrad_items(cv)
			: (size_t)cpu_threads_count());
		cpu_parallel_for((size_t)a.slots, 1, conv_wgrad_slots, &a);
		return 0;
	}
	a.slots = ws_slots(cv, CPU_CONV_BACKWARD_FILTER, ws, ws_bytes);
	a.slot_bytes = slot_bytes(cv, CPU_CONV_BACKWARD_FILTER);
	if (a.slots == 0)
		return -1;
	cpu_parallel_for((size_t)a.slots, 1, conv_wgrad_ranges, &a);
	size_t wsize = (size_t)cv->k * (cv->c / cv->groups) * cv->kh * cv->kw;
	PartArgs p = {.dw = dw, .parts = ws, .part_bytes = round64(wsize * sizeof(REAL)),
		.nparts = wgrad_groups(cv) - 1};
	if (p.nparts > 0)
		cpu_parallel_for(wsize, GRAIN, wgrad_add_parts, &p);
	return 0;
}

typedef struct {
	const REAL *dy;
	int n, c, hw;
	REAL *db;
	Epilogue pro; /* prologue: dy is the gradient of act_y = pro(...), masked as it is read */
	const REAL *act_y;
} BiasArgs;

/* Channel j sums its n planes of hw values, plane by plane, into lanes. */
NNC_MULTIVERSION static void
bias_channels(void *ctx, size_t c0, size_t c1)
{
	const BiasArgs *a = ctx;
	Acc l[LANES];
	for (size_t ch = c0; ch < c1; ch++) {
		lanes_clear(l);
		for (int img = 0; img < a->n; img++) {
			size_t at = ((size_t)img * a->c + ch) * a->hw;
			REAL buf[MASK_RUN];
			for (int e0 = 0; e0 < a->hw; e0 += MASK_RUN) {
				int len = a->hw - e0 < MASK_RUN ? a->hw - e0 : MASK_RUN;
				lanes_sum(l, grad_run(buf, a->dy + at, a->pro ? a->act_y + at : NULL, e0, len, a->pro), len);
			}
		}
		a->db[ch] = (REAL)lanes_total(l);
	}
}

void
FN(cpu_bias_backward)(const REAL *dy, int n, int c, int hw, REAL *db)
{
	FN(cpu_bias_backward_pro)(dy, NULL, EPI_NONE, n, c, hw, db);
}

void
FN(cpu_bias_backward_pro)(const REAL *dz, const REAL *act_y, Epilogue pro, int n, int c, int hw, REAL *db)
{
	BiasArgs a = {.dy = dz, .n = n, .c = c, .hw = hw, .db = db, .pro = pro, .act_y = act_y};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw), bias_channels, &a);
}

/* ---- batch norm: element (img, ch, i) of [n, c, hw] is at (img*c + ch)*hw + i ------------ */

typedef struct {
	const REAL *x, *dy, *mean, *invstd, *var, *w, *b;
	int n, c, hw;
	double eps;
	REAL *y, *dx, *var_unbiased, *mean_out, *invstd_out, *dw, *db;
	Epilogue act; /* epilogue, applied to each plane while it is in cache */
	Epilogue pro; /* prologue: dy is the gradient of act_y = pro(...), masked as it is read */
	const REAL *act_y;
} BnArgs;

static const REAL *
bn_plane(const REAL *t, const BnArgs *a, int img, size_t ch)
{
	return t + ((size_t)img * a->c + ch) * a->hw;
}

/* Two passes per channel: the mean, then the sum of squared deviations from it. */
NNC_MULTIVERSION static void
bn_stats_channels(void *ctx, size_t c0, size_t c1)
{
	const BnArgs *a = ctx;
	const Acc count = (Acc)a->n * a->hw;
	Acc l[LANES];
	for (size_t ch = c0; ch < c1; ch++) {
		lanes_clear(l);
		for (int img = 0; img < a->n; img++)
			lanes_sum(l, bn_plane(a->x, a, img, ch), a->hw);
		Acc m = lanes_total(l) / count;
		lanes_clear(l);
		for (int img = 0; img < a->n; img++)
			lanes_sqdev(l, bn_plane(a->x, a, img, ch), m, a->hw);
		Acc ss = lanes_total(l);
		a->mean_out[ch] = (REAL)m;
		a->invstd_out[ch] = (REAL)(1 / sqrt(ss / count + a->eps));
		if (a->var_unbiased)
			a->var_unbiased[ch] = (REAL)(ss / (count - 1));
	}
}

int
FN(cpu_batchnorm_stats)(const REAL *x, int n, int c, int hw, double eps, REAL *mean,
	REAL *invstd, REAL *var_unbiased)
{
	if (var_unbiased && (size_t)n * hw < 2)
		return -1;
	BnArgs a = {.x = x, .n = n, .c = c, .hw = hw, .eps = eps, .mean_out = mean,
		.invstd_out = invstd, .var_unbiased = var_unbiased};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw), bn_stats_channels, &a);
	return 0;
}

/* Plane (img, ch) = item img*c + ch. */
static void
bn_apply_planes(void *ctx, size_t p0, size_t p1)
{
	const BnArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++) {
		size_t ch = pl % (size_t)a->c;
		REAL scale = a->invstd[ch] * (a->w ? a->w[ch] : one), shift = a->b ? a->b[ch] : zero;
		REAL m = a->mean[ch];
		const REAL *x = a->x + pl * a->hw;
		REAL *y = a->y + pl * a->hw;
		for (int i = 0; i < a->hw; i++)
			y[i] = (x[i] - m) * scale + shift;
		act_plane(y, (size_t)a->hw, a->act);
	}
}

void
FN(cpu_batchnorm_apply)(const REAL *x, int n, int c, int hw, const REAL *mean,
	const REAL *invstd, const REAL *w, const REAL *b, REAL *y, Epilogue act)
{
	BnArgs a = {.x = x, .n = n, .c = c, .hw = hw, .mean = mean, .invstd = invstd, .w = w,
		.b = b, .y = y, .act = act};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), bn_apply_planes, &a);
}

/* Per channel: sum(dy) and sum(dy * (x - mean)), then (when dx is wanted) a second pass
 *   dx = (dy - (x - mean) * sum(dy*(x-mean)) * invstd^2 / count - sum(dy) / count) * invstd * w,
 * which is the documented formula with xhat expanded, in the form PyTorch's CPU kernel uses. */
NNC_MULTIVERSION static void
bn_backward_channels(void *ctx, size_t c0, size_t c1)
{
	const BnArgs *a = ctx;
	const Acc count = (Acc)a->n * a->hw;
	for (size_t ch = c0; ch < c1; ch++) {
		REAL m = a->mean[ch];
		Acc ls[LANES], lp[LANES];
		lanes_clear(ls);
		lanes_clear(lp);
		for (int img = 0; img < a->n; img++) {
			const REAL *dy = bn_plane(a->dy, a, img, ch), *x = bn_plane(a->x, a, img, ch);
			const REAL *y = a->pro ? bn_plane(a->act_y, a, img, ch) : NULL;
			REAL buf[MASK_RUN];
			for (int e0 = 0; e0 < a->hw; e0 += MASK_RUN) {
				int len = a->hw - e0 < MASK_RUN ? a->hw - e0 : MASK_RUN;
				lanes_dot(ls, lp, grad_run(buf, dy, y, e0, len, a->pro), x + e0, m, len);
			}
		}
		Acc sdy = lanes_total(ls), sdyx = lanes_total(lp);
		Acc inv = a->invstd[ch];
		if (a->dw)
			a->dw[ch] = (REAL)(sdyx * inv);
		if (a->db)
			a->db[ch] = (REAL)sdy;
		if (!a->dx)
			continue;
		REAL proj = (REAL)(sdyx * inv * inv / count), gmean = (REAL)(sdy / count);
		REAL gain = (REAL)(inv * (a->w ? (Acc)a->w[ch] : 1));
		for (int img = 0; img < a->n; img++) {
			const REAL *x = bn_plane(a->x, a, img, ch), *dy = bn_plane(a->dy, a, img, ch);
			const REAL *y = a->pro ? bn_plane(a->act_y, a, img, ch) : NULL;
			REAL *dx = a->dx + ((size_t)img * a->c + ch) * a->hw, buf[MASK_RUN];
			for (int e0 = 0; e0 < a->hw; e0 += MASK_RUN) {
				int len = a->hw - e0 < MASK_RUN ? a->hw - e0 : MASK_RUN;
				const REAL *g = grad_run(buf, dy, y, e0, len, a->pro);
				for (int i = 0; i < len; i++)
					dx[e0 + i] = (g[i] - (x[e0 + i] - m) * proj - gmean) * gain;
			}
		}
	}
}

void
FN(cpu_batchnorm_backward_data)(const REAL *dy, const REAL *x, int n, int c, int hw,
	const REAL *mean, const REAL *invstd, const REAL *w, REAL *dx, REAL *dw, REAL *db)
{
	FN(cpu_batchnorm_backward_data_pro)(dy, NULL, EPI_NONE, x, n, c, hw, mean, invstd, w, dx, dw, db);
}

void
FN(cpu_batchnorm_backward_data_pro)(const REAL *dz, const REAL *act_y, Epilogue pro, const REAL *x, int n,
	int c, int hw, const REAL *mean, const REAL *invstd, const REAL *w, REAL *dx, REAL *dw, REAL *db)
{
	BnArgs a = {.x = x, .dy = dz, .n = n, .c = c, .hw = hw, .mean = mean, .invstd = invstd,
		.w = w, .dx = dx, .dw = dw, .db = db, .pro = pro, .act_y = act_y};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw * 2), bn_backward_channels, &a);
}

void
FN(cpu_batchnorm_backward_params)(const REAL *dy, const REAL *x, int n, int c, int hw,
	const REAL *mean, const REAL *invstd, REAL *dw, REAL *db)
{
	FN(cpu_batchnorm_backward_params_pro)(dy, NULL, EPI_NONE, x, n, c, hw, mean, invstd, dw, db);
}

void
FN(cpu_batchnorm_backward_params_pro)(const REAL *dz, const REAL *act_y, Epilogue pro, const REAL *x,
	int n, int c, int hw, const REAL *mean, const REAL *invstd, REAL *dw, REAL *db)
{
	BnArgs a = {.x = x, .dy = dz, .n = n, .c = c, .hw = hw, .mean = mean, .invstd = invstd,
		.dw = dw, .db = db, .pro = pro, .act_y = act_y};
	cpu_parallel_for((size_t)c, grain_for((size_t)n * hw), bn_backward_channels, &a);
}

void
FN(cpu_batchnorm_update_running)(int c, double momentum, const REAL *mean,
	const REAL *var_unbiased, REAL *running_mean, REAL *running_var)
{
	for (int ch = 0; ch < c; ch++) {
		running_mean[ch] = (REAL)(momentum * mean[ch] + (1 - momentum) * running_mean[ch]);
		running_var[ch] = (REAL)(momentum * var_unbiased[ch] + (1 - momentum) * running_var[ch]);
	}
}

/* Plane (img, ch) = item img*c + ch, normalized with the running statistics. */
static void
bn_inference_planes(void *ctx, size_t p0, size_t p1)
{
	const BnArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++) {
		size_t ch = pl % (size_t)a->c;
		Acc inv = 1 / sqrt((Acc)a->var[ch] + a->eps);
		REAL scale = (REAL)(inv * (a->w ? (Acc)a->w[ch] : 1)), shift = a->b ? a->b[ch] : zero;
		REAL m = a->mean[ch];
		const REAL *x = a->x + pl * a->hw;
		REAL *y = a->y + pl * a->hw;
		for (int i = 0; i < a->hw; i++)
			y[i] = (x[i] - m) * scale + shift;
		act_plane(y, (size_t)a->hw, a->act);
	}
}

void
FN(cpu_batchnorm_inference)(const REAL *x, int n, int c, int hw, const REAL *running_mean,
	const REAL *running_var, double eps, const REAL *w, const REAL *b, REAL *y, Epilogue act)
{
	BnArgs a = {.x = x, .n = n, .c = c, .hw = hw, .mean = running_mean, .var = running_var,
		.eps = eps, .w = w, .b = b, .y = y, .act = act};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), bn_inference_planes, &a);
}

/* The inference batch norm's per-channel factor, as bn_inference_planes computes it. */
static REAL
bn_fold_factor(const REAL *var, const REAL *scale, double eps, int o)
{
	Acc inv = 1 / sqrt((Acc)var[o] + eps);
	return (REAL)(inv * (scale ? (Acc)scale[o] : 1));
}

void
FN(cpu_batchnorm_fold_weight)(const REAL *w, int out, size_t per_out, const REAL *var, double eps,
	const REAL *scale, REAL *wf)
{
	for (int o = 0; o < out; o++) {
		REAL a = bn_fold_factor(var, scale, eps, o);
		for (size_t i = 0; i < per_out; i++)
			wf[(size_t)o * per_out + i] = w[(size_t)o * per_out + i] * a;
	}
}

void
FN(cpu_batchnorm_fold_bias)(int out, const REAL *mean, const REAL *var, double eps, const REAL *scale,
	const REAL *shift, const REAL *bias, REAL *bf)
{
	for (int o = 0; o < out; o++) {
		REAL a = bn_fold_factor(var, scale, eps, o);
		bf[o] = ((bias ? bias[o] : zero) - mean[o]) * a + (shift ? shift[o] : zero);
	}
}

/* ---- channels-last (NHWC) per-channel kernels -------------------------------------------
 * Element (r, ch) of [rows, c] is at r*c + ch, rows = n*h*w (passes/layout.c). A reduction
 * runs over fixed blocks of CL_BLOCK rows, the parallel items: each block sums its rows in
 * order into its own partial sums per channel (whole rows at a time, so the inner loop runs
 * along contiguous channels), and the partials are then added block by block in order. The
 * blocks do not depend on the threads, so neither do the sums; their order is not the NCHW
 * kernels' (results agree within rounding, tests/layout.sh). Apply and inference are
 * elementwise over blocks of rows.
 *
 * The large operands (x, dy, the activation output, y, dx) are CpuIn / CpuOut: REAL or fp16
 * as stored. Every kernel walks its rows in runs (cl_run_next): as many whole rows as fit in
 * CPU_F16_RUN elements, or pieces of one row when a row does not fit. An fp16 run is converted
 * into a buffer on the stack as it is read, a result run computed there and rounded as it is
 * written; a REAL run is used in place. The arithmetic on each element is the same either
 * way, so an fp16 tensor gives exactly the bits of its widened copy. */
enum { CL_BLOCK = 256 };

/* N elements of T from element AT, as REAL: T's own, or converted into BUF. */
static inline const REAL *
cl_in(CpuIn t, size_t at, size_t n, REAL *buf)
{
	if (!t.p || !t.f16)
		return t.p ? (const REAL *)t.p + at : NULL;
	const nnc_half *h = (const nnc_half *)t.p + at;
#if NNC_KERNELS_F32
	half_to_float_n(h, buf, n);
#else
	for (size_t i = 0; i < n; i++)
		buf[i] = half_to_float(h[i]);
#endif
	return buf;
}

/* Where a run of T's elements from AT is computed: in place, or in BUF for cl_out. */
static inline REAL *
cl_out_run(CpuOut t, size_t at, REAL *buf)
{
	return t.f16 ? buf : (REAL *)t.p + at;
}

/* Stores a run computed by cl_out_run's pointer V (rounds it into an fp16 T). */
static inline void
cl_out(CpuOut t, size_t at, size_t n, const REAL *v)
{
	if (!t.f16)
		return;
#if NNC_KERNELS_F32
	half_from_float_n(v, (nnc_half *)t.p + at, n);
#else
	for (size_t i = 0; i < n; i++)
		((nnc_half *)t.p)[at + i] = half_from_float((float)v[i]);
#endif
}

/* A run of rows [r, r + nr) and channels [c0, c0 + len) of each, stored contiguously from
 * element r*c + c0 (nr > 1 only with whole rows: c0 = 0, len = c). */
typedef struct {
	size_t r, nr, c0, len;
} ClRun;

/* The run after U (U->nr == 0: the first) among rows [U->r, r1) of a [rows, c] tensor; false
 * after the last. */
static bool
cl_run_next(ClRun *u, size_t r1, size_t c)
{
	if (u->nr == 0) {
		u->c0 = 0;
	} else if (u->nr == 1 && u->c0 + u->len < c) {
		u->c0 += u->len;
	} else {
		u->r += u->nr;
		u->c0 = 0;
	}
	if (u->r >= r1)
		return false;
	if (c <= CPU_F16_RUN) {
		size_t fit = CPU_F16_RUN / c;
		u->nr = r1 - u->r < fit ? r1 - u->r : fit;
		u->len = c;
	} else {
		u->nr = 1;
		u->len = c - u->c0 < CPU_F16_RUN ? c - u->c0 : CPU_F16_RUN;
	}
	return true;
}

typedef struct {
	CpuIn x, dy, act_y;
	CpuOut y, dx;
	const REAL *mean, *invstd, *w, *b, *var;
	int rows, c;
	double eps;
	REAL *dw, *db;
	Epilogue act, pro;
	double *part; /* [blocks][2][c] partial sums, then [2][c] totals, then the dx factors */
	int what;     /* CL_SUM, CL_SQDEV, CL_DOT: what a block sums */
} ClArgs;

enum { CL_SUM, CL_SQDEV, CL_DOT };

static size_t
cl_blocks(int rows)
{
	return ((size_t)rows + CL_BLOCK - 1) / CL_BLOCK;
}

size_t
FN(cpu_cl_partials)(int rows, int c)
{
	return (cl_blocks(rows) + 3) * 2 * (size_t)c; /* blocks, totals, the dx factors */
}

/* The gradient elements of run U (dy through the prologue, as act_grad_run computes them):
 * dy itself, or made in G from the runs read into DBUF and YBUF. */
static inline const REAL *
cl_grad(const ClArgs *a, const ClRun *u, REAL *restrict g, REAL *dbuf, REAL *ybuf)
{
	size_t at = u->r * (size_t)a->c + u->c0, n = u->nr * u->len;
	const REAL *dz = cl_in(a->dy, at, n, dbuf);
	if (a->pro == EPI_NONE)
		return dz;
	act_grad_run(g, dz, cl_in(a->act_y, at, n, ybuf), (int)n, a->pro);
	return g;
}

/* Block b's sums: s[ch] += x (CL_SUM), += (x - mean)^2 (CL_SQDEV), or of the masked gradient g:
 * s[ch] += g and p[ch] += g * (x - mean) (CL_DOT; p unused without x, bias_grad). */
NNC_MULTIVERSION static void
cl_block_sums(void *ctx, size_t b0, size_t b1)
{
	const ClArgs *a = ctx;
	size_t c = (size_t)a->c;
	REAL xbuf[CPU_F16_RUN], dbuf[CPU_F16_RUN], ybuf[CPU_F16_RUN], gbuf[CPU_F16_RUN];
	for (size_t b = b0; b < b1; b++) {
		double *restrict s = a->part + b * 2 * c, *restrict p = s + c;
		for (size_t ch = 0; ch < 2 * c; ch++)
			s[ch] = 0;
		size_t r1 = (b + 1) * CL_BLOCK < (size_t)a->rows ? (b + 1) * CL_BLOCK : (size_t)a->rows;
		for (ClRun u = {.r = b * CL_BLOCK}; cl_run_next(&u, r1, c);) {
			size_t at = u.r * c + u.c0, len = u.len;
			const REAL *x = cl_in(a->x, at, u.nr * len, xbuf), *g = NULL;
			if (a->what == CL_DOT)
				g = cl_grad(a, &u, gbuf, dbuf, ybuf);
			for (size_t q = 0; q < u.nr; q++) {
				double *restrict sr = s + u.c0, *restrict pr = p + u.c0;
				const REAL *restrict m = a->mean ? a->mean + u.c0 : NULL;
				const REAL *restrict xr = x ? x + q * len : NULL;
				if (a->what == CL_SUM) {
					for (size_t k = 0; k < len; k++)
						sr[k] += xr[k];
				} else if (a->what == CL_SQDEV) {
					for (size_t k = 0; k < len; k++) {
						Acc d = (Acc)xr[k] - (Acc)m[k];
						sr[k] += d * d;
					}
				} else {
					const REAL *restrict gr = g + q * len;
					for (size_t k = 0; k < len; k++)
						sr[k] += gr[k];
					for (size_t k = 0; xr && k < len; k++)
						pr[k] += (Acc)gr[k] * ((Acc)xr[k] - (Acc)m[k]);
				}
			}
		}
	}
}

/* Every block's sums, then their totals block by block into part[blocks][..] (tot[0..2c)). */
static double *
cl_reduce(ClArgs *a, int what)
{
	size_t nb = cl_blocks(a->rows), c = (size_t)a->c;
	a->what = what;
	cpu_parallel_for(nb, 1, cl_block_sums, a);
	double *tot = a->part + nb * 2 * c;
	for (size_t ch = 0; ch < 2 * c; ch++)
		tot[ch] = 0;
	for (size_t b = 0; b < nb; b++)
		for (size_t ch = 0; ch < 2 * c; ch++)
			tot[ch] += a->part[b * 2 * c + ch];
	return tot;
}

int
FN(cpu_batchnorm_stats_cl)(CpuIn x, int rows, int c, double eps, REAL *mean, REAL *invstd, REAL *var_unbiased,
	double *part)
{
	if (var_unbiased && rows < 2)
		return -1;
	ClArgs a = {.x = x, .rows = rows, .c = c, .part = part};
	const Acc count = (Acc)rows;
	double *tot = cl_reduce(&a, CL_SUM);
	for (int ch = 0; ch < c; ch++)
		mean[ch] = (REAL)(tot[ch] / count);
	/* the deviations from the mean as stored (REAL), as the NCHW kernels' from their Acc mean
	 * differ by at most its rounding */
	a.mean = mean;
	tot = cl_reduce(&a, CL_SQDEV);
	for (int ch = 0; ch < c; ch++) {
		invstd[ch] = (REAL)(1 / sqrt(tot[ch] / count + eps));
		if (var_unbiased)
			var_unbiased[ch] = (REAL)(tot[ch] / (count - 1));
	}
	return 0;
}

/* Rows [r0, r1): y = act((x - mean) * scale + shift), scale and shift per channel computed as
 * the NCHW kernels compute them (so both layouts apply identical factors), once per range for
 * up to CL_FACTORS channels. */
enum { CL_FACTORS = 2048 };

static REAL
cl_scale(const ClArgs *a, int ch)
{
	if (a->var) {
		Acc inv = 1 / sqrt((Acc)a->var[ch] + a->eps);
		return (REAL)(inv * (a->w ? (Acc)a->w[ch] : 1));
	}
	return a->invstd[ch] * (a->w ? a->w[ch] : one);
}

NNC_MULTIVERSION static void
cl_apply_rows(void *ctx, size_t r0, size_t r1)
{
	const ClArgs *a = ctx;
	size_t c = (size_t)a->c;
	REAL scale[CL_FACTORS], shift[CL_FACTORS], xbuf[CPU_F16_RUN], ybuf[CPU_F16_RUN];
	bool held = c <= CL_FACTORS;
	for (size_t ch = 0; held && ch < c; ch++) {
		scale[ch] = cl_scale(a, (int)ch);
		shift[ch] = a->b ? a->b[ch] : zero;
	}
	for (ClRun u = {.r = r0}; cl_run_next(&u, r1, c);) {
		size_t at = u.r * c + u.c0, len = u.len, n = u.nr * len;
		const REAL *x = cl_in(a->x, at, n, xbuf);
		REAL *y = cl_out_run(a->y, at, ybuf);
		for (size_t q = 0; q < u.nr; q++) {
			const REAL *restrict xr = x + q * len, *restrict m = a->mean + u.c0;
			REAL *restrict yr = y + q * len;
			if (held)
				for (size_t k = 0; k < len; k++)
					yr[k] = (xr[k] - m[k]) * scale[u.c0 + k] + shift[u.c0 + k];
			else
				for (size_t k = 0; k < len; k++)
					yr[k] = (xr[k] - m[k]) * cl_scale(a, (int)(u.c0 + k)) + (a->b ? a->b[u.c0 + k] : zero);
		}
		act_plane(y, n, a->act);
		cl_out(a->y, at, n, y);
	}
}

void
FN(cpu_batchnorm_apply_cl)(CpuIn x, int rows, int c, const REAL *mean, const REAL *invstd, const REAL *w,
	const REAL *b, CpuOut y, Epilogue act)
{
	ClArgs a = {.x = x, .rows = rows, .c = c, .mean = mean, .invstd = invstd, .w = w, .b = b, .y = y, .act = act};
	cpu_parallel_for((size_t)rows, grain_for((size_t)c), cl_apply_rows, &a);
}

void
FN(cpu_batchnorm_inference_cl)(CpuIn x, int rows, int c, const REAL *running_mean, const REAL *running_var,
	double eps, const REAL *w, const REAL *b, CpuOut y, Epilogue act)
{
	ClArgs a = {.x = x, .rows = rows, .c = c, .mean = running_mean, .var = running_var, .eps = eps, .w = w, .b = b,
		.y = y, .act = act};
	cpu_parallel_for((size_t)rows, grain_for((size_t)c), cl_apply_rows, &a);
}

/* Rows [r0, r1) of dx = (g - (x - mean) * proj - gmean) * gain, the factors per channel in
 * part (REAL, after the totals). */
NNC_MULTIVERSION static void
cl_dx_rows(void *ctx, size_t r0, size_t r1)
{
	const ClArgs *a = ctx;
	size_t c = (size_t)a->c;
	const REAL *f = (const REAL *)(a->part + (cl_blocks(a->rows) + 1) * 2 * c);
	const REAL *proj = f, *gmean = f + c, *gain = f + 2 * c;
	REAL xbuf[CPU_F16_RUN], dbuf[CPU_F16_RUN], ybuf[CPU_F16_RUN], gbuf[CPU_F16_RUN], obuf[CPU_F16_RUN];
	for (ClRun u = {.r = r0}; cl_run_next(&u, r1, c);) {
		size_t at = u.r * c + u.c0, len = u.len, n = u.nr * len;
		const REAL *g = cl_grad(a, &u, gbuf, dbuf, ybuf), *x = cl_in(a->x, at, n, xbuf);
		REAL *dx = cl_out_run(a->dx, at, obuf);
		for (size_t q = 0; q < u.nr; q++) {
			const REAL *restrict gr = g + q * len, *restrict xr = x + q * len, *restrict m = a->mean + u.c0;
			const REAL *restrict pr = proj + u.c0, *restrict gm = gmean + u.c0, *restrict gn = gain + u.c0;
			REAL *restrict d = dx + q * len;
			for (size_t k = 0; k < len; k++)
				d[k] = (gr[k] - (xr[k] - m[k]) * pr[k] - gm[k]) * gn[k];
		}
		cl_out(a->dx, at, n, dx);
	}
}

void
FN(cpu_batchnorm_backward_cl)(CpuIn dz, CpuIn act_y, Epilogue pro, CpuIn x, int rows, int c, const REAL *mean,
	const REAL *invstd, const REAL *w, CpuOut dx, REAL *dw, REAL *db, double *part)
{
	ClArgs a = {.x = x, .dy = dz, .act_y = act_y, .pro = pro, .rows = rows, .c = c, .mean = mean, .invstd = invstd,
		.w = w, .dx = dx, .part = part};
	const Acc count = (Acc)rows;
	double *tot = cl_reduce(&a, CL_DOT);
	const double *sdy = tot, *sdyx = tot + c;
	REAL *f = (REAL *)(tot + 2 * (size_t)c), *proj = f, *gmean = f + c, *gain = f + 2 * (size_t)c;
	for (int ch = 0; ch < c; ch++) {
		Acc inv = invstd[ch];
		if (dw)
			dw[ch] = (REAL)(sdyx[ch] * inv);
		if (db)
			db[ch] = (REAL)sdy[ch];
		proj[ch] = (REAL)(sdyx[ch] * inv * inv / count);
		gmean[ch] = (REAL)(sdy[ch] / count);
		gain[ch] = (REAL)(inv * (w ? (Acc)w[ch] : 1));
	}
	if (dx.p)
		cpu_parallel_for((size_t)rows, grain_for((size_t)c * 3), cl_dx_rows, &a);
}

void
FN(cpu_bias_backward_cl)(CpuIn dz, CpuIn act_y, Epilogue pro, int rows, int c, REAL *db, double *part)
{
	ClArgs a = {.dy = dz, .act_y = act_y, .pro = pro, .rows = rows, .c = c, .part = part};
	double *tot = cl_reduce(&a, CL_DOT);
	for (int ch = 0; ch < c; ch++)
		db[ch] = (REAL)tot[ch];
}

/* Global average pooling: over planes of hw (NCHW), or [n, hw, c] images (NHWC, c set). */
typedef struct {
	const REAL *x;
	REAL *y;
	int hw, c;
} GapArgs;

/* [n, hw, c] -> [n, c], the mean over hw (in hw order); backward spreads dy / hw. */
static void
cl_gap_images(void *ctx, size_t i0, size_t i1)
{
	const GapArgs *a = ctx;
	for (size_t img = i0; img < i1; img++) {
		const REAL *x = a->x + img * (size_t)a->hw * a->c;
		for (int ch = 0; ch < a->c; ch++) {
			Acc s = 0;
			for (int r = 0; r < a->hw; r++)
				s += x[(size_t)r * a->c + ch];
			a->y[img * (size_t)a->c + ch] = (REAL)(s / a->hw);
		}
	}
}

void
FN(cpu_global_avgpool_forward_cl)(const REAL *x, int n, int c, int hw, REAL *y)
{
	GapArgs a = {.x = x, .y = y, .hw = hw, .c = c};
	cpu_parallel_for((size_t)n, grain_for((size_t)hw * c), cl_gap_images, &a);
}

/* Image img of dx [n, hw, c]: every pixel's channel ch gets dy[img, ch] / hw (as
 * gap_bwd_planes divides). */
static void
cl_gap_bwd_images(void *ctx, size_t i0, size_t i1)
{
	const GapArgs *a = ctx;
	for (size_t img = i0; img < i1; img++)
		for (int r = 0; r < a->hw; r++)
			for (int ch = 0; ch < a->c; ch++)
				a->y[(img * (size_t)a->hw + (size_t)r) * a->c + ch] = a->x[img * (size_t)a->c + ch] / (REAL)a->hw;
}

void
FN(cpu_global_avgpool_backward_cl)(const REAL *dy, int n, int c, int hw, REAL *dx)
{
	GapArgs a = {.x = dy, .y = dx, .hw = hw, .c = c};
	cpu_parallel_for((size_t)n, grain_for((size_t)hw * c), cl_gap_bwd_images, &a);
}

/* ---- elementwise ------------------------------------------------------------------------- */

typedef struct {
	const REAL *a, *b;
	REAL *y;
	REAL s;
} EwArgs;

/* Item i of each NNC_EW formula (runtime/ew.h): ew1_OP reads a[i] only, ew2_OP a[i] and b[i]. */
#define NNC_ERF erf
#define NNC_EXP exp
#define NNC_TANH tanh
#define EW_KERNELS(op, swap)                              \
	static void                                          \
	ew1_##op(void *ctx, size_t i0, size_t i1)            \
	{                                                    \
		const EwArgs *e = ctx;                           \
		for (size_t i = i0; i < i1; i++) {               \
			REAL a = e->a[i], b = zero;                  \
			(void)b;                                     \
			e->y[i] = NNC_EWF_##op(REAL, a, b);          \
		}                                                \
	}                                                    \
	static void                                          \
	ew2_##op(void *ctx, size_t i0, size_t i1)            \
	{                                                    \
		const EwArgs *e = ctx;                           \
		for (size_t i = i0; i < i1; i++) {               \
			REAL a = e->a[i], b = e->b[i];               \
			(void)b;                                     \
			e->y[i] = NNC_EWF_##op(REAL, a, b);          \
		}                                                \
	}
NNC_EW(EW_KERNELS)
#undef EW_KERNELS

static void
scale_ew(void *ctx, size_t i0, size_t i1)
{
	const EwArgs *e = ctx;
	for (size_t i = i0; i < i1; i++)
		e->y[i] = e->s * e->a[i];
}

/* B is NULL for a unary formula. */
/* Each NNC_EW formula's item function: [op][0] reads a only, [op][1] a and b (B non-NULL). */
static CpuTask *const ew_fns[NEW][2] = {
#define E(op, swap) [EW_##op] = {ew1_##op, ew2_##op},
	NNC_EW(E)
#undef E
};

void
FN(cpu_ew_range)(Elementwise op, const REAL *a, const REAL *b, REAL *y, size_t i0, size_t i1)
{
	EwArgs e = {.a = a, .b = b, .y = y};
	ew_fns[op][b != NULL](&e, i0, i1);
}

static void
elementwise(CpuTask *fn, const REAL *a, const REAL *b, REAL *y, REAL s, size_t count)
{
	EwArgs e = {.a = a, .b = b, .y = y, .s = s};
	cpu_parallel_for(count, GRAIN, fn, &e);
}

void
FN(cpu_ew)(Elementwise op, const REAL *a, const REAL *b, REAL *y, size_t count)
{
	elementwise(ew_fns[op][b != NULL], a, b, y, 0, count);
}

void
FN(cpu_relu_forward)(const REAL *x, REAL *y, size_t count)
{
	elementwise(ew1_relu, x, NULL, y, 0, count);
}

void
FN(cpu_relu_backward)(const REAL *x, const REAL *dy, REAL *dx, size_t count)
{
	elementwise(ew2_relu_bwd, x, dy, dx, 0, count);
}

void
FN(cpu_relu6_forward)(const REAL *x, REAL *y, size_t count)
{
	elementwise(ew1_relu6, x, NULL, y, 0, count);
}

void
FN(cpu_relu6_backward)(const REAL *x, const REAL *dy, REAL *dx, size_t count)
{
	elementwise(ew2_relu6_bwd, x, dy, dx, 0, count);
}

void
FN(cpu_gelu_forward)(const REAL *x, REAL *y, size_t count)
{
	elementwise(ew1_gelu, x, NULL, y, 0, count);
}

void
FN(cpu_gelu_backward)(const REAL *x, const REAL *dy, REAL *dx, size_t count)
{
	elementwise(ew2_gelu_bwd, x, dy, dx, 0, count);
}

void
FN(cpu_tanh_forward)(const REAL *x, REAL *y, size_t count)
{
	elementwise(ew1_tanh, x, NULL, y, 0, count);
}

void
FN(cpu_tanh_backward)(const REAL *y, const REAL *dy, REAL *dx, size_t count)
{
	elementwise(ew2_tanh_bwd, y, dy, dx, 0, count);
}

void
FN(cpu_dropout_apply)(const REAL *x, const REAL *mask, REAL *y, size_t count)
{
	elementwise(ew2_mulv, x, mask, y, 0, count);
}

void
FN(cpu_add)(const REAL *a, const REAL *b, REAL *y, size_t count)
{
	elementwise(ew2_add, a, b, y, 0, count);
}

/* Items [i0, i1): the sum, then the epilogue on that block while it is in cache. */
static void
add_act_ew(void *ctx, size_t i0, size_t i1)
{
	const EwArgs *e = ctx;
	for (size_t i = i0; i < i1; i++)
		e->y[i] = e->a[i] + e->b[i];
	act_plane(e->y + i0, i1 - i0, (Epilogue)e->s);
}

void
FN(cpu_add_act)(const REAL *a, const REAL *b, REAL *y, size_t count, Epilogue act)
{
	elementwise(add_act_ew, a, b, y, (REAL)act, count);
}

static void
act_ew(void *ctx, size_t i0, size_t i1)
{
	const EwArgs *e = ctx;
	act_plane(e->y + i0, i1 - i0, (Epilogue)e->s);
}

void
FN(cpu_act)(REAL *y, size_t count, Epilogue act)
{
	if (act != EPI_NONE)
		elementwise(act_ew, NULL, NULL, y, (REAL)act, count);
}

void
FN(cpu_scale)(const REAL *x, double s, REAL *y, size_t count)
{
	elementwise(scale_ew, x, NULL, y, (REAL)s, count);
}

/* ---- pooling: plane pl = img*c + ch; its pixel e (iy*w + ix) of x is at plane_at(x) +
 * e*step: NCHW planes are contiguous (step 1), NHWC ones interleaved (step c). Either way each
 * plane is computed alone, in the same order, so both layouts give the same bits. ---------- */

typedef struct {
	const CpuPool *p;
	const REAL *x, *dy;
	REAL *y, *dx;
} PoolArgs;

/* Plane PL of an [n, c, H, W] tensor (H*W = hw pixels) in the pool's layout, and its step. */
static size_t
plane_at(const CpuPool *p, size_t pl, size_t hw)
{
	return p->nhwc ? pl / (size_t)p->c * hw * p->c + pl % (size_t)p->c : pl * hw;
}

static size_t
pool_step(const CpuPool *p)
{
	return p->nhwc ? (size_t)p->c : 1;
}

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1), columns [*x0, *x1). */
static void
pool_window(const CpuPool *p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
	int ys = oy * p->sh - p->ph, xs = ox * p->sw - p->pw;
	*y0 = ys > 0 ? ys : 0;
	*y1 = ys + p->kh < p->h ? ys + p->kh : p->h;
	*x0 = xs > 0 ? xs : 0;
	*x1 = xs + p->kw < p->w ? xs + p->kw : p->w;
}

/* The offset in the plane of the window's maximum: the first in row-major order, or the last
 * NaN; -1 for a window entirely in padding. */
static ptrdiff_t
window_argmax(const CpuPool *p, const REAL *plane, int oy, int ox)
{
	size_t step = pool_step(p);
	int y0, y1, x0, x1;
	pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
	ptrdiff_t arg = -1;
	REAL best = -INFINITY;
	for (int iy = y0; iy < y1; iy++)
		for (int ix = x0; ix < x1; ix++) {
			REAL v = plane[((size_t)iy * p->w + ix) * step];
			if (v > best || isnan(v) || arg < 0) {
				best = v;
				arg = (ptrdiff_t)iy * p->w + ix;
			}
		}
	return arg;
}

static void
maxpool_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		const REAL *x = a->x + plane_at(p, pl, (size_t)p->h * p->w);
		REAL *y = a->y + plane_at(p, pl, (size_t)p->oh * p->ow);
		size_t step = pool_step(p);
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				ptrdiff_t arg = window_argmax(p, x, oy, ox);
				y[(size_t)(oy * p->ow + ox) * step] = arg < 0 ? -INFINITY : x[(size_t)arg * step];
			}
	}
}

static void
maxpool_bwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		size_t in = plane_at(p, pl, (size_t)p->h * p->w), step = pool_step(p);
		const REAL *x = a->x + in, *dy = a->dy + plane_at(p, pl, (size_t)p->oh * p->ow);
		REAL *dx = a->dx + in;
		for (size_t e = 0; e < (size_t)p->h * p->w; e++)
			dx[e * step] = zero;
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				ptrdiff_t arg = window_argmax(p, x, oy, ox);
				if (arg >= 0)
					dx[(size_t)arg * step] += dy[(size_t)(oy * p->ow + ox) * step];
			}
	}
}

/* PyTorch's divisor with count_include_pad: the window clipped to the padded input, before
 * clipping to the input itself (kh*kw whenever ceil_mode is off, as here). */
static int
avg_divisor(const CpuPool *p, int oy, int ox)
{
	int ys = oy * p->sh - p->ph, xs = ox * p->sw - p->pw;
	int ye = ys + p->kh < p->h + p->ph ? ys + p->kh : p->h + p->ph;
	int xe = xs + p->kw < p->w + p->pw ? xs + p->kw : p->w + p->pw;
	return (ye - ys) * (xe - xs);
}

static void
avgpool_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		const REAL *x = a->x + plane_at(p, pl, (size_t)p->h * p->w);
		REAL *y = a->y + plane_at(p, pl, (size_t)p->oh * p->ow);
		size_t step = pool_step(p);
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				int y0, y1, x0, x1;
				pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
				Acc s = 0;
				for (int iy = y0; iy < y1; iy++)
					for (int ix = x0; ix < x1; ix++)
						s += x[((size_t)iy * p->w + ix) * step];
				y[(size_t)(oy * p->ow + ox) * step] = (REAL)(s / avg_divisor(p, oy, ox));
			}
	}
}

static void
avgpool_bwd_planes(void *ctx, size_t p0, size_t p1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	for (size_t pl = p0; pl < p1; pl++) {
		const REAL *dy = a->dy + plane_at(p, pl, (size_t)p->oh * p->ow);
		REAL *dx = a->dx + plane_at(p, pl, (size_t)p->h * p->w);
		size_t step = pool_step(p);
		for (size_t e = 0; e < (size_t)p->h * p->w; e++)
			dx[e * step] = zero;
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++) {
				int y0, y1, x0, x1;
				pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
				REAL g = dy[(size_t)(oy * p->ow + ox) * step] / (REAL)avg_divisor(p, oy, ox);
				for (int iy = y0; iy < y1; iy++)
					for (int ix = x0; ix < x1; ix++)
						dx[((size_t)iy * p->w + ix) * step] += g;
			}
	}
}

/* Max pooling over NHWC with the channels as the vector lanes, CL_POOL channels at a time:
 * each channel's window maximum (and for the backward its position) is found as
 * window_argmax finds it -- the first maximum in row-major order, or the last NaN -- and the
 * backward adds each window's gradient at its maximum in window order, image by image, as
 * maxpool_bwd_planes does plane by plane: the same bits as the NCHW kernels. */
enum { CL_POOL = 256 };

/* The maxima of window (oy, ox) of image IMG for channels [c0, c0 + len): values into BEST,
 * positions (iy * w + ix) into ARG (-1 for a window entirely in padding). */
NNC_MULTIVERSION static void
cl_window_max(const CpuPool *p, const REAL *img, int oy, int ox, int c0, int len, REAL *restrict best,
	int *restrict arg)
{
	int y0, y1, x0, x1;
	pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
	for (int k = 0; k < len; k++) {
		best[k] = -INFINITY;
		arg[k] = -1;
	}
	for (int iy = y0; iy < y1; iy++)
		for (int ix = x0; ix < x1; ix++) {
			const REAL *v = img + ((size_t)iy * p->w + ix) * p->c + c0;
			int at = iy * p->w + ix;
			for (int k = 0; k < len; k++)
				if (v[k] > best[k] || isnan(v[k]) || arg[k] < 0) {
					best[k] = v[k];
					arg[k] = at;
				}
		}
}

/* Images [i0, i1): the forward's maxima into y, or (with dx) the backward's gradients, every
 * window in row-major order. */
static void
cl_maxpool_images(void *ctx, size_t i0, size_t i1)
{
	const PoolArgs *a = ctx;
	const CpuPool *p = a->p;
	REAL best[CL_POOL];
	int arg[CL_POOL];
	size_t in = (size_t)p->h * p->w * p->c, out = (size_t)p->oh * p->ow * p->c;
	for (size_t img = i0; img < i1; img++) {
		const REAL *x = a->x + img * in;
		if (a->dx)
			fill(a->dx + img * in, in, zero);
		for (int oy = 0; oy < p->oh; oy++)
			for (int ox = 0; ox < p->ow; ox++)
				for (int c0 = 0; c0 < p->c; c0 += CL_POOL) {
					int len = p->c - c0 < CL_POOL ? p->c - c0 : CL_POOL;
					size_t o = img * out + ((size_t)oy * p->ow + ox) * p->c + c0;
					cl_window_max(p, x, oy, ox, c0, len, best, arg);
					for (int k = 0; k < len && !a->dx; k++)
						a->y[o + k] = best[k];
					for (int k = 0; k < len && a->dx; k++)
						if (arg[k] >= 0)
							a->dx[img * in + (size_t)arg[k] * p->c + c0 + k] += a->dy[o + k];
				}
	}
}

static void
pool_run(CpuTask *fn, const CpuPool *p, const REAL *x, const REAL *dy, REAL *y, REAL *dx)
{
	PoolArgs a = {.p = p, .x = x, .dy = dy, .y = y, .dx = dx};
	size_t work = (size_t)p->oh * p->ow * p->kh * p->kw;
	cpu_parallel_for((size_t)p->n * p->c, grain_for(work), fn, &a);
}

void
FN(cpu_maxpool2d_forward)(const CpuPool *p, const REAL *x, REAL *y)
{
	if (p->nhwc) {
		PoolArgs a = {.p = p, .x = x, .y = y};
		cpu_parallel_for((size_t)p->n, 1, cl_maxpool_images, &a);
		return;
	}
	pool_run(maxpool_fwd_planes, p, x, NULL, y, NULL);
}

void
FN(cpu_maxpool2d_backward)(const CpuPool *p, const REAL *x, const REAL *dy, REAL *dx)
{
	if (p->nhwc) {
		PoolArgs a = {.p = p, .x = x, .dy = dy, .dx = dx};
		cpu_parallel_for((size_t)p->n, 1, cl_maxpool_images, &a);
		return;
	}
	pool_run(maxpool_bwd_planes, p, x, dy, NULL, dx);
}

void
FN(cpu_avgpool2d_forward)(const CpuPool *p, const REAL *x, REAL *y)
{
	pool_run(avgpool_fwd_planes, p, x, NULL, y, NULL);
}

void
FN(cpu_avgpool2d_backward)(const CpuPool *p, const REAL *dy, REAL *dx)
{
	pool_run(avgpool_bwd_planes, p, NULL, dy, NULL, dx);
}


/* Item pl = img*c + ch: the mean of plane pl (forward) or its gradient spread (backward). */
static void
gap_fwd_planes(void *ctx, size_t p0, size_t p1)
{
	const GapArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++) {
		const REAL *x = a->x + pl * a->hw;
		Acc s = 0;
		for (int i = 0; i < a->hw; i++)
			s += x[i];
		a->y[pl] = (REAL)(s / a->hw);
	}
}

static void
gap_bwd_planes(void *ctx, size_t p0, size_t p1)
{
	const GapArgs *a = ctx;
	for (size_t pl = p0; pl < p1; pl++)
		fill(a->y + pl * a->hw, (size_t)a->hw, a->x[pl] / (REAL)a->hw);
}

void
FN(cpu_global_avgpool_forward)(const REAL *x, int n, int c, int hw, REAL *y)
{
	GapArgs a = {.x = x, .y = y, .hw = hw};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), gap_fwd_planes, &a);
}

void
FN(cpu_global_avgpool_backward)(const REAL *dy, int n, int c, int hw, REAL *dx)
{
	GapArgs a = {.x = dy, .y = dx, .hw = hw};
	cpu_parallel_for((size_t)n * c, grain_for((size_t)hw), gap_bwd_planes, &a);
}

/* ---- dense ------------------------------------------------------------------------------- */

typedef struct {
	const REAL *x, *w, *b, *dy;
	REAL *y, *dx, *dw;
	int n, f, u;
	Epilogue act; /* forward epilogue, applied to each block of rows after its bias */
} DenseArgs;

/* Item t: batch rows [t*DENSE_ROWS, ...) of y = x . w^T (+ b). */
static void
dense_fwd_blocks(void *ctx, size_t t0, size_t t1)
{
	const DenseArgs *a = ctx;
	for (size_t t = t0; t < t1; t++) {
		int r0 = (int)t * DENSE_ROWS, rows = a->n - r0 < DENSE_ROWS ? a->n - r0 : DENSE_ROWS;
		REAL *y = a->y + (size_t)r0 * a->u;
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, a->u, a->f, one,
			a->x + (size_t)r0 * a->f, a->f, a->w, a->f, zero, y, a->u);
		if (a->b)
			for (int r = 0; r < rows; r++)
				for (int j = 0; j < a->u; j++)
					y[(size_t)r * a->u + j] += a->b[j];
		act_plane(y, (size_t)rows * a->u, a->act);
	}
}

/* Item t: batch rows [t*DENSE_ROWS, ...) of dx = dy . w. */
static void
dense_bwd_data_blocks(void *ctx, size_t t0, size_t t1)
{
	const DenseArgs *a = ctx;
	for (size_t t = t0; t < t1; t++) {
		int r0 = (int)t * DENSE_ROWS, rows = a->n - r0 < DENSE_ROWS ? a->n - r0 : DENSE_ROWS;
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->f, a->u, one,
			a->dy + (size_t)r0 * a->u, a->u, a->w, a->f, zero, a->dx + (size_t)r0 * a->f, a->f);
	}
}

/* Item t: feature columns [t*WGRAD_COLS, ...) of dw = dy^T . x, the batch summed inside one
 * GEMM. */
static void
dense_wgrad_blocks(void *ctx, size_t t0, size_t t1)
{
	const DenseArgs *a = ctx;
	for (size_t t = t0; t < t1; t++) {
		int c0 = (int)t * WGRAD_COLS, ncols = a->f - c0 < WGRAD_COLS ? a->f - c0 : WGRAD_COLS;
		GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, a->u, ncols, a->n, one, a->dy, a->u,
			a->x + c0, a->f, zero, a->dw + c0, a->f);
	}
}

void
FN(cpu_dense_forward)(const REAL *x, const REAL *w, const REAL *b, int n, int f, int u, REAL *y)
{
	FN(cpu_dense_forward_act)(x, w, b, n, f, u, y, EPI_NONE);
}

void
FN(cpu_dense_forward_act)(const REAL *x, const REAL *w, const REAL *b, int n, int f, int u, REAL *y,
	Epilogue act)
{
	DenseArgs a = {.x = x, .w = w, .b = b, .y = y, .n = n, .f = f, .u = u, .act = act};
	cpu_parallel_for((size_t)(n + DENSE_ROWS - 1) / DENSE_ROWS, 1, dense_fwd_blocks, &a);
}

void
FN(cpu_dense_backward_data)(const REAL *dy, const REAL *w, int n, int f, int u, REAL *dx)
{
	DenseArgs a = {.w = w, .dy = dy, .dx = dx, .n = n, .f = f, .u = u};
	cpu_parallel_for((size_t)(n + DENSE_ROWS - 1) / DENSE_ROWS, 1, dense_bwd_data_blocks, &a);
}

void
FN(cpu_dense_backward_weight)(const REAL *dy, const REAL *x, int n, int f, int u, REAL *dw)
{
	DenseArgs a = {.x = x, .dy = dy, .dw = dw, .n = n, .f = f, .u = u};
	cpu_parallel_for((size_t)(f + WGRAD_COLS - 1) / WGRAD_COLS, 1, dense_wgrad_blocks, &a);
}

/* ---- dropout ----------------------------------------------------------------------------- */

typedef struct {
	const CpuRng *rng;
	uint64_t threshold; /* drop when the 32-bit output is below it */
	REAL keep;
	REAL *mask;
} DropArgs;

/* mask[i] comes from stream output rng->counter + i; a Philox block serves four neighbours. */
static void
dropout_mask_range(void *ctx, size_t i0, size_t i1)
{
	const DropArgs *a = ctx;
	uint32_t block[4];
	for (size_t i = i0; i < i1; i++) {
		uint64_t idx = a->rng->counter + i;
		if (i == i0 || (idx & 3) == 0)
			cpu_rng_block(a->rng, idx >> 2, block);
		a->mask[i] = block[idx & 3] >= a->threshold ? a->keep : zero;
	}
}

void
FN(cpu_dropout_mask)(CpuRng *rng, double p, REAL *mask, size_t count)
{
	DropArgs a = {.rng = rng, .mask = mask};
	if (p >= 1) {
		a.threshold = (uint64_t)1 << 32;
		a.keep = 0;
	} else {
		a.threshold = p > 0 ? (uint64_t)(p * 4294967296.0) : 0;
		a.keep = (REAL)(1 / (1 - (p > 0 ? p : 0)));
	}
	cpu_parallel_for(count, GRAIN, dropout_mask_range, &a);
	cpu_rng_skip(rng, count);
}

/* ---- concat along axis 1: item (img, i) copies input i's [cs[i], hw] block of image img --- */

typedef struct {
	int k, hw;
	const int *cs;
	int ctotal;
	const REAL *const *xs;
	REAL *const *dxs;
	const REAL *dy;
	REAL *y;
} ConcatArgs;

static void
concat_items(void *ctx, size_t t0, size_t t1)
{
	const ConcatArgs *a = ctx;
	for (size_t t = t0; t < t1; t++) {
		size_t img = t / (size_t)a->k;
		int in = (int)(t % (size_t)a->k), offset = 0;
		for (int j = 0; j < in; j++)
			offset += a->cs[j];
		size_t len = (size_t)a->cs[in] * a->hw;
		size_t whole = ((size_t)img * a->ctotal + offset) * a->hw, part = img * len;
		if (a->y)
			memcpy(a->y + whole, a->xs[in] + part, len * sizeof(REAL));
		else
			memcpy(a->dxs[in] + part, a->dy + whole, len * sizeof(REAL));
	}
}

static void
concat_run(ConcatArgs *a, int n)
{
	if (a->k < 1)
		return;
	a->ctotal = 0;
	for (int j = 0; j < a->k; j++)
		a->ctotal += a->cs[j];
	size_t avg = (size_t)a->ctotal * a->hw / (size_t)a->k;
	cpu_parallel_for((size_t)n * a->k, grain_for(avg), concat_items, a);
}

void
FN(cpu_concat_forward)(int k, const REAL *const *xs, const int *cs, int n, int hw, REAL *y)
{
	ConcatArgs a = {.k = k, .hw = hw, .cs = cs, .xs = xs, .y = y};
	concat_run(&a, n);
}

void
FN(cpu_concat_backward)(int k, const REAL *dy, const int *cs, int n, int hw, REAL *const *dxs)
{
	ConcatArgs a = {.k = k, .hw = hw, .cs = cs, .dxs = dxs, .dy = dy};
	concat_run(&a, n);
}

/* ---- softmax and cross-entropy: row r of [n, k] is at r*k -------------------------------- */

typedef struct {
	const REAL *x, *dy;
	const int32_t *labels;
	REAL *y;
	int k;
	Acc eps, scale;
} RowArgs;

static REAL
row_max(const REAL *x, int k)
{
	REAL m = x[0];
	for (int j = 1; j < k; j++)
		if (x[j] > m)
			m = x[j];
	return m;
}

/* Sum over the row of exp(x - m), in Acc. */
static Acc
row_expsum(const REAL *x, int k, REAL m)
{
	Acc s = 0;
	for (int j = 0; j < k; j++)
		s += exp((Acc)x[j] - m);
	return s;
}

static void
softmax_fwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const REAL *x = a->x + r * a->k;
		REAL *y = a->y + r * a->k;
		REAL m = row_max(x, a->k);
		Acc s = row_expsum(x, a->k, m);
		for (int j = 0; j < a->k; j++)
			y[j] = (REAL)(exp((Acc)x[j] - m) / s);
	}
}

static void
softmax_bwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	for (size_t r = r0; r < r1; r++) {
		const REAL *y = a->x + r * a->k, *dy = a->dy + r * a->k;
		REAL *dx = a->y + r * a->k;
		Acc dot = 0;
		for (int j = 0; j < a->k; j++)
			dot += (Acc)dy[j] * y[j];
		for (int j = 0; j < a->k; j++)
			dx[j] = y[j] * (dy[j] - (REAL)dot);
	}
}

void
FN(cpu_softmax_forward)(const REAL *x, int n, int k, REAL *y)
{
	RowArgs a = {.x = x, .y = y, .k = k};
	cpu_parallel_for((size_t)n, grain_for((size_t)k * 4), softmax_fwd_rows, &a);
}

void
FN(cpu_softmax_backward)(const REAL *y, const REAL *dy, int n, int k, REAL *dx)
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

/* Per row, with lse = log sum exp: -log p_label = lse - x_label and
 * mean_j -log p_j = lse - mean_j x_j. */
int
FN(cpu_softmax_xent_forward)(const REAL *logits, const int32_t *labels, int n, int k, double eps,
	REAL *loss)
{
	if (!labels_valid(labels, n, k))
		return -1;
	Acc total = 0;
	for (int r = 0; r < n; r++) {
		const REAL *x = logits + (size_t)r * k;
		REAL m = row_max(x, k);
		Acc lse = m + log(row_expsum(x, k, m)), xsum = 0;
		for (int j = 0; j < k; j++)
			xsum += x[j];
		Acc nll = lse - x[labels[r]], smooth = lse - xsum / k;
		total += (1 - eps) * nll + eps * smooth;
	}
	*loss = (REAL)(total / n);
	return 0;
}

static void
xent_bwd_rows(void *ctx, size_t r0, size_t r1)
{
	const RowArgs *a = ctx;
	const Acc uniform = a->eps / a->k;
	for (size_t r = r0; r < r1; r++) {
		const REAL *x = a->x + r * a->k;
		REAL *dx = a->y + r * a->k;
		REAL m = row_max(x, a->k);
		Acc s = row_expsum(x, a->k, m);
		for (int j = 0; j < a->k; j++) {
			Acc target = uniform + (j == a->labels[r] ? 1 - a->eps : 0);
			dx[j] = (REAL)(a->scale * (exp((Acc)x[j] - m) / s - target));
		}
	}
}

int
FN(cpu_softmax_xent_backward)(const REAL *logits, const int32_t *labels, int n, int k,
	double eps, double dloss, REAL *dlogits)
{
	if (!labels_valid(labels, n, k))
		return -1;
	RowArgs a = {.x = logits, .labels = labels, .y = dlogits, .k = k, .eps = eps,
		.scale = dloss / n};
	cpu_parallel_for((size_t)n, grain_for((size_t)k * 4), xent_bwd_rows, &a);
	return 0;
}

long
FN(cpu_count_correct)(const REAL *logits, const int32_t *labels, int n, int k)
{
	if (!labels_valid(labels, n, k))
		return -1;
	long correct = 0;
	for (int r = 0; r < n; r++) {
		const REAL *x = logits + (size_t)r * k;
		int best = 0;
		for (int j = 1; j < k; j++)
			if (x[j] > x[best])
				best = j;
		correct += best == labels[r];
	}
	return correct;
}

/* ---- optimizers --------------------------------------------------------------------------------
 * Scalars are formed in double, as PyTorch forms them in Python, and rounded to REAL where
 * PyTorch passes them to a tensor op; tensor arithmetic follows PyTorch's operation order:
 *   add(t, alpha=a)   self + a*t          lerp(end, w)   self + w*(end-self) if |w| < 0.5,
 *   addcmul(t1,t2,v)  self + v*t1*t2                     else end - (end-self)*(1-w)
 *   addcdiv(t1,t2,v)  self + v*t1/t2      (left to right). */

typedef struct {
	REAL *p, *buf, *m, *v;
	const REAL *g;
	bool first, nesterov, decoupled;
	REAL lr_neg, momentum, wd, decay, w1, beta2, w2, bc2_sqrt, eps, step_neg;
} OptArgs;

static void
sgd_range(void *ctx, size_t i0, size_t i1)
{
	const OptArgs *o = ctx;
	for (size_t i = i0; i < i1; i++) {
		REAL d = o->g[i];
		if (o->wd != 0)
			d = d + o->wd * o->p[i];
		if (o->buf) {
			o->buf[i] = o->first ? d : o->buf[i] * o->momentum + d;
			d = o->nesterov ? d + o->momentum * o->buf[i] : o->buf[i];
		}
		o->p[i] = o->p[i] + o->lr_neg * d;
	}
}

void
FN(cpu_sgd_step)(const CpuSgd *s, long step, REAL *p, const REAL *g, REAL *buf, size_t count)
{
	OptArgs o = {.p = p, .g = g, .buf = s->momentum != 0 ? buf : NULL, .first = step <= 1,
		.nesterov = s->nesterov, .lr_neg = (REAL)-s->lr, .momentum = (REAL)s->momentum,
		.wd = (REAL)s->weight_decay};
	cpu_parallel_for(count, GRAIN, sgd_range, &o);
}

static void
adam_range(void *ctx, size_t i0, size_t i1)
{
	const OptArgs *o = ctx;
	for (size_t i = i0; i < i1; i++) {
		REAL g = o->g[i], p = o->p[i];
		if (o->decoupled)
			p = p * o->decay;
		else if (o->wd != 0)
			g = g + o->wd * p;
		REAL m = o->m[i];
		m = o->w1 < half ? m + o->w1 * (g - m) : g - (g - m) * (one - o->w1);
		REAL v = o->v[i] * o->beta2;
		v = v + o->w2 * g * g;
		REAL denom = sqrt(v) / o->bc2_sqrt + o->eps;
		o->m[i] = m;
		o->v[i] = v;
		o->p[i] = p + o->step_neg * m / denom;
	}
}

void
FN(cpu_adam_step)(const CpuAdam *a, long step, REAL *p, const REAL *g, REAL *m, REAL *v,
	size_t count)
{
	double bc1 = 1 - pow(a->beta1, (double)step), bc2 = 1 - pow(a->beta2, (double)step);
	OptArgs o = {.p = p, .g = g, .m = m, .v = v, .decoupled = a->decoupled,
		.wd = (REAL)a->weight_decay, .decay = (REAL)(1 - a->lr * a->weight_decay),
		.w1 = (REAL)(1 - a->beta1), .beta2 = (REAL)a->beta2, .w2 = (REAL)(1 - a->beta2),
		.bc2_sqrt = (REAL)sqrt(bc2), .eps = (REAL)a->eps, .step_neg = (REAL)-(a->lr / bc1)};
	cpu_parallel_for(count, GRAIN, adam_range, &o);
}
