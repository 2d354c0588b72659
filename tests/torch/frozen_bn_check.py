"""frozen_bn_check.py — a frozen batchnorm (trainable: false) against PyTorch's bn.eval() + requires_grad_(False).

Keras's semantics for a frozen BatchNormalization, which mlc follows: the layer
runs in inference mode inside training steps too (it normalizes with its
running mean and variance and never updates them), and its gamma and beta are
not trained. In PyTorch that is bn.eval() and bn.requires_grad_(False) while
the rest of the model trains.

The model: conv2d 4 (3x3, same) → batchnorm bn1 → relu → maxpool 2 → flatten →
dense 8 → batchnorm bn2 → tanh → dense 3, softmax cross-entropy, on 16 fixed
rows of generated data (values k/32, exact in float32). First
    mlc run base.yaml --save W0         (everything trained: running statistics
                                         move away from 0 and 1)
then for each case (which batchnorms are frozen, fused or not)
    mlc run CASE.yaml --weights W0 --epochs 5 --save W5 --log LOG
with one batch of all 16 rows per epoch (shuffle off), so each epoch is one
SGD step (lr 0.05, momentum 0.9), and the same 5 steps in PyTorch (float64,
nn.Conv2d/BatchNorm2d/Linear/BatchNorm1d loaded from W0 in NCHW/OIHW, frozen
batchnorms in eval mode without gradients, the others in train mode updating
their running statistics). Checked:
  - each epoch's loss in LOG against PyTorch's loss of that step, relative;
  - every tensor of W5 against PyTorch's: max |mlc − torch| / max |torch|
    (for a bias at least in units of its layer's weight: one right before a
    batchnorm in training mode has a zero gradient and only drifts by rounding);
  - a frozen batchnorm's weight, bias, running_mean and running_var are
    bit-identical to W0's (and a trained one's running statistics moved);
  - the test loss mlc reports after training (inference mode) against
    PyTorch's eval-mode loss with the final weights.
All must be within --tol (1e-5).

usage: frozen_bn_check.py --mlc BIN [--tol 1e-5] [--keep]
Exit status: 0 all passed, 1 some mismatch or failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

SPEC = """name: frozen_bn
inputs:
  x: {{shape: [6, 6, 2]}}
layers:
  - conv2d: 4
    name: conv
    kernel: 3
    padding: same
  - batchnorm:
    name: bn1{f1}
  - relu
  - maxpool: 2
  - flatten
  - dense: 8
    name: fc1
  - batchnorm:
    name: bn2{f2}
  - tanh
  - dense: 3
    name: fc2
loss: softmax_cross_entropy
optimizer: {{type: sgd, lr: 0.05, momentum: 0.9}}
data:
  format: csv
  train: train.csv
  test: train.csv
  batch_size: {batch}
  epochs: 3
  shuffle: false
"""

# (label, bn1 frozen, bn2 frozen, extra mlc flags)
CASES = [
    ("conv_bn_frozen", True, False, []),
    ("conv_bn_frozen_nofuse", True, False, ["--no-fuse"]),
    ("both_frozen", True, True, []),
    ("both_frozen_nofuse", True, True, ["--no-fuse"]),
    ("dense_bn_frozen_1thread", False, True, ["--threads", "1"]),
]

STEPS = 5


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}")
    return r.stdout


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
        self.fc1 = torch.nn.Linear(36, 8)
        self.bn2 = torch.nn.BatchNorm1d(8, eps=1e-5, momentum=0.1)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):  # x: [N, 72] in mlc's NHWC order
        h = x.view(-1, 6, 6, 2).permute(0, 3, 1, 2)
        h = F.max_pool2d(F.relu(self.bn1(self.conv(h))), 2)
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # flatten in NHWC order, as mlc
        return self.fc2(torch.tanh(self.bn2(self.fc1(h))))


# mlc name -> (module attribute path, to torch layout, back to mlc layout)
def hwio_to_oihw(a):
    return a.permute(3, 2, 0, 1)


def oihw_to_hwio(a):
    return a.permute(2, 3, 1, 0)


def same(a):
    return a


LAYOUT = {"conv.weight": (hwio_to_oihw, oihw_to_hwio)}


def load(model, w):
    sd = model.state_dict()
    for k, v in w.items():
        to, _ = LAYOUT.get(k, (same, same))
        sd[k].copy_(to(torch.tensor(v, dtype=torch.float64)))


def dump(model):
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        _, back = LAYOUT.get(k, (same, same))
        out[k] = back(v.detach()).contiguous().numpy().astype(np.float64)
    return out


def torch_steps(w0, x, y, frozen):
    m = Model().double()
    load(m, w0)
    m.train()
    for name in frozen:  # Keras's trainable=False on a BatchNormalization
        bn = getattr(m, name)
        bn.eval()
        bn.requires_grad_(False)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    m.eval()
    with torch.no_grad():
        test = F.cross_entropy(m(x), y).item()
    return losses, dump(m), test


def rel(got, ref, k):
    """max |mlc − torch| / max |torch|; for a bias, at least in units of its layer's
    weight: a bias right before a batchnorm in training mode has a zero gradient
    (the batch mean removes it), so it only drifts by rounding near its start."""
    scale = np.max(np.abs(ref[k]))
    if k.endswith(".bias") and k[:-5] + ".weight" in ref:
        scale = max(scale, np.max(np.abs(ref[k[:-5] + ".weight"])))
    return float(np.max(np.abs(got[k] - ref[k])) / max(scale, 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlc", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--keep", action="store_true")
    opt = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mlc_frozen_bn.")
    rng = np.random.RandomState(7)
    x = rng.randint(-64, 64, size=(16, 72)) / 32.0
    y = rng.randint(0, 3, size=16)
    with open(os.path.join(work, "train.csv"), "w") as f:
        for a, b in zip(x, y):
            f.write(",".join(repr(float(v)) for v in a) + f",{b}\n")
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.int64)
    passed = failed = 0
    w0_path = os.path.join(work, "w0.safetensors")
    try:
        with open(os.path.join(work, "base.yaml"), "w") as f:
            f.write(SPEC.format(f1="", f2="", batch=8))
        run([opt.mlc, "run", os.path.join(work, "base.yaml"), "--quiet", "--save", w0_path])
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"FAIL base: {e}")
        print("0 passed, 1 failed")
        return 1
    w0 = {k: v.astype(np.float64) for k, v in st.read(w0_path)[0].items()}
    raw0 = st.read(w0_path)[0]
    for label, f1, f2, flags in CASES:
        frozen = [n for n, f in (("bn1", f1), ("bn2", f2)) if f]
        spec = os.path.join(work, f"{label}.yaml")
        with open(spec, "w") as f:
            f.write(SPEC.format(f1="\n    trainable: false" if f1 else "",
                                f2="\n    trainable: false" if f2 else "", batch=16))
        w5_path = os.path.join(work, f"{label}.w5.safetensors")
        log = os.path.join(work, f"{label}.jsonl")
        try:
            run([opt.mlc, "run", spec, "--quiet", "--epochs", str(STEPS), "--weights", w0_path,
                 "--save", w5_path, "--log", log] + flags)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {label}: {e}")
            failed += 1
            continue
        lines = [json.loads(s) for s in open(log)]
        got_losses = [d["loss"] for d in lines if "epoch" in d]
        got_test = [d["test"]["loss"] for d in lines if "test" in d][0]
        raw5 = st.read(w5_path)[0]
        got = {k: v.astype(np.float64) for k, v in raw5.items()}
        ref_losses, ref, ref_test = torch_steps(w0, xt, yt, frozen)
        problems = []
        if sorted(got) != sorted(ref):
            problems.append(f"tensors {sorted(got)} vs torch's {sorted(ref)}")
        loss_err = max(abs(a - b) / abs(b) for a, b in zip(got_losses, ref_losses))
        if len(got_losses) != STEPS or loss_err > opt.tol:
            problems.append(f"losses {got_losses} vs torch {ref_losses}")
        test_err = abs(got_test - ref_test) / abs(ref_test)
        if test_err > opt.tol:
            problems.append(f"test loss {got_test} vs torch eval {ref_test}")
        worst = 0.0
        for k in sorted(set(got) & set(ref)):
            e = rel(got, ref, k)
            worst = max(worst, e)
            if e > opt.tol:
                problems.append(f"{k}: max rel err {e:.2e}")
        for name in ("bn1", "bn2"):
            for s in ("weight", "bias", "running_mean", "running_var"):
                k = f"{name}.{s}"
                unchanged = raw5[k].tobytes() == raw0[k].tobytes()
                if name in frozen and not unchanged:
                    problems.append(f"{k} of the frozen {name} changed")
                if name not in frozen and unchanged:
                    problems.append(f"{k} of the trained {name} did not move")
        ok = not problems
        print(f"{'ok  ' if ok else 'FAIL'} {label:24s} frozen {','.join(frozen):8s} loss rel err {loss_err:.2e}, "
              f"test {test_err:.2e}, weights max rel err {worst:.2e}")
        for p in problems:
            print(f"     {p}")
        passed += ok
        failed += not ok
    if not opt.keep:
        shutil.rmtree(work)
    else:
        print(f"kept {work}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
