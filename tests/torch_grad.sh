#!/usr/bin/env bash
# torch_grad.sh MLC SRC — `mlc grad` against PyTorch autograd (tests/torch/grad_check.py):
# the Fashion-MNIST MLP on its real data (first 64 samples) — the acceptance
# criterion "agrees with autograd on the same weights and batch to 1e-4
# relative" — plus the small examples (graph form, sigmoid+BCE, the step's
# straight-through gradient) and generated CSV cases for the other activations,
# losses and spec forms (hinge, mae, bce with logits, categorical cross-entropy
# on probabilities and kl_div among them).
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy, yaml' 2>/dev/null; then
	echo "torch_grad: $py cannot import torch, numpy and yaml; install python3-torch python3-numpy" \
	     "python3-yaml (./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
fashion=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -r "$fashion" ]; then
	echo "torch_grad: $fashion is missing; install dataset-fashion-mnist (./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi

# One python process for every case: importing torch costs seconds.
exec "$py" "$src/tests/torch/grad_check.py" --mlc "$mlc" \
	"$src/examples/fashion_mlp.yaml@64" \
	"$src/examples/xor.yaml" "$src/examples/logistic.yaml" "$src/examples/perceptron.yaml" \
	gen:sigmoid_mse gen:tanh_bce gen:leaky_relu_xent gen:residual_softmax \
	gen:hinge gen:mae gen:bce_logits gen:bce_logits_sigmoid gen:categorical gen:kl_div
