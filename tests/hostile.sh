#!/usr/bin/env bash
# hostile.sh MLC SRC — inputs written to hurt: YAML bombs, deep nesting, huge
# and negative sizes, NaN hyperparameters, non-UTF-8 bytes, empty files,
# directories, truncated and lying data files, malformed safetensors, and the
# fuzzers' old crashers (tests/hostile/). Each must end within the timeout
# with exit 2 and one error line that names the file and what is wrong.
set -uo pipefail
mlc=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
shopt -s extglob

# expect NAME FILE MSG CMD... — CMD exits 2 within 20 s; stderr's first line is
# "FILE: error: ...MSG..." or "FILE:LINE:COL: error: ...MSG...", and it is the
# only error.
expect() {
	local name=$1 file=$2 msg=$3
	shift 3
	local t0=$SECONDS
	timeout 20 "$@" >out 2>err
	local rc=$? first
	first=$(head -n 1 err)
	if [ $rc -eq 124 ]; then
		bad "$name: no answer within 20 s"
	elif [ $rc -ne 2 ]; then
		bad "$name: exit $rc, want 2: $(head -c 300 err)"
	elif [[ $first != "$file: error: "* && $first != "$file":+([0-9]):+([0-9])": error: "* ]]; then
		bad "$name: the first line does not name $file: $first"
	elif [[ $first != *"$msg"* ]]; then
		bad "$name: want '$msg' in: $first"
	elif [ "$(grep -c ': error: ' err)" -ne 1 ]; then
		bad "$name: more than one error: $(head -c 300 err)"
	else
		ok
	fi
	[ $((SECONDS - t0)) -le 10 ] || bad "$name: took $((SECONDS - t0)) s"
}

# A small valid model around the part under test.
spec() { # FILE INPUT-SHAPE LAYER OPTIMIZER-LR [DATA-LINE]
	printf 'name: t\ninputs:\n  x: {shape: [%s]}\nlayers:\n  - %s\nloss: mse\noptimizer: {type: sgd, lr: %s}\n%s\n' \
		"$2" "$3" "$4" "${5:-}" >"$1"
}

# ---- specs ----
# billion laughs: nine levels of nine aliases each; refused, never expanded
{
	echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
	l=(a b c d e f g h i j)
	for i in $(seq 1 9); do
		p=${l[i - 1]}
		echo "${l[i]}: &${l[i]} [*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p]"
	done
} >bomb.yaml
expect "yaml bomb" bomb.yaml "anchors and aliases are not supported" "$mlc" check bomb.yaml
{ printf 'a: '; head -c 200000 /dev/zero | tr '\0' '['; head -c 200000 /dev/zero | tr '\0' ']'; echo; } >deep.yaml
expect "deep flow nesting" deep.yaml "nested more than 64 levels" "$mlc" check deep.yaml
for i in $(seq 0 99); do printf "%$((2 * i))sk$i:\n" ""; done >deepmap.yaml
expect "deep block nesting" deepmap.yaml "nested more than 64 levels" "$mlc" check deepmap.yaml
{ printf '# '; head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' x; echo; } >big.yaml
expect "spec over 16 MiB" big.yaml "larger than 16 MiB" "$mlc" check big.yaml
: >empty.yaml
expect "empty spec" empty.yaml "the spec is empty" "$mlc" check empty.yaml
printf '# nothing but a comment\n' >comment.yaml
expect "comment-only spec" comment.yaml "the spec is empty" "$mlc" check comment.yaml
mkdir dir.yaml
expect "directory as spec" dir.yaml "Is a directory" "$mlc" check dir.yaml
expect "missing spec" nosuch.yaml "No such file" "$mlc" check nosuch.yaml
printf 'name: t\xff\xfe\ninputs:\n  x: {shape: [4]}\n' >latin.yaml
expect "non-UTF-8 byte" latin.yaml "invalid leading UTF-8 octet (0xFF)" "$mlc" check latin.yaml
printf 'name: t\ninputs:\n  x\xc3: {shape: [4]}\n' >cut.yaml
expect "cut UTF-8 sequence" cut.yaml "invalid trailing UTF-8 octet" "$mlc" check cut.yaml
printf 'name: t\x00\n' >nul.yaml
expect "NUL byte" nul.yaml "control characters are not allowed" "$mlc" check nul.yaml
printf '\xff\xfen\x00a\x00m\x00e\x00:\x00' >utf16.yaml
expect "UTF-16 spec" utf16.yaml "UTF-8" "$mlc" check utf16.yaml
spec overflow.yaml "2, 4294967296, 2" "dense: 10" 0.1
expect "dimension over 2^31" overflow.yaml "'shape' must be at most 2147483647" "$mlc" check overflow.yaml
spec product.yaml "2147483647, 2147483647, 2147483647" "dense: 10" 0.1
expect "dimensions whose product overflows 64 bits" product.yaml "more than 2147483647 values per sample" "$mlc" check product.yaml
spec wide.yaml "100000" "dense: 100000000" 0.1
expect "weight over 2^31 elements" wide.yaml "at most 2147483647 weights per layer" "$mlc" check wide.yaml
python3 -c "
print('name: t\ninputs:\n  x: {shape: [4]}\nlayers:')
for i in range(10001): print('  - relu')
print('loss: mse')" >many.yaml
expect "10,001 layers" many.yaml "more than 10000 layers" "$mlc" check many.yaml
spec units.yaml "4" "dense: 99999999999999999999999" 0.1
expect "integer beyond 64 bits" units.yaml "expected a positive integer for 'units'" "$mlc" check units.yaml
spec neg.yaml "4" "dense: -5" 0.1
expect "negative units" neg.yaml "expected a positive integer for 'units', got '-5'" "$mlc" check neg.yaml
spec negshape.yaml "-784" "dense: 5" 0.1
expect "negative dimension" negshape.yaml "expected a positive integer for 'shape', got '-784'" "$mlc" check negshape.yaml
spec zeroshape.yaml "0" "dense: 5" 0.1
expect "zero dimension" zeroshape.yaml "expected a positive integer for 'shape', got '0'" "$mlc" check zeroshape.yaml
spec rank.yaml "1, 1, 1, 1, 1, 1, 1" "dense: 5" 0.1
expect "rank over the limit" rank.yaml "expected a list of 1 to 5 dimensions" "$mlc" check rank.yaml
spec nan.yaml "4" "dense: 5" .nan
expect "NaN learning rate" nan.yaml "expected a positive number for 'lr', got '.nan'" "$mlc" check nan.yaml
spec inf.yaml "4" "dense: 5" 1e999
expect "learning rate beyond f64" inf.yaml "expected a positive number for 'lr', got '1e999'" "$mlc" check inf.yaml
spec nanmom.yaml "4" "dense: 5" "0.1, momentum: .NaN"
expect "NaN momentum" nanmom.yaml "momentum" "$mlc" check nanmom.yaml
spec bs.yaml "4" "dense: 5" 0.1 "data: {batch_size: 1e30}"
expect "batch size beyond int" bs.yaml "expected a positive integer for 'batch_size', got '1e30'" "$mlc" check bs.yaml
spec scale.yaml "4" "dense: 5" 0.1 "data: {scale: .nan}"
expect "NaN scale" scale.yaml "scale" "$mlc" check scale.yaml

# ---- data files (through `mlc run`, which loads them) ----
python3 - <<'PY' || bad "python3 could not write the data files"
import gzip, json, struct
W = lambda n, b: open(n, "wb").write(b)

def idx(dims, payload, magic=b"\0\0\x08"):
    return magic + bytes([len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

W("lb.idx", idx([3], bytes([0, 1, 2])))
W("im.idx", idx([3, 2, 2], bytes(12)))
W("badmagic.idx", b"\x12\x34\x08\x03" + bytes(20))
W("trunc.idx", idx([3, 2, 2], bytes(7)))
W("trail.idx", idx([3, 2, 2], bytes(20)))
W("lying.idx", idx([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], bytes(12)))
W("liar.idx", idx([60000, 28, 28], bytes(784)))
W("toomany.idx", idx([65536, 65536, 2], bytes(16)))
W("hdrtrunc.idx", idx([3, 2, 2], b"")[:9])
W("rank0.idx", b"\0\0\x08\x00")
W("f64.idx", idx([3, 2, 2], bytes(96), b"\0\0\x0e"))
W("gztrunc.idx", gzip.compress(idx([3, 2, 2], bytes(12)), mtime=0)[:-10])
W("gzjunk.idx", b"\x1f\x8b\x08\x00" + bytes(30))
W("empty.idx", b"")
W("lb4.idx", idx([4], bytes(4)))
W("lb2d.idx", idx([3, 1], bytes(3)))

W("cifar_short.bin", bytes(3073 + 100))
W("cifar_label.bin", bytes([12]) + bytes(3072))
W("cifar_empty.bin", b"")

def st(hdr, data, hlen=None):
    h = hdr if isinstance(hdr, bytes) else json.dumps(hdr).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data

def t(shape, off, dtype="F32"):
    return {"dtype": dtype, "shape": shape, "data_offsets": off}

ok = {"dense1.weight": t([1, 2], [0, 8]), "dense1.bias": t([1], [8, 12])}
W("st_hlen.st", st(ok, bytes(12), hlen=1 << 40))
W("st_short.st", b"\x10\0\0")
W("st_empty.st", b"")
W("st_overlap.st", st({"dense1.weight": t([1, 2], [0, 8]), "dense1.bias": t([1], [4, 8])}, bytes(8)))
W("st_range.st", st(ok, bytes(10)))
W("st_gap.st", st(ok, bytes(16)))
W("st_neg.st", st({"dense1.weight": t([1, 2], [-8, 0]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_dtype.st", st({"dense1.weight": t([1, 2], [0, 4], "F16"), "dense1.bias": t([1], [4, 8])}, bytes(8)))
W("st_count.st", st({"dense1.weight": t([1, 3], [0, 8]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_huge.st", st({"dense1.weight": t([4294967296] * 3, [0, 8]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_rank.st", st({"dense1.weight": t([1] * 7 + [2], [0, 8]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_name.st", st({"dense1.weights": t([1, 2], [0, 8]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_extra.st", st({**ok, "dense9.bias": t([1], [12, 16])}, bytes(16)))
W("st_shape.st", st({"dense1.weight": t([2, 1], [0, 8]), "dense1.bias": t([1], [8, 12])}, bytes(12)))
W("st_json.st", st(b'{"dense1.weight": {', bytes(12)))
W("st_deep.st", st(b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}", b""))
W("st_latin.st", st(b'{"dense1.\xff": {"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}', bytes(8)))
PY
printf '0,0,0\n0,1,1\n1,0,1\n1,1,0\n' >xor.csv
printf 'a,b,y\n1,2,0\n3,4\n' >ragged.csv
printf '1,2,0\n3,x4,1\n' >text.csv
printf '1,2,0\n3,nan,1\n' >nan.csv
printf '1,2,0\n3,1e39,1\n' >range.csv
printf '1,2,0\n\n3,4,1\n' >gap.csv
: >empty.csv
mkdir dir.csv

csv_spec() { spec "$1" 2 "dense: 1" 0.1 "data: {format: csv, train: $2, batch_size: 2, epochs: 1}"; }
for c in ragged:"3:4: error: row has 2 cells, expected 3" text:"2:3: error: cell 'x4' is not a number" \
	nan:"2:3: error: cell 'nan' is not a finite number" range:"2:3: error: cell '1e39' is out of range" \
	gap:"2:1: error: empty line between rows"; do
	name=${c%%:*} want=${c#*:}
	csv_spec c_$name.yaml $name.csv
	# file:line:col, then what is wrong
	expect "csv $name" $name.csv "${want#*error: }" "$mlc" run --quiet c_$name.yaml
	[[ $(head -n 1 err) == "$name.csv:$want"* ]] && ok || bad "csv $name: want $name.csv:$want, got $(head -n 1 err)"
done
# one bad cell in a 20 MB line: the error quotes a window around it, not the line
{ printf '1,2,0\n3,'; head -c 10000000 /dev/zero | tr '\0' ' '; printf 'x4'
  head -c 10000000 /dev/zero | tr '\0' ' '; printf ',1\n'; } >long.csv
csv_spec c_long.yaml long.csv
expect "csv long line" long.csv "2:10000003: error: cell 'x4' is not a number" "$mlc" run --quiet c_long.yaml
[ "$(wc -c <err)" -lt 2000 ] && ok || bad "csv long line: $(wc -c <err) bytes of error output"
# files past the size limits (sparse: nothing is written, nothing may be read)
truncate -s 17G huge.csv huge.st huge.ir
csv_spec c_huge.yaml huge.csv
expect "csv over 16 GiB" huge.csv "larger than 16 GiB, the limit for a CSV file" "$mlc" run --quiet c_huge.yaml
expect "IR text over 16 GiB" huge.ir "larger than 16 GiB, the limit for an IR text file" "$mlc" check huge.ir
csv_spec c_empty.yaml empty.csv
expect "empty csv" empty.csv "no data rows" "$mlc" run --quiet c_empty.yaml
csv_spec c_dir.yaml dir.csv
expect "directory as csv" dir.csv "Is a directory" "$mlc" run --quiet c_dir.yaml
csv_spec c_missing.yaml nosuch.csv
# a missing file is reported at the spec line that names it (docs/spec.md#data-checked-before-training)
expect "missing csv" c_missing.yaml "cannot open data file 'nosuch.csv': No such file" "$mlc" run --quiet c_missing.yaml

idx_spec() {
	printf 'name: t\ninputs:\n  x: {shape: [2, 2]}\nlayers:\n  - flatten\n  - dense: 3\nloss: softmax_cross_entropy\noptimizer: {type: sgd, lr: 0.1}\ndata:\n  format: idx\n  train: {images: %s, labels: %s}\n  batch_size: 2\n  epochs: 1\n' "$2" "$3" >"$1"
}
mkdir dir.idx
for c in badmagic:"bad magic 12 34 08 03" trunc:"truncated: expected 12 bytes of data, found 7" \
	trail:"trailing data: 8 bytes more" lying:"dimensions are too large" \
	liar:"truncated: expected 47040000 bytes of data, found 784" \
	hdrtrunc:"header declares 3 dimensions but the file ends inside them" rank0:"IDX rank 0 is not supported" \
	f64:"unsupported IDX element type 0x0e" gztrunc:"the gzip stream ends early" gzjunk:"corrupt gzip data" \
	empty:"not an IDX file (empty)" dir:"Is a directory" \
	toomany:"dimensions declare 8589934592 items; an IDX file may hold at most 4294967296"; do
	name=${c%%:*}
	idx_spec i_$name.yaml $name.idx lb.idx
	expect "idx $name" $name.idx "${c#*:}" "$mlc" run --quiet i_$name.yaml
done
idx_spec i_lb4.yaml im.idx lb4.idx
expect "idx label count" lb4.idx "has 4 labels but im.idx has 3 images" "$mlc" run --quiet i_lb4.yaml
idx_spec i_lb2d.yaml im.idx lb2d.idx
expect "idx 2-D labels" lb2d.idx "a label file must be 1-D" "$mlc" run --quiet i_lb2d.yaml
# a label the model has no class for: the labels file is named, not the images
# (the up-front data check reports it at the spec's loss line)
printf '\0\0\10\1\0\0\0\3\0\1\11' >lb9.idx
idx_spec i_lb9.yaml im.idx lb9.idx
expect "idx label out of range" i_lb9.yaml "but sample 3 of lb9.idx has 9" \
	"$mlc" run --quiet i_lb9.yaml

cifar_spec() {
	printf 'name: t\ninputs:\n  x: {shape: [32, 32, 3]}\nlayers:\n  - flatten\n  - dense: 10\nloss: softmax_cross_entropy\noptimizer: {type: sgd, lr: 0.1}\ndata:\n  format: cifar10\n  train: %s\n  batch_size: 2\n  epochs: 1\n' "$2" >"$1"
}
for c in cifar_short:"not a whole number of 3073-byte CIFAR-10 records" cifar_label:"record 1 has label 12" \
	cifar_empty:"is empty"; do
	name=${c%%:*}
	cifar_spec $name.yaml $name.bin
	expect "$name" $name.bin "${c#*:}" "$mlc" run --quiet $name.yaml
done

# safetensors weights for the csv model above (dense1.weight f32[1,2], dense1.bias f32[1])
csv_spec w.yaml xor.csv
for c in st_hlen:"header length 1099511627776 runs past the end of the file" \
	st_short:"too short for the 8-byte header length" st_empty:"the file is 0 bytes" \
	st_overlap:"overlap in the data area" st_range:"are not a range inside the 10-byte data area" \
	st_gap:"data bytes 12 to 16 belong to no tensor" st_neg:"data_offsets [-8, 0]" \
	st_dtype:"has dtype F16; only F32 is supported" st_count:"shape has 3 elements (12 bytes) but data_offsets span 8 bytes" \
	st_huge:"shape is too large" st_rank:"more than 6 dimensions" \
	st_name:"has no tensor 'dense1.weight' for the model's parameter" \
	st_extra:"tensor 'dense9.bias' matches no parameter of the model" \
	st_shape:"tensor 'dense1.weight' has the wrong shape for the model's f32[1,2]" \
	st_json:"header is not valid JSON" st_deep:"header nests deeper than 64 levels" \
	st_latin:"header is not valid JSON"; do
	name=${c%%:*}
	expect "safetensors ${name#st_}" $name.st "${c#*:}" "$mlc" run --eval --quiet --weights $name.st w.yaml
done
mkdir dir.st
expect "safetensors over 16 GiB" huge.st "larger than 16 GiB, the limit for a safetensors file" \
	"$mlc" run --eval --quiet --weights huge.st w.yaml
expect "directory as weights" dir.st "Is a directory" "$mlc" run --eval --quiet --weights dir.st w.yaml

# ---- a batch the machine cannot hold: an error, not an abort ----
spec huge_batch.yaml 2 "dense: 1" 0.1 "data: {format: csv, train: xor.csv, batch_size: 2147483647, epochs: 1}"
# (under ASan a failed allocation is a report unless told to return NULL, as malloc does)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1 \
	expect "batch too large to allocate" huge_batch.yaml "a smaller batch_size needs less" "$mlc" run --quiet huge_batch.yaml

# ---- the fuzzers' crashers, fixed: each is rejected cleanly ----
shopt -s nullglob
for f in "$src"/tests/hostile/*.yaml "$src"/tests/hostile/*.ir; do
	cp "$f" .
	expect "crasher ${f##*/}" "${f##*/}" "" "$mlc" check "${f##*/}"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
