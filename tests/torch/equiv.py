#!/usr/bin/python3
"""nnc against PyTorch on the same network, weights and batch (the CPU backend, fp32).

Builds the common PyTorch CIFAR ResNet (He et al. 2016 section 4.2, option B shortcuts, the
parameter names nnc's models/lib/resnet.nn produces) and trains it for STEPS SGD steps
(momentum, weight decay) on one random batch. For every step k, nnc (`nnrun step` on the plan
compiled from models/resnetN.nn) starts from PyTorch's exact state before step k -- weights,
batch-norm statistics, momentum buffers, step count -- and must reproduce the loss, the logits,
every parameter gradient, and the whole state after the step: weights, running statistics and
momentum buffers. Starting each step from the same state keeps the comparison tight: rounding
differences cannot compound across steps.

usage: equiv.py NNC NNRUN [--depth 20] [--batch 16] [--steps 3]
Exit 0 when everything matches within the tolerances below, 1 otherwise, 77 without torch.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("skipped: PyTorch is not importable by /usr/bin/python3 (Debian: python3-torch)")
    sys.exit(77)
from crosscheck import read, serialize  # noqa: E402  (the project's own safetensors helpers)

# fp32 tolerances (rtol, atol). Forward values match to float rounding; gradients go through
# ~60 layers of different summation orders (BLAS blocking, batch-norm reductions), so they get
# a little more room; an update adds one rounding of lr * (momentum buffer) to each weight.
TOL = {"loss": (1e-5, 1e-6), "logits": (1e-4, 1e-5), "grad": (2e-3, 2e-5), "weights": (1e-5, 1e-7)}


# The smallest |input| any ReLU saw. A pre-activation within float rounding of zero can take the
# other side of the kink in either implementation and legitimately change a gradient (one
# element's mask flips; seen in practice), so the test draws batches, deterministically, until
# every pre-activation of every step keeps a margin (KINK_MARGIN) about 10x the fp32 error of
# values near zero.
KINK_MARGIN = 1e-6
_kink = [float("inf")]


def relu(t):
    _kink[0] = min(_kink[0], float(t.detach().abs().min()))
    return F.relu(t)


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        h = relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return relu(h + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        inp = 16
        for s, planes in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(Block(inp, planes, 2 if s > 0 and i == 0 else 1))
                inp = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        h = relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.linear(F.adaptive_avg_pool2d(h, 1).flatten(1))


def f32(t):
    return ("F32", list(t.shape), t.detach().contiguous().numpy().astype("<f4").tobytes())


def tensor(entry):
    dtype, shape, data, _ = entry
    assert dtype == "F32", dtype
    return torch.tensor(struct.unpack("<%df" % (len(data) // 4), data), dtype=torch.float32).reshape(shape)


def close(what, kind, ours, ref, worst):
    rtol, atol = TOL[kind]
    err = (ours - ref).abs()
    bound = atol + rtol * ref.abs()
    ratio = float((err / bound).max()) if err.numel() else 0.0
    worst.append((ratio, what, float(err.max()) if err.numel() else 0.0))
    return ratio <= 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nnc")
    ap.add_argument("nnrun")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    lr, momentum, wd = 0.05, 0.9, 5e-4
    model = ResNet(args.depth)
    # Non-trivial batch-norm parameters and statistics, so their gradients and updates are tested.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}

    def reference(x, y):
        """PyTorch's run, recording each step's state before, outputs, gradients and state after."""
        m = ResNet(args.depth)
        m.load_state_dict(state, strict=False)
        opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
        names = {id(p): n for n, p in m.named_parameters()}
        m.train()
        _kink[0] = float("inf")

        def snapshot():
            snap = {k: v.clone() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
            for p, st in opt.state.items():
                snap["optim.%s.momentum_buffer" % names[id(p)]] = st["momentum_buffer"].clone()
            return snap

        steps = []
        for step in range(args.steps):
            before = snapshot()
            opt.zero_grad()
            logits = m(x)
            loss = F.cross_entropy(logits, y.long())
            loss.backward()
            grads = {n: p.grad.clone() for n, p in m.named_parameters()}
            opt.step()
            steps.append((before, loss.detach(), logits.detach(), grads, snapshot()))
        return steps, _kink[0]

    for attempt in range(200):
        torch.manual_seed(1000 + attempt)
        x = torch.randn(args.batch, 3, 32, 32)
        y = torch.randint(0, 10, (args.batch,), dtype=torch.int32)
        steps, margin = reference(x, y)
        if margin > KINK_MARGIN:
            break
    else:
        print("could not draw a batch whose ReLU inputs all stay %g away from zero" % KINK_MARGIN)
        return 1

    worst, bad = [], []
    with tempfile.TemporaryDirectory() as d:
        plan, w, b, out = (os.path.join(d, n) for n in ("m.plan", "w.safetensors", "b.safetensors", "o.safetensors"))
        subprocess.run([args.nnc, "compile", "--batch", str(args.batch), "--set", "schedule=constant",
                        "--set", "lr=%g" % lr, "--set", "momentum=%g" % momentum, "--set", "weight_decay=%g" % wd,
                        "models/resnet%d.nn" % args.depth, "-o", plan], check=True, capture_output=True)
        open(b, "wb").write(serialize({"image": f32(x), "label": ("I32", [args.batch], y.numpy().astype("<i4").tobytes())}, {}))
        for k, (before, loss, logits, grads, after) in enumerate(steps):
            open(w, "wb").write(serialize({n: f32(v) for n, v in before.items()}, {}))
            r = subprocess.run([args.nnrun, "step", plan, "--weights", w, "--input", b, "-o", out,
                                "--optimizer-step", str(k), "--threads", "2"], capture_output=True, text=True)
            if r.returncode != 0:
                print("nnrun step failed:\n" + r.stderr)
                return 1
            ours = {n: tensor(v) for n, v in read(out)[3].items()}
            tag = "step %d: " % (k + 1)
            if not close(tag + "loss", "loss", ours["loss"], loss, worst):
                bad.append(tag + "loss %.7f vs PyTorch %.7f" % (float(ours["loss"]), float(loss)))
            if not close(tag + "logits", "logits", ours["logits"], logits, worst):
                bad.append(tag + "logits")
            for n, g in grads.items():
                if not close(tag + "grad." + n, "grad", ours["grad." + n], g, worst):
                    bad.append(tag + "gradient of " + n)
            for n, v in after.items():
                # a momentum buffer carries this step's gradient, and so its tolerance
                if not close(tag + n, "grad" if n.startswith("optim.") else "weights", ours[n], v, worst):
                    bad.append(tag + n + " after the update")
    worst.sort(reverse=True)
    print("ResNet-%d, batch %d (draw %d, ReLU margin %.2g), %d SGD steps: %d tensors compared; "
          "worst error/tolerance ratios:" % (args.depth, args.batch, attempt + 1, margin, len(steps), len(worst)))
    for ratio, what, err in worst[:5]:
        print("  %-40s %6.3f  (max abs error %.3g)" % (what, ratio, err))
    if bad:
        print("MISMATCH: " + ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""))
        return 1
    print("ok: nnc matches PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
