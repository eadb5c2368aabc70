/* Fusion: folds a relu into the op that feeds it when that op's kernel can apply relu to its
 * result in the same pass (OPF_RELU: batch norm, its training-mode apply, add), so the tensor
 * crosses memory once instead of three times (write, read, write) and the pre-activation
 * value disappears from the plan.
 *
 *   y = bn_apply(x, s, ...); z = relu(y)          =>  z = bn_apply+relu(x, s, ...)
 *   ... dx = relu_bwd(dz, y)                      =>  ... dx = relu_bwd(dz, z)
 *
 * The pre-activation y may be used only by the relu and by relu_bwd as its saved operand: the
 * backward mask y > 0 equals z > 0 bit for bit (z = y where y > 0, else 0; a NaN gives 0 in
 * both), so relu_bwd reads the relu's output instead, as PyTorch's in-place relu does. Any
 * other user of y (a cast, a residual branch) needs the value before relu and blocks fusion.
 * The relu must keep y's dtype: a cast between them is a different program.
 *
 * Fused and unfused plans compute bit-identical results (tests/memplan.sh compares them);
 * `nnc compile --no-fuse` skips this pass for that comparison and for benchmarks. */
#include <stdlib.h>

#include "passes/pipeline.h"

static int
fuse_graph(Graph *g, Diag *d)
{
	size_t n = (size_t)g->nvalues + 1;
	int *uses = calloc(n, sizeof *uses), *saved = calloc(n, sizeof *saved);
	Inst **relu = calloc(n, sizeof *relu);
	if (!uses || !saved || !relu) {
		free(uses);
		free(saved);
		free(relu);
		diag_error(d, (Loc){0}, "out of memory in fuse");
		return -1;
	}
	for (Inst *in = g->first; in; in = in->next)
		for (int i = 0; i < in->nargs; i++) {
			int id = in->args[i]->id;
			uses[id]++;
			if (in->op == OP_relu && i == 0)
				relu[id] = relu[id] ? (Inst *)-1 : in;
			else if (in->op == OP_relu_bwd && i == 1)
				saved[id]++;
		}
	int fused = 0;
	for (Inst *in = g->first; in; in = in->next) {
		Value *y = in->res;
		if (!(nnc_ops[in->op].flags & OPF_RELU) || in->relu || !y)
			continue;
		Inst *r = relu[y->id];
		if (!r || r == (Inst *)-1 || uses[y->id] != 1 + saved[y->id] || r->res->type.dtype != y->type.dtype)
			continue;
		in->relu = true;
		value_replace_uses(g, r->res, y);
		inst_remove(g, r);
		fused++;
	}
	free(uses);
	free(saved);
	free(relu);
	return fused;
}

bool
pass_fuse(Module *m, Diag *d)
{
	if (m->no_fuse)
		return true;
	return fuse_graph(m->main, d) >= 0 && (!m->eval || fuse_graph(m->eval, d) >= 0);
}
