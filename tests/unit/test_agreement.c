/* The rule by which test_cuda_vs_cpu (label `cuda`) judges a GPU result against the CPU's
 * (tests/unit/agreement.h), checked on the CPU: the GPU test runs only where a GPU is lent, and
 * a rule that passed everything would pass there unnoticed. Each case is a pair of small tensors,
 * "gpu" and "cpu", built to sit just inside or just outside one bound. */
#include <math.h>
#include <stdio.h>

#include "tests/unit/agreement.h"

#define N 8

typedef struct Case {
	double gpu[N], cpu[N];
	bool operands_finite; /* what the step's operands were */
	bool explain;         /* overflow_ok explains every one-sided inf (an fp16 convolution's) */
} Case;

static double
value(void *c, bool gpu, size_t i)
{
	Case *k = c;
	return gpu ? k->gpu[i] : k->cpu[i];
}

static bool
overflow_ok(void *c, size_t i, double a, double b, double *exact)
{
	Case *k = c;
	(void)a;
	*exact = copysign(70000.0, b);
	return k->explain && isinf(b) && i < N;
}

static bool
operands_finite(void *c)
{
	return ((Case *)c)->operands_finite;
}

static int failures, checks;

/* Runs the rule on CASE (fp16 storage if F16, a summing step if SUMS) and checks its verdict
 * (and, for a failure, the element it names). */
static Agreement
expect(const char *what, Case k, bool f16, bool sums, bool fail, size_t at)
{
	AgreeOps ops = {value, overflow_ok, operands_finite, &k};
	Agreement r = agreement(N, f16, sums, &ops);
	checks++;
	if (r.fail != fail || (fail && r.at != at)) {
		printf("FAIL %s: %s (element %zu, error %.3g, bound %.3g); expected %s at %zu\n", what, r.fail ? "fails" : "passes",
			r.at, r.error, r.tol, fail ? "a failure" : "agreement", at);
		failures++;
	}
	return r;
}

/* A tensor of magnitude 1 whose element 3 is small. */
static Case
base(void)
{
	Case k = {.gpu = {1, -0.5, 0.25, 1e-3, 0.75, -1, 0.125, 0.5}, .operands_finite = true};
	for (int i = 0; i < N; i++)
		k.cpu[i] = k.gpu[i];
	return k;
}

int
main(void)
{
	Case k = base();
	expect("identical, summing, fp32", k, false, true, false, 0);
	expect("identical, elementwise, fp16", k, true, false, false, 0);

	/* a step that sums: tensor-wide bound 1e-4 (fp32) */
	k = base();
	k.gpu[0] = 1 + 0.9e-4;
	expect("summing fp32, 0.9e-4 of the largest", k, false, true, false, 0);
	k.gpu[0] = 1 + 1.1e-4;
	expect("summing fp32, 1.1e-4 of the largest", k, false, true, true, 0);
	/* ... and per element in fp16: 8e-3 of the largest passes the tensor-wide 1e-2, but is
	 * 2.7e-2 of an element of 0.3 (above the floor of 0.1) */
	k = base();
	k.cpu[4] = k.gpu[4] = 0.3;
	k.gpu[4] = 0.3 + 8e-3;
	expect("summing fp16, 2.7e-2 of the element", k, true, true, true, 4);
	k.gpu[4] = 0.3 + 5e-3;
	expect("summing fp16, 1.7e-2 of the element", k, true, true, false, 0);
	/* below the floor, cancellation: an element of 1e-3 may be off by 5e-3 of the largest in fp16 */
	k = base();
	k.gpu[3] = 1e-3 + 1.5e-3;
	expect("summing fp16, a cancelled element", k, true, true, false, 0);

	/* a step that sums nothing: each element within 8 fp32 ulps (2^-20) of itself. The element a
	 * thousand times smaller than the largest, wrong by all of itself, fails (the tensor-wide
	 * bound alone, 1e-2 in fp16, let it pass) */
	k = base();
	k.gpu[3] = 0;
	expect("elementwise fp16, a small element zeroed", k, true, false, true, 3);
	expect("summing fp16, the same (a cancellation-sized error)", k, true, true, false, 0);
	k = base();
	k.gpu[3] = 1e-3 * (1 + 4.0 / (1 << 23));
	expect("elementwise fp32, 4 ulps", k, false, false, false, 0);
	k.gpu[3] = 1e-3 * (1 + 16.0 / (1 << 23));
	expect("elementwise fp32, 16 ulps", k, false, false, true, 3);
	k = base();
	k.gpu[6] = 0.125 * (1 + 1.0 / 1024);
	expect("elementwise fp16, one rounding", k, true, false, false, 0);
	k.gpu[6] = 0.125 * (1 + 3.0 / 1024);
	expect("elementwise fp16, three roundings", k, true, false, true, 6);
	k = base();
	k.cpu[2] = 0, k.gpu[2] = 1e-39; /* below fp32's smallest normal: the floor */
	expect("elementwise fp32, a subnormal against zero", k, false, false, false, 0);
	k.gpu[2] = 0x1p-24; /* fp16's subnormal step */
	expect("elementwise fp16, one subnormal step", k, true, false, false, 0);
	k.gpu[2] = 0x1p-22;
	expect("elementwise fp16, four subnormal steps", k, true, false, true, 2);

	/* overflow: inf of one sign on both sides agrees, and is left out of the scale (with inf as
	 * the scale, every other element would pass whatever its error) */
	k = base();
	k.gpu[1] = k.cpu[1] = INFINITY;
	expect("inf on both sides", k, false, true, false, 0);
	k.gpu[5] = -0.5;
	expect("inf on both sides, another element wrong", k, false, true, true, 5);
	k = base();
	k.gpu[1] = INFINITY, k.cpu[1] = -INFINITY;
	expect("inf of opposite signs", k, false, true, true, 1);
	k = base();
	k.cpu[7] = INFINITY;
	Agreement r = expect("inf on the CPU only", k, true, true, true, 7);
	checks++;
	if (!r.nonfinite) {
		printf("FAIL inf on the CPU only: not reported as a NaN/Inf mismatch\n");
		failures++;
	}
	k.explain = true;
	r = expect("inf on the CPU only, explained as fp16 overflow", k, true, true, false, 0);
	checks++;
	if (r.overflowed != 1 || r.first_overflow != 7 || r.first_exact != 70000.0) {
		printf("FAIL fp16 overflow: %ld counted, first %zu, exact %g\n", r.overflowed, r.first_overflow, r.first_exact);
		failures++;
	}

	/* NaN on both sides: only where the operands were already non-finite */
	k = base();
	k.gpu[2] = k.cpu[2] = NAN;
	expect("NaN on both sides from finite operands", k, false, false, true, 2);
	k.operands_finite = false;
	expect("NaN on both sides from non-finite operands", k, false, false, false, 0);
	k = base();
	k.gpu[2] = NAN;
	k.operands_finite = false;
	expect("NaN on the GPU only", k, false, true, true, 2);

	printf("agreement: %d checks, %d failures\n", checks, failures);
	return failures != 0;
}
