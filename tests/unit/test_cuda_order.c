/* The GPU executor's fusions move steps (nnc_cuda_order: a bn_stats's bn_update and a
 * bn_apply's add run right after them, a widening cast right before the bn_stats that reads
 * through it). Whether that is safe depends on the plan's memory layout: a moved step must not
 * read memory another value has taken by then, nor write memory a value still needs. This test
 * runs the CPU executor in the GPU's order and in the plan's, from the same parameters and
 * batch, and requires bit-identical parameters, loss and logits -- on the host, on every plan
 * given (tests/cuda.sh: plans of six models in every precision). Needs no GPU.
 *
 * It also replays a training step split into single steps, as tests and numerics checks run
 * it on the GPU (nnc_cuda_run per step), with grad_check's flag kept or cleared between the
 * pieces as the GPU executor does (nnc_cuda_run_clears_check), and once as the CPU executor
 * does: with an inf planted in an operand of the program's first check chunk, no update may
 * change a weight or its optimizer state (GradScaler's skipped step). Plans with loss scaling
 * whose checks come in several chunks (passes/precision.c) are the ones this catches.
 *   test_cuda_order PLAN... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec.h"
#include "core/half.h"
#include "tests/unit/overflow_replay.h"
#include "tests/unit/plan_arg.h"

/* Runs program G on E in ORDER (NULL: the plan's): a backward group as one. */
static int
run(Exec *e, const PlanProgram *prog, const int *order, char *err, size_t errlen)
{
	for (int k = 0; k < prog->nsteps; k++) {
		int i = order ? order[k] : k, span = prog->steps[i].group == 3 ? 3 : 1;
		if (!exec_run_steps(e, prog, i, i + span, err, errlen))
			return -1;
		k += span - 1;
	}
	return 0;
}

static int
same(const Exec *a, const Exec *b, int v)
{
	size_t n = (size_t)type_numel(&a->plan->values[v]) * dtype_size(a->plan->values[v].dtype);
	return v < 0 || memcmp(a->base[a->plan->arena[v]] + a->plan->offset[v], b->base[b->plan->arena[v]] + b->plan->offset[v],
		n) == 0;
}

static bool
gpu_clears(const Plan *p, int first, int last)
{
	return nnc_cuda_run_clears_check(p, 0, first, last) != 0;
}

static int
check_plan(const char *path, const Plan *plan)
{
	const Plan p = *plan;
	char err[2048];
	int failed = 0, moves = 0;
	for (int g = 0; g < 2 && !failed; g++) {
		const PlanProgram *prog = g ? &p.eval : &p.train;
		if (g == 0 && !p.has_train)
			continue;
		int *order = malloc((size_t)(prog->nsteps > 0 ? prog->nsteps : 1) * sizeof *order);
		Exec x, y;
		if (!order || !exec_init(&x, &p, 1, err, sizeof err) || !exec_init(&y, &p, 1, err, sizeof err)) {
			printf("FAIL %s: %s\n", path, err);
			free(order);
			return 1;
		}
		nnc_cuda_order(&p, g, order);
		for (int k = 0; k < prog->nsteps; k++)
			moves += order[k] != k;
		Exec *e[2] = {&x, &y};
		for (int r = 0; r < 2; r++) {
			exec_init_params(e[r], 1);
			fill_batch(&p, e[r]);
			e[r]->lr = 0.05;
		}
		if (run(&x, prog, NULL, err, sizeof err) || run(&y, prog, order, err, sizeof err)) {
			printf("FAIL %s: %s\n", path, err);
			failed = 1;
		} else if (memcmp(x.base[ARENA_PARAM], y.base[ARENA_PARAM], (size_t)p.arena_bytes[ARENA_PARAM]) ||
		           !same(&x, &y, prog->loss) || !same(&x, &y, prog->logits)) {
			printf("FAIL %s: the %s program in the GPU's order (%d steps moved) differs from the plan's order\n", path,
				g ? "eval" : "train", moves);
			failed = 1;
		}
		exec_free(&x);
		exec_free(&y);
		free(order);
	}
	int chunks = 0;
	for (int r = 0; r < 2 && !failed && p.has_train; r++)
		failed = split_overflow(path, &p, r == 0 ? gpu_clears : NULL, &chunks) != 0;
	if (!failed && chunks)
		printf("%s: ok (%d steps moved; an overflow planted in the first of %d check chunks skipped the step)\n",
			path, moves, chunks);
	else if (!failed)
		printf("%s: ok (%d steps moved)\n", path, moves);
	return failed;
}

int
main(int argc, char **argv)
{
	int failures = for_each_plan(argc, argv, check_plan);
	printf("test_cuda_order: %d plans, %d failed\n", argc - 1, failures);
	return failures != 0;
}
