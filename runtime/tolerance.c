/* Lemma 3.3's per-image analysis and the evaluation runs it needs (see tolerance.h). */
#include "runtime/tolerance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/session.h"
#include "runtime/weights.h"

void
tol_softmax(const float *logits, int n, int k, double *p)
{
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		double m = -INFINITY, s = 0;
		for (int j = 0; j < k; j++)
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

TolImage
tol_image(const double *pa, const double *pb, int k)
{
	TolImage t = {0};
	double top1 = -1, top2 = -1;
	for (int j = 0; j < k; j++) {
		t.nonfinite_a |= !isfinite(pa[j]);
		t.nonfinite_b |= !isfinite(pb[j]);
		if (pa[j] > top1) {
			top2 = top1;
			top1 = pa[j];
		} else if (pa[j] > top2) {
			top2 = pa[j];
		}
	}
	for (int j = 0; j < k; j++) {
		double d = t.nonfinite_a || t.nonfinite_b ? INFINITY : fabs(pa[j] - pb[j]);
		t.delta = d > t.delta ? d : t.delta;
	}
	t.gamma = top1 - top2;
	t.pred_a = argmax(pa, k);
	t.pred_b = argmax(pb, k);
	t.guaranteed = t.gamma >= 2 * t.delta;
	return t;
}

void
tol_add(TolSummary *s, const TolImage *t, int label)
{
	s->n++;
	s->guaranteed += t->guaranteed;
	s->agree += t->pred_a == t->pred_b;
	s->impossible += t->guaranteed && t->pred_a != t->pred_b;
	s->correct_a += t->pred_a == label;
	s->correct_b += t->pred_b == label;
	s->nonfinite_a += t->nonfinite_a;
	s->nonfinite_b += t->nonfinite_b;
	s->max_delta = t->delta > s->max_delta ? t->delta : s->max_delta;
}

void
tol_summary(const double *pa, const double *pb, const int32_t *labels, int64_t n, int k, TolSummary *sum)
{
	*sum = (TolSummary){0};
	for (int64_t i = 0; i < n; i++) {
		TolImage t = tol_image(pa + i * k, pb + i * k, k);
		tol_add(sum, &t, labels[i]);
	}
}

bool
tol_slice_fits(const CifarData *data, TolSlice slice, char *err, size_t errlen)
{
	int64_t have = data->n[slice.split];
	if (slice.count >= 1 && slice.first >= 0 && slice.first + slice.count <= have)
		return true;
	snprintf(err, errlen, "images %lld to %lld of the %s set were asked for, but it has %lld",
		(long long)slice.first, (long long)(slice.first + slice.count - 1), slice.split == CIFAR_TRAIN ? "training" : "test",
		(long long)have);
	return false;
}

bool
tol_probs(const Plan *p, const char *weights, const CifarData *data, TolSlice slice, const BackendOptions *bo,
	int threads, double *prob, int32_t *labels, char *note, size_t notelen, char *err, size_t errlen)
{
	static const BackendOptions cpu = {.device = "cpu"};
	if (!session_cifar_fits(p, err, errlen) || !tol_slice_fits(data, slice, err, errlen))
		return false;
	int k = (int)p->values[p->eval.logits].dim[1];
	CifarConfig cfg;
	cifar_config_recipe(&cfg, &p->recipe, p->batch, false);
	CifarLoader ld;
	if (cifar_loader_init(&ld, data, &cfg, err, errlen) != 0)
		return false;
	Exec e;
	if (!exec_init(&e, p, threads, err, errlen)) {
		cifar_loader_free(&ld);
		return false;
	}
	RunState rs;
	Backend *b = NULL;
	bool ok = weights_load(&e, weights, false, &rs, err, errlen) &&
	          (b = backend_open(&e, bo ? bo : &cpu, note, notelen, err, errlen)) != NULL;
	for (int64_t done = 0; ok && done < slice.count; done += p->batch) {
		int32_t *y = exec_i32(&e, p->inputs[1].value);
		int32_t valid = cifar_eval_batch(&ld, slice.split, slice.first + done, exec_f32(&e, p->inputs[0].value), y);
		if (valid > slice.count - done)
			valid = (int32_t)(slice.count - done);
		for (int32_t i = 0; labels && i < valid; i++)
			labels[done + i] = y[i];
		for (int32_t i = valid; i < p->batch; i++)
			y[i] = 0;
		ok = backend_run(b, &e, &p->eval, err, errlen);
		if (ok)
			tol_softmax(exec_view_f32(&e, p->eval.logits), valid, k, prob + done * k);
	}
	backend_close(b);
	exec_free(&e);
	cifar_loader_free(&ld);
	return ok;
}
