#!/usr/bin/env bash
# checkpoint.sh MLC SRC — checkpoints and --resume: a run killed with SIGKILL
# at random moments and resumed from its last checkpoint ends with the
# uninterrupted run's weights bit for bit and prints the same epoch lines
# (tests/ckpt/mlp.yaml: shuffling, dropout, batchnorm, Adam, reduce_on_plateau,
# early stopping's best weights); SIGTERM/SIGINT checkpoint and exit 143/130, a
# second signal ends the process at once;
# bad checkpoints are file-level errors (exit 2).
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
spec=$src/tests/ckpt/mlp.yaml
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run
# epoch lines without their timing: "epoch 3/12  loss ...  lr 0.01"
epochs_of() { grep '^epoch ' "$1" | sed 's/  [0-9.]*s  [0-9]* samples\/s$//'; }
# a --log without its timing field, the one that differs between two runs
untimed() { sed 's/, "time_s": [^}]*}$/}/' "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# the reference: no checkpoints
run "$mlc" run "$spec" --save "$tmp/full.st" --log "$tmp/full.jsonl"
[ $rc -eq 0 ] && ok || bad "reference run: $rc $err"
epochs_of "$tmp/out" >"$tmp/full.epochs"
[ "$(wc -l <"$tmp/full.epochs")" -eq 12 ] && ok || bad "reference run has no 12 epoch lines: $out"

# checkpointing changes nothing
t0=$(now_ms)
run "$mlc" run "$spec" --quiet --checkpoint "$tmp/c.ckpt" --checkpoint-steps 1 --save "$tmp/w.st"
span=$(($(now_ms) - t0))
[ $rc -eq 0 ] && cmp -s "$tmp/w.st" "$tmp/full.st" && ok || bad "a checkpointing run differs: $rc $err"

# path templates: a file per checkpoint named by its epoch and step, the same
# training; keep prunes to the newest files; resuming from any one of them
# reproduces the uninterrupted run
mkdir "$tmp/t" "$tmp/k" "$tmp/k2"
run "$mlc" run "$spec" --quiet --checkpoint "$tmp/t/c-{epoch:02}-{step}.ckpt" --save "$tmp/t.st"
[ $rc -eq 0 ] && cmp -s "$tmp/t.st" "$tmp/full.st" && ok || bad "a templated checkpointing run differs: $rc $err"
want=$(for e in $(seq 1 12); do printf 'c-%02d-%d.ckpt\n' $e $((58 * e)); done)
[ "$(ls "$tmp/t")" = "$want" ] && ok || bad "templated checkpoint names: $(ls "$tmp/t" | tr '\n' ' ')"
run "$mlc" run "$spec" --quiet --checkpoint "$tmp/k/c-{epoch}.ckpt" --checkpoint-keep 3
[ $rc -eq 0 ] && [ "$(ls "$tmp/k" | tr '\n' ' ')" = "c-10.ckpt c-11.ckpt c-12.ckpt " ] && ok || bad "keep 3: $rc $err $(ls "$tmp/k")"
run "$mlc" run "$spec" --quiet --checkpoint "$tmp/k2/s{step:04}.ckpt" --checkpoint-steps 1 --checkpoint-keep 2
[ $rc -eq 0 ] && [ "$(ls "$tmp/k2" | tr '\n' ' ')" = "s0695.ckpt s0696.ckpt " ] && ok || bad "keep 2 every step: $rc $err $(ls "$tmp/k2")"
run "$mlc" run "$spec" --resume "$tmp/t/c-05-290.ckpt" --checkpoint "$tmp/t/r-{epoch}.ckpt" --save "$tmp/r.st"
[ $rc -eq 0 ] && cmp -s "$tmp/r.st" "$tmp/full.st" && ok || bad "resume from a templated checkpoint: $rc $err"
epochs_of "$tmp/out" >"$tmp/r.epochs"
[ "$(cat "$tmp/r.epochs")" = "$(tail -n 7 "$tmp/full.epochs")" ] && ok || bad "resumed epoch lines: $(cat "$tmp/r.epochs")"
[ "$(ls "$tmp/t" | grep -c '^r-')" -eq 7 ] && [ -f "$tmp/t/r-6.ckpt" ] && [ -f "$tmp/t/r-12.ckpt" ] && ok || bad "resumed run's checkpoints: $(ls "$tmp/t")"

# SIGKILL at random moments, resume, compare; checkpoints every step (mid-epoch),
# every epoch (between epochs) and every 58 steps (= the epoch's last batch,
# before its validation and epoch-end decisions)
resumed=0
for every in "--checkpoint-steps 1" "--checkpoint-epochs 1" "--checkpoint-steps 58"; do
	for try in 1 2 3 4; do
		rm -f "$tmp/k.ckpt" "$tmp/r.st" "$tmp/k.jsonl"
		"$mlc" run "$spec" --quiet --checkpoint "$tmp/k.ckpt" $every --log "$tmp/k.jsonl" >/dev/null 2>&1 &
		pid=$!
		delay=$((RANDOM % (span + 50)))
		sleep_ms "$delay"
		kill -KILL $pid 2>/dev/null
		wait $pid 2>/dev/null
		[ -f "$tmp/k.ckpt" ] || continue # killed before the first checkpoint
		run "$mlc" run "$spec" --resume "$tmp/k.ckpt" --save "$tmp/r.st" --log "$tmp/k.jsonl"
		if [ $rc -ne 0 ]; then
			bad "resume ($every, killed after ${delay} ms): exit $rc: $err"
			continue
		fi
		resumed=$((resumed + 1))
		cmp -s "$tmp/r.st" "$tmp/full.st" && ok || bad "resumed weights differ ($every, killed after ${delay} ms): $(head -1 "$tmp/out")"
		epochs_of "$tmp/out" >"$tmp/r.epochs"
		grep -qxvFf "$tmp/full.epochs" "$tmp/r.epochs" && bad "resumed epoch lines differ ($every): $(grep -xvFf "$tmp/full.epochs" "$tmp/r.epochs")" || ok
		# the log as the uninterrupted run's: what was logged after the checkpoint is dropped
		diff <(untimed "$tmp/full.jsonl") <(untimed "$tmp/k.jsonl") >"$tmp/diff" && ok ||
			bad "resumed log differs ($every, killed after ${delay} ms): $(cat "$tmp/diff")"
	done
done
[ $resumed -ge 4 ] && ok || bad "only $resumed runs were killed after a checkpoint"

# SIGTERM and SIGINT: checkpoint after the current step, a message, 128 + the signal
for sig in TERM INT; do
	rm -f "$tmp/s.ckpt" "$tmp/s.jsonl"
	"$mlc" run "$spec" --quiet --checkpoint "$tmp/s.ckpt" --checkpoint-steps 1 --log "$tmp/s.jsonl" >"$tmp/out" 2>&1 &
	pid=$!
	sleep_ms $((span / 3))
	kill -$sig $pid
	wait $pid
	rc=$?
	want=$([ $sig = TERM ] && echo 143 || echo 130)
	if [ $rc -eq 0 ]; then
		echo "note: the run ended before SIG$sig arrived"
		continue
	fi
	[ $rc -eq $want ] && grep -q "^stopped by signal .* resume with --resume $tmp/s.ckpt" "$tmp/out" && ok || bad "SIG$sig: exit $rc: $(cat "$tmp/out")"
	run "$mlc" run "$spec" --resume "$tmp/s.ckpt" --save "$tmp/r.st" --log "$tmp/s.jsonl"
	[ $rc -eq 0 ] && cmp -s "$tmp/r.st" "$tmp/full.st" && ok || bad "resume after SIG$sig: $rc $err"
	diff <(untimed "$tmp/full.jsonl") <(untimed "$tmp/s.jsonl") >"$tmp/diff" && ok || bad "log after SIG$sig: $(cat "$tmp/diff")"
done

# SIGTERM with a template: the final checkpoint is named like the others, keep
# applies to it, and the message says which file to resume from
mkdir "$tmp/sig"
"$mlc" run "$spec" --quiet --checkpoint "$tmp/sig/c-{epoch}-{step}.ckpt" --checkpoint-steps 1 --checkpoint-keep 1 >"$tmp/out" 2>&1 &
pid=$!
sleep_ms $((span / 3))
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ]; then
	echo "note: the run ended before SIGTERM arrived"
else
	f=$(ls "$tmp/sig")
	[ $rc -eq 143 ] && [[ $f =~ ^c-[0-9]+-[0-9]+\.ckpt$ ]] && grep -q "^stopped by signal 15 .* resume with --resume $tmp/sig/$f\$" "$tmp/out" &&
		ok || bad "SIGTERM with a template: exit $rc: $(cat "$tmp/out") $(ls "$tmp/sig")"
	run "$mlc" run "$spec" --resume "$tmp/sig/$f" --save "$tmp/r.st"
	[ $rc -eq 0 ] && cmp -s "$tmp/r.st" "$tmp/full.st" && ok || bad "resume after SIGTERM from a templated file: $rc $err"
fi

# a signal during compilation (--no-cache) stops the run after its first step,
# one during training after the current step; a second one ends it at once:
# no step, no checkpoint, killed by the signal. The runs are long (many epochs)
# so that the signals always find them running, however fast the machine
# (a copy of the spec without early stopping, which would end them).
long=$tmp/long.yaml
sed -e '/early_stopping/d' -e "s#\.\./\.\./examples#$src/examples#" "$spec" >"$long"
rm -f "$tmp/s.ckpt"
"$mlc" run "$long" --quiet --no-cache --epochs 100000 --checkpoint "$tmp/s.ckpt" >"$tmp/out" 2>&1 &
pid=$!
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 143 ] && [ ! -s "$tmp/out" ]; then
	echo "note: SIGTERM arrived before mlc installed its handler (a slow start)"
else
	[ $rc -eq 143 ] && grep -Eq "^stopped by signal 15 after step [0-9]+ \(epoch [0-9]+, [0-9]+ of 400 samples\)" "$tmp/out" &&
		[ -f "$tmp/s.ckpt" ] && ok || bad "SIGTERM: exit $rc: $(cat "$tmp/out")"
fi
rm -f "$tmp/s.ckpt"
"$mlc" run "$long" --quiet --no-cache --epochs 100000 --checkpoint "$tmp/s.ckpt" >"$tmp/out" 2>&1 &
pid=$!
sleep 0.1
kill -TERM $pid
kill -TERM $pid
wait $pid
rc=$?
if grep -q "^stopped by signal" "$tmp/out"; then
	echo "note: the first SIGTERM's checkpoint and exit came before the second SIGTERM"
else
	[ $rc -eq 143 ] && [ ! -e "$tmp/s.ckpt" ] && ok || bad "second SIGTERM: exit $rc: $(cat "$tmp/out") $(ls "$tmp")"
fi

# the spec's checkpoint: section (relative to the spec's folder) and a log that continues
sed "s#train: ../../examples#train: $src/examples#" "$spec" >"$tmp/spec.yaml"
printf 'checkpoint: {path: spec.ckpt, every_epochs: 5}\n' >>"$tmp/spec.yaml"
run "$mlc" run "$tmp/spec.yaml" --quiet --epochs 7
[ $rc -eq 0 ] && [ -f "$tmp/spec.ckpt" ] && ok || bad "checkpoint: in the spec: $rc $err $(ls "$tmp")"
run "$mlc" run "$tmp/spec.yaml" --epochs 7 --resume "$tmp/spec.ckpt" --log "$tmp/log.jsonl"
[ $rc -eq 0 ] && [[ $out == "resumed from $tmp/spec.ckpt: epoch 6, 0 of 400 samples, step 290"* ]] && ok || bad "resume at an epoch boundary: $out $err"
[ "$(grep -c '"epoch"' "$tmp/log.jsonl")" -eq 2 ] && ok || bad "resumed log: $(cat "$tmp/log.jsonl")"
# a completed run's log resumed from an earlier checkpoint: trimmed to it (the
# later epochs and a line cut short dropped), then continued as before
run "$mlc" run "$spec" --quiet --log "$tmp/t.jsonl" --checkpoint "$tmp/t/e-{epoch}.ckpt" --save "$tmp/t2.st"
printf '{"epoch": 13, "lo' >>"$tmp/t.jsonl"
run "$mlc" run "$spec" --resume "$tmp/t/e-4.ckpt" --log "$tmp/t.jsonl"
[ $rc -eq 0 ] && [[ $out == *"$tmp/t.jsonl: kept the records of 4 epochs, dropped 9 lines logged after the checkpoint"* ]] &&
	diff <(untimed "$tmp/full.jsonl") <(untimed "$tmp/t.jsonl") >"$tmp/diff" && ok || bad "trimmed log: $rc $out $err $(cat "$tmp/diff")"
# a log that is not this run's is appended to as it is, and the run says so
printf 'my notes\n' >"$tmp/n.jsonl"
run "$mlc" run "$spec" --resume "$tmp/t/e-4.ckpt" --log "$tmp/n.jsonl"
[ $rc -eq 0 ] && [[ $out == *"$tmp/n.jsonl: not this run's log (not the records of epochs 1-4 in order, then only mlc's); appending to it as it is"* ]] &&
	[ "$(head -1 "$tmp/n.jsonl")" = "my notes" ] && [ "$(grep -c '^{"epoch": ' "$tmp/n.jsonl")" -eq 8 ] && ok || bad "foreign log: $rc $out $err $(cat "$tmp/n.jsonl")"
untimed "$tmp/full.jsonl" | sed -n '1,2p;4,$p' >"$tmp/gap.jsonl" # epoch 3 missing
run "$mlc" run "$spec" --resume "$tmp/t/e-4.ckpt" --log "$tmp/gap.jsonl" --quiet
[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/gap.jsonl")" -eq 19 ] && ok || bad "log with a gap: $rc $err $(wc -l <"$tmp/gap.jsonl")"

# errors: exit 2, "path: error: ..."
"$mlc" run "$src/examples/xor.yaml" --quiet --epochs 2 --checkpoint "$tmp/xor.ckpt" >/dev/null 2>&1
run "$mlc" run "$spec" --resume "$tmp/xor.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/xor.ckpt: error: is a checkpoint of another model ('xor'"* ]] && ok || bad "another model's checkpoint: $rc $err"
run "$mlc" run "$spec" --resume "$tmp/none.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/none.ckpt: error: cannot read: No such file or directory"* ]] && ok || bad "missing checkpoint: $rc $err"
run "$mlc" run "$spec" --resume "$tmp/full.st"
[ $rc -eq 2 ] && [[ $err == "$tmp/full.st: error: is not an mlc checkpoint but a weights file (--save); start from it with --weights"* ]] && ok || bad "weights as checkpoint: $rc $err"
head -c 3000 "$tmp/c.ckpt" >"$tmp/cut.ckpt"
run "$mlc" run "$spec" --resume "$tmp/cut.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/cut.ckpt: error: "* ]] && ok || bad "truncated checkpoint: $rc $err"
python3 - "$tmp/c.ckpt" "$tmp/bent.ckpt" <<'PY'
import sys
raw = bytearray(open(sys.argv[1], "rb").read())
i = raw.index(b'"rng0":"') + 8
raw[i] = ord("0") if raw[i] != ord("0") else ord("1")
open(sys.argv[2], "wb").write(raw)
PY
run "$mlc" run "$spec" --resume "$tmp/bent.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/bent.ckpt: error: checkpoint is inconsistent"* ]] && ok || bad "tampered checkpoint: $rc $err"
python3 - "$tmp/c.ckpt" "$tmp/nobest.ckpt" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
data, out, off = raw[8 + n:], {"__metadata__": h.pop("__metadata__")}, 0
parts = []
for k, v in h.items():
    if k == "mlc.best":
        continue
    b, e = v["data_offsets"]
    parts.append(data[b:e])
    out[k] = dict(v, data_offsets=[off, off + e - b])
    off += e - b
hdr = json.dumps(out).encode()
hdr += b" " * (-len(hdr) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hdr)) + hdr + b"".join(parts))
PY
run "$mlc" run "$spec" --resume "$tmp/nobest.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/nobest.ckpt: error: checkpoint has no tensor 'mlc.best' (the weights of epoch 2"* ]] && ok || bad "no best weights: $rc $err"
run "$mlc" run "$spec" --batch 8 --resume "$tmp/c.ckpt"
[ $rc -eq 2 ] && [[ $err == "$tmp/c.ckpt: error: was written by a run with batch size 7; this run has 8"* ]] && ok || bad "another batch size: $rc $err"
run "$mlc" run "$spec" --resume "$tmp/c.ckpt" --weights "$tmp/full.st"
[ $rc -eq 2 ] && [[ $err == *"--resume restores the weights"* ]] && ok || bad "--resume with --weights: $rc $err"
run "$mlc" run "$spec" --eval --checkpoint "$tmp/e.ckpt"
[ $rc -eq 2 ] && [[ $err == *"--checkpoint is for training; it cannot be combined with --eval"* ]] && ok || bad "--checkpoint with --eval: $rc $err"

# template errors: the spec's are located (file:line:col), the flags' name the flag; exit 2
ckerr() { # CHECKPOINT-SECTION EXPECTED-STDERR-START
	sed "s#train: ../../examples#train: $src/examples#" "$spec" >"$tmp/bad.yaml"
	printf 'checkpoint: %s\n' "$1" >>"$tmp/bad.yaml"
	run "$mlc" run "$tmp/bad.yaml" --quiet
	[ $rc -eq 2 ] && [[ $err == "$2"* ]] && ok || bad "checkpoint: $1: $rc $err"
}
ckerr '{path: "c-{epch}.ckpt"}' "$tmp/bad.yaml:28:20: error: checkpoint path 'c-{epch}.ckpt' has an unknown field '{epch}'; did you mean '{epoch}'?"
ckerr '{path: c.ckpt, keep: 2}' "$tmp/bad.yaml:28:34: error: 'keep' needs a path with {epoch} or {step}"
ckerr '"c-{step:3}.ckpt"' "$tmp/bad.yaml:28:13: error: checkpoint path 'c-{step:3}.ckpt' has an invalid format '{step:3}' (write {step:03}"
ckerr '{path: "c-{epoch.ckpt"}' "$tmp/bad.yaml:28:20: error: checkpoint path 'c-{epoch.ckpt' has an unclosed '{'"
ckerr '{path: "c-{epoch}.ckpt", kep: 2}' "$tmp/bad.yaml:28:38: error: unknown key 'kep' in 'checkpoint'; did you mean 'keep'?"
run "$mlc" run "$spec" --checkpoint "$tmp/c-{stpe}.ckpt"
[ $rc -eq 2 ] && [[ $err == "mlc: error: --checkpoint '$tmp/c-{stpe}.ckpt' has an unknown field '{stpe}'; did you mean '{step}'?"* ]] && ok || bad "--checkpoint template: $rc $err"
run "$mlc" run "$spec" --checkpoint "$tmp/c.ckpt" --checkpoint-keep 2
[ $rc -eq 2 ] && [[ $err == "mlc: error: --checkpoint-keep needs a checkpoint path with {epoch} or {step}"* ]] && ok || bad "--checkpoint-keep without a template: $rc $err"
run "$mlc" run "$spec" --checkpoint-keep 2
[ $rc -eq 2 ] && [[ $err == "mlc: error: --checkpoint-keep needs a checkpoint path"* ]] && ok || bad "--checkpoint-keep without a path: $rc $err"
run "$mlc" run "$spec" --eval --checkpoint-keep 2
[ $rc -eq 2 ] && [[ $err == *"--checkpoint-keep is for training; it cannot be combined with --eval"* ]] && ok || bad "--checkpoint-keep with --eval: $rc $err"
run "$mlc" run --help
[[ $out == *--checkpoint-keep* && $out == *"{epoch}"* ]] && ok || bad "run --help lacks --checkpoint-keep or the template"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
