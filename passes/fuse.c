/* Fusion: six table-driven steps over each graph (docs/passes.md has examples and numbers):
 * batch-norm folding (FOLDBN), epilogues (EPI), prologues (PRO), backward groups, elementwise
 * chains (CHAIN, COMMUTES) and the other step groups (GroupKind), each below where it is
 * defined; every step but the first keeps results bit-identical to the unfused plan. Every
 * fusion a backend performs is made here and marked in the plan: no executor decides one.
 *
 * 1. Batch-norm folding (inference graphs: the eval program). An inference batchnorm whose
 *    input is the result of an OPF_FOLDBN op (conv2d, dense), used by nothing else, folds into
 *    that op's weight and bias, computed per output channel by two small ops before it:
 *
 *      y = conv2d(x, w [, b]); z = batchnorm(y, [scale, shift,] mean, var)
 *        =>  w' = bn_fold_weight(w, var [, scale]); b' = bn_fold_bias(mean, var [, scale,
 *            shift] [, b]); z = conv2d+batchnorm(x, w', b')
 *
 *    (in mixed precision from the fp32 master weight, cast to fp16 after folding), so the
 *    normalized tensor is produced by the convolution itself (and cuDNN can run conv + bias +
 *    activation as one call). The arithmetic changes (a(w.x) becomes (aw).x): results agree
 *    within rounding, not bit for bit; tests/memplan.sh bounds the difference.
 *
 * 2. Epilogues. An activation (relu, relu6: the Epilogue list in ops.h) folds into the op that
 *    feeds it when that op's kernel can apply it to its result in the same pass (OPF_EPI:
 *    conv2d and dense after their bias, batch norm, its training-mode apply, add), so the
 *    tensor crosses memory once instead of three times and the pre-activation value leaves the
 *    plan.
 *
 *      y = bn_apply(x, s, ...); z = relu(y)          =>  z = bn_apply+relu(x, s, ...)
 *      ... dx = relu_bwd(dz, y)                      =>  ... dx = relu_bwd(dz, z)
 *
 *    The pre-activation y may be used only by the activation and by its backward op as the
 *    saved operand: the backward masks y > 0 (relu) and 0 < y < 6 (relu6) equal z > 0 and
 *    0 < z < 6 bit for bit (z = y inside the range, a bound outside it; a NaN gives 0 both
 *    ways; fp16 rounding is monotone and keeps 0 and 6), so the backward op reads the output
 *    instead, as PyTorch's in-place relu does. Any other user of y (a cast, a residual branch)
 *    needs the value before the activation and blocks fusion, as does a dtype change between
 *    them. Epilogue fusion is bit-identical to the unfused plan.
 *
 * A fused op records the ops it absorbed with their source locations (Inst.part), so dumps show
 * `conv2d+batchnorm+relu ... # a.nn:3:9 +batchnorm a.nn:4:9 +relu a.nn:4:4`.
 * `nnc compile --no-fuse` skips this pass (tests/memplan.sh compares the two plans). */
#include <stdlib.h>

#include "compiler/check.h"
#include "passes/pipeline.h"

static void
absorb(Inst *in, Op op, Loc loc)
{
	if (in->nparts < NNC_MAXPARTS) {
		in->part[in->nparts].op = op;
		in->part[in->nparts++].loc = loc;
	}
}

/* How many operands refer to each value of G (indexed by value id; the caller frees it), or
 * NULL after an error. */
static int *
count_uses(Graph *g, Diag *d)
{
	int *uses = calloc((size_t)g->nvalues + 1, sizeof *uses);
	if (!uses) {
		diag_error(d, (Loc){0}, "out of memory in fuse");
		return NULL;
	}
	for (Inst *in = g->first; in; in = in->next)
		for (int i = 0; i < in->nargs; i++)
			uses[in->args[i]->id]++;
	return uses;
}

/* Folds batchnorm BN into the OPF_FOLDBN op P that defines its input (step 1 above). */
static bool
fold_bn(Graph *g, Diag *d, ValueMap *vm, Inst *p, Inst *bn, const int *uses)
{
	bool affine = attr_i(bn, "affine"), has_bias = p->nargs > p->nin + 1;
	Value *w = p->args[p->nin], *scale = affine ? bn->args[1] : NULL, *shift = affine ? bn->args[2] : NULL;
	/* A weight cast to 16 bits (mixed precision) is folded from its master copy and cast
	 * after, so the folded weight is rounded once. */
	Inst *cast = w->def->op == OP_cast ? w->def : NULL;
	Value *master = cast ? cast->args[0] : w;
	Value *mean = bn->args[bn->nargs - 2], *var = bn->args[bn->nargs - 1];
	Phase phase = g->phase;
	g->cursor = p;
	g->phase = p->phase;
	Value *wa[3] = {master, var, scale};
	Inst *fw = inst_build(g, OP_bn_fold_weight, bn, affine ? 3 : 2, wa);
	inst_set_float(fw, "eps", attr_f(bn, "eps"));
	Value *ba[5] = {mean, var};
	int nb = 2;
	if (affine) {
		ba[nb++] = scale;
		ba[nb++] = shift;
	}
	if (has_bias)
		ba[nb++] = p->args[p->nin + 1];
	Inst *fb = inst_build(g, OP_bn_fold_bias, bn, nb, ba);
	inst_set_float(fb, "eps", attr_f(bn, "eps"));
	inst_set_bool(fb, "affine", affine);
	inst_set_bool(fb, "bias", has_bias);
	inst_set_int(fb, "to", master->type.dtype);
	if (!inst_type(g, d, fw) || !inst_type(g, d, fb))
		return false;
	Value *folded = fw->res;
	if (cast) {
		Inst *c = inst_build(g, OP_cast, cast, 1, &folded);
		inst_set_int(c, "to", attr_i(cast, "to"));
		if (!inst_type(g, d, c))
			return false;
		folded = c->res;
		if (uses[w->id] == 1)
			inst_remove(g, cast);
	}
	g->cursor = NULL;
	g->phase = phase;
	if (!has_bias) {
		Value **args = arena_alloc(g->arena, (size_t)(p->nargs + 1) * sizeof *args);
		for (int i = 0; i < p->nargs; i++)
			args[i] = p->args[i];
		p->args = args;
		p->nargs++;
		inst_set_bool(p, "bias", true);
	}
	p->args[p->nin] = folded;
	p->args[p->nin + 1] = fb->res;
	absorb(p, OP_batchnorm, bn->loc);
	value_map_set(vm, bn->res, p->res);
	inst_remove(g, bn);
	return true;
}

/* Step 1: returns the number of batch norms folded, or -1. */
static int
fold_graph(Graph *g, Diag *d)
{
	int *uses = count_uses(g, d), folded = 0;
	if (!uses)
		return -1;
	ValueMap vm;
	value_map_init(&vm, g);
	for (Inst *in = g->first, *next; in && folded >= 0; in = next) {
		next = in->next;
		value_map_apply(&vm, in);
		Inst *p = in->op == OP_batchnorm ? in->args[0]->def : NULL;
		if (!p || !(nnc_ops[p->op].flags & OPF_FOLDBN) || p->nparts || uses[p->res->id] != 1 ||
		    p->res->type.dtype != in->res->type.dtype)
			continue;
		folded = fold_bn(g, d, &vm, p, in, uses) ? folded + 1 : -1;
	}
	value_map_finish(&vm);
	free(uses);
	return folded;
}

/* Step 2: returns the number of activations fused, or -1. */
static int
epilogue_graph(Graph *g, Diag *d)
{
	size_t n = (size_t)g->nvalues + 1;
	int *uses = calloc(n, sizeof *uses), *saved = calloc(n, sizeof *saved);
	Inst **act = calloc(n, sizeof *act); /* the value's only activation user; (Inst *)-1: several */
	if (!uses || !saved || !act) {
		free(uses);
		free(saved);
		free(act);
		diag_error(d, (Loc){0}, "out of memory in fuse");
		return -1;
	}
	for (Inst *in = g->first; in; in = in->next)
		for (int i = 0; i < in->nargs; i++) {
			int id = in->args[i]->id;
			uses[id]++;
			if (nnc_epilogue_of(in->op) && i == 0)
				act[id] = act[id] ? (Inst *)-1 : in;
			else if (nnc_prologue_of(in->op) && i == 1)
				saved[id]++;
		}
	int fused = 0;
	ValueMap vm;
	value_map_init(&vm, g);
	for (Inst *in = g->first; in; in = in->next) {
		value_map_apply(&vm, in);
		Value *y = in->res;
		if (!(nnc_ops[in->op].flags & OPF_EPI) || in->epi || !y)
			continue;
		Inst *r = act[y->id];
		if (!r || r == (Inst *)-1 || uses[y->id] != 1 + saved[y->id] || r->res->type.dtype != y->type.dtype)
			continue;
		in->epi = nnc_epilogue_of(r->op);
		absorb(in, r->op, r->loc);
		value_map_set(&vm, r->res, y);
		inst_remove(g, r);
		fused++;
	}
	value_map_finish(&vm);
	free(uses);
	free(saved);
	free(act);
	return fused;
}

/* Step 3: prologues. Returns the number of activation backward ops folded into their users,
 * or -1. */
static int
prologue_graph(Graph *g, Diag *d)
{
	int fused = 0;
	for (Inst *r = g->first, *next; r; r = next) {
		next = r->next;
		Epilogue e = nnc_prologue_of(r->op);
		if (!e)
			continue;
		Value *dy = r->res, *dz = r->args[0], *y = r->args[1];
		int users = 0;
		bool ok = true;
		for (Inst *u = r->next; u && ok; u = u->next)
			for (int i = 0; i < u->nargs && ok; i++)
				if (u->args[i] == dy) {
					ok = i == 0 && (nnc_ops[u->op].flags & OPF_PRO) && !u->pro && u->nin == u->nargs;
					users++;
				}
		if (!ok || !users)
			continue;
		for (Inst *u = r->next; u; u = u->next) {
			if (u->nargs == 0 || u->args[0] != dy)
				continue;
			Value **args = arena_alloc(g->arena, (size_t)(u->nargs + 1) * sizeof *args);
			if (!args) {
				diag_error(d, (Loc){0}, "out of memory in fuse");
				return -1;
			}
			args[0] = dz;
			for (int i = 1; i < u->nargs; i++)
				args[i] = u->args[i];
			args[u->nargs] = y;
			u->args = args;
			u->nargs++;
			u->nin++;
			u->pro = e;
			absorb(u, r->op, r->loc);
		}
		inst_remove(g, r);
		fused++;
	}
	return fused;
}

/* Whether S (bn_bwd_scale) and B (bias_grad) form a backward group with D (bn_bwd_data): the
 * same prologue (or none) over the same gradient, input, statistics and activation output. */
static bool
group_of(const Inst *d, const Inst *s, const Inst *b)
{
	int pro = d->pro != EPI_NONE;
	return d->op == OP_bn_bwd_data && s->op == OP_bn_bwd_scale && b->op == OP_bias_grad && s->pro == d->pro &&
	       b->pro == d->pro && s->nargs == 3 + pro && b->nargs == 1 + pro && s->args[0] == d->args[0] &&
	       s->args[1] == d->args[1] && s->args[2] == d->args[2] && b->args[0] == d->args[0] &&
	       (!pro || (s->args[3] == d->args[d->nargs - 1] && b->args[1] == d->args[d->nargs - 1]));
}

/* Step 4: backward groups. The three batch-norm backward ops that read one gradient (through
 * one prologue, step 3, or none) are placed together, bn_bwd_data first, and marked as a group: a
 * backend computes them in one pass (on the CPU, the reductions that give dx give the scale's
 * and shift's gradients too; cuDNN's batch-norm backward returns all three). Unmarked, each
 * would read the gradient, the input and the activation output again. Moving the two later
 * ops up to the first is legal: their operands are the first's. Returns the groups formed. */
static int
group_graph(Graph *g)
{
	int formed = 0;
	for (Inst *d = g->first; d; d = d->next) {
		if (d->op != OP_bn_bwd_data)
			continue;
		Inst *s = NULL, *b = NULL;
		for (Inst *in = d->next; in && (!s || !b); in = in->next) {
			if (!s && in->op == OP_bn_bwd_scale && in->args[0] == d->args[0])
				s = in;
			else if (!b && in->op == OP_bias_grad && in->args[0] == d->args[0])
				b = in;
		}
		if (!s || !b || !group_of(d, s, b))
			continue;
		inst_move_after(g, s, d);
		inst_move_after(g, b, s);
		d->group = 3;
		formed++;
	}
	return formed;
}

/* Step 5: returns the number of elementwise ops absorbed into chains, or -1. */
static int
chain_graph(Graph *g, Diag *d)
{
	int *uses = count_uses(g, d), fused = 0;
	if (!uses)
		return -1;
	for (Inst *c = g->first; c; c = c->next) {
		if (!(nnc_ops[c->op].flags & OPF_CHAIN) || c->epi || c->pro || c->nchain || !c->nargs)
			continue;
		/* A commutative op chains through either operand: the one a chainable op alone feeds. */
		if ((nnc_ops[c->op].flags & OPF_COMMUTES) && uses[c->args[0]->id] != 1 && uses[c->args[1]->id] == 1 &&
		    (nnc_ops[c->args[1]->def->op].flags & OPF_CHAIN)) {
			Value *t = c->args[0];
			c->args[0] = c->args[1];
			c->args[1] = t;
		}
		Inst *p = c->args[0]->def;
		if (!(nnc_ops[p->op].flags & OPF_CHAIN) || p->epi || p->pro || uses[p->res->id] != 1 ||
		    p->nchain + 1 > NNC_MAXCHAIN || p->nparts + 1 + c->nparts > NNC_MAXPARTS ||
		    p->nargs + c->nargs - 1 > NNC_MAXARGS || !type_eq(&p->res->type, &c->res->type))
			continue;
		bool same = true;
		for (int i = 0; i < p->nargs; i++)
			same &= type_eq(&p->args[i]->type, &c->res->type);
		for (int i = 1; i < c->nargs; i++)
			same &= type_eq(&c->args[i]->type, &c->res->type);
		if (!same)
			continue;
		Value **args = arena_alloc(g->arena, (size_t)(p->nargs + c->nargs - 1) * sizeof *args);
		int n = 0;
		for (int i = 0; i < p->nargs; i++)
			args[n++] = p->args[i];
		for (int i = 1; i < c->nargs; i++)
			args[n++] = c->args[i];
		c->args = args;
		c->nargs = c->nin = n;
		for (int j = 0; j < p->nchain; j++)
			c->chain[j] = p->chain[j];
		c->chain[p->nchain] = p->op;
		c->nchain = p->nchain + 1;
		/* parts: P's absorbed ops, P, then C's own (their locations, in execution order) */
		int np = c->nparts;
		for (int i = np - 1; i >= 0; i--)
			c->part[i + p->nparts + 1] = c->part[i];
		for (int i = 0; i < p->nparts; i++)
			c->part[i] = p->part[i];
		c->part[p->nparts].op = p->op;
		c->part[p->nparts].loc = p->loc;
		c->nparts = np + p->nparts + 1;
		inst_remove(g, p);
		fused++;
	}
	free(uses);
	return fused;
}

/* The next instruction after IN that is a step of the plan (sources are not), or NULL. */
static Inst *
next_step(Inst *in)
{
	do
		in = in->next;
	while (in && (nnc_ops[in->op].flags & OPF_SOURCE));
	return in;
}

/* Whether an instruction strictly between A and B reads (or, WRITES, writes in place) V. */
static bool
touched_between(const Inst *a, const Inst *b, const Value *v, bool writes)
{
	for (const Inst *in = a->next; in && in != b; in = in->next)
		for (int i = 0; i < in->nargs; i++)
			if (in->args[i] == v && (!writes || nnc_writes(in->op, i)))
				return true;
	return false;
}

/* Step 6a: the statistics of a training-mode batch norm read the f16 source of a widening cast
 * that only they read (mixed precision keeps batch norm in fp32), and update the running
 * statistics as each channel finishes, so the activation is read once and neither the f32 copy
 * nor a second pass over the statistics is made:
 *
 *      a = cast(x16) to f32; s = bn_stats(a); y = bn_apply(x16, s, ...); bn_update(m, v, s)
 *        =>  [a = cast(x16); s = bn_stats(a); bn_update(m, v, s)] group=3; y = bn_apply(...)
 *
 *    The cast moves down to the statistics (nothing between writes its source) and the update up
 *    to them (nothing between reads or writes the running statistics). */
static int
stats_group(Graph *g, Inst *s, const int *uses, int *pos)
{
	Inst *c = s->args[0]->def, *u = NULL;
	if (!(c->op == OP_cast && !c->group && !c->nchain && c->args[0]->type.dtype == DT_F16 &&
	      c->res->type.dtype == DT_F32 && uses[c->res->id] == 1 && !touched_between(c, s, c->args[0], true)))
		c = NULL;
	for (Inst *in = s->next; in && !u; in = in->next)
		if (in->op == OP_bn_update && in->args[2] == s->res)
			u = in;
	if (u && (u->group || pos[u->args[0]->id] > pos[s->res->id] || pos[u->args[1]->id] > pos[s->res->id] ||
	          touched_between(s, u, u->args[0], false) || touched_between(s, u, u->args[1], false)))
		u = NULL;
	if (!c && !u)
		return 0;
	if (c && next_step(c) != s) {
		inst_move_after(g, c, s->prev);
		pos[c->res->id] = pos[s->res->id];
	}
	if (u)
		inst_move_after(g, u, s);
	(c ? c : s)->group = 1 + (c != NULL) + (u != NULL);
	return 1;
}

/* Step 6b: a residual add of a batch norm's result, its only reader, in the same pass over the
 * data (on the GPU, bn_apply_add), when the add's other operand is made before the batch norm:
 *
 *      y = bn_apply(x, s, ...); ...; z = add(y, r)  =>  [y = bn_apply(x, s, ...); z = add(y, r)] group=2
 *
 *    The add moves up to the batch norm; y is then made and read only inside the group. */
static int
add_group(Graph *g, Inst *b, const int *uses, int *pos)
{
	if (b->epi || b->nchain || uses[b->res->id] != 1)
		return 0;
	Inst *a = b->next;
	while (a && !(a->nargs == 2 && (a->args[0] == b->res || a->args[1] == b->res)))
		a = a->next;
	if (!a || a->op != OP_add || a->nchain || a->pro || a->group || a->args[0] == a->args[1])
		return 0;
	Value *r = a->args[a->args[0] == b->res ? 1 : 0];
	if (pos[r->id] > pos[b->res->id] || touched_between(b, a, r, true))
		return 0;
	inst_move_after(g, a, b);
	pos[a->res->id] = pos[b->res->id];
	b->group = 2;
	return 1;
}

/* Step 6: step groups (GroupKind in ops.h) beyond step 4's: 6a and 6b above, then runs of two
 * or more consecutive steps of one kind, optimizer updates or casts (mixed precision's f16
 * copies of the master weights, which the precision pass places together), which a backend
 * may do in one multi-tensor launch. Returns the groups formed, or -1. */
static int
multi_graph(Graph *g, Diag *d)
{
	int *uses = count_uses(g, d), *pos = calloc((size_t)g->nvalues + 1, sizeof *pos), formed = 0;
	if (!uses || !pos) {
		free(uses);
		free(pos);
		if (uses)
			diag_error(d, (Loc){0}, "out of memory in fuse");
		return -1;
	}
	int n = 0; /* pos: where each value is made, by the instruction order (kept as steps move) */
	for (Inst *in = g->first; in; in = in->next, n++)
		if (in->res)
			pos[in->res->id] = n;
	for (Inst *in = g->first, *next; in; in = next) {
		next = in->next;
		if (in->op == OP_bn_stats && !in->group && !in->nchain)
			formed += stats_group(g, in, uses, pos);
	}
	for (Inst *in = g->first; in; in = in->next)
		if (in->op == OP_bn_apply && !in->group && in->res)
			formed += add_group(g, in, uses, pos);
	int member = 0; /* members of the group being passed over */
	for (Inst *in = g->first; in; in = next_step(in)) {
		if (nnc_ops[in->op].flags & OPF_SOURCE)
			continue;
		if (member > 0 || in->group > 1) {
			member = member > 0 ? member - 1 : in->group - 1;
			continue;
		}
		Op ops[2] = {in->op, in->op};
		int count = 1;
		for (Inst *m = next_step(in); m && m->op == in->op && !m->group && !m->nchain && !in->nchain; m = next_step(m))
			count++;
		if (count >= 2 && nnc_group_kind(ops, 2) == GROUP_MULTI) {
			in->group = count;
			member = count - 1;
			formed++;
		}
	}
	free(uses);
	free(pos);
	return formed;
}

static bool
fuse_graph(Graph *g, Diag *d)
{
	if (fold_graph(g, d) < 0 || epilogue_graph(g, d) < 0 || prologue_graph(g, d) < 0)
		return false;
	group_graph(g);
	return chain_graph(g, d) >= 0 && multi_graph(g, d) >= 0;
}

bool
pass_fuse(Module *m, Diag *d)
{
	if (m->no_fuse)
		return true;
	Graph *net = m->eval ? m->eval : m->main;
	m->network = graph_clone(net, net->name);
	return fuse_graph(m->main, d) && (!m->eval || fuse_graph(m->eval, d));
}
