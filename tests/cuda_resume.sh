#!/bin/sh
# Checkpoints cross devices (label cuda; skipped without a usable GPU): a run trained 3 steps
# on the GPU resumes on the CPU, and one trained on the CPU resumes on the GPU, each for 3 more
# steps; both continuations must finish with a finite loss close to a run that stays on one
# device (the devices round differently, so not bit for bit: within 5% after 6 steps). Needs
# data/ (or NNC_DATA, with NNC_RECORDS images per file).
#   tests/cuda_resume.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: cuda_resume.sh NNC NNRUN}
nnrun=${2:?usage: cuda_resume.sh NNC NNRUN}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
"$nnc" compile --batch 32 models/resnet20.nn -o "$tmp/r.plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
cuda_needs "$nnrun" "$tmp/r.plan"
# A gentle learning rate, so that six steps' test loss is a stable figure to compare.
run="--data $data $records --train-limit 512 --test-limit 256 --quiet --threads 2 --lr 0.01"
for first in cuda cpu; do
	second=$([ $first = cuda ] && echo cpu || echo cuda)
	expect "train-$first" 0 "" -- "$nnrun" train "$tmp/r.plan" $run --device $first --steps 3 --checkpoint "$tmp/$first.ckpt"
	expect "resume-on-$second" 0 "" -- "$nnrun" train "$tmp/r.plan" $run --device $second --resume "$tmp/$first.ckpt" \
		--steps 3 --checkpoint "$tmp/$first-then-$second.ckpt" --metrics "$tmp/$first-then-$second.csv"
done
expect "stay-cpu" 0 "" -- "$nnrun" train "$tmp/r.plan" $run --device cpu --steps 6 --checkpoint "$tmp/cpu6.ckpt"
for pair in cuda-then-cpu cpu-then-cuda; do
	expect "eval-$pair" 0 "accuracy" -- "$nnrun" eval "$tmp/r.plan" --weights "$tmp/$pair.ckpt" $run --device cpu
	cp "$tmp/out" "$tmp/$pair.eval"
done
expect "eval-cpu6" 0 "accuracy" -- "$nnrun" eval "$tmp/r.plan" --weights "$tmp/cpu6.ckpt" $run --device cpu
ref=$(sed -n 's/test loss \([0-9.]*\),.*/\1/p' "$tmp/out")
for pair in cuda-then-cpu cpu-then-cuda; do
	got=$(sed -n 's/test loss \([0-9.]*\),.*/\1/p' "$tmp/$pair.eval")
	rel=$(awk -v a="$got" -v b="$ref" 'BEGIN { if (a != "" && b > 0) printf "%.6f", (a > b ? a - b : b - a) / b }')
	atmost "$pair" "$rel" 0.05 "the test loss's relative distance from the CPU-only run's ($got vs $ref)"
done
finish cuda_resume
