#!/usr/bin/python3
"""PyTorch's side of bench/gpu/run.sh: training steps of the networks nnrun benchmarks, on the
same GPU, in one mode per call, timed with CUDA events after warm-up steps. Data is synthetic
and already on the GPU (nnrun's bench renders and augments its batches on the device, a small
extra cost on its side).

Networks: resnet20, resnet56 (the CIFAR ResNet of tests/torch/equiv.py, as models/resnetN.nn),
airbench94 (as models/airbench94.nn: its frozen parts frozen, label smoothing 0.2),
mobilenet_v2 (as models/mobilenet_v2.nn: the CIFAR settings, stride-1 stem, dropout 0.2).
Modes:
  fp32     IEEE fp32: TF32 off for cuDNN and matmuls (as nnrun's fp32), NCHW
  amp      autocast to fp16 with a GradScaler, channels_last (PyTorch's usual mixed precision)
  half     the whole model and its data in fp16 (.half()), channels_last, no loss scaling
  compile  amp with the model through torch.compile in its fastest mode, "max-autotune"
           (autotuned kernels and CUDA graphs, as nnrun replays one), after --compile-warmup steps
           (default 50) so that compilation, autotuning and recompiles stay out of the timing
Optimizer: SGD, momentum 0.9, Nesterov, weight decay 5e-4 (PyTorch's default foreach path).

Prints one line: `torch NET MODE: batch B, S steps: X ms/step, Y images/s, K kernels/step`
(K from the profiler over one step; '?' if it cannot count). Exit 0, or 1 with a message."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "torch"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from equiv import ResNet  # noqa: E402


class ConvGroup(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(cout, momentum=0.4, eps=1e-12)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout, momentum=0.4, eps=1e-12)
        self.norm1.weight.requires_grad = False
        self.norm2.weight.requires_grad = False

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class Airbench94(nn.Module):
    def __init__(self):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        self.groups = nn.Sequential(ConvGroup(24, 64), ConvGroup(64, 256), ConvGroup(256, 256))
        self.head = nn.Linear(256, 10, bias=False)

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        return self.head(F.max_pool2d(x, 3).flatten(1)) / 9


def conv_bn_relu6(cin, cout, kernel=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn_relu6(cin, hidden, 1)] if t != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                [6, 320, 1, 1]]

    def __init__(self):
        super().__init__()
        layers, c = [conv_bn_relu6(3, 32, 3, 1)], 32
        for t, out, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        layers.append(conv_bn_relu6(c, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 10))

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="resnet20", choices=["resnet20", "resnet56", "airbench94", "mobilenet_v2"])
    ap.add_argument("--mode", default="amp", choices=["fp32", "amp", "half", "compile"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--compile-warmup", type=int, default=50)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_gpu: no CUDA device visible to PyTorch", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    fp32 = a.mode == "fp32"
    torch.backends.cudnn.allow_tf32 = not fp32
    torch.backends.cuda.matmul.allow_tf32 = not fp32
    torch.manual_seed(0)
    model = (Airbench94() if a.net == "airbench94" else MobileNetV2() if a.net == "mobilenet_v2"
             else ResNet(int(a.net[6:])))
    smoothing = 0.2 if a.net == "airbench94" else 0.0
    model = model.to(dev)
    layout = torch.contiguous_format if fp32 else torch.channels_last
    model = model.to(memory_format=layout)
    dtype = torch.float16 if a.mode == "half" else torch.float32
    if a.mode == "half":
        model = model.half()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32, device=dev, dtype=dtype).to(memory_format=layout)
    y = torch.arange(a.batch, device=dev) % 10
    amp = a.mode in ("amp", "compile")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    fwd = torch.compile(model, mode="max-autotune") if a.mode == "compile" else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(fwd(x), y, label_smoothing=smoothing)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(a.compile_warmup if a.mode == "compile" else a.warmup):
        step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(a.steps):
        loss = step()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / a.steps
    kernels = "?"
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        kernels = str(sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA))
    except Exception as e:  # the profiler is a nicety; the timing stands without it
        print("torch_gpu: could not count kernels: %s" % e, file=sys.stderr)
    print("torch %s %s %s: batch %d, %d steps: %.3f ms/step, %.1f images/s, %s kernels/step, loss %.4g" % (
        torch.__version__, a.net, a.mode, a.batch, a.steps, ms, a.batch * 1e3 / ms, kernels, float(loss)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
