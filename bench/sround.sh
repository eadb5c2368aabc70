#!/bin/sh
# Stochastic rounding against rounding to nearest in pure fp16, with fp32 as the reference
# (issue 18's evidence; docs/precision.md "Stochastic rounding"): ResNet-20 trained on the CPU
# from the same initialization and data order with a small learning rate and weight decay
# (LR, default 0.0005; weight decay 5e-4; cosine schedule; EPOCHS (6) on the first TRAIN (5000) images,
# evaluated on the first 2000 test images), three runs: fp32, fp16 rounded to nearest, fp16
# rounded stochastically. The fp16 runs use --check-numerics, whose per-update `vanished`
# column counts the weight elements whose nonzero f32 update left the stored fp16 weight
# unchanged. Writes RESULTS.md (the table, the vanished totals), RESULTS.csv (every epoch of
# every run) and RESULTS.png (training loss and test accuracy per epoch).
#   bench/sround.sh [-o bench/results/sround-DATE] [--lr LR] [--epochs N] [--train N]
set -eu
cd "$(dirname "$0")/.."
out="bench/results/sround-$(date +%F)"
lr=0.0005 epochs=6 train=5000
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--lr) lr=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--train) train=$2; shift 2 ;;
	*) echo "usage: bench/sround.sh [-o PREFIX] [--lr LR] [--epochs N] [--train N]" >&2; exit 2 ;;
	esac
done
. bench/lib.sh
build/nnc compile models/resnet20.nn -o "$tmp/fp32.plan" 2>/dev/null
build/nnc compile --precision fp16 models/resnet20.nn -o "$tmp/fp16.plan" 2>/dev/null
common="--data data --train-limit $train --test-limit 2000 --epochs $epochs --lr $lr --set weight_decay=5e-4 --seed 0 --threads $threads --quiet"
build/nnrun train "$tmp/fp32.plan" $common --metrics "$tmp/fp32.csv" --checkpoint "$tmp/fp32.ckpt"
for r in nearest stochastic; do
	build/nnrun train "$tmp/fp16.plan" $common --set optimizer.rounding=$r --check-numerics --metrics "$tmp/$r.csv" \
		--checkpoint "$tmp/$r.ckpt" 2>"$tmp/$r.log"
done
/usr/bin/python3 - "$tmp" "$out" "$lr" "$epochs" "$train" <<'PY'
import csv, re, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
tmp, out, lr, epochs, train = sys.argv[1:]
runs = [("fp32", "fp32"), ("fp16, to nearest", "nearest"), ("fp16, stochastic", "stochastic")]
rows = {k: list(csv.DictReader(open("%s/%s.csv" % (tmp, k)))) for _, k in runs}
vanished = {}
for _, k in runs[1:]:
    total = 0
    for line in open("%s/%s.log" % (tmp, k)):
        if re.match(r"\s+train\s+(sgd_update|adam_update)\s", line):
            total += int(line.split()[-2])
    vanished[k] = total
with open(out + ".csv", "w") as f:
    w = csv.writer(f)
    w.writerow(["run", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr"])
    for label, k in runs:
        for r in rows[k]:
            w.writerow([k, r["epoch"], r["train_loss"], r["train_acc"], r["test_loss"], r["test_acc"], r["lr"]])
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
for label, k in runs:
    e = [int(r["epoch"]) for r in rows[k]]
    ax[0].plot(e, [float(r["train_loss"]) for r in rows[k]], marker="o", label=label)
    ax[1].plot(e, [100 * float(r["test_acc"]) for r in rows[k]], marker="o", label=label)
ax[0].set_xlabel("epoch"); ax[0].set_ylabel("training loss"); ax[0].legend()
ax[1].set_xlabel("epoch"); ax[1].set_ylabel("test accuracy (%)")
fig.suptitle("ResNet-20, lr %s, weight decay 5e-4, %s training images" % (lr, train))
fig.tight_layout()
fig.savefig(out + ".png", dpi=90)
last = {k: rows[k][-1] for _, k in runs}
with open(out + ".md", "w") as f:
    f.write("# Stochastic rounding vs rounding to nearest, pure fp16 (bench/sround.sh)\n\n")
    f.write("ResNet-20 on the CPU, %s epochs on the first %s training images, cosine schedule from lr %s, "
            "momentum 0.9, weight decay 5e-4, seed 0; test accuracy on the first 2000 test images. Same "
            "initialization and data order in every run. Per-epoch rows: `%s.csv`; plot: `%s.png`.\n\n"
            % (epochs, train, lr, out.split("/")[-1], out.split("/")[-1]))
    f.write("| run | final training loss | final test accuracy | updates that vanished (weight elements, all steps) |\n|---|---|---|---|\n")
    for label, k in runs:
        v = "%d" % vanished[k] if k in vanished else "-"
        f.write("| %s | %.4f | %.2f%% | %s |\n" % (label, float(last[k]["train_loss"]), 100 * float(last[k]["test_acc"]), v))
    f.write("\nPer epoch (training loss / test accuracy):\n\n| epoch | fp32 | fp16 to nearest | fp16 stochastic |\n|---|---|---|---|\n")
    for i in range(len(rows["fp32"])):
        f.write("| %d |" % (i + 1) + "".join(" %.4f / %.2f%% |" % (float(rows[k][i]["train_loss"]), 100 * float(rows[k][i]["test_acc"])) for _, k in runs) + "\n")
print(open(out + ".md").read())
PY
