/* layout: chooses the memory order of every image tensor and filter -- NCHW and OIHW
 * (PyTorch's), or channels-last NHWC and OHWI (KRSC) -- and inserts a relayout wherever a
 * value's consumer needs the other order (docs/passes.md, "layout").
 *
 * With NHWC (nnc --layout nhwc, or auto where it chooses it):
 *   - every 4-D parameter (a convolution filter and its optimizer state) is stored OHWI;
 *   - every op that computes over images (convolutions, batch norm, pooling, bias gradients...)
 *     reads and writes NHWC, so shape inference types its result NHWC;
 *   - ops that only combine elements (casts, activations, adds, updates) keep the layout their
 *     operands share, so an image input cast to f16 is relayouted once, after the cast's
 *     result has reached its consumer;
 *   - the image input stays NCHW (what the data loader writes) and flatten reads NCHW
 *     (PyTorch's (C, H, W) feature order), each behind one relayout; global_avgpool_bwd writes
 *     the layout its gradient's consumers use.
 * Checkpoints, safetensors and exports keep PyTorch's OIHW: runtime/weights.c converts filters
 * as it writes and reads them, and initialisation draws them in OIHW order, so one seed gives
 * the same network in either layout.
 *
 * Invariants: after the pass every value's layout is what shape inference gives for it (the
 * verifier re-checks), a value is relayouted at most once per target layout (shared by all its
 * readers), and with NCHW the pass changes nothing. */
#include <stdlib.h>

#include "compiler/check.h"
#include "passes/pipeline.h"

typedef struct {
	Graph *g;
	Diag *d;
	Value **to_cl; /* by value id: the value's NHWC relayout, or NULL */
	Value **to_cf; /* its NCHW relayout */
	int cap;
} Ctx;

/* Ops that only combine elements at equal positions: they work in any layout, as long as
 * every operand and the result share it. */
static bool
any_layout(Op op)
{
	return (nnc_ops[op].flags & OPF_ELEMWISE) || op == OP_cast || op == OP_sgd_update || op == OP_adam_update ||
	       op == OP_grad_check || op == OP_output || op == OP_bn_fold_weight;
}

static bool
is_image(const Value *v)
{
	return v->type.rank == 4 && (v->type.layout == LY_NCHW || v->type.layout == LY_NHWC);
}

/* V in layout TO (an image layout), relayouting it before the cursor the first time. */
static Value *
relayout(Ctx *c, Inst *user, Value *v, Layout to)
{
	if (v->type.layout == to)
		return v;
	Value **memo = to == LY_NHWC ? c->to_cl : c->to_cf;
	if (v->id < c->cap && memo[v->id])
		return memo[v->id];
	Inst *r = inst_build(c->g, OP_relayout, v->def, 1, &v);
	r->phase = user->phase;
	inst_set_str(r, "to", layout_name(to));
	if (!inst_type(c->g, c->d, r))
		return NULL;
	if (v->id < c->cap)
		memo[v->id] = r->res;
	return r->res;
}

static bool
run(Graph *g, Diag *d)
{
	Ctx c = {g, d, calloc((size_t)g->nvalues + 1, sizeof(Value *)), calloc((size_t)g->nvalues + 1, sizeof(Value *)),
		g->nvalues};
	bool ok = c.to_cl && c.to_cf;
	for (Inst *in = g->first; ok && in; in = in->next)
		if (in->op == OP_param && in->res->type.rank == 4 && in->res->type.layout == LY_OIHW)
			in->res->type.layout = LY_OHWI;
	for (Inst *in = g->first; ok && in; in = in->next) {
		if (nnc_ops[in->op].flags & OPF_SOURCE || in->op == OP_relayout)
			continue;
		g->cursor = in;
		Layout want = LY_NHWC;
		if (in->op == OP_flatten) {
			want = LY_NCHW;
		} else if (any_layout(in->op)) {
			/* the operands' common layout, or NHWC where they differ */
			int cl = 0, images = 0;
			for (int i = 0; i < in->nargs; i++)
				if (is_image(in->args[i])) {
					images++;
					cl += in->args[i]->type.layout == LY_NHWC;
				}
			want = cl == 0 && images ? LY_NCHW : LY_NHWC;
			if (in->op == OP_grad_check || in->op == OP_output)
				want = NLAYOUT; /* reads any mix */
		}
		for (int i = 0; want != NLAYOUT && i < in->nargs && ok; i++)
			if (is_image(in->args[i]) && in->args[i]->type.layout != want) {
				Value *v = relayout(&c, in, in->args[i], want);
				ok = v != NULL;
				in->args[i] = v;
			}
		if (in->op == OP_global_avgpool_bwd)
			inst_set_str(in, "layout", layout_name(LY_NHWC));
		ok = ok && inst_type(g, d, in);
	}
	g->cursor = NULL;
	free(c.to_cl);
	free(c.to_cf);
	return ok;
}

/* What --layout auto chooses: channels-last, in every precision. On the CPU it measured 1.15-1.2x
 * faster on the ResNets, MobileNet-V2 and airbench94 (no activation reorders around oneDNN's
 * convolutions; bench/results/cpu-step-2026-12-04.md), within a few percent on VGG-16; on the
 * GPU it is the order cuDNN's tensor-core kernels read (the first H200 profile spent 16.5% of
 * ResNet-56's fp16 kernel time transposing NCHW to NHWC and back). docs/passes.md. */
static bool
channels_last(const Module *m)
{
	return m->layout != LAYOUT_NCHW;
}

bool
pass_layout(Module *m, Diag *d)
{
	if (!channels_last(m))
		return true;
	Graph *gs[2] = {m->main, m->eval};
	for (int i = 0; i < 2; i++)
		if (gs[i] && !run(gs[i], d))
			return false;
	return true;
}
