/* IR construction and small helpers (see ir.h). */
#include "compiler/ir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

Graph *
graph_new(Arena *a, const char *name, int batch)
{
	Graph *g = arena_alloc(a, sizeof *g);
	g->arena = a;
	g->name = name;
	g->batch = batch;
	return g;
}

static void
link_after(Graph *g, Inst *pos, Inst *in)
{
	in->prev = pos;
	in->next = pos ? pos->next : g->first;
	if (in->next)
		in->next->prev = in;
	else
		g->last = in;
	if (pos)
		pos->next = in;
	else
		g->first = in;
}

Inst *
inst_new(Graph *g, Op op, Loc loc, int nargs, Type t)
{
	Inst *in = arena_alloc(g->arena, sizeof *in);
	in->op = op;
	in->loc = loc;
	in->nargs = in->nin = nargs;
	in->args = arena_alloc(g->arena, (size_t)(nargs ? nargs : 1) * sizeof *in->args);
	if (!(nnc_ops[op].flags & OPF_NORES)) {
		in->res = arena_alloc(g->arena, sizeof *in->res);
		in->res->id = g->nvalues++;
		in->res->type = t;
		in->res->def = in;
	}
	in->phase = g->phase;
	in->origin = op;
	in->acc = DT_F32;
	if (nnc_ops[op].flags & OPF_SOURCE) {
		link_after(g, g->head_end, in);
		g->head_end = in;
	} else {
		link_after(g, g->cursor ? g->cursor->prev : g->last, in);
	}
	return in;
}

void
inst_remove(Graph *g, Inst *in)
{
	if (in->prev)
		in->prev->next = in->next;
	else
		g->first = in->next;
	if (in->next)
		in->next->prev = in->prev;
	else
		g->last = in->prev;
	if (g->head_end == in)
		g->head_end = in->prev;
}

void
inst_move_after(Graph *g, Inst *in, Inst *pos)
{
	if (in == pos || in->prev == pos)
		return;
	inst_remove(g, in);
	link_after(g, pos, in);
}

void
value_replace_uses(Graph *g, Value *old, Value *new)
{
	for (Inst *in = g->first; in; in = in->next)
		for (int i = 0; i < in->nargs; i++)
			if (in->args[i] == old)
				in->args[i] = new;
}

void
value_map_init(ValueMap *m, Graph *g)
{
	m->g = g;
	m->n = g->nvalues;
	m->to = arena_alloc(g->arena, (size_t)(m->n + 1) * sizeof *m->to);
	memset(m->to, 0, (size_t)(m->n + 1) * sizeof *m->to);
}

void
value_map_set(ValueMap *m, Value *old, Value *new)
{
	if (old->id >= 0 && old->id < m->n)
		m->to[old->id] = new;
	else
		value_replace_uses(m->g, old, new); /* made after the map: the slow way */
}

void
value_map_apply(const ValueMap *m, Inst *in)
{
	for (int i = 0; i < in->nargs; i++)
		while (in->args[i]->id >= 0 && in->args[i]->id < m->n && m->to[in->args[i]->id])
			in->args[i] = m->to[in->args[i]->id];
}

void
value_map_finish(const ValueMap *m)
{
	for (Inst *in = m->g->first; in; in = in->next)
		value_map_apply(m, in);
}

Graph *
graph_clone(const Graph *g, const char *name)
{
	Graph *c = graph_new(g->arena, name, g->batch);
	Value **map = arena_alloc(g->arena, (size_t)(g->nvalues + 1) * sizeof *map);
	for (const Inst *in = g->first; in; in = in->next) {
		Inst *n = arena_alloc(g->arena, sizeof *n);
		*n = *in;
		n->args = arena_alloc(g->arena, (size_t)(in->nargs ? in->nargs : 1) * sizeof *n->args);
		for (int i = 0; i < in->nargs; i++)
			n->args[i] = map[in->args[i]->id];
		if (in->res) {
			n->res = arena_alloc(g->arena, sizeof *n->res);
			*n->res = *in->res;
			n->res->arena = ARENA_NONE;
			n->res->def = n;
			map[in->res->id] = n->res;
		}
		n->prev = c->last;
		n->next = NULL;
		if (c->last)
			c->last->next = n;
		else
			c->first = n;
		c->last = n;
		if (in == g->head_end)
			c->head_end = n;
	}
	c->nvalues = g->nvalues;
	return c;
}

void
graph_renumber(Graph *g)
{
	int n = 0;
	for (Inst *in = g->first; in; in = in->next)
		if (in->res)
			in->res->id = n++;
	g->nvalues = n;
}

/* A name outside the op's schema is a compiler bug: debug builds stop on it; release builds
 * read a zero attribute instead of memory outside the Inst. */
static AttrVal *
slot(Inst *in, const char *name)
{
	static AttrVal none;
	int i = nnc_attr_index(in->op, name);
	assert(i >= 0 && "attribute not in the op's schema");
	if (i < 0) {
		memset(&none, 0, sizeof none);
		return &none;
	}
	return &in->attr[i];
}

const AttrVal *
attr(const Inst *in, const char *name)
{
	return slot((Inst *)in, name);
}

int64_t
attr_i(const Inst *in, const char *name)
{
	return attr(in, name)->i[0];
}

double
attr_f(const Inst *in, const char *name)
{
	return attr(in, name)->f;
}

const char *
attr_s(const Inst *in, const char *name)
{
	return attr(in, name)->s;
}

void
inst_set_int(Inst *in, const char *name, int64_t v)
{
	AttrVal *a = slot(in, name);
	a->set = true;
	a->i[0] = a->i[1] = v;
	a->f = (double)v;
}

void
inst_set_bool(Inst *in, const char *name, bool v)
{
	inst_set_int(in, name, v);
}

void
inst_set_str(Inst *in, const char *name, const char *s)
{
	AttrVal *a = slot(in, name);
	a->set = true;
	a->s = s;
}

void
inst_apply_defaults(Inst *in)
{
	const OpInfo *oi = &nnc_ops[in->op];
	for (int i = 0; i < oi->nattrs; i++) {
		AttrVal *a = &in->attr[i];
		if (a->set || oi->attrs[i].required)
			continue;
		a->i[0] = a->i[1] = (int64_t)oi->attrs[i].num;
		a->f = oi->attrs[i].num;
		a->s = oi->attrs[i].str;
		a->set = true;
	}
}
