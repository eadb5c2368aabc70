/* nnc tune-precision (see tune.h and docs/precision.md, "Tuning a policy").
 *
 * A layer is a scope of the inference graph as written (`nnc stats`' rows, grouped by name: a
 * residual block's add and relu share the block's scope). Every candidate assignment of layers
 * to fp16 or f32 becomes a Precision (the start policy plus the fewest layer overrides that give
 * each layer its dtype under the longest-prefix rule), is compiled in memory through the whole
 * pipeline and the plan text (so it is exactly the plan `nnc compile --precision POLICY.yaml`
 * would write), and is evaluated with the given weights on the held-out images, the last N of
 * the training set, against the f32 plan (runtime/tolerance.h).
 *
 * The search: pure fp16 first; if it is over budget, each layer is measured alone in fp16 (the
 * rest f32) and alone in f32 (the rest fp16), and layers move to f32 in order of benefit per
 * cost (the budget's metrics they account for, divided by their share of the work: the mean of
 * their share of MACs and of activation elements) until the budget holds; then each moved layer
 * is tried back in fp16, the last moved first, and stays there if the budget still holds.
 *
 * Invariants: every measurement is a pure function of (assignment, plan options, weights,
 * images, backend), and is cached by assignment, so the search is deterministic and no
 * assignment runs twice; the policy written is parsed back and checked to be the one measured. */
#include "cli/tune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/lower.h"
#include "core/file.h"
#include "runtime/tolerance.h"
#include "runtime/weights.h"

enum { LOW, HIGH }; /* a layer's state: the start policy's fp16, or f32 */

typedef struct {
	double delta;
	long violations, flips, correct, nonfinite;
} Metrics;

typedef struct {
	char *scope;         /* owned (the graph it came from is freed) */
	char kinds[96];      /* its op kinds, e.g. "conv2d" or "add+relu" */
	int64_t macs, elems; /* forward MACs per image, output elements at the batch */
	double work;         /* (macs share + elements share) / 2 */
	Metrics lone16;      /* this layer alone in fp16, the rest f32 */
	Metrics but32;       /* this layer alone in f32, the rest fp16 */
	double benefit;
	int moved;           /* the search's step that moved it to f32 (0: never) */
	bool high;           /* in the result */
} Unit;

typedef struct {
	char *key;
	Metrics m;
} Cached;

typedef struct {
	const TuneOptions *o;
	Recipe recipe;
	Unit *u;
	int nu;
	int *bylen;                  /* units by scope length, shortest first */
	int64_t tot_macs, tot_elems;
	CifarData data;
	TolSlice slice;
	int k;
	double *ref, *prob;          /* the f32 plan's probabilities; scratch */
	int32_t *labels;
	long ref_correct;
	Cached *cache;
	int ncache, capcache, runs;
	Precision fp32;
	const char *weights;         /* as the user named them (o->weights may be a converted copy) */
	char err[4096];
} Ctx;

static const char *const budget_names[NBUDGET] = {"delta", "violations", "flips", "drop"};

bool
tune_parse_budget(const char *s, TuneBudget *b, char *err, size_t errlen)
{
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		char item[128];
		if (n == 0 || n >= sizeof item) {
			snprintf(err, errlen, "--budget: expected KEY=VALUE[,KEY=VALUE...], got '%s'", s);
			return false;
		}
		memcpy(item, p, n);
		item[n] = 0;
		p += n + (p[n] == ',');
		char *eq = strchr(item, '=');
		int key = -1;
		for (int i = 0; eq && i < NBUDGET; i++)
			if ((size_t)(eq - item) == strlen(budget_names[i]) && !strncmp(item, budget_names[i], (size_t)(eq - item)))
				key = i;
		if (key < 0) {
			snprintf(err, errlen, "--budget: unknown limit '%.*s' (delta, violations, flips or drop)",
				eq ? (int)(eq - item) : (int)strlen(item), item);
			return false;
		}
		char *end;
		errno = 0;
		double v = strtod(eq + 1, &end);
		bool pct = *end == '%' && (key == BUDGET_VIOLATIONS || key == BUDGET_FLIPS);
		end += pct;
		bool count = key == BUDGET_VIOLATIONS || key == BUDGET_FLIPS;
		if (end == eq + 1 || *end || errno || !(v >= 0) || (key == BUDGET_DELTA && v > 1) ||
		    (key == BUDGET_DROP && v > 100) || (pct && v > 100) || (count && !pct && v != floor(v)) || v > 1e9) {
			snprintf(err, errlen,
				"--budget: %s needs %s, got '%s'", budget_names[key],
				key == BUDGET_DELTA ? "a probability difference from 0 to 1"
				: key == BUDGET_DROP ? "percentage points from 0 to 100"
				                     : "a whole number of images or a percentage (e.g. 1%)",
				eq + 1);
			return false;
		}
		b->limit[key] = v;
		b->pct[key] = pct;
	}
	return true;
}

/* --- layers ------------------------------------------------------------------------------------ */

static bool
is_layer_op(const Inst *in)
{
	/* relayouts and casts are added after the precision pass: no policy reaches them */
	return !(nnc_ops[in->op].flags & (OPF_SOURCE | OPF_NORES)) && in->op != OP_relayout && in->op != OP_cast;
}

/* Unit A before unit B: shorter scope, or the same length and earlier. */
static bool
before(const Unit *u, int a, int b)
{
	size_t la = strlen(u[a].scope), lb = strlen(u[b].scope);
	return la != lb ? la < lb : a < b;
}

/* Insertion sort by scope length (qsort has no context argument in C11). */
static void
sort_by_len(int *ix, int n, const Unit *u)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && before(u, ix[j], ix[j - 1]); j--) {
			int t = ix[j];
			ix[j] = ix[j - 1];
			ix[j - 1] = t;
		}
}

static bool
collect_units(Ctx *c, const Graph *g)
{
	int cap = 0;
	for (const Inst *in = g->first; in; in = in->next)
		cap += is_layer_op(in);
	c->u = calloc((size_t)cap + 1, sizeof *c->u);
	c->bylen = calloc((size_t)cap + 1, sizeof *c->bylen);
	if (!c->u || !c->bylen)
		return false;
	for (const Inst *in = g->first; in; in = in->next) {
		if (!is_layer_op(in))
			continue;
		int64_t macs = in->macs, elems = type_numel(&in->res->type);
		c->tot_macs += macs;
		c->tot_elems += elems;
		const char *scope = in->scope ? in->scope : "";
		int i = 0;
		while (i < c->nu && strcmp(c->u[i].scope, scope) != 0)
			i++;
		Unit *u = &c->u[i];
		if (i == c->nu) {
			if (!(u->scope = strdup(scope)))
				return false;
			c->nu++;
		}
		const char *kind = nnc_ops[in->op].name;
		size_t n = strlen(u->kinds);
		if (!strstr(u->kinds, kind) && n + strlen(kind) + 2 < sizeof u->kinds)
			snprintf(u->kinds + n, sizeof u->kinds - n, "%s%s", n ? "+" : "", kind);
		u->macs += macs;
		u->elems += elems;
	}
	for (int i = 0; i < c->nu; i++) {
		Unit *u = &c->u[i];
		u->work = 0.5 * ((c->tot_macs ? (double)u->macs / c->tot_macs : 0) +
		                 (c->tot_elems ? (double)u->elems / c->tot_elems : 0));
		c->bylen[i] = i;
	}
	sort_by_len(c->bylen, c->nu, c->u);
	return true;
}

/* --- policies ---------------------------------------------------------------------------------- */

/* A layer's name in messages and the report: the model's own unnamed ops are its top level,
 * the scope "" (a policy's `"": f32` reaches exactly them). */
static const char *
shown(const Unit *u)
{
	return u->scope[0] ? u->scope : "(top level)";
}

static bool
scope_prefix(const char *prefix, const char *scope)
{
	size_t n = strlen(prefix);
	return strncmp(scope, prefix, n) == 0 && (scope[n] == 0 || scope[n] == '.');
}

/* BASE (the start policy, whose layers are LOW, or f32, whose layers are HIGH) plus the fewest
 * layer overrides that give unit i the state ST[i]: shortest scopes first, an override only
 * where the longest override already written above a scope gives it the other state. */
static bool
make_policy(Ctx *c, bool from_start, const unsigned char *st, Precision *out)
{
	const Precision *s = c->o->start;
	*out = from_start ? *s : c->fp32;
	for (int j = 0; j < c->nu; j++) {
		int i = c->bylen[j];
		int inherited = from_start ? LOW : HIGH;
		size_t best = 0;
		for (int k = (from_start ? s->nover : 0); k < out->nover; k++)
			if (strlen(out->over[k].what) >= best && scope_prefix(out->over[k].what, c->u[i].scope)) {
				best = strlen(out->over[k].what);
				inherited = out->over[k].store == DT_F32 ? HIGH : LOW;
			}
		if (inherited == st[i])
			continue;
		if (out->nover == PREC_MAX_OVERRIDES) {
			snprintf(c->err, sizeof c->err, "%s: error: the policy would need more than %d layer entries", c->o->model,
				PREC_MAX_OVERRIDES);
			return false;
		}
		out->over[out->nover].what = c->u[i].scope;
		out->over[out->nover].layer = true;
		out->over[out->nover].store = st[i] == HIGH ? DT_F32 : DT_F16;
		out->over[out->nover++].acc = st[i] == HIGH ? DT_F32 : s->acc;
	}
	return true;
}

/* --- measurements ------------------------------------------------------------------------------ */

/* Compiles POL into PLAN (in A) through the plan text, as nnc compile -o and nnrun would.
 * LOUD: the compiler's messages go to stderr as they come, else only on failure. */
static bool
compile_plan(Ctx *c, const Precision *pol, Plan *plan, Arena *a, bool loud)
{
	Arena ca = {0};
	char *dbuf = NULL, *pbuf = NULL;
	size_t dlen = 0, plen = 0;
	FILE *dout = loud ? stderr : open_memstream(&dbuf, &dlen);
	if (!dout) {
		snprintf(c->err, sizeof c->err, "out of memory");
		return false;
	}
	Diag d;
	diag_init(&d, dout);
	PipelineOpts po = *c->o->po;
	po.precision = pol;
	po.dump_ir = po.dump_dir = NULL;
	Module m;
	bool ok = pipeline_run(&ca, &d, c->o->so, &po, &c->recipe, &m) == NNC_OK && d.nerrors == 0;
	Plan lowered;
	ok = ok && lower_module(&m, c->o->model, &lowered, &d);
	FILE *pf = ok ? open_memstream(&pbuf, &plen) : NULL;
	ok = ok && pf && plan_write(pf, &lowered);
	if (pf)
		ok = fclose(pf) == 0 && ok;
	if (!loud)
		fclose(dout);
	if (!ok && !loud && dbuf)
		fputs(dbuf, stderr);
	c->err[0] = 0;
	ok = ok && plan_parse(pbuf, plen, c->o->model, plan, a, false, c->err, sizeof c->err);
	if (!ok && !c->err[0])
		snprintf(c->err, sizeof c->err, "%s: error: the policy %s did not compile (messages above)", c->o->model,
			pol->name);
	free(dbuf);
	free(pbuf);
	arena_free(&ca);
	return ok;
}

/* PROB <- the probabilities of plan P on the held-out images. */
static bool
eval_plan(Ctx *c, const Plan *p, double *prob, int32_t *labels, bool loud)
{
	char note[1024];
	bool ok = tol_probs(p, c->o->weights, &c->data, c->slice, &c->o->backend, c->o->threads, prob, labels, note,
		sizeof note, c->err, sizeof c->err);
	if (ok && loud && note[0])
		fprintf(stderr, "nnc: %s\n", note);
	c->runs += ok;
	return ok;
}

/* The same for POL's plan, compiled for the purpose. */
static bool
run_policy(Ctx *c, const Precision *pol, double *prob)
{
	Arena a = {0};
	Plan p;
	bool ok = compile_plan(c, pol, &p, &a, false) && eval_plan(c, &p, prob, NULL, false);
	arena_free(&a);
	return ok;
}

static Metrics
metrics_of(const Ctx *c, const double *prob)
{
	TolSummary s;
	tol_summary(c->ref, prob, c->labels, c->slice.count, c->k, &s);
	return (Metrics){s.max_delta, s.n - s.guaranteed, s.n - s.agree, s.correct_b, s.nonfinite_b};
}

/* The measurement of assignment ST (from the start policy, or from f32), cached. */
static bool
measure(Ctx *c, bool from_start, const unsigned char *st, Metrics *m)
{
	char *key = malloc((size_t)c->nu + 2);
	if (!key)
		return false;
	key[0] = from_start ? 's' : 'f';
	for (int i = 0; i < c->nu; i++)
		key[i + 1] = (char)('0' + st[i]);
	key[c->nu + 1] = 0;
	for (int i = 0; i < c->ncache; i++)
		if (!strcmp(c->cache[i].key, key)) {
			*m = c->cache[i].m;
			free(key);
			return true;
		}
	Precision *pol = malloc(sizeof *pol);
	bool ok = pol != NULL;
	ok = ok && make_policy(c, from_start, st, pol) && run_policy(c, pol, c->prob);
	free(pol);
	if (ok && c->ncache == c->capcache) {
		int cap = c->capcache ? 2 * c->capcache : 64;
		Cached *nc = realloc(c->cache, (size_t)cap * sizeof *nc);
		ok = nc != NULL;
		if (ok) {
			c->cache = nc;
			c->capcache = cap;
		}
	}
	if (!ok) {
		fprintf(stderr, "%s\n", c->err[0] ? c->err : "nnc: out of memory");
		free(key);
		return false;
	}
	*m = metrics_of(c, c->prob);
	c->cache[c->ncache++] = (Cached){key, *m};
	if (c->o->verbose) {
		int nhigh = 0;
		for (int i = 0; i < c->nu; i++)
			nhigh += st[i] == HIGH;
		fprintf(stderr, "nnc: measured %s with %d of %d layers in f32: delta %.6g, violations %ld, flips %ld, "
		                "accuracy %.2f%%\n",
			from_start ? "fp16" : "f32", nhigh, c->nu, m->delta, m->violations, m->flips,
			100.0 * m->correct / c->slice.count);
	}
	return true;
}

/* The metric K of M, in the budget's units (accuracy drop in percentage points). */
static double
metric(const Ctx *c, const Metrics *m, int k)
{
	switch (k) {
	case BUDGET_DELTA: return m->delta;
	case BUDGET_VIOLATIONS: return (double)m->violations;
	case BUDGET_FLIPS: return (double)m->flips;
	default: return 100.0 * (double)(c->ref_correct - m->correct) / (double)c->slice.count;
	}
}

/* Limit K as a number in the metric's units for N images. */
static double
limit_for(const TuneBudget *b, int k, int64_t n)
{
	return b->pct[k] ? b->limit[k] * (double)n / 100.0 : b->limit[k];
}

/* The exact (Clopper-Pearson) one-sided upper confidence bound at level CONF of a rate seen K
 * times in N images: the rate p at which P(X <= K) = 1 - CONF for X ~ Binomial(N, p). */
double
tune_rate_bound(long k, long n, double conf)
{
	if (k >= n)
		return 1;
	double lo = (double)k / (double)n, hi = 1;
	for (int it = 0; it < 64; it++) {
		double p = 0.5 * (lo + hi), cdf = 0;
		for (long i = 0; i <= k; i++)
			cdf += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) + (double)i * log(p) +
			           (double)(n - i) * log1p(-p));
		if (cdf > 1 - conf)
			lo = p;
		else
			hi = p;
	}
	return hi;
}

/* Whether M holds the budget. A percentage of violations or flips is a claim about images
 * like the held-out ones: with a confidence level set, the upper bound of the rate must be
 * within it, not just the count seen. */
static bool
meets(const Ctx *c, const Metrics *m)
{
	const TuneBudget *b = &c->o->budget;
	int64_t n = c->slice.count;
	for (int k = 0; k < NBUDGET; k++) {
		if (b->limit[k] < 0)
			continue;
		double got = metric(c, m, k);
		if (!(got <= limit_for(b, k, n) + 1e-12))
			return false;
		if (b->pct[k] && c->o->confidence > 0 && tune_rate_bound((long)got, (long)n, c->o->confidence) * 100 > b->limit[k])
			return false;
	}
	return m->nonfinite == 0;
}

/* What keeping unit U in f32 is worth, in units of the budget's limits: the metrics it fixes
 * when it alone is f32 plus those it spoils when it alone is fp16. The delta term, always
 * there with a small weight, orders layers the budget's counts cannot tell apart. */
static double
benefit(const Ctx *c, const Unit *u, const Metrics *all16)
{
	double b = 0;
	for (int k = 0; k < NBUDGET; k++) {
		double lim = limit_for(&c->o->budget, k, c->slice.count);
		if (c->o->budget.limit[k] < 0)
			continue;
		double scale = lim > 0 ? lim : k == BUDGET_DELTA ? 1e-9 : k == BUDGET_DROP ? 100.0 / c->slice.count : 1;
		double fixes = metric(c, all16, k) - metric(c, &u->but32, k);
		b += ((fixes > 0 ? fixes : 0) + metric(c, &u->lone16, k)) / scale;
	}
	double d = all16->delta > 0 && isfinite(all16->delta) ? all16->delta : 1;
	double fixes = all16->delta - u->but32.delta;
	b += 1e-3 * ((fixes > 0 && isfinite(fixes) ? fixes : 0) + (isfinite(u->lone16.delta) ? u->lone16.delta : d)) / d;
	if (u->lone16.nonfinite || (all16->nonfinite && !u->but32.nonfinite))
		b += 1e6;
	return b;
}

/* --- output ------------------------------------------------------------------------------------ */

static void
yaml_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static const char *
dt(DType d)
{
	return d == DT_F16 ? "f16" : "f32";
}

static void
budget_text(const Ctx *c, char *buf, size_t n)
{
	size_t k = 0;
	bool pct = false;
	buf[0] = 0;
	for (int i = 0; i < NBUDGET && k < n; i++)
		if (c->o->budget.limit[i] >= 0) {
			k += (size_t)snprintf(buf + k, n - k, "%s%s <= %g%s", k ? ", " : "", budget_names[i], c->o->budget.limit[i],
				c->o->budget.pct[i] ? "%" : i == BUDGET_DROP ? " points" : "");
			pct |= c->o->budget.pct[i];
		}
	if (pct && c->o->confidence > 0 && k < n)
		snprintf(buf + k, n - k, " (rates: the %g%% upper confidence bound from the held-out count)",
			100 * c->o->confidence);
}

static void
metrics_text(const Ctx *c, const Metrics *m, char *buf, size_t n)
{
	double acc = 100.0 * m->correct / c->slice.count;
	snprintf(buf, n, "delta %.6g, violations %ld, flips %ld, accuracy %.2f%% (drop %.2f points)%s", m->delta,
		m->violations, m->flips, acc, metric(c, m, BUDGET_DROP), m->nonfinite ? ", NaN/Inf outputs" : "");
}

typedef struct {
	double work, macs, elems; /* fp16 shares */
} Share;

static Share
share_of(const Ctx *c, const unsigned char *st)
{
	double macs = 0, elems = 0;
	for (int i = 0; i < c->nu; i++)
		if (st[i] == LOW) {
			macs += (double)c->u[i].macs;
			elems += (double)c->u[i].elems;
		}
	Share s = {0, c->tot_macs ? macs / c->tot_macs : 1, c->tot_elems ? elems / c->tot_elems : 1};
	s.work = 0.5 * (s.macs + s.elems);
	return s;
}

static bool
write_policy(const Ctx *c, const Precision *p, const Metrics *m, const Share *sh, int nhigh)
{
	char tmp[4096], bt[512], mt[512];
	snprintf(tmp, sizeof tmp, "%s.tmp", c->o->output);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "%s: error: cannot write: %s\n", c->o->output, strerror(errno));
		return false;
	}
	budget_text(c, bt, sizeof bt);
	metrics_text(c, m, mt, sizeof mt);
	fprintf(f, "# Written by nnc tune-precision: %s with the weights %s, measured on training images %lld-%lld\n",
		c->o->model, c->weights, (long long)c->slice.first, (long long)(c->slice.first + c->slice.count - 1));
	fprintf(f, "# (held out) against its f32 plan. Budget: %s.\n", bt);
	fprintf(f, "# Result: %s.\n", mt);
	fprintf(f, "# %d of %d layers kept in f32; fp16 share of the work %.1f%% (MACs %.1f%%, activations %.1f%%).\n",
		nhigh, c->nu, 100 * sh->work, 100 * sh->macs, 100 * sh->elems);
	fprintf(f, "base: fp16\nactivations: %s\nparams: %s\nstate: %s\naccumulate: %s\n", dt(p->act), dt(p->param),
		dt(p->state), dt(p->acc));
	fprintf(f, "loss_scaling: %s\nloss_scale: %.17g\ngrowth_interval: %d\n",
		p->loss_scaling == 2 ? "dynamic" : p->loss_scaling == 1 ? "static" : "none", p->scale_init, p->scale_interval);
	for (int layer = 0; layer < 2; layer++) {
		bool any = false;
		for (int i = 0; i < p->nover; i++) {
			if (p->over[i].layer != layer)
				continue;
			if (!any)
				fprintf(f, "%s:\n", layer ? "layers" : "ops");
			any = true;
			fputs("  ", f);
			yaml_quoted(f, p->over[i].what);
			fprintf(f, ": {store: %s, acc: %s}\n", dt(p->over[i].store), dt(p->over[i].acc));
		}
	}
	if (fclose(f) != 0 || rename(tmp, c->o->output) != 0) {
		fprintf(stderr, "%s: error: cannot write: %s\n", c->o->output, strerror(errno));
		remove(tmp);
		return false;
	}
	return true;
}

/* The written policy, parsed back, must be the one measured. */
static bool
check_written(const Ctx *c, const Precision *p)
{
	Arena a = {0};
	Precision *q = malloc(sizeof *q);
	char err[1024] = "";
	bool ok = q && precision_parse(c->o->output, q, &a, err, sizeof err);
	ok = ok && q->act == p->act && q->param == p->param && q->state == p->state && q->acc == p->acc &&
	     q->loss_scaling == p->loss_scaling && q->scale_init == p->scale_init &&
	     q->scale_interval == p->scale_interval && q->nover == p->nover;
	for (int i = 0; ok && i < p->nover; i++)
		ok = !strcmp(q->over[i].what, p->over[i].what) && q->over[i].layer == p->over[i].layer &&
		     q->over[i].store == p->over[i].store && q->over[i].acc == p->over[i].acc;
	if (!ok)
		fprintf(stderr, "nnc: internal error: %s does not read back as the policy measured%s%s\n", c->o->output,
			err[0] ? ": " : "", err);
	free(q);
	arena_free(&a);
	return ok;
}

/* S as one CSV field: quoted when it holds a comma or a quote (a label may). */
static void
csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static bool
write_report(const Ctx *c)
{
	FILE *f = fopen(c->o->report, "w");
	if (!f) {
		fprintf(stderr, "%s: error: cannot write: %s\n", c->o->report, strerror(errno));
		return false;
	}
	fprintf(f, "layer,ops,macs,act_elems,work_share,alone_fp16_delta,alone_fp16_violations,alone_fp16_flips,"
	           "alone_fp16_accuracy,alone_f32_delta,alone_f32_violations,alone_f32_flips,alone_f32_accuracy,benefit,"
	           "moved,precision\n");
	for (int i = 0; i < c->nu; i++) {
		const Unit *u = &c->u[i];
		csv_field(f, shown(u));
		fprintf(f, ",%s,%lld,%lld,%.6g,%.9g,%ld,%ld,%.4f,%.9g,%ld,%ld,%.4f,%.6g,%d,%s\n", u->kinds,
			(long long)u->macs, (long long)u->elems, u->work, u->lone16.delta, u->lone16.violations, u->lone16.flips,
			100.0 * u->lone16.correct / c->slice.count, u->but32.delta, u->but32.violations, u->but32.flips,
			100.0 * u->but32.correct / c->slice.count, u->benefit, u->moved, u->high ? "f32" : "f16");
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: error: cannot write: %s\n", c->o->report, strerror(errno));
		return false;
	}
	return true;
}

/* --- the search -------------------------------------------------------------------------------- */

/* Each layer alone in fp16 (the rest f32) and alone in f32 (the rest fp16), and its benefit. */
static bool
sensitivity(Ctx *c, const Metrics *all16)
{
	unsigned char *t = malloc((size_t)c->nu);
	bool ok = t != NULL;
	for (int i = 0; i < c->nu && ok; i++) {
		memset(t, HIGH, (size_t)c->nu);
		t[i] = LOW;
		ok = measure(c, false, t, &c->u[i].lone16);
		memset(t, LOW, (size_t)c->nu);
		t[i] = HIGH;
		ok = ok && measure(c, true, t, &c->u[i].but32);
		c->u[i].benefit = benefit(c, &c->u[i], all16);
	}
	free(t);
	return ok;
}

static int
search(Ctx *c, unsigned char *st)
{
	char mt[512];
	Metrics all16, m;
	memset(st, LOW, (size_t)c->nu);
	if (!measure(c, true, st, &all16))
		return NNC_EUSER;
	metrics_text(c, &all16, mt, sizeof mt);
	printf("  pure fp16: %s: %s\n", mt, meets(c, &all16) ? "within budget" : "over budget");
	if (meets(c, &all16) && !c->o->report)
		return NNC_OK;
	printf("  sensitivity: each of %d layers alone in fp16 (the rest f32) and alone in f32 (the rest fp16)\n", c->nu);
	if (!sensitivity(c, &all16))
		return NNC_EUSER;
	if (meets(c, &all16))
		return NNC_OK;
	int *order = malloc((size_t)c->nu * sizeof *order);
	if (!order) {
		fprintf(stderr, "nnc: out of memory\n");
		return NNC_EUSER;
	}
	int rc = NNC_OK;
	for (int i = 0; i < c->nu; i++)
		order[i] = i;
	/* Most benefit per unit of work first; ties in layer order. */
	for (int i = 1; i < c->nu; i++)
		for (int j = i; j > 0; j--) {
			const Unit *a = &c->u[order[j - 1]], *b = &c->u[order[j]];
			double ka = a->benefit / (a->work > 0 ? a->work : 1e-12), kb = b->benefit / (b->work > 0 ? b->work : 1e-12);
			if (!(kb > ka))
				break;
			int x = order[j];
			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	printf("  search: move layers to f32, most benefit per work first, until the budget holds\n");
	int moved = 0;
	bool ok = false;
	for (int j = 0; j < c->nu && rc == NNC_OK && !ok; j++) {
		Unit *u = &c->u[order[j]];
		st[order[j]] = HIGH;
		u->moved = ++moved;
		if (!measure(c, true, st, &m)) {
			rc = NNC_EUSER;
			break;
		}
		ok = meets(c, &m);
		metrics_text(c, &m, mt, sizeof mt);
		printf("    %3d. %-24s %-22s work %5.2f%%  -> %s\n", moved, shown(u), u->kinds, 100 * u->work, mt);
	}
	if (rc == NNC_OK && !ok) {
		fprintf(stderr,
			"nnc: error: the budget cannot be met: with every named layer in f32 the held-out images still give %s\n",
			mt);
		rc = NNC_EUSER;
	}
	/* Prune: the last moved first, back to fp16 where the budget still holds. */
	for (int j = c->nu - 1; j >= 0 && rc == NNC_OK; j--) {
		Unit *u = &c->u[order[j]];
		if (st[order[j]] != HIGH)
			continue;
		st[order[j]] = LOW;
		if (!measure(c, true, st, &m)) {
			rc = NNC_EUSER;
			break;
		}
		if (meets(c, &m)) {
			printf("    back to fp16: %s (the budget still holds)\n", shown(u));
			u->moved = -u->moved;
		} else {
			st[order[j]] = HIGH;
		}
	}
	free(order);
	return rc;
}

/* Checkpoints load only into a plan of their own dtypes; the plans measured here mix them. A
 * checkpoint is therefore loaded once into the f32 plan REF or, failing that, the start
 * policy's, and exported as .safetensors into DIR (which any precision loads), whose path goes
 * to OUT. */
static bool
portable_weights(Ctx *c, const Plan *ref, char *dir, char *out, size_t outlen)
{
	char first[4096] = "";
	for (int t = 0; t < 2; t++) {
		Arena a = {0};
		Plan own;
		const Plan *p = ref;
		Exec e;
		RunState rs;
		bool ok = t == 0 || compile_plan(c, c->o->start, &own, &a, false);
		if (t == 1)
			p = &own;
		if (ok && exec_init(&e, p, 1, c->err, sizeof c->err)) {
			ok = weights_load(&e, c->o->weights, false, &rs, c->err, sizeof c->err);
			if (ok) {
				if (!dir[0] && !mkdtemp(strcpy(dir, "/tmp/nnc-tune-XXXXXX"))) {
					snprintf(c->err, sizeof c->err, "cannot create a temporary folder: %s", strerror(errno));
					ok = false;
				}
				snprintf(out, outlen, "%s/weights.safetensors", dir);
				ok = ok && weights_export(&e, out, c->err, sizeof c->err);
			}
			exec_free(&e);
		} else {
			ok = false;
		}
		arena_free(&a);
		if (ok)
			return true;
		if (!first[0])
			snprintf(first, sizeof first, "%s", c->err);
	}
	fprintf(stderr, "%s\n", first);
	return false;
}

int
tune_precision(const TuneOptions *o)
{
	Ctx c = {.o = o, .recipe = *o->recipe, .weights = o->weights};
	c.fp32 = (Precision){.name = "fp32", .act = DT_F32, .param = DT_F32, .state = DT_F32, .acc = DT_F32};
	const Precision *s = o->start;
	if (s->act != DT_F16 || s->param != DT_F16 || s->state != DT_F16) {
		fprintf(stderr, "nnc tune-precision: the search starts from pure fp16 (activations, params and state f16); "
		                "%s is not\n", s->name);
		return NNC_EUSAGE;
	}
	for (int i = 0; i < s->nover; i++)
		if (s->over[i].layer) {
			fprintf(stderr, "nnc tune-precision: %s has a layers: section; the search writes that section itself\n",
				s->name);
			return NNC_EUSAGE;
		}
	bool has;
	if (!weights_normalization(o->weights, &c.recipe, &has, c.err, sizeof c.err)) {
		fprintf(stderr, "%s\n", c.err);
		return NNC_EUSER;
	}
	int rc = NNC_EUSER;
	unsigned char *st = NULL;
	char tmpdir[64] = "", tmpw[128] = "";
	TuneOptions to = *o; /* with the weights as .safetensors */
	CifarOpenOptions oo = {.max_train = o->train_limit, .max_test = 1, .records_per_file = o->records};
	if (cifar_open(&c.data, o->data, &oo, c.err, sizeof c.err) != 0) {
		fprintf(stderr, "%s\n", c.err);
		return NNC_EUSER;
	}
	c.slice = (TolSlice){CIFAR_TRAIN, c.data.n[CIFAR_TRAIN] - o->holdout, o->holdout};
	if (!tol_slice_fits(&c.data, c.slice, c.err, sizeof c.err)) {
		fprintf(stderr, "nnc tune-precision: --holdout %d: %s\n", o->holdout, c.err);
		rc = NNC_EUSAGE;
		goto out;
	}
	/* Before any plan runs: a percentage the held-out slice cannot show. */
	for (int k = 0; k < NBUDGET; k++) {
		double floor = tune_rate_bound(0, (long)c.slice.count, o->confidence) * 100;
		if (o->budget.limit[k] >= 0 && o->budget.pct[k] && o->confidence > 0 && floor > o->budget.limit[k]) {
			fprintf(stderr,
				"nnc tune-precision: %lld held-out images cannot show %s <= %g%% at %g%% confidence: even none seen "
				"bounds the rate at %.3g%%; use more images (--holdout) or --confidence 0 (the count seen)\n",
				(long long)c.slice.count, budget_names[k], o->budget.limit[k], 100 * o->confidence, floor);
			rc = NNC_EUSAGE;
			goto out;
		}
	}
	/* The f32 plan: the reference, and the layers. */
	{
		Arena ca = {0};
		Diag d;
		diag_init(&d, stderr);
		PipelineOpts po = *o->po;
		po.precision = &c.fp32;
		po.dump_ir = po.dump_dir = NULL;
		Module m;
		int prc = pipeline_run(&ca, &d, o->so, &po, &c.recipe, &m);
		bool ok = prc == NNC_OK && d.nerrors == 0 && m.eval && collect_units(&c, m.network ? m.network : m.eval);
		arena_free(&ca);
		if (!ok) {
			if (prc == NNC_OK && !m.eval)
				fprintf(stderr, "%s: error: the model has no loss output, so no evaluation graph to tune\n", o->model);
			rc = prc != NNC_OK ? prc : NNC_EUSER;
			goto out;
		}
	}
	if (c.nu == 0) {
		fprintf(stderr, "%s: error: no named layers to tune\n", o->model);
		goto out;
	}
	/* The f32 plan: the reference, compiled once (its messages shown as they come). */
	Arena refa = {0};
	Plan ref;
	if (!compile_plan(&c, &c.fp32, &ref, &refa, true)) {
		fprintf(stderr, "%s\n", c.err);
		arena_free(&refa);
		goto out;
	}
	c.k = (int)ref.values[ref.eval.logits].dim[1];
	if (!file_has_suffix(o->weights, ".safetensors")) {
		if (!portable_weights(&c, &ref, tmpdir, tmpw, sizeof tmpw)) {
			arena_free(&refa);
			goto out;
		}
		to.weights = tmpw;
		c.o = &to;
	}
	size_t nk = (size_t)c.slice.count * (size_t)c.k;
	c.ref = malloc(nk * sizeof *c.ref);
	c.prob = malloc(nk * sizeof *c.prob);
	c.labels = malloc((size_t)c.slice.count * sizeof *c.labels);
	st = malloc((size_t)c.nu + 1);
	bool ok = c.ref && c.prob && c.labels && st;
	if (!ok)
		fprintf(stderr, "nnc: out of memory\n");
	else if (!(ok = eval_plan(&c, &ref, c.ref, c.labels, true)))
		fprintf(stderr, "%s\n", c.err);
	arena_free(&refa);
	if (!ok)
		goto out;
	TolSummary self;
	tol_summary(c.ref, c.ref, c.labels, c.slice.count, c.k, &self);
	c.ref_correct = self.correct_a;
	char bt[512], mt[512];
	budget_text(&c, bt, sizeof bt);
	printf("tune-precision %s: %d layers, weights %s, %lld held-out images (training images %lld-%lld)\n", o->model,
		c.nu, o->weights, (long long)c.slice.count, (long long)c.slice.first,
		(long long)(c.slice.first + c.slice.count - 1));
	printf("  budget: %s\n  f32 plan: accuracy %.2f%%\n", bt, 100.0 * c.ref_correct / c.slice.count);
	rc = search(&c, st);
	if (rc != NNC_OK)
		goto out;
	Metrics m;
	Precision *pol = malloc(sizeof *pol);
	bool measured = pol && measure(&c, true, st, &m); /* says why itself */
	if (!measured || !make_policy(&c, true, st, pol)) {
		if (!pol || measured)
			fprintf(stderr, "%s\n", !pol ? "nnc: out of memory" : c.err);
		free(pol);
		rc = NNC_EUSER;
		goto out;
	}
	int nhigh = 0;
	for (int i = 0; i < c.nu; i++)
		nhigh += c.u[i].high = st[i] == HIGH;
	Share sh = share_of(&c, st);
	metrics_text(&c, &m, mt, sizeof mt);
	printf("  result: %d of %d layers kept in f32", nhigh, c.nu);
	for (int i = 0, n = 0; i < c.nu; i++)
		if (st[i] == HIGH)
			printf("%s%s", n++ ? ", " : " (", shown(&c.u[i]));
	printf("%s; fp16 share of the work %.1f%% (MACs %.1f%%, activations %.1f%%)\n", nhigh ? ")" : "", 100 * sh.work,
		100 * sh.macs, 100 * sh.elems);
	printf("    held out: %s\n", mt);
	rc = write_policy(&c, pol, &m, &sh, nhigh) && check_written(&c, pol) && (!o->report || write_report(&c))
	         ? NNC_OK
	         : NNC_EUSER;
	free(pol);
	if (rc == NNC_OK)
		printf("  wrote %s (nnc compile --precision %s)%s%s; %d plans evaluated\n", o->output, o->output,
			o->report ? ", the per-layer report " : "", o->report ? o->report : "", c.runs);
out:
	for (int i = 0; i < c.ncache; i++)
		free(c.cache[i].key);
	free(c.cache);
	for (int i = 0; i < c.nu; i++)
		free(c.u[i].scope);
	free(c.u);
	free(c.bylen);
	free(c.ref);
	free(c.prob);
	free(c.labels);
	free(st);
	cifar_close(&c.data);
	if (tmpdir[0]) {
		remove(tmpw);
		rmdir(tmpdir);
	}
	return rc;
}
