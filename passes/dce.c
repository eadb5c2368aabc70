/* Dead-code elimination: keeps the Insts that an EFFECT op (an output) transitively depends
 * on and removes the rest, parameters included. A removed op whose result nothing uses at all
 * (the end of a dead chain) gets a warning at its source line, so an unused layer is noticed
 * rather than silently trained. */
#include <stdlib.h>

#include "passes/pipeline.h"

bool
pass_dce(Module *m, Diag *d)
{
	Graph *g = m->main;
	unsigned char *live = calloc((size_t)g->nvalues + 1, 1);
	unsigned char *used = calloc((size_t)g->nvalues + 1, 1);
	if (!live || !used) {
		free(live);
		free(used);
		diag_error(d, (Loc){0}, "out of memory in dce");
		return false;
	}
	/* Operands precede their users, so one backward sweep propagates liveness. */
	for (Inst *in = g->last; in; in = in->prev) {
		bool keep = (nnc_ops[in->op].flags & OPF_EFFECT) || (in->res && live[in->res->id]);
		for (int i = 0; i < in->nargs; i++) {
			used[in->args[i]->id] = 1;
			if (keep)
				live[in->args[i]->id] = 1;
		}
	}
	for (Inst *in = g->first, *next; in; in = next) {
		next = in->next;
		if (!in->res || live[in->res->id])
			continue;
		if (!used[in->res->id] && !(nnc_ops[in->op].flags & OPF_SOURCE))
			diag_warning(d, in->loc, "result of %s%s%s is never used by an output; it is removed", nnc_ops[in->op].name,
				in->scope && in->scope[0] ? " " : "", in->scope ? in->scope : "");
		else if (in->op == OP_input)
			diag_warning(d, in->loc, "input '%s' is not used by any output", attr_s(in, "name"));
		if (in->op != OP_input)
			inst_remove(g, in);
	}
	free(live);
	free(used);
	return true;
}
