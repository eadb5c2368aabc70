#!/bin/sh
# nnrun import-weights (runtime/import.h): ResNet-20's weights saved under another model's names
# (a PyTorch-style "stem/stages/blocks/fc" layout with num_batches_tracked counters) come back
# under nnc's names byte for byte -- by structure, by rules with back-references, by name --
# and evaluate exactly as the originals; ambiguity, gaps, extra tensors, other shapes and
# dtypes, and bad rules are refused, all at once, with nothing written. Needs the dataset in
# data/ for the evaluation; skips (77) without it, fails under CI=true.
#   tests/import_weights.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: import_weights.sh NNC NNRUN}
nnrun=${2:?usage: import_weights.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/lib.sh"
need_cifar "$data"

plan=$tmp/r.plan
"$nnc" compile --batch 32 models/resnet20.nn -o "$plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
expect weights 0 "" -- "$nnrun" train "$plan" --data "$data" --train-limit 64 --test-limit 32 --steps 2 --quiet \
	--threads 2 --checkpoint "$tmp/r.ckpt"
expect export 0 "" -- "$nnrun" export "$plan" --weights "$tmp/r.ckpt" -o "$tmp/orig.safetensors"

# foreign.py MODE OUT: the export renamed as another codebase would save it.
cat >"$tmp/foreign.py" <<'PY'
import re, struct, sys
sys.path.insert(0, "tests/io")
from crosscheck import read, serialize
mode, out = sys.argv[1], sys.argv[2]
_, _, meta, ts = read(sys.argv[3])
def rename(n):
    n = re.sub(r"^layer([1-3])\.([0-9]+)\.", r"stages.\1.blocks.\2.", n)
    n = re.sub(r"^conv1\.", "stem.conv.", n)
    n = re.sub(r"^bn1\.", "stem.bn.", n)
    n = re.sub(r"^linear\.", "fc.", n)
    if mode == "words":
        n = re.sub(r"\.bn1\.", ".bn_a.", n)
        n = re.sub(r"\.bn2\.", ".bn_b.", n)
    return n
t = {rename(n): v[:3] for n, v in ts.items()}
for n in list(t):
    if n.endswith(".running_mean"):
        t[n[:-len("running_mean")] + "num_batches_tracked"] = ("I64", [], struct.pack("<q", 2))
if mode == "shape":
    d = t["fc.weight"]
    t["fc.weight"] = (d[0], d[1][::-1], d[2])
if mode == "missing":
    del t["stages.2.blocks.1.conv2.weight"]
    t["head.extra.weight"] = ("F32", [2], struct.pack("<2f", 1, 2))
    d = t["fc.weight"]
    t["fc.weight"] = ("BF16", d[1], d[2][: len(d[2]) // 2])
open(out, "wb").write(serialize(t, {"format": "pt"}))
PY
py() { /usr/bin/python3 "$tmp/foreign.py" "$1" "$tmp/$1.safetensors" "$tmp/orig.safetensors"; }
py plain && py words && py missing && py shape || { echo "FAIL making the foreign files"; exit 1; }
# same-tensors A B: every tensor of A is in B with the same dtype, shape and bytes, and back.
same_tensors() {
	expect "$1" 0 "" -- /usr/bin/python3 -c '
import sys
sys.path.insert(0, "tests/io")
from crosscheck import read
a, b = read(sys.argv[1])[3], read(sys.argv[2])[3]
sys.exit(0 if {n: v[:3] for n, v in a.items()} == {n: v[:3] for n, v in b.items()} else 1)' "$2" "$3"
}

# The stem's batch norm ("stem.bn") and the blocks' hold the same tensors, and only the alphabet
# orders "stem" after "stages" (the model's "bn1" has no "stem"): refused, naming both. (A
# block's "bn2" and "shortcut.1" are ordered by the model's names having those words.)
imp="$nnrun import-weights $plan"
expect ambiguous 1 "ambiguous: modules 'stages.1.blocks.2.bn2' and 'stem.bn' have the same tensors (bias \[16\], running_mean \[16\], running_var \[16\], weight \[16\]) and neither numbers nor the model's names order them; add a rule" -- \
	$imp "$tmp/plain.safetensors" -o "$tmp/a.safetensors"
expect ambiguous-nothing-written 1 "" -- test -e "$tmp/a.safetensors"
# One rule names the stem's batch norm; the rest matches by structure, numbers ordering blocks.
printf -- '- match: "^stem\\\\.bn\\\\."\n  replace: "bn1."\n' >"$tmp/stem.yaml"
expect structure 0 "107 tensors for resnet20: 0 by name, 4 by rule, 103 by structure; 21 ignored" -- \
	$imp "$tmp/plain.safetensors" -o "$tmp/s.safetensors" --rules "$tmp/stem.yaml"
cp "$tmp/out" "$tmp/structure.out"
expect structure-map 0 "layer2.1.conv2.weight  *<- stages.2.blocks.1.conv2.weight  *structure" -- cat "$tmp/structure.out"
expect structure-ignored 0 "stages.3.blocks.2.bn2.num_batches_tracked  *ignored" -- cat "$tmp/structure.out"
same_tensors structure-bytes "$tmp/orig.safetensors" "$tmp/s.safetensors"
# ResNet-110's 18 blocks a stage: numbers order them ("blocks.10" after "blocks.9", not "blocks.1").
"$nnc" compile --batch 8 models/resnet110.nn -o "$tmp/r110.plan" 2>/dev/null || { echo "FAIL compile resnet110"; exit 1; }
expect weights110 0 "" -- "$nnrun" train "$tmp/r110.plan" --data "$data" --train-limit 8 --test-limit 8 --steps 1 --quiet \
	--threads 2 --checkpoint "$tmp/r110.ckpt"
expect export110 0 "" -- "$nnrun" export "$tmp/r110.plan" --weights "$tmp/r110.ckpt" -o "$tmp/orig110.safetensors"
/usr/bin/python3 "$tmp/foreign.py" plain "$tmp/plain110.safetensors" "$tmp/orig110.safetensors" || echo "FAIL foreign110"
expect structure110 0 "557 tensors for resnet110: 0 by name, 4 by rule, 553 by structure; 111 ignored" -- \
	"$nnrun" import-weights "$tmp/r110.plan" "$tmp/plain110.safetensors" -o "$tmp/s110.safetensors" --rules "$tmp/stem.yaml"
same_tensors structure110-bytes "$tmp/orig110.safetensors" "$tmp/s110.safetensors"
# Rules with back-references rename everything; nothing is left to structure.
cat >"$tmp/all.yaml" <<'YAML'
- match: '^stages\.([0-9]+)\.blocks\.([0-9]+)\.'
  replace: 'layer\1.\2.'
- match: '^stem\.(conv|bn)\.'
  replace: '\11.'
- match: '^fc\.'
  replace: 'linear.'
YAML
expect rules 0 "107 tensors for resnet20: 0 by name, 107 by rule, 0 by structure; 21 ignored" -- \
	$imp "$tmp/plain.safetensors" -o "$tmp/r.safetensors" --rules "$tmp/all.yaml"
same_tensors rules-bytes "$tmp/orig.safetensors" "$tmp/r.safetensors"
# nnc's own names import as they are.
expect names 0 "107 tensors for resnet20: 107 by name, 0 by rule, 0 by structure; 0 ignored" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/n.safetensors"
same_tensors names-bytes "$tmp/orig.safetensors" "$tmp/n.safetensors"
# The imported weights evaluate exactly as the originals.
ev="$nnrun eval $plan --data $data --test-limit 64 --threads 2 --weights"
expect eval-orig 0 "^test loss" -- $ev "$tmp/orig.safetensors"
grep "^test loss" "$tmp/out" >"$tmp/orig.eval"
expect eval-imported 0 "^test loss" -- $ev "$tmp/s.safetensors"
grep "^test loss" "$tmp/out" >"$tmp/s.eval"
same eval-same "$tmp/orig.eval" "$tmp/s.eval"

# Words that order blocks' batch norms ("bn_a", "bn_b"): ambiguous even with the stem named.
expect words 1 "ambiguous: modules 'stages.1.blocks.0.bn_a' and 'stages.1.blocks.0.bn_b'" -- \
	$imp "$tmp/words.safetensors" -o "$tmp/w.safetensors" --rules "$tmp/stem.yaml"
# Every problem at once: a missing tensor, an extra one, a dtype nnc does not load.
expect problems 1 "nothing for the model's 'layer2.1.conv2.weight' \[32, 32, 3, 3\]" -- \
	$imp "$tmp/missing.safetensors" -o "$tmp/m.safetensors" --rules "$tmp/all.yaml"
cp "$tmp/out" "$tmp/problems.out"
expect problems-extra 0 "tensor 'head.extra.weight' \[2\] matches no model parameter" -- cat "$tmp/problems.out"
expect problems-dtype 0 "tensor 'fc.weight' is BF16; nnc loads F32 or F16" -- cat "$tmp/problems.out"
expect problems-nothing 0 "^nothing written" -- cat "$tmp/problems.out"
expect problems-no-file 1 "" -- test -e "$tmp/m.safetensors"
# A tensor of the right name and another shape states both; two tensors renamed alike are refused.
expect shape 1 "tensor 'fc.weight' is \[64, 10\], the model's 'linear.weight' is \[10, 64\]" -- \
	$imp "$tmp/shape.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/all.yaml"
printf -- '- match: "^linear\\\\.weight$"\n  replace: "layer3.2.conv2.weight"\n' >"$tmp/twice.yaml"
expect twice 1 "tensors 'layer3.2.conv2.weight' and 'linear.weight' are both named 'layer3.2.conv2.weight' after the rules" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/twice.yaml"
# Bad rules files: located errors.
printf -- '- match: "(unclosed"\n  replace: "x"\n' >"$tmp/bad.yaml"
expect bad-regex 1 "bad.yaml:1:3: error: bad regular expression '(unclosed'" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/bad.yaml"
printf -- '- match: "a"\n  with: "b"\n' >"$tmp/bad.yaml"
expect bad-rule 1 "bad.yaml:1:3: error: a rule is {match: REGEX, replace: TEXT}, both once" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/bad.yaml"
printf 'match: a\n' >"$tmp/bad.yaml"
expect bad-list 1 "bad.yaml:1:1: error: rules are a list" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/bad.yaml"
expect no-rules-file 1 "nowhere.yaml: error: cannot open rules" -- \
	$imp "$tmp/orig.safetensors" -o "$tmp/x.safetensors" --rules "$tmp/nowhere.yaml"
expect usage 2 "import-weights needs PLAN SRC.safetensors -o OUT.safetensors" -- $imp "$tmp/orig.safetensors"
finish import_weights
