/* The scalar functions of the CUDA kernels (kernels.cu), and the per-element bodies of the
 * grid-stride ones (NAME_at: what the thread for element i does), callable on the host too, so
 * that tests/unit/test_cuda_host.cu checks them against their CPU twins on machines without a
 * GPU: the activations and their backward as prologues and elementwise programs, pooling, batch
 * norm apply and inference, channel copies, and the Philox4x32-10 stream of dropout masks. */
#ifndef NNC_CUDA_KERNELS_MATH_CUH
#define NNC_CUDA_KERNELS_MATH_CUH

#include <cmath>
#include <cstdint>

#include <cuda_fp16.h>

#include "runtime/cuda/kernels.cuh"
extern "C" {
#include "runtime/ew.h"
#include "runtime/sround.h"
}
#define NNC_ERF erff
#define NNC_EXP expf
#define NNC_TANH tanhf

#define HD __host__ __device__ inline

/* The epilogue and the prologue: runtime/ew.h's formulas of each NNC_EPILOGUES activation and
 * its backward, as the separate ops compute them (and as the CPU's kernels do). */
HD float
act(float y, Epilogue a)
{
#define E(name, op)        \
	if (a == EPI_##name) \
		return NNC_EWF_##op(float, y, 0.0f);
	NNC_EPILOGUES(E)
#undef E
	return y;
}

/* The activation backward as a prologue: dz through the activation whose output was y. */
HD float
act_grad(float dz, float y, Epilogue pro)
{
#define E(name, op)          \
	if (pro == EPI_##name) \
		return NNC_EWF_##op##_bwd(float, y, dz);
	NNC_EPILOGUES(E)
#undef E
	return dz;
}

/* ---- elementwise programs: runtime/ew.h's formulas (erf, tanh and exp in float, as the CPU's
 * float kernels call them through <tgmath.h>) ---- */

HD float
ew1(Elementwise op, float a, float b)
{
	switch (op) {
#define E(op, swap) \
	case EW_##op: return NNC_EWF_##op(float, a, b);
		NNC_EW(E)
#undef E
	case NEW: break;
	}
	return 0.0f;
}

HD void
window(const Pool &p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
	int ys = oy * p.sh - p.ph, xs = ox * p.sw - p.pw;
	*y0 = ys > 0 ? ys : 0;
	*y1 = ys + p.kh < p.h ? ys + p.kh : p.h;
	*x0 = xs > 0 ? xs : 0;
	*x1 = xs + p.kw < p.w ? xs + p.kw : p.w;
}

HD int
avg_divisor(const Pool &p, int oy, int ox)
{
	int ys = oy * p.sh - p.ph, xs = ox * p.sw - p.pw;
	int ye = ys + p.kh < p.h + p.ph ? ys + p.kh : p.h + p.ph;
	int xe = xs + p.kw < p.w + p.pw ? xs + p.kw : p.w + p.pw;
	return (ye - ys) * (xe - xs);
}

/* The output windows that contain input row iy: oy in [lo, hi). */
HD void
windows_over(int i, int k, int s, int pad, int out, int *lo, int *hi)
{
	int a = i + pad - k + 1;
	*lo = a <= 0 ? 0 : (a + s - 1) / s;
	int b = (i + pad) / s + 1;
	*hi = b < out ? b : out;
}

HD uint32_t
philox_at(uint64_t key, uint64_t idx)
{
	uint64_t block = idx >> 2;
	uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
	uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
	for (int r = 0; r < 10; r++) {
		uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
		c0 = n0, c1 = n1, c2 = n2, c3 = n3;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
	uint32_t out[4] = {c0, c1, c2, c3};
	return out[idx & 3];
}


HD float
ld(Buf b, long long i)
{
	return b.f16 ? __half2float(static_cast<const __half *>(b.p)[i]) : static_cast<const float *>(b.p)[i];
}

HD void
st(Buf b, long long i, float v)
{
	if (b.f16)
		static_cast<__half *>(b.p)[i] = __float2half_rn(v);
	else
		static_cast<float *>(b.p)[i] = v;
}

HD long long
at(int img, int ch, int e, int c, int hw)
{
	return ((long long)img * c + ch) * hw + e;
}

/* Element (img, ch, y, x) of a pooling input (H, W = h, w) or output (oh, ow), in the pool's
 * layout. */
HD long long
pool_at(const Pool &p, long long img, int ch, int y, int x, int H, int W)
{
	return p.nhwc ? (((long long)img * H + y) * W + x) * p.c + ch : (((long long)img * p.c + ch) * H + y) * W + x;
}

/* Flat index i of an [n, c, H, W] tensor in the pool's layout as (img, ch, y, x). */
HD void
pool_unravel(const Pool &p, long long i, int H, int W, long long *img, int *ch, int *y, int *x)
{
	if (p.nhwc) {
		*ch = (int)(i % p.c);
		i /= p.c;
		*x = (int)(i % W);
		i /= W;
		*y = (int)(i % H);
		*img = i / H;
	} else {
		*x = (int)(i % W);
		i /= W;
		*y = (int)(i % H);
		i /= H;
		*ch = (int)(i % p.c);
		*img = i / p.c;
	}
}

/* window_argmax: the first maximum in row-major order, or the last NaN; -1 if empty. The
 * result is the offset iy * w + ix in the image plane. */
HD int
argmax(const Pool &p, Buf x, long long img, int ch, int oy, int ox)
{
	int y0, y1, x0, x1;
	window(p, oy, ox, &y0, &y1, &x0, &x1);
	int arg = -1;
	float best = -INFINITY;
	for (int iy = y0; iy < y1; iy++)
		for (int ix = x0; ix < x1; ix++) {
			float v = ld(x, pool_at(p, img, ch, iy, ix, p.h, p.w));
			if (v > best || isnan(v) || arg < 0) {
				best = v;
				arg = iy * p.w + ix;
			}
		}
	return arg;
}

/* Input element i of a pooling backward: its image and channel, its offset e in the image
 * plane, and the output windows over it, [oy0, oy1) x [ox0, ox1). */
struct Over {
	long long img;
	int ch, e, oy0, oy1, ox0, ox1;
};

HD Over
over(const Pool &p, long long i)
{
	Over o;
	int iy, ix;
	pool_unravel(p, i, p.h, p.w, &o.img, &o.ch, &iy, &ix);
	o.e = iy * p.w + ix;
	windows_over(iy, p.kh, p.sh, p.ph, p.oh, &o.oy0, &o.oy1);
	windows_over(ix, p.kw, p.sw, p.pw, p.ow, &o.ox0, &o.ox1);
	return o;
}

/* ---- per-channel reductions split over blocks (bn_stats, bn_backward) ---- */

/* How many blocks share each channel's reduction: enough blocks in all to fill the GPU (about
 * 1024), at most one per image and BN_MAX_SPLIT, and about 1024 elements or more per block. */
HD int
bn_splits(int n, int c, int hw)
{
	int s = 1024 / (c > 0 ? c : 1);
	long long per = (long long)n * hw / 1024;
	if (s > per)
		s = (int)per;
	if (s > n)
		s = n;
	if (s > BN_MAX_SPLIT)
		s = BN_MAX_SPLIT;
	return s < 1 ? 1 : s;
}

/* Block s of S covers images [i0, i1) of its channel. */
HD void
split_range(int n, int S, int s, int *i0, int *i1)
{
	*i0 = (int)((long long)n * s / S);
	*i1 = (int)((long long)n * (s + 1) / S);
}

/* Chan et al.'s pairwise combination of per-block (count, mean, M2) triples, in block order:
 * the channel's count, mean and sum of squared deviations. */
HD void
chan_combine(const double *part, int S, double *count, double *mean, double *m2)
{
	double n = 0, m = 0, q = 0;
	for (int s = 0; s < S; s++) {
		double nb = part[3 * s], mb = part[3 * s + 1], qb = part[3 * s + 2];
		if (nb == 0)
			continue;
		double t = n + nb, d = mb - m;
		m += d * (nb / t);
		q += qb + d * d * (n * nb / t);
		n = t;
	}
	*count = n;
	*mean = m;
	*m2 = q;
}

/* The running statistics' update of channel ch from a step's statistics as stored (cpu
 * batchnorm_update_running): rm = m * mean + (1 - m) * rm, rv likewise with the unbiased
 * variance. */
HD void
bn_update_at(Buf rm, Buf rv, Buf stats, int c, double momentum, long long ch)
{
	st(rm, ch, (float)(momentum * ld(stats, ch) + (1 - momentum) * ld(rm, ch)));
	st(rv, ch, (float)(momentum * ld(stats, 2 * c + ch) + (1 - momentum) * ld(rv, ch)));
}

/* ---- optimizer scalars (cpu_sgd_step, cpu_adam_step: formed in double, rounded to float) ---- */

HD Sgd
sgd_now(const SgdConf &c, const StepScalars &s)
{
	Sgd o;
	o.lr_neg = (float)-(s.lr * c.lr_scale);
	o.momentum = (float)c.momentum;
	o.wd = (float)c.wd;
	o.nesterov = c.nesterov;
	o.first = s.step + 1 <= 1;
	o.has_buf = c.momentum != 0;
	o.sr = c.sr;
	o.sr_key = nnc_sround_key(c.sr_seed, (uint64_t)s.step, (uint64_t)c.sr_value);
	return o;
}

HD Adam
adam_now(const AdamConf &c, const StepScalars &s)
{
	double t = (double)(s.step + 1);
	double bc1 = 1 - pow(c.beta1, t), bc2 = 1 - pow(c.beta2, t);
	Adam o;
	o.decoupled = c.decoupled;
	o.wd = (float)c.wd;
	o.decay = (float)(1 - s.lr * c.wd);
	o.w1 = (float)(1 - c.beta1);
	o.beta2 = (float)c.beta2;
	o.w2 = (float)(1 - c.beta2);
	o.bc2_sqrt = (float)sqrt(bc2);
	o.eps = (float)c.eps;
	o.step_neg = (float)-(s.lr / bc1);
	o.sr = c.sr;
	o.sr_key = nnc_sround_key(c.sr_seed, (uint64_t)s.step, (uint64_t)c.sr_value);
	return o;
}

/* ---- optimizer updates, element i (sgd_range, adam_range) ---- */

/* An updated parameter's element i: an fp16 one rounded stochastically with SR (the CPU's
 * round_update, runtime/exec.c), else as st stores. */
HD void
st_param(Buf p, long long i, float v, bool sr, unsigned long long key)
{
	st(p, i, sr && p.f16 ? nnc_round_stochastic_f16(v, nnc_sround_bits(key, (uint64_t)i)) : v);
}

HD void
sgd_at(const Sgd &o, bool unscale, float inv_scale, Buf p, Buf g, Buf buf, long long i)
{
	float d = unscale ? inv_scale * ld(g, i) : ld(g, i), pv = ld(p, i);
	if (o.wd != 0.0f)
		d = d + o.wd * pv;
	if (o.has_buf) {
		float b = o.first ? d : ld(buf, i) * o.momentum + d;
		st(buf, i, b); /* the step goes on with b unrounded, as the CPU's widened copy does */
		d = o.nesterov ? d + o.momentum * b : b;
	}
	st_param(p, i, pv + o.lr_neg * d, o.sr, o.sr_key);
}

HD void
adam_at(const Adam &o, bool unscale, float inv_scale, Buf p, Buf g, Buf m, Buf v, long long i)
{
	float gv = unscale ? inv_scale * ld(g, i) : ld(g, i), pv = ld(p, i);
	if (o.decoupled)
		pv = pv * o.decay;
	else if (o.wd != 0.0f)
		gv = gv + o.wd * pv;
	float mv = ld(m, i);
	mv = o.w1 < 0.5f ? mv + o.w1 * (gv - mv) : gv - (gv - mv) * (1.0f - o.w1);
	float vv = ld(v, i) * o.beta2;
	vv = vv + o.w2 * gv * gv;
	float denom = sqrtf(vv) / o.bc2_sqrt + o.eps; /* float, as the CPU's sqrt of a float */
	st(m, i, mv);
	st(v, i, vv);
	st_param(p, i, pv + o.step_neg * mv / denom, o.sr, o.sr_key);
}

/* ---- multi-tensor launches: the tensor that owns chunk ch (binary search on chunk0) ---- */

HD int
mt_locate(const MtTensor *t, int T, long long ch)
{
	int lo = 0, hi = T - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (t[mid].chunk0 <= ch)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* ---- direct convolution: the fallback where cuDNN offers no algorithm (slow, plain loops;
 * sums in double). Geometry as the CPU's CpuConv: x [n, c, h, w], w [k, c/groups, kh, kw],
 * y [n, k, oh, ow]. ---- */

/* Element i of a row-major [*, B, C, D] tensor as its four indices. */
struct Idx4 {
	int a, b, c, d;
};

HD Idx4
unravel4(long long i, int B, int C, int D)
{
	Idx4 r;
	r.d = (int)(i % D);
	i /= D;
	r.c = (int)(i % C);
	i /= C;
	r.b = (int)(i % B);
	r.a = (int)(i / B);
	return r;
}

/* x[img, ch, iy, ix], y[img, k, oy, ox] and w[k, ci, ky, kx] as flat indices, NCHW / OIHW or
 * with v.nhwc channels-last (NHWC / OHWI). */
HD long long
x_at(const CpuConv &v, int img, int ch, int iy, int ix)
{
	if (v.nhwc)
		return (((long long)img * v.h + iy) * v.w + ix) * v.c + ch;
	return (((long long)img * v.c + ch) * v.h + iy) * v.w + ix;
}

HD long long
y_at(const CpuConv &v, int img, int k, int oy, int ox)
{
	if (v.nhwc)
		return (((long long)img * v.oh + oy) * v.ow + ox) * v.k + k;
	return (((long long)img * v.k + k) * v.oh + oy) * v.ow + ox;
}

HD long long
w_at(const CpuConv &v, int k, int ci, int ky, int kx)
{
	if (v.nhwc)
		return (((long long)k * v.kh + ky) * v.kw + kx) * (v.c / v.groups) + ci;
	return (((long long)k * (v.c / v.groups) + ci) * v.kh + ky) * v.kw + kx;
}

/* Flat index i of a tensor with dims (A, B, C, D) as (a, b, c, d): NCHW-like order, or with
 * CL (channels-last) the order (a, c, d, b). */
HD Idx4
unravel_cl(long long i, int B, int C, int D, bool cl)
{
	if (!cl)
		return unravel4(i, B, C, D);
	Idx4 r = unravel4(i, C, D, B); /* a, c, d, b */
	Idx4 o = {r.a, r.d, r.b, r.c};
	return o;
}

/* The input position that output (oy, ox) reads through tap (ky, kx); false in the padding. */
HD bool
tap(const CpuConv &v, int oy, int ox, int ky, int kx, int *iy, int *ix)
{
	*iy = oy * v.sh - v.ph + ky;
	*ix = ox * v.sw - v.pw + kx;
	return *iy >= 0 && *iy < v.h && *ix >= 0 && *ix < v.w;
}

/* Output element i of y. */
HD void
conv_fwd_at(const CpuConv &v, Buf x, Buf w, Buf y, long long i)
{
	Idx4 o = unravel_cl(i, v.k, v.oh, v.ow, v.nhwc); /* img, k, oy, ox */
	int cg = v.c / v.groups, g = o.b / (v.k / v.groups), iy, ix;
	double s = 0;
	for (int ci = 0; ci < cg; ci++)
		for (int ky = 0; ky < v.kh; ky++)
			for (int kx = 0; kx < v.kw; kx++)
				if (tap(v, o.c, o.d, ky, kx, &iy, &ix))
					s += (double)ld(x, x_at(v, o.a, g * cg + ci, iy, ix)) * ld(w, w_at(v, o.b, ci, ky, kx));
	st(y, i, (float)s);
}

/* Input element i of dx: the outputs whose windows cover it. */
HD void
conv_bwd_data_at(const CpuConv &v, Buf dy, Buf w, Buf dx, long long i)
{
	Idx4 p = unravel_cl(i, v.c, v.h, v.w, v.nhwc); /* img, ch, iy, ix */
	int cg = v.c / v.groups, kg = v.k / v.groups, g = p.b / cg;
	double s = 0;
	for (int k = g * kg; k < (g + 1) * kg; k++)
		for (int ky = 0; ky < v.kh; ky++) {
			int ny = p.c + v.ph - ky;
			if (ny < 0 || ny % v.sh || ny / v.sh >= v.oh)
				continue;
			for (int kx = 0; kx < v.kw; kx++) {
				int nx = p.d + v.pw - kx;
				if (nx >= 0 && nx % v.sw == 0 && nx / v.sw < v.ow)
					s += (double)ld(dy, y_at(v, p.a, k, ny / v.sh, nx / v.sw)) *
					     ld(w, w_at(v, k, p.b % cg, ky, kx));
			}
		}
	st(dx, i, (float)s);
}

/* Weight element i of dw: the sum over the batch and the output positions. */
HD void
conv_bwd_filter_at(const CpuConv &v, Buf x, Buf dy, Buf dw, long long i)
{
	int cg = v.c / v.groups;
	Idx4 q = unravel_cl(i, cg, v.kh, v.kw, v.nhwc); /* k, ci, ky, kx */
	int g = q.a / (v.k / v.groups), iy, ix;
	double s = 0;
	for (int img = 0; img < v.n; img++)
		for (int oy = 0; oy < v.oh; oy++)
			for (int ox = 0; ox < v.ow; ox++)
				if (tap(v, oy, ox, q.c, q.d, &iy, &ix))
					s += (double)ld(x, x_at(v, img, g * cg + q.b, iy, ix)) *
					     ld(dy, y_at(v, img, q.a, oy, ox));
	st(dw, i, (float)s);
}

/* ---- rows of [n, k]: softmax and the loss (cpu_softmax_*, cpu_softmax_xent_*; exp and log in
 * double, as the CPU's Acc) ---- */

HD float
row_max(Buf x, long long r, int k)
{
	float m = ld(x, r * k);
	for (int j = 1; j < k; j++)
		if (ld(x, r * k + j) > m)
			m = ld(x, r * k + j);
	return m;
}

HD double
row_expsum(Buf x, long long r, int k, float m)
{
	double s = 0;
	for (int j = 0; j < k; j++)
		s += exp((double)ld(x, r * k + j) - m);
	return s;
}

HD void
softmax_row_at(Buf x, int k, Buf y, long long r)
{
	float m = row_max(x, r, k);
	double s = row_expsum(x, r, k, m);
	for (int j = 0; j < k; j++)
		st(y, r * k + j, (float)(exp((double)ld(x, r * k + j) - m) / s));
}

HD void
softmax_bwd_row_at(Buf y, Buf dy, int k, Buf dx, long long r)
{
	double dot = 0;
	for (int j = 0; j < k; j++)
		dot += (double)ld(dy, r * k + j) * ld(y, r * k + j);
	for (int j = 0; j < k; j++)
		st(dx, r * k + j, ld(y, r * k + j) * (ld(dy, r * k + j) - (float)dot));
}

/* Row r's term of the loss (the batch's loss is their mean); 0 for a label outside [0, k). */
HD double
xent_row(Buf logits, const int32_t *labels, int k, double eps, long long r)
{
	int y = labels[r];
	if (y < 0 || y >= k)
		return 0;
	float m = row_max(logits, r, k);
	double lse = m + log(row_expsum(logits, r, k, m)), xsum = 0;
	for (int j = 0; j < k; j++)
		xsum += ld(logits, r * k + j);
	double nll = lse - ld(logits, r * k + y), smooth = lse - xsum / k;
	return (1 - eps) * nll + eps * smooth;
}

/* SCALE: the upstream gradient over n. */
HD void
xent_bwd_row_at(Buf logits, const int32_t *labels, int k, double eps, double scale, Buf dx, long long r)
{
	float m = row_max(logits, r, k);
	double s = row_expsum(logits, r, k, m), uniform = eps / k;
	for (int j = 0; j < k; j++) {
		double target = uniform + (j == labels[r] ? 1 - eps : 0);
		st(dx, r * k + j, (float)(scale * (exp((double)ld(logits, r * k + j) - m) / s - target)));
	}
}

/* ---- global average pooling over planes of hw (cpu_global_avgpool_*) ---- */

HD void
gap_fwd_at(Buf x, int hw, Buf y, long long pl)
{
	double s = 0;
	for (int e = 0; e < hw; e++)
		s += ld(x, pl * hw + e);
	st(y, pl, (float)(s / hw));
}

HD void
gap_bwd_at(Buf dy, int hw, Buf dx, long long i)
{
	st(dx, i, ld(dy, i / hw) / (float)hw);
}

/* Channels-last: x [n, hw, c]; output element r = img * c + ch of y [n, c], summed in hw order
 * as gap_fwd_at sums its plane. */
HD void
gap_fwd_cl_at(Buf x, int c, int hw, Buf y, long long r)
{
	long long img = r / c;
	int ch = (int)(r % c);
	double s = 0;
	for (int e = 0; e < hw; e++)
		s += ld(x, (img * hw + e) * c + ch);
	st(y, r, (float)(s / hw));
}

HD void
gap_bwd_cl_at(Buf dy, int c, int hw, Buf dx, long long i)
{
	long long img = i / ((long long)hw * c);
	st(dx, i, ld(dy, img * c + i % c) / (float)hw);
}

/* Element i of y [planes][b][a] from x [planes][a][b]. */
HD void
relayout_at(Buf x, Buf y, int a, int b, long long i)
{
	long long plane = i / ((long long)a * b);
	long long r = i % ((long long)a * b);
	int j = (int)(r / a), k = (int)(r % a);
	st(y, i, ld(x, plane * a * b + (long long)k * b + j));
}

/* The NCHW (logical) index of element i of an NHWC tensor [n, c, h, w]: dropout masks draw
 * element i from the stream at its logical index, so a seed gives one mask in either layout. */
HD long long
nchw_index(long long i, int c, int h, int w)
{
	int ch = (int)(i % c);
	long long t = i / c;
	int x = (int)(t % w);
	t /= w;
	int y = (int)(t % h);
	long long img = t / h;
	return ((img * c + ch) * h + y) * w + x;
}

/* ---- conv and dense epilogue: y = act(y + b[channel]) over [n, c, hw] ---- */

HD void
bias_act_at(Buf y, Buf b, int c, int hw, Epilogue a, long long i)
{
	float v = ld(y, i);
	if (b.p)
		v += ld(b, (i / hw) % c);
	st(y, i, act(v, a));
}

/* ---- batch-norm folding (cpu_batchnorm_fold_*) ---- */

HD float
fold_factor(Buf var, Buf scale, double eps, long long o)
{
	double inv = 1 / sqrt((double)ld(var, o) + eps);
	return (float)(inv * (scale.p ? (double)ld(scale, o) : 1.0));
}

HD void
bn_fold_weight_at(Buf w, long long per_out, Buf var, double eps, Buf scale, Buf wf, long long i)
{
	st(wf, i, ld(w, i) * fold_factor(var, scale, eps, i / per_out));
}

HD void
bn_fold_bias_at(Buf mean, Buf var, double eps, Buf scale, Buf shift, Buf bias, Buf bf, long long o)
{
	float a = fold_factor(var, scale, eps, o);
	st(bf, o, ((bias.p ? ld(bias, o) : 0.0f) - ld(mean, o)) * a + (shift.p ? ld(shift, o) : 0.0f));
}

/* ---- batch-norm backward (cpu_batchnorm_backward_*_pro, cpu_bias_backward_pro) ---- */

/* Thread t of T's share of one block's sums over cnt elements of channel ch from image i0: g =
 * dz through the prologue; sdy += g, sdyx += g * (x - mean) (x may be null: bias gradients). */
HD void
bn_bwd_partial(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, int c, int hw, int ch, int i0, int cnt, int t, int T,
	double *sdy, double *sdyx)
{
	float m = x.p ? ld(stats, ch) : 0.0f;
	for (int e = t; e < cnt; e += T) {
		long long i = at(i0 + e / hw, ch, e % hw, c, hw);
		float g = act_grad(ld(dz, i), pro ? ld(act_y, i) : 0.0f, pro);
		*sdy += g;
		if (x.p)
			*sdyx += (double)g * ((double)ld(x, i) - m);
	}
}

/* From channel ch's whole sums: dw = sdyx * invstd, db = sdy, and dx's coefficients (proj,
 * gmean, gain) in coef[3 ch..]. */
HD void
bn_bwd_finish(double sdy, double sdyx, bool has_x, Buf stats, Buf w, Buf dw, Buf db, float *coef, int n, int c, int hw,
	int ch)
{
	double inv = has_x ? (double)ld(stats, c + ch) : 0.0, count = (double)n * hw;
	if (dw.p)
		st(dw, ch, (float)(sdyx * inv));
	if (db.p)
		st(db, ch, (float)sdy);
	coef[3 * ch] = (float)(sdyx * inv * inv / count);
	coef[3 * ch + 1] = (float)(sdy / count);
	coef[3 * ch + 2] = (float)(inv * (w.p ? (double)ld(w, ch) : 1.0));
}

HD void
bn_bwd_dx_at(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, const float *coef, Buf dx, int c, int hw, long long i)
{
	int ch = (int)((i / hw) % c);
	float g = act_grad(ld(dz, i), pro ? ld(act_y, i) : 0.0f, pro);
	st(dx, i, (g - (ld(x, i) - ld(stats, ch)) * coef[3 * ch] - coef[3 * ch + 1]) * coef[3 * ch + 2]);
}

/* ---- per-element bodies of the grid-stride kernels (kernels.cu): element i ---- */

HD void
ew_at(EwProgram p, long long i)
{
	float prev = 0.0f;
	for (int j = 0; j < p.nops; j++) {
		float a = p.a[j] == EW_PREV ? prev : p.a[j] >= 0 ? ld(p.in[p.a[j]], i) : 0.0f;
		float b = p.b[j] == EW_PREV ? prev : p.b[j] >= 0 ? ld(p.in[p.b[j]], i) : 0.0f;
		float r = ew1(p.op[j], a, b);
		if (j + 1 < p.nops && p.out.f16) /* an intermediate the unfused plan stores in fp16 */
			r = __half2float(__float2half_rn(r));
		prev = r;
	}
	st(p.out, i, act(prev, p.act));
}

HD void
bn_apply_at(Buf x, Buf stats, Buf w, Buf b, Buf y, int c, int hw, Epilogue a, long long i)
{
	int ch = (int)((i / hw) % c);
	float scale = ld(stats, c + ch) * (w.p ? ld(w, ch) : 1.0f), shift = b.p ? ld(b, ch) : 0.0f;
	st(y, i, act((ld(x, i) - ld(stats, ch)) * scale + shift, a));
}

/* bn_apply then add, in one pass: y = act(round(bn_apply(x)) + other), the batch norm's result
 * rounded to its storage dtype (MID_F16) as the unfused plan stores it. */
HD void
bn_apply_add_at(Buf x, Buf stats, Buf w, Buf b, bool mid_f16, Buf other, Buf y, int c, int hw, Epilogue a, long long i)
{
	int ch = (int)((i / hw) % c);
	float scale = ld(stats, c + ch) * (w.p ? ld(w, ch) : 1.0f), shift = b.p ? ld(b, ch) : 0.0f;
	float v = (ld(x, i) - ld(stats, ch)) * scale + shift;
	if (mid_f16)
		v = __half2float(__float2half_rn(v));
	st(y, i, act(v + ld(other, i), a));
}

HD void
bn_infer_at(Buf x, Buf mean, Buf var, double eps, Buf w, Buf b, Buf y, int c, int hw, Epilogue a, long long i)
{
	int ch = (int)((i / hw) % c);
	double inv = 1 / sqrt((double)ld(var, ch) + eps);
	float scale = (float)(inv * (w.p ? (double)ld(w, ch) : 1.0)), shift = b.p ? ld(b, ch) : 0.0f;
	st(y, i, act((ld(x, i) - ld(mean, ch)) * scale + shift, a));
}

/* Output element i (in the pool's layout). */
HD void
maxpool_fwd_at(Pool p, Buf x, Buf y, long long i)
{
	long long img;
	int ch, oy, ox;
	pool_unravel(p, i, p.oh, p.ow, &img, &ch, &oy, &ox);
	int arg = argmax(p, x, img, ch, oy, ox);
	st(y, i, arg < 0 ? -INFINITY : ld(x, pool_at(p, img, ch, arg / p.w, arg % p.w, p.h, p.w)));
}

/* Input element i: the sum of dy over the windows whose maximum it is. */
HD void
maxpool_bwd_at(Pool p, Buf x, Buf dy, Buf dx, long long i)
{
	Over o = over(p, i);
	float g = 0.0f;
	for (int oy = o.oy0; oy < o.oy1; oy++)
		for (int ox = o.ox0; ox < o.ox1; ox++)
			if (argmax(p, x, o.img, o.ch, oy, ox) == o.e)
				g += ld(dy, pool_at(p, o.img, o.ch, oy, ox, p.oh, p.ow));
	st(dx, i, g);
}

/* Whether every input element lies in exactly one window (stride = kernel, no padding, the
 * windows tiling the input): maxpool_bwd then runs one thread per window, which finds the
 * window's maximum once and writes the whole window, instead of one per input element
 * recomputing the maximum of every window over it (each window's max found kh*kw times). */
HD bool
pool_tiles(const Pool &p)
{
	return p.sh == p.kh && p.sw == p.kw && p.ph == 0 && p.pw == 0 && p.h == p.oh * p.kh && p.w == p.ow * p.kw;
}

/* Output window i of a tiling pool (pool_tiles): its maximum gets dy[i], the rest of the
 * window 0 -- what maxpool_bwd_at gives each of its elements, each element being in this
 * window alone. */
HD void
maxpool_bwd_tile_at(Pool p, Buf x, Buf dy, Buf dx, long long i)
{
	long long img;
	int ch, oy, ox;
	pool_unravel(p, i, p.oh, p.ow, &img, &ch, &oy, &ox);
	int arg = argmax(p, x, img, ch, oy, ox);
	float g = ld(dy, i);
	for (int ky = 0; ky < p.kh; ky++)
		for (int kx = 0; kx < p.kw; kx++) {
			int iy = oy * p.sh + ky, ix = ox * p.sw + kx;
			st(dx, pool_at(p, img, ch, iy, ix, p.h, p.w), iy * p.w + ix == arg ? g : 0.0f);
		}
}

HD void
avgpool_fwd_at(Pool p, Buf x, Buf y, long long i)
{
	long long img;
	int ch, oy, ox;
	pool_unravel(p, i, p.oh, p.ow, &img, &ch, &oy, &ox);
	int y0, y1, x0, x1;
	window(p, oy, ox, &y0, &y1, &x0, &x1);
	double s = 0;
	for (int iy = y0; iy < y1; iy++)
		for (int ix = x0; ix < x1; ix++)
			s += ld(x, pool_at(p, img, ch, iy, ix, p.h, p.w));
	st(y, i, (float)(s / avg_divisor(p, oy, ox)));
}

HD void
avgpool_bwd_at(Pool p, Buf dy, Buf dx, long long i)
{
	Over o = over(p, i);
	float g = 0.0f;
	for (int oy = o.oy0; oy < o.oy1; oy++)
		for (int ox = o.ox0; ox < o.ox1; ox++)
			g += ld(dy, pool_at(p, o.img, o.ch, oy, ox, p.oh, p.ow)) / (float)avg_divisor(p, oy, ox);
	st(dx, i, g);
}

HD void
channels_copy_at(Buf x, int xc, int x0, Buf y, int yc, int y0, int cs, int hw, long long i)
{
	int e = (int)(i % hw);
	long long t = i / hw;
	int ch = (int)(t % cs), img = (int)(t / cs);
	st(y, at(img, y0 + ch, e, yc, hw), ld(x, at(img, x0 + ch, e, xc, hw)));
}

#undef HD

#endif
