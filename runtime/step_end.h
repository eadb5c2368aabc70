/* The end of a training step, as inline code that C and CUDA share (as runtime/splitmix.h is):
 * the CPU executor's exec_run and exec_finish_step (runtime/exec.c) and the GPU's resident loop
 * (runtime/cuda/resident_math.cuh) both apply this one rule, and tests/unit/test_cuda_host.cu
 * checks the resident loop's whole end of step against the CPU's.
 *
 * A step that grad_check rejected (inf or NaN in a gradient) counts as skipped: the clean-step
 * run restarts, a dynamic loss scale backs off, and no optimizer step is counted (as PyTorch's
 * GradScaler skips optimizer.step()). A clean step grows a dynamic scale after `interval` clean
 * steps in a row, and counts an optimizer step if the program updated anything. */
#ifndef NNC_STEP_END_H
#define NNC_STEP_END_H

#include "runtime/splitmix.h" /* NNC_HD */

typedef struct NncStepCounts {
	double loss_scale;
	long long clean_steps, skipped_steps, step;
} NncStepCounts;

/* C: the counts after a step. SKIPPED: grad_check found inf/NaN; SCALED: the plan scales its
 * loss dynamically (growth and backoff apply); UPDATED: the program has optimizer updates. */
static inline NNC_HD NncStepCounts
nnc_step_end(NncStepCounts c, int skipped, int scaled, int updated, long long interval, double growth, double backoff)
{
	if (skipped) {
		c.skipped_steps++;
		c.clean_steps = 0;
		if (scaled)
			c.loss_scale *= backoff;
		return c;
	}
	if (scaled && ++c.clean_steps >= interval) {
		c.loss_scale *= growth;
		c.clean_steps = 0;
	}
	if (updated)
		c.step++;
	return c;
}

#endif
