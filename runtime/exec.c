/* CPU executor (see exec.h). Each k_<op> reads its step's operands and attributes, sets up the
 * kernel's shape struct, and calls the f32 kernel. Shapes were validated when the plan was
 * read, so a kernel's own -1 return means bad data (a label out of range), not a bad plan. */
#include "runtime/exec.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/kernels.h"

typedef struct {
	Exec *e;
	const PlanStep *s;
	char *err;
	size_t errlen;
} K;

typedef bool KernelFn(K *k);

static const Type *
T(K *k, int i)
{
	return &k->e->plan->values[k->s->in[i]];
}

static float *
IN(K *k, int i)
{
	return exec_f32(k->e, k->s->in[i]);
}

static float *
OUT(K *k)
{
	return exec_f32(k->e, k->s->out);
}

static const AttrVal *
A(K *k, const char *name)
{
	return &k->s->attr[nnc_attr_index(k->s->op, name)];
}

static size_t
numel(const Type *t)
{
	return (size_t)type_numel(t);
}

/* Elements per channel of an [N, C, H, W] or [N, C] tensor. */
static int
hw(const Type *t)
{
	return t->rank == 4 ? (int)(t->dim[2] * t->dim[3]) : 1;
}

static bool
kfail(K *k, const char *what)
{
	snprintf(k->err, k->errlen, "%s", what);
	return false;
}

static bool
k_none(K *k)
{
	return kfail(k, "not an executable kernel");
}

#define k_input k_none
#define k_param k_none
#define k_output k_none

static bool
conv_from(K *k, CpuConv *cv, const Type *x, int cout)
{
	const AttrVal *ke = A(k, "kernel"), *st = A(k, "stride"), *pa = A(k, "padding");
	*cv = (CpuConv){.n = (int)x->dim[0], .c = (int)x->dim[1], .h = (int)x->dim[2], .w = (int)x->dim[3], .k = cout,
		.kh = (int)ke->i[0], .kw = (int)ke->i[1], .sh = (int)st->i[0], .sw = (int)st->i[1], .ph = (int)pa->i[0],
		.pw = (int)pa->i[1], .groups = (int)A(k, "groups")->i[0]};
	return cpu_conv_setup(cv) == 0 || kfail(k, "invalid convolution geometry");
}

static bool
k_conv2d(K *k)
{
	CpuConv cv;
	if (!conv_from(k, &cv, T(k, 0), (int)A(k, "channels")->i[0]))
		return false;
	const float *b = A(k, "bias")->i[0] ? IN(k, 2) : NULL;
	return cpu_conv2d_forward_f32(&cv, IN(k, 0), IN(k, 1), b, OUT(k), k->e->ws, k->e->ws_bytes) == 0 ||
	       kfail(k, "convolution failed (workspace too small)");
}

static bool
k_conv2d_bwd_data(K *k)
{
	const Type *dy = T(k, 0), *w = T(k, 1);
	const AttrVal *ip = A(k, "input");
	Type x = {.rank = 4, .dim = {dy->dim[0], w->dim[1] * A(k, "groups")->i[0], ip->i[0], ip->i[1]}};
	CpuConv cv;
	if (!conv_from(k, &cv, &x, (int)dy->dim[1]))
		return false;
	return cpu_conv2d_backward_data_f32(&cv, IN(k, 0), IN(k, 1), OUT(k), k->e->ws, k->e->ws_bytes) == 0 ||
	       kfail(k, "convolution backward failed (workspace too small)");
}

static bool
k_conv2d_bwd_filter(K *k)
{
	CpuConv cv;
	if (!conv_from(k, &cv, T(k, 1), (int)T(k, 0)->dim[1]))
		return false;
	return cpu_conv2d_backward_filter_f32(&cv, IN(k, 1), IN(k, 0), OUT(k), k->e->ws, k->e->ws_bytes) == 0 ||
	       kfail(k, "convolution backward failed (workspace too small)");
}

static bool
k_bias_grad(K *k)
{
	const Type *t = T(k, 0);
	cpu_bias_backward_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], hw(t), OUT(k));
	return true;
}

/* bn_stats output rows: mean, invstd, unbiased variance. */
static bool
k_bn_stats(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	float *s = OUT(k);
	return cpu_batchnorm_stats_f32(IN(k, 0), (int)t->dim[0], c, hw(t), A(k, "eps")->f, s, s + c, s + 2 * c) == 0 ||
	       kfail(k, "batch norm needs more than one value per channel in training (batch too small)");
}

static bool
k_bn_apply(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 1);
	cpu_batchnorm_apply_f32(IN(k, 0), (int)t->dim[0], c, hw(t), s, s + c, k->s->nin > 2 ? IN(k, 2) : NULL,
		k->s->nin > 3 ? IN(k, 3) : NULL, OUT(k));
	return true;
}

static bool
k_bn_update(K *k)
{
	int c = (int)T(k, 0)->dim[0];
	const float *s = IN(k, 2);
	cpu_batchnorm_update_running_f32(c, A(k, "momentum")->f, s, s + 2 * c, IN(k, 0), IN(k, 1));
	return true;
}

/* Inference-mode batch norm: operands x, [scale, shift,] running_mean, running_var. */
static bool
k_batchnorm(K *k)
{
	const Type *t = T(k, 0);
	bool affine = A(k, "affine")->i[0];
	int r = affine ? 3 : 1;
	cpu_batchnorm_inference_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], hw(t), IN(k, r), IN(k, r + 1), A(k, "eps")->f,
		affine ? IN(k, 1) : NULL, affine ? IN(k, 2) : NULL, OUT(k));
	return true;
}

static bool
k_bn_bwd_data(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 2);
	cpu_batchnorm_backward_data_f32(IN(k, 0), IN(k, 1), (int)t->dim[0], c, hw(t), s, s + c,
		k->s->nin > 3 ? IN(k, 3) : NULL, OUT(k), NULL, NULL);
	return true;
}

static bool
k_bn_bwd_scale(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 2);
	cpu_batchnorm_backward_params_f32(IN(k, 0), IN(k, 1), (int)t->dim[0], c, hw(t), s, s + c, OUT(k), k->e->scratch);
	return true;
}

#define UNARY(op, fn)                                         \
	static bool k_##op(K *k)                                  \
	{                                                         \
		fn(IN(k, 0), OUT(k), numel(T(k, 0)));                 \
		return true;                                          \
	}
UNARY(relu, cpu_relu_forward_f32)
UNARY(relu6, cpu_relu6_forward_f32)
UNARY(gelu, cpu_gelu_forward_f32)
UNARY(tanh, cpu_tanh_forward_f32)
#undef UNARY

/* Backward of an activation: operands (dy, saved), kernels take (saved, dy, dx). */
#define ACT_BWD(op, fn)                                       \
	static bool k_##op(K *k)                                  \
	{                                                         \
		fn(IN(k, 1), IN(k, 0), OUT(k), numel(T(k, 0)));       \
		return true;                                          \
	}
ACT_BWD(relu_bwd, cpu_relu_backward_f32)
ACT_BWD(relu6_bwd, cpu_relu6_backward_f32)
ACT_BWD(gelu_bwd, cpu_gelu_backward_f32)
ACT_BWD(tanh_bwd, cpu_tanh_backward_f32)
#undef ACT_BWD

static bool
pool_from(K *k, CpuPool *p, const Type *x)
{
	const AttrVal *ke = A(k, "kernel"), *st = A(k, "stride"), *pa = A(k, "padding");
	*p = (CpuPool){.n = (int)x->dim[0], .c = (int)x->dim[1], .h = (int)x->dim[2], .w = (int)x->dim[3],
		.kh = (int)ke->i[0], .kw = (int)ke->i[1], .sh = (int)(st->i[0] ? st->i[0] : ke->i[0]),
		.sw = (int)(st->i[1] ? st->i[1] : ke->i[1]), .ph = (int)pa->i[0], .pw = (int)pa->i[1]};
	return cpu_pool_setup(p) == 0 || kfail(k, "invalid pooling geometry");
}

static bool
k_maxpool(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 0)))
		return false;
	cpu_maxpool2d_forward_f32(&p, IN(k, 0), OUT(k));
	return true;
}

static bool
k_avgpool(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 0)))
		return false;
	cpu_avgpool2d_forward_f32(&p, IN(k, 0), OUT(k));
	return true;
}

static bool
k_maxpool_bwd(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 1)))
		return false;
	cpu_maxpool2d_backward_f32(&p, IN(k, 1), IN(k, 0), OUT(k));
	return true;
}

static bool
k_avgpool_bwd(K *k)
{
	const Type *dy = T(k, 0);
	const AttrVal *ip = A(k, "input");
	Type x = {.rank = 4, .dim = {dy->dim[0], dy->dim[1], ip->i[0], ip->i[1]}};
	CpuPool p;
	if (!pool_from(k, &p, &x))
		return false;
	cpu_avgpool2d_backward_f32(&p, IN(k, 0), OUT(k));
	return true;
}

static bool
k_global_avgpool(K *k)
{
	const Type *t = T(k, 0);
	cpu_global_avgpool_forward_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], hw(t), OUT(k));
	return true;
}

static bool
k_global_avgpool_bwd(K *k)
{
	const Type *t = T(k, 0);
	const AttrVal *ip = A(k, "input");
	cpu_global_avgpool_backward_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], (int)(ip->i[0] * ip->i[1]), OUT(k));
	return true;
}

static bool
k_dense(K *k)
{
	const Type *x = T(k, 0);
	cpu_dense_forward_f32(IN(k, 0), IN(k, 1), A(k, "bias")->i[0] ? IN(k, 2) : NULL, (int)x->dim[0], (int)x->dim[1],
		(int)A(k, "units")->i[0], OUT(k));
	return true;
}

static bool
k_dense_bwd_data(K *k)
{
	const Type *dy = T(k, 0), *w = T(k, 1);
	cpu_dense_backward_data_f32(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)w->dim[1], (int)w->dim[0], OUT(k));
	return true;
}

static bool
k_dense_bwd_weight(K *k)
{
	const Type *dy = T(k, 0), *x = T(k, 1);
	cpu_dense_backward_weight_f32(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)x->dim[1], (int)dy->dim[1], OUT(k));
	return true;
}

/* Inference dropout is the identity; reshapes copy (values never alias). */
static bool
k_copy(K *k)
{
	memcpy(OUT(k), IN(k, 0), numel(T(k, 0)) * sizeof(float));
	return true;
}

#define k_dropout k_copy
#define k_flatten k_copy
#define k_unflatten k_copy

static bool
k_dropout_mask(K *k)
{
	cpu_dropout_mask_f32(&k->e->rng, A(k, "rate")->f, OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_mulv(K *k)
{
	cpu_dropout_apply_f32(IN(k, 0), IN(k, 1), OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_ones(K *k)
{
	*OUT(k) = 1.0f;
	return true;
}

static bool
k_add(K *k)
{
	cpu_add_f32(IN(k, 0), IN(k, 1), OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_mul(K *k)
{
	cpu_scale_f32(IN(k, 0), A(k, "scale")->f, OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_concat(K *k)
{
	int n = k->s->nin, cs[NNC_MAXARGS];
	const float *xs[NNC_MAXARGS];
	int64_t axis = A(k, "axis")->i[0];
	if (axis < 0)
		axis += T(k, 0)->rank;
	if (axis != 1)
		return kfail(k, "concat is implemented along the channel axis only");
	for (int i = 0; i < n; i++) {
		xs[i] = IN(k, i);
		cs[i] = (int)T(k, i)->dim[1];
	}
	cpu_concat_forward_f32(n, xs, cs, (int)T(k, 0)->dim[0], hw(T(k, 0)), OUT(k));
	return true;
}

/* slice along axis 1: rows [start, start + size) of each image. */
static bool
k_slice(K *k)
{
	const Type *t = T(k, 0);
	if (A(k, "axis")->i[0] != 1)
		return kfail(k, "slice is implemented along the channel axis only");
	size_t inner = (size_t)hw(t), c = (size_t)t->dim[1], start = (size_t)A(k, "start")->i[0],
	       size = (size_t)A(k, "size")->i[0];
	const float *x = IN(k, 0);
	float *y = OUT(k);
	for (int64_t i = 0; i < t->dim[0]; i++)
		memcpy(y + (size_t)i * size * inner, x + ((size_t)i * c + start) * inner, size * inner * sizeof *y);
	return true;
}

static bool
k_softmax(K *k)
{
	cpu_softmax_forward_f32(IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k));
	return true;
}

static bool
k_softmax_bwd(K *k)
{
	cpu_softmax_backward_f32(IN(k, 1), IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k));
	return true;
}

static double
smoothing(K *k)
{
	double r = k->e->recipe.label_smoothing;
	return r >= 0 ? r : A(k, "label_smoothing")->f;
}

static bool
k_softmax_cross_entropy(K *k)
{
	const Type *t = T(k, 0);
	return cpu_softmax_xent_forward_f32(IN(k, 0), exec_i32(k->e, k->s->in[1]), (int)t->dim[0], (int)t->dim[1],
	               smoothing(k), OUT(k)) == 0 ||
	       kfail(k, "a label is outside the model's classes");
}

static bool
k_sce_bwd(K *k)
{
	const Type *t = T(k, 0);
	return cpu_softmax_xent_backward_f32(IN(k, 0), exec_i32(k->e, k->s->in[1]), (int)t->dim[0], (int)t->dim[1],
	               smoothing(k), *IN(k, 2), OUT(k)) == 0 ||
	       kfail(k, "a label is outside the model's classes");
}

static bool
k_sgd_update(K *k)
{
	const Recipe *r = &k->e->recipe;
	CpuSgd o = {.lr = k->e->lr, .momentum = r->momentum, .weight_decay = A(k, "decay")->i[0] ? r->weight_decay : 0,
		.nesterov = r->nesterov};
	cpu_sgd_step_f32(&o, k->e->step + 1, IN(k, 0), IN(k, 1), IN(k, 2), numel(T(k, 0)));
	return true;
}

static bool
k_adam_update(K *k)
{
	const Recipe *r = &k->e->recipe;
	CpuAdam o = {.lr = k->e->lr, .beta1 = r->beta1, .beta2 = r->beta2, .eps = r->eps,
		.weight_decay = A(k, "decay")->i[0] ? r->weight_decay : 0, .decoupled = A(k, "decoupled")->i[0]};
	cpu_adam_step_f32(&o, k->e->step + 1, IN(k, 0), IN(k, 1), IN(k, 2), IN(k, 3), numel(T(k, 0)));
	return true;
}

#define X(name, ...) k_##name,
static KernelFn *const kernels[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof kernels / sizeof kernels[0] == NOP, "an op has no CPU kernel entry");

bool
exec_run(Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
	e->failed_step = -1;
	bool updated = false;
	for (int i = 0; i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		char msg[256] = "";
		K k = {e, s, msg, sizeof msg};
		if (!kernels[s->op](&k)) {
			e->failed_step = i;
			snprintf(err, errlen, "%s: step %d, %s%s%s: %s", s->loc, i, nnc_ops[s->op].name, s->name[0] ? " " : "",
				s->name, msg);
			return false;
		}
		updated |= s->op == OP_sgd_update || s->op == OP_adam_update;
	}
	if (updated)
		e->step++;
	return true;
}

/* --- set-up -------------------------------------------------------------------------------- */

bool
exec_init(Exec *e, const Plan *p, int threads, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	e->plan = p;
	e->recipe = p->recipe;
	e->lr = p->recipe.lr;
	e->threads = threads;
	e->failed_step = -1;
	if (cpu_threads_init(threads) != 0) {
		snprintf(err, errlen, "cannot start %d worker threads", threads);
		return false;
	}
	e->off = calloc((size_t)p->nvalues + 1, sizeof *e->off);
	size_t total = 0, maxc = 1;
	for (int i = 0; e->off && i < p->nvalues; i++) {
		e->off[i] = total;
		total += ((size_t)type_numel(&p->values[i]) + 15) & ~(size_t)15; /* 64-byte aligned regions */
		if (p->values[i].rank >= 2 && (size_t)p->values[i].dim[1] > maxc)
			maxc = (size_t)p->values[i].dim[1];
		if (p->values[i].rank == 1 && (size_t)p->values[i].dim[0] > maxc)
			maxc = (size_t)p->values[i].dim[0];
	}
	const PlanProgram *progs[2] = {p->has_train ? &p->train : NULL, &p->eval};
	for (int g = 0; g < 2; g++)
		for (int i = 0; progs[g] && i < progs[g]->nsteps; i++) {
			const PlanStep *s = &progs[g]->steps[i];
			if (s->op != OP_conv2d && s->op != OP_conv2d_bwd_data && s->op != OP_conv2d_bwd_filter)
				continue;
			char msg[64];
			K k = {e, s, msg, sizeof msg};
			CpuConv cv;
			const Type *x = s->op == OP_conv2d ? T(&k, 0) : s->op == OP_conv2d_bwd_filter ? T(&k, 1) : NULL;
			Type xb;
			if (!x) {
				const Type *dy = T(&k, 0), *w = T(&k, 1);
				xb = (Type){.rank = 4, .dim = {dy->dim[0], w->dim[1] * A(&k, "groups")->i[0], A(&k, "input")->i[0],
				                               A(&k, "input")->i[1]}};
				x = &xb;
			}
			int cout = s->op == OP_conv2d ? (int)A(&k, "channels")->i[0] : (int)T(&k, 0)->dim[1];
			if (!conv_from(&k, &cv, x, cout))
				continue;
			CpuConvPass pass = s->op == OP_conv2d ? CPU_CONV_FORWARD
			                   : s->op == OP_conv2d_bwd_data ? CPU_CONV_BACKWARD_DATA
			                                                 : CPU_CONV_BACKWARD_FILTER;
			size_t need = cpu_conv2d_workspace_f32(&cv, pass, threads);
			if (need > e->ws_bytes)
				e->ws_bytes = need;
		}
	e->mem_elems = total;
	e->mem = e->off ? aligned_alloc(64, (total ? total : 16) * sizeof(float)) : NULL;
	e->ws = aligned_alloc(64, ((e->ws_bytes + 63) & ~(size_t)63) + 64);
	e->scratch = aligned_alloc(64, ((maxc * sizeof(float) + 63) & ~(size_t)63));
	if (!e->mem || !e->ws || !e->scratch) {
		snprintf(err, errlen, "out of memory: the plan needs %.1f MB for its values and %.1f MB of workspace",
			(double)total * 4 / 1e6, (double)e->ws_bytes / 1e6);
		exec_free(e);
		return false;
	}
	memset(e->mem, 0, total * sizeof(float));
	cpu_rng_seed(&e->rng, (uint64_t)p->recipe.seed ^ 0x64726f706f7574ull);
	return true;
}

void
exec_free(Exec *e)
{
	free(e->mem);
	free(e->off);
	free(e->ws);
	free(e->scratch);
	e->mem = NULL;
	e->off = NULL;
	e->ws = NULL;
	e->scratch = NULL;
	cpu_threads_shutdown();
}

/* --- initializers ------------------------------------------------------------------------------ */

static double
uniform01(CpuRng *r)
{
	return cpu_rng_uniform(r);
}

static double
normal01(CpuRng *r)
{
	double u1 = uniform01(r), u2 = uniform01(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

void
exec_init_params(Exec *e, uint64_t seed)
{
	const Plan *p = e->plan;
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		float *v = exec_f32(e, q->value);
		size_t n = numel(&p->values[q->value]);
		CpuRng r;
		cpu_rng_seed(&r, seed * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1);
		double fi = q->fan_in > 0 ? (double)q->fan_in : 1, fo = q->fan_out > 0 ? (double)q->fan_out : 1;
		bool is_bias = strcmp(q->kind, "bias") == 0;
		const char *init = q->init;
		for (size_t k = 0; k < n; k++) {
			double x;
			if (!strcmp(init, "zeros"))
				x = 0;
			else if (!strcmp(init, "ones"))
				x = 1;
			else if (!strcmp(init, "he_normal"))
				x = normal01(&r) * sqrt(2 / fi);
			else if (!strcmp(init, "he_uniform"))
				x = (2 * uniform01(&r) - 1) * sqrt(6 / fi);
			else if (!strcmp(init, "xavier_normal"))
				x = normal01(&r) * sqrt(2 / (fi + fo));
			else if (!strcmp(init, "xavier_uniform"))
				x = (2 * uniform01(&r) - 1) * sqrt(6 / (fi + fo));
			else /* torch_default: kaiming_uniform(a = sqrt(5)) for weights, U(+-1/sqrt(fan_in)) for biases */
				x = (2 * uniform01(&r) - 1) * (is_bias ? 1 / sqrt(fi) : sqrt(6 / (6 * fi)));
			v[k] = (float)x;
		}
	}
}
