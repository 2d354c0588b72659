"""distill_check.py — mlc's distillation loss and its gradients against PyTorch.

A teacher MLP (4 → 6 relu → 3, softmax_cross_entropy), and one with a
batchnorm (4 → 6 → batchnorm → relu → 3: the teacher runs it in inference
mode, on the running statistics of its weights file, as PyTorch's
bn.eval()), and a student (4 → 3) trained by distillation from each, on a
generated CSV set; for several (temperature, alpha):
    mlc run teacher.yaml --save teacher.safetensors      (its weights)
    mlc run student.yaml --save student.safetensors      (realistic weights)
    mlc grad student.yaml --weights student.safetensors  (loss + gradients)
and in float64 PyTorch, on the same first batch:
    L = (1 - alpha) * F.cross_entropy(zs, y)
        + alpha * T**2 * F.kl_div(F.log_softmax(zs / T), F.softmax(zt / T), reduction="batchmean")
with the teacher's weights from teacher.safetensors (the student's saved file
must not hold them: --save writes the student's only). Error per tensor:
max |mlc - ref| / max(|ref|, 0.1 * max|ref|) <= 1e-4. The gradient file must
hold no gradient for the teacher's (frozen) parameters.
usage: distill_check.py --mlc BIN
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

BATCH = 16
DATA = """data:
  format: csv
  train: train.csv
  batch_size: 16
  epochs: 1
  seed: 3
"""
TEACHER = """name: teacher
inputs:
  x: {shape: [4]}
layers:
  - {dense: 6, activation: relu, name: h}
  - {dense: 3, name: out}
loss: softmax_cross_entropy
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
""" + DATA
TEACHER_BN = TEACHER.replace("  - {dense: 6, activation: relu, name: h}\n",
                             "  - {dense: 6, name: h}\n  - {batchnorm: null, name: bn}\n  - relu\n")
assert TEACHER_BN != TEACHER


def teacher_logits(tw, xb, bn):
    """The teacher's forward in inference mode (batchnorm on its running statistics)."""
    h = xb @ tw["h.weight"].T + tw["h.bias"]
    if bn:
        h = F.batch_norm(h, tw["bn.running_mean"], tw["bn.running_var"], tw["bn.weight"], tw["bn.bias"],
                         training=False, eps=1e-5)
    return torch.relu(h) @ tw["out.weight"].T + tw["out.bias"]


def student(t, a):
    return f"""name: student
inputs:
  x: {{shape: [4]}}
layers:
  - {{dense: 3, name: s}}
loss: {{type: distillation, teacher: {{spec: teacher.yaml, weights: teacher.safetensors}}, temperature: {t}, alpha: {a}}}
optimizer: {{type: sgd, lr: 0.1}}
""" + DATA


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")


def rel_err(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    m = np.abs(ref).max() if ref.size else 0.0
    den = np.maximum(np.abs(ref), 0.1 * m) if m > 0 else np.ones_like(ref)
    return float((np.abs(a - ref) / den).max()) if ref.size else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlc", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(5)
    n = 96
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (np.argmax(x[:, :3] + 0.5 * x[:, 3:], axis=1)).astype(np.int64)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "train.csv"), "w") as f:
            for xi, yi in zip(x, y):
                f.write(",".join(f"{v:.6g}" for v in xi) + f",{yi}\n")
        xs = np.array([[float(f"{v:.6g}") for v in xi] for xi in x], dtype=np.float32)
        cases = [(False, 4.0, 0.5), (False, 1.0, 0.0), (False, 2.0, 1.0), (False, 0.5, 0.3),
                 (True, 4.0, 0.5), (True, 2.0, 1.0)]
        for bn, t, a in cases:
            if (bn, t, a) in [(False, 4.0, 0.5), (True, 4.0, 0.5)]:  # a new teacher
                with open(os.path.join(work, "teacher.yaml"), "w") as f:
                    f.write(TEACHER_BN if bn else TEACHER)
                run([args.mlc, "run", os.path.join(work, "teacher.yaml"), "--quiet", "--seed", "1",
                     "--save", os.path.join(work, "teacher.safetensors")])
                TW, _ = st.read(os.path.join(work, "teacher.safetensors"))
            spec = os.path.join(work, "student.yaml")
            with open(spec, "w") as f:
                f.write(student(t, a))
            w, g = os.path.join(work, "student.safetensors"), os.path.join(work, "g.safetensors")
            run([args.mlc, "run", spec, "--quiet", "--seed", "2", "--save", w])
            run([args.mlc, "grad", spec, "--weights", w, "-o", g])
            W, _ = st.read(w)
            G, _ = st.read(g)
            d = torch.float64
            xb = torch.tensor(xs[:BATCH], dtype=d)
            yb = torch.tensor(y[:BATCH])
            p = {k: torch.tensor(np.array(v), dtype=d, requires_grad=True) for k, v in W.items()}
            tw = {k: torch.tensor(np.array(v), dtype=d) for k, v in TW.items()}
            zs = xb @ p["s.weight"].T + p["s.bias"]
            zt = teacher_logits(tw, xb, bn)
            loss = (1 - a) * F.cross_entropy(zs, yb) + a * t * t * F.kl_div(
                F.log_softmax(zs / t, dim=1), F.softmax(zt / t, dim=1), reduction="batchmean")
            loss.backward()
            errs = {"loss": rel_err(G["loss"], loss.detach().numpy()),
                    "s.weight": rel_err(G["s.weight"], p["s.weight"].grad.numpy()),
                    "s.bias": rel_err(G["s.bias"], p["s.bias"].grad.numpy())}
            extra = sorted(k for k in G if k.startswith("teacher."))
            saved = sorted(W)
            worst = max(errs.values())
            ok = worst <= 1e-4 and not extra and saved == ["s.bias", "s.weight"]
            print(f"{'ok  ' if ok else 'FAIL'} distillation{' (batchnorm teacher)' if bn else ''} T={t} alpha={a}: "
                  f"loss {float(loss):.6f}, "
                  + ", ".join(f"{k} {e:.2g}" for k, e in errs.items())
                  + (f"; teacher gradients present: {extra}" if extra else "")
                  + ("" if saved == ["s.bias", "s.weight"] else f"; --save wrote {saved}"))
            passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
