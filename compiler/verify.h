/* The IR verifier (QBE's ssacheck): run by the pipeline after every pass. It checks the list
 * structure, SSA order (every operand defined by an earlier Inst), arity against the op table,
 * required attributes, parameter operands against what shape inference declares, every result
 * type against a fresh inference, unique parameter names, and that the graph has outputs.
 * A failure is an internal compiler error: it is reported naming the pass, the value and the
 * op, and the pipeline stops. */
#ifndef NNC_VERIFY_H
#define NNC_VERIFY_H

#include "compiler/ir.h"

bool ir_verify(const Graph *g, Diag *d, const char *after_pass);

#endif
