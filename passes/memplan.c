/* memplan: places every value in an arena, at an offset, so that values alive at the same time
 * never overlap, and values whose lives do not intersect share memory.
 *
 * Arenas: ARENA_PARAM (parameters, batch-norm statistics, optimizer state: alive for the whole
 * run, laid out one after another), ARENA_IO (the image and label inputs, which the data loader
 * fills before each program), ARENA_ACT (every other value; transient). The training and
 * evaluation programs never run at the same time, so they share the activation arena (its size
 * is the larger of the two) and the parameter and input placements.
 *
 * Liveness: over the program order of a graph, a value occupies its memory from the step that
 * defines it to its last reader; the values nnrun reads after a program (outputs, the logits the
 * loss is computed from, the gradients updates read) stay alive to the end. Placement is greedy by decreasing size
 * (the classic best-fit-by-size heuristic for interval packing): each value takes the lowest
 * 64-byte-aligned offset at which it overlaps no already placed value whose life intersects
 * its own. An elementwise op may write its result in place over an operand whose last reader it
 * is (the kernels allow exact aliasing there); such chains are placed as one region. The plan
 * loader re-checks the result (runtime/plan.c), so a planner bug cannot make values collide
 * silently. */
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"

enum { ALIGN = 64 };

typedef struct {
	Value *v;
	int def, last;
	int64_t size;
} Live;

typedef struct {
	int64_t begin, end;
} Span;

static int
by_start(const void *a, const void *b)
{
	const Span *x = a, *y = b;
	return (x->begin > y->begin) - (x->begin < y->begin);
}

static int64_t
bytes_of(const Value *v)
{
	return (type_numel(&v->type) * (int64_t)dtype_size(v->type.dtype) + ALIGN - 1) / ALIGN * ALIGN;
}

static int
by_size(const void *a, const void *b)
{
	const Live *x = a, *y = b;
	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return x->def - y->def;
}

/* Places transient values of G in ARENA_ACT; returns the arena size needed. NO_REUSE: one region
 * per value, in program order (the reference the planned layout is compared with). */
static int64_t
place_act(Graph *g, Diag *d, bool no_reuse)
{
	if (no_reuse) {
		int64_t top = 0;
		for (Inst *in = g->first; in; in = in->next)
			if (in->res && in->res->arena == ARENA_ACT) {
				in->res->offset = top;
				top += bytes_of(in->res);
			}
		return top;
	}
	int n = 0, nsteps = 0;
	for (Inst *in = g->first; in; in = in->next)
		if (!(nnc_ops[in->op].flags & OPF_SOURCE))
			nsteps++;
	int *def = calloc((size_t)g->nvalues + 1, sizeof *def), *last = calloc((size_t)g->nvalues + 1, sizeof *last);
	Live *live = calloc((size_t)g->nvalues + 1, sizeof *live);
	if (!def || !last || !live) {
		free(def), free(last), free(live);
		diag_internal(d, (Loc){0}, "memplan: out of memory");
		return -1;
	}
	/* A group (fuse) runs as one kernel: its results are all written, and its operands all read,
	 * from its first step to its last; only its last step can then write in place (below). */
	int step = 0, g0 = -1, g1 = -1;
	for (Inst *in = g->first; in; in = in->next) {
		if (nnc_ops[in->op].flags & OPF_SOURCE)
			continue;
		if (in->group > 1) {
			g0 = step;
			g1 = step + in->group - 1;
		}
		bool grouped = step >= g0 && step <= g1;
		for (int i = 0; i < in->nargs; i++) {
			Value *a = in->args[i];
			/* what nnrun reads after a run stays: outputs, the logits the loss is computed from
			 * (the plan's `logits`), and the gradients updates read */
			bool to_end = in->op == OP_output || (in->op == OP_softmax_cross_entropy && i == 0) ||
			              ((in->op == OP_sgd_update || in->op == OP_adam_update) && i == 1);
			int until = to_end ? nsteps : grouped ? g1 : step;
			if (until > last[a->id])
				last[a->id] = until;
		}
		if (in->res) {
			def[in->res->id] = grouped ? g0 : step;
			last[in->res->id] = grouped ? g0 : step;
		}
		step++;
	}
	/* In place: an elementwise op may write its result over an operand it is the last reader
	 * of (same size); such chains share one region, placed as one value living from the first
	 * definition to the last reader of the chain. */
	int *root = malloc(((size_t)g->nvalues + 1) * sizeof *root);
	if (!root) {
		free(def), free(last), free(live);
		diag_internal(d, (Loc){0}, "memplan: out of memory");
		return -1;
	}
	for (int v = 0; v < g->nvalues; v++)
		root[v] = v;
	step = 0;
	for (Inst *in = g->first; in; in = in->next) {
		if (nnc_ops[in->op].flags & OPF_SOURCE)
			continue;
		Value *r = in->res;
		for (int i = 0; r && r->arena == ARENA_ACT && (nnc_ops[in->op].flags & OPF_ELEMWISE) && i < in->nargs; i++) {
			Value *a = in->args[i];
			if (a->arena != ARENA_ACT || last[a->id] != step || a->type.dtype != r->type.dtype ||
			    type_numel(&a->type) != type_numel(&r->type) || root[r->id] != r->id)
				continue;
			root[r->id] = root[a->id];
			if (last[r->id] > last[root[a->id]])
				last[root[a->id]] = last[r->id];
		}
		step++;
	}
	for (Inst *in = g->first; in; in = in->next)
		if (in->res && in->res->arena == ARENA_ACT && root[in->res->id] == in->res->id)
			live[n++] = (Live){in->res, def[in->res->id], last[in->res->id], bytes_of(in->res)};
	/* The most bytes alive at one step: no placement can use less (nor any order of these
	 * steps without recomputation, when the peak is where the backward pass starts). */
	int64_t *delta = calloc((size_t)nsteps + 2, sizeof *delta);
	if (delta) {
		for (int i = 0; i < n; i++) {
			delta[live[i].def] += live[i].size;
			delta[live[i].last + 1] -= live[i].size;
		}
		int64_t cur = 0;
		g->live_peak = 0;
		for (int s = 0; s <= nsteps; s++) {
			cur += delta[s];
			if (cur > g->live_peak)
				g->live_peak = cur;
		}
		free(delta);
	}
	qsort(live, (size_t)n, sizeof *live, by_size);
	int64_t top = 0;
	/* The placed values whose lives intersect the current one's, sorted by offset; the gaps
	 * between them are where it may go. O(n^2 log n) over a graph's values. */
	Span *busy = malloc(((size_t)n + 1) * sizeof *busy);
	for (int i = 0; busy && i < n; i++) {
		int nb = 0;
		for (int j = 0; j < i; j++)
			if (live[j].def <= live[i].last && live[i].def <= live[j].last)
				busy[nb++] = (Span){live[j].v->offset, live[j].v->offset + live[j].size};
		qsort(busy, (size_t)nb, sizeof *busy, by_start);
		int64_t at = 0;
		for (int k = 0; k < nb; k++) {
			if (busy[k].begin >= at + live[i].size)
				break;
			if (busy[k].end > at)
				at = busy[k].end;
		}
		live[i].v->offset = at;
		if (at + live[i].size > top)
			top = at + live[i].size;
	}
	if (!busy && n)
		diag_internal(d, (Loc){0}, "memplan: out of memory");
	/* Members of an in-place chain take their root's region (roots precede their members). */
	Value **byid = calloc((size_t)g->nvalues + 1, sizeof *byid);
	for (Inst *in = g->first; byid && in; in = in->next)
		if (in->res)
			byid[in->res->id] = in->res;
	for (Inst *in = g->first; busy && byid && in; in = in->next)
		if (in->res && in->res->arena == ARENA_ACT && root[in->res->id] != in->res->id)
			in->res->offset = byid[root[in->res->id]]->offset;
	if (!byid)
		diag_internal(d, (Loc){0}, "memplan: out of memory");
	free(byid);
	free(root);
	free(busy);
	free(def);
	free(last);
	free(live);
	return busy || !n ? top : -1;
}

static int64_t
place_sources(Graph *g, Graph *from, int arena)
{
	int64_t top = 0;
	for (Inst *in = g->first; in; in = in->next) {
		if (!in->res || in->res->arena != arena)
			continue;
		/* The eval graph shares the training graph's parameters and inputs: same names. */
		const Inst *twin = NULL;
		for (const Inst *t = from ? from->first : NULL; t && !twin; t = t->next)
			if (t->op == in->op && t->res && t->res->arena == arena &&
			    strcmp(attr_s(t, "name"), attr_s(in, "name")) == 0)
				twin = t;
		if (twin) {
			in->res->offset = twin->res->offset;
		} else {
			in->res->offset = top;
			top += bytes_of(in->res);
		}
	}
	return top;
}

static bool
plan_graph(Graph *g, Graph *from, Diag *d, bool no_reuse)
{
	g->naive_bytes = 0;
	for (Inst *in = g->first; in; in = in->next) {
		if (!in->res)
			continue;
		in->res->arena = in->op == OP_param ? ARENA_PARAM : in->op == OP_input ? ARENA_IO : ARENA_ACT;
		g->naive_bytes += bytes_of(in->res);
	}
	g->arena_bytes[ARENA_PARAM] = place_sources(g, from, ARENA_PARAM);
	g->arena_bytes[ARENA_IO] = place_sources(g, from, ARENA_IO);
	if (from) {
		g->arena_bytes[ARENA_PARAM] = from->arena_bytes[ARENA_PARAM];
		g->arena_bytes[ARENA_IO] = from->arena_bytes[ARENA_IO];
	}
	g->arena_bytes[ARENA_ACT] = place_act(g, d, no_reuse);
	return g->arena_bytes[ARENA_ACT] >= 0;
}

bool
pass_memplan(Module *m, Diag *d)
{
	if (!plan_graph(m->main, NULL, d, m->no_reuse))
		return false;
	return !m->eval || plan_graph(m->eval, m->main, d, m->no_reuse);
}
