#!/usr/bin/env bash
# torch_vae.sh MLC SRC — examples/vae.yaml's loss (negative ELBO per image:
# 784 × mean BCE + the KL term) and every gradient, as `mlc grad` computes
# them, against PyTorch autograd in float64 on the same weights (one epoch of
# mlc run), batch and ε: tests/torch/ir_torch.py evaluates mlc's forward IR
# and draws random_normal's ε from mlc's hash of (key, seed, step, element).
# Tolerance 1e-4 relative. The reconstruction target is the input (in [0, 1)).
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_vae: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$py" "$src/tests/torch/ir_torch.py" --mlc "$mlc" --ops "$src/ir/ops.def" --samples 256 \
	"$src/examples/vae.yaml@32"
