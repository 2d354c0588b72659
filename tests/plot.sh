#!/usr/bin/env bash
# plot.sh MLC SRC — mlc plot: SVG or PNG by the extension (cairo), a panel
# per kind of value logged (loss; accuracy and scores with top-k; perplexity;
# the learning rate when it changes), the test record, a title, --log-scale,
# K-fold logs (a curve per fold, or --fold-mean); bounded work on hostile
# logs (values near 1e17 that a tick step cannot change, 100,000 lines, a
# file over the 64 MiB limit); errors exit 2 naming the file.
set -uo pipefail
mlc=$1 src=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run
data=$src/examples/data
# png_size FILE: "WIDTHxHEIGHT" from the PNG header
png_size() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); assert b[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", b[16:24]))' "$1"; }

cat >"$tmp/c.yaml" <<YAML
name: c
inputs:
  x: {shape: [4]}
layers:
  - dense: 8
    activation: tanh
  - dense: 2
loss: softmax_cross_entropy
optimizer: {type: sgd, lr: 0.5, schedule: {type: step, step_size: 2, gamma: 0.5}}
metrics: [accuracy, top1, perplexity]
data:
  format: csv
  train: $data/blobs_train.csv
  test: $data/blobs_test.csv
  batch_size: 16
  epochs: 4
  validation_split: 0.2
YAML
run "$mlc" run "$tmp/c.yaml" --quiet --log "$tmp/c.jsonl"
[ $rc -eq 0 ] || bad "training run: $rc $err"

# four panels (loss, scores, perplexity, lr): two rows of two
run "$mlc" plot "$tmp/c.jsonl" -o "$tmp/c.png"
[ $rc -eq 0 ] && [ "$(png_size "$tmp/c.png")" = 920x720 ] && ok "png, 4 panels" || bad "png: $rc $err $(png_size "$tmp/c.png")"
run "$mlc" plot "$tmp/c.jsonl" -o "$tmp/c.svg"
[ $rc -eq 0 ] && grep -q '^<svg .*width="920pt" height="720pt"' "$tmp/c.svg" && [[ $(tail -1 "$tmp/c.svg") == "</svg>" ]] &&
	ok "svg" || bad "svg: $rc $err $(head -3 "$tmp/c.svg")"
# a constant learning rate is no panel, and without perplexity there are two
python3 - "$tmp/c.jsonl" "$tmp/two.jsonl" <<'PY'
import json, sys
out = open(sys.argv[2], "w")
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "epoch" in r:
        r = {k: v for k, v in r.items() if "perplexity" not in k}
        r["lr"] = 0.5
    out.write(json.dumps(r) + "\n")
PY
run "$mlc" plot "$tmp/two.jsonl" -o "$tmp/two.png"
[ $rc -eq 0 ] && [ "$(png_size "$tmp/two.png")" = 920x380 ] && ok "two panels" || bad "two panels: $rc $err $(png_size "$tmp/two.png")"
# the test record is drawn: without it the picture differs
grep -v '^{"test"' "$tmp/c.jsonl" >"$tmp/notest.jsonl"
mkdir "$tmp/a" "$tmp/b"
cp "$tmp/c.jsonl" "$tmp/a/log.jsonl"
cp "$tmp/notest.jsonl" "$tmp/b/log.jsonl"
"$mlc" plot "$tmp/a/log.jsonl" -o "$tmp/a.png" && "$mlc" plot "$tmp/b/log.jsonl" -o "$tmp/b.png" &&
	! cmp -s "$tmp/a.png" "$tmp/b.png" && ok "test points" || bad "the test record changes nothing"
# the title: the log's file name by default, --title replaces it
"$mlc" plot "$tmp/a/log.jsonl" -o "$tmp/t1.png" --title log.jsonl && cmp -s "$tmp/a.png" "$tmp/t1.png" &&
	"$mlc" plot "$tmp/a/log.jsonl" -o "$tmp/t2.png" --title "my run" && ! cmp -s "$tmp/a.png" "$tmp/t2.png" &&
	ok "title" || bad "title"
"$mlc" plot "$tmp/a/log.jsonl" -o "$tmp/l.png" --log-scale && ! cmp -s "$tmp/a.png" "$tmp/l.png" && ok "log scale" || bad "log scale"
# K-fold: epoch records per fold, a curve each, or the mean ± std
run "$mlc" run "$tmp/c.yaml" --quiet --kfold 3 --log "$tmp/k.jsonl"
[ $rc -eq 0 ] && [ "$(grep -c '^{"fold": 2, "epoch": ' "$tmp/k.jsonl")" -eq 4 ] && ok "kfold log" || bad "kfold log: $rc $err"
run "$mlc" plot "$tmp/k.jsonl" -o "$tmp/k.png"
run2() { "$mlc" plot "$tmp/k.jsonl" -o "$tmp/km.png" --fold-mean; }
[ $rc -eq 0 ] && run2 && ! cmp -s "$tmp/k.png" "$tmp/km.png" && ok "kfold curves and mean" || bad "kfold plots: $rc $err"
run "$mlc" plot "$tmp/c.jsonl" -o "$tmp/m.png" --fold-mean
[ $rc -eq 2 ] && [[ $err == "$tmp/c.jsonl: error: --fold-mean needs a K-fold log"* ]] && ok || bad "--fold-mean on one run: $rc $err"

# bounded: a flat line near 1e17 (the tick step is below the values' spacing)
printf '{"epoch": 1, "loss": 1e17}\n{"epoch": 2, "loss": 1.0000000000000002e17}\n' >"$tmp/flat.jsonl"
run timeout 10 "$mlc" plot "$tmp/flat.jsonl" -o "$tmp/flat.svg"
[ $rc -eq 0 ] && [ "$(wc -c <"$tmp/flat.svg")" -lt 200000 ] && ok "1e17" || bad "1e17 log: exit $rc $(wc -c <"$tmp/flat.svg")"
printf '{"epoch": 1, "loss": -1.7e308}\n{"epoch": 1e308, "loss": 1.7e308}\n{"epoch": -1e308, "loss": 5e-324}\n' >"$tmp/huge.jsonl"
run timeout 10 "$mlc" plot "$tmp/huge.jsonl" -o "$tmp/huge.png" --log-scale
[ $rc -eq 0 ] && ok "extreme values" || bad "extreme values: exit $rc $err"
# linear in the length: 100,000 lines in a few seconds
python3 -c '
import sys
with open(sys.argv[1], "w") as f:
    for e in range(1, 100001):
        f.write("{\"epoch\": %d, \"loss\": %g, \"val_loss\": %g, \"acc\": 0.5, \"lr\": 0.01, \"time_s\": 0.1}\n" % (e, 1 / e, 1.1 / e))
' "$tmp/long.jsonl"
t0=$(date +%s%N)
run timeout 30 "$mlc" plot "$tmp/long.jsonl" -o "$tmp/long.svg"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 0 ] && [ $ms -lt 10000 ] && ok "100,000 lines in $ms ms" || bad "100,000 lines: exit $rc in $ms ms"
# over the limit: refused before reading
truncate -s $((64 * 1024 * 1024 + 1)) "$tmp/big.jsonl"
run "$mlc" plot "$tmp/big.jsonl" -o "$tmp/big.svg"
[ $rc -eq 2 ] && [[ $err == "$tmp/big.jsonl: error: is larger than 64 MiB, the limit of a log to plot"* ]] && ok "size limit" || bad "size limit: $rc $err"

# errors
run "$mlc" plot "$tmp/c.jsonl" -o "$tmp/c.pdf"
[ $rc -eq 2 ] && [[ $err == "$tmp/c.pdf: error: cannot tell the picture's format from its name: write OUT.svg or OUT.png"* ]] && [ ! -e "$tmp/c.pdf" ] &&
	ok || bad "unknown format: $rc $err"
printf '{"fold": 0.5, "epoch": 1, "loss": 1}\n' >"$tmp/f.jsonl"
run "$mlc" plot "$tmp/f.jsonl" -o "$tmp/f.svg"
[ $rc -eq 2 ] && [[ $err == "$tmp/f.jsonl:1:1: error: \"fold\" is not a fold number"* ]] && ok || bad "bad fold: $rc $err"
printf '{"epoch": 1, "time_s": 1}\n' >"$tmp/n.jsonl"
run "$mlc" plot "$tmp/n.jsonl" -o "$tmp/n.svg"
[ $rc -eq 2 ] && [[ $err == "$tmp/n.jsonl: error: has no loss, metric or learning rate to plot"* ]] && ok || bad "nothing to plot: $rc $err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
