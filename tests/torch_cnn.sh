#!/usr/bin/env bash
# torch_cnn.sh MLC SRC — `mlc grad` on convolutional models against PyTorch
# autograd, evaluating mlc's own forward IR op by op (tests/torch/ir_torch.py):
# the lecture CIFAR CNN, LeNet, a bottleneck ResNet with a projection shortcut,
# an Inception module (1x1 / 3x3 / 5x5 / pool branches, concatenated), batchnorm
# in training mode, and strided / dilated / grouped convolutions with average
# pooling under "same" padding. Each on generated data and the weights of one
# `mlc run` epoch; loss, every parameter gradient and the input gradient must
# agree to 1e-4 relative (normwise and elementwise).
# The examples/ specs are used where they exist; tests/torch/specs/ holds the rest.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_cnn: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi

specs=$src/tests/torch/specs
targets=()
for ex in cifar_cnn lenet resnet inception; do # the lead's examples, when present
	if [ -f "$src/examples/$ex.yaml" ]; then
		targets+=("$src/examples/$ex.yaml")
	elif [ -f "$specs/$ex.yaml" ]; then
		targets+=("$specs/$ex.yaml")
	fi
done
# Always: the features the examples may not cover, a conv bias gradient summed
# over 65,536 rows, and the benchmarked ResNet at its benchmark batch.
targets+=("$specs/resnet_projection.yaml" "$specs/inception_module.yaml" "$specs/batchnorm.yaml"
	  "$specs/conv_variants.yaml" "$specs/conv_bias_sum.yaml" "$src/bench/resnet.yaml@32")

# One python process for every case: importing torch costs seconds. Dropout
# masks cannot be reproduced in PyTorch: specs with dropout (lenet) are checked
# with p = 0 (--zero-dropout); the mask itself is tested by the C tests.
exec "$py" "$src/tests/torch/ir_torch.py" --mlc "$mlc" --ops "$src/ir/ops.def" --zero-dropout "${targets[@]}"
