#!/usr/bin/python3
"""The data-dependent and structured initializers (runtime/whiten.c, exec.c's dirac), checked
from first principles with PyTorch as the reference:
  - weight_init="whiten" on a 2x2 convolution of 24 filters: after nnrun's initialisation (one
    training step with lr 0 changes nothing), the filters' responses to every 2x2 patch of the
    first 5000 training images (normalized as the loader does) have second moments W M W^T =
    diag(l / (l + eps)), M the patches' moment matrix computed here in float64 and l its
    eigenvalues, largest first; the second 12 filters are the first 12 negated. In fp32 and
    channels-last, and in pure fp16 (within fp16's rounding).
  - weight_init="dirac" on a 3x3 convolution of 24 -> 32 channels: the first 24 filters are the
    identity on their own channel (1 at the centre, 0 elsewhere), the other 8 drawn.
  - both refused where they cannot apply, with located errors.
usage: init_data.py NNC NNRUN   (needs data/)"""
import os
import struct
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "io"))
from crosscheck import read  # noqa: E402  (the project's own safetensors reader)

NNC, NNRUN = sys.argv[1], sys.argv[2]
DATA = os.environ.get("NNC_DATA", "data")
MODEL = """model w {
    input image: image[3, 32, 32]
    input label: labels[10]
    h = gelu(conv2d(image, 24, kernel=2, padding=0, bias=true, frozen_weight=true, weight_init="whiten") as white)
    h = conv2d(h, 32, kernel=3, padding=1, bias=false, weight_init="dirac") as c1
    logits = dense(global_avgpool(relu(h)), 10)
    loss = softmax_cross_entropy(logits, label)
    output logits, loss
}
"""
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    if not ok:
        failures.append(name)


def tensor(st, name):
    dtype, shape, data, _ = st[name]
    fmt = {"F32": "f", "F16": "e"}[dtype]
    return torch.tensor(struct.unpack("<%d%s" % (len(data) // struct.calcsize(fmt), fmt), data), dtype=torch.float64).reshape(shape)


def weights(d, precision, layout):
    plan, ckpt, out = (os.path.join(d, "%s-%s.%s" % (precision, layout, e)) for e in ("plan", "ckpt", "safetensors"))
    subprocess.run([NNC, "compile", "--precision", precision, "--layout", layout, os.path.join(d, "w.nn"), "-o", plan],
                   check=True, capture_output=True)
    subprocess.run([NNRUN, "train", plan, "--data", DATA, "--train-limit", "5000", "--test-limit", "64", "--steps", "1",
                    "--lr", "0", "--set", "momentum=0", "--quiet", "--threads", "2", "--checkpoint", ckpt], check=True)
    subprocess.run([NNRUN, "export", plan, "--weights", ckpt, "-o", out], check=True, capture_output=True)
    _, _, _, st = read(out)
    return tensor(st, "white.weight"), tensor(st, "c1.weight")


def moments():
    raw = open(os.path.join(DATA, "cifar-10-batches-bin", "data_batch_1.bin"), "rb").read(5000 * 3073)
    x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(5000, 3073)[:, 1:].reshape(5000, 3, 32, 32)
    x = x.double() / 255
    mean, std = (torch.tensor(v, dtype=torch.float32).double().view(1, 3, 1, 1) for v in (MEAN, STD))
    x = (x - mean) / std
    p = torch.nn.functional.unfold(x, 2).transpose(1, 2).reshape(-1, 12)  # (c, i, j) order
    return p.T @ p / p.shape[0]


if not os.path.exists(os.path.join(DATA, "cifar-10-batches-bin", "data_batch_1.bin")):
    print("init_data: no CIFAR-10 in %s; skipped" % DATA)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)
with tempfile.TemporaryDirectory() as d:
    open(os.path.join(d, "w.nn"), "w").write(MODEL)
    m = moments()
    lam = torch.linalg.eigvalsh(m).flip(0)
    want = torch.diag(lam / (lam + 5e-4))
    for precision, layout, tol in (("fp32", "nchw", 1e-4), ("fp32", "nhwc", 1e-4), ("fp16", "nhwc", 2e-2)):
        w, c1 = weights(d, precision, layout)
        f = w.reshape(24, 12)
        got = f[:12] @ m @ f[:12].T
        err = (got - want).abs().max().item()
        check("whiten-%s-%s: W M W^T = diag(l / (l + eps))" % (precision, layout), err <= tol, "largest difference %.3g" % err)
        check("whiten-%s-%s: negated half" % (precision, layout), torch.equal(f[12:], -f[:12]))
        ident = torch.zeros(24, 24, 3, 3, dtype=torch.float64)
        for o in range(24):
            ident[o, o, 1, 1] = 1
        check("dirac-%s-%s: first 24 filters the identity" % (precision, layout), torch.equal(c1[:24], ident))
        check("dirac-%s-%s: the others drawn" % (precision, layout), bool((c1[24:] != 0).all()))
    for text, pattern in (
        (MODEL.replace('24, kernel=2, padding=0, bias=true, frozen_weight=true, weight_init="whiten"',
                       '20, kernel=2, padding=0, bias=true, weight_init="whiten"'),
         'weight_init="whiten" needs one group and channels = 12 or 24'),
        (MODEL.replace("logits = dense(global_avgpool(relu(h)), 10)",
                       'logits = dense(global_avgpool(relu(h)), 10, weight_init="dirac")'),
         "initializer 'dirac' is for conv2d weights only"),
    ):
        open(os.path.join(d, "bad.nn"), "w").write(text)
        r = subprocess.run([NNC, "compile", os.path.join(d, "bad.nn"), "-o", os.path.join(d, "bad.plan")],
                           capture_output=True, text=True)
        check("refused: " + pattern, r.returncode == 1 and pattern in r.stderr and "bad.nn:" in r.stderr, r.stderr.strip()[:300])
print("init_data: %d failed" % len(failures))
sys.exit(1 if failures else 0)
