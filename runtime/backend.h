/* One interface over the executors: the CPU's (runtime/exec.c) and the CUDA backend's
 * (runtime/cuda/, behind runtime/cuda/backend_cuda.c), so that the training session, nnrun and
 * the tests drive either through the same calls.
 *
 * The host Exec always holds the run: the parameters (what checkpoints and exports read), the
 * batch the data loader writes, and the step scalars (learning rate, optimizer step, loss scale,
 * RNG counter). A backend that runs elsewhere uploads the parameters when it opens, and
 * backend_sync brings them home. Training runs in one of two ways:
 *   - host-fed: the caller fills the input batch in the Exec and calls backend_run for each
 *     program run; the backend brings back the loss and the logits the metrics need and does
 *     the end-of-step bookkeeping into the Exec;
 *   - resident (a GPU without --host-data): backend_train_begin moves the dataset, the order and
 *     the learning-rate schedule to the device; backend_train_step enqueues one step without
 *     waiting; backend_train_read waits and brings back the scalars and the epoch's sums.
 * backend_evaluate runs the evaluation program over the test split either way.
 *
 * Invariants: every call returns false (or NULL) with a message in ERR when it fails; a failed
 * run may leave the host Exec part-way through a step, so a caller stops and continues from its
 * last checkpoint (runtime/session.c does). Nothing here prints or exits. */
#ifndef NNC_BACKEND_H
#define NNC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/data.h"
#include "runtime/exec.h"

typedef struct BackendOptions {
	const char *device;  /* "cpu", "cuda", or NULL: a usable GPU if there is one, else the CPU */
	bool deterministic;  /* GPU: only deterministic algorithms (bit-identical repeats) */
	bool check_numerics; /* GPU: fp16 convolutions overflow to +-inf as on the CPU; stop at the
	                        first NaN/Inf */
	bool no_graph;       /* GPU: launch the resident step's kernels instead of replaying a graph */
	bool host_data;      /* GPU: no resident loop; batches come from the host */
	size_t memory_limit; /* GPU: refuse to use more device memory than this (0: no limit; tests) */
	long fail_step;      /* GPU: inject a CUDA error at this resident step (0: never; tests) */
} BackendOptions;

/* The running sums of an epoch's training batches, as the metrics report them. */
typedef struct EpochSums {
	double loss_sum; /* loss * batch, summed */
	long correct, seen;
} EpochSums;

/* An evaluation's result: mean loss, correct predictions, images. */
typedef struct Score {
	double loss;
	long correct, count;
} Score;

typedef struct Backend Backend;

/* Opens the backend O asks for on E's plan (O->device; NULL picks a usable GPU, else the CPU)
 * and gives it E's parameters. NOTE (may be NULL) receives what to tell the user about the
 * choice ("running on the GPU: ...", cuDNN's notes), or "". NULL with ERR when the choice cannot
 * be honoured (--device cuda without a usable GPU, or a build without CUDA) or the device fails. */
Backend *backend_open(Exec *e, const BackendOptions *o, char *note, size_t notelen, char *err, size_t errlen);
void backend_close(Backend *b);

/* "cpu" or "cuda". */
const char *backend_name(const Backend *b);
/* Whether training runs the resident loop (after a successful backend_train_begin). */
bool backend_resident(const Backend *b);

/* Runs PROG once, host-fed: the batch in E's inputs goes over, the loss and logits come back,
 * and a training run's end-of-step bookkeeping (loss scale, step count) lands in E. */
bool backend_run(Backend *b, Exec *e, const PlanProgram *prog, char *err, size_t errlen);
/* Brings the parameters and optimizer state (and, resident, the step scalars) home into E. */
bool backend_sync(Backend *b, Exec *e, char *err, size_t errlen);

/* Moves training onto the resident loop from the run's state: E's scalars, the loader's order
 * and augmentation, SUMS so far in the epoch, every step's learning rate (recipe_lr). Returns
 * true without doing anything where the backend has no resident loop (the CPU, --host-data). */
bool backend_train_begin(Backend *b, Exec *e, const CifarData *data, const CifarLoader *ld, const EpochSums *sums,
	char *err, size_t errlen);
/* Enqueues one resident training step. */
bool backend_train_step(Backend *b, char *err, size_t errlen);
/* Waits for the resident loop and reads its scalars into E and the epoch's sums into SUMS;
 * *BAD_STEP is the step (counted from epoch 0's first) of the first non-finite loss, -1 if none,
 * and *BAD_LOSS that loss. END_OF_EPOCH: the device's sums restart from zero. */
bool backend_train_read(Backend *b, Exec *e, bool end_of_epoch, EpochSums *sums, long *bad_step, float *bad_loss,
	char *err, size_t errlen);

/* Evaluates the first N_TEST test images (the last, partial batch padded; only real rows count). */
bool backend_evaluate(Backend *b, Exec *e, CifarLoader *ld, int64_t n_test, Score *sc, char *err, size_t errlen);

/* What the resident loop runs: the graph's node count (0 when the step is not a graph), and why
 * not ("" when it is, or off the GPU). */
int backend_graph_nodes(const Backend *b);
const char *backend_graph_note(const Backend *b);
/* On the GPU, how convolution step STEP of program G (0 train, 1 eval) runs: cuDNN's algorithm,
 * its math, whether it was measured now or earlier or is cuDNN's guess, and its time
 * (nnrun info --device cuda); NULL on the CPU or for another step. */
const char *backend_conv_algo(const Backend *b, int g, int step);

/* Device launches per run of PLAN's program G (0 train, 1 eval): library calls and own kernels.
 * False where the build has no GPU backend (a count, not a measurement: no GPU needed). */
bool backend_gpu_launches(const struct Plan *plan, int g, int *library, int *own);
/* The GPU backends this build has and what this machine offers, in words, for `nnc version`:
 * "cuda (built for sm_90; NVIDIA H200, ...)", "cuda (built for sm_90; no NVIDIA GPU driver is
 * loaded on this machine ...)" or "no GPU backend (CUDA was not found when nnc was built)". */
const char *backend_gpu_describe(char *buf, size_t n);

#endif
