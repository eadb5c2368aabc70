#!/bin/sh
# The layout pass (passes/layout.c) changes the order of elements in memory, not what is
# trained. For every model in every precision, an nchw plan and an nhwc plan (channels-last
# images, OHWI filters, relayouts where needed) start from one seed and train one step on the
# CPU. They must end at the same weights up to summation order: the channels-last plan sums
# convolutions (oneDNN's NHWC kernels) and batch-norm reductions (blocks of rows) in other
# orders. How far another order moves the weights is measured in the same run: the nchw plan
# once more with NNC_CPU_CONV=im2col (the im2col kernels' order). The nhwc run may be at most
# 10 times as far from the nchw run as that (or 1e-5 in fp32, 2e-3 -- four fp16 units -- in
# fp16 and mixed, where the im2col run happens to agree more closely), each tensor's difference
# taken relative to its largest element or 1e-2 (io_tool diff: a batch-norm bias after one step
# is a sum that cancels to nearly zero, all of it rounding). A transposed filter, a misplaced
# channel or a wrong relayout moves weights by their own size, far beyond that.
# Evaluating the same weights through both plans gives the same probabilities (nnrun compare's
# delta): identical with the im2col kernels (then only element-by-element kernels differ in
# layout), and with oneDNN's within 1e-5 in fp32; in fp16 and mixed, within twice the plan's own
# distance from fp32 on the same weights (or 2e-3), as tests/memplan.sh argues for fusion.
# Files keep PyTorch's layout whatever the plan's: the nchw run's checkpoint resumes in the
# nhwc plan, and its export through the nhwc plan is byte-identical to the nchw export.
# The nchw plan has no channels-last value and no relayout; the nhwc plan stores every 4-D
# parameter (filters and their optimizer state) OHWI. Needs data/.
nnc=${1:?usage: layout.sh NNC NNRUN IO_TOOL}
nnrun=${2:?usage: layout.sh NNC NNRUN IO_TOOL}
io=${3:?usage: layout.sh NNC NNRUN IO_TOOL}
data=${NNC_DATA:-data}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
rel_of() {
	sed -n 's/^largest relative difference \(.*\)/\1/p' "$1"
}
run="--data $data --train-limit 256 --test-limit 64 --quiet --threads 2"
for m in ${LAYOUT_MODELS:-$(cd models && ls *.nn | sed "s/\.nn$//")}; do
	for p in ${LAYOUT_PRECISIONS:-fp32 fp16 mixed}; do
		for l in nchw nhwc im2col; do
			id=$m-$p-$l
			lay=$([ $l = im2col ] && echo nchw || echo $l)
			conv=$([ $l = im2col ] && echo im2col || echo "${NNC_CPU_CONV:-}")
			expect "compile-$id" 0 "" -- "$nnc" compile --batch 8 --precision $p --layout $lay "models/$m.nn" -o "$tmp/$id.plan"
			expect "train-$id" 0 "" -- env NNC_CPU_CONV=$conv "$nnrun" train "$tmp/$id.plan" $run --steps 1 --checkpoint "$tmp/$id.ckpt"
			expect "export-$id" 0 "" -- "$nnrun" export "$tmp/$id.plan" --weights "$tmp/$id.ckpt" -o "$tmp/$id.safetensors"
		done
		id=$m-$p
		expect "plan-nchw-$id" 0 "^0 0$" -- sh -c "echo \$(grep -c 'nhwc\\|ohwi' '$tmp/$id-nchw.plan') \$(grep -c 'relayout' '$tmp/$id-nchw.plan')"
		expect "filters-$id" 0 "^0$" -- sh -c "grep -c '^  - \\[f[13][62], oihw, .*, param,' '$tmp/$id-nhwc.plan' || true"
		expect "order-$id" 0 "largest relative difference" -- "$io" diff "$tmp/$id-nchw.safetensors" "$tmp/$id-im2col.safetensors" 1e-2
		order=$(rel_of "$tmp/out")
		expect "diff-$id" 0 "largest relative difference" -- "$io" diff "$tmp/$id-nchw.safetensors" "$tmp/$id-nhwc.safetensors" 1e-2
		limit=$(awk -v u="$order" -v f="$([ $p = fp32 ] && echo 1e-5 || echo 2e-3)" 'BEGIN { print (10 * u > f ? 10 * u : f) }')
		atmost "weights-$id" "$(rel_of "$tmp/out")" "$limit" "the nhwc run's weight difference from the nchw run"
		cmp_args="--weights $tmp/$id-nchw.safetensors $run"
		# with the im2col kernels (the NHWC steps through NCHW copies) only the batch-norm and
		# pooling kernels' layouts differ, which evaluation computes element by element: the same
		# probabilities, or (a deep ResNet's fp16 evaluation one step into training overflows, as
		# tests/memplan.sh notes) the same images overflowing and every prediction the same
		expect "compare-im2col-$id" 0 "largest delta" -- env NNC_CPU_CONV=im2col "$nnrun" compare "$tmp/$id-nchw.plan" "$tmp/$id-nhwc.plan" $cmp_args
		cp "$tmp/out" "$tmp/im2col.out"
		expect "identical-im2col-$id" 0 "^same$" -- awk '/largest delta 0$/ { same = 1 }
			/NaN or Inf outputs/ && match($0, /A [0-9]+, B [0-9]+/) {
				split(substr($0, RSTART, RLENGTH), f, /[ ,]+/); nan = f[2] == f[4] }
			/predictions agree: [0-9]+ \(100.00%\)/ { agree = 1 }
			END { print (same || (nan && agree)) ? "same" : "differ" }' "$tmp/im2col.out"
		limit=1e-5
		if [ $p != fp32 ]; then
			[ -f "$tmp/$m-fp32-nchw.plan" ] || "$nnc" compile --batch 8 --layout nchw "models/$m.nn" -o "$tmp/$m-fp32-nchw.plan" 2>/dev/null
			expect "compare-fp32-$id" 0 "largest delta" -- "$nnrun" compare "$tmp/$m-fp32-nchw.plan" "$tmp/$id-nchw.plan" $cmp_args
			limit=$(awk -v r="$(delta_of "$tmp/out")" 'BEGIN { print ((2 * r > 2e-3) ? 2 * r : 2e-3) }')
		fi
		expect "compare-$id" 0 "largest delta" -- "$nnrun" compare "$tmp/$id-nchw.plan" "$tmp/$id-nhwc.plan" $cmp_args
		atmost "eval-$id" "$(delta_of "$tmp/out")" "$limit" "the difference of the nchw and nhwc evaluations"
		# files are PyTorch's whatever the plan's layout: the nchw run's checkpoint resumes in the
		# nhwc plan, and its export from there is the nchw export, byte for byte
		expect "resume-$id" 0 "" -- "$nnrun" train "$tmp/$id-nhwc.plan" $run --steps 2 --resume "$tmp/$id-nchw.ckpt" --checkpoint "$tmp/$id-x.ckpt"
		expect "reexport-$id" 0 "" -- "$nnrun" export "$tmp/$id-nhwc.plan" --weights "$tmp/$id-nchw.ckpt" -o "$tmp/$id-x.safetensors"
		same "roundtrip-$id" "$tmp/$id-nchw.safetensors" "$tmp/$id-x.safetensors"
	done
done
finish layout
