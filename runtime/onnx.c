/* ONNX export (runtime/onnx.h): the plan's evaluation program, translated step by step into ONNX
 * nodes, and written as protobuf by hand (varints and length-delimited fields, the field numbers
 * of onnx.proto); nothing here links a protobuf library.
 *
 * The translation undoes what is layout or storage and keeps what is arithmetic. Relayouts,
 * casts and (evaluation-mode) dropout name the same ONNX tensor as their operand, since every ONNX
 * tensor is float32 NCHW. A batch norm the fuse pass folded into a convolution or dense layer
 * (bn_fold_weight, bn_fold_bias) becomes the layer with its own weights followed by
 * BatchNormalization with the running statistics, so the file holds the PyTorch-named parameters
 * and the graph reads as the source does; an epilogue becomes its activation node, a chain its
 * elementwise nodes. Only steps whose results reach the logits are exported (not the loss).
 *
 * Invariants: the whole model is encoded in memory before the file is opened, so an op without
 * an ONNX form, or memory running out, leaves no file; tensor names are unique (a step's name,
 * else its op's, with a numeric suffix where taken), node names are their output's; every
 * initializer is one the graph reads. */
#include "runtime/onnx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/geometry.h"
#include "core/half.h"
#include "core/strmap.h"

enum { ONNX_OPSET = 13, ONNX_IR_VERSION = 7, ONNX_FLOAT = 1 };

/* onnx.proto's field numbers (wire type 2, length-delimited, for strings and messages). */
enum {
	MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_DOC = 6, MODEL_GRAPH = 7, MODEL_OPSET = 8,
	MODEL_METADATA = 14,
	OPSET_DOMAIN = 1, OPSET_VERSION = 2,
	ENTRY_KEY = 1, ENTRY_VALUE = 2,
	GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_DOC = 10, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
	NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5, NODE_DOC = 6,
	ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
	TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
	VALUE_NAME = 1, VALUE_TYPE = 2,
	TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2,
	SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2,
};
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS_TYPE = 7 };
enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* --- protobuf encoding --------------------------------------------------------------------- */

typedef struct {
	unsigned char *p;
	size_t n, cap;
	bool oom;
} Buf;

static void
put_raw(Buf *b, const void *src, size_t n)
{
	if (b->oom || !n)
		return;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		unsigned char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void
put_varint(Buf *b, uint64_t v)
{
	unsigned char t[10];
	int k = 0;
	do {
		t[k] = (unsigned char)(v & 0x7f);
		v >>= 7;
		t[k++] |= v ? 0x80 : 0;
	} while (v);
	put_raw(b, t, (size_t)k);
}

static void
put_key(Buf *b, int field, int wire)
{
	put_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

/* int64 and int32 fields alike: a negative value is its 64-bit two's complement (10 bytes). */
static void
put_int(Buf *b, int field, int64_t v)
{
	put_key(b, field, WIRE_VARINT);
	put_varint(b, (uint64_t)v);
}

static void
put_bytes(Buf *b, int field, const void *p, size_t n)
{
	put_key(b, field, WIRE_LEN);
	put_varint(b, n);
	put_raw(b, p, n);
}

static void
put_str(Buf *b, int field, const char *s)
{
	put_bytes(b, field, s, strlen(s));
}

/* Little-endian IEEE single, whatever the host's byte order. */
static void
le_f32(unsigned char *dst, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	for (int k = 0; k < 4; k++)
		dst[k] = (unsigned char)(u >> (8 * k));
}

static void
put_f32(Buf *b, int field, float f)
{
	unsigned char t[4];
	le_f32(t, f);
	put_key(b, field, WIRE_FIXED32);
	put_raw(b, t, 4);
}

/* Appends message M as field FIELD of B and frees M. */
static void
put_msg(Buf *b, int field, Buf *m)
{
	b->oom |= m->oom;
	put_bytes(b, field, m->p, m->n);
	free(m->p);
	*m = (Buf){0};
}

/* --- the translation ----------------------------------------------------------------------- */

typedef struct {
	const Exec *e;
	const Plan *p;
	const PlanProgram *prog;
	Arena a;
	StrMap names;        /* every tensor name taken */
	StrMap consts;       /* constant's value (constant()) -> its tensor's name */
	const char **name;   /* per value: its tensor's name (NULL: not made yet) */
	int *root;           /* per value: the value whose tensor it is (relayouts, casts alias) */
	int *param;          /* per value: its index in the plan's parameters, or -1 */
	bool *written;       /* per value: its initializer is in `inits` */
	int *fold;           /* per value: the bn_fold_weight/bn_fold_bias step making it, or -1 */
	bool *need;          /* per value: the logits depend on it */
	Buf nodes, inits;
	const PlanStep *step; /* the step being translated (for node docs and messages) */
	const char *path;     /* the file asked for (messages) */
	char *err;
	size_t errlen;
	bool failed;
} Onnx;

static bool
fail(Onnx *o, const char *why)
{
	const PlanStep *s = o->step;
	if (o->failed)
		return false;
	if (s)
		snprintf(o->err, o->errlen, "%s: cannot export to ONNX: op %s%s%s%s at %s (step %d of the evaluation program) %s; "
		         "nothing written", o->path, nnc_ops[s->op].name, s->name[0] ? " '" : "", s->name, s->name[0] ? "'" : "",
			s->loc, (int)(s - o->prog->steps), why);
	else
		snprintf(o->err, o->errlen, "%s: cannot export model '%s' to ONNX: %s; nothing written", o->path, o->p->model, why);
	o->failed = true;
	return false;
}

/* The input normalization nnrun applies before the network, (pixel / 255 - mean) / std per
 * channel R, G, B (the recipe's normalize.mean and normalize.std), which the file's users must
 * repeat: read here only. */
static void
input_normalization(const Plan *p, double mean[3], double std[3])
{
	for (int c = 0; c < 3; c++) {
		mean[c] = p->recipe.norm_mean[c];
		std[c] = p->recipe.norm_std[c];
	}
}

static bool
taken(const Onnx *o, const char *n)
{
	return strmap_get(&o->names, n) != NULL;
}

static const char *
claim(Onnx *o, const char *n)
{
	strmap_put(&o->names, n, (void *)1);
	return n;
}

/* A new tensor name from BASE: BASE itself, else BASE_2, BASE_3, ... */
static const char *
fresh(Onnx *o, const char *base)
{
	if (!taken(o, base))
		return claim(o, arena_strdup(&o->a, base));
	for (int k = 2;; k++) {
		char *n = arena_printf(&o->a, "%s_%d", base, k);
		if (!taken(o, n))
			return claim(o, n);
	}
}

/* Appends initializer NAME of float32 elements V (N of them, dims DIMS[RANK]). */
static void
initializer(Onnx *o, const char *name, int rank, const int64_t *dims, const float *v, size_t n)
{
	Buf h = {0}; /* the TensorProto up to its data, which goes straight into `inits` */
	for (int k = 0; k < rank; k++)
		put_int(&h, TENSOR_DIMS, dims[k]);
	put_int(&h, TENSOR_DATA_TYPE, ONNX_FLOAT);
	put_str(&h, TENSOR_NAME, name);
	put_key(&h, TENSOR_RAW_DATA, WIRE_LEN);
	put_varint(&h, 4 * (uint64_t)n);
	put_key(&o->inits, GRAPH_INITIALIZER, WIRE_LEN);
	put_varint(&o->inits, h.n + 4 * (uint64_t)n);
	o->inits.oom |= h.oom;
	put_raw(&o->inits, h.p, h.n);
	free(h.p);
	unsigned char q[4 * 256];
	for (size_t i = 0; i < n; i += 256) {
		size_t m = n - i < 256 ? n - i : 256;
		for (size_t j = 0; j < m; j++)
			le_f32(q + 4 * j, v[i + j]);
		put_raw(&o->inits, q, 4 * m);
	}
}

/* Parameter value V as float32 in PyTorch's layout (OIHW), as its initializer. */
static bool
param_initializer(Onnx *o, int v)
{
	const Type *ty = &o->p->values[v];
	size_t n = (size_t)type_numel(ty);
	void *torch = malloc(n * dtype_size(ty->dtype) + 1);
	float *f = ty->dtype == DT_F16 ? malloc(n * sizeof *f + 1) : torch;
	if (!torch || !f) {
		free(torch);
		if (f != torch)
			free(f);
		return fail(o, "(out of memory for the weights)");
	}
	exec_copy_torch(ty, exec_f32(o->e, v), torch, true);
	if (ty->dtype == DT_F16)
		half_to_float_n(torch, f, n);
	initializer(o, o->name[v], ty->rank, ty->dim, f, n);
	if (f != torch)
		free(f);
	free(torch);
	o->written[v] = true;
	return true;
}

/* The tensor name of value V as a node's operand (its parameter's initializer written first). */
static const char *
ref(Onnx *o, int v)
{
	v = o->root[v];
	if (o->fold[v] >= 0) {
		fail(o, "reads a folded batch norm other than as a convolution's or dense layer's weight or bias");
		return "";
	}
	if (o->param[v] >= 0 && !o->written[v] && !param_initializer(o, v))
		return "";
	if (!o->name[v]) {
		fail(o, "reads a value that no exported step makes");
		return "";
	}
	return o->name[v];
}

/* A float32 constant: a scalar (N == 0) or N copies of X, named by its value and made once. */
static const char *
constant(Onnx *o, float x, int64_t n)
{
	char *key = n ? arena_printf(&o->a, "%.9g x%lld", (double)x, (long long)n) : arena_printf(&o->a, "%.9g", (double)x);
	const char *name = strmap_get(&o->consts, key);
	if (name)
		return name;
	name = fresh(o, n ? arena_printf(&o->a, "nnc.const.%.9g.x%lld", (double)x, (long long)n)
			  : arena_printf(&o->a, "nnc.const.%.9g", (double)x));
	strmap_put(&o->consts, key, (void *)name);
	float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
	if (!v) {
		fail(o, "(out of memory)");
		return name;
	}
	for (int64_t i = 0; i < (n ? n : 1); i++)
		v[i] = x;
	initializer(o, name, n ? 1 : 0, &n, v, (size_t)(n ? n : 1));
	free(v);
	return name;
}

static void
attr_int(Buf *b, const char *name, int64_t v)
{
	Buf a = {0};
	put_str(&a, ATTR_NAME, name);
	put_int(&a, ATTR_TYPE, ATTR_INT);
	put_int(&a, ATTR_I, v);
	put_msg(b, NODE_ATTRIBUTE, &a);
}

static void
attr_ints(Buf *b, const char *name, const int64_t *v, int n)
{
	Buf a = {0};
	put_str(&a, ATTR_NAME, name);
	put_int(&a, ATTR_TYPE, ATTR_INTS_TYPE);
	for (int k = 0; k < n; k++)
		put_int(&a, ATTR_INTS, v[k]);
	put_msg(b, NODE_ATTRIBUTE, &a);
}

static void
attr_float(Buf *b, const char *name, double v)
{
	Buf a = {0};
	put_str(&a, ATTR_NAME, name);
	put_int(&a, ATTR_TYPE, ATTR_FLOAT);
	put_f32(&a, ATTR_F, (float)v);
	put_msg(b, NODE_ATTRIBUTE, &a);
}

/* One node OP_TYPE reading IN[NIN], writing OUT (also its name), with the encoded attributes
 * ATTRS (freed); its doc string names the nnc step it comes from. */
static void
node(Onnx *o, const char *op_type, const char *const *in, int nin, const char *out, Buf *attrs)
{
	Buf n = {0};
	for (int k = 0; k < nin; k++)
		put_str(&n, NODE_INPUT, in[k]);
	put_str(&n, NODE_OUTPUT, out);
	put_str(&n, NODE_NAME, out);
	put_str(&n, NODE_OP_TYPE, op_type);
	if (attrs) {
		n.oom |= attrs->oom;
		put_raw(&n, attrs->p, attrs->n);
		free(attrs->p);
		*attrs = (Buf){0};
	}
	const PlanStep *s = o->step;
	char doc[512];
	snprintf(doc, sizeof doc, "nnc %s%s%s at %s", nnc_ops[s->op].name, s->name[0] ? " " : "", s->name, s->loc);
	put_str(&n, NODE_DOC, doc);
	put_msg(&o->nodes, GRAPH_NODE, &n);
}

static void
node1(Onnx *o, const char *op_type, const char *x, const char *out)
{
	node(o, op_type, &x, 1, out, NULL);
}

static void
node2(Onnx *o, const char *op_type, const char *x, const char *y, const char *out)
{
	const char *in[2] = {x, y};
	node(o, op_type, in, 2, out, NULL);
}

/* Activation OP (an nnc elementwise op of one operand) of X into OUT. */
static bool
activation(Onnx *o, Op op, const char *x, const char *out)
{
	switch (op) {
	case OP_relu:
		node1(o, "Relu", x, out);
		return true;
	case OP_tanh:
		node1(o, "Tanh", x, out);
		return true;
	case OP_relu6: {
		const char *in[3] = {x, constant(o, 0, 0), constant(o, 6, 0)};
		node(o, "Clip", in, 3, out, NULL);
		return true;
	}
	case OP_gelu: { /* x * 0.5 * (1 + erf(x / sqrt(2))), runtime/ew.h's formula */
		const char *t = fresh(o, arena_printf(&o->a, "%s/gelu.scaled", out));
		node2(o, "Mul", x, constant(o, 0.70710678118654752f, 0), t);
		const char *e = fresh(o, arena_printf(&o->a, "%s/gelu.erf", out));
		node1(o, "Erf", t, e);
		const char *e1 = fresh(o, arena_printf(&o->a, "%s/gelu.erf1", out));
		node2(o, "Add", e, constant(o, 1, 0), e1);
		const char *h = fresh(o, arena_printf(&o->a, "%s/gelu.half", out));
		node2(o, "Mul", x, constant(o, 0.5f, 0), h);
		node2(o, "Mul", h, e1, out);
		return true;
	}
	default:
		return fail(o, "has no ONNX form in this exporter");
	}
}

/* Elementwise op OP of IN (its arity's worth) into OUT: an activation, add or mulv. */
static bool
elementwise(Onnx *o, Op op, const char *const *in, const char *out)
{
	if (op == OP_add || op == OP_mulv) {
		node2(o, op == OP_add ? "Add" : "Mul", in[0], in[1], out);
		return true;
	}
	if (nnc_ops[op].min_in != 1)
		return fail(o, "has no ONNX form in this exporter");
	return activation(o, op, in[0], out);
}

static const AttrVal *
attr(const PlanStep *s, const char *name)
{
	return &s->attr[nnc_attr_index(s->op, name)];
}

/* BatchNormalization of X into OUT with the running statistics MEAN, VAR and the affine SCALE,
 * SHIFT (values, -1 without affine: ones and zeros) of C channels. */
static bool
batchnorm(Onnx *o, const char *x, int scale, int shift, int mean, int var, double eps, int64_t c, const char *out)
{
	const char *in[5] = {x, scale >= 0 ? ref(o, scale) : constant(o, 1, c), shift >= 0 ? ref(o, shift) : constant(o, 0, c),
		ref(o, mean), ref(o, var)};
	Buf at = {0};
	attr_float(&at, "epsilon", eps);
	node(o, "BatchNormalization", in, 5, out, &at);
	return !o->failed;
}

/* conv2d or dense: X (a name) times weight operand W plus bias operand B (-1: none), with the
 * batch norm folded into them (bn_fold_weight, bn_fold_bias) expanded back, then the epilogue. */
static bool
layer(Onnx *o, const char *x, int w, int b, const char *out)
{
	const PlanStep *s = o->step;
	const int *r = o->root; /* a fold's result may reach the layer through a cast (mixed precision) */
	const PlanStep *fw = o->fold[r[w]] >= 0 ? &o->prog->steps[o->fold[r[w]]] : NULL;
	const PlanStep *fb = b >= 0 && o->fold[r[b]] >= 0 ? &o->prog->steps[o->fold[r[b]]] : NULL;
	bool affine = fb && attr(fb, "affine")->i[0];
	if ((fw || fb) && !(fw && fb && fw->op == OP_bn_fold_weight && fb->op == OP_bn_fold_bias &&
	                       r[fw->in[1]] == r[fb->in[1]] && attr(fw, "eps")->f == attr(fb, "eps")->f &&
	                       (fw->nin > 2) == affine && (!affine || r[fw->in[2]] == r[fb->in[2]])))
		return fail(o, "has a folded batch norm whose weight and bias folds do not match");
	int w0 = fw ? fw->in[0] : w;
	int b0 = fw ? (attr(fb, "bias")->i[0] ? fb->in[2 + 2 * affine] : -1) : b;
	const char *in[3] = {x, ref(o, w0), b0 >= 0 ? ref(o, b0) : ""};
	if (o->failed)
		return false;
	int64_t c = o->p->values[w0].dim[0];
	const char *y = fw || s->epi ? fresh(o, s->name[0] ? s->name : nnc_ops[s->op].name) : out;
	Buf at = {0};
	if (s->op == OP_conv2d) {
		const AttrVal *k = attr(s, "kernel"), *st = attr(s, "stride"), *pd = attr(s, "padding");
		int64_t pads[4] = {pd->i[0], pd->i[1], pd->i[0], pd->i[1]};
		attr_ints(&at, "kernel_shape", k->i, 2);
		attr_ints(&at, "strides", st->i, 2);
		attr_ints(&at, "pads", pads, 4);
		attr_int(&at, "group", attr(s, "groups")->i[0]);
		node(o, "Conv", in, b0 >= 0 ? 3 : 2, y, &at);
	} else {
		attr_int(&at, "transB", 1);
		node(o, "Gemm", in, b0 >= 0 ? 3 : 2, y, &at);
	}
	if (fw) {
		const PlanStep *mine = o->step;
		o->step = fb;
		const char *z = s->epi ? fresh(o, fb->name[0] ? fb->name : "batchnorm") : out;
		bool ok = batchnorm(o, y, affine ? fb->in[2] : -1, affine ? fb->in[3] : -1, fb->in[0], fb->in[1],
			attr(fb, "eps")->f, c, z);
		o->step = mine;
		if (!ok)
			return false;
		y = z;
	}
	return !s->epi || activation(o, nnc_epilogue_op[s->epi], y, out);
}

/* Pooling of X into OUT: MaxPool or AveragePool (padding counted, as nnc's kernels do). */
static void
pool(Onnx *o, const char *x, const char *out)
{
	const PlanStep *s = o->step;
	const AttrVal *k = attr(s, "kernel"), *st = attr(s, "stride"), *pd = attr(s, "padding");
	int64_t strides[2] = {nnc_pool_stride(st->i, k->i, 0), nnc_pool_stride(st->i, k->i, 1)};
	int64_t pads[4] = {pd->i[0], pd->i[1], pd->i[0], pd->i[1]};
	Buf at = {0};
	attr_ints(&at, "kernel_shape", k->i, 2);
	attr_ints(&at, "strides", strides, 2);
	attr_ints(&at, "pads", pads, 4);
	if (s->op == OP_avgpool)
		attr_int(&at, "count_include_pad", 1);
	node(o, s->op == OP_maxpool ? "MaxPool" : "AveragePool", &x, 1, out, &at);
}

static bool
translate(Onnx *o, int i)
{
	const PlanStep *s = &o->prog->steps[i];
	o->step = s;
	if (s->out < 0 || !o->need[s->out])
		return true;
	if (s->pro != EPI_NONE)
		return fail(o, "has no ONNX form in this exporter (a backward prologue)");
	if (o->p->values[s->out].dtype == DT_I32)
		return fail(o, "makes integers, which the exported logits cannot depend on");
	if (s->op == OP_bn_fold_weight || s->op == OP_bn_fold_bias) {
		o->fold[s->out] = i;
		return true;
	}
	if (s->op == OP_relayout || s->op == OP_cast || s->op == OP_dropout) {
		if (s->out != o->prog->logits) {
			o->root[s->out] = o->root[s->in[0]];
			return true;
		}
		node1(o, "Identity", ref(o, s->in[0]), "logits");
		o->name[s->out] = "logits";
		return !o->failed;
	}
	/* the result is named after the last node that makes it: a folded batch norm's, an epilogue's */
	const char *name = s->name[0] ? s->name : nnc_ops[s->op].name, *base = name;
	int nchained = nnc_chain_operands(s->chain, s->nchain);
	int w = s->op != OP_conv2d && s->op != OP_dense ? -1 : s->nchain ? s->in[nchained] : s->in[1];
	if (w >= 0 && o->fold[o->root[w]] >= 0 && o->prog->steps[o->fold[o->root[w]]].name[0])
		base = o->prog->steps[o->fold[o->root[w]]].name;
	if (s->epi)
		base = arena_printf(&o->a, "%s/%s", base, nnc_ops[nnc_epilogue_op[s->epi]].name);
	const char *out = s->out == o->prog->logits ? "logits" : fresh(o, base);
	o->name[s->out] = out;
	/* the chain's ops first, each feeding the next (core/ops.h: nnc_chain_operands) */
	int at = 0;
	const char *prev = NULL;
	for (int c = 0; c < s->nchain; c++) {
		Op op = s->chain[c];
		int n = nnc_ops[op].min_in;
		const char *in[2];
		int k = 0;
		if (prev)
			in[k++] = prev;
		while (k < n && k < 2)
			in[k++] = ref(o, s->in[at++]);
		prev = fresh(o, arena_printf(&o->a, "%s/%s", name, nnc_ops[op].name));
		if (o->failed || !elementwise(o, op, in, prev))
			return false;
	}
	/* the step's own operands: the chain's result, then the rest */
	int own[NNC_MAXARGS], nown = 0;
	if (prev)
		own[nown++] = -1;
	while (at < s->nin && nown < NNC_MAXARGS)
		own[nown++] = s->in[at++];
	if (!nown)
		return fail(o, "has no operands");
	const char *x = prev ? prev : ref(o, own[0]);
	if (o->failed)
		return false;
	const char *y = s->epi && s->op != OP_conv2d && s->op != OP_dense ? fresh(o, name) : out;
	Buf a = {0};
	switch (s->op) {
	case OP_conv2d:
	case OP_dense:
		return layer(o, x, own[1], nown > 2 ? own[2] : -1, out);
	case OP_batchnorm: {
		bool affine = attr(s, "affine")->i[0];
		int r = affine ? 3 : 1;
		if (!batchnorm(o, x, affine ? own[1] : -1, affine ? own[2] : -1, own[r], own[r + 1], attr(s, "eps")->f,
			    o->p->values[s->out].dim[1], y))
			return false;
		break;
	}
	case OP_add:
	case OP_mulv:
	case OP_relu:
	case OP_relu6:
	case OP_gelu:
	case OP_tanh: {
		const char *in[2] = {x, nown > 1 ? ref(o, own[1]) : ""};
		if (o->failed || !elementwise(o, s->op, in, y))
			return false;
		break;
	}
	case OP_maxpool:
	case OP_avgpool:
		pool(o, x, y);
		break;
	case OP_global_avgpool: {
		const char *g = fresh(o, arena_printf(&o->a, "%s/pooled", name));
		node1(o, "GlobalAveragePool", x, g);
		attr_int(&a, "axis", 1);
		node(o, "Flatten", &g, 1, y, &a);
		break;
	}
	case OP_flatten:
		attr_int(&a, "axis", 1);
		node(o, "Flatten", &x, 1, y, &a);
		break;
	case OP_concat: {
		const char *in[NNC_MAXARGS];
		in[0] = x;
		for (int k = 1; k < nown; k++)
			in[k] = ref(o, own[k]);
		int64_t axis = attr(s, "axis")->i[0];
		attr_int(&a, "axis", axis < 0 ? axis + o->p->values[s->out].rank : axis);
		node(o, "Concat", in, nown, y, &a);
		break;
	}
	case OP_mul:
		node2(o, "Mul", x, constant(o, (float)attr(s, "scale")->f, 0), y);
		break;
	case OP_softmax:
		attr_int(&a, "axis", 1);
		node(o, "Softmax", &x, 1, y, &a);
		break;
	default:
		return fail(o, "has no ONNX form in this exporter (it is not an inference op)");
	}
	if (o->failed)
		return false;
	return !s->epi || activation(o, nnc_epilogue_op[s->epi], y, out);
}

/* A graph input or output NAME of float32 type T, its first dimension the symbolic batch N. */
static void
value_info(Buf *g, int field, const char *name, const Type *t)
{
	Buf shape = {0}, tt = {0}, ty = {0}, vi = {0};
	for (int k = 0; k < t->rank; k++) {
		Buf d = {0};
		if (k == 0)
			put_str(&d, DIM_PARAM, "N");
		else
			put_int(&d, DIM_VALUE, t->dim[k]);
		put_msg(&shape, SHAPE_DIM, &d);
	}
	put_int(&tt, TENSOR_TYPE_ELEM, ONNX_FLOAT);
	put_msg(&tt, TENSOR_TYPE_SHAPE, &shape);
	put_msg(&ty, TYPE_TENSOR, &tt);
	put_str(&vi, VALUE_NAME, name);
	put_msg(&vi, VALUE_TYPE, &ty);
	put_msg(g, field, &vi);
}

static void
metadata(Buf *m, const char *key, const char *value)
{
	Buf e = {0};
	put_str(&e, ENTRY_KEY, key);
	put_str(&e, ENTRY_VALUE, value);
	put_msg(m, MODEL_METADATA, &e);
}

/* Writes the N pieces P, one after the other, to PATH through PATH.tmp and a rename. */
static bool
write_file(const char *path, Buf *const *p, int n, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "%s: error: the path is too long", path);
		return false;
	}
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		snprintf(err, errlen, "%s: error: cannot write: %s", tmp, strerror(errno));
		return false;
	}
	bool ok = true;
	for (int k = 0; ok && k < n; k++)
		ok = fwrite(p[k]->p, 1, p[k]->n, f) == p[k]->n;
	int e = errno;
	if (fclose(f) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (ok && rename(tmp, path) != 0) {
		ok = false;
		e = errno;
	}
	if (!ok) {
		remove(tmp);
		snprintf(err, errlen, "%s: error: cannot write: %s", path, strerror(e));
	}
	return ok;
}

bool
onnx_export(const Exec *e, const char *path, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	const PlanProgram *prog = &p->eval;
	Onnx o = {.e = e, .p = p, .prog = prog, .err = err, .errlen = errlen, .path = path};
	strmap_init(&o.names, &o.a);
	strmap_init(&o.consts, &o.a);
	size_t nv = (size_t)p->nvalues;
	o.name = arena_alloc(&o.a, nv * sizeof *o.name);
	o.root = arena_alloc(&o.a, nv * sizeof *o.root);
	o.param = arena_alloc(&o.a, nv * sizeof *o.param);
	o.written = arena_alloc(&o.a, nv * sizeof *o.written);
	o.fold = arena_alloc(&o.a, nv * sizeof *o.fold);
	o.need = arena_alloc(&o.a, nv * sizeof *o.need);
	bool ok = false;
	if (!o.name || !o.root || !o.param || !o.written || !o.fold || !o.need) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	int image = p->inputs[0].value;
	if (prog->logits < 0 || image < 0 || p->values[image].rank != 4 || p->values[prog->logits].rank != 2) {
		fail(&o, "it needs an image input [N, C, H, W] and logits [N, classes]");
		goto out;
	}
	for (size_t v = 0; v < nv; v++) {
		o.root[v] = (int)v;
		o.param[v] = o.fold[v] = -1;
	}
	claim(&o, "input");
	claim(&o, "logits");
	o.name[image] = "input";
	for (int i = 0; i < p->nparams; i++) {
		o.param[p->params[i].value] = i;
		o.name[p->params[i].value] = claim(&o, p->params[i].name);
	}
	o.need[prog->logits] = true;
	for (int i = prog->nsteps - 1; i >= 0; i--) {
		const PlanStep *s = &prog->steps[i];
		for (int k = 0; s->out >= 0 && o.need[s->out] && k < s->nin; k++)
			o.need[s->in[k]] = true;
	}
	for (int i = 0; i < prog->nsteps; i++)
		if (!translate(&o, i))
			goto out;
	if (!o.name[o.root[prog->logits]] || strcmp(o.name[o.root[prog->logits]], "logits") != 0) {
		o.step = NULL;
		fail(&o, "no step makes the logits");
		goto out;
	}

	char doc[1024], mean[96], std[96];
	double mu[3], sd[3];
	input_normalization(p, mu, sd);
	snprintf(mean, sizeof mean, "%.6g,%.6g,%.6g", mu[0], mu[1], mu[2]);
	snprintf(std, sizeof std, "%.6g,%.6g,%.6g", sd[0], sd[1], sd[2]);
	bool f16 = false;
	for (int i = 0; i < p->nparams; i++)
		f16 |= o.written[p->params[i].value] && p->values[p->params[i].value].dtype == DT_F16;
	snprintf(doc, sizeof doc,
		"Model '%s' (%s), exported by nnc from its plan's evaluation program: batch norm with running "
		"statistics, no dropout, no loss. input: the image as float32 [N, 3, H, W], RGB, each pixel "
		"(value / 255 - mean[c]) / std[c] with metadata nnc.normalize.mean and nnc.normalize.std; output: "
		"logits [N, classes].%s",
		p->model, p->source, f16 ? " The plan stores fp16 weights: they are widened to float32 here." : "");
	/* The graph is its name, the nodes, the initializers, then the rest: written piece by
	 * piece after its length, so the weights are never copied into one model buffer. */
	Buf head = {0}, tail = {0}, pre = {0}, post = {0}, opset = {0};
	put_str(&head, GRAPH_NAME, p->model);
	value_info(&tail, GRAPH_INPUT, "input", &p->values[image]);
	value_info(&tail, GRAPH_OUTPUT, "logits", &p->values[prog->logits]);
	put_str(&tail, GRAPH_DOC, doc);
	put_str(&opset, OPSET_DOMAIN, "");
	put_int(&opset, OPSET_VERSION, ONNX_OPSET);
	put_int(&pre, MODEL_IR_VERSION, ONNX_IR_VERSION);
	put_msg(&pre, MODEL_OPSET, &opset);
	put_str(&pre, MODEL_PRODUCER_NAME, "nnc");
	put_str(&pre, MODEL_DOC, doc);
	put_key(&pre, MODEL_GRAPH, WIRE_LEN);
	put_varint(&pre, head.n + o.nodes.n + o.inits.n + tail.n);
	metadata(&post, "nnc.model", p->model);
	metadata(&post, "nnc.source", p->source);
	metadata(&post, "nnc.normalize.mean", mean);
	metadata(&post, "nnc.normalize.std", std);
	metadata(&post, "nnc.normalize", "RGB; (pixel / 255 - mean[c]) / std[c]");
	metadata(&post, "nnc.weights", f16 ? "fp16 in the plan, widened to float32" : "float32");
	Buf *const parts[6] = {&pre, &head, &o.nodes, &o.inits, &tail, &post};
	bool oom = false;
	for (int k = 0; k < 6; k++)
		oom |= parts[k]->oom;
	if (oom)
		snprintf(err, errlen, "out of memory for the ONNX model of '%s'", p->model);
	else
		ok = write_file(path, parts, 6, err, errlen);
	free(head.p);
	free(tail.p);
	free(pre.p);
	free(post.p);
out:
	free(o.nodes.p);
	free(o.inits.p);
	arena_free(&o.a);
	return ok;
}
