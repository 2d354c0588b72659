"""opt_check.py — mlc's optimizers, gradient clipping and lr_mult against torch.optim on the same weights and batch.

A small MLP (4 → dense 3 tanh → dense 2, mse) on one fixed batch of 8 rows
(shuffle off, so every epoch is the same single step). For each optimizer case:
    mlc run SPEC --quiet --epochs 5 --weights W0 --save W5
and the same 5 steps in PyTorch (float32, torch.optim with the same
hyperparameters, torch.nn.utils.clip_grad_norm_/clip_grad_value_ before each
step for the clipping cases, param groups with lr·lr_mult for the lr_mult
cases, where a layer with lr_mult 0 must keep its weights bit for bit) from W0. Error per tensor: max |mlc - torch| / max |torch|,
must be <= --tol (1e-5). Also printed: the same against the total change
W5 - W0, to show the updates themselves agree, not only the weights.

usage: opt_check.py --mlc BIN [--tol 1e-5] [--keep]
Exit status: 0 all passed, 1 some mismatch or failure.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def clip_norm(c):
    return lambda ps: torch.nn.utils.clip_grad_norm_(ps, c)


def clip_value(v):
    return lambda ps: torch.nn.utils.clip_grad_value_(ps, v)


def clip_both(c, v):  # mlc's order: the norm first, then the value (as Keras)
    def f(ps):
        torch.nn.utils.clip_grad_norm_(ps, c)
        torch.nn.utils.clip_grad_value_(ps, v)
    return f


def shrink(f):  # decoupled weight decay before a torch step without it: p ← p·f
    def run(ps):
        with torch.no_grad():
            for p in ps:
                p.mul_(f)
    return run


# (label, mlc optimizer mapping, torch constructor[, gradient clipping before
# each step[, (lr, lr_mult of dense1, of dense2): torch param groups of lr·lr_mult
# [, (YAML lines for dense1, for dense2, penalty(p) added to the torch loss)
# [, a loss list in YAML: then the third item is the torch loss(p, pred, y)]]]])
CASES = [
    ("adam", "{type: adam, lr: 0.05}",
     lambda p: torch.optim.Adam(p, lr=0.05)),
    ("adam_wd", "{type: adam, lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.1}",
     lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", "{type: adamw, lr: 0.05}",
     lambda p: torch.optim.AdamW(p, lr=0.05)),
    ("adamw_wd", "{type: adamw, lr: 0.05, beta1: 0.5, weight_decay: 0.3}",
     lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.5, 0.999), weight_decay=0.3)),
    ("rmsprop", "{type: rmsprop, lr: 0.01}",
     lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ("rmsprop_momentum", "{type: rmsprop, lr: 0.01, alpha: 0.9, eps: 1e-6, momentum: 0.9, weight_decay: 0.05}",
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6, momentum=0.9, weight_decay=0.05)),
    ("adagrad", "{type: adagrad, lr: 0.1}",
     lambda p: torch.optim.Adagrad(p, lr=0.1)),
    ("adagrad_init", "{type: adagrad, lr: 0.1, initial_accumulator: 0.5, eps: 1e-8, weight_decay: 0.1}",
     lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.5, eps=1e-8, weight_decay=0.1)),
    ("adadelta", "{type: adadelta}",
     lambda p: torch.optim.Adadelta(p)),
    ("adadelta_wd", "{type: adadelta, lr: 2, rho: 0.5, eps: 1e-4, weight_decay: 0.1}",
     lambda p: torch.optim.Adadelta(p, lr=2, rho=0.5, eps=1e-4, weight_decay=0.1)),
    # clipping (the gradient norm here starts near 1.3, its largest element near 0.54)
    ("sgd_clip_norm", "{type: sgd, lr: 0.1, momentum: 0.9, clip_norm: 0.2}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), clip_norm(0.2)),
    ("sgd_clip_value", "{type: sgd, lr: 0.1, clip_value: 0.05}",
     lambda p: torch.optim.SGD(p, lr=0.1), clip_value(0.05)),
    ("adam_clip_norm", "{type: adam, lr: 0.05, clip_norm: 0.3}",
     lambda p: torch.optim.Adam(p, lr=0.05), clip_norm(0.3)),
    ("adamw_clip_value", "{type: adamw, lr: 0.05, clip_value: 0.02}",
     lambda p: torch.optim.AdamW(p, lr=0.05), clip_value(0.02)),
    ("rmsprop_clip_both", "{type: rmsprop, lr: 0.01, momentum: 0.5, clip_norm: 0.5, clip_value: 0.1}",
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5), clip_both(0.5, 0.1)),
    ("adagrad_clip_norm", "{type: adagrad, lr: 0.1, clip_norm: 0.1}",
     lambda p: torch.optim.Adagrad(p, lr=0.1), clip_norm(0.1)),
    ("adadelta_clip_both", "{type: adadelta, lr: 1, clip_norm: 0.4, clip_value: 0.05}",
     lambda p: torch.optim.Adadelta(p, lr=1), clip_both(0.4, 0.05)),
    ("sgd_clip_loose", "{type: sgd, lr: 0.1, clip_norm: 100}",  # above the norm: no change
     lambda p: torch.optim.SGD(p, lr=0.1), clip_norm(100)),
    # weight decay: sgd's coupled one is torch's; decoupled adam is AdamW;
    # decoupled sgd (no torch.optim class) is p·(1 − lr·wd) before a plain SGD step
    ("sgd_wd", "{type: sgd, lr: 0.1, weight_decay: 0.05}",
     lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
    ("sgd_wd_nesterov", "{type: sgd, lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.2}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.2)),
    ("sgd_decoupled", "{type: sgd, lr: 0.1, momentum: 0.5, weight_decay: 0.3, decoupled_weight_decay: true}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5), shrink(1 - 0.1 * 0.3)),
    ("adam_decoupled", "{type: adam, lr: 0.05, weight_decay: 0.3, decoupled_weight_decay: true}",
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.3)),
    # per-layer lr_mult: PyTorch param groups with lr·lr_mult (0 freezes a layer)
    ("sgd_lr_mult", "{type: sgd, lr: 0.1, momentum: 0.9}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None, (0.1, 0, 2)),
    ("adam_lr_mult", "{type: adam, lr: 0.02}",
     lambda p: torch.optim.Adam(p, lr=0.02), None, (0.02, 2, 0.5)),
    ("adamw_lr_mult", "{type: adamw, lr: 0.05, weight_decay: 0.3}",
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.3), None, (0.05, 0, 2)),
    ("rmsprop_lr_mult", "{type: rmsprop, lr: 0.01, momentum: 0.5}",
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5), None, (0.01, 3, 0)),
    ("adagrad_lr_mult", "{type: adagrad, lr: 0.1, clip_norm: 0.2}",
     lambda p: torch.optim.Adagrad(p, lr=0.1), clip_norm(0.2), (0.1, 2, 0.25)),
    ("adadelta_lr_mult", "{type: adadelta, lr: 1}",
     lambda p: torch.optim.Adadelta(p, lr=1), None, (1.0, 0.5, 2)),
    # L1/L2 penalties in the loss: layer keys and `regularization:`
    ("sgd_l1_l2", "{type: sgd, lr: 0.1, momentum: 0.9}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None, None,
     ("\n    l1: 0.02", "\n    l2: 0.05",
      lambda p: 0.02 * p["dense1.weight"].abs().sum() + 0.05 * (p["dense2.weight"] ** 2).sum())),
    ("adam_regularization", "{type: adam, lr: 0.05}\nregularization: {l2: 0.1, l1: 0.01}",
     lambda p: torch.optim.Adam(p, lr=0.05), None, None,
     ("", "\n    l2: 0.05",
      lambda p: sum(0.1 * (p[k] ** 2).sum() + 0.01 * p[k].abs().sum() for k in ("dense1.weight", "dense2.weight"))
      + 0.05 * (p["dense2.weight"] ** 2).sum())),
    # a weighted sum of losses (loss: a list) against the same sum in torch
    ("sgd_loss_sum", "{type: sgd, lr: 0.1, momentum: 0.5}",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5), None, None,
     ("", "", lambda p, pred, y: 1.5 * torch.nn.functional.mse_loss(pred, y)
      + 2 * torch.nn.functional.l1_loss(pred, y)),
     "[{type: mse, weight: 0.5}, {type: mae, weight: 2}, mse]"),
    ("sgd_l2_is_wd", "{type: sgd, lr: 0.1}\nregularization: {l2: 0.05, params: ['dense*']}",
     lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1), None, None,  # wd = 2λ, on every param
     ("", "", lambda p: 0)),
]

SPEC = """name: optcheck
inputs:
  x: {{shape: [4]}}
layers:
  - dense: 3
    activation: tanh{m1}
  - dense: 2{m2}
loss: {loss}
optimizer: {opt}
data:
  format: csv
  train: train.csv
  label_columns: 2
  batch_size: 8
  epochs: 1
  shuffle: false
"""


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}")


def torch_steps(w0, x, y, make, steps, clip=None, mult=None, penalty=None, loss_fn=None):
    p = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True) for k, v in w0.items()}
    if mult:
        lr, m1, m2 = mult
        opt = make([{"params": [p["dense1.weight"], p["dense1.bias"]], "lr": lr * m1},
                    {"params": [p["dense2.weight"], p["dense2.bias"]], "lr": lr * m2}])
    else:
        opt = make(list(p.values()))
    for _ in range(steps):
        opt.zero_grad()
        h = torch.tanh(x @ p["dense1.weight"].T + p["dense1.bias"])
        pred = h @ p["dense2.weight"].T + p["dense2.bias"]
        loss = loss_fn(p, pred, y) if loss_fn else torch.nn.functional.mse_loss(pred, y)
        if penalty:
            loss = loss + penalty(p)
        loss.backward()
        if clip:
            clip(list(p.values()))
        opt.step()
    return {k: v.detach().numpy().astype(np.float64) for k, v in p.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlc", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--keep", action="store_true")
    opt = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mlc_opt_check.")
    rng = np.random.RandomState(5)
    x = rng.randn(8, 4).astype(np.float32)
    y = rng.randn(8, 2).astype(np.float32)
    with open(os.path.join(work, "train.csv"), "w") as f:
        for a, b in zip(x, y):
            f.write(",".join(f"{v:.9g}" for v in list(a) + list(b)) + "\n")
    xt, yt = torch.tensor(x), torch.tensor(y)
    passed = failed = 0
    w0_path = os.path.join(work, "w0.safetensors")
    for label, mopt, make, *extra in CASES:
        clip = extra[0] if extra else None
        mult = extra[1] if len(extra) > 1 else None
        reg = extra[2] if len(extra) > 2 else None
        loss = extra[3] if len(extra) > 3 else None  # YAML of a loss list; reg[2] is then the torch loss
        spec = os.path.join(work, f"{label}.yaml")
        lines = [f"\n    lr_mult: {m}" if mult else "" for m in (mult or (0, 0, 0))[1:]]
        if reg:
            lines = [a + b for a, b in zip(lines, reg[:2])]
        with open(spec, "w") as f:
            f.write(SPEC.format(opt=mopt, m1=lines[0], m2=lines[1], loss=loss or "mse"))
        try:
            if not os.path.exists(w0_path):  # realistic initial weights from mlc's initializers
                run([opt.mlc, "run", spec, "--quiet", "--epochs", "1", "--seed", "3", "--save", w0_path])
            w5_path = os.path.join(work, f"{label}.w5.safetensors")
            run([opt.mlc, "run", spec, "--quiet", "--epochs", "5", "--weights", w0_path, "--save", w5_path])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {label}: {e}")
            failed += 1
            continue
        w0 = {k: v.astype(np.float64) for k, v in st.read(w0_path)[0].items()}
        got = {k: v.astype(np.float64) for k, v in st.read(w5_path)[0].items()}
        ref = torch_steps(w0, xt, yt, make, 5, clip, mult, reg[2] if reg and not loss else None,
                          reg[2] if loss else None)
        worst = worst_d = 0.0
        for k, r in ref.items():
            diff = np.max(np.abs(got[k] - r))
            worst = max(worst, diff / np.max(np.abs(r)))
            worst_d = max(worst_d, diff / max(np.max(np.abs(r - w0[k])), 1e-30))
        ok = worst <= opt.tol
        for layer, m in zip(("dense1", "dense2"), (mult or (1, 1, 1))[1:]):
            moved = any(np.any(got[k] != w0[k]) for k in got if k.startswith(layer + "."))
            if moved != (m != 0):  # lr_mult 0: bit for bit the starting weights
                print(f"FAIL {label}: {layer} (lr_mult {m}) {'moved' if moved else 'did not move'}")
                ok = False
        print(f"{'ok  ' if ok else 'FAIL'} {label:18s} max rel err {worst:.2e} (vs the change: {worst_d:.2e})")
        passed += ok
        failed += not ok
    if not opt.keep:
        shutil.rmtree(work)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
