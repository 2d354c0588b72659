#!/usr/bin/env bash
# valgrind.sh MLC SRC — memcheck on what users run: `mlc check` and `mlc ir`
# on every example and a one-epoch `mlc run` of each, on small slices of the
# data (Fashion-MNIST: 128 training and 64 test images; CIFAR-10: one batch
# of 8 synthetic images each, tests/data/make_cifar.py: under memcheck the
# CNNs cost seconds per image). Any invalid access,
# use of an uninitialized value, or definite or indirect leak fails the test.
# JIT'd code comes from the object cache warmed by a native run first, except
# for one cold compile (xor, --no-cache) that takes LLVM's optimizer and code
# generator through memcheck too. Runs use one thread (valgrind serializes
# threads, and the pool's idle workers spin, which under valgrind costs
# minutes), except one at --threads 2 that takes the pool and split kernels
# through memcheck. Suppressions (tests/valgrind.supp) cover only libraries'
# internals, each with its reason. Skipped (exit 77) without valgrind or for
# a sanitizer build (ASan and valgrind do not mix). `valgrind.sh MLC SRC I/N`
# takes only every N-th example from the I-th (1-based), so ctest can run
# shards side by side; the one-off runs belong to shard 1.
set -uo pipefail
mlc=$1 src=$2 shard=${3:-1/1}
si=${shard%/*} sn=${shard#*/}
if ! command -v valgrind >/dev/null; then
	echo "valgrind.sh: valgrind is not installed (Debian package valgrind): skipped"
	exit 77
fi
libs=$(ldd "$mlc" 2>/dev/null)
if [[ $libs == *libasan* || $libs == *libubsan* ]]; then
	echo "valgrind.sh: $mlc is a sanitizer build: skipped"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
start=$SECONDS
vg=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --suppressions="$src/tests/valgrind.supp")

# memcheck NAME ARGS...: mlc ARGS under valgrind; its report is shown on failure.
memcheck() {
	local name=$1; shift
	local t0=$SECONDS
	if "${vg[@]}" --log-file="$tmp/vg.log" "$mlc" "$@" >"$tmp/out" 2>"$tmp/err"; then
		pass=$((pass + 1))
		echo "ok   $name ($((SECONDS - t0)) s)"
	else
		fail=$((fail + 1))
		echo "FAIL $name: exit $? (99: valgrind found errors): mlc $*"
		cat "$tmp/vg.log" "$tmp/err"
	fi
}

cd "$src/examples"
specs=()
k=0
for spec in *.yaml; do
	[ $((k % sn + 1)) -eq "$si" ] && specs+=("$spec")
	k=$((k + 1))
done

# Data slices, and copies of the specs that read them.
fm=/usr/share/datasets/fashion-mnist
for part in train:128 t10k:64; do
	set=${part%:*} n=${part#*:}
	python3 "$src/tests/data/idx_subset.py" "$fm/$set-images-idx3-ubyte.gz" "$tmp/$set-images" "$n" || fail=$((fail + 1))
	python3 "$src/tests/data/idx_subset.py" "$fm/$set-labels-idx1-ubyte.gz" "$tmp/$set-labels" "$n" || fail=$((fail + 1))
done
python3 "$src/tests/data/make_cifar.py" "$tmp/train.bin" 8 1
python3 "$src/tests/data/make_cifar.py" "$tmp/test.bin" 8 2
slice() { # SPEC -> path of a copy that reads the slices
	local out=$tmp/$(basename "$1")
	if grep -q "$fm" "$1"; then
		sed -e "s#$fm/\([a-z0-9]*\)-\([a-z]*\)-idx[13]-ubyte.gz#$tmp/\1-\2#" "$1" >"$out"
	elif grep -q cifar10 "$1"; then
		sed '/^data:/,$d' "$1" >"$out"
		printf 'data:\n  format: cifar10\n  train: %s\n  test: %s\n  scale: 0.00392156862745098\n  batch_size: 8\n' \
			"$tmp/train.bin" "$tmp/test.bin" >>"$out"
	else
		out=$1
	fi
	echo "$out"
}

# transfer_head and distill read trained weights beside them: their sliced
# copies get them from native one-epoch runs of transfer_base and lenet.
native() { # NAME ARGS...
	local name=$1; shift
	"$mlc" "$@" >/dev/null 2>"$tmp/err" || { fail=$((fail + 1)); echo "FAIL native $name"; cat "$tmp/err"; }
}
for spec in "${specs[@]}"; do
	case $spec in
	transfer_head.yaml) native "transfer_base" run --threads 1 --epochs 1 --quiet "$(slice transfer_base.yaml)" \
			--save "$tmp/transfer_base.safetensors" ;;
	distill.yaml) native "lenet" run --threads 1 --epochs 1 --quiet "$(slice lenet.yaml)" --save "$tmp/lenet.safetensors" ;;
	esac
	s=$(slice "$spec")
	memcheck "check $spec" check "$s"
	memcheck "ir $spec" ir "$s"
	native "run $spec" run --threads 1 --epochs 1 --quiet "$s"
	memcheck "run $spec" run --threads 1 --epochs 1 "$s"
done
if [ "$si" -eq 1 ]; then
	memcheck "run xor.yaml, cold compile" run --threads 1 --no-cache --epochs 1 xor.yaml
	s=$(slice softmax_regression.yaml)
	native "run softmax_regression.yaml, 2 threads" run --threads 2 --epochs 1 --quiet "$s"
	memcheck "run softmax_regression.yaml, 2 threads" run --threads 2 --epochs 1 "$s"
fi

echo "valgrind: $pass passed, $fail failed in $((SECONDS - start)) s"
[ $fail -eq 0 ]
