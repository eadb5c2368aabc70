/* Arena allocator: one per compilation. Allocations are never freed one by one; arena_free
 * releases everything at once, so AST and IR nodes can point at each other freely and error
 * recovery never leaks. Blocks grow geometrically; allocation failure aborts via the caller's
 * out-of-memory handler (arena_alloc returns NULL only when the request itself is absurd). */
#ifndef NNC_ARENA_H
#define NNC_ARENA_H

#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct {
	ArenaBlock *head;
	size_t total;
} Arena;

void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Growable array in an arena: VEC_PUSH(arena, items, n, cap, x). Old storage is left to the arena. */
void *arena_grow(Arena *a, void *items, size_t elem, size_t n, size_t *cap);
#define VEC_PUSH(ar, items, n, cap, x) \
	((items) = arena_grow((ar), (items), sizeof *(items), (n), &(cap)), (items)[(n)++] = (x))

#endif
