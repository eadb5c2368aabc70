#!/bin/sh
# Stochastic rounding of fp16 weight updates (optimizer.rounding, runtime/sround.h) on the CPU,
# end to end with the tiny model in pure fp16: a run repeats bit for bit, differs from rounding
# to nearest, and resumed mid-epoch ends exactly as the uninterrupted run; --check-numerics
# counts the updates that vanished under rounding to nearest at a learning rate whose steps are
# below half an ulp, and stochastic rounding moves the weights where nearest hardly does; f32 parameters are told it changes nothing. Needs the
# dataset in data/; skips (77) without it, fails under CI=true.
#   tests/rounding.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: rounding.sh NNC NNRUN}
nnrun=${2:?usage: rounding.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/lib.sh"
need_cifar "$data"

plan=$tmp/t16.plan
"$nnc" compile --batch 64 --precision fp16 models/tiny.nn -o "$plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
run="$nnrun train $plan --data $data --train-limit 320 --test-limit 64 --quiet --threads 2 --epochs 1"
sr="--set optimizer.rounding=stochastic"
expect sr-a 0 "" -- $run $sr --checkpoint "$tmp/a.ckpt"
expect sr-b 0 "" -- $run $sr --checkpoint "$tmp/b.ckpt"
same sr-repeats "$tmp/a.ckpt" "$tmp/b.ckpt"
expect nearest 0 "" -- $run --checkpoint "$tmp/n.ckpt"
expect sr-differs 1 "" -- cmp -s "$tmp/a.ckpt" "$tmp/n.ckpt"
expect sr-seed 0 "" -- $run $sr --seed 1 --checkpoint "$tmp/s1.ckpt"
expect sr-seed-differs 1 "" -- cmp -s "$tmp/a.ckpt" "$tmp/s1.ckpt"
# resume: stopped after 2 of 5 steps, continued with the checkpoint's recipe (rounding included)
expect sr-part 0 "" -- $run $sr --checkpoint "$tmp/p.ckpt" --steps 2
expect sr-resume 0 "" -- "$nnrun" train "$plan" --data "$data" --quiet --threads 2 --resume "$tmp/p.ckpt" \
	--checkpoint "$tmp/p.ckpt"
same sr-resume-identical "$tmp/a.ckpt" "$tmp/p.ckpt"

# Steps of lr 1e-5 are below half an fp16 ulp of almost every weight: to nearest, nearly every
# update vanishes (--check-numerics counts them) and the weights hardly move; stochastically,
# they move many times more often (measured: 0.3-0.9% of the conv and linear weights changed,
# against 6-13%).
run2="$nnrun train $plan --data $data --train-limit 640 --test-limit 64 --quiet --threads 2 --epochs 2"
small="--lr 0.00001 --set weight_decay=0"
expect init 0 "" -- $run2 --steps 1 --lr 0 --checkpoint "$tmp/i.ckpt"
expect small-nearest 0 "sgd_update  *conv2.weight  *0  *0  *0  *0  *[1-9][0-9]*  models/tiny.nn:10:9" -- \
	$run2 $small --check-numerics --checkpoint "$tmp/sn.ckpt"
expect small-sr 0 "" -- $run2 $small $sr --checkpoint "$tmp/ss.ckpt"
for c in i sn ss; do
	expect "export-$c" 0 "" -- "$nnrun" export "$plan" --weights "$tmp/$c.ckpt" -o "$tmp/$c.safetensors"
done
expect small-sr-moves 0 "" -- /usr/bin/python3 - "$tmp" <<'PY'
import sys
sys.path.insert(0, "tests/io")
from crosscheck import read
a, n, s = (read("%s/%s.safetensors" % (sys.argv[1], x))[3] for x in ("i", "sn", "ss"))
ok = True
for k in ("conv1.weight", "conv2.weight", "linear.weight"):
    m = len(a[k][2]) // 2
    moved = lambda b: sum(a[k][2][2 * i:2 * i + 2] != b[k][2][2 * i:2 * i + 2] for i in range(m)) / m
    fn, fs = moved(n), moved(s)
    print(k, "changed: nearest %.3f, stochastic %.3f" % (fn, fs))
    ok &= fs >= 0.03 and fs >= 4 * fn
sys.exit(0 if ok else 1)
PY

# The executor's draws are the documented ones: one training step (`nnrun step`, update 6 of
# the run: --optimizer-step 5) recomputed independently here from the step's own gradients --
# p + (-lr) * g in f32 (momentum and decay off), then rounded as runtime/sround.h specifies with
# the key (seed, 5, the parameter's plan value), element i the i-th in the plan's storage
# order -- gives every stored fp16 bit.
# (channels-first, so that the file's element order is the storage order the draws follow)
"$nnc" compile --batch 64 --precision fp16 --layout nchw models/tiny.nn -o "$tmp/nchw.plan" 2>/dev/null || echo "FAIL nchw"
expect step-weights 0 "" -- "$nnrun" export "$plan" --weights "$tmp/i.ckpt" -o "$tmp/w0.safetensors"
/usr/bin/python3 - "$tmp/batch.safetensors" <<'PY' || echo "FAIL batch"
import struct, sys
sys.path.insert(0, "tests/io")
from crosscheck import serialize
img = struct.pack("<%df" % (64 * 3 * 32 * 32), *[((i * 7919) % 1000) / 500.0 - 1 for i in range(64 * 3 * 32 * 32)])
lab = struct.pack("<64i", *[i % 10 for i in range(64)])
open(sys.argv[1], "wb").write(serialize({"image": ("F32", [64, 3, 32, 32], img), "label": ("I32", [64], lab)}, {}))
PY
expect step-sr 0 "" -- "$nnrun" step "$tmp/nchw.plan" --weights "$tmp/w0.safetensors" --input "$tmp/batch.safetensors" \
	-o "$tmp/step.safetensors" --optimizer-step 5 --lr 0.01 --set momentum=0 --set weight_decay=0 \
	--set schedule=constant --set seed=3 $sr --threads 2
expect step-sr-bits 0 "^same bits: 1586 weights, [1-9][0-9]* of them not rounded to nearest$" -- /usr/bin/python3 - \
	"$tmp/nchw.plan" "$tmp/w0.safetensors" "$tmp/step.safetensors" <<'PY'
import re, struct, sys
import numpy as np
sys.path.insert(0, "tests/io")
from crosscheck import read
M = (1 << 64) - 1
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def key3(a, b, c):
    return mix64((mix64((mix64(a) + b) & M) + c) & M)
def sround(x, r):  # runtime/sround.h's specification, on the value: P(up) = ceil(frac * 2^32) / 2^32
    x = np.float32(x)
    a = abs(float(x))
    if a == 0 or a > 65504:
        return x
    e = int(np.frexp(np.float32(a))[1])
    ulp = max(e - 1, -14) - 10
    q = a / 2.0 ** ulp
    lo = int(q)
    frac = q - lo
    up = 1 if r < -(-int(frac * 2 ** 40) // 2 ** 8) else 0  # frac has at most 24 bits here
    y = np.float32((lo + up) * 2.0 ** ulp)
    return -y if x < 0 else y
values = {m.group(1): int(m.group(2)) for m in re.finditer(r'\{name: "([^"]+)", kind: \w+, init: \w+, value: (\d+)', open(sys.argv[1]).read())}
w0, out = read(sys.argv[2])[3], read(sys.argv[3])[3]
key0 = 3 ^ 0x73726f756e643136
total = differ = bad = 0
for name, v in w0.items():
    raw = v[2]
    if "grad." + name not in out:
        continue
    p = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
    g = np.frombuffer(out["grad." + name][2], dtype=np.float32)
    new = p + np.float32(-0.01) * g
    got = np.frombuffer(out[name][2], dtype=np.float16)
    k = key3(key0, 5, values[name])
    for i in range(len(p)):
        r = mix64((k + (i + 1) * 0x9e3779b97f4a7c15) & M) >> 32
        want = np.float16(sround(new[i], r))
        bad += want.tobytes() != got[i].tobytes()
        differ += np.float16(new[i]).tobytes() != got[i].tobytes()
        total += 1
print("same bits: %d weights, %d of them not rounded to nearest" % (total, differ) if not bad else "%d of %d differ" % (bad, total))
PY

# the recipe key: its values, and a note where no parameter is fp16
expect bad-value 1 "recipe setting 'optimizer.rounding' must be one of: nearest stochastic; got 'up'" -- \
	$run --set optimizer.rounding=up
"$nnc" compile --batch 64 --precision mixed models/tiny.nn -o "$tmp/mixed.plan" 2>/dev/null || echo "FAIL compile mixed"
expect mixed-note 0 "note: optimizer.rounding stochastic changes nothing here: this plan's parameters are not fp16" -- \
	"$nnrun" train "$tmp/mixed.plan" --data "$data" --train-limit 320 --test-limit 64 --threads 2 --steps 1 $sr \
	--checkpoint "$tmp/m.ckpt"
finish rounding
