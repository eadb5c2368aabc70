#!/bin/sh
# ONNX export (`nnrun export --format onnx`, runtime/onnx.c). Every model of models/, and
# tests/onnx/ops.nn (every op kind the exporter translates) fused and unfused, trained two steps on
# a CIFAR-10 subset (so the batch-norm running statistics are not their initial ones), exported,
# and checked by tests/onnx_check.py: onnx's checker (full_check) and strict shape inference, the
# metadata, and the graph's logits -- from a float64 evaluator of the ONNX ops -- against nnrun's
# own evaluation of the same images (`nnrun eval --logits`) within fp32 rounding. Then fp16 and
# mixed plans' exports against the fp32 logits, the choice of format, and the refusals (a bad
# --format; an op without an ONNX form, which writes nothing). Needs CIFAR-10 (skips, 77,
# without it; fails under CI=true) and python3-onnx (skips without it):
#   tests/onnx.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: onnx.sh NNC NNRUN}
nnrun=${2:?usage: onnx.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
py=/usr/bin/python3
check="$(dirname "$0")/onnx_check.py"
if ! $py -c 'import numpy, onnx' 2>/dev/null; then
	[ "${CI:-}" = true ] && { echo "FAIL: python3-onnx is missing, and CI=true: scripts/setup.sh installs it"; exit 1; }
	echo "skipped: python3-onnx is not installed (scripts/setup.sh installs it)"
	exit 77
fi

# onnx_model NAME SOURCE [nnc options]: compile, train 2 steps, nnrun's logits of 4 test images,
# export, check. The relative tolerance 1e-5 of the largest logit is fp32 rounding: nnrun's
# logits differ from the float64 evaluation by 1e-7 to 3e-7 of it on these models.
onnx_model() {
	mdl=$1 src=$2
	shift 2
	if ! "$nnc" compile --batch 8 "$@" "$src" -o "$tmp/$mdl.plan" >"$tmp/out" 2>&1; then
		echo "FAIL $mdl: nnc compile"
		head -c 2000 "$tmp/out"
		fail=$((fail + 1))
		return
	fi
	expect "$mdl-train" 0 "" -- "$nnrun" train "$tmp/$mdl.plan" --data "$data" --train-limit 16 --test-limit 8 \
		--steps 2 --quiet --threads 2 --checkpoint "$tmp/$mdl.ckpt"
	expect "$mdl-logits" 0 "wrote the logits of 4 test images" -- "$nnrun" eval "$tmp/$mdl.plan" \
		--weights "$tmp/$mdl.ckpt" --data "$data" --test-limit 4 --threads 2 --logits "$tmp/$mdl.logits"
	expect "$mdl-export" 0 "" -- "$nnrun" export "$tmp/$mdl.plan" --weights "$tmp/$mdl.ckpt" -o "$tmp/$mdl.onnx"
	expect "$mdl-check" 0 " 0 class changes" -- $py "$check" "$tmp/$mdl.onnx" "$tmp/$mdl.logits" --rtol 1e-5
	rm -f "$tmp/$mdl.onnx"
}

for m in models/*.nn; do
	b=$(basename "$m" .nn)
	if [ -f "models/$b.yaml" ]; then
		onnx_model "$b" "$m" --recipe "models/$b.yaml"
	else
		onnx_model "$b" "$m"
	fi
done
onnx_model ops tests/onnx/ops.nn
onnx_model ops-unfused tests/onnx/ops.nn --no-fuse --layout nchw

# fp16: ResNet-20's weights through its fp16 plan, which stores them in fp16 (the export widens
# them), against the fp32 plan's logits: fp16 rounding of weights and activations, 6e-4 of the
# largest logit measured. --format onnx writes ONNX whatever the name.
"$nnc" compile --batch 8 --precision fp16 models/resnet20.nn -o "$tmp/r20h.plan" >/dev/null 2>&1
expect fp16-weights 0 "" -- "$nnrun" export "$tmp/resnet20.plan" --weights "$tmp/resnet20.ckpt" -o "$tmp/r20.safetensors"
expect fp16-export 0 "" -- "$nnrun" export "$tmp/r20h.plan" --weights "$tmp/r20.safetensors" -o "$tmp/r20h.model" --format onnx
expect fp16-check 0 " 0 class changes" -- $py "$check" "$tmp/r20h.model" "$tmp/resnet20.logits" --rtol 5e-3 --weights fp16

# Mixed precision keeps float32 master weights, which reach the folded layers (and the logits
# the output) through casts: its export is the fp32 model, within fp32 rounding of the fp32
# plan's logits, and within fp16 rounding of the mixed plan's own. The ops model in pure fp16.
expect ops-weights 0 "" -- "$nnrun" export "$tmp/ops.plan" --weights "$tmp/ops.ckpt" -o "$tmp/ops.safetensors"
for p in mixed fp16; do
	"$nnc" compile --batch 8 --precision $p tests/onnx/ops.nn -o "$tmp/ops-$p.plan" >/dev/null 2>&1
	expect "ops-$p-export" 0 "" -- "$nnrun" export "$tmp/ops-$p.plan" --weights "$tmp/ops.safetensors" -o "$tmp/ops-$p.onnx"
done
expect ops-mixed-check 0 " 0 class changes" -- $py "$check" "$tmp/ops-mixed.onnx" "$tmp/ops.logits" --rtol 1e-5
expect ops-mixed-logits 0 "" -- "$nnrun" eval "$tmp/ops-mixed.plan" --weights "$tmp/ops.safetensors" --data "$data" \
	--test-limit 4 --threads 2 --logits "$tmp/ops-mixed.logits"
expect ops-mixed-own 0 " 0 class changes" -- $py "$check" "$tmp/ops-mixed.onnx" "$tmp/ops-mixed.logits" --rtol 5e-3
expect ops-fp16-check 0 " 0 class changes" -- $py "$check" "$tmp/ops-fp16.onnx" "$tmp/ops.logits" --rtol 5e-3 --weights fp16

# The default format stays safetensors (an 8-byte header length, then the JSON header), also
# for a name without a suffix; --format safetensors wins over an .onnx name.
expect safetensors-default 0 "" -- "$nnrun" export "$tmp/tiny.plan" --weights "$tmp/tiny.ckpt" -o "$tmp/w.bin"
expect safetensors-forced 0 "" -- "$nnrun" export "$tmp/tiny.plan" --weights "$tmp/tiny.ckpt" -o "$tmp/w.onnx" --format safetensors
for f in w.bin w.onnx; do
	expect "safetensors-$f" 0 '^{"' -- dd if="$tmp/$f" bs=1 skip=8 count=2 status=none
done
expect bad-format 2 "--format must be safetensors or onnx, got 'pb'" -- "$nnrun" export "$tmp/tiny.plan" \
	--weights "$tmp/tiny.ckpt" -o "$tmp/bad.onnx" --format pb
expect format-not-export 2 "--format is an option of export, not of eval" -- "$nnrun" eval "$tmp/tiny.plan" \
	--weights "$tmp/tiny.ckpt" --data "$data" --format onnx
expect logits-not-eval 2 "--logits is an option of eval, not of export" -- "$nnrun" export "$tmp/tiny.plan" \
	--weights "$tmp/tiny.ckpt" -o "$tmp/x.onnx" --logits "$tmp/x.logits"
# An evaluation step without an ONNX form (a hand-edited plan whose tanh became a dropout mask:
# consistent, so it loads) is named with its source line, and nothing is written.
"$nnc" compile --batch 8 --no-reuse tests/onnx/ops.nn -o "$tmp/nr.plan" >/dev/null 2>&1
sed '/^eval:/,$ s/{kernel: tanh, \(out: [0-9]*, in: \[[0-9]*\]\), attrs: {}/{kernel: dropout_mask, \1, attrs: {rate: 0.5}/' \
	"$tmp/nr.plan" >"$tmp/bad.plan"
expect no-onnx-form 1 "bad.onnx: cannot export to ONNX: op dropout_mask at tests/onnx/ops.nn:12:16 .* no ONNX form" -- \
	"$nnrun" export "$tmp/bad.plan" --allow-edited --weights "$tmp/ops.ckpt" -o "$tmp/bad.onnx"
expect nothing-written 2 "" -- ls "$tmp/bad.onnx" "$tmp/bad.onnx.tmp"

finish onnx
