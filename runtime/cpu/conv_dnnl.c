/* f32 convolutions through oneDNN (conv_dnnl.h): Debian's libdnnl, the library PyTorch's CPU
 * convolutions run on. Each pass reorders its NCHW / OIHW operands into the blocked layouts
 * oneDNN's direct JIT kernels choose for this CPU (nChw16c activations on AVX-512), runs the
 * convolution there, and reorders its result back; docs/cpu.md has the measurements that made
 * this the CPU's convolution where it is faster (worth_it, below) and the case for keeping
 * activations blocked across layers next.
 *
 * A prepared pass (Prim) holds its convolution primitive, the reorders and memory objects
 * without data; running it points the memory objects into the caller's operands and
 * workspace: [blocked input(s) | blocked output | oneDNN scratchpad], each 64-byte aligned.
 * Prims live for the process, in one table keyed by shape, pass, bias and thread count; they
 * are made on the executor's thread only (prepare, at start-up), never while a step runs. */
#include "runtime/cpu/conv_dnnl.h"

#include <dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The operands of a pass, in oneDNN's terms: the activation (src or diff_src), the weights
 * (weights or diff_weights) and the result side (dst or diff_dst). */
enum { OP_X, OP_W, OP_Y, NOPERAND };

typedef struct {
	CpuConv cv;
	CpuConvPass pass;
	bool bias;
	int threads;
	dnnl_primitive_t conv;
	const char *impl;
	struct {
		bool reorder;             /* the chosen layout differs from the plain one */
		dnnl_memory_t plain, inner; /* the caller's array; the chosen layout (in the workspace) */
		dnnl_primitive_t to_inner, to_plain;
		size_t off;
	} op[NOPERAND];
	dnnl_memory_t bias_mem, scratch;
	size_t scratch_off, ws;
} Prim;

static Prim **prims;
static int nprims, cap;
static dnnl_engine_t engine;
static dnnl_stream_t stream;

static bool
same_key(const Prim *p, const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	const CpuConv *a = &p->cv;
	return p->pass == pass && p->bias == bias && p->threads == threads && a->n == cv->n && a->c == cv->c &&
	       a->h == cv->h && a->w == cv->w && a->k == cv->k && a->kh == cv->kh && a->kw == cv->kw && a->sh == cv->sh &&
	       a->sw == cv->sw && a->ph == cv->ph && a->pw == cv->pw && a->groups == cv->groups && a->nhwc == cv->nhwc;
}

static Prim *
find(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	for (int i = 0; i < nprims; i++)
		if (same_key(prims[i], cv, pass, bias, threads))
			return prims[i];
	return NULL;
}

static size_t
align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* The descriptors of CV: plain (nchw, oihw / goihw; or nhwc, ohwi / gohwi) when PLAIN, else
 * format "any" -- except NHWC activations, which stay NHWC: oneDNN's JIT kernels read and write
 * channels-last directly, so a channels-last plan (passes/layout.c) runs without the
 * activation reorders, only the filter's (small) ones. */
static bool
descs(const CpuConv *cv, bool plain, dnnl_memory_desc_t *x, dnnl_memory_desc_t *w, dnnl_memory_desc_t *y)
{
	dnnl_dims_t xd = {cv->n, cv->c, cv->h, cv->w}, yd = {cv->n, cv->k, cv->oh, cv->ow};
	dnnl_dims_t wd = {cv->k, cv->c / cv->groups, cv->kh, cv->kw};
	dnnl_dims_t gd = {cv->groups, cv->k / cv->groups, cv->c / cv->groups, cv->kh, cv->kw};
	bool g = cv->groups > 1;
	dnnl_format_tag_t act = cv->nhwc ? dnnl_nhwc : plain ? dnnl_nchw : dnnl_format_tag_any;
	dnnl_format_tag_t wt = !plain ? dnnl_format_tag_any
	                       : cv->nhwc ? (g ? dnnl_gohwi : dnnl_ohwi)
	                                  : (g ? dnnl_goihw : dnnl_oihw);
	return dnnl_memory_desc_init_by_tag(x, 4, xd, dnnl_f32, act) == dnnl_success &&
	       dnnl_memory_desc_init_by_tag(y, 4, yd, dnnl_f32, act) == dnnl_success &&
	       dnnl_memory_desc_init_by_tag(w, g ? 5 : 4, g ? gd : wd, dnnl_f32, wt) == dnnl_success;
}

static void
prim_free(Prim *p)
{
	dnnl_primitive_destroy(p->conv);
	for (int k = 0; k < NOPERAND; k++) {
		dnnl_memory_destroy(p->op[k].plain);
		dnnl_memory_destroy(p->op[k].inner);
		dnnl_primitive_destroy(p->op[k].to_inner);
		dnnl_primitive_destroy(p->op[k].to_plain);
	}
	dnnl_memory_destroy(p->bias_mem);
	dnnl_memory_destroy(p->scratch);
	free(p);
}

/* Operand K of P: the caller's layout PLAIN, the layout the convolution chose CHOSEN; makes the
 * memory objects, and the reorders between them when they differ, and places the blocked copy
 * in the workspace. */
static bool
operand(Prim *p, int k, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *chosen)
{
	if (dnnl_memory_create(&p->op[k].plain, plain, engine, DNNL_MEMORY_NONE) != dnnl_success)
		return false;
	p->op[k].reorder = !dnnl_memory_desc_equal(plain, chosen);
	if (!p->op[k].reorder)
		return true;
	dnnl_primitive_desc_t a = NULL, b = NULL;
	bool ok = dnnl_memory_create(&p->op[k].inner, chosen, engine, DNNL_MEMORY_NONE) == dnnl_success &&
	          dnnl_reorder_primitive_desc_create(&a, plain, engine, chosen, engine, NULL) == dnnl_success &&
	          dnnl_reorder_primitive_desc_create(&b, chosen, engine, plain, engine, NULL) == dnnl_success &&
	          dnnl_primitive_create(&p->op[k].to_inner, a) == dnnl_success &&
	          dnnl_primitive_create(&p->op[k].to_plain, b) == dnnl_success;
	dnnl_primitive_desc_destroy(a);
	dnnl_primitive_desc_destroy(b);
	p->op[k].off = p->ws;
	p->ws += align64(dnnl_memory_desc_get_size(chosen));
	return ok;
}

static const char *
impl_name(const char *s)
{
	/* impl_info_str points into the primitive descriptor, which make() destroys: keep a
	 * static name */
	static const char *const known[] = {"jit_1x1:avx512_core", "jit:avx512_core", "jit_dw:avx512_core",
		"jit_1x1:avx2", "jit:avx2", "jit_dw:avx2", "brgconv_1x1:avx512_core", "brgconv:avx512_core",
		"brgconv_1x1:avx2", "brgconv:avx2", "brgconv", "jit"};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strncmp(s, known[i], strlen(known[i])) == 0)
			return known[i];
	return "jit";
}

static Prim *
make(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	if ((!engine && dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) ||
	    (!stream && dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success))
		return NULL;
	Prim *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	*p = (Prim){.cv = *cv, .pass = pass, .bias = bias && pass == CPU_CONV_FORWARD, .threads = threads};
	omp_set_num_threads(threads);
	dnnl_memory_desc_t px, pw, py, ax, aw, ay, pb;
	dnnl_dims_t strides = {cv->sh, cv->sw}, pl = {cv->ph, cv->pw}, pr;
	dnnl_dims_t bd = {cv->k};
	/* right padding: what makes oneDNN's floor((h + pl + pr - kh) / sh) + 1 equal oh */
	pr[0] = (cv->oh - 1) * cv->sh + cv->kh - cv->h - cv->ph;
	pr[1] = (cv->ow - 1) * cv->sw + cv->kw - cv->w - cv->pw;
	pr[0] = pr[0] < 0 ? 0 : pr[0];
	pr[1] = pr[1] < 0 ? 0 : pr[1];
	dnnl_primitive_attr_t attr = NULL;
	dnnl_convolution_desc_t fd, d;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	bool ok = descs(cv, true, &px, &pw, &py) && descs(cv, false, &ax, &aw, &ay) &&
	          dnnl_memory_desc_init_by_tag(&pb, 1, bd, dnnl_f32, dnnl_x) == dnnl_success &&
	          dnnl_primitive_attr_create(&attr) == dnnl_success &&
	          dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
	          dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &ax, &aw,
		          p->bias ? &pb : NULL, &ay, strides, pl, pr) == dnnl_success &&
	          dnnl_primitive_desc_create(&fpd, &fd, pass == CPU_CONV_FORWARD ? attr : NULL, engine, NULL) == dnnl_success;
	if (ok && pass == CPU_CONV_FORWARD) {
		pd = fpd;
		fpd = NULL;
	} else if (ok && pass == CPU_CONV_BACKWARD_DATA) {
		ok = dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &ax, &aw, &ay, strides, pl, pr) ==
		             dnnl_success &&
		     dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd) == dnnl_success;
	} else if (ok) {
		ok = dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &ax, &aw, NULL, &ay, strides, pl,
		             pr) == dnnl_success &&
		     dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd) == dnnl_success;
	}
	static const dnnl_query_t q[3][NOPERAND] = {
		[CPU_CONV_FORWARD] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
		[CPU_CONV_BACKWARD_DATA] = {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
		[CPU_CONV_BACKWARD_FILTER] = {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
	};
	const dnnl_memory_desc_t *plain[NOPERAND] = {&px, &pw, &py};
	for (int k = 0; ok && k < NOPERAND; k++)
		ok = operand(p, k, plain[k], dnnl_primitive_desc_query_md(pd, q[pass][k], 0));
	const dnnl_memory_desc_t *sp = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
	if (ok) {
		p->scratch_off = p->ws;
		p->ws += align64(sp ? dnnl_memory_desc_get_size(sp) : 0) + 64;
		const char *impl = NULL;
		ok = (!sp || dnnl_memory_create(&p->scratch, sp, engine, DNNL_MEMORY_NONE) == dnnl_success) &&
		     (!p->bias || dnnl_memory_create(&p->bias_mem, &pb, engine, DNNL_MEMORY_NONE) == dnnl_success) &&
		     dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
		     dnnl_primitive_create(&p->conv, pd) == dnnl_success;
		/* the reference and gemm-based implementations are slower than the im2col kernels; the
		 * JIT ones are "jit..." and, for NHWC forward passes, the brgemm-based "brgconv..." */
		ok = ok && impl && (strncmp(impl, "jit", 3) == 0 || strncmp(impl, "brgconv", 7) == 0);
		p->impl = ok ? impl_name(impl) : NULL;
	}
	dnnl_primitive_desc_destroy(fpd);
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	if (!ok) {
		prim_free(p);
		return NULL;
	}
	return p;
}

/* Whether oneDNN is worth its reorders for CV. Measured per pass on ResNet and MobileNet-V2
 * shapes (bench/cpu_conv.sh, bench/results/cpu-conv-2026-12-04.md): 1.8-2.2x the im2col
 * kernels' speed for 3x3 convolutions of 16 or more input channels, 4x for depthwise ones,
 * 2.9x for a 1x1 over 160 channels; but 0.6-0.7x for 1x1 convolutions over 16-96 channels,
 * whose little arithmetic does not pay for the reorders, and about even for the 3-channel
 * input layer. A fixed rule by shape, not a timing at start-up, so that which kernel runs (and
 * so every result) does not vary from run to run. */
static bool
worth_it(const CpuConv *cv)
{
	int per_group = cv->c / cv->groups;
	if (cv->nhwc) /* no activation reorders to pay for; the alternative transposes */
		return true;
	if (cv->kh * cv->kw == 1)
		return per_group >= 128;
	return per_group >= 16 || (cv->groups == cv->c && cv->groups == cv->k);
}

size_t
cpu_dnnl_conv_prepare(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	const char *env = getenv("NNC_CPU_CONV"); /* im2col: never; dnnl: every shape it has a kernel for */
	bool always = env && strcmp(env, "dnnl") == 0;
	if ((env && strcmp(env, "im2col") == 0) || threads < 1 || (!always && !worth_it(cv)))
		return 0;
	bias = bias && pass == CPU_CONV_FORWARD;
	Prim *p = find(cv, pass, bias, threads);
	if (p)
		return p->ws;
	if (nprims == cap) {
		int n = cap ? 2 * cap : 64;
		Prim **grown = realloc(prims, (size_t)n * sizeof *grown);
		if (!grown)
			return 0;
		prims = grown;
		cap = n;
	}
	p = make(cv, pass, bias, threads);
	if (!p)
		return 0;
	prims[nprims++] = p;
	return p->ws;
}

bool
cpu_dnnl_conv_ready(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	return find(cv, pass, bias && pass == CPU_CONV_FORWARD, threads) != NULL;
}

const char *
cpu_dnnl_conv_impl(const CpuConv *cv, CpuConvPass pass, bool bias, int threads)
{
	Prim *p = find(cv, pass, bias && pass == CPU_CONV_FORWARD, threads);
	return p ? p->impl : NULL;
}

/* Runs P on the caller's arrays PTR (x, w, y in the pass's roles; IN says which it reads). */
static int
run(Prim *p, void *const ptr[NOPERAND], const bool in[NOPERAND], const float *bias, void *ws, size_t ws_bytes)
{
	if (!p || ws_bytes < p->ws)
		return -1;
	char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
	if ((size_t)(base - (char *)ws) + p->ws - 64 > ws_bytes)
		return -1;
	omp_set_num_threads(p->threads);
	static const int arg[3][NOPERAND] = {
		[CPU_CONV_FORWARD] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
		[CPU_CONV_BACKWARD_DATA] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
		[CPU_CONV_BACKWARD_FILTER] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
	};
	dnnl_exec_arg_t args[NOPERAND + 2];
	int nargs = 0;
	bool ok = true;
	for (int k = 0; k < NOPERAND && ok; k++) {
		ok = dnnl_memory_set_data_handle(p->op[k].plain, ptr[k]) == dnnl_success;
		dnnl_memory_t m = p->op[k].plain;
		if (ok && p->op[k].reorder) {
			m = p->op[k].inner;
			ok = dnnl_memory_set_data_handle(m, base + p->op[k].off) == dnnl_success;
			dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, p->op[k].plain}, {DNNL_ARG_TO, m}};
			if (ok && in[k])
				ok = dnnl_primitive_execute(p->op[k].to_inner, stream, 2, r) == dnnl_success;
		}
		args[nargs++] = (dnnl_exec_arg_t){arg[p->pass][k], m};
	}
	if (ok && p->scratch) {
		ok = dnnl_memory_set_data_handle(p->scratch, base + p->scratch_off) == dnnl_success;
		args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
	}
	if (ok && p->bias) {
		ok = dnnl_memory_set_data_handle(p->bias_mem, (void *)bias) == dnnl_success;
		args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias_mem};
	}
	ok = ok && dnnl_primitive_execute(p->conv, stream, nargs, args) == dnnl_success;
	for (int k = 0; k < NOPERAND && ok; k++)
		if (!in[k] && p->op[k].reorder) {
			dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, p->op[k].inner}, {DNNL_ARG_TO, p->op[k].plain}};
			ok = dnnl_primitive_execute(p->op[k].to_plain, stream, 2, r) == dnnl_success;
		}
	return ok && dnnl_stream_wait(stream) == dnnl_success ? 0 : -1;
}

int
cpu_dnnl_conv_forward(const CpuConv *cv, const float *x, const float *w, const float *b, float *y, void *ws,
	size_t ws_bytes, Epilogue act, int threads)
{
	void *ptr[NOPERAND] = {(void *)x, (void *)w, y};
	static const bool in[NOPERAND] = {true, true, false};
	if (run(find(cv, CPU_CONV_FORWARD, b != NULL, threads), ptr, in, b, ws, ws_bytes) != 0)
		return -1;
	cpu_act_f32(y, (size_t)cv->n * cv->k * cv->oh * cv->ow, act);
	return 0;
}

int
cpu_dnnl_conv_backward_data(const CpuConv *cv, const float *dy, const float *w, float *dx, void *ws,
	size_t ws_bytes, int threads)
{
	void *ptr[NOPERAND] = {dx, (void *)w, (void *)dy};
	static const bool in[NOPERAND] = {false, true, true};
	return run(find(cv, CPU_CONV_BACKWARD_DATA, false, threads), ptr, in, NULL, ws, ws_bytes);
}

int
cpu_dnnl_conv_backward_filter(const CpuConv *cv, const float *x, const float *dy, float *dw, void *ws,
	size_t ws_bytes, int threads)
{
	void *ptr[NOPERAND] = {(void *)x, dw, (void *)dy};
	static const bool in[NOPERAND] = {true, false, true};
	return run(find(cv, CPU_CONV_BACKWARD_FILTER, false, threads), ptr, in, NULL, ws, ws_bytes);
}
