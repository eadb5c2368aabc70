/* Module -> Plan (see lower.h). */
#include "compiler/lower.h"

#include <string.h>

#include "core/strmap.h"

static const char *
loc_text(Arena *a, Loc l)
{
	return l.file ? arena_printf(a, "%s:%d:%d", l.file->path, l.line, l.col) : "";
}

/* The first convolution or dense layer (in G's order) that takes each value as a parameter,
 * itself or through a cast, by value id: one walk, where looking for each parameter's consumer
 * apart made lowering quadratic in the depth. */
static const Inst **
first_consumers(const Graph *g, Arena *a)
{
	const Inst **c = arena_alloc(a, (size_t)(g->nvalues + 1) * sizeof *c);
	memset(c, 0, (size_t)(g->nvalues + 1) * sizeof *c);
	for (const Inst *in = g->first; in; in = in->next) {
		if (in->op != OP_conv2d && in->op != OP_dense)
			continue;
		for (int i = in->nin; i < in->nargs; i++) {
			const Value *v = in->args[i];
			if (!c[v->id])
				c[v->id] = in;
			if (v->def->op == OP_cast && !c[v->def->args[0]->id])
				c[v->def->args[0]->id] = in;
		}
	}
	return c;
}

/* Fans of parameter P from its first consumer IN (NULL: none): conv weights [O, I, kh, kw] and
 * dense weights [O, I] give I*kh*kw / O*kh*kw; a bias takes its weight's fan-in (PyTorch's
 * default init). */
static void
fans(const Inst *p, const Inst *in, int64_t *fan_in, int64_t *fan_out)
{
	*fan_in = *fan_out = p->res->type.rank ? p->res->type.dim[0] : 1;
	if (!in)
		return;
	const Type *w = &in->args[in->nin]->type;
	int64_t rf = w->rank == 4 ? w->dim[2] * w->dim[3] : 1;
	*fan_in = w->dim[1] * rf;
	*fan_out = w->dim[0] * rf;
}

static void
lower_program(const Module *m, const Graph *g, const int *map, PlanProgram *prog, Arena *a)
{
	int n = 0;
	for (const Inst *in = g->first; in; in = in->next)
		n += !(nnc_ops[in->op].flags & OPF_SOURCE) && in->op != OP_output;
	prog->steps = arena_alloc(a, (size_t)(n + 1) * sizeof *prog->steps);
	prog->nsteps = 0;
	prog->loss = prog->logits = -1;
	(void)m;
	const Value *loss = NULL;
	for (const Inst *in = g->first; in; in = in->next)
		if (in->op == OP_output && in->args[0]->type.rank == 0 && (!loss || strcmp(attr_s(in, "name"), "loss") == 0))
			loss = in->args[0];
	for (const Inst *in = g->first; in; in = in->next) {
		if (in->op == OP_output || (nnc_ops[in->op].flags & OPF_SOURCE))
			continue;
		PlanStep *s = &prog->steps[prog->nsteps++];
		s->op = in->op;
		s->out = in->res ? map[in->res->id] : -1;
		s->nin = in->nargs;
		s->in = arena_alloc(a, (size_t)(in->nargs + 1) * sizeof *s->in);
		for (int i = 0; i < in->nargs; i++)
			s->in[i] = map[in->args[i]->id];
		memcpy(s->attr, in->attr, sizeof s->attr);
		s->name = in->scope ? in->scope : "";
		s->acc = in->acc;
		s->epi = in->epi;
		s->pro = in->pro;
		s->nchain = in->nchain;
		s->group = in->group;
		for (int j = 0; j < in->nchain; j++)
			s->chain[j] = in->chain[j];
		s->loc = loc_text(a, in->loc);
	}
	if (loss) {
		prog->loss = map[loss->id];
		if (loss->def->op == OP_softmax_cross_entropy)
			prog->logits = map[loss->def->args[0]->id];
	}
}

bool
lower_module(const Module *m, const char *source, Plan *p, Diag *d)
{
	(void)d;
	const Graph *train = m->training ? m->main : NULL, *eval = m->eval ? m->eval : m->main;
	Arena *a = m->main->arena;
	memset(p, 0, sizeof *p);
	p->version = PLAN_VERSION;
	p->model = arena_strndup(a, m->main->name, strcspn(m->main->name, "."));
	p->source = source;
	p->batch = m->main->batch;
	p->recipe = *m->recipe;
	p->has_train = train != NULL;
	const Graph *first = train ? train : eval;
	int nv = first->nvalues + (train ? eval->nvalues : 0);
	p->values = arena_alloc(a, (size_t)(nv + 1) * sizeof *p->values);
	p->arena = arena_alloc(a, (size_t)(nv + 1) * sizeof *p->arena);
	p->offset = arena_alloc(a, (size_t)(nv + 1) * sizeof *p->offset);
	for (int k = ARENA_PARAM; k < NARENA; k++) {
		int64_t t = first->arena_bytes[k], e = train ? eval->arena_bytes[k] : 0;
		p->arena_bytes[k] = t > e ? t : e;
	}
	int *tmap = arena_alloc(a, (size_t)(first->nvalues + 1) * sizeof *tmap);
	int *emap = arena_alloc(a, (size_t)(eval->nvalues + 1) * sizeof *emap);
	StrMap by_name;
	strmap_init(&by_name, a);
	p->inputs[0].value = p->inputs[1].value = -1;
	int np = 0;
	for (const Inst *in = first->first; in; in = in->next)
		np += in->op == OP_param;
	p->params = arena_alloc(a, (size_t)(np + 1) * sizeof *p->params);
	const Inst **consumer = first_consumers(first, a);
	for (const Inst *in = first->first; in; in = in->next) {
		if (!in->res)
			continue;
		int id = p->nvalues++;
		tmap[in->res->id] = id;
		p->values[id] = in->res->type;
		p->arena[id] = in->res->arena;
		p->offset[id] = in->res->offset;
		if (in->op == OP_param) {
			PlanParam *q = &p->params[p->nparams++];
			q->name = attr_s(in, "name");
			q->kind = attr_s(in, "kind");
			q->init = attr_s(in, "init");
			q->trainable = attr_i(in, "trainable");
			q->value = id;
			fans(in, consumer[in->res->id], &q->fan_in, &q->fan_out);
			strmap_put(&by_name, arena_printf(a, "p:%s", q->name), (void *)(intptr_t)(id + 1));
		} else if (in->op == OP_input) {
			int slot = strcmp(attr_s(in, "kind"), "labels") == 0;
			p->inputs[slot] = (PlanInput){attr_s(in, "name"), slot ? "labels" : "image", id};
			strmap_put(&by_name, arena_printf(a, "i:%s", attr_s(in, "name")), (void *)(intptr_t)(id + 1));
		}
	}
	if (train) {
		for (const Inst *in = eval->first; in; in = in->next) {
			if (!in->res)
				continue;
			const char *key = in->op == OP_param   ? arena_printf(a, "p:%s", attr_s(in, "name"))
			                  : in->op == OP_input ? arena_printf(a, "i:%s", attr_s(in, "name"))
			                                       : NULL;
			intptr_t shared = key ? (intptr_t)strmap_get(&by_name, key) : 0;
			if (shared) {
				emap[in->res->id] = (int)shared - 1;
			} else {
				emap[in->res->id] = p->nvalues;
				p->arena[p->nvalues] = in->res->arena;
				p->offset[p->nvalues] = in->res->offset;
				p->values[p->nvalues++] = in->res->type;
			}
		}
		lower_program(m, train, tmap, &p->train, a);
	}
	lower_program(m, eval, train ? emap : tmap, &p->eval, a);
	return true;
}
