/* Lowering: a compiled Module -> an execution Plan (runtime/plan.h). One value table serves
 * both programs: the training graph's values keep their numbers, and the eval graph's inputs
 * and parameters map by name onto the same values, so both programs read the same weights.
 * Fans (for He/Xavier initialisation) come from each parameter's consuming op. */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "compiler/ir.h"
#include "runtime/plan.h"

bool lower_module(const Module *m, const char *source, Plan *plan, Diag *d);

#endif
