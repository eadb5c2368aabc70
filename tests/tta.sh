#!/bin/sh
# Test-time augmentation (recipe tta; runtime/backend.c backend_evaluate, views in
# runtime/data.c, checked pixel by pixel in tests/data/test_data.c): `nnrun eval` of a trained
# tiny model with tta 0, 1 and 2 scores every test image once (the count), repeats to the same
# figures, tta=0 is the plain evaluation and the views change the result (six views of 256
# images do not all agree with the unaugmented logits to four decimals of the loss); training
# with tta set evaluates each epoch that way; a level outside 0-2 is refused. Needs data/.
nnc=${1:?usage: tta.sh NNC NNRUN}
nnrun=${2:?usage: tta.sh NNC NNRUN}
data=${NNC_DATA:-data}
TIMEOUT=120
. "$(dirname "$0")/lib.sh"
need_cifar "$data"
run="--data $data --test-limit 256 --threads 2"
expect compile 0 "" -- "$nnc" compile --batch 64 models/tiny.nn -o "$tmp/t.plan"
expect train 0 "" -- "$nnrun" train "$tmp/t.plan" $run --train-limit 1024 --epochs 2 --quiet --checkpoint "$tmp/t.ckpt"
expect eval-plain 0 "of 256 images" -- "$nnrun" eval "$tmp/t.plan" --weights "$tmp/t.ckpt" $run
cp "$tmp/out" "$tmp/plain"
for l in 0 1 2; do
	expect "eval-tta$l" 0 "(.* of 256 images)" -- "$nnrun" eval "$tmp/t.plan" --weights "$tmp/t.ckpt" $run --set tta=$l
	cp "$tmp/out" "$tmp/tta$l"
	expect "again-tta$l" 0 "" -- "$nnrun" eval "$tmp/t.plan" --weights "$tmp/t.ckpt" $run --set tta=$l
	same "repeat-tta$l" "$tmp/out" "$tmp/tta$l"
done
same tta0-is-plain "$tmp/plain" "$tmp/tta0"
expect tta1-differs 0 "" -- sh -c "! cmp -s '$tmp/tta0' '$tmp/tta1'"
expect tta2-differs 0 "" -- sh -c "! cmp -s '$tmp/tta1' '$tmp/tta2'"
expect train-tta 0 "test loss" -- "$nnrun" train "$tmp/t.plan" $run --train-limit 512 --epochs 1 --set tta=2 --checkpoint "$tmp/u.ckpt"
expect bad-level 1 "recipe setting 'tta' = 3 must be 0 (off), 1 (flip) or 2" -- "$nnrun" eval "$tmp/t.plan" --weights "$tmp/t.ckpt" $run --set tta=3
finish tta
