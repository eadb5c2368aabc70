#!/bin/sh
# bench/gpu/paper_table.sh, the paper's Table 5 procedure, run here with the CPU backend on a
# subset: the tiny model in fp32, fp16 and mixed for one epoch. The table must have nnc's row
# with three accuracies and times, the per-precision details, both Lemma 3.3 rows (fp32- and
# fp16-trained weights) and the goals; ResNet-56's paper row comes with it when asked (here
# only checked to be known to the script); and bench/gpu/airbench.sh's one-run table. Needs
# data/.
nnc=${1:?usage: paper_table.sh NNC NNRUN}
nnrun=${2:?usage: paper_table.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
pt="$(dirname "$0")/../bench/gpu/paper_table.sh"
expect run 0 "paper_table: wrote" -- "$pt" --nnc "$nnc" --nnrun "$nnrun" --device cpu --data "$data" --models tiny \
	--epochs 1 --train-limit 512 --test-limit 256 --threads 2 -o "$tmp/table.md"
t="$tmp/table.md"
expect row 0 "" -- grep -E "^\| tiny \(0\.00M\) \| nnc \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \| [0-9.]+x \|$" "$t"
for p in fp32 fp16 mixed; do
	expect "detail-$p" 0 "" -- grep -E "^\| tiny \| $p \| 1 \| 512 \| 256 \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| [0-9.]+% \| [0-9]+ \|$" "$t"
done
for w in fp32 fp16; do
	expect "lemma-$w" 0 "" -- grep -E "^\| tiny \| $w-trained, fp32 plan vs fp16 plan \| [0-9.e-]+ \| [0-9.]+% \| [0-9]+ \| [0-9]+ \|$" "$t"
done
expect goals 0 "tiny: fp16 is -*[0-9.]* percentage points below fp32" -- cat "$t"
expect paper-row 0 "81.6±0.4|81.4±0.6|81.5±0.6|677|905|795" -- sh -c "sed -n '/^paper()/,/^}/p' '$pt'"
expect bad-option 2 "unknown option --bogus" -- "$pt" --bogus 1
# bench/gpu/airbench.sh likewise: airbench94 with its recipe in pure fp16, one run of one epoch
# on one batch of 1024 images; the table holds the run, the mean and the published figures
ab="$(dirname "$0")/../bench/gpu/airbench.sh"
expect airbench 0 "airbench: wrote" -- "$ab" --nnc "$nnc" --nnrun "$nnrun" --device cpu --data "$data" --seeds 1 --epochs 1 \
	--train-limit 1024 --test-limit 256 --threads 2 -o "$tmp/airbench.md"
expect airbench-run 0 "" -- grep -E "^\| 0 \| [0-9.]+% \| [0-9.]+ \| [0-9]+ \|$" "$tmp/airbench.md"
expect airbench-mean 0 "" -- grep -E "^\| nnc, mean ± std over 1 \| [0-9.]+ ± 0.00 \| [0-9.]+ ± 0.00 \|$" "$tmp/airbench.md"
expect airbench-published 0 "| airbench94.py, published (A100, n = 1000) | 94.01 | 3.83 |" -- cat "$tmp/airbench.md"
finish paper_table
