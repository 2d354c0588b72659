#!/usr/bin/env bash
# torch_frozen_bn.sh MLC SRC — a frozen batchnorm (trainable: false: Keras's
# inference mode) trained 5 SGD steps against PyTorch with bn.eval() and
# requires_grad_(False) (tests/torch/frozen_bn_check.py): losses, final
# weights and running statistics to 1e-5 relative, the frozen layer's tensors
# bit-identical, with and without fusion.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_frozen_bn: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$py" "$src/tests/torch/frozen_bn_check.py" --mlc "$mlc"
