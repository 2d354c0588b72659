#!/usr/bin/env bash
# numerics.sh MLC SRC — numerical faults as a user meets them: --check-numerics
# names the first non-finite value's op, layer, location and pass (forward,
# backward) in training, evaluation and prediction, the inputs that already
# held one; without it, the training loop's
# divergence rule stops at the step with a hint. The messages are compared
# with tests/numerics/*.err (MLC_UPDATE_GOLDEN=1 rewrites them).
set -uo pipefail
mlc=$1 src=$2
cd "$src/tests"
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

# golden NAME: exit 2 and stderr equal to numerics/NAME.err
golden() {
	local exp=numerics/$1.err
	if [ "${MLC_UPDATE_GOLDEN:-}" = 1 ]; then cp "$tmp/err" "$exp"; fi
	[ $rc -eq 2 ] || { bad "$1: exit $rc, want 2: $err"; return; }
	diff -u "$exp" "$tmp/err" >"$tmp/diff" && ok || { bad "$1: stderr differs from $exp"; cat "$tmp/diff"; }
}

# Backward first: bce on a linear output keeps the forward pass finite (the
# logs are clamped) while its gradient overflows. Unchecked, the clamped loss
# stays finite over NaN weights: the epoch-end scan of the parameters stops
# the run, and no weights are saved; checked, bce_grad is named, fused or not.
run "$mlc" run --threads 1 numerics/bce_linear.yaml --quiet --save "$tmp/bce.safetensors"; golden bce_params
[ ! -e "$tmp/bce.safetensors" ] && ok || bad "bce_linear saved non-finite weights"
run "$mlc" run --threads 1 --check-numerics numerics/bce_linear.yaml; golden bce_backward
run "$mlc" run --threads 1 --check-numerics --no-fuse numerics/bce_linear.yaml; golden bce_backward_nofuse
run "$mlc" run --threads 2 --check-numerics numerics/bce_linear.yaml
[ $rc -eq 2 ] && [[ $err == *"in the backward pass: bce_grad in layer 'loss'"* ]] && ok || bad "bce_linear at 2 threads: $err"

# Forward: a target near the float maximum overflows the squared error.
run "$mlc" run --check-numerics numerics/huge_target.yaml; golden huge_target
run "$mlc" run numerics/huge_target.yaml; golden huge_target_unchecked

# Forward, with the input to blame: a NaN planted in saved weights.
"$mlc" run ../examples/xor.yaml --epochs 1 --quiet --save "$tmp/w.safetensors" >/dev/null || bad "xor --save"
plant() { # TENSOR ELEMENT OUT: a copy of the saved weights with a NaN planted
	python3 - "$tmp/w.safetensors" "$3" "$1" "$2" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
at = 8 + n + json.loads(b[8:8 + n])[sys.argv[3]]["data_offsets"][0] + 4 * int(sys.argv[4])
b[at:at + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(b)
PY
}
plant out.weight 1 "$tmp/nan.safetensors"
plant out.bias 0 "$tmp/nan_bias.safetensors"
run "$mlc" run --check-numerics --weights "$tmp/nan.safetensors" ../examples/xor.yaml; golden nan_weight
run "$mlc" grad --check-numerics --weights "$tmp/nan.safetensors" ../examples/xor.yaml -o "$tmp/g.safetensors"
golden nan_weight_grad
[ ! -e "$tmp/g.safetensors" ] && ok || bad "grad wrote gradients after a numerics error"
run "$mlc" run --weights "$tmp/nan.safetensors" ../examples/xor.yaml; golden nan_weight_unchecked
# In a fused kernel the bias sum stays in registers: the first stored value
# with the NaN is the sigmoid's, the kernel's last member.
run "$mlc" run --check-numerics --weights "$tmp/nan_bias.safetensors" ../examples/xor.yaml; golden nan_bias
run "$mlc" run --check-numerics --no-fuse --weights "$tmp/nan_bias.safetensors" ../examples/xor.yaml; golden nan_bias_nofuse

# Evaluation and prediction: the same check in their forward passes (--eval,
# --predict, the validation set after an epoch, K-fold's held-out fold).
run "$mlc" run --eval --check-numerics --weights "$tmp/nan.safetensors" ../examples/xor.yaml; golden nan_weight_eval
run "$mlc" run --predict "$tmp/p.csv" --check-numerics --weights "$tmp/nan.safetensors" ../examples/xor.yaml
golden nan_weight_predict
[ ! -e "$tmp/p.csv" ] && ok || bad "--predict wrote predictions after a numerics error"
run "$mlc" run --eval --weights "$tmp/nan.safetensors" ../examples/xor.yaml
[ $rc -eq 0 ] && [[ $out == "test: loss "*nan* ]] && ok || bad "unchecked eval of nan weights: $rc $out $err"
run "$mlc" run --check-numerics numerics/huge_val.yaml; golden huge_val
run "$mlc" run numerics/huge_val.yaml --quiet
[ $rc -eq 0 ] && ok || bad "huge_val unchecked: exit $rc: $err"
run "$mlc" run --check-numerics --kfold 2 numerics/huge_target.yaml
[ $rc -eq 2 ] && [[ $err == *"in the forward pass: mse in layer 'loss', the result 'loss' (%11 f32[]) in the evaluation of the held-out fold 1/2 after epoch 1, batch 1 (samples 1-2 of 2)"* ]] &&
	ok || bad "kfold held-out fold: $rc $err"

# Divergence: a finite loss 10^4 times the first step's stops the run at once.
run "$mlc" run numerics/mse_lr.yaml; golden mse_lr
run "$mlc" run numerics/mse_lr.yaml --lr 0.1 --quiet
[ $rc -eq 0 ] && ok || bad "mse_lr at lr 0.1 diverged: $err"

# Checking changes no result: the same losses with and without.
run "$mlc" run ../examples/xor.yaml --epochs 50 --quiet; a=$out
run "$mlc" run ../examples/xor.yaml --epochs 50 --quiet --check-numerics
[ $rc -eq 0 ] && [ "$out" = "$a" ] && ok || bad "--check-numerics changed the result: '$a' vs '$out' $err"
for mode in --eval "--predict -"; do
	run "$mlc" run ../examples/xor.yaml --weights "$tmp/w.safetensors" $mode; a=$out
	run "$mlc" run ../examples/xor.yaml --weights "$tmp/w.safetensors" $mode --check-numerics
	[ $rc -eq 0 ] && [ -n "$a" ] && [ "$out" = "$a" ] && ok || bad "$mode --check-numerics changed the result: '$a' vs '$out' $err"
done
run "$mlc" run ../examples/xor.yaml --epochs 30 --quiet --kfold 2; a=$out
run "$mlc" run ../examples/xor.yaml --epochs 30 --quiet --kfold 2 --check-numerics
[ $rc -eq 0 ] && [ "$out" = "$a" ] && ok || bad "--kfold --check-numerics changed the result: '$a' vs '$out' $err"
run "$mlc" grad ../examples/xor.yaml -o "$tmp/g1.safetensors"
run "$mlc" grad --check-numerics ../examples/xor.yaml -o "$tmp/g2.safetensors"
[ $rc -eq 0 ] && cmp -s "$tmp/g1.safetensors" "$tmp/g2.safetensors" && ok || bad "grad --check-numerics differs: $err"
run "$mlc" run --help; [[ $out == *--check-numerics* ]] && ok || bad "run --help lacks --check-numerics"
run "$mlc" grad --help; [[ $out == *--check-numerics* ]] && ok || bad "grad --help lacks --check-numerics"

echo "numerics: $pass passed, $fail failed"
[ $fail -eq 0 ]
