#!/bin/sh
# The full-CIFAR-10 procedure for a lent GPU (docs/cuda.md), on a small stand-in dataset: six
# files of 64 records with their own checksum list (SUMS) in place of the official one.
# scripts/device-data.sh pack cuts them into three parts and refuses a file that is not the
# listed one or a part over the size limit; status says which parts arrived whole; assemble
# rebuilds the files byte for byte and nnrun trains on them; with a part missing (a machine
# given back between calls) it trains on the batches it has, renumbered, and says so; a
# damaged part counts as missing; without the part holding the test set it fails, naming it.
nnc=${1:?usage: device_data.sh NNC NNRUN}
nnrun=${2:?usage: device_data.sh NNC NNRUN}
. "$(dirname "$0")/lib.sh"
dd="$(dirname "$0")/../scripts/device-data.sh"
mkdir -p "$tmp/src"
python3 - "$tmp/src" <<'PY'
import random, sys
random.seed(22)
for f in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    with open(sys.argv[1] + "/" + f, "wb") as o:
        for r in range(64):
            o.write(bytes([random.randrange(10)]) + bytes(random.randrange(256) for _ in range(3072)))
PY
(cd "$tmp/src" && sha256sum ./*.bin | sed 's| \./| |' >"$tmp/sums")
export SUMS="$tmp/sums" XZ_LEVEL=0
expect pack 0 "part-3.tar.xz: data_batch_5.bin test_batch.bin" -- "$dd" pack "$tmp/src" "$tmp/full"
expect pack-sums 0 "" -- sh -c "cd '$tmp/full' && sha256sum -c parts.sha256"
cp -r "$tmp/src" "$tmp/bad" && printf 'x' | dd of="$tmp/bad/data_batch_4.bin" bs=1 seek=5 conv=notrunc 2>/dev/null
expect pack-refuses-damaged 1 "data_batch_4.bin is missing or not the official file" -- "$dd" pack "$tmp/bad" "$tmp/full-bad"
expect pack-size-limit 1 "over 0 MiB" -- env PART_LIMIT_MIB=0 "$dd" pack "$tmp/src" "$tmp/full-small"
expect status-all 0 "3 of 3 parts" -- "$dd" status "$tmp/full"
expect assemble-all 0 "full CIFAR-10 .*: 320 training and 64 test images" -- "$dd" assemble "$tmp/full" "$tmp/d1"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
	same "rebuilt-$f" "$tmp/src/$f.bin" "$tmp/d1/cifar-10-batches-bin/$f.bin"
done
expect subset-all 0 "^TRAIN_LIMIT=320$" -- cat "$tmp/d1/subset.env"
expect compile 0 "" -- "$nnc" compile --batch 32 models/tiny.nn -o "$tmp/t.plan"
expect train-all 0 "" -- "$nnrun" train "$tmp/t.plan" --data "$tmp/d1" --records-per-file 64 --train-limit 320 --test-limit 64 \
	--epochs 1 --quiet --threads 2 --checkpoint "$tmp/t.ckpt"
# a machine given back after the first call: part 1 gone
rm "$tmp/full/part-1.tar.xz"
expect status-lost 0 "part 1 not here" -- "$dd" status "$tmp/full"
expect assemble-lost 0 "part(s) 1 missing.*192 images of data_batch_3 data_batch_4 data_batch_5" -- "$dd" assemble "$tmp/full" "$tmp/d2"
same renumbered "$tmp/src/data_batch_3.bin" "$tmp/d2/cifar-10-batches-bin/data_batch_1.bin"
expect subset-lost 0 "^TRAIN_LIMIT=192$" -- cat "$tmp/d2/subset.env"
expect train-lost 0 "" -- "$nnrun" train "$tmp/t.plan" --data "$tmp/d2" --records-per-file 64 --train-limit 192 --test-limit 64 \
	--epochs 1 --quiet --threads 2 --checkpoint "$tmp/t2.ckpt"
# a damaged part is not used
head -c 1000 "$tmp/full/part-2.tar.xz" >"$tmp/p2" && mv "$tmp/p2" "$tmp/full/part-2.tar.xz"
expect status-damaged 0 "part 2 here but damaged" -- "$dd" status "$tmp/full"
expect assemble-damaged 0 "part(s) 1 2 missing.*64 images of data_batch_5" -- "$dd" assemble "$tmp/full" "$tmp/d3"
rm "$tmp/full/part-3.tar.xz"
expect assemble-no-test 1 "no test set: part 3 .* did not arrive" -- "$dd" assemble "$tmp/full" "$tmp/d4"
finish device_data
