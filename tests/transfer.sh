#!/usr/bin/env bash
# transfer.sh MLC SRC — the transfer-learning workflow of the examples:
# transfer_base.yaml trains a small CNN (one epoch) and saves it;
# transfer_head.yaml loads its conv layers (init_from), frozen, under a new
# head and trains (one epoch). Checks the init_from report, that the frozen
# weights come out bit-identical, that the IR after autodiff has no gradient
# for the frozen layers, and init_from's errors (shape mismatch at the layer,
# missing, malformed and unrelated files) and its skipping of integer
# bookkeeping tensors such as num_batches_tracked.
set -uo pipefail
mlc=$1
src=$2
. "$src/tests/support/testlib.sh" # $tmp, ok, bad, refused
test_acc() { awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy") print $(i + 1) }'; }
at_least() { awk -v a="$1" -v m="$2" 'BEGIN { exit !(a >= m) }'; }

# tensors of safetensors files: name -> raw bytes, in Python without numpy
py_st='
import json, struct, sys
def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v, raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
def write(path, tensors):  # name -> (dtype, shape, bytes)
    h, data = {}, b""
    for k, (dt, shape, b) in tensors.items():
        h[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    hb = json.dumps(h).encode()
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
'

cp "$src/examples/transfer_base.yaml" "$src/examples/transfer_head.yaml" "$tmp/"
cd "$tmp"

# 1. the base model
if out=$("$mlc" run transfer_base.yaml --epochs 1 --save transfer_base.safetensors --quiet 2>&1); then
	acc=$(echo "$out" | test_acc)
	if at_least "$acc" 0.75; then ok "transfer_base: test accuracy $acc >= 0.75 after 1 epoch"; else bad "transfer_base accuracy '$acc'" "$out"; fi
else
	bad "transfer_base did not train" "$out"
fi

# 2. check reports what init_from will do
out=$("$mlc" check transfer_head.yaml 2>&1)
if grep -q '^init_from transfer_base.safetensors: 4 loaded, 2 skipped, 4 parameters kept their initializer$' <<<"$out" &&
	grep -q '^  loaded   conv2.weight f32\[3,3,8,16\]$' <<<"$out" &&
	grep -q '^  skipped  fc.weight f32\[10,784\]: no parameter of this model has this name$' <<<"$out" &&
	grep -q '^  kept     head1.weight f32\[64,784\]: he_uniform$' <<<"$out" &&
	grep -q '^Non-trainable params: 1,248$' <<<"$out"; then
	ok "check: init_from report and 1,248 frozen parameters"
else
	bad "check report" "$out"
fi

# 3. the head model: trains only the head
if out=$("$mlc" run transfer_head.yaml --epochs 1 --save head.safetensors 2>&1); then
	acc=$(echo "$out" | test_acc)
	if grep -q '^init_from transfer_base.safetensors: 4 loaded' <<<"$out" && at_least "$acc" 0.75; then
		ok "transfer_head: init_from report, test accuracy $acc >= 0.75 after 1 epoch"
	else
		bad "transfer_head run" "$out"
	fi
else
	bad "transfer_head did not train" "$out"
fi

# 4. frozen weights are bit-identical to the base's; the head's were trained
if out=$(python3 -c "$py_st
base, head = read('transfer_base.safetensors'), read('head.safetensors')
for k in ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias']:
    assert base[k][1] == head[k][1], k + ' changed'
assert set(head) == {'conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias',
                     'head1.weight', 'head1.bias', 'head2.weight', 'head2.bias'}, sorted(head)
assert any(b != bytes(len(b)) for b in [head['head1.bias'][1], head['head2.bias'][1]]), 'head not trained'
" 2>&1); then
	ok "frozen conv1/conv2 bit-identical after training"
else
	bad "frozen weights" "$out"
fi

# 5. no gradient for the frozen part in the IR after autodiff
ir=$("$mlc" ir --stop-after autodiff --print-after autodiff transfer_head.yaml 2>&1)
if ! grep -qE 'conv2d_grad|maxpool_grad|grad\.conv' <<<"$ir" &&
	! grep -E '_grad|matmul|sum_rows' <<<"$ir" | grep '# conv' >/dev/null &&
	grep -q 'ret grad.head1.weight' <<<"$ir" && grep -q 'ret grad.head2.bias' <<<"$ir"; then
	ok "ir after autodiff: gradients for head1/head2 only, nothing below them"
else
	bad "ir after autodiff" "$ir"
fi

# 6. --weights keeps working (and takes precedence: no init_from report)
out=$("$mlc" run transfer_head.yaml --weights head.safetensors --eval 2>&1)
if [ $? -eq 0 ] && ! grep -q init_from <<<"$out" && grep -q '^test:' <<<"$out"; then
	ok "--weights with --eval"
else
	bad "--weights" "$out"
fi

# 7. a shape mismatch is an error at the layer
sed 's/^  - conv2d: 16$/  - conv2d: 12/' transfer_head.yaml >mismatch.yaml
line=$(grep -n '^  - conv2d: 12$' mismatch.yaml | cut -d: -f1)
refused "shape mismatch: located error" "mismatch.yaml:$line:5: error: layer 'conv2' weight is f32[3,3,8,12] here but f32[3,3,8,16] in transfer_base.safetensors" \
	"layer 'conv2' bias is f32[12] here but f32[16] in transfer_base.safetensors" -- "$mlc" check mismatch.yaml

# 8. missing, malformed and unrelated files
sed 's/path: transfer_base.safetensors/path: nothere.safetensors/' transfer_head.yaml >missing.yaml
refused "missing file" "nothere.safetensors: error: cannot read: No such file or directory" \
	"note: reading the weights named by init_from" -- "$mlc" run missing.yaml
printf 'not a safetensors file' >garbage.safetensors
sed 's/path: transfer_base.safetensors/path: garbage.safetensors/' transfer_head.yaml >garbage.yaml
refused "malformed file" "garbage.safetensors: error: " -- "$mlc" check garbage.yaml
python3 -c "$py_st
write('other.safetensors', {'encoder.weight': ('F32', [2], bytes(8))})"
sed 's/path: transfer_base.safetensors/path: other.safetensors/; /layers: \[conv1, conv2\]/d' transfer_head.yaml >other.yaml
refused "unrelated file" "error: no tensor of other.safetensors matches a parameter of the model" -- "$mlc" check other.yaml

# 9. PyTorch-style extras: an I64 num_batches_tracked is skipped with a note;
#    a layer listed in layers: must be in the file in full
python3 -c "$py_st
t = {k: (v['dtype'], v['shape'], b) for k, (v, b) in read('transfer_base.safetensors').items()}
t['bn1.num_batches_tracked'] = ('I64', [], (938).to_bytes(8, 'little'))
write('torch_style.safetensors', t)
del t['conv2.bias']
write('partial.safetensors', t)"
sed 's/path: transfer_base.safetensors/path: torch_style.safetensors/' transfer_head.yaml >torch_style.yaml
out=$("$mlc" check torch_style.yaml 2>&1)
if [ $? -eq 0 ] && grep -q '^init_from torch_style.safetensors: 4 loaded, 3 skipped' <<<"$out" &&
	grep -qF "  skipped  bn1.num_batches_tracked i64[]: integer bookkeeping (like PyTorch's num_batches_tracked), not a parameter" <<<"$out"; then
	ok "num_batches_tracked skipped"
else
	bad "num_batches_tracked" "$out"
fi
sed 's/path: transfer_base.safetensors/path: partial.safetensors/' transfer_head.yaml >partial.yaml
refused "a listed layer missing from the file" "error: init_from lists layer 'conv2', but partial.safetensors has no tensor 'conv2.bias'" -- "$mlc" check partial.yaml

# 10. a block instance's name in layers: covers its body; a frozen parameter
#     the file does not cover is flagged in the report
block='blocks:
  mlp:
    layers: [{dense: 8, activation: relu}, {dense: 8}]'
printf 'inputs:\n  x: {shape: [4]}\n%s\nlayers:\n  - {mlp: , name: body, trainable: false}\n  - {dense: 3, name: out}\nloss: softmax_cross_entropy\ndata: {format: csv, train: %s}\n' \
	"$block" "$src/examples/data/blobs_train.csv" >blk.yaml
printf 'inputs:\n  x: {shape: [4]}\n%s\nlayers:\n  - {mlp: , name: body, trainable: false}\n  - {dense: 3, name: out}\ninit_from: {path: blk.safetensors, layers: [body]}\nloss: softmax_cross_entropy\n' \
	"$block" >blk_layers.yaml
printf 'inputs:\n  x: {shape: [4]}\nlayers:\n  - {dense: 8, name: other, trainable: false}\n  - {dense: 3, name: out}\ninit_from: blk.safetensors\nloss: softmax_cross_entropy\n' >blk_other.yaml
"$mlc" run blk.yaml --epochs 1 --quiet --save blk.safetensors >/dev/null 2>&1
out=$("$mlc" check blk_layers.yaml 2>&1)
if grep -q '^init_from blk.safetensors: 4 loaded, 2 skipped, 2 parameters kept their initializer$' <<<"$out" &&
	grep -q '^  loaded   body.dense2.weight f32\[8,8\]$' <<<"$out" &&
	grep -qF "  skipped  out.weight f32[3,8]: layer 'out' is not in init_from's layers" <<<"$out"; then
	ok "layers: [a block instance] loads its whole body"
else
	bad "block instance in layers:" "$out"
fi
out=$("$mlc" check blk_other.yaml 2>&1)
if grep -qF "  kept     other.weight f32[8,4]: glorot_uniform (frozen: it stays at this initializer)" <<<"$out"; then
	ok "a frozen parameter the file does not cover is flagged"
else
	bad "frozen and not covered" "$out"
fi

# 11. a frozen batchnorm (Keras's trainable=False): loaded, then run in
#     inference mode by every training step, so its weight, bias and running
#     statistics come out bit-identical; the IR marks it inference=1 and its
#     gradient is batchnorm_infer_grad (no batchnorm_grad, no
#     batchnorm_grad_gamma), flowing into the trained dense layer below it
bn_spec() { # extra keys for bn, then the rest of the spec
	printf 'inputs:\n  x: {shape: [4]}\nlayers:\n  - {dense: 8, name: body}\n  - {batchnorm: null, name: bn%s}\n  - relu\n  - {dense: 3, name: head}\nloss: softmax_cross_entropy\noptimizer: {type: sgd, lr: 0.1, momentum: 0.9}\ndata: {format: csv, train: %s, batch_size: 32, epochs: 2}\n%s' \
		"$1" "$src/examples/data/blobs_train.csv" "$2"
}
bn_spec "" "" >bn_base.yaml
bn_spec ", trainable: false" "init_from: bn_base.safetensors
" >bn_frozen.yaml
if out=$("$mlc" run bn_base.yaml --quiet --save bn_base.safetensors 2>&1) &&
	out=$("$mlc" run bn_frozen.yaml --quiet --save bn_frozen.safetensors 2>&1) &&
	out=$(python3 -c "$py_st
import struct
base, frozen = read('bn_base.safetensors'), read('bn_frozen.safetensors')
for k in ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var']:
    assert base[k][1] == frozen[k][1], k + ' changed'
mean = struct.unpack('<8f', base['bn.running_mean'][1])
assert any(abs(v) > 1e-3 for v in mean), 'the base did not move its running mean: %r' % (mean,)
for k in ['body.weight', 'body.bias', 'head.weight', 'head.bias']:
    assert base[k][1] != frozen[k][1], k + ' was not trained'
" 2>&1); then
	ok "frozen batchnorm: weight, bias and running statistics bit-identical after training; the rest trained"
else
	bad "frozen batchnorm" "$out"
fi
ir=$("$mlc" ir --stop-after autodiff --print-after autodiff bn_frozen.yaml 2>&1)
if grep -qE '= batchnorm\(.*%bn\.running_var\) \{inference=1\} : f32\[N,8\]  # bn ' <<<"$ir" &&
	grep -qE '= batchnorm_infer_grad\(.*%bn\.weight, %bn\.running_var\) : f32\[N,8\]  # bn ' <<<"$ir" &&
	! grep -qE 'batchnorm_grad(_gamma)?\(|grad\.bn\.' <<<"$ir" && grep -q 'ret grad.body.weight' <<<"$ir"; then
	ok "ir after autodiff: batchnorm {inference=1}, batchnorm_infer_grad, no batchnorm_grad(_gamma)"
else
	bad "ir of the frozen batchnorm" "$ir"
fi
if out=$("$mlc" run bn_frozen.yaml --quiet --no-fuse --save bn_nofuse.safetensors 2>&1) &&
	out=$(python3 -c "$py_st
base, nofuse = read('bn_base.safetensors'), read('bn_nofuse.safetensors')
for k in ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var']:
    assert base[k][1] == nofuse[k][1], k + ' changed'
" 2>&1); then
	ok "frozen batchnorm --no-fuse: bit-identical too"
else
	bad "frozen batchnorm --no-fuse" "$out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
