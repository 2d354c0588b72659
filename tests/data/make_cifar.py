#!/usr/bin/env python3
"""Writes a small synthetic data set in CIFAR-10's binary format (1 label byte,
then 1024 red, 1024 green and 1024 blue bytes per record) that a CNN can learn
in an epoch or two: class k is noise plus a 10x10 square of its own colour at
a random place (so models that pool globally can learn it too).
Usage: make_cifar.py OUT.bin COUNT SEED"""
import random
import sys

# Ten colours, each channel 0, 110 or 220, pairwise different.
PALETTE = [(220, 0, 0), (0, 220, 0), (0, 0, 220), (220, 220, 0), (220, 0, 220),
           (0, 220, 220), (220, 220, 220), (110, 0, 220), (220, 110, 0), (0, 110, 110)]


def record(rng, k):
    row, col = rng.randrange(0, 23), rng.randrange(0, 23)
    planes = []
    for c in range(3):
        px = bytearray(rng.randrange(0, 60) for _ in range(1024))
        for i in range(row, row + 10):
            for j in range(col, col + 10):
                px[i * 32 + j] = PALETTE[k][c]
        planes.append(bytes(px))
    return bytes([k]) + b"".join(planes)


def main():
    out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    with open(out, "wb") as f:
        for i in range(count):
            f.write(record(rng, i % 10))


if __name__ == "__main__":
    main()
