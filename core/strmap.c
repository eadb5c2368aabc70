/* String hash map (see strmap.h). The slot table doubles when half full. */
#include "core/strmap.h"

#include <stdint.h>
#include <string.h>

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void
strmap_init(StrMap *m, Arena *a)
{
	memset(m, 0, sizeof *m);
	m->arena = a;
}

static int *
find(const StrMap *m, const char *key)
{
	if (!m->nslots)
		return NULL;
	size_t i = hash(key) & (m->nslots - 1);
	for (;; i = (i + 1) & (m->nslots - 1)) {
		int *s = &m->slots[i];
		if (!*s || strcmp(m->keys[*s - 1], key) == 0)
			return s;
	}
}

void *
strmap_get(const StrMap *m, const char *key)
{
	int *s = find(m, key);
	return s && *s ? m->vals[*s - 1] : NULL;
}

static void
rehash(StrMap *m)
{
	m->nslots = m->nslots ? m->nslots * 2 : 64;
	m->slots = arena_alloc(m->arena, m->nslots * sizeof *m->slots);
	for (size_t k = 0; k < m->n; k++)
		*find(m, m->keys[k]) = (int)k + 1;
}

void *
strmap_put(StrMap *m, const char *key, void *val)
{
	int *s = find(m, key);
	if (s && *s) {
		void *old = m->vals[*s - 1];
		m->vals[*s - 1] = val;
		return old;
	}
	if (2 * (m->n + 1) > m->nslots) {
		rehash(m);
		s = find(m, key);
	}
	m->keys = arena_grow(m->arena, m->keys, sizeof *m->keys, m->n, &m->kcap);
	m->vals = arena_grow(m->arena, m->vals, sizeof *m->vals, m->n, &m->vcap);
	m->keys[m->n] = arena_strdup(m->arena, key);
	m->vals[m->n] = val;
	*s = (int)++m->n;
	return NULL;
}
