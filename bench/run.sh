#!/usr/bin/env bash
# run.sh — mlc against PyTorch, side by side: the same train step (forward,
# backward, SGD momentum 0.9) at 1 and 2 threads, each measurement repeated
# in interleaved rounds (mlc and torch alternate who goes first) so noise on
# a shared machine hits both alike. Prints a table of medians over rounds and
# the verdict against PyTorch's best thread setting, then mlc's cold and warm
# JIT compile times.
#   bench/run.sh                      (env: BUILD=build ROUNDS=5 STEPS=200 THREADS="1 2"
#                                           ONLY="lenet dwconv": just those rows)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
rounds=${ROUNDS:-5}
steps=${STEPS:-200}
threads=${THREADS:-1 2}
py=/usr/bin/python3 # Debian's python3-torch; a pyenv python on PATH has no torch

# label, mlc spec, torch_bench model, batch. Add a row to benchmark another model
# (with a matching function in torch_bench.py's MODELS).
models=(
	"mlp bench/mlp.yaml mlp 64"
	"cnn bench/cnn.yaml cnn 64"
	"resnet bench/resnet.yaml resnet 32"
	"lenet bench/lenet.yaml lenet 64"
	"dwconv bench/dwconv.yaml dwconv 64"
)
if [ -n "${ONLY:-}" ]; then
	keep=()
	for m in "${models[@]}"; do
		[[ " $ONLY " == *" ${m%% *} "* ]] && keep+=("$m")
	done
	[ ${#keep[@]} -gt 0 ] || { echo "run.sh: ONLY=\"$ONLY\" names no model" >&2; exit 2; }
	models=("${keep[@]}")
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
if ! log=$(cmake --build "$build" --target mlc mlc_bench -j "$(nproc)" 2>&1); then
	echo "$log" >&2
	echo "run.sh: building mlc and mlc_bench failed (is add_subdirectory(bench) in CMakeLists.txt?)" >&2
	exit 1
fi
bin=$build/bench/mlc_bench
"$py" -c 'import torch' 2>/dev/null || { echo "run.sh: $py cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

# The same model on both sides: at least the same number of parameters
# (`mlc check`'s total against the torch module's).
params=
for m in "${models[@]}"; do
	read -r label spec tmodel batch <<<"$m"
	mine=$("$build/mlc" check "$spec" | sed -n 's/^Total params: //p' | tr -d ,)
	theirs=$("$py" -c 'import sys; sys.path.insert(0, "bench"); import torch_bench as t
print(sum(p.numel() for p in t.MODELS[sys.argv[1]]()[0].parameters()))' "$tmodel")
	if [ "$mine" != "$theirs" ]; then
		echo "run.sh: $label: $spec has ${mine:-?} parameters, torch_bench.py's $tmodel $theirs" >&2
		exit 1
	fi
	params+=" $label $mine,"
done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, $(nproc) cores, $rounds rounds x $steps steps," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "parameters, the same in mlc and PyTorch:${params%,}"

run_mlc() { # label spec batch threads [--no-fuse]
	OPENBLAS_NUM_THREADS=$4 OMP_NUM_THREADS=$4 "$bin" --batch "$3" --steps "$steps" --threads "$4" ${5:-} "$2" |
		sed "s/^mlc model=[^ ]*/mlc model=$1/" >>"$out"
}
# OpenBLAS sgemm on large matrices, per thread count: the GFLOP/s reference.
for t in $threads; do
	OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$bin" --sgemm-peak --threads "$t" >>"$out"
done
run_torch() { # label model batch threads
	OPENBLAS_NUM_THREADS=$4 OMP_NUM_THREADS=$4 "$py" bench/torch_bench.py --model "$2" --batch "$3" \
		--steps "$steps" --threads "$4" | sed "s/^torch model=[^ ]*/torch model=$1/" >>"$out"
}

for ((r = 1; r <= rounds; r++)); do
	for m in "${models[@]}"; do
		read -r label spec tmodel batch <<<"$m"
		for t in $threads; do
			if ((r % 2)); then
				run_mlc "$label" "$spec" "$batch" "$t"
				run_torch "$label" "$tmodel" "$batch" "$t"
				run_mlc "$label" "$spec" "$batch" "$t" --no-fuse
			else
				run_mlc "$label" "$spec" "$batch" "$t" --no-fuse
				run_torch "$label" "$tmodel" "$batch" "$t"
				run_mlc "$label" "$spec" "$batch" "$t"
			fi
		done
	done
	echo "round $r/$rounds done" >&2
done

# A busy machine makes multi-threaded figures meaningless: say how busy it was.
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Medians over rounds (spread in brackets), peak RSS, and the verdict.
"$py" - "$out" <<'EOF'
import statistics, sys
runs, peak = {}, {}
for line in open(sys.argv[1]):
    impl, *kv = line.split()
    f = dict(p.split("=", 1) for p in kv)
    if impl == "sgemm":
        peak[int(f["threads"])] = float(f["gflops"])
        continue
    if impl == "mlc" and f.get("fuse") == "off":
        impl = "nofuse"
    runs.setdefault((f["model"], int(f["threads"]), impl), []).append(f)
print("OpenBLAS sgemm peak (n=1536): " + ", ".join(f"{peak[t]:.1f} GFLOP/s at {t} thr" for t in sorted(peak)))
models = list(dict.fromkeys(k[0] for k in runs))
med = lambda rs: statistics.median(float(r["median_ms"]) for r in rs)
span = lambda rs: f"[{min(float(r['median_ms']) for r in rs):.3f}-{max(float(r['median_ms']) for r in rs):.3f}]"
rss = lambda rs: max(float(r["peak_rss_mb"]) for r in rs)
gf = lambda rs: statistics.median(float(r.get("gflops", "nan")) for r in rs)
jit = lambda rs, k: statistics.median(float(r[k]) for r in rs if k in r) if any(k in r for r in rs) else float("nan")
print(f"{'model':<8} {'threads':>7} {'mlc ms':>8} {'(rounds)':<15} {'torch ms':>9} {'(rounds)':<15} "
      f"{'torch/mlc':>9} {'mlc RSS MB':>10} {'torch RSS MB':>12} {'no-fuse ms':>10} {'fused gain':>10} "
      f"{'GFLOP/s':>8} {'of peak':>7}")
for m in models:
    best = {}
    for t in sorted({k[1] for k in runs if k[0] == m}):
        a, b, u = runs.get((m, t, "mlc")), runs.get((m, t, "torch")), runs.get((m, t, "nofuse"))
        if not a or not b:
            continue
        nf = f"{med(u):>10.3f} {med(u) / med(a):>9.2f}x" if u else f"{'-':>10} {'-':>10}"
        pk = f"{100 * gf(a) / peak[t]:>6.0f}%" if t in peak else f"{'-':>7}"
        print(f"{m:<8} {t:>7} {med(a):>8.3f} {span(a):<15} {med(b):>9.3f} {span(b):<15} "
              f"{med(b) / med(a):>8.2f}x {rss(a):>10.1f} {rss(b):>12.1f} {nf} {gf(a):>8.1f} {pk}")
        for impl, rs in (("mlc", a), ("torch", b)):
            if impl not in best or med(rs) < best[impl][0]:
                best[impl] = (med(rs), t)
    if len(best) == 2:
        (ma, ta), (mb, tb) = best["mlc"], best["torch"]
        word = "faster" if ma < mb else "slower"
        ratio = mb / ma if ma < mb else ma / mb
        print(f"verdict {m}: mlc best {ma:.3f} ms ({ta} thr) vs PyTorch best {mb:.3f} ms ({tb} thr): "
              f"mlc is {ratio:.2f}x {word}")
for m in models:
    rs = [r for k, v in runs.items() if k[0] == m and k[2] == "mlc" for r in v]
    print(f"jit {m}: cold {jit(rs, 'jit_cold_ms'):.1f} ms (cpu {jit(rs, 'jit_cold_cpu_ms'):.1f}), "
          f"warm {jit(rs, 'jit_warm_ms'):.1f} ms (cpu {jit(rs, 'jit_warm_cpu_ms'):.1f}), medians over runs")
EOF
