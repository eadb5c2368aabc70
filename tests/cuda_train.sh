#!/bin/sh
# The GPU's resident training loop (label cuda; skipped without a usable GPU): the dataset on
# the device, batches rendered there, the step state advanced there, the step replayed as a
# CUDA graph. ResNet-20 at batch 32 on 96 training images (3 steps an epoch) for 7 steps, so
# the run crosses two epoch ends (evaluation, checkpoint, new order), in fp32 and in mixed
# precision (dynamic loss scaling), with --deterministic:
#   - graph replay, eager launches (--no-graph) and batches rendered on the host and copied
#     (--host-data) end with bit-identical parameters, and report identical training sums;
#   - a run whose loss blows up stops with the same message, naming the same step, on the
#     resident loop and on the host-fed one;
#   - overflow on purpose (GradScaler's rule on the GPU as on the CPU): with a static loss scale
#     of 2^40 every step's fp16 gradients overflow, so every step is skipped and the trainable
#     parameters end bit-identical to the CPU's (both untouched since initialization); with a
#     dynamic one each overflowing step halves the scale (scale == 2^40 / 2^skipped);
#   - pure fp16 with stochastic rounding repeats, and resumes to the uninterrupted run's bits;
#   - a CUDA error in mid-run (NNC_CUDA_FAIL_STEP) is reported with the intact checkpoint, which
#     resumes to the end; a plan too large for the card (NNC_CUDA_MEMORY_LIMIT) is refused with
#     the plan's arena sizes and the card's free memory.
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

cat >"$tmp/trainable_same.py" <<'EOF'
import json, re, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head, data = json.loads(b[8:8 + n]), b[8 + n:]
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in head.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
trainable = [k for k in a if not re.search(r"running_|num_batches", k)]
bad = [k for k in trainable if a[k] != b.get(k)]
print("%d trainable tensors, %d differ%s" % (len(trainable), len(bad), (": " + ", ".join(bad[:4])) if bad else ""))
sys.exit(1 if bad or not trainable else 0)
EOF
for kind in static dynamic; do
	printf 'base: mixed\nloss_scaling: %s\nloss_scale: 1099511627776\n' $kind >"$tmp/$kind.yaml"
	"$nnc" compile --batch 32 --precision "$tmp/$kind.yaml" models/resnet20.nn -o "$tmp/$kind.plan" 2>/dev/null ||
		{ echo "FAIL compile $kind"; exit 1; }
done
ovf="--data $data $records --train-limit 96 --test-limit 64 --quiet --set epochs=1"
for dev in cuda cpu; do
	expect "overflow-static-$dev" 0 "" -- "$nnrun" train "$tmp/static.plan" $ovf --device $dev \
		--checkpoint "$tmp/ovf-$dev.ckpt" --metrics "$tmp/ovf-$dev.csv"
	expect "overflow-static-$dev-export" 0 "" -- "$nnrun" export "$tmp/static.plan" --weights "$tmp/ovf-$dev.ckpt" \
		-o "$tmp/ovf-$dev.safetensors"
	# epoch 1 of 3 steps: the scale stays 2^40 and all 3 steps were skipped
	expect "overflow-static-$dev-skipped" 0 "^1,.*,1099511627776,3$" -- cat "$tmp/ovf-$dev.csv"
done
expect "overflow: the GPU changed no trainable parameter, as the CPU" 0 " 0 differ" -- \
	python3 "$tmp/trainable_same.py" "$tmp/ovf-cuda.safetensors" "$tmp/ovf-cpu.safetensors"
expect "overflow-dynamic-cuda" 0 "" -- "$nnrun" train "$tmp/dynamic.plan" $ovf --device cuda \
	--checkpoint "$tmp/dyn.ckpt" --metrics "$tmp/dyn.csv"
expect "overflow-dynamic-cuda-scale" 0 "" -- awk -F, 'NR == 2 { exit !($10 >= 1 && $9 == 1099511627776 / 2 ^ $10) }' \
	"$tmp/dyn.csv"

# Stochastic rounding (optimizer.rounding) in pure fp16 on the GPU, --deterministic: two runs
# repeat bit for bit, and a run stopped after 4 steps resumes (on the GPU) to the uninterrupted
# run's parameters, since the draws depend only on the seed, the update and the element.
"$nnc" compile --batch 32 --precision fp16 --set optimizer.rounding=stochastic models/resnet20.nn \
	-o "$tmp/sr.plan" 2>/dev/null || { echo "FAIL compile sr"; exit 1; }
for r in a b; do
	expect "sr-$r" 0 "" -- "$nnrun" train "$tmp/sr.plan" $run --checkpoint "$tmp/sr-$r.ckpt"
	expect "sr-$r-export" 0 "" -- "$nnrun" export "$tmp/sr.plan" --weights "$tmp/sr-$r.ckpt" -o "$tmp/sr-$r.safetensors"
done
same "stochastic rounding on the GPU repeats" "$tmp/sr-a.safetensors" "$tmp/sr-b.safetensors"
srpart="--data $data $records --train-limit 96 --test-limit 64 --quiet --device cuda --deterministic"
expect "sr-part" 0 "" -- "$nnrun" train "$tmp/sr.plan" $srpart --steps 4 --checkpoint "$tmp/sr-p.ckpt"
expect "sr-resume" 0 "" -- "$nnrun" train "$tmp/sr.plan" $srpart --steps 3 --resume "$tmp/sr-p.ckpt" \
	--checkpoint "$tmp/sr-p.ckpt"
expect "sr-resume-export" 0 "" -- "$nnrun" export "$tmp/sr.plan" --weights "$tmp/sr-p.ckpt" -o "$tmp/sr-p.safetensors"
same "stochastic rounding: resumed on the GPU as uninterrupted" "$tmp/sr-a.safetensors" "$tmp/sr-p.safetensors"

# A CUDA error in mid-run, injected at the resident loop's 5th step (epoch 2, 3 steps an epoch):
# a clear message naming the intact checkpoint, exit 1; the epoch-1 checkpoint resumes and the
# run ends with all three epochs' metrics rows.
fault="--data $data $records --train-limit 96 --test-limit 64 --quiet --device cuda --set epochs=3"
expect "fault-mid-run" 1 "the last checkpoint, .*fault.ckpt, is intact" -- env NNC_CUDA_FAIL_STEP=5 "$nnrun" train \
	"$tmp/fp32.plan" $fault --checkpoint "$tmp/fault.ckpt" --metrics "$tmp/fault.csv"
cp "$tmp/out" "$tmp/fault.out"
expect "fault-message" 0 "training step 5 failed: an injected CUDA error" -- cat "$tmp/fault.out"
expect "fault-resume" 0 "" -- "$nnrun" train "$tmp/fp32.plan" $fault --resume "$tmp/fault.ckpt" \
	--checkpoint "$tmp/fault.ckpt" --metrics "$tmp/fault.csv"
expect "fault-rows" 0 "" -- awk -F, 'NR > 1 { e = e $1 } END { exit e != "123" }' "$tmp/fault.csv"
# A plan too large for the card (the card taken to have 1 MB free): the message names the plan's
# arenas, its batch and the free memory, and the run writes nothing.
expect "gpu-memory" 1 "out of GPU memory: the plan's arenas need [0-9.]* MB (parameters and state .* at batch 32), and 1.0 MB of the GPU's" -- \
	env NNC_CUDA_MEMORY_LIMIT=1000000 "$nnrun" train "$tmp/fp32.plan" $fault --checkpoint "$tmp/oom.ckpt"
expect "gpu-memory-nothing-saved" 0 "" -- test ! -e "$tmp/oom.ckpt"
finish cuda_train
