#!/bin/sh
# Precision end to end on the CPU: fp16, mixed and a policy file compile and train; the loss
# scaler skips steps whose gradients overflow and halves its scale (GradScaler's rule);
# fp16 optimizer warnings; --check-numerics names the op that first produced NaN/Inf; and
# `nnrun compare` (Lemma 3.3) finds no disagreement where Gamma >= 2 delta. Needs data/.
#   tests/precision/precision.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: precision.sh NNC NNRUN}
nnrun=${2:?usage: precision.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/../lib.sh"
need_cifar "$data"
run="--data $data --train-limit 1280 --test-limit 300 --quiet --threads 2"

for p in fp32 fp16 mixed tests/golden/inc/policy.yaml tests/golden/inc/policy_state.yaml; do
	name=$(basename "$p" .yaml)
	expect "compile-$name" 0 "compiled" -- "$nnc" compile --batch 64 --precision "$p" models/tiny.nn -o "$tmp/$name.plan"
done
# The policy's dense layer accumulates in true fp16 (every partial sum rounded).
# policy_state: fp16 weights with fp32 optimizer state and running statistics.
for p in fp16 mixed policy policy_state; do
	expect "train-$p" 0 "" -- "$nnrun" train "$tmp/$p.plan" $run --set epochs=2 --metrics "$tmp/$p.csv" --checkpoint "$tmp/$p.ckpt"
	expect "learns-$p" 0 "" -- awk -F, 'NR == 2 { a = $2 } NR == 3 { exit !($2 < a) }' "$tmp/$p.csv"
done
expect mixed-scale 0 "^2,.*,65536,0$" -- cat "$tmp/mixed.csv"

# An absurd initial scale overflows the fp16 gradients: each such step is skipped and the scale
# halved until the gradients fit, so scale == 2^40 / 2^skipped afterwards.
printf 'base: mixed\nloss_scaling: dynamic\nloss_scale: 1099511627776\n' >"$tmp/huge.yaml"
expect compile-huge 0 "" -- "$nnc" compile --batch 64 --precision "$tmp/huge.yaml" models/tiny.nn -o "$tmp/huge.plan"
expect train-huge 0 "" -- "$nnrun" train "$tmp/huge.plan" $run --set epochs=1 --metrics "$tmp/huge.csv" --checkpoint "$tmp/h.ckpt"
expect scaler 0 "" -- awk -F, 'NR == 2 { s = $9; k = $10; exit !(k >= 1 && s == 1099511627776 / 2 ^ k) }' "$tmp/huge.csv"
# A static scale never backs off: every step overflows and is skipped, so nothing is learnt.
printf 'base: mixed\nloss_scaling: static\nloss_scale: 1099511627776\n' >"$tmp/static.yaml"
"$nnc" compile --batch 64 --precision "$tmp/static.yaml" models/tiny.nn -o "$tmp/static.plan" 2>/dev/null
expect static-skips 0 "" -- "$nnrun" train "$tmp/static.plan" $run --set epochs=1 --metrics "$tmp/static.csv" --checkpoint "$tmp/s.ckpt"
expect static-all-skipped 0 ",20$" -- cat "$tmp/static.csv"

# Optimizer numerics in pure fp16.
"$nnc" compile --batch 64 --precision fp16 --set optimizer=adam models/tiny.nn -o "$tmp/adam16.plan" 2>/dev/null
expect adam-eps 0 "Adam eps 1e-08 is below what fp16 state can support" -- \
	"$nnrun" train "$tmp/adam16.plan" $run --set epochs=1 --set lr=0.001 --checkpoint "$tmp/a.ckpt"
# The floor is applied, not only announced: eps 1e-8 trains exactly as eps 2^-12 does (the plan's
# min_eps), and a larger eps, which is above the floor, differently.
for e in 1e-8 0.000244140625 1e-3; do
	"$nnrun" train "$tmp/adam16.plan" $run --set epochs=1 --set lr=0.001 --set eps=$e --steps 3 \
		--checkpoint "$tmp/eps$e.ckpt" 2>/dev/null &&
		"$nnrun" export "$tmp/adam16.plan" --weights "$tmp/eps$e.ckpt" -o "$tmp/eps$e.safetensors"
done
expect adam-eps-floor 0 "" -- cmp "$tmp/eps1e-8.safetensors" "$tmp/eps0.000244140625.safetensors"
expect adam-eps-above 1 "differ" -- cmp "$tmp/eps1e-3.safetensors" "$tmp/eps0.000244140625.safetensors"
expect tiny-decay 0 "weight-decay steps lr \* weight_decay = 5e-05 are below half an fp16 ulp" -- \
	"$nnrun" train "$tmp/fp16.plan" $run --set epochs=1 --checkpoint "$tmp/d.ckpt"

# --check-numerics: a learning rate that blows up stops at the first NaN/Inf, naming the op.
expect numerics-clean 0 "none: every result was finite\|underflow" -- \
	"$nnrun" train "$tmp/fp16.plan" $run --set epochs=1 --check-numerics --checkpoint "$tmp/n.ckpt"
expect numerics-nan 1 "models/tiny.nn:[0-9]*:[0-9]*: .* produced [0-9]* NaN and [0-9]* Inf values (first non-finite result of the run)" -- \
	"$nnrun" train "$tmp/fp16.plan" $run --set epochs=1 --set lr=1e6 --check-numerics --checkpoint "$tmp/n2.ckpt"

# Lemma 3.3: the same weights through fp32 and fp16 plans.
expect export 0 "" -- "$nnrun" export "$tmp/fp32.plan" --weights "$tmp/mixed.ckpt" -o "$tmp/w.safetensors"
expect compare 0 "disagree despite Gamma >= 2 delta: 0" -- \
	"$nnrun" compare "$tmp/fp32.plan" "$tmp/fp16.plan" --weights "$tmp/w.safetensors" $run --csv "$tmp/cmp.csv"
expect compare-csv 0 "^image,label,pred_a,pred_b,gamma,delta,guaranteed" -- head -1 "$tmp/cmp.csv"
expect compare-rows 0 "^301$" -- sh -c "wc -l <'$tmp/cmp.csv'"
expect compare-other-net 1 "are not the same network" -- sh -c \
	"'$nnc' compile --batch 64 models/resnet20.nn -o '$tmp/r.plan' 2>/dev/null; '$nnrun' compare '$tmp/fp32.plan' '$tmp/r.plan' --weights '$tmp/w.safetensors' $run"
finish precision
