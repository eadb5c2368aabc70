#!/usr/bin/python3
"""fp16 and mixed against fp32, op by op in one network: the same weights and batch through
tests/gradcheck/allops.nn (every op) and models/tiny.nn compiled in each precision; `nnrun step`
gives the loss, the logits and every gradient, which must agree with fp32 within tolerances
set by fp16's precision (11 significant bits, unit roundoff 2^-11 = 4.9e-4, compounded over a
dozen layers):

  loss:      |l16 - l32| <= 2e-2 * |l32|
  logits:    max |z16 - z32| <= 3e-2 * max |z32|
  gradients: ||g16 - g32|| <= 5e-2 * max(||g32||, 1e-2 * G) for each parameter, G the largest
             gradient norm of the network (a gradient that vanishes in exact arithmetic, as a
             conv bias right before batch norm does, is rounding noise in both)

Mixed keeps the loss and batch statistics in fp32 and should be at least as close; it reports
gradients unscaled. `acc16` (pure fp16 with every sum accumulated in fp16, rounded at each
add: tests/precision/acc16.yaml) really loses precision -- a sum of K terms in fp16 carries an
error growing like K u, and weight gradients sum over batch and image (K ~ 1000) -- so its loss
and logits get four times the tolerances and its gradients must keep their direction: cosine
similarity with fp32 >= 0.9 (the fp16 accumulation kernels themselves are checked bit for bit
against an independent model of fp16 arithmetic in tests/cpu/test_acc16.c).
usage: fp16_vs_fp32.py NNC NNRUN
"""
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from crosscheck import read, serialize  # noqa: E402

BATCH = 16


def floats(entry):
    dtype, shape, data, _ = entry
    if dtype == "F16":
        return list(struct.unpack("<%de" % (len(data) // 2), data))
    return list(struct.unpack("<%df" % (len(data) // 4), data))


def weights_for(plan, rng):
    lines = open(plan).read().splitlines()
    values = [l for l in lines if l.startswith("  - [")]
    out = {}
    for l in lines:
        if l.startswith("  - {name: ") and "trainable:" in l:
            name = l.split('"')[1]
            if name.startswith("optim."):
                continue
            vid = int(l.split("value: ")[1].split(",")[0])
            dims = [int(x) for x in values[vid].split("[")[2].split("]")[0].split(",") if x.strip()]
            n = 1
            for x in dims:
                n *= x
            init = l.split("init: ")[1].split(",")[0]
            if name.endswith("running_var") or init == "ones":
                vals = [rng.uniform(0.8, 1.2) for _ in range(n)]
            else:
                fan = max(1, n // dims[0]) if dims else 1
                vals = [rng.gauss(0, math.sqrt(2.0 / fan)) for _ in range(n)]
            out[name] = ("F32", dims, struct.pack("<%df" % n, *vals))
    return out


def main():
    nnc, nnrun = sys.argv[1:3]
    here = os.path.dirname(os.path.abspath(__file__))
    models = [os.path.join(here, "..", "gradcheck", "allops.nn"), os.path.join(here, "..", "..", "models", "tiny.nn")]
    rng = random.Random(11)
    bad = []
    with tempfile.TemporaryDirectory() as d:
        for model in models:
            name = os.path.basename(model)
            h = 8 if "allops" in model else 32
            image = [rng.gauss(0, 1) for _ in range(BATCH * 3 * h * h)]
            labels = [rng.randrange(10) for _ in range(BATCH)]
            b = os.path.join(d, "b.safetensors")
            open(b, "wb").write(serialize({"image": ("F32", [BATCH, 3, h, h], struct.pack("<%df" % len(image), *image)),
                                           "label": ("I32", [BATCH], struct.pack("<%di" % BATCH, *labels))}, {}))
            out = {}
            for prec in ("fp32", "fp16", "mixed", "acc16"):
                plan = os.path.join(d, prec + ".plan")
                spec = os.path.join(here, "acc16.yaml") if prec == "acc16" else prec
                subprocess.run([nnc, "compile", "--batch", str(BATCH), "--precision", spec, "--set", "lr=0", model,
                                "-o", plan], check=True, capture_output=True)
                if prec == "fp32":
                    w = os.path.join(d, "w.safetensors")
                    open(w, "wb").write(serialize(weights_for(plan, rng), {}))
                o = os.path.join(d, prec + ".out")
                r = subprocess.run([nnrun, "step", plan, "--weights", w, "--input", b, "-o", o, "--threads", "1"],
                                   capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit("nnrun step failed: " + r.stderr)
                out[prec] = {k: floats(v) for k, v in read(o)[3].items()}
            ref = out["fp32"]
            for prec in ("fp16", "mixed", "acc16"):
                o = out[prec]
                widen = 4 if prec == "acc16" else 1
                worst = {"loss": abs(o["loss"][0] - ref["loss"][0]) / abs(ref["loss"][0]) / (2e-2 * widen),
                         "logits": max(abs(a - b) for a, b in zip(o["logits"], ref["logits"]))
                         / (3e-2 * widen * max(abs(x) for x in ref["logits"]))}
                norms = {k: math.sqrt(sum(b * b for b in v)) for k, v in ref.items() if k.startswith("grad.")}
                big = max(norms.values())
                for k, n in norms.items():
                    if prec == "acc16":
                        if n < 1e-2 * big:
                            continue  # vanishes in exact arithmetic: no direction to keep
                        dot = sum(a * b for a, b in zip(o[k], ref[k]))
                        mine = math.sqrt(sum(a * a for a in o[k])) or 1e-30
                        worst[k] = (1 - dot / (mine * n)) / 0.1
                        continue
                    num = math.sqrt(sum((a - b) ** 2 for a, b in zip(o[k], ref[k])))
                    worst[k] = num / max(n, 1e-2 * big) / 5e-2
                top = sorted(worst.items(), key=lambda kv: -kv[1])
                print("%-10s %-6s loss %.5f vs %.5f; worst error/tolerance: %s" % (
                    name, prec, o["loss"][0], ref["loss"][0], ", ".join("%s %.2f" % kv for kv in top[:3])))
                bad += ["%s %s %s (%.2f x tolerance)" % (name, prec, k, v) for k, v in worst.items() if v > 1]
    if bad:
        print("MISMATCH:\n  " + "\n  ".join(bad))
        return 1
    print("ok: fp16, mixed and fp16-accumulating plans agree with fp32 within fp16 tolerances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
