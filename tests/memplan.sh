#!/bin/sh
# The memory plan and fusion change where values live and how many kernels run, not what is
# trained: for every model in every precision, the default plan, a plan without memory reuse
# (--no-reuse) and a plan without fusion (--no-fuse) train a few steps to bit-identical weights
# (the fused plan with its step groups, which both backends run as one kernel each).
# Evaluation is identical with and without reuse; without fusion it differs only by batch-norm
# folding's rounding (a(w.x) computed as (aw).x). Over the test images, the largest difference
# in any class probability (nnrun compare's delta) between the fused and unfused evaluations
# must stay below 1e-5 in fp32. In fp16 and mixed, both plans carry 16-bit rounding error and
# folding adds one rounding of the weights: if the fused plan is no farther from fp32 (R) than
# the unfused one (U), |F - U| <= |F - R| + |R - U| <= 2 |U - R|, so the limit is twice the
# unfused plan's distance from fp32 on the same weights (at least 2e-3, fp16's unit roundoff
# being 4.9e-4). (After two steps the batch-norm running statistics lag the weights, and the
# deep ResNets' fp16 evaluations can overflow; that is fp16's, and counts as infinitely far
# from fp32.) The plan loader separately checks that no two live values overlap, on every plan
# every test loads. Needs data/.
nnc=${1:?usage: memplan.sh NNC NNRUN}
nnrun=${2:?usage: memplan.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
run="--data $data --train-limit 256 --test-limit 64 --quiet --threads 2"
for m in ${MEMPLAN_MODELS:-$(cd models && ls *.nn | sed "s/\.nn$//")}; do
	for p in ${MEMPLAN_PRECISIONS:-fp32 fp16 mixed}; do
		for mode in reuse no-reuse no-fuse; do
			flag=$([ $mode = reuse ] || echo --$mode)
			id=$m-$p-$mode
			expect "compile-$id" 0 "" -- "$nnc" compile --batch 8 --precision $p $flag "models/$m.nn" -o "$tmp/$id.plan"
			expect "train-$id" 0 "" -- "$nnrun" train "$tmp/$id.plan" $run --steps 2 --checkpoint "$tmp/$id.ckpt"
			expect "export-$id" 0 "" -- "$nnrun" export "$tmp/$id.plan" --weights "$tmp/$id.ckpt" -o "$tmp/$id.safetensors"
		done
		for mode in no-reuse no-fuse; do
			same "weights-$m-$p-$mode" "$tmp/$m-$p-reuse.safetensors" "$tmp/$m-$p-$mode.safetensors"
		done
		# the fused plan's step groups (fuse step 6: statistics, residual adds, multi-tensor
		# runs) are what the comparison above proves; the unfused plan has none
		expect "groups-$m-$p" 0 "^[1-9][0-9]* 0$" -- sh -c "echo \$(grep -c 'group: ' '$tmp/$m-$p-reuse.plan') \$(grep -c 'group: ' '$tmp/$m-$p-no-fuse.plan')"
		for mode in reuse no-reuse; do
			expect "eval-$m-$p-$mode" 0 "accuracy" -- "$nnrun" eval "$tmp/$m-$p-$mode.plan" --weights "$tmp/$m-$p-reuse.safetensors" $run
			cp "$tmp/out" "$tmp/$m-$p-$mode.eval"
		done
		same "eval-$m-$p-no-reuse" "$tmp/$m-$p-reuse.eval" "$tmp/$m-$p-no-reuse.eval"
		cmp_args="--weights $tmp/$m-$p-reuse.safetensors $run"
		expect "compare-$m-$p-no-fuse" 0 "largest delta" -- "$nnrun" compare "$tmp/$m-$p-reuse.plan" "$tmp/$m-$p-no-fuse.plan" $cmp_args
		delta=$(delta_of "$tmp/out")
		limit=1e-5
		if [ $p != fp32 ]; then
			[ -f "$tmp/$m-fp32.plan" ] || "$nnc" compile --batch 8 "models/$m.nn" -o "$tmp/$m-fp32.plan" 2>/dev/null
			expect "compare-$m-$p-fp32" 0 "largest delta" -- "$nnrun" compare "$tmp/$m-fp32.plan" "$tmp/$m-$p-no-fuse.plan" $cmp_args
			limit=$(awk -v r="$(delta_of "$tmp/out")" 'BEGIN { print ((2 * r > 2e-3) ? 2 * r : 2e-3) }')
		fi
		atmost "eval-$m-$p-no-fuse" "$delta" "$limit" "the difference of the fused and unfused evaluations"
	done
done
finish memplan
