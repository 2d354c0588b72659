#!/usr/bin/env bash
# resume.sh MLC SRC — --resume is exact in everything it prints, for every
# metric and check, without restore_best (whose best copy would hide a wrong
# resume): resumed from mid-epoch checkpoints, the whole stdout and the --log
# equal an uninterrupted run's (time fields excepted), and so do a diverging
# run's error and exit code. Checkpoint metadata edited to values the run
# cannot have written (an epoch of 2e9, a NaN or negative lr, counters at
# INT32_MAX / INT64_MAX) are errors naming the file and the key (exit 2); the
# first SIGTERM stops a long replay of shuffles.
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run
data=$src/examples/data
# stdout without timings and without the resumed run's own first line
untimed_out() { grep -v '^resumed from ' "$1" | sed -e 's/  [0-9.]*s  [0-9]* samples\/s$//' -e 's/ in [0-9.]*s$//' -e '/^peak RSS/d'; }
untimed_log() { sed 's/, "time_s": [^}]*}$/}/' "$1"; }

spec() { # NAME LOSS ACTIVATION UNITS METRICS OPTIMIZER
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  x: {shape: [4]}
layers:
  - dense: 8
    activation: tanh
  - dropout: 0.2
  - dense: $4
    activation: $3
loss: $2
optimizer: $6
metrics: $5
data:
  format: csv
  train: $data/blobs_train.csv
  test: $data/blobs_test.csv
  batch_size: 16
  epochs: 4
  validation_split: 0.2
  shuffle: true
  seed: 3
YAML
}
spec cls softmax_cross_entropy linear 2 "[accuracy, top1, precision, recall, f1, confusion, perplexity]" \
	"{type: adam, lr: 0.02, schedule: {type: reduce_on_plateau, patience: 0, factor: 0.5}}"
spec reg mse sigmoid 1 "[mse, mae, accuracy]" "{type: sgd, lr: 0.5, momentum: 0.9}"
printf '  early_stopping: {monitor: val_loss, patience: 2}\n' >>"$tmp/reg.yaml"

# 400 training samples, batch 16: 25 steps an epoch; steps 7, 26 and 53 are mid-epoch
for m in cls reg; do
	run "$mlc" run "$tmp/$m.yaml" --log "$tmp/$m.full.jsonl" --save "$tmp/$m.full.st"
	[ $rc -eq 0 ] || { bad "$m: reference run: $rc $err"; continue; }
	cp "$tmp/out" "$tmp/$m.full.out"
	mkdir -p "$tmp/$m"
	run "$mlc" run "$tmp/$m.yaml" --quiet --checkpoint "$tmp/$m/s{step}.ckpt" --checkpoint-steps 1
	[ $rc -eq 0 ] || { bad "$m: checkpointing run: $rc $err"; continue; }
	for step in 7 26 53; do
		e=$((step / 25 + 1))
		cp "$tmp/$m.full.jsonl" "$tmp/r.jsonl"
		run "$mlc" run "$tmp/$m.yaml" --resume "$tmp/$m/s$step.ckpt" --log "$tmp/r.jsonl" --save "$tmp/r.st"
		[ $rc -eq 0 ] || { bad "$m: resume from step $step: $rc $err"; continue; }
		cmp -s "$tmp/r.st" "$tmp/$m.full.st" && ok || bad "$m: weights resumed from step $step differ"
		# the uninterrupted run's output from the epoch in progress on
		want=$(untimed_out "$tmp/$m.full.out" | awk -v e="$e" '/^epoch /{split($2, a, "/"); if (a[1] < e) next} {print}')
		got=$(grep -v 'kept the records of' "$tmp/out" >"$tmp/o"; untimed_out "$tmp/o")
		[ "$got" = "$want" ] && ok || bad "$m: stdout resumed from step $step differs" "$(diff <(echo "$want") <(echo "$got"))"
		diff <(untimed_log "$tmp/$m.full.jsonl") <(untimed_log "$tmp/r.jsonl") >"$tmp/diff" && ok ||
			bad "$m: log resumed from step $step differs" "$(cat "$tmp/diff")"
	done
done

# divergence: the baseline (the first step's loss) comes back with the
# checkpoint, so a resumed diverging run stops at the same step, as loudly
run "$mlc" run "$src/tests/numerics/mse_lr.yaml"
want_rc=$rc want_err=$err
[ $want_rc -eq 2 ] && [[ $want_err == *"training diverged in step"* ]] && ok || bad "mse_lr: $rc $err"
mkdir "$tmp/d"
"$mlc" run "$src/tests/numerics/mse_lr.yaml" --quiet --checkpoint "$tmp/d/s{step}.ckpt" --checkpoint-steps 1 >/dev/null 2>&1
run "$mlc" run "$src/tests/numerics/mse_lr.yaml" --resume "$tmp/d/s2.ckpt"
[ $rc -eq $want_rc ] && [ "$err" = "$want_err" ] && ok || bad "resumed diverging run: $rc" "$err" "want: $want_err"

# metadata a run cannot have written: exit 2, the file and the key named
m=cls ck=$tmp/cls/s26.ckpt
edit() { # KEY VALUE OUT: a copy of $ck with one metadata value replaced
	python3 - "$ck" "$3" "$1" "$2" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
h["__metadata__"][sys.argv[3]] = sys.argv[4]
hdr = json.dumps(h).encode()
hdr += b" " * (-len(hdr) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hdr)) + hdr + raw[8 + n:])
PY
}
meta() { # KEY VALUE (a checkpoint of $m)
	edit "$1" "$2" "$tmp/e.ckpt"
	run timeout 20 "$mlc" run "$tmp/$m.yaml" --resume "$tmp/e.ckpt" --quiet
	[ $rc -eq 2 ] && [[ $err == "$tmp/e.ckpt: error: checkpoint metadata '$1' is "* ]] && ok "$1: $2" || bad "$1 = $2: exit $rc: $err"
}
meta epoch 2000000000
meta epoch 0
meta lr nan
meta lr -0x1p-4
meta lr 0x1p+1
meta lr inf
meta step 4294967295
meta step 27
meta pos 5
meta plateau_bad 2147483647
meta plateau_best nan
meta epoch_seen 9223372036854775807
meta epoch_loss nan
meta first_loss inf
meta metrics "2 1 9223372036854775807 0 0 0 0x0p+0 0x0p+0 0x0p+0"
meta metrics "2 1 96 97 0 0 0x0p+0 0x0p+0 0x0p+0"
meta metrics "2 1 96 90 90 0 0x0p+0 0x0p+0 nan"
meta confusion "9223372036854775807,0,0,0"
# without early stopping, its counters are 0
meta early_wait 1
meta early_best_epoch 1
meta stopped 1
m=reg ck=$tmp/reg/s26.ckpt
meta early_wait 2147483647
meta early_best_epoch 2
meta stopped 1
edit epoch 9 "$tmp/e.ckpt"
run "$mlc" run "$tmp/reg.yaml" --resume "$tmp/e.ckpt"
[ $rc -eq 2 ] && [[ $err == *"'epoch' is 9, which this run cannot have written (1 to 5)"*"this run trains 4 epochs; --epochs sets more"* ]] &&
	ok || bad "an epoch past the run: $rc $err"

caught() { # PID: waits (up to 30 s) until the process catches SIGTERM (bit 15 of SigCgt)
	local i c
	for i in $(seq 3000); do
		c=$(awk '/^SigCgt/ {print $2}' /proc/$1/status 2>/dev/null)
		[ -n "$c" ] && (((0x$c >> 14) & 1)) && return 0
		sleep 0.01
	done
}

# the first SIGTERM stops a long replay of the shuffles (an epoch far in,
# consistent with its step): exit 143 with a message, not a hang
ck=$tmp/cls/s7.ckpt
python3 - "$ck" "$tmp/far.ckpt" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
m = h["__metadata__"]
e = 100000000
m["epoch"], m["step"], m["plateau_bad"] = str(e), str((e - 1) * 25 + 7), "0"
hdr = json.dumps(h).encode()
hdr += b" " * (-len(hdr) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hdr)) + hdr + raw[8 + n:])
PY
sed 's/epochs: 4/epochs: 2000000000/' "$tmp/cls.yaml" >"$tmp/far.yaml"
timeout 60 "$mlc" run "$tmp/far.yaml" --resume "$tmp/far.ckpt" >"$tmp/out" 2>&1 &
pid=$!
caught $pid # a slow start (ASan on a busy machine) would die of the default action
sleep 1
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] && grep -q "^stopped by signal 15 while replaying the shuffles of epoch" "$tmp/out" && ok ||
	bad "SIGTERM during the replay: exit $rc: $(cat "$tmp/out")"

# a signal during compilation (--no-cache) reaches what comes before any
# train step: resumed at the end of epoch 1's batches (step 25), the
# validation (without shuffling, so that no shuffles are replayed first);
# K-fold, its first fold. Stopped there (exit 143); the validation's stop
# writes a checkpoint, and resuming from it is exact
sigterm() { # NAME ARGS...: runs mlc run ARGS, SIGTERM once it catches the signal; $rc, $tmp/out
	local name=$1
	shift
	"$mlc" run "$@" >"$tmp/out" 2>&1 &
	pid=$!
	caught $pid # its handler is installed before it compiles
	kill -TERM $pid
	wait $pid
	rc=$?
	if [ $rc -eq 0 ] || { [ $rc -eq 143 ] && [ ! -s "$tmp/out" ]; }; then
		echo "note: SIGTERM missed the compilation ($name, rc $rc)"
		return 1
	fi
}
sed 's/shuffle: true/shuffle: false/' "$tmp/cls.yaml" >"$tmp/ns.yaml"
"$mlc" run "$tmp/ns.yaml" --save "$tmp/ns.st" >"$tmp/ns.out" 2>&1 || bad "ns: reference run"
"$mlc" run "$tmp/ns.yaml" --quiet --checkpoint "$tmp/ns25.ckpt" --checkpoint-steps 25 --epochs 1 >/dev/null 2>&1 || bad "ns: checkpoint"
if sigterm validation "$tmp/ns.yaml" --no-cache --resume "$tmp/ns25.ckpt" --checkpoint "$tmp/v.ckpt"; then
	[ $rc -eq 143 ] && grep -q "^stopped by signal 15 in the evaluation of the validation split after epoch 1 (0 of 100 samples)$" "$tmp/out" &&
		grep -q "^resume with --resume $tmp/v.ckpt$" "$tmp/out" && ok "SIGTERM in the validation" ||
		bad "SIGTERM in the validation: exit $rc: $(cat "$tmp/out")"
	run "$mlc" run "$tmp/ns.yaml" --resume "$tmp/v.ckpt" --save "$tmp/r.st"
	want=$(untimed_out "$tmp/ns.out")
	[ $rc -eq 0 ] && [ "$(untimed_out "$tmp/out")" = "$want" ] && cmp -s "$tmp/r.st" "$tmp/ns.st" && ok ||
		bad "resumed after the validation's stop: $rc $err" "$(diff <(echo "$want") <(untimed_out "$tmp/out"))"
fi
if sigterm kfold "$tmp/cls.yaml" --no-cache --kfold 3; then
	[ $rc -eq 143 ] && grep -q "^stopped by signal 15 before fold 1/3$" "$tmp/out" && ok "SIGTERM in K-fold" ||
		bad "SIGTERM in K-fold: exit $rc: $(cat "$tmp/out")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
