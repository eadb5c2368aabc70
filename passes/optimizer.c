/* optimizer: appends the parameter updates of the training step.
 *
 * For every trainable parameter with a gradient (from autodiff), it adds the optimizer state
 * as parameters of their own (zero-initialised, not trainable, saved in checkpoints under
 * "optim.<param>.<state>" names) and one update op:
 *   sgd:        sgd_update(param, grad, momentum_buffer)
 *   adam/adamw: adam_update(param, grad, exp_avg, exp_avg_sq)   [decoupled=true for adamw]
 * Hyperparameters are read from the run's recipe at run time; `decay=false` marks batch-norm
 * parameters and biases when the recipe excludes them from weight decay; `lr_scale` marks the
 * batch-norm shifts' SGD updates with the recipe's shift_lr_scale. */
#include <string.h>

#include "compiler/check.h"
#include "passes/pipeline.h"

static Value *
state(Graph *g, const Inst *param, const char *what)
{
	Inst *s = inst_new(g, OP_param, param->loc, 0, param->res->type);
	s->scope = arena_printf(g->arena, "optim.%s.%s", attr_s(param, "name"), what);
	inst_set_str(s, "name", s->scope);
	inst_set_str(s, "kind", what);
	inst_set_str(s, "init", "zeros");
	inst_set_bool(s, "trainable", false);
	s->phase = PH_UPDATE;
	return s->res;
}

bool
pass_optimizer(Module *m, Diag *d)
{
	if (!m->training)
		return true;
	Graph *g = m->main;
	const Recipe *r = m->recipe;
	bool adam = strcmp(r->optimizer, "sgd") != 0;
	g->phase = PH_UPDATE;
	for (int i = 0; i < g->ngrads; i++) {
		const Inst *p = g->grad_of[i]->def;
		const char *kind = attr_s(p, "kind");
		bool decay = r->decay_bn_and_bias || !(strcmp(kind, "bias") == 0 || strcmp(kind, "scale") == 0 ||
		                                       strcmp(kind, "shift") == 0);
		Inst *u;
		if (adam) {
			Value *args[4] = {g->grad_of[i], g->grads[i], state(g, p, "exp_avg"), state(g, p, "exp_avg_sq")};
			u = inst_build(g, OP_adam_update, p, 4, args);
			inst_set_bool(u, "decoupled", strcmp(r->optimizer, "adamw") == 0);
		} else {
			Value *args[3] = {g->grad_of[i], g->grads[i], state(g, p, "momentum_buffer")};
			u = inst_build(g, OP_sgd_update, p, 3, args);
			if (strcmp(kind, "shift") == 0 && r->shift_lr_scale != 1)
				inst_set_float(u, "lr_scale", r->shift_lr_scale);
		}
		u->scope = p->scope;
		inst_set_bool(u, "decay", decay);
		if (!inst_type(g, d, u))
			return false;
	}
	g->phase = PH_FORWARD;
	return true;
}
