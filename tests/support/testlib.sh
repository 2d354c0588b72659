# testlib.sh — sourced by the shell tests (tests/*.sh): a temporary folder
# $tmp removed at exit, the pass/fail counters with ok and bad, run CMD...,
# which sets $rc, $out (stdout) and $err (stderr), and refused, for the
# errors a user's mistake must give.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
# ok [NAME]; bad WHAT [DETAIL...]: count, and print NAME / WHAT and its details.
ok() { [ $# -gt 0 ] && echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@"; fail=$((fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); }
# refused NAME TEXT... -- CMD...: CMD exits 2 and its output (stdout and
# stderr, in $out; exit status in $rc) holds each TEXT as a fixed string.
refused() {
	local name=$1 texts=() t
	shift
	while [ "$1" != -- ]; do texts+=("$1"); shift; done
	shift
	out=$("$@" 2>&1)
	rc=$?
	for t in "${texts[@]}"; do
		if [ $rc -ne 2 ] || ! grep -qF -- "$t" <<<"$out"; then
			bad "$name (rc $rc)" "$out"
			return
		fi
	done
	ok "$name"
}
