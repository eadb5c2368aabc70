/* C interface of the CUDA backend. Nothing outside runtime/cuda/ includes CUDA headers; the
 * rest of nnc calls these functions, which report failures as text (the failing call, its file
 * and line, and the plan step with its .nn location) instead of exiting. The backend is built
 * only where nvcc, cuBLAS and cuDNN are found (NNC_HAVE_CUDA).
 *
 * Execution model: a CudaExec holds a plan's arenas in device memory (parameters and state,
 * inputs, activations, workspace), allocated once when it is made, and for every step its
 * prepared launch: device pointers, cuDNN descriptors and the convolution algorithm chosen once
 * per shape. Running a program launches its steps in order on one stream; nothing is allocated
 * while it runs. An eager run (nnc_cuda_run) takes the run's scalars (learning rate, optimizer
 * step, loss scale, dropout stream position) from the host; the resident training loop below
 * keeps them on the device. The inf/NaN flag of grad_check stays on the device, where the
 * updates read it. */
#ifndef NNC_CUDA_BACKEND_H
#define NNC_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the number of usable GPUs (>= 0) and describes the first one (name, compute
 * capability, memory) in msg; returns -1 with the reason in msg when the driver or runtime is
 * unusable (no GPU, no driver). */
int nnc_cuda_device_count(char *msg, size_t msglen);

/* Creates and destroys cuBLAS and cuDNN handles on device 0, proving the libraries load and
 * link. Returns 0, or -1 with the failing call, file and line in msg. */
int nnc_cuda_selftest(char *msg, size_t msglen);

struct Plan;
typedef struct CudaExec CudaExec;

typedef struct {
	int device;          /* CUDA device ordinal */
	int deterministic;   /* only deterministic cuDNN algorithms (bit-identical repeats) */
	size_t workspace_max; /* bytes of convolution workspace to allow at most (0: 256 MiB) */
	int direct_conv;     /* every convolution through nnc's direct kernels, cuDNN's fallback (tests) */
	int ieee_overflow;   /* fp16 forward convolutions through cuDNN's implicit_gemm, whose results
	                      * overflow to +-inf as IEEE arithmetic does (nnrun --check-numerics):
	                      * implicit_precomp_gemm, its usual choice, returns finite values where the
	                      * exact result is beyond fp16's range (docs/cuda.md) */
	int heuristic_algos; /* convolution algorithms from cuDNN's heuristics, not by measurement
	                      * (nnrun: NNC_CUDA_CONV_ALGO=heuristic; docs/cuda.md) */
	int fwd_algo;        /* tests: when > 0, every forward convolution uses cuDNN forward algorithm
	                      * fwd_algo - 1 where cuDNN offers it (test_cuda_vs_cpu: NNC_CUDA_FWD_ALGO) */
	size_t memory_limit; /* tests: when > 0, the GPU is taken to have at most this many bytes free
	                      * (nnrun: NNC_CUDA_MEMORY_LIMIT), to see the out-of-memory message */
	long fail_step;      /* fault injection (tests): when > 0, the resident loop's step number
	                      * fail_step (1-based) fails as a CUDA error would, after the steps before
	                      * it ran (nnrun: NNC_CUDA_FAIL_STEP) */
} CudaOptions;

/* What the host keeps between steps and passes to a run (see exec.h's Exec for the CPU's). */
typedef struct {
	double lr;          /* learning rate of this step's updates */
	long step;          /* optimizer updates done so far (Adam's bias correction uses step + 1) */
	double loss_scale;  /* the current loss scale S (1 without scaling) */
	uint64_t rng_key, rng_counter; /* dropout masks: Philox4x32-10, as runtime/cpu/rng.h; the
	                                * run advances rng_counter by the elements it draws */
	/* recipe values the update kernels read */
	double momentum, weight_decay, beta1, beta2, eps, label_smoothing;
	int nesterov;
	int stochastic_rounding; /* optimizer.rounding stochastic: updated fp16 weights rounded as
	                          * runtime/sround.h says, from the recipe's seed */
	uint64_t seed;
} CudaRunState;

/* Makes the device-side executor for PLAN. Returns NULL with a message naming what failed:
 * no device, too little memory (the bytes the plan needs against the bytes free), a step the
 * backend cannot run (naming the step's op and .nn location). A convolution cuDNN cannot run
 * falls back to nnc's direct kernels instead (nnc_cuda_notes says which). */
CudaExec *nnc_cuda_exec_new(const struct Plan *plan, const CudaOptions *o, char *err, size_t errlen);
void nnc_cuda_exec_free(CudaExec *e);

/* Copies value V's storage (type_numel * dtype size bytes) between HOST and the device. */
int nnc_cuda_upload(CudaExec *e, int v, const void *host, char *err, size_t errlen);
int nnc_cuda_download(CudaExec *e, int v, void *host, char *err, size_t errlen);
/* Copies arena K (PlanArena order: param, io, act) as a whole, bytes [0, plan arena size). */
int nnc_cuda_upload_arena(CudaExec *e, int k, const void *host, char *err, size_t errlen);
int nnc_cuda_download_arena(CudaExec *e, int k, void *host, char *err, size_t errlen);
/* Fills every byte of the activation arena with 0xFF (NaN in f32 and f16): results that a
 * step does not write show up as NaN in comparisons. */
int nnc_cuda_poison(CudaExec *e, char *err, size_t errlen);

/* Runs steps [first, last) of program PROG (0: train, 1: eval) and waits for them. Updates
 * ST->rng_counter. *SKIPPED (may be NULL) is grad_check's flag after the run: inf/NaN found by a
 * check since the program's start (nnc_cuda_run_clears_check), so the updates were skipped. Returns 0, or -1 with the failing call and the step's op and .nn
 * location in err. */
int nnc_cuda_run(CudaExec *e, int prog, int first, int last, CudaRunState *st, int *skipped, char *err,
	size_t errlen);

/* Whether nnc_cuda_run over steps [first, last) of program G of PLAN clears grad_check's inf/NaN
 * flag before it runs (plan_run_clears_check, the CPU executor's rule; needs no GPU: the host
 * tests replay split runs with it). */
int nnc_cuda_run_clears_check(const struct Plan *plan, int g, int first, int last);

/* ---- the resident training loop (resident.cu) ----
 * The dataset lives on the device; each training step renders its batch there (the CPU
 * loader's order, crop, flip and cutout, bit for bit), runs the training program, and folds its
 * loss and correct predictions into per-epoch sums and its outcome into the step state (loss
 * scale, optimizer step, data order, next learning rate) -- all on the device, so a step needs
 * nothing from the host. The step after the first is captured as a CUDA graph and replayed.
 * The host reads the state back only when it asks (nnc_cuda_train_read). */

typedef struct {
	const uint8_t *images[2]; /* [0] training, [1] test images: CHW bytes, 3072 each */
	const uint8_t *labels[2];
	int32_t n[2];
	const float *lut;         /* [3][256]: normalized value of each byte, per channel */
	uint64_t seed;
	int shuffle, crop_pad, crop_reflect, flip, cutout; /* as runtime/data.h's CifarConfig */
} CudaDataset;

/* Copies the dataset to the device (once, before training). Labels must be below the model's
 * class count. The plan's inputs 0 and 1 must be the f32 image batch and the i32 labels. */
int nnc_cuda_data(CudaExec *e, const CudaDataset *d, char *err, size_t errlen);

/* The step state the host reads back. */
typedef struct {
	long step, skipped_steps;
	int clean_steps;
	double loss_scale, lr;
	uint64_t rng_counter;
	uint64_t epoch, position;   /* where the next batch starts */
	double loss_sum;            /* the epoch's sums: loss * batch, correct predictions, images */
	long correct, seen;
	long nonfinite_at;          /* steps since epoch 0 before the first non-finite loss; -1 */
	float nonfinite_loss;
} CudaTrainState;

/* Starts the loop from the host's state ST (recipe constants, lr unused), with IN's step,
 * loss-scale, order and epoch sums, and LR[i], the learning rate of step i since epoch 0 (NLR
 * entries). GRAPH: 1 to capture the step as a CUDA graph (after one eager step), 0 not to. */
int nnc_cuda_train_begin(CudaExec *e, const CudaRunState *st, const CudaTrainState *in, const double *lr, long nlr,
	int graph, char *err, size_t errlen);
/* Enqueues one training step and returns without waiting (with --check-numerics it waits and
 * checks). */
int nnc_cuda_train_step(CudaExec *e, char *err, size_t errlen);
/* Waits for the enqueued steps and reads the state; with RESET_SUMS (at an epoch's end), the
 * epoch's sums start again from zero. */
int nnc_cuda_train_read(CudaExec *e, CudaTrainState *out, int reset_sums, char *err, size_t errlen);
/* Why the step runs without a CUDA graph ("" when it runs with one or none was asked for). */
const char *nnc_cuda_graph_note(const CudaExec *e);
/* The kernel launches (and copies, sets) in the captured step's graph; 0 before capture. */
int nnc_cuda_graph_nodes(const CudaExec *e);
/* Evaluates the first N images of the test set with the eval program, on the device: the sum
 * of per-batch mean loss times valid rows, the correct predictions and the images counted. */
int nnc_cuda_evaluate(CudaExec *e, long n, double *loss_sum, long *correct, long *count, char *err, size_t errlen);

/* --check-numerics on the GPU: when on, every step's result (and the parameters an update
 * writes) is checked, and nnc_cuda_run fails at the first step that produced NaN or Inf,
 * naming its op and .nn location -- except in the backward pass of a plan with loss scaling,
 * where overflow is expected and grad_check skips the step (as on the CPU). */
int nnc_cuda_check_numerics(CudaExec *e, char *err, size_t errlen);

/* The launches one run of program G (0 train, 1 eval) of PLAN makes on the GPU: cuDNN and
 * cuBLAS calls, and nnc's own kernels. Needs no GPU. */
void nnc_cuda_launches(const struct Plan *plan, int g, int *library, int *own);

/* The algorithm convolution step STEP of program G runs with: cuDNN's name for it (as
 * "fwd implicit_precomp_gemm"), "direct" for nnc's own kernels, "" for other steps. */
const char *nnc_cuda_conv_algo(const CudaExec *e, int g, int step);

/* What the user should know about how the plan runs here ("" when nothing): the convolutions
 * cuDNN offers no algorithm for, which run through nnc's direct kernels (slowly), each named
 * with its .nn location and the reason. */
const char *nnc_cuda_notes(const CudaExec *e);

/* Bytes of device memory the executor holds: arenas plus workspace. */
size_t nnc_cuda_bytes(const CudaExec *e);

#ifdef __cplusplus
}
#endif

#endif
