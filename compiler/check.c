/* infer_inst (see check.h). */
#include "compiler/check.h"

#include <stdio.h>

bool
infer_inst(const Inst *in, int batch, InferResult *r)
{
	OpSig sig = {.op = in->op, .nin = in->nin, .attr = in->attr, .res = in->res ? &in->res->type : NULL};
	for (int i = 0; i < in->nin; i++)
		sig.in[i] = &in->args[i]->type;
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
