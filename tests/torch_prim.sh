#!/usr/bin/env bash
# torch_prim.sh MLC SRC — `mlc grad` on specs written with the primitive ops
# (docs/spec.md, "Primitive ops", "Loss terms") against PyTorch autograd in
# float64, evaluating mlc's own forward IR op by op (tests/torch/ir_torch.py):
# every differentiable primitive on one path (tests/torch/specs/primitives.yaml)
# and the VAE's KL term weighted next to mse in a loss list (vae_kl.yaml).
# Loss, every parameter gradient and the input gradient must agree to 1e-4.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_prim: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
specs=$src/tests/torch/specs
exec "$py" "$src/tests/torch/ir_torch.py" --mlc "$mlc" --ops "$src/ir/ops.def" \
	"$specs/primitives.yaml" "$specs/vae_kl.yaml"
