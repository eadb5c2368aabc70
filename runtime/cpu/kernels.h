/* The CPU backend's kernels: plain C over raw pointers and shapes, with PyTorch semantics, for
 * the plan executor. Every kernel exists twice, generated from one generic source
 * (kernels_impl.h): NAME_f32 over float, the production kernels, and NAME_f64 over double, the
 * reference that gradient checks run against. The per-type declarations, with their
 * documentation, are in kernels_decl.h; this header instantiates them for both types.
 *
 * Conventions, for every kernel:
 *   - Layouts are NCHW for images ([n, c, h, w], w fastest), [n, f] for 2-D activations, OIHW
 *     ([out, in / groups, kh, kw]) for convolution weights, [units, f] for dense weights.
 *     Labels are int32 class indices.
 *   - Outputs are overwritten, never accumulated into; the executor sums fan-in gradients with
 *     cpu_add. Elementwise kernels allow an output to alias an input exactly; no other
 *     aliasing is allowed.
 *   - Nothing allocates. Kernels that need scratch (only conv2d on its im2col path) take a
 *     workspace and its size in bytes; the matching *_workspace function gives the exact size
 *     for a given thread count. Workspaces need sizeof(REAL) alignment; 64 is best.
 *   - Work runs on the thread pool of threads.h (cpu_threads_init once at start-up). Results are
 *     bit-identical for any thread count: every output element is computed by one task with a
 *     fixed sequence of operations, reductions (batch-norm statistics, bias and weight
 *     gradients, the loss) are either done by one task or split into partial sums over
 *     ranges fixed by the shapes and added in a fixed order, and GEMMs are issued over blocks
 *     whose bounds depend only on the shapes.
 *   - Sums over many elements (statistics, bias gradients, pooling, softmax) accumulate in
 *     double in both variants, as PyTorch's CPU batch norm does for float.
 *   - Functions returning int return 0, or -1 for invalid arguments (bad shapes, labels out of
 *     range, a workspace too small), in which case no output has been written. */
#ifndef NNC_CPU_KERNELS_H
#define NNC_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/half.h"
#include "core/ops.h"
#include "runtime/cpu/rng.h"
#include "runtime/cpu/threads.h"

/* A 2-D convolution, PyTorch's nn.Conv2d: input [n, c, h, w], weight [k, c / groups, kh, kw],
 * output [n, k, oh, ow] with oh = (h + 2 ph - kh) / sh + 1 (floor), likewise ow. Fill the
 * fields up to groups (designated initializers read best) and call cpu_conv_setup, which
 * checks them and sets oh and ow. */
typedef struct {
	int n, c, h, w; /* input */
	int k;          /* output channels */
	int kh, kw;     /* kernel */
	int sh, sw;     /* stride (>= 1) */
	int ph, pw;     /* zero padding (>= 0) on both sides */
	int groups;     /* divides c and k; groups == c is depthwise */
	int oh, ow;     /* output size, set by cpu_conv_setup */
	bool nhwc;      /* activations NHWC and weights OHWI (oneDNN only, conv_dnnl.h; the im2col
	                 * kernels read NCHW / OIHW and ignore it) */
} CpuConv;

/* Validates cv and sets oh, ow. Returns 0, or -1 if a field is out of range, groups does not
 * divide both channel counts, the output would be empty, a plane or a GEMM dimension would
 * reach INT_MAX elements, or a tensor 2^40. */
int cpu_conv_setup(CpuConv *cv);

/* The element counts of a set-up convolution's input, output and weight. */
static inline size_t
cpu_conv_x_numel(const CpuConv *cv)
{
	return (size_t)cv->n * cv->c * cv->h * cv->w;
}
static inline size_t
cpu_conv_y_numel(const CpuConv *cv)
{
	return (size_t)cv->n * cv->k * cv->oh * cv->ow;
}
static inline size_t
cpu_conv_w_numel(const CpuConv *cv)
{
	return (size_t)cv->k * (cv->c / cv->groups) * cv->kh * cv->kw;
}

/* An epilogue (a kernel applies the activation to its result in the same pass) or a prologue
 * (it reads its incoming gradient through the activation's backward) is core/ops.h's Epilogue;
 * a chain's elementwise kernels (cpu_ew_range) are numbered by its Elementwise (NNC_EW). Their
 * formulas are runtime/ew.h's, so fused and separate kernels give identical results.
 * Backward formulas take (a, b) = (saved, dy), as the kernels below do. */

/* A large operand of the channels-last per-channel kernels as stored: REAL elements, or with
 * f16 set fp16 ones, which the kernel converts in runs of at most CPU_F16_RUN elements as it
 * reads or writes them (F16C where the CPU has it), so that an fp16 tensor needs no widened
 * copy. The arithmetic is REAL's either way: the results are exactly those of the widened
 * copy, rounded. p NULL: the operand is absent. */
typedef struct {
	const void *p;
	bool f16;
} CpuIn;
typedef struct {
	void *p;
	bool f16;
} CpuOut;
enum { CPU_F16_RUN = 1024 };

/* The three convolution kernels, for sizing their workspaces. */
typedef enum {
	CPU_CONV_FORWARD,
	CPU_CONV_BACKWARD_DATA,
	CPU_CONV_BACKWARD_FILTER,
} CpuConvPass;

/* A 2-D pooling window, PyTorch's MaxPool2d / AvgPool2d with ceil_mode=False: input
 * [n, c, h, w], output [n, c, oh, ow], oh = (h + 2 ph - kh) / sh + 1. cpu_pool_setup checks
 * the fields (padding at most half the kernel, as PyTorch requires) and sets oh and ow. */
typedef struct {
	int n, c, h, w;
	int kh, kw, sh, sw, ph, pw;
	int oh, ow;
	bool nhwc; /* input and output channels-last (passes/layout.c); else NCHW */
} CpuPool;

int cpu_pool_setup(CpuPool *p);

/* torch.optim.SGD with dampening 0. momentum 0 means plain SGD (no buffer). */
typedef struct {
	double lr, momentum, weight_decay;
	bool nesterov;
} CpuSgd;

/* torch.optim.Adam (decoupled false: weight decay is L2 added to the gradient) and
 * torch.optim.AdamW (decoupled true: p *= 1 - lr * weight_decay before the update); amsgrad
 * off. */
typedef struct {
	double lr, beta1, beta2, eps, weight_decay;
	bool decoupled;
} CpuAdam;

#define NNC_REAL float
#define NNC_FN(name) name##_f32
#include "runtime/cpu/kernels_decl.h"
#undef NNC_REAL
#undef NNC_FN

#define NNC_REAL double
#define NNC_FN(name) name##_f64
#include "runtime/cpu/kernels_decl.h"
#undef NNC_REAL
#undef NNC_FN

#endif
