/* Whole runs on either backend (runtime/session.h): training with its epochs, evaluation,
 * metrics, checkpoints and resume; evaluation of saved weights; timing. */
#include "runtime/session.h"
#include "runtime/whiten.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"
#include "runtime/cpu/kernels.h"
#include "runtime/runfiles.h"
#include "runtime/weights.h"


static bool
interrupted(const SessionOptions *o)
{
	return o->interrupted && *o->interrupted;
}

/* A progress line: on a terminal, one bar rewritten in place; else a line per report. */
static void
progress(FILE *log, bool tty, int epoch, int epochs, int64_t b, int64_t nb, double loss, double acc, double ips,
	double eta)
{
	if (tty) {
		int width = 24, filled = (int)(width * b / (nb ? nb : 1));
		fprintf(log, "\repoch %d/%d [%.*s%*s] %3d%%  loss %.4f  acc %5.1f%%  %6.0f img/s  ETA %d:%02d ", epoch, epochs,
			filled, "########################", width - filled, "", (int)(100 * b / (nb ? nb : 1)), loss, acc * 100, ips,
			(int)eta / 60, (int)eta % 60);
		fflush(log);
	} else {
		fprintf(log, "epoch %d/%d step %" PRId64 "/%" PRId64 " loss %.4f acc %.1f%% %.0f img/s\n", epoch, epochs, b, nb,
			loss, acc * 100, ips);
	}
}

/* Optimizer numerics in fp16 parameters and state, reported before training: an Adam epsilon
 * below what fp16 can hold (its second-moment estimate underflows long before; the executor
 * raises epsilon, see exec.c), weight-decay steps too small to change any fp16 weight (unless
 * rounded stochastically), and stochastic rounding where no parameter is fp16. */
static void
warn_fp16_optimizer(FILE *log, const Plan *p)
{
	bool half_params = false;
	double min_eps = 0; /* the floor the compiler wrote into fp16-state Adam updates */
	for (int i = 0; i < p->nparams; i++)
		half_params |= p->params[i].trainable && p->values[p->params[i].value].dtype == DT_F16;
	for (int i = 0; i < p->train.nsteps; i++)
		if (p->train.steps[i].op == OP_adam_update) {
			double f = p->train.steps[i].attr[nnc_attr_index(OP_adam_update, "min_eps")].f;
			min_eps = f > min_eps ? f : min_eps;
		}
	const Recipe *r = &p->recipe;
	if (r->eps < min_eps)
		fprintf(log,
			"nnrun: warning: Adam eps %g is below what fp16 state can support (the second moment underflows below "
			"%g, so sqrt(v) cannot resolve under %.3g); using eps %.3g\n",
			r->eps, (double)HALF_MIN_SUBNORMAL, min_eps, min_eps);
	double step = r->lr * r->weight_decay;
	bool stochastic = !strcmp(r->rounding, "stochastic");
	if (half_params && r->weight_decay > 0 && step < 0x1p-11 && !stochastic)
		fprintf(log,
			"nnrun: warning: weight-decay steps lr * weight_decay = %.3g are below half an fp16 ulp (%.3g relative): "
			"decay alone cannot change any fp16 weight (--set optimizer.rounding=stochastic keeps such steps in "
			"expectation)\n",
			step, 0x1p-11);
	if (!half_params && stochastic && p->has_train)
		fprintf(log, "nnrun: note: optimizer.rounding stochastic changes nothing here: this plan's parameters are not "
		             "fp16 (mixed precision keeps f32 master weights)\n");
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
open_metrics(FILE *log, const char *path, bool *jsonl, bool resume, const RunState *rs, char *err, size_t errlen)
{
	*jsonl = file_has_suffix(path, ".jsonl");
	const char *header = *jsonl ? NULL : METRICS_HEADER;
	if (resume && lockable(path)) { /* a pipe or terminal keeps what it printed */
		long have = metrics_reconcile(path, header, (long)rs->epoch, err, errlen);
		if (have < 0)
			return NULL;
		if (have < (long)rs->epoch)
			fprintf(log, "nnrun: warning: %s holds %ld rows, but the checkpoint has finished %llu epochs; the rows "
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

/* After the device failed mid-run: nothing of the failed run is saved over the last good
 * checkpoint (saves are atomic and none is attempted now); say where it is. */
static void
device_failed(FILE *log, const char *ckpt_path)
{
	if (access(ckpt_path, F_OK) == 0)
		fprintf(log, "nnrun: nothing was saved after the error; the last checkpoint, %s, is intact: continue with "
		             "--resume %s\n", ckpt_path, ckpt_path);
	else
		fprintf(log, "nnrun: the run failed before its first checkpoint; nothing was saved\n");
}

/* Opens the backend O asks for, telling the log what it chose (unless quiet). */
static Backend *
open_backend(const SessionOptions *o, Exec *e)
{
	char note[2048], err[2048];
	Backend *b = backend_open(e, &o->backend, note, sizeof note, err, sizeof err);
	if (!b)
		fprintf(o->log, "%s: error: %s\n", o->plan_path, err);
	else if (!o->quiet) /* the note's lines, each as nnrun's */
		for (const char *l = note; *l;) {
			size_t n = strcspn(l, "\n");
			fprintf(o->log, "nnrun: %.*s\n", (int)n, l);
			l += n + (l[n] == '\n');
		}
	return b;
}

/* The metrics row of one epoch, CSV or JSON Lines. */
static void
metrics_row(char *row, size_t n, bool jsonl, int epoch, double tl, double ta, const Score *sc, double va, const Exec *e,
	double secs, double ips)
{
	if (jsonl)
		snprintf(row, n,
			"{\"epoch\": %d, \"train_loss\": %.6f, \"train_acc\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.6f, "
			"\"lr\": %.6g, \"seconds\": %.3f, \"images_per_second\": %.1f, \"loss_scale\": %.17g, "
			"\"skipped_steps\": %ld}",
			epoch, tl, ta, sc->loss, va, e->lr, secs, ips, e->loss_scale, e->skipped_steps);
	else
		snprintf(row, n, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.1f,%.17g,%ld", epoch, tl, ta, sc->loss, va, e->lr, secs, ips,
			e->loss_scale, e->skipped_steps);
}

static void
fault(const SessionOptions *o, const char *point, int epoch)
{
	if (o->fault)
		o->fault(point, epoch);
}

/* Everything a training run holds, released in reverse by train_close. */
typedef struct {
	RunLock ck_lock, mx_lock;
	CifarData data;
	CifarLoader ld;
	Exec e;
	Backend *dev;
	FILE *mf;
	bool jsonl, have_data, have_loader, have_exec;
	RunState rs;
	const char *ckpt_path;
	char default_ckpt[4096];
} Train;

static SessionStatus
train_open(Train *t, const Plan *p, const SessionOptions *o)
{
	char err[2048];
	FILE *log = o->log;
	t->ck_lock = t->mx_lock = (RunLock){-1, NULL};
	if (!p->has_train) {
		fprintf(log, "%s: error: the plan has no training program (its model has no scalar loss output)\n", o->plan_path);
		return SESSION_FAILED;
	}
	if (!session_cifar_fits(p, err, sizeof err)) {
		fprintf(log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	if (!o->data) {
		fprintf(log, "nnrun: train needs --data DIR (CIFAR-10; scripts/setup.sh fetches it into data/)\n"
		             "Try `nnrun --help`.\n");
		return SESSION_USAGE;
	}
	snprintf(t->default_ckpt, sizeof t->default_ckpt, "%s.ckpt", o->plan_path);
	t->ckpt_path = o->checkpoint ? o->checkpoint : t->default_ckpt;
	/* One run per checkpoint and per metrics file; the checkpoint's folder proves writable now,
	 * not after the first epoch. */
	char who[512], when[64];
	time_t t_start = time(NULL);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t_start));
	snprintf(who, sizeof who, "pid %ld, nnrun train %s, started %s", (long)getpid(), o->plan_path, when);
	if (run_lock(&t->ck_lock, t->ckpt_path, who, err, sizeof err) != 0 ||
	    (o->metrics && lockable(o->metrics) && run_lock(&t->mx_lock, o->metrics, who, err, sizeof err) != 0)) {
		fprintf(log, "nnrun: error: %s\n", err);
		return SESSION_FAILED;
	}
	CifarOpenOptions oo = {.max_train = o->train_limit, .max_test = o->test_limit, .records_per_file = o->records};
	if (cifar_open(&t->data, o->data, &oo, err, sizeof err) != 0) {
		fprintf(log, "%s\n", err);
		return SESSION_FAILED;
	}
	t->have_data = true;
	if (t->data.n[CIFAR_TRAIN] < p->batch) {
		fprintf(log, "nnrun: %d training images is fewer than the batch of %d\n", t->data.n[CIFAR_TRAIN], p->batch);
		return SESSION_FAILED;
	}
	CifarConfig cfg;
	cifar_config_recipe(&cfg, &p->recipe, p->batch, true);
	if (cifar_loader_init(&t->ld, &t->data, &cfg, err, sizeof err) != 0) {
		fprintf(log, "nnrun: %s\n", err);
		return SESSION_FAILED;
	}
	t->have_loader = true;
	if (!exec_init(&t->e, p, o->threads, err, sizeof err)) {
		fprintf(log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	t->have_exec = true;
	if (o->check_numerics && !exec_check_numerics(&t->e)) {
		fprintf(log, "nnrun: out of memory for --check-numerics\n");
		return SESSION_FAILED;
	}
	warn_fp16_optimizer(log, p);
	exec_init_params(&t->e, (uint64_t)p->recipe.seed);
	if (!o->weights && !o->resume && !whiten_init(&t->e, &t->data, cfg.mean, cfg.std, err, sizeof err)) {
		fprintf(log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	if ((o->weights && !weights_load(&t->e, o->weights, false, &t->rs, err, sizeof err)) ||
	    (o->resume && !weights_load(&t->e, o->resume, true, &t->rs, err, sizeof err))) {
		fprintf(log, "%s\n", err);
		return SESSION_FAILED;
	}
	if (cifar_loader_seek(&t->ld, (CifarOrder){t->rs.epoch, t->rs.position}, err, sizeof err) != 0) {
		fprintf(log, "nnrun: %s\n", err);
		return SESSION_FAILED;
	}
	if (!(t->dev = open_backend(o, &t->e)))
		return SESSION_FAILED;
	if (!backend_train_begin(t->dev, &t->e, &t->data, &t->ld, &t->rs.sums, err, sizeof err)) {
		fprintf(log, "nnrun: error: %s\n", err);
		return SESSION_FAILED;
	}
	if (o->metrics && !(t->mf = open_metrics(log, o->metrics, &t->jsonl, o->resume != NULL, &t->rs, err, sizeof err))) {
		fprintf(log, "%s\n", err);
		return SESSION_FAILED;
	}
	return SESSION_OK;
}

static SessionStatus
train_close(Train *t, const SessionOptions *o, SessionStatus rc)
{
	if (t->have_exec && o->check_numerics)
		exec_numerics_report(&t->e, o->log);
	if (t->mf && fclose(t->mf) != 0) {
		fprintf(o->log, "%s: error: cannot write metrics: %s\n", o->metrics, strerror(errno));
		rc = SESSION_FAILED;
	}
	backend_close(t->dev);
	if (t->have_exec)
		exec_free(&t->e);
	if (t->have_loader)
		cifar_loader_free(&t->ld);
	if (t->have_data)
		cifar_close(&t->data);
	run_unlock(&t->mx_lock);
	run_unlock(&t->ck_lock);
	return rc;
}

/* Saves the checkpoint at a stop (step limit or interruption) and says so. */
static SessionStatus
stop_with_checkpoint(Train *t, const SessionOptions *o, bool tty, int finished_epoch)
{
	char err[2048];
	t->rs.train_limit = o->train_limit;
	t->rs.test_limit = o->test_limit;
	t->rs.records = o->records;
	if (!backend_sync(t->dev, &t->e, err, sizeof err) ||
	    !weights_save_checkpoint(&t->e, t->ckpt_path, &t->rs, err, sizeof err)) {
		fprintf(o->log, "%s\n", err);
		return SESSION_FAILED;
	}
	if (!o->quiet || interrupted(o)) {
		const char *why = interrupted(o) ? "interrupted" : "step limit reached";
		if (finished_epoch)
			fprintf(o->log, "nnrun: %s at the end of epoch %d; checkpoint saved to %s (resume with --resume %s)\n", why,
				finished_epoch, t->ckpt_path, t->ckpt_path);
		else
			fprintf(o->log, "%snnrun: %s; checkpoint saved to %s (resume with --resume %s)\n", tty ? "\n" : "", why,
				t->ckpt_path, t->ckpt_path);
	}
	return interrupted(o) ? SESSION_INTERRUPTED : SESSION_OK;
}

bool
session_cifar_fits(const Plan *p, char *err, size_t errlen)
{
	char b[96] = "missing";
	const Type *image = p->inputs[0].value >= 0 ? &p->values[p->inputs[0].value] : NULL;
	if (!image || image->rank != 4 || image->dim[1] != CIFAR_CHANNELS || image->dim[2] != CIFAR_SIDE ||
	    image->dim[3] != CIFAR_SIDE || image->dtype != DT_F32) {
		snprintf(err, errlen, "the model's image input is %s; CIFAR-10 images are f32[batch,3,32,32]",
			image ? type_str(image, b, sizeof b) : b);
		return false;
	}
	const Type *labels = p->inputs[1].value >= 0 ? &p->values[p->inputs[1].value] : NULL;
	if (p->has_train && (!labels || labels->rank != 1 || labels->dim[0] != image->dim[0] || labels->dtype != DT_I32)) {
		snprintf(err, errlen, "the model's labels input is %s; CIFAR-10 labels are i32[%lld]",
			labels ? type_str(labels, b, sizeof b) : b, (long long)image->dim[0]);
		return false;
	}
	return true;
}

SessionStatus
session_train(const Plan *plan, const SessionOptions *o)
{
	Train t = {0};
	SessionStatus rc = train_open(&t, plan, o);
	if (rc != SESSION_OK)
		return train_close(&t, o, rc);
	const Plan *p = plan;
	Exec *e = &t.e;
	CifarLoader *ld = &t.ld;
	FILE *log = o->log;
	char err[2048];
	bool tty = isatty(fileno(log)) && !o->quiet, resident = backend_resident(t.dev), graph_noted = false;
	int64_t nb = cifar_batches_per_epoch(ld);
	int epochs = p->recipe.epochs;
	float *x = exec_f32(e, p->inputs[0].value);
	int32_t *y = exec_i32(e, p->inputs[1].value);
	int k = (int)p->values[p->train.logits].dim[1];
	long steps_run = 0;
	while ((int)ld->order.epoch < epochs) {
		int epoch = (int)ld->order.epoch;
		/* A resumed epoch continues the sums saved with its checkpoint. */
		double t0 = nnc_seconds() - t.rs.seconds, shown = 0;
		EpochSums sums = t.rs.sums;
		t.rs.seconds = 0;
		t.rs.sums = (EpochSums){0};
		bool stop_after_epoch = false; /* a stop that landed on the epoch's last step */
		int64_t b0 = (int64_t)(ld->order.position / (uint64_t)p->batch);
		for (int64_t b = b0; b < nb; b++) {
			e->lr = recipe_lr(&p->recipe, epoch + (double)b / (double)nb);
			int64_t bad_b = -1; /* the step whose loss was not finite */
			float bad_loss = 0;
			if (resident) {
				if (!backend_train_step(t.dev, err, sizeof err)) {
					fprintf(log, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					device_failed(log, t.ckpt_path);
					return train_close(&t, o, SESSION_FAILED);
				}
				cifar_loader_advance(ld);
			} else {
				cifar_loader_next(ld, x, y);
				if (!backend_run(t.dev, e, &p->train, err, sizeof err)) {
					fprintf(log, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					return train_close(&t, o, SESSION_FAILED);
				}
				float loss = *exec_view_f32(e, p->train.loss);
				if (!isfinite(loss))
					bad_b = b, bad_loss = loss;
				sums.loss_sum += loss * p->batch;
				sums.correct += cpu_count_correct_f32(exec_view_f32(e, p->train.logits), y, p->batch, k);
				sums.seen += p->batch;
			}
			steps_run++;
			bool stop = interrupted(o) || (o->max_steps && steps_run >= o->max_steps);
			/* the resident loop runs ahead of the host: its sums are read (a wait) only at the
			 * progress bar's rate (4 per second on a terminal), at stops and at the epoch's end */
			bool show = !o->quiet && (b + 1 == nb || (resident && tty ? nnc_seconds() - shown >= 0.25 : tty) ||
			                          (b + 1) % (nb / 10 + 1) == 0);
			if (resident && (show || stop || b + 1 == nb)) {
				long at;
				if (!backend_train_read(t.dev, e, b + 1 == nb, &sums, &at, &bad_loss, err, sizeof err)) {
					fprintf(log, "%snnrun: error: %s\n", tty ? "\n" : "", err);
					device_failed(log, t.ckpt_path);
					return train_close(&t, o, SESSION_FAILED);
				}
				if (at >= 0) {
					epoch = (int)(at / nb);
					bad_b = at % nb;
				}
				if (!graph_noted && !o->quiet && backend_graph_note(t.dev)[0])
					fprintf(log, "%snnrun: note: the training step runs without a CUDA graph: %s\n", tty ? "\n" : "",
						backend_graph_note(t.dev));
				graph_noted = true;
			}
			if (bad_b >= 0) {
				fprintf(log, "%snnrun: error: the loss became %f at epoch %d step %" PRId64
				             "; lower the learning rate (--lr) or check the data\n",
					tty ? "\n" : "", (double)bad_loss, epoch + 1, bad_b);
				return train_close(&t, o, SESSION_FAILED);
			}
			double dt = nnc_seconds() - t0;
			if (show) {
				progress(log, tty, epoch + 1, epochs, b + 1, nb, sums.loss_sum / (double)sums.seen,
					(double)sums.correct / (double)sums.seen, (double)sums.seen / (dt > 0 ? dt : 1e-9),
					dt / (double)(b + 1 - b0) * (double)(nb - b - 1));
				shown = nnc_seconds();
			}
			if (stop && b + 1 == nb) {
				/* the step ended an epoch: evaluate it, write its row and checkpoint, then stop
				 * (stopping here lost the epoch's row: the resumed run starts the next one) */
				stop_after_epoch = true;
				break;
			}
			if (stop) {
				t.rs = (RunState){.epoch = ld->order.epoch, .position = ld->order.position, .seconds = nnc_seconds() - t0,
					.sums = sums};
				return train_close(&t, o, stop_with_checkpoint(&t, o, tty, 0));
			}
		}
		double train_secs = nnc_seconds() - t0;
		Score sc;
		if (!backend_evaluate(t.dev, e, ld, t.data.n[CIFAR_TEST], &sc, err, sizeof err)) {
			fprintf(log, "nnrun: error: %s\n", err);
			return train_close(&t, o, SESSION_FAILED);
		}
		double secs = nnc_seconds() - t0, ips = (double)sums.seen / (train_secs > 0 ? train_secs : 1e-9);
		double tl = sums.seen ? sums.loss_sum / (double)sums.seen : 0;
		double ta = sums.seen ? (double)sums.correct / (double)sums.seen : 0;
		double va = sc.count ? (double)sc.correct / (double)sc.count : 0;
		if (!o->quiet)
			fprintf(log, "%sepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% (%ld images) | lr %.4g | %.1f s\n",
				tty ? "\r" : "", epoch + 1, epochs, tl, ta * 100, sc.loss, va * 100, sc.count, e->lr, secs);
		char row[512];
		metrics_row(row, sizeof row, t.jsonl, epoch + 1, tl, ta, &sc, va, e, secs, ips);
		/* The row first (synced), then the checkpoint (runtime/session.h). */
		fault(o, "epoch-evaluated", epoch + 1);
		if (t.mf && metrics_append(t.mf, row) != 0) {
			fprintf(log, "%s: error: cannot write metrics: %s; the run stops before saving epoch %d's checkpoint\n",
				o->metrics, strerror(errno), epoch + 1);
			return train_close(&t, o, SESSION_FAILED);
		}
		fault(o, "epoch-written", epoch + 1);
		t.rs = (RunState){.epoch = ld->order.epoch, .position = ld->order.position, .train_limit = o->train_limit,
			.test_limit = o->test_limit, .records = o->records};
		if (stop_after_epoch)
			return train_close(&t, o, stop_with_checkpoint(&t, o, tty, epoch + 1));
		if (!backend_sync(t.dev, e, err, sizeof err) || !weights_save_checkpoint(e, t.ckpt_path, &t.rs, err, sizeof err)) {
			fprintf(log, "%s\n", err);
			return train_close(&t, o, SESSION_FAILED);
		}
	}
	return train_close(&t, o, SESSION_OK);
}

SessionStatus
session_eval(const Plan *p, const SessionOptions *o)
{
	char err[2048];
	if (!o->weights || !o->data) {
		fprintf(o->log, "nnrun: eval needs --weights FILE and --data DIR\nTry `nnrun --help`.\n");
		return SESSION_USAGE;
	}
	if (!session_cifar_fits(p, err, sizeof err)) {
		fprintf(o->log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	CifarData data;
	/* The loader needs a training set at least one batch long, though eval reads only the test set. */
	CifarOpenOptions oo = {.max_train = p->batch, .max_test = o->test_limit, .records_per_file = o->records};
	if (cifar_open(&data, o->data, &oo, err, sizeof err) != 0) {
		fprintf(o->log, "%s\n", err);
		return SESSION_FAILED;
	}
	SessionStatus rc = SESSION_FAILED;
	CifarConfig cfg;
	cifar_config_recipe(&cfg, &p->recipe, p->batch, false);
	CifarLoader ld;
	Exec e;
	RunState rs;
	if (cifar_loader_init(&ld, &data, &cfg, err, sizeof err) != 0) {
		fprintf(o->log, "nnrun: %s\n", err);
	} else if (!exec_init(&e, p, o->threads, err, sizeof err)) {
		fprintf(o->log, "%s: error: %s\n", o->plan_path, err);
		cifar_loader_free(&ld);
	} else {
		Backend *dev = NULL;
		Score sc;
		err[0] = 0;
		if (o->check_numerics && !exec_check_numerics(&e)) {
			snprintf(err, sizeof err, "nnrun: out of memory for --check-numerics");
		} else if (weights_load(&e, o->weights, false, &rs, err, sizeof err) && (dev = open_backend(o, &e)) &&
		           backend_evaluate(dev, &e, &ld, data.n[CIFAR_TEST], &sc, err, sizeof err)) {
			printf("test loss %.4f, accuracy %.2f%% (%ld of %ld images)\n", sc.loss,
				100.0 * (double)sc.correct / (double)sc.count, sc.correct, sc.count);
			rc = SESSION_OK;
		}
		if (rc != SESSION_OK && err[0])
			fprintf(o->log, "%s\n", err);
		if (o->check_numerics)
			exec_numerics_report(&e, o->log);
		backend_close(dev);
		exec_free(&e);
		cifar_loader_free(&ld);
	}
	cifar_close(&data);
	return rc;
}

/* The synthetic dataset of session_bench's resident loop: 4 batches of random bytes (SYNTH, which
 * the caller frees) with labels 0..9 in turn, and its loader with the recipe's augmentation. */
static bool
bench_dataset(const Plan *p, uint8_t **synth, CifarData *d, CifarLoader *ld, char *err, size_t errlen)
{
	int32_t n = 4 * p->batch;
	*d = (CifarData){0};
	*synth = malloc((size_t)n * (CIFAR_IMAGE_BYTES + 1));
	if (!*synth) {
		snprintf(err, errlen, "out of memory for the synthetic dataset");
		return false;
	}
	CpuRng r;
	cpu_rng_seed(&r, 7);
	for (size_t i = 0; i < (size_t)n * CIFAR_IMAGE_BYTES; i++)
		(*synth)[i] = (uint8_t)(cpu_rng_uniform(&r) * 256);
	for (int32_t i = 0; i < n; i++)
		(*synth)[(size_t)n * CIFAR_IMAGE_BYTES + i] = (uint8_t)(i % 10);
	d->images[CIFAR_TRAIN] = d->images[CIFAR_TEST] = *synth;
	d->labels[CIFAR_TRAIN] = d->labels[CIFAR_TEST] = *synth + (size_t)n * CIFAR_IMAGE_BYTES;
	d->n[CIFAR_TRAIN] = d->n[CIFAR_TEST] = n;
	CifarConfig cfg;
	cifar_config_recipe(&cfg, &p->recipe, p->batch, true);
	cfg.seed = 1;
	return cifar_loader_init(ld, d, &cfg, err, errlen) == 0;
}

SessionStatus
session_bench(const Plan *p, const SessionOptions *o, long steps)
{
	char err[2048] = "";
	const PlanProgram *prog = p->has_train ? &p->train : &p->eval;
	if (!session_cifar_fits(p, err, sizeof err)) {
		fprintf(o->log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	Exec e;
	if (!exec_init(&e, p, o->threads, err, sizeof err)) {
		fprintf(o->log, "%s: error: %s\n", o->plan_path, err);
		return SESSION_FAILED;
	}
	exec_init_params(&e, 1);
	CpuRng r;
	cpu_rng_seed(&r, 7);
	float *x = exec_f32(&e, p->inputs[0].value);
	for (int64_t i = 0; i < type_numel(&p->values[p->inputs[0].value]); i++)
		x[i] = (float)(2 * cpu_rng_uniform(&r) - 1);
	if (p->inputs[1].value >= 0)
		for (int i = 0; i < p->batch; i++)
			exec_i32(&e, p->inputs[1].value)[i] = i % 10;
	e.lr = 0.01;
	SessionStatus rc = SESSION_FAILED;
	Backend *dev = open_backend(o, &e);
	uint8_t *synth = NULL;
	CifarData d;
	CifarLoader ld = {0};
	bool have_loader = false;
	EpochSums sums = {0};
	long bad = -1;
	float bl = 0;
	double t0 = 0;
	if (!dev)
		goto done;
	/* On the GPU a training plan runs the resident loop, as training does; the clock stops when
	 * the device has finished. */
	if (prog == &p->train && strcmp(backend_name(dev), "cpu") != 0 && !o->backend.host_data) {
		if (!(have_loader = bench_dataset(p, &synth, &d, &ld, err, sizeof err)) ||
		    !backend_train_begin(dev, &e, &d, &ld, &sums, err, sizeof err))
			goto fail;
	}
	bool resident = backend_resident(dev);
	for (long s = -2; s < steps; s++) {
		if (s == 0) {
			if (resident && !backend_train_read(dev, &e, false, &sums, &bad, &bl, err, sizeof err))
				goto fail;
			t0 = nnc_seconds();
		}
		if (!(resident ? backend_train_step(dev, err, sizeof err) : backend_run(dev, &e, prog, err, sizeof err)))
			goto fail;
	}
	if (resident && !backend_train_read(dev, &e, false, &sums, &bad, &bl, err, sizeof err))
		goto fail;
	double dt = (nnc_seconds() - t0) / (double)steps;
	char where[64], graph[160] = "";
	if (!strcmp(backend_name(dev), "cpu"))
		snprintf(where, sizeof where, "%d threads", o->threads);
	else
		snprintf(where, sizeof where, "GPU");
	if (resident) {
		int nodes = backend_graph_nodes(dev);
		if (nodes > 0)
			snprintf(graph, sizeof graph, ", a CUDA graph of %d nodes", nodes);
		else
			snprintf(graph, sizeof graph, ", no CUDA graph (%s)",
				backend_graph_note(dev)[0] ? backend_graph_note(dev) : "--no-graph");
	}
	printf("%s %s: batch %d, %s%s, %ld steps: %.2f ms/step, %.1f images/s", p->model,
		prog == &p->train ? "training step" : "inference", p->batch, where, graph, steps, dt * 1e3, p->batch / dt);
	if (resident)
		printf(", mean loss %.4g", sums.seen ? sums.loss_sum / (double)sums.seen : 0.0);
	else if (prog->loss >= 0)
		printf(", loss %.4g", (double)*exec_view_f32(&e, prog->loss));
	printf("\n");
	rc = SESSION_OK;
	goto done;
fail:
	fprintf(o->log, "nnrun: error: %s\n", err);
done:
	if (have_loader)
		cifar_loader_free(&ld);
	free(synth);
	backend_close(dev);
	exec_free(&e);
	return rc;
}
