/* `nnc stats`: a per-layer summary of a graph (like Keras' model.summary()): each op's name,
 * kind, per-image output shape, trainable parameters, forward MACs per image and the bytes of
 * its output at the graph's batch size, then totals. Also emitted as YAML (through libyaml) for
 * scripts and tests. */
#ifndef NNC_STATS_H
#define NNC_STATS_H

#include <stdio.h>

#include "compiler/ir.h"

typedef struct {
	int64_t params;       /* trainable parameter elements */
	int64_t frozen;       /* non-trainable: running statistics, frozen scales */
	int64_t macs;         /* forward multiply-accumulates per image */
	int64_t act_bytes;    /* sum of op output bytes at the graph's batch (no reuse) */
	int64_t param_bytes;  /* all parameters and state */
	int nops;
} GraphTotals;

GraphTotals graph_totals(const Graph *g);
void stats_print(FILE *out, const Graph *g);
/* Returns false if libyaml fails to emit. */
bool stats_print_yaml(FILE *out, const Graph *g);

#endif
