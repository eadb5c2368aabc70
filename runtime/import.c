/* nnrun import-weights (see import.h): rename rules, exact names, then the structural match by
 * module signature; every problem is collected before anything is written.
 *
 * Invariants: a model parameter gets at most one source tensor and a source tensor serves at
 * most one parameter; the output file is written only when the map is complete, and holds the
 * source tensors' bytes and dtypes untouched (nnrun converts F32/F16 when it loads them). */
#include "runtime/import.h"

#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/file.h"
#include "runtime/safetensors.h"

enum { MAX_RULES = 64, NAME_MAX_LEN = 512 };

typedef struct {
	regex_t re;
	char *replace;
} Rule;

typedef struct {
	char *err;
	size_t errlen, used;
	int problems;
} Errs;

static void
problem(Errs *e, const char *fmt, ...)
{
	e->problems++;
	if (e->used + 1 >= e->errlen)
		return;
	if (e->used) {
		e->err[e->used++] = '\n';
		e->err[e->used] = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(e->err + e->used, e->errlen - e->used, fmt, ap);
	va_end(ap);
	e->used += k < 0 ? 0 : (size_t)k < e->errlen - e->used ? (size_t)k : e->errlen - e->used - 1;
}

static void
free_rules(Rule *rules, int n)
{
	for (int i = 0; i < n; i++) {
		regfree(&rules[i].re);
		free(rules[i].replace);
	}
}

/* rules: a YAML sequence of mappings with the keys match and replace. */
static int
load_rules(const char *path, Rule *rules, Errs *e)
{
	const char *why;
	FILE *f = file_fopen_regular(path, &why);
	if (!f) {
		problem(e, "%s: error: cannot open rules: %s", path, why);
		return -1;
	}
	yaml_parser_t p;
	yaml_document_t doc;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int n = 0, count = 0;
	if (!yaml_parser_load(&p, &doc)) {
		problem(e, "%s:%zu:%zu: error: invalid YAML: %s", path, p.problem_mark.line + 1, p.problem_mark.column + 1,
			p.problem ? p.problem : "parse error");
		n = -1;
		goto out;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_SEQUENCE_NODE) {
		problem(e, "%s:%zu:%zu: error: rules are a list of {match: REGEX, replace: TEXT}", path,
			root ? root->start_mark.line + 1 : 1, root ? root->start_mark.column + 1 : 1);
		n = -1;
		goto done;
	}
	for (yaml_node_item_t *it = root->data.sequence.items.start; it < root->data.sequence.items.top; it++) {
		yaml_node_t *r = yaml_document_get_node(&doc, *it);
		const char *match = NULL, *replace = NULL;
		bool bad = r->type != YAML_MAPPING_NODE;
		for (yaml_node_pair_t *q = bad ? NULL : r->data.mapping.pairs.start; q && q < r->data.mapping.pairs.top; q++) {
			yaml_node_t *k = yaml_document_get_node(&doc, q->key), *v = yaml_document_get_node(&doc, q->value);
			if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
				bad = true;
				break;
			}
			const char *key = (const char *)k->data.scalar.value, *val = (const char *)v->data.scalar.value;
			if (!strcmp(key, "match") && !match)
				match = val;
			else if (!strcmp(key, "replace") && !replace)
				replace = val;
			else
				bad = true;
		}
		size_t line = r->start_mark.line + 1, col = r->start_mark.column + 1;
		if (bad || !match || !replace) {
			problem(e, "%s:%zu:%zu: error: a rule is {match: REGEX, replace: TEXT}, both once", path, line, col);
			n = -1;
			break;
		}
		if (n == MAX_RULES) {
			problem(e, "%s:%zu:%zu: error: more than %d rules", path, line, col, MAX_RULES);
			n = -1;
			break;
		}
		int rc = regcomp(&rules[n].re, match, REG_EXTENDED);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &rules[n].re, msg, sizeof msg);
			problem(e, "%s:%zu:%zu: error: bad regular expression '%s': %s", path, line, col, match, msg);
			n = -1;
			break;
		}
		rules[n].replace = strdup(replace);
		count = ++n;
	}
	if (n < 0)
		free_rules(rules, count);
done:
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&p);
	fclose(f);
	return n;
}

/* NAME through every rule into OUT; false when a result would not fit. */
static bool
apply_rules(const Rule *rules, int n, const char *name, char *out)
{
	char cur[NAME_MAX_LEN];
	if (strlen(name) >= sizeof cur)
		return false;
	strcpy(cur, name);
	for (int i = 0; i < n; i++) {
		regmatch_t m[10];
		if (regexec(&rules[i].re, cur, 10, m, 0) != 0)
			continue;
		char next[NAME_MAX_LEN];
		size_t k = 0;
		bool fits = (size_t)m[0].rm_so < sizeof next;
		memcpy(next, cur, fits ? (size_t)m[0].rm_so : 0);
		k = fits ? (size_t)m[0].rm_so : 0;
		for (const char *r = rules[i].replace; fits && *r; r++) {
			if (r[0] == '\\' && r[1] >= '0' && r[1] <= '9') {
				regmatch_t g = m[r[1] - '0'];
				size_t len = g.rm_so < 0 ? 0 : (size_t)(g.rm_eo - g.rm_so);
				fits = k + len < sizeof next;
				if (fits)
					memcpy(next + k, cur + (g.rm_so < 0 ? 0 : g.rm_so), len);
				k += len;
				r++;
			} else {
				if (r[0] == '\\' && r[1] == '\\')
					r++;
				fits = k + 1 < sizeof next;
				if (fits)
					next[k++] = *r;
			}
		}
		size_t tail = strlen(cur + m[0].rm_eo);
		if (!fits || k + tail >= sizeof next)
			return false;
		memcpy(next + k, cur + m[0].rm_eo, tail + 1);
		strcpy(cur, next);
	}
	strcpy(out, cur);
	return true;
}

/* Natural order: runs of digits compare as numbers, the rest bytewise. */
static int
natural_cmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			while (*a == '0' && a[1] >= '0' && a[1] <= '9')
				a++;
			while (*b == '0' && b[1] >= '0' && b[1] <= '9')
				b++;
			size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
			if (la != lb)
				return la < lb ? -1 : 1;
			int c = strncmp(a, b, la);
			if (c)
				return c;
			a += la;
			b += lb;
		} else {
			if (*a != *b)
				return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
			a++;
			b++;
		}
	}
	return *a ? 1 : *b ? -1 : 0;
}

/* Whether the natural order of module names A < B is carried by numbers: at the first '.'
 * component where they differ, both are the same words around different numbers. */
static bool
numbered_apart(const char *a, const char *b)
{
	while (*a && *a == *b) {
		const char *da = strchr(a, '.'), *db = strchr(b, '.');
		size_t la = da ? (size_t)(da - a) : strlen(a), lb = db ? (size_t)(db - b) : strlen(b);
		if (la != lb || strncmp(a, b, la))
			break;
		a += la + (da != NULL);
		b += lb + (db != NULL);
	}
	/* compare the differing components' skeletons (digit runs as one '#') */
	for (;;) {
		bool end_a = !*a || *a == '.', end_b = !*b || *b == '.';
		if (end_a || end_b)
			return end_a && end_b;
		bool dig_a = *a >= '0' && *a <= '9', dig_b = *b >= '0' && *b <= '9';
		if (dig_a != dig_b)
			return false;
		if (dig_a) {
			a += strspn(a, "0123456789");
			b += strspn(b, "0123456789");
		} else if (*a++ != *b++) {
			return false;
		}
	}
}

typedef struct {
	const char *name;  /* the model's, or the source's after the rules */
	const char *orig;  /* the source's own name */
	int rank;
	const int64_t *dims;
	const StTensor *t; /* source only */
	int pair;          /* index into the other side, -1 while unmatched */
	const char *how;   /* "name", "rule", "structure" */
} Entry;

typedef struct {
	char *module;      /* the name up to its last '.' */
	char *signature;   /* its suffixes and shapes, sorted */
	int *members;      /* entry indices */
	int n;
	int pair;
} Module;

static void
shape_str(int rank, const int64_t *d, char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)d[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

static int
cmp_part(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void
free_modules(Module *m, int n)
{
	for (int j = 0; m && j <= n; j++) {
		free(m[j].module);
		free(m[j].signature);
		free(m[j].members);
	}
	free(m);
}

/* The unmatched entries of E grouped into modules, in E's order; *N gets the count. NULL when
 * out of memory. */
static Module *
modules(Entry *e, int n, int *nm)
{
	Module *m = calloc((size_t)n + 1, sizeof *m);
	*nm = 0;
	if (!m)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (e[i].pair >= 0 || !e[i].name)
			continue;
		const char *dot = strrchr(e[i].name, '.');
		size_t len = dot ? (size_t)(dot - e[i].name) : 0;
		int j = 0;
		while (j < *nm && !(strlen(m[j].module) == len && !strncmp(m[j].module, e[i].name, len)))
			j++;
		if (j == *nm) {
			m[j].module = strndup(e[i].name, len);
			m[j].members = calloc((size_t)n, sizeof *m[j].members);
			m[j].pair = -1;
			if (!m[j].module || !m[j].members)
				goto fail;
			(*nm)++;
		}
		m[j].members[m[j].n++] = i;
	}
	for (int j = 0; j < *nm; j++) {
		/* "suffix [dims]" of each member, sorted, joined by ", " */
		enum { PART = 512 };
		char *parts = malloc((size_t)m[j].n * PART);
		m[j].signature = calloc((size_t)m[j].n * (PART + 2) + 1, 1);
		if (!parts || !m[j].signature) {
			free(parts);
			goto fail;
		}
		for (int k = 0; k < m[j].n; k++) {
			const Entry *x = &e[m[j].members[k]];
			const char *dot = strrchr(x->name, '.');
			char shape[256];
			shape_str(x->rank, x->dims, shape, sizeof shape);
			snprintf(parts + (size_t)k * PART, PART, "%s %s", dot ? dot + 1 : x->name, shape);
		}
		qsort(parts, (size_t)m[j].n, PART, cmp_part);
		for (int k = 0; k < m[j].n; k++) {
			if (k)
				strcat(m[j].signature, ", ");
			strcat(m[j].signature, parts + (size_t)k * PART);
		}
		free(parts);
	}
	return m;
fail:
	free_modules(m, *nm);
	*nm = 0;
	return NULL;
}

static int
cmp_module(const void *a, const void *b)
{
	return natural_cmp(((const Module *)a)->module, ((const Module *)b)->module);
}

/* The first '.' component where module names A and B differ: *CA (length *LA) in A. */
static void
first_difference(const char *a, const char *b, const char **ca, size_t *la)
{
	for (;;) {
		const char *da = strchr(a, '.'), *db = strchr(b, '.');
		size_t na = da ? (size_t)(da - a) : strlen(a), nb = db ? (size_t)(db - b) : strlen(b);
		if (na != nb || strncmp(a, b, na) || !da || !db) {
			*ca = a;
			*la = na;
			return;
		}
		a = da + 1;
		b = db + 1;
	}
}

/* Whether model module M has the component C (length L) among its own. */
static bool
has_component(const char *m, const char *c, size_t l)
{
	for (const char *s = m; s;) {
		const char *d = strchr(s, '.');
		size_t n = d ? (size_t)(d - s) : strlen(s);
		if (n == l && !strncmp(s, c, l))
			return true;
		s = d ? d + 1 : NULL;
	}
	return false;
}

/* Pairs the model's unmatched modules with the file's by signature, in order (see import.h).
 * Two file modules of one signature in a row are ordered by their numbers, or else their
 * pairing must be borne out by the names: each one's differing word ("bn2", "shortcut") is a
 * component of its partner's name. Anything else is an ambiguity. */
static bool
match_structure(Entry *want, int nw, Entry *have, int nh, Errs *e, const char *src)
{
	bool ambiguous = false;
	int nmw, nmh;
	Module *mw = modules(want, nw, &nmw), *mh = modules(have, nh, &nmh);
	if (!mw || !mh) {
		problem(e, "out of memory");
		goto out;
	}
	qsort(mh, (size_t)nmh, sizeof *mh, cmp_module);
	for (int i = 0; i < nmw; i++) {
		int j = 0;
		while (j < nmh && (mh[j].pair >= 0 || strcmp(mh[j].signature, mw[i].signature)))
			j++;
		if (j == nmh)
			continue;
		mw[i].pair = j;
		mh[j].pair = i;
	}
	for (int j = 0; j < nmh; j++) {
		if (mh[j].pair < 0)
			continue;
		int k = j + 1;
		while (k < nmh && strcmp(mh[k].signature, mh[j].signature))
			k++;
		if (k == nmh || mh[k].pair < 0 || numbered_apart(mh[j].module, mh[k].module))
			continue;
		const char *cj, *ck;
		size_t lj, lk;
		first_difference(mh[j].module, mh[k].module, &cj, &lj);
		first_difference(mh[k].module, mh[j].module, &ck, &lk);
		if (has_component(mw[mh[j].pair].module, cj, lj) && has_component(mw[mh[k].pair].module, ck, lk))
			continue;
		problem(e, "%s: ambiguous: modules '%s' and '%s' have the same tensors (%s) and neither numbers nor the model's "
		           "names order them; add a rule (--rules) that names one",
			src, mh[j].module, mh[k].module, mh[j].signature);
		ambiguous = true;
	}
	for (int i = 0; i < nmw && !ambiguous; i++) {
		if (mw[i].pair < 0)
			continue;
		const Module *h = &mh[mw[i].pair];
		for (int a = 0; a < mw[i].n; a++) {
			Entry *w = &want[mw[i].members[a]];
			const char *suffix = strrchr(w->name, '.');
			for (int b = 0; b < h->n; b++) {
				Entry *x = &have[h->members[b]];
				const char *xs = strrchr(x->name, '.');
				if (x->pair < 0 && !strcmp(suffix ? suffix : w->name, xs ? xs : x->name)) {
					w->pair = h->members[b];
					x->pair = mw[i].members[a];
					w->how = x->how = "structure";
					break;
				}
			}
		}
	}
out:
	free_modules(mw, nmw);
	free_modules(mh, nmh);
	return !ambiguous;
}

bool
weights_import(const Plan *p, const char *src, const char *rules_path, const char *out, FILE *report, char *err,
	size_t errlen)
{
	Errs e = {.err = err, .errlen = errlen};
	err[0] = 0;
	Rule rules[MAX_RULES];
	int nrules = 0;
	if (rules_path && (nrules = load_rules(rules_path, rules, &e)) < 0)
		return false;
	StFile *f = NULL;
	if (st_open(src, &f, err, errlen) != 0) {
		free_rules(rules, nrules);
		return false;
	}
	int nh = (int)st_count(f), nw = 0;
	Entry *want = calloc((size_t)p->nparams + 1, sizeof *want), *have = calloc((size_t)nh + 1, sizeof *have);
	char (*names)[NAME_MAX_LEN] = calloc((size_t)nh + 1, sizeof *names);
	StTensor *outt = calloc((size_t)p->nparams + 1, sizeof *outt);
	bool ok = false;
	if (!want || !have || !names || !outt) {
		problem(&e, "out of memory");
		goto done;
	}
	for (int i = 0; i < p->nparams; i++) {
		if (!strncmp(p->params[i].name, "optim.", 6))
			continue;
		const Type *ty = &p->values[p->params[i].value];
		want[nw++] = (Entry){.name = p->params[i].name, .rank = ty->rank, .dims = ty->dim, .pair = -1};
	}
	for (int i = 0; i < nh; i++) {
		const StTensor *t = st_tensor_at(f, i);
		have[i] = (Entry){.orig = t->name, .rank = t->rank, .dims = t->dims, .t = t, .pair = -1};
		if (!apply_rules(rules, nrules, t->name, names[i])) {
			problem(&e, "%s: tensor '%s': the rules make a name over %d bytes", src, t->name, NAME_MAX_LEN - 1);
			continue;
		}
		const char *last = strrchr(names[i], '.');
		if (names[i][0] && strcmp(last ? last + 1 : names[i], "num_batches_tracked"))
			have[i].name = names[i];
	}
	for (int j = 0; j < nh; j++)
		for (int k = j + 1; have[j].name && k < nh; k++)
			if (have[k].name && !strcmp(have[j].name, have[k].name))
				problem(&e, "%s: tensors '%s' and '%s' are both named '%s' after the rules", src, have[j].orig, have[k].orig,
					have[j].name);
	if (e.problems)
		goto done;
	/* exact names (after the rules) */
	for (int i = 0; i < nw; i++)
		for (int j = 0; j < nh; j++)
			if (have[j].name && have[j].pair < 0 && !strcmp(want[i].name, have[j].name)) {
				want[i].pair = j;
				have[j].pair = i;
				want[i].how = have[j].how = strcmp(have[j].name, have[j].orig) ? "rule" : "name";
				break;
			}
	/* after an ambiguity, every unmatched tensor would be listed too: it is enough */
	bool listed = match_structure(want, nw, have, nh, &e, src);
	for (int i = 0; listed && i < nw; i++) {
		char ws[256], hs[256];
		shape_str(want[i].rank, want[i].dims, ws, sizeof ws);
		if (want[i].pair < 0) {
			problem(&e, "%s: nothing for the model's '%s' %s", src, want[i].name, ws);
			continue;
		}
		const Entry *h = &have[want[i].pair];
		shape_str(h->rank, h->dims, hs, sizeof hs);
		bool same = h->rank == want[i].rank;
		for (int k = 0; same && k < h->rank; k++)
			same = h->dims[k] == want[i].dims[k];
		if (!same)
			problem(&e, "%s: tensor '%s' is %s, the model's '%s' is %s", src, h->orig, hs, want[i].name, ws);
		if (h->t->dtype != ST_F32 && h->t->dtype != ST_F16)
			problem(&e, "%s: tensor '%s' is %s; nnc loads F32 or F16", src, h->orig, st_dtype_name(h->t->dtype));
	}
	for (int j = 0; listed && j < nh; j++)
		if (have[j].name && have[j].pair < 0) {
			char hs[256];
			shape_str(have[j].rank, have[j].dims, hs, sizeof hs);
			problem(&e, "%s: tensor '%s' %s%s%s%s matches no model parameter", src, have[j].orig, hs,
				strcmp(have[j].name, have[j].orig) ? " (renamed '" : "", strcmp(have[j].name, have[j].orig) ? have[j].name : "",
				strcmp(have[j].name, have[j].orig) ? "')" : "");
		}
	if (e.problems)
		goto done;
	for (int i = 0; i < nw; i++) {
		const StTensor *t = have[want[i].pair].t;
		outt[i] = (StTensor){.name = want[i].name, .dtype = t->dtype, .rank = t->rank, .dims = t->dims, .data = t->data};
	}
	const char *base = strrchr(src, '/');
	StMeta meta[3] = {{"format", "pt"}, {"nnc.model", p->model}, {"nnc.imported_from", base ? base + 1 : src}};
	if (st_write(out, outt, (size_t)nw, meta, 3, err, errlen) != 0)
		goto done;
	ok = true;
	int named = 0, renamed = 0, structural = 0, ignored = 0;
	for (int i = 0; i < nw; i++) {
		const Entry *h = &have[want[i].pair];
		named += !strcmp(h->how, "name");
		renamed += !strcmp(h->how, "rule");
		structural += !strcmp(h->how, "structure");
		fprintf(report, "  %-40s <- %-40s %s\n", want[i].name, h->orig, h->how);
	}
	for (int j = 0; j < nh; j++)
		if (!have[j].name) {
			fprintf(report, "  %-40s    %-40s ignored\n", "", have[j].orig);
			ignored++;
		}
	fprintf(report, "%s: %d tensors for %s: %d by name, %d by rule, %d by structure; %d ignored\n", out, nw, p->model,
		named, renamed, structural, ignored);
done:
	free(outt);
	free(names);
	free(want);
	free(have);
	st_close(f);
	free_rules(rules, nrules);
	return ok;
}
