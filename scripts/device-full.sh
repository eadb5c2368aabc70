#!/bin/bash
# The full-CIFAR-10 runs of issue 22 on a lent GPU machine, in the call that carries the last
# data part (the whole sequence: docs/cuda.md, "Full CIFAR-10 on a lent GPU"):
#   scripts/device-full.sh [EPOCHS] [SEEDS]
# says which parts arrived, assembles and checks them (scripts/device-data.sh: the largest
# training set the parts that arrived make, if some were lost), then runs
# bench/gpu/paper_table.sh (ResNet-56 in fp32, pure fp16 and mixed for EPOCHS epochs, default
# 10; PAPER_MODELS adds networks as the time allows) and bench/gpu/airbench.sh (airbench94 in
# pure fp16, SEEDS runs, default 5). Results: $OUT/paper-table.md, $OUT/airbench.md and the
# log $OUT/device-full.log; bench/gpu/record.sh is not needed: the tables are the results
# files, copied into bench/results/ under their own names.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/device-full}
mkdir -p "$out"
exec > >(tee "$out/device-full.log") 2>&1
start=$(date +%s)
epochs=${1:-10} seeds=${2:-5}
scripts/device-data.sh status
scripts/device-data.sh assemble || exit 1
. scripts/device-env.sh
[ -n "$gpu" ] || echo "device-full: no GPU found: the runs below use nnrun's default device"
day=$(date -u +%Y-%m-%d)
name=$(echo "${gpu:-gpu}" | tr 'A-Z ' 'a-z-' | sed 's/^nvidia-//')
timeout 420 bench/gpu/paper_table.sh --nnc $bin/nnc --nnrun $bin/nnrun --device cuda --data data \
	--models "${PAPER_MODELS:-resnet56}" --epochs "$epochs" -o "$out/paper-table-$name-$day.md"
echo "paper_table exit $?"
timeout 150 bench/gpu/airbench.sh --nnc $bin/nnc --nnrun $bin/nnrun --device cuda --data data --seeds "$seeds" \
	-o "$out/airbench-$name-$day.md"
echo "airbench exit $?"
echo "device-full: $(($(date +%s) - start))s"
