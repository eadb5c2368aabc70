#!/bin/sh
# Plan files: nnc writes them, nnrun validates them. A good plan loads; a truncated, corrupted,
# wrong-version or inconsistently hand-edited one is refused with a message naming the file and
# the problem. Run from the repository root: tests/plan.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: plan.sh NNC NNRUN}
nnrun=${2:?usage: plan.sh NNC NNRUN}
. "$(dirname "$0")/lib.sh"
# refused NAME SED-SCRIPT MESSAGE [PLAN]: PLAN (default: the tiny plan) edited by the sed script
# is refused by the loader (with --allow-edited, so that its consistency checks speak).
refused() {
	sed "$2" "${4:-$plan}" >"$tmp/$1.plan"
	expect "$1" 1 "$3" -- "$nnrun" info --allow-edited "$tmp/$1.plan"
}


plan=$tmp/tiny.plan
# the refusals below name steps of the nchw plan (the nhwc ones follow)
expect compile 0 "compiled model 'tiny'" -- "$nnc" compile --batch 16 --layout nchw models/tiny.nn -o "$plan"
expect info 0 "train program: 34 steps; eval program: 9 steps" -- "$nnrun" info "$plan"
expect info-recipe 0 "optimizer: sgd" -- "$nnrun" info "$plan"
for m in resnet20 mobilenet_v2 airbench94 alexnet; do
	expect "roundtrip-$m" 0 "train program" -- sh -c "'$nnc' compile --batch 8 models/$m.nn -o '$tmp/$m.plan' && '$nnrun' info '$tmp/$m.plan'"
done
expect inference-only 0 "no training program" -- sh -c "'$nnc' compile tests/golden/import_ok.nn -o '$tmp/inf.plan' && '$nnrun' info '$tmp/inf.plan'"
expect recipe 0 "optimizer: adamw" -- sh -c "printf 'optimizer: adamw\nlr: 0.001\naugment:\n  cutout: 8\n' >'$tmp/r.yaml' && '$nnc' compile --recipe '$tmp/r.yaml' models/tiny.nn -o '$tmp/adam.plan' && '$nnrun' info '$tmp/adam.plan'"
expect recipe-adam-ops 0 "adam_update" -- grep -m1 adam_update "$tmp/adam.plan"
# Adam's fp16-state epsilon floor is the compiler's decision, written into every such update
"$nnc" compile --precision fp16 --set optimizer=adam models/tiny.nn -o "$tmp/adam16.plan" 2>/dev/null
"$nnc" compile --precision mixed --set optimizer=adam models/tiny.nn -o "$tmp/adam32.plan" 2>/dev/null
expect adam-min-eps-f16 0 "8 8" -- sh -c "echo \$(grep -c 'kernel: adam_update' '$tmp/adam16.plan') \$(grep -c 'min_eps: 0.000244140625}' '$tmp/adam16.plan')"
expect adam-min-eps-f32 0 "8 8" -- sh -c "echo \$(grep -c 'kernel: adam_update' '$tmp/adam32.plan') \$(grep -c 'min_eps: 0}' '$tmp/adam32.plan')"
printf 'optimizer: rmsprop\n' >"$tmp/bad.yaml"
expect recipe-bad 1 "bad.yaml:1:12: error: recipe setting 'optimizer' must be one of: sgd adam adamw" -- "$nnc" compile --recipe "$tmp/bad.yaml" models/tiny.nn
printf 'lr: [1, 2\n' >"$tmp/broken.yaml"
expect recipe-yaml 1 "broken.yaml:2:1: error: invalid YAML" -- "$nnc" compile --recipe "$tmp/broken.yaml" models/tiny.nn
expect set-bad 2 "unknown recipe setting 'lrate'" -- "$nnc" compile --set lrate=1 models/tiny.nn

# Damage.
size=$(wc -c <"$plan")
head -c $((size / 2)) "$plan" >"$tmp/trunc.plan"
expect truncated 1 "trunc.plan: error: no checksum line" -- "$nnrun" info "$tmp/trunc.plan"
# (cut a few values into the value table, wherever the recipe above it ends)
head -n $(($(grep -n '^values:' "$plan" | cut -d: -f1) + 3)) "$plan" >"$tmp/cut.plan"
tail -n 1 "$plan" >>"$tmp/cut.plan"
expect cut-lines 1 "cut.plan: error: checksum mismatch" -- "$nnrun" info "$tmp/cut.plan"
expect cut-lines-edited 1 "cut.plan:[0-9]*: error: missing '" -- "$nnrun" info --allow-edited "$tmp/cut.plan"
sed 's/lr: 0.1$/lr: 0.2/' "$plan" >"$tmp/edited.plan"
expect edited 1 "checksum mismatch" -- "$nnrun" info "$tmp/edited.plan"
expect edited-allowed 0 "lr: 0.2" -- "$nnrun" info --allow-edited "$tmp/edited.plan"
refused version 's/^nnc_plan: 6$/nnc_plan: 7/' "plan format version 7, but this nnrun reads version 6"
refused inconsistent-shape '0,/  - \[f32, nchw, \[16, 8, 16, 16\], /s//  - [f32, nchw, [16, 8, 15, 16], /' "inconsistent plan: train step 0 (conv2d at models/tiny.nn:8:9): result %[0-9]* is declared f32\[16,8,15,16\] nchw but the kernel produces f32\[16,8,16,16\] nchw"
# channels-last plans (passes/layout.c): layouts are checked as shapes are
expect compile-nhwc 0 "compiled model 'tiny'" -- "$nnc" compile --batch 16 --layout nhwc models/tiny.nn -o "$tmp/nhwc.plan"
refused layout-value '0,/  - \[f32, nhwc, /s//  - [f32, nchw, /' "train step 0 (relayout at models/tiny.nn:6:11): result %22 is declared f32\[16,3,32,32\] nchw but the kernel produces f32\[16,3,32,32\] nhwc" "$tmp/nhwc.plan"
refused layout-filter '0,/  - \[f32, ohwi, /s//  - [f32, oihw, /' "train step 1 (conv2d at models/tiny.nn:8:9): parameter operand %2 does not have the weight's shape and layout" "$tmp/nhwc.plan"
refused layout-relayout '0,/to: "nhwc"/s//to: "hwcn"/' "relayout: cannot store f32\[16,3,32,32\] nchw as 'hwcn'" "$tmp/nhwc.plan"
refused layout-gap-bwd '0,/layout: "nhwc"/s//layout: "nhcw"/' "global_avgpool_bwd: layout must be \"nchw\" or \"nhwc\", got 'nhcw'" "$tmp/nhwc.plan"
refused bad-operand 's/kernel: bn_stats, out: \([0-9]*\), in: \[\([0-9]*\)\]/kernel: bn_stats, out: \1, in: [999]/' "operand 0 is %999, which is not defined before it"
refused bad-epilogue 's/acc: f32}/acc: f32, epilogue: relu}/' "train step 2 (bn_update at models/tiny.nn:9:14): the bn_update kernel has no epilogue"
refused unknown-epilogue 's/epilogue: relu}/epilogue: gelu}/' "unknown epilogue 'gelu' (relu or relu6)"
# a cast's target is a dtype attribute, refused when it is not f32 or f16
"$nnc" compile --precision mixed models/tiny.nn -o "$tmp/mixed.plan" 2>/dev/null
refused bad-cast-dtype '0,/to: "f16"/s//to: "f64"/' "attribute 'to' must be \"f32\" or \"f16\", got 'f64'" "$tmp/mixed.plan"
# Prologues (relu_bwd folded into a batch-norm backward kernel): only on kernels that have one,
# only known activations, and the operand they add is required.
refused bad-prologue 's/acc: f32, epilogue: relu}/acc: f32, epilogue: relu, prologue: relu}/' "(bn_apply at models/tiny.nn:9:14): the bn_apply kernel has no prologue"
refused unknown-prologue 's/prologue: relu}/prologue: tanh}/' "unknown prologue 'tanh' (relu or relu6)"
refused prologue-dropped '/kernel: bias_grad/s/, prologue: relu}/}/; s/, group: 3}/}/' "(bias_grad at models/tiny.nn:[0-9:]*): 2 operands do not fit the kernel"
# Backward groups: only a bn_bwd_data followed by its bn_bwd_scale and bias_grad; and since the
# three run as one kernel, bn1's shift gradient (%44) may not take the place of its batch
# statistics (%23), which the group still reads, though separate steps would allow it.
refused group-members 's/acc: f32, epilogue: relu}/acc: f32, epilogue: relu, group: 3}/' "(bn_apply at models/tiny.nn:9:14): group 3 is not one of the kinds of step group"
refused group-operands '/kernel: bn_bwd_scale/s/, prologue: relu}/}/' "(bn_bwd_data at models/tiny.nn:11:14): group 3 is not a bn_bwd_data followed by its bn_bwd_scale and bias_grad"
# The other groups (passes/fuse.c step 6). A statistics group leaves its widening cast's f32
# copy unwritten, so nothing else may read it: here bn1's bn_apply is edited to read the copy.
cast=$(sed -n 's/.*kernel: cast, out: \([0-9]*\), in: \[\([0-9]*\)\], attrs: {to: "f32"}.*group: 3}$/\1 \2/p' "$tmp/mixed.plan" | head -n 1)
set -- $cast
refused group-cast-reader "0,/\(kernel: bn_apply, out: [0-9]*, in: \[\)$2,/s//\1$1,/" "(cast at models/tiny.nn:8:9): group 3 is not a bn_stats reading a widening cast that only it reads" "$tmp/mixed.plan"
refused group-kind '0,/\(kernel: conv2d, .*acc: f32\)}/s//\1, group: 2}/' "(conv2d at models/tiny.nn:8:9): group 2 is not one of the kinds of step group"
refused group-size '0,/\(kernel: sgd_update, .*\), group: [0-9]*}/s//\1, group: 99}/' "(sgd_update at models/tiny.nn:8:9): a group of 99 steps does not fit the program"
# A residual group leaves the batch norm's result unwritten: a second reader of it is refused.
"$nnc" compile --batch 8 models/resnet20.nn -o "$tmp/res.plan" 2>/dev/null
y=$(sed -n 's/.*kernel: bn_apply, out: \([0-9]*\), .*group: 2}$/\1/p' "$tmp/res.plan" | head -n 1)
refused group-add-reader "0,/\(kernel: relu_bwd, out: [0-9]*, in: \[[0-9]*, \)[0-9]*\]/s//\1$y]/" "group 2 is not a bn_apply without an epilogue followed by an add that alone reads its result" "$tmp/res.plan"
stats=$(sed -n 's/.*, act, \([0-9]*\)\]  # %23$/\1/p' "$plan")
refused group-overlap "s/\(- \[f32, c, \[8\], act, \)[0-9]*\(\]  # %44\)$/\1$stats\2/" "values %23 and %44 are alive at the same time but overlap"
# Chains (elementwise ops fused into one block-by-block kernel): known, chainable ops only,
# ending in a chainable op.
refused chain-end 's/acc: f32, epilogue: relu}/acc: f32, epilogue: relu, chain: [relu]}/' "(bn_apply at models/tiny.nn:9:14): the bn_apply kernel cannot end a chain"
refused chain-op 's/chain: \[relu\]}/chain: [conv2d]}/' "conv2d cannot be part of a chain" "$tmp/chain-end.plan"
refused chain-unknown 's/chain: \[relu\]}/chain: [relu_backwards]}/' "unknown kernel 'relu_backwards' in chain" "$tmp/chain-end.plan"
refused unknown-kernel 's/kernel: bn_bwd_scale/kernel: bn_backward_scale/' "unknown kernel 'bn_backward_scale'"
# The memory plan is checked too: every activation at offset 0 collides.
refused overlap 's/, act, [0-9]*\]/, act, 0]/' "are alive at the same time but overlap in the act arena"
refused arena-size 's/^arenas: {param: \([0-9]*\), io: \([0-9]*\), act: [0-9]*}/arenas: {param: \1, io: \2, act: 64}/' "is placed outside its arena"
# Fields a fuzzer damaged (issue 14): a step without its accumulation type, and dimensions whose
# product overflows 64 bits, are refused with a message (under ASan: no out-of-bounds read, no
# signed overflow).
refused acc-missing '0,/, acc: f32}/s//}/' "acc-missing.plan:[0-9]*: error: missing 'acc'"
refused huge-dims '0,/^  - \[f32, nchw, \[16, 3, 32, 32\]/s//  - [f32, nchw, [4294967296, 4294967296, 16, 16]/' "value %0 has more than 2^40 elements"
# Inconsistent edits the shapes do not catch (issue 14): what each step does to a parameter must
# fit what the parameter is, epsilons must be positive, and the recipe's batch is the plan's.
sed '0,/kernel: sgd_update, out: -1, in: \[\([0-9]*\), \([0-9]*\), [0-9]*\]/s//kernel: sgd_update, out: -1, in: [\1, \2, \1]/' \
	"$plan" >"$tmp/alias.plan"
expect update-alias 1 "operand 2 is 'conv1.weight', a weight, where a momentum_buffer belongs" -- \
	"$nnrun" info --allow-edited "$tmp/alias.plan"
refused bn-eps '0,/attrs: {eps: 1e-05}/s//attrs: {eps: -1}/' "(bn_stats at models/tiny.nn:9:14): eps -1 must be positive"
refused recipe-batch 's/^  batch: 16$/  batch: 32/' "the recipe's batch 32 differs from the plan's 16"
sed 's/{name: "conv1.weight", kind: weight,/{name: "conv1.weight", kind: running_mean,/' "$plan" >"$tmp/kind.plan"
expect param-kind 1 "parameter 'conv1.weight' is running_mean state but marked trainable" -- \
	"$nnrun" info --allow-edited "$tmp/kind.plan"
sed 's/{name: "conv1.weight", kind: weight, init: he_normal, value: \([0-9]*\), trainable: true/{name: "conv1.weight", kind: weight, init: he_normal, value: \1, trainable: false/' \
	"$plan" >"$tmp/frozen.plan"
expect update-frozen 1 "it updates 'conv1.weight', a weight that is not trainable" -- \
	"$nnrun" info --allow-edited "$tmp/frozen.plan"
# Not regular files (issue 14): a FIFO would block open() forever, a directory read as a plan
# said "no checksum line"; both are refused at once, saying what they are.
mkfifo "$tmp/fifo.plan"
expect fifo-plan 1 "fifo.plan: error: cannot open plan: is a FIFO (named pipe), not a regular file" -- \
	"$nnrun" info "$tmp/fifo.plan"
expect dir-plan 1 "error: cannot open plan: is a directory, not a regular file" -- "$nnrun" info "$tmp"
expect fifo-recipe 1 "fifo.plan: error: cannot open recipe: is a FIFO" -- "$nnc" compile --recipe "$tmp/fifo.plan" models/tiny.nn
expect fifo-policy 1 "cannot open it as a policy file: is a FIFO" -- "$nnc" compile --precision "$tmp/fifo.plan" models/tiny.nn
printf '\0\1\2garbage' >"$tmp/binary.plan"
expect binary 1 "binary.plan: error" -- "$nnrun" info "$tmp/binary.plan"
expect missing 1 "no-such.plan: error: cannot open plan: No such file or directory" -- "$nnrun" info "$tmp/no-such.plan"
expect not-yaml 1 "error" -- sh -c "printf 'a: [\nchecksum: 0\n' >'$tmp/y.plan'; '$nnrun' info --allow-edited '$tmp/y.plan'"

# Devices: a bad --device or NNC_DEVICE is a usage error; --device cuda either runs on a GPU
# or, without one (or without the CUDA backend built in), says so and suggests --device cpu.
expect device-bad 2 "--device must be cpu or cuda, got 'tpu'" -- "$nnrun" bench "$plan" --steps 1 --device tpu
expect device-env-bad 2 "NNC_DEVICE must be cpu or cuda, got 'gpu'" -- env NNC_DEVICE=gpu "$nnrun" bench "$plan" --steps 1
"$nnrun" bench "$plan" --steps 1 --device cuda >"$tmp/out" 2>&1
case $?:$(cat "$tmp/out") in
0:*GPU*) pass=$((pass + 1)) ;;
1:*"--device cuda: "*"run with --device cpu"*) pass=$((pass + 1)) ;;
*) echo "FAIL device-cuda: $(cat "$tmp/out")"; fail=$((fail + 1)) ;;
esac
expect device-cpu 0 "2 threads" -- "$nnrun" bench "$plan" --steps 1 --device cpu --threads 2
finish plan
