#!/usr/bin/env python3
"""Regenerates the small CSV data sets the examples use (deterministic)."""
import math
import random
from pathlib import Path

HERE = Path(__file__).parent


def write(name, header, rows):
    with open(HERE / name, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r) + "\n")


def main():
    write("xor.csv", ["a", "b", "y"], [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)])
    rng = random.Random(7)
    # Linearly separable: label = 1 iff 2a - b + 0.3 > 0, with a margin of 0.1.
    pts = []
    while len(pts) < 200:
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        s = 2 * a - b + 0.3
        if abs(s) > 0.1:
            pts.append((a, b, 1 if s > 0 else 0))
    write("separable_train.csv", ["a", "b", "y"], pts[:150])
    write("separable_test.csv", ["a", "b", "y"], pts[150:])
    # Two overlapping Gaussian blobs in 4-D for logistic regression.
    rows = []
    for i in range(600):
        y = i % 2
        mu = 0.8 if y else -0.8
        rows.append(tuple(rng.gauss(mu * w, 1.0) for w in (1.0, 0.5, -0.5, 0.25)) + (y,))
    write("blobs_train.csv", ["f1", "f2", "f3", "f4", "y"], rows[:500])
    write("blobs_test.csv", ["f1", "f2", "f3", "f4", "y"], rows[500:])
    # More of the same blobs, drawn after the rest (which stay as they were):
    # a separate validation file (examples/validation_file.yaml).
    val = []
    for i in range(200):
        y = i % 2
        mu = 0.8 if y else -0.8
        val.append(tuple(rng.gauss(mu * w, 1.0) for w in (1.0, 0.5, -0.5, 0.25)) + (y,))
    write("blobs_val.csv", ["f1", "f2", "f3", "f4", "y"], val)


if __name__ == "__main__":
    main()
