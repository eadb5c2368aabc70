/* IR verifier (see verify.h). */
#include "compiler/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/check.h"
#include "core/strmap.h"

typedef struct {
	const Graph *g;
	Diag *d;
	const char *pass;
	bool ok;
} Check;

static void
bad(Check *c, const Inst *in, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->ok = false;
	diag_internal(c->d, in ? in->loc : (Loc){0}, "IR verification failed after pass '%s': %s%s%s", c->pass,
		in ? nnc_ops[in->op].name : "", in ? ": " : "", msg);
}

/* A group (passes/fuse.c): the ops of the next steps (sources are not steps) form one of the
 * kinds of ops.h; their operands are checked when the plan is lowered (plan_validate). */
static void
check_group(Check *c, const Inst *in)
{
	Op *ops = in->group > 1 ? malloc((size_t)in->group * sizeof *ops) : NULL;
	int n = 0;
	for (const Inst *m = in; ops && m && n < in->group; m = m->next)
		if (!(nnc_ops[m->op].flags & OPF_SOURCE))
			ops[n++] = m->op;
	if (in->group < 2 || n != in->group || nnc_group_kind(ops, n) == GROUP_NONE)
		bad(c, in, "a group of %d whose members do not follow it", in->group);
	free(ops);
}

static void
check_inst(Check *c, const Inst *in, const unsigned char *defined, StrMap *names)
{
	const OpInfo *oi = &nnc_ops[in->op];
	if (in->op >= NOP) {
		bad(c, in, "op number %d out of range", (int)in->op);
		return;
	}
	int nin = in->nin - (in->pro ? 1 : 0);
	if (in->nchain > 0 && in->nchain <= NNC_MAXCHAIN) {
		for (int j = 0; j < in->nchain; j++)
			if (in->chain[j] >= NOP || !(nnc_ops[in->chain[j]].flags & OPF_CHAIN))
				bad(c, in, "a chain holds an op that cannot chain");
		if (!(oi->flags & OPF_CHAIN) || in->epi || in->pro)
			bad(c, in, "a chain on an op that cannot end one");
		nin -= nnc_chain_operands(in->chain, in->nchain) - 1;
	} else if (in->nchain) {
		bad(c, in, "a chain of %d ops", in->nchain);
	}
	if (nin < oi->min_in || (oi->max_in >= 0 && nin > oi->max_in) || in->nargs < in->nin)
		bad(c, in, "%d tensor inputs / %d operands do not fit the op's arity", in->nin, in->nargs);
	if (!(oi->flags & OPF_NORES) != (in->res != NULL))
		bad(c, in, "result presence does not match the op table");
	if (in->epi && (in->epi >= NEPI || !(oi->flags & OPF_EPI)))
		bad(c, in, "an epilogue on an op whose kernel has none");
	if (in->group)
		check_group(c, in);
	if (in->pro && (in->pro >= NEPI || !(oi->flags & OPF_PRO)))
		bad(c, in, "a prologue on an op whose kernel has none");
	if (in->epi && in->epi < NEPI && (in->nparts < 1 || in->part[in->nparts - 1].op != nnc_epilogue_op[in->epi]))
		bad(c, in, "an epilogue that is not the last part the op absorbed");
	for (int i = 0; i < in->nargs; i++) {
		const Value *v = in->args[i];
		if (!v || !v->def) {
			bad(c, in, "operand %d is missing", i);
			return;
		}
		if (v->id < 0 || v->id >= c->g->nvalues || !defined[v->id]) {
			bad(c, in, "operand %%%d is used before it is defined", v->id);
			return;
		}
	}
	for (int i = 0; i < oi->nattrs; i++)
		if (!in->attr[i].set)
			bad(c, in, "attribute '%s' is not set", oi->attrs[i].name);
	if (in->op == OP_param) {
		const char *name = attr_s(in, "name");
		if (name && strmap_put(names, name, (void *)in))
			bad(c, in, "parameter name '%s' is used twice", name);
	}
	InferResult r;
	if (!infer_inst(in, c->g->batch, &r)) {
		bad(c, in, "shape inference fails: %s", r.err);
		return;
	}
	if (in->res && !type_eq(&r.out, &in->res->type)) {
		char a[96], b[96];
		bad(c, in, "result %%%d has type %s but inference gives %s", in->res->id,
			type_str_layout(&in->res->type, a, sizeof a), type_str_layout(&r.out, b, sizeof b));
	}
	if (in->nargs - in->nin != r.nparams) {
		bad(c, in, "has %d parameter operands, inference declares %d", in->nargs - in->nin, r.nparams);
		return;
	}
	for (int i = 0; i < r.nparams; i++) {
		/* A parameter operand is the parameter, or a cast of it (the precision pass), or a
		 * folded batch norm's weight (of the parameter or its cast) or bias (fuse); its
		 * storage dtype is the precision policy's, so only shape and layout must match. */
		const Value *p = in->args[in->nin + i];
		const Inst *src = p->def;
		while (src->op == OP_cast || src->op == OP_bn_fold_weight)
			src = src->args[0]->def;
		Type want = r.params[i].type;
		want.dtype = p->type.dtype;
		bool folded_bias = src->op == OP_bn_fold_bias;
		if (!type_eq(&p->type, &want) ||
		    (!folded_bias && (src->op != OP_param || strcmp(attr_s(src, "kind"), r.params[i].kind) != 0 ||
		                         attr_i(src, "trainable") != r.params[i].trainable)))
			bad(c, in, "parameter operand %d (%%%d) does not match its declaration '%s'", i, p->id, r.params[i].suffix);
	}
}

bool
ir_verify(const Graph *g, Diag *d, const char *after_pass)
{
	Check c = {g, d, after_pass, true};
	unsigned char *defined = calloc((size_t)g->nvalues + 1, 1);
	Arena tmp = {0};
	StrMap names;
	strmap_init(&names, &tmp);
	bool has_output = false;
	const Inst *prev = NULL;
	for (const Inst *in = g->first; in && c.ok; prev = in, in = in->next) {
		if (in->prev != prev)
			bad(&c, in, "broken instruction list (prev link)");
		check_inst(&c, in, defined, &names);
		if (in->res) {
			if (in->res->def != in || in->res->id < 0 || in->res->id >= g->nvalues || defined[in->res->id])
				bad(&c, in, "result value %%%d is malformed or defined twice", in->res->id);
			else
				defined[in->res->id] = 1;
		}
		has_output |= in->op == OP_output;
	}
	if (c.ok && prev != g->last)
		bad(&c, NULL, "broken instruction list (last link)");
	if (c.ok && !has_output)
		bad(&c, NULL, "graph has no outputs");
	free(defined);
	arena_free(&tmp);
	return c.ok;
}
