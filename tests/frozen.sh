#!/usr/bin/env bash
# frozen.sh MLC SRC — trainable: false, checked in the IR: for every
# tests/frozen/NAME.yaml, `mlc ir --print-after autodiff` must equal
# NAME.ir (MLC_UPDATE_GOLDEN=1 rewrites them), so a frozen layer's backward
# nodes cannot come back unnoticed.
set -uo pipefail
mlc=$1
cd "$2/tests"
pass=0 fail=0
for spec in frozen/*.yaml; do
	want=${spec%.yaml}.ir
	got=$("$mlc" ir --stop-after autodiff --print-after autodiff "$spec" 2>&1)
	if [ "${MLC_UPDATE_GOLDEN:-}" = 1 ]; then
		printf '%s\n' "$got" >"$want"
	fi
	if [ "$got" = "$(cat "$want" 2>/dev/null)" ]; then
		pass=$((pass + 1))
	else
		echo "FAIL $spec: the IR after autodiff differs from $want"
		diff <(printf '%s\n' "$got") "$want"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
