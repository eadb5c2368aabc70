#!/bin/bash
# airbench94 to 94% (issue 22): nnc's airbench94 (models/airbench94.nn with its recipe
# models/airbench94.yaml) in pure fp16 on the training set, SEEDS runs with seeds 0..SEEDS-1;
# per run the final test accuracy and the wall-clock seconds of the whole `nnrun train`
# (start-up, loading, the whitening, every epoch and its evaluation); the mean and standard
# deviation against airbench94's published 94.01% in 3.83 s (A100, PyTorch eager; its time
# counts the whitening, the epochs and one final evaluation with test-time augmentation, not
# loading). Then what nnc's recipe still does differently.
#   bench/gpu/airbench.sh [--nnc PATH] [--nnrun PATH] [--device cuda|cpu] [--data DIR] [--seeds N]
#                         [--epochs N] [--train-limit N] [--test-limit N] [--threads N] [-o FILE]
# On a lent GPU: scripts/device-full.sh runs it; here tests/paper_table.sh runs it on a subset
# with the CPU backend.
set -uo pipefail
cd "$(dirname "$0")/../.."
. bench/gpu/opts.sh
seeds=5
own_opt() { [ "$1" = --seeds ] && seeds=$2; }
gpu_parse airbench "$@"
out=${out:-bench/results/airbench-$device-$(date -u +%Y-%m-%d).md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" compile --precision fp16 --recipe models/airbench94.yaml models/airbench94.nn -o "$tmp/a.plan" 2>"$tmp/compile" || {
	cat "$tmp/compile" >&2
	exit 1
}
rows="| seed | test accuracy | wall s | training images/s (last epoch) |
|---|---|---|---|
"
accs="" walls=""
failed=0
for ((s = 0; s < seeds; s++)); do
	t0=$(date +%s.%N)
	if ! "$nnrun" train "$tmp/a.plan" "${nnrun_opts[@]}" --seed $s \
		--metrics "$tmp/m$s.csv" --checkpoint "$tmp/c$s.ckpt" >&2; then
		echo "airbench: run $s failed" >&2
		failed=1
		continue
	fi
	t1=$(date +%s.%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	# epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_second,loss_scale,skipped_steps
	read -r acc ips < <(awk -F, 'END { printf "%.2f %.0f\n", $5 * 100, $8 }' "$tmp/m$s.csv")
	rows="$rows| $s | $acc% | $wall | $ips |
"
	accs="$accs $acc" walls="$walls $wall"
done
stats() { echo "$1" | tr ' ' '\n' | awk 'NF { n++; s += $1; q += $1 * $1 } END { if (n) { m = s / n; v = q / n - m * m; printf "%.2f ± %.2f", m, (v > 0 ? sqrt(v) : 0) } else printf "-" }'; }
mean_acc=$(stats "$accs") mean_wall=$(stats "$walls")
{
	echo "# airbench94 with nnc: pure fp16, $seeds runs"
	echo
	echo "$(date -u +%Y-%m-%d), ${device}: $([ "$device" = cuda ] && nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');"
	echo "written by bench/gpu/airbench.sh: models/airbench94.nn with models/airbench94.yaml, --precision fp16; nnrun ${nnrun_opts[*]}."
	echo
	printf '%s' "$rows"
	echo
	echo "| | test accuracy | wall s |"
	echo "|---|---|---|"
	echo "| nnc, mean ± std over $seeds | $mean_acc | $mean_wall |"
	echo "| airbench94.py, published (A100, n = 1000) | 94.01 | 3.83 |"
	echo
	echo "Goal (issue 22): at least 94.0% mean in less wall-clock time than 3.83 s:" \
		"$(awk -v a="${mean_acc%% *}" -v w="${mean_wall%% *}" 'BEGIN { print (a + 0 >= 94 && w + 0 > 0 && w + 0 < 3.83) ? "met" : "not met" }')."
	echo
	echo "Where nnc's run still differs from airbench94.py (docs/cuda.md):"
	echo
	echo "- no lookahead (weight averaging every 5 steps from epoch 3), the whitening bias trained throughout"
	echo "  (airbench: frozen after 3 epochs), test-time augmentation through the host-fed evaluation on the GPU"
	echo "  (every epoch's, where airbench evaluates once);"
	echo "- 10 epochs (airbench: 9.9, 476 steps), and the wall time here includes start-up, data loading and an"
	echo "  evaluation after every epoch."
} >"$out"
echo "airbench: wrote $out" >&2
cat "$out"
exit $failed
