#!/usr/bin/python3
"""Whole-graph gradient check: nnc's autodiff (the gradient rule of every op, wired to the CPU
kernels) against central finite differences of the training loss, on tests/gradcheck/allops.nn
(every op) or the model given (ctest runs it on convs.nn too: convolutions' backward-data).

`nnrun step` gives the loss and every parameter gradient of one training step. With the
learning rate, momentum and weight decay at zero the step leaves the weights as they were, and
each `nnrun step` starts a fresh executor, so the dropout mask is the same in every run; the
loss is then a deterministic function of the weights. Every trainable parameter must have a
gradient (one missing fails the check). For PROBES elements of every parameter (the first, the
last, random ones), (L(w + h) - L(w - h)) / 2h must match the gradient for one of two steps h: the
executor computes in fp32, so a small h drowns in the rounding of L (the tolerance includes
NOISE * |L| / h), while a large h may carry a ReLU, ReLU6 or max-pool input across its kink (and
batch norm spreads that over a channel), which only the small h avoids.

With --layout nhwc the plan computes channels-last (passes/layout.c): the same gradients
through the NHWC kernels, relayouts and OHWI filters, which `nnrun step` reports in PyTorch's
layout as it reads the weights in.

usage: gradcheck.py NNC NNRUN [MODEL.nn] [--layout nchw|nhwc]        (no PyTorch needed)
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from crosscheck import read, serialize  # noqa: E402

STEPS = (1e-3, 1e-4)
RTOL, NOISE = 2e-2, 2e-7  # NOISE: a generous bound on fp32 rounding of the loss, relative
PROBES = 8  # elements per parameter: the first, the last and random ones between
BATCH = 8


def floats(entry):
    dtype, shape, data, _ = entry
    return shape, list(struct.unpack("<%df" % (len(data) // 4), data))


def pack(shape, values):
    return ("F32", shape, struct.pack("<%df" % len(values), *values))


def main():
    args = sys.argv[1:]
    layout = "nchw"
    if "--layout" in args:
        i = args.index("--layout")
        layout = args[i + 1]
        del args[i:i + 2]
    nnc, nnrun = args[0:2]
    here = os.path.dirname(os.path.abspath(__file__))
    model = args[2] if len(args) > 2 else os.path.join(here, "allops.nn")
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as d:
        plan, w, b, out, init = (os.path.join(d, n) for n in ("g.plan", "w.safetensors", "b.safetensors", "o.safetensors", "i.safetensors"))
        subprocess.run([nnc, "compile", "--batch", str(BATCH), "--set", "lr=0", "--set", "momentum=0",
                        "--set", "weight_decay=0", "--set", "schedule=constant", "--layout", layout, model,
                        "-o", plan], check=True, capture_output=True)
        image = [rng.gauss(0, 1) for _ in range(BATCH * 3 * 8 * 8)]
        labels = [rng.randrange(10) for _ in range(BATCH)]
        open(b, "wb").write(serialize({"image": pack([BATCH, 3, 8, 8], image),
                                       "label": ("I32", [BATCH], struct.pack("<%di" % BATCH, *labels))}, {}))
        def step(params):
            if params is not None:
                open(w, "wb").write(serialize({k: pack(*v) for k, v in params.items()}, {}))
            args = [nnrun, "step", plan, "--input", b, "-o", out, "--threads", "1"]
            args += ["--weights", w] if params is not None else []
            r = subprocess.run(args, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit("nnrun step failed: " + r.stderr)
            return {k: floats(v) for k, v in read(out)[3].items()}

        # Random weights of the right shapes (read from the plan's parameter and value tables).
        shapes, trainable = {}, set()
        with open(plan) as f:
            lines = f.read().splitlines()
        values = [l for l in lines if l.startswith("  - [")]
        for l in lines:
            if l.startswith("  - {name: ") and "trainable:" in l:
                name = l.split('"')[1]
                vid = int(l.split("value: ")[1].split(",")[0])
                dims = [int(x) for x in values[vid].split("[")[2].split("]")[0].split(",") if x.strip()]
                shapes[name] = dims
                if "trainable: true" in l:
                    trainable.add(name)
        weights = {}
        for name, dims in shapes.items():
            n = 1
            for x in dims:
                n *= x
            if name.endswith("running_var"):
                vals = [rng.uniform(0.5, 1.5) for _ in range(n)]
            elif name.startswith("optim."):
                vals = [0.0] * n
            else:
                vals = [rng.uniform(-0.5, 0.5) for _ in range(n)]
            weights[name] = (dims, vals)
        base = step(weights)
        loss0 = base["loss"][1][0]
        checked, bad, worst = 0, [], 0.0
        missing = sorted(n for n in trainable if "grad." + n not in base)
        for name, (dims, vals) in sorted(weights.items()):
            gkey = "grad." + name
            if gkey not in base:
                continue
            grad = base[gkey][1]
            n = len(vals)
            probes = sorted(set([0, n - 1] + rng.sample(range(n), min(PROBES - 2, n)))) if n > 2 else list(range(n))
            for i in probes:
                ratios, fds = [], []
                for h in STEPS:
                    plus = dict(weights)
                    plus[name] = (dims, vals[:i] + [vals[i] + h] + vals[i + 1:])
                    minus = dict(weights)
                    minus[name] = (dims, vals[:i] + [vals[i] - h] + vals[i + 1:])
                    fd = (step(plus)["loss"][1][0] - step(minus)["loss"][1][0]) / (2 * h)
                    fds.append(fd)
                    ratios.append(abs(fd - grad[i]) / (NOISE * abs(loss0) / h + RTOL * abs(fd)))
                ratio = min(ratios)
                worst = max(worst, ratio)
                checked += 1
                if ratio > 1:
                    bad.append("%s[%d]: autodiff %.6g, finite differences %s" % (
                        name, i, grad[i], ", ".join("%.6g (h %g)" % (f, h) for f, h in zip(fds, STEPS))))
        print("%s: loss %.5f, %d gradient elements of %d parameters checked, worst error/tolerance %.3f" % (
            os.path.basename(model), loss0, checked, sum(1 for k in weights if "grad." + k in base), worst))
        if missing:
            print("MISSING: no gradient for the trainable parameter(s) " + ", ".join(missing))
            return 1
        if bad:
            print("MISMATCH:\n  " + "\n  ".join(bad))
            return 1
        print("ok: autodiff matches finite differences")
        return 0


if __name__ == "__main__":
    sys.exit(main())
