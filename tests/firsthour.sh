#!/usr/bin/env bash
# firsthour.sh MLC SRC — what a new user meets in the first hour (issue 13):
# no predictions from untrained weights, targets and data checked against the
# model up front, readable tables and predictions, plurals, docs that are true.
set -uo pipefail
mlc=$1 src=$2
cd "$src/tests"
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run, refused
ex=$src/examples

# 1. --eval without --weights is refused with the hint; --predict without
# --weights trains first and says so; with --weights it trains nothing.
refused "--eval without --weights" "--eval evaluates trained weights: pass --weights FILE" \
	-- "$mlc" run "$ex/xor.yaml" --eval
refused "--kfold with --predict" "it cannot be combined with --predict" \
	-- "$mlc" run "$ex/xor.yaml" --kfold 2 --predict "$tmp/k.csv"
run "$mlc" run "$ex/xor.yaml" --predict "$tmp/p.csv" --save "$tmp/w.safetensors" --epochs 300 --lr 0.5
[ $rc -eq 0 ] && [[ $out == "no --weights given: training first, then predicting"* && $out == *"trained 300 epochs"* ]] \
	&& ok "--predict without --weights trains first" || bad "--predict without --weights" "$out" "$err"
run "$mlc" run "$ex/xor.yaml" --eval --weights "$tmp/w.safetensors"
[ $rc -eq 0 ] && [[ $out == *"accuracy 1.0000"* ]] && ok "--save after --predict wrote the trained weights" \
	|| bad "--save after --predict" "$out" "$err"
run "$mlc" run "$ex/xor.yaml" --predict "$tmp/q.csv" --weights "$tmp/w.safetensors"
[ $rc -eq 0 ] && [[ $out != *epoch* ]] && cmp -s "$tmp/p.csv" "$tmp/q.csv" && ok "--predict --weights trains nothing" \
	|| bad "--predict --weights" "$out" "$err"
run "$mlc" run "$ex/xor.yaml" --eval --predict "$tmp/r.csv" --weights "$tmp/w.safetensors"
[ $rc -eq 0 ] && [[ $out == *"test: loss"* ]] && cmp -s "$tmp/p.csv" "$tmp/r.csv" && ok "--eval and --predict together" \
	|| bad "--eval --predict" "$out" "$err"

# 8. English: one epoch, one gradient.
run "$mlc" run "$ex/xor.yaml" --epochs 1
[ $rc -eq 0 ] && [[ $out == *"trained 1 epoch in"* ]] && ok "trained 1 epoch" || bad "plural of epoch" "$out"
cat >"$tmp/one.yaml" <<'YAML'
name: one
inputs:
  x: {shape: [2]}
layers:
  - dense: 1
    bias: false
loss: mse
data:
  format: csv
  train: one.csv
YAML
printf '1,2,3\n' >"$tmp/one.csv"
run "$mlc" grad "$tmp/one.yaml" -o "$tmp/g.safetensors"
[ $rc -eq 0 ] && [[ $out$err == *"over 1 sample; 1 gradient written"* ]] && ok "1 gradient written" || bad "plural of gradient" "$out" "$err"

# 5. mlc check's table: a layer with l1:/l2: shows its output, not the
# penalty's scalar; every row as long as the rule (columns from the content).
cat >"$tmp/long.yaml" <<'YAML'
name: long
inputs:
  x: {shape: [8]}
layers:
  - dense: 4
    activation: leaky_relu
    l1: 1.0e-5
    l2: 1.0e-5
  - dropout: 0.5
  - dense: 3
    activation: softmax
loss: categorical_cross_entropy
YAML
for spec in "$tmp/long.yaml" "$ex/regularized_mlp.yaml" "$ex/resnet.yaml"; do
	run "$mlc" check "$spec"
	widths=$(echo "$out" | awk '/^-+$/ { t = 1; w = length($0); next } /^=+$/ { t = 0 } t && length($0) != w { print NR": "length($0)" != "w }')
	[ $rc -eq 0 ] && [ -z "$widths" ] && ok "$spec: table columns line up" || bad "$spec: table rows overrun" "$widths" "$out"
done
run "$mlc" check "$ex/regularized_mlp.yaml"
got=$(echo "$out" | awk '$1 ~ /^dense[12]$/ { printf "%s %s/%s ", $1, $(NF-1), $NF }')
[ "$got" = "dense1 256/200,960 dense2 10/2,570 " ] && [[ $out == *"bias_add, relu, sumsq, add "* ]] \
	&& ok "l1/l2 layers show their output shape" || bad "l1/l2 layer shapes: $got" "$out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
