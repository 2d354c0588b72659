#!/usr/bin/env bash
# corpus.sh OUT — collects the fuzzers' seed corpora into OUT/<harness>/ from
# the files the repository already has (examples/, tests/golden, tests/ir,
# tests/fuse, examples/data) plus a few small data files written here
# (IDX, CIFAR-10, safetensors; from Fashion-MNIST when it is installed), so
# nothing is committed twice.
# corpus.sh --dict rewrites tests/fuzz/spec.dict from the sources.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${1:-}" = --dict ]; then
	cd "$src"
	{
		echo '# spec.dict — libFuzzer dictionary for fuzz_spec and fuzz_ir: spec keys, layer'
		echo '# kinds, op and attribute names, option values, YAML syntax. Written by'
		echo '# tests/fuzz/corpus.sh --dict from the string literals of frontend/*.c, the rows'
		echo '# of ir/ops.def and the keys of examples/ and tests/golden/.'
		{
			grep -ohE '"[a-z_][a-z0-9_]*"' frontend/*.c | tr -d '"'
			grep -oE '^OP\([A-Z_0-9]+, *"[a-z_0-9]+"' ir/ops.def | sed 's/.*"\(.*\)"/\1/'
			grep -ohE '"[a-z_0-9]+:[^"]*"' ir/ops.def | tr -d '"' | tr ',' '\n' | sed 's/:.*//'
			grep -ohE '^ *-? *[a-z_][a-z0-9_]*:' examples/*.yaml tests/golden/*.yaml | sed 's/^[ -]*//; s/:$//'
		} | sort -u | awk '{ printf "\"%s\"\n\"%s: \"\n", $0, $0 }'
		printf '%s\n' '"- "' '": "' '"\x0A  "' '"["' '"]"' '"{"' '"}"' '", "' '"&a "' '"*a"' '"!!str "' \
			'"---"' '"..."' '"~"' '"null"' '"true"' '"false"' '"1e308"' '"-1"' '"0"' '".nan"' '".inf"' \
			'"9223372036854775807"' '"18446744073709551616"' '"%"' '"f32["' '"i64["' '" = "' '"# "'
	} >tests/fuzz/spec.dict
	exit 0
fi

out=${1:?usage: corpus.sh OUT | --dict}
mkdir -p "$out"/{spec,ir,idx,csv,cifar,safetensors,cache}
for f in "$src"/examples/*.yaml; do cp "$f" "$out/spec/example_${f##*/}"; done
for f in "$src"/tests/golden/*.yaml; do cp "$f" "$out/spec/golden_${f##*/}"; done
for f in "$src"/tests/ir/*.ir "$src"/tests/fuse/*.ir; do d=${f%/*}; cp "$f" "$out/ir/${d##*/}_${f##*/}"; done
# fuzz_csv's first byte picks the label columns (low two bits + 1)
for f in "$src"/examples/data/*.csv; do
	{ printf '\0'; head -c 4000 "$f"; } >"$out/csv/$(basename "$f")"
done

python3 - "$out" <<'PY'
import gzip, json, os, struct, sys
out = sys.argv[1]

def put(sub, name, data):
    with open(os.path.join(out, sub, name), "wb") as f:
        f.write(data)

def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

def idx_pair(images, labels):  # fuzz_idx: 2-byte length of the images file, images, labels
    return struct.pack(">H", len(images)) + images + labels

im = idx([3, 4, 4], bytes(range(48)))
lb = idx([3], bytes([0, 1, 2]))
put("idx", "raw", idx_pair(im, lb))
put("idx", "gz", idx_pair(gzip.compress(im, mtime=0), gzip.compress(lb, mtime=0)))
put("idx", "rank1", idx_pair(idx([2], b"\x07\x08"), lb[:4] + struct.pack(">I", 2) + b"\x01\x00"))
fm = "/usr/share/datasets/fashion-mnist"
for split in ("t10k",):
    try:
        with gzip.open(f"{fm}/{split}-images-idx3-ubyte.gz") as f:
            hdr, px = f.read(16), f.read(2 * 784)
        with gzip.open(f"{fm}/{split}-labels-idx1-ubyte.gz") as f:
            lhdr, lab = f.read(8), f.read(2)
    except OSError:
        continue
    im = hdr[:4] + struct.pack(">I", 2) + hdr[8:] + px
    lb = lhdr[:4] + struct.pack(">I", 2) + lab
    put("idx", "fashion", idx_pair(im, lb))
    put("idx", "fashion_gz", idx_pair(gzip.compress(im, mtime=0), gzip.compress(lb, mtime=0)))

rec = lambda k: bytes([k]) + bytes((i * 7 + k) & 255 for i in range(3072))
put("cifar", "one", rec(3))
put("cifar", "two", rec(2) + rec(9))
put("cifar", "gz", gzip.compress(rec(1) + rec(0), mtime=0))
put("cifar", "short", rec(4)[:100])

def st(tensors, meta=None):
    hdr, data = {}, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += struct.pack(f"<{n}f", *[0.5 * i for i in range(n)])
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "mlp", st([("dense1.w", [4, 3]), ("dense1.b", [3]), ("dense2.w", [3, 2])],
                             {"format": "mlc", "model": "m"}))
put("safetensors", "scalar", st([("s", [])]))
put("safetensors", "empty", st([]))

# fuzz_cache: a flag byte (bit 0: the harness writes its key into the header,
# bit 1: a valid HMAC), then an entry: magic, version, entries, key (len, h1,
# h2), object length, HMAC, object (jitcache.c's jc_header)
def entry(flags, obj, version=2):
    hdr = b"MLCJITO\n" + struct.pack("<II4Q", version, 1, 0, 0, 0, len(obj)) + bytes(32)
    return bytes([flags]) + hdr + obj
elf = b"\x7fELF" + bytes(range(60))
put("cache", "valid", entry(3, elf))
put("cache", "unkeyed", entry(1, elf))
put("cache", "old_version", entry(3, elf, 1))
put("cache", "header_only", entry(3, b"")[:81])
PY
