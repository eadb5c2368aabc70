/* The device-resident training loop's scalar logic (resident.cu), callable on the host too so
 * that tests/unit/test_cuda_host.cu checks it against the CPU code it mirrors, bit for bit:
 *   - the data order and augmentation of runtime/data.c (whose random draws both take from
 *     runtime/splitmix.h) and one element of a rendered batch (render_at: batch slot b,
 *     channel c, row y, column x of the NCHW fp32 input, as cifar_render writes it);
 *   - the end of a training step (end_step_scalars): runtime/step_end.h's rule, which exec.c's
 *     finish_step applies too (skipped steps back the loss scale off, clean ones grow it after
 *     `interval` steps, the optimizer step counts only updates), the loader's order advance (normalize_order), nnrun's per-epoch sums and
 *     the learning rate of the next step from the host's table;
 *   - the argmax of a row of logits (cpu_count_correct: the first maximum wins).
 * Invariant: DevRun.position <= n_train - batch after every step, as CifarOrder's. */
#ifndef NNC_CUDA_RESIDENT_MATH_CUH
#define NNC_CUDA_RESIDENT_MATH_CUH

#include <cmath>
#include <cstdint>

#include "runtime/cuda/kernels_math.cuh"
extern "C" {
#include "runtime/splitmix.h"
#include "runtime/step_end.h"
}

#define HD __host__ __device__ inline

/* The dataset on the device: raw bytes as in the files, and what rendering needs. */
struct DataDev {
	const uint8_t *images[2]; /* [split]: CHW bytes, 3072 per image */
	const uint8_t *labels[2];
	int n[2];
	const float *lut;         /* [3][256]: byte to normalized value, the CPU loader's table */
	uint32_t *perm;           /* this epoch's order of the training images */
	uint64_t seed;
	int shuffle, crop_pad, crop_reflect, flip, cutout;
};

/* All of the run's scalars on the device. `s` is what the program's kernels read. */
struct DevRun {
	StepScalars s;
	double growth, backoff;           /* dynamic loss scaling (the plan's loss_scale attributes) */
	int interval, scaled, updated, clean_steps;
	long long skipped_steps;
	long long gstep, nlr;             /* steps since epoch 0 began; entries in the lr table */
	unsigned long long rng_per_run;   /* dropout elements each training run draws */
	unsigned long long epoch, position; /* where the next batch starts */
	double loss_sum;                  /* this epoch's sums, as nnrun's: loss * batch, ... */
	long long correct, seen;
	long long nonfinite_at;           /* gstep of the first non-finite loss; -1: none */
	float nonfinite_loss;
	int pad0;
	double eval_loss;                 /* evaluation sums: loss * valid rows, correct, rows */
	long long eval_correct, eval_count;
	long long eval_first;             /* the next evaluation batch's first image */
};

/* ---- data order and augmentation (runtime/splitmix.h, as runtime/data.c) ---- */

enum { D_SIDE = 32, D_PIXELS = 1024, D_IMAGE = 3072 };

/* cifar_epoch_order, or the identity without shuffling. Sequential: one thread runs it. */
HD void
epoch_order(uint64_t seed, uint64_t epoch, int shuffle, uint32_t *perm, uint32_t n)
{
	if (shuffle) {
		nnc_epoch_order(seed, epoch, perm, n);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
}

typedef NncAug AugDraw;

HD AugDraw
aug_draw(uint64_t seed, int crop_pad, uint64_t epoch, uint64_t position)
{
	return nnc_aug_draw(seed, crop_pad, D_SIDE, epoch, position);
}

/* Element i of a batch of B images [B, 3, 32, 32] (cifar_render). Training (train = 1): slot b
 * shows training image perm[position + b] with its augmentation; evaluation: image first + b
 * of split, unaugmented, and slots at or past `valid` are zero. Slot b's thread for element 0
 * also writes its label (padding slots: 0, as nnrun's evaluate). */
HD void
render_at(const DataDev &d, int train, int split, uint64_t epoch, uint64_t position, long long first, int valid,
	float *x, int32_t *y, long long i)
{
	int b = (int)(i / D_IMAGE), e = (int)(i % D_IMAGE);
	int c = e / D_PIXELS, yy = (e % D_PIXELS) / D_SIDE, xx = e % D_SIDE;
	if (!train && b >= valid) {
		x[i] = 0.0f;
		if (e == 0)
			y[b] = 0;
		return;
	}
	uint64_t pos = position + (uint64_t)b;
	long long idx = train ? (long long)d.perm[pos] : first + b;
	bool first_split = train || split == 0; /* constant indices: a kernel parameter's array stays in registers */
	const uint8_t *plane = (first_split ? d.images[0] : d.images[1]) + idx * D_IMAGE + (long long)c * D_PIXELS;
	const float *lut = d.lut + c * 256;
	if (e == 0)
		y[b] = (first_split ? d.labels[0] : d.labels[1])[idx];
	if (!train) {
		x[i] = lut[plane[yy * D_SIDE + xx]];
		return;
	}
	AugDraw a = aug_draw(d.seed, d.crop_pad, epoch, pos);
	int pad = d.crop_pad;
	int dy = pad ? a.dy - pad : 0, dx = pad ? a.dx - pad : 0;
	int flip = nnc_flip_of(d.seed, d.flip, epoch, (uint64_t)idx, a.flip);
	int sy = nnc_crop_src(yy + dy, D_SIDE, d.crop_reflect);
	int sx = nnc_crop_src((flip ? D_SIDE - 1 - xx : xx) + dx, D_SIDE, d.crop_reflect);
	float v = sy >= 0 && sx >= 0 ? lut[plane[sy * D_SIDE + sx]] : lut[0];
	int side = d.cutout;
	if (side > 0) {
		int y0 = a.cy - side / 2, x0 = a.cx - side / 2;
		if (yy >= y0 && yy < y0 + side && xx >= x0 && xx < x0 + side)
			v = 0.0f;
	}
	x[i] = v;
}

/* ---- metrics ---- */

/* The predicted class of row r (the first maximum, as cpu_count_correct). */
HD int
row_argmax(Buf logits, int r, int k)
{
	int best = 0;
	float bv = ld(logits, (long long)r * k);
	for (int j = 1; j < k; j++) {
		float v = ld(logits, (long long)r * k + j);
		if (v > bv) {
			bv = v;
			best = j;
		}
	}
	return best;
}

/* ---- the end of a training step ---- */

/* After a training run whose loss was LOSS and whose batch had CORRECT right predictions:
 * nnrun's sums, exec.c's finish_step, the loader's order advance, the next step's learning rate
 * (LR: the host's table, one entry per step since epoch 0) and the dropout stream's advance.
 * Resets the grad_check flag for the next run. */
HD void
end_step_scalars(DevRun *r, float loss, long long correct, int batch, int n_train, const double *lr)
{
	r->loss_sum += (double)(loss * (float)batch);
	r->correct += correct;
	r->seen += batch;
	if (!isfinite(loss) && r->nonfinite_at < 0) {
		r->nonfinite_at = r->gstep;
		r->nonfinite_loss = loss;
	}
	NncStepCounts c = nnc_step_end(NncStepCounts{r->s.loss_scale, r->clean_steps, r->skipped_steps, r->s.step}, r->s.bad,
		r->scaled, r->updated, r->interval, r->growth, r->backoff);
	r->s.loss_scale = c.loss_scale;
	r->clean_steps = (int)c.clean_steps;
	r->skipped_steps = c.skipped_steps;
	r->s.step = c.step;
	r->s.bad = 0;
	r->s.rng_counter += r->rng_per_run;
	r->position += (unsigned long long)batch;
	if (r->position + (unsigned long long)batch > (unsigned long long)n_train) {
		r->epoch++;
		r->position = 0;
	}
	r->gstep++;
	if (r->nlr > 0)
		r->s.lr = lr[r->gstep < r->nlr ? r->gstep : r->nlr - 1];
}

#undef HD

#endif
