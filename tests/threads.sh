#!/usr/bin/env bash
# threads.sh MLC SRC — --threads is capped at the thread pool's size (64) with
# an error above it, and the generated code does not grow with the thread
# count (it used to add one unrolled partial sum per thread to every split
# reduction, so compile time grew with --threads).
set -uo pipefail
mlc=$1 src=$2
. "$src/tests/support/testlib.sh"
ex=$src/examples

refused "--threads 65" "mlc: error: --threads 65: must be from 1 to 64 (the thread pool's size)" -- \
	timeout 20 "$mlc" run --epochs 1 --threads 65 "$ex/xor.yaml"
refused "--threads 10^9" "mlc: error: --threads 1000000000: must be from 1 to 64" -- \
	timeout 20 "$mlc" compile --threads 1000000000 -o "$tmp/big" "$ex/lenet.yaml"
refused "--threads 0" "invalid value '0' for --threads" -- "$mlc" run --threads 0 "$ex/xor.yaml"

# the module text at 2 and at 64 threads: the same code, only some constants differ
run "$mlc" compile --threads 2 -o "$tmp/t2" "$ex/lenet.yaml"
[ $rc -eq 0 ] || bad "compile --threads 2 (rc $rc)" "$err"
run "$mlc" compile --threads 64 -o "$tmp/t64" "$ex/lenet.yaml"
[ $rc -eq 0 ] && ok "--threads 64 accepted" || bad "compile --threads 64 (rc $rc)" "$err"
a=$(wc -c <"$tmp/t2.ll") b=$(wc -c <"$tmp/t64.ll")
[ $((b * 100)) -le $((a * 101)) ] && ok "module size independent of --threads ($a, $b bytes)" ||
	bad "module grows with --threads: $a bytes at 2, $b at 64"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
