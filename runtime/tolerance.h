/* The tolerance analysis of Lemma 3.3 ("Revisiting 16-bit Neural Network Training", arXiv
 * 2305.10947), shared by `nnrun compare` and `nnc tune-precision`. For two plans A and B of one
 * network with the same weights, per image: pA, pB the softmax outputs, delta = max_c |pA_c -
 * pB_c|, Gamma = top-1 minus top-2 probability of A. If Gamma >= 2 delta both must predict the
 * same class ("guaranteed"); an image where Gamma < 2 delta has lost that guarantee (the tuner
 * calls it a violation of the lemma's condition). A disagreement despite the guarantee is
 * impossible, so counted apart: it would be a bug.
 *
 * Invariants: probabilities are computed in f64 from the plans' f32 logits (max-subtracted);
 * a NaN or Inf anywhere in either row makes that image's delta +inf, so no guarantee holds for
 * it. tol_probs evaluates in file order without augmentation, so its result depends only on the
 * plan, the weights, the images and the backend. */
#ifndef NNC_TOLERANCE_H
#define NNC_TOLERANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/backend.h"
#include "runtime/data.h"
#include "runtime/plan.h"

typedef struct {
	double gamma, delta;
	int pred_a, pred_b;
	bool guaranteed;      /* gamma >= 2 delta */
	bool nonfinite_a, nonfinite_b;
} TolImage;

typedef struct {
	long n, guaranteed, agree, impossible; /* impossible: disagree although guaranteed */
	long correct_a, correct_b, nonfinite_a, nonfinite_b;
	double max_delta;
} TolSummary;

/* Softmax probabilities of N rows of K logits into P. */
void tol_softmax(const float *logits, int n, int k, double *p);
/* One image's analysis from its two probability rows. */
TolImage tol_image(const double *pa, const double *pb, int k);
/* Adds an image with true class LABEL to S (zero S first). */
void tol_add(TolSummary *s, const TolImage *t, int label);
/* A whole slice: SUM over N images of K classes (PA, PB row-major). */
void tol_summary(const double *pa, const double *pb, const int32_t *labels, int64_t n, int k, TolSummary *sum);

/* The images a plan is evaluated on: COUNT images of SPLIT from FIRST, in file order. */
typedef struct {
	CifarSplit split;
	int64_t first, count;
} TolSlice;

/* Whether SLICE lies within DATA (a message naming the split's size otherwise). */
bool tol_slice_fits(const CifarData *data, TolSlice slice, char *err, size_t errlen);
/* Runs PLAN's evaluation program with the weights of the checkpoint or safetensors file
 * WEIGHTS over SLICE of DATA, normalized per the plan's recipe, on the backend BO asks for
 * (NULL: the CPU). PROB receives slice.count x classes probabilities, LABELS (may be NULL) the
 * true classes. NOTE (may be NULL) the backend's note on its choice. */
bool tol_probs(const Plan *plan, const char *weights, const CifarData *data, TolSlice slice, const BackendOptions *bo,
	int threads, double *prob, int32_t *labels, char *note, size_t notelen, char *err, size_t errlen);

#endif
