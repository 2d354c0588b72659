"""torch_whole.py — the PyTorch side of bench/whole.sh: a whole training run
on Fashion-MNIST (the IDX files the mlc specs read), then the test accuracy,
printed as one key=value line:
    torch model=lenet epochs=10 wall_s=... test_acc=... peak_rss_mb=...
Same architecture, initialization (Glorot-uniform weights, zero biases, as
mlc's defaults), optimizer, learning-rate schedule, batch size, shuffling
every epoch and validation hold-out (the last fraction of the training set)
as the mlc spec whole.sh names. Wall time covers loading the data, training,
validation and the test evaluation, as mlc's does. Run with /usr/bin/python3.
"""
import argparse
import gzip
import math
import resource
import sys
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist/"


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


MODELS = {"lenet": lenet, "mlp": mlp}


def main():
    ap = argparse.ArgumentParser(description="a whole PyTorch training run on Fashion-MNIST")
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--cosine", action="store_true", help="cosine decay per step over the run")
    ap.add_argument("--val", type=float, default=0.0, help="hold out this fraction (the last rows)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    x = torch.from_numpy(idx(DATA + "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(idx(DATA + "train-labels-idx1-ubyte.gz").astype(np.int64))
    tx = torch.from_numpy(idx(DATA + "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    ty = torch.from_numpy(idx(DATA + "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    nval = int(math.floor(len(x) * a.val))
    ntrain = len(x) - nval
    model = MODELS[a.model]()
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    loss_fn = nn.CrossEntropyLoss()
    steps = (ntrain + a.batch - 1) // a.batch
    total = steps * a.epochs

    def evaluate(ex, ey):
        model.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(ex), 1000):
                correct += (model(ex[b:b + 1000]).argmax(1) == ey[b:b + 1000]).sum().item()
        model.train()
        return correct / max(len(ex), 1)

    step = 0
    for e in range(a.epochs):
        perm = torch.randperm(ntrain)
        for b in range(0, ntrain, a.batch):
            if a.cosine:
                for g in opt.param_groups:
                    g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            i = perm[b:b + a.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[i]), y[i]).backward()
            opt.step()
            step += 1
        if nval:
            evaluate(x[ntrain:], y[ntrain:])
    acc = evaluate(tx, ty)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch model={a.model} epochs={a.epochs} threads={a.threads} wall_s={wall:.2f} test_acc={acc:.4f} "
          f"peak_rss_mb={rss:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
