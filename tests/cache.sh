#!/usr/bin/env bash
# cache.sh MLC SRC — the object cache runs only code this user put there:
# a folder others can write is refused with a note (and the run compiles
# uncached), an entry others can write or that is not a regular file (a FIFO:
# no hang) is a miss, and the run's results never change.
set -uo pipefail
mlc=$1 src=$2
. "$src/tests/support/testlib.sh"
ex=$src/examples

# a private cache: the first run stores, the second hits
cache=$tmp/cache
run "$mlc" run --quiet --verbose --epochs 1 --cache-dir "$cache" "$ex/xor.yaml"
entry=$(sed -n 's/.*cache miss, stored \(.*\))$/\1/p' <<<"$out")
[ $rc -eq 0 ] && [ -f "$entry" ] && ok "first run stores" || bad "first run stores (rc $rc)" "$out" "$err"
ref=$(grep -v '^jit:\|^pass\|ms' <<<"$out")
run "$mlc" run --quiet --verbose --epochs 1 --cache-dir "$cache" "$ex/xor.yaml"
[ $rc -eq 0 ] && grep -q "cache hit" <<<"$out" && ok "second run hits" || bad "second run hits" "$out"

# an entry writable by others is not trusted
chmod 666 "$entry"
run "$mlc" run --quiet --verbose --epochs 1 --cache-dir "$cache" "$ex/xor.yaml"
[ $rc -eq 0 ] && grep -q "cache miss, stored" <<<"$out" && ok "group/other-writable entry is a miss" ||
	bad "group/other-writable entry is a miss" "$out"

# a FIFO at the entry's path: a miss, not a hang
rm -f "$entry" && mkfifo "$entry"
run timeout 60 "$mlc" run --quiet --verbose --epochs 1 --cache-dir "$cache" "$ex/xor.yaml"
[ $rc -eq 0 ] && grep -q "cache miss" <<<"$out" && ok "FIFO entry: no hang" || bad "FIFO entry: no hang (rc $rc)" "$out"
rm -f "$entry"

# a world-writable folder (sticky, like /tmp) is refused, with a note, every time
shared=$tmp/shared
mkdir -m 1777 "$shared"
chmod 1777 "$shared"
run "$mlc" run --quiet --epochs 1 --cache-dir "$shared" "$ex/xor.yaml"
if [ $rc -eq 0 ] && grep -qF "$shared: note: not using the object cache: the folder is writable by group or others" <<<"$err" &&
	[ -z "$(ls -A "$shared")" ]; then
	ok "world-writable folder refused"
else
	bad "world-writable folder refused (rc $rc)" "$err" "$(ls -A "$shared")"
fi
got=$(grep -v '^jit:\|^pass\|ms' <<<"$out")
[ "$got" = "$ref" ] && ok "same results without the cache" || bad "same results without the cache" "$got" "$ref"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
