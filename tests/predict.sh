#!/usr/bin/env bash
# predict.sh MLC SRC — --predict beyond the labelled test set (issue 13 item 6):
# an IDX test set without labels is predicted (no label column) but neither
# evaluated nor accepted for training.
set -uo pipefail
mlc=$1
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run, refused
cd "$tmp"

# tiny IDX files: 12 images of 2x2 bytes, labels 0..2
python3 -c "
import struct
n = 12
open('img.idx', 'wb').write(struct.pack('>IIII', 0x803, n, 2, 2) + bytes((i * 20 + j * 7) % 256 for i in range(n) for j in range(4)))
open('lab.idx', 'wb').write(struct.pack('>II', 0x801, n) + bytes(i % 3 for i in range(n)))"
idx_spec() { # NAME TRAIN-LINES TEST-LINES
	printf 'name: %s\ninputs:\n  x: {shape: [4]}\nlayers:\n  - dense: 3\nloss: softmax_cross_entropy\n' "$1"
	printf 'data:\n  format: idx\n  scale: 0.00392156862745098\n  batch_size: 4\n  epochs: 2\n'
	printf '  train:\n%s\n  test:\n%s\n' "$2" "$3"
}
idx_spec nolab "    images: img.idx
    labels: lab.idx" "    images: img.idx" >nolab.yaml

# 1. trained first, then predicted: no label column, and the run says the
# test set was not evaluated (it has no labels)
run "$mlc" run nolab.yaml --predict p.csv --save w.safetensors
[ $rc -eq 0 ] && [ "$(head -1 p.csv)" = "id,class,p_0,p_1,p_2" ] && [ "$(wc -l <p.csv)" -eq 13 ] \
	&& [[ $out == *"test: not evaluated: the test set (img.idx) has no labels, so it is only predicted (--predict)"* ]] \
	&& [[ $out == *"wrote 12 predictions of the test set (img.idx) to p.csv"* ]] && [[ $out != *"test: loss"* ]] \
	&& ok "unlabeled IDX test set: predicted, id,class,p_k" || bad "unlabeled IDX test set" "$(head -2 p.csv)" "$out" "$err"
# the same weights with the labels: the same classes, and a label column
idx_spec withlab "    images: img.idx
    labels: lab.idx" "    images: img.idx
    labels: lab.idx" >withlab.yaml
run "$mlc" run withlab.yaml --predict q.csv --weights w.safetensors
[ $rc -eq 0 ] && [ "$(head -1 q.csv)" = "id,label,class,p_0,p_1,p_2" ] \
	&& [ "$(cut -d, -f1,3- q.csv | tail -n +2)" = "$(tail -n +2 p.csv)" ] \
	&& ok "labelled: the same predictions, with the label" || bad "labelled predictions differ" "$(head -3 p.csv q.csv)" "$err"
run "$mlc" run nolab.yaml --predict - --weights w.safetensors --quiet
[ $rc -eq 0 ] && [ "$out" = "$(cat p.csv)" ] && ok "--predict --weights: the same CSV on stdout" || bad "--predict -" "$out" "$err"

# 2. evaluation and training still need targets: located errors
refused "--eval of an unlabeled test set" \
	"nolab.yaml:16:13: error: --eval needs the test set's labels: add labels: beside images:, or use --predict, which needs none" \
	-- "$mlc" run nolab.yaml --eval --weights w.safetensors
idx_spec notrain "    images: img.idx" "    images: img.idx" >notrain.yaml
refused "a training set without labels" "notrain.yaml:13:5: error: 'train' is missing 'labels'" -- "$mlc" run notrain.yaml
refused "check: a training set without labels" "notrain.yaml:13:5: error: 'train' is missing 'labels'" -- "$mlc" check notrain.yaml
run "$mlc" check nolab.yaml
[ $rc -eq 0 ] && ok "check: an unlabeled test set is fine" || bad "check nolab.yaml: $rc" "$out" "$err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
