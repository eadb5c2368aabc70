/* Plan files (see plan.h): the YAML writer, the reader (libyaml's document API) and the
 * validator. The writer renders the whole plan into memory first so the checksum line can
 * cover every byte before it; the reader recomputes it over the same bytes. */
#include "runtime/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/infer.h"
#include "core/file.h"

uint64_t
plan_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* --- writing ------------------------------------------------------------------------------- */

static void
put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 32)
			fprintf(f, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* [dtype, layout, [dims], arena, offset] */
static void
put_value(FILE *f, const Type *t, const char *arena, int64_t offset)
{
	fprintf(f, "[%s, %s, [", dtype_name(t->dtype), layout_name(t->layout));
	for (int i = 0; i < t->rank; i++)
		fprintf(f, "%s%" PRId64, i ? ", " : "", t->dim[i]);
	fprintf(f, "], %s, %" PRId64 "]", arena, offset);
}

static void
put_attrs(FILE *f, Op op, const AttrVal *attr)
{
	const OpInfo *oi = &nnc_ops[op];
	fputs("{", f);
	for (int i = 0; i < oi->nattrs; i++) {
		const AttrVal *a = &attr[i];
		fprintf(f, "%s%s: ", i ? ", " : "", oi->attrs[i].name);
		switch (oi->attrs[i].kind) {
		case AK_INT: fprintf(f, "%" PRId64, a->i[0]); break;
		case AK_INT2: fprintf(f, "[%" PRId64 ", %" PRId64 "]", a->i[0], a->i[1]); break;
		case AK_FLOAT: {
			char b[32];
			fputs(double_str(b, a->f), f);
			break;
		}
		case AK_BOOL: fputs(a->i[0] ? "true" : "false", f); break;
		case AK_STR: put_str(f, a->s); break;
		case AK_DTYPE: put_str(f, dtype_name((DType)a->i[0])); break;
		}
	}
	fputs("}", f);
}

static void
put_program(FILE *f, const char *name, const PlanProgram *p)
{
	fprintf(f, "%s:\n  loss: %d\n  logits: %d\n  steps:\n", name, p->loss, p->logits);
	for (int i = 0; i < p->nsteps; i++) {
		const PlanStep *s = &p->steps[i];
		fprintf(f, "    - {kernel: %s, out: %d, in: [", nnc_ops[s->op].name, s->out);
		for (int k = 0; k < s->nin; k++)
			fprintf(f, "%s%d", k ? ", " : "", s->in[k]);
		fputs("], attrs: ", f);
		put_attrs(f, s->op, s->attr);
		fputs(", name: ", f);
		put_str(f, s->name);
		fputs(", loc: ", f);
		put_str(f, s->loc);
		fprintf(f, ", acc: %s", dtype_name(s->acc));
		if (s->epi)
			fprintf(f, ", epilogue: %s", nnc_ops[nnc_epilogue_op[s->epi]].name);
		if (s->pro)
			fprintf(f, ", prologue: %s", nnc_ops[nnc_epilogue_op[s->pro]].name);
		if (s->group)
			fprintf(f, ", group: %d", s->group);
		for (int j = 0; j < s->nchain; j++)
			fprintf(f, "%s%s", j ? ", " : ", chain: [", nnc_ops[s->chain[j]].name);
		if (s->nchain)
			fputc(']', f);
		fputs("}\n", f);
	}
}

bool
plan_write(FILE *out, const Plan *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return false;
	fprintf(f, "# nnc execution plan (format: docs/plan.md). The checksum at the end covers every byte\n"
	           "# before it; nnrun refuses an edited plan unless given --allow-edited.\n");
	fprintf(f, "nnc_plan: %d\nmodel: ", PLAN_VERSION);
	put_str(f, p->model);
	fputs("\nsource: ", f);
	put_str(f, p->source);
	fprintf(f, "\nbatch: %d\nrecipe:\n", p->batch);
	recipe_print(f, &p->recipe, "  ");
	fputs("inputs:\n", f);
	for (int i = 0; i < 2; i++)
		if (p->inputs[i].value >= 0) {
			fputs("  - {name: ", f);
			put_str(f, p->inputs[i].name);
			fprintf(f, ", kind: %s, value: %d}\n", p->inputs[i].kind, p->inputs[i].value);
		}
	fprintf(f, "arenas: {param: %" PRId64 ", io: %" PRId64 ", act: %" PRId64 "}\n", p->arena_bytes[ARENA_PARAM],
		p->arena_bytes[ARENA_IO], p->arena_bytes[ARENA_ACT]);
	fputs("values:             # [dtype, layout, [dims], arena, byte offset]\n", f);
	for (int i = 0; i < p->nvalues; i++) {
		fputs("  - ", f);
		put_value(f, &p->values[i], arena_name((MemArena)p->arena[i]), p->offset[i]);
		fprintf(f, "  # %%%d\n", i);
	}
	fputs("params:\n", f);
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		fputs("  - {name: ", f);
		put_str(f, q->name);
		fprintf(f, ", kind: %s, init: %s, value: %d, trainable: %s, fan_in: %" PRId64 ", fan_out: %" PRId64 "}\n",
			q->kind, q->init, q->value, q->trainable ? "true" : "false", q->fan_in, q->fan_out);
	}
	if (p->has_train)
		put_program(f, "train", &p->train);
	put_program(f, "eval", &p->eval);
	if (fclose(f) != 0) {
		free(buf);
		return false;
	}
	bool ok = fwrite(buf, 1, len, out) == len &&
	          fprintf(out, "checksum: %016" PRIx64 "\n", plan_hash(PLAN_HASH_INIT, buf, len)) > 0;
	free(buf);
	return ok;
}

/* --- reading --------------------------------------------------------------------------------- */

typedef struct {
	yaml_document_t *doc;
	const char *path;
	char *err;
	size_t errlen;
	Arena *a;
	bool failed;
} Reader;

static bool
rfail(Reader *r, const yaml_node_t *n, const char *fmt, ...)
{
	if (r->failed)
		return false;
	r->failed = true;
	int k = n ? snprintf(r->err, r->errlen, "%s:%zu: error: ", r->path, n->start_mark.line + 1)
	          : snprintf(r->err, r->errlen, "%s: error: ", r->path);
	va_list ap;
	va_start(ap, fmt);
	if (k > 0 && (size_t)k < r->errlen)
		vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return false;
}

static yaml_node_t *
get(Reader *r, yaml_node_t *map, const char *key, bool required)
{
	if (!map || map->type != YAML_MAPPING_NODE) {
		if (required)
			rfail(r, map, "expected a mapping holding '%s'", key);
		return NULL;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(r->doc, p->value);
	}
	if (required)
		rfail(r, map, "missing '%s' (the plan is truncated or was not written by nnc)", key);
	return NULL;
}

static const char *
scalar(Reader *r, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SCALAR_NODE) {
		rfail(r, n, "%s must be a single value", what);
		return "";
	}
	return (const char *)n->data.scalar.value;
}

static int64_t
integer(Reader *r, yaml_node_t *n, const char *what)
{
	const char *s = scalar(r, n, what);
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno) {
		rfail(r, n, "%s must be an integer, got '%s'", what, s);
		return 0;
	}
	return v;
}

static int
seq_len(Reader *r, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SEQUENCE_NODE) {
		rfail(r, n, "%s must be a list", what);
		return 0;
	}
	return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *
item(Reader *r, yaml_node_t *seq, int i)
{
	return yaml_document_get_node(r->doc, seq->data.sequence.items.start[i]);
}

static bool
boolean(Reader *r, yaml_node_t *n, const char *what)
{
	const char *s = scalar(r, n, what);
	if (strcmp(s, "true") && strcmp(s, "false"))
		rfail(r, n, "%s must be true or false, got '%s'", what, s);
	return s[0] == 't';
}

static int
lookup_name(Reader *r, yaml_node_t *n, const char *s, const char *const *names, int count, const char *what)
{
	for (int i = 0; i < count; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	rfail(r, n, "unknown %s '%s'", what, s);
	return 0;
}

static void
read_type(Reader *r, yaml_node_t *n, Type *t, int *arena, int64_t *offset)
{
	static const char *dts[NDTYPE], *lys[NLAYOUT];
	for (int i = 0; i < NDTYPE; i++)
		dts[i] = dtype_name((DType)i);
	for (int i = 0; i < NLAYOUT; i++)
		lys[i] = layout_name((Layout)i);
	if (seq_len(r, n, "a value") != 5) {
		rfail(r, n, "a value is [dtype, layout, [dims], arena, offset]");
		return;
	}
	static const char *arenas[NARENA - ARENA_PARAM]; /* the names of the placed arenas */
	for (int k = ARENA_PARAM; k < NARENA; k++)
		arenas[k - ARENA_PARAM] = arena_name((MemArena)k);
	*arena = ARENA_PARAM + lookup_name(r, n, scalar(r, item(r, n, 3), "arena"), arenas, NARENA - ARENA_PARAM, "arena");
	*offset = integer(r, item(r, n, 4), "offset");
	t->dtype = (DType)lookup_name(r, n, scalar(r, item(r, n, 0), "dtype"), dts, NDTYPE, "dtype");
	t->layout = (Layout)lookup_name(r, n, scalar(r, item(r, n, 1), "layout"), lys, NLAYOUT, "layout");
	yaml_node_t *dims = item(r, n, 2);
	int rank = seq_len(r, dims, "dims");
	if (rank > NNC_MAXRANK) {
		rfail(r, n, "rank %d exceeds %d", rank, NNC_MAXRANK);
		return;
	}
	t->rank = rank;
	for (int i = 0; i < rank && !r->failed; i++)
		t->dim[i] = integer(r, item(r, dims, i), "a dimension");
}

static void
read_attrs(Reader *r, yaml_node_t *n, PlanStep *s)
{
	const OpInfo *oi = &nnc_ops[s->op];
	for (int i = 0; i < oi->nattrs && !r->failed; i++) {
		yaml_node_t *v = get(r, n, oi->attrs[i].name, true);
		AttrVal *a = &s->attr[i];
		if (!v)
			return;
		a->set = true;
		switch (oi->attrs[i].kind) {
		case AK_INT: a->i[0] = a->i[1] = integer(r, v, oi->attrs[i].name); a->f = (double)a->i[0]; break;
		case AK_INT2:
			if (seq_len(r, v, oi->attrs[i].name) != 2) {
				rfail(r, v, "attribute '%s' must be [h, w]", oi->attrs[i].name);
				return;
			}
			a->i[0] = integer(r, item(r, v, 0), oi->attrs[i].name);
			a->i[1] = integer(r, item(r, v, 1), oi->attrs[i].name);
			break;
		case AK_FLOAT: {
			const char *t = scalar(r, v, oi->attrs[i].name);
			char *end;
			a->f = strtod(t, &end);
			if (!*t || *end)
				rfail(r, v, "attribute '%s' must be a number, got '%s'", oi->attrs[i].name, t);
			break;
		}
		case AK_BOOL: a->i[0] = a->i[1] = boolean(r, v, oi->attrs[i].name); break;
		case AK_DTYPE: {
			const char *t = scalar(r, v, oi->attrs[i].name);
			if (strcmp(t, "f32") != 0 && strcmp(t, "f16") != 0)
				rfail(r, v, "attribute '%s' must be \"f32\" or \"f16\", got '%s'", oi->attrs[i].name, t);
			a->i[0] = a->i[1] = strcmp(t, "f16") == 0 ? DT_F16 : DT_F32;
			break;
		}
		case AK_STR:
			a->s = v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			               strcmp((const char *)v->data.scalar.value, "null") == 0
			           ? NULL
			           : arena_strdup(r->a, scalar(r, v, oi->attrs[i].name));
			break;
		}
	}
}

/* Optional step key KEY naming an epilogue's activation (NNC_EPILOGUES): EPI_NONE if absent. */
static Epilogue
activation_key(Reader *r, yaml_node_t *sn, const char *key)
{
	yaml_node_t *v = get(r, sn, key, false);
	if (!v || r->failed)
		return EPI_NONE;
	const char *e = scalar(r, v, key);
	for (int k = 1; k < NEPI && !r->failed; k++)
		if (strcmp(e, nnc_ops[nnc_epilogue_op[k]].name) == 0)
			return (Epilogue)k;
	if (!r->failed) {
		char known[128] = "";
		for (int k = 1; k < NEPI; k++)
			snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k == 1 ? "" : k + 1 < NEPI ? ", " : " or ",
				nnc_ops[nnc_epilogue_op[k]].name);
		rfail(r, v, "unknown %s '%s' (%s)", key, e, known);
	}
	return EPI_NONE;
}

static void
read_program(Reader *r, yaml_node_t *n, PlanProgram *p)
{
	p->loss = (int)integer(r, get(r, n, "loss", true), "loss");
	p->logits = (int)integer(r, get(r, n, "logits", true), "logits");
	yaml_node_t *steps = get(r, n, "steps", true);
	p->nsteps = r->failed ? 0 : seq_len(r, steps, "steps");
	p->steps = arena_alloc(r->a, (size_t)(p->nsteps + 1) * sizeof *p->steps);
	for (int i = 0; i < p->nsteps && !r->failed; i++) {
		yaml_node_t *sn = item(r, steps, i);
		PlanStep *s = &p->steps[i];
		const char *k = scalar(r, get(r, sn, "kernel", true), "kernel");
		s->op = NOP;
		for (int o = 0; o < NOP; o++)
			if (strcmp(nnc_ops[o].name, k) == 0)
				s->op = (Op)o;
		if (s->op == NOP) {
			rfail(r, sn, "unknown kernel '%s'", k);
			return;
		}
		s->out = (int)integer(r, get(r, sn, "out", true), "out");
		yaml_node_t *in = get(r, sn, "in", true);
		s->nin = r->failed ? 0 : seq_len(r, in, "in");
		if (s->nin > NNC_MAXARGS) {
			rfail(r, in, "too many operands (%d)", s->nin);
			return;
		}
		s->in = arena_alloc(r->a, (size_t)(s->nin + 1) * sizeof *s->in);
		for (int k2 = 0; k2 < s->nin && !r->failed; k2++)
			s->in[k2] = (int)integer(r, item(r, in, k2), "an operand");
		read_attrs(r, get(r, sn, "attrs", true), s);
		s->name = arena_strdup(r->a, scalar(r, get(r, sn, "name", true), "name"));
		s->loc = arena_strdup(r->a, scalar(r, get(r, sn, "loc", true), "loc"));
		const char *acc = scalar(r, get(r, sn, "acc", true), "acc");
		if (!r->failed && strcmp(acc, "f32") && strcmp(acc, "f16"))
			rfail(r, sn, "acc must be f16 or f32, got '%s'", acc);
		s->acc = strcmp(acc, "f16") == 0 ? DT_F16 : DT_F32; /* acc may be "" after an error */
		s->epi = activation_key(r, sn, "epilogue");
		yaml_node_t *group = get(r, sn, "group", false);
		if (group && !r->failed)
			s->group = (int)integer(r, group, "group");
		yaml_node_t *chain = get(r, sn, "chain", false);
		if (chain && !r->failed) {
			s->nchain = seq_len(r, chain, "chain");
			if (!r->failed && (s->nchain < 1 || s->nchain > NNC_MAXCHAIN))
				rfail(r, chain, "a chain of %d ops (1 to %d)", s->nchain, NNC_MAXCHAIN);
			for (int j = 0; j < s->nchain && !r->failed; j++) {
				const char *c = scalar(r, item(r, chain, j), "chain");
				s->chain[j] = NOP;
				for (int o = 0; o < NOP && !r->failed; o++)
					if (strcmp(nnc_ops[o].name, c) == 0)
						s->chain[j] = (Op)o;
				if (!r->failed && s->chain[j] == NOP)
					rfail(r, chain, "unknown kernel '%s' in chain", c);
			}
		}
		s->pro = activation_key(r, sn, "prologue");
	}
}

/* Finds the checksum line, checks it against the bytes before it, returns the body length. */
static bool
check_sum(const char *text, size_t len, bool allow_edited, const char *path, char *err, size_t errlen)
{
	const char *tag = "\nchecksum: ";
	const char *p = NULL;
	for (const char *q = text; (q = strstr(q, tag)) != NULL; q++)
		p = q;
	if (!p) {
		snprintf(err, errlen, "%s: error: no checksum line at the end: the plan is truncated or not an nnc plan", path);
		return false;
	}
	size_t body = (size_t)(p - text) + 1;
	char *end;
	uint64_t want = strtoull(p + strlen(tag), &end, 16);
	while (*end == '\n' || *end == '\r' || *end == ' ')
		end++;
	if ((size_t)(end - text) != len) {
		snprintf(err, errlen, "%s: error: text after the checksum line: the plan is corrupt", path);
		return false;
	}
	if (!allow_edited && plan_hash(PLAN_HASH_INIT, text, body) != want) {
		snprintf(err, errlen,
			"%s: error: checksum mismatch: the plan was corrupted or edited after nnc wrote it; recompile it, or "
			"pass --allow-edited to load a hand-edited plan (it is still fully validated)",
			path);
		return false;
	}
	return true;
}

bool
plan_read(const char *path, Plan *p, Arena *a, bool allow_edited, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	const char *why;
	FILE *f = file_fopen_regular(path, &why);
	if (!f) {
		snprintf(err, errlen, "%s: error: cannot open plan: %s", path, why);
		return false;
	}
	size_t len = 0;
	char *text = file_slurp(f, (size_t)1 << 30, &len, &why);
	fclose(f);
	if (!text) {
		snprintf(err, errlen, "%s: error: cannot read plan: %s", path, why);
		return false;
	}
	bool ok = plan_parse(text, len, path, p, a, allow_edited, err, errlen);
	free(text);
	return ok;
}

bool
plan_parse(const char *data, size_t len, const char *path, Plan *p, Arena *a, bool allow_edited, char *err,
	size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (memchr(data, 0, len)) {
		snprintf(err, errlen, "%s: error: binary data in the plan: it is corrupt", path);
		return false;
	}
	char *text = malloc(len + 1);
	if (!text) {
		snprintf(err, errlen, "%s: error: cannot read plan (out of memory)", path);
		return false;
	}
	memcpy(text, data, len);
	text[len] = 0;
	if (!check_sum(text, len, allow_edited, path, err, errlen)) {
		free(text);
		return false;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu: error: not valid YAML (%s): the plan is corrupt", path,
			parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		free(text);
		return false;
	}
	Reader r = {&doc, path, err, errlen, a, false};
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	int64_t version = integer(&r, get(&r, root, "nnc_plan", true), "nnc_plan");
	if (!r.failed && version != PLAN_VERSION)
		rfail(&r, root, "plan format version %lld, but this nnrun reads version %d; recompile the model with this nnc",
			(long long)version, PLAN_VERSION);
	if (!r.failed) {
		p->version = (int)version;
		p->model = arena_strdup(a, scalar(&r, get(&r, root, "model", true), "model"));
		p->source = arena_strdup(a, scalar(&r, get(&r, root, "source", true), "source"));
		p->batch = (int)integer(&r, get(&r, root, "batch", true), "batch");
		recipe_defaults(&p->recipe);
		yaml_node_t *rec = get(&r, root, "recipe", true);
		for (yaml_node_pair_t *q = rec && rec->type == YAML_MAPPING_NODE ? rec->data.mapping.pairs.start : NULL;
		     q && q < rec->data.mapping.pairs.top && !r.failed; q++) {
			yaml_node_t *k = yaml_document_get_node(&doc, q->key), *v = yaml_document_get_node(&doc, q->value);
			char msg[512], val[256] = "";
			if (v->type == YAML_SEQUENCE_NODE) {
				size_t n = 0;
				for (int i = 0; i < seq_len(&r, v, "a list") && n < sizeof val; i++)
					n += (size_t)snprintf(val + n, sizeof val - n, "%s%s", i ? "," : "", scalar(&r, item(&r, v, i), "a list item"));
			} else {
				snprintf(val, sizeof val, "%s", scalar(&r, v, "a recipe setting"));
			}
			if (!r.failed && !recipe_set(&p->recipe, scalar(&r, k, "a recipe key"), val, msg, sizeof msg))
				rfail(&r, v, "%s", msg);
		}
	}
	yaml_node_t *vals = r.failed ? NULL : get(&r, root, "values", true);
	p->nvalues = vals ? seq_len(&r, vals, "values") : 0;
	p->values = arena_alloc(a, (size_t)(p->nvalues + 1) * sizeof *p->values);
	p->arena = arena_alloc(a, (size_t)(p->nvalues + 1) * sizeof *p->arena);
	p->offset = arena_alloc(a, (size_t)(p->nvalues + 1) * sizeof *p->offset);
	for (int i = 0; i < p->nvalues && !r.failed; i++)
		read_type(&r, item(&r, vals, i), &p->values[i], &p->arena[i], &p->offset[i]);
	yaml_node_t *ar = r.failed ? NULL : get(&r, root, "arenas", true);
	for (int k = ARENA_PARAM; ar && k < NARENA && !r.failed; k++)
		p->arena_bytes[k] = integer(&r, get(&r, ar, arena_name((MemArena)k), true), arena_name((MemArena)k));
	yaml_node_t *ins = r.failed ? NULL : get(&r, root, "inputs", true);
	p->inputs[0].value = p->inputs[1].value = -1;
	for (int i = 0; ins && i < seq_len(&r, ins, "inputs") && !r.failed; i++) {
		yaml_node_t *n = item(&r, ins, i);
		const char *kind = scalar(&r, get(&r, n, "kind", true), "kind");
		int slot = strcmp(kind, "image") == 0 ? 0 : strcmp(kind, "labels") == 0 ? 1 : -1;
		if (slot < 0 || p->inputs[slot].value >= 0) {
			rfail(&r, n, "inputs must be one image and at most one labels input");
			break;
		}
		p->inputs[slot].kind = slot ? "labels" : "image";
		p->inputs[slot].name = arena_strdup(a, scalar(&r, get(&r, n, "name", true), "name"));
		p->inputs[slot].value = (int)integer(&r, get(&r, n, "value", true), "value");
	}
	yaml_node_t *params = r.failed ? NULL : get(&r, root, "params", true);
	p->nparams = params ? seq_len(&r, params, "params") : 0;
	p->params = arena_alloc(a, (size_t)(p->nparams + 1) * sizeof *p->params);
	for (int i = 0; i < p->nparams && !r.failed; i++) {
		yaml_node_t *n = item(&r, params, i);
		PlanParam *q = &p->params[i];
		q->name = arena_strdup(a, scalar(&r, get(&r, n, "name", true), "name"));
		q->kind = arena_strdup(a, scalar(&r, get(&r, n, "kind", true), "kind"));
		q->init = arena_strdup(a, scalar(&r, get(&r, n, "init", true), "init"));
		q->value = (int)integer(&r, get(&r, n, "value", true), "value");
		q->trainable = boolean(&r, get(&r, n, "trainable", true), "trainable");
		q->fan_in = integer(&r, get(&r, n, "fan_in", true), "fan_in");
		q->fan_out = integer(&r, get(&r, n, "fan_out", true), "fan_out");
	}
	yaml_node_t *train = r.failed ? NULL : get(&r, root, "train", false);
	if (train) {
		p->has_train = true;
		read_program(&r, train, &p->train);
	}
	if (!r.failed)
		read_program(&r, get(&r, root, "eval", true), &p->eval);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(text);
	if (r.failed)
		return false;
	char msg[768];
	if (!plan_validate(p, msg, sizeof msg)) {
		snprintf(err, errlen, "%s: error: inconsistent plan: %s", path, msg);
		return false;
	}
	return true;
}

/* --- validation ------------------------------------------------------------------------------ */

static bool
vfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* Whether value X's region may hold value Y: the step that writes Y (MAKER) is elementwise,
 * reads X, and is X's last reader (an in-place write; the kernels allow exact aliasing), or the
 * other way round. In a group, operands are read to its last step, so only that step (a
 * residual add) writes in place. */
static bool
in_place(const PlanProgram *prog, int a, int b, const int *maker, const int *last)
{
	for (int k = 0; k < 2; k++) {
		int x = k ? b : a, y = k ? a : b;
		if (maker[y] < 0 || last[x] != maker[y])
			continue;
		const PlanStep *s = &prog->steps[maker[y]];
		if (!(nnc_ops[s->op].flags & OPF_ELEMWISE) || s->out != y)
			continue;
		for (int i = 0; i < s->nin; i++)
			if (s->in[i] == x)
				return true;
	}
	return false;
}

/* The memory plan of one program: no two values alive at the same time overlap, except an
 * elementwise step writing in place over an operand it reads last. A value is
 * alive from the step that defines it (inputs and parameters: from the start) to its last
 * reader; the loss, the logits and the gradients updates read stay alive to the end (nnrun
 * reads them after the run). Parameters and inputs must not overlap anything at all. The steps
 * of a group run as one kernel: all their results are written, and all their operands read,
 * from the group's first step to its last. */
static bool
check_memory(const Plan *p, const PlanProgram *prog, const char *pname, char *err, size_t errlen)
{
	int n = p->nvalues;
	int *def = malloc((size_t)n * sizeof *def), *last = malloc((size_t)n * sizeof *last);
	int *maker = malloc((size_t)n * sizeof *maker);
	bool ok = def && last && maker;
	for (int v = 0; ok && v < n; v++) {
		maker[v] = -1;
		def[v] = p->arena[v] == ARENA_ACT ? -2 : -1; /* -2: not used by this program */
		last[v] = p->arena[v] == ARENA_ACT ? -2 : prog->nsteps;
	}
	for (int i = 0, g0 = -1, g1 = -1; ok && i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		if (s->group > 1) {
			g0 = i;
			g1 = i + s->group - 1;
		}
		bool grouped = i >= g0 && i <= g1;
		for (int k = 0; k < s->nin; k++)
			if (p->arena[s->in[k]] == ARENA_ACT) {
				int until = (s->op == OP_sgd_update || s->op == OP_adam_update) && k == 1 ? prog->nsteps
				            : grouped                                                    ? g1
				                                                                         : i;
				if (until > last[s->in[k]])
					last[s->in[k]] = until;
			}
		if (s->out >= 0 && p->arena[s->out] == ARENA_ACT) {
			def[s->out] = last[s->out] = grouped ? g0 : i;
			maker[s->out] = i;
		}
	}
	if (ok && prog->loss >= 0)
		last[prog->loss] = prog->nsteps;
	if (ok && prog->logits >= 0)
		last[prog->logits] = prog->nsteps;
	for (int a = 0; ok && a < n; a++) {
		if (def[a] == -2)
			continue;
		int64_t sa = type_numel(&p->values[a]) * (int64_t)dtype_size(p->values[a].dtype);
		for (int b = a + 1; ok && b < n; b++) {
			if (def[b] == -2 || p->arena[a] != p->arena[b])
				continue;
			int64_t sb = type_numel(&p->values[b]) * (int64_t)dtype_size(p->values[b].dtype);
			bool together = def[a] <= last[b] && def[b] <= last[a];
			bool overlap = p->offset[a] < p->offset[b] + sb && p->offset[b] < p->offset[a] + sa && sa && sb;
			if (together && overlap && p->offset[a] == p->offset[b] && sa == sb && in_place(prog, a, b, maker, last))
				continue;
			if (together && overlap)
				ok = vfail(err, errlen,
					"%s: values %%%d and %%%d are alive at the same time but overlap in the %s arena ([%lld, %lld) and "
					"[%lld, %lld))",
					pname, a, b, arena_name((MemArena)p->arena[a]),
					(long long)p->offset[a], (long long)(p->offset[a] + sa), (long long)p->offset[b],
					(long long)(p->offset[b] + sb));
		}
	}
	if (!def || !last || !maker)
		ok = vfail(err, errlen, "out of memory");
	free(def);
	free(last);
	free(maker);
	return ok;
}

/* What each step does to parameters must fit what they are (hand-edited plans): an update
 * writes a trainable weight and its own optimizer state (momentum_buffer; exp_avg, exp_avg_sq),
 * all distinct values; bn_update writes a running_mean and a running_var; state is never
 * trainable; batch-norm epsilons are positive and running-statistics momenta in [0, 1]. */
static bool
check_roles(const Plan *p, const PlanProgram *prog, const char *pname, char *err, size_t errlen)
{
	int *param_of = malloc(((size_t)p->nvalues + 1) * sizeof *param_of);
	if (!param_of)
		return vfail(err, errlen, "out of memory");
	for (int v = 0; v < p->nvalues; v++)
		param_of[v] = -1;
	bool ok = true;
	for (int i = 0; i < p->nparams; i++) {
		param_of[p->params[i].value] = i;
		if (ok && p->params[i].trainable && nnc_state_kind(p->params[i].kind))
			ok = vfail(err, errlen, "parameter '%s' is %s state but marked trainable", p->params[i].name,
				p->params[i].kind);
	}
	for (int i = 0; i < prog->nsteps && ok; i++) {
		const PlanStep *s = &prog->steps[i];
		char where[256];
		snprintf(where, sizeof where, "%s step %d (%s at %s)", pname, i, nnc_ops[s->op].name, s->loc);
		static const char *const sgd[] = {NULL, NULL, "momentum_buffer"},
					 *const adam[] = {NULL, NULL, "exp_avg", "exp_avg_sq"},
					 *const bn[] = {"running_mean", "running_var", NULL};
		const char *const *want = s->op == OP_sgd_update ? sgd : s->op == OP_adam_update ? adam : s->op == OP_bn_update ? bn : NULL;
		for (int k = 0; want && k < s->nin && ok; k++) {
			if (!nnc_writes(s->op, k))
				continue; /* read only: the gradient; the batch statistics */
			const PlanParam *q = param_of[s->in[k]] >= 0 ? &p->params[param_of[s->in[k]]] : NULL;
			if (!q)
				ok = vfail(err, errlen, "%s: operand %d (%%%d) is not a parameter", where, k, s->in[k]);
			else if (want[k] && strcmp(q->kind, want[k]) != 0)
				ok = vfail(err, errlen, "%s: operand %d is '%s', a %s, where a %s belongs", where, k, q->name, q->kind,
					want[k]);
			else if (!want[k] && (!q->trainable || nnc_state_kind(q->kind)))
				ok = vfail(err, errlen, "%s: it updates '%s', a %s that is not trainable", where, q->name, q->kind);
			for (int m = 0; m < k && ok; m++)
				if (s->in[m] == s->in[k])
					ok = vfail(err, errlen, "%s: operands %d and %d are the same value %%%d", where, m, k, s->in[k]);
		}
		int e = nnc_attr_index(s->op, "eps");
		if (ok && e >= 0 && !(s->attr[e].f > 0 && isfinite(s->attr[e].f)))
			ok = vfail(err, errlen, "%s: eps %g must be positive", where, s->attr[e].f);
		int m = s->op == OP_bn_update ? nnc_attr_index(s->op, "momentum") : -1;
		if (ok && m >= 0 && !(s->attr[m].f >= 0 && s->attr[m].f <= 1))
			ok = vfail(err, errlen, "%s: momentum %g is not in [0, 1]", where, s->attr[m].f);
	}
	free(param_of);
	return ok;
}

GroupKind
plan_group_kind(const PlanProgram *prog, int i)
{
	const PlanStep *s = &prog->steps[i];
	if (s->group < 2 || i + 1 >= prog->nsteps)
		return GROUP_NONE;
	Op next = prog->steps[i + 1].op;
	if (s->op == OP_bn_bwd_data)
		return GROUP_BN_BWD;
	if (s->op == OP_bn_stats || (s->op == OP_cast && next == OP_bn_stats))
		return GROUP_BN_STATS;
	return s->op == OP_bn_apply ? GROUP_BN_ADD : GROUP_MULTI;
}

/* How many steps of PROG read value V (each operand counts). */
static int
readers(const PlanProgram *prog, int v)
{
	int n = 0;
	for (int i = 0; i < prog->nsteps; i++)
		for (int k = 0; k < prog->steps[i].nin; k++)
			n += prog->steps[i].in[k] == v;
	return n;
}

/* Whether the group (GroupKind in core/ops.h) starting at step I of PROG is what a backend runs
 * as one kernel: its members' ops form a kind, and their operands fit it. A value made and read
 * only inside the group, which a backend need not write (the batch-norm result a residual add
 * reads, a widening cast's copy the statistics read through), must have no other reader. */
static bool
check_group(const Plan *p, const PlanProgram *prog, int i, const char *where, char *err, size_t errlen)
{
	const PlanStep *s = &prog->steps[i];
	int n = s->group;
	if (n < 2 || i + n > prog->nsteps)
		return vfail(err, errlen, "%s: a group of %d steps does not fit the program (2 or more steps to its end)",
			where, n);
	Op *ops = malloc((size_t)n * sizeof *ops);
	if (!ops)
		return vfail(err, errlen, "out of memory");
	for (int k = 0; k < n; k++)
		ops[k] = prog->steps[i + k].op;
	GroupKind kind = nnc_group_kind(ops, n);
	free(ops);
	if (kind == GROUP_NONE)
		return vfail(err, errlen, "%s: group %d is not one of the kinds of step group (docs/plan.md)", where, n);
	for (int k = 0; k < n; k++) {
		if (k && prog->steps[i + k].group)
			return vfail(err, errlen, "%s: step %d, a member of this group, starts another", where, i + k);
		if (prog->steps[i + k].nchain)
			return vfail(err, errlen, "%s: step %d, a member of this group, is a chain", where, i + k);
	}
	const PlanStep *m1 = &prog->steps[i + 1], *m2 = n > 2 ? &prog->steps[i + 2] : NULL;
	bool fits = true;
	const char *what = NULL;
	switch (kind) {
	case GROUP_BN_BWD: { /* one gradient, input, statistics and activation output, one prologue */
		int pro = s->pro != EPI_NONE;
		fits = m1->pro == s->pro && m2->pro == s->pro && m1->nin == 3 + pro && m2->nin == 1 + pro &&
		       s->nin >= 3 + pro && m1->in[0] == s->in[0] && m1->in[1] == s->in[1] && m1->in[2] == s->in[2] &&
		       m2->in[0] == s->in[0] && (!pro || (m1->in[3] == s->in[s->nin - 1] && m2->in[1] == s->in[s->nin - 1]));
		what = "a bn_bwd_data followed by its bn_bwd_scale and bias_grad";
		break;
	}
	case GROUP_BN_STATS: {
		const PlanStep *c = s->op == OP_cast ? s : NULL, *st = c ? m1 : s, *u = st + 1 < s + n ? st + 1 : NULL;
		if (c)
			fits = st->in[0] == c->out && p->values[c->in[0]].dtype == DT_F16 &&
			       p->values[c->out].dtype == DT_F32 && readers(prog, c->out) == 1 && c->out != prog->loss &&
			       c->out != prog->logits;
		if (u)
			fits = fits && u->in[2] == st->out;
		what = "a bn_stats reading a widening cast that only it reads, or updating the running statistics from "
		       "its result";
		break;
	}
	case GROUP_BN_ADD: {
		int y = s->out;
		fits = !s->epi && !m1->pro && m1->nin == 2 && (m1->in[0] == y) != (m1->in[1] == y) && readers(prog, y) == 1 &&
		       y != prog->loss && y != prog->logits;
		what = "a bn_apply without an epilogue followed by an add that alone reads its result";
		break;
	}
	default: /* GROUP_MULTI: any steps of one kind */
		break;
	}
	if (!fits)
		return vfail(err, errlen, "%s: group %d is not %s", where, n, what);
	return true;
}

static bool
validate_program(const Plan *p, const PlanProgram *prog, const char *pname, const unsigned char *predef, char *err,
	size_t errlen)
{
	unsigned char *def = malloc((size_t)p->nvalues + 1);
	if (!def)
		return vfail(err, errlen, "out of memory");
	memcpy(def, predef, (size_t)p->nvalues);
	bool ok = true;
	for (int i = 0; i < prog->nsteps && ok; i++) {
		const PlanStep *s = &prog->steps[i];
		const OpInfo *oi = &nnc_ops[s->op];
		char where[256];
		snprintf(where, sizeof where, "%s step %d (%s at %s)", pname, i, oi->name, s->loc);
		if (oi->flags & OPF_SOURCE) {
			ok = vfail(err, errlen, "%s: %s is not a kernel", where, oi->name);
			break;
		}
		for (int k = 0; k < s->nin && ok; k++)
			if (s->in[k] < 0 || s->in[k] >= p->nvalues || !def[s->in[k]])
				ok = vfail(err, errlen, "%s: operand %d is %%%d, which is not defined before it", where, k, s->in[k]);
		bool nores = oi->flags & OPF_NORES;
		if (ok && (nores ? s->out != -1 : (s->out < 0 || s->out >= p->nvalues || def[s->out])))
			ok = vfail(err, errlen, "%s: result %%%d is out of range or defined twice", where, s->out);
		for (int k = 0; k < oi->nattrs && ok; k++)
			if (!s->attr[k].set)
				ok = vfail(err, errlen, "%s: attribute '%s' is missing", where, oi->attrs[k].name);
		if (ok && s->epi && !(oi->flags & OPF_EPI))
			ok = vfail(err, errlen, "%s: the %s kernel has no epilogue", where, oi->name);
		if (ok && s->pro && !(oi->flags & OPF_PRO))
			ok = vfail(err, errlen, "%s: the %s kernel has no prologue", where, oi->name);
		if (ok && s->pro && (s->nin < 2 || !type_eq(&p->values[s->in[s->nin - 1]], &p->values[s->in[0]])))
			ok = vfail(err, errlen, "%s: the prologue's last operand does not have the gradient's type", where);
		if (ok && s->group)
			ok = check_group(p, prog, i, where, err, errlen);
		int taken = s->nchain ? nnc_chain_operands(s->chain, s->nchain) : 0;
		for (int j = 0; j < s->nchain && ok; j++)
			if (!(nnc_ops[s->chain[j]].flags & OPF_CHAIN))
				ok = vfail(err, errlen, "%s: %s cannot be part of a chain", where, nnc_ops[s->chain[j]].name);
		if (ok && s->nchain && (!(oi->flags & OPF_CHAIN) || s->epi || s->pro || nores))
			ok = vfail(err, errlen, "%s: the %s kernel cannot end a chain", where, oi->name);
		if (ok && s->nchain && taken > s->nin)
			ok = vfail(err, errlen, "%s: %d operands are too few for the chain", where, s->nin);
		for (int k = 0; k < s->nin && ok && s->nchain; k++)
			if (!type_eq(&p->values[s->in[k]], &p->values[s->out]))
				ok = vfail(err, errlen, "%s: chain operand %d does not have the result's type", where, k);
		if (!ok)
			break;
		/* The prologue's operand is not the kernel's own, nor are the chain's (but for the
		 * chained value, operand 0 as inference sees it); inference sees the rest. */
		int nin = s->nin - (s->pro ? 1 : 0) - (taken ? taken - 1 : 0);
		int user = (oi->flags & OPF_PARAMS) && nin > oi->max_in ? oi->max_in : nin;
		if (user < oi->min_in || (oi->max_in >= 0 && user > oi->max_in)) {
			ok = vfail(err, errlen, "%s: %d operands do not fit the kernel", where, s->nin);
			break;
		}
		OpSig sig = {.op = s->op, .nin = user, .attr = s->attr};
		for (int k = 0; k < user; k++)
			sig.in[k] = &p->values[s->in[k == 0 || !taken ? k : k + taken - 1]];
		InferResult r;
		if (!infer_op(&sig, p->batch, &r)) {
			ok = vfail(err, errlen, "%s: %s", where, r.err);
			break;
		}
		if (nin - user != r.nparams) {
			ok = vfail(err, errlen, "%s: %d parameter operands, the kernel needs %d", where, nin - user, r.nparams);
			break;
		}
		for (int k = 0; k < r.nparams && ok; k++) {
			Type want = r.params[k].type; /* storage dtype: the precision policy's */
			want.dtype = p->values[s->in[user + k]].dtype;
			if (!type_eq(&p->values[s->in[user + k]], &want))
				ok = vfail(err, errlen, "%s: parameter operand %%%d does not have the %s's shape and layout", where, s->in[user + k],
					r.params[k].suffix);
		}
		if (ok && !nores && !type_eq(&p->values[s->out], &r.out)) {
			char a[96], b[96];
			ok = vfail(err, errlen, "%s: result %%%d is declared %s but the kernel produces %s", where, s->out,
				type_str_layout(&p->values[s->out], a, sizeof a), type_str_layout(&r.out, b, sizeof b));
		}
		if (ok && !nores)
			def[s->out] = 1;
	}
	if (ok && prog->loss >= 0 && (prog->loss >= p->nvalues || !def[prog->loss] || p->values[prog->loss].rank != 0))
		ok = vfail(err, errlen, "%s: loss %%%d is not a scalar the program computes", pname, prog->loss);
	if (ok && prog->logits >= 0 && (prog->logits >= p->nvalues || !def[prog->logits] || p->values[prog->logits].rank != 2))
		ok = vfail(err, errlen, "%s: logits %%%d are not [N, classes] values the program computes", pname, prog->logits);
	free(def);
	return ok;
}

bool
plan_validate(const Plan *p, char *err, size_t errlen)
{
	if (p->batch <= 0 || p->nvalues <= 0 || p->nparams < 0)
		return vfail(err, errlen, "batch %d, %d values, %d parameters", p->batch, p->nvalues, p->nparams);
	for (int i = 0; i < p->nvalues; i++) {
		const Type *t = &p->values[i];
		for (int k = 0; k < t->rank; k++)
			if (t->dim[k] <= 0 || t->dim[k] > ((int64_t)1 << 40))
				return vfail(err, errlen, "value %%%d has dimension %lld", i, (long long)t->dim[k]);
		if (type_numel(t) > ((int64_t)1 << 40))
			return vfail(err, errlen, "value %%%d has more than 2^40 elements", i);
	}
	for (int i = 0; i < p->nvalues; i++) {
		int64_t size = type_numel(&p->values[i]) * (int64_t)dtype_size(p->values[i].dtype);
		if (p->arena[i] < ARENA_PARAM || p->arena[i] >= NARENA || p->offset[i] < 0 || p->offset[i] % 64 ||
		    p->offset[i] + size > p->arena_bytes[p->arena[i]])
			return vfail(err, errlen, "value %%%d is placed outside its arena (offset %lld, %lld bytes, arena of %lld)", i,
				(long long)p->offset[i], (long long)size, (long long)p->arena_bytes[p->arena[i]]);
	}
	unsigned char *predef = calloc((size_t)p->nvalues + 1, 1);
	if (!predef)
		return vfail(err, errlen, "out of memory");
	bool ok = true;
	for (int i = 0; i < p->nparams && ok; i++) {
		const PlanParam *q = &p->params[i];
		bool known = false;
		for (int k = 0; nnc_initializers[k]; k++)
			known |= strcmp(nnc_initializers[k], q->init) == 0;
		if (q->value < 0 || q->value >= p->nvalues || predef[q->value])
			ok = vfail(err, errlen, "parameter '%s' refers to value %%%d, out of range or used twice", q->name, q->value);
		else if (!known)
			ok = vfail(err, errlen, "parameter '%s' has unknown initializer '%s'", q->name, q->init);
		else if (q->fan_in < 0 || q->fan_out < 0)
			ok = vfail(err, errlen, "parameter '%s' has negative fans", q->name);
		else
			predef[q->value] = 1;
		for (int k = 0; k < i && ok; k++)
			if (strcmp(p->params[k].name, q->name) == 0)
				ok = vfail(err, errlen, "parameter name '%s' is used twice", q->name);
	}
	for (int i = 0; i < 2 && ok; i++) {
		const PlanInput *in = &p->inputs[i];
		if (in->value < 0)
			continue;
		const Type *t = in->value < p->nvalues ? &p->values[in->value] : NULL;
		bool shape_ok = t && (i == 0 ? t->dtype == DT_F32 && t->rank == 4 : t->dtype == DT_I32 && t->rank == 1) &&
		                t->dim[0] == p->batch && !predef[in->value];
		if (!shape_ok)
			ok = vfail(err, errlen, "%s input '%s' (%%%d) is not a batch of %s", in->kind, in->name, in->value,
				i == 0 ? "f32 images [N, C, H, W]" : "i32 labels [N]");
		else
			predef[in->value] = 1;
	}
	if (ok && p->inputs[0].value < 0)
		ok = vfail(err, errlen, "the plan has no image input");
	if (ok && p->has_train && (p->inputs[1].value < 0 || p->train.loss < 0 || p->train.logits < 0))
		ok = vfail(err, errlen, "a training program needs a labels input, a loss and logits");
	for (int i = 0; ok && i < p->nparams; i++)
		if (p->arena[p->params[i].value] != ARENA_PARAM)
			ok = vfail(err, errlen, "parameter '%s' is not in the param arena", p->params[i].name);
	for (int i = 0; ok && i < 2; i++)
		if (p->inputs[i].value >= 0 && p->arena[p->inputs[i].value] != ARENA_IO)
			ok = vfail(err, errlen, "input '%s' is not in the io arena", p->inputs[i].name);
	if (ok && p->recipe.batch != p->batch)
		ok = vfail(err, errlen, "the recipe's batch %d differs from the plan's %d (the plan is compiled for one batch)",
			p->recipe.batch, p->batch);
	if (ok && p->has_train)
		ok = validate_program(p, &p->train, "train", predef, err, errlen) && check_memory(p, &p->train, "train", err, errlen) &&
		     check_roles(p, &p->train, "train", err, errlen);
	if (ok)
		ok = validate_program(p, &p->eval, "eval", predef, err, errlen) && check_memory(p, &p->eval, "eval", err, errlen) &&
		     check_roles(p, &p->eval, "eval", err, errlen);
	free(predef);
	return ok;
}

/* The arithmetic and the memory traffic of one run of PROG, for rooflines: 2 FLOP per
 * multiply-add of every convolution and dense step (forward and backward), and the bytes of
 * every operand and result of every kernel, once (a backward group's operands once; a chain's
 * intermediates never leave the kernel). */
void
plan_program_cost(const Plan *p, const PlanProgram *prog, double *flops, double *bytes)
{
	for (int i = 0; i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		int span = s->group > 1 ? s->group : 1;
		for (int j = i; j < i + span && j < prog->nsteps; j++) {
			const PlanStep *t = &prog->steps[j];
			for (int k = 0; k < t->nin; k++) {
				bool dup = false; /* a group member's operand the group's first step reads */
				for (int m = 0; m < s->nin && j > i; m++)
					dup |= s->in[m] == t->in[k];
				if (!dup)
					*bytes += (double)type_numel(&p->values[t->in[k]]) * dtype_size(p->values[t->in[k]].dtype);
			}
			if (t->out >= 0)
				*bytes += (double)type_numel(&p->values[t->out]) * dtype_size(p->values[t->out].dtype);
			const Type *y = t->out >= 0 ? &p->values[t->out] : NULL;
			double macs = 0;
			switch (t->op) {
			case OP_conv2d: /* y [n, k, oh, ow] from w [k, c/g, kh, kw] */
			case OP_conv2d_bwd_data: /* dy [n, k, oh, ow] against w */
			case OP_conv2d_bwd_filter: { /* dw [k, c/g, kh, kw] over dy [n, k, oh, ow] */
				const Type *w = t->op == OP_conv2d_bwd_filter ? y : &p->values[t->in[1]];
				const Type *dy = t->op == OP_conv2d ? y : &p->values[t->in[0]];
				macs = (double)type_numel(dy) * ((double)type_numel(w) / (double)w->dim[0]);
				break;
			}
			case OP_dense: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[1]; break;
			case OP_dense_bwd_data: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[1]; break;
			case OP_dense_bwd_weight: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[0]; break;
			default: break;
			}
			*flops += 2 * macs;
		}
		i += span - 1;
	}
}
