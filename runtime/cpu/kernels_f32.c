/* The fp32 instantiation of kernels_impl.h: the production kernels, NAME_f32. */
#include "runtime/cpu/kernels.h"

#include <tgmath.h>

#define NNC_KERNELS_F32 1
#define REAL float
#define FN(name) name##_f32
#define GEMM cblas_sgemm

#include "runtime/ew.h"
#include "runtime/cpu/kernels_impl.h"
