/* CPU executor (see exec.h). Each k_<op> reads its step's operands and attributes, sets up the
 * kernel's shape struct, and calls the kernel for the step's accumulation dtype: the f32
 * kernels of runtime/cpu/kernels.h, or for acc=f16 the fp16-accumulating ones of acc16.h.
 * Operands stored in fp16 are widened to f32 before a step and its result rounded back after
 * (widen/narrow). Shapes were validated when the plan was read, so a kernel's own -1 return
 * means bad data (a label out of range), not a bad plan. */
#include "runtime/exec.h"
#include "core/geometry.h"
#include "runtime/step_end.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/acc16.h"
#include "runtime/cpu/conv_dnnl.h"
#include "runtime/cpu/kernels.h"
#include "core/half.h"
#include "runtime/sround.h"

/* A step being run: its operands and result as f32 arrays (the values themselves, or widened
 * copies of f16 values in Exec.wide). */
typedef struct {
	Exec *e;
	const PlanStep *s;
	char *err;
	size_t errlen;
	float *in[NNC_MAXARGS];
	float *out;
	bool acc16; /* the step accumulates in fp16: use the runtime/cpu/acc16.h kernel */
	/* A channels-last step without a channels-last kernel (adapt()): its operands and result
	 * are seen through NCHW / OIHW copies in Exec.lay, typed here; `cl_out` is where the
	 * result goes back to, in its own layout. */
	bool adapted;
	Type aty[NNC_MAXARGS];
	float *cl_out;
	/* The fp16 operands (bit i) and result (RAW_OUT) that the kernel reads and writes as they
	 * are stored, converting in its inner loops (raw16_mask): in[i] and out then point at
	 * nnc_half elements, seen through SRC and DST. */
	unsigned raw16;
} K;

#define RAW_OUT (1u << 31)
/* Operand I's bit; steps with over 30 operands (multi-tensor updates, checks) have none. */
#define RAW_IN(i) ((i) < 31 ? 1u << (i) : 0u)

/* The kernel for this step's accumulation dtype: F(args) in f32, or cpu_acc16_F(args16). */
#define ACC(k, f32call, acc16call) ((k)->acc16 ? (acc16call) : (f32call))

typedef bool KernelFn(K *k);

static const Type *
T(K *k, int i)
{
	return k->adapted ? &k->aty[i] : &k->e->plan->values[k->s->in[i]];
}

static float *
IN(K *k, int i)
{
	return k->in[i];
}

static float *
OUT(K *k)
{
	return k->out;
}

/* Operand I and the result as the channels-last kernels take them: f32 or fp16 as stored. */
static CpuIn
SRC(K *k, int i)
{
	return (CpuIn){k->in[i], (k->raw16 & RAW_IN(i)) != 0};
}

static CpuOut
DST(K *k)
{
	return (CpuOut){k->out, (k->raw16 & RAW_OUT) != 0};
}

/* The activation output a prologue reads (absent without one). */
static CpuIn
SRC_ACT(K *k)
{
	return k->s->pro ? SRC(k, k->s->nin - 1) : (CpuIn){NULL, false};
}

static const AttrVal *
A(K *k, const char *name)
{
	return &k->s->attr[nnc_attr_index(k->s->op, name)];
}

static size_t
numel(const Type *t)
{
	return (size_t)type_numel(t);
}

/* A tensor as the per-channel kernels see it, [rows, C, hw] (core/types.h). */
static int
hw(const Type *t)
{
	return (int)type_plane(t);
}

static int
rows(const Type *t)
{
	return (int)type_rows(t);
}

/* Whether this step's per-channel kernel is the channels-last one (runtime/cpu/kernels.h); the
 * fp16-accumulating reference kernels take NHWC as [N*H*W, C, 1] through rows(). */
static bool
cl_kernel(const K *k, const Type *t)
{
	return type_channels_last(t) && !k->acc16;
}

static bool
kfail(K *k, const char *what)
{
	snprintf(k->err, k->errlen, "%s", what);
	return false;
}

static bool
k_none(K *k)
{
	return kfail(k, "not an executable kernel");
}

#define k_input k_none
#define k_param k_none
#define k_output k_none

static bool
conv_from(K *k, CpuConv *cv, const Type *x, int cout)
{
	const AttrVal *ke = A(k, "kernel"), *st = A(k, "stride"), *pa = A(k, "padding");
	*cv = (CpuConv){.n = (int)x->dim[0], .c = (int)x->dim[1], .h = (int)x->dim[2], .w = (int)x->dim[3], .k = cout,
		.kh = (int)ke->i[0], .kw = (int)ke->i[1], .sh = (int)st->i[0], .sw = (int)st->i[1], .ph = (int)pa->i[0],
		.pw = (int)pa->i[1], .groups = (int)A(k, "groups")->i[0], .nhwc = x->layout == LY_NHWC};
	return cpu_conv_setup(cv) == 0 || kfail(k, "invalid convolution geometry");
}

static bool
k_conv2d(K *k)
{
	CpuConv cv;
	if (!conv_from(k, &cv, T(k, 0), (int)A(k, "channels")->i[0]))
		return false;
	const float *b = A(k, "bias")->i[0] ? IN(k, 2) : NULL;
	Epilogue act = k->s->epi;
	int th = k->e->threads;
	if (!k->acc16 && cpu_dnnl_conv_ready(&cv, CPU_CONV_FORWARD, b, th))
		return cpu_dnnl_conv_forward(&cv, IN(k, 0), IN(k, 1), b, OUT(k), k->e->ws, k->e->ws_bytes, act, th) == 0 ||
		       kfail(k, "convolution failed in oneDNN");
	if (ACC(k, cpu_conv2d_forward_act_f32(&cv, IN(k, 0), IN(k, 1), b, OUT(k), k->e->ws, k->e->ws_bytes, act),
	        cpu_acc16_conv2d_forward(&cv, IN(k, 0), IN(k, 1), b, OUT(k))) != 0)
		return kfail(k, "convolution failed (workspace too small)");
	if (k->acc16)
		cpu_act_f32(OUT(k), numel(&k->e->plan->values[k->s->out]), act);
	return true;
}

static bool
k_conv2d_bwd_data(K *k)
{
	const Type *dy = T(k, 0), *w = T(k, 1);
	const AttrVal *ip = A(k, "input");
	Type x = {.layout = dy->layout, .rank = 4, .dim = {dy->dim[0], w->dim[1] * A(k, "groups")->i[0], ip->i[0], ip->i[1]}};
	CpuConv cv;
	if (!conv_from(k, &cv, &x, (int)dy->dim[1]))
		return false;
	int th = k->e->threads;
	if (!k->acc16 && cpu_dnnl_conv_ready(&cv, CPU_CONV_BACKWARD_DATA, false, th))
		return cpu_dnnl_conv_backward_data(&cv, IN(k, 0), IN(k, 1), OUT(k), k->e->ws, k->e->ws_bytes, th) == 0 ||
		       kfail(k, "convolution backward failed in oneDNN");
	return ACC(k, cpu_conv2d_backward_data_f32(&cv, IN(k, 0), IN(k, 1), OUT(k), k->e->ws, k->e->ws_bytes),
	           cpu_acc16_conv2d_backward_data(&cv, IN(k, 0), IN(k, 1), OUT(k))) == 0 ||
	       kfail(k, "convolution backward failed (workspace too small)");
}

static bool
k_conv2d_bwd_filter(K *k)
{
	CpuConv cv;
	if (!conv_from(k, &cv, T(k, 1), (int)T(k, 0)->dim[1]))
		return false;
	int th = k->e->threads;
	if (!k->acc16 && cpu_dnnl_conv_ready(&cv, CPU_CONV_BACKWARD_FILTER, false, th))
		return cpu_dnnl_conv_backward_filter(&cv, IN(k, 1), IN(k, 0), OUT(k), k->e->ws, k->e->ws_bytes, th) == 0 ||
		       kfail(k, "convolution backward failed in oneDNN");
	return ACC(k, cpu_conv2d_backward_filter_f32(&cv, IN(k, 1), IN(k, 0), OUT(k), k->e->ws, k->e->ws_bytes),
	           cpu_acc16_conv2d_backward_filter(&cv, IN(k, 1), IN(k, 0), OUT(k))) == 0 ||
	       kfail(k, "convolution backward failed (workspace too small)");
}

/* A step with a prologue (OPF_PRO) reads operand 0 through the backward of the activation
 * whose output is its last operand. The f32 kernels mask as they read; for the fp16-accumulating
 * reference kernels the masked gradient is made first, in Exec.view. */
static const float *
grad_in(K *k)
{
	if (!k->s->pro || !k->acc16)
		return IN(k, 0);
	size_t n = numel(T(k, 0));
	switch (k->s->pro) {
#define E(name, op)                                                                         \
	case EPI_##name:                                                                        \
		cpu_##op##_backward_f32(IN(k, k->s->nin - 1), IN(k, 0), k->e->view, n);             \
		break;
		NNC_EPILOGUES(E)
#undef E
	default:
		break;
	}
	return k->e->view;
}

static const float *
act_y(K *k)
{
	return k->s->pro ? IN(k, k->s->nin - 1) : NULL;
}

static int
own_nin(K *k)
{
	return k->s->nin - (k->s->pro ? 1 : 0);
}

static bool
k_bias_grad(K *k)
{
	const Type *t = T(k, 0);
	if (cl_kernel(k, t)) {
		cpu_bias_backward_cl_f32(SRC(k, 0), SRC_ACT(k), k->s->pro, rows(t), (int)t->dim[1], OUT(k), k->e->part);
		return true;
	}
	ACC(k, cpu_bias_backward_pro_f32(IN(k, 0), act_y(k), k->s->pro, rows(t), (int)t->dim[1], hw(t), OUT(k)),
	    cpu_acc16_bias_backward(grad_in(k), rows(t), (int)t->dim[1], hw(t), OUT(k)));
	return true;
}

/* bn_stats output rows: mean, invstd, unbiased variance. */
static bool
k_bn_stats(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	float *s = OUT(k);
	if (cl_kernel(k, t))
		return cpu_batchnorm_stats_cl_f32(SRC(k, 0), rows(t), c, A(k, "eps")->f, s, s + c, s + 2 * c, k->e->part) == 0 ||
		       kfail(k, "batch norm needs more than one value per channel in training (batch too small)");
	return ACC(k, cpu_batchnorm_stats_f32(IN(k, 0), rows(t), c, hw(t), A(k, "eps")->f, s, s + c, s + 2 * c),
	           cpu_acc16_batchnorm_stats(IN(k, 0), rows(t), c, hw(t), A(k, "eps")->f, s, s + c, s + 2 * c)) == 0 ||
	       kfail(k, "batch norm needs more than one value per channel in training (batch too small)");
}

static bool
k_bn_apply(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 1);
	const float *w = k->s->nin > 2 ? IN(k, 2) : NULL, *b = k->s->nin > 3 ? IN(k, 3) : NULL;
	if (type_channels_last(t))
		cpu_batchnorm_apply_cl_f32(SRC(k, 0), rows(t), c, s, s + c, w, b, DST(k), k->s->epi);
	else
		cpu_batchnorm_apply_f32(IN(k, 0), rows(t), c, hw(t), s, s + c, w, b, OUT(k), k->s->epi);
	return true;
}

static bool
k_bn_update(K *k)
{
	int c = (int)T(k, 0)->dim[0];
	const float *s = IN(k, 2);
	cpu_batchnorm_update_running_f32(c, A(k, "momentum")->f, s, s + 2 * c, IN(k, 0), IN(k, 1));
	return true;
}

/* Inference-mode batch norm: operands x, [scale, shift,] running_mean, running_var. */
static bool
k_batchnorm(K *k)
{
	const Type *t = T(k, 0);
	bool affine = A(k, "affine")->i[0];
	int r = affine ? 3 : 1;
	if (type_channels_last(t)) {
		cpu_batchnorm_inference_cl_f32(SRC(k, 0), rows(t), (int)t->dim[1], IN(k, r), IN(k, r + 1), A(k, "eps")->f,
			affine ? IN(k, 1) : NULL, affine ? IN(k, 2) : NULL, DST(k), k->s->epi);
		return true;
	}
	cpu_batchnorm_inference_f32(IN(k, 0), rows(t), (int)t->dim[1], hw(t), IN(k, r), IN(k, r + 1), A(k, "eps")->f,
		affine ? IN(k, 1) : NULL, affine ? IN(k, 2) : NULL, OUT(k), k->s->epi);
	return true;
}

/* Operands w, running_var [, scale]. */
static bool
k_bn_fold_weight(K *k)
{
	const Type *w = T(k, 0);
	int out = (int)w->dim[0];
	cpu_batchnorm_fold_weight_f32(IN(k, 0), out, numel(w) / (size_t)out, IN(k, 1), A(k, "eps")->f,
		k->s->nin > 2 ? IN(k, 2) : NULL, OUT(k));
	return true;
}

/* Operands running_mean, running_var [, scale, shift] [, bias]. */
static bool
k_bn_fold_bias(K *k)
{
	bool affine = A(k, "affine")->i[0], bias = A(k, "bias")->i[0];
	cpu_batchnorm_fold_bias_f32((int)T(k, 0)->dim[0], IN(k, 0), IN(k, 1), A(k, "eps")->f, affine ? IN(k, 2) : NULL,
		affine ? IN(k, 3) : NULL, bias ? IN(k, 2 + 2 * affine) : NULL, OUT(k));
	return true;
}

static bool
k_bn_bwd_data(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 2);
	const float *w = own_nin(k) > 3 ? IN(k, 3) : NULL;
	if (cl_kernel(k, t)) {
		cpu_batchnorm_backward_cl_f32(SRC(k, 0), SRC_ACT(k), k->s->pro, SRC(k, 1), rows(t), c, s, s + c, w, DST(k),
			NULL, NULL, k->e->part);
		return true;
	}
	ACC(k, cpu_batchnorm_backward_data_pro_f32(IN(k, 0), act_y(k), k->s->pro, IN(k, 1), rows(t), c, hw(t), s,
	           s + c, w, OUT(k), NULL, NULL),
		cpu_acc16_batchnorm_backward_data(grad_in(k), IN(k, 1), rows(t), c, hw(t), s, s + c, w, OUT(k), NULL, NULL));
	return true;
}

static bool
k_bn_bwd_scale(K *k)
{
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 2);
	if (cl_kernel(k, t)) {
		cpu_batchnorm_backward_cl_f32(SRC(k, 0), SRC_ACT(k), k->s->pro, SRC(k, 1), rows(t), c, s, s + c, NULL,
			(CpuOut){NULL, false}, OUT(k), k->e->scratch, k->e->part);
		return true;
	}
	ACC(k, cpu_batchnorm_backward_params_pro_f32(IN(k, 0), act_y(k), k->s->pro, IN(k, 1), rows(t), c, hw(t),
	           s, s + c, OUT(k), k->e->scratch),
		cpu_acc16_batchnorm_backward_params(grad_in(k), IN(k, 1), rows(t), c, hw(t), s, s + c, OUT(k),
			k->e->scratch));
	return true;
}

/* The elementwise ops (a row of NNC_EW each): the formula of runtime/ew.h over the tensor.
 * Operands are (a, b), or (dy, saved) for an activation's backward, whose formula takes
 * (saved, dy) (SWAP); add applies its epilogue in the same pass. */
static bool
k_ew(K *k, Elementwise op, bool swap)
{
	size_t n = numel(T(k, 0));
	if (op == EW_add) {
		cpu_add_act_f32(IN(k, 0), IN(k, 1), OUT(k), n, k->s->epi);
		return true;
	}
	const float *a = IN(k, 0), *b = nnc_ops[k->s->op].min_in > 1 ? IN(k, 1) : NULL;
	cpu_ew_f32(op, swap ? b : a, swap ? a : b, OUT(k), n);
	return true;
}

#define E(op, swap)                     \
	static bool k_##op(K *k)            \
	{                                   \
		return k_ew(k, EW_##op, swap);  \
	}
NNC_EW(E)
#undef E

static bool
pool_from(K *k, CpuPool *p, const Type *x)
{
	const AttrVal *ke = A(k, "kernel"), *st = A(k, "stride"), *pa = A(k, "padding");
	*p = (CpuPool){.n = (int)x->dim[0], .c = (int)x->dim[1], .h = (int)x->dim[2], .w = (int)x->dim[3],
		.kh = (int)ke->i[0], .kw = (int)ke->i[1], .sh = (int)nnc_pool_stride(st->i, ke->i, 0),
		.sw = (int)nnc_pool_stride(st->i, ke->i, 1), .ph = (int)pa->i[0], .pw = (int)pa->i[1],
		.nhwc = x->layout == LY_NHWC};
	return cpu_pool_setup(p) == 0 || kfail(k, "invalid pooling geometry");
}

static bool
k_maxpool(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 0)))
		return false;
	cpu_maxpool2d_forward_f32(&p, IN(k, 0), OUT(k));
	return true;
}

static bool
k_avgpool(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 0)))
		return false;
	ACC(k, cpu_avgpool2d_forward_f32(&p, IN(k, 0), OUT(k)), cpu_acc16_avgpool2d_forward(&p, IN(k, 0), OUT(k)));
	return true;
}

static bool
k_maxpool_bwd(K *k)
{
	CpuPool p;
	if (!pool_from(k, &p, T(k, 1)))
		return false;
	cpu_maxpool2d_backward_f32(&p, IN(k, 1), IN(k, 0), OUT(k));
	return true;
}

static bool
k_avgpool_bwd(K *k)
{
	const Type *dy = T(k, 0);
	const AttrVal *ip = A(k, "input");
	Type x = {.layout = dy->layout, .rank = 4, .dim = {dy->dim[0], dy->dim[1], ip->i[0], ip->i[1]}};
	CpuPool p;
	if (!pool_from(k, &p, &x))
		return false;
	ACC(k, cpu_avgpool2d_backward_f32(&p, IN(k, 0), OUT(k)), cpu_acc16_avgpool2d_backward(&p, IN(k, 0), OUT(k)));
	return true;
}

static bool
k_global_avgpool(K *k)
{
	const Type *t = T(k, 0);
	if (cl_kernel(k, t)) {
		cpu_global_avgpool_forward_cl_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], (int)(t->dim[2] * t->dim[3]), OUT(k));
		return true;
	}
	ACC(k, cpu_global_avgpool_forward_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], hw(t), OUT(k)),
		cpu_acc16_global_avgpool_forward(IN(k, 0), (int)t->dim[0], (int)t->dim[1], hw(t), OUT(k)));
	return true;
}

static bool
k_global_avgpool_bwd(K *k)
{
	const Type *t = T(k, 0);
	const AttrVal *ip = A(k, "input");
	if (type_channels_last(&k->e->plan->values[k->s->out]))
		cpu_global_avgpool_backward_cl_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], (int)(ip->i[0] * ip->i[1]), OUT(k));
	else
		cpu_global_avgpool_backward_f32(IN(k, 0), (int)t->dim[0], (int)t->dim[1], (int)(ip->i[0] * ip->i[1]), OUT(k));
	return true;
}

static bool
k_dense(K *k)
{
	const Type *x = T(k, 0);
	const float *b = A(k, "bias")->i[0] ? IN(k, 2) : NULL;
	int n = (int)x->dim[0], f = (int)x->dim[1], u = (int)A(k, "units")->i[0];
	Epilogue act = k->s->epi;
	ACC(k, cpu_dense_forward_act_f32(IN(k, 0), IN(k, 1), b, n, f, u, OUT(k), act),
		cpu_acc16_dense_forward(IN(k, 0), IN(k, 1), b, n, f, u, OUT(k)));
	if (k->acc16)
		cpu_act_f32(OUT(k), (size_t)n * u, act);
	return true;
}

static bool
k_dense_bwd_data(K *k)
{
	const Type *dy = T(k, 0), *w = T(k, 1);
	ACC(k, cpu_dense_backward_data_f32(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)w->dim[1], (int)w->dim[0], OUT(k)),
		cpu_acc16_dense_backward_data(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)w->dim[1], (int)w->dim[0], OUT(k)));
	return true;
}

static bool
k_dense_bwd_weight(K *k)
{
	const Type *dy = T(k, 0), *x = T(k, 1);
	ACC(k, cpu_dense_backward_weight_f32(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)x->dim[1], (int)dy->dim[1], OUT(k)),
		cpu_acc16_dense_backward_weight(IN(k, 0), IN(k, 1), (int)dy->dim[0], (int)x->dim[1], (int)dy->dim[1], OUT(k)));
	return true;
}

/* Inference dropout is the identity, reshapes and casts copy; an in-place identity may have
 * its output on its input (memmove). */
static bool
k_copy(K *k)
{
	memmove(OUT(k), IN(k, 0), numel(T(k, 0)) * sizeof(float));
	return true;
}

#define k_dropout k_copy
#define k_flatten k_copy
#define k_unflatten k_copy
#define k_cast k_copy

static bool
k_loss_scale(K *k)
{
	*OUT(k) = (float)k->e->loss_scale;
	return true;
}

/* --- layouts (passes/layout.c) ------------------------------------------------------------ */

static bool step_conv(const Plan *p, const PlanStep *s, CpuConv *cv, CpuConvPass *pass, bool *bias);

/* [n][a][b] -> [n][b][a] in 32x32 tiles, spread over the pool by (plane, tile row), of
 * 4-byte (f32) or 2-byte (f16) elements. */
typedef struct {
	const void *x;
	void *y;
	size_t a, b, tiles; /* tile rows per plane */
	size_t es;          /* element bytes */
} Transpose;

enum { TILE = 32 };

static void
transpose_range(void *ctx, size_t r0, size_t r1)
{
	const Transpose *t = ctx;
	for (size_t r = r0; r < r1; r++) {
		size_t plane = r / t->tiles, i0 = r % t->tiles * TILE, i1 = i0 + TILE < t->a ? i0 + TILE : t->a;
		size_t at = plane * t->a * t->b;
		for (size_t j0 = 0; j0 < t->b; j0 += TILE) {
			size_t j1 = j0 + TILE < t->b ? j0 + TILE : t->b;
			for (size_t i = i0; i < i1; i++)
				for (size_t j = j0; j < j1; j++)
					if (t->es == 4)
						((uint32_t *)t->y)[at + j * t->a + i] = ((const uint32_t *)t->x)[at + i * t->b + j];
					else
						((uint16_t *)t->y)[at + j * t->a + i] = ((const uint16_t *)t->x)[at + i * t->b + j];
		}
	}
}

/* X of type T (elements of ES bytes) into the other layout of its kind (NCHW <-> NHWC,
 * OIHW <-> OHWI) at Y. */
static void
relayout_es(const Type *t, const void *x, void *y, size_t es)
{
	size_t n = (size_t)t->dim[0], c = (size_t)t->dim[1], hw2 = (size_t)(t->dim[2] * t->dim[3]);
	bool cl = layout_channels_last(t->layout);
	Transpose tr = {x, y, cl ? hw2 : c, cl ? c : hw2, 0, es};
	tr.tiles = (tr.a + TILE - 1) / TILE;
	cpu_parallel_for(n * tr.tiles, 1, transpose_range, &tr);
}

/* The executor's f32 copies. */
static void
relayout(const Type *t, const float *x, float *y)
{
	relayout_es(t, x, y, sizeof(float));
}

static bool
k_relayout(K *k)
{
	relayout_es(T(k, 0), IN(k, 0), OUT(k), k->raw16 & 1 ? sizeof(nnc_half) : sizeof(float));
	return true;
}

/* Whether the kernel of step S reads and writes channels-last tensors as they are: elementwise
 * and update kernels do not care, the per-channel kernels have NHWC twins (or see NHWC as
 * [N*H*W, C, 1]: rows()), pooling strides over NHWC planes, and oneDNN's convolutions take
 * NHWC; the dropout mask (drawn in NCHW order, so a seed gives one mask in either layout), the
 * im2col convolutions and the fp16-accumulating convolutions and pools see NCHW copies
 * (adapt()). */
static bool
cl_native(K *k)
{
	const PlanStep *s = k->s;
	const Plan *p = k->e->plan;
	switch (s->op) {
	case OP_conv2d:
	case OP_conv2d_bwd_data:
	case OP_conv2d_bwd_filter: {
		CpuConv cv;
		CpuConvPass pass;
		bool bias;
		return !k->acc16 && step_conv(p, s, &cv, &pass, &bias) && cpu_dnnl_conv_ready(&cv, pass, bias, k->e->threads);
	}
	case OP_dropout_mask:
		return false;
	case OP_avgpool: /* the fp16-accumulating average pools read NCHW */
	case OP_avgpool_bwd:
	case OP_global_avgpool:
		return !k->acc16;
	default:
		return true;
	}
}

/* Points a channels-last step without a channels-last kernel at NCHW / OIHW copies of its
 * operands in Exec.lay, and its result at room there (put back by adapt_done). */
static void
adapt(K *k)
{
	const Plan *p = k->e->plan;
	bool any = k->s->out >= 0 && type_channels_last(&p->values[k->s->out]);
	for (int i = 0; i < k->s->nin && !any; i++)
		any = type_channels_last(&p->values[k->s->in[i]]);
	if (!any || cl_native(k))
		return;
	assert(!k->raw16);
	float *at = k->e->lay;
	for (int i = 0; i < k->s->nin; i++) {
		const Type *t = &p->values[k->s->in[i]];
		k->aty[i] = *t;
		if (!type_channels_last(t))
			continue;
		assert(!nnc_writes(k->s->op, i));
		relayout(t, k->in[i], at);
		k->aty[i].layout = layout_with(t->layout, false);
		k->in[i] = at;
		at += (numel(t) + 15) & ~(size_t)15;
	}
	if (k->s->out >= 0 && type_channels_last(&p->values[k->s->out])) {
		k->cl_out = k->out;
		k->out = at;
	}
	k->adapted = true;
}

static void
adapt_done(K *k)
{
	if (k->cl_out) {
		Type t = k->e->plan->values[k->s->out];
		t.layout = layout_with(t.layout, false);
		relayout(&t, k->out, k->cl_out);
		k->out = k->cl_out;
		k->cl_out = NULL;
	}
	k->adapted = false;
}

/* Looks at every gradient before the updates; one inf or NaN skips this step's updates. */
static bool
k_grad_check(K *k)
{
	bool bad = false;
	for (int i = 0; i < k->s->nin && !bad; i++) {
		const float *g = IN(k, i);
		size_t n = numel(T(k, i));
		for (size_t j = 0; j < n && !bad; j++)
			bad = !isfinite(g[j]);
	}
	k->e->skip_update |= bad;
	return true;
}

static bool
k_dropout_mask(K *k)
{
	cpu_dropout_mask_f32(&k->e->rng, A(k, "rate")->f, OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_ones(K *k)
{
	*OUT(k) = 1.0f;
	return true;
}

static bool
k_mul(K *k)
{
	cpu_scale_f32(IN(k, 0), A(k, "scale")->f, OUT(k), numel(T(k, 0)));
	return true;
}

static bool
k_concat(K *k)
{
	int n = k->s->nin, cs[NNC_MAXARGS];
	const float *xs[NNC_MAXARGS];
	int64_t axis = A(k, "axis")->i[0];
	if (axis < 0)
		axis += T(k, 0)->rank;
	if (axis != 1)
		return kfail(k, "concat is implemented along the channel axis only");
	for (int i = 0; i < n; i++) {
		xs[i] = IN(k, i);
		cs[i] = (int)T(k, i)->dim[1];
	}
	cpu_concat_forward_f32(n, xs, cs, rows(T(k, 0)), hw(T(k, 0)), OUT(k));
	return true;
}

/* slice along axis 1: rows [start, start + size) of each image. */
static bool
k_slice(K *k)
{
	const Type *t = T(k, 0);
	if (A(k, "axis")->i[0] != 1)
		return kfail(k, "slice is implemented along the channel axis only");
	size_t inner = (size_t)hw(t), c = (size_t)t->dim[1], start = (size_t)A(k, "start")->i[0],
	       size = (size_t)A(k, "size")->i[0];
	const float *x = IN(k, 0);
	float *y = OUT(k);
	for (int64_t i = 0; i < rows(t); i++)
		memcpy(y + (size_t)i * size * inner, x + ((size_t)i * c + start) * inner, size * inner * sizeof *y);
	return true;
}

static bool
k_softmax(K *k)
{
	ACC(k, cpu_softmax_forward_f32(IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k)),
		cpu_acc16_softmax_forward(IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k)));
	return true;
}

static bool
k_softmax_bwd(K *k)
{
	ACC(k, cpu_softmax_backward_f32(IN(k, 1), IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k)),
		cpu_acc16_softmax_backward(IN(k, 1), IN(k, 0), (int)T(k, 0)->dim[0], (int)T(k, 0)->dim[1], OUT(k)));
	return true;
}

static double
smoothing(K *k)
{
	double r = k->e->recipe.label_smoothing;
	return r >= 0 ? r : A(k, "label_smoothing")->f;
}

static bool
k_softmax_cross_entropy(K *k)
{
	const Type *t = T(k, 0);
	const int32_t *y = exec_i32(k->e, k->s->in[1]);
	int n = (int)t->dim[0], c = (int)t->dim[1];
	return ACC(k, cpu_softmax_xent_forward_f32(IN(k, 0), y, n, c, smoothing(k), OUT(k)),
	               cpu_acc16_softmax_xent_forward(IN(k, 0), y, n, c, smoothing(k), OUT(k))) == 0 ||
	       kfail(k, "a label is outside the model's classes");
}

static bool
k_sce_bwd(K *k)
{
	const Type *t = T(k, 0);
	const int32_t *y = exec_i32(k->e, k->s->in[1]);
	int n = (int)t->dim[0], c = (int)t->dim[1];
	return ACC(k, cpu_softmax_xent_backward_f32(IN(k, 0), y, n, c, smoothing(k), *IN(k, 2), OUT(k)),
	               cpu_acc16_softmax_xent_backward(IN(k, 0), y, n, c, smoothing(k), *IN(k, 2), OUT(k))) == 0 ||
	       kfail(k, "a label is outside the model's classes");
}

/* With loss scaling, the update reads its gradient divided by the scale (a copy in Exec.view:
 * the gradient value itself stays as computed), and a step grad_check rejected is skipped. */
static bool
unscaled(K *k)
{
	if (!A(k, "unscale")->i[0])
		return true;
	if (k->e->skip_update)
		return false;
	cpu_scale_f32(IN(k, 1), 1.0 / k->e->loss_scale, k->e->view, numel(T(k, 1)));
	k->in[1] = k->e->view;
	return true;
}

static bool
k_sgd_update(K *k)
{
	if (!unscaled(k))
		return true;
	const Recipe *r = &k->e->recipe;
	double scale = A(k, "lr_scale")->f; /* core/ops.h; as sgd_now on the GPU */
	CpuSgd o = {.lr = k->e->lr * scale, .momentum = r->momentum,
		.weight_decay = A(k, "decay")->i[0] ? r->weight_decay / scale : 0, .nesterov = r->nesterov};
	cpu_sgd_step_f32(&o, k->e->step + 1, IN(k, 0), IN(k, 1), IN(k, 2), numel(T(k, 0)));
	return true;
}

static bool
k_adam_update(K *k)
{
	if (!unscaled(k))
		return true;
	const Recipe *r = &k->e->recipe;
	double eps = r->eps > A(k, "min_eps")->f ? r->eps : A(k, "min_eps")->f; /* core/ops.h */
	CpuAdam o = {.lr = k->e->lr, .beta1 = r->beta1, .beta2 = r->beta2, .eps = eps,
		.weight_decay = A(k, "decay")->i[0] ? r->weight_decay : 0, .decoupled = A(k, "decoupled")->i[0]};
	cpu_adam_step_f32(&o, k->e->step + 1, IN(k, 0), IN(k, 1), IN(k, 2), IN(k, 3), numel(T(k, 0)));
	return true;
}

/* fp16 <-> f32 conversions of whole values, spread over the thread pool in fixed chunks (each
 * element converts on its own, so the bits do not depend on the chunks). Alone on the calling
 * thread they were the largest cost of a pure-fp16 step, the other threads idling. */
typedef struct {
	const void *src;
	void *dst;
	int dir; /* 0: f16 -> f32, 1: f32 -> f16, 2: f32 rounded through f16 in place */
} Convert;

static void
convert_range(void *ctx, size_t i0, size_t i1)
{
	const Convert *c = ctx;
	if (c->dir == 0)
		half_to_float_n((const nnc_half *)c->src + i0, (float *)c->dst + i0, i1 - i0);
	else if (c->dir == 1)
		half_from_float_n((const float *)c->src + i0, (nnc_half *)c->dst + i0, i1 - i0);
	else
		half_round_f32_n((float *)c->dst + i0, i1 - i0);
}

static void
convert(const void *src, void *dst, size_t n, int dir)
{
	Convert c = {src, dst, dir};
	cpu_parallel_for(n, 1 << 16, convert_range, &c);
}

static void
to_f32(const nnc_half *src, float *dst, size_t n)
{
	convert(src, dst, n, 0);
}

static void
to_f16(const float *src, nnc_half *dst, size_t n)
{
	convert(src, dst, n, 1);
}

/* The operands (bit i) and result (RAW_OUT) that step K's kernel can read and write in fp16
 * as they are stored, converting in its inner loops (where they are fp16): the large operands
 * of the channels-last per-channel kernels (CpuIn, CpuOut), every operand of an elementwise
 * step or chain (run block by block by run_chain), and a relayout's (which moves 2-byte
 * elements). Each computes in f32 exactly what it computes on widened copies, so the results
 * are bit-identical; tests/f16_native.sh holds them to it against NNC_CPU_F16=widen, which
 * turns this off, as does --check-numerics (it reads every result as f32). The fp16-
 * accumulating kernels, the NCHW per-channel kernels, convolutions and the rest take widened
 * copies. */
static unsigned
step_raw16(const Plan *p, const PlanStep *s)
{
	if (s->acc == DT_F16 || s->nin < 1 || s->nin > 30)
		return 0;
	unsigned all = (1u << s->nin) - 1, pro = s->pro ? 1u << (s->nin - 1) : 0;
	if (s->nchain || (nnc_ew_of(s->op, NULL) >= 0 && !s->pro))
		return all | RAW_OUT;
	bool cl = type_channels_last(&p->values[s->in[0]]);
	switch (s->op) {
	case OP_relayout:
		return 1u | RAW_OUT;
	case OP_bn_stats:
		return cl ? 1u : 0;
	case OP_bn_apply:
	case OP_batchnorm:
		return cl ? 1u | RAW_OUT : 0;
	case OP_bn_bwd_data:
		return cl ? 3u | pro | RAW_OUT : 0;
	case OP_bn_bwd_scale:
		return cl ? 3u | pro : 0;
	case OP_bias_grad:
		return cl ? 1u | pro : 0;
	default:
		return 0;
	}
}

static bool
f16_widen_env(void)
{
	const char *f16 = getenv("NNC_CPU_F16"); /* widen: every fp16 operand through an f32 copy */
	return f16 && !strcmp(f16, "widen");
}

static unsigned
raw16_mask(const K *k)
{
	return k->e->check_numerics || k->e->f16_widen ? 0 : step_raw16(k->e->plan, k->s);
}

void
exec_f16_kinds(const Plan *p, const PlanProgram *prog, int *raw, int *widened)
{
	*raw = *widened = 0;
	for (int i = 0; i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		unsigned f16 = s->out >= 0 && p->values[s->out].dtype == DT_F16 ? RAW_OUT : 0;
		for (int j = 0; j < s->nin; j++)
			f16 |= p->values[s->in[j]].dtype == DT_F16 ? RAW_IN(j) : 0;
		if (!f16)
			continue;
		bool any = !f16_widen_env() && (f16 & step_raw16(p, s)) != 0;
		*raw += any;
		*widened += !any;
	}
}

/* Points k->in and k->out at the data the kernel takes: f32 values themselves, fp16 ones as
 * stored where raw16_mask allows, else widened copies in Exec.wide (the result's, and in-place
 * operands', are rounded back by narrow()). The first operand's copy is at the start of the
 * area, where nothing else of its step goes: a step whose first operand is the previous
 * step's (a convolution's backward-filter pass after its backward-data pass, both reading
 * dy) finds it there still (Exec.wide_first) and is not widened again (unless
 * NNC_CPU_F16=widen, which widens every fp16 operand of every step). */
static void
widen(K *k)
{
	const Plan *p = k->e->plan;
	unsigned raw = raw16_mask(k);
	size_t at = 0;
	int first = -1;
	k->raw16 = 0;
	for (int i = 0; i < k->s->nin; i++) {
		const Type *t = &p->values[k->s->in[i]];
		if (t->dtype != DT_F16 || raw & RAW_IN(i)) {
			k->in[i] = exec_f32(k->e, k->s->in[i]);
			k->raw16 |= t->dtype == DT_F16 ? RAW_IN(i) : 0;
			continue;
		}
		k->in[i] = k->e->wide + at;
		if (i > 0 || k->s->in[0] != k->e->wide_first || k->e->f16_widen)
			to_f32((const nnc_half *)exec_f32(k->e, k->s->in[i]), k->in[i], numel(t));
		if (i == 0 && !nnc_writes(k->s->op, 0))
			first = k->s->in[0];
		at += (numel(t) + 15) & ~(size_t)15;
	}
	k->e->wide_first = first;
	if (k->s->out < 0)
		return;
	bool f16 = p->values[k->s->out].dtype == DT_F16;
	k->out = f16 && !(raw & RAW_OUT) ? k->e->wide + at : exec_f32(k->e, k->s->out);
	k->raw16 |= f16 && raw & RAW_OUT ? RAW_OUT : 0;
}

static void
narrow(K *k)
{
	const Plan *p = k->e->plan;
	if (k->s->out >= 0 && p->values[k->s->out].dtype == DT_F16 && !(k->raw16 & RAW_OUT))
		to_f16(k->out, (nnc_half *)exec_f32(k->e, k->s->out), numel(&p->values[k->s->out]));
	for (int i = 0; i < k->s->nin; i++)
		if (nnc_writes(k->s->op, i) && p->values[k->s->in[i]].dtype == DT_F16 && !(k->raw16 & RAW_IN(i)))
			to_f16(k->in[i], (nnc_half *)exec_f32(k->e, k->s->in[i]), numel(&p->values[k->s->in[i]]));
}

/* An optimizer update's new fp16 parameter (operand 0, in its widened copy), before narrow()
 * stores it: with optimizer.rounding stochastic each element is rounded here to one of the two
 * fp16 values around it (runtime/sround.h; narrow() then stores it exactly); with ST
 * (--check-numerics) the elements whose nonzero f32 update left the stored weight as it was
 * are counted as vanished. */
static void
round_update(K *k, HalfStats *st)
{
	int v = k->s->in[0];
	if ((k->s->op != OP_sgd_update && k->s->op != OP_adam_update) || k->e->plan->values[v].dtype != DT_F16 ||
	    (k->raw16 & RAW_IN(0)))
		return;
	bool sr = !strcmp(k->e->recipe.rounding, "stochastic");
	if (!sr && !st)
		return;
	float *x = k->in[0];
	const nnc_half *old = (const nnc_half *)exec_f32(k->e, v);
	uint64_t key = nnc_sround_key((uint64_t)k->e->recipe.seed, (uint64_t)k->e->step, (uint64_t)v), gone = 0;
	for (size_t i = 0, n = numel(T(k, 0)); i < n; i++) {
		float y = sr ? nnc_round_stochastic_f16(x[i], nnc_sround_bits(key, i)) : x[i];
		if (st)
			gone += x[i] != half_to_float(old[i]) && half_from_float(y) == old[i];
		x[i] = y;
	}
	if (st)
		st->vanished += gone;
}

/* Classifies a step's result (and an update's parameter) into its counters; the first NaN or
 * Inf is an error naming the op and its source line -- except in the backward pass of a plan
 * with loss scaling, where overflow is expected and grad_check skips the step. */
static bool
numerics(K *k, HalfStats *st, bool scaled_backward, char *err, size_t errlen)
{
	const float *x = NULL;
	size_t n = 0;
	if (k->s->out >= 0 && k->e->plan->values[k->s->out].dtype != DT_I32) {
		x = k->out;
		n = numel(&k->e->plan->values[k->s->out]);
	} else if (k->s->op == OP_sgd_update || k->s->op == OP_adam_update) {
		x = k->in[0];
		n = numel(T(k, 0));
	}
	if (!x)
		return true;
	uint64_t bad = st->nan + st->inf;
	half_classify_n(x, n, st);
	if (st->nan + st->inf > bad && !scaled_backward) {
		snprintf(err, errlen, "%s: %s%s%s produced %llu NaN and %llu Inf values (first non-finite result of the run)",
			k->s->loc, nnc_ops[k->s->op].name, k->s->name[0] ? " " : "", k->s->name,
			(unsigned long long)(st->nan), (unsigned long long)(st->inf));
		return false;
	}
	return true;
}

bool
exec_check_numerics(Exec *e)
{
	const Plan *p = e->plan;
	e->numerics[0] = calloc((size_t)(p->has_train ? p->train.nsteps : 0) + 1, sizeof(HalfStats));
	e->numerics[1] = calloc((size_t)p->eval.nsteps + 1, sizeof(HalfStats));
	e->check_numerics = e->numerics[0] && e->numerics[1];
	return e->check_numerics;
}

void
exec_numerics_report(const Exec *e, FILE *out)
{
	const Plan *p = e->plan;
	if (!e->check_numerics)
		return;
	int shown = 0;
	fprintf(out, "numerics (--check-numerics): results that held NaN/Inf, or overflowed or underflowed to zero "
	             "when stored in fp16; updates of fp16 weights that vanished (a nonzero f32 update, the stored "
	             "weight unchanged)\n");
	fprintf(out, "  %-8s %-22s %-28s %12s %12s %12s %12s %12s  %s\n", "program", "op", "name", "nan", "inf", "overflow",
		"underflow", "vanished", "source");
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = g ? &p->eval : &p->train;
		for (int i = 0; (g || p->has_train) && i < prog->nsteps; i++) {
			const HalfStats *s = &e->numerics[g][i];
			const PlanStep *st = &prog->steps[i];
			bool half = st->out >= 0 ? p->values[st->out].dtype == DT_F16
			                         : st->nin && p->values[st->in[0]].dtype == DT_F16;
			uint64_t ov = half ? s->overflow : 0, un = half ? s->underflow_to_zero : 0;
			if (!s->nan && !s->inf && !ov && !un && !s->vanished)
				continue;
			fprintf(out, "  %-8s %-22s %-28.28s %12llu %12llu %12llu %12llu %12llu  %s\n", g ? "eval" : "train",
				nnc_ops[st->op].name, st->name, (unsigned long long)s->nan, (unsigned long long)s->inf,
				(unsigned long long)ov, (unsigned long long)un, (unsigned long long)s->vanished, st->loc);
			shown++;
		}
	}
	if (!shown)
		fprintf(out, "  none: every result was finite and representable\n");
}

const float *
exec_view_f32(Exec *e, int value)
{
	const Type *t = &e->plan->values[value];
	if (t->dtype != DT_F16)
		return exec_f32(e, value);
	half_to_float_n((const nnc_half *)exec_f32(e, value), e->view, numel(t));
	return e->view;
}

void
exec_store_f32(Exec *e, int value, const float *src)
{
	const Type *t = &e->plan->values[value];
	if (t->dtype == DT_F16)
		half_from_float_n(src, (nnc_half *)exec_f32(e, value), numel(t));
	else if (exec_f32(e, value) != src)
		memcpy(exec_f32(e, value), src, numel(t) * sizeof(float));
}

/* --- chains (OPF_CHAIN ops fused by passes/fuse.c) ------------------------------------------
 * A chain step runs its ops block by block: CHAIN_BLOCK elements of each op's result, the
 * previous op's block feeding the next, so the intermediate values never leave the cache. Each
 * block kernel is the whole-tensor kernel's own expression (cpu_ew_range), and an intermediate
 * stored in fp16 in the unfused plan is rounded to fp16 here too, so chains are bit-identical
 * to the ops run one by one. Backward activations take (saved, dy) in the kernels, (dy, saved)
 * as operands. Operands and the result stored in fp16 (K.raw16) are converted block by block,
 * so a single elementwise op on fp16 values runs here too, as a chain of one. */
enum { CHAIN_BLOCK = 1024 };


typedef struct {
	K *k;
	size_t n;
	bool f16; /* intermediates are stored in fp16 in the unfused plan */
} ChainArgs;

/* Elements [i0, i0 + len) of operand I as f32: in place, or converted into BUF. */
static const float *
block_in(K *k, int i, size_t i0, size_t len, float *buf)
{
	if (!(k->raw16 & RAW_IN(i)))
		return IN(k, i) + i0;
	half_to_float_n((const nnc_half *)(const void *)IN(k, i) + i0, buf, len);
	return buf;
}

/* The elementwise formula of an epilogue (the one the separate activation op computes). */
static Elementwise
epi_ew(Epilogue epi)
{
	switch (epi) {
#define E(name, op)     \
	case EPI_##name:    \
		return EW_##op;
		NNC_EPILOGUES(E)
#undef E
	default:
		return NEW;
	}
}

static void
chain_blocks(void *ctx, size_t b0, size_t b1)
{
	const ChainArgs *c = ctx;
	K *k = c->k;
	const PlanStep *s = k->s;
	float buf[2][CHAIN_BLOCK], xin[CHAIN_BLOCK], yin[CHAIN_BLOCK];
	nnc_half h[CHAIN_BLOCK];
	for (size_t b = b0; b < b1; b++) {
		size_t i0 = b * CHAIN_BLOCK, len = c->n - i0 < CHAIN_BLOCK ? c->n - i0 : CHAIN_BLOCK;
		const float *prev = NULL;
		int next = 0;
		for (int j = 0; j <= s->nchain; j++) {
			Op op = j < s->nchain ? s->chain[j] : s->op;
			const float *x, *y = NULL;
			if (j == 0) {
				x = block_in(k, 0, i0, len, xin);
				next = 1;
			} else {
				x = prev;
			}
			if (nnc_ops[op].min_in > 1) {
				y = block_in(k, next, i0, len, yin);
				next++;
			}
			bool last = j == s->nchain;
			float *dst = last && !(k->raw16 & RAW_OUT) ? OUT(k) + i0 : buf[j & 1];
			bool swap = false;
			Elementwise ew = (Elementwise)nnc_ew_of(op, &swap);
			cpu_ew_range_f32(ew, swap ? y : x, swap ? x : y, dst, 0, len);
			if (last && s->epi != EPI_NONE)
				cpu_ew_range_f32(epi_ew(s->epi), dst, NULL, dst, 0, len);
			if (last && k->raw16 & RAW_OUT)
				half_from_float_n(dst, (nnc_half *)(void *)OUT(k) + i0, len);
			if (!last && c->f16) {
				half_from_float_n(dst, h, len);
				half_to_float_n(h, dst, len);
			}
			prev = dst;
		}
	}
}

static bool
run_chain(K *k)
{
	assert(!k->adapted);
	const PlanStep *s = k->s;
	for (int j = 0; j <= s->nchain; j++)
		if (nnc_ew_of(j < s->nchain ? s->chain[j] : s->op, NULL) < 0)
			return kfail(k, "an op in this chain has no block kernel");
	const Type *t = &k->e->plan->values[s->out];
	ChainArgs c = {.k = k, .n = numel(t), .f16 = t->dtype == DT_F16};
	cpu_parallel_for((c.n + CHAIN_BLOCK - 1) / CHAIN_BLOCK, 16, chain_blocks, &c);
	return true;
}

/* A backward group (passes/fuse.c): this bn_bwd_data step (with a prologue or none), then the
 * bn_bwd_scale and bias_grad steps SCALE and SHIFT reading the same gradient, input, statistics
 * and activation output, computed in one kernel call: the reductions that give dx also give
 * the scale's and the shift's gradients (the very sums bn_bwd_scale and bias_grad form, so the
 * results are bit-identical). Their fp16 results go through the scratch area. */
static bool
run_bn_group(K *k, const PlanStep *scale, const PlanStep *shift, float **dw, float **db)
{
	const Plan *p = k->e->plan;
	const Type *t = T(k, 0);
	int c = (int)t->dim[1];
	const float *s = IN(k, 2);
	const float *w = own_nin(k) > 3 ? IN(k, 3) : NULL;
	*dw = p->values[scale->out].dtype == DT_F16 ? k->e->scratch + c : exec_f32(k->e, scale->out);
	*db = p->values[shift->out].dtype == DT_F16 ? k->e->scratch + 2 * c : exec_f32(k->e, shift->out);
	if (cl_kernel(k, t))
		cpu_batchnorm_backward_cl_f32(SRC(k, 0), SRC_ACT(k), k->s->pro, SRC(k, 1), rows(t), c, s, s + c, w, DST(k),
			*dw, *db, k->e->part);
	else
		cpu_batchnorm_backward_data_pro_f32(IN(k, 0), act_y(k), k->s->pro, IN(k, 1), rows(t), c, hw(t), s, s + c, w,
			OUT(k), *dw, *db);
	return true;
}

static void
store_group_result(Exec *e, const PlanStep *s, const float *v)
{
	const Type *t = &e->plan->values[s->out];
	if (t->dtype == DT_F16)
		half_from_float_n(v, (nnc_half *)exec_f32(e, s->out), numel(t));
}

#define X(name, ...) k_##name,
static KernelFn *const kernels[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof kernels / sizeof kernels[0] == NOP, "an op has no CPU kernel entry");

/* Runs step K's kernel: a chain, or an elementwise op on fp16 values, block by block; else
 * the op's kernel. */
static bool
run_kernel(K *k)
{
	if (k->s->nchain || (k->raw16 && nnc_ew_of(k->s->op, NULL) >= 0))
		return run_chain(k);
	return kernels[k->s->op](k);
}

/* A statistics group (GROUP_BN_STATS) whose first step CAST widens an f16 activation for the
 * bn_stats after it: the statistics read the source widened in Exec.view, and the cast's f32
 * copy is never written (on the GPU the statistics kernel loads the f16 values itself). */
static bool
run_stats_through_cast(Exec *e, const PlanProgram *prog, int cast, char *msg, size_t msglen)
{
	const PlanStep *c = &prog->steps[cast], *s = c + 1;
	const Plan *p = e->plan;
	to_f32((const nnc_half *)exec_f32(e, c->in[0]), e->view, numel(&p->values[c->in[0]]));
	K k = {.e = e, .s = s, .err = msg, .errlen = msglen, .acc16 = s->acc == DT_F16};
	widen(&k);
	k.in[0] = e->view;
	if (!kernels[OP_bn_stats](&k))
		return false;
	narrow(&k);
	return true;
}

/* A residual group (GROUP_BN_ADD) at step I: bn_apply's result goes to Exec.view (in, or
 * rounded to, its storage dtype, as storing it would), never to its own place, and the add
 * reads it there, as the GPU's one pass does (its only reader is the add, which the plan
 * loader checked). */
static bool
run_bn_add(Exec *e, const PlanProgram *prog, int i, char *msg, size_t msglen)
{
	const PlanStep *b = &prog->steps[i], *a = b + 1;
	const Plan *p = e->plan;
	K kb = {.e = e, .s = b, .err = msg, .errlen = msglen, .acc16 = b->acc == DT_F16};
	widen(&kb);
	kb.out = e->view;
	if (!kernels[OP_bn_apply](&kb))
		return false;
	bool raw = kb.raw16 & RAW_OUT;
	if (p->values[b->out].dtype == DT_F16 && !raw)
		convert(NULL, e->view, numel(&p->values[b->out]), 2);
	K ka = {.e = e, .s = a, .err = msg, .errlen = msglen, .acc16 = a->acc == DT_F16};
	widen(&ka);
	int at = a->in[0] == b->out ? 0 : 1;
	ka.in[at] = e->view;
	ka.raw16 = raw ? ka.raw16 | RAW_IN(at) : ka.raw16 & ~RAW_IN(at);
	if (!run_kernel(&ka))
		return false;
	narrow(&ka);
	return true;
}

static bool run_steps(Exec *e, const PlanProgram *prog, int first, int last, bool *updated, bool *scaled, char *err,
	size_t errlen);
static void finish_step(Exec *e, bool updated, bool scaled);

bool
exec_run(Exec *e, const PlanProgram *prog, char *err, size_t errlen)
{
	bool updated = false, scaled = false;
	e->skip_update = false;
	if (!run_steps(e, prog, 0, prog->nsteps, &updated, &scaled, err, errlen))
		return false;
	finish_step(e, updated, scaled);
	return true;
}

void
exec_finish_step(Exec *e, const PlanProgram *prog, bool skipped)
{
	bool updated = false, scaled = false;
	for (int i = 0; i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		updated |= s->op == OP_sgd_update || s->op == OP_adam_update;
		if (s->op != OP_loss_scale)
			continue;
		scaled |= s->attr[nnc_attr_index(OP_loss_scale, "dynamic")].i[0] != 0;
		if (!e->loss_scale_interval) {
			e->loss_scale_interval = s->attr[nnc_attr_index(OP_loss_scale, "interval")].i[0];
			e->loss_scale_growth = s->attr[nnc_attr_index(OP_loss_scale, "growth")].f;
			e->loss_scale_backoff = s->attr[nnc_attr_index(OP_loss_scale, "backoff")].f;
		}
	}
	e->skip_update = skipped;
	finish_step(e, updated, scaled);
}

/* After a run: the end-of-step rule both executors share (runtime/step_end.h). */
static void
finish_step(Exec *e, bool updated, bool scaled)
{
	NncStepCounts c = nnc_step_end((NncStepCounts){e->loss_scale, e->clean_steps, e->skipped_steps, e->step},
		e->skip_update, scaled, updated, e->loss_scale_interval, e->loss_scale_growth, e->loss_scale_backoff);
	e->loss_scale = c.loss_scale;
	e->clean_steps = (long)c.clean_steps;
	e->skipped_steps = (long)c.skipped_steps;
	e->step = (long)c.step;
}

bool
exec_run_steps(Exec *e, const PlanProgram *prog, int first, int last, char *err, size_t errlen)
{
	bool updated = false, scaled = false;
	if (plan_run_clears_check(first))
		e->skip_update = false;
	return run_steps(e, prog, first, last < prog->nsteps ? last : prog->nsteps, &updated, &scaled, err, errlen);
}

/* Runs steps [first, last) of PROG: the loop of exec_run, without the end-of-step bookkeeping
 * (loss scale, optimizer step count). */
static bool
run_steps(Exec *e, const PlanProgram *prog, int first, int last, bool *updated_, bool *scaled_, char *err,
	size_t errlen)
{
	e->failed_step = -1;
	bool updated = false, scaled = false, backward = false;
	for (int i = 0; i < first; i++)
		backward |= prog->steps[i].op == OP_loss_scale;
	HalfStats *counts = e->check_numerics ? e->numerics[prog == &e->plan->eval] : NULL;
	e->wide_first = -1; /* values may have changed since the last run (weights loaded, a batch) */
	for (int i = first; i < last; i++) {
		const PlanStep *s = &prog->steps[i];
		char msg[256] = "";
		K k = {.e = e, .s = s, .err = msg, .errlen = sizeof msg, .acc16 = s->acc == DT_F16};
		/* A group runs as one kernel when all of it is in range; with --check-numerics, which
		 * looks at every step's result, only the backward group does (it makes them all). */
		GroupKind kind = i + s->group <= last ? plan_group_kind(prog, i) : GROUP_NONE;
		if (counts && kind != GROUP_BN_BWD)
			kind = GROUP_NONE;
		if ((kind == GROUP_BN_STATS && s->op == OP_cast) || kind == GROUP_BN_ADD) {
			/* the second step runs with the first; a bn_update after them runs as it is */
			const PlanStep *t = &prog->steps[i + 1];
			bool ok = kind == GROUP_BN_ADD ? run_bn_add(e, prog, i, msg, sizeof msg)
			                               : run_stats_through_cast(e, prog, i, msg, sizeof msg);
			if (!ok) {
				e->failed_step = i + 1;
				snprintf(err, errlen, "%s: step %d, %s%s%s: %s", t->loc, i + 1, nnc_ops[t->op].name, t->name[0] ? " " : "",
					t->name, msg);
				return false;
			}
			i++;
			continue;
		}
		widen(&k);
		if (kind == GROUP_BN_BWD && !k.acc16) {
			const PlanStep *sib[2] = {&prog->steps[i + 1], &prog->steps[i + 2]};
			float *res[2];
			run_bn_group(&k, sib[0], sib[1], &res[0], &res[1]);
			for (int j = 0; j < 2; j++) {
				K ks = {.e = e, .s = sib[j], .err = msg, .errlen = sizeof msg, .out = res[j]};
				if (counts && !numerics(&ks, &counts[i + 1 + j], backward, err, errlen)) {
					e->failed_step = i + 1 + j;
					return false;
				}
				store_group_result(e, sib[j], res[j]);
			}
			if (counts && !numerics(&k, &counts[i], backward, err, errlen)) {
				e->failed_step = i;
				return false;
			}
			narrow(&k);
			i += 2;
			continue;
		}
		adapt(&k);
		bool ran = run_kernel(&k);
		adapt_done(&k);
		if (!ran) {
			e->failed_step = i;
			snprintf(err, errlen, "%s: step %d, %s%s%s: %s", s->loc, i, nnc_ops[s->op].name, s->name[0] ? " " : "",
				s->name, msg);
			return false;
		}
		if (counts && !numerics(&k, &counts[i], backward, err, errlen)) {
			e->failed_step = i;
			return false;
		}
		backward |= s->op == OP_loss_scale;
		round_update(&k, counts ? &counts[i] : NULL);
		narrow(&k);
		updated |= s->op == OP_sgd_update || s->op == OP_adam_update;
		scaled |= s->op == OP_loss_scale && A(&k, "dynamic")->i[0];
		if (s->op == OP_loss_scale && !e->loss_scale_interval) {
			e->loss_scale_interval = A(&k, "interval")->i[0];
			e->loss_scale_growth = A(&k, "growth")->f;
			e->loss_scale_backoff = A(&k, "backoff")->f;
		}
	}
	*updated_ = updated;
	*scaled_ = scaled;
	return true;
}

/* --- set-up -------------------------------------------------------------------------------- */

static size_t
round64(size_t bytes)
{
	return (bytes + 63) & ~(size_t)63;
}

/* The convolution of step S of plan P, its pass and whether it has a bias; false when S is no
 * convolution. */
static bool
step_conv(const Plan *p, const PlanStep *s, CpuConv *cv, CpuConvPass *pass, bool *bias)
{
	if (s->op != OP_conv2d && s->op != OP_conv2d_bwd_data && s->op != OP_conv2d_bwd_filter)
		return false;
	/* K needs an Exec only for T() and A(), which read the plan. */
	Exec e = {.plan = p};
	char msg[64];
	K k = {.e = &e, .s = s, .err = msg, .errlen = sizeof msg};
	const Type *x = s->op == OP_conv2d ? T(&k, 0) : s->op == OP_conv2d_bwd_filter ? T(&k, 1) : NULL;
	Type xb;
	if (!x) {
		const Type *dy = T(&k, 0), *wt = T(&k, 1);
		xb = (Type){.layout = dy->layout, .rank = 4, .dim = {dy->dim[0], wt->dim[1] * A(&k, "groups")->i[0],
		                                                     A(&k, "input")->i[0], A(&k, "input")->i[1]}};
		x = &xb;
	}
	int cout = s->op == OP_conv2d ? (int)A(&k, "channels")->i[0] : (int)T(&k, 0)->dim[1];
	if (!conv_from(&k, cv, x, cout))
		return false;
	*pass = s->op == OP_conv2d ? CPU_CONV_FORWARD : s->op == OP_conv2d_bwd_data ? CPU_CONV_BACKWARD_DATA
	                                                                             : CPU_CONV_BACKWARD_FILTER;
	*bias = s->op == OP_conv2d && A(&k, "bias")->i[0];
	return true;
}

/* Calls FN for every convolution step of P's programs, with its geometry, pass and bias. */
typedef void ConvVisit(void *ctx, const PlanStep *s, const CpuConv *cv, CpuConvPass pass, bool bias);

static void
each_conv(const Plan *p, ConvVisit *fn, void *ctx)
{
	const PlanProgram *progs[2] = {p->has_train ? &p->train : NULL, &p->eval};
	for (int g = 0; g < 2; g++)
		for (int i = 0; progs[g] && i < progs[g]->nsteps; i++) {
			CpuConv cv;
			CpuConvPass pass;
			bool bias;
			if (step_conv(p, &progs[g]->steps[i], &cv, &pass, &bias))
				fn(ctx, &progs[g]->steps[i], &cv, pass, bias);
		}
}

typedef struct {
	int threads, dnnl, im2col;
	const char *impl;
} ConvKinds;

static void
count_kind(void *ctx, const PlanStep *s, const CpuConv *cv, CpuConvPass pass, bool bias)
{
	ConvKinds *c = ctx;
	CpuConv cf = *cv;
	cf.nhwc = false;
	if (s->acc != DT_F16 && (cpu_dnnl_conv_ready(cv, pass, bias, c->threads) ||
	                            (cv->nhwc && cpu_dnnl_conv_ready(&cf, pass, bias, c->threads)))) {
		c->dnnl++;
		if (!c->impl)
			c->impl = cpu_dnnl_conv_impl(cv, pass, bias, c->threads);
	} else {
		c->im2col++;
	}
}

void
exec_conv_kinds(const Plan *p, int threads, int *dnnl, int *im2col, const char **impl)
{
	ConvKinds c = {.threads = threads};
	each_conv(p, count_kind, &c);
	*dnnl = c.dnnl;
	*im2col = c.im2col;
	*impl = c.impl;
}

int
exec_kernel_count(const PlanProgram *prog)
{
	int n = 0;
	for (int i = 0; i < prog->nsteps; i++) {
		GroupKind kind = plan_group_kind(prog, i);
		if (kind == GROUP_BN_BWD)
			i += prog->steps[i].group - 1;
		if (!(kind == GROUP_BN_STATS && prog->steps[i].op == OP_cast))
			n++;
	}
	return n;
}

typedef struct {
	int threads;
	size_t bytes;
} ConvNeed;

/* The largest convolution workspace: im2col's, or oneDNN's for the f32 steps it runs (which
 * this prepares, once). */
static void
conv_need(void *ctx, const PlanStep *s, const CpuConv *cv, CpuConvPass pass, bool bias)
{
	ConvNeed *c = ctx;
	size_t need = cpu_conv2d_workspace_f32(cv, pass, c->threads);
	size_t dnnl = s->acc == DT_F16 ? 0 : cpu_dnnl_conv_prepare(cv, pass, bias, c->threads);
	if (cv->nhwc && !dnnl && s->acc != DT_F16) {
		/* no channels-last kernel: adapt() gives the step NCHW copies, which oneDNN's NCHW pass
		 * (prepared here, so that this workspace holds it) or im2col then runs */
		CpuConv cf = *cv;
		cf.nhwc = false;
		dnnl = cpu_dnnl_conv_prepare(&cf, pass, bias, c->threads);
	}
	need = dnnl > need ? dnnl : need;
	c->bytes = need > c->bytes ? need : c->bytes;
}

static bool
f16_type(const Type *t)
{
	return t->dtype == DT_F16;
}

/* The floats, each value's rounded up to 16, of step S's operands and result that KEEP holds. */
static size_t
step_floats(const Plan *p, const PlanStep *s, bool (*keep)(const Type *))
{
	size_t n = 0;
	for (int k = 0; k <= s->nin; k++) {
		int v = k < s->nin ? s->in[k] : s->out;
		if (v >= 0 && keep(&p->values[v]))
			n += ((size_t)type_numel(&p->values[v]) + 15) & ~(size_t)15;
	}
	return n;
}

ExecWorkspace
exec_workspace(const Plan *p, int threads)
{
	ExecWorkspace w = {0};
	size_t maxc = 1;
	for (int i = 0; i < p->nvalues; i++) {
		if (p->values[i].rank >= 2 && (size_t)p->values[i].dim[1] > maxc)
			maxc = (size_t)p->values[i].dim[1];
		if (p->values[i].rank == 1 && (size_t)p->values[i].dim[0] > maxc)
			maxc = (size_t)p->values[i].dim[0];
	}
	ConvNeed need = {.threads = threads};
	each_conv(p, conv_need, &need);
	w.conv = need.bytes;
	const PlanProgram *progs[2] = {p->has_train ? &p->train : NULL, &p->eval};
	/* For each step: the widening area, room for every f16 operand and result in f32; the
	 * relayout area, for each channels-last step adapt() serves, room for its operands and
	 * result in NCHW (after each_conv above, which prepared the oneDNN passes cl_native asks
	 * about); the channels-last reductions' partial sums (every image operand of a step with a
	 * per-channel kernel is its one image shape). */
	size_t wide = 16, view = 16, lay = 16, part = 16;
	Exec probe = {.plan = p, .threads = threads};
	for (int g = 0; g < 2; g++)
		for (int i = 0; progs[g] && i < progs[g]->nsteps; i++) {
			const PlanStep *s = &progs[g]->steps[i];
			K k = {.e = &probe, .s = s, .acc16 = s->acc == DT_F16};
			size_t f16 = step_floats(p, s, f16_type), cl = step_floats(p, s, type_channels_last);
			wide = f16 > wide ? f16 : wide;
			if (cl > lay && !cl_native(&k))
				lay = cl;
			const Type *t0 = s->nin ? &p->values[s->in[0]] : NULL;
			if (t0 && t0->layout == LY_NHWC && type_channels_last(t0)) {
				size_t np = cpu_cl_partials_f32(rows(t0), (int)t0->dim[1]);
				part = np > part ? np : part;
			}
		}
	for (int i = 0; i < p->nvalues; i++)
		if ((size_t)type_numel(&p->values[i]) > view)
			view = (size_t)type_numel(&p->values[i]);
	w.conv = round64(w.conv);
	w.wide = round64(wide * sizeof(float));
	w.view = round64(view * sizeof(float));
	w.scratch = round64(3 * maxc * sizeof(float)); /* bn_bwd_scale's unused half; a group's dw, db */
	w.lay = round64(lay * sizeof(float));
	w.part = round64(part * sizeof(double));
	w.total = w.conv + w.wide + w.view + w.scratch + w.lay + w.part + 64;
	return w;
}

bool
exec_init(Exec *e, const Plan *p, int threads, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	e->plan = p;
	e->recipe = p->recipe;
	e->lr = p->recipe.lr;
	e->threads = threads;
	e->failed_step = -1;
	e->wide_first = -1;
	e->f16_widen = f16_widen_env();
	if (cpu_threads_init(threads) != 0) {
		snprintf(err, errlen, "cannot start %d worker threads", threads);
		return false;
	}
	ExecWorkspace w = exec_workspace(p, threads);
	e->ws_bytes = w.conv;
	e->wide_elems = w.wide / sizeof(float);
	const PlanProgram *progs[2] = {p->has_train ? &p->train : NULL, &p->eval};
	e->loss_scale = 1;
	for (int g = 0; g < 2; g++)
		for (int i = 0; progs[g] && i < progs[g]->nsteps; i++)
			if (progs[g]->steps[i].op == OP_loss_scale)
				e->loss_scale = progs[g]->steps[i].attr[nnc_attr_index(OP_loss_scale, "init")].f;
	bool arenas_ok = true;
	for (int k = ARENA_PARAM; k < NARENA; k++) {
		size_t n = ((size_t)p->arena_bytes[k] + 63) / 64 * 64 + 64;
		e->base[k] = aligned_alloc(64, n);
		arenas_ok &= e->base[k] != NULL;
		if (e->base[k])
			memset(e->base[k], 0, n);
	}
	e->work = aligned_alloc(64, w.total);
	if (!arenas_ok || !e->work) {
		snprintf(err, errlen,
			"out of memory: the plan needs %.1f MB (parameters %.1f, inputs %.1f, activations %.1f) and %.1f MB of "
			"workspace",
			(double)(p->arena_bytes[ARENA_PARAM] + p->arena_bytes[ARENA_IO] + p->arena_bytes[ARENA_ACT]) / 1e6,
			(double)p->arena_bytes[ARENA_PARAM] / 1e6, (double)p->arena_bytes[ARENA_IO] / 1e6,
			(double)p->arena_bytes[ARENA_ACT] / 1e6, (double)w.total / 1e6);
		exec_free(e);
		return false;
	}
	e->ws = e->work;
	e->wide = (float *)(e->work + w.conv);
	e->view = (float *)(e->work + w.conv + w.wide);
	e->scratch = (float *)(e->work + w.conv + w.wide + w.view);
	e->lay = (float *)(e->work + w.conv + w.wide + w.view + w.scratch);
	e->part = (double *)(e->work + w.conv + w.wide + w.view + w.scratch + w.lay);
	cpu_rng_seed(&e->rng, (uint64_t)p->recipe.seed ^ 0x64726f706f7574ull);
	return true;
}

void
exec_free(Exec *e)
{
	for (int k = ARENA_PARAM; k < NARENA; k++) {
		free(e->base[k]);
		e->base[k] = NULL;
	}
	free(e->work);
	e->work = NULL;
	free(e->numerics[0]);
	free(e->numerics[1]);
	e->numerics[0] = e->numerics[1] = NULL;
	e->wide = e->view = NULL;
	e->ws = NULL;
	e->scratch = NULL;
	cpu_threads_shutdown();
}

/* --- initializers ------------------------------------------------------------------------------ */

static double
uniform01(CpuRng *r)
{
	return cpu_rng_uniform(r);
}

static double
normal01(CpuRng *r)
{
	double u1 = uniform01(r), u2 = uniform01(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

void
exec_copy_torch(const Type *t, const void *src, void *dst, bool to_torch)
{
	size_t es = dtype_size(t->dtype);
	if (!type_channels_last(t)) {
		memmove(dst, src, (size_t)type_numel(t) * es);
		return;
	}
	Type from = *t; /* the source's layout: T's, or PyTorch's */
	from.layout = layout_with(t->layout, to_torch);
	relayout_es(&from, src, dst, es);
}

/* PyTorch's nn.init.dirac_ on the first min(out, in) filters of the filter W of type T (in
 * PyTorch's [out, in, kh, kw] order): each all zeros but its own input channel's centre tap, 1,
 * so that the convolution starts as the identity on those channels (airbench's init); the
 * other filters keep what they were drawn with. */
static void
dirac(const Type *t, float *w)
{
	int64_t out = t->dim[0], in = t->dim[1], kh = t->dim[2], kw = t->dim[3];
	for (int64_t o = 0; o < out && o < in; o++) {
		float *f = w + o * in * kh * kw;
		memset(f, 0, (size_t)(in * kh * kw) * sizeof *f);
		f[(o * kh + kh / 2) * kw + kw / 2] = 1;
	}
}

void
exec_init_params(Exec *e, uint64_t seed)
{
	const Plan *p = e->plan;
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		float *v = exec_f32(e, q->value);
		size_t n = numel(&p->values[q->value]);
		CpuRng r;
		cpu_rng_seed(&r, seed * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1);
		double fi = q->fan_in > 0 ? (double)q->fan_in : 1, fo = q->fan_out > 0 ? (double)q->fan_out : 1;
		bool is_bias = strcmp(q->kind, "bias") == 0;
		const char *init = q->init;
		float *dst = v;
		if (p->values[q->value].dtype == DT_F16 || type_channels_last(&p->values[q->value]))
			v = e->view; /* initialise in f32, PyTorch's order, then store (exec_store_torch) */
		for (size_t k = 0; k < n; k++) {
			double x;
			if (!strcmp(init, "zeros"))
				x = 0;
			else if (!strcmp(init, "ones"))
				x = 1;
			else if (!strcmp(init, "he_normal"))
				x = normal01(&r) * sqrt(2 / fi);
			else if (!strcmp(init, "he_uniform"))
				x = (2 * uniform01(&r) - 1) * sqrt(6 / fi);
			else if (!strcmp(init, "xavier_normal"))
				x = normal01(&r) * sqrt(2 / (fi + fo));
			else if (!strcmp(init, "xavier_uniform"))
				x = (2 * uniform01(&r) - 1) * sqrt(6 / (fi + fo));
			else /* torch_default: kaiming_uniform(a = sqrt(5)) for weights, U(+-1/sqrt(fan_in)) for biases;
			      * dirac and whiten start from it (below; whiten: runtime/whiten.c, when training) */
				x = (2 * uniform01(&r) - 1) * (is_bias ? 1 / sqrt(fi) : sqrt(6 / (6 * fi)));
			v[k] = (float)x;
		}
		if (!strcmp(init, "dirac"))
			dirac(&p->values[q->value], v);
		exec_store_torch(e, q->value, v, dst);
	}
}

/* Value VALUE initialised in PyTorch's order as f32 in V (Exec.view where it is stored in fp16
 * or channels-last) into its storage DST: rounded to fp16, and a channels-last filter (drawn in
 * PyTorch's order, so that one seed gives one network in any layout) transposed, through the
 * widening area for an fp16 one. */
void
exec_store_torch(Exec *e, int value, const float *v, void *dst)
{
	const Type *t = &e->plan->values[value];
	size_t n = numel(t);
	bool half = t->dtype == DT_F16;
	if (!type_channels_last(t)) {
		if (half)
			half_from_float_n(v, (nnc_half *)dst, n);
		else if (dst != v)
			memcpy(dst, v, n * sizeof(float));
		return;
	}
	if (half)
		half_from_float_n(v, (nnc_half *)e->wide, n);
	exec_copy_torch(t, half ? (const void *)e->wide : (const void *)v, dst, false);
}
