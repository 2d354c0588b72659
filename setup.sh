#!/usr/bin/env bash
# setup.sh — installs what mlc needs on Debian 12, builds it, and then
#   ./setup.sh run    trains the default example (Fashion-MNIST MLP)
#   ./setup.sh test   runs the whole test suite: a -Werror build (whose tests include
#                     tests/valgrind.sh, memcheck on every example), then again under ASan+UBSan,
#                     then each libFuzzer harness for 5 s (tests/fuzz/run.sh)
#   ./setup.sh build  only installs and builds
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-run}

pkgs=(build-essential cmake pkg-config libyaml-dev llvm-19-dev libopenblas-dev libcmocka-dev
      zlib1g-dev libcairo2-dev nettle-dev libjansson-dev dataset-fashion-mnist)
# valgrind: memcheck on the examples; clang + its runtime libraries: libFuzzer
# for the fuzz smoke run (docs/fuzzing.md)
[ "$what" = test ] && pkgs+=(python3-torch python3-numpy valgrind gdb clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
build() { # dir, extra cmake args...
	local dir=$1; shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$jobs"
}

case "$what" in
run)
	build build
	./build/mlc run examples/fashion_mlp.yaml
	;;
test)
	build build -DMLC_WERROR=ON
	(cd build && ctest --output-on-failure -j "$jobs")
	build build-asan -DMLC_WERROR=ON -DMLC_SANITIZE=ON
	# LLVM keeps some allocations for the process lifetime; leaks are checked in our own tests' code paths.
	(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j "$jobs")
	# a few seconds per fuzz harness (docs/fuzzing.md): enough to catch a crash on the seeds
	if tests/fuzz/run.sh --check; then
		MLC_FUZZ_JOBS=$jobs MLC_FUZZ_BUILD_JOBS=$jobs tests/fuzz/run.sh all 5
	else
		echo "setup: no clang with libFuzzer; skipping the fuzz smoke run"
	fi
	;;
build)
	build build
	;;
*)
	echo "usage: ./setup.sh [run|test|build]" >&2
	exit 2
	;;
esac
