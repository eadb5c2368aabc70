#!/bin/sh
# Fusion on and off: the CPU training step and the activation memory of each model with the
# fuse pass (default) and without it (nnc compile --no-fuse), per precision, batch 128,
# synthetic data, the two plans alternated ROUNDS times in the same run. Reports medians and the
# ratio (unfused / fused: above 1 means fusion is faster). Both plans compute bit-identical
# results (tests/memplan.sh); this measures only what fusion costs or saves.
#   bench/fusion.sh [-o FILE] [MODELS...]      (default: resnet20 resnet56)
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
models=${*:-"resnet20 resnet56"}
precisions=${PRECISIONS:-"fp32 fp16"}
. bench/lib.sh
act() { build/nnrun info "$1" | sed -n 's/.*act \([0-9.]*\) MB.*/\1/p'; }
table="| model | precision | fused ms/step | unfused ms/step | speed-up | fused act MB | unfused act MB | kernels fused / unfused |\n|---|---|---|---|---|---|---|---|\n"
for m in $models; do
	for p in $precisions; do
		build/nnc compile --precision "$p" "models/$m.nn" -o "$tmp/f.plan" 2>/dev/null
		build/nnc compile --precision "$p" --no-fuse "models/$m.nn" -o "$tmp/u.plan" 2>/dev/null
		: >"$tmp/f"; : >"$tmp/u"
		for r in $(seq "$rounds"); do
			for v in f u; do
				build/nnrun bench "$tmp/$v.plan" --steps 10 --threads "$threads" |
					ms_per_step >>"$tmp/$v"
			done
		done
		f=$(median <"$tmp/f")
		u=$(median <"$tmp/u")
		ratio=$(awk -v f="$f" -v u="$u" 'BEGIN { printf "%.3f", u / f }')
		kf=$(build/nnrun info "$tmp/f.plan" | sed -n 's/.*kernels per run.*: train \([0-9]*\),.*/\1/p')
		ku=$(build/nnrun info "$tmp/u.plan" | sed -n 's/.*kernels per run.*: train \([0-9]*\),.*/\1/p')
		echo "$m $p: fused $f ms/step, unfused $u ms/step, speed-up $ratio x; act $(act "$tmp/f.plan") vs $(act "$tmp/u.plan") MB"
		table="$table| $m | $p | $f | $u | $ratio | $(act "$tmp/f.plan") | $(act "$tmp/u.plan") | $kf / $ku |\n"
	done
done
if [ -n "$out" ]; then
	{
		echo "# Fusion on and off, CPU training step"
		echo
		echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads,"
		echo "batch 128, synthetic data, SGD with momentum; median of $rounds alternated runs of 10 steps"
		echo "(bench/fusion.sh). Speed-up = unfused / fused time. Kernels: launches per training step (nnrun info)."
		echo
		printf "$table"
	} >"$out"
	echo "wrote $out"
fi
