#!/usr/bin/env bash
# distill.sh MLC SRC — loss: {type: distillation} end to end on a small CSV
# problem: a teacher is trained and saved, a student distilled from it; the
# teacher's layers appear frozen in `mlc check` and get no gradient in the IR;
# the teacher's weights file is checked (missing tensor, wrong shape, missing
# file: located errors); --save writes the student's weights only, and
# --weights with that file (or an older one holding teacher.* too) works, the
# teacher coming from its own file. A teacher with a batchnorm runs it in
# inference mode (inference=1 in the IR, no gradient into the teacher).
set -uo pipefail
mlc=$1
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, refused
cd "$tmp"

python3 -c '
import random
random.seed(4)
with open("train.csv", "w") as f:
    for i in range(600):
        c = i % 3
        x = [random.gauss(2.0 * (c == k), 0.8) for k in range(3)] + [random.gauss(0, 1)]
        f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)'
data='data: {format: csv, train: train.csv, test: train.csv, batch_size: 32, epochs: 2, seed: 1}'
cat >teacher.yaml <<EOT
inputs:
  x: {shape: [4]}
layers:
  - {dense: 16, activation: relu, name: h}
  - {dropout: 0.2}
  - {dense: 3, name: out}
loss: softmax_cross_entropy
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
$data
EOT
student() { # weights file
	cat <<EOT
inputs:
  x: {shape: [4]}
layers:
  - {dense: 3, name: s}
loss:
  type: distillation
  teacher: {spec: teacher.yaml, weights: $1}
  temperature: 3
  alpha: 0.7
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
$data
EOT
}
student teacher.safetensors >student.yaml

out=$("$mlc" run teacher.yaml --quiet --save teacher.safetensors 2>&1) || bad "teacher did not train" "$out"
out=$("$mlc" run student.yaml --quiet --save student.safetensors 2>&1)
acc=$(echo "$out" | awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }')
if [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 0.8) }'; then
	ok "student distilled: accuracy $acc >= 0.8"
else
	bad "student run" "$out"
fi

out=$("$mlc" check student.yaml 2>&1)
if grep -qE '^teacher\.h +matmul, bias_add, relu +16 +80$' <<<"$out" && grep -q '^Trainable params: 15$' <<<"$out" &&
	grep -q '^Non-trainable params: 131$' <<<"$out" && ! grep -q dropout <<<"$out"; then
	ok "check: the teacher's layers, frozen, no dropout"
else
	bad "check" "$out"
fi

ir=$("$mlc" ir --stop-after autodiff --print-after autodiff student.yaml 2>&1)
if ! grep -E '_grad|ret grad' <<<"$ir" | grep teacher >/dev/null && grep -q 'ret grad.s.weight' <<<"$ir" &&
	grep -q ' = kl_div(' <<<"$ir" && grep -q 'scale(.*) {factor=6.29' <<<"$ir"; then
	ok "ir: no gradient into the teacher; kl_div and alpha T^2 = 6.3 present"
else
	bad "ir" "$ir"
fi

# tensor names of a safetensors file, one a line
names() { python3 -c '
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
h.pop("__metadata__", None)
print("\n".join(sorted(h)))' "$1"; }

# the student's saved file holds the student only; --weights takes the teacher from its own file
if [ "$(names student.safetensors | tr '\n' ' ')" = "s.bias s.weight " ]; then
	ok "--save: the student's tensors only"
else
	bad "--save wrote" "$(names student.safetensors)"
fi
out=$("$mlc" run student.yaml --weights student.safetensors --eval 2>&1)
if grep -q "^test: .*accuracy $acc" <<<"$out"; then ok "--weights --eval: accuracy $acc again"; else bad "--weights --eval" "$out"; fi
# a file saved with the teacher's tensors too (before --save left them out) still loads
python3 -c '
import json, struct
def read(path, prefix=""):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    return {prefix + k: (v, raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
t = read("student.safetensors")
t.update(read("teacher.safetensors", "teacher."))
hdr, data = {}, b""
for k, (v, b) in t.items():
    hdr[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [len(data), len(data) + len(b)]}
    data += b
hb = json.dumps(hdr).encode()
open("both.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + data)'
out=$("$mlc" run student.yaml --weights both.safetensors --eval 2>&1)
if grep -q "^test: .*accuracy $acc" <<<"$out"; then ok "--weights with teacher.* tensors: accuracy $acc"; else bad "--weights both" "$out"; fi
out=$("$mlc" run student.yaml --weights teacher.safetensors --eval 2>&1)
if [ $? -eq 2 ] && grep -qF "teacher.safetensors: error: has no tensor 's.weight' for the model's parameter" <<<"$out"; then
	ok "--weights: the teacher's file is not the student's"
else
	bad "--weights teacher.safetensors" "$out"
fi

# a teacher with a batchnorm: inference mode inside the student's training steps
cat >teacher_bn.yaml <<EOT
inputs:
  x: {shape: [4]}
layers:
  - {dense: 16, name: h}
  - {batchnorm: null, name: bn}
  - relu
  - {dense: 3, name: out}
loss: softmax_cross_entropy
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
$data
EOT
student teacher_bn.safetensors | sed 's/spec: teacher.yaml/spec: teacher_bn.yaml/' >student_bn.yaml
out=$("$mlc" run teacher_bn.yaml --quiet --save teacher_bn.safetensors 2>&1) || bad "teacher_bn did not train" "$out"
ir=$("$mlc" ir --stop-after autodiff --print-after autodiff student_bn.yaml 2>&1)
if grep -qE '= batchnorm\(.*%teacher\.bn\.running_var\) \{inference=1\} : f32\[N,16\]  # teacher\.bn ' <<<"$ir" &&
	! grep -E '_grad|ret grad' <<<"$ir" | grep teacher >/dev/null && grep -q 'ret grad.s.weight' <<<"$ir"; then
	ok "ir: the teacher's batchnorm in inference mode, no gradient into the teacher"
else
	bad "ir (batchnorm teacher)" "$ir"
fi
for fuse in "" --no-fuse; do
	out=$("$mlc" run student_bn.yaml --quiet $fuse --save student_bn.safetensors 2>&1)
	acc_bn=$(echo "$out" | awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }')
	if [ -n "$acc_bn" ] && awk -v a="$acc_bn" 'BEGIN { exit !(a >= 0.8) }' &&
		[ "$(names student_bn.safetensors | tr '\n' ' ')" = "s.bias s.weight " ]; then
		ok "student of a batchnorm teacher (${fuse:-fused}): accuracy $acc_bn >= 0.8, the student's tensors saved"
	else
		bad "student_bn run $fuse" "$out"
	fi
done

python3 -c '
import json, struct
raw = open("teacher.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
meta = h.pop("__metadata__", None)
def write(path, keep, reshape=None):
    hdr, data = {}, b""
    for k, v in h.items():
        if k not in keep:
            continue
        b = raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
        shape = v["shape"]
        if k == reshape:
            shape, b = [shape[0] - 1] + shape[1:], b[:len(b) // shape[0] * (shape[0] - 1)]
        hdr[k] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    hb = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
write("partial.safetensors", [k for k in h if k != "out.bias"])
write("shape.safetensors", list(h), reshape="h.weight")'
student partial.safetensors >partial.yaml
refused "teacher weights: a missing tensor" "partial.yaml:7:42: error: partial.safetensors has no tensor 'out.bias' for the teacher's layer 'out'" -- "$mlc" check partial.yaml
student shape.safetensors >shape.yaml
refused "teacher weights: a wrong shape, at the teacher's layer" "teacher.yaml:4:6: error: the teacher's layer 'h' weight is f32[16,4] in its spec but f32[15,4] in shape.safetensors" -- "$mlc" run shape.yaml
student nothere.safetensors >missing.yaml
refused "teacher weights: a missing file" "nothere.safetensors: error: cannot read: No such file or directory" \
	"missing.yaml:7:42: note: reading the teacher's weights named here" -- "$mlc" run missing.yaml

# distillation as one loss of a list: every loss reads the one labels input
cat >list.yaml <<EOT
inputs:
  x: {shape: [4]}
layers:
  - {dense: 3, name: s}
loss:
  - {type: softmax_cross_entropy, weight: 0.5}
  - {type: distillation, teacher: {spec: teacher.yaml, weights: teacher.safetensors}, temperature: 3, alpha: 0.7}
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
$data
EOT
out=$("$mlc" run list.yaml --quiet 2>&1)
if [ $? -eq 0 ] && grep -q '^test: ' <<<"$out" && [ "$("$mlc" ir list.yaml | grep -c '^ *%labels = input')" -eq 1 ]; then
	ok "distillation in a list of losses"
else
	bad "distillation in a list of losses" "$out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
