/* Shared by the plan-taking test programs (test_step_groups, test_overflow): a deterministic
 * random batch, and the replay of a training step split into single steps with an overflow
 * planted in its first grad_check chunk (split_overflow), which must change no weight and no
 * optimizer state however the steps are split and whatever rule clears grad_check's flag
 * between the pieces. */
#ifndef NNC_TESTS_OVERFLOW_REPLAY_H
#define NNC_TESTS_OVERFLOW_REPLAY_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exec.h"
#include "core/half.h"

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

/* The training program of P one step (or backward group) at a time from fresh parameters, an
 * inf planted in the first operand of its first grad_check; between the pieces grad_check's
 * flag is cleared where CLEARS says (the GPU executor's rule), or as exec_run_steps alone does
 * (CLEARS NULL). Returns 1 when an
 * update changed a weight or its optimizer state, naming it; -1 on an error; else 0. */
static int
split_overflow(const char *path, const Plan *p, bool (*clears)(const Plan *, int, int), int *chunks)
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
	size_t pb = (size_t)p->arena_bytes[ARENA_PARAM];
	unsigned char *start = malloc(pb + 1);
	int rc = start ? 0 : -1;
	if (start)
		memcpy(start, x.base[ARENA_PARAM], pb);
	for (int i = 0; rc == 0 && i < prog->nsteps;) {
		int span = prog->steps[i].group == 3 ? 3 : 1;
		if (clears && clears(p, i, i + span))
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
			if (k != 1 && memcmp(x.base[ARENA_PARAM] + p->offset[v], start + p->offset[v], n) != 0) {
				printf("FAIL %s: a step with inf in its first check chunk (of %d), run one step at a time with "
				       "the %s's flag rule, changed %s's operand %%%d (step %d at %s): the skipped step was applied\n",
					path, *chunks, clears ? "GPU" : "CPU", s->name, v, i, s->loc);
				rc = 1;
			}
		}
	}
	free(start);
	exec_free(&x);
	return rc;
}

#endif
