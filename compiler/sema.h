/* Semantic analysis: .nn source -> IR Graph.
 *
 * Loads the root file and its imports (each file once; cycles are errors), evaluates top-level
 * constants, registers blocks, then evaluates the chosen model's body: constants, lists,
 * conditionals and loops run at compile time, blocks are expanded inline, and every op call
 * becomes an IR Inst typed by shape inference. Hierarchical names ("stage2.block3.conv1") come
 * from `as` labels, assignment targets and block scopes. All errors are reported through the
 * Diag with locations; evaluation is bounded (nesting, loop iterations, IR size) so no input
 * can hang or exhaust the compiler. */
#ifndef NNC_SEMA_H
#define NNC_SEMA_H

#include "compiler/ir.h"

typedef struct {
	const char *path;      /* root .nn file */
	const char *source;    /* if non-NULL, the root file's text (fuzzing, tests) */
	size_t source_len;
	const char *model;     /* which model to build; NULL: the only one in the root file */
	int batch;             /* batch size of the graph (> 0) */
	const char **incdirs;  /* extra directories searched by import */
	int nincdirs;
} SemaOpts;

/* Returns the graph, or NULL if any error was reported. */
Graph *sema_build(Arena *a, Diag *d, const SemaOpts *o);

#endif
