"""ir_torch.py — mlc's gradients against PyTorch autograd, driven by mlc's own IR.

Where grad_check.py rebuilds a model from its YAML spec, this script reads the
forward graph that mlc itself builds,
    mlc ir --stop-after=shapes SPEC      (inputs, params, ops, ret loss, ret pred)
and evaluates it op by op with PyTorch in float64 (activations NHWC as in mlc,
conv weights HWIO as in mlc), so any spec the frontend accepts — convolutions,
pooling, residual blocks, concatenated branches, batchnorm — is checked without
a second model definition. For each target it

  1. writes a copy of the spec whose data: section is replaced by a generated
     CSV (features in the input's NHWC order, labels last; exactly representable
     values, so mlc and this script read the same numbers),
  2. runs  mlc run COPY --quiet --epochs 1 --save W   (realistic weights; or
     --weights random: random ones written here in mlc's layouts),
  3. runs  mlc grad COPY --weights W -o G --batch B --wrt-inputs,
  4. evaluates the IR with autograd on W and the same first B samples, and
     compares the loss, the gradient of every trainable parameter (param nodes
     with trainable=1; batchnorm running statistics are not trainable) and of
     every f32 input with the tensors in G (names and layouts are mlc's).

Errors per tensor (a = mlc, b = the float64 reference):
    normwise     ||a - b|| / ||b||
    elementwise  max |a - b| / max(|b|, FLOOR * max|b|)      (FLOOR 0.1, as grad_check.py)
both must be <= --tol (1e-4). Beside them, PyTorch's own float32 evaluation's
elementwise error shows the float32 noise floor for that tensor. A gradient that
is zero by the model's structure (a bias right before a batchnorm) is compared
absolutely, in units of the largest parameter gradient (see compare()).

Kinks: relu and maxpool decide (x > 0; which element is a window's maximum).
Where the float64 value lies within float32 rounding of such a kink, mlc may
decide the other way, which reroutes one gradient term: enough, in a batch of
many samples, to move a summed gradient by more than 1e-4. When a comparison
fails, explain() looks for such decisions (within 2e-6 of the tensor's max),
and if taking some of them the other way in the reference brings everything
within tolerance, the target passes and they are listed (--no-explain: off).
mlc runs with --threads 1 (--threads) so that its rounding, and the test's
outcome, does not depend on the machine's core count.

Ops and the semantics assumed (ir/ops.def): batchnorm in training mode (batch
statistics, biased variance; running statistics with inference=1, a frozen one), avgpool counting only non-padded elements, maxpool
padding with -inf, flatten and concat in NHWC order (concat on the last dim).
Dropout cannot be reproduced (its mask comes from mlc's RNG): a spec with a
dropout of p > 0 is refused as unsupported — use p = 0, or --zero-dropout to
check a copy of the spec with every dropout's p set to 0.

usage: ir_torch.py --mlc BIN [--ops ir/ops.def] [--tol 1e-4] [--floor 0.1] [--batch 16]
                   [--samples 64] [--seed 1] [--weights mlc|random] [--zero-dropout]
                   [--threads 1] [--no-explain] [--keep] TARGET...
  TARGET: SPEC.yaml, or SPEC.yaml@B for a batch of B (overrides --batch)
Exit status: 0 all passed, 1 some mismatch or failure.
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OPS_DEF = os.path.join(HERE, "..", "..", "ir", "ops.def")


class Unsupported(Exception):
    """The model uses something this checker cannot model (not an mlc bug)."""


class IRError(Exception):
    """mlc printed IR this parser cannot read."""


# ---- ir/ops.def: attribute schemas (kinds and defaults) ----

def read_ops_def(path):
    """{op name: {attr: (kind 'f'|'i'|'s', default)}} from the OP(...) rows."""
    row = re.compile(r'^OP\(\s*\w+\s*,\s*"([^"]+)"\s*,\s*(\d+)\s*,\s*\w+\s*,\s*"([^"]*)"')
    ops = {}
    with open(path) as f:
        for line in f:
            m = row.match(line)
            if not m:
                continue
            schema = {}
            for item in filter(None, m.group(3).split(",")):
                name, rest = item.split(":", 1)
                slot, default = rest.split("=", 1)
                kind = slot[0]
                schema[name] = (kind, _attr_value(kind, default))
            ops[m.group(1)] = {"arity": int(m.group(2)), "attrs": schema}
    if not ops:
        raise IRError(f"{path}: no OP(...) rows found")
    return ops


def _attr_value(kind, text):
    if kind == "i":
        return int(text)
    if kind == "f":
        return float(text)  # also inf, -inf, nan
    return text


# ---- the IR text (docs/ir.md) ----

_WCHAR = re.compile(r"[A-Za-z0-9_.]+")
_TCHAR = re.compile(r"[A-Za-z0-9_.+-]+")


class Lexer:
    """Tokens of one IR line: values, strings, words, punctuation; stops at '#'."""

    def __init__(self, text, lineno):
        self.s, self.i, self.lineno = text, 0, lineno

    def err(self, msg):
        return IRError(f"IR line {self.lineno}: {msg}: {self.s.strip()!r}")

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\r":
            self.i += 1

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) and self.s[self.i] != "#" else ""

    def expect(self, ch):
        if self.peek() != ch:
            raise self.err(f"expected '{ch}'")
        self.i += 1

    def string(self):
        assert self.s[self.i] == '"'
        self.i += 1
        out = bytearray()
        while True:
            if self.i >= len(self.s):
                raise self.err("unterminated string")
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return out.decode("utf-8", "replace")
            if c == "\\":
                e = self.s[self.i + 1:self.i + 2]
                if e == "x":
                    out.append(int(self.s[self.i + 2:self.i + 4], 16))
                    self.i += 4
                    continue
                out += {'"': b'"', "\\": b"\\", "n": b"\n", "t": b"\t", "r": b"\r"}[e]
                self.i += 2
                continue
            out += c.encode("utf-8")
            self.i += 1

    def word(self, pattern=_WCHAR):
        self.ws()
        if self.i < len(self.s) and self.s[self.i] == '"':
            return self.string()
        m = pattern.match(self.s, self.i)
        if not m:
            raise self.err("expected a name")
        self.i = m.end()
        return m.group(0)

    def value(self):
        """%12 → '12', %x → 'x', %"conv-1.weight" → 'conv-1.weight' (names and
        numbers share one namespace as mlc's printer keeps them distinct)."""
        self.ws()
        if self.s[self.i:self.i + 1] != "%":
            raise self.err("expected a value (%...)")
        self.i += 1
        if self.s[self.i:self.i + 1] == '"':
            return "name:" + self.string()
        w = self.word()
        return ("id:" if w.isdigit() else "name:") + w

    def rest_is_empty(self):
        return self.peek() == ""


class Node:
    __slots__ = ("ref", "name", "op", "args", "attrs", "dtype", "shape", "layer", "lineno")

    def __repr__(self):
        show = lambda r: "%" + r.split(":", 1)[1]  # noqa: E731
        return f"{show(self.ref)} = {self.op}({', '.join(map(show, self.args))})"

    def type_str(self):
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


def parse_type(lx):
    lx.ws()
    if lx.s[lx.i:lx.i + 1] == "?":
        raise lx.err("a node without an inferred type (run with --stop-after=shapes)")
    m = re.compile(r"(f32|i32)\[([0-9N,]*)\]").match(lx.s, lx.i)
    if not m:
        raise lx.err("expected a type")
    lx.i = m.end()
    dims = [d for d in m.group(2).split(",") if d]
    return m.group(1), [d if d == "N" else int(d) for d in dims]


def parse_ir(text, ops):
    """(graph name, [Node] in order, {result key: ref})."""
    nodes, rets, name, seen_header, closed = [], {}, None, False, False
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        lx = Lexer(line, lineno)
        if not seen_header:
            if lx.word() != "graph":
                raise lx.err("expected 'graph NAME {'")
            name = lx.word()
            lx.expect("{")
            seen_header = True
            continue
        if closed:
            raise lx.err("text after the closing '}'")
        if stripped.startswith("}"):
            closed = True
            continue
        if stripped.startswith("plan "):
            continue
        if stripped.startswith("ret "):
            lx.word()
            key = lx.word()
            lx.expect("=")
            rets[key] = lx.value()
            continue
        n = Node()
        n.lineno = lineno
        n.ref = lx.value()
        n.name = n.ref[5:] if n.ref.startswith("name:") else None
        lx.expect("=")
        n.op = lx.word()
        if n.op not in ops:
            raise lx.err(f"op '{n.op}' is not in ops.def")
        n.args, n.attrs = [], {}
        if lx.peek() == "(":
            lx.expect("(")
            while lx.peek() != ")":
                n.args.append(lx.value())
                if lx.peek() == ",":
                    lx.i += 1
            lx.expect(")")
        if lx.peek() == "{":
            lx.expect("{")
            while lx.peek() != "}":
                key = lx.word()
                lx.expect("=")
                lx.ws()
                val = lx.word(_TCHAR)
                schema = ops[n.op]["attrs"]
                if key not in schema:
                    raise lx.err(f"{n.op} has no attribute '{key}' in ops.def")
                n.attrs[key] = _attr_value(schema[key][0], val)
                if lx.peek() == ",":
                    lx.i += 1
            lx.expect("}")
        for key, (_, default) in ops[n.op]["attrs"].items():
            n.attrs.setdefault(key, default)
        if len(n.args) != ops[n.op]["arity"]:
            raise lx.err(f"{n.op} takes {ops[n.op]['arity']} operands, got {len(n.args)}")
        lx.expect(":")
        n.dtype, n.shape = parse_type(lx)
        lx.ws()
        if lx.s[lx.i:lx.i + 1] == "@":  # memory slot of a planned graph
            lx.i = len(lx.s) if "#" not in lx.s[lx.i:] else lx.s.index("#", lx.i)
        n.layer = None
        if "#" in lx.s[lx.i:]:
            comment = lx.s[lx.s.index("#", lx.i) + 1:].strip()
            n.layer = comment.split(" @ ")[0] if not comment.startswith("@") else None
        elif not lx.rest_is_empty():
            raise lx.err("unexpected text at the end of the line")
        nodes.append(n)
    if not seen_header or not closed:
        raise IRError("no complete 'graph NAME { ... }' in mlc's output")
    return name, nodes, rets


# ---- evaluation with PyTorch ----

def _nchw(x):
    return x.permute(0, 3, 1, 2)


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


def _pad4(a):
    """F.pad order for NCHW spatial dims: (left, right, top, bottom)."""
    return (a["pad_l"], a["pad_r"], a["pad_t"], a["pad_b"])


class Kinks:
    """The decisions of kinked ops: relu / leaky_relu (x > 0) and maxpool (which
    element is a window's maximum). float32 rounding in mlc can take a decision
    the other way when the float64 reference is within rounding of the kink; the
    gradient then differs by one routed term — a difference that, at one sample
    and one position, can exceed 1e-4 of a summed gradient (a bias) and reach
    every earlier layer. Recording collects candidates (margin below NEAR times
    the tensor's max |x|); `flips` ({node ref: flat indices}) takes those
    decisions the other way. See explain()."""

    NEAR = 2e-6  # candidates for explain()
    NOTE = 1e-6  # counted in the report

    def __init__(self, record=False, flips=None):
        self.record, self.flips = record, flips or {}
        self.cands = []  # (margin, node ref, layer, op, flat index)
        self.close = 0   # candidates within NOTE

    def _note(self, n, margin):
        m = margin.reshape(-1)
        for i in torch.nonzero(m < self.NEAR).reshape(-1).tolist():
            self.cands.append((float(m[i]), n.ref, n.layer, n.op, i))
            self.close += float(m[i]) < self.NOTE

    def relu(self, n, x, alpha):
        xd = x.detach()
        pos = xd > 0
        if self.record and xd.numel():
            scale = float(xd.abs().max())
            if scale > 0:
                self._note(n, torch.where(xd == 0, torch.ones_like(xd), xd.abs() / scale))
        flip = self.flips.get(n.ref)
        if flip:
            pos = pos.clone().reshape(-1)
            idx = torch.tensor(sorted(flip), dtype=torch.long)
            pos[idx] = ~pos[idx]
            pos = pos.reshape(xd.shape)
        one = torch.ones((), dtype=x.dtype)
        return x * torch.where(pos, one, one * alpha)  # the gradient is the mask

    def maxpool(self, n, xp, kh, kw, sh, sw):
        """xp: NCHW, padded with -inf. Returns NCHW."""
        nb, c = xp.shape[0], xp.shape[1]
        oh = (xp.shape[2] - kh) // sh + 1
        ow = (xp.shape[3] - kw) // sw + 1
        flip = self.flips.get(n.ref)
        if not self.record and not flip:
            return F.max_pool2d(xp, (kh, kw), stride=(sh, sw))
        cols = F.unfold(xp, (kh, kw), stride=(sh, sw)).reshape(nb, c, kh * kw, oh * ow)
        cd = cols.detach()
        first = cd.argmax(dim=2, keepdim=True)  # the first maximum, as F.max_pool2d
        if kh * kw > 1:
            rest = cd.scatter(2, first, -math.inf)
            second = rest.argmax(dim=2, keepdim=True)
            if self.record:
                finite = torch.isfinite(cd)
                scale = float(cd[finite].abs().max()) if bool(finite.any()) else 0.0
                top, nxt = cd.gather(2, first), rest.gather(2, second)
                gap = (top - nxt).squeeze(2)
                ok = torch.isfinite(gap) & (gap > 0)
                if scale > 0:
                    self._note(n, torch.where(ok, gap / scale, torch.ones_like(gap)))
            if flip:
                idx = torch.tensor(sorted(flip), dtype=torch.long)
                first = first.clone().reshape(-1)
                first[idx] = second.reshape(-1)[idx]
                first = first.reshape(nb, c, 1, oh * ow)
        return cols.gather(2, first).reshape(nb, c, oh, ow)


def avgpool_nhwc(x, a):
    kh, kw, sh, sw = a["size_h"], a["size_w"], a["stride_h"], a["stride_w"]
    xp = F.pad(_nchw(x), _pad4(a))
    ones = F.pad(torch.ones_like(_nchw(x)[:1, :1]), _pad4(a))
    total = F.avg_pool2d(xp, (kh, kw), stride=(sh, sw)) * (kh * kw)
    count = F.avg_pool2d(ones, (kh, kw), stride=(sh, sw)) * (kh * kw)
    return _nhwc(total / count.round())


# The primitive ops (ir/ops.def, issue 11), as PyTorch defines them.
PRIM_BINARY = {
    "sub": lambda p, q: p - q,
    "mul": lambda p, q: p * q,
    "div": lambda p, q: p / q,
    "minimum": torch.minimum,
    "maximum": torch.maximum,
}
PRIM_UNARY = {
    "neg": lambda t, a: -t,
    "exp": lambda t, a: torch.exp(t),
    "log": lambda t, a: torch.log(t),
    "sqrt": lambda t, a: torch.sqrt(t),
    "square": lambda t, a: t * t,
    "abs": lambda t, a: torch.abs(t),
    "sign": lambda t, a: torch.sign(t),
    "pow": lambda t, a: torch.pow(t, a["exponent"]),
    "clamp": lambda t, a: torch.clamp(t, a["min"], a["max"]),
    "detach": lambda t, a: t.detach(),
    "scale": lambda t, a: t * a["factor"],  # a weighted loss of a list
}


def _axes(text, rank):
    """sum/mean's axes attribute ("" all, "1", "0,2", negatives from the end)."""
    if not text:
        return tuple(range(rank))
    return tuple(int(v) % rank for v in text.split(","))


# The seed of the spec copy mlc grad runs (check() sets it): random ops draw from it.
NOISE_SEED = 0


def _fmix32(h):
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def mlc_noise(op, a, seed, step, shape):
    """random_normal / random_uniform's values as mlc draws them (docs/design.md,
    "Random ops"; codegen/kernels_prim.c): a hash of (key, seed, step, flat
    element index), Box-Muller for the normal; float64 here, so only the
    float32 rounding of log and cos differs."""
    with np.errstate(over="ignore"):
        u32 = np.uint32
        seed32 = u32((seed ^ (seed >> 32)) & 0xFFFFFFFF)
        st = _fmix32(_fmix32(_fmix32(u32((a["key"] + 0x9E3779B9) & 0xFFFFFFFF)) ^ seed32) ^ u32(step))
        idx = np.arange(int(np.prod(shape)), dtype=np.uint32)
        h = _fmix32(_fmix32(idx ^ st) + st)
        if op == "random_uniform":
            u = (h >> u32(8)).astype(np.float64) / 16777216.0
            v = a["low"] + (a["high"] - a["low"]) * u
        else:
            h2 = _fmix32(h ^ u32(0x68E31DA4))
            u1 = ((h >> u32(8)).astype(np.float64) + 1) / 16777216.0
            u2 = (h2 >> u32(8)).astype(np.float64) / 16777216.0
            v = a["mean"] + a["std"] * np.sqrt(-2 * np.log(u1)) * np.cos(2 * math.pi * u2)
    return v.reshape(tuple(shape))


def evaluate(nodes, rets, weights, batch, dtype, kinks=None):
    """Runs the forward graph. weights: {param name: ndarray} (mlc layouts);
    batch: {input name: ndarray}; kinks: a Kinks to record or override the
    decisions of relu and maxpool (None: plain PyTorch ops). Returns
    (loss, {param: tensor}, {input: tensor}) with requires_grad set on
    trainable params and f32 inputs."""
    val, params, inputs = {}, {}, {}
    for n in nodes:
        a = n.attrs
        x = [val[r] for r in n.args]
        op = n.op
        if op == "input":
            if n.name not in batch:
                raise Unsupported(f"input '{n.name}' has no data")
            if n.dtype == "i32":
                t = torch.tensor(batch[n.name], dtype=torch.long)
            elif n.name == "labels":  # the targets: mlc does not differentiate w.r.t. them
                t = torch.tensor(batch[n.name], dtype=dtype)
            else:
                t = torch.tensor(batch[n.name], dtype=dtype, requires_grad=True)
                inputs[n.name] = t
            y = t
        elif op == "param":
            if n.name not in weights:
                raise RuntimeError(f"parameter '{n.name}' is not in the weights file")
            w = weights[n.name]
            t = torch.tensor(np.asarray(w, np.float64), dtype=dtype)
            if a["trainable"]:
                t.requires_grad_(True)
                params[n.name] = t
            y = t
        elif op == "const":
            y = torch.tensor(a["value"], dtype=dtype)
        elif op == "matmul":
            p, q = x
            p = p.transpose(-1, -2) if a["ta"] else p
            q = q.transpose(-1, -2) if a["tb"] else q
            y = p @ q
        elif op == "bias_add":
            y = x[0] + x[1]
        elif op == "add":
            y = x[0] + x[1]
        elif op == "relu":
            y = kinks.relu(n, x[0], 0.0) if kinks else F.relu(x[0])
        elif op == "leaky_relu":
            y = kinks.relu(n, x[0], a["alpha"]) if kinks else F.leaky_relu(x[0], a["alpha"])
        elif op == "sigmoid":
            y = torch.sigmoid(a["slope"] * x[0])
        elif op == "tanh":
            y = torch.tanh(x[0])
        elif op == "step":
            s = (x[0] > 0).to(dtype)
            y = x[0] + (s - x[0]).detach() if a["ste"] else s  # straight-through: identity's gradient
        elif op == "softmax":
            y = torch.softmax(x[0], dim=-1)
        elif op == "sum_rows":
            y = x[0].reshape(-1, x[0].shape[-1]).sum(0)
        # the targets are constants to mlc, also a model input read as the
        # target (loss target: x, docs/spec.md "Loss"): no gradient through them
        elif op == "mse":
            y = F.mse_loss(x[0], x[1].detach().to(dtype).reshape(x[0].shape))
        elif op == "bce":
            y = F.binary_cross_entropy(x[0], x[1].detach().to(dtype).reshape(x[0].shape))
        elif op == "softmax_xent":
            y = F.cross_entropy(x[0], x[1])
        elif op == "conv2d":
            w = x[1].permute(3, 2, 0, 1)  # HWIO -> OIHW
            xp = F.pad(_nchw(x[0]), _pad4(a))
            y = _nhwc(F.conv2d(xp, w, stride=(a["stride_h"], a["stride_w"]),
                               dilation=(a["dil_h"], a["dil_w"]), groups=a["groups"]))
        elif op == "maxpool":
            xp = F.pad(_nchw(x[0]), _pad4(a), value=-math.inf)
            kh, kw, sh, sw = a["size_h"], a["size_w"], a["stride_h"], a["stride_w"]
            y = _nhwc(kinks.maxpool(n, xp, kh, kw, sh, sw) if kinks
                      else F.max_pool2d(xp, (kh, kw), stride=(sh, sw)))
        elif op == "avgpool":
            y = avgpool_nhwc(x[0], a)
        elif op == "global_avgpool":
            y = x[0].mean(dim=(1, 2))
        elif op == "flatten":
            y = x[0].reshape(x[0].shape[0], -1)  # NHWC order, as mlc lays it out
        elif op == "reshape_like":
            y = x[0].reshape(x[1].shape)
        elif op == "concat":
            y = torch.cat(x, dim=-1)
        elif op == "slice":
            y = x[0].narrow(a["axis"] % x[0].dim(), a["begin"], a["size"])
        elif op == "batchnorm":  # training mode: the batch's statistics; inference=1: the running ones
            xx, gamma, beta = x[0], x[1], x[2]
            dims = tuple(range(xx.dim() - 1))
            if a["inference"]:
                mean, var = x[3], x[4]
            else:
                mean = xx.mean(dim=dims)
                var = xx.var(dim=dims, unbiased=False)
            y = (xx - mean) / torch.sqrt(var + a["eps"]) * gamma + beta
        elif op in PRIM_BINARY:  # broadcasting as in mlc: scalar, row [M], column [..., 1]
            y = PRIM_BINARY[op](x[0], x[1])
        elif op in PRIM_UNARY:
            y = PRIM_UNARY[op](x[0], a)
        elif op in ("sum", "mean"):
            dims = _axes(a["axes"], x[0].dim())
            f = torch.sum if op == "sum" else torch.mean
            y = f(x[0], dim=dims, keepdim=bool(a["keep"])) if dims else x[0]
        elif op == "reshape":
            y = x[0].reshape([x[0].shape[0] if d == "N" else int(d) for d in a["shape"].split(",")])
        elif op == "random_normal" or op == "random_uniform":
            # mlc grad's noise: the training pass of step 0 at the copy's data seed
            y = torch.tensor(mlc_noise(op, a, NOISE_SEED, 0, x[0].shape), dtype=dtype)
        elif op == "dropout":
            if a["p"] != 0:
                raise Unsupported(f"dropout with p={a['p']:g} at IR line {n.lineno} (layer {n.layer}): "
                                  "its mask cannot be reproduced; set p to 0 for this check")
            y = x[0]
        else:
            raise Unsupported(f"op '{op}' in a forward graph (IR line {n.lineno})")
        want = [batch_size(batch) if d == "N" else d for d in n.shape]
        if list(y.shape) != want:
            raise RuntimeError(f"IR line {n.lineno}: {n!r}: PyTorch gives shape {list(y.shape)}, "
                               f"mlc's IR says {n.type_str()}")
        val[n.ref] = y
    if "loss" not in rets:
        raise IRError("the IR has no 'ret loss'")
    return val[rets["loss"]], params, inputs


def batch_size(batch):
    return len(next(iter(batch.values())))


def torch_grads(nodes, rets, weights, batch, dtype, kinks=None):
    loss, params, inputs = evaluate(nodes, rets, weights, batch, dtype, kinks)
    leaves = list(params.values()) + list(inputs.values())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else [None] * len(leaves)
    out = {"loss": loss.detach().numpy()}
    for k, g, t in zip(list(params) + list(inputs), grads, leaves):
        out[k] = g.detach().numpy() if g is not None else np.zeros(tuple(t.shape))
    return out, list(params), list(inputs)


# ---- the generated data and the spec copy ----

_TOPKEY = re.compile(r"""^(?:[A-Za-z_][A-Za-z0-9_-]*|"[^"]*"|'[^']*')\s*:""")


def replace_data(text, data_block):
    """The spec's text with its top-level data: section (block or flow
    style) replaced by data_block; everything else kept byte for byte."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        m = _TOPKEY.match(line)
        if m:
            skipping = m.group(0).rstrip(":").strip().strip("\"'") == "data"
        if not skipping:
            out.append(line)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    return "".join(out) + data_block


_DROPOUT = re.compile(r"\bdropout\b(?![.\w-])(?:[ \t]*:(?:[ \t]*(?:[-+0-9.eE]+|\$\w+))?)?")


def zero_dropout(text):
    """The spec's text with every dropout layer's p set to 0 (`- dropout`,
    `dropout: 0.5`, `{dropout: $p, ...}`); returns (text, count)."""
    out, k = [], 0
    for line in text.splitlines(keepends=True):
        code, hash_, comment = line.partition("#")
        new, n = _DROPOUT.subn("dropout: 0", code)
        out.append(new + hash_ + comment)
        k += n
    return "".join(out), k


def same_graph_key(n):
    """What must agree between the IR of the spec and of its copy."""
    attrs = dict(n.attrs)
    if n.op == "dropout":
        attrs.pop("p")
    return n.op, n.name, n.dtype, n.shape, sorted(attrs.items()), n.args


def make_data(nodes, rets, rng, samples):
    """Features and labels for every sample: {input name: ndarray}, the CSV rows
    (features in the input's memory order, labels last) and the label width."""
    inputs = [n for n in nodes if n.op == "input"]
    feats = [n for n in inputs if n.name != "labels"]
    if len(feats) != 1:
        raise Unsupported(f"{len(feats)} model inputs; the CSV data path takes one")
    xn = feats[0]
    if xn.dtype != "f32":
        raise Unsupported(f"input '{xn.name}' is {xn.dtype}")
    shape = [samples] + xn.shape[1:]
    # k/1024 in [-1, 1): exact in float32 and in decimal, so the CSV reads back exactly;
    # in [0, 1) when a bce reads the input as its target (an autoencoder's, loss target: x)
    low = 0 if any(n.op == "bce" and n.args[1:] == [xn.ref] for n in nodes) else -1024
    x = rng.integers(low, 1024, size=shape).astype(np.float64) / 1024.0
    data = {xn.name: x}
    cols = [x.reshape(samples, -1)]
    lab = next((n for n in inputs if n.name == "labels"), None)
    if lab is not None:
        users = [n for n in nodes if lab.ref in n.args]
        if lab.dtype == "i32":
            logits = next((n for n in users if n.op == "softmax_xent"), None)
            if logits is None:
                raise Unsupported("i32 labels not read by softmax_xent")
            classes = next(m for m in nodes if m.ref == logits.args[0]).shape[-1]
            y = rng.integers(0, classes, size=samples)
            data["labels"] = y
            cols.append(y.reshape(samples, 1).astype(np.float64))
        else:
            width = int(np.prod(lab.shape[1:], dtype=np.int64))
            if any(n.op == "bce" for n in users):
                y = rng.integers(0, 2, size=[samples] + lab.shape[1:]).astype(np.float64)
            else:
                y = rng.integers(-1024, 1024, size=[samples] + lab.shape[1:]).astype(np.float64) / 1024.0
            data["labels"] = y
            cols.append(y.reshape(samples, width))
    rows = np.concatenate(cols, axis=1)
    return data, rows, rows.shape[1] - cols[0].shape[1]


def write_csv(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(",".join(repr(float(v)) for v in r) + "\n")


def random_weights(nodes, rng):
    """Weights in mlc's layouts from the IR's param shapes: He-scaled normals for
    weights (fan_in from the IR, or the product of all dims but the last);
    params initialized with ones (batchnorm's gamma) near 1, zeros (biases, beta)
    near 0; running statistics as initialized (means 0, variances 1)."""
    out = {}
    for n in nodes:
        if n.op != "param":
            continue
        shape, name, init = n.shape, n.name, n.attrs["init"]
        if not n.attrs["trainable"]:
            out[name] = (np.ones(shape) if init == "ones" else np.zeros(shape)).astype(np.float32)
        elif init == "ones":
            out[name] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif init == "zeros" or len(shape) == 1:
            out[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan = n.attrs["fan_in"] or int(np.prod(shape[:-1]))
            out[name] = (rng.standard_normal(shape) * math.sqrt(2.0 / fan)).astype(np.float32)
    return out


# ---- the comparison ----

ZERO = 1e-10  # of the largest gradient: a reference this small is a structural zero


def errors(a, ref, floor_frac):
    """(normwise, max elementwise) relative errors of a against ref."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return math.inf, math.inf
    if ref.size == 0:
        return 0.0, 0.0
    nref = float(np.linalg.norm(ref))
    diff = float(np.linalg.norm(a - ref))
    norm = diff / nref if nref > 0 else (0.0 if diff == 0 else math.inf)
    floor = max(floor_frac * float(np.abs(ref).max()), 1e-30)
    elem = float((np.abs(a - ref) / np.maximum(np.abs(ref), floor)).max())
    return norm, elem


def run(cmd, timeout=1800):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode}:\n{r.stdout.rstrip()}")
    return r.stdout


def op_counts(nodes):
    counts = {}
    for n in nodes:
        if n.op not in ("input", "param", "const"):
            counts[n.op] = counts.get(n.op, 0) + 1
    return " ".join(f"{k}x{v}" for k, v in counts.items())


def check(opt, ops, spec_path, batch, work):
    with open(spec_path) as f:
        text = f.read()
    # The IR of the original spec decides the data; the copy must give the same graph.
    ir_text = run([opt.mlc, "ir", "--stop-after=shapes", spec_path])
    name, nodes, rets = parse_ir(ir_text, ops)
    pnodes = [n for n in nodes if n.op == "param"]
    trainable = [n.name for n in pnodes if n.attrs["trainable"]]
    nparams = sum(int(np.prod(n.shape, dtype=np.int64)) for n in pnodes if n.attrs["trainable"])
    print(f"  graph {name}: {len(nodes)} nodes, {len(pnodes)} params ({len(trainable)} trainable, "
          f"{nparams:,} numbers); {op_counts(nodes)}")
    drops = [n for n in nodes if n.op == "dropout" and n.attrs["p"] != 0]
    if drops and not opt.zero_dropout:  # refuse early, before running anything
        raise Unsupported(f"dropout with p={drops[0].attrs['p']:g} (layer {drops[0].layer}): its mask cannot "
                          "be reproduced in PyTorch; use p: 0 for this check (or --zero-dropout)")
    if drops:
        text, k = zero_dropout(text)
        print(f"  --zero-dropout: {k} dropout layer(s) of the spec set to p = 0 in the copy checked")

    global NOISE_SEED
    NOISE_SEED = opt.seed
    rng = np.random.default_rng(opt.seed)
    samples = max(opt.samples, batch)
    data, rows, label_cols = make_data(nodes, rets, rng, samples)
    write_csv(os.path.join(work, "train.csv"), rows)
    has_labels = any(n.op == "input" and n.name == "labels" for n in nodes)  # none: a loss target: input
    block = (f"data:\n  format: csv\n  train: train.csv\n  label_columns: {max(label_cols, 1) if has_labels else 0}\n"
             f"  batch_size: {batch}\n  epochs: 1\n  shuffle: false\n  seed: {opt.seed}\n")
    copy = os.path.join(work, "spec.yaml")
    with open(copy, "w") as f:
        f.write(replace_data(text, block))
    _, nodes2, _ = parse_ir(run([opt.mlc, "ir", "--stop-after=shapes", copy]), ops)
    if [same_graph_key(n) for n in nodes2] != [same_graph_key(n) for n in nodes]:
        raise RuntimeError("the spec with generated data gives another graph than the original")
    nodes = nodes2

    w_path, g_path = os.path.join(work, "w.safetensors"), os.path.join(work, "g.safetensors")
    if opt.weights == "mlc":
        run([opt.mlc, "run", copy, "--quiet", "--epochs", "1", "--seed", str(opt.seed), "--save", w_path,
             "--threads", str(opt.threads)])
    else:
        st.write(w_path, random_weights(nodes, rng))
    run([opt.mlc, "grad", copy, "--weights", w_path, "-o", g_path, "--batch", str(batch), "--wrt-inputs",
         "--threads", str(opt.threads)])
    weights, _ = st.read(w_path)
    grads, meta = st.read(g_path)
    m = int(meta.get("batch", batch))
    ok = True
    if m != batch:
        print(f"  mlc grad used a batch of {m}, expected {batch}")
        ok = False
    first = {k: v[:m] for k, v in data.items()}

    kinks = Kinks(record=True)
    ref, pnames, inames = torch_grads(nodes, rets, weights, first, torch.float64, kinks)
    f32, _, _ = torch_grads(nodes, rets, weights, first, torch.float32)
    names = ["loss"] + pnames + inames
    extra = sorted(set(grads) - set(names))
    if extra:
        print(f"  mlc wrote tensors that are not trainable parameters or inputs: {', '.join(extra)}")
        ok = False
    loss_mlc = float(grads.get("loss", np.nan))
    print(f"  batch {m} of {samples} samples, {opt.weights} weights, mlc --threads {opt.threads}; "
          f"loss mlc {loss_mlc:.8g}  torch {float(ref['loss']):.8g}")
    if kinks.close:
        print(f"  note: {kinks.close} relu/maxpool decision(s) within {Kinks.NOTE:g} (relative) of a kink")
    rows, good = compare(grads, ref, f32, names, pnames, opt)
    if not good and kinks.cands and opt.explain:
        ref2, taken = explain(nodes, rets, weights, first, grads, ref, names, pnames, kinks.cands, opt)
        if taken:
            rows2, good2 = compare(grads, ref2, f32, names, pnames, opt, ref32=ref)
            wn, we = worst(rows)
            print(f"  {len(taken)} kink decision(s) taken the other way by mlc's float32 rounding explain the "
                  f"difference (without them: worst normwise {wn:.2e}, elementwise {we:.2e});")
            print("  the table compares mlc with a float64 reference that takes them the same way "
                  "(torch f32 with the plain one):")
            for margin, _, layer, op, idx in taken:
                print(f"    {op} of layer {layer}, element {idx}: float64 margin {margin:.1e} of the tensor's max")
            rows, good = rows2, good2
    wk = max([len(r[0]) + 7 * r[6] for r in rows] + [22])
    ws = max([len(r[1]) for r in rows] + [12])
    print(f"  {'tensor':<{wk}} {'shape':<{ws}} {'normwise':>9} {'elementwise':>11}   {'torch f32 elem':>14}")
    for k, shape, en, ee, e32, flag, zero in rows:
        label = k + " (zero)" if zero else k
        if en is None:
            print(f"  {label:<{wk}} {shape:<{ws}} {'missing':>9}")
        else:
            print(f"  {label:<{wk}} {shape:<{ws}} {en:>9.2e} {ee:>11.2e}   {e32:>14.2e}{flag}")
    if any(r[6] for r in rows):
        print(f"  (zero): the reference is zero up to rounding (max |ref| <= {ZERO:g} x the largest parameter "
              "gradient); error = max |mlc - ref| / that largest gradient")
    wn, we = worst(rows)
    print(f"  worst: normwise {wn:.2e}, elementwise {we:.2e} (tolerance {opt.tol:.0e}, floor {opt.floor:g})")
    return ok and good


def compare(grads, ref, f32, names, pnames, opt, ref32=None):
    """One row per tensor, (name, shape, normwise, elementwise, torch f32
    elementwise, flag, structural zero), and whether all are within tolerance.
    A gradient that is zero by the model's structure (a bias right before a
    batchnorm, which removes any per-channel shift) is float64 rounding noise
    in the reference and float32 noise in mlc: relative errors mean nothing
    there. Such a tensor (max |ref| below ZERO times the largest parameter
    gradient) is compared absolutely, in units of that largest gradient.
    ref32: what PyTorch's float32 is compared with (default: ref)."""
    ref32 = ref if ref32 is None else ref32
    scale = max([float(np.abs(ref[k]).max()) for k in pnames if np.size(ref[k])] + [0.0])
    rows, good = [], True
    for k in names:
        shape = "[" + ",".join(map(str, np.shape(ref[k]))) + "]"
        if k not in grads:
            rows.append((k, shape, None, None, None, "missing", False))
            good = False
            continue
        en, ee = errors(grads[k], ref[k], opt.floor)
        _, e32 = errors(f32[k], ref32[k], opt.floor)
        zero = bool(k in pnames and np.size(ref[k]) and float(np.abs(ref[k]).max()) <= ZERO * scale
                    and np.shape(grads[k]) == np.shape(ref[k]))
        if zero:
            en = ee = float(np.abs(np.asarray(grads[k], np.float64) - ref[k]).max()) / scale
            e32 = float(np.abs(f32[k] - ref32[k]).max()) / scale
        flag = "" if en <= opt.tol and ee <= opt.tol else "  <-- exceeds tolerance"
        if np.shape(grads[k]) != np.shape(ref[k]):
            flag = f"  <-- mlc shape {list(np.shape(grads[k]))}"
        rows.append((k, shape, en, ee, e32, flag, zero))
        good = good and not flag
    return rows, good


def worst(rows):
    known = [r for r in rows if r[2] is not None]
    return max([r[2] for r in known] + [0.0]), max([r[3] for r in known] + [0.0])


MAX_TRIALS = 100  # kink candidates explain() tries, closest first


def explain(nodes, rets, weights, batch, grads, ref, names, pnames, cands, opt):
    """Which near-kink decisions did mlc take the other way? Greedily, closest
    to the kink first, takes a candidate when the change it makes to the float64
    gradients (all tensors, each weighted by 1/||ref||) points along mlc's
    remaining difference (<r, d> > 0.75 <d, d>: it removes most of itself from
    the residual), until everything is within tolerance. Returns the adjusted
    reference and the decisions taken. A genuine bug does not look like a set
    of single-position gradient reroutings at decisions within NEAR (2e-6) of a kink."""
    keys = [k for k in names if k != "loss" and k in grads and np.shape(grads[k]) == np.shape(ref[k])]
    wt = {k: 1.0 / max(float(np.linalg.norm(ref[k])), 1e-30) ** 2 for k in keys}
    cur, flips, taken = ref, {}, []
    resid = {k: np.asarray(grads[k], np.float64) - ref[k] for k in keys}
    f32_dummy = {k: ref[k] for k in names}
    for c in sorted(cands)[:MAX_TRIALS]:
        _, nref, _, _, idx = c
        trial = {k: set(v) for k, v in flips.items()}
        trial.setdefault(nref, set()).add(idx)
        g, _, _ = torch_grads(nodes, rets, weights, batch, torch.float64, Kinks(flips=trial))
        d = {k: g[k] - cur[k] for k in keys}
        dd = sum(wt[k] * float((d[k] * d[k]).sum()) for k in keys)
        rd = sum(wt[k] * float((resid[k] * d[k]).sum()) for k in keys)
        if dd > 0 and rd > 0.75 * dd:
            flips, cur, taken = trial, g, taken + [c]
            resid = {k: np.asarray(grads[k], np.float64) - g[k] for k in keys}
            if compare(grads, cur, f32_dummy, names, pnames, opt)[1]:
                break
    return cur, taken


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlc", required=True, help="the mlc binary")
    ap.add_argument("--ops", default=DEFAULT_OPS_DEF, help="ir/ops.def (attribute defaults)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--floor", type=float, default=0.1, help="of max|ref|, for small entries")
    ap.add_argument("--batch", type=int, default=16, help="samples in the compared batch")
    ap.add_argument("--samples", type=int, default=64, help="samples in the generated data set")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--weights", choices=("mlc", "random"), default="mlc",
                    help="mlc: one epoch of mlc run on the data; random: written here")
    ap.add_argument("--zero-dropout", action="store_true",
                    help="check a copy of the spec with every dropout's p set to 0 (else refused)")
    ap.add_argument("--threads", type=int, default=1, help="mlc's --threads (1: reproducible rounding)")
    ap.add_argument("--no-explain", dest="explain", action="store_false",
                    help="do not look for kink decisions that explain a difference")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    ap.add_argument("targets", nargs="+", help="SPEC.yaml or SPEC.yaml@BATCH")
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions for the reference
    ops = read_ops_def(a.ops)
    passed = failed = 0
    for t in a.targets:
        spec, _, b = t.partition("@")
        label = os.path.splitext(os.path.basename(spec))[0]
        if sum(os.path.basename(u.partition("@")[0]) == os.path.basename(spec) for u in a.targets) > 1:
            label = os.path.basename(os.path.dirname(os.path.abspath(spec))) + "/" + label  # bench/resnet
        print(f"== {label} ({t})")
        work = tempfile.mkdtemp(prefix="mlc_irtorch_")
        try:
            ok = check(a, ops, spec, int(b) if b else a.batch, work)
        except (Unsupported, IRError, RuntimeError, OSError, KeyError, ValueError, st.FormatError,
                subprocess.TimeoutExpired) as e:
            print(f"  {type(e).__name__}: {e}")
            ok = False
        print(f"{'PASS' if ok else 'FAIL'} {label}")
        passed, failed = passed + ok, failed + (not ok)
        if a.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
