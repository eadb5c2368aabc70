#!/bin/sh
# nnc tune-precision end to end on the CPU (cli/tune.c, docs/precision.md "Tuning a policy"),
# on the tiny model and ResNet-20, each trained briefly in fp32 here on the first 9,000 or
# 5,000 training images (the held-out images, the last 1,000 or 500 of the 50,000, are never
# trained on):
#   - a budget pure fp16 meets gives pure fp16 (no layers: section);
#   - a tighter one makes the search move layers to f32, and then the policy as written,
#     compiled by `nnc compile --precision`, meets the budget on the held-out images (measured
#     again by `nnrun compare --holdout`, which must agree with the tuner's own figures) and on
#     the test set;
#   - every layer the report lists has, in the compiled plan, the dtype the report gives it;
#   - a second run writes the same policy and report (tiny);
#   - bad options get clear errors.
# Needs the dataset in data/; skips (77) without it, fails under CI=true.
#   tests/tune.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: tune.sh NNC NNRUN}
nnrun=${2:?usage: tune.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=300
. "$(dirname "$0")/lib.sh"
need_cifar "$data"

# tune MODEL EPOCHS TRAIN HOLDOUT LOOSE TIGHT: trains MODEL, tunes it under both budgets, checks.
tune() {
	m=$1 epochs=$2 train=$3 holdout=$4 loose=$5 tight=$6
	"$nnc" compile --layout nchw --set epochs="$epochs" "models/$m.nn" -o "$tmp/$m.plan" 2>/dev/null || { echo "FAIL $m: compile"; fail=$((fail + 1)); return; }
	expect "$m-train" 0 "" -- "$nnrun" train "$tmp/$m.plan" --data "$data" --train-limit "$train" --test-limit 100 \
		--threads 2 --quiet --checkpoint "$tmp/$m.ckpt"
	expect "$m-export" 0 "" -- "$nnrun" export "$tmp/$m.plan" --weights "$tmp/$m.ckpt" -o "$tmp/$m.safetensors"
	t="$nnc tune-precision --layout nchw models/$m.nn --data $data --holdout $holdout --threads 2"

	# loose: pure fp16 is within it (the checkpoint is converted for the plans of other dtypes)
	expect "$m-loose" 0 "pure fp16: .*within budget" -- $t --weights "$tmp/$m.ckpt" --budget "$loose" -o "$tmp/$m-loose.yaml"
	cp "$tmp/out" "$tmp/$m-loose.txt"
	expect "$m-loose-pure" 1 "" -- grep -q "^layers:" "$tmp/$m-loose.yaml"
	expect "$m-loose-0" 0 "result: 0 of" -- cat "$tmp/$m-loose.txt"

	# tight: the search runs and keeps some layers, but not all, in f32
	expect "$m-tight" 0 "pure fp16: .*over budget" -- $t --weights "$tmp/$m.safetensors" --budget "$tight" \
		-o "$tmp/$m.yaml" --report "$tmp/$m.csv"
	cp "$tmp/out" "$tmp/$m.txt"
	expect "$m-search" 0 "search: move layers" -- cat "$tmp/$m.txt"
	expect "$m-some-f32" 0 '^  "[^"]*": {store: f32, acc: f32}' -- cat "$tmp/$m.yaml"
	expect "$m-share" 0 "fp16 share of the work [1-9][0-9]*\.[0-9]%" -- cat "$tmp/$m.txt"

	# the written policy, compiled as a user would, and measured again
	expect "$m-compile-policy" 0 "" -- "$nnc" compile --layout nchw --precision "$tmp/$m.yaml" "models/$m.nn" -o "$tmp/$m-tuned.plan"
	"$nnc" compile --layout nchw "models/$m.nn" -o "$tmp/$m-f32.plan" 2>/dev/null
	cmp="$nnrun compare $tmp/$m-f32.plan $tmp/$m-tuned.plan --weights $tmp/$m.safetensors --data $data --threads 2"
	expect "$m-holdout" 0 "" -- $cmp --holdout "$holdout"
	cp "$tmp/out" "$tmp/$m-holdout.txt"
	expect "$m-test" 0 "" -- $cmp
	cp "$tmp/out" "$tmp/$m-test.txt"
	expect "$m-budget" 0 "" -- /usr/bin/python3 - "$tmp/$m" "$tight" "$holdout" <<'PY'
import re, sys
base, budget, holdout = sys.argv[1], sys.argv[2], int(sys.argv[3])
tuner = open(base + ".txt").read()
held = re.search(r"held out: delta (\S+), violations (\d+), flips (\d+), accuracy ([\d.]+)%", tuner).groups()
f32acc = float(re.search(r"f32 plan: accuracy ([\d.]+)%", tuner).group(1))

def measured(path):
    t = open(path).read()
    n = int(re.search(r"on (?:the last )?(\d+) (?:test|training) images", t).group(1))
    a32, a = map(float, re.search(r"accuracy A ([\d.]+)%, B ([\d.]+)%", t).groups())
    g = int(re.search(r"guaranteed\): (\d+)", t).group(1))
    agree = int(re.search(r"predictions agree: (\d+)", t).group(1))
    delta = float(re.search(r"largest delta (\S+)", t).group(1))
    return n, dict(delta=delta, violations=n - g, flips=n - agree, drop=a32 - a), a32

ok = True
n, h, a32 = measured(base + "-holdout.txt")
# the tuner measured exactly what the written policy gives
same = (h["violations"] == int(held[1]) and h["flips"] == int(held[2]) and abs(a32 - f32acc) < 1e-9 and
        abs(h["delta"] - float(held[0])) <= 5e-3 * float(held[0]) + 1e-12)
print("held out, tuner:", held, "compare:", h, "same" if same else "DIFFERENT")
ok &= same
for name, (n, got, _) in (("held out", (n, h, a32)), ("test set", measured(base + "-test.txt"))):
    for item in budget.split(","):
        key, val = item.split("=")
        lim = float(val.rstrip("%")) * (n / 100.0 if val.endswith("%") else 1)
        good = got[key] <= lim + 1e-9
        print("%s: %s %g, limit %g: %s" % (name, key, got[key], lim, "holds" if good else "EXCEEDED"))
        ok &= good
sys.exit(0 if ok else 1)
PY
	# every layer of the report has its dtype in the compiled plan's evaluation graph
	"$nnc" compile --batch 2 --layout nchw --precision "$tmp/$m.yaml" "models/$m.nn" --dump-ir=precision >"$tmp/$m.ir" 2>/dev/null
	expect "$m-dtypes" 0 "" -- /usr/bin/python3 - "$tmp/$m.csv" "$tmp/$m.ir" <<'PY'
import csv, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ir = open(sys.argv[2]).read()
ev = ir[ir.index(".eval batch="):]
seen = {}
for line in ev.splitlines():
    m = re.match(r"\s+%\d+ = (\w+) .*?: (f16|f32)\[[^@#]*(?:@(\S+))?", line)
    if not m or m.group(1) in ("cast", "input", "param", "relayout"):
        continue
    seen.setdefault(m.group(3) or "(top level)", set()).add(m.group(2))
ok = len(rows) > 1
for r in rows:
    want = r["precision"]
    got = seen.get(r["layer"], set())
    if got != {want}:
        print("layer %s: report says %s, plan has %s" % (r["layer"], want, sorted(got)))
        ok = False
print("%d layers checked" % len(rows))
sys.exit(0 if ok else 1)
PY
}

tight_tiny="violations=1%,drop=0.5"
tune tiny 1 9000 1000 "violations=5%" "$tight_tiny"
# a second run: the same policy and report, byte for byte
expect tiny-again 0 "" -- $nnc tune-precision --layout nchw models/tiny.nn --data "$data" --holdout 1000 --threads 2 \
	--weights "$tmp/tiny.safetensors" --budget "$tight_tiny" -o "$tmp/tiny2.yaml" --report "$tmp/tiny2.csv"
same tiny-same-policy "$tmp/tiny.yaml" "$tmp/tiny2.yaml"
same tiny-same-report "$tmp/tiny.csv" "$tmp/tiny2.csv"
# the sanitizer phase runs the tiny model only (scripts/test.sh)
case " ${TUNE_MODELS:-tiny resnet20} " in
*" resnet20 "*) tune resnet20 3 10000 1000 "drop=50" "violations=0.6%" ;;
esac

# errors
t="$nnc tune-precision models/tiny.nn"
expect needs-weights 2 "needs --weights W, --data DIR and -o POLICY.yaml" -- $t --data "$data" -o "$tmp/x.yaml"
expect bad-key 2 "unknown limit 'speed'" -- $t --weights w --data d -o x --budget speed=1
expect bad-count 2 "violations needs a whole number of images or a percentage" -- $t --weights w --data d -o x --budget violations=1.5
expect bad-delta 2 "delta needs a probability difference from 0 to 1" -- $t --weights w --data d -o x --budget delta=2
expect bad-holdout 2 "--holdout needs a number from 1 to 50000" -- $t --weights w --data d -o x --holdout 0
expect not-fp16 2 "starts from pure fp16" -- $t --weights "$tmp/tiny.safetensors" --data "$data" -o x --precision mixed
printf 'base: fp16\nlayers:\n  conv1: f32\n' >"$tmp/haslayers.yaml"
expect has-layers 2 "writes that section itself" -- $t --weights "$tmp/tiny.safetensors" --data "$data" -o x --precision "$tmp/haslayers.yaml"
expect too-few-images 2 "1000 held-out images cannot show violations <= 0.2% at 95% confidence: even none seen bounds the rate at 0.299%" -- \
	$t --weights "$tmp/tiny.safetensors" --data "$data" -o x --budget violations=0.2%
expect no-weights-file 1 "nowhere.safetensors" -- $t --weights "$tmp/nowhere.safetensors" --data "$data" -o "$tmp/x.yaml"
expect no-policy-on-failure 1 "" -- test -e "$tmp/x.yaml"
finish tune
