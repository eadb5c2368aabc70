/* trainmode: rewrites the forward ops whose training behaviour differs from inference.
 *
 *   y = batchnorm(x, [scale, shift], running_mean, running_var)
 *     => s = bn_stats(x); y = bn_apply(x, s, [scale, shift]); bn_update(running_mean, running_var, s)
 *   y = dropout(x)  =>  m = dropout_mask(x); y = mulv(x, m)
 *
 * so that the batch statistics and the dropout mask are values the backward pass can use and
 * the running-statistics update is an explicit effect in the step. Replacements take the
 * source location and scope of the op they replace. */
#include "compiler/check.h"
#include "passes/pipeline.h"

static bool
rewrite_batchnorm(Graph *g, Diag *d, ValueMap *vm, Inst *bn)
{
	Value *x = bn->args[0];
	int nparams = bn->nargs - 1; /* [scale, shift,] running_mean, running_var */
	Value *rm = bn->args[nparams - 1], *rv = bn->args[nparams];
	Inst *s = inst_build(g, OP_bn_stats, bn, 1, &x);
	inst_set_float(s, "eps", attr_f(bn, "eps"));
	if (!inst_type(g, d, s))
		return false;
	Value *apply_args[4] = {x, s->res, NULL, NULL};
	int napply = 2;
	if (attr_i(bn, "affine")) {
		apply_args[2] = bn->args[1];
		apply_args[3] = bn->args[2];
		napply = 4;
	}
	Inst *y = inst_build(g, OP_bn_apply, bn, napply, apply_args);
	if (!inst_type(g, d, y))
		return false;
	Value *upd_args[3] = {rm, rv, s->res};
	Inst *u = inst_build(g, OP_bn_update, bn, 3, upd_args);
	inst_set_float(u, "momentum", attr_f(bn, "momentum"));
	if (!inst_type(g, d, u))
		return false;
	value_map_set(vm, bn->res, y->res);
	inst_remove(g, bn);
	return true;
}

static bool
rewrite_dropout(Graph *g, Diag *d, ValueMap *vm, Inst *dr)
{
	Value *x = dr->args[0];
	Inst *m = inst_build(g, OP_dropout_mask, dr, 1, &x);
	inst_set_float(m, "rate", attr_f(dr, "rate"));
	if (!inst_type(g, d, m))
		return false;
	Value *args[2] = {x, m->res};
	Inst *y = inst_build(g, OP_mulv, dr, 2, args);
	if (!inst_type(g, d, y))
		return false;
	value_map_set(vm, dr->res, y->res);
	inst_remove(g, dr);
	return true;
}

bool
pass_trainmode(Module *m, Diag *d)
{
	if (!m->training)
		return true;
	Graph *g = m->main;
	ValueMap vm;
	value_map_init(&vm, g);
	for (Inst *in = g->first, *next; in; in = next) {
		next = in->next;
		g->cursor = in;
		value_map_apply(&vm, in);
		bool ok = true;
		if (in->op == OP_batchnorm)
			ok = rewrite_batchnorm(g, d, &vm, in);
		else if (in->op == OP_dropout)
			ok = rewrite_dropout(g, d, &vm, in);
		if (!ok)
			return false;
	}
	g->cursor = NULL;
	value_map_finish(&vm);
	return true;
}
