#!/bin/bash
# The device check, run on a lent GPU machine from the repository root with .device/ carried
# (scripts/device-pack.sh makes it here; docs/cuda.md):
#   scripts/device-check.sh [PARTS]     PARTS: a comma-separated list of tests, train, bench
#                                       (default tests,train: well under 8 minutes)
#   0. always: the machine (GPU, driver, the CUDA libraries the binaries load)
#   tests: the `cuda` tests: the device probe; the CUDA backend against the CPU backend step by
#      step (tests/cuda.sh) on every model in models/ in fp32, fp16 and mixed, 8 models at a time
#      (about a minute); again with the direct convolutions that stand in for cuDNN where it
#      has no algorithm (tiny, ResNet-20); checkpoints across devices (tests/cuda_resume.sh);
#      the resident loop, graph replay = eager = host-fed batches bit for bit, and overflow on
#      purpose (tests/cuda_train.sh); nnc tune-precision on the GPU (tests/cuda_tune.sh)
#   train: ResNet-20 and MobileNet-V2 for 2 epochs, ResNet-56 for 6 (it is still at chance
#      after 2 on 5000 images, on the CPU as on the GPU; 21% after 6 on the CPU), on the carried
#      subset (5000 training, 5000 test images), per precision: the first and last epoch's
#      training loss, test accuracy, images/s, skipped steps
#   bench: bench/gpu/run.sh, nnrun against PyTorch on this GPU (about 5 minutes: a call of
#      its own, timeout_s 480)
# and a short table last. Everything goes to $OUT/device-check.log too (device-bench.log for
# the bench alone).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${OUT:-/tmp/device-check}
mkdir -p "$out"
parts=",${1:-tests,train},"
log=$([ "$parts" = ",bench," ] && echo device-bench.log || echo device-check.log)
exec > >(tee "$out/$log") 2>&1
echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
. scripts/device-env.sh

probe=skipped ops=skipped nhwc=skipped direct=skipped resume=skipped resident=skipped tune=skipped
secs() { echo $(($(date +%s) - $1))s; }
if [[ $parts == *,tests,* ]]; then
	echo "== cuda tests"
	t=$(date +%s); $bin/test_cuda_device; probe=$?; t_probe=$(secs $t)
	t=$(date +%s)
	CUDA_JOBS=8 timeout 240 tests/cuda.sh $bin/nnc $bin/test_cuda_vs_cpu >"$out/cuda_vs_cpu.log" 2>&1
	ops=$?; t_ops=$(secs $t)
	grep -E "FAIL|first difference|exact|failed|locating|no step" "$out/cuda_vs_cpu.log" | head -80
	grep -E "plans failed|cuda.sh:" "$out/cuda_vs_cpu.log"
	t=$(date +%s) # channels-last plans (passes/layout.c): their first GPU runs
	CUDA_LAYOUT=nhwc CUDA_JOBS=8 CUDA_MODELS="tiny resnet20 mobilenet_v2 airbench94 alexnet" timeout 200 \
		tests/cuda.sh $bin/nnc $bin/test_cuda_vs_cpu >"$out/cuda_vs_cpu_nhwc.log" 2>&1
	nhwc=$?; t_nhwc=$(secs $t)
	grep -E "FAIL|first difference|failed|no step" "$out/cuda_vs_cpu_nhwc.log" | head -40
	t=$(date +%s)
	NNC_CUDA_DIRECT_CONV=1 CUDA_MODELS="tiny resnet20" timeout 200 tests/cuda.sh $bin/nnc $bin/test_cuda_vs_cpu
	direct=$?; t_direct=$(secs $t)
	export NNC_DATA=.device/data NNC_RECORDS=5000
	t=$(date +%s); timeout 200 tests/cuda_resume.sh $bin/nnc $bin/nnrun; resume=$?; t_resume=$(secs $t)
	t=$(date +%s); timeout 240 tests/cuda_train.sh $bin/nnc $bin/nnrun; resident=$?; t_resident=$(secs $t)
	t=$(date +%s); timeout 120 tests/cuda_tune.sh $bin/nnc $bin/nnrun; tune=$?; t_tune=$(secs $t)
fi

rows=""
if [[ $parts == *,train,* ]]; then
	echo "== training on the GPU"
	for m in resnet20 resnet56 mobilenet_v2; do
		for p in fp32 fp16 mixed; do
			plan=/tmp/dc-$m-$p.plan
			$bin/nnc compile --precision $p "models/$m.nn" -o $plan 2>/dev/null || { rows="$rows| $m | $p | compile failed |||||\n"; continue; }
			t=$(date +%s)
			epochs=$([ $m = resnet56 ] && echo 6 || echo 2)
			timeout 120 $bin/nnrun train $plan --device cuda --data .device/data --records-per-file 5000 --train-limit 5000 \
				--test-limit 5000 --epochs $epochs --metrics /tmp/dc-$m-$p.csv --checkpoint /tmp/dc-$m-$p.ckpt --quiet
			rc=$?
			[ $rc = 0 ] || { rows="$rows| $m | $p | exit $rc |||||\n"; continue; }
			# epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_second,loss_scale,skipped_steps
			rows="$rows$(awk -F, -v m=$m -v p=$p -v s="$(secs $t)" 'NR == 2 { l1 = $2 }
				END { printf "| %s | %s | %.3f -> %.3f | %.2f%% | %.0f | %s | %s |\\n", m, p, l1, $2, $5 * 100, $8, $10, s }' \
				/tmp/dc-$m-$p.csv)"
		done
	done
fi

bench=""
if [[ $parts == *,bench,* ]]; then
	echo "== benchmarks (bench/gpu/run.sh)"
	bench=$(timeout 420 bench/gpu/run.sh $bin/nnc $bin/nnrun 2>"$out/bench-detail.log")
	echo "bench/gpu/run.sh exit $?; per-run lines in bench-detail.log"
fi

echo
echo "== device check, $(date -u +%Y-%m-%d), ${gpu:-no GPU found}"
verdict() { case $1 in 0) echo passed ;; 77) echo "skipped (no usable GPU)" ;; skipped) echo "not run" ;; *) echo "FAILED (exit $1)" ;; esac; }
if [[ $parts == *,tests,* ]]; then
	echo "| test | result | seconds |"
	echo "|---|---|---|"
	echo "| cuda_device | $(verdict $probe) | $t_probe |"
	echo "| cuda_vs_cpu, every model x fp32/fp16/mixed | $(verdict $ops) | $t_ops |"
	echo "| cuda_vs_cpu_nhwc (--layout nhwc: 5 models x 3 precisions) | $(verdict $nhwc) | ${t_nhwc:-} |"
	echo "| cuda_direct_conv (tiny, resnet20) | $(verdict $direct) | $t_direct |"
	echo "| cuda_resume | $(verdict $resume) | $t_resume |"
	echo "| cuda_train (graph = eager = host-fed; overflow) | $(verdict $resident) | $t_resident |"
	echo "| cuda_tune (tune-precision on the GPU, as measured again) | $(verdict $tune) | ${t_tune:-} |"
fi
if [ -n "$rows" ]; then
	echo
	echo "| model | precision | train loss, first -> last epoch | test accuracy | images/s | skipped steps | seconds |"
	echo "|---|---|---|---|---|---|---|"
	printf '%b' "$rows"
fi
[ -n "$bench" ] && echo && echo "$bench"
echo "device check: $(($(date +%s) - start))s"
