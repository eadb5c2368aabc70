#!/bin/sh
# fp16 operands read and written as stored (runtime/exec.c, raw16_mask): the channels-last
# batch-norm and bias kernels, elementwise ops and chains, and relayouts convert fp16 in their
# inner loops instead of through widened f32 copies, and a convolution's backward-filter pass
# reuses its backward-data pass's widened gradient. Each computes exactly what it computes on
# the widened copies, so training must give the same bits as NNC_CPU_F16=widen, which widens
# every fp16 operand of every step. For each model (between them: batch norm with relu and
# relu6 prologues, residual add+relu, gelu, tanh chains, dropout, pooling, dense layers), in
# fp16 and mixed, channels-last and NCHW: three training steps either way export identical
# weights, and evaluating them gives the same loss and accuracy. --check-numerics, which reads
# every result as f32 and so widens everything, trains to the same bits too; nnrun info says
# how many steps convert in their kernels (some in an nhwc plan, none under widen). Needs data/.
nnc=${1:?usage: f16_native.sh NNC NNRUN}
nnrun=${2:?usage: f16_native.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
run="--data $data --train-limit 64 --test-limit 32 --quiet --threads 2"
for m in ${F16_MODELS:-tiny resnet20 mobilenet_v2 airbench94 alexnet vgg16}; do
	for p in fp16 mixed; do
		for l in nhwc nchw; do
			id=$m-$p-$l
			expect "compile-$id" 0 "" -- "$nnc" compile --batch 8 --precision $p --layout $l "models/$m.nn" -o "$tmp/$id.plan"
			for f in native widen; do
				expect "train-$id-$f" 0 "" -- env NNC_CPU_F16=$f "$nnrun" train "$tmp/$id.plan" $run --steps 3 --checkpoint "$tmp/$id-$f.ckpt"
				expect "export-$id-$f" 0 "" -- "$nnrun" export "$tmp/$id.plan" --weights "$tmp/$id-$f.ckpt" -o "$tmp/$id-$f.safetensors"
				expect "eval-$id-$f" 0 "test loss" -- env NNC_CPU_F16=$f "$nnrun" eval "$tmp/$id.plan" --weights "$tmp/$id-$f.ckpt" $run
				cp "$tmp/out" "$tmp/$id-$f.eval"
			done
			same "weights-$id" "$tmp/$id-native.safetensors" "$tmp/$id-widen.safetensors"
			same "eval-same-$id" "$tmp/$id-native.eval" "$tmp/$id-widen.eval"
		done
	done
done
id=resnet20-fp16-nhwc
if [ -f "$tmp/$id.plan" ]; then
	expect "numerics-$id" 0 "" -- "$nnrun" train "$tmp/$id.plan" $run --steps 3 --check-numerics --checkpoint "$tmp/$id-n.ckpt"
	expect "export-numerics-$id" 0 "" -- "$nnrun" export "$tmp/$id.plan" --weights "$tmp/$id-n.ckpt" -o "$tmp/$id-n.safetensors"
	same "weights-numerics-$id" "$tmp/$id-native.safetensors" "$tmp/$id-n.safetensors"
	expect "info-$id" 0 "cpu train steps with fp16 values: [1-9][0-9]* convert them in their kernels" -- "$nnrun" info "$tmp/$id.plan"
	expect "info-widen-$id" 0 "cpu train steps with fp16 values: 0 convert them in their kernels" -- env NNC_CPU_F16=widen "$nnrun" info "$tmp/$id.plan"
fi
finish f16_native
