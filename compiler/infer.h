/* Shape and type inference, one rule per op, generated in step with the op table.
 *
 * infer_inst computes an Inst's result type from its tensor inputs and attributes, the
 * parameters the op needs (ParamDecl: name suffix, kind, type, initializer), and its forward
 * MACs per image. Sema uses it to build the IR; the verifier re-runs it after every pass and
 * compares, so a pass cannot leave a mistyped graph behind. On a user error it returns false
 * with a message naming the op and the shapes involved. */
#ifndef NNC_INFER_H
#define NNC_INFER_H

#include "compiler/ir.h"

enum { NNC_MAXPARAMS = 4 };

typedef struct {
	const char *suffix; /* last name component, as PyTorch names it: "weight", "bias", "running_mean"... */
	const char *kind;   /* role: "weight", "bias", "scale", "shift", "running_mean", "running_var" */
	Type type;
	const char *init;
	bool trainable;
} ParamDecl;

typedef struct {
	Type out;
	ParamDecl params[NNC_MAXPARAMS];
	int nparams;
	int64_t macs;
	char err[512];
} InferResult;

/* Initializers a parameter may name (weight_init=..., bias_init=...), NULL-terminated. */
extern const char *const nnc_initializers[];

/* IN's first in->nin operands must be set; BATCH is the graph's batch size. */
bool infer_inst(const Inst *in, int batch, InferResult *r);

#endif
