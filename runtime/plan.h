/* Execution plans: what `nnc compile` writes and `nnrun` runs.
 *
 * A plan holds one table of values (every tensor of both programs: inputs, parameters and
 * optimizer state, activations, gradients) with their types; the parameters with name, role,
 * initializer and fans; and ordered programs -- `train` (one whole training step: forward,
 * backward, update) and `eval` (inference) -- whose steps name a kernel (an op of
 * core/ops.h), operand and result values, all attributes, the op's hierarchical name and its
 * .nn source location. The training settings (a Recipe) travel with it.
 *
 * Every value has a place: an arena and a byte offset (the memory plan); the plan loader checks
 * that no two values alive at the same time in a program overlap.
 *
 * The file is YAML (docs/plan.md), versioned, and ends with a checksum of everything before
 * it. plan_read validates everything: version, structure, value references and SSA order, every
 * step's kernel and attributes against the op table, and every result type by re-running shape
 * inference, so a truncated, corrupt or inconsistently edited plan is rejected with a message
 * naming the file and the problem. */
#ifndef NNC_PLAN_H
#define NNC_PLAN_H

#include <stdio.h>

#include "core/arena.h"
#include "core/recipe.h"
#include "core/types.h"

enum { PLAN_VERSION = 6 };


typedef struct {
	const char *name; /* e.g. "layer1.0.conv1.weight", "optim.linear.bias.momentum_buffer" */
	const char *kind; /* weight, bias, scale, shift, running_mean, running_var, momentum_buffer... */
	const char *init; /* initializer (core/infer.h: nnc_initializers) */
	int value;
	bool trainable;
	int64_t fan_in, fan_out;
} PlanParam;

typedef struct {
	const char *name;
	const char *kind; /* image | labels */
	int value;
} PlanInput;

typedef struct {
	Op op;
	int out; /* value id, or -1 for ops without a result */
	int nin;
	int *in;
	AttrVal attr[NNC_MAXATTR];
	const char *name; /* hierarchical scope, may be "" */
	const char *loc;  /* "file:line:col" */
	DType acc;        /* accumulation dtype */
	Epilogue epi;     /* activation applied to the result by the same kernel (OPF_EPI ops) */
	Epilogue pro;     /* activation whose backward masks operand 0, its output the last operand */
	Op chain[NNC_MAXCHAIN]; /* elementwise ops run first, feeding this one (ops.h) */
	int nchain;
	int group;        /* N > 1: this step and the next N - 1 are one group (GroupKind, core/ops.h) */
} PlanStep;

typedef struct {
	PlanStep *steps;
	int nsteps;
	int loss, logits; /* value ids, -1 if absent */
} PlanProgram;

typedef struct Plan {
	int version;
	const char *model;
	const char *source;
	int batch;
	Recipe recipe;
	Type *values;
	int nvalues;
	int *arena;        /* per value: PLAN_ARENA_* */
	int64_t *offset;   /* per value: bytes into its arena */
	int64_t arena_bytes[NARENA];
	PlanParam *params;
	int nparams;
	PlanInput inputs[2]; /* image, labels (value -1 when absent) */
	PlanProgram train, eval;
	bool has_train;
} Plan;

/* The kind of the group that starts at step I of a validated program (GROUP_NONE when none
 * starts there), by its first two members' ops. */
GroupKind plan_group_kind(const PlanProgram *prog, int i);

/* Writes PLAN as YAML with a trailing checksum line. Returns false on a write error. */
bool plan_write(FILE *out, const Plan *plan);
/* Reads and validates PATH into PLAN (allocated in A). ALLOW_EDITED skips the checksum
 * comparison (the plan is still fully validated). Returns false with "PATH: error: ..." in err. */
bool plan_read(const char *path, Plan *plan, Arena *a, bool allow_edited, char *err, size_t errlen);
/* plan_read of LEN bytes of plan text at DATA (PATH names it in messages). */
bool plan_parse(const char *data, size_t len, const char *path, Plan *plan, Arena *a, bool allow_edited, char *err,
	size_t errlen);
/* Re-checks a plan in memory (also used by plan_read). */
bool plan_validate(const Plan *plan, char *err, size_t errlen);
/* 64-bit FNV-1a over N bytes, continuing from H (start with PLAN_HASH_INIT). */
#define PLAN_HASH_INIT 0xcbf29ce484222325ull
uint64_t plan_hash(uint64_t h, const void *p, size_t n);

/* The one rule both executors follow for grad_check's inf/NaN flag when a program runs in
 * pieces (exec_run_steps, nnc_cuda_run): a run that starts the program (FIRST == 0) clears it;
 * every other run keeps it, so an update sees what every check chunk before it found, however
 * the steps are split. Clearing it in a run because that run holds a check (the CUDA rule
 * before 2026-12-04) forgot an overflow an earlier chunk had found. */
static inline bool
plan_run_clears_check(int first)
{
	return first == 0;
}

/* The arithmetic and memory traffic of one run of PROG, for rooflines (nnrun info): 2 FLOP per
 * multiply-add of every convolution and dense step, forward and backward, added to *FLOPS; the
 * bytes of every operand and result of every kernel, once (a backward group's shared operands
 * once; a chain's intermediates never leave the kernel), added to *BYTES. */
void plan_program_cost(const Plan *p, const PlanProgram *prog, double *flops, double *bytes);

#endif
