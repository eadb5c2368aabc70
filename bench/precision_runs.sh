#!/bin/sh
# The paper's claim on our own runtime: MODEL trained on the full CIFAR-10 on the CPU in fp32,
# pure fp16 and mixed precision with identical seeds, schedules and data order; the accuracy
# curves side by side; and the Lemma 3.3 comparison of the fp16-trained weights run through the
# fp32 and fp16 plans. Results go to bench/results/ (CSV per run, a Markdown summary, the
# comparison CSV and plot).
#   bench/precision_runs.sh MODEL EPOCHS       e.g. bench/precision_runs.sh tiny 15
set -eu
cd "$(dirname "$0")/.."
model=${1:?usage: precision_runs.sh MODEL EPOCHS}
epochs=${2:?usage: precision_runs.sh MODEL EPOCHS}
day=$(date -u +%Y-%m-%d)
out=bench/results
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in fp32 fp16 mixed; do
	build/nnc compile --precision $p --set epochs="$epochs" "models/$model.nn" -o "$tmp/$p.plan"
	start=$(date +%s)
	build/nnrun train "$tmp/$p.plan" --data data --metrics "$out/cifar-$model-cpu-$p-$day.csv" \
		--checkpoint "$tmp/$p.ckpt" --quiet
	echo $(( $(date +%s) - start )) >"$tmp/$p.secs"
done
build/nnrun export "$tmp/fp16.plan" --weights "$tmp/fp16.ckpt" -o "$tmp/fp16.safetensors"
build/nnrun compare "$tmp/fp32.plan" "$tmp/fp16.plan" --weights "$tmp/fp16.safetensors" --data data \
	--csv "$out/compare-$model-fp32-fp16-$day.csv" >"$tmp/compare.txt"
/usr/bin/python3 tools/plot_compare.py "$out/compare-$model-fp32-fp16-$day.csv" \
	"$out/compare-$model-fp32-fp16-$day.png" "$model trained in fp16: fp32 vs fp16 plan" || true
md=$out/precision-$model-cpu-$day.md
{
	echo "# $model on CIFAR-10 in fp32, pure fp16 and mixed precision (CPU, $day)"
	echo
	echo "$epochs epochs each, identical seed, schedule and data order (nnc's default recipe: SGD, momentum 0.9,"
	echo "weight decay 5e-4, cosine from lr 0.1, batch 128, crop and flip), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "$(nproc) threads (bench/precision_runs.sh). fp16: every tensor in fp16, f32 accumulation, no loss scaling;"
	echo "mixed: f16 activations, f32 master weights, dynamic loss scaling. Test accuracy per epoch:"
	echo
	echo "| epoch | fp32 | fp16 | mixed | fp32 loss | fp16 loss | mixed loss |"
	echo "|---|---|---|---|---|---|---|"
	paste -d, "$out/cifar-$model-cpu-fp32-$day.csv" "$out/cifar-$model-cpu-fp16-$day.csv" "$out/cifar-$model-cpu-mixed-$day.csv" |
		tail -n +2 | awk -F, '{ printf "| %d | %.2f%% | %.2f%% | %.2f%% | %.4f | %.4f | %.4f |\n", $1, $5 * 100, $15 * 100, $25 * 100, $4, $14, $24 }'
	echo
	echo "Wall time: fp32 $(cat "$tmp/fp32.secs") s, fp16 $(cat "$tmp/fp16.secs") s, mixed $(cat "$tmp/mixed.secs") s (the CPU backend"
	echo "computes fp16 by widening to f32 and rounding back, so fp16 is not faster on the CPU; the speed claim is the GPU's)."
	echo "Mixed's final loss scale and skipped steps: $(tail -1 "$out/cifar-$model-cpu-mixed-$day.csv" | cut -d, -f9,10 | sed 's/,/ and /')."
	echo
	echo "## Lemma 3.3: the fp16-trained weights through the fp32 and fp16 plans"
	echo
	echo '```'
	sed "s#$tmp/##g" "$tmp/compare.txt"
	echo '```'
	echo
	echo "Per image: compare-$model-fp32-fp16-$day.csv; plot: compare-$model-fp32-fp16-$day.png."
} >"$md"
cat "$md"
