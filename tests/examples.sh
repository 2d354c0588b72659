#!/usr/bin/env bash
# examples.sh MLC SRC — every example checks and trains, reaching its target
# accuracy, so the examples cannot rot. Fashion-MNIST ones run one epoch.
set -uo pipefail
mlc=$1
cd "$2/examples"
pass=0 fail=0

# accuracy of the "test:" line
test_acc() { awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }'; }

# the loss of the "test:" line
test_loss() { awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "loss") print $(i + 1) }'; }

expect_loss() { # name, max test loss, mlc run args... (the autoencoders: no accuracy)
	local name=$1 max=$2; shift 2
	local out loss
	if ! out=$("$mlc" run "$@" 2>&1); then
		echo "FAIL $name: mlc run $* exited non-zero"; echo "$out"; fail=$((fail + 1)); return
	fi
	loss=$(echo "$out" | test_loss)
	if [ -n "$loss" ] && awk -v l="$loss" -v m="$max" 'BEGIN { exit !(l <= m) }'; then
		echo "ok   $name: test loss $loss <= $max"; pass=$((pass + 1))
	else
		echo "FAIL $name: test loss '${loss}' > $max"; echo "$out"; fail=$((fail + 1))
	fi
}

expect() { # name, min accuracy, mlc run args...
	local name=$1 min=$2; shift 2
	local out acc
	if ! out=$("$mlc" run "$@" 2>&1); then
		echo "FAIL $name: mlc run $* exited non-zero"; echo "$out"; fail=$((fail + 1)); return
	fi
	acc=$(echo "$out" | test_acc)
	if [ -n "$acc" ] && awk -v a="$acc" -v m="$min" 'BEGIN { exit !(a >= m) }'; then
		echo "ok   $name: test accuracy $acc >= $min"; pass=$((pass + 1))
	else
		echo "FAIL $name: test accuracy '${acc}' < $min"; echo "$out"; fail=$((fail + 1))
	fi
}

for spec in *.yaml; do
	# need trained weights: transfer_head is checked by transfer.sh, distill below
	[ "$spec" = transfer_head.yaml ] || [ "$spec" = distill.yaml ] && continue
	# CIFAR-10 is not packaged: without its files, the model only (the copies below check theirs)
	nodata=() && grep -q 'format: cifar10' "$spec" && [ ! -d data/cifar-10-batches-bin ] && nodata=(--no-data)
	if "$mlc" check "${nodata[@]}" "$spec" >/dev/null; then pass=$((pass + 1)); else echo "FAIL check $spec"; fail=$((fail + 1)); fi
done

# CIFAR-10 is not packaged: the CNN examples train on a small synthetic set in
# CIFAR's binary format (tests/data/make_cifar.py), through a copy of the spec
# whose data: section points at it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$2/tests/data/make_cifar.py" "$tmp/train.bin" 1000 1
python3 "$2/tests/data/make_cifar.py" "$tmp/test.bin" 200 2
synth() { # SPEC -> path of the copy
	local out=$tmp/$(basename "$1")
	sed '/^data:/,$d' "$1" >"$out"
	printf 'data:\n  format: cifar10\n  train: %s\n  test: %s\n  scale: 0.00392156862745098\n  batch_size: 32\n  epochs: 2\n' \
		"$tmp/train.bin" "$tmp/test.bin" >>"$out"
	echo "$out"
}

expect xor 1.0 xor.yaml --quiet
expect perceptron 0.96 perceptron.yaml --quiet
expect logistic 0.80 logistic.yaml --quiet
expect early_stopping 0.80 early_stopping.yaml --quiet
expect aux_classifier 0.80 aux_classifier.yaml --quiet
expect softmax_regression 0.75 softmax_regression.yaml --epochs 1 --quiet
expect fashion_mlp 0.80 fashion_mlp.yaml --epochs 1 --quiet
expect fashion_adam 0.80 fashion_adam.yaml --epochs 1 --quiet
expect fashion_rmsprop 0.80 fashion_rmsprop.yaml --epochs 1 --quiet
expect fashion_adadelta 0.80 fashion_adadelta.yaml --epochs 1 --quiet
expect linear_softmax 0.75 linear_softmax.yaml --epochs 1 --quiet
expect linear_svm 0.70 linear_svm.yaml --epochs 1 --quiet
if out=$(bash linear_classifiers.sh "$mlc" --epochs 1) && [ "$(echo "$out" | grep -c 'test accuracy 0\.[7-9]')" -eq 2 ]; then
	echo "ok   linear_classifiers.sh: $(echo $out)"; pass=$((pass + 1))
else
	echo "FAIL linear_classifiers.sh"; echo "$out"; fail=$((fail + 1))
fi
expect validation_file 0.80 validation_file.yaml --quiet
expect regularized_mlp 0.78 regularized_mlp.yaml --epochs 1 --quiet
expect lenet 0.80 lenet.yaml --epochs 1 --quiet --save "$tmp/lenet.safetensors"
# distill.yaml's teacher is lenet, with the weights just saved beside a copy
cp distill.yaml lenet.yaml "$tmp/"
if "$mlc" check "$tmp/distill.yaml" >/dev/null; then pass=$((pass + 1)); else echo "FAIL check distill.yaml"; fail=$((fail + 1)); fi
expect distill 0.80 "$tmp/distill.yaml" --epochs 1 --quiet
# one epoch measured: mse 0.0195, 0.0212; negative ELBO 262.7 per image
expect_loss autoencoder 0.025 autoencoder.yaml --epochs 1 --quiet
expect_loss denoising_autoencoder 0.027 denoising_autoencoder.yaml --epochs 1 --quiet
expect_loss vae 275 vae.yaml --epochs 1 --quiet
expect cifar_cnn 0.95 "$(synth cifar_cnn.yaml)" --epochs 6 --quiet
expect resnet 0.95 "$(synth resnet.yaml)" --quiet
expect inception 0.95 "$(synth inception.yaml)" --epochs 8 --quiet

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
