/* Tensor types and attribute values, shared by the compiler's IR and the runtime's plans: a
 * Type is a dtype, a layout naming what each dimension means, and up to NNC_MAXRANK
 * dimensions; an AttrVal holds one op attribute by its schema kind (core/ops.h). */
#ifndef NNC_TYPES_H
#define NNC_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"

typedef enum { DT_F32, DT_F16, DT_I32, NDTYPE } DType;

/* Layouts name the meaning of each dimension and, for images and filters, their order in
 * memory. OIHW/OI are filters, C per-channel vectors, KC per-channel rows (batch-norm
 * statistics [3, C]). The dims of a Type are always in the logical order (N, C, H, W) or
 * (O, I, H, W); NHWC and OHWI (KRSC) store the same tensor channels-last, element
 * (n, c, h, w) at ((n * H + h) * W + w) * C + c (passes/layout.c chooses them). */
typedef enum { LY_SCALAR, LY_N, LY_NC, LY_NCHW, LY_OIHW, LY_OI, LY_C, LY_KC, LY_NHWC, LY_OHWI, NLAYOUT } Layout;

/* The memory arenas a value lives in (passes/memplan.c places them; plans, both executors and
 * the dumps use the same numbers and names): parameters and state for the whole run, the
 * inputs the data loader fills, and transients. ARENA_NONE: not placed yet (the compiler before
 * memplan); every value of a plan is placed. Arrays over arenas have NARENA entries, the first
 * unused; loops run from ARENA_PARAM. */
typedef enum { ARENA_NONE, ARENA_PARAM, ARENA_IO, ARENA_ACT, NARENA } MemArena;

enum { NNC_MAXRANK = 4, NNC_MAXARGS = 64 };

typedef struct {
	DType dtype;
	Layout layout;
	int rank;
	int64_t dim[NNC_MAXRANK];
} Type;

typedef struct {
	bool set;
	int64_t i[2]; /* INT: i[0]; INT2: [h, w]; BOOL: i[0] */
	double f;
	const char *s;
} AttrVal;


int64_t type_numel(const Type *t);
bool type_eq(const Type *a, const Type *b);
size_t dtype_size(DType d);
const char *dtype_name(DType d);
const char *layout_name(Layout l);
/* The layout called NAME ("nchw", "nhwc", ...), or NLAYOUT. */
Layout layout_lookup(const char *name);
/* Whether L stores channels last (NHWC, OHWI). */
bool layout_channels_last(Layout l);
/* The same kind of tensor (image or filter) channels-last (CL) or channels-first. */
Layout layout_with(Layout l, bool cl);

/* Whether T is an image or filter stored channels-last. */
static inline bool
type_channels_last(const Type *t)
{
	return t->rank == 4 && (t->layout == LY_NHWC || t->layout == LY_OHWI);
}

/* A tensor as both backends' per-channel kernels see it, [rows, C, plane]: [N, C, H*W] for an
 * NCHW image and [N, C, 1] for [N, C]; an NHWC image is [N*H*W, C, 1], the same per-channel
 * sums over the same elements in another order. */
static inline int64_t
type_rows(const Type *t)
{
	return t->rank == 4 && t->layout == LY_NHWC ? t->dim[0] * t->dim[2] * t->dim[3] : t->dim[0];
}

static inline int64_t
type_plane(const Type *t)
{
	return t->rank == 4 && t->layout != LY_NHWC ? t->dim[2] * t->dim[3] : 1;
}
/* "param", "io", "act" ("" for ARENA_NONE). */
const char *arena_name(MemArena a);
/* Writes e.g. "f32[128,16,32,32]" into buf and returns buf. */
char *type_str(const Type *t, char *buf, size_t n);
/* type_str followed by the layout's name, e.g. "f16[128,16,32,32] nhwc" (messages about types
 * that may differ in layout alone). */
char *type_str_layout(const Type *t, char *buf, size_t n);
Type type_make(DType d, Layout l, int rank, const int64_t *dims);
/* The shortest "%g" text that reads back as exactly V (for plans and recipes). */
const char *double_str(char buf[32], double v);

#endif
