#!/usr/bin/env bash
# atomic.sh MLC SRC — no data loss when a disk fills up or turns read-only:
# --save, --checkpoint, --predict, `mlc compile` and `mlc plot` on a tiny tmpfs fail with exit 2 and
# "path: error: cannot write: ...", leave the previous file byte for byte and
# no temp file. Needs root (mount); skipped with a reason otherwise. First, without
# root: a target that is not a regular file (/dev/null, a FIFO, a link, a folder) is refused.
set -uo pipefail
mlc=$1 src=$2
ex=$src/examples
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$tmp"; }
trap cleanup EXIT

# Targets that are not regular files are refused, never replaced (no root needed).
nonreg=0
try() { # what expected-message command...
	local what=$1 want=$2; shift 2
	timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
	if [ $rc -ne 2 ] || ! grep -qF "$want" "$tmp/err"; then
		echo "FAIL: $what: exit $rc: $(cat "$tmp/err")"; nonreg=1
	fi
}
try "--save /dev/null" "/dev/null: error: cannot write: is a character device" \
	"$mlc" run --quiet --epochs 1 --save /dev/null "$ex/xor.yaml"
[ -c /dev/null ] || { echo "FAIL: /dev/null replaced"; nonreg=1; }
mkfifo "$tmp/fifo"
try "--predict to a FIFO" "$tmp/fifo: error: cannot write: is a FIFO" \
	"$mlc" run --epochs 1 --predict "$tmp/fifo" "$ex/xor.yaml"
[ -p "$tmp/fifo" ] || { echo "FAIL: FIFO replaced"; nonreg=1; }
echo keep >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/link"
try "--save to a symlink" "$tmp/link: error: cannot write: is a symbolic link" \
	"$mlc" run --quiet --epochs 1 --save "$tmp/link" "$ex/xor.yaml"
[ -L "$tmp/link" ] && [ "$(cat "$tmp/victim")" = keep ] || { echo "FAIL: link or its target changed"; nonreg=1; }
try "--checkpoint to a directory" "$tmp: error: cannot write: is a directory" \
	"$mlc" run --quiet --epochs 1 --checkpoint "$tmp" "$ex/xor.yaml"
[ $nonreg -eq 0 ] || exit 1

if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null; then
	echo "SKIPPED: mounting a small tmpfs needs root (uid $(id -u))"
	exit 0
fi
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); }
leftovers() { ls -A "$mnt" | grep -c '\.tmp\.'; }

# the first versions fit
run "$mlc" run --quiet --epochs 2 --save "$mnt/w.safetensors" "$ex/xor.yaml"
[ $rc -eq 0 ] && ok || bad "first save: $rc $err"
run "$mlc" run --eval --predict "$mnt/p.csv" --weights "$mnt/w.safetensors" "$ex/xor.yaml"
[ $rc -eq 0 ] && ok || bad "first predict: $rc $err"
run "$mlc" run --quiet --epochs 2 --checkpoint "$mnt/k.ckpt" "$ex/xor.yaml"
[ $rc -eq 0 ] && ok || bad "first checkpoint: $rc $err"
run "$mlc" compile -o "$mnt/x" "$ex/xor.yaml"
[ $rc -eq 0 ] && ok || bad "first compile: $rc $err"
run "$mlc" run --quiet --epochs 3 --log "$tmp/log.jsonl" "$ex/xor.yaml"
run "$mlc" plot "$tmp/log.jsonl" -o "$mnt/c.svg"
[ $rc -eq 0 ] && ok || bad "first plot: $rc $err"
cp "$mnt/w.safetensors" "$mnt/p.csv" "$mnt/c.svg" "$mnt/k.ckpt" "$mnt/x.ll" "$tmp/"

# then the disk is full: every write fails, nothing changes
dd if=/dev/zero of="$mnt/fill" bs=4k >/dev/null 2>&1
[ "$(df --output=avail "$mnt" | tail -1)" -eq 0 ] && ok || bad "tmpfs not full"
check() { # name what
	[ $rc -eq 2 ] && [[ $err == "$mnt/$1: error: cannot write: $3"* ]] && ok || bad "$2: exit $rc: $err"
	cmp -s "$mnt/$1" "$tmp/$1" && ok || bad "$2: $1 changed"
	[ "$(leftovers)" -eq 0 ] && ok || bad "$2: temp file left: $(ls -A "$mnt")"
}
run "$mlc" run --quiet --epochs 2 --seed 9 --save "$mnt/w.safetensors" "$ex/xor.yaml"
check w.safetensors "save on a full disk" "No space left on device"
run "$mlc" run --predict "$mnt/p.csv" --epochs 1 "$ex/xor.yaml"
check p.csv "predict on a full disk" "No space left on device"
run "$mlc" plot "$tmp/log.jsonl" -o "$mnt/c.svg"
check c.svg "plot on a full disk" "No space left on device"
run "$mlc" run --quiet --epochs 2 --seed 9 --checkpoint "$mnt/k.ckpt" "$ex/xor.yaml"
check k.ckpt "checkpoint on a full disk" "No space left on device"
run "$mlc" compile -o "$mnt/x" "$ex/fashion_mlp.yaml"
check x.ll "compile on a full disk" "No space left on device"

# read-only: the same
rm -f "$mnt/fill"
mount -o remount,ro "$mnt"
run "$mlc" run --quiet --epochs 2 --seed 9 --save "$mnt/w.safetensors" "$ex/xor.yaml"
check w.safetensors "save on a read-only disk" "Read-only file system"
run "$mlc" plot "$tmp/log.jsonl" -o "$mnt/c.svg"
check c.svg "plot on a read-only disk" "Read-only file system"
run "$mlc" run --quiet --epochs 2 --seed 9 --checkpoint "$mnt/k.ckpt" "$ex/xor.yaml"
check k.ckpt "checkpoint on a read-only disk" "Read-only file system"
mount -o remount,rw "$mnt"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
