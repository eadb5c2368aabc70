/* The compiler's view of shape inference: infer_inst applies runtime/infer.h's rule to an IR
 * instruction, adding the checks that need the graph (labels' class count against logits).
 * Sema uses it to build the IR; the verifier re-runs it after every pass and compares, so a
 * pass cannot leave a mistyped graph behind. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include "compiler/ir.h"
#include "runtime/infer.h"

/* IN's first in->nin operands must be set; BATCH is the graph's batch size. */
bool infer_inst(const Inst *in, int batch, InferResult *r);

#endif
