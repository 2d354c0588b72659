#!/usr/bin/env python3
"""safetensors_read.py — reads mlc's weights (--save), checkpoints and
gradients (mlc grad) with Python's standard library alone: Debian 12 ships
no `safetensors` package. The format: an 8-byte little-endian header length,
a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
then the raw little-endian data.

    import safetensors_read as st
    t = st.load("w.safetensors")            # {name: (shape, array('f'))}
    w = st.to_torch(t)["dense1.weight"]     # with python3-torch: torch.Tensor
    python3 tools/safetensors_read.py w.safetensors   # names, shapes, sums
"""
import array
import json
import struct
import sys

_TYPECODES = {"F32": "f", "F64": "d", "I32": "i", "I64": "q", "U8": "B", "I8": "b"}


def load(path):
    """{name: (shape, array)} of every tensor; the metadata is skipped."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        code = _TYPECODES.get(v["dtype"])
        if code is None:
            raise ValueError(f"{path}: tensor '{name}' has dtype {v['dtype']}, which this reader does not know")
        begin, end = v["data_offsets"]
        a = array.array(code)
        a.frombytes(raw[8 + n + begin : 8 + n + end])
        if sys.byteorder == "big":
            a.byteswap()
        count = 1
        for d in v["shape"]:
            count *= d
        if len(a) != count:
            raise ValueError(f"{path}: tensor '{name}' has {len(a)} values, its shape {v['shape']} needs {count}")
        out[name] = (list(v["shape"]), a)
    return out


def to_torch(tensors):
    """The same tensors as torch.Tensor (python3-torch), shaped."""
    import torch

    return {k: torch.tensor(a.tolist()).reshape(shape) for k, (shape, a) in tensors.items()}


def main(argv):
    if len(argv) != 2:
        print("usage: safetensors_read.py FILE.safetensors", file=sys.stderr)
        return 2
    try:
        tensors = load(argv[1])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, (shape, a) in tensors.items():
        print(f"{name} {'x'.join(map(str, shape)) or 'scalar'} sum {sum(a):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
