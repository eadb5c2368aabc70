#!/bin/sh
# The GPU executor's step order against the plan's, run on the CPU (test_cuda_order): plans of
# every model in fp32, fp16 and mixed precision at batch 8. Needs no GPU.
#   tests/cuda_order.sh PATH/TO/nnc PATH/TO/test_cuda_order
nnc=${1:?usage: cuda_order.sh NNC TEST_CUDA_ORDER}
test=${2:?usage: cuda_order.sh NNC TEST_CUDA_ORDER}
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
