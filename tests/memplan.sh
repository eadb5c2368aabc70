#!/bin/sh
# The memory plan and fusion change where values live and how many kernels run, never what is
# computed: for every model (see below for precisions), the default plan, a plan without memory
# reuse (--no-reuse) and a plan without fusion (--no-fuse) train a few steps to bit-identical
# weights and evaluate identically. (The plan loader separately checks that no
# two live values overlap, on every plan every test loads.) Needs data/.
#   tests/memplan.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: memplan.sh NNC NNRUN}
nnrun=${2:?usage: memplan.sh NNC NNRUN}
data=${NNC_DATA:-data}
[ -f "$data/cifar-10-batches-bin/test_batch.bin" ] || { echo "skipped: no CIFAR-10 in $data"; exit 77; }
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
run="--data $data --train-limit 512 --test-limit 100 --quiet --threads 2"
# Every model in fp32; three representative ones (plain, residual, depthwise with relu6) in
# every precision, which keeps the test near a minute (MEMPLAN_MODELS narrows the list).
for m in ${MEMPLAN_MODELS:-$(cd models && ls *.nn | sed "s/\.nn$//")}; do
	case $m in tiny | resnet20 | mobilenet_v2) precisions="fp32 fp16 mixed" ;; *) precisions=fp32 ;; esac
	for p in $precisions; do
		for mode in reuse no-reuse no-fuse; do
			flag=$([ $mode = reuse ] || echo --$mode)
			id=$m-$p-$mode
			expect "compile-$id" 0 "" -- "$nnc" compile --batch 16 --precision $p $flag "models/$m.nn" -o "$tmp/$id.plan"
			expect "train-$id" 0 "" -- "$nnrun" train "$tmp/$id.plan" $run --steps 3 --checkpoint "$tmp/$id.ckpt"
			expect "export-$id" 0 "" -- "$nnrun" export "$tmp/$id.plan" --weights "$tmp/$id.ckpt" -o "$tmp/$id.safetensors"
			expect "eval-$id" 0 "accuracy" -- "$nnrun" eval "$tmp/$id.plan" --weights "$tmp/$id.safetensors" $run
			cp "$tmp/out" "$tmp/$id.eval"
		done
		for mode in no-reuse no-fuse; do
			same "weights-$m-$p-$mode" "$tmp/$m-$p-reuse.safetensors" "$tmp/$m-$p-$mode.safetensors"
			same "eval-$m-$p-$mode" "$tmp/$m-$p-reuse.eval" "$tmp/$m-$p-$mode.eval"
		done
	done
done
finish memplan
