/* Fusion: folds an activation (relu, relu6: the Epilogue list in ops.h) into the op that
 * feeds it when that op's kernel can apply it to its result in the same pass (OPF_EPI: batch
 * norm, its training-mode apply, add), so the tensor crosses memory once instead of three
 * times (write, read, write) and the pre-activation value disappears from the plan.
 *
 *   y = bn_apply(x, s, ...); z = relu(y)          =>  z = bn_apply+relu(x, s, ...)
 *   ... dx = relu_bwd(dz, y)                      =>  ... dx = relu_bwd(dz, z)
 *
 * The pre-activation y may be used only by the activation and by its backward op as the saved
 * operand: the backward masks y > 0 (relu) and 0 < y < 6 (relu6) equal z > 0 and 0 < z < 6
 * bit for bit (z = y inside the range, a bound outside it; a NaN gives 0 both ways; fp16
 * rounding is monotone and keeps 0 and 6), so the backward op reads the output instead, as
 * PyTorch's in-place relu does. Any other user of y (a cast, a residual branch) needs the
 * value before the activation and blocks fusion, as does a dtype change between them.
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
			else if ((in->op == OP_relu_bwd || in->op == OP_relu6_bwd) && i == 1)
				saved[id]++;
		}
	int fused = 0;
	for (Inst *in = g->first; in; in = in->next) {
		Value *y = in->res;
		if (!(nnc_ops[in->op].flags & OPF_EPI) || in->epi || !y)
			continue;
		Inst *r = act[y->id];
		if (!r || r == (Inst *)-1 || uses[y->id] != 1 + saved[y->id] || r->res->type.dtype != y->type.dtype)
			continue;
		in->epi = nnc_epilogue_of(r->op);
		in->epi_loc = r->loc;
		value_replace_uses(g, r->res, y);
		inst_remove(g, r);
		fused++;
	}
	free(uses);
	free(saved);
	free(act);
	return fused;
}

bool
pass_fuse(Module *m, Diag *d)
{
	if (m->no_fuse)
		return true;
	return fuse_graph(m->main, d) >= 0 && (!m->eval || fuse_graph(m->eval, d) >= 0);
}
