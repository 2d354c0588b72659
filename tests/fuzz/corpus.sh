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
mkdir -p "$out"/{spec,ir,idx,csv,cifar,safetensors,ckpt,plot,cache}
for f in "$src"/examples/*.yaml; do cp "$f" "$out/spec/example_${f##*/}"; done
for f in "$src"/tests/golden/*.yaml; do cp "$f" "$out/spec/golden_${f##*/}"; done
for f in "$src"/tests/ir/*.ir "$src"/tests/fuse/*.ir "$src"/tests/passes/*.ir; do d=${f%/*}; cp "$f" "$out/ir/${d##*/}_${f##*/}"; done
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
# fuzz_ckpt: the metadata of tests/ckpt/mlp.yaml's checkpoints (mid-epoch, at an epoch's end)
ck='format=mlc-checkpoint
version=2
seed=5
batch=7
samples=500
train_samples=400
rng0=ec4b5f222c0c1690 47102e054b7c26eb 1ded39930bba332f 61f06925de15e176
rng=645f2682f7746b53 b9cb923e3a8a55c7 f714c9321b6e5ec8 28e51b5b819eddbd
lr=0x1.47ae147ae147bp-7
plateau_best=0x1.5a47e9f70a3d7p-2
plateau_bad=0
early_best=0x1.5a47e9f70a3d7p-2
early_wait=0
stopped=0
first_loss=0x1.f193bcp-1
epoch_loss=0x1.9f07c007p+6'
printf '%s\nepoch=2\npos=224\nstep=90\nearly_best_epoch=1\nepoch_seen=224\nmetrics=2 1 224 177 177 224 0x1.0bf8d74a20dbdp+5 0x1.04090496p+6 0x0p+0\nconfusion=87,23,24,90\n' "$ck" >"$out/ckpt/mid"
printf '%s\nepoch=3\npos=0\nstep=116\nearly_best_epoch=2\nepoch_seen=400\nmetrics=2 1 400 300 300 400 0x1p+5 0x1p+6 0x0p+0\nconfusion=150,50,0,200\n' "$ck" >"$out/ckpt/end"
# fuzz_plot: logs as mlc run --log and --kfold write them, after the option byte
# (bit 0: PNG, bit 1: --log-scale, bit 2: --fold-mean)
{ printf '\0'; printf '%s\n' '{"epoch": 1, "loss": 0.69, "acc": 0.5, "top1": 0.5, "perplexity": 2.0, "val_loss": 0.7, "val_acc": 0.48, "lr": 0.01, "time_s": 0.1}' \
	'{"epoch": 2, "loss": 0.4, "acc": 0.8, "top1": 0.8, "perplexity": 1.5, "val_loss": 0.45, "val_acc": 0.79, "lr": 0.005, "time_s": 0.1}' \
	'{"test": {"loss": 0.42, "acc": 0.81, "confusion": [[1, 2], [3, 4]], "file": "t.csv"}}'; } >"$out/plot/run"
{ printf '\4'; printf '%s\n' '{"fold": 1, "epoch": 1, "loss": 0.6, "val_loss": 0.65}' '{"fold": 1, "epoch": 2, "loss": 0.5, "val_loss": 0.55}' \
	'{"fold": 1, "train_samples": 200, "val_samples": 200, "epochs": 2, "val_loss": 0.55}' \
	'{"fold": 2, "epoch": 1, "loss": 0.62, "val_loss": 0.6}' '{"fold": 2, "epoch": 2, "loss": 0.52, "val_loss": 0.5}' \
	'{"fold": 2, "train_samples": 200, "val_samples": 200, "epochs": 2, "val_loss": 0.5}' \
	'{"kfold": 2, "val_loss_mean": 0.525, "val_loss_std": 0.025}'; } >"$out/plot/kfold"
{ printf '\3'; printf '%s\n' '{"epoch": 1, "loss": 1e17}' '{"epoch": 2, "loss": 1.0000000000000002e17}'; } >"$out/plot/flat"
