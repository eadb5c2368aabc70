/* String-keyed hash map (open addressing, linear probing) whose keys and table live in an arena.
 * Keys are kept in insertion order too, so iteration (for "did you mean" suggestions, dumps) is
 * deterministic. Values are opaque pointers. */
#ifndef NNC_STRMAP_H
#define NNC_STRMAP_H

#include <stddef.h>

#include "core/arena.h"

typedef struct {
	Arena *arena;
	const char **keys; /* insertion order */
	void **vals;
	size_t n, kcap, vcap; /* entries, and the capacities of keys and vals */
	int *slots;        /* index+1 into keys, 0 = empty */
	size_t nslots;
} StrMap;

void strmap_init(StrMap *m, Arena *a);
void *strmap_get(const StrMap *m, const char *key);
/* Sets KEY to VAL; returns the previous value or NULL. The key is copied. */
void *strmap_put(StrMap *m, const char *key, void *val);

#endif
