#!/bin/bash
# Runs the whole nnc test suite, in three phases, and prints a summary:
#   1. normal   (re)build build/ (made by scripts/setup.sh) and run its ctest suite
#   2. asan     configure and build build-asan/ with ASan + UBSan (-DNNC_SANITIZE=ON, no CUDA)
#               and run the ctest suite there, leaks and UB fatal
#   3. fuzz     scripts/fuzz.sh: the libFuzzer targets in build-fuzz/ (clang), the front end,
#               the plan loader and the safetensors reader, $NNC_FUZZ_SECONDS (default 60)
#               seconds in all
#   4. mutate   tests/mutate.sh --sample $NNC_MUTATE_SAMPLE (default 3): central code broken on
#               purpose in a scratch copy; the tests named for each break must fail
# Every phase runs even if an earlier one failed; the exit status is non-zero if any failed.
#
# Usage: scripts/test.sh        (after scripts/setup.sh)
set -eu
set -o pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${NNC_FUZZ_SECONDS:-60}

# As in setup.sh: if build/ has to reconfigure, CMake must still find nvcc.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
	export PATH="/usr/local/cuda/bin:$PATH"
fi

# Sanitizer settings for phases 2 and 3: leaks are errors, the first UB report is fatal.
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

say() { printf '\n== test: %s\n' "$*"; }

# The sanitizer builds keep assert() (no NDEBUG) and use -O1, as ASan recommends.
SAN_FLAGS=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" -DNNC_CUDA=OFF)

phase_normal() {
	if [ ! -f build/CMakeCache.txt ]; then
		echo "test: build/ is not configured; run scripts/setup.sh first" >&2
		return 1
	fi
	say "normal: building build/"
	cmake --build build -j"$JOBS"
	say "normal: ctest in build/"
	ctest --test-dir build --output-on-failure
}

phase_asan() {
	say "asan: configuring build-asan/ (-DNNC_SANITIZE=ON -DNNC_CUDA=OFF)"
	cmake -S . -B build-asan -DNNC_SANITIZE=ON "${SAN_FLAGS[@]}"
	say "asan: building build-asan/"
	cmake --build build-asan -j"$JOBS"
	say "asan: ctest in build-asan/ (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
	# The equivalence of fused, unfused and unplanned plans, and of nchw and nhwc ones, over
	# every model is the normal phase's; here a few models cover the same kernels (plain,
	# residual, depthwise; pooling, flatten and dropout for the layouts), and the precision
	# search runs on the tiny model only (ResNet-20's, minutes under ASan, is the normal phase's).
	MEMPLAN_MODELS="tiny resnet20 mobilenet_v2" LAYOUT_MODELS="tiny resnet20 mobilenet_v2 alexnet" TUNE_MODELS=tiny \
		ctest --test-dir build-asan --output-on-failure
}

phase_fuzz() {
	# The libFuzzer targets (scripts/fuzz.sh): the front end, the plan loader, the safetensors
	# reader.
	local third=$(((FUZZ_SECONDS + 2) / 3))
	say "fuzz: scripts/fuzz.sh frontend, plan and safetensors, ${third}s each"
	local rc=0 # the phases run with set +e: each target's failure is counted explicitly
	scripts/fuzz.sh frontend "$third" || rc=1
	scripts/fuzz.sh plan "$third" || rc=1
	scripts/fuzz.sh safetensors "$third" || rc=1
	return $rc
}

phase_mutate() {
	# A sample of the mutation tests (tests/mutate.sh; all of them: docs/testing.md).
	say "mutate: tests/mutate.sh --sample ${NNC_MUTATE_SAMPLE:-3}"
	tests/mutate.sh --sample "${NNC_MUTATE_SAMPLE:-3}"
}

PHASES=(normal asan fuzz mutate)
declare -A RESULT TIME
failed=0
for p in "${PHASES[@]}"; do
	start=$SECONDS
	# A subshell outside any `if` so that `set -e` applies inside the phase.
	set +e
	("phase_$p")
	rc=$?
	set -e
	TIME[$p]=$((SECONDS - start))
	if [ "$rc" -eq 0 ]; then
		RESULT[$p]=ok
	else
		RESULT[$p]="FAILED (exit $rc)"
		failed=1
	fi
done

printf '\n== test summary\n'
for p in "${PHASES[@]}"; do
	printf '  %-7s %-18s %4ds\n' "$p" "${RESULT[$p]}" "${TIME[$p]}"
done
if [ "$failed" -ne 0 ]; then
	echo "test: FAILED"
	exit 1
fi
echo "test: all passed"
