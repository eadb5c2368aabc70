/* True fp16 accumulation ("acc: f16"): reference CPU kernels in which every partial sum is
 * rounded to fp16, as fp16 arithmetic hardware without wider accumulators would compute it.
 * The ordinary kernels (kernels.h) compute an fp16 op as fp16 storage with f32/double
 * accumulation; these are what the executor runs instead when a precision policy asks for
 * fp16 accumulation. They are meant to be right, not fast: plain direct loops.
 *
 * Interface. Inputs and outputs are float arrays; the executor passes fp16 values widened to
 * float and rounds the outputs to fp16 afterwards (a no-op: every output here already is an
 * fp16 value). Shapes, layouts (NCHW, OIHW, [n, f], [u, f]), CpuConv / CpuPool, overwriting,
 * the ban on aliasing (none of these kernels allows an output to alias an input) and the
 * status returns are those of kernels.h and kernels_decl.h; each function below computes the
 * same mathematical quantity as its _f32 namesake. Nothing allocates and nothing needs a
 * workspace (so there are no *_workspace functions). Work is split over output elements (or
 * channels, rows, planes) with cpu_parallel_for, and each output is computed entirely by one
 * task in the fixed order given below, so results are bit-identical for any thread count.
 *
 * The rounding model. R(v) is v rounded to the nearest fp16 value, ties to even, overflow
 * (|v| >= 65520) to +-inf, subnormals kept (multiples of 2^-24), exactly as half.h rounds;
 * cpu_acc16_round and cpu_acc16_round_double below compute it. Every operand read from an
 * input array is first taken as R(v) (the identity on fp16 values, which is what the
 * executor passes; it makes the model well defined for any float). Then every arithmetic
 * step is one fp16 operation with one rounding:
 *   a (+) b = R(a + b),  a (-) b = R(a - b),  a (*) b = R(a * b),  a (/) b = R(a / b),
 * the exact real result rounded once, as IEEE fp16 hardware produces it. No fused
 * multiply-add: a dot product step is  acc = R(acc + R(a * b)),  one rounding for the
 * multiply and one for the add. For fp16 operands, + - * are computed in float and rounded
 * by R, which is exact single rounding because float has 24 >= 2*11 + 2 significand bits (so
 * rounding to float first can never move the value across an fp16 rounding boundary); / is
 * computed in double. Other steps:
 *   - division by an element count N (means, pooling):  R(s / N)  with N the exact integer,
 *     the quotient computed in double and rounded once (correct rounding of s / N: N is
 *     never itself rounded to fp16, which would overflow for counts above 65504);
 *   - exp, log, 1/sqrt: the function of the fp16 operand evaluated in double with the
 *     C library and rounded once by R (exact up to the library's last-bit accuracy in
 *     double, and reproducible on one platform);
 *   - constants that are not fp16 values (label smoothing eps, 1 - eps, dloss / n) are
 *     rounded once by R before use; batch norm's eps is added in double inside 1/sqrt.
 * Every sum starts from acc = +0 and adds its terms one at a time in the order stated for
 * each kernel ("Sum over A, then B" means A is the outer, slowest loop; all index loops run
 * upward). Terms that fall into zero padding are skipped, not added as zero products (this
 * matters only for the sign of a zero result). A bias is added after the sum, by one (+).
 * Saturation is part of the model: adding 1 to an fp16 accumulator holding 2048 gives 2048
 * (2049 is a tie between 2048 and 2050 and rounds to even), so summing 4096 products 1*1
 * gives 2048, and a sum that passes 65504 becomes inf.
 *
 * Error bound (no overflow or underflow involved): a dot product or sum of K terms t_i,
 * computed this way, differs from the exact sum by at most
 *   gamma_K * sum |t_i|,  gamma_K = K u / (1 - K u),  u = 2^-11,
 * (K - 1 roundings of partial sums and up to K of products; with a bias, K + 1), plus K *
 * 2^-25 absolutely when values reach fp16's subnormal range. test_acc16.c checks conv2d,
 * dense, bias and pooling against the f32 kernels with this bound.
 *
 * Summation orders, per kernel (g the group of a channel, c/groups = cpg, k/groups = kpg):
 *   conv2d forward      y[i,o,oy,ox] = (sum over ci of g(o), then kh row r, then kw col s of
 *                       x[i,ci,oy*sh-ph+r,ox*sw-pw+s] (*) w[o,ci-g*cpg,r,s]) (+) b[o]
 *   conv2d bwd data     dx[i,ci,y,x] = sum over o of g(ci), then r, then s (those with
 *                       oy = (y+ph-r)/sh, ox = (x+pw-s)/sw integral and in range) of
 *                       dy[i,o,oy,ox] (*) w[o,ci-g*cpg,r,s]
 *   conv2d bwd filter   dw[o,cj,r,s] = sum over image i, then oy, then ox (taps in range) of
 *                       dy[i,o,oy,ox] (*) x[i,g*cpg+cj,oy*sh-ph+r,ox*sw-pw+s]
 *   bias backward       db[j] = sum over image, then hw, of dy[img,j,hw]
 *   dense forward       y[r,u] = (sum over f of x[r,f] (*) w[u,f]) (+) b[u]
 *   dense bwd data      dx[r,f] = sum over u of dy[r,u] (*) w[u,f]
 *   dense bwd weight    dw[u,f] = sum over r of dy[r,u] (*) x[r,f]
 *   batch-norm stats    per channel, N = n*hw, elements in image-then-hw order:
 *                       s = sum x;  mean = R(s / N);  d = x (-) mean;  q = sum d (*) d;
 *                       invstd = R(1 / sqrt(double(R(q / N)) + eps));
 *                       var_unbiased = R(q / (N - 1))
 *   batch-norm backward per channel, same order: xhat = (x (-) mean) (*) invstd;
 *                       db = sum dy;  dw = sum dy (*) xhat  (two independent accumulators);
 *                       dx = gain (*) ((dy (-) R(db / N)) (-) (xhat (*) R(dw / N))),
 *                       gain = w (*) invstd (invstd when w is NULL)
 *   global avg pool     y[p] = R((sum over hw of x[p,hw]) / hw);  backward dx = R(dy / hw)
 *   avg pool forward    y = R((sum over window rows, then columns, inside the input) / D),
 *                       D the count_include_pad divisor of kernels.h
 *   avg pool backward   per plane, dx starts at +0 and for each output (oy, ox) in row-major
 *                       order, dx[t] = dx[t] (+) R(dy[oy,ox] / D) for each tap t of its
 *                       window inside the input: each dx is the sum over the windows that
 *                       contain it, in row-major window order
 *   softmax forward     per row: m = max x;  e_j = R(exp(x_j (-) m));  s = sum over j of e_j;
 *                       y_j = e_j (/) s
 *   softmax backward    per row: t = sum over j of dy_j (*) y_j;  dx_j = y_j (*) (dy_j (-) t)
 *   xent forward        per row (rows in order, on the calling thread), m, e_j, s as above:
 *                       lse = m (+) R(log s);  nll = lse (-) x_label;  with eps != 0,
 *                       xs = sum over j of x_j, row = (R(1-eps) (*) nll) (+) (R(eps) (*)
 *                       (lse (-) R(xs / k))), else row = nll;  total = sum over rows of row;
 *                       loss = R(total / n)
 *   xent backward       per row: p_j = e_j (/) s;  dx_j = R(dloss / n) (*) (p_j (-) t_j),
 *                       t_j = R(eps / k + (j == label ? 1 - eps : 0)) (computed in double)
 *
 * Not covered here (the executor keeps fp16 storage with f32 compute for them, which has no
 * accumulation to round): batch-norm apply and inference, running statistics, max pooling,
 * activations, dropout, add / scale / concat, the optimizers. */
#ifndef NNC_CPU_ACC16_H
#define NNC_CPU_ACC16_H

#include <stdint.h>
#include <string.h>

#include "runtime/cpu/kernels.h"

/* R(x): x rounded to the nearest fp16 value (ties to even, |x| >= 65520 to +-inf, signed
 * zeros kept), returned as a float; bit for bit half_to_float(half_from_float(x)) for every
 * float, NaNs included (quiet, top 10 payload bits kept). Inline bit arithmetic; the
 * subnormal range uses one float addition, so it assumes the default rounding mode
 * (round to nearest) and no excess precision (FLT_EVAL_METHOD 0, as on x86-64 and AArch64). */
static inline float
cpu_acc16_round(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	uint32_t sign = u & 0x80000000u, a = u & 0x7fffffffu;
	if (a >= 0x7f800000u) {
		if (a > 0x7f800000u)
			a = (a | 0x00400000u) & ~0x1fffu; /* NaN: quiet, keep 10 payload bits */
	} else if (a < 0x38800000u) {
		/* |x| < 2^-14: fp16 spacing is 2^-24, the float spacing of [0.5, 1). */
		float f;
		memcpy(&f, &a, sizeof f);
		f = (f + 0.5f) - 0.5f;
		memcpy(&a, &f, sizeof a);
	} else {
		/* Normal: keep 10 of the 23 fraction bits, round half to even; a carry out of
		 * the fraction moves into the exponent, which is the right result. */
		a += 0x0fffu + ((a >> 13) & 1u);
		a &= ~0x1fffu;
		if (a >= 0x47800000u) /* 65536 or more: overflow */
			a = 0x7f800000u;
	}
	u = sign | a;
	memcpy(&x, &u, sizeof x);
	return x;
}

/* R(x) for a double: rounded once, directly to fp16 (no intermediate float rounding, which
 * could create a false tie). NaN gives the float NaN that cpu_acc16_round((float)x) gives. */
static inline float
cpu_acc16_round_double(double x)
{
	uint64_t u;
	memcpy(&u, &x, sizeof u);
	uint64_t sign = u & 0x8000000000000000u, a = u & 0x7fffffffffffffffu;
	if (a >= 0x7ff0000000000000u) {
		if (a > 0x7ff0000000000000u)
			return cpu_acc16_round((float)x);
	} else if (a < 0x3f10000000000000u) {
		/* |x| < 2^-14: 2^-24 is the double spacing of [2^28, 2^29). */
		double f;
		memcpy(&f, &a, sizeof f);
		f = (f + 0x1p28) - 0x1p28;
		memcpy(&a, &f, sizeof a);
	} else {
		a += 0x1ffffffffffu + ((a >> 42) & 1u); /* keep 10 of 52 fraction bits */
		a &= ~0x3ffffffffffu;
		if (a >= 0x40f0000000000000u) /* 65536 */
			a = 0x7ff0000000000000u;
	}
	u = sign | a;
	memcpy(&x, &u, sizeof x);
	return (float)x; /* exact: an fp16 value or inf */
}

/* ---- conv2d (cv set up by cpu_conv_setup; -1 if it is not a valid, set-up shape) ------ */

int cpu_acc16_conv2d_forward(const CpuConv *cv, const float *x, const float *w, const float *b,
	float *y);
int cpu_acc16_conv2d_backward_data(const CpuConv *cv, const float *dy, const float *w,
	float *dx);
int cpu_acc16_conv2d_backward_filter(const CpuConv *cv, const float *x, const float *dy,
	float *dw);

/* db[j] = sum of dy[n, j, hw] (conv2d and dense bias gradient, batch norm's shift). */
void cpu_acc16_bias_backward(const float *dy, int n, int c, int hw, float *db);

/* ---- dense: y [n, u] = x [n, f] . w^T + b, w [u, f], b [u] or NULL ---------------------- */

void cpu_acc16_dense_forward(const float *x, const float *w, const float *b, int n, int f,
	int u, float *y);
void cpu_acc16_dense_backward_data(const float *dy, const float *w, int n, int f, int u,
	float *dx);
void cpu_acc16_dense_backward_weight(const float *dy, const float *x, int n, int f, int u,
	float *dw);

/* ---- batch norm over [n, c, hw] (training mode) ------------------------------------------ */

/* mean[c], invstd[c] and (when not NULL) var_unbiased[c]; -1 when var_unbiased is wanted and
 * n * hw < 2. */
int cpu_acc16_batchnorm_stats(const float *x, int n, int c, int hw, double eps, float *mean,
	float *invstd, float *var_unbiased);
/* dx, and (when not NULL) dw = sum(dy * xhat), db = sum(dy); w may be NULL (1). */
void cpu_acc16_batchnorm_backward_data(const float *dy, const float *x, int n, int c, int hw,
	const float *mean, const float *invstd, const float *w, float *dx, float *dw, float *db);
/* dw = sum(dy * xhat), db = sum(dy): the same values cpu_acc16_batchnorm_backward_data gives. */
void cpu_acc16_batchnorm_backward_params(const float *dy, const float *x, int n, int c, int hw,
	const float *mean, const float *invstd, float *dw, float *db);

/* ---- pooling ----------------------------------------------------------------------------- */

void cpu_acc16_avgpool2d_forward(const CpuPool *p, const float *x, float *y);
void cpu_acc16_avgpool2d_backward(const CpuPool *p, const float *dy, float *dx);
void cpu_acc16_global_avgpool_forward(const float *x, int n, int c, int hw, float *y);
void cpu_acc16_global_avgpool_backward(const float *dy, int n, int c, int hw, float *dx);

/* ---- softmax and the loss, over rows of [n, k] ------------------------------------------- */

void cpu_acc16_softmax_forward(const float *x, int n, int k, float *y);
void cpu_acc16_softmax_backward(const float *y, const float *dy, int n, int k, float *dx);
/* -1 if a label is outside [0, k) (nothing written). */
int cpu_acc16_softmax_xent_forward(const float *logits, const int32_t *labels, int n, int k,
	double eps, float *loss);
int cpu_acc16_softmax_xent_backward(const float *logits, const int32_t *labels, int n, int k,
	double eps, double dloss, float *dlogits);

#endif
