/* The CUDA backend's own kernels (kernels.cu), as launch functions for exec.cu. Each mirrors a
 * CPU kernel of runtime/cpu/ (named beside it): same formula, same operand order, computing in
 * f32 on values stored in f32 or f16 (a Buf says which) and rounding results to their storage
 * dtype, as the CPU executor's widen/narrow does. Sums run in a fixed order per launch
 * configuration (block trees, no atomics), so repeated runs are bit-identical; they differ
 * from the CPU's lane sums in the last bits. Every launch function returns the launch's
 * cudaError_t (cudaGetLastError). */
#ifndef NNC_CUDA_KERNELS_CUH
#define NNC_CUDA_KERNELS_CUH

#include <cstdint>

#include <cuda_runtime.h>

extern "C" {
#include "runtime/cpu/kernels.h"
#include "core/ops.h"
}

/* Threads per block of every kernel here and in resident.cu, and the blocks of a grid-stride
 * launch over n elements (at most 4096: each thread then loops). */
enum { THREADS = 256 };
inline int
blocks_for(long long n)
{
	long long b = (n + THREADS - 1) / THREADS;
	return (int)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}

/* A tensor in device memory and its storage dtype. */
struct Buf {
	void *p;
	bool f16;
};

/* Elementwise programs: up to EW_MAXOPS ops run per element, each taking the previous result or
 * operands; the codes are ops.h's Elementwise (nnc_ew_of), the formulas runtime/cpu's. */
enum { EW_MAXOPS = 5, EW_MAXIN = 8, EW_PREV = -1, EW_NONE = -2 };
struct EwProgram {
	int nops;
	Elementwise op[EW_MAXOPS];
	int a[EW_MAXOPS], b[EW_MAXOPS]; /* operand index, EW_PREV (the previous op's result) or EW_NONE */
	Buf in[EW_MAXIN];
	Buf out;
	Epilogue act; /* epilogue after the last op */
	long long n;
};
cudaError_t ew_run(const EwProgram &p, cudaStream_t st);

/* y = s * x, converting storage (mul, cast, copies: s = 1). */
cudaError_t scale_copy(Buf x, Buf y, float s, long long n, cudaStream_t st);
/* y = act(y + b[channel]) over [n, c, hw] (b may be null): conv and dense epilogues. */
cudaError_t bias_act(Buf y, Buf b, long long n, int c, int hw, Epilogue act, cudaStream_t st);

/* Scratch of the per-channel reductions, which split each channel over several blocks
 * (bn_splits) and let the last block to finish combine the parts in block order: partial
 * results [c][BN_MAX_SPLIT][3] doubles, per-channel arrival counters (zero between launches:
 * the last block resets its channel's), and the dx coefficients of bn_backward [c][3]. One
 * scratch serves every step of a stream, sized for the widest channel count. */
enum { BN_MAX_SPLIT = 64 };
struct BnScratch {
	double *part;
	unsigned *count;
	float *coef;
};
size_t bn_scratch_bytes(int max_c);
/* Carves S (device memory of bn_scratch_bytes(max_c) bytes, zeroed) into its parts. */
BnScratch bn_scratch_at(void *mem, int max_c);

/* Batch norm over [n, c, hw] (cpu_batchnorm_*). stats: [3, c] mean, invstd, unbiased variance.
 * With run.rm set, bn_stats also updates the running statistics (bn_update) as it finishes
 * each channel: one launch instead of two. */
struct BnRunning {
	Buf rm, rv;
	double momentum;
};
cudaError_t bn_stats(Buf x, int n, int c, int hw, double eps, Buf stats, BnRunning run, BnScratch sc,
	cudaStream_t st);
cudaError_t bn_apply(Buf x, Buf stats, Buf w, Buf b, Buf y, int n, int c, int hw, Epilogue act, cudaStream_t st);
/* bn_apply (no activation; its result stored in f16 when MID_F16) followed by an add with
 * OTHER and the add's activation, in one pass, writing only the add's result Y. */
cudaError_t bn_apply_add(Buf x, Buf stats, Buf w, Buf b, bool mid_f16, Buf other, Buf y, int n, int c, int hw, Epilogue act,
	cudaStream_t st);
cudaError_t bn_infer(Buf x, Buf mean, Buf var, double eps, Buf w, Buf b, Buf y, int n, int c, int hw, Epilogue act,
	cudaStream_t st);
cudaError_t bn_update(Buf rm, Buf rv, Buf stats, int c, double momentum, cudaStream_t st);
/* Backward: any of dx, dw (scale), db (shift or bias) may be null; x may be null when only db is
 * wanted (bias_grad). pro: the prologue (0 none, 1 relu, 2 relu6) masking dz by act_y. */
cudaError_t bn_backward(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, Buf w, Buf dx, Buf dw, Buf db, int n, int c,
	int hw, BnScratch sc, cudaStream_t st);
cudaError_t bn_fold_weight(Buf w, int out, long long per_out, Buf var, double eps, Buf scale, Buf wf, cudaStream_t st);
cudaError_t bn_fold_bias(int out, Buf mean, Buf var, double eps, Buf scale, Buf shift, Buf bias, Buf bf,
	cudaStream_t st);

/* Direct convolutions (conv_*_at in kernels_math.cuh): the fallback where cuDNN offers no
 * algorithm for a convolution. PASS: 0 forward (y from x, w), 1 backward data (dx from dy,
 * w), 2 backward filter (dw from x, dy); a and b are the two operands in that order. */
cudaError_t conv_direct(const CpuConv &geometry, int pass, Buf a, Buf b, Buf out, long long total, cudaStream_t st);

/* Pooling geometry, as CpuPool. */
/* Pooling geometry; nhwc: input and output channels-last (passes/layout.c), element (img, ch,
 * y, x) at ((img * H + y) * W + x) * C + ch, else NCHW. */
struct Pool {
	int n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
	bool nhwc;
};
cudaError_t maxpool_fwd(const Pool &p, Buf x, Buf y, cudaStream_t st);
cudaError_t maxpool_bwd(const Pool &p, Buf x, Buf dy, Buf dx, cudaStream_t st);
cudaError_t avgpool_fwd(const Pool &p, Buf x, Buf y, cudaStream_t st);
cudaError_t avgpool_bwd(const Pool &p, Buf dy, Buf dx, cudaStream_t st);
/* NHWC: x [n, hw, c] (channels-last) and dx likewise. */
cudaError_t gap_fwd(Buf x, int n, int c, int hw, bool nhwc, Buf y, cudaStream_t st);
cudaError_t gap_bwd(Buf dy, int n, int c, int hw, bool nhwc, Buf dx, cudaStream_t st);
/* y = x in the other layout: [planes][a][b] -> [planes][b][a] (NCHW -> NHWC: a = C, b = H*W;
 * back: a = H*W, b = C; filters: planes = O). */
cudaError_t relayout(Buf x, Buf y, long long planes, int a, int b, cudaStream_t st);

/* Rows of k classes. seed: the backward's dloss (ones or the loss scale), a device scalar. */
cudaError_t softmax_fwd(Buf x, int n, int k, Buf y, cudaStream_t st);
cudaError_t softmax_bwd(Buf y, Buf dy, int n, int k, Buf dx, cudaStream_t st);
cudaError_t xent_fwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf loss, cudaStream_t st);
cudaError_t xent_bwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf seed, Buf dx, cudaStream_t st);

/* Channel concat of m inputs of cs[i] channels each, and its inverse piece (slice). */
cudaError_t concat(const Buf *xs, const int *cs, int m, int n, int hw, Buf y, cudaStream_t st);
cudaError_t slice(Buf x, int n, int c, int hw, int start, int size, Buf y, cudaStream_t st);

/* The scalars a training run's kernels read, in device memory: the host writes them before an
 * eager run (nnc_cuda_run); the resident loop (resident.cu) advances them on the device. */
struct StepScalars {
	double lr, loss_scale;           /* this step's learning rate, the loss scale S */
	long long step;                  /* optimizer updates done (Adam's t is step + 1) */
	unsigned long long rng_counter;  /* dropout stream position at the run's start */
	int bad;                         /* grad_check found inf/NaN in this run */
	int pad;
};

/* Dropout mask from Philox4x32-10 at stream position s->rng_counter + offset + i
 * (cpu_dropout_mask); offset: what the run's earlier masks drew. */
/* SHAPE: 0 for an NCHW (or any non-image) mask; for an NHWC one {c, h, w}, element i then
 * drawing the stream at its NCHW index (nchw_index). */
cudaError_t dropout_mask(uint64_t key, const StepScalars *s, uint64_t offset, double p, Buf mask, long long n,
	const int *shape, cudaStream_t st);

/* Optimizer updates (cpu_sgd_step, cpu_adam_step) with the step's learning rate and count from
 * S; with unscale, the gradient is divided by S's loss scale and the update skipped when
 * s->bad is set (grad_check found inf/NaN). */
/* sr: optimizer.rounding stochastic, an fp16 parameter (plan value sr_value) stored rounded as
 * runtime/sround.h says from the recipe's seed sr_seed. */
struct SgdConf {
	double momentum, wd;
	bool nesterov;
	double lr_scale; /* the step's lr_scale (core/ops.h): lr times it, wd already divided */
	bool sr;
	unsigned long long sr_seed;
	int sr_value;
};
struct AdamConf {
	double beta1, beta2, eps, wd;
	bool decoupled;
	bool sr;
	unsigned long long sr_seed;
	int sr_value;
};
/* The float scalars of one update, formed in double as the CPU forms them (kernels_math.cuh);
 * sr_key: the step's stochastic-rounding key (nnc_sround_key). */
struct Sgd {
	float lr_neg, momentum, wd;
	bool nesterov, first, has_buf, sr;
	unsigned long long sr_key;
};
struct Adam {
	float decay, wd, w1, beta2, w2, bc2_sqrt, eps, step_neg;
	bool decoupled, sr;
	unsigned long long sr_key;
};
cudaError_t sgd(const SgdConf &o, const StepScalars *s, Buf p, Buf g, Buf buf, long long n, bool unscale,
	cudaStream_t st);
cudaError_t adam(const AdamConf &o, const StepScalars *s, Buf p, Buf g, Buf m, Buf v, long long n, bool unscale,
	cudaStream_t st);
/* Multi-tensor launches: one kernel for a run of updates (or one grad_check's operands), the
 * tensors cut into MT_CHUNK-element chunks, tensor t owning chunks [t.chunk0, t.chunk0 +
 * ceil(t.n / MT_CHUNK)); the table is built once, in device memory (exec.cu). p, g, s1, s2:
 * parameter, gradient and optimizer state (SGD: s1 the momentum buffer; Adam: s1 m, s2 v); a
 * cast writes p from g. */
enum { MT_CHUNK = 4096 };
struct MtTensor {
	Buf p, g, s1, s2;
	long long n, chunk0;
	SgdConf sgd;
	AdamConf adam;
	bool unscale;
};
/* OP: OP_sgd_update, OP_adam_update, OP_cast (p = g, converting storage), or OP_grad_check
 * (sets s->bad when any element of any tensor's g is not finite). */
cudaError_t multi_tensor(Op op, const MtTensor *t, int ntensors, long long nchunks, StepScalars *s, cudaStream_t st);
/* Sets *bad when any element of x is not finite. */
cudaError_t grad_check(Buf x, long long n, int *bad, cudaStream_t st);
cudaError_t fill1(Buf y, float v, cudaStream_t st);
/* y[0] = the loss scale S (the loss_scale op's seed). */
cudaError_t fill_scale(Buf y, const StepScalars *s, cudaStream_t st);
/* *count += the number of elements of x that are NaN or Inf (atomic adds of counts: the total
 * does not depend on their order). */
cudaError_t count_nonfinite(Buf x, long long n, unsigned long long *count, cudaStream_t st);

#endif
