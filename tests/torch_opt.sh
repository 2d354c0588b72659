#!/usr/bin/env bash
# torch_opt.sh MLC SRC — mlc's optimizers (sgd and its weight decay, adam,
# adamw, rmsprop, adagrad, adadelta), gradient clipping, lr_mult, L1/L2
# penalties and loss lists against torch.optim (tests/torch/opt_check.py):
# 5 steps on one fixed batch from the same weights, updated weights equal to
# 1e-5 relative.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
	echo "torch_opt: $py cannot import torch and numpy; install python3-torch python3-numpy" \
	     "(./setup.sh test does)"
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$py" "$src/tests/torch/opt_check.py" --mlc "$mlc"
