#!/usr/bin/env bash
# kfold.sh MLC SRC — mlc run --kfold K: per-fold lines, mean ± sample std
# (recomputed here from the per-fold log lines), fold sizes that add up to the
# training set, the same result twice from the same seed, and its errors.
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
ex=$src/examples
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

# a classifier: accuracy; blobs_train.csv has 500 samples
run "$mlc" run "$ex/logistic.yaml" --kfold 3 --epochs 3 --quiet --log "$tmp/k.jsonl"
[ $rc -eq 0 ] && ok || bad "kfold run: $rc $err"
[ "$(grep -c '^fold [123]/3: val_loss [0-9.]*  val_accuracy [0-9.]*$' "$tmp/out")" -eq 3 ] && ok || bad "fold lines: $out"
[[ $out == *"3-fold cross-validation: val_loss "*" ± "*"  val_accuracy "*" ± "* ]] && ok || bad "summary line: $out"
python3 - "$tmp/k.jsonl" "$tmp/out" <<'PY' && ok || bad "kfold log: $(cat "$tmp/k.jsonl")"
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
# each fold's epoch records (for mlc plot), then its summary
epochs = [l for l in lines if "epoch" in l]
assert [(l["fold"], l["epoch"]) for l in epochs] == [(f, e) for f in (1, 2, 3) for e in (1, 2, 3)], epochs
lines = [l for l in lines if "epoch" not in l]
folds, summary = lines[:-1], lines[-1]
n = sum(f["val_samples"] for f in folds)
assert [f["fold"] for f in folds] == [1, 2, 3] and summary["kfold"] == 3, lines
assert n == 500 and all(f["train_samples"] + f["val_samples"] == n for f in folds), lines  # blobs_train.csv
assert all(f["epochs"] == 3 for f in folds)
for key in ("val_loss", "val_acc"):
    v = [f[key] for f in folds]
    assert abs(statistics.mean(v) - summary[key + "_mean"]) < 1e-6, (key, v, summary)
    assert abs(statistics.stdev(v) - summary[key + "_std"]) < 1e-6, (key, v, summary)
PY
first=$out
run "$mlc" run "$ex/logistic.yaml" --kfold 3 --epochs 3 --quiet
[ "$out" = "$first" ] && ok || bad "kfold is not reproducible: $first vs $out"
# regression: mse
printf 'x,y\n0,1\n1,3\n2,5\n3,7\n0.5,2\n1.5,4\n' >"$tmp/lin.csv"
printf 'inputs: {x: {shape: [1]}}\nlayers: [{dense: 1}]\nloss: mse\noptimizer: {lr: 0.05}\ndata: {format: csv, train: lin.csv, batch_size: 2, epochs: 2}\n' >"$tmp/lin.yaml"
run "$mlc" run "$tmp/lin.yaml" --kfold 2 --quiet
[ $rc -eq 0 ] && [[ $out == *"2-fold cross-validation: val_loss "*"  val_mse "*" ± "* ]] && ok || bad "regression kfold: $out $err"
# errors
run "$mlc" run "$tmp/lin.yaml" --kfold 7
[ $rc -eq 2 ] && [[ $err == "$tmp/lin.csv: error: has 6 training samples, too few for 7 folds"* ]] && ok || bad "K > n: $rc $err"
run "$mlc" run "$tmp/lin.yaml" --kfold 1
[ $rc -eq 2 ] && [[ $err == *"--kfold needs at least 2 folds"* ]] && ok || bad "K = 1: $rc $err"
run "$mlc" run "$tmp/lin.yaml" --kfold 0
[ $rc -eq 2 ] && ok || bad "K = 0: $rc $err"
run "$mlc" run "$tmp/lin.yaml" --kfold 2 --save "$tmp/w.st"
[ $rc -eq 2 ] && [[ $err == *"--save is for one training run; it cannot be combined with --kfold"* ]] && ok || bad "--kfold --save: $rc $err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
