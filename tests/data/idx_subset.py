#!/usr/bin/env python3
"""Writes the first COUNT records of an IDX file (raw or gzip'd; MNIST's
format: magic, dimension sizes, then the records) as a raw IDX file with the
count in its header changed, so tests can train on a small slice of
Fashion-MNIST. Usage: idx_subset.py IN OUT COUNT"""
import gzip
import struct
import sys

src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
opener = gzip.open if src.endswith(".gz") else open
with opener(src, "rb") as f:
    magic = f.read(4)
    ndim = magic[3]
    dims = list(struct.unpack(">%dI" % ndim, f.read(4 * ndim)))
    if count > dims[0]:
        sys.exit("idx_subset.py: %s has only %d records" % (src, dims[0]))
    size = 1
    for d in dims[1:]:
        size *= d
    size *= {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[magic[2]]
    body = f.read(count * size)
dims[0] = count
with open(dst, "wb") as f:
    f.write(magic + struct.pack(">%dI" % ndim, *dims) + body)
