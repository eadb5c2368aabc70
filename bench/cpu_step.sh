#!/bin/sh
# CPU training-step benchmark: nnrun against PyTorch (Debian's python3-torch) on the same CPU
# with the same thread count, measured back to back and alternated ROUNDS times, fp32, batch 128,
# synthetic data (the step alone, no data loading). Prints each run and the ratio of medians;
# with -o FILE it also writes the table as Markdown (bench/results/).
#   bench/cpu_step.sh [-o FILE] [MODELS...]      (default: resnet20 resnet56)
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
models=${*:-"resnet20 resnet56"}
. bench/lib.sh
table="| model | nnrun ms/step | PyTorch ms/step | speed-up (PyTorch / nnrun) |\n|---|---|---|---|\n"
for m in $models; do
	depth=${m#resnet}
	build/nnc compile "models/$m.nn" -o "$tmp/$m.plan" 2>/dev/null
	: >"$tmp/n" ; : >"$tmp/p"
	for r in $(seq "$rounds"); do
		build/nnrun bench "$tmp/$m.plan" --steps 10 --threads "$threads" | tee /dev/stderr |
			ms_per_step >>"$tmp/n"
		/usr/bin/python3 bench/torch_step.py --depth "$depth" --steps 10 --threads "$threads" | tee /dev/stderr |
			ms_per_step >>"$tmp/p"
	done
	n=$(median <"$tmp/n")
	p=$(median <"$tmp/p")
	ratio=$(awk -v n="$n" -v p="$p" 'BEGIN { printf "%.2f", p / n }')
	echo "$m: nnrun $n ms/step, PyTorch $p ms/step, speed-up $ratio x"
	table="$table| $m | $n | $p | $ratio |\n"
done
if [ -n "$out" ]; then
	{
		echo "# CPU training step, nnrun vs PyTorch"
		echo
		echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads,"
		echo "fp32, batch 128, synthetic data, SGD with momentum; median of $rounds alternated runs of 10 steps"
		echo "(bench/cpu_step.sh). PyTorch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') from Debian."
		echo
		printf "$table"
	} >"$out"
	echo "wrote $out"
fi
