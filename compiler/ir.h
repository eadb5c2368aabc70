/* The IR: an SSA graph of typed values and instructions in one arena.
 *
 * A Graph is a doubly linked list of Insts in a valid execution order (every operand is
 * defined by an earlier Inst). Each Inst applies one Op from core/ops.h to `nargs` operand
 * Values: the first `nin` are its tensor inputs from the source, the rest are the parameters its
 * shape inference declared (weight, bias, scale, shift, running statistics), in declaration
 * order. Attributes are stored by position in the op's schema. Every Value has exactly one
 * defining Inst and a Type (dtype, shape, layout). Parameters and inputs are Insts too
 * (OP_param, OP_input), kept at the head of the list, so later passes see one uniform graph. */
#ifndef NNC_IR_H
#define NNC_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "grammar/diag.h"
#include "core/recipe.h"
#include "core/types.h"

typedef struct Value Value;
typedef struct Inst Inst;

enum { NNC_MAXPARTS = 3 };

/* Which part of a training step an Inst belongs to; dumps separate the parts. */
typedef enum { PH_FORWARD, PH_BACKWARD, PH_UPDATE } Phase;


struct Value {
	int id;
	Type type;
	Inst *def;
	int arena;      /* MemArena, set by memplan */
	int64_t offset; /* bytes into the arena */
};

struct Inst {
	Op op;
	int nin, nargs;
	Value **args;
	Value *res; /* NULL for OPF_NORES ops */
	AttrVal attr[NNC_MAXATTR];
	Loc loc;
	const char *scope; /* hierarchical name of ops with parameters, e.g. "stage2.block3.conv1" */
	int64_t macs;      /* forward multiply-accumulates per image, from shape inference */
	Phase phase;
	Op origin;         /* the source-level op this Inst implements part of (its own op for those) */
	DType acc;         /* accumulation dtype (the storage dtype is its result's, or operands') */
	Epilogue epi;      /* set by fuse (OPF_EPI ops): the activation the kernel applies last */
	Epilogue pro;      /* set by fuse (OPF_PRO ops): the activation whose backward the kernel
	                    * applies to operand 0 first; that activation's output is the last operand */
	Op chain[NNC_MAXCHAIN]; /* set by fuse (OPF_CHAIN ops): elementwise ops run before this one,
	                         * feeding it (see nnc_chain_operands in ops.h) */
	int nchain;
	int group; /* set by fuse: N > 1 when this op and the next N - 1 steps (sources are not
	            * steps) are one group a backend may run as one kernel (GroupKind, core/ops.h) */
	/* Set by fuse: the source ops this Inst absorbed, in order (a batch norm folded into a
	 * conv, then the epilogue's activation), shown in dumps as conv2d+batchnorm+relu. */
	struct {
		Op op;
		Loc loc;
	} part[NNC_MAXPARTS];
	int nparts;
	Inst *prev, *next;
};

typedef struct {
	Arena *arena;
	const char *name;
	int batch;
	Inst *first, *last;
	Inst *head_end; /* last input/param Inst: new sources are inserted after it */
	Inst *cursor;   /* if set, new non-source Insts go before it, else at the end */
	Phase phase;    /* phase given to new Insts */
	int nvalues;
	/* Set by autodiff: each trainable parameter with its gradient, for the optimizer pass. */
	Value **grad_of, **grads;
	int ngrads;
	int64_t arena_bytes[NARENA]; /* set by memplan: each arena's size for this graph */
	int64_t naive_bytes;         /* what every value in its own buffer would take */
	int64_t live_peak;           /* the most activation bytes alive at one step (a lower bound) */
} Graph;

/* Precision policy (passes/precision.c, docs/precision.md): the storage dtype of activations
 * and gradients, of parameters (master weights) and of state (optimizer, batch-norm running
 * statistics), the accumulation dtype, overrides per op kind and per layer (scope prefix), and
 * loss scaling. The override limit leaves room for a policy naming every layer of a deep
 * network (nnc tune-precision writes one entry per layer it moves, ResNet-110 has 333). */
enum { PREC_MAX_OVERRIDES = 1024 };
typedef struct {
	const char *name;          /* fp32, fp16, mixed, or the policy file */
	DType act, param, state, acc;
	struct {
		const char *what;      /* op kind (e.g. "softmax_cross_entropy") or layer scope prefix */
		bool layer;
		DType store, acc;
	} over[PREC_MAX_OVERRIDES];
	int nover;
	int loss_scaling;          /* 0 none, 1 static, 2 dynamic */
	double scale_init;
	int scale_interval;
} Precision;

/* nnc --layout: the memory order of images and filters (passes/layout.c). */
typedef enum { LAYOUT_AUTO, LAYOUT_NCHW, LAYOUT_NHWC } LayoutMode;

/* A compilation's graphs. sema builds `main` (the forward graph); when the model has a scalar
 * loss output, the split pass derives `eval` (inference mode) from it and the training passes
 * turn `main` into the whole training step; otherwise `main` stays the inference graph. */
typedef struct {
	Graph *main;
	Graph *eval;
	/* The inference graph before fusion (a copy the fuse pass keeps): the network as written,
	 * for statistics and summaries; NULL when nothing was fused (use eval, or main). */
	Graph *network;
	const Recipe *recipe;   /* training settings: optimizer, decay policy, batch */
	const Precision *precision; /* dtypes and loss scaling (passes/precision.c) */
	bool no_reuse;              /* memplan: one region per value (for comparisons) */
	bool no_fuse;               /* skip the fuse pass (for comparisons) */
	LayoutMode layout;          /* passes/layout.c */
	bool training;
} Module;

Graph *graph_new(Arena *a, const char *name, int batch);
/* Appends an Inst (or, for OP_param/OP_input, inserts it after the other sources). Operands and
 * attributes are filled in by the caller; the result Value is created with type T unless the op
 * has no result. */
Inst *inst_new(Graph *g, Op op, Loc loc, int nargs, Type t);
void inst_remove(Graph *g, Inst *in);
/* Moves IN to just after POS (the caller keeps operands defined before their readers). */
void inst_move_after(Graph *g, Inst *in, Inst *pos);
/* Makes every operand that refers to OLD refer to NEW instead (a walk over the whole graph). */
void value_replace_uses(Graph *g, Value *old, Value *new);
/* The same for the many replacements of a pass that walks the graph forward, in one walk
 * instead of one each: value_map_set records that NEW replaces OLD (a value that existed when
 * the map was made); value_map_apply rewrites IN's operands through the recorded replacements
 * (following chains). Every use of a value follows its definition, so applying the map to each
 * Inst as the walk reaches it, before reading its operands, then to every Inst once at the end
 * (value_map_finish) gives what replacing every use at each replacement would. */
typedef struct {
	Graph *g;
	Value **to; /* by value id, below n */
	int n;
} ValueMap;
void value_map_init(ValueMap *m, Graph *g);
void value_map_set(ValueMap *m, Value *old, Value *new);
void value_map_apply(const ValueMap *m, Inst *in);
void value_map_finish(const ValueMap *m);
/* A deep copy of G (Insts, Values, attribute arrays) in the same arena, named NAME. */
Graph *graph_clone(const Graph *g, const char *name);
/* Renumbers values 0, 1, 2... in list order (the pipeline does this after every pass so dumps
 * read top to bottom). */
void graph_renumber(Graph *g);
void inst_set_int(Inst *in, const char *attr, int64_t v);
void inst_set_str(Inst *in, const char *attr, const char *s);
void inst_set_bool(Inst *in, const char *attr, bool v);
void inst_apply_defaults(Inst *in);

/* Attribute access by schema name; the name must exist (checked with an assert). */
const AttrVal *attr(const Inst *in, const char *name);
int64_t attr_i(const Inst *in, const char *name);
double attr_f(const Inst *in, const char *name);
const char *attr_s(const Inst *in, const char *name);


#endif
