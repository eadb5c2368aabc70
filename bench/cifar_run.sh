#!/bin/sh
# A real run: trains models on the full CIFAR-10 on the CPU and records each epoch's metrics in
# bench/results/ (CSV) with a short Markdown summary. Slow on 2 cores: ResNet-20 takes a few
# minutes per epoch.
#   bench/cifar_run.sh MODEL EPOCHS [RECIPE.yaml]     e.g. bench/cifar_run.sh resnet20 5
set -eu
cd "$(dirname "$0")/.."
model=${1:?usage: cifar_run.sh MODEL EPOCHS [RECIPE]}
epochs=${2:?usage: cifar_run.sh MODEL EPOCHS [RECIPE]}
recipe=${3:-}
day=$(date -u +%Y-%m-%d)
mkdir -p bench/results
plan=$(mktemp -d)/$model.plan
build/nnc compile ${recipe:+--recipe "$recipe"} --set epochs="$epochs" "models/$model.nn" -o "$plan"
csv=bench/results/cifar-$model-cpu-fp32-$day.csv
start=$(date +%s)
build/nnrun train "$plan" --data data --metrics "$csv" --checkpoint "${plan%.plan}.ckpt"
secs=$(( $(date +%s) - start ))
{
	echo "# $model on CIFAR-10, CPU, fp32 ($day)"
	echo
	echo "$epochs epochs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) threads, $secs s in all."
	echo "Recipe: nnc's defaults${recipe:+ with $recipe} (SGD, momentum 0.9, weight decay 5e-4, cosine schedule from"
	echo "lr 0.1, batch 128, random crop with padding 4 and horizontal flips). Metrics: $csv"
	echo
	echo "| epoch | train loss | train acc | test loss | test acc | lr | s |"
	echo "|---|---|---|---|---|---|---|"
	tail -n +2 "$csv" | awk -F, '{ printf "| %d | %.4f | %.2f%% | %.4f | %.2f%% | %.4g | %.0f |\n", $1, $2, $3 * 100, $4, $5 * 100, $6, $7 }'
} >"bench/results/cifar-$model-cpu-fp32-$day.md"
cat "bench/results/cifar-$model-cpu-fp32-$day.md"
