#!/bin/sh
# CPU training-step benchmark: nnrun against PyTorch (Debian's python3-torch, whose CPU
# convolutions are oneDNN's) on the same CPU with the same thread count, batch 128, synthetic
# data (the step alone, no data loading), SGD with momentum. For each model, ROUNDS alternated
# rounds of: nnrun fp32 (convolutions through oneDNN), nnrun fp32 with NNC_CPU_CONV=im2col (the
# im2col + OpenBLAS fallback), nnrun pure fp16 (fp16 storage, f32 arithmetic) and PyTorch fp32,
# 10 steps each. Prints each run; the table gives medians, PyTorch's time over each nnrun
# variant's (above 1: nnrun is faster) and fp16's time over fp32's. With -o FILE it writes the
# table as Markdown (bench/results/).
#   bench/cpu_step.sh [-o FILE] [MODELS...]      (default: resnet20 resnet56)
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
models=${*:-"resnet20 resnet56"}
. bench/lib.sh
table="| model | nnrun fp32 ms/step | nnrun fp32 im2col | nnrun fp16 | PyTorch fp32 | PyTorch / nnrun fp32 | PyTorch / nnrun im2col | nnrun fp16 / fp32 |\n|---|---|---|---|---|---|---|---|\n"
for m in $models; do
	depth=${m#resnet}
	build/nnc compile "models/$m.nn" -o "$tmp/$m.plan" 2>/dev/null
	build/nnc compile --precision fp16 "models/$m.nn" -o "$tmp/$m-fp16.plan" 2>/dev/null
	: >"$tmp/n"; : >"$tmp/i"; : >"$tmp/h"; : >"$tmp/p"
	for r in $(seq "$rounds"); do
		build/nnrun bench "$tmp/$m.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/n"
		NNC_CPU_CONV=im2col build/nnrun bench "$tmp/$m.plan" --steps 10 --threads "$threads" | tee /dev/stderr |
			ms_per_step >>"$tmp/i"
		build/nnrun bench "$tmp/$m-fp16.plan" --steps 10 --threads "$threads" | tee /dev/stderr | ms_per_step >>"$tmp/h"
		/usr/bin/python3 bench/torch_step.py --depth "$depth" --steps 10 --threads "$threads" | tee /dev/stderr |
			ms_per_step >>"$tmp/p"
	done
	n=$(median <"$tmp/n"); i=$(median <"$tmp/i"); h=$(median <"$tmp/h"); p=$(median <"$tmp/p")
	row=$(awk -v n="$n" -v i="$i" -v h="$h" -v p="$p" -v m="$m" \
		'BEGIN { printf "| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f |", m, n, i, h, p, p / n, p / i, h / n }')
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
		echo "nnrun fp32: convolutions through oneDNN (runtime/cpu/conv_dnnl.c); im2col: the same with"
		echo "NNC_CPU_CONV=im2col (im2col + OpenBLAS); fp16: pure fp16 storage, f32 arithmetic."
		echo
		printf "$table"
	} >"$out"
	echo "wrote $out"
fi
