#!/bin/bash
# The paper's Table 5 ("Revisiting 16-bit Neural Network Training", arXiv 2305.10947; the
# authors' figures in ../shared/reference/README.md) reproduced with nnc: each network trained
# in fp32, pure fp16 and mixed precision with nnc's default recipe on the training set and
# evaluated on the test set; total training seconds (the training steps, evaluation excluded,
# as the paper's), wall-clock seconds with evaluation, images/s, final test accuracy, the
# fp32/fp16 and mixed/fp16 time ratios, and nnrun compare's Lemma 3.3 summary (Gamma >= 2 delta
# guarantees the same class) for the fp32-trained and the fp16-trained weights, each through
# the fp32 and the fp16 plan. Writes the table as Markdown with the paper's row beside each
# network's, and says which of issue 22's goals hold.
#   bench/gpu/paper_table.sh [options]
#     --nnc PATH --nnrun PATH   the binaries (default build/nnc, build/nnrun)
#     --device cuda|cpu         where nnrun trains (default cuda)
#     --data DIR                CIFAR-10 (default data); DIR/subset.env, written by
#                               scripts/device-data.sh assemble, sets the image counts
#     --models "M ..."          networks of models/ (default resnet56)
#     --epochs N                (default: the recipe's, 30)
#     --train-limit N, --test-limit N, --records-per-file N, --threads N   passed to nnrun
#     -o FILE                   (default bench/results/paper-table-<gpu or cpu>-<date>.md)
# On a lent GPU machine: docs/cuda.md, "Full CIFAR-10 on a lent GPU". On this CPU machine,
# tests/paper_table.sh runs it on a subset with the CPU backend.
set -uo pipefail
cd "$(dirname "$0")/../.."
. bench/gpu/opts.sh
models=resnet56
own_opt() { [ "$1" = --models ] && models=$2; }
gpu_parse paper_table "$@"
gpu=cpu
if [ "$device" = cuda ]; then
	gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z ' 'a-z-' | sed 's/^nvidia-//')
	gpu=${gpu:-gpu}
fi
out=${out:-bench/results/paper-table-$gpu-$(date -u +%Y-%m-%d).md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
opts=("${nnrun_opts[@]}")
eval_opts=("${opts[@]}")

# The paper's Table 5 row of network M: fp16, fp32, mixed accuracy; fp16, fp32, mixed seconds.
paper() {
	case $1 in
	alexnet) echo "76.0±0.3|75.8±0.3|75.9±0.3|96|174|150" ;;
	vgg16) echo "83.7±0.3|83.9±0.2|83.8±0.2|377|857|455" ;;
	resnet32) echo "80.9|80.9|80.9|413|551|483" ;;
	resnet56) echo "81.6±0.4|81.4±0.6|81.5±0.6|677|905|795" ;;
	resnet110) echo "81.8±0.4|81.4±0.5|81.8±0.5|1256|1712|1486" ;;
	mobilenet_v2) echo "69.4±1.1|70.0±1.2|70.0±1.1|353|588|411" ;;
	*) echo "" ;;
	esac
}

# the Lemma 3.3 summary of `nnrun compare` output in FILE: delta, guaranteed %, disagreements,
# disagreements despite the guarantee
lemma() {
	awk '/largest delta/ { for (i = 1; i <= NF; i++) if ($i == "delta") d = $(i + 1) }
		/same class guaranteed/ { g = $NF; gsub(/[()]/, "", g) }
		/predictions agree/ { for (i = 1; i <= NF; i++) if ($i == "disagree:") n = $(i + 1) }
		/despite/ { v = $NF }
		END { printf "%s|%s|%s|%s", d, g, n, v }' "$1"
}

main="| network (params) | | fp16 acc | fp32 acc | mixed acc | fp16 s | fp32 s | mixed s | fp32/fp16 | mixed/fp16 |
|---|---|---|---|---|---|---|---|---|---|
"
detail="| network | precision | epochs | train images | test images | training s | wall s (with evaluation) | images/s | test accuracy | skipped steps |
|---|---|---|---|---|---|---|---|---|---|
"
lem="| network | weights | largest delta | Gamma >= 2 delta | disagreements | disagreements despite Gamma >= 2 delta |
|---|---|---|---|---|---|
"
goals=""
failed=0
for m in $models; do
	declare -A acc=() secs=()
	params=""
	for p in fp32 fp16 mixed; do
		plan=$tmp/$m-$p.plan
		if ! "$nnc" compile --precision $p "models/$m.nn" -o "$plan" 2>"$tmp/compile.log"; then
			echo "paper_table: $m $p does not compile:" >&2
			cat "$tmp/compile.log" >&2
			failed=1
			continue
		fi
		params=$(sed -n 's/.*, \([0-9]*\) trainable parameters.*/\1/p' "$tmp/compile.log")
		echo "== $m $p" >&2
		if ! "$nnrun" train "$plan" "${opts[@]}" --metrics "$tmp/$m-$p.csv" --checkpoint "$tmp/$m-$p.ckpt" >&2 ||
			! "$nnrun" export "$plan" --weights "$tmp/$m-$p.ckpt" -o "$tmp/$m-$p.safetensors" >/dev/null; then
			echo "paper_table: training $m in $p failed" >&2
			failed=1
			continue
		fi
		# epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_second,loss_scale,skipped_steps
		read -r ne ntrain tsec wsec ips a skipped < <(awk -F, -v n="${train_limit:-50000}" 'NR > 1 {
			e++; t += n / $8; w += $7; a = $5 * 100; s += $10 }
			END { printf "%d %d %.2f %.2f %.0f %.2f %d\n", e, n, t, w, e * n / t, a, s }' "$tmp/$m-$p.csv")
		acc[$p]=$a
		secs[$p]=$tsec
		detail="$detail| $m | $p | $ne | $ntrain | ${test_limit:-10000} | $tsec | $wsec | $ips | $a% | $skipped |
"
	done
	ratio() { awk -v a="${secs[$1]:-}" -v b="${secs[$2]:-}" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else printf "-" }'; }
	name="$m ($(awk -v p="$params" 'BEGIN { printf "%.2fM", p / 1e6 }'))"
	main="$main| $name | nnc | ${acc[fp16]:--} | ${acc[fp32]:--} | ${acc[mixed]:--} | ${secs[fp16]:--} | ${secs[fp32]:--} | ${secs[mixed]:--} | $(ratio fp32 fp16) | $(ratio mixed fp16) |
"
	ref=$(paper "$m")
	if [ -n "$ref" ]; then
		IFS='|' read -r a16 a32 amx s16 s32 smx <<<"$ref"
		main="$main| | paper | $a16 | $a32 | $amx | $s16 | $s32 | $smx | $(awk -v a=$s32 -v b=$s16 'BEGIN { printf "%.1fx", a / b }') | $(awk -v a=$smx -v b=$s16 'BEGIN { printf "%.1fx", a / b }') |
"
	fi
	for w in fp32 fp16; do
		[ -f "$tmp/$m-$w.safetensors" ] && [ -f "$tmp/$m-fp32.plan" ] && [ -f "$tmp/$m-fp16.plan" ] || continue
		if "$nnrun" compare "$tmp/$m-fp32.plan" "$tmp/$m-fp16.plan" --weights "$tmp/$m-$w.safetensors" "${eval_opts[@]}" \
			>"$tmp/cmp" 2>&1; then
			IFS='|' read -r d g n v <<<"$(lemma "$tmp/cmp")"
			lem="$lem| $m | $w-trained, fp32 plan vs fp16 plan | $d | $g | $n | $v |
"
			goals="$goals- $m, $w-trained weights: $([ "$v" = 0 ] && echo "0 Lemma 3.3 violations (goal met)" || echo "$v disagreements despite Gamma >= 2 delta (goal: 0)")
"
		else
			cat "$tmp/cmp" >&2
			failed=1
		fi
	done
	if [ -n "${acc[fp16]:-}" ] && [ -n "${acc[fp32]:-}" ]; then
		gap=$(awk -v a="${acc[fp16]}" -v b="${acc[fp32]}" 'BEGIN { printf "%.2f", b - a }')
		goals="$goals- $m: fp16 is $gap percentage points below fp32 ($(awk -v g="$gap" 'BEGIN { print (g <= 0.5) ? "goal met: at most 0.5" : "goal missed: at most 0.5" }'))
"
		r=$(ratio fp32 fp16)
		goals="$goals- $m: fp32/fp16 training time $r ($(awk -v r="${r%x}" 'BEGIN { print (r + 0 >= 1.6) ? "at least 1.6: goal met" : "goal 1.6 not met" }'))
"
	fi
	unset acc secs
done

{
	echo "# The paper's Table 5 with nnc: fp32, pure fp16 and mixed precision"
	echo
	echo "$(date -u +%Y-%m-%d), ${device}: $([ "$device" = cuda ] && nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "written by bench/gpu/paper_table.sh. nnc's default recipe (SGD momentum 0.9, cosine schedule,"
	echo "crop and flip augmentation, batch 128$([ -n "$epochs" ] && echo "; epochs: $epochs")); training on ${train_limit:-50000} and"
	echo "testing on ${test_limit:-10000} images$([ -f "$data/subset.env" ] && echo " (${TRAIN_BATCHES:-}; scripts/device-data.sh)")."
	echo "Seconds: the training steps of all epochs (the paper's figure), from each epoch's images/s."
	echo "The paper's rows are its authors' (Keras, 100 epochs at batch 256, no augmentation or schedule, an"
	echo "older GPU: ../shared/reference/README.md), beside for the ratios, not the absolute figures."
	echo
	printf '%s' "$main"
	echo
	printf '%s' "$detail"
	echo
	echo "Lemma 3.3 (nnrun compare on the test images: delta = max |p_fp32 - p_fp16|, Gamma = top-1 - top-2 of"
	echo "the fp32 plan's probabilities; Gamma >= 2 delta guarantees both predict the same class):"
	echo
	printf '%s' "$lem"
	echo
	echo "Goals (issue 22):"
	echo
	printf '%s' "$goals"
} >"$out"
echo "paper_table: wrote $out" >&2
cat "$out"
exit $failed
