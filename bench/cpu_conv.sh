#!/bin/sh
# Per-pass convolution timings, im2col + OpenBLAS against oneDNN (bench/conv_passes.c), on
# ResNet and MobileNet-V2 shapes at batch 128 with NNC_THREADS threads (default: all), median
# of ROUNDS runs: the measurement behind conv_dnnl.c's rule of which shapes go to oneDNN.
# With -o FILE it writes the table as Markdown (bench/results/).
#   bench/cpu_conv.sh [-o FILE]
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; fi
. bench/lib.sh
[ -x build/bench/bench_conv_passes ] || { echo "cpu_conv.sh: build/bench/bench_conv_passes missing (nnc built without oneDNN?)" >&2; exit 1; }
# NNC_CPU_CONV=dnnl: oneDNN for every shape, also those conv_dnnl.c leaves to im2col
NNC_CPU_CONV=dnnl build/bench/bench_conv_passes "$threads" "$rounds" >"$tmp/table"
cat "$tmp/table"
if [ -n "$out" ]; then
	{
		echo "# CPU convolution passes, im2col + OpenBLAS vs oneDNN"
		echo
		echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads,"
		echo "f32, batch 128, milliseconds per call, median of $rounds runs of 5 calls (bench/cpu_conv.sh)."
		echo "oneDNN: runtime/cpu/conv_dnnl.c, its reorders between NCHW and the blocked layouts included."
		echo
		cat "$tmp/table"
	} >"$out"
	echo "wrote $out"
fi
