/* Whole numbers from command-line values, strictly: the whole string in base 10, no overflow,
 * within a range (nnc's and nnrun's option parsers). */
#ifndef NNC_NUM_H
#define NNC_NUM_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* *OUT = S as a number from LO to HI; false (and *OUT untouched) otherwise. */
static inline bool
num_parse(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

#endif
