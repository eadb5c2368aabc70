/* The double instantiation of kernels_impl.h: NAME_f64, the reference that gradient checks and
 * precision comparisons run against. Same code as the fp32 kernels, only the type differs. */
#include "runtime/cpu/kernels.h"

#include <tgmath.h>

#define NNC_KERNELS_F32 0
#define REAL double
#define FN(name) name##_f64
#define GEMM cblas_dgemm

#include "runtime/ew.h"
#include "runtime/cpu/kernels_impl.h"
