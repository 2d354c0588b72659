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

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
