#!/usr/bin/env bash
# torch_distill.sh MLC SRC — the distillation loss (loss: {type: distillation})
# and its gradients against PyTorch in float64 (tests/torch/distill_check.py).
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_distill: $py cannot import torch and numpy; install python3-torch python3-numpy (./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$py" "$src/tests/torch/distill_check.py" --mlc "$mlc"
