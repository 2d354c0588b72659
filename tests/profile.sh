#!/usr/bin/env bash
# profile.sh MLC SRC — profiles that name the kernels: `mlc run --profile`
# prints one row per kernel the train entry calls (the same set the emitted
# LLVM IR's mlc_train calls) and per layer, slowest first; $MLC_PERF_MAP
# writes perf's /tmp/perf-<pid>.map with the entries and kernels at the
# addresses the object places them. No timing is checked.
set -uo pipefail
mlc=$1 src=$2
cd "$src/tests"
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

spec=../examples/xor.yaml
# the kernels mlc_train calls, from the module text
"$mlc" ir --emit llvm --threads 1 "$spec" |
	awk '/^define void @mlc_train/ {t = 1} t && /^}/ {t = 0} t && /call void @k/ {sub(/.*call void @/, ""); sub(/\(.*/, ""); print}' |
	sort -u >"$tmp/want"
[ -s "$tmp/want" ] && ok "mlc_train calls kernels" || bad "no kernels found in mlc_train"

run "$mlc" run --profile --threads 1 --no-cache "$spec"
[ $rc -eq 0 ] && ok "--profile exits 0" || bad "--profile: exit $rc" "$err"
grep -q '^profile: mlc_train, 20 calls, .* ms per call in [0-9]* kernels; peaks measured now for 1 thread: sgemm .* GFLOP/s, copy .* GB/s$' <<<"$out" &&
	ok "header" || bad "header" "$out"
# the kernel table: between the "kernel" heading and the blank line
awk '/^kernel / {t = 1; next} /^$/ {t = 0} t {print $1}' <<<"$out" | sort -u >"$tmp/got"
diff -u "$tmp/want" "$tmp/got" >"$tmp/diff" && ok "one row per kernel of mlc_train" ||
	bad "kernel rows differ from mlc_train's calls" "$(cat "$tmp/diff")"
# sorted by time per step, slowest first
awk '/^kernel / {t = 1; next} /^$/ {t = 0} t {print $2}' <<<"$out" >"$tmp/ms"
sort -g -r "$tmp/ms" | diff -q - "$tmp/ms" >/dev/null && ok "sorted, slowest first" || bad "not sorted" "$out"
# a matmul row is rated in GFLOP/s against the sgemm peak, an elementwise one in GB/s
grep -qE '^k[0-9]+\.matmul +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ GF/s +[0-9]+% +matmul$' <<<"$out" && ok "matmul in GF/s" ||
	bad "no matmul row in GF/s" "$out"
grep -qE '^k[0-9]+\.mse +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ GB/s +[0-9]+% +mse$' <<<"$out" && ok "mse in GB/s" ||
	bad "no mse row in GB/s" "$out"
grep -qE '^k[0-9]+\.fused .* matmul\+bias_add\+sigmoid$' <<<"$out" && ok "fused kernel lists its ops" ||
	bad "no fused row with its ops" "$out"
# the layer table names the spec's layers
for l in hidden out loss; do
	grep -qE "^$l +[0-9.]+ +[0-9.]+$" <<<"$out" && ok "layer $l" || bad "no layer row $l" "$out"
done
# at two threads the peak is for two
run "$mlc" run --profile --threads 2 "$spec"
[ $rc -eq 0 ] && grep -q 'peaks measured now for 2 threads' <<<"$out" && ok "--threads 2" || bad "--threads 2: $rc" "$out" "$err"

refused "--profile with --eval" "error: --profile is for training; it cannot be combined with --eval" -- \
	"$mlc" run --profile --eval "$spec"
refused "--profile with --predict" "--profile is for training; it cannot be combined with --predict" -- \
	"$mlc" run --profile --predict "$tmp/p.csv" "$spec"
"$mlc" ir --threads 1 "$spec" >"$tmp/xor.ir"
refused "--profile on an IR file" "error: --profile trains on the spec's data; an IR file has none" -- \
	"$mlc" run --profile "$tmp/xor.ir"
refused "--profile takes no value" "option --profile takes no value" -- "$mlc" run --profile=3 "$spec"

# perf's map: every entry and kernel function of the object, at its place.
MLC_PERF_MAP=1 "$mlc" run --threads 1 --epochs 1 --quiet "$spec" >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait $pid
rc=$?
map=/tmp/perf-$pid.map
if [ $rc -eq 0 ] && [ -s "$map" ]; then
	mv "$map" "$tmp/map"
	ok "perf map written"
	for e in mlc_predict mlc_eval mlc_grad mlc_train $(cat "$tmp/want"); do
		grep -qE "^[0-9a-f]+ [0-9a-f]+ $e\$" "$tmp/map" && ok "perf map: $e" || bad "perf map lacks $e" "$(cat "$tmp/map")"
	done
	# the same sizes and relative places as in the object (mlc compile writes the same module)
	"$mlc" compile --threads 1 "$spec" -o "$tmp/xor" >/dev/null
	readelf -sW "$tmp/xor.o" | awk '$4 == "FUNC" && $3 > 0 {print $2, $3, $8}' >"$tmp/obj"
	# offsets from mlc_train and sizes, in each
	python3 - "$tmp/obj" "$tmp/map" >"$tmp/diff" <<'PY'
import sys
def rel(path, size_base):
    f = {}
    for line in open(path):
        at, size, name = line.split()
        f[name] = (int(at, 16), int(size, size_base))
    base = f["mlc_train"][0]
    return {n: (a - base, s) for n, (a, s) in f.items()}
obj, run = rel(sys.argv[1], 10), rel(sys.argv[2], 16)
if len(obj) < 8 or obj != run:
    print("object:", sorted(obj.items()), "\nmap:", sorted(run.items()))
PY
	[ $? -eq 0 ] && [ ! -s "$tmp/diff" ] && ok "perf map matches the object's layout" ||
		bad "perf map differs from the object" "$(cat "$tmp/diff")"
else
	rm -f "$map"
	bad "MLC_PERF_MAP=1: exit $rc, no $map" "$(cat "$tmp/err")"
fi
MLC_PERF_MAP=0 "$mlc" run --threads 1 --epochs 1 --quiet "$spec" >/dev/null 2>&1 &
pid=$!
wait $pid
[ ! -e /tmp/perf-$pid.map ] && ok "MLC_PERF_MAP=0 writes none" || { rm -f /tmp/perf-$pid.map; bad "MLC_PERF_MAP=0 wrote a map"; }

# gdb: with $MLC_JIT_GDB=1 each object is registered with gdb's JIT
# interface, so a breakpoint on a kernel's name is hit and the backtrace
# names the kernel and the entry that called it (setup.sh installs gdb for
# the tests).
if command -v gdb >/dev/null; then
	kern=$(grep -m1 '\.mse$' "$tmp/want")
	for v in 1 0; do
		MLC_JIT_GDB=$v timeout 120 gdb -nx -batch -ex 'set breakpoint pending on' -ex "break $kern" -ex run -ex bt \
			-ex kill --args "$mlc" run --threads 1 --epochs 1 --quiet --no-cache "$spec" >"$tmp/gdb" 2>&1
		if [ $v = 1 ]; then
			grep -qE '^#0 .* in k[0-9]+(\.|\[)mse\]? \(\)' "$tmp/gdb" && grep -qE '^#1 .* in mlc_train \(\)' "$tmp/gdb" &&
				ok "gdb breaks in $kern, called from mlc_train" || bad "MLC_JIT_GDB=1: gdb did not stop in $kern" "$(cat "$tmp/gdb")"
		else
			! grep -q 'hit Breakpoint' "$tmp/gdb" && ok "without MLC_JIT_GDB gdb sees no kernel" ||
				bad "gdb named a kernel without MLC_JIT_GDB" "$(cat "$tmp/gdb")"
		fi
	done
else
	echo "skip gdb (not installed)"
fi

echo "profile.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
