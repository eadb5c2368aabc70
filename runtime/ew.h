/* The elementwise formulas, one per row of core/ops.h's NNC_EW table, written once for the CPU
 * kernels (runtime/cpu/kernels_impl.h, in f32 and f64) and the CUDA kernels
 * (runtime/cuda/kernels_math.cuh), like runtime/splitmix.h and runtime/step_end.h. The
 * activations' epilogues and prologues (relu, relu6 and their backward, fused into other
 * kernels) are these same formulas, so a fused result is bit-identical to the separate op's.
 *
 * NNC_EWF_<op>(T, a, b): the result for operand a (and b, for binary ops and the backward ops,
 * whose (a, b) is (the forward's saved value, dy)), in type T. The includer defines NNC_ERF,
 * NNC_EXP and NNC_TANH for T (the CPU: <tgmath.h>'s erf, exp, tanh; CUDA: erff, expf, tanhf).
 * Operands are evaluated more than once: pass plain variables. A row of NNC_EW without its
 * formula here fails to compile where the kernels are generated from the table. */
#ifndef NNC_EW_H
#define NNC_EW_H

#define NNC_SQRT1_2 0.70710678118654752440      /* 1/sqrt(2) */
#define NNC_INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */

#define NNC_EWF_relu(T, a, b) ((a) > (T)0 ? (a) : (T)0)
#define NNC_EWF_relu6(T, a, b) ((a) > (T)0 ? ((a) < (T)6 ? (a) : (T)6) : (T)0)
#define NNC_EWF_gelu(T, a, b) ((a) * (T)0.5 * ((T)1 + NNC_ERF((a) * (T)NNC_SQRT1_2)))
#define NNC_EWF_tanh(T, a, b) NNC_TANH(a)
#define NNC_EWF_add(T, a, b) ((a) + (b))
#define NNC_EWF_mulv(T, a, b) ((a) * (b))
#define NNC_EWF_relu_bwd(T, a, b) ((a) > (T)0 ? (b) : (T)0)
#define NNC_EWF_relu6_bwd(T, a, b) ((a) > (T)0 && (a) < (T)6 ? (b) : (T)0)
#define NNC_EWF_gelu_bwd(T, a, b)                                                                                   \
	((b) * ((T)0.5 * ((T)1 + NNC_ERF((a) * (T)NNC_SQRT1_2)) + (a) * (NNC_EXP(-(T)0.5 * (a) * (a)) * (T)NNC_INV_SQRT_2PI)))
#define NNC_EWF_tanh_bwd(T, a, b) ((b) * ((T)1 - (a) * (a)))

#endif
