/* The CUDA backend behind runtime/backend.h: the operations of runtime/backend_impl.h on a
 * CudaExec (runtime/cuda/cuda_backend.h). Host-fed runs send the batch and bring back the loss
 * and logits; the resident loop keeps the dataset, the order and the step scalars on the GPU
 * (resident.cu) and is read back only when asked. The end-of-step bookkeeping of a host-fed
 * training run is exec_finish_step's, on the host Exec, from the device's skip flag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend_impl.h"
#include "runtime/cuda/cuda_backend.h"

typedef struct CudaBackend {
	Backend base;
	CudaExec *gpu;
} CudaBackend;

static CudaExec *
gpu_of(const Backend *b)
{
	return ((const CudaBackend *)b)->gpu;
}

/* The scalars a program run reads, from the host Exec. */
static CudaRunState
run_state(const Exec *e)
{
	return (CudaRunState){.lr = e->lr, .step = e->step, .loss_scale = e->loss_scale, .rng_key = e->rng.key,
		.rng_counter = e->rng.counter, .momentum = e->recipe.momentum, .weight_decay = e->recipe.weight_decay,
		.beta1 = e->recipe.beta1, .beta2 = e->recipe.beta2, .eps = e->recipe.eps,
		.label_smoothing = e->recipe.label_smoothing, .nesterov = e->recipe.nesterov,
		.stochastic_rounding = !strcmp(e->recipe.rounding, "stochastic"), .seed = (uint64_t)e->recipe.seed};
}

static bool
cuda_run(Backend *b, Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	CudaRunState st = run_state(e);
	int skipped = 0;
	if (nnc_cuda_upload_arena(gpu_of(b), ARENA_IO, e->base[ARENA_IO], err, errlen) != 0 ||
	    nnc_cuda_run(gpu_of(b), prog == &p->eval, 0, prog->nsteps, &st, &skipped, err, errlen) != 0)
		return false;
	e->rng.counter = st.rng_counter;
	if ((prog->loss >= 0 && nnc_cuda_download(gpu_of(b), prog->loss, exec_f32(e, prog->loss), err, errlen) != 0) ||
	    (prog->logits >= 0 && nnc_cuda_download(gpu_of(b), prog->logits, exec_f32(e, prog->logits), err, errlen) != 0))
		return false;
	if (prog == &p->train)
		exec_finish_step(e, prog, skipped != 0);
	return true;
}

static bool
cuda_train_read(Backend *b, Exec *e, bool end_of_epoch, EpochSums *sums, long *bad_step, float *bad_loss, char *err,
	size_t errlen)
{
	CudaTrainState t;
	if (nnc_cuda_train_read(gpu_of(b), &t, end_of_epoch, err, errlen) != 0)
		return false;
	e->step = t.step;
	e->skipped_steps = t.skipped_steps;
	e->clean_steps = t.clean_steps;
	e->loss_scale = t.loss_scale;
	e->rng.counter = t.rng_counter;
	*sums = (EpochSums){t.loss_sum, t.correct, t.seen};
	*bad_step = t.nonfinite_at;
	*bad_loss = t.nonfinite_loss;
	return true;
}

static bool
cuda_sync(Backend *b, Exec *e, char *err, size_t errlen)
{
	if (b->resident) {
		EpochSums sums;
		long bad_step;
		float bad_loss;
		if (!cuda_train_read(b, e, false, &sums, &bad_step, &bad_loss, err, errlen))
			return false;
	}
	return nnc_cuda_download_arena(gpu_of(b), ARENA_PARAM, e->base[ARENA_PARAM], err, errlen) == 0;
}

/* The learning rate of every step of the run, computed on the host (recipe_lr) for the device's
 * table, the dataset and the state to continue from. */
static bool
cuda_train_begin(Backend *b, Exec *e, const CifarData *data, const CifarLoader *ld, const EpochSums *sums, char *err,
	size_t errlen)
{
	const Plan *p = e->plan;
	CudaDataset ds = {.images = {data->images[CIFAR_TRAIN], data->images[CIFAR_TEST]},
		.labels = {data->labels[CIFAR_TRAIN], data->labels[CIFAR_TEST]}, .n = {data->n[CIFAR_TRAIN], data->n[CIFAR_TEST]},
		.lut = &ld->lut[0][0], .seed = ld->cfg.seed, .shuffle = ld->cfg.shuffle, .crop_pad = ld->cfg.crop_pad,
		.crop_reflect = ld->cfg.crop_reflect, .flip = ld->cfg.flip, .cutout = ld->cfg.cutout};
	int64_t nb = cifar_batches_per_epoch(ld);
	long nlr = (long)(p->recipe.epochs * nb);
	double *lr = malloc((size_t)(nlr > 0 ? nlr : 1) * sizeof *lr);
	if (!lr) {
		snprintf(err, errlen, "out of memory for the learning-rate schedule");
		return false;
	}
	for (long i = 0; i < nlr; i++)
		lr[i] = recipe_lr(&p->recipe, (double)(i / nb) + (double)(i % nb) / (double)nb);
	CudaRunState st = run_state(e);
	CudaTrainState in = {.step = e->step, .skipped_steps = e->skipped_steps, .clean_steps = (int)e->clean_steps,
		.loss_scale = e->loss_scale, .rng_counter = e->rng.counter, .epoch = ld->order.epoch,
		.position = ld->order.position, .loss_sum = sums->loss_sum, .correct = sums->correct, .seen = sums->seen};
	bool ok = nnc_cuda_data(gpu_of(b), &ds, err, errlen) == 0 &&
	          nnc_cuda_train_begin(gpu_of(b), &st, &in, lr, nlr, !b->opt.no_graph, err, errlen) == 0;
	free(lr);
	return ok;
}

static bool
cuda_train_step(Backend *b, char *err, size_t errlen)
{
	return nnc_cuda_train_step(gpu_of(b), err, errlen) == 0;
}

static bool
cuda_evaluate(Backend *b, int64_t n_test, Score *sc, char *err, size_t errlen)
{
	return nnc_cuda_evaluate(gpu_of(b), (long)n_test, &sc->loss, &sc->correct, &sc->count, err, errlen) == 0;
}

static int
cuda_graph_nodes(const Backend *b)
{
	return b->resident ? nnc_cuda_graph_nodes(gpu_of(b)) : 0;
}

static const char *
cuda_graph_note(const Backend *b)
{
	return nnc_cuda_graph_note(gpu_of(b));
}

static const char *
cuda_conv_algo(const Backend *b, int g, int step)
{
	return nnc_cuda_conv_algo(gpu_of(b), g, step);
}

static void
cuda_close(Backend *b)
{
	nnc_cuda_exec_free(gpu_of(b));
	((CudaBackend *)b)->gpu = NULL;
}

static const BackendOps cuda_ops = {.name = "cuda", .run = cuda_run, .sync = cuda_sync, .train_begin = cuda_train_begin,
	.train_step = cuda_train_step, .train_read = cuda_train_read, .evaluate = cuda_evaluate,
	.graph_nodes = cuda_graph_nodes, .graph_note = cuda_graph_note, .conv_algo = cuda_conv_algo, .close = cuda_close};

Backend *
backend_gpu_open(Exec *e, const BackendOptions *o, char *note, size_t notelen, char *err, size_t errlen)
{
	char msg[1024];
	if (nnc_cuda_device_count(msg, sizeof msg) <= 0) {
		snprintf(err, errlen, "no usable GPU: %s", msg);
		return NULL;
	}
	CudaBackend *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->base.ops = &cuda_ops;
	c->base.opt = *o;
	const char *how = getenv("NNC_CUDA_CONV_ALGO"); /* heuristic: cuDNN's guess, not a measurement */
	CudaOptions co = {.device = 0, .deterministic = o->deterministic, .ieee_overflow = o->check_numerics,
		.memory_limit = o->memory_limit, .fail_step = o->fail_step,
		.heuristic_algos = how && strcmp(how, "heuristic") == 0};
	c->gpu = nnc_cuda_exec_new(e->plan, &co, err, errlen);
	/* --check-numerics on the GPU stops at the first NaN/Inf; the fp16 overflow and underflow
	 * counts of the report are the CPU executor's */
	if (!c->gpu || (o->check_numerics && nnc_cuda_check_numerics(c->gpu, err, errlen) != 0) ||
	    nnc_cuda_upload_arena(c->gpu, ARENA_PARAM, e->base[ARENA_PARAM], err, errlen) != 0) {
		nnc_cuda_exec_free(c->gpu);
		free(c);
		return NULL;
	}
	const char *notes = nnc_cuda_notes(c->gpu);
	snprintf(note, notelen, "running on the GPU: %s%s%s", msg, notes[0] ? "\nnote: " : "", notes);
	return &c->base;
}

bool
backend_gpu_launches(const struct Plan *plan, int g, int *library, int *own)
{
	nnc_cuda_launches(plan, g, library, own);
	return true;
}
