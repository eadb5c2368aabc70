/* Shape inference rules (see infer.h). Each infer_<op> reads the op's input types
 * (in->in[0 .. nin-1]) and attributes, fills r->out, declares parameters in r->params, and
 * returns false with r->err set when the inputs do not fit. Messages start with the op name. */
#include "core/infer.h"
#include "core/geometry.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef bool InferFn(const OpSig *in, int batch, InferResult *r);

static bool
fail(InferResult *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	return false;
}

/* Tensors and MAC counts are bounded so that no size arithmetic can overflow int64. */
enum { MAX_ELEMS_LOG2 = 40 };

/* Product of N factors, or -1 if it exceeds 2^MAX_ELEMS_LOG2 (or a factor is negative). */
static int64_t
bounded_product(int n, const int64_t *f)
{
	int64_t p = 1;
	for (int i = 0; i < n; i++) {
		if (f[i] < 0 || __builtin_mul_overflow(p, f[i], &p) || p > ((int64_t)1 << MAX_ELEMS_LOG2))
			return -1;
	}
	return p;
}

/* A type for messages: its dtype and dims, and the layout when it stores channels last. */
static const char *
ts(const Type *t, char *buf)
{
	type_str(t, buf, 96);
	if (layout_channels_last(t->layout))
		snprintf(buf + strlen(buf), 96 - strlen(buf), " %s", layout_name(t->layout));
	return buf;
}

static const Type *
arg_t(const OpSig *in, int i)
{
	return in->in[i];
}

static const AttrVal *
attr(const OpSig *in, const char *name)
{
	return &in->attr[nnc_attr_index(in->op, name)];
}

static int64_t
attr_i(const OpSig *in, const char *name)
{
	return attr(in, name)->i[0];
}

static double
attr_f(const OpSig *in, const char *name)
{
	return attr(in, name)->f;
}

static const char *
attr_s(const OpSig *in, const char *name)
{
	return attr(in, name)->s;
}

/* He (Kaiming) and Xavier (Glorot) initializers use fan-in / fan-out of the weight;
 * torch_default is PyTorch's default for conv and dense layers (kaiming_uniform with a = sqrt(5)
 * for weights, uniform(+-1/sqrt(fan_in)) for biases). */
bool
nnc_state_kind(const char *kind)
{
	static const char *const state[] = {"running_mean", "running_var", "momentum_buffer", "exp_avg", "exp_avg_sq"};
	for (size_t i = 0; i < sizeof state / sizeof state[0]; i++)
		if (strcmp(kind, state[i]) == 0)
			return true;
	return false;
}

const char *const nnc_initializers[] = {"zeros", "ones", "he_normal", "he_uniform", "xavier_normal",
	"xavier_uniform", "torch_default", "dirac", "whiten", NULL};

static void
declare(InferResult *r, const char *suffix, const char *kind, Type t, const char *init, bool trainable)
{
	r->params[r->nparams++] = (ParamDecl){suffix, kind, t, init, trainable};
}

static bool
is_float(const Type *t)
{
	return t->dtype == DT_F32 || t->dtype == DT_F16;
}

/* Requires a float image tensor of rank 4 (N, C, H, W), stored NCHW or NHWC: its result
 * keeps that layout (type_make(..., x->layout, ...) below). */
static bool
need_nchw(const OpSig *in, InferResult *r)
{
	char b[96];
	const Type *t = arg_t(in, 0);
	if (t->rank != 4 || !is_float(t) || (t->layout != LY_NCHW && t->layout != LY_NHWC))
		return fail(r, "%s expects a 4-D float image tensor [N, C, H, W], got %s", nnc_ops[in->op].name,
			ts(in->in[0], b));
	return true;
}

static bool
infer_input(const OpSig *in, int batch, InferResult *r)
{
	const char *kind = attr_s(in, "kind");
	int64_t d[4] = {batch, attr_i(in, "channels"), attr_i(in, "height"), attr_i(in, "width")};
	if (strcmp(kind, "image") == 0) {
		for (int i = 1; i < 4; i++)
			if (d[i] <= 0)
				return fail(r, "image dimensions must be positive, got [%lld, %lld, %lld]", (long long)d[1],
					(long long)d[2], (long long)d[3]);
		r->out = type_make(DT_F32, LY_NCHW, 4, d);
		return true;
	}
	if (strcmp(kind, "labels") == 0) {
		if (attr_i(in, "classes") < 2)
			return fail(r, "labels need at least 2 classes, got %lld", (long long)attr_i(in, "classes"));
		r->out = type_make(DT_I32, LY_N, 1, d);
		return true;
	}
	return fail(r, "unknown input kind '%s' (expected 'image' or 'labels')", kind);
}

/* A parameter's type is whatever its consumer declared; the consumer's rule checks it. */
static bool
infer_param(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	r->out = *in->res;
	return true;
}

static bool
infer_output(const OpSig *in, int batch, InferResult *r)
{
	(void)in, (void)batch, (void)r;
	return true;
}

/* out = floor((in + 2*pad - k) / stride) + 1, or a message if the window does not fit. */
static bool
window(const char *op, const char *what, int64_t n, int64_t k, int64_t s, int64_t p, int64_t *out, InferResult *r)
{
	if (k <= 0 || s <= 0 || p < 0)
		return fail(r, "%s: %s needs kernel > 0, stride > 0 and padding >= 0 (got kernel %lld, stride %lld, padding %lld)",
			op, what, (long long)k, (long long)s, (long long)p);
	if (k > ((int64_t)1 << 30) || s > ((int64_t)1 << 30) || p > ((int64_t)1 << 30))
		return fail(r, "%s: kernel, stride and padding must be at most 2^30", op);
	if (n + 2 * p < k)
		return fail(r, "%s: kernel %lld is larger than the padded %s %lld", op, (long long)k, what, (long long)(n + 2 * p));
	*out = nnc_window_out(n, k, s, p);
	return true;
}

static bool
infer_conv2d(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	if (!need_nchw(in, r))
		return false;
	const Type *x = arg_t(in, 0);
	const AttrVal *k = attr(in, "kernel"), *s = attr(in, "stride"), *p = attr(in, "padding");
	int64_t cout = attr_i(in, "channels"), g = attr_i(in, "groups"), cin = x->dim[1];
	if (cout <= 0)
		return fail(r, "conv2d: channels must be positive, got %lld", (long long)cout);
	if (g <= 0)
		return fail(r, "conv2d: groups must be positive, got %lld", (long long)g);
	if (cin % g || cout % g)
		return fail(r, "conv2d: groups=%lld must divide both input channels (%lld, from %s) and output channels (%lld)",
			(long long)g, (long long)cin, ts(in->in[0], b), (long long)cout);
	int64_t d[4] = {x->dim[0], cout, 0, 0};
	if (!window("conv2d", "height", x->dim[2], k->i[0], s->i[0], p->i[0], &d[2], r) ||
	    !window("conv2d", "width", x->dim[3], k->i[1], s->i[1], p->i[1], &d[3], r))
		return false;
	r->out = type_make(x->dtype, x->layout, 4, d);
	/* the filter is stored channels-last (OHWI, KRSC) exactly when the image is */
	int64_t w[4] = {cout, cin / g, k->i[0], k->i[1]};
	declare(r, "weight", "weight", type_make(x->dtype, layout_with(LY_OIHW, x->layout == LY_NHWC), 4, w), attr_s(in, "weight_init"),
		!attr_i(in, "frozen_weight"));
	if (attr_i(in, "bias"))
		declare(r, "bias", "bias", type_make(x->dtype, LY_C, 1, &cout), attr_s(in, "bias_init"), true);
	/* whiten (runtime/whiten.c): one filter per eigenvector of the input's patch moments, and
	 * its negation when there are twice as many filters; the patches are the image's */
	int64_t taps = cin * k->i[0] * k->i[1];
	if (!strcmp(attr_s(in, "weight_init"), "whiten") && (g != 1 || (cout != taps && cout != 2 * taps)))
		return fail(r, "conv2d: weight_init=\"whiten\" needs one group and channels = %lld or %lld (the patch size %lld x "
		               "%lld x %lld, and twice that for the negated filters), got %lld",
			(long long)taps, (long long)(2 * taps), (long long)cin, (long long)k->i[0], (long long)k->i[1],
			(long long)cout);
	int64_t f[6] = {cout, cin / g, k->i[0], k->i[1], d[2], d[3]};
	r->macs = bounded_product(6, f);
	return true;
}

static bool
infer_batchnorm(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	if ((x->rank != 4 && x->rank != 2) || !is_float(x))
		return fail(r, "batchnorm expects a float tensor [N, C, H, W] or [N, C], got %s", ts(in->in[0], b));
	double m = attr_f(in, "momentum"), eps = attr_f(in, "eps");
	if (!(m >= 0 && m <= 1))
		return fail(r, "batchnorm: momentum must be in [0, 1], got %g", m);
	if (!(eps > 0))
		return fail(r, "batchnorm: eps must be positive, got %g", eps);
	int64_t c = x->dim[1];
	r->out = *x;
	if (attr_i(in, "affine")) {
		declare(r, "weight", "scale", type_make(x->dtype, LY_C, 1, &c), attr_s(in, "scale_init"),
			!attr_i(in, "frozen_scale"));
		declare(r, "bias", "shift", type_make(x->dtype, LY_C, 1, &c), attr_s(in, "shift_init"), true);
	} else if (attr_i(in, "frozen_scale")) {
		return fail(r, "batchnorm: frozen_scale needs affine=true (there is no scale to freeze)");
	}
	declare(r, "running_mean", "running_mean", type_make(x->dtype, LY_C, 1, &c), "zeros", false);
	declare(r, "running_var", "running_var", type_make(x->dtype, LY_C, 1, &c), "ones", false);
	return true;
}

static bool
infer_unary(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	if (!is_float(arg_t(in, 0)) || arg_t(in, 0)->rank == 0)
		return fail(r, "%s expects a float tensor, got %s", nnc_ops[in->op].name, ts(in->in[0], b));
	r->out = *arg_t(in, 0);
	return true;
}

#define infer_relu infer_unary
#define infer_relu6 infer_unary
#define infer_gelu infer_unary
#define infer_tanh infer_unary

static bool
infer_pool(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	const char *op = nnc_ops[in->op].name;
	if (!need_nchw(in, r))
		return false;
	const Type *x = arg_t(in, 0);
	const AttrVal *k = attr(in, "kernel"), *s = attr(in, "stride"), *p = attr(in, "padding");
	int64_t sh = nnc_pool_stride(s->i, k->i, 0), sw = nnc_pool_stride(s->i, k->i, 1);
	if (p->i[0] * 2 > k->i[0] || p->i[1] * 2 > k->i[1])
		return fail(r, "%s: padding must be at most half the kernel (kernel %lld, padding %lld)", op,
			(long long)k->i[0], (long long)p->i[0]);
	int64_t d[4] = {x->dim[0], x->dim[1], 0, 0};
	if (!window(op, "height", x->dim[2], k->i[0], sh, p->i[0], &d[2], r) ||
	    !window(op, "width", x->dim[3], k->i[1], sw, p->i[1], &d[3], r))
		return false;
	r->out = type_make(x->dtype, x->layout, 4, d);
	return true;
}

#define infer_maxpool infer_pool
#define infer_avgpool infer_pool

static bool
infer_global_avgpool(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	if (!need_nchw(in, r))
		return false;
	const Type *x = arg_t(in, 0);
	r->out = type_make(x->dtype, LY_NC, 2, x->dim);
	return true;
}

static bool
infer_dense(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	if (x->rank != 2 || !is_float(x))
		return fail(r, "dense expects a 2-D float input [N, features], got %s%s", ts(in->in[0], b),
			x->rank == 4 ? "; flatten() or global_avgpool() it first" : "");
	int64_t units = attr_i(in, "units"), f = x->dim[1];
	if (units <= 0)
		return fail(r, "dense: units must be positive, got %lld", (long long)units);
	int64_t d[2] = {x->dim[0], units}, w[2] = {units, f};
	r->out = type_make(x->dtype, LY_NC, 2, d);
	declare(r, "weight", "weight", type_make(x->dtype, LY_OI, 2, w), attr_s(in, "weight_init"), true);
	if (attr_i(in, "bias"))
		declare(r, "bias", "bias", type_make(x->dtype, LY_C, 1, &units), attr_s(in, "bias_init"), true);
	r->macs = bounded_product(2, w);
	return true;
}

static bool
infer_dropout(const OpSig *in, int batch, InferResult *r)
{
	double p = attr_f(in, "rate");
	if (!(p >= 0 && p < 1))
		return fail(r, "dropout: rate must be in [0, 1), got %g", p);
	return infer_unary(in, batch, r);
}

static bool
infer_flatten(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	if (x->rank < 2 || !is_float(x))
		return fail(r, "flatten expects a float tensor with a batch axis, got %s", ts(in->in[0], b));
	if (layout_channels_last(x->layout)) /* PyTorch's order is (C, H, W): the layout pass relayouts first */
		return fail(r, "flatten expects an nchw tensor, got %s", ts(in->in[0], b));
	int64_t d[2] = {x->dim[0], type_numel(x) / x->dim[0]};
	r->out = type_make(x->dtype, LY_NC, 2, d);
	return true;
}

static bool
infer_add(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char a[96], b[96];
	if (!type_eq(arg_t(in, 0), arg_t(in, 1)))
		return fail(r, "add: operand shapes differ: %s and %s", ts(in->in[0], a), ts(in->in[1], b));
	if (!is_float(arg_t(in, 0)))
		return fail(r, "add expects float tensors, got %s", ts(in->in[0], a));
	r->out = *arg_t(in, 0);
	return true;
}

static bool
infer_concat(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char a[96], b[96];
	const Type *x = arg_t(in, 0);
	int64_t axis = attr_i(in, "axis");
	if (axis < 0)
		axis += x->rank;
	if (axis < 1 || axis >= x->rank)
		return fail(r, "concat: axis %lld is out of range for %s (axis 0, the batch, cannot be joined)",
			(long long)attr_i(in, "axis"), ts(in->in[0], a));
	Type out = *x;
	for (int i = 1; i < in->nin; i++) {
		const Type *y = arg_t(in, i);
		bool ok = y->rank == x->rank && y->dtype == x->dtype && y->layout == x->layout;
		for (int d = 0; ok && d < x->rank; d++)
			ok = d == axis || y->dim[d] == x->dim[d];
		if (!ok)
			return fail(r, "concat: operand %d has shape %s, which does not match %s outside axis %lld", i + 1,
				ts(in->in[i], b), ts(in->in[0], a), (long long)axis);
		out.dim[axis] += y->dim[axis];
	}
	r->out = out;
	return true;
}

static bool
infer_mul(const OpSig *in, int batch, InferResult *r)
{
	return infer_unary(in, batch, r);
}

static bool
infer_softmax(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	if (x->rank != 2 || !is_float(x))
		return fail(r, "softmax expects [N, classes] logits, got %s", ts(in->in[0], b));
	int64_t axis = attr_i(in, "axis");
	if (axis != 1 && axis != -1)
		return fail(r, "softmax: only the class axis (1) is supported, got axis %lld", (long long)axis);
	r->out = *x;
	return true;
}

static bool
infer_softmax_cross_entropy(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char a[96], b[96];
	const Type *x = arg_t(in, 0), *y = arg_t(in, 1);
	if (x->rank != 2 || !is_float(x))
		return fail(r, "softmax_cross_entropy expects [N, classes] logits first, got %s", ts(in->in[0], a));
	if (y->dtype != DT_I32 || y->rank != 1 || y->dim[0] != x->dim[0])
		return fail(r, "softmax_cross_entropy expects integer labels [N] second, got %s for logits %s",
			ts(in->in[1], b), ts(in->in[0], a));
	double ls = attr_f(in, "label_smoothing");
	if (!(ls >= 0 && ls < 1))
		return fail(r, "softmax_cross_entropy: label_smoothing must be in [0, 1), got %g", ls);
	r->out = type_make(x->dtype, LY_SCALAR, 0, NULL);
	return true;
}


/* --- training-mode forward ------------------------------------------------------------------ */

static bool
same_as(const OpSig *in, int a, int b, InferResult *r)
{
	char x[96], y[96];
	if (!type_eq(arg_t(in, a), arg_t(in, b)))
		return fail(r, "%s: operand %d is %s but operand %d is %s", nnc_ops[in->op].name, a + 1, ts(in->in[a], x), b + 1,
			ts(in->in[b], y));
	return true;
}

/* Requires operand I to be a per-channel vector [C] (or rows [K, C] when ROWS > 0) of X's channels. */
static bool
channel_vec(const OpSig *in, int i, int rows, InferResult *r)
{
	char b[96];
	const Type *x = arg_t(in, 0), *v = arg_t(in, i);
	bool ok = x->rank >= 2 && (rows ? v->rank == 2 && v->dim[0] == rows && v->dim[1] == x->dim[1]
	                                : v->rank == 1 && v->dim[0] == x->dim[1]);
	if (!ok)
		return fail(r, "%s: operand %d is %s, not a per-channel %s of %lld channels", nnc_ops[in->op].name, i + 1,
			ts(in->in[i], b), rows ? "statistics pair" : "vector", (long long)(x->rank >= 2 ? x->dim[1] : 0));
	return true;
}

static bool
infer_bn_stats(const OpSig *in, int batch, InferResult *r)
{
	if (!infer_unary(in, batch, r))
		return false;
	int64_t d[2] = {3, arg_t(in, 0)->dim[1]};
	r->out = type_make(arg_t(in, 0)->dtype, LY_KC, 2, d);
	return true;
}

static bool
infer_bn_apply(const OpSig *in, int batch, InferResult *r)
{
	if (!infer_unary(in, batch, r) || !channel_vec(in, 1, 3, r))
		return false;
	for (int i = 2; i < in->nin; i++)
		if (!channel_vec(in, i, 0, r))
			return false;
	return true;
}

/* Per-output-channel vectors of bn_fold_*: operand I must be [C]. */
static bool
out_channel_vec(const OpSig *in, int i, int64_t c, InferResult *r)
{
	char b[96];
	const Type *v = arg_t(in, i);
	if (v->rank != 1 || v->dim[0] != c || !is_float(v))
		return fail(r, "%s: operand %d is %s, not a vector of %lld output channels", nnc_ops[in->op].name, i + 1,
			ts(in->in[i], b), (long long)c);
	return true;
}

static bool
infer_bn_fold_weight(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *w = arg_t(in, 0);
	if (w->rank < 2 || !is_float(w))
		return fail(r, "bn_fold_weight expects a weight [out, ...], got %s", ts(in->in[0], b));
	for (int i = 1; i < in->nin; i++)
		if (!out_channel_vec(in, i, w->dim[0], r))
			return false;
	if (!(attr_f(in, "eps") > 0))
		return fail(r, "bn_fold_weight: eps must be positive");
	r->out = *w;
	return true;
}

static bool
infer_bn_fold_bias(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	DType to = (DType)attr_i(in, "to"); /* AK_DTYPE: f32 or f16, checked where it was read */
	int want = 2 + 2 * (int)attr_i(in, "affine") + (int)attr_i(in, "bias");
	if (in->nin != want)
		return fail(r, "bn_fold_bias: %d operands, but affine and bias say %d", in->nin, want);
	int64_t c = arg_t(in, 0)->dim[0];
	for (int i = 0; i < in->nin; i++)
		if (!out_channel_vec(in, i, c, r))
			return false;
	if (!(attr_f(in, "eps") > 0))
		return fail(r, "bn_fold_bias: eps must be positive");
	r->out = type_make(to, LY_C, 1, &c);
	return true;
}

static bool
infer_bn_update(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *m = arg_t(in, 0);
	if (m->rank != 1 || !type_eq(m, arg_t(in, 1)) || arg_t(in, 2)->rank != 2 || arg_t(in, 2)->dim[0] != 3 ||
	    arg_t(in, 2)->dim[1] != m->dim[0])
		return fail(r, "bn_update: running statistics %s do not match batch statistics %s", ts(in->in[0], b),
			ts(in->in[2], b));
	return true;
}

static bool
infer_dropout_mask(const OpSig *in, int batch, InferResult *r)
{
	return infer_unary(in, batch, r);
}

static bool
infer_mulv(const OpSig *in, int batch, InferResult *r)
{
	return same_as(in, 0, 1, r) && infer_unary(in, batch, r);
}

static bool
infer_ones(const OpSig *in, int batch, InferResult *r)
{
	(void)in, (void)batch;
	r->out = type_make(DT_F32, LY_SCALAR, 0, NULL);
	return true;
}

/* --- backward -------------------------------------------------------------------------------- */

static bool
infer_conv2d_bwd_data(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *dy = arg_t(in, 0), *w = arg_t(in, 1);
	const AttrVal *k = attr(in, "kernel"), *s = attr(in, "stride"), *p = attr(in, "padding"), *ip = attr(in, "input");
	int64_t g = attr_i(in, "groups"), oh, ow;
	if (dy->rank != 4 || w->rank != 4 || w->dim[0] != dy->dim[1] || g <= 0 || w->dim[0] % g ||
	    (dy->layout != LY_NCHW && dy->layout != LY_NHWC) || w->layout != layout_with(LY_OIHW, dy->layout == LY_NHWC))
		return fail(r, "conv2d_bwd_data: gradient %s does not match filter %s", ts(in->in[0], b), ts(in->in[1], b));
	if (!window("conv2d_bwd_data", "height", ip->i[0], k->i[0], s->i[0], p->i[0], &oh, r) ||
	    !window("conv2d_bwd_data", "width", ip->i[1], k->i[1], s->i[1], p->i[1], &ow, r))
		return false;
	if (oh != dy->dim[2] || ow != dy->dim[3] || w->dim[2] != k->i[0] || w->dim[3] != k->i[1])
		return fail(r, "conv2d_bwd_data: gradient %s does not come from a %lldx%lld input with this geometry",
			ts(in->in[0], b), (long long)ip->i[0], (long long)ip->i[1]);
	int64_t d[4] = {dy->dim[0], w->dim[1] * g, ip->i[0], ip->i[1]};
	r->out = type_make(dy->dtype, dy->layout, 4, d);
	int64_t f[6] = {w->dim[0], w->dim[1], k->i[0], k->i[1], oh, ow};
	r->macs = bounded_product(6, f);
	return true;
}

static bool
infer_conv2d_bwd_filter(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96], c[96];
	const Type *dy = arg_t(in, 0), *x = arg_t(in, 1);
	const AttrVal *k = attr(in, "kernel"), *s = attr(in, "stride"), *p = attr(in, "padding");
	int64_t g = attr_i(in, "groups"), oh, ow;
	if (dy->rank != 4 || x->rank != 4 || dy->dim[0] != x->dim[0] || g <= 0 || x->dim[1] % g || dy->dim[1] % g ||
	    dy->layout != x->layout || (x->layout != LY_NCHW && x->layout != LY_NHWC))
		return fail(r, "conv2d_bwd_filter: gradient %s does not match input %s", ts(in->in[0], b), ts(in->in[1], c));
	if (!window("conv2d_bwd_filter", "height", x->dim[2], k->i[0], s->i[0], p->i[0], &oh, r) ||
	    !window("conv2d_bwd_filter", "width", x->dim[3], k->i[1], s->i[1], p->i[1], &ow, r))
		return false;
	if (oh != dy->dim[2] || ow != dy->dim[3])
		return fail(r, "conv2d_bwd_filter: gradient %s does not match input %s", ts(in->in[0], b), ts(in->in[1], c));
	int64_t d[4] = {dy->dim[1], x->dim[1] / g, k->i[0], k->i[1]};
	r->out = type_make(dy->dtype, layout_with(LY_OIHW, x->layout == LY_NHWC), 4, d);
	int64_t f[6] = {d[0], d[1], d[2], d[3], oh, ow};
	r->macs = bounded_product(6, f);
	return true;
}

static bool
infer_bias_grad(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *dy = arg_t(in, 0);
	if (dy->rank != 4 && dy->rank != 2)
		return fail(r, "bias_grad expects [N, C, H, W] or [N, C], got %s", ts(in->in[0], b));
	r->out = type_make(dy->dtype, LY_C, 1, &dy->dim[1]);
	return true;
}

static bool
infer_bn_bwd_data(const OpSig *in, int batch, InferResult *r)
{
	if (!same_as(in, 0, 1, r) || !channel_vec(in, 2, 3, r) || (in->nin == 4 && !channel_vec(in, 3, 0, r)))
		return false;
	return infer_unary(in, batch, r);
}

static bool
infer_bn_bwd_scale(const OpSig *in, int batch, InferResult *r)
{
	if (!same_as(in, 0, 1, r) || !channel_vec(in, 2, 3, r))
		return false;
	return infer_bias_grad(in, batch, r);
}

static bool
infer_act_bwd(const OpSig *in, int batch, InferResult *r)
{
	return same_as(in, 0, 1, r) && infer_unary(in, batch, r);
}

#define infer_relu_bwd infer_act_bwd
#define infer_relu6_bwd infer_act_bwd
#define infer_gelu_bwd infer_act_bwd
#define infer_tanh_bwd infer_act_bwd

/* Checks that DY is what pooling X-sized input (N, C, H, W) with this geometry produces. */
static bool
pool_grad_fits(const OpSig *in, const Type *dy, int64_t n, int64_t c, int64_t h, int64_t w, InferResult *r)
{
	char b[96];
	const AttrVal *k = attr(in, "kernel"), *s = attr(in, "stride"), *p = attr(in, "padding");
	int64_t oh, ow;
	const char *op = nnc_ops[in->op].name;
	if (dy->rank != 4 || !window(op, "height", h, k->i[0], s->i[0], p->i[0], &oh, r) ||
	    !window(op, "width", w, k->i[1], s->i[1], p->i[1], &ow, r))
		return dy->rank == 4 ? false : fail(r, "%s expects a 4-D gradient, got %s", op, ts(dy, b));
	if (dy->dim[0] != n || dy->dim[1] != c || dy->dim[2] != oh || dy->dim[3] != ow)
		return fail(r, "%s: gradient %s does not come from a %lldx%lld input", op, ts(dy, b), (long long)h, (long long)w);
	return true;
}

static bool
infer_maxpool_bwd(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	const Type *x = arg_t(in, 1);
	if (x->rank != 4 || !pool_grad_fits(in, arg_t(in, 0), x->dim[0], x->dim[1], x->dim[2], x->dim[3], r))
		return r->err[0] ? false : fail(r, "maxpool_bwd expects a 4-D input");
	if (arg_t(in, 0)->layout != x->layout)
		return fail(r, "maxpool_bwd: the gradient's layout differs from the input's");
	r->out = *x;
	return true;
}

static bool
infer_avgpool_bwd(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	const Type *dy = arg_t(in, 0);
	const AttrVal *ip = attr(in, "input");
	if (!pool_grad_fits(in, dy, dy->dim[0], dy->rank == 4 ? dy->dim[1] : 0, ip->i[0], ip->i[1], r))
		return false;
	int64_t d[4] = {dy->dim[0], dy->dim[1], ip->i[0], ip->i[1]};
	r->out = type_make(dy->dtype, dy->layout, 4, d);
	return true;
}

static bool
infer_global_avgpool_bwd(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *dy = arg_t(in, 0);
	const AttrVal *ip = attr(in, "input");
	if (dy->rank != 2 || ip->i[0] <= 0 || ip->i[1] <= 0)
		return fail(r, "global_avgpool_bwd expects [N, C] and a positive input size, got %s", ts(in->in[0], b));
	Layout ly = layout_lookup(attr_s(in, "layout"));
	if (ly != LY_NCHW && ly != LY_NHWC)
		return fail(r, "global_avgpool_bwd: layout must be \"nchw\" or \"nhwc\", got '%s'", attr_s(in, "layout"));
	int64_t d[4] = {dy->dim[0], dy->dim[1], ip->i[0], ip->i[1]};
	r->out = type_make(dy->dtype, ly, 4, d);
	return true;
}

static bool
infer_dense_bwd_data(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96], c[96];
	const Type *dy = arg_t(in, 0), *w = arg_t(in, 1);
	if (dy->rank != 2 || w->rank != 2 || w->dim[0] != dy->dim[1])
		return fail(r, "dense_bwd_data: gradient %s does not match weight %s", ts(in->in[0], b), ts(in->in[1], c));
	int64_t d[2] = {dy->dim[0], w->dim[1]};
	r->out = type_make(dy->dtype, LY_NC, 2, d);
	r->macs = bounded_product(2, w->dim);
	return true;
}

static bool
infer_dense_bwd_weight(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96], c[96];
	const Type *dy = arg_t(in, 0), *x = arg_t(in, 1);
	if (dy->rank != 2 || x->rank != 2 || x->dim[0] != dy->dim[0])
		return fail(r, "dense_bwd_weight: gradient %s does not match input %s", ts(in->in[0], b), ts(in->in[1], c));
	int64_t d[2] = {dy->dim[1], x->dim[1]};
	r->out = type_make(dy->dtype, LY_OI, 2, d);
	r->macs = bounded_product(2, d);
	return true;
}

static bool
infer_unflatten(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	const AttrVal *ip = attr(in, "input");
	int64_t c = attr_i(in, "channels");
	int64_t f[3] = {c, ip->i[0], ip->i[1]};
	if (x->rank != 2 || c <= 0 || ip->i[0] <= 0 || ip->i[1] <= 0 || bounded_product(3, f) != x->dim[1])
		return fail(r, "unflatten: %s does not hold [%lld, %lld, %lld] per image", ts(in->in[0], b), (long long)c,
			(long long)ip->i[0], (long long)ip->i[1]);
	int64_t d[4] = {x->dim[0], c, ip->i[0], ip->i[1]};
	r->out = type_make(x->dtype, LY_NCHW, 4, d);
	return true;
}

static bool
infer_slice(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	int64_t axis = attr_i(in, "axis"), start = attr_i(in, "start"), size = attr_i(in, "size");
	if (axis < 1 || axis >= x->rank || start < 0 || size <= 0 || start > x->dim[axis] - size)
		return fail(r, "slice: [%lld, %lld) of axis %lld is outside %s", (long long)start, (long long)(start + size),
			(long long)axis, ts(in->in[0], b));
	r->out = *x;
	r->out.dim[axis] = size;
	return true;
}

static bool
infer_softmax_bwd(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	if (!same_as(in, 0, 1, r))
		return false;
	r->out = *arg_t(in, 0);
	return true;
}

static bool
infer_sce_bwd(const OpSig *in, int batch, InferResult *r)
{
	char b[96];
	if (arg_t(in, 2)->rank != 0)
		return fail(r, "sce_bwd: the loss gradient must be a scalar, got %s", ts(in->in[2], b));
	if (!infer_softmax_cross_entropy(in, batch, r))
		return false;
	r->out = *arg_t(in, 0);
	return true;
}

/* --- optimizer updates ------------------------------------------------------------------------ */

static bool
infer_update(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char x[96], y[96];
	for (int i = 1; i < in->nin; i++) {
		/* the gradient may be f16 for an f32 parameter (mixed precision): the update widens it */
		const Type *p = arg_t(in, 0), *t = arg_t(in, i);
		if (i == 1 && p->dtype == DT_F32 && t->dtype == DT_F16) {
			Type w = *t;
			w.dtype = DT_F32;
			if (type_eq(p, &w))
				continue;
			return fail(r, "%s: operand 2 is %s but operand 1 is %s", nnc_ops[in->op].name, ts(in->in[1], y),
				ts(in->in[0], x));
		}
		/* optimizer state may be stored wider or narrower than its parameter (a policy with
		 * `state: f32` over fp16 weights): the update computes in f32 and rounds each operand
		 * to its own storage */
		if (i >= 2 && t->dtype != p->dtype && is_float(t)) {
			Type w = *t;
			w.dtype = p->dtype;
			if (type_eq(p, &w))
				continue;
		}
		if (!same_as(in, 0, i, r))
			return false;
	}
	return true;
}

#define infer_sgd_update infer_update
#define infer_adam_update infer_update

static bool
infer_cast(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	if (!is_float(arg_t(in, 0)))
		return fail(r, "cast expects a float tensor, got %s", ts(in->in[0], b));
	r->out = *arg_t(in, 0);
	r->out.dtype = (DType)attr_i(in, "to"); /* AK_DTYPE: f32 or f16, checked where it was read */
	return true;
}

static bool
infer_loss_scale(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	double init = attr_f(in, "init");
	if (!(init > 0 && init < 1e30) || !(attr_f(in, "growth") >= 1) || !(attr_f(in, "backoff") > 0 && attr_f(in, "backoff") <= 1) ||
	    attr_i(in, "interval") < 1)
		return fail(r, "loss_scale: needs init > 0, growth >= 1, 0 < backoff <= 1 and interval >= 1");
	r->out = type_make(DT_F32, LY_SCALAR, 0, NULL);
	return true;
}

static bool
infer_grad_check(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	for (int i = 0; i < in->nin; i++)
		if (!is_float(arg_t(in, i)))
			return fail(r, "grad_check: operand %d is %s, not a float tensor", i + 1, ts(in->in[i], b));
	return true;
}

/* The same image or filter in the other memory order: nchw <-> nhwc, oihw <-> ohwi. */
static bool
infer_relayout(const OpSig *in, int batch, InferResult *r)
{
	(void)batch;
	char b[96];
	const Type *x = arg_t(in, 0);
	Layout to = layout_lookup(attr_s(in, "to"));
	bool image = x->layout == LY_NCHW || x->layout == LY_NHWC, filter = x->layout == LY_OIHW || x->layout == LY_OHWI;
	if (x->rank != 4 || !is_float(x) || !(image || filter))
		return fail(r, "relayout expects a 4-D image or filter, got %s", ts(in->in[0], b));
	if (to == NLAYOUT || to == x->layout || to != layout_with(x->layout, layout_channels_last(to)))
		return fail(r, "relayout: cannot store %s as '%s'", type_str_layout(in->in[0], b, sizeof b),
			attr_s(in, "to") ? attr_s(in, "to") : "");
	r->out = *x;
	r->out.layout = to;
	return true;
}

#define X(name, ...) infer_##name,
static InferFn *const rules[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof rules / sizeof rules[0] == NOP, "an op has no inference rule");

static bool
known_init(const char *s)
{
	for (int i = 0; nnc_initializers[i]; i++)
		if (strcmp(nnc_initializers[i], s) == 0)
			return true;
	return false;
}

bool
infer_op(const OpSig *in, int batch, InferResult *r)
{
	memset(r, 0, sizeof *r);
	if (!rules[in->op](in, batch, r))
		return false;
	if (r->macs < 0 || (r->out.rank && bounded_product(r->out.rank, r->out.dim) < 0))
		return fail(r, "%s: result too large (over 2^%d elements or MACs)", nnc_ops[in->op].name, MAX_ELEMS_LOG2);
	for (int i = 0; i < r->nparams; i++)
		if (bounded_product(r->params[i].type.rank, r->params[i].type.dim) < 0)
			return fail(r, "%s: %s too large (over 2^%d elements)", nnc_ops[in->op].name, r->params[i].suffix,
				MAX_ELEMS_LOG2);
	for (int i = 0; i < r->nparams; i++)
		if ((!strcmp(r->params[i].init, "dirac") || !strcmp(r->params[i].init, "whiten")) &&
		    (in->op != OP_conv2d || strcmp(r->params[i].kind, "weight")))
			return fail(r, "%s: initializer '%s' is for conv2d weights only", nnc_ops[in->op].name, r->params[i].init);
	for (int i = 0; i < r->nparams; i++)
		if (!known_init(r->params[i].init)) {
			int k = snprintf(r->err, sizeof r->err, "%s: unknown initializer '%s' for the %s (known:", nnc_ops[in->op].name,
				r->params[i].init, r->params[i].kind);
			for (int j = 0; nnc_initializers[j] && k > 0 && (size_t)k < sizeof r->err; j++)
				k += snprintf(r->err + k, sizeof r->err - (size_t)k, " %s", nnc_initializers[j]);
			if (k > 0 && (size_t)k < sizeof r->err)
				snprintf(r->err + k, sizeof r->err - (size_t)k, ")");
			return false;
		}
	return true;
}
