/* An Exec's parameters to and from files: checkpoints (every parameter and optimizer state,
 * verified, with the run state a resume needs) and .safetensors weights (the model's parameters
 * under their PyTorch-style names). Conversions between the file's dtype and the plan's storage
 * (f32 <-> f16) round to nearest even. Files hold PyTorch's layouts (OIHW filters) whatever the
 * plan's (exec_copy_torch). */
#ifndef NNC_WEIGHTS_H
#define NNC_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/backend.h"
#include "runtime/exec.h"
#include "runtime/safetensors.h"

/* Where a run is: the data order, and the running sums of the epoch in progress (so a resumed
 * epoch reports the same metrics as an uninterrupted one). */
typedef struct RunState {
	uint64_t epoch, position;
	double seconds;
	EpochSums sums;
	int train_limit, test_limit, records; /* the run's data options (0: all, the official files) */
} RunState;

/* What a checkpoint says of the run that wrote it, for --resume to continue that run: its
 * effective recipe (the plan's with its --set overrides; RECIPE, "key: value" lines) and data
 * options. HAS is false for a checkpoint from before they were recorded. */
typedef struct {
	bool has;
	char recipe[4096];
	int train_limit, test_limit, records;
} RunOptions;

/* Reads PATH's run options (its metadata only; weights_load checks the whole file). */
bool weights_run_options(const char *path, RunOptions *ro, char *err, size_t errlen);

/* The input normalization PATH's weights were trained with (an export's metadata nnc.normalize.mean
 * and .std, a checkpoint's recorded recipe), set into R's normalize.* with *HAS true; a file
 * without it (older, or from PyTorch) leaves R alone with *HAS false. False with a message when
 * the file cannot be read or the recorded values are malformed. */
bool weights_normalization(const char *path, Recipe *r, bool *has, char *err, size_t errlen);

/* The identity a checkpoint records: the model's name and a hash of every parameter's name and
 * shape, so a checkpoint resumes with any plan of the same network (recompiled with other
 * settings). Written into BUF (N bytes), which is returned. */
const char *weights_plan_identity(const Plan *p, char *buf, size_t n);

/* The plan's parameters as safetensors tensors over E's storage (ALL: optimizer state too),
 * in PyTorch's layout: channels-last filters (passes/layout.c) are copied into OIHW order in
 * one block put in *OWNED (NULL when there are none). *N gets the count. NULL when out of
 * memory; the caller frees the array and *OWNED. */
StTensor *weights_tensors(const Exec *e, bool all, size_t *n, void **owned);

/* Saves every parameter and optimizer state of E with the run state RS (atomic: PATH.tmp, then
 * a rename; the previous checkpoint stays whole until then). */
bool weights_save_checkpoint(const Exec *e, const char *path, const RunState *rs, char *err, size_t errlen);

/* Loads weights by name into E: from a checkpoint (everything, verified; with RESUME, also its
 * run state into E and RS) or from a .safetensors file (model parameters only; missing
 * optimizer state stays zero). */
bool weights_load(Exec *e, const char *path, bool resume, RunState *rs, char *err, size_t errlen);

/* Writes the model's parameters (no optimizer state) of E to PATH as .safetensors. */
bool weights_export(const Exec *e, const char *path, char *err, size_t errlen);

#endif
