/* nnrun: runs execution plans written by `nnc compile`.
 *
 *   nnrun info PLAN                 validate a plan and summarize it
 *   nnrun train PLAN --data DIR     train on CIFAR-10 (progress, metrics, checkpoints, resume)
 *   nnrun eval PLAN --weights W     evaluate a checkpoint or safetensors file on the test set
 *   nnrun export PLAN --weights CKPT -o W.safetensors
 *                                   write the model's weights (PyTorch names) for other tools
 *
 * Exit codes: 0 success, 1 bad input (plan, data, checkpoint), 2 bad usage, 130 interrupted
 * (a checkpoint was saved). Only this file exits. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/checkpoint.h"
#include "runtime/cpu/kernels.h"
#include "runtime/data.h"
#include "runtime/exec.h"
#include "runtime/half.h"
#include "runtime/runfiles.h"
#include "runtime/safetensors.h"
#ifdef NNC_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

enum { EXIT_USER = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

static const char usage[] =
	"usage: nnrun COMMAND PLAN [options]\n"
	"\n"
	"commands:\n"
	"  info PLAN                       validate the plan and summarize it\n"
	"  train PLAN --data DIR           train on CIFAR-10\n"
	"  eval PLAN --weights FILE --data DIR\n"
	"                                  test accuracy and loss of a checkpoint or .safetensors\n"
	"  export PLAN --weights CKPT -o OUT.safetensors\n"
	"                                  the model's parameters under their PyTorch-style names\n"
	"  compare A.plan B.plan --weights W --data DIR [--csv FILE]\n"
	"                                  the same weights through two plans (e.g. fp32 and fp16)\n"
	"                                  on the test set: per image delta = max |pA - pB| and\n"
	"                                  Gamma = top-1 - top-2 of pA; Lemma 3.3 of the paper says\n"
	"                                  Gamma >= 2 delta guarantees the same prediction\n"
	"  bench PLAN [--steps N]          time N training steps on synthetic data (after 2 warm-up\n"
	"                                  steps): milliseconds per step and images per second\n"
	"  step PLAN --weights W --input BATCH.safetensors -o OUT.safetensors [--steps N]\n"
	"       [--optimizer-step K]      N training steps on one given batch, as update K+1...;\n"
	"                                  writes the first step's loss, logits and gradients\n"
	"                                  (grad.NAME) and every parameter and optimizer state\n"
	"                                  after N steps (for checks against PyTorch)\n"
	"\n"
	"options:\n"
	"  --data DIR            CIFAR-10 binary files (scripts/setup.sh puts them in data/)\n"
	"  --set KEY=VALUE       override a recipe setting (lr, epochs, seed, augment.flip...)\n"
	"  --epochs N, --lr X, --seed N   shorthands for --set\n"
	"  --threads N           worker threads (default: all cores)\n"
	"  --device cpu|cuda     where train, eval and bench run (default: cuda when a usable GPU is\n"
	"                        present, else cpu; the NNC_DEVICE environment variable sets it too)\n"
	"  --deterministic       on the GPU, only deterministic cuDNN algorithms (bit-identical repeats)\n"
	"  --no-graph            on the GPU, launch each training step's kernels instead of replaying\n"
	"                        the step captured as a CUDA graph\n"
	"  --host-data           on the GPU, render batches on the host and copy each one over,\n"
	"                        instead of keeping the dataset on the GPU\n"
	"  --metrics FILE        per-epoch metrics; .jsonl gives JSON Lines, else CSV\n"
	"  --checkpoint FILE     where to save checkpoints (default: PLAN.ckpt), each epoch and on Ctrl-C\n"
	"  --resume FILE         continue a run from its checkpoint (bit-identical on the CPU)\n"
	"  --weights FILE        start from these weights (.safetensors or a checkpoint)\n"
	"  --train-limit N       use only the first N training images (quick runs, tests)\n"
	"  --test-limit N        evaluate on the first N test images only\n"
	"  --records-per-file N  the data files hold N images each (a subset cut from the official\n"
	"                        files of 10000, as scripts/device-pack.sh makes)\n"
	"  --steps N             stop after N training steps (tests); a checkpoint is saved\n"
	"  --quiet               no progress output\n"
	"  --allow-edited        load a hand-edited plan (it is still fully validated)\n"
	"  --check-numerics      count NaN/Inf, fp16 overflow and underflow per op; stop at the\n"
	"                        first NaN/Inf with the op and its .nn source line\n"
	"  -h, --help            this help\n";

typedef struct {
	const char *cmd, *plan_path, *plan_b, *data, *metrics, *checkpoint, *resume, *weights, *output, *input, *csv;
	int threads, train_limit, test_limit, records;
	long max_steps, optimizer_step;
	bool quiet, allow_edited, check_numerics, deterministic, no_graph, host_data;
	const char *device; /* "cpu", "cuda" or NULL: automatic */
	const char *sets[64];
	int nsets;
} Opts;

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "nnrun: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\nTry `nnrun --help`.\n");
	return EXIT_USAGE;
}

static bool
parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Returns -1 to go on, or an exit code. */
static int
parse_opts(Opts *o, int argc, char **argv)
{
	o->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (o->threads < 1)
		o->threads = 1;
	o->device = getenv("NNC_DEVICE");
	if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
		return usage_error("NNC_DEVICE must be cpu or cuda, got '%s'", o->device);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n;
#define VALUE()                                            \
	do {                                                   \
		if (!v)                                            \
			return usage_error("%s needs a value", a);      \
		i++;                                               \
	} while (0)
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--data")) {
			VALUE();
			o->data = v;
		} else if (!strcmp(a, "--metrics")) {
			VALUE();
			o->metrics = v;
		} else if (!strcmp(a, "--checkpoint")) {
			VALUE();
			o->checkpoint = v;
		} else if (!strcmp(a, "--resume")) {
			VALUE();
			o->resume = v;
		} else if (!strcmp(a, "--weights")) {
			VALUE();
			o->weights = v;
		} else if (!strcmp(a, "--csv")) {
			VALUE();
			o->csv = v;
		} else if (!strcmp(a, "--input")) {
			VALUE();
			o->input = v;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			VALUE();
			o->output = v;
		} else if (!strcmp(a, "--set") || !strcmp(a, "--epochs") || !strcmp(a, "--lr") || !strcmp(a, "--seed")) {
			VALUE();
			if (o->nsets == 64)
				return usage_error("too many --set options%s", "");
			o->sets[o->nsets++] = !strcmp(a, "--set") ? v : NULL;
			if (strcmp(a, "--set") != 0) {
				static char buf[64][128];
				snprintf(buf[o->nsets - 1], sizeof buf[0], "%s=%s", a + 2, v);
				o->sets[o->nsets - 1] = buf[o->nsets - 1];
			}
		} else if (!strcmp(a, "--device")) {
			VALUE();
			if (strcmp(v, "cpu") && strcmp(v, "cuda"))
				return usage_error("--device must be cpu or cuda, got '%s'", v);
			o->device = v;
		} else if (!strcmp(a, "--deterministic")) {
			o->deterministic = true;
		} else if (!strcmp(a, "--no-graph")) {
			o->no_graph = true;
		} else if (!strcmp(a, "--host-data")) {
			o->host_data = true;
		} else if (!strcmp(a, "--threads")) {
			VALUE();
			if (!parse_int(v, 1, 256, &n))
				return usage_error("--threads needs a number from 1 to 256, got '%s'", v);
			o->threads = (int)n;
		} else if (!strcmp(a, "--train-limit") || !strcmp(a, "--test-limit")) {
			VALUE();
			if (!parse_int(v, 1, 50000, &n))
				return usage_error("the limit needs a number from 1 to 50000, got '%s'", v);
			*(a[2] == 't' && a[3] == 'r' ? &o->train_limit : &o->test_limit) = (int)n;
		} else if (!strcmp(a, "--records-per-file")) {
			VALUE();
			if (!parse_int(v, 1, 10000, &n))
				return usage_error("--records-per-file needs a number from 1 to 10000, got '%s'", v);
			o->records = (int)n;
		} else if (!strcmp(a, "--steps")) {
			VALUE();
			if (!parse_int(v, 1, 1L << 40, &n))
				return usage_error("--steps needs a positive number, got '%s'", v);
			o->max_steps = n;
		} else if (!strcmp(a, "--optimizer-step")) {
			VALUE();
			if (!parse_int(v, 0, 1L << 40, &n))
				return usage_error("--optimizer-step needs a number >= 0, got '%s'", v);
			o->optimizer_step = n;
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = true;
		} else if (!strcmp(a, "--check-numerics")) {
			o->check_numerics = true;
		} else if (!strcmp(a, "--allow-edited")) {
			o->allow_edited = true;
		} else if (a[0] == '-') {
			return usage_error("unknown option '%s'", a);
		} else if (o->plan_path && !strcmp(o->cmd, "compare") && !o->plan_b) {
			o->plan_b = a;
		} else if (o->plan_path) {
			return usage_error("more than one plan ('%s')", a);
		} else {
			o->plan_path = a;
		}
#undef VALUE
	}
	if (!o->plan_path)
		return usage_error("no plan given%s", "");
	return -1;
}

/* --- weights and checkpoints ------------------------------------------------------------------ */

/* The identity a checkpoint records: model name and a hash of every parameter's name and shape,
 * so a checkpoint resumes with any plan of the same network (recompiled with other settings). */
static const char *
plan_identity(const Plan *p, char *buf, size_t n)
{
	uint64_t h = PLAN_HASH_INIT;
	for (int i = 0; i < p->nparams; i++) {
		const Type *t = &p->values[p->params[i].value];
		h = plan_hash(h, p->params[i].name, strlen(p->params[i].name) + 1);
		h = plan_hash(h, t->dim, (size_t)t->rank * sizeof t->dim[0]);
	}
	snprintf(buf, n, "%s/%016" PRIx64, p->model, h);
	return buf;
}

static StTensor *
param_tensors(const Exec *e, bool all)
{
	const Plan *p = e->plan;
	StTensor *t = calloc((size_t)p->nparams + 1, sizeof *t);
	int k = 0;
	for (int i = 0; t && i < p->nparams; i++) {
		if (!all && !strncmp(p->params[i].name, "optim.", 6))
			continue;
		const Type *ty = &p->values[p->params[i].value];
		t[k++] = (StTensor){.name = p->params[i].name, .dtype = ty->dtype == DT_F16 ? ST_F16 : ST_F32,
			.rank = ty->rank, .dims = ty->dim, .data = exec_f32(e, p->params[i].value)};
	}
	return t;
}

/* Where a run is: the data order, and the running sums of the epoch in progress (so a resumed
 * epoch reports the same metrics as an uninterrupted one). */
typedef struct {
	uint64_t epoch, position;
	double loss_sum, seconds;
	long correct, seen;
} RunState;

static bool
save_checkpoint(const Exec *e, const char *path, const RunState *rs, char *err, size_t errlen)
{
	char id[256];
	StTensor *t = param_tensors(e, true);
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", path);
		return false;
	}
	uint64_t rng[2] = {e->rng.key, e->rng.counter}, order[2] = {rs->epoch, rs->position};
	char sums[7][40];
	snprintf(sums[0], sizeof sums[0], "%a", rs->loss_sum);
	snprintf(sums[1], sizeof sums[1], "%ld", rs->correct);
	snprintf(sums[2], sizeof sums[2], "%ld", rs->seen);
	snprintf(sums[3], sizeof sums[3], "%a", rs->seconds);
	snprintf(sums[4], sizeof sums[4], "%a", e->loss_scale);
	snprintf(sums[5], sizeof sums[5], "%ld", e->clean_steps);
	snprintf(sums[6], sizeof sums[6], "%ld", e->skipped_steps);
	StMeta extra[7] = {{"run.loss_sum", sums[0]}, {"run.correct", sums[1]}, {"run.seen", sums[2]},
		{"run.seconds", sums[3]}, {"run.loss_scale", sums[4]}, {"run.clean_steps", sums[5]},
		{"run.skipped_steps", sums[6]}};
	CkptInfo info = {.plan = plan_identity(e->plan, id, sizeof id), .epoch = rs->epoch, .step = (uint64_t)e->step,
		.rng = rng, .nrng = 2, .data_order = order, .norder = 2, .extra = extra, .nextra = 7};
	int rc = ckpt_save(path, t, (size_t)e->plan->nparams, &info, 0, err, errlen);
	free(t);
	return rc == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Loads weights by name: from a checkpoint (everything, verified, with its run state) or from
 * a .safetensors file (model parameters only; missing optimizer state stays zero). */
static bool
load_weights(Exec *e, const char *path, bool resume, RunState *rs, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	char id[256];
	if (resume || !ends_with(path, ".safetensors")) {
		CkptExpect *ex = calloc((size_t)p->nparams + 1, sizeof *ex);
		if (!ex) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		for (int i = 0; i < p->nparams; i++) {
			const Type *t = &p->values[p->params[i].value];
			ex[i] = (CkptExpect){p->params[i].name, t->dtype == DT_F16 ? ST_F16 : ST_F32, t->rank, t->dim,
				exec_f32(e, p->params[i].value)};
		}
		Ckpt c = {0};
		int rc = ckpt_load(path, plan_identity(p, id, sizeof id), ex, (size_t)p->nparams, &c, err, errlen);
		free(ex);
		if (rc != 0)
			return false;
		if (resume) {
			if (c.nrng != 2 || c.norder != 2) {
				snprintf(err, errlen, "%s: the checkpoint lacks the RNG or data-order state needed to resume", path);
				ckpt_close(&c);
				return false;
			}
			e->rng.key = c.rng[0];
			e->rng.counter = c.rng[1];
			e->step = (long)c.step;
			rs->epoch = c.data_order[0];
			rs->position = c.data_order[1];
			const char *v;
			if ((v = st_meta_get(c.file, "run.loss_sum")))
				rs->loss_sum = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.correct")))
				rs->correct = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.seen")))
				rs->seen = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.seconds")))
				rs->seconds = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.loss_scale")))
				e->loss_scale = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.clean_steps")))
				e->clean_steps = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.skipped_steps")))
				e->skipped_steps = strtol(v, NULL, 10);
		}
		ckpt_close(&c);
		return true;
	}
	StFile *f;
	if (st_open(path, &f, err, errlen) != 0)
		return false;
	int loaded = 0;
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		const StTensor *t = st_find(f, q->name);
		if (!t) {
			if (strncmp(q->name, "optim.", 6) == 0)
				continue;
			snprintf(err, errlen, "%s: no tensor '%s' (the model's parameter)", path, q->name);
			st_close(f);
			return false;
		}
		const Type *ty = &p->values[q->value];
		bool same = (t->dtype == ST_F32 || t->dtype == ST_F16) && t->rank == ty->rank;
		for (int k = 0; same && k < ty->rank; k++)
			same = t->dims[k] == ty->dim[k];
		if (!same) {
			char b[96];
			snprintf(err, errlen, "%s: tensor '%s' is not F32 or F16 %s as the model needs", path, q->name,
				type_str(ty, b, sizeof b));
			st_close(f);
			return false;
		}
		/* Weights convert to the plan's storage dtype (f32 <-> f16, rounding to nearest even). */
		size_t n = (size_t)type_numel(ty);
		void *dst = exec_f32(e, q->value);
		if ((t->dtype == ST_F16) == (ty->dtype == DT_F16))
			memcpy(dst, t->data, (size_t)t->nbytes);
		else if (ty->dtype == DT_F16)
			half_from_float_n(t->data, dst, n);
		else
			half_to_float_n(t->data, dst, n);
		loaded++;
	}
	st_close(f);
	if (!e->plan->nparams || !loaded) {
		snprintf(err, errlen, "%s: no parameters loaded", path);
		return false;
	}
	return true;
}

/* --- evaluation and progress ------------------------------------------------------------------- */

typedef struct {
	double loss;
	long correct, count;
} Score;

/* Evaluates on every test image (the last, partial batch padded; only its real rows count). */
/* --- devices ------------------------------------------------------------------------------------
 * The host Exec always holds the run: parameters (what checkpoints and exports read), the batch
 * the data loader writes, and the scalars (learning rate, step, loss scale). On the GPU,
 * dev_open uploads the parameters once. Training then normally runs the resident loop
 * (dev_resident): the dataset and the step's scalars live on the device, dev_step enqueues a
 * step without waiting, and dev_read brings back the scalars and the epoch's sums when the
 * progress bar, a checkpoint or the epoch's end needs them. Otherwise (--host-data, eval,
 * bench) each dev_run sends the batch, runs the program there and brings back only the loss
 * and the logits the metrics need. dev_sync brings the parameters home before a checkpoint or
 * an export. */
typedef struct {
#ifdef NNC_HAVE_CUDA
	CudaExec *gpu;
#endif
	bool resident;
} Device;

/* Chooses the device (--device, NNC_DEVICE, else a usable GPU if any). Returns false with a
 * message printed when the choice cannot be honoured. */
static bool
dev_open(Device *d, const Opts *o, Exec *e)
{
	memset(d, 0, sizeof *d);
	bool want = o->device && !strcmp(o->device, "cuda");
#ifdef NNC_HAVE_CUDA
	if (o->device && !strcmp(o->device, "cpu"))
		return true;
	char msg[1024];
	int n = nnc_cuda_device_count(msg, sizeof msg);
	if (n <= 0) {
		if (want)
			fprintf(stderr, "nnrun: --device cuda: no usable GPU (%s); run with --device cpu\n", n < 0 ? msg : "none found");
		return !want;
	}
	const char *fail = getenv("NNC_CUDA_FAIL_STEP"); /* fault injection for the tests */
	const char *limit = getenv("NNC_CUDA_MEMORY_LIMIT");
	/* --check-numerics: fp16 convolutions that overflow give +-inf, as on the CPU */
	CudaOptions co = {.device = 0, .deterministic = o->deterministic, .ieee_overflow = o->check_numerics,
		.memory_limit = limit ? (size_t)strtoull(limit, NULL, 10) : 0, .fail_step = fail ? atol(fail) : 0};
	char err[2048];
	d->gpu = nnc_cuda_exec_new(e->plan, &co, err, sizeof err);
	if (!d->gpu) {
		fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		return false;
	}
	/* --check-numerics on the GPU stops at the first NaN/Inf; the fp16 overflow and underflow
	 * counts of the report are the CPU executor's */
	if ((o->check_numerics && nnc_cuda_check_numerics(d->gpu, err, sizeof err) != 0) ||
	    nnc_cuda_upload_arena(d->gpu, PLAN_ARENA_PARAM, e->base[PLAN_ARENA_PARAM], err, sizeof err) != 0) {
		fprintf(stderr, "nnrun: %s\n", err);
		nnc_cuda_exec_free(d->gpu);
		d->gpu = NULL;
		return false;
	}
	if (!o->quiet)
		fprintf(stderr, "nnrun: running on the GPU: %s\n", msg);
	if (nnc_cuda_notes(d->gpu)[0])
		fprintf(stderr, "nnrun: note: %s\n", nnc_cuda_notes(d->gpu));
	return true;
#else
	(void)e;
	if (want)
		fprintf(stderr, "nnrun: --device cuda: this nnrun was built without the CUDA backend (nvcc, cuBLAS and cuDNN "
		                "were not found when it was built); run with --device cpu\n");
	return !want;
#endif
}

static void
dev_close(Device *d)
{
#ifdef NNC_HAVE_CUDA
	nnc_cuda_exec_free(d->gpu);
	d->gpu = NULL;
#else
	(void)d;
#endif
}

#ifdef NNC_HAVE_CUDA
static CudaRunState
run_state(const Exec *e)
{
	return (CudaRunState){.lr = e->lr, .step = e->step, .loss_scale = e->loss_scale, .rng_key = e->rng.key,
		.rng_counter = e->rng.counter, .momentum = e->recipe.momentum, .weight_decay = e->recipe.weight_decay,
		.beta1 = e->recipe.beta1, .beta2 = e->recipe.beta2, .eps = e->recipe.eps,
		.label_smoothing = e->recipe.label_smoothing, .nesterov = e->recipe.nesterov};
}
#endif

/* Moves training onto the GPU's resident loop, from the run's state: the dataset, the learning
 * rate of every step (recipe_lr, computed here), the order and the epoch's sums so far. Does
 * nothing (returns true) on the CPU or with --host-data. */
static bool
dev_resident(Device *d, const Opts *o, Exec *e, const CifarData *data, const CifarLoader *ld, const RunState *rs,
	char *err, size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	if (!d->gpu || o->host_data)
		return true;
	const Plan *p = e->plan;
	CudaDataset ds = {.images = {data->images[CIFAR_TRAIN], data->images[CIFAR_TEST]},
		.labels = {data->labels[CIFAR_TRAIN], data->labels[CIFAR_TEST]}, .n = {data->n[CIFAR_TRAIN], data->n[CIFAR_TEST]},
		.lut = &ld->lut[0][0], .seed = ld->cfg.seed, .shuffle = ld->cfg.shuffle, .crop_pad = ld->cfg.crop_pad,
		.flip = ld->cfg.flip, .cutout = ld->cfg.cutout};
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
		.position = ld->order.position, .loss_sum = rs->loss_sum, .correct = rs->correct, .seen = rs->seen};
	bool ok = nnc_cuda_data(d->gpu, &ds, err, errlen) == 0 &&
	          nnc_cuda_train_begin(d->gpu, &st, &in, lr, nlr, !o->no_graph, err, errlen) == 0;
	free(lr);
	d->resident = ok;
	return ok;
#else
	(void)d, (void)o, (void)e, (void)data, (void)ld, (void)rs, (void)err, (void)errlen;
	return true;
#endif
}

/* After the device failed mid-run: nothing of the failed run is saved over the last good
 * checkpoint (saves are atomic and none is attempted now); say where it is. */
static void
device_failed(const char *ckpt_path)
{
	if (access(ckpt_path, F_OK) == 0)
		fprintf(stderr, "nnrun: nothing was saved after the error; the last checkpoint, %s, is intact: continue with "
		                "--resume %s\n", ckpt_path, ckpt_path);
	else
		fprintf(stderr, "nnrun: the run failed before its first checkpoint; nothing was saved\n");
}

/* Enqueues one training step of the resident loop. */
static bool
dev_step(Device *d, char *err, size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	return nnc_cuda_train_step(d->gpu, err, errlen) == 0;
#else
	(void)d, (void)err, (void)errlen;
	return false;
#endif
}

/* Waits for the resident loop and reads its state: the step scalars into E, the epoch's sums
 * into SUMS (loss_sum, correct, seen), and the step of the first non-finite loss (-1: none).
 * END_OF_EPOCH: the device's sums start again from zero. */
static bool
dev_read(Device *d, Exec *e, bool end_of_epoch, RunState *sums, long *bad_step, float *bad_loss, char *err,
	size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	CudaTrainState t;
	if (nnc_cuda_train_read(d->gpu, &t, end_of_epoch, err, errlen) != 0)
		return false;
	e->step = t.step;
	e->skipped_steps = t.skipped_steps;
	e->clean_steps = t.clean_steps;
	e->loss_scale = t.loss_scale;
	e->rng.counter = t.rng_counter;
	sums->loss_sum = t.loss_sum;
	sums->correct = t.correct;
	sums->seen = t.seen;
	*bad_step = t.nonfinite_at;
	*bad_loss = t.nonfinite_loss;
	return true;
#else
	(void)d, (void)e, (void)end_of_epoch, (void)sums, (void)bad_step, (void)bad_loss, (void)err, (void)errlen;
	return false;
#endif
}

/* Brings the parameters and optimizer state home from the GPU (before checkpoints, exports). */
static bool
dev_sync(Device *d, Exec *e, char *err, size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	if (d->resident) {
		RunState sums;
		long bad_step;
		float bad_loss;
		if (!dev_read(d, e, false, &sums, &bad_step, &bad_loss, err, errlen))
			return false;
	}
	if (d->gpu)
		return nnc_cuda_download_arena(d->gpu, PLAN_ARENA_PARAM, e->base[PLAN_ARENA_PARAM], err, errlen) == 0;
#else
	(void)d, (void)e, (void)err, (void)errlen;
#endif
	return true;
}

static bool
dev_run(Device *d, Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	if (d->gpu) {
		const Plan *p = e->plan;
		CudaRunState st = run_state(e);
		int skipped = 0;
		if (nnc_cuda_upload_arena(d->gpu, PLAN_ARENA_IO, e->base[PLAN_ARENA_IO], err, errlen) != 0 ||
		    nnc_cuda_run(d->gpu, prog == &p->eval, 0, prog->nsteps, &st, &skipped, err, errlen) != 0)
			return false;
		e->rng.counter = st.rng_counter;
		if ((prog->loss >= 0 && nnc_cuda_download(d->gpu, prog->loss, exec_f32(e, prog->loss), err, errlen) != 0) ||
		    (prog->logits >= 0 && nnc_cuda_download(d->gpu, prog->logits, exec_f32(e, prog->logits), err, errlen) != 0))
			return false;
		if (prog == &p->train)
			exec_finish_step(e, prog, skipped != 0);
		return true;
	}
#else
	(void)d;
#endif
	return exec_run(e, prog, err, errlen);
}

static bool
evaluate(Device *dev, Exec *e, CifarLoader *ld, int64_t n_test, Score *sc, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	const PlanProgram *prog = &p->eval;
	*sc = (Score){0};
#ifdef NNC_HAVE_CUDA
	if (dev->resident) {
		if (nnc_cuda_evaluate(dev->gpu, (long)n_test, &sc->loss, &sc->correct, &sc->count, err, errlen) != 0)
			return false;
		sc->loss /= sc->count ? (double)sc->count : 1;
		return true;
	}
#endif
	float *x = exec_f32(e, p->inputs[0].value);
	int32_t *y = p->inputs[1].value >= 0 ? exec_i32(e, p->inputs[1].value) : NULL;
	int32_t ybuf[65536];
	for (int64_t first = 0; first < n_test; first += p->batch) {
		int32_t valid = cifar_eval_batch(ld, CIFAR_TEST, first, x, y ? y : ybuf);
		for (int32_t i = valid; i < p->batch; i++)
			(y ? y : ybuf)[i] = 0; /* padding rows: any class; they are not counted */
		if (!dev_run(dev, e, prog, err, errlen))
			return false;
		const float *logits = exec_view_f32(e, prog->logits);
		int k = (int)p->values[prog->logits].dim[1];
		float l;
		if (cpu_softmax_xent_forward_f32(logits, y ? y : ybuf, valid, k, 0, &l) != 0) {
			snprintf(err, errlen, "a test label is outside the model's %d classes", k);
			return false;
		}
		sc->loss += (double)l * valid;
		sc->correct += cpu_count_correct_f32(logits, y ? y : ybuf, valid, k);
		sc->count += valid;
	}
	sc->loss /= sc->count ? (double)sc->count : 1;
	return true;
}

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void
progress(bool tty, int epoch, int epochs, int64_t b, int64_t nb, double loss, double acc, double ips, double eta)
{
	if (tty) {
		int width = 24, filled = (int)(width * b / (nb ? nb : 1));
		fprintf(stderr, "\repoch %d/%d [%.*s%*s] %3d%%  loss %.4f  acc %5.1f%%  %6.0f img/s  ETA %d:%02d ", epoch, epochs,
			filled, "########################", width - filled, "", (int)(100 * b / (nb ? nb : 1)), loss, acc * 100, ips,
			(int)eta / 60, (int)eta % 60);
		fflush(stderr);
	} else {
		fprintf(stderr, "epoch %d/%d step %" PRId64 "/%" PRId64 " loss %.4f acc %.1f%% %.0f img/s\n", epoch, epochs, b, nb,
			loss, acc * 100, ips);
	}
}

/* --- commands ------------------------------------------------------------------------------------ */

static bool
load_plan(const Opts *o, Plan *plan, Arena *a)
{
	char err[2048];
	if (!plan_read(o->plan_path, plan, a, o->allow_edited, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	for (int i = 0; i < o->nsets; i++) {
		char key[128];
		const char *eq = strchr(o->sets[i], '=');
		if (!eq || eq == o->sets[i] || (size_t)(eq - o->sets[i]) >= sizeof key) {
			fprintf(stderr, "nnrun: --set needs KEY=VALUE, got '%s'\n", o->sets[i]);
			return false;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
		if (!strcmp(key, "optimizer") || !strcmp(key, "batch") || !strcmp(key, "decay_bn_and_bias")) {
			fprintf(stderr, "nnrun: '%s' is fixed when the plan is compiled; use nnc compile --set %s\n", key, o->sets[i]);
			return false;
		}
		if (!recipe_set(&plan->recipe, key, eq + 1, err, sizeof err)) {
			fprintf(stderr, "nnrun: %s\n", err);
			return false;
		}
	}
	return true;
}

/* The arithmetic and the memory traffic of one run of PROG, for rooflines: 2 FLOP per
 * multiply-add of every convolution and dense step (forward and backward), and the bytes of
 * every operand and result of every kernel, once (a backward group's operands once; a chain's
 * intermediates never leave the kernel). */
static void
program_cost(const Plan *p, const PlanProgram *prog, double *flops, double *bytes)
{
	for (int i = 0; i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		int span = s->group > 1 ? s->group : 1;
		for (int j = i; j < i + span && j < prog->nsteps; j++) {
			const PlanStep *t = &prog->steps[j];
			for (int k = 0; k < t->nin; k++) {
				bool dup = false; /* a group member's operand the group's first step reads */
				for (int m = 0; m < s->nin && j > i; m++)
					dup |= s->in[m] == t->in[k];
				if (!dup)
					*bytes += (double)type_numel(&p->values[t->in[k]]) * dtype_size(p->values[t->in[k]].dtype);
			}
			if (t->out >= 0)
				*bytes += (double)type_numel(&p->values[t->out]) * dtype_size(p->values[t->out].dtype);
			const Type *y = t->out >= 0 ? &p->values[t->out] : NULL;
			double macs = 0;
			switch (t->op) {
			case OP_conv2d: /* y [n, k, oh, ow] from w [k, c/g, kh, kw] */
			case OP_conv2d_bwd_data: /* dy [n, k, oh, ow] against w */
			case OP_conv2d_bwd_filter: { /* dw [k, c/g, kh, kw] over dy [n, k, oh, ow] */
				const Type *w = t->op == OP_conv2d_bwd_filter ? y : &p->values[t->in[1]];
				const Type *dy = t->op == OP_conv2d ? y : &p->values[t->in[0]];
				macs = (double)type_numel(dy) * ((double)type_numel(w) / (double)w->dim[0]);
				break;
			}
			case OP_dense: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[1]; break;
			case OP_dense_bwd_data: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[1]; break;
			case OP_dense_bwd_weight: macs = (double)type_numel(y) * (double)p->values[t->in[0]].dim[0]; break;
			default: break;
			}
			*flops += 2 * macs;
		}
		i += span - 1;
	}
}

static int
cmd_info(const Opts *o)
{
	Arena a = {0};
	Plan p;
	if (!load_plan(o, &p, &a)) {
		arena_free(&a);
		return EXIT_USER;
	}
	size_t bytes = 0, params = 0;
	for (int i = 0; i < p.nvalues; i++)
		bytes += (size_t)type_numel(&p.values[i]) * dtype_size(p.values[i].dtype);
	for (int i = 0; i < p.nparams; i++)
		params += p.params[i].trainable ? (size_t)type_numel(&p.values[p.params[i].value]) : 0;
	printf("plan %s: model %s from %s, batch %d\n", o->plan_path, p.model, p.source, p.batch);
	printf("  %d values, %d parameters and state tensors, %zu trainable parameters\n", p.nvalues, p.nparams, params);
	printf("  memory: param %.2f MB, io %.2f MB, act %.2f MB (one buffer per value: %.1f MB)\n", p.arena_bytes[0] / 1e6,
		p.arena_bytes[1] / 1e6, p.arena_bytes[2] / 1e6, (double)bytes / 1e6);
	int threads = o->threads > 0 ? o->threads : 1;
	ExecWorkspace w = exec_workspace(&p, threads);
	printf("  cpu workspace with %d threads: %.2f MB (convolution %.2f, fp16 widening %.2f, value view %.2f, "
	       "per-channel %.3f)\n",
		threads, w.total / 1e6, w.conv / 1e6, w.wide / 1e6, w.view / 1e6, w.scratch / 1e6);
	if (p.has_train)
		printf("  train program: %d steps; eval program: %d steps\n", p.train.nsteps, p.eval.nsteps);
	/* kernel launches per run: a backward group's steps are one kernel */
	int kernels[2] = {0, 0};
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = g ? &p.eval : &p.train;
		for (int i = 0; (g || p.has_train) && i < prog->nsteps; i++) {
			kernels[g]++;
			if (prog->steps[i].group > 1)
				i += prog->steps[i].group - 1;
		}
	}
	if (!p.has_train)
		printf("  eval program: %d steps (no training program: the model has no scalar loss output)\n", p.eval.nsteps);
	printf("  kernels per run (a backward group counts once): train %d, eval %d\n", kernels[0], kernels[1]);
#ifdef NNC_HAVE_CUDA
	int lib[2], own[2];
	for (int g = 0; g < 2; g++)
		nnc_cuda_launches(&p, g, &lib[g], &own[g]);
	printf("  GPU launches per run (multi-tensor updates and checks as one): train %d (%d cuDNN/cuBLAS calls, %d "
	       "nnc kernels), eval %d (%d, %d)\n",
		lib[0] + own[0], lib[0], own[0], lib[1] + own[1], lib[1], own[1]);
#endif
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = g ? &p.eval : &p.train;
		if (!g && !p.has_train)
			continue;
		double flops = 0, bytes = 0;
		program_cost(&p, prog, &flops, &bytes);
		printf("  %s run: %.2f GFLOP in convolutions and dense layers, %.1f MB moved by its kernels (each operand\n"
		       "    read and each result written once)\n",
			g ? "eval" : "train", flops / 1e9, bytes / 1e6);
	}
	printf("  recipe:\n");
	recipe_print(stdout, &p.recipe, "    ");
	arena_free(&a);
	return 0;
}

/* Optimizer numerics in fp16 parameters and state, reported before training: an Adam epsilon
 * below what fp16 can hold (its second-moment estimate underflows long before; the executor
 * raises epsilon, see exec.c), and weight-decay steps too small to change any fp16 weight. */
static void
warn_fp16_optimizer(const Plan *p)
{
	bool half_params = false, half_state = false;
	for (int i = 0; i < p->nparams; i++) {
		DType dt = p->values[p->params[i].value].dtype;
		if (p->params[i].trainable)
			half_params |= dt == DT_F16;
		else if (!strncmp(p->params[i].name, "optim.", 6))
			half_state |= dt == DT_F16;
	}
	const Recipe *r = &p->recipe;
	if (half_state && strcmp(r->optimizer, "sgd") != 0 && r->eps < EXEC_ADAM_MIN_EPS_F16)
		fprintf(stderr,
			"nnrun: warning: Adam eps %g is below what fp16 state can support (the second moment underflows below "
			"%g, so sqrt(v) cannot resolve under %.3g); using eps %.3g\n",
			r->eps, (double)HALF_MIN_SUBNORMAL, EXEC_ADAM_MIN_EPS_F16, EXEC_ADAM_MIN_EPS_F16);
	double step = r->lr * r->weight_decay;
	if (half_params && r->weight_decay > 0 && step < 0x1p-11)
		fprintf(stderr,
			"nnrun: warning: weight-decay steps lr * weight_decay = %.3g are below half an fp16 ulp (%.3g relative): "
			"decay alone cannot change any fp16 weight\n",
			step, 0x1p-11);
}

/* Whether PATH is a regular file or none yet: a device such as /dev/full gets no lock beside it. */
static bool
lockable(const char *path)
{
	struct stat st;
	return stat(path, &st) != 0 || S_ISREG(st.st_mode);
}

static const char METRICS_HEADER[] =
	"epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_second,loss_scale,skipped_steps";

/* Opens the metrics file for appending rows. A fresh run starts it anew; a resumed one first
 * makes it hold exactly the rows of the epochs its checkpoint finished (runtime/runfiles.h). */
static FILE *
open_metrics(const char *path, bool *jsonl, bool resume, const RunState *rs, char *err, size_t errlen)
{
	*jsonl = ends_with(path, ".jsonl");
	const char *header = *jsonl ? NULL : METRICS_HEADER;
	if (resume && lockable(path)) { /* a pipe or terminal keeps what it printed */
		long have = metrics_reconcile(path, header, (long)rs->epoch, err, errlen);
		if (have < 0)
			return NULL;
		if (have < (long)rs->epoch)
			fprintf(stderr, "nnrun: warning: %s holds %ld rows, but the checkpoint has finished %llu epochs; the rows "
			                "of this run follow them\n", path, have, (unsigned long long)rs->epoch);
	}
	FILE *f = fopen(path, resume ? "a" : "w");
	if (!f || (!resume && header && metrics_append(f, header) != 0)) {
		snprintf(err, errlen, "%s: error: cannot write metrics: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return NULL;
	}
	return f;
}

/* Fault injection for the tests (NNC_FAULT=NAME:EPOCH): the process dies at once, as kill -9
 * would, at point NAME of epoch EPOCH (1-based): "epoch-evaluated" (the epoch evaluated, its
 * metrics row not yet written) or "epoch-written" (the row written, the checkpoint not yet
 * saved). */
static void
fault_point(const char *name, int epoch)
{
	const char *f = getenv("NNC_FAULT");
	size_t n = strlen(name);
	if (f && strncmp(f, name, n) == 0 && f[n] == ':' && atoi(f + n + 1) == epoch)
		_exit(137);
}

static int
cmd_train(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	RunLock ck_lock = {-1, NULL}, mx_lock = {-1, NULL};
	int rc = EXIT_USER;
	if (!load_plan(o, &p, &a))
		goto out_arena;
	if (!p.has_train) {
		fprintf(stderr, "%s: error: the plan has no training program (its model has no scalar loss output)\n",
			o->plan_path);
		goto out_arena;
	}
	if (!o->data) {
		rc = usage_error("train needs --data DIR (CIFAR-10; scripts/setup.sh fetches it into data/)%s", "");
		goto out_arena;
	}
	char default_ckpt[4096];
	snprintf(default_ckpt, sizeof default_ckpt, "%s.ckpt", o->plan_path);
	const char *ckpt_path = o->checkpoint ? o->checkpoint : default_ckpt;
	/* One run per checkpoint and per metrics file; the checkpoint's folder proves writable now,
	 * not after the first epoch. */
	char who[512], when[64];
	time_t t_start = time(NULL);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t_start));
	snprintf(who, sizeof who, "pid %ld, nnrun train %s, started %s", (long)getpid(), o->plan_path, when);
	if (run_lock(&ck_lock, ckpt_path, who, err, sizeof err) != 0 ||
	    (o->metrics && lockable(o->metrics) && run_lock(&mx_lock, o->metrics, who, err, sizeof err) != 0)) {
		fprintf(stderr, "nnrun: error: %s\n", err);
		goto out_arena;
	}
	CifarData data;
	CifarOpenOptions oo = {.max_train = o->train_limit, .max_test = o->test_limit, .records_per_file = o->records};
	if (cifar_open(&data, o->data, &oo, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		goto out_arena;
	}
	if (data.n[CIFAR_TRAIN] < p.batch) {
		fprintf(stderr, "nnrun: %d training images is fewer than the batch of %d\n", data.n[CIFAR_TRAIN], p.batch);
		goto out_data;
	}
	CifarConfig cfg;
	cifar_config_default(&cfg, p.batch, (uint64_t)p.recipe.seed);
	cfg.shuffle = 1;
	cfg.crop_pad = p.recipe.crop_padding;
	cfg.flip = p.recipe.flip;
	cfg.cutout = p.recipe.cutout;
	CifarLoader ld;
	if (cifar_loader_init(&ld, &data, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "nnrun: %s\n", err);
		goto out_data;
	}
	Exec e;
	if (!exec_init(&e, &p, o->threads, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		goto out_loader;
	}
	RunState rs = {0};
	if (o->check_numerics && !exec_check_numerics(&e)) {
		fprintf(stderr, "nnrun: out of memory for --check-numerics\n");
		goto out_exec;
	}
	warn_fp16_optimizer(&p);
	exec_init_params(&e, (uint64_t)p.recipe.seed);
	if (o->weights && !load_weights(&e, o->weights, false, &rs, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		goto out_exec;
	}
	if (o->resume && !load_weights(&e, o->resume, true, &rs, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		goto out_exec;
	}
	if (cifar_loader_seek(&ld, (CifarOrder){rs.epoch, rs.position}, err, sizeof err) != 0) {
		fprintf(stderr, "nnrun: %s\n", err);
		goto out_exec;
	}
	Device dev;
	if (!dev_open(&dev, o, &e))
		goto out_exec;
	if (!dev_resident(&dev, o, &e, &data, &ld, &rs, err, sizeof err)) {
		fprintf(stderr, "nnrun: error: %s\n", err);
		goto out_dev;
	}
#ifdef NNC_HAVE_CUDA
	bool graph_noted = false;
#endif
	bool jsonl = false;
	FILE *mf = NULL;
	if (o->metrics && !(mf = open_metrics(o->metrics, &jsonl, o->resume != NULL, &rs, err, sizeof err))) {
		fprintf(stderr, "%s\n", err);
		goto out_dev;
	}
	struct sigaction sa = {.sa_handler = on_sigint};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	bool tty = isatty(2) && !o->quiet;
	int64_t nb = cifar_batches_per_epoch(&ld);
	int epochs = p.recipe.epochs;
	float *x = exec_f32(&e, p.inputs[0].value);
	int32_t *y = exec_i32(&e, p.inputs[1].value);
	int k = (int)p.values[p.train.logits].dim[1];
	long steps_run = 0;
	bool stop_after_epoch = false; /* a stop that landed on an epoch's last step */
	rc = 0;
	while ((int)ld.order.epoch < epochs && rc == 0) {
		int epoch = (int)ld.order.epoch;
		/* A resumed epoch continues the sums saved with its checkpoint. */
		double t0 = now() - rs.seconds, loss_sum = rs.loss_sum, shown = 0;
		long correct = rs.correct, seen = rs.seen;
		rs.loss_sum = rs.seconds = 0;
		rs.correct = rs.seen = 0;
		int64_t b0 = (int64_t)(ld.order.position / (uint64_t)p.batch);
		for (int64_t b = b0; b < nb; b++) {
			e.lr = recipe_lr(&p.recipe, epoch + (double)b / (double)nb);
			int64_t bad_b = -1; /* the step whose loss was not finite */
			float bad_loss = 0;
			if (dev.resident) {
				if (!dev_step(&dev, err, sizeof err)) {
					fprintf(stderr, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					device_failed(ckpt_path);
					rc = EXIT_USER;
					break;
				}
				cifar_loader_advance(&ld);
			} else {
				cifar_loader_next(&ld, x, y);
				if (!dev_run(&dev, &e, &p.train, err, sizeof err)) {
					fprintf(stderr, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					rc = EXIT_USER;
					break;
				}
				float loss = *exec_view_f32(&e, p.train.loss);
				if (!isfinite(loss))
					bad_b = b, bad_loss = loss;
				loss_sum += loss * p.batch;
				correct += cpu_count_correct_f32(exec_view_f32(&e, p.train.logits), y, p.batch, k);
				seen += p.batch;
			}
			steps_run++;
			bool stop = interrupted || (o->max_steps && steps_run >= o->max_steps);
			/* the resident loop runs ahead of the host: its sums are read (a wait) only at the
			 * progress bar's rate (4 per second on a terminal), at stops and at the epoch's end */
			bool show = !o->quiet && (b + 1 == nb || (dev.resident && tty ? now() - shown >= 0.25 : tty) ||
			                          (b + 1) % (nb / 10 + 1) == 0);
			if (dev.resident && (show || stop || b + 1 == nb)) {
				RunState sums;
				long at;
				if (!dev_read(&dev, &e, b + 1 == nb, &sums, &at, &bad_loss, err, sizeof err)) {
					fprintf(stderr, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					device_failed(ckpt_path);
					rc = EXIT_USER;
					break;
				}
				loss_sum = sums.loss_sum, correct = sums.correct, seen = sums.seen;
				if (at >= 0) {
					epoch = (int)(at / nb);
					bad_b = at % nb;
				}
#ifdef NNC_HAVE_CUDA
				if (!graph_noted && !o->quiet && nnc_cuda_graph_note(dev.gpu)[0])
					fprintf(stderr, "%snnrun: note: the training step runs without a CUDA graph: %s\n", tty ? "\n" : "",
						nnc_cuda_graph_note(dev.gpu));
				graph_noted = true;
#endif
			}
			if (bad_b >= 0) {
				fprintf(stderr, "%snnrun: error: the loss became %f at epoch %d step %" PRId64
				                "; lower the learning rate (--lr) or check the data\n",
					tty ? "\n" : "", (double)bad_loss, epoch + 1, bad_b);
				rc = EXIT_USER;
				break;
			}
			double dt = now() - t0;
			if (show) {
				progress(tty, epoch + 1, epochs, b + 1, nb, loss_sum / (double)seen, (double)correct / (double)seen,
					(double)seen / (dt > 0 ? dt : 1e-9), dt / (double)(b + 1 - b0) * (double)(nb - b - 1));
				shown = now();
			}
			if (stop && b + 1 == nb) {
				/* the step ended an epoch: evaluate it, checkpoint and write its row, then stop
				 * (stopping here lost the epoch's row: the resumed run starts the next one) */
				stop_after_epoch = true;
				break;
			}
			if (stop) {
				rs = (RunState){ld.order.epoch, ld.order.position, loss_sum, now() - t0, correct, seen};
				if (!dev_sync(&dev, &e, err, sizeof err) || !save_checkpoint(&e, ckpt_path, &rs, err, sizeof err)) {
					fprintf(stderr, "%s\n", err);
					rc = EXIT_USER;
				} else {
					if (!o->quiet || interrupted)
						fprintf(stderr, "%snnrun: %s; checkpoint saved to %s (resume with --resume %s)\n",
							tty ? "\n" : "", interrupted ? "interrupted" : "step limit reached", ckpt_path, ckpt_path);
					rc = interrupted ? EXIT_INTERRUPTED : 0;
				}
				goto done;
			}
		}
		if (rc)
			break;
		double train_secs = now() - t0;
		Score sc;
		if (!evaluate(&dev, &e, &ld, data.n[CIFAR_TEST], &sc, err, sizeof err)) {
			fprintf(stderr, "nnrun: error: %s\n", err);
			rc = EXIT_USER;
			break;
		}
		double secs = now() - t0, ips = (double)seen / (train_secs > 0 ? train_secs : 1e-9);
		double tl = seen ? loss_sum / (double)seen : 0, ta = seen ? (double)correct / (double)seen : 0;
		double va = sc.count ? (double)sc.correct / (double)sc.count : 0;
		if (!o->quiet)
			fprintf(stderr, "%sepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% (%ld images) | lr %.4g | %.1f s\n",
				tty ? "\r" : "", epoch + 1, epochs, tl, ta * 100, sc.loss, va * 100, sc.count, e.lr, secs);
		char row[512];
		if (jsonl)
			snprintf(row, sizeof row,
				"{\"epoch\": %d, \"train_loss\": %.6f, \"train_acc\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.6f, "
				"\"lr\": %.6g, \"seconds\": %.3f, \"images_per_second\": %.1f, \"loss_scale\": %.17g, "
				"\"skipped_steps\": %ld}",
				epoch + 1, tl, ta, sc.loss, va, e.lr, secs, ips, e.loss_scale, e.skipped_steps);
		else
			snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.1f,%.17g,%ld", epoch + 1, tl, ta, sc.loss, va, e.lr,
				secs, ips, e.loss_scale, e.skipped_steps);
		/* The row first (synced), then the checkpoint: a kill between the two repeats the epoch
		 * on --resume, whose open_metrics first cuts the row of the epoch the checkpoint lacks. */
		fault_point("epoch-evaluated", epoch + 1);
		if (mf && metrics_append(mf, row) != 0) {
			fprintf(stderr, "%s: error: cannot write metrics: %s; the run stops before saving epoch %d's checkpoint\n",
				o->metrics, strerror(errno), epoch + 1);
			rc = EXIT_USER;
			break;
		}
		fault_point("epoch-written", epoch + 1);
		rs = (RunState){ld.order.epoch, ld.order.position, 0, 0, 0, 0};
		if (!dev_sync(&dev, &e, err, sizeof err) || !save_checkpoint(&e, ckpt_path, &rs, err, sizeof err)) {
			fprintf(stderr, "%s\n", err);
			rc = EXIT_USER;
			break;
		}
		if (stop_after_epoch) {
			if (!o->quiet || interrupted)
				fprintf(stderr, "nnrun: %s at the end of epoch %d; checkpoint saved to %s (resume with --resume %s)\n",
					interrupted ? "interrupted" : "step limit reached", epoch + 1, ckpt_path, ckpt_path);
			rc = interrupted ? EXIT_INTERRUPTED : 0;
			goto done;
		}
	}
done:
	if (o->check_numerics)
		exec_numerics_report(&e, stderr);
	if (mf && fclose(mf) != 0) {
		fprintf(stderr, "%s: error: cannot write metrics: %s\n", o->metrics, strerror(errno));
		rc = EXIT_USER;
	}
out_dev:
	dev_close(&dev);
out_exec:
	exec_free(&e);
out_loader:
	cifar_loader_free(&ld);
out_data:
	cifar_close(&data);
out_arena:
	run_unlock(&mx_lock);
	run_unlock(&ck_lock);
	arena_free(&a);
	return rc;
}

static int
cmd_eval(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!o->weights || !o->data)
		return usage_error("eval needs --weights FILE and --data DIR%s", "");
	if (!load_plan(o, &p, &a))
		goto out;
	CifarData data;
	/* The loader needs a training set at least one batch long, though eval reads only the test set. */
	CifarOpenOptions oo = {.max_train = p.batch, .max_test = o->test_limit, .records_per_file = o->records};
	if (cifar_open(&data, o->data, &oo, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	CifarConfig cfg;
	cifar_config_default(&cfg, p.batch, 0);
	CifarLoader ld;
	Exec e;
	RunState rs;
	Device dev = {0};
	if (cifar_loader_init(&ld, &data, &cfg, err, sizeof err) == 0) {
		if (exec_init(&e, &p, o->threads, err, sizeof err)) {
			Score sc;
			err[0] = 0;
			if (o->check_numerics && !exec_check_numerics(&e)) {
				snprintf(err, sizeof err, "nnrun: out of memory for --check-numerics");
			} else if (load_weights(&e, o->weights, false, &rs, err, sizeof err) && dev_open(&dev, o, &e) &&
			           evaluate(&dev, &e, &ld, data.n[CIFAR_TEST], &sc, err, sizeof err)) {
				printf("test loss %.4f, accuracy %.2f%% (%ld of %ld images)\n", sc.loss,
					100.0 * (double)sc.correct / (double)sc.count, sc.correct, sc.count);
				rc = 0;
			}
			if (rc && err[0])
				fprintf(stderr, "%s\n", err);
			if (o->check_numerics)
				exec_numerics_report(&e, stderr);
			dev_close(&dev);
			exec_free(&e);
		} else {
			fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		}
		cifar_loader_free(&ld);
	} else {
		fprintf(stderr, "nnrun: %s\n", err);
	}
	cifar_close(&data);
out:
	arena_free(&a);
	return rc;
}

static int
cmd_export(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!o->weights || !o->output)
		return usage_error("export needs --weights CKPT and -o OUT.safetensors%s", "");
	if (!load_plan(o, &p, &a))
		goto out;
	Exec e;
	RunState rs;
	if (!exec_init(&e, &p, 1, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		goto out;
	}
	StTensor *t = param_tensors(&e, false);
	size_t nt = 0;
	for (int i = 0; i < p.nparams; i++)
		nt += strncmp(p.params[i].name, "optim.", 6) != 0;
	if (t && load_weights(&e, o->weights, false, &rs, err, sizeof err)) {
		StMeta meta[2] = {{"format", "pt"}, {"nnc.model", p.model}};
		if (st_write(o->output, t, nt, meta, 2, err, sizeof err) == 0)
			rc = 0;
		else
			fprintf(stderr, "%s\n", err);
	} else {
		fprintf(stderr, "%s\n", t ? err : "out of memory");
	}
	free(t);
	exec_free(&e);
out:
	arena_free(&a);
	return rc;
}

/* Copies input tensor NAME (dtype DT, the value's shape) from F into the executor. */
static bool
load_input(Exec *e, StFile *f, const PlanInput *in, StDtype dt, char *err, size_t errlen)
{
	const Type *ty = &e->plan->values[in->value];
	const StTensor *t = st_find(f, in->name);
	bool ok = t && t->dtype == dt && t->rank == ty->rank;
	for (int k = 0; ok && k < ty->rank; k++)
		ok = t->dims[k] == ty->dim[k];
	if (!ok) {
		char b[96];
		snprintf(err, errlen, "%s: needs tensor '%s' of shape %s", st_file_path(f), in->name, type_str(ty, b, sizeof b));
		return false;
	}
	memcpy(exec_f32(e, in->value), t->data, (size_t)t->nbytes);
	return true;
}

static int
cmd_step(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!o->weights || !o->input || !o->output)
		return usage_error("step needs --weights W, --input BATCH.safetensors and -o OUT.safetensors%s", "");
	if (!load_plan(o, &p, &a))
		goto out;
	if (!p.has_train) {
		fprintf(stderr, "%s: error: the plan has no training program\n", o->plan_path);
		goto out;
	}
	Exec e;
	RunState rs;
	if (!exec_init(&e, &p, o->threads, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		goto out;
	}
	StFile *in = NULL;
	StTensor *t = calloc((size_t)(3 * p.nparams + 4), sizeof *t);
	float *saved = NULL;
	size_t nsaved = 0;
	for (int i = 0; i < p.train.nsteps; i++)
		if (p.train.steps[i].op == OP_sgd_update || p.train.steps[i].op == OP_adam_update)
			nsaved += (size_t)type_numel(&p.values[p.train.steps[i].in[1]]);
	nsaved += (size_t)type_numel(&p.values[p.train.logits]) + 1;
	saved = malloc(nsaved * sizeof *saved);
	if (!t || !saved || !load_weights(&e, o->weights, false, &rs, err, sizeof err) ||
	    st_open(o->input, &in, err, sizeof err) != 0 || !load_input(&e, in, &p.inputs[0], ST_F32, err, sizeof err) ||
	    !load_input(&e, in, &p.inputs[1], ST_I32, err, sizeof err)) {
		fprintf(stderr, "%s\n", t && saved ? err : "out of memory");
		goto done;
	}
	long steps = o->max_steps ? o->max_steps : 1;
	size_t nt = 0, at = 0;
	e.step = o->optimizer_step;
	for (long s = 0; s < steps; s++) {
		e.lr = p.recipe.lr;
		double scale = e.loss_scale; /* gradients are reported unscaled */
		if (!exec_run(&e, &p.train, err, sizeof err)) {
			fprintf(stderr, "nnrun: error: %s\n", err);
			goto done;
		}
		if (s > 0)
			continue;
		/* After the first step: the loss, the logits and every gradient, copied before they change. */
		static const int64_t scalar_dims[1];
		saved[at] = *exec_view_f32(&e, p.train.loss);
		t[nt++] = (StTensor){.name = "loss", .dtype = ST_F32, .rank = 0, .dims = scalar_dims, .data = &saved[at++]};
		const Type *lt = &p.values[p.train.logits];
		memcpy(saved + at, exec_view_f32(&e, p.train.logits), (size_t)type_numel(lt) * sizeof *saved);
		t[nt++] = (StTensor){.name = "logits", .dtype = ST_F32, .rank = lt->rank, .dims = lt->dim, .data = saved + at};
		at += (size_t)type_numel(lt);
		for (int i = 0; i < p.train.nsteps; i++) {
			const PlanStep *u = &p.train.steps[i];
			if (u->op != OP_sgd_update && u->op != OP_adam_update)
				continue;
			const Type *gt = &p.values[u->in[1]];
			const char *name = "?";
			for (int k = 0; k < p.nparams; k++)
				if (p.params[k].value == u->in[0])
					name = p.params[k].name;
			memcpy(saved + at, exec_view_f32(&e, u->in[1]), (size_t)type_numel(gt) * sizeof *saved);
			for (int64_t j = 0; scale != 1 && j < type_numel(gt); j++)
				saved[at + (size_t)j] = (float)(saved[at + (size_t)j] / scale);
			t[nt++] = (StTensor){.name = arena_printf(&a, "grad.%s", name), .dtype = ST_F32, .rank = gt->rank,
				.dims = gt->dim, .data = saved + at};
			at += (size_t)type_numel(gt);
		}
	}
	for (int i = 0; i < p.nparams; i++) {
		const Type *ty = &p.values[p.params[i].value];
		t[nt++] = (StTensor){.name = p.params[i].name, .dtype = ty->dtype == DT_F16 ? ST_F16 : ST_F32,
			.rank = ty->rank, .dims = ty->dim, .data = exec_f32(&e, p.params[i].value)};
	}
	if (st_write(o->output, t, nt, NULL, 0, err, sizeof err) == 0)
		rc = 0;
	else
		fprintf(stderr, "%s\n", err);
done:
	if (in)
		st_close(in);
	free(t);
	free(saved);
	exec_free(&e);
out:
	arena_free(&a);
	return rc;
}

/* Softmax probabilities of N rows of K logits into P (f64, stable). */
static void
softmax_rows(const float *logits, int n, int k, double *p)
{
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		double m = z[0], s = 0;
		for (int j = 1; j < k; j++)
			m = z[j] > m ? z[j] : m;
		for (int j = 0; j < k; j++)
			s += p[(size_t)i * k + j] = exp((double)z[j] - m);
		for (int j = 0; j < k; j++)
			p[(size_t)i * k + j] /= s;
	}
}

static int
argmax(const double *p, int k)
{
	int best = 0;
	for (int j = 1; j < k; j++)
		if (p[j] > p[best])
			best = j;
	return best;
}

/* The tolerance analysis of Lemma 3.3 ("Revisiting 16-bit Neural Network Training"): with
 * pA, pB the softmax outputs of the two plans for one image, delta = max_c |pA_c - pB_c| and
 * Gamma = top-1 minus top-2 probability of A; if Gamma >= 2 delta both must predict the same
 * class. A disagreement despite Gamma >= 2 delta would be a bug, and fails the command. */
static int
cmd_compare(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan pa, pb;
	int rc = EXIT_USER;
	if (!o->plan_b || !o->weights || !o->data)
		return usage_error("compare needs two plans, --weights W and --data DIR%s", "");
	Opts ob = *o;
	ob.plan_path = o->plan_b;
	if (!load_plan(o, &pa, &a) || !load_plan(&ob, &pb, &a))
		goto out;
	char ida[256], idb[256];
	if (strcmp(plan_identity(&pa, ida, sizeof ida), plan_identity(&pb, idb, sizeof idb)) != 0) {
		fprintf(stderr, "nnrun: %s and %s are not the same network (parameters differ)\n", o->plan_path, o->plan_b);
		goto out;
	}
	int k = (int)pa.values[pa.eval.logits].dim[1];
	CifarData data;
	int maxb = pa.batch > pb.batch ? pa.batch : pb.batch;
	CifarOpenOptions oo = {.max_train = maxb, .max_test = o->test_limit, .records_per_file = o->records};
	if (cifar_open(&data, o->data, &oo, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	int n = data.n[CIFAR_TEST];
	double *prob[2] = {malloc((size_t)n * k * sizeof(double)), malloc((size_t)n * k * sizeof(double))};
	int32_t *labels = malloc((size_t)n * sizeof *labels);
	const Plan *plans[2] = {&pa, &pb};
	RunState rs;
	bool ok = prob[0] && prob[1] && labels;
	for (int w = 0; ok && w < 2; w++) {
		const Plan *p = plans[w];
		CifarConfig cfg;
		cifar_config_default(&cfg, p->batch, 0);
		CifarLoader ld;
		Exec e;
		ok = cifar_loader_init(&ld, &data, &cfg, err, sizeof err) == 0;
		if (!ok)
			break;
		ok = exec_init(&e, p, o->threads, err, sizeof err) && load_weights(&e, o->weights, false, &rs, err, sizeof err);
		double *lbuf = ok ? malloc((size_t)p->batch * k * sizeof(double)) : NULL;
		for (int64_t first = 0; ok && first < n; first += p->batch) {
			int32_t *y = exec_i32(&e, p->inputs[1].value);
			int32_t valid = cifar_eval_batch(&ld, CIFAR_TEST, first, exec_f32(&e, p->inputs[0].value), y);
			for (int32_t i = valid; i < p->batch; i++)
				y[i] = 0;
			ok = exec_run(&e, &p->eval, err, sizeof err);
			if (!ok)
				break;
			softmax_rows(exec_view_f32(&e, p->eval.logits), valid, k, prob[w] + (size_t)first * k);
			if (w == 0)
				memcpy(labels + first, y, (size_t)valid * sizeof *labels);
		}
		free(lbuf);
		exec_free(&e);
		cifar_loader_free(&ld);
	}
	if (!ok) {
		fprintf(stderr, "nnrun: %s\n", err[0] ? err : "out of memory");
		goto done;
	}
	FILE *csv = o->csv ? fopen(o->csv, "w") : NULL;
	if (o->csv && !csv) {
		fprintf(stderr, "%s: error: cannot write: %s\n", o->csv, strerror(errno));
		goto done;
	}
	if (csv)
		fprintf(csv, "image,label,pred_a,pred_b,gamma,delta,guaranteed\n");
	long guaranteed = 0, agree = 0, violations = 0, correct[2] = {0, 0}, nonfinite[2] = {0, 0};
	double max_delta = 0;
	for (int i = 0; i < n; i++) {
		const double *a0 = prob[0] + (size_t)i * k, *b0 = prob[1] + (size_t)i * k;
		double delta = 0, top1 = -1, top2 = -1;
		bool bad[2] = {false, false};
		for (int j = 0; j < k; j++) {
			/* A NaN or Inf output (an fp16 overflow) is infinitely far from anything: no
			 * guarantee holds for its image. */
			bad[0] |= !isfinite(a0[j]);
			bad[1] |= !isfinite(b0[j]);
			double d = bad[0] || bad[1] ? INFINITY : fabs(a0[j] - b0[j]);
			delta = d > delta ? d : delta;
			if (a0[j] > top1) {
				top2 = top1;
				top1 = a0[j];
			} else if (a0[j] > top2) {
				top2 = a0[j];
			}
		}
		double gamma = top1 - top2;
		int ca = argmax(a0, k), cb = argmax(b0, k);
		bool g = gamma >= 2 * delta;
		guaranteed += g;
		nonfinite[0] += bad[0];
		nonfinite[1] += bad[1];
		agree += ca == cb;
		violations += g && ca != cb;
		correct[0] += ca == labels[i];
		correct[1] += cb == labels[i];
		max_delta = delta > max_delta ? delta : max_delta;
		if (csv)
			fprintf(csv, "%d,%d,%d,%d,%.9g,%.9g,%d\n", i, labels[i], ca, cb, gamma, delta, g);
	}
	if (csv && fclose(csv) != 0) {
		fprintf(stderr, "%s: error: cannot write: %s\n", o->csv, strerror(errno));
		goto done;
	}
	printf("compare %s (A) with %s (B) on %d test images, same weights (%s)\n", o->plan_path, o->plan_b, n, o->weights);
	printf("  accuracy A %.2f%%, B %.2f%%; largest delta %.3g\n", 100.0 * correct[0] / n, 100.0 * correct[1] / n, max_delta);
	if (nonfinite[0] || nonfinite[1])
		printf("  images with NaN or Inf outputs: A %ld, B %ld (run `nnrun eval --check-numerics` to find the op)\n",
			nonfinite[0], nonfinite[1]);
	printf("  Gamma >= 2 delta (same class guaranteed): %ld (%.2f%%)\n", guaranteed, 100.0 * guaranteed / n);
	printf("  predictions agree: %ld (%.2f%%), disagree: %ld\n", agree, 100.0 * agree / n, n - agree);
	printf("  disagree despite Gamma >= 2 delta: %ld%s\n", violations, violations ? "  <-- impossible by Lemma 3.3: a bug" : "");
	rc = violations ? EXIT_USER : 0;
done:
	free(prob[0]);
	free(prob[1]);
	free(labels);
	cifar_close(&data);
out:
	arena_free(&a);
	return rc;
}

/* nnrun bench on the GPU: starts the resident loop on a synthetic dataset of 4 batches of random
 * bytes (*SYNTH, *LD: the caller frees them). Returns 0 (also when not on the GPU, or with
 * --host-data), -1 with a message. */
static int
bench_resident(Device *dev, const Opts *o, Exec *e, uint8_t **synth, CifarLoader *ld, char *err, size_t errlen)
{
#ifdef NNC_HAVE_CUDA
	const Plan *p = e->plan;
	if (!dev->gpu || o->host_data)
		return 0;
	int32_t n = 4 * p->batch;
	CifarData d = {0};
	*synth = malloc((size_t)n * (CIFAR_IMAGE_BYTES + 1));
	if (!*synth) {
		snprintf(err, errlen, "out of memory for the synthetic dataset");
		return -1;
	}
	CpuRng r;
	cpu_rng_seed(&r, 7);
	for (size_t i = 0; i < (size_t)n * CIFAR_IMAGE_BYTES; i++)
		(*synth)[i] = (uint8_t)(cpu_rng_uniform(&r) * 256);
	for (int32_t i = 0; i < n; i++)
		(*synth)[(size_t)n * CIFAR_IMAGE_BYTES + i] = (uint8_t)(i % 10);
	d.images[CIFAR_TRAIN] = d.images[CIFAR_TEST] = *synth;
	d.labels[CIFAR_TRAIN] = d.labels[CIFAR_TEST] = *synth + (size_t)n * CIFAR_IMAGE_BYTES;
	d.n[CIFAR_TRAIN] = d.n[CIFAR_TEST] = n;
	CifarConfig cfg;
	cifar_config_default(&cfg, p->batch, 1);
	cfg.crop_pad = p->recipe.crop_padding;
	cfg.flip = p->recipe.flip;
	cfg.cutout = p->recipe.cutout;
	if (cifar_loader_init(ld, &d, &cfg, err, errlen) != 0)
		return -1;
	RunState rs = {0};
	return dev_resident(dev, o, e, &d, ld, &rs, err, errlen) ? 0 : -1;
#else
	(void)dev, (void)o, (void)e, (void)synth, (void)ld, (void)err, (void)errlen;
	return 0;
#endif
}

/* Times the training program alone (no data loading) on fixed synthetic inputs; on the GPU, the
 * resident training loop (bench_resident). */
static int
cmd_bench(const Opts *o)
{
	char err[2048] = "";
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!load_plan(o, &p, &a))
		goto out;
	const PlanProgram *prog = p.has_train ? &p.train : &p.eval;
	Exec e;
	if (!exec_init(&e, &p, o->threads, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->plan_path, err);
		goto out;
	}
	exec_init_params(&e, 1);
	CpuRng r;
	cpu_rng_seed(&r, 7);
	float *x = exec_f32(&e, p.inputs[0].value);
	for (int64_t i = 0; i < type_numel(&p.values[p.inputs[0].value]); i++)
		x[i] = (float)(2 * cpu_rng_uniform(&r) - 1);
	if (p.inputs[1].value >= 0)
		for (int i = 0; i < p.batch; i++)
			exec_i32(&e, p.inputs[1].value)[i] = i % 10;
	long steps = o->max_steps ? o->max_steps : 20;
	e.lr = 0.01;
	double t0 = 0;
	Device dev;
	if (!dev_open(&dev, o, &e))
		goto done;
	/* On the GPU a training plan runs the resident loop, as training does: batches rendered on
	 * the device (the recipe's augmentation) from a synthetic dataset of 4 batches, the step
	 * replayed as a CUDA graph; the clock stops when the device has finished. */
	uint8_t *synth = NULL;
	CifarLoader ld = {0};
	if (prog == &p.train && bench_resident(&dev, o, &e, &synth, &ld, err, sizeof err) < 0) {
		fprintf(stderr, "nnrun: error: %s\n", err);
		dev_close(&dev);
		goto done;
	}
	for (long s = -2; s < steps; s++) {
		if (s == 0) {
			RunState sums;
			long bad;
			float bl;
			if (dev.resident && !dev_read(&dev, &e, false, &sums, &bad, &bl, err, sizeof err))
				break;
			t0 = now();
		}
		if (!(dev.resident ? dev_step(&dev, err, sizeof err) : dev_run(&dev, &e, prog, err, sizeof err)))
			break;
	}
	RunState sums = {0};
	long bad = -1;
	float bl = 0;
	if (err[0] || (dev.resident && !dev_read(&dev, &e, false, &sums, &bad, &bl, err, sizeof err))) {
		fprintf(stderr, "nnrun: error: %s\n", err);
		cifar_loader_free(&ld);
		free(synth);
		dev_close(&dev);
		goto done;
	}
	double dt = (now() - t0) / (double)steps;
	cifar_loader_free(&ld);
	free(synth);
	char where[64];
	snprintf(where, sizeof where, "%d threads", o->threads);
	char graph[128] = "";
#ifdef NNC_HAVE_CUDA
	if (dev.gpu)
		snprintf(where, sizeof where, "GPU");
	if (dev.resident) {
		int nodes = nnc_cuda_graph_nodes(dev.gpu);
		if (nodes > 0)
			snprintf(graph, sizeof graph, ", a CUDA graph of %d nodes", nodes);
		else
			snprintf(graph, sizeof graph, ", no CUDA graph (%s)",
				nnc_cuda_graph_note(dev.gpu)[0] ? nnc_cuda_graph_note(dev.gpu) : "--no-graph");
	}
#endif
	dev_close(&dev);
	printf("%s %s: batch %d, %s%s, %ld steps: %.2f ms/step, %.1f images/s", p.model,
		prog == &p.train ? "training step" : "inference", p.batch, where, graph, steps, dt * 1e3, p.batch / dt);
	if (dev.resident)
		printf(", mean loss %.4g", sums.seen ? sums.loss_sum / (double)sums.seen : 0.0);
	else if (prog->loss >= 0)
		printf(", loss %.4g", (double)*exec_view_f32(&e, prog->loss));
	printf("\n");
	rc = 0;
done:
	exec_free(&e);
out:
	arena_free(&a);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	Opts o = {.cmd = argv[1]};
	int rc = parse_opts(&o, argc, argv);
	if (rc >= 0)
		return rc;
	if (!strcmp(o.cmd, "info"))
		return cmd_info(&o);
	if (!strcmp(o.cmd, "train"))
		return cmd_train(&o);
	if (!strcmp(o.cmd, "eval"))
		return cmd_eval(&o);
	if (!strcmp(o.cmd, "export"))
		return cmd_export(&o);
	if (!strcmp(o.cmd, "step"))
		return cmd_step(&o);
	if (!strcmp(o.cmd, "bench"))
		return cmd_bench(&o);
	if (!strcmp(o.cmd, "compare"))
		return cmd_compare(&o);
	fprintf(stderr, "nnrun: unknown command '%s'\n\n%s", o.cmd, usage);
	return EXIT_USAGE;
}
