/* The CUDA backend's cache of measured convolution algorithms (runtime/cuda/algo_cache.h),
 * without a GPU: where the file goes, that what is saved reads back, that a damaged line costs
 * a measurement and never gives a wrong entry, and that an unwritable place is an error with a
 * message, not a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cuda/algo_cache.h"

static int checks, failures;

static void
check(int ok, const char *what)
{
	checks++;
	if (!ok) {
		failures++;
		printf("FAIL %s\n", what);
	}
}

static AlgoEntry
entry(int seed)
{
	AlgoEntry e = {{0}, seed % 7, seed % 3, (size_t)seed * 1048576u, 0.25f * (float)seed};
	for (int i = 0; i < ALGO_KEY; i++)
		e.key[i] = seed * 100 + i;
	return e;
}

static int
same(const AlgoEntry *a, const AlgoEntry *b)
{
	return a && b && memcmp(a->key, b->key, sizeof a->key) == 0 && a->algo == b->algo && a->math == b->math &&
	       a->ws == b->ws && a->ms == b->ms;
}

int
main(void)
{
	char dir[] = "/tmp/nnc-algo-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char path[4096], sub[4200];
	snprintf(sub, sizeof sub, "%s/cache", dir);
	setenv("NNC_CACHE_DIR", sub, 1);
	algo_file_path(path, sizeof path, "NVIDIA H200 (141 GB)", 91400);
	char want[4400];
	snprintf(want, sizeof want, "%s/conv-algos-NVIDIA-H200--141-GB--cudnn91400.txt", sub);
	check(strcmp(path, want) == 0, "the cache path under NNC_CACHE_DIR, the GPU name sanitized");
	unsetenv("NNC_CACHE_DIR");
	setenv("XDG_CACHE_HOME", "/x", 1);
	char p2[4096];
	algo_file_path(p2, sizeof p2, "g", 1);
	check(strcmp(p2, "/x/nnc/conv-algos-g-cudnn1.txt") == 0, "the cache path under XDG_CACHE_HOME");

	/* a missing file is an empty cache; entries saved (the directory made) read back */
	AlgoFile f;
	check(algo_file_load(&f, path, "H200", 91400) == 0 && f.n == 0 && f.skipped == 0, "a missing file loads empty");
	AlgoEntry a = entry(1), b = entry(2), b2 = entry(2);
	b2.algo = 5;
	b2.ms = 0.125f;
	char err[512] = "";
	check(algo_file_add(&f, &a) == 0 && algo_file_add(&f, &b) == 0 && algo_file_add(&f, &b2) == 0 && f.n == 2,
		"adding replaces an entry of the same key");
	check(algo_file_save(&f, err, sizeof err) == 0, "save");
	algo_file_free(&f);
	check(algo_file_load(&f, path, "H200", 91400) == 0 && f.n == 2 && f.skipped == 0, "the saved file loads");
	check(same(algo_file_find(&f, a.key), &a) && same(algo_file_find(&f, b.key), &b2), "entries read back exactly");
	AlgoEntry c = entry(3);
	check(algo_file_find(&f, c.key) == NULL, "an unknown key is not found");
	check(algo_file_save(&f, err, sizeof err) == 0 && !f.dirty, "saving an unchanged cache writes nothing");
	algo_file_free(&f);

	/* damaged lines are skipped, never half-read: too few numbers, no separator, a negative
	 * workspace, trailing text, and a last line cut short without its newline */
	FILE *out = fopen(path, "a");
	fprintf(out, "1 2 3 : 4 5 6 7\n");
	fprintf(out, "300 301 302 303 304 305 306 307 308 309 310 311 312 313 314 315 316 317 318 319 4 1 8 0.5\n");
	fprintf(out, "300 301 302 303 304 305 306 307 308 309 310 311 312 313 314 315 316 317 318 319 : 4 1 -8 0.5\n");
	fprintf(out, "300 301 302 303 304 305 306 307 308 309 310 311 312 313 314 315 316 317 318 319 : 4 1 8 0.5 x\n");
	fprintf(out, "300 301 302 303 304 305 306 307 308 309 310 311 312 313 314 315 316 317 318 319 : 4 1 8 0.5");
	fclose(out);
	check(algo_file_load(&f, path, "H200", 91400) == 0 && f.n == 2 && f.skipped == 5, "damaged lines are skipped");
	check(algo_file_find(&f, c.key) == NULL && same(algo_file_find(&f, a.key), &a), "the good entries stay");
	algo_file_free(&f);

	/* an unwritable place: an error naming the file, and the run can go on */
	char blocked[4300];
	snprintf(blocked, sizeof blocked, "%s/file", dir);
	fclose(fopen(blocked, "w"));
	snprintf(blocked, sizeof blocked, "%s/file/sub/algos.txt", dir);
	algo_file_load(&f, blocked, "H200", 1);
	algo_file_add(&f, &a);
	check(algo_file_save(&f, err, sizeof err) == -1 && strstr(err, blocked) != NULL, "an unwritable cache is an error");
	algo_file_free(&f);
	algo_file_load(&f, "", "H200", 1);
	algo_file_add(&f, &a);
	check(algo_file_save(&f, err, sizeof err) == 0 && f.n == 1, "without a cache directory, entries live for the run");
	algo_file_free(&f);

	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("note: could not remove %s\n", dir);
	printf("test_algo_cache: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
