/* CIFAR-10 loader (see data.h): reading and checking the official binary files, the epoch
 * permutation and per-image augmentation from a counter-based generator, batch filling, and an
 * optional pool of helper threads that fill disjoint slices of a batch.
 *
 * Randomness (runtime/splitmix.h, shared with the GPU's resident loop): the stream for epoch e's
 * permutation starts at key3(seed ^ PERM_DOMAIN, e, 0), the one for the image at position p of
 * epoch e at key3(seed ^ AUG_DOMAIN, e, p). An image's stream depends on nothing but (seed,
 * epoch, position), not on what was drawn before it, which is what makes resuming and
 * threading exact.
 *
 * Threads. With cfg.threads = T > 1 the loader starts T - 1 helpers at init. A batch is split
 * into T contiguous slices; slice 0 runs on the caller, slice t on helper t. The job is
 * published under the mutex with a new generation number; the caller waits until every helper
 * has reported its slice done, so the buffers are complete when next/eval return. */
#include "runtime/data.h"
#include "core/file.h"
#include "runtime/splitmix.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const class_names[CIFAR_CLASSES] = {
	"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

const char *
cifar_class_name(int label)
{
	return label >= 0 && label < CIFAR_CLASSES ? class_names[label] : "?";
}

static void
seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- random numbers (runtime/splitmix.h) ---------------------------------------------------- */

void
cifar_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *perm, uint32_t n)
{
	nnc_epoch_order(seed, epoch, perm, n);
}

CifarAug
cifar_aug_draw(const CifarConfig *cfg, uint64_t epoch, uint64_t position)
{
	NncAug a = nnc_aug_draw(cfg->seed, cfg->crop_pad, CIFAR_SIDE, epoch, position);
	return (CifarAug){.dy = a.dy, .dx = a.dx, .flip = a.flip, .cy = a.cy, .cx = a.cx};
}

/* --- loading ---------------------------------------------------------------------------- */

void
cifar_close(CifarData *d)
{
	for (int s = 0; s < 2; s++) {
		free(d->images[s]);
		free(d->labels[s]);
	}
	memset(d, 0, sizeof *d);
}

enum { CHUNK_RECORDS = 64 };

/* Reads the first `count` records of the file at path, which must hold exactly `records`. */
static int
load_file(const char *path, int32_t records, int32_t count, uint8_t *images, uint8_t *labels,
	  uint8_t *chunk, char *err, size_t errlen)
{
	const char *why;
	FILE *f = file_fopen_regular(path, &why);
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", path, why);
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	long long want = (long long)records * CIFAR_RECORD_BYTES;
	if ((long long)st.st_size != want) {
		seterr(err, errlen, "%s: %s: expected %lld bytes (%d records of %d), got %lld", path,
		       (long long)st.st_size < want ? "truncated" : "wrong size", want, (int)records,
		       CIFAR_RECORD_BYTES, (long long)st.st_size);
		fclose(f);
		return -1;
	}
	for (int32_t i = 0; i < count;) {
		int32_t k = count - i < CHUNK_RECORDS ? count - i : CHUNK_RECORDS;
		size_t got = fread(chunk, CIFAR_RECORD_BYTES, (size_t)k, f);
		if (got != (size_t)k) {
			if (ferror(f))
				seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
			else
				seterr(err, errlen, "%s: truncated: the file ended after %lld of %lld bytes",
				       path, (long long)(i + (int32_t)got) * CIFAR_RECORD_BYTES, want);
			fclose(f);
			return -1;
		}
		for (int32_t r = 0; r < k; r++) {
			const uint8_t *rec = chunk + (size_t)r * CIFAR_RECORD_BYTES;
			if (rec[0] >= CIFAR_CLASSES) {
				seterr(err, errlen, "%s: record %d: label %d is outside 0-9", path,
				       (int)(i + r), rec[0]);
				fclose(f);
				return -1;
			}
			labels[i + r] = rec[0];
			memcpy(images + (size_t)(i + r) * CIFAR_IMAGE_BYTES, rec + 1, CIFAR_IMAGE_BYTES);
		}
		i += k;
	}
	fclose(f);
	return 0;
}

static int
is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
cifar_open(CifarData *d, const char *dir, const CifarOpenOptions *opt, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	CifarOpenOptions o = {0, 0, 0};
	if (opt)
		o = *opt;
	if (o.max_train < 0 || o.max_test < 0 || o.records_per_file < 0) {
		seterr(err, errlen, "CIFAR-10 open options: limits and records per file must be >= 0");
		return -1;
	}
	int32_t per = o.records_per_file ? o.records_per_file : CIFAR_FILE_RECORDS;
	if (per > 1000000) {
		seterr(err, errlen, "CIFAR-10 open options: %d records per file is too many", (int)per);
		return -1;
	}
	if (!is_dir(dir)) {
		seterr(err, errlen, "%s: no such folder (scripts/get-cifar10.sh fetches CIFAR-10)", dir);
		return -1;
	}
	int32_t total[2] = {CIFAR_TRAIN_FILES * per, per};
	int32_t limit[2] = {o.max_train, o.max_test};
	for (int s = 0; s < 2; s++)
		d->n[s] = limit[s] && limit[s] < total[s] ? limit[s] : total[s];

	char *path = NULL;
	uint8_t *chunk = NULL;
	size_t dlen = strlen(dir);
	size_t plen = dlen + sizeof "/cifar-10-batches-bin/data_batch_1.bin";
	path = malloc(plen);
	chunk = malloc((size_t)CHUNK_RECORDS * CIFAR_RECORD_BYTES);
	if (!path || !chunk)
		goto oom;
	const char *sub = "";
	snprintf(path, plen, "%s/cifar-10-batches-bin", dir);
	if (is_dir(path))
		sub = "/cifar-10-batches-bin";
	for (int s = 0; s < 2; s++) {
		d->images[s] = malloc((size_t)d->n[s] * CIFAR_IMAGE_BYTES);
		d->labels[s] = malloc((size_t)d->n[s]);
		if (!d->images[s] || !d->labels[s])
			goto oom;
		int nfiles = s == CIFAR_TRAIN ? CIFAR_TRAIN_FILES : 1;
		for (int k = 0; k < nfiles; k++) {
			int32_t first = k * per;
			if (first >= d->n[s])
				break;
			int32_t count = d->n[s] - first < per ? d->n[s] - first : per;
			if (s == CIFAR_TRAIN)
				snprintf(path, plen, "%s%s/data_batch_%d.bin", dir, sub, k + 1);
			else
				snprintf(path, plen, "%s%s/test_batch.bin", dir, sub);
			if (load_file(path, per, count, d->images[s] + (size_t)first * CIFAR_IMAGE_BYTES,
				      d->labels[s] + first, chunk, err, errlen) != 0)
				goto fail;
		}
	}
	free(path);
	free(chunk);
	return 0;
oom:
	seterr(err, errlen, "%s: out of memory loading CIFAR-10 (%d + %d images)", dir, (int)d->n[0],
	       (int)d->n[1]);
fail:
	free(path);
	free(chunk);
	cifar_close(d);
	return -1;
}

/* --- rendering -------------------------------------------------------------------------- */

void
cifar_config_default(CifarConfig *c, int32_t batch, uint64_t seed)
{
	memset(c, 0, sizeof *c);
	c->batch = batch;
	c->seed = seed;
	c->shuffle = 1;
	c->mean[0] = (float)CIFAR_MEAN_R;
	c->mean[1] = (float)CIFAR_MEAN_G;
	c->mean[2] = (float)CIFAR_MEAN_B;
	c->std[0] = (float)CIFAR_STD_R;
	c->std[1] = (float)CIFAR_STD_G;
	c->std[2] = (float)CIFAR_STD_B;
	c->threads = 1;
}

void
cifar_config_recipe(CifarConfig *c, const Recipe *r, int32_t batch, bool train)
{
	cifar_config_default(c, batch, (uint64_t)r->seed);
	for (int k = 0; k < 3; k++) {
		c->mean[k] = (float)r->norm_mean[k];
		c->std[k] = (float)r->norm_std[k];
	}
	if (train) {
		c->crop_pad = r->crop_padding;
		c->crop_reflect = r->crop_reflect;
		c->flip = r->flip ? 1 + r->alternate_flip : 0;
		c->cutout = r->cutout;
	}
}

void
cifar_render(const CifarLoader *l, const uint8_t *image, const CifarAug *a, float *out)
{
	const int S = CIFAR_SIDE;
	int pad = a ? l->cfg.crop_pad : 0;
	int dy = pad ? a->dy - pad : 0, dx = pad ? a->dx - pad : 0;
	int flip = a && l->cfg.flip ? a->flip : 0;
	for (int c = 0; c < CIFAR_CHANNELS; c++) {
		const float *lut = l->lut[c];
		const uint8_t *plane = image + (size_t)c * CIFAR_PIXELS;
		float *o = out + (size_t)c * CIFAR_PIXELS;
		for (int y = 0; y < S; y++) {
			int sy = nnc_crop_src(y + dy, S, l->cfg.crop_reflect);
			float *orow = o + y * S;
			if (sy < 0) {
				for (int x = 0; x < S; x++)
					orow[x] = lut[0]; /* a padded (black) row */
				continue;
			}
			const uint8_t *row = plane + sy * S;
			for (int x = 0; x < S; x++) {
				/* crop, then flip the crop: output column x shows crop column 31 - x */
				int sx = nnc_crop_src((flip ? S - 1 - x : x) + dx, S, l->cfg.crop_reflect);
				orow[x] = sx >= 0 ? lut[row[sx]] : lut[0];
			}
		}
	}
	int side = a ? l->cfg.cutout : 0;
	if (side > 0) {
		int y0 = a->cy - side / 2, x0 = a->cx - side / 2;
		int y1 = y0 + side, x1 = x0 + side;
		y0 = y0 < 0 ? 0 : y0;
		x0 = x0 < 0 ? 0 : x0;
		y1 = y1 > S ? S : y1;
		x1 = x1 > S ? S : x1;
		for (int c = 0; c < CIFAR_CHANNELS; c++)
			for (int y = y0; y < y1; y++)
				for (int x = x0; x < x1; x++)
					out[(size_t)c * CIFAR_PIXELS + y * S + x] = 0.0f;
	}
}

/* --- filling batches, on one or more threads --------------------------------------------- */

typedef struct {
	const CifarLoader *l;
	int train;            /* 1: training batch at (epoch, pos); 0: eval of split from first */
	CifarSplit split;
	uint64_t epoch, pos;
	int64_t first;
	int32_t count;        /* valid images (eval) or B (train) */
	float *x;
	int32_t *y;
} Job;

/* Fills batch slots [i0, i1) of job j. Slots >= j->count (eval only) are zeroed, label -1. */
static void
fill_slice(const CifarLoader *l, const Job *j, int32_t i0, int32_t i1)
{
	const CifarData *d = l->data;
	for (int32_t i = i0; i < i1; i++) {
		float *out = j->x + (size_t)i * CIFAR_IMAGE_BYTES;
		if (i >= j->count) {
			memset(out, 0, (size_t)CIFAR_IMAGE_BYTES * sizeof *out);
			j->y[i] = -1;
			continue;
		}
		if (j->train) {
			uint64_t pos = j->pos + (uint64_t)i;
			uint32_t idx = l->perm[pos];
			CifarAug a = cifar_aug_draw(&l->cfg, j->epoch, pos);
			a.flip = nnc_flip_of(l->cfg.seed, l->cfg.flip, j->epoch, idx, a.flip);
			cifar_render(l, d->images[CIFAR_TRAIN] + (size_t)idx * CIFAR_IMAGE_BYTES, &a, out);
			j->y[i] = d->labels[CIFAR_TRAIN][idx];
		} else {
			int64_t idx = j->first + i;
			cifar_render(l, d->images[j->split] + (size_t)idx * CIFAR_IMAGE_BYTES, NULL, out);
			j->y[i] = d->labels[j->split][idx];
		}
	}
}

typedef struct {
	CifarPool *p;
	int t;
} HelperArg;

struct CifarPool {
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	int helpers;          /* threads started */
	uint64_t gen;         /* bumped for each job */
	int pending;          /* helpers still filling the current job */
	int quit;
	Job job;
	int32_t batch;
	pthread_t tid[CIFAR_MAX_THREADS];
	HelperArg arg[CIFAR_MAX_THREADS];
};

static void
slice_bounds(int32_t batch, int parts, int t, int32_t *i0, int32_t *i1)
{
	*i0 = (int32_t)((int64_t)batch * t / parts);
	*i1 = (int32_t)((int64_t)batch * (t + 1) / parts);
}

static void *
helper_main(void *arg)
{
	CifarPool *p = ((HelperArg *)arg)->p;
	int t = ((HelperArg *)arg)->t;
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->gen == seen)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit)
			break;
		seen = p->gen;
		Job j = p->job;
		int parts = p->helpers + 1;
		int32_t batch = p->batch;
		pthread_mutex_unlock(&p->mu);
		int32_t i0, i1;
		slice_bounds(batch, parts, t, &i0, &i1);
		fill_slice(j.l, &j, i0, i1);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
pool_stop(CifarPool *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int t = 1; t <= p->helpers; t++)
		pthread_join(p->tid[t], NULL);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int
pool_start(CifarLoader *l, char *err, size_t errlen)
{
	CifarPool *p = calloc(1, sizeof *p);
	if (!p) {
		seterr(err, errlen, "CIFAR-10 loader: out of memory for the thread pool");
		return -1;
	}
	p->batch = l->cfg.batch;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		seterr(err, errlen, "CIFAR-10 loader: cannot create a mutex");
		return -1;
	}
	if (pthread_cond_init(&p->go, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		seterr(err, errlen, "CIFAR-10 loader: cannot create a condition variable");
		return -1;
	}
	if (pthread_cond_init(&p->done, NULL) != 0) {
		pthread_cond_destroy(&p->go);
		pthread_mutex_destroy(&p->mu);
		free(p);
		seterr(err, errlen, "CIFAR-10 loader: cannot create a condition variable");
		return -1;
	}
	for (int t = 1; t < l->cfg.threads; t++) {
		p->arg[t].p = p;
		p->arg[t].t = t;
		int rc = pthread_create(&p->tid[t], NULL, helper_main, &p->arg[t]);
		if (rc != 0) {
			seterr(err, errlen, "CIFAR-10 loader: cannot start helper thread %d of %d: %s", t,
			       l->cfg.threads - 1, strerror(rc));
			pool_stop(p);
			return -1;
		}
		pthread_mutex_lock(&p->mu);
		p->helpers = t;
		pthread_mutex_unlock(&p->mu);
	}
	l->pool = p;
	return 0;
}

static void
run_job(CifarLoader *l, const Job *j)
{
	int32_t B = l->cfg.batch;
	CifarPool *p = l->pool;
	if (!p) {
		fill_slice(l, j, 0, B);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->job = *j;
	p->pending = p->helpers;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	int32_t i0, i1;
	slice_bounds(B, p->helpers + 1, 0, &i0, &i1);
	fill_slice(l, j, i0, i1);
	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* --- the loader -------------------------------------------------------------------------- */

int
cifar_loader_init(CifarLoader *l, const CifarData *d, const CifarConfig *cfg, char *err,
		  size_t errlen)
{
	memset(l, 0, sizeof *l);
	int32_t n = d->n[CIFAR_TRAIN];
	if (cfg->batch < 1 || cfg->batch > n) {
		seterr(err, errlen, "CIFAR-10 loader: batch size %d must be 1 to %d (the training images)",
		       (int)cfg->batch, (int)n);
		return -1;
	}
	if (cfg->crop_pad < 0 || cfg->crop_pad > CIFAR_SIDE) {
		seterr(err, errlen, "CIFAR-10 loader: crop padding %d must be 0 to %d", cfg->crop_pad,
		       CIFAR_SIDE);
		return -1;
	}
	if (cfg->cutout < 0 || cfg->cutout > CIFAR_SIDE) {
		seterr(err, errlen, "CIFAR-10 loader: cutout size %d must be 0 to %d", cfg->cutout,
		       CIFAR_SIDE);
		return -1;
	}
	if (cfg->crop_reflect != 0 && cfg->crop_reflect != 1) {
		seterr(err, errlen, "CIFAR-10 loader: crop_reflect must be 0 or 1, got %d", cfg->crop_reflect);
		return -1;
	}
	if (cfg->crop_reflect && cfg->crop_pad >= CIFAR_SIDE) {
		seterr(err, errlen, "CIFAR-10 loader: reflected crop padding %d must be below %d", cfg->crop_pad, CIFAR_SIDE);
		return -1;
	}
	if (cfg->flip < 0 || cfg->flip > 2) {
		seterr(err, errlen, "CIFAR-10 loader: flip must be 0, 1 or 2 (alternating), got %d", cfg->flip);
		return -1;
	}
	if (cfg->threads < 1 || cfg->threads > CIFAR_MAX_THREADS) {
		seterr(err, errlen, "CIFAR-10 loader: thread count %d must be 1 to %d", cfg->threads,
		       CIFAR_MAX_THREADS);
		return -1;
	}
	for (int c = 0; c < 3; c++) {
		if (!(cfg->std[c] > 0.0f) || cfg->mean[c] != cfg->mean[c]) {
			seterr(err, errlen, "CIFAR-10 loader: channel %d: std must be > 0 and mean a number", c);
			return -1;
		}
	}
	l->data = d;
	l->cfg = *cfg;
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++)
			l->lut[c][v] = (float)(((double)v / 255.0 - (double)cfg->mean[c]) / (double)cfg->std[c]);
	l->perm = malloc((size_t)n * sizeof *l->perm);
	if (!l->perm) {
		seterr(err, errlen, "CIFAR-10 loader: out of memory for the order of %d images", (int)n);
		return -1;
	}
	if (cfg->threads > 1 && pool_start(l, err, errlen) != 0) {
		free(l->perm);
		memset(l, 0, sizeof *l);
		return -1;
	}
	return 0;
}

void
cifar_loader_free(CifarLoader *l)
{
	if (l->pool)
		pool_stop(l->pool);
	free(l->perm);
	memset(l, 0, sizeof *l);
}

int64_t
cifar_batches_per_epoch(const CifarLoader *l)
{
	return l->data->n[CIFAR_TRAIN] / l->cfg.batch;
}

/* Keeps the invariant position <= N - B: a position with fewer than B images left is the
 * start of the next epoch. */
static void
normalize_order(CifarLoader *l)
{
	uint64_t n = (uint64_t)l->data->n[CIFAR_TRAIN];
	if (l->order.position + (uint64_t)l->cfg.batch > n) {
		l->order.epoch++;
		l->order.position = 0;
	}
}

int
cifar_loader_seek(CifarLoader *l, CifarOrder o, char *err, size_t errlen)
{
	if (o.position > (uint64_t)l->data->n[CIFAR_TRAIN]) {
		seterr(err, errlen, "CIFAR-10 loader: position %llu is past the %d training images",
		       (unsigned long long)o.position, (int)l->data->n[CIFAR_TRAIN]);
		return -1;
	}
	l->order = o;
	normalize_order(l);
	return 0;
}

void
cifar_loader_next(CifarLoader *l, float *x, int32_t *y)
{
	uint32_t n = (uint32_t)l->data->n[CIFAR_TRAIN];
	uint64_t epoch = l->order.epoch;
	if (!l->perm_valid || (l->cfg.shuffle && l->perm_epoch != epoch)) {
		if (l->cfg.shuffle) {
			cifar_epoch_order(l->cfg.seed, epoch, l->perm, n);
		} else {
			for (uint32_t i = 0; i < n; i++)
				l->perm[i] = i;
		}
		l->perm_epoch = epoch;
		l->perm_valid = 1;
	}
	Job j = {l, 1, CIFAR_TRAIN, epoch, l->order.position, 0, l->cfg.batch, x, y};
	run_job(l, &j);
	l->order.position += (uint64_t)l->cfg.batch;
	normalize_order(l);
}

void
cifar_loader_advance(CifarLoader *l)
{
	l->order.position += (uint64_t)l->cfg.batch;
	normalize_order(l);
}

/* PyTorch's 'reflect' padding by one pixel: index -1 reads 1, index SIDE reads SIDE - 2. */
static int
reflect1(int i)
{
	return i < 0 ? -i : i >= CIFAR_SIDE ? 2 * CIFAR_SIDE - 2 - i : i;
}

void
cifar_tta_view(const float *x, int32_t n, int view, float *out)
{
	const int S = CIFAR_SIDE;
	int shift = view < 2 ? 0 : view < 4 ? -1 : 1; /* output (y, x) reads input (y + shift, x + shift) */
	bool mirror = view & 1;
	for (int32_t i = 0; i < n; i++)
		for (int c = 0; c < CIFAR_CHANNELS; c++) {
			const float *p = x + ((size_t)i * CIFAR_CHANNELS + c) * CIFAR_PIXELS;
			float *o = out + ((size_t)i * CIFAR_CHANNELS + c) * CIFAR_PIXELS;
			for (int yy = 0; yy < S; yy++)
				for (int xx = 0; xx < S; xx++) {
					int sx = mirror ? S - 1 - xx : xx;
					o[yy * S + xx] = p[reflect1(yy + shift) * S + reflect1(sx + shift)];
				}
		}
}

int
cifar_tta_views(int level)
{
	return level <= 0 ? 1 : level == 1 ? 2 : CIFAR_TTA_MAX_VIEWS;
}

double
cifar_tta_weight(int level, int view)
{
	if (level <= 0)
		return 1;
	if (level == 1)
		return 0.5;
	return view < 2 ? 0.25 : 0.125;
}

int32_t
cifar_eval_batch(CifarLoader *l, CifarSplit split, int64_t first, float *x, int32_t *y)
{
	if (split != CIFAR_TRAIN && split != CIFAR_TEST)
		return 0;
	int32_t n = l->data->n[split];
	if (first < 0 || first >= n)
		return 0;
	int32_t count = n - first < l->cfg.batch ? (int32_t)(n - first) : l->cfg.batch;
	Job j = {l, 0, split, 0, 0, first, count, x, y};
	run_job(l, &j);
	return count;
}
