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
#include "runtime/half.h"
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

/* The training program of P one step (or backward group) at a time from fresh parameters, an
 * inf planted in the first operand of its first grad_check; between the pieces grad_check's
 * flag is handled as the GPU does (GPU_RULE) or as exec_run_steps alone does. Returns 1 when an
 * update changed a weight or its optimizer state, naming it; -1 on an error; else 0. */
static int
split_overflow(const char *path, const Plan *p, bool gpu_rule, int *chunks)
{
	const PlanProgram *prog = &p->train;
	int first_check = -1;
	*chunks = 0;
	for (int i = 0; i < prog->nsteps; i++)
		if (prog->steps[i].op == OP_grad_check && (*chunks)++ == 0)
			first_check = i;
	if (first_check < 0)
		return 0;
	char err[2048];
	Exec x;
	if (!exec_init(&x, p, 1, err, sizeof err)) {
		printf("FAIL %s: %s\n", path, err);
		return -1;
	}
	exec_init_params(&x, 1);
	fill_batch(p, &x);
	x.lr = 0.05;
	size_t pb = (size_t)p->arena_bytes[PLAN_ARENA_PARAM];
	unsigned char *start = malloc(pb + 1);
	int rc = start ? 0 : -1;
	if (start)
		memcpy(start, x.base[PLAN_ARENA_PARAM], pb);
	for (int i = 0; rc == 0 && i < prog->nsteps;) {
		int span = prog->steps[i].group == 3 ? 3 : 1;
		if (gpu_rule && nnc_cuda_run_clears_check(p, 0, i, i + span))
			x.skip_update = false;
		if (i == first_check) {
			int v = prog->steps[i].in[0];
			if (p->values[v].dtype == DT_F16)
				*(nnc_half *)exec_f32(&x, v) = half_from_float(INFINITY);
			else
				*exec_f32(&x, v) = INFINITY;
		}
		if (!exec_run_steps(&x, prog, i, i + span, err, sizeof err)) {
			printf("FAIL %s: %s\n", path, err);
			rc = -1;
		}
		i += span;
	}
	for (int i = 0; rc == 0 && i < prog->nsteps; i++) {
		const PlanStep *s = &prog->steps[i];
		if (s->op != OP_sgd_update && s->op != OP_adam_update)
			continue;
		for (int k = 0; k < s->nin && rc == 0; k++) {
			int v = s->in[k];
			size_t n = (size_t)type_numel(&p->values[v]) * dtype_size(p->values[v].dtype);
			if (k != 1 && memcmp(x.base[PLAN_ARENA_PARAM] + p->offset[v], start + p->offset[v], n) != 0) {
				printf("FAIL %s: a step with inf in its first check chunk (of %d), run one step at a time with "
				       "the %s's flag rule, changed %s's operand %%%d (step %d at %s): the skipped step was applied\n",
					path, *chunks, gpu_rule ? "GPU" : "CPU", s->name, v, i, s->loc);
				rc = 1;
			}
		}
	}
	free(start);
	exec_free(&x);
	return rc;
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
	int chunks = 0;
	for (int r = 0; r < 2 && !failed && p.has_train; r++)
		failed = split_overflow(path, &p, r == 0, &chunks) != 0;
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
