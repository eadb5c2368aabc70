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

static bool
dump(const Graph *g, Diag *d, const PipelineOpts *po, int index, const char *name)
{
	if (listed(po->dump_ir, name)) {
		fprintf(po->out, "; after %s\n", name);
		ir_print(po->out, g);
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
	ir_print(f, g);
	if (fclose(f) != 0) {
		diag_file_error(d, path, "cannot write IR dump: %s", strerror(errno));
		return false;
	}
	return true;
}

int
pipeline_run(Arena *a, Diag *d, const SemaOpts *so, const PipelineOpts *po, Graph **out)
{
	*out = NULL;
	if (po->dump_dir && mkdir(po->dump_dir, 0777) != 0 && errno != EEXIST) {
		diag_file_error(d, po->dump_dir, "cannot create dump directory: %s", strerror(errno));
		return NNC_EUSAGE;
	}
	Graph *g = sema_build(a, d, so);
	if (!g)
		return NNC_EUSER;
	for (int i = 0; i < nnc_npasses; i++) {
		if (nnc_passes[i].run && !nnc_passes[i].run(g, d))
			return d->nerrors ? NNC_EUSER : NNC_EINTERNAL;
		graph_renumber(g);
		if (!ir_verify(g, d, nnc_passes[i].name))
			return NNC_EINTERNAL;
		if (!dump(g, d, po, i, nnc_passes[i].name))
			return NNC_EUSAGE;
	}
	*out = g;
	return NNC_OK;
}
