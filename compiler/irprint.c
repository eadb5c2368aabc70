/* IR printers (see irprint.h). */
#include "compiler/irprint.h"

#include <string.h>

static bool
is_default(const AttrSpec *sp, const AttrVal *a)
{
	if (sp->required)
		return false;
	switch (sp->kind) {
	case AK_INT:
	case AK_INT2:
	case AK_BOOL:
		return a->i[0] == (int64_t)sp->num && a->i[1] == (int64_t)sp->num;
	case AK_FLOAT:
		return a->f == sp->num;
	case AK_STR:
		return sp->str && a->s && strcmp(sp->str, a->s) == 0;
	case AK_DTYPE:
		return a->i[0] == (int64_t)sp->num;
	}
	return false;
}

static void
print_attrs(FILE *out, const Inst *in)
{
	const OpInfo *oi = &nnc_ops[in->op];
	bool any = false;
	for (int i = 0; i < oi->nattrs; i++) {
		const AttrSpec *sp = &oi->attrs[i];
		const AttrVal *a = &in->attr[i];
		if (!a->set || is_default(sp, a))
			continue;
		fprintf(out, "%s%s=", any ? " " : " [", sp->name);
		any = true;
		switch (sp->kind) {
		case AK_INT: fprintf(out, "%lld", (long long)a->i[0]); break;
		case AK_INT2:
			if (a->i[0] == a->i[1])
				fprintf(out, "%lld", (long long)a->i[0]);
			else
				fprintf(out, "[%lld,%lld]", (long long)a->i[0], (long long)a->i[1]);
			break;
		case AK_FLOAT: fprintf(out, "%g", a->f); break;
		case AK_BOOL: fputs(a->i[0] ? "true" : "false", out); break;
		case AK_STR: fprintf(out, "\"%s\"", a->s ? a->s : ""); break;
		case AK_DTYPE: fprintf(out, "\"%s\"", dtype_name((DType)a->i[0])); break;
		}
	}
	if (any)
		fputc(']', out);
}

void
ir_print(FILE *out, const Graph *g)
{
	char b[96];
	static const char *phase_names[] = {"forward", "backward", "update"};
	fprintf(out, "graph %s batch=%d {\n", g->name, g->batch);
	Phase phase = PH_FORWARD;
	for (const Inst *in = g->first; in; in = in->next) {
		if (!(nnc_ops[in->op].flags & OPF_SOURCE) && in->phase != phase) {
			phase = in->phase;
			fprintf(out, "  ; %s\n", phase_names[phase]);
		}
		fputs("  ", out);
		if (in->res)
			fprintf(out, "%%%d = ", in->res->id);
		/* A fused op's parts in execution order: a chain's ops run before the op itself. */
		for (int i = 0; i < in->nchain && i < in->nparts; i++)
			fprintf(out, "%s+", nnc_ops[in->part[i].op].name);
		fputs(nnc_ops[in->op].name, out);
		for (int i = in->nchain; i < in->nparts; i++)
			fprintf(out, "+%s", nnc_ops[in->part[i].op].name);
		for (int i = 0; i < in->nargs; i++)
			fprintf(out, "%s%%%d", i ? ", " : " ", in->args[i]->id);
		print_attrs(out, in);
		if (in->res)
			fprintf(out, " : %s %s", type_str(&in->res->type, b, sizeof b), layout_name(in->res->type.layout));
		/* The accumulation dtype, where it is not the storage dtype (f16 storage, f32 sums). */
		if (in->res && (nnc_ops[in->op].flags & OPF_ACC) && in->acc != in->res->type.dtype)
			fprintf(out, " acc=%s", dtype_name(in->acc));
		if (in->group) /* this op and the next group-1 run as one kernel (a backward group) */
			fprintf(out, " group=%d", in->group);
		if (in->res && in->res->arena != ARENA_NONE) {
			fprintf(out, " mem=%s+%lld", arena_name((MemArena)in->res->arena), (long long)in->res->offset);
		}
		if (in->scope && in->scope[0] && in->op != OP_param && in->op != OP_input && in->op != OP_output)
			fprintf(out, "  @%s", in->scope);
		if (in->loc.file)
			fprintf(out, "  # %s:%d:%d", in->loc.file->path, in->loc.line, in->loc.col);
		for (int i = 0; i < in->nparts; i++)
			if (in->part[i].loc.file)
				fprintf(out, " +%s %s:%d:%d", nnc_ops[in->part[i].op].name, in->part[i].loc.file->path,
					in->part[i].loc.line, in->part[i].loc.col);
		fputc('\n', out);
	}
	if (g->arena_bytes[ARENA_ACT] || g->arena_bytes[ARENA_PARAM]) {
		fprintf(out, "  ; memory: param %lld B, io %lld B, act %lld B (", (long long)g->arena_bytes[ARENA_PARAM],
			(long long)g->arena_bytes[ARENA_IO], (long long)g->arena_bytes[ARENA_ACT]);
		if (g->live_peak)
			fprintf(out, "most alive at once: %lld B; ", (long long)g->live_peak);
		fprintf(out, "every value in its own buffer: %lld B)\n", (long long)g->naive_bytes);
	}
	fputs("}\n", out);
}

void
ir_print_dot(FILE *out, const Graph *g)
{
	char b[96];
	fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n", g->name);
	int nout = 0;
	for (const Inst *in = g->first; in; in = in->next) {
		if (in->op == OP_param)
			continue;
		int id = in->res ? in->res->id : -1;
		const char *scope = in->scope ? in->scope : "";
		if (in->res)
			fprintf(out, "  v%d [label=\"%s\\n%s\\n%s\"%s];\n", id, nnc_ops[in->op].name, scope,
				type_str(&in->res->type, b, sizeof b), in->op == OP_input ? ", shape=ellipse" : "");
		else
			fprintf(out, "  o%d [label=\"output %s\", shape=ellipse];\n", ++nout, scope);
		for (int i = 0; i < in->nin; i++) {
			if (in->res)
				fprintf(out, "  v%d -> v%d;\n", in->args[i]->id, id);
			else
				fprintf(out, "  v%d -> o%d;\n", in->args[i]->id, nout);
		}
	}
	fputs("}\n", out);
}
