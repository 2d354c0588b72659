#!/usr/bin/env python3
"""same_tensors.py A B: exit 0 when safetensors files A and B hold the same
tensors (names, shapes and every value bit for bit), whatever their order
in the file; else print what differs and exit 1."""
import json
import struct
import sys


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}


a, b = load(sys.argv[1]), load(sys.argv[2])
diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
if diff:
    print("tensors differ: " + ", ".join(diff))
sys.exit(1 if diff else 0)
