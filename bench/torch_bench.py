"""torch_bench.py — the PyTorch side of bench/run.sh: one train step (forward,
CrossEntropyLoss, backward, SGD with momentum 0.9) on random data, timed K
times after a warm-up, printed in mlc_bench's key=value format:
    torch model=mlp batch=64 threads=1 steps=200 median_ms=... min_ms=...
        mean_ms=... peak_rss_mb=... loss=...
Models are functions returning (module, input shape of one sample, classes);
add one to MODELS to benchmark it. Run with /usr/bin/python3 (Debian's
python3-torch).
"""
import argparse
import resource
import statistics
import sys
import time

import torch
from torch import nn


def mlp():
    """784-256-128-10 ReLU MLP (bench/mlp.yaml, examples/fashion_mlp.yaml)."""
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10)), (784,), 10


def cnn():
    """The small CNN of the guide's PERF.md: 32x32x3, valid padding, 122,570 params."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)), (3, 32, 32), 10


class _Bottleneck(nn.Module):
    def __init__(self, c, mid):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, mid, 1), nn.ReLU(), nn.Conv2d(mid, mid, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(mid, c, 1))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def resnet():
    """PERF.md's bottleneck net: conv3x3/64 pad 1, 4 bottlenecks, global average pool, dense10; 16x16x3."""
    return nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
                         *[_Bottleneck(64, 16) for _ in range(4)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)), (3, 16, 16), 10


def lenet():
    """LeNet-5 as PyTorch users write it (bench/lenet.yaml): 28x28x1, 61,706 params."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10)), (1, 28, 28), 10


def dwconv():
    """A MobileNet-style small-channel CNN (bench/dwconv.yaml): depthwise 3x3 + pointwise 1x1, 32x32x3."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
        nn.Conv2d(16, 32, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU(),
        nn.Conv2d(32, 32, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (3, 32, 32), 10


MODELS = {"mlp": mlp, "cnn": cnn, "resnet": resnet, "lenet": lenet, "dwconv": dwconv}


def main():
    ap = argparse.ArgumentParser(description="time one PyTorch train step")
    ap.add_argument("--model", default="mlp", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.05)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model, shape, classes = MODELS[a.model]()
    x = torch.rand(a.batch, *shape)  # like pixels scaled to [0, 1)
    y = torch.randint(0, classes, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        ms.append(1e3 * (time.perf_counter() - t))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(f"torch model={a.model} batch={a.batch} threads={torch.get_num_threads()} steps={a.steps} "
          f"median_ms={statistics.median(ms):.4f} min_ms={min(ms):.4f} mean_ms={statistics.fmean(ms):.4f} "
          f"peak_rss_mb={rss:.1f} loss={loss.item():.5g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
