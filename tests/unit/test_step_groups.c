/* The plan's step groups (passes/fuse.c, GroupKind in core/ops.h) run as one kernel on both
 * backends, and some leave a value unwritten (the batch-norm result a residual add reads, a
 * widening cast's copy the statistics read through). Whether that is safe depends on the plan:
 * its memory layout and who reads what. This test runs each program of every plan given on the
 * CPU in one piece (every group as one kernel, as a GPU run does) and one step at a time (every
 * member its own kernel, as --check-numerics and nnrun step run it), from the same parameters
 * and batch, and requires bit-identical parameters, loss and logits; it prints how many groups
 * of each kind the plan has. Needs no GPU (tests/cuda.sh: plans of every model in every
 * precision).
 *
 * It also replays a training step split into single steps, as tests and numerics checks run
 * it on the GPU (nnc_cuda_run per step), with grad_check's flag kept or cleared between the
 * pieces as the GPU executor does (nnc_cuda_run_clears_check; when the CUDA backend is built),
 * and as the CPU executor does: with an inf planted in an operand of the program's first check chunk, no update may
 * change a weight or its optimizer state (GradScaler's skipped step). Plans with loss scaling
 * whose checks come in several chunks (passes/precision.c) are the ones this catches.
 *   test_step_groups PLAN... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NNC_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif
#include "runtime/exec.h"
#include "core/half.h"
#include "tests/unit/overflow_replay.h"
#include "tests/unit/plan_arg.h"

/* Runs PROG on E in one piece, or (SINGLE) one step at a time. */
static int
run(Exec *e, const PlanProgram *prog, bool single, char *err, size_t errlen)
{
	if (!single)
		return exec_run_steps(e, prog, 0, prog->nsteps, err, errlen) ? 0 : -1;
	for (int i = 0; i < prog->nsteps; i++)
		if (!exec_run_steps(e, prog, i, i + 1, err, errlen))
			return -1;
	return 0;
}

static int
same(const Exec *a, const Exec *b, int v)
{
	size_t n = (size_t)type_numel(&a->plan->values[v]) * dtype_size(a->plan->values[v].dtype);
	return v < 0 || memcmp(a->base[a->plan->arena[v]] + a->plan->offset[v], b->base[b->plan->arena[v]] + b->plan->offset[v],
		n) == 0;
}

#ifdef NNC_HAVE_CUDA
static bool
gpu_clears(const Plan *p, int first, int last)
{
	return nnc_cuda_run_clears_check(p, 0, first, last) != 0;
}
#endif

static int
check_plan(const char *path, const Plan *plan)
{
	const Plan p = *plan;
	char err[2048];
	int failed = 0, kinds[NGROUP] = {0};
	for (int g = 0; g < 2 && !failed; g++) {
		const PlanProgram *prog = g ? &p.eval : &p.train;
		if (g == 0 && !p.has_train)
			continue;
		for (int i = 0; i < prog->nsteps; i++)
			kinds[plan_group_kind(prog, i)]++;
		Exec x, y;
		if (!exec_init(&x, &p, 1, err, sizeof err) || !exec_init(&y, &p, 1, err, sizeof err)) {
			printf("FAIL %s: %s\n", path, err);
			return 1;
		}
		Exec *e[2] = {&x, &y};
		for (int r = 0; r < 2; r++) {
			exec_init_params(e[r], 1);
			fill_batch(&p, e[r]);
			e[r]->lr = 0.05;
		}
		if (run(&x, prog, false, err, sizeof err) || run(&y, prog, true, err, sizeof err)) {
			printf("FAIL %s: %s\n", path, err);
			failed = 1;
		} else if (memcmp(x.base[ARENA_PARAM], y.base[ARENA_PARAM], (size_t)p.arena_bytes[ARENA_PARAM]) ||
		           !same(&x, &y, prog->loss) || !same(&x, &y, prog->logits)) {
			printf("FAIL %s: the %s program run with its groups as one kernel differs from it run step by step\n",
				path, g ? "eval" : "train");
			failed = 1;
		}
		exec_free(&x);
		exec_free(&y);
	}
	int chunks = 0;
#ifdef NNC_HAVE_CUDA
	if (!failed && p.has_train)
		failed = split_overflow(path, &p, gpu_clears, &chunks) != 0;
#endif
	if (!failed && p.has_train)
		failed = split_overflow(path, &p, NULL, &chunks) != 0;
	if (!failed) {
		printf("%s: ok (groups:", path);
		for (int k = 1; k < NGROUP; k++)
			printf(" %d %s", kinds[k], nnc_group_names[k]);
		if (chunks)
			printf("; an overflow planted in the first of %d check chunks skipped the step", chunks);
		printf(")\n");
	}
	return failed;
}

int
main(int argc, char **argv)
{
	int failures = for_each_plan(argc, argv, check_plan);
	printf("test_step_groups: %d plans, %d failed\n", argc - 1, failures);
	return failures != 0;
}
