#!/bin/sh
# Runs a test program that takes plans (test_cuda_vs_cpu: the CUDA backend against the CPU
# backend, op by op and step by step; test_cuda_order: the GPU's step order on the CPU) on plans
# of every model in CUDA_MODELS (default: all) in fp32, fp16 and mixed precision at batch 8.
# Skipped (77) when the program, run without plans, says so (no usable GPU), before compiling
# anything.
#   tests/cuda.sh PATH/TO/nnc PATH/TO/TEST_PROGRAM
nnc=${1:?usage: cuda.sh NNC TEST_PROGRAM}
test=${2:?usage: cuda.sh NNC TEST_PROGRAM}
"$test" >/dev/null 2>&1
[ $? = 77 ] && { echo "skipped: no usable GPU"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
plans=""
for m in ${CUDA_MODELS:-$(cd models && ls *.nn | sed "s/\.nn$//")}; do
	for p in fp32 fp16 mixed; do
		"$nnc" compile --batch 8 --precision $p "models/$m.nn" -o "$tmp/$m-$p.plan" 2>/dev/null || {
			echo "FAIL compile $m $p"
			exit 1
		}
		plans="$plans $tmp/$m-$p.plan"
	done
done
exec "$test" $plans
