/* What a backend implements behind runtime/backend.h: a table of operations, and the GPU
 * backend's entry points, which runtime/cuda/backend_cuda.c defines where the build has CUDA and
 * runtime/backend_nogpu.c otherwise (CMake picks one; no #ifdef anywhere). */
#ifndef NNC_BACKEND_IMPL_H
#define NNC_BACKEND_IMPL_H

#include "runtime/backend.h"

typedef struct BackendOps {
	const char *name;
	bool (*run)(Backend *b, Exec *e, const PlanProgram *prog, char *err, size_t errlen);
	bool (*sync)(Backend *b, Exec *e, char *err, size_t errlen);
	/* NULL: no resident loop (backend_train_begin does nothing) */
	bool (*train_begin)(Backend *b, Exec *e, const CifarData *data, const CifarLoader *ld, const EpochSums *sums,
		char *err, size_t errlen);
	bool (*train_step)(Backend *b, char *err, size_t errlen);
	bool (*train_read)(Backend *b, Exec *e, bool end_of_epoch, EpochSums *sums, long *bad_step, float *bad_loss,
		char *err, size_t errlen);
	/* the resident loop's evaluation over the device's test split (NULL: host-fed batches) */
	bool (*evaluate)(Backend *b, int64_t n_test, Score *sc, char *err, size_t errlen);
	int (*graph_nodes)(const Backend *b);
	const char *(*graph_note)(const Backend *b);
	/* the algorithm of convolution step STEP of program G, in words (NULL: not a GPU) */
	const char *(*conv_algo)(const Backend *b, int g, int step);
	void (*close)(Backend *b);
} BackendOps;

struct Backend {
	const BackendOps *ops;
	BackendOptions opt;
	bool resident; /* set by a successful train_begin */
	void *impl;
};

/* Usable GPUs (> 0, with MSG describing the first), or <= 0 with MSG saying why there are none. */
int backend_gpu_count(char *msg, size_t msglen);
/* Opens the GPU backend on E's plan (a GPU is known to be there) and uploads E's parameters. */
Backend *backend_gpu_open(Exec *e, const BackendOptions *o, char *note, size_t notelen, char *err, size_t errlen);

#endif
