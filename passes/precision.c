/* precision: assigns every value its storage dtype and every op its accumulation dtype, from
 * the module's Precision policy, inserting casts only where an operand's dtype differs from the
 * one its op computes in, and adds loss scaling.
 *
 * Policies (docs/precision.md):
 *   fp32   everything f32 (the pass changes nothing);
 *   fp16   pure 16-bit, the paper's mode: every tensor f16 -- activations, gradients,
 *          parameters, optimizer state, batch-norm parameters and running statistics; no f32
 *          master copy; accumulation f32 (as tensor-core hardware does) unless the policy asks
 *          for f16; optional static or dynamic loss scaling;
 *   mixed  f16 activations and conv/dense compute, f32 master weights and optimizer state, batch
 *          statistics and the loss in f32, dynamic loss scaling as PyTorch's GradScaler.
 * Per op kind and per layer (scope prefix, e.g. "layer1.0.bn1") overrides refine these; an op
 * added by a later pass (a backward op, a batch-norm statistics op) follows the policy of the
 * source op it implements (Inst.origin) and of its layer.
 *
 * Invariants: in-place operands (a parameter and its optimizer state in an update, running
 * statistics in bn_update) are never cast -- they keep their storage dtype; per-channel side
 * operands of batch-norm ops (statistics, scale, shift) may differ from the activation dtype
 * (kernels read them in f32); casts are shared per (value, dtype) and a cast back to a value's
 * original dtype reuses the original when that is exact (f16 -> f32 -> f16). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "compiler/check.h"
#include "core/file.h"
#include "passes/pipeline.h"

enum { GRAD_CHECK_CHUNK = 48 };

typedef struct {
	Graph *g;
	Diag *d;
	const Precision *p;
	Value **cast16, **cast32; /* by value id: the shared cast of a value, or NULL */
	int cap;
} Ctx;

/* The layer override whose scope is the longest prefix of SCOPE (at a '.' boundary), or -1.
 * The model's own unnamed ops have the empty scope, which only the override "" reaches. */
static int
layer_over(const Precision *p, const char *scope)
{
	int best = -1;
	size_t bestn = 0;
	if (!scope)
		scope = "";
	for (int i = 0; i < p->nover; i++) {
		const char *w = p->over[i].what;
		size_t n = strlen(w);
		if (p->over[i].layer && strncmp(scope, w, n) == 0 && (scope[n] == 0 || scope[n] == '.') &&
		    (best < 0 || n >= bestn)) {
			best = i;
			bestn = n;
		}
	}
	return best;
}

static DType
store_of(const Ctx *c, const Inst *in, DType *acc)
{
	const Precision *p = c->p;
	int l = layer_over(p, in->scope);
	if (l >= 0) { /* layer overrides win over op overrides */
		*acc = p->over[l].acc;
		return p->over[l].store;
	}
	DType st = p->act;
	*acc = p->acc;
	/* Op overrides match the source op kind or the op itself (e.g. bn_stats alone); the last
	 * listed wins. */
	const char *kind = nnc_ops[in->origin].name, *self = nnc_ops[in->op].name;
	for (int i = 0; i < p->nover; i++)
		if (!p->over[i].layer && (strcmp(kind, p->over[i].what) == 0 || strcmp(self, p->over[i].what) == 0)) {
			st = p->over[i].store;
			*acc = p->over[i].acc;
		}
	return st;
}

/* Operands an op reads in whatever dtype they have: written in place, or per-channel vectors. */
static bool
keep_dtype(const Inst *in, int i)
{
	switch (in->op) {
	case OP_sgd_update: return i != 1;
	case OP_adam_update: return i != 1;
	case OP_bn_update: return true;
	case OP_bn_apply: return i >= 1;
	case OP_bn_bwd_data: return i >= 2;
	case OP_bn_bwd_scale: return i >= 2;
	case OP_batchnorm: return i >= 1;
	case OP_output: return true;
	case OP_grad_check: return true;
	default: return false;
	}
}

static Value *
cast_to(Ctx *c, Inst *user, Value *v, DType dt)
{
	if (v->type.dtype == dt || (v->type.dtype != DT_F32 && v->type.dtype != DT_F16))
		return v;
	/* f16 -> f32 -> f16 is exact: reuse the f16 original. */
	if (dt == DT_F16 && v->def->op == OP_cast && v->def->args[0]->type.dtype == DT_F16)
		return v->def->args[0];
	Value **slot = dt == DT_F16 ? &c->cast16[v->id] : &c->cast32[v->id];
	if (*slot)
		return *slot;
	/* Place the cast right after the value's definition, so a shared cast dominates every later
	 * use. Parameters are declared first, so their casts (mixed precision's f16 copies of the
	 * f32 master weights) end up together at the start of the step, where the GPU runs them as
	 * one multi-tensor launch; their location is the first user's. */
	Inst *saved = c->g->cursor;
	c->g->cursor = v->def->next;
	Inst *k = inst_build(c->g, OP_cast, (nnc_ops[v->def->op].flags & OPF_SOURCE) ? user : v->def, 1, &v);
	k->phase = (nnc_ops[v->def->op].flags & OPF_SOURCE) ? user->phase : v->def->phase;
	inst_set_int(k, "to", dt);
	c->g->cursor = saved;
	if (!inst_type(c->g, c->d, k))
		return NULL;
	return *slot = k->res;
}

/* Parameters and state take the policy's dtypes, or their layer's override: a layer kept in
 * f32 keeps its weights, their optimizer state and its running statistics in f32 too (else an
 * f32 layer would compute with f16-rounded weights). A parameter's scope is its name
 * ("layer1.0.conv1.weight"); optimizer state is named after its parameter with an "optim."
 * prefix. */
static bool
retype_params(Ctx *c)
{
	for (Inst *in = c->g->first; in; in = in->next) {
		if (in->op != OP_param || in->res->type.dtype == DT_I32)
			continue;
		const char *name = attr_s(in, "name");
		/* State: running statistics and optimizer state. Frozen weights and scales are parameters. */
		bool state = nnc_state_kind(attr_s(in, "kind"));
		int l = layer_over(c->p, strncmp(name, "optim.", 6) == 0 ? name + 6 : name);
		in->res->type.dtype = l >= 0 ? c->p->over[l].store : state ? c->p->state : c->p->param;
	}
	return true;
}

static bool
assign(Ctx *c)
{
	for (Inst *in = c->g->first; in; in = in->next) {
		if ((nnc_ops[in->op].flags & OPF_SOURCE) || in->op == OP_cast)
			continue;
		DType acc;
		DType st = store_of(c, in, &acc);
		for (int i = 0; i < in->nargs; i++) {
			if (keep_dtype(in, i))
				continue;
			DType want = st;
			/* An update's gradient goes to its parameter's dtype -- except that an f16 gradient of
			 * an f32 master weight stays f16: the update widens it exactly as a cast would, and a
			 * cast per gradient (a kernel and a tensor each) is saved. */
			if (in->op == OP_sgd_update || in->op == OP_adam_update) {
				want = in->args[0]->type.dtype;
				if (want == DT_F32 && in->args[i]->type.dtype == DT_F16)
					continue;
			}
			Value *v = cast_to(c, in, in->args[i], want);
			if (!v)
				return false;
			in->args[i] = v;
		}
		in->acc = acc;
		if (!inst_type(c->g, c->d, in))
			return false;
	}
	return true;
}

/* Loss scaling: the backward seed becomes loss_scale, a grad_check precedes the updates, and
 * the updates unscale their gradients. */
static bool
add_loss_scaling(Ctx *c)
{
	Inst *seed = NULL, *first_update = NULL;
	for (Inst *in = c->g->first; in; in = in->next) {
		if (in->op == OP_ones)
			seed = in;
		if (!first_update && (in->op == OP_sgd_update || in->op == OP_adam_update))
			first_update = in;
	}
	if (!seed || !first_update)
		return true;
	c->g->cursor = seed;
	Inst *s = inst_build(c->g, OP_loss_scale, seed, 0, NULL);
	s->phase = PH_BACKWARD;
	inst_set_bool(s, "dynamic", c->p->loss_scaling == 2);
	inst_set_float(s, "init", c->p->scale_init);
	inst_set_int(s, "interval", c->p->scale_interval);
	if (!inst_type(c->g, c->d, s))
		return false;
	value_replace_uses(c->g, seed->res, s->res);
	inst_remove(c->g, seed);
	int n = 0;
	for (Inst *in = first_update; in; in = in->next)
		n += in->op == OP_sgd_update || in->op == OP_adam_update;
	Value **grads = arena_alloc(c->g->arena, (size_t)n * sizeof *grads);
	n = 0;
	for (Inst *in = first_update; in; in = in->next)
		if (in->op == OP_sgd_update || in->op == OP_adam_update) {
			grads[n++] = in->args[1];
			inst_set_bool(in, "unscale", true);
		}
	/* One grad_check per chunk of gradients (an op has at most NNC_MAXARGS operands); any of
	 * them finding inf/NaN skips the step. */
	c->g->cursor = first_update;
	for (int at = 0; at < n; at += GRAD_CHECK_CHUNK) {
		int k = n - at < GRAD_CHECK_CHUNK ? n - at : GRAD_CHECK_CHUNK;
		Inst *gc = inst_build(c->g, OP_grad_check, first_update, k, grads + at);
		gc->phase = PH_UPDATE;
		gc->scope = "";
		if (!inst_type(c->g, c->d, gc))
			return false;
	}
	c->g->cursor = NULL;
	return true;
}

static bool
run(Graph *g, Diag *d, const Precision *p, bool training)
{
	Ctx c = {g, d, p, NULL, NULL, 0};
	c.cap = g->nvalues * 4 + 64;
	c.cast16 = arena_alloc(g->arena, (size_t)c.cap * sizeof *c.cast16);
	c.cast32 = arena_alloc(g->arena, (size_t)c.cap * sizeof *c.cast32);
	if (!retype_params(&c))
		return false;
	/* New casts get ids past the ones seen; the maps are sized for them. */
	if (!assign(&c))
		return false;
	if (g->nvalues >= c.cap) {
		diag_internal(d, (Loc){0}, "precision: cast map overflow");
		return false;
	}
	for (Inst *in = g->first; in; in = in->next) /* Adam's epsilon floor where its state is fp16 */
		if (in->op == OP_adam_update && in->args[3]->type.dtype == DT_F16)
			inst_set_float(in, "min_eps", NNC_ADAM_MIN_EPS_F16);
	return !training || !p->loss_scaling || add_loss_scaling(&c);
}

/* Optimizer numerics that fp16 storage breaks, reported when the plan is compiled (nnrun
 * reports them again for settings overridden at run time). */
static void
warn_optimizer(const Module *m, Diag *d)
{
	const Precision *p = m->precision;
	const Recipe *r = m->recipe;
	Loc at = {0}; /* about the recipe, not a line of the model */
	if (p->state == DT_F16 && strcmp(r->optimizer, "sgd") != 0 && r->eps < NNC_ADAM_MIN_EPS_F16)
		diag_warning(d, at,
			"Adam eps %g underflows in fp16 state (smallest subnormal 5.96e-08; v = E[g^2] underflows long before, so "
			"sqrt(v) resolves nothing under 2^-12): nnrun will use eps 2^-12 = 2.44e-04",
			r->eps);
	if (p->param == DT_F16 && r->weight_decay > 0 && r->lr * r->weight_decay < 0x1p-11 &&
	    strcmp(r->rounding, "stochastic") != 0)
		diag_warning(d, at,
			"weight-decay steps lr * weight_decay = %g are below half an fp16 ulp (2^-11 relative): decay alone cannot "
			"change any fp16 weight (optimizer.rounding: stochastic keeps such steps in expectation)",
			r->lr * r->weight_decay);
}

bool
pass_precision(Module *m, Diag *d)
{
	const Precision *p = m->precision;
	if (p && m->training && m->recipe)
		warn_optimizer(m, d);
	if (!p || (p->act == DT_F32 && p->param == DT_F32 && p->state == DT_F32 && p->nover == 0 && !p->loss_scaling))
		return true;
	if (!run(m->main, d, p, m->training))
		return false;
	return !m->eval || run(m->eval, d, p, false);
}

/* --- policies ---------------------------------------------------------------------------------- */

static void
add_over(Precision *p, const char *what, bool layer, DType st, DType acc)
{
	if (p->nover == PREC_MAX_OVERRIDES)
		return;
	p->over[p->nover].what = what;
	p->over[p->nover].layer = layer;
	p->over[p->nover].store = st;
	p->over[p->nover++].acc = acc;
}

static void
base_policy(Precision *p, const char *name)
{
	memset(p, 0, sizeof *p);
	p->name = name;
	p->act = p->param = p->state = p->acc = DT_F32;
	p->scale_init = 65536;
	p->scale_interval = 2000;
	if (!strcmp(name, "fp16")) {
		p->act = p->param = p->state = DT_F16;
	} else if (!strcmp(name, "mixed")) {
		p->act = DT_F16;
		p->loss_scaling = 2;
		add_over(p, "softmax_cross_entropy", false, DT_F32, DT_F32);
		add_over(p, "bn_stats", false, DT_F32, DT_F32);
	}
}

static bool
parse_dtype(const char *s, DType *out)
{
	if (!strcmp(s, "f16") || !strcmp(s, "fp16")) {
		*out = DT_F16;
		return true;
	}
	if (!strcmp(s, "f32") || !strcmp(s, "fp32")) {
		*out = DT_F32;
		return true;
	}
	return false;
}

static bool
pfail(char *err, size_t n, const char *path, const yaml_node_t *node, const char *msg, const char *arg)
{
	int k = snprintf(err, n, "%s:%zu:%zu: error: ", path, node ? node->start_mark.line + 1 : 1,
		node ? node->start_mark.column + 1 : 1);
	if (k > 0 && (size_t)k < n)
		snprintf(err + k, n - (size_t)k, msg, arg);
	return false;
}

static const char *
scalar_of(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* One override: `name: f16` or `name: {store: f16, acc: f32}`. */
static bool
parse_override(yaml_document_t *doc, yaml_node_t *k, yaml_node_t *v, bool layer, Precision *p, Arena *a,
	const char *path, char *err, size_t n)
{
	const char *what = scalar_of(k);
	DType st = p->act, acc = p->acc;
	const char *s = scalar_of(v);
	if (!what)
		return pfail(err, n, path, k, "%s names must be plain words", layer ? "layer" : "op");
	if (!layer && nnc_op_lookup(what) == NOP) {
		bool internal = false;
		for (int i = 0; i < NOP; i++)
			internal |= !strcmp(nnc_ops[i].name, what);
		if (!internal)
			return pfail(err, n, path, k, "unknown op '%s' (nnc ops lists them)", what);
	}
	if (s) {
		if (!parse_dtype(s, &st))
			return pfail(err, n, path, v, "expected f16 or f32, got '%s'", s);
	} else if (v->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
			yaml_node_t *kk = yaml_document_get_node(doc, q->key), *vv = yaml_document_get_node(doc, q->value);
			const char *key = scalar_of(kk), *val = scalar_of(vv);
			DType *dst = key && !strcmp(key, "store") ? &st : key && !strcmp(key, "acc") ? &acc : NULL;
			if (!dst)
				return pfail(err, n, path, kk, "expected 'store' or 'acc', got '%s'", key ? key : "?");
			if (!val || !parse_dtype(val, dst))
				return pfail(err, n, path, vv, "expected f16 or f32, got '%s'", val ? val : "?");
		}
	} else {
		return pfail(err, n, path, v, "expected f16, f32 or {store: ..., acc: ...}%s", "");
	}
	if (p->nover == PREC_MAX_OVERRIDES)
		return pfail(err, n, path, k, "too many overrides (limit %s)", "1024");
	add_over(p, arena_strdup(a, what), layer, st, acc);
	return true;
}

bool
precision_parse(const char *spec, Precision *p, Arena *a, char *err, size_t n)
{
	if (!strcmp(spec, "fp32") || !strcmp(spec, "fp16") || !strcmp(spec, "mixed")) {
		base_policy(p, spec);
		return true;
	}
	const char *why;
	FILE *f = file_fopen_regular(spec, &why);
	if (!f) {
		snprintf(err, n, "%s: error: not fp32, fp16 or mixed, and cannot open it as a policy file: %s", spec, why);
		return false;
	}
	yaml_parser_t yp;
	yaml_document_t doc;
	yaml_parser_initialize(&yp);
	yaml_parser_set_input_file(&yp, f);
	bool ok = yaml_parser_load(&yp, &doc);
	if (!ok) {
		snprintf(err, n, "%s:%zu:%zu: error: invalid YAML: %s", spec, yp.problem_mark.line + 1,
			yp.problem_mark.column + 1, yp.problem ? yp.problem : "parse error");
		yaml_parser_delete(&yp);
		fclose(f);
		return false;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	base_policy(p, arena_strdup(a, spec));
	if (!root || root->type != YAML_MAPPING_NODE)
		ok = pfail(err, n, spec, root, "a policy is a mapping (base:, accumulate:, loss_scaling:, ops:, layers:)%s", "");
	/* `base` first, whatever its position, since the rest refines it. */
	for (yaml_node_pair_t *q = ok ? root->data.mapping.pairs.start : NULL; q && q < root->data.mapping.pairs.top; q++) {
		const char *key = scalar_of(yaml_document_get_node(&doc, q->key));
		yaml_node_t *v = yaml_document_get_node(&doc, q->value);
		if (key && !strcmp(key, "base")) {
			const char *b = scalar_of(v);
			if (!b || (strcmp(b, "fp32") && strcmp(b, "fp16") && strcmp(b, "mixed")))
				ok = pfail(err, n, spec, v, "base must be fp32, fp16 or mixed, got '%s'", b ? b : "?");
			else
			{
				base_policy(p, b);
				p->name = arena_strdup(a, spec);
			}
		}
	}
	for (yaml_node_pair_t *q = ok ? root->data.mapping.pairs.start : NULL; ok && q < root->data.mapping.pairs.top; q++) {
		yaml_node_t *k = yaml_document_get_node(&doc, q->key), *v = yaml_document_get_node(&doc, q->value);
		const char *key = scalar_of(k), *val = scalar_of(v);
		if (!key) {
			ok = pfail(err, n, spec, k, "keys must be plain words%s", "");
		} else if (!strcmp(key, "base")) {
			continue;
		} else if (!strcmp(key, "accumulate") || !strcmp(key, "activations") || !strcmp(key, "params") ||
		           !strcmp(key, "state")) {
			DType *dst = key[0] == 'a' && key[1] == 'c' && key[2] == 'c' ? &p->acc
			           : key[0] == 'a' ? &p->act : key[0] == 'p' ? &p->param : &p->state;
			if (!val || !parse_dtype(val, dst))
				ok = pfail(err, n, spec, v, "expected f16 or f32, got '%s'", val ? val : "?");
		} else if (!strcmp(key, "loss_scaling")) {
			if (val && !strcmp(val, "none"))
				p->loss_scaling = 0;
			else if (val && !strcmp(val, "static"))
				p->loss_scaling = 1;
			else if (val && !strcmp(val, "dynamic"))
				p->loss_scaling = 2;
			else
				ok = pfail(err, n, spec, v, "loss_scaling must be none, static or dynamic, got '%s'", val ? val : "?");
		} else if (!strcmp(key, "loss_scale") || !strcmp(key, "growth_interval")) {
			char *end;
			double x = val ? strtod(val, &end) : 0;
			if (!val || *end || !(x >= 1 && x < 1e30))
				ok = pfail(err, n, spec, v, "expected a number >= 1, got '%s'", val ? val : "?");
			else if (key[0] == 'l')
				p->scale_init = x;
			else
				p->scale_interval = (int)x;
		} else if (!strcmp(key, "ops") || !strcmp(key, "layers")) {
			if (v->type != YAML_MAPPING_NODE) {
				ok = pfail(err, n, spec, v, "'%s' holds name: dtype pairs", key);
				break;
			}
			for (yaml_node_pair_t *o = v->data.mapping.pairs.start; ok && o < v->data.mapping.pairs.top; o++)
				ok = parse_override(&doc, yaml_document_get_node(&doc, o->key), yaml_document_get_node(&doc, o->value),
					key[0] == 'l', p, a, spec, err, n);
		} else {
			ok = pfail(err, n, spec, k,
				"unknown policy key '%s' (base, activations, params, state, accumulate, loss_scaling, loss_scale, "
				"growth_interval, ops, layers)",
				key);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&yp);
	fclose(f);
	return ok;
}
