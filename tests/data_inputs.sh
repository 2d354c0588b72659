#!/usr/bin/env bash
# data_inputs.sh MLC SRC — data.inputs: every model input fed from the data
# (CSV column ranges, several IDX files), an unfed input a located error,
# offset/max_samples, and a two-input graph whose gradients reach both inputs.
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run, refused

data=$src/examples/data
two() { # NAME, data: lines -> $tmp/NAME.yaml: inputs x and z added
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  x: {shape: [2]}
  z: {shape: [2]}
graph:
  s: {add, inputs: [x, z]}
  out: {dense: 1, activation: sigmoid, input: s}
loss: binary_cross_entropy
data:
  format: csv
  train: $data/blobs_train.csv
  batch_size: 16
  epochs: 1
$2
YAML
}

# the issue's reproduction: z is fed by nothing, an error at z's line (4)
two unfed ""
refused "unfed input is an error at its line" "unfed.yaml:4:3: error: input 'z' is fed by no data" -- \
	"$mlc" check "$tmp/unfed.yaml"
refused "unfed input: mlc run refuses too" "input 'z' is fed by no data" -- "$mlc" run "$tmp/unfed.yaml"

# both fed from column ranges: gradients reach both inputs
two cols "  inputs: {x: {columns: [0, 2]}, z: {columns: [2, 4]}}"
run "$mlc" check "$tmp/cols.yaml"
[ $rc -eq 0 ] && ok "two inputs from columns check" || bad "check cols: rc $rc" "$err"
run "$mlc" grad "$tmp/cols.yaml" --wrt-inputs -o "$tmp/g.safetensors"
if [ $rc -eq 0 ]; then
	python3 - "$tmp/g.safetensors" <<'PY' && ok "grad reaches x and z" || bad "grad of x or z is zero"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def t(name):
    s, e = h[name]["data_offsets"]
    return struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
x, z = t("x"), t("z")
assert len(x) == 32 and len(z) == 32, (len(x), len(z))
assert any(v != 0 for v in x) and any(v != 0 for v in z)
PY
else
	bad "grad cols: rc $rc" "$err"
fi
# the loss depends on z's columns: swapping z to other columns changes it
two cols2 "  inputs: {x: {columns: [0, 2]}, z: {columns: [0, 2]}}"
run "$mlc" grad "$tmp/cols.yaml" -o "$tmp/a.safetensors"; la=$out$err ra=$rc
run "$mlc" grad "$tmp/cols2.yaml" -o "$tmp/b.safetensors"; lb=$out$err
[ $ra -eq 0 ] && [ $rc -eq 0 ] && [ "${la%% over*}" != "${lb%% over*}" ] && ok "loss depends on z's source" ||
	bad "same loss, or a failure" "$la" "$lb"

# mistakes in data.inputs, each located
two badname "  inputs: {x: {columns: [0, 2]}, zz: {columns: [2, 4]}}"
refused "unknown input name" "badname.yaml:14:34: error: data.inputs names 'zz', which is not an input of the model; did you mean 'z'?" -- \
	"$mlc" check "$tmp/badname.yaml"
two badcols "  inputs: {x: {columns: [0, 2]}, z: {columns: [2, 9]}}"
refused "columns past the file" "badcols.yaml:14:47: error: input 'z' reads columns [2, 9), but" "has 4 feature columns" -- \
	"$mlc" run "$tmp/badcols.yaml"
two badwidth "  inputs: {x: {columns: [0, 2]}, z: {columns: [1, 4]}}"
refused "columns of the wrong width" "badwidth.yaml:14:47: error: input 'z' reads columns [1, 4), 3 values, but it is f32[N,2] (2 per sample)" -- \
	"$mlc" run "$tmp/badwidth.yaml"
two badrange "  inputs: {x: {columns: [0, 2]}, z: {columns: [3, 2]}}"
refused "empty column range" "badrange.yaml:14:47: error: 'columns' is [start, end) with start < end" -- \
	"$mlc" check "$tmp/badrange.yaml"

# offset and max_samples: a window of the training set
feeds="  inputs: {x: {columns: [0, 2]}, z: {columns: [2, 4]}}"
two win0 "$feeds
  max_samples: 5"
two win3 "$feeds
  offset: 3
  max_samples: 5"
run "$mlc" grad "$tmp/win0.yaml" -o "$tmp/w0.safetensors"; l0=$out$err
grep -q "over 5 samples" <<<"$l0" && ok "max_samples keeps 5" || bad "max_samples" "$l0"
run "$mlc" grad "$tmp/win3.yaml" -o "$tmp/w3.safetensors"; l3=$out$err
grep -q "over 5 samples" <<<"$l3" && [ "${l0%% over*}" != "${l3%% over*}" ] && ok "offset moves the window" ||
	bad "offset" "$l0" "$l3"
two winbad "  inputs: {x: {columns: [0, 2]}, z: {columns: [2, 4]}}
  offset: 100000"
refused "offset past the data" "offset 100000 leaves no samples" -- "$mlc" run "$tmp/winbad.yaml"

# IDX: two image files feed two inputs of one shared tower
python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
def idx(path, dims, data):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]) + struct.pack(">%dI" % len(dims), *dims) + bytes(data))
n = 40
idx(d + "/a.idx", [n, 2, 2], [(i * 7 + j * 3) % 256 for i in range(n) for j in range(4)])
idx(d + "/b.idx", [n, 2, 2], [(i * 5 + j * 11 + 1) % 256 for i in range(n) for j in range(4)])
idx(d + "/l.idx", [n], [i % 3 for i in range(n)])
idx(d + "/short.idx", [n - 1, 2, 2], [0] * ((n - 1) * 4))
PY
idxspec() { # NAME, train: line, data: inputs line
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  left: {shape: [2, 2]}
  right: {shape: [2, 2]}
blocks:
  tower: {layers: [{flatten}, {dense: 4, activation: relu}]}
graph:
  a: {tower, input: left}
  b: {tower, input: right}
  c: {concat, inputs: [a, b]}
  out: {dense: 3, input: c}
loss: softmax_cross_entropy
data:
  train: $2
  scale: 0.00392156862745098
  batch_size: 8
  epochs: 2
$3
YAML
}
idxspec idx2 "{images: $tmp/a.idx, labels: $tmp/l.idx, second: $tmp/b.idx}" "  inputs: {right: second}"
run "$mlc" run "$tmp/idx2.yaml"
[ $rc -eq 0 ] && ok "two IDX inputs train" || bad "idx2 run: rc $rc" "$out$err"
run "$mlc" grad "$tmp/idx2.yaml" --wrt-inputs -o "$tmp/gi.safetensors"
if [ $rc -eq 0 ]; then
	python3 - "$tmp/gi.safetensors" <<'PY' && ok "grad reaches left and right" || bad "idx grad of an input is zero"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for name in ("left", "right"):
    s, e = h[name]["data_offsets"]
    v = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    assert any(x != 0 for x in v), name
PY
else
	bad "idx2 grad: rc $rc" "$err"
fi
idxspec idxunfed "{images: $tmp/a.idx, labels: $tmp/l.idx}" ""
refused "IDX: unfed second input" "idxunfed.yaml:4:3: error: input 'right' is fed by no data" -- \
	"$mlc" check "$tmp/idxunfed.yaml"
idxspec idxnofile "{images: $tmp/a.idx, labels: $tmp/l.idx}" "  inputs: {right: second}"
refused "IDX: source file missing from train" "idxnofile.yaml:18:19: error: input 'right' reads file 'second', which 'train' does not give" -- \
	"$mlc" check "$tmp/idxnofile.yaml"
idxspec idxstray "{images: $tmp/a.idx, labels: $tmp/l.idx, second: $tmp/b.idx, third: $tmp/b.idx}" "  inputs: {right: second}"
refused "IDX: a file no input reads" "error: 'third' is a file that no input reads" -- \
	"$mlc" check "$tmp/idxstray.yaml"
idxspec idxshort "{images: $tmp/a.idx, labels: $tmp/l.idx, second: $tmp/short.idx}" "  inputs: {right: second}"
refused "IDX: files of different lengths" "short.idx: error: has 39 samples, but" "has 40" -- \
	"$mlc" run "$tmp/idxshort.yaml"

# an input as its own target (autoencoders): the loss reads the input node,
# no labels input, no copy. On a CSV whose 4 label columns repeat the 4
# features, target: x gives exactly the loss and gradients of the labels.
python3 - "$tmp/ae.csv" <<'PY'
import random, sys
random.seed(3)
with open(sys.argv[1], "w") as f:
    for _ in range(40):
        v = ["%.6f" % random.random() for _ in range(4)]
        f.write(",".join(v + v) + "\n")
PY
aespec() { # NAME, loss, activation, data: extra
	cat >"$tmp/$1.yaml" <<YAML
name: $1
inputs:
  x: {shape: [4]}
layers:
  - {dense: 3, activation: relu}
  - {dense: 4, activation: $3}
loss: $2
data:
  format: csv
  train: $tmp/ae.csv
  batch_size: 8
  epochs: 2
$4
YAML
}
for loss in mse binary_cross_entropy; do
	act=linear; [ $loss = binary_cross_entropy ] && act=sigmoid
	aespec "lab_$loss" "$loss" $act "  label_columns: 4
  inputs: {x: {columns: [0, 4]}}"
	aespec "tgt_$loss" "{type: $loss, target: x}" $act "  label_columns: 4
  inputs: {x: {columns: [0, 4]}}"
	run "$mlc" grad "$tmp/lab_$loss.yaml" -o "$tmp/lab.safetensors"; la=$out$err
	run "$mlc" grad "$tmp/tgt_$loss.yaml" -o "$tmp/tgt.safetensors"; lt=$out$err
	[ $rc -eq 0 ] && [ "${la%%;*}" = "${lt%%;*}" ] && python3 "$src/tests/support/same_tensors.py" "$tmp/lab.safetensors" "$tmp/tgt.safetensors" &&
		ok "$loss target: x = labels that copy x" || bad "$loss target: x" "$la" "$lt"
	run "$mlc" ir "$tmp/tgt_$loss.yaml"
	[ $rc -eq 0 ] && grep -q "input" <<<"$out" && ! grep -q "labels" <<<"$out" &&
		ok "$loss target: x has no labels input" || bad "$loss target: x: a labels input, or rc $rc" "$out$err"
done
# label_columns: 0 (a CSV of features only) and IDX images without labels
aespec ae0 "{type: mse, target: x}" linear "  label_columns: 0
  test: $tmp/ae.csv"
cut -d, -f1-4 "$tmp/ae.csv" >"$tmp/ae4.csv" && sed -i "s|$tmp/ae.csv|$tmp/ae4.csv|" "$tmp/ae0.yaml"
run "$mlc" run "$tmp/ae0.yaml" --save "$tmp/ae0.safetensors"
[ $rc -eq 0 ] && grep -q "mse" <<<"$out$err" && ok "CSV autoencoder trains, reports mse" || bad "ae0: rc $rc" "$out$err"
run "$mlc" run "$tmp/ae0.yaml" --eval --weights "$tmp/ae0.safetensors"
[ $rc -eq 0 ] && grep -q "mse" <<<"$out$err" && ok "CSV autoencoder --eval" || bad "ae0 eval: rc $rc" "$out$err"
aespec ae0lab mse linear "  label_columns: 0"
sed -i "s|$tmp/ae.csv|$tmp/ae4.csv|" "$tmp/ae0lab.yaml"
refused "label_columns: 0 with a labels loss" "ae0lab.yaml:13:18: error: label_columns: 0 leaves the rows no targets, but the loss reads labels" -- "$mlc" run "$tmp/ae0lab.yaml"
cat >"$tmp/aeidx.yaml" <<YAML
name: aeidx
inputs:
  x: {shape: [4]}
layers: [{dense: 2, activation: relu}, {dense: 4, activation: sigmoid}]
loss: {type: binary_cross_entropy, target: x}
data:
  train: {images: $tmp/a.idx}
  scale: 0.00392156862745098
  batch_size: 8
  epochs: 2
YAML
run "$mlc" run "$tmp/aeidx.yaml"
[ $rc -eq 0 ] && ok "IDX autoencoder without labels trains" || bad "aeidx: rc $rc" "$out$err"
run "$mlc" grad "$tmp/aeidx.yaml" -o "$tmp/ae.safetensors"
[ $rc -eq 0 ] && ok "IDX autoencoder grad" || bad "aeidx grad: rc $rc" "$out$err"
aespec aebad "{type: mse, target: y}" linear ""
refused "target: unknown input" "error: the loss's target 'y' is not an input of the model" -- "$mlc" check "$tmp/aebad.yaml"
aespec aeshape "{type: mse, target: x}" linear ""
sed -i 's/dense: 4, activation/dense: 5, activation/' "$tmp/aeshape.yaml"
refused "target: wrong shape" "the loss's target 'x' is f32[N,4], but the model output is f32[N,5]" -- \
	"$mlc" check "$tmp/aeshape.yaml"
aespec aecls "{type: softmax_cross_entropy, target: x}" linear ""
refused "target: with a class loss" "'target' applies only to the losses whose targets have the output's shape" -- \
	"$mlc" check "$tmp/aecls.yaml"

# CIFAR-10 as its own target: a 1x1 convolution reconstructs the image
python3 - "$tmp/c.bin" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for r in range(12):
        f.write(bytes([r % 10]) + bytes((r * 31 + i * 7) % 256 for i in range(3072)))
PY
cat >"$tmp/aecifar.yaml" <<YAML
name: aecifar
inputs:
  x: {shape: [32, 32, 3]}
layers: [{conv2d: 3, kernel: 1, activation: sigmoid}]
loss: {type: binary_cross_entropy, target: x}
data:
  format: cifar10
  train: $tmp/c.bin
  scale: 0.00392156862745098
  batch_size: 4
  epochs: 1
  max_samples: 8
YAML
run "$mlc" run "$tmp/aecifar.yaml"
[ $rc -eq 0 ] && grep -q "mse" <<<"$out$err" && ok "CIFAR-10 autoencoder trains" || bad "aecifar: rc $rc" "$out$err"

# file: labels feeds an input from the labels file (one value per sample)
cat >"$tmp/labin.yaml" <<YAML
name: labin
inputs:
  x: {shape: [4]}
  lab: {shape: [1]}
graph:
  c: {concat, inputs: [x, lab]}
  out: {dense: 4, activation: sigmoid, input: c}
loss: {type: mse, target: x}
data:
  train: {images: $tmp/a.idx, labels: $tmp/l.idx}
  inputs: {lab: labels}
  scale: 0.00392156862745098
  batch_size: 8
YAML
run "$mlc" grad "$tmp/labin.yaml" --wrt-inputs -o "$tmp/lab.safetensors"
if [ $rc -eq 0 ]; then
	python3 - "$tmp/lab.safetensors" <<'PY' && ok "labels feed an input" || bad "lab input: zero gradient"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
s, e = h["lab"]["data_offsets"]
v = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
assert len(v) == 8 and any(x != 0 for x in v)
PY
else
	bad "labin grad: rc $rc" "$out$err"
fi
sed -i "s|, labels: $tmp/l.idx||" "$tmp/labin.yaml"
refused "labels fed, but no labels file" "error: an input reads the labels, but this set gives no labels:" -- \
	"$mlc" run "$tmp/labin.yaml"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
