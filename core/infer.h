/* Shape and type inference, one rule per op, generated in step with the op table.
 *
 * infer_op computes an op's result type from its input types and attributes, the parameters
 * the op needs (ParamDecl: name suffix, role, type, initializer), and its forward MACs per
 * image. The compiler uses it to build and verify the IR (compiler/check.h: infer_inst); the
 * runtime re-runs it on every step of a loaded plan, so a hand-edited, inconsistent plan is
 * rejected. On a user error it returns false with a message naming the op and the shapes. */
#ifndef NNC_RUNTIME_INFER_H
#define NNC_RUNTIME_INFER_H

#include "core/types.h"

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
/* Whether a parameter of KIND is state (running statistics, optimizer state: never trained,
 * stored in the precision policy's state dtype) rather than a weight, bias, scale or shift. */
bool nnc_state_kind(const char *kind);

/* An op application as inference sees it: the types of its tensor inputs, its attributes
 * (indexed by schema position), and for self-typed ops (param) the type already recorded. */
typedef struct {
	Op op;
	int nin;
	const Type *in[NNC_MAXARGS];
	const AttrVal *attr;
	const Type *res;
} OpSig;

bool infer_op(const OpSig *sig, int batch, InferResult *r);

#endif
