/* ONNX export (`nnrun export --format onnx`): a plan's evaluation program, with an Exec's weights,
 * as one ONNX model (opset 13, IR version 7) that Netron opens and ONNX runtimes run.
 *
 * The model is inference: batch norm with its running statistics, no dropout, no loss. Its one
 * input, "input", is float32 [N, C, H, W] (N symbolic), the image normalized as nnrun feeds the
 * network; its one output, "logits", is float32 [N, classes]. Every tensor is float32 and in
 * NCHW/OIHW order whatever the plan's storage: fp16 weights are widened, channels-last ones
 * transposed. The input normalization, the model's name and source are metadata_props. */
#ifndef NNC_ONNX_H
#define NNC_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/exec.h"

/* Writes E's plan's evaluation program and E's parameters to PATH (atomically: PATH.tmp, then a
 * rename). An evaluation step the exporter cannot express is refused before anything is
 * written, with its op, its name and its .nn source location in ERR. */
bool onnx_export(const Exec *e, const char *path, char *err, size_t errlen);

#endif
