#!/usr/bin/env bash
# examples.sh MLC SRC — every example checks and trains, reaching its target
# accuracy, so the examples cannot rot. Fashion-MNIST ones run one epoch.
set -uo pipefail
mlc=$1
cd "$2/examples"
pass=0 fail=0

# accuracy of the "test:" line
test_acc() { awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }'; }

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
	if "$mlc" check "$spec" >/dev/null; then pass=$((pass + 1)); else echo "FAIL check $spec"; fail=$((fail + 1)); fi
done

expect xor 1.0 xor.yaml --quiet
expect perceptron 0.96 perceptron.yaml --quiet
expect logistic 0.80 logistic.yaml --quiet
expect softmax_regression 0.75 softmax_regression.yaml --epochs 1 --quiet
expect fashion_mlp 0.80 fashion_mlp.yaml --epochs 1 --quiet

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
