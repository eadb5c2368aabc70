/* weight_init="whiten": a convolution over the input image initialised from the training data,
 * airbench94's whitening layer (Keller Jordan, arXiv 2404.00498), for any model. */
#ifndef NNC_WHITEN_H
#define NNC_WHITEN_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/data.h"
#include "runtime/exec.h"

/* Sets every conv2d weight whose initializer is "whiten" from the first WHITEN_IMAGES training
 * images of D, normalized with MEAN and STD as the loader normalizes them: filter i is the
 * i-th eigenvector (largest eigenvalue first) of the second-moment matrix of all the images'
 * stride-1 patches of the filter's size, divided by sqrt(eigenvalue + WHITEN_EPS), and with
 * twice as many filters as a patch has values, filters taps..2*taps-1 are their negations.
 * The eigenvectors come from LAPACK (dsyev, in OpenBLAS). Returns false with a message naming
 * the parameter when a filter does not take the image's 3 channels or LAPACK fails. */
enum { WHITEN_IMAGES = 5000 };
#define WHITEN_EPS 5e-4
bool whiten_init(Exec *e, const CifarData *d, const float mean[3], const float std[3], char *err, size_t errlen);

#endif
