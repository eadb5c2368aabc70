/* autodiff: appends the backward pass of the training step (reverse-mode differentiation).
 *
 * Starting from d(loss)/d(loss) = 1 (an `ones` op), it walks the forward Insts in reverse and
 * applies each op's gradient rule, which emits backward ops and hands the gradient of each
 * operand to acc(). A value used several times (a residual branch) gets the sum of its
 * gradients through `add`. Only values that depend on a trainable parameter receive gradients,
 * so the image input, labels, batch statistics and dropout masks get none. The rules come from
 * one table generated from the op table, static_asserted to cover every op; an op with no rule
 * that sits on a gradient path is an internal error, never a silent zero.
 *
 * At the end, every trainable parameter that influences the loss is recorded with its
 * gradient in Graph.grad_of/grads for the optimizer pass. */
#include <assert.h>
#include <stdlib.h>

#include "compiler/check.h"
#include "core/geometry.h"
#include "passes/pipeline.h"

typedef struct {
	Graph *g;
	Diag *d;
	Value **grad;       /* by value id */
	unsigned char *need; /* value depends on a trainable parameter */
	bool ok;
} Ctx;

typedef void GradFn(Ctx *c, Inst *fwd, Value *dy);

/* Emits OP(args...) for the backward of FWD, after setting attributes with the caller's code. */
static Inst *
bwd(Ctx *c, Op op, Inst *fwd, int n, Value *a0, Value *a1, Value *a2, Value *a3)
{
	Value *args[4] = {a0, a1, a2, a3};
	return inst_build(c->g, op, fwd, n, args);
}

static Value *
typed(Ctx *c, Inst *in)
{
	if (!c->ok || !inst_type(c->g, c->d, in)) {
		c->ok = false;
		return NULL;
	}
	return in->res;
}

/* Adds GRAD to the gradient of operand I of FWD (if that operand needs one). */
static void
acc(Ctx *c, Inst *fwd, int i, Value *grad)
{
	Value *v = fwd->args[i];
	if (!grad || !c->need[v->id])
		return;
	Value *old = c->grad[v->id];
	c->grad[v->id] = old ? typed(c, bwd(c, OP_add, fwd, 2, old, grad, NULL, NULL)) : grad;
}

static bool
wants(Ctx *c, Inst *fwd, int i)
{
	return i < fwd->nargs && c->need[fwd->args[i]->id];
}

static void
copy_geometry(Inst *to, const Inst *from)
{
	const AttrVal *k = attr(from, "kernel"), *s = attr(from, "stride"), *p = attr(from, "padding");
	inst_set_int2(to, "kernel", k->i[0], k->i[1]);
	/* pools: stride 0 means "same as the kernel"; backward ops get it resolved */
	inst_set_int2(to, "stride", nnc_pool_stride(s->i, k->i, 0), nnc_pool_stride(s->i, k->i, 1));
	inst_set_int2(to, "padding", p->i[0], p->i[1]);
}

static void
grad_conv2d(Ctx *c, Inst *f, Value *dy)
{
	const Type *x = &f->args[0]->type;
	if (wants(c, f, 0)) {
		Inst *in = bwd(c, OP_conv2d_bwd_data, f, 2, dy, f->args[1], NULL, NULL);
		copy_geometry(in, f);
		inst_set_int(in, "groups", attr_i(f, "groups"));
		inst_set_int2(in, "input", x->dim[2], x->dim[3]);
		acc(c, f, 0, typed(c, in));
	}
	if (wants(c, f, 1)) {
		Inst *in = bwd(c, OP_conv2d_bwd_filter, f, 2, dy, f->args[0], NULL, NULL);
		copy_geometry(in, f);
		inst_set_int(in, "groups", attr_i(f, "groups"));
		acc(c, f, 1, typed(c, in));
	}
	if (wants(c, f, 2))
		acc(c, f, 2, typed(c, bwd(c, OP_bias_grad, f, 1, dy, NULL, NULL, NULL)));
}

static void
grad_dense(Ctx *c, Inst *f, Value *dy)
{
	if (wants(c, f, 0))
		acc(c, f, 0, typed(c, bwd(c, OP_dense_bwd_data, f, 2, dy, f->args[1], NULL, NULL)));
	if (wants(c, f, 1))
		acc(c, f, 1, typed(c, bwd(c, OP_dense_bwd_weight, f, 2, dy, f->args[0], NULL, NULL)));
	if (wants(c, f, 2))
		acc(c, f, 2, typed(c, bwd(c, OP_bias_grad, f, 1, dy, NULL, NULL, NULL)));
}

/* bn_apply(x, stats, [scale, shift]): the data gradient accounts for the batch statistics. */
static void
grad_bn_apply(Ctx *c, Inst *f, Value *dy)
{
	Value *x = f->args[0], *s = f->args[1];
	if (wants(c, f, 0)) {
		Inst *in = f->nargs == 4 ? bwd(c, OP_bn_bwd_data, f, 4, dy, x, s, f->args[2])
		                         : bwd(c, OP_bn_bwd_data, f, 3, dy, x, s, NULL);
		acc(c, f, 0, typed(c, in));
	}
	if (wants(c, f, 2))
		acc(c, f, 2, typed(c, bwd(c, OP_bn_bwd_scale, f, 3, dy, x, s, NULL)));
	if (wants(c, f, 3))
		acc(c, f, 3, typed(c, bwd(c, OP_bias_grad, f, 1, dy, NULL, NULL, NULL)));
}

/* Elementwise activations (NNC_ACTIVATIONS in ops.h): the backward op reads the input, or the
 * output where the table says so (tanh). */
static void
grad_activation(Ctx *c, Inst *f, Value *dy)
{
	bool out = false;
	Op b = nnc_activation_bwd(f->op, &out);
	acc(c, f, 0, typed(c, bwd(c, b, f, 2, dy, out ? f->res : f->args[0], NULL, NULL)));
}

static void
grad_maxpool(Ctx *c, Inst *f, Value *dy)
{
	Inst *in = bwd(c, OP_maxpool_bwd, f, 2, dy, f->args[0], NULL, NULL);
	copy_geometry(in, f);
	acc(c, f, 0, typed(c, in));
}

static void
grad_avgpool(Ctx *c, Inst *f, Value *dy)
{
	const Type *x = &f->args[0]->type;
	Inst *in = bwd(c, OP_avgpool_bwd, f, 1, dy, NULL, NULL, NULL);
	copy_geometry(in, f);
	inst_set_int2(in, "input", x->dim[2], x->dim[3]);
	acc(c, f, 0, typed(c, in));
}

static void
grad_global_avgpool(Ctx *c, Inst *f, Value *dy)
{
	const Type *x = &f->args[0]->type;
	Inst *in = bwd(c, OP_global_avgpool_bwd, f, 1, dy, NULL, NULL, NULL);
	inst_set_int2(in, "input", x->dim[2], x->dim[3]);
	acc(c, f, 0, typed(c, in));
}

static void
grad_flatten(Ctx *c, Inst *f, Value *dy)
{
	const Type *x = &f->args[0]->type;
	if (x->rank == 2) {
		acc(c, f, 0, dy);
		return;
	}
	Inst *in = bwd(c, OP_unflatten, f, 1, dy, NULL, NULL, NULL);
	inst_set_int(in, "channels", x->dim[1]);
	inst_set_int2(in, "input", x->dim[2], x->dim[3]);
	acc(c, f, 0, typed(c, in));
}

static void
grad_add(Ctx *c, Inst *f, Value *dy)
{
	acc(c, f, 0, dy);
	acc(c, f, 1, dy);
}

static void
grad_concat(Ctx *c, Inst *f, Value *dy)
{
	int64_t axis = attr_i(f, "axis"), start = 0;
	if (axis < 0)
		axis += f->res->type.rank;
	for (int i = 0; i < f->nin; i++) {
		int64_t size = f->args[i]->type.dim[axis];
		if (wants(c, f, i)) {
			Inst *in = bwd(c, OP_slice, f, 1, dy, NULL, NULL, NULL);
			inst_set_int(in, "axis", axis);
			inst_set_int(in, "start", start);
			inst_set_int(in, "size", size);
			acc(c, f, i, typed(c, in));
		}
		start += size;
	}
}

static void
grad_mul(Ctx *c, Inst *f, Value *dy)
{
	Inst *in = bwd(c, OP_mul, f, 1, dy, NULL, NULL, NULL);
	inst_set_float(in, "scale", attr_f(f, "scale"));
	acc(c, f, 0, typed(c, in));
}

/* mulv(a, b): d/da = dy * b, d/db = dy * a; a dropout mask never wants one. */
static void
grad_mulv(Ctx *c, Inst *f, Value *dy)
{
	for (int i = 0; i < 2; i++)
		if (wants(c, f, i))
			acc(c, f, i, typed(c, bwd(c, OP_mulv, f, 2, dy, f->args[1 - i], NULL, NULL)));
}

static void
grad_softmax(Ctx *c, Inst *f, Value *dy)
{
	acc(c, f, 0, typed(c, bwd(c, OP_softmax_bwd, f, 2, dy, f->res, NULL, NULL)));
}

static void
grad_softmax_cross_entropy(Ctx *c, Inst *f, Value *dy)
{
	Inst *in = bwd(c, OP_sce_bwd, f, 3, f->args[0], f->args[1], dy, NULL);
	inst_set_float(in, "label_smoothing", attr_f(f, "label_smoothing"));
	acc(c, f, 0, typed(c, in));
}

/* Ops that never lie on a gradient path (sources, effects, training internals, backward ops). */
static void
grad_none(Ctx *c, Inst *f, Value *dy)
{
	(void)dy;
	c->ok = false;
	diag_internal(c->d, f->loc, "no gradient rule for %s", nnc_ops[f->op].name);
}

#define grad_relu grad_activation
#define grad_relu6 grad_activation
#define grad_gelu grad_activation
#define grad_tanh grad_activation
#define grad_maxpool grad_maxpool
#define grad_avgpool grad_avgpool
/* batchnorm and dropout are rewritten by trainmode before autodiff runs. */
#define grad_input grad_none
#define grad_param grad_none
#define grad_output grad_none
#define grad_batchnorm grad_none
#define grad_dropout grad_none
#define grad_bn_stats grad_none
#define grad_bn_update grad_none
#define grad_dropout_mask grad_none
#define grad_ones grad_none
#define grad_bn_fold_weight grad_none
#define grad_bn_fold_bias grad_none
#define grad_conv2d_bwd_data grad_none
#define grad_conv2d_bwd_filter grad_none
#define grad_bias_grad grad_none
#define grad_bn_bwd_data grad_none
#define grad_bn_bwd_scale grad_none
#define grad_relu_bwd grad_none
#define grad_relu6_bwd grad_none
#define grad_gelu_bwd grad_none
#define grad_tanh_bwd grad_none
#define grad_maxpool_bwd grad_none
#define grad_avgpool_bwd grad_none
#define grad_global_avgpool_bwd grad_none
#define grad_dense_bwd_data grad_none
#define grad_dense_bwd_weight grad_none
#define grad_unflatten grad_none
#define grad_slice grad_none
#define grad_softmax_bwd grad_none
#define grad_sce_bwd grad_none
#define grad_sgd_update grad_none
#define grad_adam_update grad_none
#define grad_loss_scale grad_none
#define grad_grad_check grad_none

/* Casts are normally inserted after autodiff; differentiating one casts the gradient back. */
static void
grad_cast(Ctx *c, Inst *f, Value *dy)
{
	Inst *in = bwd(c, OP_cast, f, 1, dy, NULL, NULL, NULL);
	inst_set_int(in, "to", f->args[0]->type.dtype);
	acc(c, f, 0, typed(c, in));
}

/* The layout pass runs after autodiff; a relayout differentiated relayouts the gradient back. */
static void
grad_relayout(Ctx *c, Inst *f, Value *dy)
{
	Inst *in = bwd(c, OP_relayout, f, 1, dy, NULL, NULL, NULL);
	inst_set_str(in, "to", layout_name(f->args[0]->type.layout));
	acc(c, f, 0, typed(c, in));
}

#define X(name, ...) grad_##name,
static GradFn *const rules[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof rules / sizeof rules[0] == NOP, "an op has no gradient rule entry");

bool
pass_autodiff(Module *m, Diag *d)
{
	if (!m->training)
		return true;
	Graph *g = m->main;
	Value *loss = module_loss(g, d, false);
	Ctx c = {g, d, NULL, NULL, true};
	/* Backward ops get ids beyond the forward ones; size the maps for the worst case. */
	size_t cap = (size_t)g->nvalues * 8 + 64;
	c.grad = calloc(cap, sizeof *c.grad);
	c.need = calloc(cap, 1);
	if (!c.grad || !c.need) {
		free(c.grad);
		free(c.need);
		diag_error(d, (Loc){0}, "out of memory in autodiff");
		return false;
	}
	Inst *last_fwd = g->last;
	for (Inst *in = g->first; in; in = in->next) {
		if (!in->res)
			continue;
		bool need = in->op == OP_param && attr_i(in, "trainable");
		if (in->op != OP_param && in->op != OP_bn_stats && in->op != OP_dropout_mask)
			for (int i = 0; i < in->nargs; i++)
				need |= c.need[in->args[i]->id];
		c.need[in->res->id] = need;
	}
	g->phase = PH_BACKWARD;
	Inst *seed = inst_new(g, OP_ones, loss->def->loc, 0, (Type){0});
	if (!inst_type(g, d, seed))
		c.ok = false;
	seed->phase = PH_BACKWARD;
	c.grad[loss->id] = seed->res;
	for (Inst *in = last_fwd; in && c.ok; in = in->prev) {
		if (!in->res || !c.grad[in->res->id] || in->op == OP_param)
			continue;
		if ((size_t)g->nvalues + 16 > cap) {
			diag_internal(d, in->loc, "autodiff map overflow");
			c.ok = false;
			break;
		}
		rules[in->op](&c, in, c.grad[in->res->id]);
	}
	if (c.ok) {
		for (Inst *in = g->first; in; in = in->next)
			if (in->op == OP_param && attr_i(in, "trainable") && !c.grad[in->res->id])
				diag_warning(d, in->loc, "parameter '%s' does not affect the loss; it will not be trained",
					attr_s(in, "name"));
		int n = 0;
		for (Inst *in = g->first; in; in = in->next)
			n += in->op == OP_param && attr_i(in, "trainable") && c.grad[in->res->id];
		g->grad_of = arena_alloc(g->arena, (size_t)(n + 1) * sizeof *g->grad_of);
		g->grads = arena_alloc(g->arena, (size_t)(n + 1) * sizeof *g->grads);
		g->ngrads = 0;
		for (Inst *in = g->first; in; in = in->next)
			if (in->op == OP_param && attr_i(in, "trainable") && c.grad[in->res->id]) {
				g->grad_of[g->ngrads] = in->res;
				g->grads[g->ngrads++] = c.grad[in->res->id];
			}
	}
	g->phase = PH_FORWARD;
	free(c.grad);
	free(c.need);
	return c.ok;
}
