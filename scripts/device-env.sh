# Sourced on a lent GPU machine by the device scripts (device-check.sh, device-full.sh), from
# the repository root with .device/bin.tar.xz carried: unpacks the static binaries into
# $work/bin (sets $bin), and puts cuDNN and cuBLAS on LD_LIBRARY_PATH -- the toolkit's, or
# PyTorch's wheels' (nvidia/*/lib) where the toolkit has none -- with the Fortran runtime
# OpenBLAS may need. Sets $gpu to the GPU's name (empty without one).
[ -f .device/bin.tar.xz ] || { echo "device: no .device/bin.tar.xz; run scripts/device-pack.sh here and carry it"; exit 1; }
work=/tmp/device-check-bin
rm -rf $work && mkdir -p $work && tar -C $work -xJf .device/bin.tar.xz
bin=$work/bin
wheels=$(python3 -c 'import glob, os, nvidia; print(":".join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib")))))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$work/lib:/usr/local/cuda/lib64:${wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd $bin/nnrun | grep "not found"; then
	echo "device: libraries missing (above)"
fi
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
