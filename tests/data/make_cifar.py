#!/usr/bin/env python3
"""Writes a small synthetic data set in CIFAR-10's binary format (1 label byte,
then 1024 red, 1024 green and 1024 blue bytes per record) that a CNN can learn
in an epoch or two: class k is noise plus a bright 8x8 square at a position of
its own and a tint of its own. Usage: make_cifar.py OUT.bin COUNT SEED"""
import random
import sys


def record(rng, k):
    row, col = (k // 4) * 10 + 2, (k % 4) * 8
    tint = ((k * 37) % 3)
    planes = []
    for c in range(3):
        px = bytearray(rng.randrange(0, 90) for _ in range(1024))
        for i in range(row, row + 8):
            for j in range(col, col + 8):
                px[i * 32 + j] = 200 if c == tint else 150
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
