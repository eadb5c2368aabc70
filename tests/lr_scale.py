#!/usr/bin/python3
"""Recipe shift_lr_scale (passes/optimizer.c, sgd_update's lr_scale): the batch-norm shifts
train at the learning rate times the scale with the same weight decay per step, every other
parameter as without it. One `nnrun step` of the tiny model from the same weights on the same
batch, with plain SGD (momentum 0, so that the first update is -lr * d): for every shift,
after - before = -lr * (S * grad + wd * before) within float rounding, with S = 64 and S = 1;
every other parameter is bit for bit the same in both runs. Checked in fp32 and, as rounding
allows, in pure fp16. usage: lr_scale.py NNC NNRUN   (needs data/ for the initial weights)"""
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "io"))
from crosscheck import read, serialize  # noqa: E402  (the project's own safetensors helpers)

NNC, NNRUN = sys.argv[1], sys.argv[2]
DATA = os.environ.get("NNC_DATA", "data")
if not os.path.exists(os.path.join(DATA, "cifar-10-batches-bin", "test_batch.bin")):
    print("lr_scale: no CIFAR-10 in %s (for the initial weights); skipped" % DATA)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)
LR, WD, BATCH = 0.05, 0.01, 8
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    if not ok:
        failures.append(name)


def values(entry):
    dtype, _, data, _ = entry
    fmt = {"F32": "f", "F16": "e"}[dtype]
    return struct.unpack("<%d%s" % (len(data) // struct.calcsize(fmt), fmt), data)


with tempfile.TemporaryDirectory() as d:
    rnd = random.Random(7)
    x = struct.pack("<%df" % (BATCH * 3072), *[rnd.gauss(0, 1) for _ in range(BATCH * 3072)])
    y = struct.pack("<%di" % BATCH, *[rnd.randrange(10) for _ in range(BATCH)])
    batch = os.path.join(d, "b.safetensors")
    open(batch, "wb").write(serialize({"image": ("F32", [BATCH, 3, 32, 32], x), "label": ("I32", [BATCH], y)}, {}))
    for precision, tol in (("fp32", 1e-5), ("fp16", 2e-3)):
        out = {}
        for s in (1, 64):
            plan = os.path.join(d, "%s-%d.plan" % (precision, s))
            subprocess.run([NNC, "compile", "--batch", str(BATCH), "--precision", precision, "--set", "schedule=constant",
                            "--set", "lr=%g" % LR, "--set", "momentum=0", "--set", "weight_decay=%g" % WD,
                            "--set", "shift_lr_scale=%d" % s, "models/tiny.nn", "-o", plan], check=True, capture_output=True)
            if s == 1:
                ck, w = os.path.join(d, "w.ckpt"), os.path.join(d, "w-%s.safetensors" % precision)
                # the initial weights: one step at learning rate 0 changes nothing
                subprocess.run([NNRUN, "train", plan, "--data", DATA, "--train-limit", "64", "--test-limit", "16", "--steps",
                                "1", "--lr", "0", "--quiet", "--threads", "2", "--checkpoint", ck], check=True, capture_output=True)
                subprocess.run([NNRUN, "export", plan, "--weights", ck, "-o", w], check=True, capture_output=True)
            o = os.path.join(d, "o-%s-%d.safetensors" % (precision, s))
            r = subprocess.run([NNRUN, "step", plan, "--weights", w, "--input", batch, "-o", o, "--threads", "2"],
                               capture_output=True, text=True)
            check("%s step with shift_lr_scale=%d" % (precision, s), r.returncode == 0, r.stderr.strip()[:300])
            out[s] = read(o)[3]
        before = read(w)[3]
        shifts = [n for n in before if n.endswith(".bias") and ("bn" in n or "norm" in n)]
        check("%s: the model has batch-norm shifts" % precision, len(shifts) > 0, str(sorted(before)))
        for s in (1, 64):
            worst = 0.0
            for n in shifts:
                for p0, p1, g in zip(values(before[n]), values(out[s][n]), values(out[s]["grad." + n])):
                    want = p0 - LR * (s * g + WD * p0)
                    worst = max(worst, abs(p1 - want) / max(abs(want - p0), abs(p0), 1e-3))
            check("%s: shift update with scale %d" % (precision, s), worst <= tol, "largest relative error %.3g" % worst)
        others = [n for n in out[1] if n in before and n not in shifts]
        check("%s: every other parameter unchanged by the scale" % precision,
              all(out[1][n][2] == out[64][n][2] for n in others), ", ".join(n for n in others if out[1][n][2] != out[64][n][2]))
    r = subprocess.run([NNC, "compile", "--set", "optimizer=adam", "--set", "shift_lr_scale=64", "models/tiny.nn", "-o",
                        os.path.join(d, "x.plan")], capture_output=True, text=True)
    check("refused with adam", r.returncode == 1 and "'shift_lr_scale' is for optimizer sgd, not adam" in r.stderr, r.stderr)
print("lr_scale: %d failed" % len(failures))
sys.exit(1 if failures else 0)
