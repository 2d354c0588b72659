#!/usr/bin/env bash
# perplexity.sh MLC SRC — metrics: [perplexity] on a model whose loss is the
# plain cross-entropy is exp(reported loss): per epoch on the training
# batches and the validation split, and on the test set, in the --log JSON
# and on the epoch lines. For softmax_cross_entropy and
# categorical_cross_entropy (clamped alike at 1e-7).
set -uo pipefail
mlc=$1 src=$2
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

data=$src/examples/data
spec() { # NAME, loss, output activation
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  x: {shape: [4]}
layers:
  - dense: 8
    activation: tanh
  - dense: 2
    activation: $3
loss: $2
optimizer: {type: sgd, lr: 0.5}
metrics: [accuracy, perplexity]
data:
  format: csv
  train: $data/blobs_train.csv
  test: $data/blobs_test.csv
  batch_size: 16
  epochs: 5
  validation_split: 0.2
YAML
}

check() { # NAME: every perplexity in the log is exp(its loss)
	if ! "$mlc" run "$tmp/$1.yaml" --log "$tmp/$1.jsonl" >"$tmp/$1.out" 2>&1; then
		bad "$1: mlc run failed: $(cat "$tmp/$1.out")"; return
	fi
	python3 - "$tmp/$1.jsonl" <<'PY' && ok || bad "$1: perplexity != exp(loss): $(cat "$tmp/$1.jsonl")"
import json, math, sys
n = 0
for line in open(sys.argv[1]):
    rec = json.loads(line)
    rec = rec.get("test", rec)
    for p in ("", "val_"):
        if p + "loss" in rec:
            want, got = math.exp(rec[p + "loss"]), rec[p + "perplexity"]
            assert abs(got - want) <= 1e-5 * want, (p, got, want, rec)
            n += 1
assert n == 5 * 2 + 1, n
PY
	grep -q "^epoch 5/5 .* perplexity [0-9.]* .* val_perplexity [0-9.]*" "$tmp/$1.out" && ok || bad "$1: epoch line: $(cat "$tmp/$1.out")"
	grep -q "^test: .*perplexity [0-9.]*" "$tmp/$1.out" && ok || bad "$1: test line: $(cat "$tmp/$1.out")"
}

spec softmax softmax_cross_entropy none
check softmax
spec folded softmax_cross_entropy softmax
check folded
spec categorical categorical_cross_entropy softmax
check categorical

# other losses: a located error with the reason, exit 2
spec mse mse sigmoid
"$mlc" check "$tmp/mse.yaml" >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "mse.yaml:11:21: error: perplexity is exp of the mean cross-entropy per sample, so it needs the loss softmax_cross_entropy or categorical_cross_entropy" "$tmp/out" &&
	grep -q "mse.yaml:9:1: note: this model's loss is given here" "$tmp/out" && ok || bad "mse: $rc $(cat "$tmp/out")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
