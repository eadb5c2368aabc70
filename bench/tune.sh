#!/bin/sh
# nnc tune-precision's evidence (issue 18; docs/precision.md, "Tuning a policy"): ResNet-20
# trained in fp32 on the CPU on the first 49,000 training images (EPOCHS, default 10; the
# default recipe otherwise), so that the last 1,000 are held out; the policy tuned under each
# budget below on those 1,000; then every policy's plan, pure fp16's and f32's, compared on the
# 10,000 test images with the same weights (nnrun compare: accuracy, delta, Lemma 3.3
# violations, changed predictions), beside its fp16 share of the work. Writes RESULTS.md (the
# table), RESULTS.csv (the per-layer report of the tightest budget) and RESULTS.png (its plot,
# tools/plot_tune.py).
#   bench/tune.sh [-o bench/results/tune-resnet20-DATE] [--epochs N] [--weights W.safetensors]
# The trained weights are kept as /tmp/nnc-bench-tune-resnet20.safetensors, with a line on how
# they were made in the same path plus .txt; --weights W skips the training and cites W.txt
# when there is one. Percentage budgets hold for the 95% upper confidence bound: with 1,000
# held-out images nothing below 0.3% can be shown.
set -eu
cd "$(dirname "$0")/.."
out="bench/results/tune-resnet20-$(date +%F)"
epochs=10 weights=
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--weights) weights=$2; shift 2 ;;
	*) echo "usage: bench/tune.sh [-o PREFIX] [--epochs N] [--weights W.safetensors]" >&2; exit 2 ;;
	esac
done
. bench/lib.sh
budgets="violations=1% violations=0.5% violations=0.3% flips=0.3% drop=0 delta=0.002 delta=0.001"
tightest=delta=0.001
build/nnc compile --set epochs="$epochs" models/resnet20.nn -o "$tmp/f32.plan" 2>/dev/null
build/nnc compile --precision fp16 models/resnet20.nn -o "$tmp/fp16.plan" 2>/dev/null
if [ -z "$weights" ]; then
	start=$(date +%s)
	build/nnrun train "$tmp/f32.plan" --data data --train-limit 49000 --threads "$threads" --quiet \
		--checkpoint "$tmp/f32.ckpt" --metrics "$tmp/train.csv"
	train_s=$(( $(date +%s) - start ))
	weights=/tmp/nnc-bench-tune-resnet20.safetensors
	build/nnrun export "$tmp/f32.plan" --weights "$tmp/f32.ckpt" -o "$weights" >/dev/null
	echo "trained by bench/tune.sh in fp32 for $epochs epochs on the first 49,000 training images ($train_s s on $(nproc) cores; final test accuracy $(tail -1 "$tmp/train.csv" | cut -d, -f5))" >"$weights.txt"
fi
origin="$(cat "$weights.txt" 2>/dev/null || echo "given: $weights")"
compare() { # PLAN NAME: the test-set comparison with the f32 plan
	build/nnrun compare "$tmp/f32.plan" "$1" --weights "$weights" --data data --threads "$threads" >"$tmp/$2.cmp"
}
compare "$tmp/fp16.plan" fp16
i=0
for b in $budgets; do
	i=$((i + 1))
	start=$(date +%s)
	build/nnc tune-precision models/resnet20.nn --weights "$weights" --data data --budget "$b" --threads "$threads" \
		-o "$tmp/p$i.yaml" --report "$tmp/p$i.csv" >"$tmp/p$i.txt"
	echo $(( $(date +%s) - start )) >"$tmp/p$i.secs"
	build/nnc compile --precision "$tmp/p$i.yaml" models/resnet20.nn -o "$tmp/p$i.plan" 2>/dev/null
	compare "$tmp/p$i.plan" "p$i"
	[ "$b" = "$tightest" ] && cp "$tmp/p$i.csv" "$out.csv"
done
/usr/bin/python3 tools/plot_tune.py "$out.csv" "$out.png" "ResNet-20, budget $tightest: per-layer sensitivity against cost"
/usr/bin/python3 - "$tmp" "$out" "$origin" $budgets <<'PY'
import re, sys
tmp, out, origin, budgets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def cmp(name):
    t = open("%s/%s.cmp" % (tmp, name)).read()
    n = int(re.search(r"on (\d+) test images", t).group(1))
    a32, a = map(float, re.search(r"accuracy A ([\d.]+)%, B ([\d.]+)%", t).groups())
    delta = re.search(r"largest delta (\S+)", t).group(1)
    g = int(re.search(r"same class guaranteed\): (\d+)", t).group(1))
    agree = int(re.search(r"predictions agree: (\d+)", t).group(1))
    return n, a32, a, delta, n - g, n - agree
rows = []
n, a32, a, d, v, f = cmp("fp16")
rows.append("| pure fp16 (nnc compile --precision fp16) | 0 | 100.0%% (100.0%%, 100.0%%) | - | - | %.2f%% | %s | %d (%.2f%%) | %d | - |" % (a, d, v, 100.0 * v / n, f))
for i, b in enumerate(budgets, 1):
    t = open("%s/p%d.txt" % (tmp, i)).read()
    m = re.search(r"result: (\d+) of (\d+) layers kept in f32(?: \(([^)]*(?:\([^)]*\)[^)]*)*)\))?; fp16 share of the work ([\d.]+)% \(MACs ([\d.]+)%, activations ([\d.]+)%\)", t)
    kept, total, names, w, mac, act = m.groups()
    h = re.search(r"held out: delta (\S+), violations (\d+), flips (\d+)", t).groups()
    secs = open("%s/p%d.secs" % (tmp, i)).read().strip()
    n, a32, a, d, v, f = cmp("p%d" % i)
    # the budget on the test set: rates against their limits, the drop in points, delta as is
    got = {"delta": float(d), "violations": v, "flips": f, "drop": a32 - a}
    verdict = []
    for item in b.split(","):
        key, val = item.split("=")
        lim = float(val.rstrip("%")) * (n / 100.0 if val.endswith("%") else 1)
        verdict.append("holds" if got[key] <= lim + 1e-9 else "exceeded")
    rows.append("| `%s` | %s%s | %s%% (%s%%, %s%%) | %s, %s, %s | %s s | %.2f%% | %s | %d (%.2f%%) | %d | %s |" % (
        b, kept, (": " + names) if names else "", w, mac, act, h[0], h[1], h[2], secs, a, d, v, 100.0 * v / n, f,
        ", ".join(verdict)))
with open(out + ".md", "w") as o:
    o.write("# nnc tune-precision on ResNet-20 (CPU)\n\n")
    o.write("Written by bench/tune.sh. Weights: %s. Each policy was tuned on the last 1,000 training\n" % origin)
    o.write("images (held out from training) against the f32 plan with the same weights, starting from pure fp16;\n")
    o.write("then its plan was compared with the f32 plan on the 10,000 test images (`nnrun compare`).\n")
    o.write("fp16 share: the mean of the shares of MACs and of activation elements in fp16 (MACs, activations).\n")
    o.write("Violations: images with Gamma < 2 delta (Lemma 3.3's guarantee lost); flips: changed predictions.\n")
    o.write("Percentage budgets hold on the held-out images for the rate's 95% upper confidence bound; delta is a\n")
    o.write("maximum, which grows with the number of images, so a delta budget is not expected to carry over to\n")
    o.write("the 10,000 test images.\n\n")
    o.write("f32 plan, test accuracy: %.2f%%.\n\n" % a32)
    o.write("| budget (held out) | layers kept in f32 (of %s) | fp16 share of the work | held out: delta, violations, flips | tuning time | test accuracy | test delta | test violations | test flips | the budget on the test set |\n" % total)
    o.write("|---|---|---|---|---|---|---|---|---|---|\n")
    o.write("\n".join(rows) + "\n\n")
    o.write("Per-layer report of the tightest budget: %s.csv; plot: %s.png.\n" % (out.split("/")[-1], out.split("/")[-1]))
PY
cat "$out.md"
