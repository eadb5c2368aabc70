#!/bin/bash
# Prepares .device/ (git-ignored) on this machine for a call to a lent GPU machine, whose image
# may lack flex, bison, libyaml and OpenBLAS and where nothing can be installed:
#   .device/bin.tar.xz   bin/: nnc, nnrun and the two cuda test programs, Release, for sm_90
#                 + PTX, with OpenBLAS, libyaml, nettle and jansson linked statically (26 MB
#                 each, 4 MB packed),
#                 without oneDNN (Debian ships no static libdnnl: the CPU backend there uses
#                 its im2col convolutions);
#                 lib/: the Fortran runtime OpenBLAS may need (libgfortran, libquadmath)
#   .device/data  a CIFAR-10 subset: the first 5000 training and 5000 test images, in files of
#                 5000 records (nnrun --records-per-file 5000): a call carries 64 MiB, the
#                 official files are 184 MB
# Then, with the device tool: run(command="scripts/device-check.sh", carry=[".device"]).
#
# scripts/device-pack.sh --full also cuts the whole of CIFAR-10 (184 MB; a call carries at most
# 64 MiB with the working tree) into three parts that each travel in one call:
#   .device/full/part-1.tar.xz   data_batch_1.bin, data_batch_2.bin
#   .device/full/part-2.tar.xz   data_batch_3.bin, data_batch_4.bin
#   .device/full/part-3.tar.xz   data_batch_5.bin, test_batch.bin    (about 44 MiB each, xz -6)
#   .device/full/parts.sha256    their SHA-256, carried with the first
# Each part unpacks on its own, so whatever parts reach the machine give a usable subset.
# Files carried in earlier calls stay there while the machine is held; scripts/device-data.sh
# checks what arrived and assembles it (the sequence: docs/cuda.md, "Full CIFAR-10 on a lent
# GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
if [ "${1:-}" = --full ]; then
	full=1
elif [ $# -gt 0 ]; then
	echo "usage: scripts/device-pack.sh [--full]" >&2
	exit 2
fi
[ -f data/cifar-10-batches-bin/test_batch.bin ] || { echo "device-pack: no CIFAR-10 in data/; run scripts/setup.sh" >&2; exit 1; }
lib=/usr/lib/x86_64-linux-gnu
rm -rf .device
mkdir -p .device/bin .device/lib .device/data/cifar-10-batches-bin
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DNNC_DNNL=OFF "-DNNC_OPENBLAS_LIB=$lib/libopenblas.a;gfortran;pthread" \
	"-DYAML_LIB=$lib/libyaml.a" "-DNNC_NETTLE_LIB=$lib/libnettle.a" "-DNNC_JANSSON_LIB=$lib/libjansson.a" >/dev/null
cmake --build build-device -j"$(nproc)" --target nnc nnrun test_cuda_device test_cuda_vs_cpu
cp build-device/nnc build-device/nnrun build-device/tests/test_cuda_device build-device/tests/test_cuda_vs_cpu .device/bin/
cp -L "$lib/libgfortran.so.5" "$lib/libquadmath.so.0" .device/lib/
for f in data_batch_1 test_batch; do
	head -c $((5000 * 3073)) "data/cifar-10-batches-bin/$f.bin" >".device/data/cifar-10-batches-bin/$f.bin"
done
strip .device/bin/*
tar -C .device -cJf .device/bin.tar.xz bin lib
rm -rf .device/bin .device/lib
if [ $full = 1 ]; then
	scripts/device-data.sh pack data/cifar-10-batches-bin .device/full
fi
du -sh .device .device/*
