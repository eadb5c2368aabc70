/* The pass pipeline: one table lists every pass in order; it drives execution, the IR verifier
 * after each pass, and `--dump-ir=PASS,...` / `--dump-dir`. Adding a pass is one file with one
 * entry point `bool pass_NAME(Graph *, Diag *)` and one row in the table in pipeline.c. */
#ifndef NNC_PIPELINE_H
#define NNC_PIPELINE_H

#include <stdio.h>

#include "compiler/sema.h"

typedef bool PassFn(Graph *g, Diag *d);

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
} PipelineOpts;

enum { NNC_OK = 0, NNC_EUSER = 1, NNC_EUSAGE = 2, NNC_EINTERNAL = 3 };

/* Checks a --dump-ir list; on error writes a message naming the bad pass into err. */
bool pipeline_check_dump_list(const char *list, char *err, size_t errlen);
/* Builds and transforms the graph. Returns NNC_OK, NNC_EUSER or NNC_EINTERNAL. */
int pipeline_run(Arena *a, Diag *d, const SemaOpts *so, const PipelineOpts *po, Graph **out);

/* Passes. */
bool pass_dce(Graph *g, Diag *d);

#endif
