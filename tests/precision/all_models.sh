#!/bin/sh
# Every model in models/ compiles and runs training steps in every precision -- fp32, fp16,
# mixed, and the policy file tests/golden/inc/policy.yaml (which also accumulates a layer in
# true fp16) -- at a small batch, with a finite loss. Run from the repository root:
#   tests/precision/all_models.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: all_models.sh NNC NNRUN}
nnrun=${2:?usage: all_models.sh NNC NNRUN}
TIMEOUT=300
. "$(dirname "$0")/../lib.sh"
for f in models/*.nn; do
	m=$(basename "$f" .nn)
	for p in fp32 fp16 mixed tests/golden/inc/policy.yaml; do
		id=$m-$(basename "$p" .yaml)
		expect "compile-$id" 0 "compiled" -- "$nnc" compile --batch 2 --precision "$p" "$f" -o "$tmp/$id.plan"
		expect "train-$id" 0 "loss [0-9]" -- "$nnrun" bench "$tmp/$id.plan" --steps 2 --threads 2
	done
done
finish all_models
