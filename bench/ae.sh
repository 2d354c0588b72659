#!/usr/bin/env bash
# ae.sh — the autoencoder examples trained by mlc and by PyTorch 1.13
# (bench/ae_torch.py: the same architectures and hyperparameters), side by
# side: test mse per pixel (autoencoders), test negative ELBO per image (VAE),
# and the wall time of each training run (mlc: its "trained ... in" line).
#   bench/ae.sh                   (env: BUILD=build THREADS=2 EPOCHS=10
#                                       MODELS="autoencoder vae": just those)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
threads=${THREADS:-2}
epochs=${EPOCHS:-10}
models=${MODELS:-autoencoder denoising_autoencoder vae}
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch
torch_out=$("$py" bench/ae_torch.py "$threads" "$epochs" $models)
printf '%-22s %-16s %12s %12s %9s %9s %8s\n' model metric mlc torch "mlc/torch" "mlc s" "torch s"
for m in $models; do
	out=$("$build/mlc" run "examples/$m.yaml" --epochs "$epochs" --threads "$threads" 2>&1)
	v=$(awk '/^test:/ { for (i = 1; i <= NF; i++) if ($i == "loss") print $(i + 1) }' <<<"$out")
	s=$(awk '/^trained/ { sub(/s$/, "", $NF); print $NF }' <<<"$out") # "trained 10 epochs in 7.12s"
	read -r _ tv ts < <(grep "^$m " <<<"$torch_out")
	metric=$([ "$m" = vae ] && echo "-ELBO/image" || echo "mse/pixel")
	printf '%-22s %-16s %12s %12s %9.4f %9s %8s\n' "$m" "$metric" "$v" "$tv" "$(awk -v a="$v" -v b="$tv" 'BEGIN { print a / b }')" "$s" "$ts"
done
