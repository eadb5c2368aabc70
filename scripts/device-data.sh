#!/bin/bash
# The whole of CIFAR-10 on a lent GPU machine, in three parts that each fit one call's 64 MiB
# (docs/cuda.md, "Full CIFAR-10 on a lent GPU"):
#   scripts/device-data.sh pack SRC OUT      here: SRC's six official files (checked against
#                                            scripts/cifar10.sha256) into OUT/part-{1,2,3}.tar.xz
#                                            and OUT/parts.sha256 (scripts/device-pack.sh --full)
#   scripts/device-data.sh status [FULL]     there, at the start of every call: which parts have
#                                            arrived (FULL, default .device/full), each checked
#                                            against parts.sha256
#   scripts/device-data.sh assemble [FULL] [DEST]
#                                            there, in the call that trains: unpacks every good
#                                            part into DEST (default data), checks each file
#                                            against the official SHA-256 and writes
#                                            DEST/cifar-10-batches-bin/ and DEST/subset.env
# A part is 2 of the 6 files: part 1 data_batch_1-2, part 2 data_batch_3-4, part 3
# data_batch_5 and test_batch. Each unpacks on its own, so if the machine was given back
# between calls (a fresh machine keeps nothing) the parts that are there still make a
# training set: assemble links the training batches it has as data_batch_1..K (nnrun reads
# them in that order) and writes TRAIN_LIMIT (their images) and TEST_LIMIT to subset.env,
# saying which batches it used. Part 3, carried last with the run, holds the test set;
# without it assemble fails. SUMS (default scripts/cifar10.sha256) and PART_LIMIT_MIB (60)
# are for the tests (tests/device_data.sh); XZ_LEVEL (6) sets the compression.
set -euo pipefail
cd "$(dirname "$0")/.."
sums=${SUMS:-scripts/cifar10.sha256}
parts=("data_batch_1.bin data_batch_2.bin" "data_batch_3.bin data_batch_4.bin" "data_batch_5.bin test_batch.bin")
die() {
	echo "device-data: error: $*" >&2
	exit 1
}
official() { awk -v f="$1" '$2 == f { print $1 }' "$sums"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# check_file PATH NAME: PATH holds the official NAME
check_file() {
	local want
	want=$(official "$2")
	[ -n "$want" ] || die "$sums has no checksum for $2"
	[ -f "$1" ] && [ "$(sha "$1")" = "$want" ]
}

cmd_pack() {
	local src=${1:?usage: device-data.sh pack SRC OUT} out=${2:?usage: device-data.sh pack SRC OUT}
	local limit=$((${PART_LIMIT_MIB:-60} * 1024 * 1024))
	for p in "${parts[@]}"; do
		for f in $p; do
			check_file "$src/$f" "$f" || die "$src/$f is missing or not the official file (scripts/setup.sh gets CIFAR-10)"
		done
	done
	rm -rf "$out"
	mkdir -p "$out"
	for k in 1 2 3; do
		# shellcheck disable=SC2086 # the part's file names
		tar -C "$src" -cf - ${parts[k - 1]} | xz "-${XZ_LEVEL:-6}" -T2 >"$out/part-$k.tar.xz"
		local size
		size=$(stat -c %s "$out/part-$k.tar.xz")
		[ "$size" -le "$limit" ] || die "$out/part-$k.tar.xz is $size bytes, over ${PART_LIMIT_MIB:-60} MiB"
		echo "device-data: $out/part-$k.tar.xz: ${parts[k - 1]} ($((size / 1048576)) MiB)"
	done
	(cd "$out" && sha256sum part-1.tar.xz part-2.tar.xz part-3.tar.xz >parts.sha256)
}

# good FULL K: part K arrived whole
good() {
	local want
	[ -f "$1/parts.sha256" ] || return 1
	want=$(awk -v f="part-$2.tar.xz" '$2 == f { print $1 }' "$1/parts.sha256")
	[ -f "$1/part-$2.tar.xz" ] && [ -n "$want" ] && [ "$(sha "$1/part-$2.tar.xz")" = "$want" ]
}

cmd_status() {
	local full=${1:-.device/full} n=0
	[ -f "$full/parts.sha256" ] || echo "device-data: $full/parts.sha256 is not here (it travels with part 1): parts cannot be checked"
	for k in 1 2 3; do
		if good "$full" $k; then
			echo "device-data: part $k here, checksum ok (${parts[k - 1]})"
			n=$((n + 1))
		elif [ -f "$full/part-$k.tar.xz" ]; then
			echo "device-data: part $k here but damaged or unchecked (checksum does not match parts.sha256)"
		else
			echo "device-data: part $k not here"
		fi
	done
	echo "device-data: $n of 3 parts"
}

cmd_assemble() {
	local full=${1:-.device/full} dest=${2:-data}
	local raw=$dest/device-parts bin=$dest/cifar-10-batches-bin
	rm -rf "$raw" "$bin"
	mkdir -p "$raw" "$bin"
	local k f missing=""
	for k in 1 2 3; do
		if good "$full" $k; then
			xz -dc "$full/part-$k.tar.xz" | tar -C "$raw" -xf - || die "part $k does not unpack"
		else
			missing="$missing $k"
		fi
	done
	for f in ${parts[*]}; do
		[ -f "$raw/$f" ] || continue
		check_file "$raw/$f" "$f" || die "$f from its part is not the official file"
	done
	[ -f "$raw/test_batch.bin" ] || die "no test set: part 3 (data_batch_5, test_batch) did not arrive; carry .device/full/part-3.tar.xz"
	local train=0 images=0 used=""
	for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin; do
		[ -f "$raw/$f" ] || continue
		train=$((train + 1))
		ln -s "../device-parts/$f" "$bin/data_batch_$train.bin"
		images=$((images + $(stat -c %s "$raw/$f") / 3073))
		used="$used ${f%.bin}"
	done
	ln -s ../device-parts/test_batch.bin "$bin/test_batch.bin"
	local test=$(($(stat -c %s "$raw/test_batch.bin") / 3073))
	printf 'TRAIN_LIMIT=%s\nTEST_LIMIT=%s\nTRAIN_BATCHES="%s"\n' "$images" "$test" "${used# }" >"$dest/subset.env"
	if [ -z "$missing" ]; then
		echo "device-data: full CIFAR-10 in $bin: $images training and $test test images, official SHA-256 checked"
	else
		echo "device-data: part(s)$missing missing (the machine was given back between calls?): training on the $images" \
			"images of${used} (as data_batch_1..$train), testing on $test; official SHA-256 checked"
	fi
}

case "${1:-}" in
pack | status | assemble)
	c=$1
	shift
	"cmd_$c" "$@"
	;;
*)
	echo "usage: scripts/device-data.sh pack SRC OUT | status [FULL] | assemble [FULL] [DEST]" >&2
	exit 2
	;;
esac
