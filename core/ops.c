/* Tables generated from the NNC_OPS X-macro rows in ops.h: per-op attribute schemas and the
 * OpInfo table. Every table here is indexed by Op and sized NOP. */
#include "core/ops.h"

#include <assert.h>
#include <string.h>

#define A(n, k, r, d, s) {#n, k, r, d, s},
#define X(name, ...) static const AttrSpec attrs_##name[] = {NNC_ATTRS_##name(A){NULL, AK_INT, 0, 0, NULL}};
NNC_OPS(X)
#undef X
#undef A

#define X(name, mn, mx, fl, wr) \
	{#name, mn, mx, fl, wr, attrs_##name, (int)(sizeof attrs_##name / sizeof attrs_##name[0]) - 1},
const OpInfo nnc_ops[NOP] = {NNC_OPS(X)};
#undef X
static_assert(sizeof nnc_ops / sizeof nnc_ops[0] == NOP, "op table out of step with the Op enum");

#define A(n, k, r, d, s) +1
#define X(name, ...) static_assert(0 NNC_ATTRS_##name(A) <= NNC_MAXATTR, "too many attributes: " #name);
NNC_OPS(X)
#undef X
#undef A

#define E(name, op) [EPI_##name] = OP_##op,
const Op nnc_epilogue_op[NEPI] = {[EPI_NONE] = NOP, NNC_EPILOGUES(E)};
#undef E
#define E(name, op) [EPI_##name] = OP_##op##_bwd,
const Op nnc_epilogue_bwd_op[NEPI] = {[EPI_NONE] = NOP, NNC_EPILOGUES(E)};
#undef E

Op
nnc_activation_bwd(Op op, bool *saves_output)
{
	switch (op) {
#define A(a, out)                 \
	case OP_##a:                  \
		if (saves_output)         \
			*saves_output = (out); \
		return OP_##a##_bwd;
		NNC_ACTIVATIONS(A)
#undef A
	default:
		return NOP;
	}
}

Epilogue
nnc_prologue_of(Op op)
{
	for (int e = 1; e < NEPI; e++)
		if (nnc_epilogue_bwd_op[e] == op)
			return (Epilogue)e;
	return EPI_NONE;
}

Epilogue
nnc_epilogue_of(Op op)
{
	for (int e = 1; e < NEPI; e++)
		if (nnc_epilogue_op[e] == op)
			return (Epilogue)e;
	return EPI_NONE;
}

const char *const nnc_group_names[NGROUP] = {"none", "bn_bwd", "bn_stats", "bn_add", "multi"};

GroupKind
nnc_group_kind(const Op *ops, int n)
{
	if (n == 3 && ops[0] == OP_bn_bwd_data && ops[1] == OP_bn_bwd_scale && ops[2] == OP_bias_grad)
		return GROUP_BN_BWD;
	if (n == 2 && ops[0] == OP_bn_apply && ops[1] == OP_add)
		return GROUP_BN_ADD;
	int c = n > 0 && ops[0] == OP_cast && n > 1 && ops[1] == OP_bn_stats;
	if (n >= 2 && n <= 3 && ops[c] == OP_bn_stats && c + 1 + (ops[n - 1] == OP_bn_update) == n)
		return GROUP_BN_STATS;
	bool same = n >= 2 && (ops[0] == OP_sgd_update || ops[0] == OP_adam_update || ops[0] == OP_cast);
	for (int i = 1; same && i < n; i++)
		same = ops[i] == ops[0];
	return same ? GROUP_MULTI : GROUP_NONE;
}

int
nnc_ew_of(Op op, bool *swap)
{
	static const struct {
		Op op;
		bool swap;
	} ew[NEW] = {
#define E(name, sw) {OP_##name, sw},
		NNC_EW(E)
#undef E
	};
	for (int i = 0; i < NEW; i++)
		if (ew[i].op == op) {
			if (swap)
				*swap = ew[i].swap;
			return i;
		}
	return -1;
}

int
nnc_chain_operands(const Op *chain, int nchain)
{
	int n = 0;
	for (int j = 0; j < nchain; j++)
		n += nnc_ops[chain[j]].min_in - (j > 0);
	return n;
}

Op
nnc_op_lookup(const char *name)
{
	for (int i = 0; i < NOP; i++)
		if ((nnc_ops[i].flags & OPF_USER) && strcmp(nnc_ops[i].name, name) == 0)
			return (Op)i;
	return NOP;
}

int
nnc_attr_index(Op op, const char *name)
{
	for (int i = 0; i < nnc_ops[op].nattrs; i++)
		if (strcmp(nnc_ops[op].attrs[i].name, name) == 0)
			return i;
	return -1;
}

const char *
nnc_attrkind_name(AttrKind k)
{
	static const char *names[] = {"int", "int or [h, w]", "float", "bool", "string", "\"f32\" or \"f16\""};
	return names[k];
}
