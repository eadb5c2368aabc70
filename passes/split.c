/* split: decides whether the module trains, and if so derives the evaluation graph.
 *
 * A model trains when it has exactly one scalar output (its loss). Then `eval` is a copy of
 * the forward graph in inference mode: dropout is removed (its uses read its input) and
 * batchnorm keeps meaning "normalize with the running statistics". `main` keeps the forward
 * graph for the training passes that follow. A model without a scalar output compiles to an
 * inference graph only. */
#include <string.h>

#include "passes/pipeline.h"

/* The loss: the only scalar output, or the scalar output named "loss" among several. */
Value *
module_loss(const Graph *g, Diag *d, bool report)
{
	const Inst *found = NULL;
	int n = 0;
	for (const Inst *in = g->first; in; in = in->next)
		if (in->op == OP_output && in->args[0]->type.rank == 0) {
			n++;
			if (!found || strcmp(attr_s(in, "name"), "loss") == 0)
				found = in;
		}
	if (n > 1 && strcmp(attr_s(found, "name"), "loss") != 0) {
		if (report)
			diag_error(d, found->loc, "%d scalar outputs; name the one to train on `loss`", n);
		return NULL;
	}
	return found ? found->args[0] : NULL;
}

bool
pass_split(Module *m, Diag *d)
{
	Graph *g = m->main;
	if (!module_loss(g, d, true)) {
		m->training = false;
		return d->nerrors == 0;
	}
	m->training = true;
	m->eval = graph_clone(g, arena_printf(g->arena, "%s.eval", g->name));
	g->name = arena_printf(g->arena, "%s.train", g->name);
	for (Inst *in = m->eval->first, *next; in; in = next) {
		next = in->next;
		if (in->op == OP_dropout) {
			value_replace_uses(m->eval, in->res, in->args[0]);
			inst_remove(m->eval, in);
		}
	}
	return true;
}
