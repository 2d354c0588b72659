"""grad_check.py — mlc's gradients against PyTorch autograd on the same weights
and the same batch.

For each target (a spec built from dense, activation and add layers, in the
sequential or the graph form, or gen:NAME for a small generated CSV case) it runs
    mlc run SPEC --quiet --epochs 1 --seed 1 --save W   (realistic weights)
    mlc grad SPEC --weights W -o G                      (loss + gradients)
then rebuilds the model from the spec in PyTorch, loads W, reads the first
batch of the training data the way mlc does, and compares the loss and every
gradient in G with autograd in float64. Error per tensor:
    max |mlc - ref| / max(|ref|, FLOOR * max|ref|)     must be <= --tol (1e-4)
The floor keeps near-zero entries from turning rounding into huge ratios.
FLOOR is 0.1 (--floor): at 1e-3 the allowance for small entries is
1e-7 * max|ref|, about one float32 rounding of the largest entry, which
PyTorch's own float32 autograd does not meet either (its error against float64
is printed beside mlc's at FLOOR 1e-3 to show that noise floor: on the
Fashion-MNIST MLP both are about 1-4e-4, while the normwise errors are ~5e-7).

usage: grad_check.py --mlc BIN [--tol 1e-4] [--floor 0.1] [--seed 1] [--keep] TARGET...
  TARGET: SPEC.yaml (its own training data), SPEC.yaml@N (mlc grad --batch N),
          or gen:NAME (a generated CSV case, see CASES)
Exit status: 0 all passed, 1 some mismatch or failure.
"""
import argparse
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

try:
    import yaml
except ImportError:  # python3-yaml comes with python3-torch's dependencies on Debian
    sys.exit("grad_check: python3-yaml is missing (apt-get install python3-yaml)")


class Unsupported(Exception):
    """The spec uses something this checker does not model (not an mlc bug)."""


# ---- the spec (docs/spec.md) as a small program PyTorch can run ----

ACT_OPS = ("relu", "leaky_relu", "sigmoid", "tanh", "step", "softmax")
OPS = ("dense", "add") + ACT_OPS


def apply_act(op, arg, attrs, t):
    """An activation op; arg is the op's argument (alpha, slope) or None."""
    if op in (None, "none", "linear"):
        return t
    if op == "relu":
        return F.relu(t)
    if op == "leaky_relu":
        return F.leaky_relu(t, 0.01 if arg is None else float(arg))
    if op == "sigmoid":
        return torch.sigmoid((1.0 if arg is None else float(arg)) * t)
    if op == "tanh":
        return torch.tanh(t)
    if op == "softmax":
        return torch.softmax(t, dim=-1)
    if op == "step":
        y = (t > 0).to(t.dtype)
        # straight-through: the identity's gradient; otherwise the true zero gradient
        return t + (y - t).detach() if attrs.get("straight_through", True) else y
    raise Unsupported(f"activation '{op}'")


def parse_layer(item):
    """A layer → (op, argument, other keys). `- relu` is a bare op name."""
    if isinstance(item, str):
        item = {item: None}
    if not isinstance(item, dict):
        raise Unsupported(f"layer {item!r}")
    ops = [k for k in item if k in OPS]
    if len(ops) != 1:
        raise Unsupported(f"layer {item!r}")
    return ops[0], item[ops[0]], {k: v for k, v in item.items() if k != ops[0]}


def model_program(spec):
    """[(name, op, arg, attrs, sources)] in evaluation order, and the output's name."""
    inputs = list(spec["inputs"])
    prog = []
    if "layers" in spec:
        if len(inputs) != 1:
            raise Unsupported("a sequential model with several inputs")
        layers = [parse_layer(it) for it in spec["layers"]]
        # Unnamed layers: op name + a per-op count, skipping names written anywhere.
        taken = {a["name"] for _, _, a in layers if "name" in a}
        count, prev = {}, inputs[0]
        for op, arg, attrs in layers:
            name = attrs.get("name")
            while name is None or (name in taken and "name" not in attrs):
                count[op] = count.get(op, 0) + 1
                name = f"{op}{count[op]}"
            prog.append((name, op, arg, attrs, [prev]))
            prev = name
        return prog, prev
    nodes = {name: parse_layer(it) for name, it in spec["graph"].items()}
    done, order = set(inputs), []

    def visit(name, path):  # topological order by depth-first search
        if name in done:
            return
        if name not in nodes or name in path:
            raise Unsupported(f"graph node '{name}' is unknown or on a cycle")
        op, arg, attrs = nodes[name]
        srcs = [attrs["input"]] if "input" in attrs else list(attrs.get("inputs", []))
        for s in srcs:
            visit(s, path + [name])
        done.add(name)
        order.append((name, op, arg, attrs, srcs))

    out = spec.get("output") or list(nodes)[-1]
    visit(out, [])
    return order, out


def match_names(prog, weights):
    """Dense layers get the names their tensors have in W. If mlc named them
    otherwise than docs/spec.md says, fall back to file order (parameters are
    saved in graph order) and say so: names are not what this checks."""
    dense = [i for i, p in enumerate(prog) if p[1] == "dense"]
    if all(f"{prog[i][0]}.weight" in weights for i in dense):
        return prog
    prefixes = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in weights))
    if len(prefixes) != len(dense):
        raise Unsupported(f"cannot match {len(dense)} dense layers to the tensors {', '.join(weights)}")
    print(f"  note: layer names {[prog[i][0] for i in dense]} not in W; using W's order {prefixes}")
    prog = list(prog)
    for i, p in zip(dense, prefixes):
        prog[i] = (p,) + prog[i][1:]
    return prog


def forward(prog, out, params, inputs):
    """The output, and its pre-activation when the output ends in a softmax or a
    slope-1 sigmoid (the losses that fold them read that), keyed by activation."""
    val, pre = dict(inputs), {}
    for name, op, arg, attrs, srcs in prog:
        x = [val[s] for s in srcs]
        if op == "dense":
            b = params[f"{name}.bias"] if attrs.get("bias", True) else None
            z = F.linear(x[0], params[f"{name}.weight"], b)
            act = attrs.get("activation")
            val[name] = apply_act(act, None, attrs, z)
            if name == out and act in ("softmax", "sigmoid"):
                pre = {act: z}
        elif op == "add":
            val[name] = x[0] + x[1]
        else:
            val[name] = apply_act(op, arg, attrs, x[0])
            if name == out and (op == "softmax" or (op == "sigmoid" and arg in (None, 1, 1.0))):
                pre = {op: x[0]}
    return val[out], pre


def loss_of(spec, pred, pre, y):
    """y: the batch's targets as read from the data, [m, ydim] float."""
    loss = spec.get("loss")
    cfg = loss if isinstance(loss, dict) else {}
    loss = loss.get("type") if isinstance(loss, dict) else loss
    width = pred.shape[-1]
    logits = pre.get("softmax", pred)  # what the softmax-folding losses read
    if loss in ("softmax_cross_entropy", "cross_entropy"):
        return F.cross_entropy(logits, y[:, 0].long())
    if loss == "categorical_cross_entropy":
        return F.nll_loss(torch.log(torch.clamp(pred, 1e-7, 1)), y[:, 0].long())
    if loss == "hinge":  # CS231n's sum over j != y: PyTorch's mean over classes times C
        margin = float(cfg.get("margin", 1.0))
        return F.multi_margin_loss(pred, y[:, 0].long(), margin=margin) * width
    if loss == "kl_div":
        return F.kl_div(F.log_softmax(logits, dim=-1), y.to(pred.dtype), reduction="batchmean")
    if loss not in ("mse", "mae", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        raise Unsupported(f"loss '{loss}'")
    if y.shape[1] == 1 and width > 1:  # a class index for a one-hot target, as batch.c does
        y = F.one_hot(y[:, 0].long(), width).to(pred.dtype)
    y = y.to(pred.dtype).reshape(pred.shape)
    if loss == "binary_cross_entropy_with_logits":
        return F.binary_cross_entropy_with_logits(pre.get("sigmoid", pred), y)
    if loss == "mae":
        return F.l1_loss(pred, y)
    return F.mse_loss(pred, y) if loss == "mse" else F.binary_cross_entropy(pred, y)


# ---- training data, read as runtime/csv.c and runtime/idx.c read it ----

_NUM = re.compile(r"^[0-9.eE+-]+$")


def _is_number(cell):
    cell = cell.strip(" \t")
    if not _NUM.match(cell):
        return False
    try:
        float(cell)
        return True
    except ValueError:
        return False


def read_csv(path, label_columns, m):
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for i, line in enumerate(f):
            if not line.strip(" \t\r\n"):
                continue
            cells = line.rstrip("\r\n").split(",")
            if i == 0 and not all(_is_number(c) for c in cells):
                continue  # a header
            rows.append([np.float32(float(c)) for c in cells])
    a = np.array(rows, dtype=np.float32)
    return a[:m, :-label_columns], a[:m, -label_columns:], len(a)


def _open_maybe_gz(path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path, m):
    """The first m items of an IDX u8 file, and how many it holds."""
    with _open_maybe_gz(path) as f:
        magic = f.read(4)
        if magic[:3] != b"\x00\x00\x08":
            raise Unsupported(f"{path}: not an IDX u8 file")
        dims = struct.unpack(f">{magic[3]}I", f.read(4 * magic[3]))
        per = int(np.prod(dims[1:], dtype=np.int64))
        k = min(m, dims[0])
        a = np.frombuffer(f.read(k * per), dtype=np.uint8)
    return a.reshape(k, per), dims[0]


def first_batch(spec, spec_dir, m):
    data = spec.get("data") or {}
    def where(p):
        return p if os.path.isabs(p) else os.path.join(spec_dir, p)
    if data.get("format", "idx") == "csv":
        train = data["train"]
        train = train.get("file", train) if isinstance(train, dict) else train
        x, y, n = read_csv(where(train), int(data.get("label_columns", 1)), m)
    else:
        x, n = read_idx(where(data["train"]["images"]), m)
        y, _ = read_idx(where(data["train"]["labels"]), m)
        x = x.astype(np.float32)
    scale = float(data.get("scale", 1.0))
    if scale not in (0.0, 1.0):
        x = x * np.float32(scale)  # mlc scales in f32
    return x, y.astype(np.float32).reshape(len(y), -1), n


# ---- the comparison ----

def rel_err(a, ref, floor_frac):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    floor = max(floor_frac * float(np.abs(ref).max()), 1e-30)
    return float((np.abs(a - ref) / np.maximum(np.abs(ref), floor)).max())


def torch_grads(model, spec, weights, x, y, dtype):
    prog, out = model
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in weights.items()}
    pred, pre = forward(prog, out, params, {list(spec["inputs"])[0]: torch.tensor(x, dtype=dtype)})
    loss = loss_of(spec, pred, pre, torch.tensor(y))
    if loss.requires_grad:  # not when only true-gradient steps lie between loss and weights
        loss.backward()
    out = {"loss": loss.detach().numpy()}
    out.update({k: p.grad.numpy() if p.grad is not None else np.zeros_like(weights[k])
                for k, p in params.items()})
    return out


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode}:\n{r.stdout.rstrip()}")
    return r.stdout


def check(mlc, spec_path, label, opt, work, batch=None):
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    prog, out = model_program(spec)
    w_path, g_path = os.path.join(work, "w.safetensors"), os.path.join(work, "g.safetensors")
    run([mlc, "run", spec_path, "--quiet", "--epochs", "1", "--seed", str(opt.seed), "--save", w_path])
    run([mlc, "grad", spec_path, "--weights", w_path, "-o", g_path] + (["--batch", str(batch)] if batch else []))
    weights, _ = st.read(w_path)
    grads, meta = st.read(g_path)
    model = match_names(prog, weights), out
    want_batch = batch or int((spec.get("data") or {}).get("batch_size", 32))
    m = int(meta.get("batch", want_batch))
    x, y, n = first_batch(spec, os.path.dirname(os.path.abspath(spec_path)), m)
    ok = True
    if m != min(n, want_batch):
        print(f"  mlc grad used a batch of {m}, expected {min(n, want_batch)}")
        ok = False
    ref = torch_grads(model, spec, weights, x, y, torch.float64)
    f32 = torch_grads(model, spec, weights, x, y, torch.float32)
    names = ["loss"] + list(weights)
    extra = sorted(set(grads) - set(names))
    if extra:
        print(f"  mlc wrote tensors that are not parameters: {', '.join(extra)}")
        ok = False
    print(f"  batch {m} of {n} samples; loss mlc {float(grads.get('loss', np.nan)):.8g}"
          f"  torch {float(ref['loss']):.8g}")
    print(f"  {'tensor':<22} {'shape':<12} {'error':>9}    {'at floor 1e-3: mlc':>18} {'torch f32':>9}")
    worst = 0.0
    for k in names:
        shape = "[" + ",".join(map(str, ref[k].shape)) + "]"
        if k not in grads:
            print(f"  {k:<22} {shape:<12} {'missing':>11}")
            ok = False
            continue
        e = rel_err(grads[k], ref[k], opt.floor)
        worst = max(worst, e)
        flag = "" if e <= opt.tol else "  <-- exceeds tolerance"
        if grads[k].shape != ref[k].shape:
            flag = f"  <-- mlc shape {list(grads[k].shape)}"
        print(f"  {k:<22} {shape:<12} {e:>9.2e}    {rel_err(grads[k], ref[k], 1e-3):>18.2e} "
              f"{rel_err(f32[k], ref[k], 1e-3):>9.2e}{flag}")
        ok = ok and e <= opt.tol
    print(f"{'PASS' if ok else 'FAIL'} {label} (worst {worst:.2e}, tolerance {opt.tol:.0e}, floor {opt.floor:g})")
    return ok


# ---- generated cases: small CSV data sets that cover the other losses and activations ----

def _csv(path, x, y, header):
    with open(path, "w") as f:
        if header:
            f.write(",".join([f"f{i}" for i in range(x.shape[1])] + [f"t{i}" for i in range(y.shape[1])]) + "\n")
        for xi, yi in zip(x, y):
            f.write(",".join(f"{v:.6g}" for v in xi) + "," + ",".join(f"{v:.6g}" for v in yi) + "\n")


def _spec(dim, model, loss, label_columns, batch):
    return f"""name: gen
inputs:
  x: {{shape: [{dim}]}}
{model}
loss: {loss}
optimizer: {{type: sgd, lr: 0.05, momentum: 0.9}}
data:
  format: csv
  train: train.csv
  label_columns: {label_columns}
  batch_size: {batch}
  epochs: 1
"""


CASES = {
    # 3 real-valued targets, a header row; sigmoid as an activation and as a layer with a slope
    "sigmoid_mse": dict(loss="mse", dim=5, targets=3, n=50, batch=32, header=True, model="""layers:
  - dense: 8
    activation: sigmoid
  - dense: 6
  - sigmoid: 2
  - dense: 3"""),
    # a sigmoid output with 0/1 labels, no header
    "tanh_bce": dict(loss="binary_cross_entropy", dim=4, targets=1, n=40, batch=24, header=False, model="""layers:
  - dense: 8
    activation: tanh
  - dense: 1
    activation: sigmoid"""),
    # 4 classes; leaky_relu with the default alpha and as a layer with its own; a named layer
    "leaky_relu_xent": dict(loss="softmax_cross_entropy", dim=6, classes=4, n=100, batch=32, header=True,
                            model="""layers:
  - dense: 16
    activation: leaky_relu
  - dense: 12
    name: hidden
  - leaky_relu: 0.2
  - dense: 4"""),
    # graph form: a residual add, and a softmax output that the loss must read through
    "residual_softmax": dict(loss="softmax_cross_entropy", dim=6, classes=3, n=60, batch=20, header=True,
                             model="""graph:
  out: {dense: 3, activation: softmax, input: act}
  h1: {dense: 6, activation: relu, input: x}
  h2: {dense: 6, input: h1}
  res: {add, inputs: [x, h2]}
  act: {tanh, input: res}
output: out"""),
    # the losses of issue 5; "kind" says what the targets are (default: by the loss)
    "hinge": dict(loss="{type: hinge, margin: 0.5}", kind="classes", dim=6, classes=4, n=80, batch=32,
                  header=True, model="""layers:
  - dense: 12
    activation: tanh
  - dense: 4"""),
    "mae": dict(loss="mae", kind="real", dim=5, targets=3, n=50, batch=32, header=False, model="""layers:
  - dense: 8
    activation: tanh
  - dense: 3"""),
    # a plain dense output: the loss adds the sigmoid prediction
    "bce_logits": dict(loss="binary_cross_entropy_with_logits", kind="binary", dim=4, targets=1, n=40,
                       batch=24, header=False, model="""layers:
  - dense: 8
    activation: relu
  - dense: 1"""),
    # a sigmoid output (activation and layer forms): the loss reads its input
    "bce_logits_sigmoid": dict(loss="binary_cross_entropy_with_logits", kind="binary", dim=4, targets=1,
                               n=40, batch=24, header=True, model="""layers:
  - dense: 8
    activation: tanh
  - dense: 1
  - sigmoid"""),
    # an explicit softmax at the end, read as probabilities
    "categorical": dict(loss="categorical_cross_entropy", kind="classes", dim=6, classes=3, n=60, batch=20,
                        header=True, model="""layers:
  - dense: 10
    activation: relu
  - dense: 3
    activation: softmax"""),
    "kl_div": dict(loss="kl_div", kind="dist", dim=5, targets=4, n=50, batch=16, header=False,
                   model="""layers:
  - dense: 8
    activation: tanh
  - dense: 4"""),
}


def gen_case(name, work):
    """Writes spec.yaml + train.csv into work; returns the spec path."""
    if name not in CASES:
        raise Unsupported(f"no generated case '{name}' ({', '.join(CASES)})")
    c = CASES[name]
    rng = np.random.default_rng(12345)
    n, k = c["n"], c.get("targets", 1)
    x = rng.normal(size=(n, c["dim"]))
    kind = c.get("kind") or {"mse": "real", "binary_cross_entropy": "binary"}.get(c["loss"], "classes")
    if kind == "real":
        y = np.tanh(x[:, :k] * x[:, 1:k + 1]) + 0.1 * rng.normal(size=(n, k))
    elif kind == "dist":  # rows of probabilities (one exact 0 each: 0·log 0)
        y = np.exp(x[:, :k] + 0.5 * rng.normal(size=(n, k)))
        y[np.arange(n), np.argmin(y, axis=1)] = 0
        y /= y.sum(axis=1, keepdims=True)
    elif kind == "binary":
        y = (x[:, :1] + 0.5 * x[:, 1:2] ** 2 > 0.3).astype(float)
    else:  # class indices, learnable from the first features
        y = np.argmax(x[:, :c["classes"]] + 0.3 * rng.normal(size=(n, c["classes"])), axis=1)[:, None]
    _csv(os.path.join(work, "train.csv"), x, y.astype(float), c["header"])
    path = os.path.join(work, "spec.yaml")
    with open(path, "w") as f:
        f.write(_spec(c["dim"], c["model"], c["loss"], k, c["batch"]))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlc", required=True, help="the mlc binary")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--floor", type=float, default=0.1, help="of max|ref|, for small entries")
    ap.add_argument("--seed", type=int, default=1, help="seed of the training run that makes W")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    ap.add_argument("targets", nargs="+", help="SPEC.yaml, SPEC.yaml@BATCH (mlc grad --batch) or gen:NAME")
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions for the reference
    passed = failed = 0
    for t in a.targets:
        work = tempfile.mkdtemp(prefix="mlc_gradcheck_")
        t, _, batch = t.partition("@")
        label = t[4:] if t.startswith("gen:") else os.path.splitext(os.path.basename(t))[0]
        print(f"== {label} ({t}{'@' + batch if batch else ''})")
        try:
            spec = gen_case(t[4:], work) if t.startswith("gen:") else t
            ok = check(a.mlc, spec, label, a, work, int(batch) if batch else None)
        except (Unsupported, RuntimeError, OSError, KeyError, ValueError, st.FormatError,
                subprocess.TimeoutExpired) as e:
            print(f"  {type(e).__name__}: {e}")
            print(f"FAIL {label}")
            ok = False
        passed, failed = passed + ok, failed + (not ok)
        if a.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
