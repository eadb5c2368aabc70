/* The op table: one X-macro row per op drives the enum, the names, the arity, the flags and the
 * attribute schema, for the compiler and the runtime alike. Every other per-op table is
 * generated from NNC_OPS and static_asserts that it has NOP entries, so a row cannot be added
 * without its rule. The grammar never changes: every op is called by name, e.g.
 * conv2d(x, 16, kernel=3).
 *
 * Adding an op means writing, each place failing to compile until it is there:
 *   core/ops.h          its X row below and its NNC_ATTRS_<name> list (an elementwise op without
 *                       attributes that may join chains: a row of NNC_EW too, with OPF_CHAIN)
 *   core/infer.c        infer_<name>: its shape and dtype rule
 *   passes/autodiff.c   grad_<name>: its gradient rule (backward ops are ops of this table too)
 *   runtime/exec.c      k_<name>: the CPU step, over a kernel in runtime/cpu/
 *   runtime/cuda/exec.cu  r_<name>: the CUDA step, over cuDNN, cuBLAS or runtime/cuda/kernels.cu
 *   runtime/ew.h        NNC_EWF_<name>, for an NNC_EW row: the formula both backends' elementwise
 *                       and chain kernels are generated from
 * and, checked by tests rather than the compiler, the fuzzers' dictionaries (tests/fuzz/nn.dict
 * and plan.dict, ctest fuzz_dict) and a gradient check (tests/gradcheck/); docs/runtime.md. */
#ifndef NNC_OPS_H
#define NNC_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* Flags, one bit each:
 *   SOURCE   defines a value from nothing (inputs, parameters); no operands
 *   EFFECT   a root: kept by dead-code elimination even if its result is unused
 *   NORES    produces no result value
 *   ELEMWISE output[i] depends only on input[i] of each operand (same shape in, same shape out)
 *   PARAMS   declares trainable parameters or state (its inference returns ParamDecls)
 *   MATMUL   multiply-accumulate bound (conv, dense): reported in MAC counts
 *   USER     callable from .nn source (internal ops such as param/input/output are not)
 *   ACC      sums many products or values per output (its accumulation dtype matters)
 *   EPI      its kernel can apply an epilogue activation (relu, relu6) to its result in the
 *            same pass (conv and dense after their bias, batch norm, add; the fuse pass:
 *            `+relu` in dumps, `epilogue: relu` in plans)
 *   FOLDBN   operands (x, weight [, bias]) with weight rows the output channels: an inference
 *            batch norm of its result folds into its weight and bias (the fuse pass)
 *   PRO      its kernel can apply an activation's backward to its incoming gradient (operand 0)
 *            as it reads it, given the activation's output as one more, last operand (a
 *            prologue: bn_bwd_data+relu_bwd in dumps, `prologue: relu` in plans)
 *   CHAIN    elementwise without attributes, with a formula in NNC_EW below (test_frontend
 *            checks the two agree): a chain of such ops, each
 *            feeding the next's operand 0, runs as one kernel over blocks of elements (the
 *            fuse pass: add+relu_bwd in dumps, `chain: [add]` in plans)
 *   COMMUTES two operands that may be swapped, bit for bit (IEEE a + b == b + a, a * b == b * a) */
enum {
	OPF_SOURCE = 1 << 0,
	OPF_EFFECT = 1 << 1,
	OPF_NORES = 1 << 2,
	OPF_ELEMWISE = 1 << 3,
	OPF_PARAMS = 1 << 4,
	OPF_MATMUL = 1 << 5,
	OPF_USER = 1 << 6,
	OPF_ACC = 1 << 7,
	OPF_EPI = 1 << 8,
	OPF_FOLDBN = 1 << 9,
	OPF_PRO = 1 << 10,
	OPF_CHAIN = 1 << 11,
	OPF_COMMUTES = 1 << 12,
};

/* Columns: name, min tensor inputs, max tensor inputs (-1: any), flags, and the operands the op
 * writes in place (bit i: operand i; the updates write their parameter and optimizer state, the
 * running-statistics update the running mean and variance): what both executors, the plan
 * checker and the GPU tests treat as the step's results besides its own. */
#define NNC_OPS(X) \
	X(input,                 0, 0,  OPF_SOURCE, 0) \
	X(param,                 0, 0,  OPF_SOURCE, 0) \
	X(output,                1, 1,  OPF_EFFECT | OPF_NORES, 0) \
	X(conv2d,                1, 1,  OPF_USER | OPF_PARAMS | OPF_MATMUL | OPF_ACC | OPF_EPI | OPF_FOLDBN, 0) \
	X(batchnorm,             1, 1,  OPF_USER | OPF_PARAMS | OPF_EPI, 0) \
	X(relu,                  1, 1,  OPF_USER | OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(relu6,                 1, 1,  OPF_USER | OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(gelu,                  1, 1,  OPF_USER | OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(tanh,                  1, 1,  OPF_USER | OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(maxpool,               1, 1,  OPF_USER, 0) \
	X(avgpool,               1, 1,  OPF_USER | OPF_ACC, 0) \
	X(global_avgpool,        1, 1,  OPF_USER | OPF_ACC, 0) \
	X(dense,                 1, 1,  OPF_USER | OPF_PARAMS | OPF_MATMUL | OPF_ACC | OPF_EPI | OPF_FOLDBN, 0) \
	X(dropout,               1, 1,  OPF_USER | OPF_ELEMWISE, 0) \
	X(flatten,               1, 1,  OPF_USER, 0) \
	X(add,                   2, 2,  OPF_USER | OPF_ELEMWISE | OPF_EPI | OPF_CHAIN | OPF_COMMUTES, 0) \
	X(concat,                2, -1, OPF_USER, 0) \
	X(mul,                   1, 1,  OPF_USER | OPF_ELEMWISE, 0) \
	X(softmax,               1, 1,  OPF_USER | OPF_ACC, 0) \
	X(softmax_cross_entropy, 2, 2,  OPF_USER | OPF_ACC, 0) \
	/* training-mode forward, inserted by the trainmode pass */ \
	X(bn_stats,              1, 1,  OPF_ACC, 0) \
	X(bn_apply,              2, 4,  OPF_EPI, 0) \
	X(bn_update,             3, 3,  OPF_EFFECT | OPF_NORES, 0x3) \
	X(dropout_mask,          1, 1,  0, 0) \
	X(mulv,                  2, 2,  OPF_ELEMWISE | OPF_CHAIN | OPF_COMMUTES, 0) \
	X(ones,                  0, 0,  0, 0) \
	/* inference batch norm folded into the weights before it, inserted by the fuse pass */ \
	X(bn_fold_weight,        2, 3,  0, 0) \
	X(bn_fold_bias,          2, 5,  0, 0) \
	/* backward, inserted by the autodiff pass */ \
	X(conv2d_bwd_data,       2, 2,  OPF_MATMUL | OPF_ACC, 0) \
	X(conv2d_bwd_filter,     2, 2,  OPF_MATMUL | OPF_ACC, 0) \
	X(bias_grad,             1, 1,  OPF_ACC | OPF_PRO, 0) \
	X(bn_bwd_data,           3, 4,  OPF_ACC | OPF_PRO, 0) \
	X(bn_bwd_scale,          3, 3,  OPF_ACC | OPF_PRO, 0) \
	X(relu_bwd,              2, 2,  OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(relu6_bwd,             2, 2,  OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(gelu_bwd,              2, 2,  OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(tanh_bwd,              2, 2,  OPF_ELEMWISE | OPF_CHAIN, 0) \
	X(maxpool_bwd,           2, 2,  0, 0) \
	X(avgpool_bwd,           1, 1,  OPF_ACC, 0) \
	X(global_avgpool_bwd,    1, 1,  0, 0) \
	X(dense_bwd_data,        2, 2,  OPF_MATMUL | OPF_ACC, 0) \
	X(dense_bwd_weight,      2, 2,  OPF_MATMUL | OPF_ACC, 0) \
	X(unflatten,             1, 1,  0, 0) \
	X(slice,                 1, 1,  0, 0) \
	X(softmax_bwd,           2, 2,  OPF_ACC, 0) \
	X(sce_bwd,               3, 3,  OPF_ACC, 0) \
	/* optimizer updates, inserted by the optimizer pass; they write their first operands */ \
	X(sgd_update,            3, 3,  OPF_EFFECT | OPF_NORES, 0x5) \
	X(adam_update,           4, 4,  OPF_EFFECT | OPF_NORES, 0xd) \
	/* precision, inserted by the precision pass */ \
	X(cast,                  1, 1,  OPF_ELEMWISE, 0) \
	X(loss_scale,            0, 0,  0, 0) \
	X(grad_check,            1, -1, OPF_EFFECT | OPF_NORES, 0) \
	/* memory layout, inserted by the layout pass */ \
	X(relayout,              1, 1,  0, 0)

/* Attribute kinds. INT2 is an int or a two-element [h, w] list (kernel, stride, padding).
 * DTYPE is a floating storage dtype, "f32" or "f16", held in i[0] as a DType and written as its
 * name (dumps and plans), so a wrong name is refused where it is read, not where it is used. */
typedef enum { AK_INT, AK_INT2, AK_FLOAT, AK_BOOL, AK_STR, AK_DTYPE } AttrKind;

/* Attribute schemas: A(name, kind, required, numeric default, string default). Positional
 * arguments after an op's tensor inputs fill its attributes in this order. */
#define NNC_ATTRS_input(A) \
	A(name, AK_STR, 1, 0, NULL) A(kind, AK_STR, 1, 0, NULL) A(channels, AK_INT, 0, 0, NULL) \
	A(height, AK_INT, 0, 0, NULL) A(width, AK_INT, 0, 0, NULL) A(classes, AK_INT, 0, 0, NULL)
#define NNC_ATTRS_param(A) \
	A(name, AK_STR, 1, 0, NULL) A(kind, AK_STR, 1, 0, NULL) A(init, AK_STR, 1, 0, NULL) \
	A(trainable, AK_BOOL, 0, 1, NULL)
#define NNC_ATTRS_output(A) A(name, AK_STR, 1, 0, NULL)
#define NNC_ATTRS_conv2d(A) \
	A(channels, AK_INT, 1, 0, NULL) A(kernel, AK_INT2, 1, 0, NULL) A(stride, AK_INT2, 0, 1, NULL) \
	A(padding, AK_INT2, 0, 0, NULL) A(groups, AK_INT, 0, 1, NULL) A(bias, AK_BOOL, 0, 1, NULL) \
	A(weight_init, AK_STR, 0, 0, "he_normal") A(bias_init, AK_STR, 0, 0, "zeros") \
	A(frozen_weight, AK_BOOL, 0, 0, NULL)
#define NNC_ATTRS_batchnorm(A) \
	A(momentum, AK_FLOAT, 0, 0.1, NULL) A(eps, AK_FLOAT, 0, 1e-5, NULL) \
	A(affine, AK_BOOL, 0, 1, NULL) A(frozen_scale, AK_BOOL, 0, 0, NULL) \
	A(scale_init, AK_STR, 0, 0, "ones") A(shift_init, AK_STR, 0, 0, "zeros")
#define NNC_ATTRS_relu(A)
#define NNC_ATTRS_relu6(A)
#define NNC_ATTRS_gelu(A)
#define NNC_ATTRS_tanh(A)
#define NNC_ATTRS_maxpool(A) \
	A(kernel, AK_INT2, 0, 2, NULL) A(stride, AK_INT2, 0, 0, NULL) A(padding, AK_INT2, 0, 0, NULL)
#define NNC_ATTRS_avgpool(A) NNC_ATTRS_maxpool(A)
#define NNC_ATTRS_global_avgpool(A)
#define NNC_ATTRS_dense(A) \
	A(units, AK_INT, 1, 0, NULL) A(bias, AK_BOOL, 0, 1, NULL) \
	A(weight_init, AK_STR, 0, 0, "he_normal") A(bias_init, AK_STR, 0, 0, "zeros")
#define NNC_ATTRS_dropout(A) A(rate, AK_FLOAT, 0, 0.5, NULL)
#define NNC_ATTRS_flatten(A)
#define NNC_ATTRS_add(A)
#define NNC_ATTRS_concat(A) A(axis, AK_INT, 0, 1, NULL)
#define NNC_ATTRS_mul(A) A(scale, AK_FLOAT, 1, 0, NULL)
#define NNC_ATTRS_softmax(A) A(axis, AK_INT, 0, 1, NULL)
#define NNC_ATTRS_softmax_cross_entropy(A) A(label_smoothing, AK_FLOAT, 0, 0, NULL)
/* Training and backward ops. bn_stats gives [3, C]: the batch mean, 1/sqrt(var + eps) and the
 * unbiased variance (for the running statistics, as PyTorch keeps them). Pooling and conv backward ops repeat the forward geometry and add
 * the input size they must reproduce. Optimizer hyperparameters (learning rate, momentum, weight
 * decay, betas, eps) are not attributes: the runtime reads them from the run's recipe, so they
 * can be overridden without recompiling; `decay` says whether weight decay applies. */
#define NNC_ATTRS_bn_stats(A) A(eps, AK_FLOAT, 1, 0, NULL)
#define NNC_ATTRS_bn_apply(A)
#define NNC_ATTRS_bn_update(A) A(momentum, AK_FLOAT, 1, 0, NULL)
#define NNC_ATTRS_dropout_mask(A) A(rate, AK_FLOAT, 1, 0, NULL)
#define NNC_ATTRS_mulv(A)
#define NNC_ATTRS_ones(A)
/* Folding y = batchnorm(conv(x, w) + b) into conv(x, w', b'), per output channel o with
 * a = scale[o] / sqrt(var[o] + eps) (scale = 1 without affine): w'[o] = a * w[o] from operands
 * (w, var [, scale]); b'[o] = shift[o] + a * (b[o] - mean[o]) from operands (mean, var
 * [, scale, shift] [, b]), stored as `to` (the weight's dtype). */
#define NNC_ATTRS_bn_fold_weight(A) A(eps, AK_FLOAT, 1, 0, NULL)
#define NNC_ATTRS_bn_fold_bias(A) \
	A(eps, AK_FLOAT, 1, 0, NULL) A(affine, AK_BOOL, 1, 0, NULL) A(bias, AK_BOOL, 1, 0, NULL) A(to, AK_DTYPE, 1, 0, NULL)
#define NNC_CONV_GEOMETRY(A) \
	A(kernel, AK_INT2, 1, 0, NULL) A(stride, AK_INT2, 1, 0, NULL) A(padding, AK_INT2, 1, 0, NULL)
#define NNC_ATTRS_conv2d_bwd_data(A) NNC_CONV_GEOMETRY(A) A(groups, AK_INT, 1, 0, NULL) A(input, AK_INT2, 1, 0, NULL)
#define NNC_ATTRS_conv2d_bwd_filter(A) NNC_CONV_GEOMETRY(A) A(groups, AK_INT, 1, 0, NULL)
#define NNC_ATTRS_bias_grad(A)
#define NNC_ATTRS_bn_bwd_data(A)
#define NNC_ATTRS_bn_bwd_scale(A)
#define NNC_ATTRS_relu_bwd(A)
#define NNC_ATTRS_relu6_bwd(A)
#define NNC_ATTRS_gelu_bwd(A)
#define NNC_ATTRS_tanh_bwd(A)
#define NNC_ATTRS_maxpool_bwd(A) NNC_CONV_GEOMETRY(A)
#define NNC_ATTRS_avgpool_bwd(A) NNC_CONV_GEOMETRY(A) A(input, AK_INT2, 1, 0, NULL)
#define NNC_ATTRS_global_avgpool_bwd(A) A(input, AK_INT2, 1, 0, NULL) A(layout, AK_STR, 0, 0, "nchw")
#define NNC_ATTRS_dense_bwd_data(A)
#define NNC_ATTRS_dense_bwd_weight(A)
#define NNC_ATTRS_unflatten(A) A(channels, AK_INT, 1, 0, NULL) A(input, AK_INT2, 1, 0, NULL)
#define NNC_ATTRS_slice(A) A(axis, AK_INT, 1, 0, NULL) A(start, AK_INT, 1, 0, NULL) A(size, AK_INT, 1, 0, NULL)
#define NNC_ATTRS_softmax_bwd(A)
#define NNC_ATTRS_sce_bwd(A) A(label_smoothing, AK_FLOAT, 1, 0, NULL)
/* lr_scale: this parameter's learning rate is the step's times lr_scale, and its weight decay
 * coefficient divided by it, so that the decay per step stays the others' (recipe
 * shift_lr_scale: airbench's batch-norm biases) */
#define NNC_ATTRS_sgd_update(A) \
	A(decay, AK_BOOL, 0, 1, NULL) A(unscale, AK_BOOL, 0, 0, NULL) A(lr_scale, AK_FLOAT, 0, 1, NULL)
#define NNC_ATTRS_adam_update(A) \
	A(decoupled, AK_BOOL, 0, 0, NULL) A(decay, AK_BOOL, 0, 1, NULL) A(unscale, AK_BOOL, 0, 0, NULL) \
	A(min_eps, AK_FLOAT, 0, 0, NULL)
/* Adam with fp16 state: v = E[g^2] underflows below 2^-24, so sqrt(v) resolves nothing under
 * 2^-12, and a smaller epsilon divides by an unrepresentable quantity. The precision pass writes
 * this floor into the min_eps of each adam_update whose state is fp16; both executors use
 * max(the recipe's eps, min_eps), since eps may be changed at run time. */
#define NNC_ADAM_MIN_EPS_F16 0x1p-12
/* cast converts storage dtype ("f16" or "f32", round to nearest even). loss_scale is the seed of
 * the backward pass when the loss is scaled: the current scale S (static: `init` forever;
 * dynamic: PyTorch GradScaler's rule, x`growth` after `interval` clean steps, x`backoff` and the
 * step skipped on inf/NaN). grad_check looks at every gradient before the updates; updates with
 * unscale=true divide their gradient by S and are skipped when grad_check found inf/NaN. */
#define NNC_ATTRS_cast(A) A(to, AK_DTYPE, 1, 0, NULL)
#define NNC_ATTRS_loss_scale(A) \
	A(dynamic, AK_BOOL, 1, 0, NULL) A(init, AK_FLOAT, 1, 0, NULL) A(growth, AK_FLOAT, 0, 2, NULL) \
	A(backoff, AK_FLOAT, 0, 0.5, NULL) A(interval, AK_INT, 0, 2000, NULL)
#define NNC_ATTRS_grad_check(A)
/* relayout copies an image or filter into the layout named by `to` (nchw <-> nhwc, oihw <->
 * ohwi; core/types.h): the layout pass puts one wherever a value's consumer needs the other
 * order. global_avgpool_bwd's `layout` is its result's (it has no image operand to follow). */
#define NNC_ATTRS_relayout(A) A(to, AK_STR, 1, 0, NULL)

typedef enum {
#define X(name, ...) OP_##name,
	NNC_OPS(X)
#undef X
	NOP
} Op;

typedef struct {
	const char *name;
	AttrKind kind;
	bool required;
	double num; /* default for INT, INT2, FLOAT, BOOL */
	const char *str; /* default for STR */
} AttrSpec;

#define NNC_MAXATTR 12

typedef struct {
	const char *name;
	int min_in, max_in;
	unsigned flags;
	unsigned writes; /* operands written in place: bit i for operand i */
	const AttrSpec *attrs;
	int nattrs;
} OpInfo;

extern const OpInfo nnc_ops[NOP];

/* Whether OP writes its operand I in place (the op table's last column). */
static inline bool
nnc_writes(Op op, int i)
{
	return i >= 0 && i < 32 && ((nnc_ops[op].writes >> i) & 1u);
}

/* Activations and their gradients: A(op, saves_output). The backward op of each is
 * <op>_bwd(dy, saved), saved being the activation's input, or its output when saves_output
 * (autodiff reads this table; a row without its _bwd op does not compile). */
#define NNC_ACTIVATIONS(A) A(relu, 0) A(relu6, 0) A(gelu, 0) A(tanh, 1)
/* The backward op of activation OP and whether it reads the output (else the input), or NOP
 * for an op that is not an activation. */
Op nnc_activation_bwd(Op op, bool *saves_output);

/* Epilogues: E(NAME, op), the activations an OPF_EPI kernel applies to its result in the same
 * pass, named after the op they replace (passes/fuse.c); their <op>_bwd is then an OPF_PRO
 * kernel's prologue. Both backends apply them, and their backward, through these rows and
 * runtime/ew.h's formulas: adding an epilogue is one row here. */
#define NNC_EPILOGUES(E) E(RELU, relu) E(RELU6, relu6)
typedef enum {
	EPI_NONE,
#define E(name, op) EPI_##name,
	NNC_EPILOGUES(E)
#undef E
	NEPI
} Epilogue;
extern const Op nnc_epilogue_op[NEPI]; /* EPI_NONE: NOP */
/* The backward op of each epilogue's activation (relu_bwd, relu6_bwd): a prologue. */
extern const Op nnc_epilogue_bwd_op[NEPI];
/* The epilogue that replaces OP, or EPI_NONE. */
Epilogue nnc_epilogue_of(Op op);
/* The activation whose backward op is OP (as a prologue), or EPI_NONE. */
Epilogue nnc_prologue_of(Op op);

/* Step groups (passes/fuse.c): consecutive steps that a backend may run as one kernel, marked
 * on the first with the member count. Every backend reads their operands and writes their
 * results as one kernel would (all operands alive, all results placed, from the first member to
 * the last), so memplan and the plan loader treat them so; a value made and used only inside
 * the group need not be written at all. The kinds, by the members' ops:
 *   GROUP_BN_BWD    bn_bwd_data, bn_bwd_scale, bias_grad over one gradient
 *   GROUP_BN_STATS  [cast,] bn_stats [, bn_update]: the statistics read the cast's f16 source
 *                   and update the running statistics as each channel finishes
 *   GROUP_BN_ADD    bn_apply, add: the residual add in the same pass over the data
 *   GROUP_MULTI     two or more sgd_update, adam_update or cast steps: one multi-tensor launch */
typedef enum { GROUP_NONE, GROUP_BN_BWD, GROUP_BN_STATS, GROUP_BN_ADD, GROUP_MULTI, NGROUP } GroupKind;
extern const char *const nnc_group_names[NGROUP];
/* The kind of a group whose members' ops are OPS[0..N-1], by their ops alone (the plan loader
 * checks their operands), or GROUP_NONE. */
GroupKind nnc_group_kind(const Op *ops, int n);

/* The elementwise formulas a chain (OPF_CHAIN) is made of, one kernel each on every backend:
 * E(op, swap), swap meaning the kernel takes the op's operands in the other order ((saved, dy)
 * for the activations' backward ops, whose operands are (dy, saved)). */
#define NNC_EW(E) \
	E(relu, 0) E(relu6, 0) E(gelu, 0) E(tanh, 0) E(add, 0) E(mulv, 0) \
	E(relu_bwd, 1) E(relu6_bwd, 1) E(gelu_bwd, 1) E(tanh_bwd, 1)
typedef enum {
#define E(op, swap) EW_##op,
	NNC_EW(E)
#undef E
	NEW
} Elementwise;
/* The elementwise formula of OP, or -1 for an op that has none; *SWAP (may be NULL) is its
 * operand order. */
int nnc_ew_of(Op op, bool *swap);

/* Chains (OPF_CHAIN): at most NNC_MAXCHAIN ops run before a step's own op. The first takes
 * its operands from the start of the step's operand list; each later op, and then the step's
 * own op, takes the previous result as operand 0 and its other operands from the list in turn.
 * Returns how many of the step's operands the chain ops take. */
enum { NNC_MAXCHAIN = 4 };
int nnc_chain_operands(const Op *chain, int nchain);

/* Returns the op called NAME among the user-callable ops, or NOP. */
Op nnc_op_lookup(const char *name);
/* Returns the index of attribute NAME of OP, or -1. */
int nnc_attr_index(Op op, const char *name);
const char *nnc_attrkind_name(AttrKind k);

#endif
