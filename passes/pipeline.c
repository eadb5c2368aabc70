/* The pipeline table and driver (see pipeline.h). */
#include "passes/pipeline.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "compiler/irprint.h"
#include "compiler/verify.h"

const Pass nnc_passes[] = {
	{"sema", NULL, "build the typed IR from the source: evaluate constants, loops and blocks, infer shapes"},
	{"dce", pass_dce, "remove ops that no output depends on, with a warning for unused results"},
	{"split", pass_split, "with a scalar loss output: derive the inference-mode eval graph; main becomes the training step"},
	{"trainmode", pass_trainmode, "batchnorm -> batch statistics + apply + running update; dropout -> mask + multiply"},
	{"autodiff", pass_autodiff, "append the backward pass from each op's gradient rule"},
	{"optimizer", pass_optimizer, "append the optimizer's state and parameter updates (sgd, adam, adamw)"},
	{"precision", pass_precision, "storage and accumulation dtypes from the policy, casts at boundaries, loss scaling"},
	{"layout", pass_layout, "memory order of images and filters (nchw or channels-last nhwc/ohwi), relayouts where a consumer needs the other"},
	{"fuse", pass_fuse, "fold batch norms into conv/dense weights (eval), activations into their producer's kernel, relu_bwd into batch-norm backward"},
	{"memplan", pass_memplan, "arenas and offsets: values alive at once never overlap, the others share memory"},
};
const int nnc_npasses = sizeof nnc_passes / sizeof nnc_passes[0];

static bool
listed(const char *list, const char *name)
{
	if (!list)
		return false;
	if (strcmp(list, "all") == 0)
		return true;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len + (comma != NULL);
	}
	return false;
}

bool
pipeline_check_dump_list(const char *list, char *err, size_t errlen)
{
	if (strcmp(list, "all") == 0)
		return true;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		bool found = false;
		for (int i = 0; i < nnc_npasses && !found; i++)
			found = strlen(nnc_passes[i].name) == len && strncmp(p, nnc_passes[i].name, len) == 0;
		if (!found) {
			int k = snprintf(err, errlen, "unknown pass '%.*s' in --dump-ir (passes:", (int)len, p);
			for (int i = 0; i < nnc_npasses && k > 0 && (size_t)k < errlen; i++)
				k += snprintf(err + k, errlen - (size_t)k, " %s", nnc_passes[i].name);
			if (k > 0 && (size_t)k < errlen)
				snprintf(err + k, errlen - (size_t)k, ", or all)");
			return false;
		}
		p += len + (comma != NULL);
	}
	return true;
}

void
module_print(FILE *out, const Module *m)
{
	ir_print(out, m->main);
	if (m->eval)
		ir_print(out, m->eval);
}

static bool
dump(const Module *m, Diag *d, const PipelineOpts *po, int index, const char *name)
{
	if (listed(po->dump_ir, name)) {
		fprintf(po->out, "; after %s\n", name);
		module_print(po->out, m);
	}
	if (!po->dump_dir)
		return true;
	char path[4096];
	snprintf(path, sizeof path, "%s/%02d-%s.ir", po->dump_dir, index + 1, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		diag_file_error(d, path, "cannot write IR dump: %s", strerror(errno));
		return false;
	}
	module_print(f, m);
	if (fclose(f) != 0) {
		diag_file_error(d, path, "cannot write IR dump: %s", strerror(errno));
		return false;
	}
	return true;
}

static bool
verify_all(Module *m, Diag *d, const char *pass)
{
	Graph *gs[2] = {m->main, m->eval};
	for (int i = 0; i < 2; i++) {
		if (!gs[i])
			continue;
		graph_renumber(gs[i]);
		if (!ir_verify(gs[i], d, pass))
			return false;
	}
	return true;
}

int
pipeline_run(Arena *a, Diag *d, const SemaOpts *so, const PipelineOpts *po, const Recipe *recipe, Module *out)
{
	memset(out, 0, sizeof *out);
	static const Precision fp32 = {.name = "fp32", .act = DT_F32, .param = DT_F32, .state = DT_F32, .acc = DT_F32};
	if (po->dump_dir && mkdir(po->dump_dir, 0777) != 0 && errno != EEXIST) {
		diag_file_error(d, po->dump_dir, "cannot create dump directory: %s", strerror(errno));
		return NNC_EUSAGE;
	}
	Module m = {.recipe = recipe, .precision = po->precision ? po->precision : &fp32, .no_reuse = po->no_reuse,
		.no_fuse = po->no_fuse, .layout = po->layout};
	m.main = sema_build(a, d, so);
	if (!m.main)
		return NNC_EUSER;
	for (int i = 0; i < nnc_npasses; i++) {
		if (nnc_passes[i].run && !nnc_passes[i].run(&m, d))
			return d->ninternal || !d->nerrors ? NNC_EINTERNAL : NNC_EUSER;
		if (!verify_all(&m, d, nnc_passes[i].name))
			return NNC_EINTERNAL;
		if (!dump(&m, d, po, i, nnc_passes[i].name))
			return NNC_EUSAGE;
	}
	*out = m;
	return NNC_OK;
}
