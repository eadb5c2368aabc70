/* The CUDA executor (cuda_backend.h): runs a validated Plan's programs on one GPU.
 *
 * Memory: the plan's three arenas and one workspace are cudaMalloc'ed once, in
 * nnc_cuda_exec_new; value v lives at base[arena[v]] + offset[v], as on the CPU, so the memory
 * plan (and its overlap checker) holds on the device unchanged. Convolutions go to cuDNN
 * (forward, backward-data, backward-filter) with descriptors made and an algorithm chosen once
 * per shape at load: measured with cuDNN's find API and kept in a file per GPU and cuDNN version
 * (algo_cache.h), so later runs read the measurement (or, with CudaOptions.heuristic_algos,
 * cuDNN's heuristics), restricted to deterministic algorithms with CudaOptions.deterministic
 * and to IEEE fp32 math for fp32 data; dense layers to cuBLAS (cublasGemmEx, fp32
 * compute, IEEE fp32 for f32 data: no TF32); everything else to kernels.cu, which mirror the
 * CPU kernels. Dispatch goes through one table generated from the op table (static_asserted).
 * Fusions are the plan's (passes/fuse.c): epilogues, prologues and chains are the step's own;
 * its groups (GroupKind) run as one kernel or launch when the range enqueued holds all of them
 * and --check-numerics is off. The executor decides no fusion of its own.
 * The kernels read the step's scalars (learning rate, optimizer step, loss scale, dropout
 * stream position, grad_check's flag) from e->run in device memory: nnc_cuda_run writes them
 * from the host before an eager run; resident.cu advances them on the device between steps.
 *
 * Channels-last plans (passes/layout.c) run with NHWC / OHWI descriptors, the per-channel
 * kernels over [N*H*W, C, 1] (hw_of, rows_of), and pooling, the global average pool, relayouts
 * and dropout masks indexing NHWC themselves (kernels_math.cuh).
 * Not supported on the GPU (refused at load, naming the step): steps that accumulate in fp16
 * (acc: f16, the CPU's bit-exact reference kernels), and concat or slice along an axis other
 * than channels (the CPU refuses those too). */
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "core/geometry.h"
}
#include "runtime/cuda/exec_impl.h"
#include "runtime/cuda/kernels.cuh"

namespace {

const size_t DEFAULT_WORKSPACE = (size_t)256 << 20;
const size_t BLAS_WORKSPACE = (size_t)32 << 20;

const PlanProgram *
program(const CudaExec *e, int g)
{
	return g ? &e->p->eval : &e->p->train;
}

const Type *
vt(const CudaExec *e, int v)
{
	return &e->p->values[v];
}

Buf
buf(const CudaExec *e, int v)
{
	return Buf{e->base[e->p->arena[v]] + e->p->offset[v], e->p->values[v].dtype == DT_F16};
}

const Buf NONE = {nullptr, false};

long long
numel(const Type *t)
{
	return (long long)type_numel(t);
}

/* A tensor as the per-channel kernels see it, [rows, C, hw], as on the CPU (core/types.h). */
int
hw_of(const Type *t)
{
	return (int)type_plane(t);
}

int
rows_of(const Type *t)
{
	return (int)type_rows(t);
}

const AttrVal *
attr(const PlanStep *s, const char *name)
{
	return &s->attr[nnc_attr_index(s->op, name)];
}

/* The step being run: its executor, plan step, run state and error buffer. */
struct Ctx {
	CudaExec *e;
	const PlanStep *s;
	Conv *cv;
	const CudaRunState *rs; /* the recipe's constants (the step's scalars are e->run->s) */
	int g, index;
	ErrBuf eb;
	int first, last;        /* the range being enqueued */
	Buf in(int i) const { return buf(e, s->in[i]); }
	Buf out() const { return buf(e, s->out); }
	const Type *t(int i) const { return vt(e, s->in[i]); }
	/* the step's own operand count, without a prologue's extra operand */
	int own() const { return s->nin - (s->pro ? 1 : 0); }
};

int
fail(Ctx &c, const char *what)
{
	snprintf(c.eb.msg, c.eb.len, "%s", what);
	return -1;
}

/* Runners report through their Ctx's buffer; launchers return cudaError_t. */
#define LAUNCH(c, call) CUDA_CHECK_IN((c).eb, call)
#define CUDNN_CHECK_C(c, call) CUDNN_CHECK_IN((c).eb, call)
#define CUBLAS_CHECK_C(c, call) CUBLAS_CHECK_IN((c).eb, call)

/* ---- elementwise ops and chains ---- */

/* The step (with its chain, passes/fuse.c) as one elementwise program: the first op takes its
 * operands from the start, each later op the previous result as operand 0 and its others in
 * turn; backward activations take (saved, dy) in the formulas, (dy, saved) as operands. */
int
r_ew(Ctx &c)
{
	const PlanStep *s = c.s;
	EwProgram p = {};
	if (s->nin > EW_MAXIN || s->nchain + 1 > EW_MAXOPS)
		return fail(c, "too many operands for one elementwise kernel");
	p.nops = s->nchain + 1;
	int next = 0;
	for (int j = 0; j < p.nops; j++) {
		Op op = j < s->nchain ? s->chain[j] : s->op;
		int x = j == 0 ? next++ : EW_PREV, y = nnc_ops[op].min_in > 1 ? next++ : EW_NONE;
		bool swap = false;
		int ew = nnc_ew_of(op, &swap);
		if (ew < 0)
			return fail(c, "an op in this chain has no elementwise kernel");
		p.op[j] = (Elementwise)ew;
		p.a[j] = swap ? y : x;
		p.b[j] = swap ? x : y;
	}
	for (int i = 0; i < s->nin; i++)
		p.in[i] = c.in(i);
	p.out = c.out();
	p.act = s->epi;
	p.n = numel(vt(c.e, s->out));
	LAUNCH(c, ew_run(p, c.e->st));
	return 0;
}

/* Every elementwise op (a row of NNC_EW) is an elementwise program of one op. */
#define E(op, swap)     \
	static int          \
	r_##op(Ctx &c)      \
	{                   \
		return r_ew(c); \
	}
NNC_EW(E)
#undef E

int
r_none(Ctx &c)
{
	return fail(c, "not an executable kernel");
}

#define r_input r_none
#define r_param r_none
#define r_output r_none

/* Copies and conversions: inference dropout, flatten, unflatten, cast. */
int
r_copy(Ctx &c)
{
	LAUNCH(c, scale_copy(c.in(0), c.out(), 1.0f, numel(c.t(0)), c.e->st));
	return 0;
}

#define r_dropout r_copy
#define r_flatten r_copy
#define r_unflatten r_copy
#define r_cast r_copy

int
r_mul(Ctx &c)
{
	LAUNCH(c, scale_copy(c.in(0), c.out(), (float)attr(c.s, "scale")->f, numel(c.t(0)), c.e->st));
	return 0;
}

/* ---- convolutions (cuDNN) ---- */

const float ONE = 1.0f, ZERO = 0.0f;

int
r_conv2d(Ctx &c)
{
	CudaExec *e = c.e;
	const Type *y = vt(e, c.s->out);
	if (c.cv->direct)
		LAUNCH(c, conv_direct(c.cv->geo, 0, c.in(0), c.in(1), c.out(), numel(y), e->st));
	else
		CUDNN_CHECK_C(c, cudnnConvolutionForward(e->dnn, &ONE, c.cv->x, c.in(0).p, c.cv->w, c.in(1).p, c.cv->c,
			(cudnnConvolutionFwdAlgo_t)c.cv->algo, e->ws, c.cv->ws, &ZERO, c.cv->y, c.out().p));
	bool bias = attr(c.s, "bias")->i[0];
	if (bias || c.s->epi)
		LAUNCH(c, bias_act(c.out(), bias ? c.in(2) : NONE, numel(y), (int)y->dim[1], hw_of(y), c.s->epi, e->st));
	return 0;
}

int
r_conv2d_bwd_data(Ctx &c)
{
	CudaExec *e = c.e;
	if (c.cv->direct) {
		LAUNCH(c, conv_direct(c.cv->geo, 1, c.in(0), c.in(1), c.out(), numel(vt(e, c.s->out)), e->st));
		return 0;
	}
	CUDNN_CHECK_C(c, cudnnConvolutionBackwardData(e->dnn, &ONE, c.cv->w, c.in(1).p, c.cv->y, c.in(0).p, c.cv->c,
		(cudnnConvolutionBwdDataAlgo_t)c.cv->algo, e->ws, c.cv->ws, &ZERO, c.cv->x, c.out().p));
	return 0;
}

int
r_conv2d_bwd_filter(Ctx &c)
{
	CudaExec *e = c.e;
	if (c.cv->direct) { /* operands dy, x: the kernel takes x, dy */
		LAUNCH(c, conv_direct(c.cv->geo, 2, c.in(1), c.in(0), c.out(), numel(vt(e, c.s->out)), e->st));
		return 0;
	}
	CUDNN_CHECK_C(c, cudnnConvolutionBackwardFilter(e->dnn, &ONE, c.cv->x, c.in(1).p, c.cv->y, c.in(0).p, c.cv->c,
		(cudnnConvolutionBwdFilterAlgo_t)c.cv->algo, e->ws, c.cv->ws, &ZERO, c.cv->w, c.out().p));
	return 0;
}

/* ---- dense (cuBLAS, column-major: a row-major [r, k] matrix is a column-major [k, r]) ---- */

cudaDataType_t
cuda_type(const Type *t)
{
	return t->dtype == DT_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* y [n, u] = x [n, f] . w [u, f]^T: column-major y^T [u, n] = op_T(w^T [f, u]) . x^T [f, n]. */
int
r_dense(Ctx &c)
{
	CudaExec *e = c.e;
	const Type *x = c.t(0), *w = c.t(1), *y = vt(e, c.s->out);
	int n = (int)x->dim[0], f = (int)x->dim[1], u = (int)y->dim[1];
	CUBLAS_CHECK_C(c, cublasGemmEx(e->blas, CUBLAS_OP_T, CUBLAS_OP_N, u, n, f, &ONE, c.in(1).p, cuda_type(w), f, c.in(0).p,
		cuda_type(x), f, &ZERO, c.out().p, cuda_type(y), u, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	bool bias = attr(c.s, "bias")->i[0];
	if (bias || c.s->epi)
		LAUNCH(c, bias_act(c.out(), bias ? c.in(2) : NONE, numel(y), u, 1, c.s->epi, e->st));
	return 0;
}

/* dx [n, f] = dy [n, u] . w [u, f]: dx^T [f, n] = w^T [f, u] . dy^T [u, n]. */
int
r_dense_bwd_data(Ctx &c)
{
	CudaExec *e = c.e;
	const Type *dy = c.t(0), *w = c.t(1), *dx = vt(e, c.s->out);
	int n = (int)dy->dim[0], u = (int)dy->dim[1], f = (int)w->dim[1];
	CUBLAS_CHECK_C(c, cublasGemmEx(e->blas, CUBLAS_OP_N, CUBLAS_OP_N, f, n, u, &ONE, c.in(1).p, cuda_type(w), f, c.in(0).p,
		cuda_type(dy), u, &ZERO, c.out().p, cuda_type(dx), f, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	return 0;
}

/* dw [u, f] = dy^T [u, n] . x [n, f]: dw^T [f, u] = x^T [f, n] . op_T(dy^T [u, n]). */
int
r_dense_bwd_weight(Ctx &c)
{
	CudaExec *e = c.e;
	const Type *dy = c.t(0), *x = c.t(1), *dw = vt(e, c.s->out);
	int n = (int)dy->dim[0], u = (int)dy->dim[1], f = (int)x->dim[1];
	CUBLAS_CHECK_C(c, cublasGemmEx(e->blas, CUBLAS_OP_N, CUBLAS_OP_T, f, u, n, &ONE, c.in(1).p, cuda_type(x), f, c.in(0).p,
		cuda_type(dy), u, &ZERO, c.out().p, cuda_type(dw), f, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	return 0;
}

/* ---- batch norm ---- */

void
nchw(const Type *t, int *n, int *ch, int *hw)
{
	*n = rows_of(t);
	*ch = (int)t->dim[1];
	*hw = hw_of(t);
}

/* The later step fused into this one (e->pair), when the range being enqueued includes it;
 * -1 otherwise, and always with --check-numerics, which counts every step's own result. */
int
fused_partner(const Ctx &c)
{
	int j = c.e->pair[c.g][c.index];
	return j > c.index && j < c.last && !c.e->nonfinite ? j : -1;
}

int
r_bn_stats(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	if ((long long)n * hw < 2)
		return fail(c, "batch norm needs more than one value per channel in training (batch too small)");
	BnRunning run = {NONE, NONE, 0};
	int j = fused_partner(c);
	if (j >= 0) { /* the running statistics' update too */
		const PlanStep *u = &program(c.e, c.g)->steps[j];
		run = BnRunning{buf(c.e, u->in[0]), buf(c.e, u->in[1]), u->attr[nnc_attr_index(OP_bn_update, "momentum")].f};
	}
	Buf x = c.in(0);
	int k = c.e->feed[c.g][c.index];
	if (k >= 0 && k < c.index && k >= c.first && !c.e->nonfinite) /* read the cast's f16 source */
		x = buf(c.e, program(c.e, c.g)->steps[k].in[0]);
	LAUNCH(c, bn_stats(x, n, ch, hw, attr(c.s, "eps")->f, c.out(), run, c.e->bn, c.e->st));
	return 0;
}

int
r_bn_apply(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	bool affine = c.s->nin > 2;
	Buf w = affine ? c.in(2) : NONE, b = affine ? c.in(3) : NONE;
	int j = fused_partner(c);
	if (j >= 0) { /* and the add that alone reads the result (a GROUP_BN_ADD group) */
		const PlanStep *a = &program(c.e, c.g)->steps[j];
		Buf other = buf(c.e, a->in[a->in[0] == c.s->out ? 1 : 0]);
		LAUNCH(c, bn_apply_add(c.in(0), c.in(1), w, b, c.out().f16, other, buf(c.e, a->out), n, ch, hw, a->epi,
			c.e->st));
		return 0;
	}
	LAUNCH(c, bn_apply(c.in(0), c.in(1), w, b, c.out(), n, ch, hw, c.s->epi, c.e->st));
	return 0;
}

int
r_bn_update(Ctx &c)
{
	LAUNCH(c, bn_update(c.in(0), c.in(1), c.in(2), (int)c.t(0)->dim[0], attr(c.s, "momentum")->f, c.e->st));
	return 0;
}

/* Inference: operands x, [scale, shift,] running_mean, running_var. */
int
r_batchnorm(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	bool affine = attr(c.s, "affine")->i[0];
	int r = affine ? 3 : 1;
	LAUNCH(c, bn_infer(c.in(0), c.in(r), c.in(r + 1), attr(c.s, "eps")->f, affine ? c.in(1) : NONE,
		affine ? c.in(2) : NONE, c.out(), n, ch, hw, c.s->epi, c.e->st));
	return 0;
}

Buf
act_y(const Ctx &c)
{
	return c.s->pro ? c.in(c.s->nin - 1) : NONE;
}

/* Operands dz, x, stats [, scale] [, act_y]. A backward group (group: 3) also writes the next
 * two steps' results, the scale's and the shift's gradients, and the run skips them. */
int
r_bn_bwd_data(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	Buf dw = NONE, db = NONE;
	if (c.s->group == 3) {
		dw = buf(c.e, c.s[1].out);
		db = buf(c.e, c.s[2].out);
	}
	LAUNCH(c, bn_backward(c.in(0), act_y(c), c.s->pro, c.in(1), c.in(2), c.own() > 3 ? c.in(3) : NONE, c.out(), dw,
		db, n, ch, hw, c.e->bn, c.e->st));
	return 0;
}

int
r_bn_bwd_scale(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	LAUNCH(c, bn_backward(c.in(0), act_y(c), c.s->pro, c.in(1), c.in(2), NONE, NONE, c.out(), NONE, n, ch, hw,
		c.e->bn, c.e->st));
	return 0;
}

int
r_bias_grad(Ctx &c)
{
	int n, ch, hw;
	nchw(c.t(0), &n, &ch, &hw);
	LAUNCH(c, bn_backward(c.in(0), act_y(c), c.s->pro, NONE, NONE, NONE, NONE, NONE, c.out(), n, ch, hw, c.e->bn,
		c.e->st));
	return 0;
}

int
r_bn_fold_weight(Ctx &c)
{
	const Type *w = c.t(0);
	int out = (int)w->dim[0];
	LAUNCH(c, bn_fold_weight(c.in(0), out, numel(w) / out, c.in(1), attr(c.s, "eps")->f, c.s->nin > 2 ? c.in(2) : NONE,
		c.out(), c.e->st));
	return 0;
}

int
r_bn_fold_bias(Ctx &c)
{
	bool affine = attr(c.s, "affine")->i[0], bias = attr(c.s, "bias")->i[0];
	LAUNCH(c, bn_fold_bias((int)c.t(0)->dim[0], c.in(0), c.in(1), attr(c.s, "eps")->f, affine ? c.in(2) : NONE,
		affine ? c.in(3) : NONE, bias ? c.in(2 + 2 * affine) : NONE, c.out(), c.e->st));
	return 0;
}

/* ---- pooling ---- */

Pool
pool_of(const PlanStep *s, const Type *x, const Type *y)
{
	const AttrVal *k = attr(s, "kernel"), *st = attr(s, "stride"), *pa = attr(s, "padding");
	Pool p = {(int)x->dim[0], (int)x->dim[1], (int)x->dim[2], (int)x->dim[3], (int)k->i[0], (int)k->i[1],
		(int)nnc_pool_stride(st->i, k->i, 0), (int)nnc_pool_stride(st->i, k->i, 1), (int)pa->i[0], (int)pa->i[1],
		(int)y->dim[2], (int)y->dim[3], type_channels_last(x)};
	return p;
}

int
r_maxpool(Ctx &c)
{
	LAUNCH(c, maxpool_fwd(pool_of(c.s, c.t(0), vt(c.e, c.s->out)), c.in(0), c.out(), c.e->st));
	return 0;
}

int
r_avgpool(Ctx &c)
{
	LAUNCH(c, avgpool_fwd(pool_of(c.s, c.t(0), vt(c.e, c.s->out)), c.in(0), c.out(), c.e->st));
	return 0;
}

/* Operands dy, x. */
int
r_maxpool_bwd(Ctx &c)
{
	LAUNCH(c, maxpool_bwd(pool_of(c.s, c.t(1), c.t(0)), c.in(1), c.in(0), c.out(), c.e->st));
	return 0;
}

int
r_avgpool_bwd(Ctx &c)
{
	LAUNCH(c, avgpool_bwd(pool_of(c.s, vt(c.e, c.s->out), c.t(0)), c.in(0), c.out(), c.e->st));
	return 0;
}

int
r_global_avgpool(Ctx &c)
{
	const Type *x = c.t(0);
	LAUNCH(c, gap_fwd(c.in(0), (int)x->dim[0], (int)x->dim[1], (int)(x->dim[2] * x->dim[3]), type_channels_last(x), c.out(), c.e->st));
	return 0;
}

int
r_global_avgpool_bwd(Ctx &c)
{
	const Type *dx = vt(c.e, c.s->out);
	LAUNCH(c, gap_bwd(c.in(0), (int)dx->dim[0], (int)dx->dim[1], (int)(dx->dim[2] * dx->dim[3]), type_channels_last(dx), c.out(),
		c.e->st));
	return 0;
}

/* ---- rows, losses ---- */

int
r_softmax(Ctx &c)
{
	LAUNCH(c, softmax_fwd(c.in(0), (int)c.t(0)->dim[0], (int)c.t(0)->dim[1], c.out(), c.e->st));
	return 0;
}

/* Operands dy, y. */
int
r_softmax_bwd(Ctx &c)
{
	LAUNCH(c, softmax_bwd(c.in(1), c.in(0), (int)c.t(0)->dim[0], (int)c.t(0)->dim[1], c.out(), c.e->st));
	return 0;
}

double
smoothing(const Ctx &c)
{
	double r = c.rs->label_smoothing;
	return r >= 0 ? r : attr(c.s, "label_smoothing")->f;
}

int
r_softmax_cross_entropy(Ctx &c)
{
	const int32_t *labels = static_cast<const int32_t *>(c.in(1).p);
	LAUNCH(c, xent_fwd(c.in(0), labels, (int)c.t(0)->dim[0], (int)c.t(0)->dim[1], smoothing(c), c.out(), c.e->st));
	return 0;
}

int
r_sce_bwd(Ctx &c)
{
	const int32_t *labels = static_cast<const int32_t *>(c.in(1).p);
	LAUNCH(c, xent_bwd(c.in(0), labels, (int)c.t(0)->dim[0], (int)c.t(0)->dim[1], smoothing(c), c.in(2), c.out(),
		c.e->st));
	return 0;
}

/* ---- channels ---- */

int
r_concat(Ctx &c)
{
	int64_t axis = attr(c.s, "axis")->i[0];
	if (axis < 0)
		axis += c.t(0)->rank;
	if (axis != 1)
		return fail(c, "concat is implemented along the channel axis only");
	Buf xs[NNC_MAXARGS];
	int cs[NNC_MAXARGS];
	for (int i = 0; i < c.s->nin; i++) {
		xs[i] = c.in(i);
		cs[i] = (int)c.t(i)->dim[1];
	}
	LAUNCH(c, concat(xs, cs, c.s->nin, rows_of(c.t(0)), hw_of(c.t(0)), c.out(), c.e->st));
	return 0;
}

int
r_slice(Ctx &c)
{
	if (attr(c.s, "axis")->i[0] != 1)
		return fail(c, "slice is implemented along the channel axis only");
	const Type *t = c.t(0);
	LAUNCH(c, slice(c.in(0), rows_of(t), (int)t->dim[1], hw_of(t), (int)attr(c.s, "start")->i[0],
		(int)attr(c.s, "size")->i[0], c.out(), c.e->st));
	return 0;
}

/* ---- randomness, scalars ---- */

int
r_dropout_mask(Ctx &c)
{
	const Type *t = vt(c.e, c.s->out);
	long long n = numel(t);
	int shape[3] = {(int)t->dim[1], t->rank == 4 ? (int)t->dim[2] : 1, t->rank == 4 ? (int)t->dim[3] : 1};
	LAUNCH(c, dropout_mask(c.rs->rng_key, &c.e->run->s, c.e->rng_off[c.g][c.index], attr(c.s, "rate")->f, c.out(), n,
		type_channels_last(t) ? shape : nullptr, c.e->st));
	return 0;
}

int
r_ones(Ctx &c)
{
	LAUNCH(c, fill1(c.out(), 1.0f, c.e->st));
	return 0;
}

int
r_loss_scale(Ctx &c)
{
	LAUNCH(c, fill_scale(c.out(), &c.e->run->s, c.e->st));
	return 0;
}

int
r_grad_check(Ctx &c)
{
	for (int i = 0; i < c.s->nin; i++)
		LAUNCH(c, grad_check(c.in(i), numel(c.t(i)), &c.e->run->s.bad, c.e->st));
	return 0;
}

/* NCHW <-> NHWC, OIHW <-> OHWI (passes/layout.c). */
int
r_relayout(Ctx &c)
{
	const Type *t = c.t(0);
	int ch = (int)t->dim[1], hw = (int)(t->dim[2] * t->dim[3]);
	bool to_cl = !layout_channels_last(t->layout);
	LAUNCH(c, relayout(c.in(0), c.out(), t->dim[0], to_cl ? ch : hw, to_cl ? hw : ch, c.e->st));
	return 0;
}

/* ---- optimizer ---- */

SgdConf
sgd_conf(const CudaRunState *r, const PlanStep *s)
{
	SgdConf o;
	o.momentum = r->momentum;
	o.lr_scale = s->attr[nnc_attr_index(OP_sgd_update, "lr_scale")].f;
	o.wd = s->attr[nnc_attr_index(OP_sgd_update, "decay")].i[0] ? r->weight_decay / o.lr_scale : 0;
	o.nesterov = r->nesterov != 0;
	o.sr = r->stochastic_rounding != 0;
	o.sr_seed = r->seed;
	o.sr_value = s->in[0];
	return o;
}

AdamConf
adam_conf(const CudaRunState *r, const PlanStep *s)
{
	AdamConf o;
	o.eps = r->eps;
	if (o.eps < attr(s, "min_eps")->f) /* the plan's floor (core/ops.h) */
		o.eps = attr(s, "min_eps")->f;
	o.wd = s->attr[nnc_attr_index(OP_adam_update, "decay")].i[0] ? r->weight_decay : 0;
	o.beta1 = r->beta1;
	o.beta2 = r->beta2;
	o.decoupled = s->attr[nnc_attr_index(OP_adam_update, "decoupled")].i[0] != 0;
	o.sr = r->stochastic_rounding != 0;
	o.sr_seed = r->seed;
	o.sr_value = s->in[0];
	return o;
}

int
r_sgd_update(Ctx &c)
{
	LAUNCH(c, sgd(sgd_conf(c.rs, c.s), &c.e->run->s, c.in(0), c.in(1), c.in(2), numel(c.t(0)),
		attr(c.s, "unscale")->i[0] != 0, c.e->st));
	return 0;
}

int
r_adam_update(Ctx &c)
{
	LAUNCH(c, adam(adam_conf(c.rs, c.s), &c.e->run->s, c.in(0), c.in(1), c.in(2), c.in(3), numel(c.t(0)),
		attr(c.s, "unscale")->i[0] != 0, c.e->st));
	return 0;
}

typedef int Runner(Ctx &c);
#define X(name, ...) r_##name,
Runner *const runners[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof runners / sizeof runners[0] == NOP, "an op has no CUDA runner entry");

/* ---- set-up ---- */

cudnnDataType_t
dnn_type(const Type *t)
{
	return t->dtype == DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

int
tensor4(cudnnTensorDescriptor_t *d, const Type *t, const int64_t *dims, ErrBuf eb)
{
	CUDNN_CHECK(cudnnCreateTensorDescriptor(d));
	/* dims are logical (N, C, H, W) in either layout; the format says the memory order */
	CUDNN_CHECK(cudnnSetTensor4dDescriptor(*d, t->layout == LY_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, dnn_type(t),
		(int)dims[0], (int)dims[1], (int)dims[2], (int)dims[3]));
	return 0;
}

/* The fastest of cuDNN's measured results PERF[0..GOT) (they come sorted by time) that ran,
 * fits the workspace, is deterministic when that is asked, and for fp32 data (F32) computes in
 * IEEE fp32 (no TF32 tensor-op math); -1 when none. An fp16 convolution may take any math,
 * an FFT or a TF32 kernel among them, exactly when it measured fastest. */
template <class Perf>
int
fastest(const CudaExec *e, const Perf *perf, int got, bool f32)
{
	for (int i = 0; i < got; i++)
		if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= e->ws_max &&
		    (!e->deterministic || perf[i].determinism == CUDNN_DETERMINISTIC) &&
		    (!f32 || perf[i].mathType == CUDNN_FMA_MATH || perf[i].mathType == CUDNN_DEFAULT_MATH))
			return i;
	return -1;
}

template <class Perf>
void
take(Conv *cv, const Perf &p)
{
	cv->algo = (int)p.algo;
	cv->ws = p.memory;
	cv->math = (int)p.mathType;
	cv->ms = p.time;
	cv->how = CONV_MEASURED;
}

/* Times every algorithm cuDNN has for CV's convolution (its find API, which runs each once in
 * memory of its own) and takes the fastest eligible one; cv->algo stays -1 when none is. */
int
find_conv(CudaExec *e, const PlanStep *s, Conv *cv, bool f32, ErrBuf eb)
{
	enum { N = 16 };
	int got = 0, i;
	if (s->op == OP_conv2d) {
		cudnnConvolutionFwdAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(e->dnn, cv->x, cv->w, cv->c, cv->y, N, &got, perf));
		if ((i = fastest(e, perf, got, f32)) >= 0)
			take(cv, perf[i]);
	} else if (s->op == OP_conv2d_bwd_data) {
		cudnnConvolutionBwdDataAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(e->dnn, cv->w, cv->y, cv->c, cv->x, N, &got, perf));
		if ((i = fastest(e, perf, got, f32)) >= 0)
			take(cv, perf[i]);
	} else {
		cudnnConvolutionBwdFilterAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(e->dnn, cv->x, cv->y, cv->c, cv->w, N, &got, perf));
		if ((i = fastest(e, perf, got, f32)) >= 0)
			take(cv, perf[i]);
	}
	return 0;
}

/* Descriptors and algorithm for convolution step S (forward, backward data or filter). */
int
describe_conv(CudaExec *e, const PlanStep *s, Conv *cv, ErrBuf eb)
{
	const Type *x, *w, *y;
	int64_t xdims[4];
	if (s->op == OP_conv2d) {
		x = vt(e, s->in[0]);
		w = vt(e, s->in[1]);
		y = vt(e, s->out);
		memcpy(xdims, x->dim, sizeof xdims);
	} else if (s->op == OP_conv2d_bwd_data) {
		y = vt(e, s->in[0]);
		w = vt(e, s->in[1]);
		x = vt(e, s->out);
		memcpy(xdims, x->dim, sizeof xdims);
	} else {
		y = vt(e, s->in[0]);
		x = vt(e, s->in[1]);
		w = vt(e, s->out);
		memcpy(xdims, x->dim, sizeof xdims);
	}
	if (x->dtype != w->dtype || x->dtype != y->dtype) {
		snprintf(eb.msg, eb.len, "the convolution's operands mix fp16 and fp32 (cuDNN needs one type)");
		return -1;
	}
	if (tensor4(&cv->x, x, xdims, eb) || tensor4(&cv->y, y, y->dim, eb))
		return -1;
	CUDNN_CHECK(cudnnCreateFilterDescriptor(&cv->w));
	CUDNN_CHECK(cudnnSetFilter4dDescriptor(cv->w, dnn_type(w), w->layout == LY_OHWI ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
		(int)w->dim[0], (int)w->dim[1],
		(int)w->dim[2], (int)w->dim[3]));
	const AttrVal *st = attr(s, "stride"), *pa = attr(s, "padding");
	int groups = (int)attr(s, "groups")->i[0];
	CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cv->c));
	CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cv->c, (int)pa->i[0], (int)pa->i[1], (int)st->i[0], (int)st->i[1], 1, 1,
		CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	CUDNN_CHECK(cudnnSetConvolutionGroupCount(cv->c, groups));
	/* fp32 stays IEEE fp32 (no TF32); fp16 may use tensor cores, accumulating in fp32 */
	CUDNN_CHECK(cudnnSetConvolutionMathType(cv->c, x->dtype == DT_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));

	AlgoCache key = {};
	int k = 0;
	key.key[k++] = (int)s->op;
	for (int i = 0; i < 4; i++) {
		key.key[k++] = (int)xdims[i];
		key.key[k++] = (int)w->dim[i];
	}
	key.key[k++] = (int)y->dim[1];
	key.key[k++] = (int)y->dim[2];
	key.key[k++] = (int)y->dim[3];
	key.key[k++] = (int)pa->i[0];
	key.key[k++] = (int)pa->i[1];
	key.key[k++] = (int)st->i[0];
	key.key[k++] = (int)st->i[1];
	key.key[k++] = groups;
	key.key[k++] = (int)x->dtype;
	key.key[k++] = (int)x->layout;
	key.key[k++] = e->deterministic;
	for (int i = 0; i < e->ncache; i++)
		if (memcmp(e->cache[i].key, key.key, sizeof key.key) == 0) {
			cv->algo = e->cache[i].algo;
			cv->ws = e->cache[i].ws;
			cv->math = e->cache[i].math;
			cv->how = e->cache[i].how;
			cv->ms = e->cache[i].ms;
			if (cv->math >= 0)
				CUDNN_CHECK(cudnnSetConvolutionMathType(cv->c, (cudnnMathType_t)cv->math));
			return 0;
		}
	enum { N = 16 };
	int got = 0;
	cv->algo = -1;
	/* By measurement, as cudnn.benchmark: once per shape on this GPU and cuDNN version (the
	 * algo_cache file), else now with cuDNN's find API. Not where a test or --check-numerics
	 * asks for one algorithm. */
	if (e->measure && !(e->ieee_overflow && x->dtype == DT_F16 && s->op == OP_conv2d)) {
		const AlgoEntry *hit = algo_file_find(&e->algos, key.key);
		if (hit && hit->ws <= e->ws_max) {
			cv->algo = hit->algo;
			cv->ws = hit->ws;
			cv->math = hit->math;
			cv->ms = hit->ms;
			cv->how = CONV_CACHED;
		} else if (find_conv(e, s, cv, x->dtype == DT_F32, eb) != 0) {
			return -1;
		} else if (cv->algo >= 0) {
			AlgoEntry ent = {};
			memcpy(ent.key, key.key, sizeof ent.key);
			ent.algo = cv->algo;
			ent.math = cv->math;
			ent.ws = cv->ws;
			ent.ms = cv->ms;
			if (algo_file_add(&e->algos, &ent) != 0) {
				snprintf(eb.msg, eb.len, "out of memory");
				return -1;
			}
		}
		if (cv->algo >= 0)
			CUDNN_CHECK(cudnnSetConvolutionMathType(cv->c, (cudnnMathType_t)cv->math));
	}
	/* else cuDNN's heuristics */
	if (cv->algo >= 0) {
		/* measured */
	} else if (s->op == OP_conv2d) {
		cudnnConvolutionFwdAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(e->dnn, cv->x, cv->w, cv->c, cv->y, N, &got, perf));
		/* pass 0: the algorithm asked for (CudaOptions.fwd_algo, or implicit_gemm for IEEE
		 * overflow in fp16), where cuDNN offers it; pass 1: cuDNN's order */
		int want = e->fwd_algo > 0                             ? e->fwd_algo - 1
		           : e->ieee_overflow && x->dtype == DT_F16 ? (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
		                                                     : -1;
		for (int pass = want >= 0 ? 0 : 1; pass < 2 && cv->algo < 0; pass++)
			for (int i = 0; i < got && cv->algo < 0; i++)
				if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= e->ws_max &&
				    (!e->deterministic || perf[i].determinism == CUDNN_DETERMINISTIC) &&
				    (pass == 1 || (int)perf[i].algo == want)) {
					cv->algo = perf[i].algo;
					cv->ws = perf[i].memory;
				}
	} else if (s->op == OP_conv2d_bwd_data) {
		cudnnConvolutionBwdDataAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(e->dnn, cv->w, cv->y, cv->c, cv->x, N, &got, perf));
		for (int i = 0; i < got && cv->algo < 0; i++)
			if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= e->ws_max &&
			    (!e->deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
				cv->algo = perf[i].algo;
				cv->ws = perf[i].memory;
			}
	} else {
		cudnnConvolutionBwdFilterAlgoPerf_t perf[N];
		CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(e->dnn, cv->x, cv->y, cv->c, cv->w, N, &got, perf));
		for (int i = 0; i < got && cv->algo < 0; i++)
			if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= e->ws_max &&
			    (!e->deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
				cv->algo = perf[i].algo;
				cv->ws = perf[i].memory;
			}
	}
	if (cv->algo < 0) {
		snprintf(eb.msg, eb.len, "cuDNN offers no %salgorithm for this convolution within %zu MB of workspace",
			e->deterministic ? "deterministic " : "", e->ws_max >> 20);
		return -1;
	}
	if (e->ncache < (int)(sizeof e->cache / sizeof e->cache[0])) {
		key.algo = cv->algo;
		key.ws = cv->ws;
		key.math = cv->math;
		key.how = cv->how;
		key.ms = cv->ms;
		e->cache[e->ncache++] = key;
	}
	return 0;
}

void
free_conv(Conv *cv)
{
	if (cv->x)
		cudnnDestroyTensorDescriptor(cv->x);
	if (cv->y)
		cudnnDestroyTensorDescriptor(cv->y);
	if (cv->w)
		cudnnDestroyFilterDescriptor(cv->w);
	if (cv->c)
		cudnnDestroyConvolutionDescriptor(cv->c);
}

/* "PROGRAM step I (op name at loc): " */
void
where(const CudaExec *e, int g, int i, char *buf, size_t len)
{
	const PlanStep *s = &program(e, g)->steps[i];
	snprintf(buf, len, "%s step %d (%s%s%s at %s)", g ? "eval" : "train", i, nnc_ops[s->op].name, s->name[0] ? " " : "",
		s->name, s->loc);
}

/* Prepares a convolution step: cuDNN descriptors and algorithm (describe_conv), or, where
 * cuDNN rejects the configuration or offers no algorithm, nnc's direct kernels, with a note
 * naming the step and the reason. */
int
prepare_conv(CudaExec *e, int g, int i, ErrBuf eb)
{
	const PlanStep *s = &program(e, g)->steps[i];
	Conv *cv = &e->conv[g][i];
	bool fwd = s->op == OP_conv2d, data = s->op == OP_conv2d_bwd_data;
	const Type *x = vt(e, fwd ? s->in[0] : data ? s->out : s->in[1]);
	const Type *w = vt(e, fwd || data ? s->in[1] : s->out);
	const Type *y = vt(e, fwd ? s->out : s->in[0]);
	const AttrVal *st = attr(s, "stride"), *pa = attr(s, "padding");
	cv->geo = CpuConv{(int)x->dim[0], (int)x->dim[1], (int)x->dim[2], (int)x->dim[3], (int)w->dim[0], (int)w->dim[2],
		(int)w->dim[3], (int)st->i[0], (int)st->i[1], (int)pa->i[0], (int)pa->i[1], (int)attr(s, "groups")->i[0],
		(int)y->dim[2], (int)y->dim[3], x->layout == LY_NHWC};
	char why[512] = "";
	ErrBuf sub = {why, sizeof why};
	if (!e->direct_conv && describe_conv(e, s, cv, sub) == 0)
		return 0;
	cv->direct = true;
	cv->ws = 0;
	if (!e->direct_conv) {
		char at[512];
		where(e, g, i, at, sizeof at);
		size_t n = strlen(e->notes);
		snprintf(e->notes + n, sizeof e->notes - n, "%s%s: %s; it runs through nnc's direct convolution (slow)",
			n ? "\n" : "", at, why);
	}
	(void)eb;
	return 0;
}

/* Whether a multi-tensor launch begins at step I of PROG: returns its tensor count (0: none)
 * and sets *LAST past the steps it stands for: a multi group of the plan (GROUP_MULTI: updates
 * of one kind, or casts), or one grad_check's operands. */
int
multi_run(const PlanProgram *prog, int i, int *last)
{
	const PlanStep *s = &prog->steps[i];
	*last = i + 1;
	if (plan_group_kind(prog, i) == GROUP_MULTI) {
		*last = i + s->group;
		return s->group;
	}
	return s->op == OP_grad_check && s->nin >= 2 ? s->nin : 0;
}

/* The fused partners of the plan's statistics and residual groups (GroupKind): PAIR links a
 * bn_stats with its bn_update and a bn_apply with its add, FEED a widening cast with the
 * bn_stats that reads its source itself; -1 elsewhere. Either may be NULL. */
void
group_links(const PlanProgram *prog, int *pair, int *feed)
{
	for (int i = 0; i < prog->nsteps; i++) {
		if (pair)
			pair[i] = -1;
		if (feed)
			feed[i] = -1;
	}
	for (int i = 0; i < prog->nsteps; i++) {
		GroupKind kind = plan_group_kind(prog, i);
		int n = prog->steps[i].group, st = i + (prog->steps[i].op == OP_cast);
		if (kind == GROUP_BN_STATS) {
			if (st > i && feed)
				feed[i] = st, feed[st] = i;
			if (st + 1 < i + n && pair)
				pair[st] = st + 1, pair[st + 1] = st;
		} else if (kind == GROUP_BN_ADD && pair) {
			pair[i] = i + 1, pair[i + 1] = i;
		}
		if (n > 1)
			i += n - 1;
	}
}

/* Builds the tables of program G's multi-tensor launches (MtRun) and its groups' links. */
int
plan_multi(CudaExec *e, int g, ErrBuf eb)
{
	const PlanProgram *prog = program(e, g);
	int n = prog->nsteps > 0 ? prog->nsteps : 1;
	e->mt[g] = new MtRun[n];
	e->mt_at[g] = new int[n];
	e->pair[g] = new int[n];
	e->feed[g] = new int[n];
	for (int i = 0; i < n; i++)
		e->mt_at[g][i] = -1;
	group_links(prog, e->pair[g], e->feed[g]);
	for (int i = 0; i < prog->nsteps;) {
		const PlanStep *s = &prog->steps[i];
		bool update = s->op != OP_grad_check;
		int last, count = multi_run(prog, i, &last);
		if (!count) {
			i = last;
			continue;
		}
		MtRun *r = &e->mt[g][e->nmt[g]];
		*r = MtRun{s->op, i, last, count, 0, new MtTensor[count](), nullptr};
		for (int k = 0; k < count; k++) {
			MtTensor *t = &r->host[k];
			const PlanStep *u = update ? &prog->steps[i + k] : s;
			if (u->op == OP_cast) {
				t->p = buf(e, u->out);
				t->g = buf(e, u->in[0]);
				t->s1 = t->s2 = NONE;
				t->n = numel(vt(e, u->out));
			} else if (update) {
				t->p = buf(e, u->in[0]);
				t->g = buf(e, u->in[1]);
				t->s1 = buf(e, u->in[2]);
				t->s2 = u->op == OP_adam_update ? buf(e, u->in[3]) : NONE;
				t->unscale = u->attr[nnc_attr_index(u->op, "unscale")].i[0] != 0;
				t->n = numel(vt(e, u->in[0]));
			} else {
				t->p = t->s1 = t->s2 = NONE;
				t->g = buf(e, s->in[k]);
				t->n = numel(vt(e, s->in[k]));
			}
			t->chunk0 = r->nchunks;
			r->nchunks += (t->n + MT_CHUNK - 1) / MT_CHUNK;
		}
		CUDA_CHECK(cudaMalloc((void **)&r->dev, (size_t)count * sizeof *r->dev));
		CUDA_CHECK(cudaMemcpy(r->dev, r->host, (size_t)count * sizeof *r->dev, cudaMemcpyHostToDevice));
		e->mt_at[g][i] = e->nmt[g]++;
		i = last;
	}
	return 0;
}

int
setup(CudaExec *e, const Plan *p, const CudaOptions *o, ErrBuf eb)
{
	e->p = p;
	e->deterministic = o && o->deterministic;
	e->direct_conv = o && o->direct_conv;
	e->fail_step = o ? o->fail_step : 0;
	e->fwd_algo = o ? o->fwd_algo : 0;
	e->ieee_overflow = o && o->ieee_overflow;
	e->ws_max = o && o->workspace_max ? o->workspace_max : DEFAULT_WORKSPACE;
	int count = 0;
	CUDA_CHECK(cudaGetDeviceCount(&count));
	int dev = o ? o->device : 0;
	if (dev < 0 || dev >= count) {
		snprintf(eb.msg, eb.len, "no CUDA device %d (%d found)", dev, count);
		return -1;
	}
	CUDA_CHECK(cudaSetDevice(dev));
	size_t free_b = 0, total_b = 0, need = 0;
	CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
	if (o && o->memory_limit && free_b > o->memory_limit)
		free_b = o->memory_limit;
	for (int k = ARENA_PARAM; k < NARENA; k++) {
		e->bytes[k] = ((size_t)p->arena_bytes[k] + 255) / 256 * 256 + 256;
		need += e->bytes[k];
	}
	if (need > free_b) {
		snprintf(eb.msg, eb.len,
			"out of GPU memory: the plan's arenas need %.1f MB (parameters and state %.1f MB, inputs %.1f MB, "
			"activations %.1f MB at batch %lld), and %.1f MB of the GPU's %.1f MB are free; compile it with a "
			"smaller --batch",
			need / 1e6, p->arena_bytes[ARENA_PARAM] / 1e6, p->arena_bytes[ARENA_IO] / 1e6,
			p->arena_bytes[ARENA_ACT] / 1e6, (long long)p->batch, free_b / 1e6, total_b / 1e6);
		return -1;
	}
	for (int k = ARENA_PARAM; k < NARENA; k++) {
		CUDA_CHECK(cudaMalloc((void **)&e->base[k], e->bytes[k]));
		CUDA_CHECK(cudaMemset(e->base[k], 0, e->bytes[k]));
	}
	CUDA_CHECK(cudaMalloc((void **)&e->run, sizeof *e->run));
	CUDA_CHECK(cudaMemset(e->run, 0, sizeof *e->run));
	CUDA_CHECK(cudaStreamCreate(&e->st));
	CUBLAS_CHECK(cublasCreate(&e->blas));
	CUBLAS_CHECK(cublasSetStream(e->blas, e->st));
	CUDA_CHECK(cudaMalloc(&e->blas_ws, BLAS_WORKSPACE));
	CUBLAS_CHECK(cublasSetWorkspace(e->blas, e->blas_ws, BLAS_WORKSPACE));
	CUDNN_CHECK(cudnnCreate(&e->dnn));
	CUDNN_CHECK(cudnnSetStream(e->dnn, e->st));
	e->measure = !(o && o->heuristic_algos) && !e->fwd_algo;
	if (e->measure) {
		cudaDeviceProp prop;
		CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
		char path[4096];
		algo_file_path(path, sizeof path, prop.name, (int)cudnnGetVersion());
		if (algo_file_load(&e->algos, path, prop.name, (int)cudnnGetVersion()) != 0) {
			snprintf(eb.msg, eb.len, "out of memory");
			return -1;
		}
	}
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = program(e, g);
		if (g == 0 && !p->has_train)
			continue;
		e->conv[g] = new Conv[prog->nsteps > 0 ? prog->nsteps : 1];
		e->rng_off[g] = new uint64_t[prog->nsteps > 0 ? prog->nsteps : 1];
		for (int i = 0; i < prog->nsteps; i++) {
			const PlanStep *s = &prog->steps[i];
			e->rng_off[g][i] = e->rng_total[g];
			if (s->op == OP_dropout_mask)
				e->rng_total[g] += (uint64_t)numel(vt(e, s->out));
			char at[512], msg[512];
			ErrBuf sub = {msg, sizeof msg};
			msg[0] = 0;
			int rc = 0;
			if (s->acc == DT_F16 && (nnc_ops[s->op].flags & OPF_ACC)) {
				snprintf(msg, sizeof msg, "fp16 accumulation (acc: f16) runs on the CPU only (nnrun --device cpu)");
				rc = -1;
			} else if (s->op == OP_conv2d || s->op == OP_conv2d_bwd_data || s->op == OP_conv2d_bwd_filter)
				rc = prepare_conv(e, g, i, sub);
			if (rc) {
				where(e, g, i, at, sizeof at);
				snprintf(eb.msg, eb.len, "%s: %s", at, msg);
				return -1;
			}
			if (e->conv[g][i].ws > e->ws_bytes)
				e->ws_bytes = e->conv[g][i].ws;
		}
	}
	char why[1024];
	if (algo_file_save(&e->algos, why, sizeof why) != 0) { /* measured again next time */
		size_t n = strlen(e->notes);
		snprintf(e->notes + n, sizeof e->notes - n, "%s%s", n ? "\n" : "", why);
	}
	for (int g = 0; g < 2; g++)
		if ((g == 1 || p->has_train) && plan_multi(e, g, eb) != 0)
			return -1;
	int max_c = 1;
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = program(e, g);
		if (g == 0 && !p->has_train)
			continue;
		for (int i = 0; i < prog->nsteps; i++) {
			const PlanStep *s = &prog->steps[i];
			if ((s->op == OP_bn_stats || s->op == OP_bn_bwd_data || s->op == OP_bn_bwd_scale || s->op == OP_bias_grad) &&
			    vt(e, s->in[0])->dim[1] > max_c)
				max_c = (int)vt(e, s->in[0])->dim[1];
		}
	}
	CUDA_CHECK(cudaMalloc(&e->bn_mem, bn_scratch_bytes(max_c)));
	CUDA_CHECK(cudaMemset(e->bn_mem, 0, bn_scratch_bytes(max_c)));
	e->bn = bn_scratch_at(e->bn_mem, max_c);
	if (e->ws_bytes) {
		CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
		if (e->ws_bytes > free_b) {
			snprintf(eb.msg, eb.len, "out of GPU memory: the convolution workspace needs %.1f MB, %.1f MB are free",
				e->ws_bytes / 1e6, free_b / 1e6);
			return -1;
		}
		CUDA_CHECK(cudaMalloc(&e->ws, e->ws_bytes));
	}
	return 0;
}

} // namespace

extern "C" CudaExec *
nnc_cuda_exec_new(const Plan *p, const CudaOptions *o, char *err, size_t errlen)
{
	CudaExec *e = new CudaExec;
	ErrBuf eb = {err, errlen};
	err[0] = 0;
	if (setup(e, p, o, eb) != 0) {
		nnc_cuda_exec_free(e);
		return nullptr;
	}
	return e;
}

extern "C" void
nnc_cuda_exec_free(CudaExec *e)
{
	if (!e)
		return;
	algo_file_free(&e->algos);
	for (int g = 0; g < 2; g++) {
		if (!e->conv[g])
			continue;
		const PlanProgram *prog = program(e, g);
		for (int i = 0; i < prog->nsteps; i++)
			free_conv(&e->conv[g][i]);
		delete[] e->conv[g];
		delete[] e->rng_off[g];
	}
	for (int g = 0; g < 2; g++) {
		for (int i = 0; i < e->nmt[g]; i++) {
			delete[] e->mt[g][i].host;
			cudaFree(e->mt[g][i].dev);
		}
		delete[] e->mt[g];
		delete[] e->mt_at[g];
		delete[] e->pair[g];
		delete[] e->feed[g];
	}
	resident_free(e);
	if (e->dnn)
		cudnnDestroy(e->dnn);
	if (e->blas)
		cublasDestroy(e->blas);
	if (e->st)
		cudaStreamDestroy(e->st);
	for (int k = ARENA_PARAM; k < NARENA; k++)
		cudaFree(e->base[k]);
	cudaFree(e->ws);
	cudaFree(e->run);
	cudaFree(e->blas_ws);
	cudaFree(e->bn_mem);
	cudaFree(e->nonfinite);
	delete[] e->nonfinite_host;
	delete e;
}

extern "C" int
nnc_cuda_upload(CudaExec *e, int v, const void *host, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const Type *t = vt(e, v);
	CUDA_CHECK(cudaMemcpy(buf(e, v).p, host, (size_t)numel(t) * dtype_size(t->dtype), cudaMemcpyHostToDevice));
	return 0;
}

extern "C" int
nnc_cuda_download(CudaExec *e, int v, void *host, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const Type *t = vt(e, v);
	CUDA_CHECK(cudaMemcpy(host, buf(e, v).p, (size_t)numel(t) * dtype_size(t->dtype), cudaMemcpyDeviceToHost));
	return 0;
}

extern "C" int
nnc_cuda_upload_arena(CudaExec *e, int k, const void *host, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	CUDA_CHECK(cudaMemcpy(e->base[k], host, (size_t)e->p->arena_bytes[k], cudaMemcpyHostToDevice));
	return 0;
}

extern "C" int
nnc_cuda_download_arena(CudaExec *e, int k, void *host, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	CUDA_CHECK(cudaMemcpy(host, e->base[k], (size_t)e->p->arena_bytes[k], cudaMemcpyDeviceToHost));
	return 0;
}

extern "C" int
nnc_cuda_poison(CudaExec *e, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	CUDA_CHECK(cudaMemset(e->base[ARENA_ACT], 0xFF, e->bytes[ARENA_ACT]));
	return 0;
}

namespace {

/* Counts the non-finite values step I of PROG wrote into e->nonfinite[I]. */
int
count_step(CudaExec *e, const PlanProgram *prog, int i, ErrBuf eb)
{
	const PlanStep *s = &prog->steps[i];
	int v = s->out >= 0 ? s->out : (s->op == OP_sgd_update || s->op == OP_adam_update) ? s->in[0] : -1;
	if (v < 0 || e->p->values[v].dtype == DT_I32)
		return 0;
	CUDA_CHECK(count_nonfinite(buf(e, v), numel(vt(e, v)), e->nonfinite + i, e->st));
	return 0;
}

/* The first step in [first, last) that produced NaN/Inf, outside a loss-scaled backward pass. */
int
first_nonfinite(CudaExec *e, const PlanProgram *prog, int first, int last, ErrBuf eb)
{
	unsigned long long *h = e->nonfinite_host;
	CUDA_CHECK(cudaMemcpy(h, e->nonfinite + first, (size_t)(last - first) * sizeof *h, cudaMemcpyDeviceToHost));
	bool backward = false;
	for (int i = 0; i < first; i++)
		backward |= prog->steps[i].op == OP_loss_scale;
	int rc = 0;
	for (int i = first; i < last && !rc; i++) {
		const PlanStep *s = &prog->steps[i];
		if (h[i - first] && !backward) {
			snprintf(eb.msg, eb.len, "%s: %s%s%s produced %llu NaN or Inf values (first non-finite result of the run)",
				s->loc, nnc_ops[s->op].name, s->name[0] ? " " : "", s->name, h[i - first]);
			rc = -1;
		}
		backward |= s->op == OP_loss_scale;
	}
	return rc;
}

} // namespace

Buf
exec_buf(const CudaExec *e, int v)
{
	return buf(e, v);
}

int
exec_enqueue(CudaExec *e, int g, int first, int last, ErrBuf eb)
{
	const PlanProgram *prog = program(e, g);
	if (e->nonfinite)
		CUDA_CHECK(cudaMemsetAsync(e->nonfinite + first, 0, (size_t)(last - first) * sizeof *e->nonfinite, e->st));
	for (int i = first; i < last; i++) {
		const PlanStep *s = &prog->steps[i];
		char msg[512] = "";
		Ctx c = {e, s, &e->conv[g][i], &e->conf, g, i, {msg, sizeof msg}, first, last};
		int partner = e->pair[g][i];
		if (partner >= 0 && partner < i && partner >= first && !e->nonfinite)
			continue; /* done by the step it is fused into (r_bn_stats, r_bn_apply) */
		int reader = e->feed[g][i];
		if (reader > i && reader < last && !e->nonfinite)
			continue; /* a widening cast its one reader, a bn_stats, does itself (GROUP_BN_STATS) */
		int m = e->mt_at[g] ? e->mt_at[g][i] : -1;
		if (m >= 0 && e->mt[g][m].last <= last) { /* the whole run is in range: one launch */
			const MtRun *r = &e->mt[g][m];
			cudaError_t ce = multi_tensor(r->op, r->dev, r->ntensors, r->nchunks, &e->run->s, e->st);
			if (ce != cudaSuccess) {
				char at[512];
				where(e, g, i, at, sizeof at);
				snprintf(eb.msg, eb.len, "%s: the multi-tensor launch of steps %d to %d failed: %s", at, r->first,
					r->last - 1, cudaGetErrorString(ce));
				return -1;
			}
			for (int j = i; e->nonfinite && j < r->last; j++)
				if (count_step(e, prog, j, eb) != 0)
					return -1;
			i = r->last - 1;
			continue;
		}
		int rc = s->nchain ? r_ew(c) : runners[s->op](c);
		if (rc != 0) {
			char at[512];
			where(e, g, i, at, sizeof at);
			snprintf(eb.msg, eb.len, "%s: %s", at, msg);
			return -1;
		}
		int span = s->group == 3 ? 3 : 1; /* a group's other two steps are done too */
		for (int j = i; e->nonfinite && j < i + span; j++)
			if (count_step(e, prog, j, eb) != 0)
				return -1;
		i += span - 1;
	}
	return 0;
}

int
exec_check_nonfinite(CudaExec *e, int g, int first, int last, ErrBuf eb)
{
	return e->nonfinite ? first_nonfinite(e, program(e, g), first, last, eb) : 0;
}

int
exec_mt_fill(CudaExec *e, ErrBuf eb)
{
	const CudaRunState *a = &e->conf, *b = &e->mt_conf;
	if (e->mt_filled && a->momentum == b->momentum && a->weight_decay == b->weight_decay && a->beta1 == b->beta1 &&
	    a->beta2 == b->beta2 && a->eps == b->eps && a->nesterov == b->nesterov &&
	    a->stochastic_rounding == b->stochastic_rounding && a->seed == b->seed)
		return 0;
	for (int g = 0; g < 2; g++)
		for (int m = 0; m < e->nmt[g]; m++) {
			MtRun *r = &e->mt[g][m];
			if (r->op != OP_sgd_update && r->op != OP_adam_update)
				continue;
			for (int k = 0; k < r->ntensors; k++) {
				const PlanStep *s = &program(e, g)->steps[r->first + k];
				if (r->op == OP_sgd_update)
					r->host[k].sgd = sgd_conf(a, s);
				else
					r->host[k].adam = adam_conf(a, s);
			}
			CUDA_CHECK(cudaMemcpy(r->dev, r->host, (size_t)r->ntensors * sizeof *r->dev, cudaMemcpyHostToDevice));
		}
	e->mt_conf = *a;
	e->mt_filled = true;
	return 0;
}

extern "C" int
nnc_cuda_run(CudaExec *e, int g, int first, int last, CudaRunState *rs, int *skipped, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const PlanProgram *prog = program(e, g);
	if (g == 0 && !e->p->has_train) {
		snprintf(err, errlen, "the plan has no training program");
		return -1;
	}
	if (last > prog->nsteps)
		last = prog->nsteps;
	if (first >= last) {
		if (skipped)
			*skipped = 0;
		return 0;
	}
	e->conf = *rs;
	if (exec_mt_fill(e, eb) != 0)
		return -1;
	/* the kernels read the dropout stream at s.rng_counter + rng_off[step], offsets counted from
	 * the program's start; grad_check's flag is cleared by a run that starts the program and
	 * otherwise kept (plan_run_clears_check), so a run of single steps sees what every earlier
	 * check chunk found */
	bool clears = nnc_cuda_run_clears_check(e->p, g, first, last) != 0;
	StepScalars s = {};
	s.lr = rs->lr;
	s.loss_scale = rs->loss_scale;
	s.step = rs->step;
	s.rng_counter = rs->rng_counter - e->rng_off[g][first];
	CUDA_CHECK(cudaMemcpyAsync(&e->run->s, &s, clears ? sizeof s : offsetof(StepScalars, bad), cudaMemcpyHostToDevice,
		e->st));
	if (exec_enqueue(e, g, first, last, eb) != 0)
		return -1;
	CUDA_CHECK(cudaMemcpyAsync(&s, &e->run->s, sizeof s, cudaMemcpyDeviceToHost, e->st));
	CUDA_CHECK(cudaStreamSynchronize(e->st)); /* s is on the host's stack: wait before reading it */
	if (exec_check_nonfinite(e, g, first, last, eb) != 0)
		return -1;
	for (int i = first; i < last; i++)
		rs->rng_counter += prog->steps[i].op == OP_dropout_mask ? (uint64_t)numel(vt(e, prog->steps[i].out)) : 0;
	if (skipped)
		*skipped = s.bad;
	return 0;
}

extern "C" const char *
nnc_cuda_conv_algo(const CudaExec *e, int g, int step)
{
	static const char *const fwd[] = {"implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling",
		"winograd", "winograd_nonfused"};
	static const char *const bwd_data[] = {"algo_0", "algo_1", "fft", "fft_tiling", "winograd", "winograd_nonfused"};
	static const char *const bwd_filter[] = {"algo_0", "algo_1", "fft", "algo_3", "winograd", "winograd_nonfused",
		"fft_tiling"};
	static char buf[160];
	const PlanProgram *prog = program(e, g);
	if (step < 0 || step >= prog->nsteps)
		return "";
	Op op = prog->steps[step].op;
	const Conv *cv = &e->conv[g][step];
	if (op != OP_conv2d && op != OP_conv2d_bwd_data && op != OP_conv2d_bwd_filter)
		return "";
	if (cv->direct)
		return "direct";
	const char *const *names = op == OP_conv2d ? fwd : op == OP_conv2d_bwd_data ? bwd_data : bwd_filter;
	int n = op == OP_conv2d ? 8 : op == OP_conv2d_bwd_data ? 6 : 7;
	static const char *const how[] = {"heuristic", "measured", "measured earlier"};
	static const char *const math[] = {"default", "tensor op", "tensor op with conversion", "fma"};
	char ms[32] = "";
	if (cv->how != CONV_HEURISTIC)
		snprintf(ms, sizeof ms, " %.3f ms", (double)cv->ms);
	snprintf(buf, sizeof buf, "%s %s (%s math, %s%s)",
		op == OP_conv2d ? "fwd" : op == OP_conv2d_bwd_data ? "bwd_data" : "bwd_filter",
		cv->algo >= 0 && cv->algo < n ? names[cv->algo] : "?", cv->math >= 0 && cv->math < 4 ? math[cv->math] : "step's",
		how[cv->how], ms);
	return buf;
}

extern "C" int
nnc_cuda_run_clears_check(const Plan *p, int g, int first, int last)
{
	(void)p, (void)g, (void)last;
	return plan_run_clears_check(first);
}

extern "C" int
nnc_cuda_check_numerics(CudaExec *e, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	int n = e->p->eval.nsteps;
	if (e->p->has_train && e->p->train.nsteps > n)
		n = e->p->train.nsteps;
	CUDA_CHECK(cudaMalloc((void **)&e->nonfinite, (size_t)(n + 1) * sizeof *e->nonfinite));
	e->nonfinite_host = new unsigned long long[n + 1];
	e->nonfinite_n = n;
	return 0;
}


extern "C" const char *
nnc_cuda_notes(const CudaExec *e)
{
	return e->notes;
}

extern "C" size_t
nnc_cuda_bytes(const CudaExec *e)
{
	size_t n = e->ws_bytes;
	for (int k = ARENA_PARAM; k < NARENA; k++)
		n += e->bytes[k];
	return n;
}

/* What exec_enqueue launches for each step, by the runners above: cuDNN and cuBLAS calls
 * (library) and nnc's own kernels (own). Kept beside the runners; the GPU's measure is the
 * captured graph's node count (nnrun bench), which also counts the kernels inside each library
 * call. */
extern "C" void
nnc_cuda_launches(const Plan *p, int g, int *library, int *own)
{
	const PlanProgram *prog = g ? &p->eval : &p->train;
	*library = *own = 0;
	for (int i = 0; g || p->has_train ? i < prog->nsteps : false;) {
		const PlanStep *s = &prog->steps[i];
		int last;
		if (multi_run(prog, i, &last)) {
			(*own)++;
			i = last;
			continue;
		}
		GroupKind kind = plan_group_kind(prog, i);
		if (kind == GROUP_BN_STATS || kind == GROUP_BN_ADD) {
			(*own)++; /* the statistics, or the batch norm with its add */
			i += s->group;
			continue;
		}
		bool bias = (nnc_ops[s->op].flags & OPF_EPI) && nnc_attr_index(s->op, "bias") >= 0 &&
		            s->attr[nnc_attr_index(s->op, "bias")].i[0];
		switch (s->nchain ? OP_add : s->op) {
		case OP_input: case OP_param: case OP_output:
			break;
		case OP_conv2d: case OP_dense:
			(*library)++;
			*own += bias || s->epi;
			break;
		case OP_conv2d_bwd_data: case OP_conv2d_bwd_filter: case OP_dense_bwd_data: case OP_dense_bwd_weight:
			(*library)++;
			break;
		case OP_bn_bwd_data: /* the sums, then dx */
			*own += 2;
			break;
		case OP_concat:
			*own += s->nin;
			break;
		case OP_grad_check:
			*own += s->nin;
			break;
		default:
			(*own)++;
		}
		i += kind == GROUP_BN_BWD ? s->group : 1;
	}
}
