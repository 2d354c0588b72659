#!/usr/bin/env bash
# run.sh <harness|all> <seconds> — builds the libFuzzer harnesses if needed
# (build-fuzz/, clang, -DMLC_FUZZ=ON) and runs each for <seconds> on its seed
# corpus (tests/fuzz/corpus.sh), with spec.dict for the spec and IR harnesses.
# New inputs that add coverage go to build-fuzz/corpus/<harness>/; crashers,
# leaks and timeouts to build-fuzz/crashes/<harness>/ (reproduce with
# `build-fuzz/tests/fuzz/fuzz_<harness> FILE`). Exits 1 if any harness failed.
# Environment: MLC_FUZZ_BUILD (build folder), MLC_FUZZ_CC (compiler),
# MLC_FUZZ_JOBS (harnesses run at once, 1), MLC_FUZZ_BUILD_JOBS (make -j, 2),
# MLC_FUZZ_ARGS (more libFuzzer flags).
# run.sh --check exits 0 when a clang that can build the harnesses is installed.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
harnesses=(spec ir idx csv cifar safetensors ckpt plot cache)
what=${1:-} secs=${2:-}
# the first clang that can link a libFuzzer target (clang-N needs libclang-rt-N-dev)
fuzz_cc() {
	local c
	for c in ${MLC_FUZZ_CC:-clang clang-19 clang-14}; do
		command -v "$c" >/dev/null &&
			echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
			"$c" -x c - -fsanitize=fuzzer -o /dev/null 2>/dev/null && { echo "$c"; return 0; }
	done
	return 1
}
if [ "$what" = --check ]; then
	fuzz_cc >/dev/null
	exit
fi
if [ -z "$what" ] || [ -z "$secs" ] || [[ ! $secs =~ ^[0-9]+$ ]]; then
	echo "usage: tests/fuzz/run.sh <${harnesses[*]// /|}|all> <seconds>" >&2
	exit 2
fi
if [ "$what" = all ]; then
	list=("${harnesses[@]}")
elif [[ " ${harnesses[*]} " == *" $what "* ]]; then
	list=("$what")
else
	echo "run.sh: error: unknown harness '$what' (harnesses: ${harnesses[*]}, all)" >&2
	exit 2
fi

bdir=${MLC_FUZZ_BUILD:-$src/build-fuzz}
if [ ! -f "$bdir/CMakeCache.txt" ]; then
	cc=$(fuzz_cc) || { echo "run.sh: error: no clang with libFuzzer (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
	CC=$cc cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMLC_FUZZ=ON >/dev/null || exit 1
fi
cmake --build "$bdir" -j "${MLC_FUZZ_BUILD_JOBS:-2}" >/dev/null || { echo "run.sh: error: the fuzz build failed" >&2; exit 1; }

# one seed folder per run, so runs of different harnesses can share the build
seeds=$bdir/seeds-$$
trap 'rm -rf "$seeds"' EXIT
bash "$src/tests/fuzz/corpus.sh" "$seeds" || exit 1

run_one() {
	local h=$1 corpus=$bdir/corpus/$1 crashes=$bdir/crashes/$1 log=$bdir/fuzz-$1.log
	mkdir -p "$corpus" "$crashes"
	local args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536
		    -print_final_stats=1 -artifact_prefix="$crashes/")
	case $h in spec | ir) args+=(-dict="$src/tests/fuzz/spec.dict") ;; esac
	# the first corpus folder collects new inputs; the seeds are only read
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bdir/tests/fuzz/fuzz_$h" "${args[@]}" ${MLC_FUZZ_ARGS:-} "$corpus" "$seeds/$h" >"$log" 2>&1
	local rc=$?
	local runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
	local speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
	if [ $rc -eq 0 ]; then
		echo "fuzz_$h: ok, ${runs:-?} executions in ${secs}s (${speed:-?}/s)"
	else
		echo "fuzz_$h: FAILED (exit $rc) after ${runs:-?} executions; log $log, inputs in $crashes:"
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -5 | sed 's/^/  /'
	fi
	return $rc
}

jobs=${MLC_FUZZ_JOBS:-1} fail=0 pids=()
for h in "${list[@]}"; do
	run_one "$h" &
	pids+=($!)
	if [ ${#pids[@]} -ge "$jobs" ]; then
		wait "${pids[0]}" || fail=1
		pids=("${pids[@]:1}")
	fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
