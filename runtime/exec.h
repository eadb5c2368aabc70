/* The CPU executor: runs a validated Plan's programs with the kernels of runtime/cpu/.
 *
 * Memory is allocated once, at exec_init: the plan's three arenas (parameters and state,
 * inputs, transients -- the memory plan decides where each value lives and which values share
 * memory) and a fourth, the workspace arena, which the backend sizes at load time because it
 * depends on the backend and the thread count: the convolution scratch of the largest
 * convolution step, the fp16 widening area and a little per-channel scratch, at offsets into
 * one allocation. Nothing is allocated while programs run.
 *
 * Kernels are dispatched through a table generated from the op table (one k_<op> per op,
 * static_asserted to cover them all). Optimizer hyperparameters and the learning rate come
 * from Exec.recipe and Exec.lr, which the caller may change between steps. */
#ifndef NNC_EXEC_H
#define NNC_EXEC_H

#include "runtime/cpu/rng.h"
#include "core/half.h"
#include <stdio.h>

#include "runtime/plan.h"


/* The workspace arena's parts, in bytes (each a multiple of 64). */
typedef struct {
	size_t conv;    /* im2col and partial-sum slots of the largest convolution step */
	size_t wide;    /* fp16 operands and result of any one step, widened to f32 */
	size_t view;    /* one value as f32 (exec_view_f32, the unscaled gradient of an update) */
	size_t scratch; /* one float per channel of the widest tensor */
	size_t lay;     /* NCHW copies of a channels-last step's operands and result, for the
	                 * steps without a channels-last CPU kernel (pooling, im2col convolutions) */
	size_t part;    /* the channels-last per-channel reductions' partial sums */
	size_t total;
} ExecWorkspace;

/* The workspace arena PLAN needs with THREADS worker threads. */
ExecWorkspace exec_workspace(const Plan *plan, int threads);

/* The kernels a whole run of PROG makes on the CPU: one per step, but one for a backward group
 * of three and none for a widening cast its statistics group reads through (run_steps). */
int exec_kernel_count(const PlanProgram *prog);

/* Of PLAN's convolution passes with THREADS threads (after exec_workspace, which prepares
 * them), how many run through oneDNN and how many through im2col, and oneDNN's kernel name of
 * the first (NULL when none). */
void exec_conv_kinds(const Plan *plan, int threads, int *dnnl, int *im2col, const char **impl);
/* Of PROG's steps with fp16 operands or results: how many read or write their large ones as
 * stored (RAW, converting in their kernels' inner loops), how many take f32 copies of all
 * (WIDENED); NNC_CPU_F16=widen makes them all widened (exec.c, raw16_mask). */
void exec_f16_kinds(const Plan *plan, const PlanProgram *prog, int *raw, int *widened);

typedef struct {
	const Plan *plan;
	unsigned char *base[NARENA]; /* the plan's arenas; value v lives at base[arena[v]] + offset[v] */
	unsigned char *work; /* the workspace arena (ExecWorkspace): ws, wide, view, scratch */
	void *ws;            /* convolution workspace */
	size_t ws_bytes;
	float *scratch;      /* per-channel scratch (unused kernel outputs) */
	int threads;
	Recipe recipe;       /* effective settings of this run */
	double lr;           /* learning rate of the next update */
	long step;           /* optimizer updates done so far */
	CpuRng rng;          /* dropout masks */
	int failed_step;     /* index of the step that failed, or -1 */
	/* fp16: operands stored in f16 are widened into `wide` for the f32 kernels and results
	 * rounded back (fp16 storage, f32 accumulation); `view` serves exec_view_f32. */
	float *wide, *view;
	size_t wide_elems;
	bool f16_widen; /* NNC_CPU_F16=widen: no kernel reads fp16 as stored (exec.c, raw16_mask) */
	int wide_first; /* the value whose f32 copy starts `wide` (exec.c, widen), or -1 */
	float *lay;   /* ExecWorkspace.lay */
	double *part; /* ExecWorkspace.part */
	/* loss scaling (plans with a loss_scale step) */
	double loss_scale;
	long clean_steps, skipped_steps;
	long loss_scale_interval;
	double loss_scale_growth, loss_scale_backoff;
	bool skip_update;    /* set by grad_check for this step */
	/* --check-numerics: per step of each program (0 train, 1 eval), what its results hold and
	 * what storing them in fp16 does (overflow and underflow count for f16 results only). */
	bool check_numerics;
	HalfStats *numerics[2];
} Exec;

/* Allocates everything for PLAN and starts THREADS worker threads. Returns false with a
 * message naming the plan and the bytes needed when memory is short. */
bool exec_init(Exec *e, const Plan *plan, int threads, char *err, size_t errlen);
void exec_free(Exec *e);
/* Turns on numerics monitoring (allocates its counters; call before running). */
bool exec_check_numerics(Exec *e);
/* Prints the steps whose results overflowed, underflowed to zero or held NaN/Inf, with their
 * source lines, most affected first. */
void exec_numerics_report(const Exec *e, FILE *out);

/* Fills every parameter from its initializer, deterministically from SEED (weight_init
 * "whiten" as torch_default: runtime/whiten.h sets it from the data when training starts). */
void exec_init_params(Exec *e, uint64_t seed);
/* Stores VALUE's f32 elements V, in PyTorch's order, into its storage DST (exec_f32(e, VALUE)),
 * rounding and transposing as its type needs; V may be Exec.view. */
void exec_store_torch(Exec *e, int value, const float *v, void *dst);
/* Runs every step of PROG in order. Returns false with the failing step, its kernel and its
 * .nn source location in err (e.g. a label outside the model's classes). */
bool exec_run(Exec *e, const PlanProgram *prog, char *err, size_t errlen);

/* The end-of-step bookkeeping of exec_run (loss scale, optimizer step count) for a run done
 * elsewhere (the CUDA backend): SKIPPED says grad_check found inf/NaN. */
void exec_finish_step(Exec *e, const PlanProgram *prog, bool skipped);
/* Runs steps [first, last) of PROG only (first == 0 clears the inf/NaN flag), without the
 * end-of-step bookkeeping of exec_run: for comparing backends step by step. */
bool exec_run_steps(Exec *e, const PlanProgram *prog, int first, int last, char *err, size_t errlen);

/* VALUE as f32: its storage if it is f32, else a converted copy (valid until the next call). */
const float *exec_view_f32(Exec *e, int value);
/* Copies a tensor of type T (f32 or f16 elements, by T's dtype) from SRC in T's layout to DST
 * in PyTorch's (TO_TORCH), or back: a channels-last image or filter (passes/layout.c) is
 * transposed to NCHW / OIHW, anything else copied as it is. Checkpoints, exports and
 * initialisation go through it, so files keep PyTorch's layout whatever the plan's. */
void exec_copy_torch(const Type *t, const void *src, void *dst, bool to_torch);
/* Writes N floats into VALUE (converting to its storage dtype). */
void exec_store_f32(Exec *e, int value, const float *src);

static inline float *
exec_f32(const Exec *e, int value)
{
	return (float *)(e->base[e->plan->arena[value]] + e->plan->offset[value]);
}

static inline int32_t *
exec_i32(const Exec *e, int value)
{
	return (int32_t *)(e->base[e->plan->arena[value]] + e->plan->offset[value]);
}

#endif
