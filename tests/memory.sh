#!/usr/bin/env bash
# memory.sh MLC SRC — a reader that runs out of memory says so, naming the
# file, with exit 2 (it used to abort, exit 134): under `ulimit -v` (1 GB),
# weights, CSV and CIFAR paths to /dev/zero (endless, no size to check
# first) and a 1 MB gzip'd IDX file that expands to 1 GiB.
set -uo pipefail
mlc=$1 src=$2
. "$src/tests/support/testlib.sh"
ex=$src/examples
limit=1000000 # KiB of address space: enough for mlc itself, not for the data
# A sanitizer build reserves terabytes of shadow address space, so no
# `ulimit -v` lets it start: there ASan's allocator fails (returns NULL) past
# the same 1 GB instead.
libs=$(ldd "$mlc" 2>/dev/null)
asan=0
[[ $libs == *libasan* ]] && asan=1

capped() { # NAME FILE TEXT CMD... — exit 2 within 60 s, "FILE: error: ...TEXT"
	local name=$1 file=$2 text=$3
	shift 3
	if [ $asan = 1 ]; then
		ASAN_OPTIONS=${ASAN_OPTIONS:-}:allocator_may_return_null=1:max_allocation_size_mb=$((limit / 1024)) \
			timeout 120 "$@" >"$tmp/out" 2>"$tmp/raw"
		local rc0=$?
		grep -v '^==[0-9]*==WARNING: AddressSanitizer failed to allocate' "$tmp/raw" >"$tmp/err"
		(exit $rc0)
	else
		(ulimit -v $limit; exec timeout 60 "$@") >"$tmp/out" 2>"$tmp/err"
	fi
	local rc=$? first
	first=$(head -n 1 "$tmp/err")
	if [ $rc -eq 2 ] && [[ $first == "$file: error: "*"$text"* ]]; then
		ok "$name"
	else
		bad "$name (rc $rc)" "$(head -c 400 "$tmp/err")"
	fi
}
model() { # FILE DATA-LINE
	printf 'name: t\ninputs:\n  x: {shape: [%s]}\nlayers:\n  - flatten\n  - dense: 10\nloss: softmax_cross_entropy\noptimizer: {type: sgd, lr: 0.1}\ndata: %s\n' "$2" "$3" >"$1"
}

capped "--weights /dev/zero" /dev/zero "cannot read: Cannot allocate memory" \
	"$mlc" run --quiet --weights /dev/zero "$ex/xor.yaml"
model "$tmp/csv.yaml" 2 "{format: csv, train: /dev/zero, batch_size: 2, epochs: 1}"
capped "CSV /dev/zero" /dev/zero "cannot read: Cannot allocate memory" "$mlc" run --quiet "$tmp/csv.yaml"
model "$tmp/cifar.yaml" "32, 32, 3" "{format: cifar10, train: [/dev/zero], batch_size: 2, epochs: 1}"
capped "CIFAR /dev/zero" /dev/zero "cannot read: out of memory" "$mlc" run --quiet "$tmp/cifar.yaml"

# 1,048,576 images of 32x32 (1 GiB of zeros, about 1 MB gzip'd), 1 label
{ printf '\0\0\10\3\0\20\0\0\0\0\0\40\0\0\0\40'; head -c 1073741824 /dev/zero; } | gzip -1 >"$tmp/im.gz"
printf '\0\0\10\1\0\0\0\1\0' >"$tmp/lb"
model "$tmp/idx.yaml" "32, 32" "{format: idx, train: {images: $tmp/im.gz, labels: $tmp/lb}, batch_size: 2, epochs: 1}"
capped "gzip'd IDX expanding to 1 GiB" "$tmp/im.gz" "cannot read: out of memory" "$mlc" run --quiet "$tmp/idx.yaml"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
