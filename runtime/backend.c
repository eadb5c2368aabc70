/* The backend interface (runtime/backend.h): the choice of device, the dispatch through each
 * backend's operations (runtime/backend_impl.h), the CPU backend itself (the host Exec is
 * already where the CPU computes, so running is exec_run and syncing is nothing), and the
 * host-fed evaluation loop both backends share. */
#include "runtime/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend_impl.h"
#include "runtime/cpu/kernels.h"

/* ---- the CPU backend ---- */

static bool
cpu_run(Backend *b, Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
	(void)b;
	return exec_run(e, prog, err, errlen);
}

static bool
cpu_sync(Backend *b, Exec *e, char *err, size_t errlen)
{
	(void)b, (void)e, (void)err, (void)errlen;
	return true;
}

static int
cpu_graph_nodes(const Backend *b)
{
	(void)b;
	return 0;
}

static const char *
cpu_graph_note(const Backend *b)
{
	(void)b;
	return "";
}

static void
cpu_close(Backend *b)
{
	(void)b;
}

static const BackendOps cpu_ops = {.name = "cpu", .run = cpu_run, .sync = cpu_sync, .graph_nodes = cpu_graph_nodes,
	.graph_note = cpu_graph_note, .close = cpu_close};

/* ---- choice and dispatch ---- */

Backend *
backend_open(Exec *e, const BackendOptions *o, char *note, size_t notelen, char *err, size_t errlen)
{
	char scratch[8];
	if (!note)
		note = scratch, notelen = sizeof scratch;
	note[0] = 0;
	if (o->device && strcmp(o->device, "cpu") != 0 && strcmp(o->device, "cuda") != 0) {
		snprintf(err, errlen, "unknown device '%s' (cpu or cuda)", o->device);
		return NULL;
	}
	bool want_gpu = o->device && !strcmp(o->device, "cuda");
	if (!o->device || want_gpu) {
		char msg[1024];
		int n = backend_gpu_count(msg, sizeof msg);
		if (n > 0)
			return backend_gpu_open(e, o, note, notelen, err, errlen);
		if (want_gpu) {
			snprintf(err, errlen, "--device cuda: no usable GPU (%s); run with --device cpu", msg[0] ? msg : "none found");
			return NULL;
		}
	}
	Backend *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->ops = &cpu_ops;
	b->opt = *o;
	return b;
}

void
backend_close(Backend *b)
{
	if (b) {
		b->ops->close(b);
		free(b);
	}
}

const char *
backend_name(const Backend *b)
{
	return b->ops->name;
}

bool
backend_resident(const Backend *b)
{
	return b->resident;
}

bool
backend_run(Backend *b, Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
	return b->ops->run(b, e, prog, err, errlen);
}

bool
backend_sync(Backend *b, Exec *e, char *err, size_t errlen)
{
	return b->ops->sync(b, e, err, errlen);
}

bool
backend_train_begin(Backend *b, Exec *e, const CifarData *data, const CifarLoader *ld, const EpochSums *sums, char *err,
	size_t errlen)
{
	if (!b->ops->train_begin || b->opt.host_data)
		return true;
	b->resident = b->ops->train_begin(b, e, data, ld, sums, err, errlen);
	return b->resident;
}

bool
backend_train_step(Backend *b, char *err, size_t errlen)
{
	if (!b->resident) {
		snprintf(err, errlen, "backend_train_step: the %s backend is not running the resident loop", b->ops->name);
		return false;
	}
	return b->ops->train_step(b, err, errlen);
}

bool
backend_train_read(Backend *b, Exec *e, bool end_of_epoch, EpochSums *sums, long *bad_step, float *bad_loss, char *err,
	size_t errlen)
{
	if (!b->resident) {
		snprintf(err, errlen, "backend_train_read: the %s backend is not running the resident loop", b->ops->name);
		return false;
	}
	return b->ops->train_read(b, e, end_of_epoch, sums, bad_step, bad_loss, err, errlen);
}

int
backend_graph_nodes(const Backend *b)
{
	return b->ops->graph_nodes(b);
}

const char *
backend_graph_note(const Backend *b)
{
	return b->ops->graph_note(b);
}

const char *
backend_conv_algo(const Backend *b, int g, int step)
{
	const char *s = b->ops->conv_algo ? b->ops->conv_algo(b, g, step) : NULL;
	return s && *s ? s : NULL;
}

/* The host-fed evaluation: each batch of test images rendered on the host (cifar_eval_batch),
 * padded with label 0 past the last image, run through the evaluation program, and scored on
 * the host from the logits (the padding rows are not counted). With test-time augmentation
 * (recipe tta) each batch runs once per view (cifar_tta_view) and is scored from the views'
 * weighted logits, on either backend (the resident GPU evaluation has no views). */
bool
backend_evaluate(Backend *b, Exec *e, CifarLoader *ld, int64_t n_test, Score *sc, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	const PlanProgram *prog = &p->eval;
	*sc = (Score){0};
	int tta = e->recipe.tta, views = cifar_tta_views(tta);
	if (b->resident && b->ops->evaluate && views == 1) {
		if (!b->ops->evaluate(b, n_test, sc, err, errlen))
			return false;
		sc->loss /= sc->count ? (double)sc->count : 1;
		return true;
	}
	float *x = exec_f32(e, p->inputs[0].value);
	/* a model without a label input is still scored against the test labels */
	int32_t *own = p->inputs[1].value < 0 ? malloc((size_t)p->batch * sizeof *own) : NULL;
	int32_t *y = own ? own : exec_i32(e, p->inputs[1].value);
	if (p->inputs[1].value < 0 && !own) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	int k = (int)p->values[prog->logits].dim[1];
	size_t xn = (size_t)p->batch * CIFAR_IMAGE_BYTES, kn = (size_t)p->batch * (size_t)k;
	float *base = views > 1 ? malloc((xn + kn) * sizeof *base) : NULL, *sum = base ? base + xn : NULL;
	if (views > 1 && !base) {
		free(own);
		snprintf(err, errlen, "out of memory for test-time augmentation");
		return false;
	}
	bool ok = true;
	for (int64_t first = 0; ok && first < n_test; first += p->batch) {
		int32_t valid = cifar_eval_batch(ld, CIFAR_TEST, first, views > 1 ? base : x, y);
		for (int32_t i = valid; i < p->batch; i++)
			y[i] = 0; /* padding rows: any class; they are not counted */
		const float *logits = NULL;
		for (int v = 0; ok && v < views; v++) {
			if (views > 1)
				cifar_tta_view(base, p->batch, v, x);
			if (!(ok = backend_run(b, e, prog, err, errlen)))
				break;
			logits = exec_view_f32(e, prog->logits);
			for (size_t i = 0; views > 1 && i < kn; i++)
				sum[i] = (v ? sum[i] : 0.0f) + (float)cifar_tta_weight(tta, v) * logits[i];
		}
		if (!ok)
			break;
		if (views > 1)
			logits = sum;
		float l;
		if (cpu_softmax_xent_forward_f32(logits, y, valid, k, 0, &l) != 0) {
			snprintf(err, errlen, "a test label is outside the model's %d classes", k);
			ok = false;
			break;
		}
		sc->loss += (double)l * valid;
		sc->correct += cpu_count_correct_f32(logits, y, valid, k);
		sc->count += valid;
	}
	free(own);
	free(base);
	if (!ok)
		return false;
	sc->loss /= sc->count ? (double)sc->count : 1;
	return true;
}
