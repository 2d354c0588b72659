#!/usr/bin/env bash
# reconstruct.sh MLC SRC — mlc reconstruct: a PNG grid of the first test
# images, each above the model's output for it, of the size the layout says
# (8 pairs a row, 3 screen pixels an image pixel, 4 between); the originals
# are the IDX file's pixels; user mistakes exit 2 with the reason.
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run
fm=/usr/share/datasets/fashion-mnist
# png_size FILE: "WIDTHxHEIGHT" from the PNG header
png_size() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); assert b[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", b[16:24]))' "$1"; }

# a small autoencoder on 2,000 images, trained a moment
sed -e 's/^  epochs: 10/  epochs: 1\n  max_samples: 2000/' "$src/examples/autoencoder.yaml" >"$tmp/ae.yaml"
run "$mlc" run "$tmp/ae.yaml" --quiet --save "$tmp/ae.safetensors"
[ $rc -eq 0 ] || bad "training: $rc $err"

run "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/r.png"
[ $rc -eq 0 ] && [ "$(png_size "$tmp/r.png")" = 708x364 ] && grep -qF "wrote 16 images of the test set" <<<"$out$err" &&
	ok "16 images: 8 pairs in each of 2 rows" || bad "default: $rc $err $(png_size "$tmp/r.png")"
run "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/r3.png" --n 3
[ $rc -eq 0 ] && [ "$(png_size "$tmp/r3.png")" = 268x184 ] && ok "--n 3: one row of 3" ||
	bad "--n 3: $rc $err $(png_size "$tmp/r3.png")"

# decode the PNG (cairo's RGB24: 8-bit RGB or RGBA, filtered rows) and compare
# the top-left image with test image 0 and the one below with something else
python3 - "$tmp/r3.png" "$fm/t10k-images-idx3-ubyte.gz" <<'PY' && ok "pixels: the original is the IDX image, the reconstruction below it differs" || bad "pixels"
import gzip, struct, sys, zlib
b = open(sys.argv[1], "rb").read()
pos, idat, w, h = 8, b"", 0, 0
while pos < len(b):
    n, t = struct.unpack(">I4s", b[pos:pos + 8])
    c = b[pos + 8:pos + 8 + n]
    if t == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", c[:10])
        bpp = {2: 3, 6: 4}[ctype]
    if t == b"IDAT":
        idat += c
    pos += 12 + n
raw, rows, prev = zlib.decompress(idat), [], bytearray(w * bpp)
for y in range(h):
    f, line = raw[y * (w * bpp + 1)], bytearray(raw[y * (w * bpp + 1) + 1:(y + 1) * (w * bpp + 1)])
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + up) & 255
        elif f == 3: line[i] = (line[i] + (a + up) // 2) & 255
        elif f == 4:
            p = a + up - ul; pa, pb, pc = abs(p - a), abs(p - up), abs(p - ul)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
    rows.append(line); prev = line
img = gzip.open(sys.argv[2]).read()[16:16 + 784]
grey = lambda x, y: rows[y][x * bpp]
orig = [grey(4 + 3 * (i % 28) + 1, 4 + 3 * (i // 28) + 1) for i in range(784)]
rec = [grey(4 + 3 * (i % 28) + 1, 4 + 88 + 3 * (i // 28) + 1) for i in range(784)]
assert orig == list(img), "the original is not test image 0"
assert rec != orig and max(rec) > 0, "the reconstruction is a copy or empty"
PY

refused "no -o" "reconstruct needs -o OUT.png" -- "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors"
refused "no --weights" "reconstruct needs --weights" -- "$mlc" reconstruct "$tmp/ae.yaml" -o "$tmp/x.png"
refused "not a .png" "give -o FILE.png" -- "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/x.svg"
refused "--n 0" "invalid value '0' for --n" -- "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/x.png" --n 0
refused "--n 257" "not 257" -- "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/x.png" --n 257
refused "a classifier" "the input has 784 values a sample and the output 10" -- \
	"$mlc" reconstruct "$src/examples/fashion_mlp.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/x.png"
refused "an unwritable path" "$tmp/no/x.png" -- "$mlc" reconstruct "$tmp/ae.yaml" --weights "$tmp/ae.safetensors" -o "$tmp/no/x.png"
[ ! -e "$tmp/x.png" ] && ok "no file after an error" || bad "a PNG was written after an error"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
