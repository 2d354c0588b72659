#!/usr/bin/env bash
# cli.sh MLC SRC — the command line as a user meets it: exit codes, flag
# errors, IR dumps, .ir files through the rest of the pipeline, emitted code,
# compile and grad outputs (the golden files are golden.sh's).
set -uo pipefail
mlc=$1 src=$2
cd "$src/tests"
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

ex=$src/examples
run "$mlc"; [ $rc -eq 2 ] && ok || bad "no arguments: exit $rc"
run "$mlc" --help; [ $rc -eq 0 ] && ok || bad "--help: exit $rc"
for c in check ir run compile grad plot; do
	run "$mlc" $c --help; [ $rc -eq 0 ] && [[ $out == usage:* ]] && ok || bad "$c --help"
done
run "$mlc" chek x.yaml; [ $rc -eq 2 ] && [[ $err == *"did you mean 'check'"* ]] && ok || bad "unknown command: $err"
run "$mlc" run --epoch 3 "$ex/xor.yaml"; [ $rc -eq 2 ] && [[ $err == *"did you mean '--epochs'"* ]] && ok || bad "unknown flag: $err"
run "$mlc" run --epochs abc "$ex/xor.yaml"; [ $rc -eq 2 ] && ok || bad "bad flag value: exit $rc"
run "$mlc" check "$tmp/missing.yaml"; [ $rc -eq 2 ] && [[ $err == *"missing.yaml: error: cannot read"* ]] && ok || bad "missing spec: $err"
run "$mlc" check "$tmp"; [ $rc -eq 2 ] && ok || bad "directory as spec: exit $rc"

run "$mlc" check "$ex/fashion_mlp.yaml"
[ $rc -eq 0 ] && [[ $out == *"Total params: 235,146"* ]] && ok || bad "check summary: $out"

# The lecture's CIFAR CNN: output shapes and parameter counts, layer by layer.
run "$mlc" check --no-data "$ex/cifar_cnn.yaml" # CIFAR-10 is not packaged
got=$(echo "$out" | awk '$1 ~ /^(conv2d|maxpool|flatten|dense)[0-9]/ { printf "%s/%s ", $(NF-1), $NF }')
want="30x30x32/896 15x15x32/0 13x13x64/18,496 6x6x64/0 4x4x64/36,928 1024/0 64/65,600 10/650 "
[ "$got" = "$want" ] && [[ $out == *"Total params: 122,570"* ]] && ok || bad "cifar_cnn summary: got '$got'"
[[ $out =~ "Planned memory (batch 64): activations "[0-9.]+" MB, parameters 1.0 MB, total "[0-9.]+" MB" ]] && ok || bad "cifar_cnn planned memory: $out"

run "$mlc" ir --print-after=all "$ex/xor.yaml"
for p in shapes autodiff optimizer dce fuse plan; do
	[[ $out == *"# IR after $p"* ]] && ok || bad "ir --print-after=all lacks $p"
done
# fusion: fused blocks after the fuse pass, none with --no-fuse, rule names checked
run "$mlc" ir --print-after=fuse "$ex/fashion_mlp.yaml"
[ $rc -eq 0 ] && [[ $out == *"fused %5 {"*"matmul"*"bias_add"*"relu"*"}"* ]] && ok || bad "ir --print-after=fuse shows no fused kernel"
run "$mlc" ir --no-fuse "$ex/fashion_mlp.yaml"; [ $rc -eq 0 ] && [[ $out != *"fused %"* ]] && ok || bad "--no-fuse still fuses"
run "$mlc" ir --fuse-off=epilogue,update "$ex/fashion_mlp.yaml"
in_block_anchor() { awk '/fused %/ { f = 1; next } /^  }/ { f = 0 } f && /= (matmul|sgd)\(/ { hit = 1 } END { exit !hit }'; }
[ $rc -eq 0 ] && [[ $out == *"fused %"* ]] && ! echo "$out" | in_block_anchor && ok || bad "--fuse-off=epilogue,update"
run "$mlc" ir "$ex/fashion_mlp.yaml"; echo "$out" | in_block_anchor && ok || bad "no matmul or sgd in a fused kernel by default"
run "$mlc" ir --fuse-off=epilog "$ex/xor.yaml"; [ $rc -eq 2 ] && [[ $err == *"did you mean 'epilogue'"* ]] && ok || bad "bad fusion rule: $err"
run "$mlc" ir "$ex/resnet.yaml"; echo "$out" >"$tmp/resnet.ir"
run "$mlc" ir "$tmp/resnet.ir"; [ $rc -eq 0 ] && [ "$out" = "$(cat "$tmp/resnet.ir")" ] && ok || bad "fused ir text does not round-trip: $err"
run "$mlc" run --no-fuse --epochs 1 --quiet "$ex/xor.yaml"; [ $rc -eq 0 ] && ok || bad "run --no-fuse: $err"
run "$mlc" ir "$ex/xor.yaml"; echo "$out" >"$tmp/xor.ir"
run "$mlc" ir "$tmp/xor.ir"; [ $rc -eq 0 ] && [ "$out" = "$(cat "$tmp/xor.ir")" ] && ok || bad "ir text does not round-trip through mlc ir: $err"

# An .ir file goes through the passes it does not show done (docs/ir.md,
# "Resuming the pipeline"); --spec gives it the training configuration.
run "$mlc" ir --stop-after shapes "$ex/xor.yaml"; printf '%s\n' "$out" >"$tmp/fwd.ir"
run "$mlc" ir --print-after autodiff --stop-after autodiff "$tmp/fwd.ir"
[ $rc -eq 0 ] && [[ $out == "# IR after autodiff"*"ret grad.hidden.weight"* ]] && ok || bad "ir of a forward .ir --print-after autodiff: $rc $out $err"
run "$mlc" ir --stop-after autodiff "$tmp/fwd.ir"; printf '%s\n' "$out" >"$tmp/ad.ir"
run "$mlc" ir --print-after autodiff "$tmp/ad.ir"
[ $rc -eq 2 ] && [[ $err == *"does not go through autodiff (it shows that pass done); passes left: optimizer, dce, fuse, plan"* ]] && ok || bad "dump of a pass done: $rc $err"
run "$mlc" ir --passes=autodif "$tmp/fwd.ir"; [ $rc -eq 2 ] && [[ $err == *"did you mean 'autodiff'"* ]] && ok || bad "--passes typo: $err"
run "$mlc" ir --passes=autodiff,dce "$tmp/fwd.ir"; [ $rc -eq 0 ] && [ "$out" = "$(cat "$tmp/ad.ir")" ] && ok || bad "--passes=autodiff,dce differs from --stop-after autodiff"
run "$mlc" check "$tmp/ad.ir"; [ $rc -eq 0 ] && [[ $out == "Model: xor"* ]] && ok || bad "check of an .ir after autodiff: $err"
run "$mlc" compile -o "$tmp/fwd" "$tmp/fwd.ir"; [ $rc -eq 0 ] && [ -s "$tmp/fwd.o" ] && ok || bad "compile of a forward .ir: $err"
run "$mlc" run "$tmp/ad.ir"; [ $rc -eq 2 ] && [[ $err == *"--spec MODEL.yaml"* ]] && ok || bad "run of an .ir without --spec: $rc $err"
run "$mlc" run --spec "$ex/xor.yaml" "$ex/xor.yaml"; [ $rc -eq 2 ] && [[ $err == *"is a spec already"* ]] && ok || bad "--spec with a spec: $err"
run "$mlc" run --spec "$tmp/ad.ir" "$tmp/ad.ir"; [ $rc -eq 2 ] && [[ $err == *"is not a YAML spec"* ]] && ok || bad "--spec with an .ir: $err"
run "$mlc" grad -o "$tmp/g0.safetensors" "$ex/xor.yaml"
run "$mlc" grad --spec "$ex/xor.yaml" -o "$tmp/g1.safetensors" "$tmp/fwd.ir"
[ $rc -eq 0 ] && cmp -s "$tmp/g0.safetensors" "$tmp/g1.safetensors" && ok || bad "grad of the forward .ir differs from the spec's: $err"
run "$mlc" run --epochs 30 --quiet "$ex/xor.yaml"; want=$out
run "$mlc" run --epochs 30 --quiet --spec "$ex/xor.yaml" "$tmp/ad.ir"
[ $rc -eq 0 ] && [ -n "$want" ] && [ "$out" = "$want" ] && ok || bad "training the .ir after autodiff differs from the spec's: '$out' vs '$want' $err"
# two inputs fed by the spec's data.inputs, by name: the .ir's inputs must be the spec's
cat >"$tmp/two.yaml" <<YAML
name: two
inputs:
  x: {shape: [2]}
  z: {shape: [2]}
graph:
  s: {add, inputs: [x, z]}
  out: {dense: 1, activation: sigmoid, input: s}
loss: binary_cross_entropy
data: {format: csv, train: $ex/data/blobs_train.csv, batch_size: 16, epochs: 1,
       inputs: {x: {columns: [0, 2]}, z: {columns: [2, 4]}}}
YAML
run "$mlc" ir --stop-after shapes "$tmp/two.yaml"; printf '%s\n' "$out" >"$tmp/two.ir"
run "$mlc" grad --wrt-inputs -o "$tmp/t0.safetensors" "$tmp/two.yaml"
run "$mlc" grad --wrt-inputs --spec "$tmp/two.yaml" -o "$tmp/t1.safetensors" "$tmp/two.ir"
[ $rc -eq 0 ] && cmp -s "$tmp/t0.safetensors" "$tmp/t1.safetensors" && ok || bad "grad of a two-input .ir differs from its spec's: $err"
sed 's/%z\b/%zz/g' "$tmp/two.ir" >"$tmp/two_renamed.ir"
run "$mlc" grad --spec "$tmp/two.yaml" -o "$tmp/t2.safetensors" "$tmp/two_renamed.ir"
[ $rc -eq 2 ] && [[ $err == *"input 'zz' is fed by no data"* ]] && ok || bad "an .ir input the spec does not feed: $rc $err"
run "$mlc" ir --print-after=shpes "$ex/xor.yaml"; [ $rc -eq 2 ] && [[ $err == *"did you mean 'shapes'"* ]] && ok || bad "bad pass name: $err"
run "$mlc" ir --emit=asm "$ex/fashion_mlp.yaml"; [ $rc -eq 0 ] && [[ $out == *ymm* ]] && ok || bad "asm has no AVX (ymm) code"
run "$mlc" ir --emit=llvm "$ex/xor.yaml"; [ $rc -eq 0 ] && [[ $out == *"define"*"mlc_train"* ]] && ok || bad "llvm ir lacks mlc_train"
run "$mlc" compile "$ex/xor.yaml" -o "$tmp/xor"; [ $rc -eq 0 ] && [ -s "$tmp/xor.o" ] && [ -s "$tmp/xor.ll" ] && ok || bad "compile: $err"
run "$mlc" grad "$ex/xor.yaml" -o "$tmp/g.safetensors"; [ $rc -eq 0 ] && [ -s "$tmp/g.safetensors" ] && ok || bad "grad: $err"
run "$mlc" run "$ex/xor.yaml" --quiet --save "$tmp/w.safetensors"; [ $rc -eq 0 ] && ok || bad "run --save: $err"
[[ $out != *"peak RSS"* ]] && ok || bad "run --quiet prints the peak RSS"
run "$mlc" run "$ex/xor.yaml" --epochs 5
[ $rc -eq 0 ] && [[ $(echo "$out" | tail -1) =~ ^"peak RSS: "[0-9]+\.[0-9]" MB"$ ]] && ok || bad "run: no peak RSS line: $out"
run "$mlc" run "$ex/xor.yaml" --eval --weights "$tmp/w.safetensors"
[ $rc -eq 0 ] && [[ $out == *"accuracy 1.0000"* ]] && ok || bad "eval with saved weights: $out $err"
run "$mlc" run "$ex/xor.yaml" --predict "$tmp/p.csv" --weights "$tmp/w.safetensors"
[ $rc -eq 0 ] && [ "$(cut -d, -f3 "$tmp/p.csv" | tr '\n' ' ')" = "class 0 1 1 0 " ] && ok || bad "predict csv: $(cat "$tmp/p.csv" 2>/dev/null) $err"
run "$mlc" run "$ex/fashion_mlp.yaml" --eval --weights "$tmp/w.safetensors"
[ $rc -eq 2 ] && [[ $err == *"w.safetensors: error:"* ]] && ok || bad "weights of another model: exit $rc $err"
printf 'junk' >"$tmp/junk.safetensors"
run "$mlc" run "$ex/xor.yaml" --eval --weights "$tmp/junk.safetensors"; [ $rc -eq 2 ] && ok || bad "junk weights: exit $rc"

# The compiled-code cache: --cache-dir stores then hits, --no-cache bypasses it.
run "$mlc" run "$ex/xor.yaml" --quiet --epochs 1 --verbose --cache-dir "$tmp/cache"
[ $rc -eq 0 ] && [[ $out == *"(cache miss, stored $tmp/cache/"*".mlcobj)"* ]] && ok || bad "--cache-dir miss: $out $err"
run "$mlc" run "$ex/xor.yaml" --quiet --epochs 1 --verbose --cache-dir "$tmp/cache"
[ $rc -eq 0 ] && [[ $out == *"(cache hit $tmp/cache/"* ]] && ok || bad "--cache-dir hit: $out $err"
run "$mlc" grad "$ex/xor.yaml" -o "$tmp/g2.safetensors" --no-cache --cache-dir "$tmp/cache2"
[ $rc -eq 0 ] && [ ! -e "$tmp/cache2" ] && ok || bad "grad --no-cache wrote a cache: $err"
run "$mlc" run "$ex/xor.yaml" --quiet --epochs 1 --verbose --no-cache
[ $rc -eq 0 ] && [[ $out == *"(no cache: cache off)"* ]] && ok || bad "run --no-cache: $out $err"
run "$mlc" run "$ex/xor.yaml" --quiet --epochs 1 --cache-dir "$tmp/xor.ll/sub"
[ $rc -eq 0 ] && ok || bad "unusable --cache-dir is an error: $err"

# Same seed, same run: bit-identical weights.
"$mlc" run "$ex/xor.yaml" --quiet --epochs 50 --seed 9 --save "$tmp/a.safetensors" >/dev/null 2>&1
"$mlc" run "$ex/xor.yaml" --quiet --epochs 50 --seed 9 --save "$tmp/b.safetensors" >/dev/null 2>&1
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" && ok || bad "--seed does not reproduce the run"

# metrics:, the JSON-lines log (--log) and mlc plot
sed "s#data/#$ex/data/#" "$ex/logistic.yaml" >"$tmp/m.yaml"
echo 'metrics: [accuracy, top2, confusion, f1]' >>"$tmp/m.yaml"
run "$mlc" run "$tmp/m.yaml" --epochs 3 --log "$tmp/log.jsonl"
[ $rc -eq 0 ] && [[ $out == *"epoch 3/3  loss "*"  acc "*"  top2 1.0000  f1 "* ]] && ok || bad "run with metrics: $out $err"
[[ $out == *"confusion matrix (rows: true class, columns: predicted):"* && $out == *" class precision    recall        f1   support"* ]] && ok || bad "test tables: $out"
[ "$(grep -c '^{"epoch": [123], "loss": [0-9.e-]*, "acc": [0-9.e-]*, "top2": 1, "f1": [0-9.e-]*, "lr": 0.1, "time_s": [0-9.e-]*}$' "$tmp/log.jsonl")" = 3 ] && ok || bad "log epoch lines: $(cat "$tmp/log.jsonl")"
[[ $(tail -1 "$tmp/log.jsonl") == '{"test": {"loss": '*', "confusion": [['*']], "file": "'*'blobs_test.csv"}}' ]] && ok || bad "log test line: $(tail -1 "$tmp/log.jsonl")"
run "$mlc" run "$tmp/m.yaml" --epochs 1 --log "$tmp/no/such/dir/log.jsonl"
[ $rc -eq 2 ] && [[ $err == *"$tmp/no/such/dir/log.jsonl: error: cannot write the training log"* ]] && ok || bad "--log unwritable: exit $rc $err"
run "$mlc" run "$tmp/m.yaml" --eval --log "$tmp/e.jsonl"
[ $rc -eq 2 ] && [[ $err == *"--log records training; it cannot be combined with --eval"* ]] && [ ! -e "$tmp/e.jsonl" ] && ok || bad "--log with --eval: exit $rc $err"
run "$mlc" plot "$tmp/log.jsonl" -o "$tmp/curves.svg"
[ $rc -eq 0 ] && grep -q '^<svg ' "$tmp/curves.svg" && ok || bad "plot: exit $rc $err"
[[ $(tail -1 "$tmp/curves.svg") == "</svg>" ]] && ok || bad "plot: svg not closed"
printf '{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "loss": 0.4\n' >"$tmp/bad.jsonl"
run "$mlc" plot "$tmp/bad.jsonl" -o "$tmp/bad.svg"
[ $rc -eq 2 ] && [[ $err == "$tmp/bad.jsonl:2:"*": error: expected ',' or '}'"* ]] && ok || bad "plot malformed log: exit $rc $err"
run "$mlc" plot "$tmp/log.jsonl"; [ $rc -eq 2 ] && [[ $err == *"plot needs -o"* ]] && ok || bad "plot without -o: exit $rc"
run "$mlc" plot "$tmp/none.jsonl" -o "$tmp/x.svg"; [ $rc -eq 2 ] && [[ $err == *"none.jsonl: error: cannot read"* ]] && ok || bad "plot missing log: $err"
# regression: mse by default, mae on request
printf 'x,y\n0,1\n1,3\n2,5\n3,7\n0.5,2\n1.5,4\n' >"$tmp/lin.csv"
printf 'inputs: {x: {shape: [1]}}\nlayers: [{dense: 1}]\nloss: mse\noptimizer: {lr: 0.05}\ndata: {format: csv, train: lin.csv, test: lin.csv, batch_size: 2, epochs: 2}\n' >"$tmp/lin.yaml"
run "$mlc" run "$tmp/lin.yaml"
[ $rc -eq 0 ] && [[ $out == *"epoch 2/2  loss "*"  mse "* && $out == *"test: loss "*"  mse "* && $out != *acc* ]] && ok || bad "regression default mse: $out $err"
echo 'metrics: [mae]' >>"$tmp/lin.yaml"
run "$mlc" run "$tmp/lin.yaml" --log "$tmp/lin.jsonl"
[ $rc -eq 0 ] && [[ $out == *"test: loss "*"  mae "* && $out != *mse* ]] && grep -q '"mae": ' "$tmp/lin.jsonl" && ok || bad "regression mae: $out $err"

# early stopping: the stop line, and the restored weights evaluate to the best epoch's val_loss
sed "s#data/#$ex/data/#" "$ex/logistic.yaml" >"$tmp/es.yaml"
printf '  validation_split: 0.25\n  early_stopping: {patience: 2, min_delta: 0.05}\n' >>"$tmp/es.yaml"
run "$mlc" run "$tmp/es.yaml"
stop=$(echo "$out" | sed -n 's/^early stopping: val_loss has not improved for 2 epochs; stopped after epoch \([0-9]*\), best epoch \([0-9]*\) (val_loss \([0-9.]*\))$/\1 \2 \3/p')
read -r last bestep bestloss <<<"$stop"
[ $rc -eq 0 ] && [ -n "$stop" ] && [ "$last" -lt 30 ] && [ "$last" -eq $((bestep + 2)) ] && ok || bad "early stopping line: $out $err"
[[ $out == *"epoch $bestep/30  loss "*"  val_loss $bestloss  "* && $out == *"restored the weights of epoch $bestep: val_loss $bestloss  "* && $out == *"trained $last epochs"* ]] && ok || bad "restored weights: $out"
# reduce_on_plateau: with threshold 0.9 no later epoch counts as better than the first, so with
# patience 0 the rate halves after every epoch but the first
sed "s#data/#$ex/data/#; s#lr: 0.1}#lr: 0.1, schedule: {type: reduce_on_plateau, patience: 0, factor: 0.5, threshold: 0.9}}#" "$ex/logistic.yaml" >"$tmp/rp.yaml"
run "$mlc" run "$tmp/rp.yaml" --epochs 4
[ $rc -eq 0 ] && [ "$(echo "$out" | grep '^epoch' | sed 's/.*  lr \([0-9.]*\)  .*/\1/' | tr '\n' ' ')" = "0.1 0.1 0.05 0.025 " ] && ok || bad "reduce_on_plateau run: $out $err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
