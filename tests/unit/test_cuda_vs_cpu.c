/* The CUDA backend against the CPU backend (CTest label `cuda`; exits 77, skipped, without a
 * usable GPU). For each plan given on the command line:
 *
 *  1. Step by step: both backends start from the same parameters and the same random batch
 *     (images uniform in [-2, 2], random labels), the GPU's activation arena poisoned with NaN
 *     bytes first so a result a kernel fails to write shows. Each step of the training program
 *     (a backward group as one unit), then of the evaluation program, runs on both; every value
 *     it writes (its result, and the operands an update or a running-statistics step writes) is
 *     compared, and the CPU's values are then copied to the GPU, so each step is checked on
 *     exactly the CPU's inputs and errors do not compound. Every op in every dtype a plan uses
 *     is covered this way: the CMake test runs plans of every model in fp32, fp16 and mixed.
 *  2. A whole step: both backends run the training program from the same state without copying;
 *     the losses must agree (errors compound through the network here, so the bound is loose).
 *  3. Determinism: with --deterministic, two runs of the training program from the same state
 *     leave bit-identical parameters.
 *  4. The training program run one step (or backward group) at a time, so that every update
 *     and grad_check launches on its own, leaves the same parameters, bit for bit, as one run,
 *     where consecutive updates and each grad_check's operands are multi-tensor launches.
 *
 * Tolerances (documented in docs/cuda.md; the rule is tests/unit/agreement.h, which the CPU-only
 * test_agreement checks): a step that sums nothing agrees element by element within 8 fp32 ulps
 * or one fp16 rounding; a step that sums, within 1e-4 (fp32) or 1e-2 (fp16) of the tensor's
 * largest |cpu|, and each element within 2e-3 or 2e-2 of its own |cpu|, at least a tenth of the
 * largest. Inf of one sign on both sides passes
 * (overflow); NaN on both sides only where the step's operands already hold non-finite values.
 * One exception, checked element by element: where an fp16 convolution's exact result (in double,
 * from the same operands) is beyond fp16's range, the CPU's +-inf is right and cuDNN returns a
 * finite value; such elements are reported as a NOTE (fp16_overflow), not failed.
 * When the step-by-step run (4) differs from one run, the first step whose results differ is
 * named (locate_split_difference); an Inf/NaN mismatch in a convolution prints the exact value
 * and the cuDNN algorithm.
 * With NNC_CUDA_DIRECT_CONV set, every convolution runs through nnc's direct kernels (cuDNN's
 * fallback) instead of cuDNN; with NNC_CUDA_FWD_ALGO=K, every forward convolution uses cuDNN's
 * forward algorithm K where cuDNN offers it (1: implicit_precomp_gemm).
 *   test_cuda_vs_cpu PLAN... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec.h"
#include "tests/unit/agreement.h"
#include "tests/unit/gpu_probe.h"
#include "tests/unit/plan_arg.h"
#include "core/half.h"

static int failures, checks, notes;

static double
value_at(const Plan *p, const void *base, int v, size_t i)
{
	if (p->values[v].dtype == DT_F16)
		return half_to_float(((const nnc_half *)base)[i]);
	if (p->values[v].dtype == DT_I32)
		return ((const int32_t *)base)[i];
	return ((const float *)base)[i];
}

/* Element E of convolution step S's result (before its epilogue) in double from the CPU's
 * operands, which the GPU was given too: the arbiter when one side overflows and the other does
 * not. */
static double
conv_exact(const Plan *p, Exec *cpu, const PlanStep *s, size_t e)
{
	const Type *xt = &p->values[s->in[0]], *yt = &p->values[s->out];
	const int64_t *k = s->attr[nnc_attr_index(OP_conv2d, "kernel")].i, *st = s->attr[nnc_attr_index(OP_conv2d, "stride")].i,
		      *pad = s->attr[nnc_attr_index(OP_conv2d, "padding")].i;
	int64_t groups = s->attr[nnc_attr_index(OP_conv2d, "groups")].i[0];
	int64_t C = xt->dim[1], H = xt->dim[2], W = xt->dim[3], O = yt->dim[1], OH = yt->dim[2], OW = yt->dim[3];
	int64_t ox = (int64_t)e % OW, oy = (int64_t)e / OW % OH, oc = (int64_t)e / (OW * OH) % O, n = (int64_t)e / (OW * OH * O);
	int64_t cg = C / groups, g = oc / (O / groups);
	const void *x = exec_f32(cpu, s->in[0]), *w = exec_f32(cpu, s->in[1]);
	double sum = 0;
	for (int64_t c = 0; c < cg; c++)
		for (int64_t ky = 0; ky < k[0]; ky++)
			for (int64_t kx = 0; kx < k[1]; kx++) {
				int64_t iy = oy * st[0] - pad[0] + ky, ix = ox * st[1] - pad[1] + kx;
				if (iy < 0 || ix < 0 || iy >= H || ix >= W)
					continue;
				sum += value_at(p, x, s->in[0], (size_t)(((n * C + g * cg + c) * H + iy) * W + ix)) *
				       value_at(p, w, s->in[1], (size_t)(((oc * cg + c) * k[0] + ky) * k[1] + kx));
			}
	if (s->attr[nnc_attr_index(OP_conv2d, "bias")].i[0])
		sum += value_at(p, exec_f32(cpu, s->in[2]), s->in[2], (size_t)oc);
	return sum;
}

/* Whether the CPU's operands of step S are all finite: NaN or Inf in a result is then the
 * step's own doing, and fails even where both backends produce it. */
static bool
operands_finite(const Plan *p, Exec *cpu, const PlanStep *s)
{
	for (int k = 0; k < s->nin; k++) {
		int v = s->in[k];
		if (p->values[v].dtype == DT_I32)
			continue;
		const void *base = exec_f32(cpu, v);
		for (size_t i = 0, n = (size_t)type_numel(&p->values[v]); i < n; i++)
			if (!isfinite(value_at(p, base, v, i)))
				return false;
	}
	return true;
}

/* Whether an Inf/NaN mismatch at element E of value V (GPU A, CPU B) is fp16 overflow the CPU
 * got right: V is an fp16 convolution's result, the CPU's value is +-inf or NaN, and the exact
 * value in double (*EXACT, from the same operands) is beyond fp16's range (it rounds to inf) or
 * not finite (an operand was). cuDNN's fp16 convolutions return finite values there (seen on an
 * H200 with cuDNN 9.19: exact -65820, GPU -0.0586; docs/cuda.md), so such elements are counted
 * and reported, not failed; any other Inf/NaN mismatch fails. */
static bool
fp16_overflow(const Plan *p, Exec *cpu, const PlanStep *s, int v, size_t e, double a, double b, double *exact)
{
	if (s->op != OP_conv2d || v != s->out || p->values[v].dtype != DT_F16 || isfinite(b) || !isfinite(a))
		return false;
	*exact = conv_exact(p, cpu, s, e);
	if (isnan(*exact))
		return isnan(b);
	return fabs(*exact) >= 65520.0 && b == copysign(INFINITY, *exact);
}

/* Whether step S sums many values into each result, so that the order of summation (cuDNN's,
 * cuBLAS's, a reduction's against the CPU's) moves its results: the op table's OPF_ACC, and
 * max-pooling's backward, which adds the gradients of overlapping windows. */
static bool
sums(const PlanStep *s)
{
	return (nnc_ops[s->op].flags & OPF_ACC) || s->op == OP_maxpool_bwd;
}

/* What agreement() reads: value V of step S on each side. */
typedef struct CompareCtx {
	const Plan *p;
	Exec *cpu;
	const PlanStep *s;
	int v;
	const void *gpu, *ref;
} CompareCtx;

static double
ctx_value(void *c, bool gpu, size_t i)
{
	CompareCtx *x = c;
	return value_at(x->p, gpu ? x->gpu : x->ref, x->v, i);
}

static bool
ctx_overflow_ok(void *c, size_t i, double a, double b, double *exact)
{
	CompareCtx *x = c;
	return fp16_overflow(x->p, x->cpu, x->s, x->v, i, a, b, exact);
}

static bool
ctx_operands_finite(void *c)
{
	CompareCtx *x = c;
	return operands_finite(x->p, x->cpu, x->s);
}

/* Compares value V, written by step S of program GPU_PROG (0 train, 1 eval): the CPU's storage
 * against the GPU's (downloaded into TMP), by the rule of tests/unit/agreement.h. */
static void
compare(const Plan *p, Exec *cpu, CudaExec *gpu, int gpu_prog, const PlanStep *s, int v, void *tmp, const char *what)
{
	char err[512];
	if (nnc_cuda_download(gpu, v, tmp, err, sizeof err) != 0) {
		printf("FAIL %s: %s\n", what, err);
		failures++;
		return;
	}
	CompareCtx ctx = {p, cpu, s, v, tmp, exec_f32(cpu, v)};
	AgreeOps ops = {ctx_value, ctx_overflow_ok, ctx_operands_finite, &ctx};
	Agreement r = agreement((size_t)type_numel(&p->values[v]), p->values[v].dtype == DT_F16, sums(s), &ops);
	int step = (int)(s - (gpu_prog ? p->eval.steps : p->train.steps));
	checks++;
	if (r.overflowed) {
		printf("NOTE %s %%%d: %ld elements beyond fp16's range (first: element %zu, exact %.9g): the CPU stores "
		       "%s, the GPU (%s) a finite value\n",
			what, v, r.overflowed, r.first_overflow, r.first_exact, isnan(r.first_exact) ? "NaN" : "+-inf",
			nnc_cuda_conv_algo(gpu, gpu_prog, step));
		notes++;
	}
	if (r.fail) {
		printf("FAIL %s %%%d: element %zu: gpu %.9g, cpu %.9g (relative error %.3g, tolerance %.0e%s)\n", what, v, r.at,
			ctx_value(&ctx, true, r.at), ctx_value(&ctx, false, r.at), r.error, r.tol,
			r.nonfinite ? ", NaN/Inf mismatch" : "");
		if (r.nonfinite && s->op == OP_conv2d && v == s->out)
			printf("  exact (double, from the same operands, bias included, before the epilogue): %.9g; GPU: %s\n",
				conv_exact(p, cpu, s, r.at), nnc_cuda_conv_algo(gpu, gpu_prog, step));
		failures++;
	}
}

static CudaRunState
state_of(const Exec *e)
{
	CudaRunState s = {.lr = e->lr, .step = e->step, .loss_scale = e->loss_scale, .rng_key = e->rng.key,
		.rng_counter = e->rng.counter, .momentum = e->recipe.momentum, .weight_decay = e->recipe.weight_decay,
		.beta1 = e->recipe.beta1, .beta2 = e->recipe.beta2, .eps = e->recipe.eps,
		.label_smoothing = e->recipe.label_smoothing, .nesterov = e->recipe.nesterov};
	return s;
}

/* The values step S writes: its result, and the operands it writes in place (the op table's
 * last column: updates, running statistics). */
static int
written(const PlanStep *s, int *out)
{
	int n = 0;
	if (s->out >= 0)
		out[n++] = s->out;
	for (int k = 0; k < s->nin; k++)
		if (nnc_writes(s->op, k))
			out[n++] = s->in[k];
	return n;
}

static bool
upload_all(const Plan *p, Exec *cpu, CudaExec *gpu, char *err, size_t errlen)
{
	for (int k = ARENA_PARAM; k < NARENA; k++)
		if (nnc_cuda_upload_arena(gpu, k, cpu->base[k], err, errlen) != 0)
			return false;
	(void)p;
	return true;
}

static void
fill_batch(const Plan *p, Exec *cpu, uint64_t seed)
{
	const Type *img = &p->values[p->inputs[0].value];
	float *x = exec_f32(cpu, p->inputs[0].value);
	size_t n = (size_t)type_numel(img);
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((double)(s >> 11) * 0x1p-53 * 4 - 2);
	}
	if (p->inputs[1].value >= 0) {
		int32_t *y = exec_i32(cpu, p->inputs[1].value);
		int k = (int)p->values[p->eval.logits].dim[1];
		for (int64_t i = 0; i < p->batch; i++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			y[i] = (int32_t)((s >> 33) % (uint64_t)k);
		}
	}
}

static void
step_by_step(const Plan *p, Exec *cpu, CudaExec *gpu, int g, const char *name)
{
	const PlanProgram *prog = g ? &p->eval : &p->train;
	char err[1024];
	size_t maxbytes = 16;
	for (int v = 0; v < p->nvalues; v++) {
		size_t b = (size_t)type_numel(&p->values[v]) * dtype_size(p->values[v].dtype);
		maxbytes = b > maxbytes ? b : maxbytes;
	}
	void *tmp = malloc(maxbytes);
	for (int i = 0; tmp && i < prog->nsteps; i++) {
		int span = prog->steps[i].group > 1 ? prog->steps[i].group : 1;
		CudaRunState st = state_of(cpu);
		if (nnc_cuda_run(gpu, g, i, i + span, &st, NULL, err, sizeof err) != 0 ||
		    !exec_run_steps(cpu, prog, i, i + span, err, sizeof err)) {
			printf("FAIL %s: %s\n", name, err);
			failures++;
			break;
		}
		for (int j = i; j < i + span; j++) {
			int vs[NNC_MAXARGS + 2], nv = written(&prog->steps[j], vs);
			char what[512];
			snprintf(what, sizeof what, "%s %s step %d (%s at %s)", name, g ? "eval" : "train", j,
				nnc_ops[prog->steps[j].op].name, prog->steps[j].loc);
			for (int k = 0; k < nv; k++) {
				compare(p, cpu, gpu, g, &prog->steps[j], vs[k], tmp, what);
				if (nnc_cuda_upload(gpu, vs[k], exec_f32(cpu, vs[k]), err, sizeof err) != 0) {
					printf("FAIL %s: %s\n", what, err);
					failures++;
				}
			}
		}
		i += span - 1;
	}
	free(tmp);
}

/* Bytes of value V's storage. */
static size_t
bytes_of(const Plan *p, int v)
{
	return (size_t)type_numel(&p->values[v]) * dtype_size(p->values[v].dtype);
}

/* After check 4 failed: names the first step whose written values differ between the training
 * program run in one piece up to and including it (so with every fusion inside that prefix) and
 * run one step at a time, both from START. A second executor runs the single steps alongside. */
static void
locate_split_difference(const Plan *p, const Exec *cpu, CudaExec *whole, const unsigned char *start,
	const CudaOptions *o)
{
	char err[1024];
	CudaExec *single = nnc_cuda_exec_new(p, o, err, sizeof err);
	size_t maxbytes = 16;
	for (int v = 0; v < p->nvalues; v++)
		maxbytes = bytes_of(p, v) > maxbytes ? bytes_of(p, v) : maxbytes;
	unsigned char *a = malloc(maxbytes), *b = malloc(maxbytes);
	CudaRunState sa = state_of(cpu);
	bool ok = single && a && b && !nnc_cuda_upload_arena(single, ARENA_PARAM, start, err, sizeof err) &&
	          !nnc_cuda_upload_arena(single, ARENA_IO, cpu->base[ARENA_IO], err, sizeof err);
	bool found = false;
	for (int i = 0; ok && !found && i < p->train.nsteps;) {
		int span = p->train.steps[i].group == 3 ? 3 : 1;
		CudaRunState sb = state_of(cpu);
		ok = !nnc_cuda_run(single, 0, i, i + span, &sa, NULL, err, sizeof err) &&
		     !nnc_cuda_upload_arena(whole, ARENA_PARAM, start, err, sizeof err) &&
		     !nnc_cuda_upload_arena(whole, ARENA_IO, cpu->base[ARENA_IO], err, sizeof err) &&
		     !nnc_cuda_run(whole, 0, 0, i + span, &sb, NULL, err, sizeof err);
		for (int j = i; ok && !found && j < i + span; j++) {
			int vs[NNC_MAXARGS + 2], nv = written(&p->train.steps[j], vs);
			for (int k = 0; ok && !found && k < nv; k++) {
				size_t n = bytes_of(p, vs[k]);
				ok = !nnc_cuda_download(single, vs[k], a, err, sizeof err) &&
				     !nnc_cuda_download(whole, vs[k], b, err, sizeof err);
				if (ok && memcmp(a, b, n) != 0) {
					size_t e = 0, es = dtype_size(p->values[vs[k]].dtype);
					while (memcmp(a + e * es, b + e * es, es) == 0)
						e++;
					printf("  first difference: train step %d (%s at %s) %%%d element %zu: one run %.9g, step by "
					       "step %.9g\n",
						j, nnc_ops[p->train.steps[j].op].name, p->train.steps[j].loc, vs[k], e,
						value_at(p, b, vs[k], e), value_at(p, a, vs[k], e));
					found = true;
				}
			}
		}
		i += span;
	}
	if (!ok)
		printf("  (locating the difference failed: %s)\n", single ? err : "no second executor");
	else if (!found)
		printf("  (no step's written values differ when the prefix runs in one piece)\n");
	if (single)
		nnc_cuda_exec_free(single);
	free(a);
	free(b);
}

static int
check_plan(const char *path, const Plan *plan)
{
	const Plan p = *plan;
	char err[2048];
	Exec cpu;
	if (!exec_init(&cpu, &p, 2, err, sizeof err)) {
		printf("FAIL %s: %s\n", path, err);
		return 1;
	}
	exec_init_params(&cpu, 1);
	fill_batch(&p, &cpu, 7);
	const char *algo = getenv("NNC_CUDA_FWD_ALGO");
	CudaOptions o = {.device = 0, .deterministic = 1, .direct_conv = getenv("NNC_CUDA_DIRECT_CONV") != NULL,
		.fwd_algo = algo ? atoi(algo) + 1 : 0};
	CudaExec *gpu = nnc_cuda_exec_new(&p, &o, err, sizeof err);
	if (!gpu) {
		printf("FAIL %s: %s\n", path, err);
		exec_free(&cpu);
		return 1;
	}
	int before = failures;
	/* 1. step by step, training then evaluation */
	if (upload_all(&p, &cpu, gpu, err, sizeof err) && nnc_cuda_poison(gpu, err, sizeof err) == 0) {
		if (p.has_train)
			step_by_step(&p, &cpu, gpu, 0, path);
		step_by_step(&p, &cpu, gpu, 1, path);
	} else {
		printf("FAIL %s: %s\n", path, err);
		failures++;
	}
	/* 2. a whole training step from the same state: the losses agree */
	if (p.has_train && p.train.loss >= 0) {
		fill_batch(&p, &cpu, 11);
		CudaRunState st = state_of(&cpu);
		float gl = 0;
		if (!upload_all(&p, &cpu, gpu, err, sizeof err) || nnc_cuda_run(gpu, 0, 0, p.train.nsteps, &st, NULL, err, sizeof err) ||
		    !exec_run(&cpu, &p.train, err, sizeof err)) {
			printf("FAIL %s whole step: %s\n", path, err);
			failures++;
		} else {
			nnc_half h;
			bool half = p.values[p.train.loss].dtype == DT_F16;
			if (nnc_cuda_download(gpu, p.train.loss, half ? (void *)&h : (void *)&gl, err, sizeof err) == 0) {
				if (half)
					gl = half_to_float(h);
				float cl = *exec_view_f32(&cpu, p.train.loss);
				checks++;
				if (!(fabs(gl - cl) <= 2e-2 * fmax(1, fabs(cl)))) {
					printf("FAIL %s whole step: loss gpu %.7g, cpu %.7g\n", path, gl, cl);
					failures++;
				}
			}
		}
		/* 3. deterministic repeats: bit-identical parameters */
		size_t pb = (size_t)p.arena_bytes[ARENA_PARAM];
		unsigned char *r1 = malloc(pb + 1), *r2 = malloc(pb + 1), *start = malloc(pb + 1);
		memcpy(start, cpu.base[ARENA_PARAM], pb);
		for (int r = 0; r < 2 && r1 && r2 && start; r++) {
			st = state_of(&cpu);
			if (nnc_cuda_upload_arena(gpu, ARENA_PARAM, start, err, sizeof err) ||
			    nnc_cuda_upload_arena(gpu, ARENA_IO, cpu.base[ARENA_IO], err, sizeof err) ||
			    nnc_cuda_run(gpu, 0, 0, p.train.nsteps, &st, NULL, err, sizeof err) ||
			    nnc_cuda_download_arena(gpu, ARENA_PARAM, r ? r2 : r1, err, sizeof err)) {
				printf("FAIL %s deterministic: %s\n", path, err);
				failures++;
				break;
			}
		}
		checks++;
		if (r1 && r2 && memcmp(r1, r2, pb) != 0) {
			printf("FAIL %s: two deterministic runs from the same state differ\n", path);
			failures++;
		}
		/* 4. the same run one step (or backward group) at a time, which launches each update and
		 * grad_check on its own instead of the multi-tensor launches: bit-identical parameters */
		st = state_of(&cpu);
		bool ok = r2 && start && !nnc_cuda_upload_arena(gpu, ARENA_PARAM, start, err, sizeof err) &&
		          !nnc_cuda_upload_arena(gpu, ARENA_IO, cpu.base[ARENA_IO], err, sizeof err);
		for (int i = 0; ok && i < p.train.nsteps; i += p.train.steps[i].group == 3 ? 3 : 1)
			ok = !nnc_cuda_run(gpu, 0, i, i + (p.train.steps[i].group == 3 ? 3 : 1), &st, NULL, err, sizeof err);
		ok = ok && !nnc_cuda_download_arena(gpu, ARENA_PARAM, r2, err, sizeof err);
		checks++;
		if (!ok || (r1 && memcmp(r1, r2, pb) != 0)) {
			printf("FAIL %s: the training program run step by step differs from one run%s%s\n", path, ok ? "" : ": ",
				ok ? "" : err);
			failures++;
			if (ok)
				locate_split_difference(&p, &cpu, gpu, start, &o);
		}
		free(r1);
		free(r2);
		free(start);
	}
	printf("%s: %s\n", path, failures == before ? "ok" : "FAILED");
	nnc_cuda_exec_free(gpu);
	exec_free(&cpu);
	return failures != before;
}

int
main(int argc, char **argv)
{
	if (gpu_probe() != 0)
		return 77;
	int bad_plans = for_each_plan(argc, argv, check_plan);
	printf("test_cuda_vs_cpu: %d checks, %d failed, %d with fp16 overflow noted; %d of %d plans failed\n", checks,
		failures, notes, bad_plans, argc - 1);
	return failures || bad_plans ? 1 : 0;
}
