/* Text and Graphviz dumps of the IR. The text form is stable and line-oriented, one Inst per
 * line (format in docs/ir.md):
 *   %7 = conv2d %0, %3 [channels=16 kernel=3 padding=1 bias=false] : f32[128,16,32,32] nchw  @conv1  # m.nn:12:9
 * Attributes equal to their schema default are omitted. */
#ifndef NNC_IRPRINT_H
#define NNC_IRPRINT_H

#include <stdio.h>

#include "compiler/ir.h"

void ir_print(FILE *out, const Graph *g);
void ir_print_dot(FILE *out, const Graph *g);

#endif
