/* infer_inst (see check.h). */
#include "compiler/check.h"

#include <stdio.h>

bool
infer_inst(const Inst *in, int batch, InferResult *r)
{
	if (in->nin > NNC_MAXARGS) {
		snprintf(r->err, sizeof r->err, "%s: %d operands, more than the %d an op may have", nnc_ops[in->op].name, in->nin,
			NNC_MAXARGS);
		return false;
	}
	OpSig sig = {.op = in->op, .nin = in->nin, .attr = in->attr, .res = in->res ? &in->res->type : NULL};
	for (int i = 0; i < in->nin; i++)
		sig.in[i] = &in->args[i]->type;
	if (in->nchain) { /* elementwise all through: every operand has the result's type */
		int taken = nnc_chain_operands(in->chain, in->nchain);
		for (int i = 0; i < in->nin; i++)
			if (!in->res || !type_eq(sig.in[i], &in->res->type) || taken > in->nin) {
				snprintf(r->err, sizeof r->err, "%s: a chain's operands must all have the result's type",
					nnc_ops[in->op].name);
				return false;
			}
		sig.nin = in->nin - taken + 1;
		for (int i = 1; i < sig.nin; i++)
			sig.in[i] = sig.in[taken + i - 1];
	}
	if (in->pro) { /* the prologue's saved activation output: shaped as the gradient it masks */
		if (in->nin < 2 || !type_eq(sig.in[in->nin - 1], sig.in[0])) {
			snprintf(r->err, sizeof r->err, "%s: a prologue's last operand must have the incoming gradient's type",
				nnc_ops[in->op].name);
			return false;
		}
		sig.nin--;
	}
	if (!infer_op(&sig, batch, r))
		return false;
	if (in->op == OP_softmax_cross_entropy && in->args[1]->def->op == OP_input) {
		const Inst *src = in->args[1]->def;
		int64_t k = in->args[0]->type.dim[1];
		if (attr_i(src, "classes") != k) {
			char b[96];
			snprintf(r->err, sizeof r->err, "softmax_cross_entropy: labels have %lld classes but logits %s have %lld",
				(long long)attr_i(src, "classes"), type_str(&in->args[0]->type, b, sizeof b), (long long)k);
			return false;
		}
	}
	return true;
}

Inst *
inst_build(Graph *g, Op op, const Inst *like, int nargs, Value *const *args)
{
	Inst *in = inst_new(g, op, like->loc, nargs, (Type){0});
	for (int i = 0; i < nargs; i++)
		in->args[i] = args[i];
	in->scope = like->scope;
	in->origin = like->origin;
	return in;
}

bool
inst_type(Graph *g, Diag *d, Inst *in)
{
	inst_apply_defaults(in);
	InferResult r;
	if (!infer_inst(in, g->batch, &r)) {
		diag_internal(d, in->loc, "cannot type %s: %s", nnc_ops[in->op].name, r.err);
		return false;
	}
	if (in->res)
		in->res->type = r.out;
	in->macs = r.macs;
	return true;
}

void
inst_set_float(Inst *in, const char *name, double v)
{
	AttrVal *a = &in->attr[nnc_attr_index(in->op, name)];
	a->set = true;
	a->f = v;
}

void
inst_set_int2(Inst *in, const char *name, int64_t h, int64_t w)
{
	AttrVal *a = &in->attr[nnc_attr_index(in->op, name)];
	a->set = true;
	a->i[0] = h;
	a->i[1] = w;
	a->f = (double)h;
}
