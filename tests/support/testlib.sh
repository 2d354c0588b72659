# testlib.sh — sourced by the shell tests (tests/*.sh): a temporary folder
# $tmp removed at exit, the pass/fail counters with ok and bad, and
# run CMD..., which sets $rc, $out (stdout) and $err (stderr).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); }
