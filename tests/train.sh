#!/bin/sh
# End-to-end training on a CIFAR-10 subset with the tiny model: metrics, checkpoints, bit-identical
# resume (stopped mid-epoch by --steps and by Ctrl-C), weight export/import, evaluation, and bad
# inputs (missing or damaged data, corrupt checkpoints). Needs the dataset in data/ (fetched by
# scripts/setup.sh); skips (77) without it, fails under CI=true. Run from the repository root:
#   tests/train.sh PATH/TO/nnc PATH/TO/nnrun
nnc=${1:?usage: train.sh NNC NNRUN}
nnrun=${2:?usage: train.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/lib.sh"
need_cifar "$data"


plan=$tmp/tiny.plan
"$nnc" compile --batch 64 --set epochs=2 models/tiny.nn -o "$plan" 2>/dev/null || { echo "FAIL compile"; exit 1; }
run="$nnrun train $plan --data $data --train-limit 1280 --test-limit 300 --quiet --threads 2"

# A whole run: metrics (CSV and JSON Lines), every test image evaluated, a final checkpoint.
expect full 0 "" -- $run --checkpoint "$tmp/full.ckpt" --metrics "$tmp/full.csv"
expect csv 0 "^2,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*," -- cat "$tmp/full.csv"
expect jsonl 0 '' -- $run --checkpoint "$tmp/j.ckpt" --metrics "$tmp/m.jsonl" --set epochs=1
expect jsonl-content 0 '"epoch": 1, "train_loss": [0-9.]*, "train_acc"' -- cat "$tmp/m.jsonl"
# Learning, not just a falling loss: after 2 epochs on 1280 images the tiny model is well past
# chance (10%, loss ln 10 = 2.303): seeds 1-3 reach 20-25% test accuracy and a training loss
# of 2.10-2.15, so the bounds leave room for rounding, not for a broken gradient.
expect learns 0 "" -- awk -F, 'NR == 2 { a = $2 } NR == 3 { exit !($2 < a && $2 < 2.2 && $5 >= 0.17) }' "$tmp/full.csv"
expect eval-all 0 "(.* of 300 images)" -- "$nnrun" eval "$plan" --weights "$tmp/full.ckpt" --data "$data" --test-limit 300

# Resume mid-epoch (step limit) gives a bit-identical final checkpoint.
expect stop 0 "" -- $run --checkpoint "$tmp/part.ckpt" --steps 7 --metrics "$tmp/part.csv"
expect resume 0 "" -- $run --checkpoint "$tmp/part.ckpt" --resume "$tmp/part.ckpt" --metrics "$tmp/part.csv"
same resume-identical "$tmp/full.ckpt" "$tmp/part.ckpt"
cut -d, -f1-5 "$tmp/full.csv" >"$tmp/full.metrics"
cut -d, -f1-5 "$tmp/part.csv" >"$tmp/part.metrics"
same resume-metrics "$tmp/full.metrics" "$tmp/part.metrics"

# Ctrl-C saves a checkpoint and exits 130; resuming finishes identically. (Where in a run the
# signal lands depends on the machine's speed: inside an epoch, or at an epoch's end, which the
# message then names.)
$run --checkpoint "$tmp/int.ckpt" --set epochs=1000 >"$tmp/int.log" 2>&1 &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
if [ $rc = 130 ] && grep -Eq "interrupted( at the end of epoch [0-9]+)?; checkpoint saved" "$tmp/int.log" && [ -s "$tmp/int.ckpt" ]; then pass=$((pass + 1)); else echo "FAIL ctrl-c: exit $rc"; cat "$tmp/int.log"; fail=$((fail + 1)); fi
expect int-resume 0 "" -- $run --checkpoint "$tmp/int.ckpt" --resume "$tmp/int.ckpt" --set epochs=1000 --steps 3

# --resume continues the checkpoint's run as it went: a run of 1 epoch on 320 images stopped
# mid-epoch resumes, with no flags, to the end of that epoch on those images (not the plan's 2
# epochs on the whole set), exactly as the uninterrupted run; a flag that changes the run is
# said; a checkpoint's recorded recipe and limits are its run's.
short="$nnrun train $plan --data $data --test-limit 100 --quiet --threads 2 --epochs 1 --train-limit 320"
expect short-full 0 "" -- $short --checkpoint "$tmp/sf.ckpt" --metrics "$tmp/sf.csv"
expect short-part 0 "" -- $short --checkpoint "$tmp/sp.ckpt" --metrics "$tmp/sp.csv" --steps 2
expect short-resume 0 "" -- "$nnrun" train "$plan" --data "$data" --quiet --threads 2 --resume "$tmp/sp.ckpt" \
	--checkpoint "$tmp/sp.ckpt" --metrics "$tmp/sp.csv"
same short-resume-identical "$tmp/sf.ckpt" "$tmp/sp.ckpt"
cut -d, -f1-6 "$tmp/sf.csv" >"$tmp/sf.metrics"
cut -d, -f1-6 "$tmp/sp.csv" >"$tmp/sp.metrics"
same short-resume-metrics "$tmp/sf.metrics" "$tmp/sp.metrics"
expect short-part2 0 "" -- $short --checkpoint "$tmp/sq.ckpt" --steps 2
expect short-resume-changed 0 "note: resuming with epochs: 2 (set here); the checkpoint's run had 1" -- "$nnrun" train \
	"$plan" --data "$data" --threads 2 --resume "$tmp/sq.ckpt" --checkpoint "$tmp/sq.ckpt" --epochs 2 --train-limit 640 --steps 1
cp "$tmp/out" "$tmp/changed.out"
expect short-resume-limit 0 "note: resuming with --train-limit 640; the checkpoint's run had 320" -- cat "$tmp/changed.out"

# Export to safetensors with PyTorch-style names, evaluate from it, start training from it.
expect export 0 "" -- "$nnrun" export "$plan" --weights "$tmp/full.ckpt" -o "$tmp/w.safetensors"
expect export-names 0 "conv1.weight" -- grep -a -o "conv1.weight" "$tmp/w.safetensors"
expect export-no-optim 1 "" -- grep -a -q "momentum_buffer" "$tmp/w.safetensors"
expect eval-safetensors 0 "accuracy" -- "$nnrun" eval "$plan" --weights "$tmp/w.safetensors" --data "$data" --test-limit 300
expect start-from 0 "" -- $run --weights "$tmp/w.safetensors" --checkpoint "$tmp/w.ckpt" --set epochs=1
# Weights that do not fit are reported all at once: each missing tensor, and each of another
# shape with the file's shape beside the model's; nothing is loaded.
/usr/bin/python3 - "$tmp/w.safetensors" "$tmp/bad.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/io")
from crosscheck import read, serialize
_, _, meta, ts = read(sys.argv[1])
t = {n: v[:3] for n, v in ts.items()}
del t["conv1.weight"], t["bn2.bias"]
d = t["linear.weight"]
t["linear.weight"] = (d[0], d[1][::-1], d[2])
open(sys.argv[2], "wb").write(serialize(t, meta))
PY
expect misfit-all 1 "bad.safetensors: no tensor 'conv1.weight' (the model's \[8, 3, 3, 3\]); no tensor 'bn2.bias' (the model's \[16\]); tensor 'linear.weight' is F32 \[16, 10\] in the file; the model needs F32 or F16 \[10, 16\]" -- \
	"$nnrun" eval "$plan" --weights "$tmp/bad.safetensors" --data "$data" --test-limit 300

# The input normalization is the recipe's (normalize.mean/std), recorded in checkpoints and
# exports: eval and compare normalize as the weights were trained (said, as it differs from the
# plan's) -- the same loss as setting it by hand, another than the plan's own; --set still wins.
norm="--set normalize.mean=0.5,0.5,0.5 --set normalize.std=0.25,0.25,0.25"
expect norm-train 0 "" -- "$nnrun" train "$plan" --data "$data" --train-limit 320 --test-limit 100 --quiet --threads 2 \
	--epochs 1 $norm --checkpoint "$tmp/n.ckpt"
ev="$nnrun eval $plan --data $data --test-limit 100 --threads 2"
expect norm-adopt 0 "note: inputs normalized as .*n.ckpt was trained: mean \[0.5, 0.5, 0.5\], std \[0.25, 0.25, 0.25\] (the plan's: mean \[0.4914, 0.4822, 0.4465\], std \[0.247, 0.2435, 0.2616\])" -- \
	$ev --weights "$tmp/n.ckpt"
grep "^test loss" "$tmp/out" >"$tmp/n.adopt"
expect norm-set 0 "" -- $ev --weights "$tmp/n.ckpt" $norm
grep "^test loss" "$tmp/out" >"$tmp/n.set"
same norm-adopt-is-set "$tmp/n.set" "$tmp/n.adopt"
expect norm-plan 0 "" -- $ev --weights "$tmp/n.ckpt" --set normalize.mean=0.4914,0.4822,0.4465
grep "^test loss" "$tmp/out" >"$tmp/n.plan"
expect norm-plan-differs 1 "" -- cmp -s "$tmp/n.plan" "$tmp/n.set"
expect norm-export 0 "" -- "$nnrun" export "$plan" --weights "$tmp/n.ckpt" -o "$tmp/n.safetensors"
expect norm-export-meta 0 '"nnc.normalize.std":"\[0.25, 0.25, 0.25\]"' -- grep -a -o '"nnc.normalize.std":"[^"]*"' "$tmp/n.safetensors"
expect norm-adopt-export 0 "note: inputs normalized as .*n.safetensors was trained" -- $ev --weights "$tmp/n.safetensors"
grep "^test loss" "$tmp/out" >"$tmp/n.exp"
same norm-adopt-export-is-set "$tmp/n.set" "$tmp/n.exp"
expect norm-finetune-note 0 "note: .*n.safetensors was trained with inputs normalized by mean \[0.5, 0.5, 0.5\]" -- \
	"$nnrun" train "$plan" --data "$data" --train-limit 320 --test-limit 100 --threads 2 --weights "$tmp/n.safetensors" \
	--checkpoint "$tmp/n2.ckpt" --steps 1
expect norm-bad 1 "recipe setting 'normalize.std' = 0.2,0,0.2 must be positive for every channel" -- \
	$ev --weights "$tmp/n.ckpt" --set normalize.std=0.2,0,0.2

# A model whose image input is not CIFAR-10's 32x32 (tests/gradcheck/allops.nn: 8x8) is refused
# by every command that feeds it CIFAR-10 batches (the loader wrote past the input before).
"$nnc" compile tests/gradcheck/allops.nn -o "$tmp/small.plan" 2>/dev/null || echo "FAIL compile allops"
small_msg="small.plan: error: the model's image input is f32\[128,3,8,8\]; CIFAR-10 images are f32\[batch,3,32,32\]"
expect small-train 1 "$small_msg" -- "$nnrun" train "$tmp/small.plan" --data "$data" --train-limit 256 --steps 1
expect small-eval 1 "$small_msg" -- "$nnrun" eval "$tmp/small.plan" --data "$data" --weights "$tmp/full.ckpt"
expect small-bench 1 "$small_msg" -- "$nnrun" bench "$tmp/small.plan" --steps 1
expect small-compare 1 "$small_msg" -- "$nnrun" compare "$tmp/small.plan" "$plan" --data "$data" --weights "$tmp/full.ckpt"
expect small-logits 1 "$small_msg" -- "$nnrun" eval "$tmp/small.plan" --data "$data" --weights "$tmp/full.ckpt" \
	--logits "$tmp/l.safetensors"

# Bad inputs: each names the file and the problem.
expect no-data 1 "nowhere: no such folder" -- $run --data "$tmp/nowhere"
mkdir -p "$tmp/short"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
	src=$data/cifar-10-batches-bin/$f.bin
	[ -f "$src" ] || src=$data/$f.bin
	cp "$src" "$tmp/short/$f.bin"
done
head -c 3073000 "$data/cifar-10-batches-bin/data_batch_1.bin" >"$tmp/short/data_batch_1.bin" 2>/dev/null ||
	head -c 3073000 "$data/data_batch_1.bin" >"$tmp/short/data_batch_1.bin"
expect truncated-data 1 "data_batch_1.bin: truncated: expected 30730000 bytes" -- "$nnrun" train "$plan" --data "$tmp/short" --quiet
printf '\012' | dd of="$tmp/short/test_batch.bin" bs=1 seek=3073 conv=notrunc 2>/dev/null
cp "$tmp/short/data_batch_2.bin" "$tmp/short/data_batch_1.bin"
expect bad-label 1 "test_batch.bin: record 1: label 10 is outside 0-9" -- "$nnrun" train "$plan" --data "$tmp/short" --quiet
head -c 1000 "$tmp/full.ckpt" >"$tmp/trunc.ckpt"
expect trunc-ckpt 1 "trunc.ckpt" -- $run --resume "$tmp/trunc.ckpt" --checkpoint "$tmp/x.ckpt"
cp "$tmp/full.ckpt" "$tmp/flip.ckpt"
size=$(wc -c <"$tmp/flip.ckpt")
printf 'X' | dd of="$tmp/flip.ckpt" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect corrupt-ckpt 1 "flip.ckpt: .*checksum" -- $run --resume "$tmp/flip.ckpt" --checkpoint "$tmp/x.ckpt"
"$nnc" compile --batch 64 models/resnet20.nn -o "$tmp/r20.plan" 2>/dev/null
expect wrong-plan 1 "full.ckpt" -- "$nnrun" train "$tmp/r20.plan" --data "$data" --resume "$tmp/full.ckpt" --quiet --train-limit 128
expect fixed-setting 1 "'optimizer' is fixed when the plan is compiled" -- $run --set optimizer=adam
expect bad-set 1 "recipe setting 'lr' needs a number" -- $run --set lr=fast

# A FIFO as --resume, --weights or a data file is refused at once instead of blocking in open().
mkfifo "$tmp/fifo"
expect fifo-resume 1 "fifo: cannot open: is a FIFO (named pipe), not a regular file" -- $run --resume "$tmp/fifo" \
	--checkpoint "$tmp/f1.ckpt"
expect fifo-weights 1 "fifo: cannot open: is a FIFO (named pipe), not a regular file" -- $run --weights "$tmp/fifo" \
	--checkpoint "$tmp/f2.ckpt"
mkdir -p "$tmp/fifodata/cifar-10-batches-bin"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
	[ -f "$data/cifar-10-batches-bin/$f.bin" ] && ln -s "$(cd "$data/cifar-10-batches-bin" && pwd)/$f.bin" "$tmp/fifodata/cifar-10-batches-bin/$f.bin"
done
rm -f "$tmp/fifodata/cifar-10-batches-bin/test_batch.bin"
mkfifo "$tmp/fifodata/cifar-10-batches-bin/test_batch.bin"
expect fifo-data 1 "test_batch.bin: cannot open: is a FIFO (named pipe), not a regular file" -- "$nnrun" train "$plan" \
	--data "$tmp/fifodata" --train-limit 128 --quiet --checkpoint "$tmp/f3.ckpt"

# Interruptions (issue 14; runtime/runfiles.h): every finished epoch has exactly one metrics row,
# whatever instant a run is stopped or killed at. 3 epochs of 4 steps.
"$nnc" compile --batch 32 --set epochs=3 models/tiny.nn -o "$tmp/t3.plan" 2>/dev/null || echo "FAIL compile t3"
r3="$nnrun train $tmp/t3.plan --data $data --quiet --threads 1 --train-limit 128 --test-limit 64"
rows='NR > 1 { e = e $1 } END { print e }' # the epochs of a metrics file's rows, in a string
# A stop that lands on an epoch's last step finishes that epoch (its row was lost before).
expect last-step-stop 0 "" -- $r3 --checkpoint "$tmp/i1.ckpt" --metrics "$tmp/i1.csv" --steps 4
expect last-step-resume 0 "" -- $r3 --checkpoint "$tmp/i1.ckpt" --metrics "$tmp/i1.csv" --resume "$tmp/i1.ckpt"
expect last-step-rows 0 "^123$" -- awk -F, "$rows" "$tmp/i1.csv"
# Killed between epoch 2's row and its checkpoint: the resumed run repeats epoch 2 and its row is
# written once (it was written twice or three times before); the parameters end as an
# uninterrupted run's.
expect kill-between 137 "" -- env NNC_FAULT=epoch-written:2 $r3 --checkpoint "$tmp/i2.ckpt" --metrics "$tmp/i2.csv"
expect kill-between-rows-so-far 0 "^12$" -- awk -F, "$rows" "$tmp/i2.csv"
expect kill-between-resume 0 "" -- $r3 --checkpoint "$tmp/i2.ckpt" --metrics "$tmp/i2.csv" --resume "$tmp/i2.ckpt"
expect kill-between-rows 0 "^123$" -- awk -F, "$rows" "$tmp/i2.csv"
same "killed and resumed = uninterrupted (checkpoint)" "$tmp/i1.ckpt" "$tmp/i2.ckpt"
# Killed before epoch 2's row: the resumed run repeats epoch 2 and writes its row once.
expect kill-before 137 "" -- env NNC_FAULT=epoch-evaluated:2 $r3 --checkpoint "$tmp/i3.ckpt" --metrics "$tmp/i3.csv"
expect kill-before-resume 0 "" -- $r3 --checkpoint "$tmp/i3.ckpt" --metrics "$tmp/i3.csv" --resume "$tmp/i3.ckpt"
expect kill-before-rows 0 "^123$" -- awk -F, "$rows" "$tmp/i3.csv"
# A torn last line (a kill inside a write) and rows beyond an older checkpoint are cut.
cp "$tmp/i3.csv" "$tmp/i4.csv"
printf '4,2.3' >>"$tmp/i4.csv"
expect torn-line 0 "" -- $r3 --checkpoint "$tmp/i4.ckpt" --metrics "$tmp/i4.csv" --resume "$tmp/i1.ckpt" --set epochs=3
expect torn-line-rows 0 "^123$" -- awk -F, "$rows" "$tmp/i4.csv"
# A killed save leaves at most PATH.tmp, which the next save of the checkpoint removes.
printf 'left by a killed run' >"$tmp/i5.ckpt.tmp"
expect stale-tmp 0 "" -- $r3 --checkpoint "$tmp/i5.ckpt" --set epochs=1
expect stale-tmp-gone 0 "" -- test ! -e "$tmp/i5.ckpt.tmp"
expect no-lock-left 0 "" -- test ! -e "$tmp/i5.ckpt.lock"
# Two runs on one checkpoint or metrics file: the second refuses, naming the first.
printf 'pid 4242, nnrun train other.plan, started 2026-12-04 10:00:00\n' >"$tmp/i6.ckpt.lock"
flock "$tmp/i6.ckpt.lock" sleep 30 &
holder=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do flock -n "$tmp/i6.ckpt.lock" true || break; sleep 0.1; done
expect locked 1 "i6.ckpt is in use by another run (pid 4242, nnrun train other.plan, started 2026-12-04 10:00:00)" -- \
	$r3 --checkpoint "$tmp/i6.ckpt" --set epochs=1
kill $holder 2>/dev/null
printf 'pid 4343, nnrun train other.plan\n' >"$tmp/i7.csv.lock"
flock "$tmp/i7.csv.lock" sleep 30 &
holder=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do flock -n "$tmp/i7.csv.lock" true || break; sleep 0.1; done
expect locked-metrics 1 "i7.csv is in use by another run (pid 4343" -- $r3 --checkpoint "$tmp/i7.ckpt" \
	--metrics "$tmp/i7.csv" --set epochs=1
kill $holder 2>/dev/null
# Writes that fail are errors, found before any training: a full disk, a folder no one can write.
expect metrics-full 1 "/dev/full: error: cannot write metrics: No space left on device" -- $r3 --checkpoint "$tmp/i8.ckpt" \
	--metrics /dev/full --set epochs=1
expect ckpt-folder 1 "cannot create the lock file /proc/nnc-test.ckpt.lock" -- $r3 --checkpoint /proc/nnc-test.ckpt \
	--set epochs=1

# Elementwise chains that end in a unary op (tests/golden/chain_unary.nn; an internal error in
# the fuse pass before) train to the same weights as the unfused plan, in fp32 and fp16.
for prec in fp32 fp16; do
	for f in fuse no-fuse; do
		"$nnc" compile --batch 16 --precision $prec $([ $f = fuse ] || echo --no-fuse) tests/golden/chain_unary.nn \
			-o "$tmp/cu-$f.plan" 2>/dev/null || echo "FAIL compile chain_unary $prec $f"
		expect "chain-unary-$prec-$f" 0 "" -- "$nnrun" train "$tmp/cu-$f.plan" --data "$data" --train-limit 64 \
			--test-limit 16 --quiet --threads 2 --set epochs=1 --checkpoint "$tmp/cu-$f.ckpt"
		"$nnrun" export "$tmp/cu-$f.plan" --weights "$tmp/cu-$f.ckpt" -o "$tmp/cu-$f.safetensors" 2>/dev/null
	done
	same "chain-unary-$prec: fused = unfused" "$tmp/cu-fuse.safetensors" "$tmp/cu-no-fuse.safetensors"
done

# --device cuda where no GPU is usable (no driver, no GPU, or a build without the CUDA backend):
# a message saying so, exit 1, nothing written. Where a GPU is usable this is cuda_train's.
if ! "$nnrun" bench "$plan" --steps 1 --device cuda >/dev/null 2>&1; then
	expect no-gpu 1 "no usable GPU\|without the CUDA backend" -- $run --device cuda --checkpoint "$tmp/nogpu.ckpt"
	expect no-gpu-nothing-saved 0 "" -- test ! -e "$tmp/nogpu.ckpt"
fi
finish train
