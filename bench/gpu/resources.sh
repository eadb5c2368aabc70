#!/bin/bash
# The CUDA kernels' resources as ptxas reports them for sm_90 (registers per thread, shared
# memory, stack frame, spills), one markdown row per kernel: what can be known about the
# kernels without a GPU. Needs nvcc; run from the repository root.
#   bench/gpu/resources.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| file | kernel | registers | shared memory (bytes) | stack frame (bytes) | spill stores + loads (bytes) |"
echo "|---|---|---|---|---|---|"
for f in runtime/cuda/kernels.cu runtime/cuda/resident.cu; do
	nvcc -std=c++17 -O3 -arch=sm_90 -Xptxas -v -I. -c "$f" -o "$tmp/o.o" 2>"$tmp/log"
	awk -v file="$(basename "$f")" '
		/Compiling entry function/ { match($0, /\x27[^\x27]*\x27/); name = substr($0, RSTART + 1, RLENGTH - 2); next }
		/Function properties for/ { fp = $0; next }
		/bytes stack frame/ && name != "" && fp ~ name { stack = $1; spill = $5 + $9; next }
		/Used [0-9]+ registers/ && name != "" {
			match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15)
			smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
			print name "\t" regs "\t" smem "\t" stack "\t" spill; name = ""
		}' "$tmp/log" | while IFS=$'\t' read -r mangled regs smem stack spill; do
		short=$(echo "$mangled" | c++filt | sed -E 's/\(anonymous namespace\):://; s/^void //; s/(<[^>]*>)?\(.*$/\1/')
		echo "| $(basename "$f") | \`$short\` | $regs | $smem | $stack | $spill |"
	done
done
