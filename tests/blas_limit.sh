#!/usr/bin/env bash
# blas_limit.sh MLC SRC — under an address-space limit (ulimit -v) OpenBLAS's
# worker threads used to spin forever retrying a 128 MiB malloc, ignoring
# SIGTERM, even after an error (exit() joins them): mlc run examples/xor.yaml
# hung at 400000 and 500000 KB. Now it runs where one OpenBLAS buffer fits
# and otherwise fails at once with exit 2.
set -uo pipefail
mlc=$1 src=$2
. "$src/tests/support/testlib.sh"
ex=$src/examples
# a sanitizer build reserves terabytes of shadow address space: it cannot
# start under any ulimit -v (memory.sh covers its allocation failures)
libs=$(ldd "$mlc" 2>/dev/null)
if [[ $libs == *libasan* ]]; then
	echo "blas_limit.sh: $mlc is a sanitizer build: skipped"
	exit 77
fi

capped() { # NAME KB WANT-RC TEXT
	(ulimit -v "$2"; exec timeout -s KILL 60 "$mlc" run --quiet "$ex/xor.yaml") >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ $rc -eq "$3" ] && { [ -z "$4" ] || grep -qF -- "$4" "$tmp/err"; }; then
		ok "$1"
	else
		bad "$1 (rc $rc, want $3)" "$(head -c 400 "$tmp/err")"
	fi
}

capped "runs at 400000 KB" 400000 0 ""
capped "runs at 500000 KB" 500000 0 ""
capped "refused at 300000 KB" 300000 2 \
	"$ex/xor.yaml: error: cannot run under an address-space limit of 300000 KB: "
# an explicit OPENBLAS_NUM_THREADS is the user's: no restart, the session's check only
OPENBLAS_NUM_THREADS=1 capped "refused at 300000 KB, OPENBLAS_NUM_THREADS=1" 300000 2 \
	"OpenBLAS needs 128 MiB more for its buffer (raise ulimit -v)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
