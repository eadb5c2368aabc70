#!/bin/sh
# The GPU's resident training loop (label cuda; skipped without a usable GPU): the dataset on
# the device, batches rendered there, the step state advanced there, the step replayed as a
# CUDA graph. ResNet-20 at batch 32 on 96 training images (3 steps an epoch) for 7 steps, so
# the run crosses two epoch ends (evaluation, checkpoint, new order), in fp32 and in mixed
# precision (dynamic loss scaling), with --deterministic:
#   - graph replay, eager launches (--no-graph) and batches rendered on the host and copied
#     (--host-data) end with bit-identical parameters, and report identical training sums;
#   - a run whose loss blows up stops with the same message, naming the same step, on the
#     resident loop and on the host-fed one.
# Needs data/ (or NNC_DATA, with NNC_RECORDS images per file).
#   tests/cuda_train.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: cuda_train.sh NNC NNRUN}
nnrun=${2:?usage: cuda_train.sh NNC NNRUN}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
"$nnc" compile --batch 32 models/resnet20.nn -o "$tmp/fp32.plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
"$nnc" compile --batch 32 --precision mixed models/resnet20.nn -o "$tmp/mixed.plan" 2>/dev/null ||
	{ echo "FAIL compile mixed"; exit 1; }
cuda_needs "$nnrun" "$tmp/fp32.plan"
run="--data $data $records --train-limit 96 --test-limit 64 --quiet --device cuda --deterministic --steps 7"
for prec in fp32 mixed; do
	for mode in graph no-graph host-data; do
		flag=$([ $mode = graph ] || echo "--$mode")
		expect "$prec-$mode" 0 "" -- "$nnrun" train "$tmp/$prec.plan" $run $flag \
			--checkpoint "$tmp/$prec-$mode.ckpt" --metrics "$tmp/$prec-$mode.csv"
		expect "$prec-$mode-export" 0 "" -- "$nnrun" export "$tmp/$prec.plan" --weights "$tmp/$prec-$mode.ckpt" \
			-o "$tmp/$prec-$mode.safetensors"
		# epoch, train loss and accuracy, test accuracy, loss scale, skipped steps
		cut -d, -f1-3,5,9,10 "$tmp/$prec-$mode.csv" >"$tmp/$prec-$mode.sums"
	done
	for mode in no-graph host-data; do
		same "$prec: parameters after 7 steps, graph vs $mode" "$tmp/$prec-graph.safetensors" "$tmp/$prec-$mode.safetensors"
		same "$prec: per-epoch training sums, graph vs $mode" "$tmp/$prec-graph.sums" "$tmp/$prec-$mode.sums"
	done
	atmost "$prec: epochs recorded" 3 "$(wc -l <"$tmp/$prec-graph.sums")" "3 (a header and two epochs), against the lines"
done
for mode in graph host-data; do
	flag=$([ $mode = graph ] || echo "--$mode")
	expect "blow-up-$mode" 1 "the loss became" -- "$nnrun" train "$tmp/fp32.plan" $run $flag --lr 1e12 \
		--checkpoint "$tmp/blow-$mode.ckpt"
	grep -o "the loss became.*step [0-9]*" "$tmp/out" >"$tmp/blow-$mode.msg"
done
same "a blown-up loss is reported at the same step" "$tmp/blow-graph.msg" "$tmp/blow-host-data.msg"
finish cuda_train
