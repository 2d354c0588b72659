#!/usr/bin/env bash
# linear_classifiers.sh [MLC] [mlc run flags...] — the lecture's linear
# classifier on Fashion-MNIST, trained twice: softmax cross-entropy
# (linear_softmax.yaml) and the multiclass hinge loss + L2 (linear_svm.yaml).
# Prints both test accuracies.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mlc=${1:-$here/../build/mlc}
shift || true
for spec in linear_softmax linear_svm; do
	out=$("$mlc" run "$here/$spec.yaml" --quiet "$@")
	acc=$(echo "$out" | awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }')
	[ -n "$acc" ] || { echo "$out" >&2; echo "linear_classifiers.sh: no test accuracy from $spec" >&2; exit 1; }
	printf '%-15s test accuracy %s\n' "$spec" "$acc"
done
