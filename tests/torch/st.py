"""st.py — safetensors files read and written by hand with numpy.

The `safetensors` package is not available here, and the format is small:
an 8-byte little-endian header length, a JSON header mapping each tensor's
name to {dtype, shape, data_offsets: [begin, end)} (offsets relative to the
end of the header) plus an optional "__metadata__" of string pairs, then the
raw little-endian data.
"""
import json
import struct

import numpy as np

_DTYPES = {name: np.dtype(code) for name, code in [
    ("F64", "<f8"), ("F32", "<f4"), ("F16", "<f2"),
    ("I64", "<i8"), ("I32", "<i4"), ("I16", "<i2"), ("I8", "i1"), ("U8", "u1")]}


class FormatError(Exception):
    pass


def read(path):
    """Returns ({name: ndarray}, {metadata}) with tensors in file order."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError(f"{path}: shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > len(blob) - 8:
        raise FormatError(f"{path}: header length {hlen} runs past the end of the file")
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: header is not JSON: {e}") from None
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + hlen:]
    out = {}
    # Order by data offset, which is the order the writer laid tensors out.
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise FormatError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(int(d) for d in info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end > len(data) or end - begin != count * np.dtype(dt).itemsize:
            raise FormatError(f"{path}: tensor '{name}' data_offsets {begin}..{end} do not fit "
                              f"shape {list(shape)} of {info['dtype']}")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).copy()
    return out, meta


def write(path, tensors, meta=None):
    """Writes {name: ndarray} in the given order; meta is {str: str}."""
    header, chunks, offset = {}, [], 0
    if meta:
        header["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    for name, a in tensors.items():
        a = np.asarray(a)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        dt = next((k for k, v in _DTYPES.items() if v == a.dtype), None)
        if dt is None:
            raise FormatError(f"tensor '{name}': dtype {a.dtype} has no safetensors name here")
        raw = a.tobytes(order="C")
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # keeps the data 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
