#!/bin/bash
# GPU training speed, nnrun against PyTorch on the same GPU in the same run (issue 7's
# benchmark; scripts/device-check.sh calls it on a lent GPU machine):
#   ResNet-20 and ResNet-56 at batch 128 and 512, airbench94 at batch 1024, MobileNet-V2 at 128
#   (BENCH_NETS: NET:BATCH ... to choose);
#   nnrun bench (the resident loop: batches rendered on the GPU, the step replayed as a CUDA
#   graph) in fp32 (IEEE: no TF32), mixed and pure fp16, and fp16 without the graph;
#   bench/gpu/torch_gpu.py in fp32 (TF32 off), eager AMP + channels_last, pure .half() and
#   torch.compile (AMP, mode max-autotune: CUDA graphs, warmed up past compilation), each on
#   synthetic data already on the GPU. nnrun's plans are compiled with the default layout
#   (channels-last) unless BENCH_LAYOUT says otherwise; convolution algorithms are measured on
#   the first run and read from the cache after (docs/cuda.md).
# Prints a markdown table of images/s with the ratios issue 7 sets as goals, and the floor from
# `nnrun info` (GFLOP over the fp16 tensor-core or fp32 rate, MB over the bandwidth: the
# ceilings of docs/performance.md) against the measured step.
# torch.compile takes a minute or two per network to compile, so it runs only for the networks
# in COMPILE_NETS (default: resnet56, the network of issue 7's goal; empty: none).
#   bench/gpu/run.sh NNC NNRUN [STEPS]
set -uo pipefail
nnc=${1:?usage: run.sh NNC NNRUN [STEPS]}
nnrun=${2:?usage: run.sh NNC NNRUN [STEPS]}
steps=${3:-50}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TFLOPS_F16=790 TFLOPS_F32=67 TBPS=4.3 # ceilings, docs/performance.md
py=${PYTHON:-python3}

# images/s from an nnrun bench or torch_gpu.py line ("" when it failed)
ips() { sed -n 's/.* \([0-9.]*\) images\/s.*/\1/p' | tail -1; }
ms() { sed -n 's/.* \([0-9.]*\) ms\/step.*/\1/p' | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2fx", a / b; else printf "-" }'; }

echo "| network | batch | nnrun fp32 | nnrun mixed | nnrun fp16 | fp16 no graph | torch fp32 | torch AMP | torch half | torch.compile | fp16/fp32 | fp16/AMP | fp16/half | fp16/compile | fp16 ms/step | floor ms | x floor | graph nodes | torch kernels (AMP) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in ${BENCH_NETS:-resnet20:128 resnet56:128 resnet20:512 resnet56:512 airbench94:1024 mobilenet_v2:128}; do
	net=${spec%:*} batch=${spec#*:}
	declare -A r=()
	for p in fp32 mixed fp16; do
		plan=$tmp/$net-$p.plan
		if ! "$nnc" compile --batch "$batch" --precision $p --layout "${BENCH_LAYOUT:-auto}" "models/$net.nn" -o "$plan" 2>"$tmp/err"; then
			echo "bench/gpu: compile $net $p failed: $(head -3 "$tmp/err")" >&2
			continue
		fi
		timeout 120 "$nnrun" bench "$plan" --device cuda --steps "$steps" >"$tmp/$net-$p.out" 2>&1
		cat "$tmp/$net-$p.out" >&2
		r[$p]=$(ips <"$tmp/$net-$p.out")
	done
	timeout 120 "$nnrun" bench "$tmp/$net-fp16.plan" --device cuda --steps "$steps" --no-graph >"$tmp/ng.out" 2>&1
	cat "$tmp/ng.out" >&2
	r[nograph]=$(ips <"$tmp/ng.out")
	nodes=$(sed -n 's/.*a CUDA graph of \([0-9]*\) nodes.*/\1/p' "$tmp/$net-fp16.out")
	fp16ms=$(ms <"$tmp/$net-fp16.out")
	for m in fp32 amp half compile; do
		[ $m = compile ] && [[ " ${COMPILE_NETS-resnet56} " != *" $net "* ]] && continue
		limit=$([ $m = compile ] && echo 300 || echo 90)
		timeout $limit "$py" "$here/torch_gpu.py" --net "$net" --mode $m --batch "$batch" --steps "$steps" \
			>"$tmp/t-$m.out" 2>&1
		cat "$tmp/t-$m.out" >&2
		r[t$m]=$(ips <"$tmp/t-$m.out")
	done
	tk=$(sed -n 's/.* \([0-9?]*\) kernels\/step.*/\1/p' "$tmp/t-amp.out")
	info=$("$nnrun" info "$tmp/$net-fp16.plan" 2>/dev/null | tr '\n' ' ')
	gflop=$(echo "$info" | sed -n 's/.*train run: \([0-9.]*\) GFLOP.*/\1/p')
	mb=$(echo "$info" | sed -n "s/.*train run: [0-9.]* GFLOP in convolutions and dense layers, \([0-9.]*\) MB.*/\1/p")
	floor=$(awk -v g="$gflop" -v m="$mb" -v t="$TFLOPS_F16" -v b="$TBPS" \
		'BEGIN { if (g == "" || m == "") exit; a = g / t; c = m / 1e3 / b; printf "%.3f", (a > c ? a : c) }')
	xf=$(awk -v a="$fp16ms" -v f="$floor" 'BEGIN { if (a != "" && f > 0) printf "%.1f", a / f; else printf "-" }')
	echo "| $net | $batch | ${r[fp32]:--} | ${r[mixed]:--} | ${r[fp16]:--} | ${r[nograph]:--} | ${r[tfp32]:--} |" \
		"${r[tamp]:--} | ${r[thalf]:--} | ${r[tcompile]:--} | $(ratio "${r[fp16]:-}" "${r[fp32]:-}") |" \
		"$(ratio "${r[fp16]:-}" "${r[tamp]:-}") | $(ratio "${r[fp16]:-}" "${r[thalf]:-}") | $(ratio "${r[fp16]:-}" "${r[tcompile]:-}") | ${fp16ms:--} | ${floor:--} |" \
		"$xf | ${nodes:--} | ${tk:--} |"
	unset r
done
