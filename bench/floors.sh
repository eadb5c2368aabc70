#!/bin/sh
# The floors of a training step on an H200: each plan's arithmetic (GFLOP, from `nnrun info`)
# over the matrix units' rate, and its memory traffic (MB its kernels move, each operand read
# and each result written once) over the memory bandwidth; the larger is the step's floor.
# Counting needs no GPU and no timing, so the table is exact and repeatable, and docs/performance.md
# embeds it (checked by tests/docs.sh). The ceilings are the environment's figures:
#   NNC_BW_TBS (4.3: device-to-device copy, measured on this workplace's H200s),
#   NNC_TFLOPS_F16 (790: a bf16 matrix product, measured, taken as the fp16 tensor-core rate),
#   NNC_TFLOPS_F32 (67: fp32 without TF32, what nnc's fp32 runs; the datasheet's figure).
#   bench/floors.sh [--table] [-o FILE]   (--table: the table alone, as the docs embed it)
set -eu
cd "$(dirname "$0")/.."
out=""
table_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--table) table_only=1; shift ;;
	-o) out=$2; shift 2 ;;
	*) echo "usage: bench/floors.sh [--table] [-o FILE]" >&2; exit 2 ;;
	esac
done
bw=${NNC_BW_TBS:-4.3}
f16=${NNC_TFLOPS_F16:-790}
f32=${NNC_TFLOPS_F32:-67}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
table() {
	echo "| network | batch | precision | GFLOP / step | MB / step | arithmetic floor | memory floor | floor per step | floor per epoch (50,000 images) |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for row in "resnet20 ResNet-20 128 fp32" "resnet20 ResNet-20 128 fp16" \
		"resnet56 ResNet-56 128 fp32" "resnet56 ResNet-56 128 fp16" "resnet56 ResNet-56 128 mixed" \
		"airbench94 airbench94 1024 fp16" "mobilenet_v2 MobileNet-V2 128 fp16"; do
		set -- $row
		build/nnc compile --precision "$4" --batch "$3" "models/$1.nn" -o "$tmp/p.plan" 2>/dev/null
		build/nnrun info "$tmp/p.plan" | sed -n 's/.*train run: \([0-9.]*\) GFLOP.*, \([0-9.]*\) MB moved.*/\1 \2/p' |
			awk -v name="$2" -v batch="$3" -v prec="$4" -v bw="$bw" -v f16="$f16" -v f32="$f32" '
			function ms(x) { return x >= 0.1 ? sprintf("%.2f ms", x) : sprintf("%.3f ms", x) }
			function s(x) { return x >= 0.1 ? sprintf("%.2f s", x) : sprintf("%.3f s", x) }
			{
				rate = (prec == "fp32") ? f32 : f16
				a = $1 / rate                   # GFLOP / (TFLOP/s) = ms
				m = $2 / (bw * 1000)            # MB / (TB/s) = us -> ms
				f = a > m ? a : m
				printf "| %s | %d | %s | %.1f | %.0f | %s | %s | %s | %s |\n", name, batch, prec, $1, $2,
					ms(a), ms(m), ms(f), s(f * int((50000 + batch - 1) / batch) / 1000)
			}'
	done
}
if [ "$table_only" = 1 ]; then
	table
	exit 0
fi
{
	echo "# Floors of a training step on an H200 ($(date -u +%Y-%m-%d))"
	echo
	echo "Written by \`bench/floors.sh\` from \`nnrun info\` (GFLOP of convolutions and dense layers, 2 per"
	echo "multiply-add, forward and backward; MB its kernels move, each operand read and each result"
	echo "written once). Ceilings: $bw TB/s, $f16 TFLOP/s in fp16 (mixed runs its convolutions in"
	echo "fp16), $f32 TFLOP/s in fp32 without TF32. An epoch is ceil(50,000 / batch) steps."
	echo
	table
} >"${out:-/dev/stdout}"
[ -z "$out" ] || echo "wrote $out"
