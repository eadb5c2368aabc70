#!/usr/bin/python3
"""PyTorch's side of bench/cpu_step.sh: times SGD training steps of the CIFAR ResNet (the same
network as models/resnetN.nn, from tests/torch/equiv.py) on synthetic data, fp32, on the CPU,
with a given number of threads. Prints one line: ms/step and images/s."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from equiv import ResNet  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--depth", type=int, default=20)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
model = ResNet(a.depth)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, 3, 32, 32)
y = torch.arange(a.batch) % 10
for s in range(-2, a.steps):
    if s == 0:
        t0 = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
dt = (time.perf_counter() - t0) / a.steps
print("pytorch %s resnet%d training step: batch %d, %d threads, %d steps: %.2f ms/step, %.1f images/s" % (
    torch.__version__, a.depth, a.batch, a.threads, a.steps, dt * 1e3, a.batch / dt))
