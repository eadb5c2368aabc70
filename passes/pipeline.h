/* The pass pipeline: one table lists every pass in order; it drives execution, the IR verifier
 * after each pass (on every graph of the module), and `--dump-ir=PASS,...` / `--dump-dir`.
 * Adding a pass is one file with one entry point `bool pass_NAME(Module *, Diag *)` and one row
 * in the table in pipeline.c. */
#ifndef NNC_PIPELINE_H
#define NNC_PIPELINE_H

#include <stdio.h>

#include "compiler/sema.h"

typedef bool PassFn(Module *m, Diag *d);

typedef struct {
	const char *name;
	PassFn *run; /* NULL for "sema", which builds the graph from source */
	const char *doc;
} Pass;

extern const Pass nnc_passes[];
extern const int nnc_npasses;

typedef struct {
	const char *dump_ir;  /* "all", or comma-separated pass names; NULL: none */
	const char *dump_dir; /* one numbered file per pass, e.g. 01-sema.ir; NULL: none */
	FILE *out;            /* where --dump-ir goes */
	const Precision *precision; /* NULL: fp32 */
	bool no_reuse;        /* memplan gives every value its own memory (nnc --no-reuse) */
	bool no_fuse;         /* the fuse pass leaves the graph alone (nnc --no-fuse) */
	LayoutMode layout;    /* nnc --layout (LAYOUT_AUTO unless given) */
} PipelineOpts;

enum { NNC_OK = 0, NNC_EUSER = 1, NNC_EUSAGE = 2, NNC_EINTERNAL = 3 };

/* Checks a --dump-ir list; on error writes a message naming the bad pass into err. */
bool pipeline_check_dump_list(const char *list, char *err, size_t errlen);
/* Builds and transforms the module's graphs. Returns NNC_OK, NNC_EUSER or NNC_EINTERNAL. */
int pipeline_run(Arena *a, Diag *d, const SemaOpts *so, const PipelineOpts *po, const Recipe *recipe, Module *out);
/* Prints every graph of the module. */
void module_print(FILE *out, const Module *m);

/* Passes. */
bool pass_dce(Module *m, Diag *d);
bool pass_split(Module *m, Diag *d);
bool pass_trainmode(Module *m, Diag *d);
bool pass_autodiff(Module *m, Diag *d);
bool pass_optimizer(Module *m, Diag *d);
bool pass_precision(Module *m, Diag *d);
bool pass_layout(Module *m, Diag *d);
bool pass_fuse(Module *m, Diag *d);
bool pass_memplan(Module *m, Diag *d);

/* Reads a precision policy: "fp32", "fp16", "mixed", or a YAML policy file (docs/precision.md).
 * Returns false with "file:line:col: error: ..." in err. */
bool precision_parse(const char *spec, Precision *p, Arena *a, char *err, size_t errlen);

/* The loss output of a forward graph (see split.c), or NULL; REPORT: diagnose ambiguity. */
Value *module_loss(const Graph *g, Diag *d, bool report);

#endif
