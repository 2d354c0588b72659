#!/usr/bin/env bash
# whole.sh — whole training runs, mlc against PyTorch side by side: LeNet-5
# (bench/lenet_fashion.yaml) and examples/fashion_mlp.yaml on Fashion-MNIST for
# N epochs, the same architecture and hyperparameters in torch_whole.py; prints
# each side's test accuracy, wall time (data loading, training, validation and
# test included; mlc's JIT too) and peak RSS, and the ratios.
#   bench/whole.sh                    (env: BUILD=build EPOCHS=10 THREADS=1 ONLY="lenet mlp")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
epochs=${EPOCHS:-10}
threads=${THREADS:-1}
py=/usr/bin/python3 # Debian's python3-torch
[ -x "$build/mlc" ] || { echo "whole.sh: no $build/mlc (build it first)" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || { echo "whole.sh: $py cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
	{ echo "whole.sh: Fashion-MNIST is not in /usr/share/datasets/fashion-mnist" >&2; exit 1; }

# label, mlc spec, torch_whole.py arguments (the spec's hyperparameters)
runs=(
	"lenet|bench/lenet_fashion.yaml|--model lenet --batch 64 --lr 0.05"
	"mlp|examples/fashion_mlp.yaml|--model mlp --batch 32 --lr 0.02 --cosine --val 0.1"
)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $epochs epochs, $threads thread(s)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %10s %10s %9s %10s %10s %9s %9s %9s\n' model "mlc acc" "torch acc" "mlc s" "torch s" "torch/mlc" \
	"mlc MB" "torch MB" "MB ratio"
for r in "${runs[@]}"; do
	IFS='|' read -r label spec targs <<<"$r"
	[ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $label "* ]] && continue
	t0=$(date +%s.%N)
	out=$(OPENBLAS_NUM_THREADS=$threads "$build/mlc" run --threads "$threads" --epochs "$epochs" "$spec")
	t1=$(date +%s.%N)
	macc=$(sed -n 's/^test: .*accuracy \([0-9.]*\).*/\1/p' <<<"$out")
	mrss=$(sed -n 's/^peak RSS: \([0-9.]*\) MB/\1/p' <<<"$out")
	# shellcheck disable=SC2086
	t=$(OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads "$py" bench/torch_whole.py $targs --epochs "$epochs" \
		--threads "$threads")
	tacc=$(sed -n 's/.*test_acc=\([0-9.]*\).*/\1/p' <<<"$t")
	ts=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$t")
	trss=$(sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p' <<<"$t")
	awk -v l="$label" -v ma="$macc" -v ta="$tacc" -v ms="$(echo "$t1 - $t0" | bc)" -v ts="$ts" -v mr="$mrss" -v tr="$trss" \
		'BEGIN {printf "%-6s %10.4f %10.4f %9.1f %10.1f %9.2fx %9.1f %9.1f %8.2fx\n", l, ma, ta, ms, ts, ts / ms, mr, tr, tr / mr}'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
