/* Per-layer statistics (see stats.h). A layer row is every Inst that is not a parameter,
 * input or output; its parameter count is the sum over its trainable parameter operands. */
#include "compiler/stats.h"

#include <inttypes.h>
#include <string.h>
#include <yaml.h>

static bool
is_layer(const Inst *in)
{
	return !(nnc_ops[in->op].flags & (OPF_SOURCE | OPF_NORES));
}

static int64_t
inst_params(const Inst *in, bool trainable)
{
	int64_t n = 0;
	for (int i = in->nin; i < in->nargs; i++) {
		/* a parameter operand is the parameter or, under a precision policy, a cast of it */
		const Inst *p = in->args[i]->def;
		if (p->op == OP_cast)
			p = p->args[0]->def;
		if (p->op != OP_param) /* a folded batch norm's weight or bias (fused evaluation graphs) */
			continue;
		if ((attr_i(p, "trainable") != 0) == trainable)
			n += type_numel(&in->args[i]->type);
	}
	return n;
}

static int64_t
out_bytes(const Inst *in)
{
	return type_numel(&in->res->type) * (int64_t)dtype_size(in->res->type.dtype);
}

GraphTotals
graph_totals(const Graph *g)
{
	GraphTotals t = {0};
	for (const Inst *in = g->first; in; in = in->next) {
		if (in->op == OP_param)
			t.param_bytes += type_numel(&in->res->type) * (int64_t)dtype_size(in->res->type.dtype);
		if (!is_layer(in))
			continue;
		t.nops++;
		t.params += inst_params(in, true);
		t.frozen += inst_params(in, false);
		t.macs += in->macs;
		t.act_bytes += out_bytes(in);
	}
	return t;
}

/* Formats N with thousands separators. */
static const char *
commas(char *buf, int64_t n)
{
	char tmp[32];
	int len = snprintf(tmp, sizeof tmp, "%" PRId64, n < 0 ? -n : n), k = 0, o = 0;
	if (n < 0)
		buf[o++] = '-';
	for (int i = 0; i < len; i++) {
		buf[o++] = tmp[i];
		k = len - i - 1;
		if (k > 0 && k % 3 == 0)
			buf[o++] = ',';
	}
	buf[o] = 0;
	return buf;
}

/* Per-image shape: the type without its batch axis, e.g. "[16,32,32]", "[]" for scalars. */
static const char *
sample_shape(char *buf, size_t n, const Type *t)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int i = 1; i < t->rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i > 1 ? "," : "", t->dim[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
	return buf;
}

static const char *
row_name(const Inst *in)
{
	return in->scope && in->scope[0] ? in->scope : nnc_ops[in->op].name;
}

void
stats_print(FILE *out, const Graph *g)
{
	char a[32], b[32], c[32], s[64];
	int w = 5;
	for (const Inst *in = g->first; in; in = in->next)
		if (is_layer(in) && (int)strlen(row_name(in)) > w)
			w = (int)strlen(row_name(in));
	if (w > 48)
		w = 48;
	fprintf(out, "model %s, batch %d\n\n", g->name, g->batch);
	fprintf(out, "%-*s  %-21s  %-14s  %12s  %14s  %14s\n", w, "layer", "op", "output", "params", "MACs/image",
		"act bytes");
	for (const Inst *in = g->first; in; in = in->next) {
		if (!is_layer(in))
			continue;
		fprintf(out, "%-*.*s  %-21s  %-14s  %12s  %14s  %14s\n", w, w, row_name(in), nnc_ops[in->op].name,
			sample_shape(s, sizeof s, &in->res->type), commas(a, inst_params(in, true)), commas(b, in->macs),
			commas(c, out_bytes(in)));
	}
	GraphTotals t = graph_totals(g);
	fprintf(out, "\n%-24s %s\n", "ops:", commas(a, t.nops));
	fprintf(out, "%-24s %s\n", "trainable parameters:", commas(a, t.params));
	fprintf(out, "%-24s %s\n", "non-trainable state:", commas(a, t.frozen));
	fprintf(out, "%-24s %s (%.2f MB)\n", "parameter bytes:", commas(a, t.param_bytes), (double)t.param_bytes / 1e6);
	fprintf(out, "%-24s %s (%.1f M)\n", "forward MACs per image:", commas(a, t.macs), (double)t.macs / 1e6);
	fprintf(out, "%-24s %s (%.1f MB at batch %d, no reuse)\n", "activation bytes:", commas(a, t.act_bytes),
		(double)t.act_bytes / 1e6, g->batch);
}

static int
emit_file(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, (FILE *)data) == size;
}

/* Emits a scalar; returns false on libyaml failure. */
static bool
scalar(yaml_emitter_t *e, const char *s)
{
	yaml_event_t ev;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, YAML_ANY_SCALAR_STYLE);
	return yaml_emitter_emit(e, &ev);
}

static bool
kv(yaml_emitter_t *e, const char *k, const char *v)
{
	return scalar(e, k) && scalar(e, v);
}

static bool
kvi(yaml_emitter_t *e, const char *k, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRId64, v);
	return kv(e, k, buf);
}

static bool
begin(yaml_emitter_t *e, bool map)
{
	yaml_event_t ev;
	if (map)
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
	else
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
	return yaml_emitter_emit(e, &ev);
}

static bool
end(yaml_emitter_t *e, bool map)
{
	yaml_event_t ev;
	if (map)
		yaml_mapping_end_event_initialize(&ev);
	else
		yaml_sequence_end_event_initialize(&ev);
	return yaml_emitter_emit(e, &ev);
}

bool
stats_print_yaml(FILE *out, const Graph *g)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	char s[64];
	if (!yaml_emitter_initialize(&e))
		return false;
	yaml_emitter_set_output(&e, emit_file, out);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	bool ok = yaml_emitter_emit(&e, &ev);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	ok = ok && yaml_emitter_emit(&e, &ev) && begin(&e, true) && kv(&e, "model", g->name) && kvi(&e, "batch", g->batch);
	GraphTotals t = graph_totals(g);
	ok = ok && kvi(&e, "ops", t.nops) && kvi(&e, "trainable_params", t.params) && kvi(&e, "nontrainable", t.frozen) &&
	     kvi(&e, "param_bytes", t.param_bytes) && kvi(&e, "macs_per_image", t.macs) &&
	     kvi(&e, "activation_bytes", t.act_bytes) && scalar(&e, "layers") && begin(&e, false);
	for (const Inst *in = g->first; in && ok; in = in->next) {
		if (!is_layer(in))
			continue;
		ok = begin(&e, true) && kv(&e, "name", row_name(in)) && kv(&e, "op", nnc_ops[in->op].name) &&
		     kv(&e, "output", sample_shape(s, sizeof s, &in->res->type)) && kvi(&e, "params", inst_params(in, true)) &&
		     kvi(&e, "macs", in->macs) && kvi(&e, "act_bytes", out_bytes(in)) && end(&e, true);
	}
	ok = ok && end(&e, false) && end(&e, true);
	yaml_document_end_event_initialize(&ev, 1);
	ok = ok && yaml_emitter_emit(&e, &ev);
	yaml_stream_end_event_initialize(&ev);
	ok = ok && yaml_emitter_emit(&e, &ev);
	yaml_emitter_delete(&e);
	return ok;
}
