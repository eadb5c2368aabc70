/* Type helpers (see types.h). */
#include "core/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t
type_numel(const Type *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank; i++)
		if (__builtin_mul_overflow(n, t->dim[i], &n))
			return INT64_MAX; /* saturates (dims from a damaged plan): callers check their limits */
	return n;
}

bool
type_eq(const Type *a, const Type *b)
{
	if (a->dtype != b->dtype || a->layout != b->layout || a->rank != b->rank)
		return false;
	for (int i = 0; i < a->rank; i++)
		if (a->dim[i] != b->dim[i])
			return false;
	return true;
}

size_t
dtype_size(DType d)
{
	static const size_t sizes[NDTYPE] = {4, 2, 4};
	return sizes[d];
}

const char *
dtype_name(DType d)
{
	static const char *names[NDTYPE] = {"f32", "f16", "i32"};
	return names[d];
}

const char *
arena_name(MemArena a)
{
	static const char *names[NARENA] = {"", "param", "io", "act"};
	return names[a];
}

const char *
layout_name(Layout l)
{
	static const char *names[NLAYOUT] = {"scalar", "n", "nc", "nchw", "oihw", "oi", "c", "kc", "nhwc", "ohwi"};
	return names[l];
}

Layout
layout_lookup(const char *name)
{
	for (int i = 0; i < NLAYOUT; i++)
		if (name && strcmp(name, layout_name((Layout)i)) == 0)
			return (Layout)i;
	return NLAYOUT;
}

bool
layout_channels_last(Layout l)
{
	return l == LY_NHWC || l == LY_OHWI;
}

Layout
layout_with(Layout l, bool cl)
{
	if (l == LY_NCHW || l == LY_NHWC)
		return cl ? LY_NHWC : LY_NCHW;
	if (l == LY_OIHW || l == LY_OHWI)
		return cl ? LY_OHWI : LY_OIHW;
	return l;
}

char *
type_str(const Type *t, char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, "%s[", dtype_name(t->dtype));
	for (int i = 0; i < t->rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->dim[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
	return buf;
}

char *
type_str_layout(const Type *t, char *buf, size_t n)
{
	type_str(t, buf, n);
	size_t k = strlen(buf);
	if (k < n)
		snprintf(buf + k, n - k, " %s", layout_name(t->layout));
	return buf;
}

Type
type_make(DType d, Layout l, int rank, const int64_t *dims)
{
	Type t = {.dtype = d, .layout = l, .rank = rank};
	for (int i = 0; i < rank; i++)
		t.dim[i] = dims[i];
	return t;
}

const char *
double_str(char buf[32], double v)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}
