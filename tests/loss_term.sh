#!/usr/bin/env bash
# loss_term.sh MLC SRC — a loss term written in the spec (docs/spec.md, "Loss
# terms"): the VAE's KL term from primitive ops (tests/torch/specs/vae_kl.yaml)
# weighted next to mse. It trains; the loss `mlc grad` reports equals the
# formula computed by hand in numpy from the saved weights and the batch (not
# from mlc's IR); `mlc ir` shows the term's nodes; the mistakes a user makes in
# a term or a primitive op are located errors with exit code 2.
set -uo pipefail
mlc=$1 src=$2
py=/usr/bin/python3 # Debian's numpy; a pyenv python on PATH may have none
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, refused
cd "$tmp"

"$py" -c '
import random
random.seed(3)
with open("train.csv", "w") as f:
    for i in range(64):
        x = [random.gauss(0, 1) for k in range(4)]
        f.write(",".join("%.4f" % v for v in x) + ",%.4f\n" % (0.5 * x[0] - x[1] + 0.25 * x[2] * x[3]))'
cp "$src/tests/torch/specs/vae_kl.yaml" kl.yaml

run "$mlc" run kl.yaml --quiet --save w.safetensors
[ "$rc" = 0 ] && ok "a spec with a loss term trains" || bad "train (rc $rc)" "$err"
run "$mlc" grad kl.yaml --weights w.safetensors -o g.safetensors --batch 16
if [ "$rc" = 0 ]; then ok "mlc grad"; else bad "mlc grad (rc $rc)" "$err"; fi
run "$py" - "$src/tests/torch" <<'EOT'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import st
w, g = st.read("w.safetensors")[0], st.read("g.safetensors")[0]
d = np.loadtxt("train.csv", delimiter=",")[:16]
x, y = d[:, :4], d[:, 4:]
dense = lambda v, n: v @ w[n + ".weight"].astype(np.float64).T + w[n + ".bias"]
h = np.tanh(dense(x, "h"))
mu, lv = dense(h, "mu"), dense(h, "logvar")
mse = np.mean((dense(mu, "out") - y) ** 2)
kl = -0.5 * np.mean(np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1))
want, got = mse + 0.5 * kl, float(g["loss"])
print("loss: mlc %.7g, by hand %.7g (mse %.6g, kl %.6g)" % (got, want, mse, kl))
sys.exit(0 if abs(got - want) <= 1e-5 * max(1, abs(want)) and abs(kl) > 1e-3 else 1)
EOT
[ "$rc" = 0 ] && ok "the loss is mse + 0.5·KL by hand: $out" || bad "loss by hand" "$out" "$err"
run "$mlc" ir kl.yaml --stop-after=shapes
if [ "$rc" = 0 ] && grep -q 'sum(%[0-9]*) {axes=1} : f32\[N\]' <<<"$out" && grep -q 'mean(' <<<"$out"; then
	ok "the term's nodes in the IR"
else
	bad "the term's nodes in the IR" "$out" "$err"
fi

# a reparameterized latent, z = mu + exp(logvar/2)·ε with ε from random_normal:
# the same seed trains the same weights, another seed others (the data is
# not shuffled, so only the noise differs), and --resume continues exactly
cat >z.yaml <<'EOT'
inputs:
  x: {shape: [4]}
graph:
  mu: {dense: 3, input: x}
  logvar: {dense: 3, input: x}
  half: {mul: 0.5, input: logvar}
  sd: {exp: , input: half}
  eps: {mean: 0, random_normal: , std: 1, input: mu}
  e: {mul: , inputs: [sd, eps]}
  z: {add: , inputs: [mu, e]}
  out: {dense: 1, input: z}
output: out
loss: mse
optimizer: {type: adam, lr: 0.01}
data: {format: csv, train: train.csv, batch_size: 16, epochs: 4, seed: 1, shuffle: false}
EOT
run "$mlc" run z.yaml --quiet --save z1.st --checkpoint "c-{epoch}.ckpt"
run "$mlc" run z.yaml --quiet --save z2.st
[ "$rc" = 0 ] && cmp -s z1.st z2.st && ok "noise: a run is reproducible from its seed" || bad "noise: reproducible" "$err"
# from the same initial weights (z2.st), so only the noise can differ
run "$mlc" run z.yaml --quiet --weights z2.st --save z3.st
run "$mlc" run z.yaml --quiet --weights z2.st --save z5.st --seed 2
[ "$rc" = 0 ] && ! cmp -s z3.st z5.st && ok "noise: another seed draws other noise" || bad "noise: another seed" "$err"
run "$mlc" run z.yaml --quiet --save z4.st --resume c-2.ckpt
[ "$rc" = 0 ] && cmp -s z1.st z4.st && ok "noise: --resume continues exactly" || bad "noise: resume" "$err"

# the one-input primitives (a binary op with a number among them) in layers:
cat >seq.yaml <<'EOT'
inputs:
  x: {shape: [4]}
layers:
  - {dense: 6, name: h}
  - {mul: 2}
  - {add: 1}
  - square
  - {clamp: , max: 4}
  - {reshape: [N, 2, 3]}
  - {slice: , axis: 1, size: 1}
  - {mean: , axes: [1]}
  - {dense: 1}
loss: mse
data: {format: csv, train: train.csv, batch_size: 16, epochs: 2}
EOT
run "$mlc" run seq.yaml --quiet
[ "$rc" = 0 ] && ok "primitives in layers: train" || bad "primitives in layers:" "$err"
run "$mlc" ir seq.yaml --stop-after=shapes
if grep -q 'mul(%[0-9]*, %[0-9]*) : f32\[N,6\]' <<<"$out" && grep -q 'slice(%[0-9]*) {axis=1} : f32\[N,1,3\]' <<<"$out" &&
	grep -q 'clamp(%[0-9]*) {max=4}' <<<"$out"; then
	ok "their nodes"
else
	bad "primitives in layers: nodes" "$out"
fi

spec() { # graph lines, loss
	printf 'inputs:\n  x: {shape: [4]}\ngraph:\n  mu: {dense: 3, input: x}\n%s\n  out: {dense: 1, input: mu}\n' "$1"
	printf 'output: out\nloss: %s\ndata: {format: csv, train: train.csv, batch_size: 16, epochs: 1}\n' "$2"
}
spec '  k: {sum: , axes: [1], input: mu}' '[mse, {term: k}]' >e1.yaml
refused "a term that is not a scalar" "e1.yaml:8:20: error: loss term 'k' must be a scalar f32[], got f32[N]" \
	"reduce it with" -- "$mlc" check e1.yaml
spec '  k: {sum: , input: mu}' '[mse, {term: kk}]' >e2.yaml
refused "an unknown term" "e2.yaml:8:20: error: unknown node 'kk' for a loss term; did you mean 'k'?" \
	-- "$mlc" check e2.yaml
spec '  k: {sum: , input: mu}' '[mse, {term: k, type: mse}]' >e3.yaml
refused "a term with a type" "error: a loss term is the node 'term' names: it takes no 'type'" \
	-- "$mlc" check e3.yaml
spec '  k: {sum: , input: mu}' '[mse, {term: x}]' >e4.yaml
refused "a term that is an input" "error: a loss term must be a node of the graph, but 'x' is an input" \
	-- "$mlc" check e4.yaml
spec '  k: {sum: , axes: [2], input: mu}' '[mse, {term: k}]' >e5.yaml
refused "axes out of range" "e5.yaml:5:7: error: in layer 'k': sum: axes '2' are not distinct dimensions of f32[N,3]" \
	"^" -- "$mlc" check e5.yaml
spec '  k: {reshape: [N, 2], input: mu}' 'mse' >e6.yaml
refused "a reshape to another size" "error: in layer 'k': reshape: cannot view f32[N,3] as [N,2]" \
	-- "$mlc" check e6.yaml
spec '  k: {slice: , axis: 1, begin: 2, size: 2, input: mu}' 'mse' >e7.yaml
refused "a slice out of range" "error: in layer 'k': slice begin=2 size=2 is out of range for the last dimension of f32[N,3]" \
	-- "$mlc" check e7.yaml
spec '  k: {slice: , axis: 0, size: 1, input: mu}' 'mse' >e8.yaml
refused "a slice of the batch" "error: in layer 'k': slice cannot cut the batch dimension" -- "$mlc" check e8.yaml
spec '  k: {mul: , inputs: [mu, x]}' 'mse' >e9.yaml
refused "operands that do not broadcast" \
	"error: in layer 'k': mul expects operands of the same shape, got f32[N,3] and f32[N,4]" \
	-- "$mlc" check e9.yaml
spec '  k: {add: 1, inputs: [mu, x]}' 'mse' >e10.yaml
refused "a number and two inputs" "error: add reads 1 input, but this names 2" -- "$mlc" check e10.yaml
spec '  k: {pow: , input: mu}' 'mse' >e11.yaml
refused "pow without exponent" "e11.yaml:5:7: error: pow needs its exponent, e.g. 'pow: 2'" -- "$mlc" check e11.yaml
spec '  k: {clamp: , min: 2, max: 1, input: mu}' 'mse' >e12.yaml
refused "clamp min above max" "error: clamp's min (2) is above its max (1)" -- "$mlc" check e12.yaml
spec '  k: {slice: , axis: 1, input: mu}' 'mse' >e13.yaml
refused "slice without size" "error: slice needs its 'size'" -- "$mlc" check e13.yaml
spec '  k: {random_uniform: , low: 1, high: 1, input: mu}' 'mse' >e14.yaml
refused "random_uniform empty range" "error: random_uniform's low (1) must be below its high (1)" \
	-- "$mlc" check e14.yaml
spec '  k: {reshape: [2, N], input: mu}' 'mse' >e15.yaml
refused "N not first in reshape" "error: expected an integer for 'reshape'" -- "$mlc" check e15.yaml

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
