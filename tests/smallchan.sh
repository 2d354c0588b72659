#!/usr/bin/env bash
# smallchan.sh MLC SRC — kernels for few channels (LeNet's 6, 12, ...), as
# the optimized module shows them: pools whose windows stay inside the image
# keep their running maximum in registers, so no masked store (a store the
# next tap's load cannot be forwarded from) is left in them. Results are
# checked against the reference in test_codegen; this is the code's shape.
set -uo pipefail
mlc=$1 src=$2
cd "$src/tests"
. "$(dirname "${BASH_SOURCE[0]}")/support/testlib.sh" # $tmp, ok, bad, run

"$mlc" ir --emit llvm-opt --threads 1 smallchan/pool6.yaml >"$tmp/pool6.ll" || bad "emit pool6"
# fn NAME: the body of each function whose name matches NAME
fn() { awk -v re="$1" '$0 ~ "^define .*@" re "\\(" {t = 1} t {print} t && /^}/ {t = 0}' "$tmp/pool6.ll"; }
for k in maxpool maxpool_grad; do
	body=$(fn "k[0-9]+\\.$k")
	n=$(grep -c "^define" <<<"$body")
	[ "$n" -eq 1 ] && ok "one $k kernel" || bad "pool6: $n $k kernels"
	# loops over images, rows and pixels; the taps and the 6 channels are straight-line code
	labels=$(grep -oE '^[a-z][a-z0-9.]*:' <<<"$body" | tr '\n' ' ')
	[[ $labels == *"ow:"* && $labels != *"kh:"* && $labels != *"kw:"* && $labels != *"ch:"* ]] &&
		ok "$k: taps and channels unrolled" || bad "$k: loops left inside the pixel loop: $labels"
done
# Fused kernels over rows of 6 columns: relu_grad+sum_rows (the conv's bias
# gradient) keeps its 6 sums in registers, not in a stack array that a masked
# vector op stores and reloads each row.
body=$(fn "k[0-9]+\\.fused")
n=$(grep -c "^define" <<<"$body")
[ "$n" -ge 3 ] && ok "$n fused kernels" || bad "pool6: $n fused kernels"
if grep -qE 'alloca|masked\.(load|store)\.v[0-9]+f64' <<<"$body"; then
	bad "fused kernels keep sums in memory" "$(grep -nE 'alloca|masked\.(load|store)\.v[0-9]+f64' <<<"$body" | head -3)"
else
	ok "fused sums in registers"
fi

echo "smallchan.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
