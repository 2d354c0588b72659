#!/usr/bin/env bash
# torch_frozen_bn.sh MLC SRC — a frozen batchnorm (trainable: false: Keras's
# inference mode) against PyTorch:
#  1. tests/torch/frozen_bn_check.py: 5 SGD steps against bn.eval() +
#     requires_grad_(False): losses, final weights and running statistics to
#     1e-5 relative, the frozen layer's tensors bit-identical, with and
#     without fusion;
#  2. tests/torch/ir_torch.py on tests/parallel/frozen_batchnorm.yaml with
#     random weights (running statistics away from 0 and 1): `mlc grad`'s loss,
#     parameter and input gradients through batchnorm {inference=1} against
#     autograd in float64.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_frozen_bn: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
"$py" "$src/tests/torch/frozen_bn_check.py" --mlc "$mlc"
a=$?
"$py" "$src/tests/torch/ir_torch.py" --mlc "$mlc" --ops "$src/ir/ops.def" --weights random \
	"$src/tests/parallel/frozen_batchnorm.yaml"
b=$?
[ $a -eq 0 ] && [ $b -eq 0 ]
