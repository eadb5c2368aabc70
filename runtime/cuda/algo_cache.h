/* The convolution algorithms cuDNN's find API measured on one GPU, kept in a text file so that
 * a shape is timed once per GPU and cuDNN version, as PyTorch's cudnn.benchmark times it once
 * per process (docs/cuda.md, "Convolution algorithms"). Plain C without CUDA: the CUDA executor
 * (exec.cu) reads and extends it; tests/unit/test_algo_cache.c checks it on any machine.
 *
 * An entry's key is the executor's description of a convolution (op, shapes, geometry, groups,
 * dtype, layout, and whether only deterministic algorithms were allowed); its value the
 * algorithm, the math type it ran in, its workspace bytes and the milliseconds it took. The
 * file is one line per entry under a header naming the GPU and the cuDNN version:
 *   # nnc convolution algorithms: GPU NAME, cuDNN VERSION
 *   K0 K1 ... K19 : ALGO MATH WORKSPACE MILLISECONDS
 * A line that does not read so is skipped (and counted in the note), so a damaged cache costs a
 * measurement, never a wrong algorithm; the file is replaced whole (a temporary, then a rename). */
#ifndef NNC_ALGO_CACHE_H
#define NNC_ALGO_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ALGO_KEY = 20 };

typedef struct {
	int key[ALGO_KEY];
	int algo, math;
	size_t ws;
	float ms;
} AlgoEntry;

typedef struct {
	char path[4096];   /* "" when there is no cache directory: measurements live for the run */
	char header[512];
	AlgoEntry *e;
	int n, cap;
	int skipped;       /* malformed lines read */
	bool dirty;        /* entries added since the load */
} AlgoFile;

/* The cache file for the GPU named GPU and cuDNN version VERSION, in $NNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc: conv-algos-GPU-cudnnVERSION.txt, every character
 * of the name but letters and digits written as '-'. Empty when none of those is set. */
void algo_file_path(char *out, size_t n, const char *gpu, int version);

/* Starts F for PATH (may be ""), reading the entries already there; a missing file is an empty
 * cache. Returns 0, or -1 when out of memory. */
int algo_file_load(AlgoFile *f, const char *path, const char *gpu, int version);
const AlgoEntry *algo_file_find(const AlgoFile *f, const int key[ALGO_KEY]);
/* Adds (or replaces) an entry. Returns 0, or -1 when out of memory. */
int algo_file_add(AlgoFile *f, const AlgoEntry *e);
/* Writes the file when entries were added (creating its directory). Returns 0, or -1 with the
 * reason in ERR: the run goes on, measuring again next time. */
int algo_file_save(AlgoFile *f, char *err, size_t errlen);
void algo_file_free(AlgoFile *f);

#ifdef __cplusplus
}
#endif

#endif
