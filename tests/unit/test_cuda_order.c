/* The GPU executor's fusions move steps (nnc_cuda_order: a bn_stats's bn_update and a
 * bn_apply's add run right after them, a widening cast right before the bn_stats that reads
 * through it). Whether that is safe depends on the plan's memory layout: a moved step must not
 * read memory another value has taken by then, nor write memory a value still needs. This test
 * runs the CPU executor in the GPU's order and in the plan's, from the same parameters and
 * batch, and requires bit-identical parameters, loss and logits -- on the host, on every plan
 * given (tests/cuda.sh: plans of six models in every precision). Needs no GPU.
 *   test_cuda_order PLAN... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec.h"
#include "tests/unit/plan_arg.h"

static void
fill_batch(const Plan *p, Exec *e)
{
	uint64_t s = 12345;
	float *x = exec_f32(e, p->inputs[0].value);
	for (int64_t i = 0; i < type_numel(&p->values[p->inputs[0].value]); i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((double)(s >> 11) * 0x1p-53 * 4 - 2);
	}
	if (p->inputs[1].value >= 0)
		for (int i = 0; i < p->batch; i++)
			exec_i32(e, p->inputs[1].value)[i] = i % (int)p->values[p->eval.logits].dim[1];
}

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
		} else if (memcmp(x.base[PLAN_ARENA_PARAM], y.base[PLAN_ARENA_PARAM], (size_t)p.arena_bytes[PLAN_ARENA_PARAM]) ||
		           !same(&x, &y, prog->loss) || !same(&x, &y, prog->logits)) {
			printf("FAIL %s: the %s program in the GPU's order (%d steps moved) differs from the plan's order\n", path,
				g ? "eval" : "train", moves);
			failed = 1;
		}
		exec_free(&x);
		exec_free(&y);
		free(order);
	}
	if (!failed)
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
