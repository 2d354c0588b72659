#!/usr/bin/env bash
# golden.sh MLC SRC — the one golden runner (cproc's runtests is the model).
# A case is an input file under tests/{golden,frozen,fuse,passes}/, a spec
# (NAME.yaml) or IR text (NAME.ir). Its first line that starts with
# "# mlc: " is the command and flags to run it with (`# mlc: ir --passes=fuse`);
# without one, a spec runs `mlc check` and IR text `mlc ir`. The files next to
# it say what must come out:
#   NAME.err   exit 2, stderr exactly this, with a located
#              `file:line:col: error:` (or `file: error:`);
#   NAME.ir    (beside a spec) or NAME.out (beside IR text): exit 0, stdout
#              exactly this; when it is a graph, it reads back (`mlc ir
#              --passes=`, verify only) as the same text;
#   neither    exit 0.
# A .yaml's directive goes on its last line, so the spec's locations stay put.
# MLC_UPDATE_GOLDEN=1 rewrites the expected files from what came out.
set -uo pipefail
shopt -s nullglob
mlc=$1 src=$2
cd "$src/tests"
. "$src/tests/support/testlib.sh" # $tmp, ok, bad
update=${MLC_UPDATE_GOLDEN:-}

for in in golden/*.yaml frozen/*.yaml fuse/*.ir passes/*.ir; do
	case $in in
	*.yaml) base=${in%.yaml} want=${in%.yaml}.ir cmd="check --no-data" ;;
	*.ir) base=${in%.ir} want=${in%.ir}.out cmd=ir ;;
	esac
	directive=$(grep -m1 '^# mlc: ' "$in" | cut -c8-)
	read -r -a argv <<<"${directive:-$cmd}"
	"$mlc" "${argv[@]}" "$in" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ -f "$base.err" ]; then
		[ "$update" = 1 ] && cp "$tmp/err" "$base.err"
		[ $rc -eq 2 ] || { bad "$in: exit $rc, want 2" "$(cat "$tmp/err")"; continue; }
		grep -qE '^[^ :]+\.(yaml|ir)(:[0-9]+:[0-9]+)?: error: ' "$tmp/err" ||
			{ bad "$in: no file:line:col error" "$(cat "$tmp/err")"; continue; }
		diff -u "$base.err" "$tmp/err" >"$tmp/diff" || { bad "$in: stderr differs from $base.err" "$(cat "$tmp/diff")"; continue; }
		ok
	elif [ -f "$want" ]; then
		[ "$update" = 1 ] && [ $rc -eq 0 ] && cp "$tmp/out" "$want"
		[ $rc -eq 0 ] || { bad "$in: exit $rc, want 0" "$(cat "$tmp/err")"; continue; }
		diff -u "$want" "$tmp/out" >"$tmp/diff" || { bad "$in: stdout differs from $want" "$(cat "$tmp/diff")"; continue; }
		if head -1 "$want" | grep -q '^graph '; then
			cp "$want" "$tmp/back.ir"
			"$mlc" ir --passes= "$tmp/back.ir" >"$tmp/back" 2>"$tmp/err"
			cmp -s "$want" "$tmp/back" || { bad "$want does not read back as the same text" "$(cat "$tmp/err")"; continue; }
		fi
		ok
	else
		[ $rc -eq 0 ] && ok || bad "$in: exit $rc, want 0" "$(cat "$tmp/err")"
	fi
done
# every pass of the pipeline (as `mlc ir --help` lists them) has a case of its own
passes=$("$mlc" ir --help | sed -n 's/^passes: //p' | tr -d ,)
[ -n "$passes" ] || bad "mlc ir --help lists no passes"
for p in $passes; do
	grep -qE "^# mlc: .*--passes=([a-z]+,)*$p(,|\s|$)" passes/*.ir && ok || bad "no tests/passes/ case runs --passes=$p"
done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
