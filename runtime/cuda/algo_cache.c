/* The measured-algorithm cache file (algo_cache.h). */
#include "runtime/cuda/algo_cache.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
algo_file_path(char *out, size_t n, const char *gpu, int version)
{
	const char *dir = getenv("NNC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[3072];
	if (dir && *dir)
		snprintf(base, sizeof base, "%s", dir);
	else if (xdg && *xdg)
		snprintf(base, sizeof base, "%s/nnc", xdg);
	else if (home && *home)
		snprintf(base, sizeof base, "%s/.cache/nnc", home);
	else {
		snprintf(out, n, "%s", "");
		return;
	}
	char name[256];
	size_t k = 0;
	for (const char *p = gpu ? gpu : "gpu"; *p && k + 1 < sizeof name; p++)
		name[k++] = isalnum((unsigned char)*p) ? *p : '-';
	name[k] = 0;
	snprintf(out, n, "%s/conv-algos-%s-cudnn%d.txt", base, name, version);
}

/* One entry from LINE: ALGO_KEY ints, ':', algo, math, workspace, milliseconds. */
static bool
parse(const char *line, AlgoEntry *e)
{
	const char *p = line;
	char *end;
	for (int i = 0; i < ALGO_KEY; i++) {
		long v = strtol(p, &end, 10);
		if (end == p || v < -2147483647L || v > 2147483647L)
			return false;
		e->key[i] = (int)v;
		p = end;
	}
	while (*p == ' ')
		p++;
	if (*p++ != ':')
		return false;
	long algo = strtol(p, &end, 10);
	if (end == p || algo < 0 || algo > 1000)
		return false;
	p = end;
	long math = strtol(p, &end, 10);
	if (end == p || math < 0 || math > 100)
		return false;
	for (p = end; *p == ' '; p++)
		;
	if (!isdigit((unsigned char)*p))
		return false;
	unsigned long long ws = strtoull(p, &end, 10);
	p = end;
	double ms = strtod(p, &end);
	if (end == p || !(ms >= 0))
		return false;
	for (p = end; *p == ' ' || *p == '\n' || *p == '\r'; p++)
		;
	if (*p)
		return false;
	e->algo = (int)algo;
	e->math = (int)math;
	e->ws = (size_t)ws;
	e->ms = (float)ms;
	return true;
}

int
algo_file_load(AlgoFile *f, const char *path, const char *gpu, int version)
{
	memset(f, 0, sizeof *f);
	snprintf(f->path, sizeof f->path, "%s", path ? path : "");
	snprintf(f->header, sizeof f->header, "# nnc convolution algorithms: GPU %s, cuDNN %d", gpu ? gpu : "?", version);
	FILE *in = f->path[0] ? fopen(f->path, "r") : NULL;
	if (!in)
		return 0;
	char line[1024];
	int rc = 0;
	while (fgets(line, sizeof line, in)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		AlgoEntry e;
		if (!parse(line, &e) || strchr(line, '\n') == NULL) {
			f->skipped++;
			continue;
		}
		if (algo_file_add(f, &e) != 0) {
			rc = -1;
			break;
		}
	}
	fclose(in);
	f->dirty = false;
	return rc;
}

const AlgoEntry *
algo_file_find(const AlgoFile *f, const int key[ALGO_KEY])
{
	for (int i = 0; i < f->n; i++)
		if (memcmp(f->e[i].key, key, sizeof f->e[i].key) == 0)
			return &f->e[i];
	return NULL;
}

int
algo_file_add(AlgoFile *f, const AlgoEntry *e)
{
	AlgoEntry *old = (AlgoEntry *)algo_file_find(f, e->key);
	if (old) {
		*old = *e;
		f->dirty = true;
		return 0;
	}
	if (f->n == f->cap) {
		int cap = f->cap ? 2 * f->cap : 64;
		AlgoEntry *grown = realloc(f->e, (size_t)cap * sizeof *grown);
		if (!grown)
			return -1;
		f->e = grown;
		f->cap = cap;
	}
	f->e[f->n++] = *e;
	f->dirty = true;
	return 0;
}

/* mkdir -p of the directory part of PATH. */
static int
make_dirs(const char *path)
{
	char d[4096];
	snprintf(d, sizeof d, "%s", path);
	char *slash = strrchr(d, '/');
	if (!slash)
		return 0;
	*slash = 0;
	for (char *p = d + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(d, 0777) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(d, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

int
algo_file_save(AlgoFile *f, char *err, size_t errlen)
{
	if (!f->dirty || !f->path[0])
		return 0;
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", f->path, (long)getpid());
	FILE *out = NULL;
	if (make_dirs(f->path) != 0 || !(out = fopen(tmp, "w"))) {
		snprintf(err, errlen, "%s: cannot write the convolution algorithm cache: %s", f->path, strerror(errno));
		return -1;
	}
	bool ok = fprintf(out, "%s\n", f->header) > 0;
	for (int i = 0; i < f->n && ok; i++) {
		for (int k = 0; k < ALGO_KEY && ok; k++)
			ok = fprintf(out, "%d ", f->e[i].key[k]) > 0;
		ok = ok && fprintf(out, ": %d %d %zu %.6g\n", f->e[i].algo, f->e[i].math, f->e[i].ws, (double)f->e[i].ms) > 0;
	}
	ok = fclose(out) == 0 && ok;
	if (!ok || rename(tmp, f->path) != 0) {
		snprintf(err, errlen, "%s: cannot write the convolution algorithm cache: %s", f->path, strerror(errno));
		remove(tmp);
		return -1;
	}
	f->dirty = false;
	return 0;
}

void
algo_file_free(AlgoFile *f)
{
	free(f->e);
	memset(f, 0, sizeof *f);
}
