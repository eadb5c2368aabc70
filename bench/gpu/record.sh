#!/bin/sh
# Writes the results file of a device check: the tables scripts/device-check.sh printed at its
# end (its log, device-check.log, from the device tool's $OUT), under a header naming the GPU and
# the date, followed by the first GPU run's tables from ../shared/evidence/gpu-2026-12-04/ (when
# that folder is beside the repository) so that the change shows. Tables are copied, never typed.
#   bench/gpu/record.sh DEVICE-CHECK.LOG [OUT.md]
#   (default OUT: bench/results/device-check-GPU-DATE.md)
set -eu
log=${1:?usage: record.sh DEVICE-CHECK.LOG [OUT.md]}
cd "$(dirname "$0")/../.."
head=$(grep -m1 '^== device check, ' "$log") || { echo "record.sh: no '== device check' line in $log" >&2; exit 1; }
date=$(echo "$head" | sed 's/^== device check, \([0-9-]*\), .*/\1/')
gpu=$(echo "$head" | sed 's/^== device check, [0-9-]*, //')
slug=$(echo "$gpu" | tr 'A-Z ' 'a-z-' | sed 's/^nvidia-//')
out=${2:-bench/results/device-check-$slug-$date.md}
evidence=../shared/evidence/gpu-2026-12-04/README.md
{
	echo "# Device check on an $gpu, $date"
	echo
	echo "Written by \`bench/gpu/record.sh\` from the log of \`scripts/device-check.sh tests,train,bench\`"
	echo "(tests: every \`cuda\` test; training: 2 epochs on the first 5000 training images, tested on the"
	echo "first 5000 test images, default recipe; benchmark: \`bench/gpu/run.sh\`, images/s, one run of 50"
	echo "timed steps each after warm-up, nnrun and PyTorch in the same call; torch.compile not run when"
	echo "its column shows -)."
	echo
	sed -n '/^== device check, /,$p' "$log" | sed '1d' | grep -v '^device check: '
	if [ -f "$evidence" ]; then
		echo
		echo "## The first GPU run, for comparison ($evidence)"
		echo
		sed -n '/^| test | result |/,/^$/p' "$evidence"
		sed -n '/^| network, batch | nnrun fp32/,/^$/p' "$evidence"
	fi
} >"$out"
echo "record.sh: wrote $out"
