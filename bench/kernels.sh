#!/bin/sh
# Kernels per training and evaluation run of every model and precision, fused (the default) and
# unfused (nnc compile --no-fuse), as `nnrun info` counts them on the CPU (a backward group is
# one kernel, a widening cast its statistics read through none) and on the GPU (multi-tensor updates and checks are one launch), at batch 128.
# Counting needs no timing, so the table is exact and repeatable; the table goes to stdout and,
# with -o FILE, to a Markdown file (bench/results/).
#   bench/kernels.sh [-o FILE] [MODELS...]       (default: every model)
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
models=${*:-$(cd models && ls *.nn | sed 's/\.nn$//')}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
counts() { # PLAN -> "cpu_train cpu_eval gpu_train gpu_eval"
	build/nnrun info "$1" | awk '
		/kernels per run/ { sub(/.*train /, ""); split($0, a, /, eval /); ct = a[1]; ce = a[2] }
		/GPU launches per run/ { s = $0; sub(/.*train /, "", s); gt = s; sub(/ .*/, "", gt); sub(/.*eval /, "", s); ge = s; sub(/ .*/, "", ge) }
		END { printf "%s %s %s %s", ct, ce, (gt == "" ? "-" : gt), (ge == "" ? "-" : ge) }'
}
{
	echo "# Kernels per run, fused and unfused ($(date -u +%Y-%m-%d))"
	echo
	echo "Batch 128. CPU: kernels per run as \`nnrun info\` counts them (a backward group of three steps is"
	echo "one kernel, a widening cast its statistics read through none). GPU: launches per run (cuDNN/cuBLAS calls and nnc kernels; multi-tensor updates,"
	echo "checks and casts as one). Unfused: \`nnc compile --no-fuse\`. Written by \`bench/kernels.sh\`."
	echo
	echo "| model | precision | CPU train, fused / unfused | CPU eval, fused / unfused | GPU train, fused / unfused | GPU eval, fused / unfused |"
	echo "|---|---|---|---|---|---|"
	for m in $models; do
		for p in fp32 fp16 mixed; do
			build/nnc compile --precision $p "models/$m.nn" -o "$tmp/f.plan" 2>/dev/null
			build/nnc compile --precision $p --no-fuse "models/$m.nn" -o "$tmp/u.plan" 2>/dev/null
			set -- $(counts "$tmp/f.plan") $(counts "$tmp/u.plan")
			echo "| $m | $p | $1 / $5 | $2 / $6 | $3 / $7 | $4 / $8 |"
		done
	done
} >"$tmp/table"
cat "$tmp/table"
[ -z "$out" ] || cp "$tmp/table" "$out"
