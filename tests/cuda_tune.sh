#!/bin/sh
# nnc tune-precision on the GPU (label cuda; skipped without a usable GPU): the tiny model
# trained there briefly, then tuned with --device cuda under a budget of no violations at all
# (always reachable: with every layer in f32 the plan is the f32 plan); the policy as written,
# compiled by nnc and measured again by `nnrun compare --device cuda --holdout`, must give the
# tuner's figures, and a second run must write the same policy and report (deterministic
# algorithms only). Needs data/ (or NNC_DATA, with NNC_RECORDS images per file).
#   tests/cuda_tune.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: cuda_tune.sh NNC NNRUN}
nnrun=${2:?usage: cuda_tune.sh NNC NNRUN}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
"$nnc" compile --set epochs=2 models/tiny.nn -o "$tmp/t.plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
cuda_needs "$nnrun" "$tmp/t.plan"
# the first 5000 training images (all the device check carries): 4500 to train on, 500 held out
holdout=500
expect train 0 "" -- "$nnrun" train "$tmp/t.plan" --data "$data" $records --train-limit 4500 \
	--test-limit 100 --device cuda --deterministic --quiet --checkpoint "$tmp/t.ckpt"
expect export 0 "" -- "$nnrun" export "$tmp/t.plan" --weights "$tmp/t.ckpt" -o "$tmp/t.safetensors"
tune="$nnc tune-precision models/tiny.nn --weights $tmp/t.safetensors --data $data $records --train-limit 5000 --holdout $holdout --device cuda --budget violations=0"
expect tune 0 "held out: .* violations 0, flips 0" -- $tune -o "$tmp/p.yaml" --report "$tmp/p.csv"
cp "$tmp/out" "$tmp/tune.txt"
expect tune-again 0 "" -- $tune -o "$tmp/p2.yaml" --report "$tmp/p2.csv"
same same-policy "$tmp/p.yaml" "$tmp/p2.yaml"
same same-report "$tmp/p.csv" "$tmp/p2.csv"
"$nnc" compile models/tiny.nn -o "$tmp/f32.plan" 2>/dev/null
expect compile-policy 0 "" -- "$nnc" compile --precision "$tmp/p.yaml" models/tiny.nn -o "$tmp/tuned.plan"
expect compare 0 "" -- "$nnrun" compare "$tmp/f32.plan" "$tmp/tuned.plan" --weights "$tmp/t.safetensors" \
	--data "$data" $records --train-limit 5000 --holdout $holdout --device cuda --deterministic
cp "$tmp/out" "$tmp/cmp.txt"
acc=$(sed -n 's/.*held out: .*accuracy \([0-9.]*\)%.*/\1/p' "$tmp/tune.txt")
expect agrees 0 "accuracy A [0-9.]*%, B $acc%" -- cat "$tmp/cmp.txt"
expect no-violations 0 "Gamma >= 2 delta (same class guaranteed): $holdout (100.00%)" -- cat "$tmp/cmp.txt"
finish cuda_tune
