/* Semantic analysis (see sema.h): a tree-walking evaluator over the AST that emits IR.
 *
 * Compile-time values (SVal) are ints, floats, bools, strings, lists and tensors (IR Values);
 * V_ERR marks a value whose computation already reported an error, and it propagates silently
 * so one mistake yields one message. Variables live in a Frame per model or block expansion
 * (blocks see only their parameters and the global constants: lexical scoping). Every loop
 * iteration and every list element created costs one unit of a global work budget, and IR
 * growth is capped, so evaluation always terminates quickly. */
#include "compiler/sema.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compiler/check.h"
#include "grammar/parse.h"
#include "parser.h"
#include "core/geometry.h"
#include "core/strmap.h"

enum {
	MAX_CALL_DEPTH = 64,
	MAX_WORK = 5000000,   /* loop iterations + list elements per compilation */
	MAX_INSTS = 1000000,  /* IR instructions per graph */
	MAX_IMPORT_DEPTH = 64,
};

typedef enum { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_LIST, V_TENSOR, V_ERR } VKind;

typedef struct SVal SVal;
struct SVal {
	VKind k;
	int64_t i;
	double f;
	const char *s;
	SVal *items;
	int n;
	Value *t;
};

typedef struct {
	StrMap vars; /* name -> SVal* */
} Frame;

typedef struct CallSite CallSite;
struct CallSite {
	const Node *def;
	Loc loc;
	CallSite *up;
};

typedef struct {
	const char *real;
	Loc from;
} ImportEntry;

typedef struct {
	Arena *a;
	Diag *d;
	const SemaOpts *o;
	Graph *g;          /* NULL while evaluating top-level constants */
	Frame globals;
	Frame *frame;
	StrMap blocks;     /* name -> const Node * (N_BLOCK) */
	StrMap names;      /* claimed hierarchical names -> Loc * */
	StrMap autonames;  /* "prefix|op" -> count, for unlabelled ops with parameters */
	StrMap loaded;     /* real paths of loaded files */
	ImportEntry imports[MAX_IMPORT_DEPTH];
	int nimports;
	const Node **models;
	size_t nmodels, capmodels;
	CallSite *calls;
	int depth;
	const char *prefix;
	long work;
	int ninsts;
	bool returned;
	SVal ret;
} Sema;

static const SVal verr = {.k = V_ERR};
static const SVal vnone = {.k = V_NONE};

static SVal eval(Sema *S, const Node *n);
static void exec_list(Sema *S, const Node *stmts);
static void note_uneven_strides(Sema *S, const Inst *in);

/* Reports an error and, when inside block expansions, where each enclosing block was called. */
static void
serr(Sema *S, Loc loc, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag_error(S->d, loc, "%s", msg);
	int k = 0;
	for (CallSite *c = S->calls; c && k < 4; c = c->up, k++)
		diag_note(S->d, c->loc, "in block '%s' called from here", c->def->str);
}

static const char *
vkind_name(VKind k)
{
	static const char *names[] = {"none", "int", "float", "bool", "string", "list", "tensor", "error"};
	return names[k];
}

/* Describes a value for messages: "int 3", "tensor f32[128,16,32,32]", "list of 4". */
static const char *
describe(Sema *S, SVal v)
{
	char b[96];
	switch (v.k) {
	case V_INT: return arena_printf(S->a, "int %lld", (long long)v.i);
	case V_FLOAT: return arena_printf(S->a, "float %g", v.f);
	case V_BOOL: return v.i ? "bool true" : "bool false";
	case V_STR: return arena_printf(S->a, "string \"%.40s\"", v.s);
	case V_LIST: return arena_printf(S->a, "list of %d", v.n);
	case V_TENSOR: return arena_printf(S->a, "tensor %s", type_str(&v.t->type, b, sizeof b));
	default: return vkind_name(v.k);
	}
}

static bool
spend(Sema *S, long units, Loc loc)
{
	S->work += units;
	if (S->work > MAX_WORK) {
		if (S->work - units <= MAX_WORK)
			serr(S, loc, "compile-time evaluation too large (over %d loop iterations and list elements)", MAX_WORK);
		return false;
	}
	return true;
}

/* --- names and suggestions ---------------------------------------------------------------- */

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

typedef struct {
	const char *best;
	size_t dist;
	const char *want;
} Suggest;

/* WANT is CAND with a word joined by '_' before or after it: PyTorch's and Keras's spellings of
 * nnc's names (kernel_size for kernel, out_channels for channels). */
static bool
word_added(const char *want, const char *cand)
{
	size_t w = strlen(want), n = strlen(cand);
	return n > 0 && w > n + 1 &&
	       ((!strncmp(want, cand, n) && want[n] == '_') || (!strcmp(want + w - n, cand) && want[w - n - 1] == '_'));
}

static void
consider(Suggest *s, const char *cand)
{
	size_t d = edit_distance(s->want, cand);
	size_t limit = strlen(s->want) / 3 + 1;
	if ((d <= limit || word_added(s->want, cand)) && d < s->dist) {
		s->dist = d;
		s->best = cand;
	}
}

static void
consider_map(Suggest *s, const StrMap *m)
{
	for (size_t i = 0; i < m->n; i++)
		consider(s, m->keys[i]);
}

static const char *
hint(Sema *S, const Suggest *s)
{
	return s->best ? arena_printf(S->a, "; did you mean '%s'?", s->best) : "";
}

/* --- variables ---------------------------------------------------------------------------- */

static void
frame_init(Sema *S, Frame *f)
{
	strmap_init(&f->vars, S->a);
}

static void
bind(Sema *S, Frame *f, const char *name, SVal v)
{
	SVal *slot = strmap_get(&f->vars, name);
	if (!slot) {
		slot = arena_alloc(S->a, sizeof *slot);
		strmap_put(&f->vars, name, slot);
	}
	*slot = v;
}

static SVal *
lookup(Sema *S, const char *name)
{
	SVal *v = S->frame ? strmap_get(&S->frame->vars, name) : NULL;
	return v ? v : strmap_get(&S->globals.vars, name);
}

/* --- builtins ----------------------------------------------------------------------------- */

typedef SVal BuiltinFn(Sema *S, const Node *call, SVal *args, int n);

static bool
is_num(SVal v)
{
	return v.k == V_INT || v.k == V_FLOAT;
}

static double
num(SVal v)
{
	return v.k == V_INT ? (double)v.i : v.f;
}

static SVal
mkint(int64_t i)
{
	return (SVal){.k = V_INT, .i = i};
}

static SVal
mkfloat(double f)
{
	return (SVal){.k = V_FLOAT, .f = f};
}

static SVal
mkbool(bool b)
{
	return (SVal){.k = V_BOOL, .i = b};
}

static SVal
b_range(Sema *S, const Node *call, SVal *a, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i].k != V_INT) {
			serr(S, call->loc, "range() takes ints, got %s", describe(S, a[i]));
			return verr;
		}
	int64_t lo = n > 1 ? a[0].i : 0, hi = n > 1 ? a[1].i : a[0].i, step = n > 2 ? a[2].i : 1;
	if (step == 0) {
		serr(S, call->loc, "range() step must not be zero");
		return verr;
	}
	double count = step > 0 ? ((double)hi - (double)lo) / (double)step : ((double)lo - (double)hi) / (double)-step;
	if (count > MAX_WORK) { /* before the conversion to long, which overflows past 2^63 */
		serr(S, call->loc, "range() of %.0f elements is too large (limit %d)", count, MAX_WORK);
		return verr;
	}
	long len = count > 0 ? (long)(count + 0.999999) : 0;
	if (!spend(S, len, call->loc))
		return verr;
	SVal r = {.k = V_LIST, .n = (int)len};
	r.items = arena_alloc(S->a, (size_t)(len ? len : 1) * sizeof *r.items);
	int64_t v = lo;
	for (long i = 0; i < len; i++) {
		r.items[i] = mkint(v);
		if (i + 1 < len && __builtin_add_overflow(v, step, &v)) {
			serr(S, call->loc, "range() overflows int64");
			return verr;
		}
	}
	return r;
}

static SVal
b_len(Sema *S, const Node *call, SVal *a, int n)
{
	(void)n;
	if (a[0].k == V_LIST)
		return mkint(a[0].n);
	if (a[0].k == V_STR)
		return mkint((int64_t)strlen(a[0].s));
	serr(S, call->loc, "len() takes a list or string, got %s", describe(S, a[0]));
	return verr;
}

static SVal
b_shape(Sema *S, const Node *call, SVal *a, int n)
{
	(void)n;
	if (a[0].k != V_TENSOR) {
		serr(S, call->loc, "%s() takes a tensor, got %s", call->str, describe(S, a[0]));
		return verr;
	}
	const Type *t = &a[0].t->type;
	if (strcmp(call->str, "channels") == 0) {
		if (t->rank < 2) {
			serr(S, call->loc, "channels() needs a tensor with a channel axis, got %s", describe(S, a[0]));
			return verr;
		}
		return mkint(t->dim[1]);
	}
	SVal r = {.k = V_LIST, .n = t->rank > 0 ? t->rank - 1 : 0};
	r.items = arena_alloc(S->a, NNC_MAXRANK * sizeof *r.items);
	for (int i = 1; i < t->rank; i++)
		r.items[i - 1] = mkint(t->dim[i]);
	return r;
}

static SVal
b_minmax(Sema *S, const Node *call, SVal *a, int n)
{
	if (n == 1 && a[0].k == V_LIST) {
		n = a[0].n;
		a = a[0].items;
		if (n == 0) {
			serr(S, call->loc, "%s() of an empty list", call->str);
			return verr;
		}
	}
	bool want_max = strcmp(call->str, "max") == 0;
	SVal best = a[0];
	for (int i = 0; i < n; i++) {
		if (!is_num(a[i])) {
			serr(S, call->loc, "%s() takes numbers, got %s", call->str, describe(S, a[i]));
			return verr;
		}
		if (want_max ? num(a[i]) > num(best) : num(a[i]) < num(best))
			best = a[i];
	}
	return best;
}

static SVal
b_conv(Sema *S, const Node *call, SVal *a, int n)
{
	(void)n;
	if (!is_num(a[0]) && a[0].k != V_BOOL) {
		serr(S, call->loc, "%s() takes a number, got %s", call->str, describe(S, a[0]));
		return verr;
	}
	if (call->str[0] == 'f')
		return mkfloat(num(a[0]));
	double f = a[0].k == V_BOOL ? (double)a[0].i : num(a[0]);
	if (!(f > -9.2e18 && f < 9.2e18)) {
		serr(S, call->loc, "int() of %g is out of range", f);
		return verr;
	}
	return mkint((int64_t)f);
}

/* enumerate(list): [[0, item0], [1, item1], ...], for `for i, x in enumerate(xs)`. */
static SVal
b_enumerate(Sema *S, const Node *call, SVal *a, int n)
{
	(void)n;
	if (a[0].k != V_LIST) {
		serr(S, call->loc, "enumerate() takes a list, got %s", describe(S, a[0]));
		return verr;
	}
	if (!spend(S, 3L * a[0].n, call->loc))
		return verr;
	SVal r = {.k = V_LIST, .n = a[0].n};
	r.items = arena_alloc(S->a, (size_t)(r.n ? r.n : 1) * sizeof *r.items);
	for (int i = 0; i < r.n; i++) {
		SVal pair = {.k = V_LIST, .n = 2};
		pair.items = arena_alloc(S->a, 2 * sizeof *pair.items);
		pair.items[0] = mkint(i);
		pair.items[1] = a[0].items[i];
		r.items[i] = pair;
	}
	return r;
}

static const struct {
	const char *name;
	int min, max;
	BuiltinFn *fn;
} builtins[] = {
	{"range", 1, 3, b_range},
	{"len", 1, 1, b_len},
	{"enumerate", 1, 1, b_enumerate},
	{"channels", 1, 1, b_shape},
	{"shape", 1, 1, b_shape},
	{"min", 1, 64, b_minmax},
	{"max", 1, 64, b_minmax},
	{"int", 1, 1, b_conv},
	{"float", 1, 1, b_conv},
};

/* --- hierarchical names ------------------------------------------------------------------- */

static const char *
qualify(Sema *S, const char *label)
{
	return S->prefix[0] ? arena_printf(S->a, "%s.%s", S->prefix, label) : label;
}

/* Registers FULL as used; on a clash reports both places. */
static bool
claim(Sema *S, const char *full, Loc loc)
{
	Loc *prev = strmap_get(&S->names, full);
	if (prev) {
		serr(S, loc, "name '%s' is already used; give this call a unique name with `as`", full);
		diag_note(S->d, *prev, "'%s' was first used here", full);
		return false;
	}
	Loc *l = arena_alloc(S->a, sizeof *l);
	*l = loc;
	strmap_put(&S->names, full, l);
	return true;
}

static bool
valid_label(const char *s)
{
	if (!*s || *s == '.')
		return false;
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		          (*p == '.' && p[1] && p[1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

/* label: NAME | STRING where the string may interpolate variables: "block{i}". */
static const char *
eval_label(Sema *S, const Node *lab)
{
	if (lab->kind == N_NAME)
		return lab->str;
	size_t cap = 64, n = 0;
	char *out = arena_alloc(S->a, cap);
	for (const char *p = lab->str; *p;) {
		const char *piece;
		size_t plen;
		if (*p == '{') {
			const char *end = strchr(p, '}');
			if (!end) {
				serr(S, lab->loc, "unterminated '{' in name \"%s\"", lab->str);
				return NULL;
			}
			char *var = arena_strndup(S->a, p + 1, (size_t)(end - p - 1));
			SVal *v = lookup(S, var);
			if (!v) {
				bool ident = *var && !(*var >= '0' && *var <= '9');
				for (const char *q = var; *q; q++)
					ident &= (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_';
				if (ident)
					serr(S, lab->loc, "unknown name '%s' in name \"%s\"", var, lab->str);
				else
					serr(S, lab->loc, "'{%s}' in name \"%s\": only a variable can be interpolated; compute it first, "
						"e.g. k = ...", var, lab->str);
				return NULL;
			}
			if (v->k == V_INT)
				piece = arena_printf(S->a, "%lld", (long long)v->i);
			else if (v->k == V_STR)
				piece = v->s;
			else {
				if (v->k != V_ERR)
					serr(S, lab->loc, "'{%s}' in a name must be an int or string, got %s", var, describe(S, *v));
				return NULL;
			}
			plen = strlen(piece);
			p = end + 1;
		} else {
			piece = p++;
			plen = 1;
		}
		while (n + plen + 1 > cap) {
			char *bigger = arena_alloc(S->a, cap * 2);
			memcpy(bigger, out, n);
			out = bigger;
			cap *= 2;
		}
		memcpy(out + n, piece, plen);
		n += plen;
	}
	out[n] = 0;
	if (!valid_label(out)) {
		serr(S, lab->loc, "invalid name \"%s\" (use letters, digits, '_' and single '.' separators)", out);
		return NULL;
	}
	return out;
}

/* --- op calls ----------------------------------------------------------------------------- */

static bool
set_attr(Sema *S, const Node *call, Op op, int idx, AttrVal *a, SVal v, Loc loc)
{
	const AttrSpec *sp = &nnc_ops[op].attrs[idx];
	bool ok = false;
	switch (sp->kind) {
	case AK_INT:
		ok = v.k == V_INT;
		a->i[0] = a->i[1] = v.i;
		a->f = (double)v.i;
		break;
	case AK_INT2:
		if (v.k == V_INT) {
			ok = true;
			a->i[0] = a->i[1] = v.i;
		} else if (v.k == V_LIST && v.n == 2 && v.items[0].k == V_INT && v.items[1].k == V_INT) {
			ok = true;
			a->i[0] = v.items[0].i;
			a->i[1] = v.items[1].i;
		}
		break;
	case AK_FLOAT:
		ok = is_num(v);
		a->f = ok ? num(v) : 0;
		break;
	case AK_BOOL:
		ok = v.k == V_BOOL;
		a->i[0] = a->i[1] = v.i;
		break;
	case AK_STR:
		ok = v.k == V_STR;
		a->s = v.s;
		break;
	case AK_DTYPE:
		ok = v.k == V_STR && (!strcmp(v.s, "f32") || !strcmp(v.s, "f16"));
		a->i[0] = a->i[1] = ok && !strcmp(v.s, "f16") ? DT_F16 : DT_F32;
		break;
	}
	if (!ok && v.k != V_ERR)
		serr(S, loc, "%s: argument '%s' must be %s, got %s", call->str, sp->name, nnc_attrkind_name(sp->kind),
			describe(S, v));
	a->set = ok;
	return ok;
}

static SVal
emit_op(Sema *S, const Node *call, Op op, const char *lhs)
{
	const OpInfo *oi = &nnc_ops[op];
	Value *ins[NNC_MAXARGS];
	int nin = 0, npos = 0;
	AttrVal attrs[NNC_MAXATTR] = {0};
	bool bad = false, in_attrs = false;

	for (const Node *arg = call->list; arg; arg = arg->next) {
		SVal v = eval(S, arg->kid[0]);
		if (v.k == V_ERR) {
			bad = true;
			continue;
		}
		if (arg->str) {
			int idx = nnc_attr_index(op, arg->str);
			if (idx < 0) {
				Suggest sg = {.want = arg->str, .dist = 99};
				for (int i = 0; i < oi->nattrs; i++)
					consider(&sg, oi->attrs[i].name);
				serr(S, arg->loc, "%s has no argument '%s'%s", call->str, arg->str, hint(S, &sg));
				bad = true;
			} else if (attrs[idx].set) {
				serr(S, arg->loc, "%s: argument '%s' given twice", call->str, arg->str);
				bad = true;
			} else if (!set_attr(S, call, op, idx, &attrs[idx], v, arg->loc)) {
				bad = true;
			}
			continue;
		}
		bool tensors = v.k == V_TENSOR;
		if (v.k == V_LIST && oi->max_in < 0 && v.n > 0) {
			tensors = true;
			for (int i = 0; i < v.n; i++)
				tensors &= v.items[i].k == V_TENSOR;
		}
		if (tensors && !in_attrs) {
			int k = v.k == V_TENSOR ? 1 : v.n;
			if (nin + k > NNC_MAXARGS - NNC_MAXPARAMS) {
				serr(S, arg->loc, "%s: too many tensor inputs (limit %d)", call->str, NNC_MAXARGS - NNC_MAXPARAMS);
				return verr;
			}
			for (int i = 0; i < k; i++)
				ins[nin++] = v.k == V_TENSOR ? v.t : v.items[i].t;
			continue;
		}
		if (tensors) {
			serr(S, arg->loc, "%s: tensor arguments must come before the other arguments", call->str);
			bad = true;
			continue;
		}
		in_attrs = true;
		if (npos >= oi->nattrs) {
			serr(S, arg->loc, "%s takes at most %d positional argument%s after its tensor input%s", call->str, oi->nattrs,
				oi->nattrs == 1 ? "" : "s", oi->max_in == 1 ? "" : "s");
			bad = true;
			continue;
		}
		if (attrs[npos].set) {
			serr(S, arg->loc, "%s: argument '%s' given twice", call->str, oi->attrs[npos].name);
			bad = true;
		} else if (!set_attr(S, call, op, npos, &attrs[npos], v, arg->loc)) {
			bad = true;
		}
		npos++;
	}
	if (bad)
		return verr;
	/* concat of one tensor is that tensor (a list built in a loop may hold just one) */
	if (op == OP_concat && nin == 1)
		return (SVal){.k = V_TENSOR, .t = ins[0]};
	if (nin < oi->min_in || (oi->max_in >= 0 && nin > oi->max_in)) {
		const char *want = oi->max_in < 0 ? arena_printf(S->a, "at least %d", oi->min_in)
		                 : oi->min_in == oi->max_in ? arena_printf(S->a, "%d", oi->min_in)
		                                            : arena_printf(S->a, "%d to %d", oi->min_in, oi->max_in);
		serr(S, call->loc, "%s expects %s tensor input%s, got %d", call->str, want,
			oi->min_in == 1 && oi->max_in == 1 ? "" : "s", nin);
		return verr;
	}
	for (int i = 0; i < oi->nattrs; i++)
		if (oi->attrs[i].required && !attrs[i].set) {
			serr(S, call->loc, "%s: missing required argument '%s' (%s)", call->str, oi->attrs[i].name,
				nnc_attrkind_name(oi->attrs[i].kind));
			bad = true;
		}
	if (bad)
		return verr;
	if (++S->ninsts > MAX_INSTS) {
		if (S->ninsts == MAX_INSTS + 1)
			serr(S, call->loc, "model too large (over %d ops)", MAX_INSTS);
		return verr;
	}

	/* Name: `as` label, else the assignment target, else "<op>", "<op>_1"... within the scope. */
	const char *label = NULL;
	bool explicit_label = call->kid[0] != NULL;
	if (explicit_label && !(label = eval_label(S, call->kid[0])))
		return verr;

	Inst *in = inst_new(S->g, op, call->loc, nin, (Type){0});
	in->args = arena_alloc(S->a, (size_t)(nin + NNC_MAXPARAMS) * sizeof *in->args);
	memcpy(in->args, ins, (size_t)nin * sizeof *ins);
	memcpy(in->attr, attrs, sizeof attrs);
	inst_apply_defaults(in);
	InferResult r;
	if (!infer_inst(in, S->g->batch, &r)) {
		serr(S, call->loc, "%s", r.err);
		note_uneven_strides(S, in);
		inst_remove(S->g, in);
		return verr;
	}
	in->res->type = r.out;
	in->macs = r.macs;
	if (!label && r.nparams > 0) {
		if (lhs) {
			label = lhs;
		} else {
			const char *key = arena_printf(S->a, "%s|%s", S->prefix, oi->name);
			intptr_t k = (intptr_t)strmap_get(&S->autonames, key);
			strmap_put(&S->autonames, key, (void *)(k + 1));
			label = k ? arena_printf(S->a, "%s_%ld", oi->name, (long)k) : oi->name;
		}
	}
	if (label) {
		in->scope = qualify(S, label);
		if ((explicit_label || r.nparams > 0) && !claim(S, in->scope, call->kid[0] ? call->kid[0]->loc : call->loc)) {
			inst_remove(S->g, in);
			return verr;
		}
	} else {
		in->scope = S->prefix;
	}
	for (int i = 0; i < r.nparams; i++) {
		const ParamDecl *pd = &r.params[i];
		Inst *p = inst_new(S->g, OP_param, call->loc, 0, pd->type);
		p->scope = arena_printf(S->a, "%s.%s", in->scope, pd->suffix);
		inst_set_str(p, "name", p->scope);
		inst_set_str(p, "kind", pd->kind);
		inst_set_str(p, "init", pd->init);
		inst_set_bool(p, "trainable", pd->trainable);
		in->args[in->nargs++] = p->res;
	}
	return (SVal){.k = V_TENSOR, .t = in->res};
}

/* After an op's operands disagree in height or width (an add, a concat): a note at the nearest
 * window op (convolution, pooling) on each operand's path whose stride does not divide its
 * input, the usual cause of one branch ending a row short or long (7 rows at stride 2: a 3x3
 * convolution with padding 1 gives 4, a 2x2 pooling 3). */
static void
note_uneven_strides(Sema *S, const Inst *in)
{
	bool differ = false;
	for (int i = 1; i < in->nin; i++) {
		const Type *a = &in->args[0]->type, *b = &in->args[i]->type;
		differ |= a->rank == 4 && b->rank == 4 && (a->dim[2] != b->dim[2] || a->dim[3] != b->dim[3]);
	}
	const Inst *said[NNC_MAXARGS];
	int nsaid = 0;
	for (int i = 0; differ && i < in->nin; i++) {
		const Value *v = in->args[i];
		for (int depth = 0; v && v->def && v->def->nin > 0 && depth < 1000; depth++, v = v->def->args[0]) {
			const Inst *d = v->def;
			const Type *x = &d->args[0]->type;
			int ks = nnc_attr_index(d->op, "stride"), kk = nnc_attr_index(d->op, "kernel");
			if (ks < 0 || kk < 0 || x->rank != 4)
				continue;
			int64_t sh = nnc_pool_stride(d->attr[ks].i, d->attr[kk].i, 0), sw = nnc_pool_stride(d->attr[ks].i, d->attr[kk].i, 1);
			if (sh <= 0 || sw <= 0 || (x->dim[2] % sh == 0 && x->dim[3] % sw == 0))
				continue;
			bool again = false;
			for (int j = 0; j < nsaid; j++)
				again |= said[j] == d;
			if (!again && nsaid < NNC_MAXARGS) {
				said[nsaid++] = d;
				char stride[64];
				snprintf(stride, sizeof stride, sh == sw ? "%lld" : "[%lld, %lld]", (long long)sh, (long long)sw);
				const char *name = nnc_ops[d->op].flags & OPF_PARAMS ? d->scope : NULL;
				diag_note(S->d, d->loc, "%s%s%s%s: its input's %lldx%lld is not a multiple of its stride %s, so its output is %lldx%lld",
					nnc_ops[d->op].name, name ? " '" : "", name ? name : "", name ? "'" : "", (long long)x->dim[2],
					(long long)x->dim[3], stride, (long long)d->res->type.dim[2], (long long)d->res->type.dim[3]);
			}
			break;
		}
	}
}

/* Emits the op behind an operator: `a + b` (add) or `x * c`, `x / c` (mul by a constant). */
static SVal
emit_operator(Sema *S, Op op, Loc loc, Value *a, Value *b, double scale)
{
	Inst *in = inst_new(S->g, op, loc, b ? 2 : 1, (Type){0});
	in->args[0] = a;
	if (b)
		in->args[1] = b;
	if (op == OP_mul)
		in->attr[nnc_attr_index(OP_mul, "scale")] = (AttrVal){.set = true, .f = scale};
	inst_apply_defaults(in);
	in->scope = S->prefix;
	InferResult r;
	if (!infer_inst(in, S->g->batch, &r)) {
		serr(S, loc, "%s", r.err);
		note_uneven_strides(S, in);
		inst_remove(S->g, in);
		return verr;
	}
	in->res->type = r.out;
	return (SVal){.k = V_TENSOR, .t = in->res};
}

/* --- blocks ------------------------------------------------------------------------------- */

static SVal
expand_block(Sema *S, const Node *call, const Node *blk)
{
	for (CallSite *c = S->calls; c; c = c->up)
		if (c->def == blk) {
			serr(S, call->loc, "block '%s' calls itself (recursive blocks are not allowed; use a loop)", blk->str);
			diag_note(S->d, blk->loc, "'%s' is defined here", blk->str);
			return verr;
		}
	if (S->depth >= MAX_CALL_DEPTH) {
		serr(S, call->loc, "blocks nested too deeply (more than %d)", MAX_CALL_DEPTH);
		return verr;
	}
	int nparams = 0;
	const Node *params[64];
	for (const Node *p = blk->kid[0]; p && nparams < 64; p = p->next)
		params[nparams++] = p;
	SVal vals[64];
	bool given[64] = {0}, bad = false;
	int pos = 0;
	for (const Node *arg = call->list; arg; arg = arg->next) {
		SVal v = eval(S, arg->kid[0]);
		if (v.k == V_ERR)
			bad = true;
		int idx = -1;
		if (arg->str) {
			for (int i = 0; i < nparams; i++)
				if (strcmp(params[i]->str, arg->str) == 0)
					idx = i;
			if (idx < 0) {
				Suggest sg = {.want = arg->str, .dist = 99};
				for (int i = 0; i < nparams; i++)
					consider(&sg, params[i]->str);
				serr(S, arg->loc, "block '%s' has no parameter '%s'%s", blk->str, arg->str, hint(S, &sg));
				bad = true;
				continue;
			}
		} else {
			idx = pos++;
			if (idx >= nparams) {
				int total = 0;
				for (const Node *a = call->list; a; a = a->next)
					total += a->str == NULL;
				serr(S, arg->loc, "block '%s' takes %d argument%s, got %d", blk->str, nparams, nparams == 1 ? "" : "s",
					total);
				diag_note(S->d, blk->loc, "'%s' is defined here", blk->str);
				return verr;
			}
		}
		if (given[idx]) {
			serr(S, arg->loc, "block '%s': argument '%s' given twice", blk->str, params[idx]->str);
			bad = true;
		}
		given[idx] = true;
		vals[idx] = v;
	}
	if (bad)
		return verr;
	/* The label interpolates the caller's variables, and its errors are the caller's. */
	const char *label = NULL;
	if (call->kid[0] && !(label = eval_label(S, call->kid[0])))
		return verr;

	Frame f, *saved_frame = S->frame;
	frame_init(S, &f);
	const char *saved_prefix = S->prefix;
	CallSite site = {blk, call->loc, S->calls};
	S->calls = &site;
	S->depth++;
	SVal result = verr;
	/* Defaults are evaluated in the new frame, so they may use earlier parameters. */
	S->frame = &f;
	for (int i = 0; i < nparams; i++) {
		if (given[i]) {
			bind(S, &f, params[i]->str, vals[i]);
		} else if (params[i]->kid[0]) {
			SVal v = eval(S, params[i]->kid[0]);
			if (v.k == V_ERR)
				bad = true;
			bind(S, &f, params[i]->str, v);
		} else {
			S->calls = site.up; /* the caller is at fault: no "called from here" note */
			serr(S, call->loc, "block '%s': missing argument '%s'", blk->str, params[i]->str);
			diag_note(S->d, blk->loc, "'%s' is defined here", blk->str);
			S->calls = &site;
			bad = true;
		}
	}
	if (!bad && label) {
		if (!claim(S, qualify(S, label), call->kid[0]->loc))
			bad = true;
		else
			S->prefix = qualify(S, label);
	}
	if (!bad) {
		S->returned = false;
		S->ret = vnone;
		exec_list(S, blk->list);
		result = S->returned ? S->ret : vnone;
		S->returned = false;
	}
	S->depth--;
	S->calls = site.up;
	S->prefix = saved_prefix;
	S->frame = saved_frame;
	return result;
}

/* --- expressions -------------------------------------------------------------------------- */

static SVal
eval_call(Sema *S, const Node *n, const char *lhs)
{
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
		if (strcmp(builtins[i].name, n->str) != 0)
			continue;
		SVal args[64];
		int k = 0;
		for (const Node *a = n->list; a; a = a->next) {
			if (a->str) {
				serr(S, a->loc, "%s() takes no keyword arguments", n->str);
				return verr;
			}
			if (k == builtins[i].max) {
				serr(S, a->loc, "%s() takes at most %d argument%s", n->str, builtins[i].max, builtins[i].max == 1 ? "" : "s");
				return verr;
			}
			args[k] = eval(S, a->kid[0]);
			if (args[k++].k == V_ERR)
				return verr;
		}
		if (k < builtins[i].min) {
			serr(S, n->loc, "%s() takes at least %d argument%s, got %d", n->str, builtins[i].min,
				builtins[i].min == 1 ? "" : "s", k);
			return verr;
		}
		if (n->kid[0]) {
			serr(S, n->kid[0]->loc, "%s() is a built-in function and cannot be named with `as`", n->str);
			return verr;
		}
		return builtins[i].fn(S, n, args, k);
	}
	const Node *blk = strmap_get(&S->blocks, n->str);
	Op op = blk ? NOP : nnc_op_lookup(n->str);
	if (!blk && op == NOP) {
		Suggest sg = {.want = n->str, .dist = 99};
		for (int i = 0; i < NOP; i++)
			if (nnc_ops[i].flags & OPF_USER)
				consider(&sg, nnc_ops[i].name);
		consider_map(&sg, &S->blocks);
		for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
			consider(&sg, builtins[i].name);
		serr(S, n->loc, "unknown op or block '%s'%s", n->str, hint(S, &sg));
		return verr;
	}
	if (!S->g) {
		serr(S, n->loc, "'%s' creates tensors and can only be called inside a model or block", n->str);
		return verr;
	}
	return blk ? expand_block(S, n, blk) : emit_op(S, n, op, lhs);
}

static SVal
arith(Sema *S, const Node *n, SVal a, SVal b)
{
	int op = (int)n->ival;
	const char *sym = op == IDIV ? "//" : arena_printf(S->a, "%c", op);
	if (a.k == V_TENSOR || b.k == V_TENSOR) {
		if (op == '+' && a.k == V_TENSOR && b.k == V_TENSOR)
			return emit_operator(S, OP_add, n->loc, a.t, b.t, 0);
		if (op == '*' && (a.k == V_TENSOR) != (b.k == V_TENSOR) && (is_num(a) || is_num(b)))
			return emit_operator(S, OP_mul, n->loc, a.k == V_TENSOR ? a.t : b.t, NULL, num(a.k == V_TENSOR ? b : a));
		if (op == '/' && a.k == V_TENSOR && is_num(b)) {
			if (num(b) == 0) {
				serr(S, n->loc, "division of a tensor by zero");
				return verr;
			}
			return emit_operator(S, OP_mul, n->loc, a.t, NULL, 1.0 / num(b));
		}
		serr(S, n->loc, "'%s' is not defined for %s and %s (tensors support t + t, t * c and t / c)", sym,
			describe(S, a), describe(S, b));
		return verr;
	}
	if (op == '+' && a.k == V_LIST && b.k == V_LIST) { /* list concatenation: feats + [h] */
		if (!spend(S, (long)a.n + b.n, n->loc)) /* each element copied counts, as a list literal's */
			return verr;
		SVal r = {.k = V_LIST, .n = a.n + b.n};
		r.items = arena_alloc(S->a, (size_t)(r.n ? r.n : 1) * sizeof *r.items);
		for (int i = 0; i < a.n; i++)
			r.items[i] = a.items[i];
		for (int i = 0; i < b.n; i++)
			r.items[a.n + i] = b.items[i];
		return r;
	}
	if (!is_num(a) || !is_num(b)) {
		serr(S, n->loc, "'%s' needs numbers, got %s and %s", sym, describe(S, a), describe(S, b));
		return verr;
	}
	if (a.k == V_INT && b.k == V_INT && op != '/') {
		int64_t r = 0;
		bool ovf = false;
		switch (op) {
		case '+': ovf = __builtin_add_overflow(a.i, b.i, &r); break;
		case '-': ovf = __builtin_sub_overflow(a.i, b.i, &r); break;
		case '*': ovf = __builtin_mul_overflow(a.i, b.i, &r); break;
		case IDIV:
		case '%':
			if (b.i == 0) {
				serr(S, n->loc, "integer division by zero");
				return verr;
			}
			if (a.i == INT64_MIN && b.i == -1) {
				ovf = true;
				break;
			}
			r = op == IDIV ? a.i / b.i : a.i % b.i;
			/* floor semantics, as in Python */
			if (r != 0 && op == '%' && ((r < 0) != (b.i < 0)))
				r += b.i;
			else if (op == IDIV && (a.i % b.i != 0) && ((a.i < 0) != (b.i < 0)))
				r -= 1;
			break;
		}
		if (ovf) {
			serr(S, n->loc, "integer overflow in '%s'", sym);
			return verr;
		}
		return mkint(r);
	}
	double x = num(a), y = num(b);
	switch (op) {
	case '+': return mkfloat(x + y);
	case '-': return mkfloat(x - y);
	case '*': return mkfloat(x * y);
	default:
		if (y == 0) {
			serr(S, n->loc, "division by zero");
			return verr;
		}
		if (op == '/')
			return mkfloat(x / y);
		if (op == IDIV)
			return mkfloat(__builtin_floor(x / y));
		return mkfloat(x - y * __builtin_floor(x / y));
	}
}

static SVal
compare(Sema *S, const Node *n, SVal a, SVal b)
{
	int op = (int)n->ival;
	if (is_num(a) && is_num(b)) {
		double x = num(a), y = num(b);
		switch (op) {
		case EQ: return mkbool(x == y);
		case NE: return mkbool(x != y);
		case '<': return mkbool(x < y);
		case LE: return mkbool(x <= y);
		case '>': return mkbool(x > y);
		default: return mkbool(x >= y);
		}
	}
	if ((op == EQ || op == NE) && a.k == b.k && (a.k == V_BOOL || a.k == V_STR)) {
		bool eq = a.k == V_BOOL ? a.i == b.i : strcmp(a.s, b.s) == 0;
		return mkbool(op == EQ ? eq : !eq);
	}
	/* a number, a string and a boolean are never equal to one another (Python's ==): a list
	 * like VGG's [64, "M", 128] is walked with `if v == "M"` */
	bool plain_a = is_num(a) || a.k == V_STR || a.k == V_BOOL, plain_b = is_num(b) || b.k == V_STR || b.k == V_BOOL;
	if ((op == EQ || op == NE) && plain_a && plain_b && (a.k == V_STR) != (b.k == V_STR))
		return mkbool(op == NE);
	serr(S, n->loc, "cannot compare %s with %s", describe(S, a), describe(S, b));
	return verr;
}

static bool
truth(Sema *S, const Node *n, SVal v, bool *out)
{
	if (v.k == V_BOOL) {
		*out = v.i != 0;
		return true;
	}
	if (v.k != V_ERR)
		serr(S, n->loc, "condition must be a bool, got %s", describe(S, v));
	return false;
}

static SVal
eval_as(Sema *S, const Node *n, const char *lhs)
{
	switch (n->kind) {
	case N_INT: return mkint(n->ival);
	case N_FLOAT: return mkfloat(n->fval);
	case N_BOOL: return mkbool(n->ival != 0);
	case N_STR: return (SVal){.k = V_STR, .s = n->str};
	case N_NAME: {
		SVal *v = lookup(S, n->str);
		if (v)
			return *v;
		Suggest sg = {.want = n->str, .dist = 99};
		if (S->frame)
			consider_map(&sg, &S->frame->vars);
		consider_map(&sg, &S->globals.vars);
		serr(S, n->loc, "unknown name '%s'%s", n->str, hint(S, &sg));
		return verr;
	}
	case N_LIST: {
		int len = 0;
		for (const Node *c = n->list; c; c = c->next)
			len++;
		if (!spend(S, len, n->loc))
			return verr;
		SVal r = {.k = V_LIST, .n = len, .items = arena_alloc(S->a, (size_t)(len ? len : 1) * sizeof(SVal))};
		int i = 0;
		for (const Node *c = n->list; c; c = c->next) {
			r.items[i] = eval(S, c);
			if (r.items[i++].k == V_ERR)
				return verr;
		}
		return r;
	}
	case N_CALL: return eval_call(S, n, lhs);
	case N_BIN: {
		SVal a = eval(S, n->kid[0]);
		if (a.k == V_ERR)
			return verr;
		if (n->ival == AND || n->ival == OR) {
			bool x, y;
			if (!truth(S, n->kid[0], a, &x))
				return verr;
			if ((n->ival == AND && !x) || (n->ival == OR && x))
				return mkbool(x);
			if (!truth(S, n->kid[1], eval(S, n->kid[1]), &y))
				return verr;
			return mkbool(y);
		}
		SVal b = eval(S, n->kid[1]);
		if (b.k == V_ERR)
			return verr;
		switch (n->ival) {
		case EQ: case NE: case '<': case LE: case '>': case GE:
			return compare(S, n, a, b);
		default:
			return arith(S, n, a, b);
		}
	}
	case N_UNARY: {
		SVal a = eval(S, n->kid[0]);
		if (a.k == V_ERR)
			return verr;
		if (n->ival == NOT) {
			bool x;
			return truth(S, n->kid[0], a, &x) ? mkbool(!x) : verr;
		}
		if (a.k == V_INT) {
			if (a.i == INT64_MIN) {
				serr(S, n->loc, "integer overflow in '-'");
				return verr;
			}
			return mkint(-a.i);
		}
		if (a.k == V_FLOAT)
			return mkfloat(-a.f);
		serr(S, n->loc, "unary '-' needs a number, got %s", describe(S, a));
		return verr;
	}
	case N_INDEX: {
		SVal a = eval(S, n->kid[0]), i = eval(S, n->kid[1]);
		if (a.k == V_ERR || i.k == V_ERR)
			return verr;
		if (a.k != V_LIST || i.k != V_INT) {
			serr(S, n->loc, "indexing needs a list and an int, got %s and %s", describe(S, a), describe(S, i));
			return verr;
		}
		int64_t k = i.i < 0 ? i.i + a.n : i.i;
		if (k < 0 || k >= a.n) {
			serr(S, n->loc, "index %lld is out of range for a list of %d", (long long)i.i, a.n);
			return verr;
		}
		return a.items[k];
	}
	case N_COND: {
		bool c;
		if (!truth(S, n->kid[0], eval(S, n->kid[0]), &c))
			return verr;
		return eval_as(S, c ? n->kid[1] : n->kid[2], lhs);
	}
	default:
		return verr;
	}
}

static SVal
eval(Sema *S, const Node *n)
{
	return eval_as(S, n, NULL);
}

/* --- statements --------------------------------------------------------------------------- */

static void
exec_input(Sema *S, const Node *n)
{
	const char *kind = n->kid[0]->str;
	int want = strcmp(kind, "image") == 0 ? 3 : strcmp(kind, "labels") == 0 ? 1 : 0;
	if (!want) {
		serr(S, n->kid[0]->loc, "unknown input kind '%s' (expected image[C, H, W] or labels[CLASSES])", kind);
		return;
	}
	int64_t dims[3];
	int k = 0;
	for (const Node *d = n->list; d; d = d->next, k++) {
		SVal v = eval(S, d);
		if (v.k == V_ERR)
			return;
		if (v.k != V_INT || v.i <= 0 || v.i > (1 << 20)) {
			serr(S, d->loc, "%s dimensions must be positive ints (at most %d), got %s", kind, 1 << 20, describe(S, v));
			return;
		}
		if (k < 3)
			dims[k] = v.i;
	}
	if (k != want) {
		serr(S, n->loc, "%s input '%s' needs %s, got %d dimension%s", kind, n->str,
			want == 3 ? "[channels, height, width]" : "[classes]", k, k == 1 ? "" : "s");
		return;
	}
	for (Inst *in = S->g->first; in; in = in->next)
		if (in->op == OP_input && strcmp(attr_s(in, "name"), n->str) == 0) {
			serr(S, n->loc, "input '%s' is declared twice", n->str);
			diag_note(S->d, in->loc, "first declared here");
			return;
		}
	Inst *in = inst_new(S->g, OP_input, n->loc, 0, (Type){0});
	inst_set_str(in, "name", n->str);
	inst_set_str(in, "kind", kind);
	if (want == 3) {
		inst_set_int(in, "channels", dims[0]);
		inst_set_int(in, "height", dims[1]);
		inst_set_int(in, "width", dims[2]);
	} else {
		inst_set_int(in, "classes", dims[0]);
	}
	inst_apply_defaults(in);
	in->scope = n->str;
	InferResult r;
	if (!infer_inst(in, S->g->batch, &r)) {
		inst_remove(S->g, in);
		serr(S, n->loc, "%s", r.err);
		return;
	}
	in->res->type = r.out;
	bind(S, S->frame, n->str, (SVal){.k = V_TENSOR, .t = in->res});
}

static void
exec_output(Sema *S, const Node *n)
{
	for (const Node *name = n->list; name; name = name->next) {
		SVal v = eval(S, name);
		if (v.k == V_ERR)
			continue;
		if (v.k != V_TENSOR) {
			serr(S, name->loc, "output '%s' must be a tensor, got %s", name->str, describe(S, v));
			continue;
		}
		bool dup = false;
		for (Inst *in = S->g->first; in && !dup; in = in->next)
			if (in->op == OP_output && strcmp(attr_s(in, "name"), name->str) == 0) {
				serr(S, name->loc, "output '%s' is declared twice", name->str);
				dup = true;
			}
		if (dup)
			continue;
		Inst *out = inst_new(S->g, OP_output, name->loc, 1, (Type){0});
		out->args[0] = v.t;
		inst_set_str(out, "name", name->str);
		out->scope = name->str;
	}
}

static void
exec_stmt(Sema *S, const Node *n)
{
	switch (n->kind) {
	case N_ASSIGN: {
		const Node *rhs = n->kid[0];
		SVal v = eval_as(S, rhs, n->str);
		bind(S, S->frame, n->str, v);
		break;
	}
	case N_INPUT:
	case N_OUTPUT:
		if (S->calls)
			serr(S, n->loc, "%ss can only be declared in a model, not in a block", n->kind == N_INPUT ? "input" : "output");
		else if (n->kind == N_INPUT)
			exec_input(S, n);
		else
			exec_output(S, n);
		break;
	case N_RETURN:
		if (!S->calls) {
			serr(S, n->loc, "return outside a block");
			break;
		}
		S->ret = eval(S, n->kid[0]);
		S->returned = true;
		break;
	case N_ASSERT: {
		SVal c = eval(S, n->kid[0]);
		bool ok;
		if (truth(S, n->kid[0], c, &ok) && !ok)
			serr(S, n->loc, "assertion failed%s%s", n->kid[1] ? ": " : "", n->kid[1] ? n->kid[1]->str : "");
		break;
	}
	case N_IF: {
		bool c;
		if (!truth(S, n->kid[0], eval(S, n->kid[0]), &c))
			break;
		if (c)
			exec_list(S, n->list);
		else if (n->kid[1] && n->kid[1]->kind == N_IF)
			exec_stmt(S, n->kid[1]);
		else if (n->kid[1])
			exec_list(S, n->kid[1]->list);
		break;
	}
	case N_FOR: {
		SVal it = eval(S, n->kid[1]);
		if (it.k == V_ERR)
			break;
		if (it.k != V_LIST) {
			serr(S, n->kid[1]->loc, "for needs a list to loop over, got %s", describe(S, it));
			break;
		}
		int nvars = 0;
		for (const Node *v = n->kid[0]; v; v = v->next)
			nvars++;
		for (int i = 0; i < it.n && !S->returned && !S->d->stop; i++) {
			if (!spend(S, 1, n->loc))
				break;
			SVal item = it.items[i];
			if (nvars == 1) {
				bind(S, S->frame, n->kid[0]->str, item);
			} else {
				if (item.k != V_LIST || item.n != nvars) {
					serr(S, n->kid[1]->loc, "item %d is %s, which does not unpack into %d loop variables", i,
						describe(S, item), nvars);
					break;
				}
				int k = 0;
				for (const Node *v = n->kid[0]; v; v = v->next)
					bind(S, S->frame, v->str, item.items[k++]);
			}
			exec_list(S, n->list);
		}
		break;
	}
	default:
		break;
	}
}

static void
exec_list(Sema *S, const Node *stmts)
{
	for (const Node *s = stmts; s && !S->returned && !S->d->stop; s = s->next)
		exec_stmt(S, s);
}

/* --- files and imports -------------------------------------------------------------------- */

static const char *
resolve_import(Sema *S, const char *from, const char *path)
{
	if (path[0] == '/')
		return path;
	const char *slash = strrchr(from, '/');
	const char *cand = slash ? arena_printf(S->a, "%.*s/%s", (int)(slash - from), from, path) : path;
	struct stat st;
	if (stat(cand, &st) == 0)
		return cand;
	for (int i = 0; i < S->o->nincdirs; i++) {
		const char *c = arena_printf(S->a, "%s/%s", S->o->incdirs[i], path);
		if (stat(c, &st) == 0)
			return c;
	}
	return cand;
}

static void process_file(Sema *S, const char *path, const Loc *from, bool root);

static void
process_items(Sema *S, const SrcFile *f, const Node *items, bool root)
{
	for (const Node *it = items; it && !S->d->stop; it = it->next) {
		switch (it->kind) {
		case N_IMPORT:
			process_file(S, resolve_import(S, f->path, it->str), &it->loc, false);
			break;
		case N_ASSIGN: {
			if (strmap_get(&S->globals.vars, it->str)) {
				serr(S, it->loc, "constant '%s' is defined twice", it->str);
				break;
			}
			SVal v = eval(S, it->kid[0]);
			bind(S, &S->globals, it->str, v);
			break;
		}
		case N_BLOCK: {
			const Node *prev = strmap_get(&S->blocks, it->str);
			if (prev) {
				serr(S, it->loc, "block '%s' is defined twice", it->str);
				diag_note(S->d, prev->loc, "first defined here");
				break;
			}
			if (nnc_op_lookup(it->str) != NOP) {
				serr(S, it->loc, "block '%s' has the name of a built-in op", it->str);
				break;
			}
			int np = 0;
			for (const Node *p = it->kid[0]; p; p = p->next, np++) {
				if (np == 64) {
					serr(S, p->loc, "block '%s' has too many parameters (limit 64)", it->str);
					break;
				}
				for (const Node *q = it->kid[0]; q != p; q = q->next)
					if (strcmp(q->str, p->str) == 0)
						serr(S, p->loc, "parameter '%s' is declared twice", p->str);
			}
			strmap_put(&S->blocks, it->str, (void *)it);
			break;
		}
		case N_MODEL:
			if (!root) {
				serr(S, it->loc, "model '%s' is in an imported file; imports may only hold blocks and constants", it->str);
				diag_note(S->d, S->imports[S->nimports - 1].from, "imported from here");
				break;
			}
			VEC_PUSH(S->a, S->models, S->nmodels, S->capmodels, it);
			break;
		default:
			break;
		}
	}
}

static void
process_file(Sema *S, const char *path, const Loc *from, bool root)
{
	/* In-memory sources (tests, fuzzing) need not exist on disk. */
	char *real = root && S->o->source ? strdup(path) : realpath(path, NULL);
	if (!real) {
		if (from)
			serr(S, *from, "cannot import '%s': %s", path, strerror(errno));
		else
			diag_file_error(S->d, path, "cannot open: %s", strerror(errno));
		return;
	}
	const char *r = arena_strdup(S->a, real);
	free(real);
	for (int i = 0; i < S->nimports; i++)
		if (strcmp(S->imports[i].real, r) == 0) {
			serr(S, *from, "import cycle: '%s' imports itself (through %d file%s)", path, S->nimports - i,
				S->nimports - i == 1 ? "" : "s");
			for (int j = S->nimports - 1; j > i; j--)
				diag_note(S->d, S->imports[j].from, "imported from here");
			return;
		}
	if (strmap_get(&S->loaded, r))
		return;
	if (S->nimports == MAX_IMPORT_DEPTH) {
		serr(S, *from, "imports nested too deeply (more than %d)", MAX_IMPORT_DEPTH);
		return;
	}
	strmap_put(&S->loaded, r, (void *)r);
	/* Only regular files of sane size: /dev/zero or a FIFO must not hang or exhaust nnc. */
	struct stat st;
	const char *why = NULL;
	if (!(root && S->o->source) && stat(r, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			why = "it is a directory, not a .nn file";
		else if (!S_ISREG(st.st_mode))
			why = "it is not a regular file";
		else if (st.st_size > SRC_MAX_BYTES)
			why = arena_printf(S->a, "it is larger than %d MB", SRC_MAX_BYTES >> 20);
	}
	if (why) {
		if (from)
			serr(S, *from, "cannot import '%s': %s", path, why);
		else
			diag_file_error(S->d, path, "%s", why);
		return;
	}
	SrcFile *f;
	const char *load_why = "";
	if (root && S->o->source)
		f = src_from_buffer(S->a, path, S->o->source, S->o->source_len);
	else
		f = src_load(S->a, path, &load_why);
	if (!f) {
		if (from)
			serr(S, *from, "cannot import '%s': %s", path, load_why);
		else
			diag_file_error(S->d, path, "cannot read: %s", load_why);
		return;
	}
	if (memchr(f->text, 0, f->len < 4096 ? f->len : 4096)) {
		if (from)
			serr(S, *from, "cannot import '%s': it is a binary file (it contains NUL bytes)", path);
		else
			diag_file_error(S->d, path, "binary file (contains NUL bytes); .nn models are text");
		return;
	}
	Node *items = parse_source(S->a, S->d, f);
	if (S->d->nerrors)
		return; /* do not evaluate a file that did not parse */
	if (root && !items) {
		diag_file_error(S->d, path, "%s (expected `model NAME { ... }`)", f->len ? "no model defined" : "empty file");
		return;
	}
	S->imports[S->nimports++] = (ImportEntry){r, from ? *from : (Loc){0}};
	process_items(S, f, items, root);
	S->nimports--;
}

Graph *
sema_build(Arena *a, Diag *d, const SemaOpts *o)
{
	Sema S0 = {.a = a, .d = d, .o = o, .prefix = ""}, *S = &S0;
	frame_init(S, &S->globals);
	strmap_init(&S->blocks, a);
	strmap_init(&S->names, a);
	strmap_init(&S->autonames, a);
	strmap_init(&S->loaded, a);
	process_file(S, o->path, NULL, true);
	if (d->nerrors)
		return NULL;
	const Node *model = NULL;
	for (size_t i = 0; i < S->nmodels; i++)
		if (!o->model || strcmp(S->models[i]->str, o->model) == 0) {
			if (model && !o->model) {
				serr(S, S->models[i]->loc, "more than one model in '%s'; choose one with --model", o->path);
				return NULL;
			}
			model = S->models[i];
		}
	if (!model) {
		if (o->model)
			diag_file_error(d, o->path, "no model named '%s'", o->model);
		else
			diag_file_error(d, o->path, "no model defined (expected `model NAME { ... }`)");
		return NULL;
	}
	S->g = graph_new(a, model->str, o->batch);
	Frame f;
	frame_init(S, &f);
	S->frame = &f;
	exec_list(S, model->list);
	if (d->nerrors)
		return NULL;
	bool has_in = false, has_out = false;
	for (Inst *in = S->g->first; in; in = in->next) {
		has_in |= in->op == OP_input;
		has_out |= in->op == OP_output;
	}
	if (!has_in)
		serr(S, model->loc, "model '%s' declares no inputs (add e.g. `input x: image[3, 32, 32]`)", model->str);
	if (!has_out)
		serr(S, model->loc, "model '%s' declares no outputs (add e.g. `output logits, loss`)", model->str);
	return d->nerrors ? NULL : S->g;
}
