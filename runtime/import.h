/* Importing weights saved under other names (a PyTorch state_dict as .safetensors) into a
 * plan's names: `nnrun import-weights PLAN SRC.safetensors -o OUT.safetensors [--rules R.yaml]`.
 *
 * Each source tensor's name goes through the rules, if any (a YAML list of {match: REGEX,
 * replace: TEXT}, POSIX extended regular expressions applied in order, each to the previous
 * one's result, replacing the first match; \0-\9 in TEXT are the match and its groups; a name
 * rewritten to "" is dropped). A source tensor named like a model parameter is that parameter.
 * The rest are matched by structure: tensors group into modules (the name up to its last '.'),
 * a module's signature is its suffixes with their shapes ("weight [16, 3, 3, 3]", "bias
 * [16]"), the model's modules are taken in the plan's order and the file's in natural name
 * order (numbers compared as numbers), and the k-th module of each signature pairs with the
 * k-th of the same signature. That order is trusted only where numbers carry it: two file
 * modules of one signature whose names first differ in words ("downsample" against "bn2")
 * are an ambiguity, refused with both names (a rule settles it). PyTorch's batch-norm counters
 * (num_batches_tracked) are ignored, and listed.
 *
 * Nothing is written unless every model parameter gets exactly one tensor of its shape (in
 * PyTorch's layout) and dtype F32 or F16, and every source tensor is used or ignored; the
 * errors are reported all at once. The output holds the source's bytes under the model's
 * names, and the map used is printed. */
#ifndef NNC_IMPORT_H
#define NNC_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "runtime/plan.h"

/* Writes OUT from SRC for plan P (RULES may be NULL), printing the map to REPORT. False with
 * every problem in ERR (one per line) when nothing was written. */
bool weights_import(const Plan *p, const char *src, const char *rules, const char *out, FILE *report, char *err,
	size_t errlen);

#endif
