/* The compiler's view of shape inference: infer_inst applies core/infer.h's rule to an IR
 * instruction, adding the checks that need the graph (labels' class count against logits).
 * Sema uses it to build the IR; the verifier re-runs it after every pass and compares, so a
 * pass cannot leave a mistyped graph behind. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include "compiler/ir.h"
#include "core/infer.h"

/* IN's first in->nin operands must be set; BATCH is the graph's batch size. */
bool infer_inst(const Inst *in, int batch, InferResult *r);

/* For passes that add ops: inst_build creates OP at the graph's insertion point with ARGS and
 * the location and scope of LIKE; the caller sets attributes, then inst_type fills defaults
 * and types the result. A failure there is a compiler bug, reported as an internal error. */
Inst *inst_build(Graph *g, Op op, const Inst *like, int nargs, Value *const *args);
bool inst_type(Graph *g, Diag *d, Inst *in);
void inst_set_float(Inst *in, const char *attr, double v);
void inst_set_int2(Inst *in, const char *attr, int64_t h, int64_t w);

#endif
