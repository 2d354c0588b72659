#!/usr/bin/env bash
# validation.sh MLC SRC — data.validation: a separate validation set used
# for the per-epoch val_ metrics (equal to an evaluation of the same file),
# early stopping and reduce_on_plateau; its file errors; and that it is
# exclusive with validation_split.
set -uo pipefail
mlc=$1 src=$2
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

data=$src/examples/data
spec() { # NAME, extra data: lines[, epochs[, extra optimizer keys]] -> $tmp/NAME.yaml
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  x: {shape: [4]}
layers:
  - dense: 1
    activation: sigmoid
loss: binary_cross_entropy
optimizer: {type: sgd, lr: 0.1${4:-}}
data:
  format: csv
  train: $data/blobs_train.csv
  test: $data/blobs_test.csv
  batch_size: 16
  epochs: ${3:-4}
  shuffle: false
$2
YAML
}

# validation = the test file: the last epoch's val_ numbers are the test
# evaluation's, to the last digit (same parameters, same samples, same order)
spec same "  validation: $data/blobs_test.csv"
run "$mlc" run "$tmp/same.yaml" --log "$tmp/same.jsonl"
if [ $rc -eq 0 ]; then
	[ "$(grep -c '"val_loss"' "$tmp/same.jsonl")" -eq 4 ] && ok || bad "not 4 epochs with val_loss: $(cat "$tmp/same.jsonl")"
	python3 - "$tmp/same.jsonl" <<'PY' && ok || bad "last val_ != test"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
last, test = lines[-2], lines[-1]["test"]
assert last["epoch"] == 4, last
assert last["val_loss"] == test["loss"] and last["val_acc"] == test["acc"], (last, test)
PY
	[[ $out == *"epoch 4/4"*"val_loss"*"val_acc"* ]] && ok || bad "epoch line without val_: $out"
else
	bad "run with validation: exit $rc: $err"
fi

# training itself is the same as without a validation set (nothing held out)
spec none ""
run "$mlc" run "$tmp/none.yaml" --log "$tmp/none.jsonl"
a=$(python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1]) if "epoch" in l])' "$tmp/same.jsonl")
b=$(python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1]) if "epoch" in l])' "$tmp/none.jsonl")
[ $rc -eq 0 ] && [ "$a" = "$b" ] && ok || bad "training losses differ with a validation file: $a vs $b"

# early stopping and reduce_on_plateau watch it (no validation_split needed):
# with the test set's labels flipped, the validation loss grows from the
# first epoch on while the training loss falls
awk -F, 'NR == 1 { print; next } { $NF = 1 - $NF; print }' OFS=, "$data/blobs_test.csv" >"$tmp/flipped.csv"
spec early "  validation: $tmp/flipped.csv
  early_stopping: {monitor: val_loss, patience: 2}" 50 ", schedule: {type: reduce_on_plateau, patience: 0, factor: 0.5}"
run "$mlc" run "$tmp/early.yaml"
[ $rc -eq 0 ] && [[ $out == *"early stopping: val_loss has not improved for 2 epochs; stopped after epoch 3, best epoch 1"* ]] && ok || bad "early stopping on the validation file: $rc $out $err"
[[ $out == *"restored the weights of epoch 1: val_loss"* ]] && ok || bad "no restored val_loss: $out"
[[ $out == *"epoch 2/50"*"lr 0.1 "*"epoch 3/50"*"lr 0.05 "* ]] && ok || bad "reduce_on_plateau did not lower the rate after epoch 2: $out"

# a validation file that is missing, or does not fit the model
spec missing "  validation: $tmp/nope.csv"
run "$mlc" run "$tmp/missing.yaml"
[ $rc -eq 2 ] && [[ $err == *"missing.yaml:16:15: error: cannot open data file '$tmp/nope.csv'"* ]] && ok || bad "missing validation file: $rc $err"
printf 'a,b,y\n1,2,0\n' >"$tmp/narrow.csv"
spec narrow "  validation: $tmp/narrow.csv"
run "$mlc" run "$tmp/narrow.yaml"
[ $rc -eq 2 ] && [[ $err == *"narrow.yaml:16:15: error: '$tmp/narrow.csv' has 2 features per sample"* ]] && ok || bad "narrow validation file: $rc $err"

# both validation and validation_split: a located error at the second
spec both "  validation_split: 0.2
  validation: $data/blobs_test.csv"
run "$mlc" check "$tmp/both.yaml"
[ $rc -eq 2 ] && [[ $err == *"both.yaml:17:3: error: give either 'validation' (a separate data set) or 'validation_split'"* ]] && ok || bad "both: $rc $err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
