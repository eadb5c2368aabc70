#!/bin/sh
# CPU training-step benchmark: nnrun against PyTorch (Debian's python3-torch, whose CPU
# convolutions are oneDNN's) on the same CPU with the same thread count, batch 128, synthetic
# data (the step alone, no data loading), SGD with momentum. For each model, ROUNDS alternated
# rounds of: nnrun fp32 and pure fp16 (fp16 storage, f32 arithmetic), each compiled with
# --layout nchw and --layout nhwc (passes/layout.c: channels-last, oneDNN's NHWC convolutions
# without activation reorders), and PyTorch fp32, 10 steps each. Prints each run; the table
# gives medians, PyTorch's time over nnrun's (above 1: nnrun is faster) and fp16's time over
# fp32's in each layout. With -o FILE it writes the table as Markdown (bench/results/).
#   bench/cpu_step.sh [-o FILE] [MODELS...]      (default: resnet20 resnet56)
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
models=${*:-"resnet20 resnet56"}
. bench/lib.sh
table="| model | nnrun fp32 nchw ms/step | fp32 nhwc | fp16 nchw | fp16 nhwc | PyTorch fp32 | PyTorch / nnrun fp32 nhwc | PyTorch / nnrun fp32 nchw | fp16 / fp32, nhwc | fp16 / fp32, nchw |\n|---|---|---|---|---|---|---|---|---|---|\n"
for m in $models; do
	depth=${m#resnet}
	for l in nchw nhwc; do
		build/nnc compile --layout $l "models/$m.nn" -o "$tmp/$m-$l.plan" 2>/dev/null
		build/nnc compile --layout $l --precision fp16 "models/$m.nn" -o "$tmp/$m-fp16-$l.plan" 2>/dev/null
	done
	: >"$tmp/n"; : >"$tmp/c"; : >"$tmp/h"; : >"$tmp/g"; : >"$tmp/p"
	for r in $(seq "$rounds"); do
		build/nnrun bench "$tmp/$m-nchw.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/n"
		build/nnrun bench "$tmp/$m-nhwc.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/c"
		build/nnrun bench "$tmp/$m-fp16-nchw.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/h"
		build/nnrun bench "$tmp/$m-fp16-nhwc.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/g"
		/usr/bin/python3 bench/torch_step.py --depth "$depth" --steps 10 --threads "$threads" | tee /dev/stderr |
			ms_per_step >>"$tmp/p"
	done
	n=$(median <"$tmp/n"); c=$(median <"$tmp/c"); h=$(median <"$tmp/h"); g=$(median <"$tmp/g"); p=$(median <"$tmp/p")
	row=$(awk -v n="$n" -v c="$c" -v h="$h" -v g="$g" -v p="$p" -v m="$m" \
		'BEGIN { printf "| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f |", m, n, c, h, g, p, p / c, p / n, g / c, h / n }')
	echo "$row"
	table="$table$row\n"
done
if [ -n "$out" ]; then
	{
		echo "# CPU training step, nnrun vs PyTorch"
		echo
		echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads,"
		echo "batch 128, synthetic data, SGD with momentum; median of $rounds alternated rounds of 10 steps"
		echo "(bench/cpu_step.sh). PyTorch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') from Debian, fp32."
		echo "nnrun: convolutions through oneDNN (runtime/cpu/conv_dnnl.c), plans compiled with --layout nchw"
		echo "(blocked-layout reorders around each convolution) and --layout nhwc (channels-last end to end);"
		echo "fp16: pure fp16 storage, f32 arithmetic."
		echo
		printf "$table"
	} >"$out"
	echo "wrote $out"
fi
