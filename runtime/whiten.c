/* weight_init="whiten" (whiten.h). The second moments are summed in double over every patch
 * (not mean-centred: airbench's choice, which keeps the image's mean colour in the first
 * filter); the moment matrix, and so the filters, depend only on the data, the normalization
 * and the filter's shape, so both backends start from the same weights (the GPU's are
 * uploaded from these). The sign of each eigenvector is LAPACK's, the same from run to run. */
#include "runtime/whiten.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (Fortran: hidden lengths of the two character arguments). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
	const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

enum { SIDE = 32, MAX_TAPS = 3 * 8 * 8 };

/* M += the outer products of image IMG's patches (kh x kw, stride 1), upper triangle, over
 * TAPS = 3*kh*kw values in (channel, row, column) order: PyTorch's filter order. */
static void
add_patches(double *m, const float *img, int kh, int kw)
{
	int taps = 3 * kh * kw;
	double p[MAX_TAPS];
	for (int y = 0; y + kh <= SIDE; y++)
		for (int x = 0; x + kw <= SIDE; x++) {
			int t = 0;
			for (int c = 0; c < 3; c++)
				for (int i = 0; i < kh; i++)
					for (int j = 0; j < kw; j++)
						p[t++] = img[(c * SIDE + y + i) * SIDE + x + j];
			for (int a = 0; a < taps; a++)
				for (int b = a; b < taps; b++)
					m[a * taps + b] += p[a] * p[b];
		}
}

static bool
whiten_one(Exec *e, const PlanParam *q, const CifarData *d, const float mean[3], const float std[3], char *err,
	size_t errlen)
{
	const Type *t = &e->plan->values[q->value];
	int k = (int)t->dim[0], c = (int)t->dim[1], kh = (int)t->dim[2], kw = (int)t->dim[3];
	int taps = c * kh * kw;
	if (c != 3 || kh > SIDE || kw > SIDE || taps > MAX_TAPS || (k != taps && k != 2 * taps)) {
		snprintf(err, errlen, "%s: weight_init \"whiten\" needs a filter over the 3-channel image of at most 8x8 with "
		                      "%d or %d filters, got [%d, %d, %d, %d]",
			q->name, taps, 2 * taps, k, c, kh, kw);
		return false;
	}
	int n = d->n[CIFAR_TRAIN] < WHITEN_IMAGES ? d->n[CIFAR_TRAIN] : WHITEN_IMAGES;
	double *m = calloc((size_t)taps * taps, sizeof *m), w[MAX_TAPS], work[64 * MAX_TAPS];
	float *img = malloc(CIFAR_IMAGE_BYTES * sizeof *img);
	if (!m || !img) {
		free(m);
		free(img);
		snprintf(err, errlen, "%s: out of memory for its whitening", q->name);
		return false;
	}
	for (int i = 0; i < n; i++) {
		const uint8_t *u = d->images[CIFAR_TRAIN] + (size_t)i * CIFAR_IMAGE_BYTES;
		for (int j = 0; j < CIFAR_IMAGE_BYTES; j++)
			img[j] = ((float)u[j] / 255.0f - mean[j / (SIDE * SIDE)]) / std[j / (SIDE * SIDE)];
		add_patches(m, img, kh, kw);
	}
	double count = (double)n * (SIDE - kh + 1) * (SIDE - kw + 1);
	for (int a = 0; a < taps; a++)
		for (int b = a; b < taps; b++)
			m[b * taps + a] = m[a * taps + b] = m[a * taps + b] / count;
	int info = 0, lwork = 64 * MAX_TAPS;
	/* m is symmetric, so row- and column-major agree; on return column j holds eigenvector j,
	 * eigenvalues ascending */
	dsyev_("V", "U", &taps, m, &taps, w, work, &lwork, &info, 1, 1);
	if (info != 0) {
		free(m);
		free(img);
		snprintf(err, errlen, "%s: LAPACK dsyev failed (info %d) on the patch moments of %d images", q->name, info, n);
		return false;
	}
	float *v = e->view;
	for (int f = 0; f < taps; f++) {
		int col = taps - 1 - f;
		double s = 1 / sqrt(w[col] + WHITEN_EPS);
		for (int a = 0; a < taps; a++) {
			v[f * taps + a] = (float)(m[col * taps + a] * s);
			if (k == 2 * taps)
				v[(taps + f) * taps + a] = -v[f * taps + a];
		}
	}
	exec_store_torch(e, q->value, v, exec_f32(e, q->value));
	free(m);
	free(img);
	return true;
}

bool
whiten_init(Exec *e, const CifarData *d, const float mean[3], const float std[3], char *err, size_t errlen)
{
	for (int i = 0; i < e->plan->nparams; i++) {
		const PlanParam *q = &e->plan->params[i];
		if (!strcmp(q->init, "whiten") && !whiten_one(e, q, d, mean, std, err, errlen))
			return false;
	}
	return true;
}
