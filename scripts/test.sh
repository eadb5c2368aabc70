#!/bin/bash
# Runs the whole nnc test suite, in three phases, and prints a summary:
#   1. normal   (re)build build/ (made by scripts/setup.sh) and run its ctest suite
#   2. asan     configure and build build-asan/ with ASan + UBSan (-DNNC_SANITIZE=ON, no CUDA)
#               and run the ctest suite there, leaks and UB fatal
#   3. fuzz     build the libFuzzer target in build-fuzz/ with clang and fuzz the front end for
#               $NNC_FUZZ_SECONDS (default 60) seconds, seeded from models/ and tests/golden/
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
	# The equivalence of fused, unfused and unplanned plans over every model is the normal
	# phase's; here three models (plain, residual, depthwise) cover the same kernels.
	MEMPLAN_MODELS="tiny resnet20 mobilenet_v2" ctest --test-dir build-asan --output-on-failure
}

phase_fuzz() {
	if ! command -v clang >/dev/null 2>&1; then
		echo "test: clang not found; run scripts/setup.sh" >&2
		return 1
	fi
	say "fuzz: configuring build-fuzz/ (CC=clang -DNNC_FUZZ=ON -DNNC_CUDA=OFF)"
	CC=clang cmake -S . -B build-fuzz -DNNC_FUZZ=ON "${SAN_FLAGS[@]}"
	say "fuzz: building fuzz_frontend"
	cmake --build build-fuzz -j"$JOBS" --target fuzz_frontend

	# Fresh seed corpus (git-ignored); libFuzzer adds new inputs to it as it runs.
	local corpus="$ROOT/tests/fuzz/corpus-run"
	rm -rf "$corpus"
	mkdir -p "$corpus"
	local n=0 f
	for f in models/*.nn models/lib/*.nn tests/golden/*.nn; do
		[ -f "$f" ] || continue
		cp "$f" "$corpus/$(echo "$f" | tr / _)"
		n=$((n + 1))
	done
	# The fuzzer runs in a scratch directory, against which imports in its inputs resolve
	# (a copy of models/lib/ there lets the seed models' `import "lib/resnet.nn"` work).
	local work="$ROOT/build-fuzz/run" artifacts="$ROOT/build-fuzz/artifacts"
	local log="$ROOT/build-fuzz/fuzz.log"
	rm -rf "$work" "$artifacts"
	mkdir -p "$work" "$artifacts"
	if [ -d models/lib ]; then
		cp -R models/lib "$work/lib"
	fi

	say "fuzz: running fuzz_frontend for ${FUZZ_SECONDS}s on $n seed files (log: build-fuzz/fuzz.log)"
	local rc=0
	(cd "$work" && exec "$ROOT/build-fuzz/fuzz_frontend" \
		-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-dict="$ROOT/tests/fuzz/nn.dict" -artifact_prefix="$artifacts/" \
		-print_final_stats=1 "$corpus") </dev/null >"$log" 2>&1 || rc=$?
	grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
	local found
	found=$(find "$artifacts" -type f 2>/dev/null | sort)
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		echo "test: FUZZER FOUND A PROBLEM (exit status $rc); the report from build-fuzz/fuzz.log:" >&2
		# From the first error line on, without ASan's shadow-memory dump, at most 80 lines.
		awk '/ERROR:|runtime error:|ALARM:/ { on = 1 }
			/^Shadow bytes around/ { skip = 1 } /==ABORTING/ { skip = 0 }
			on && !skip' "$log" | head -n 80 >&2 || true
		grep -E '^SUMMARY:' "$log" >&2 || true
		if [ -n "$found" ]; then
			echo "test: reproducer file(s):" >&2
			find "$artifacts" -type f -printf '    %p\n' | sort >&2
			echo "test: reproduce with: (cd build-fuzz/run && ../fuzz_frontend FILE)" >&2
		else
			echo "test: no reproducer file was written; see build-fuzz/fuzz.log" >&2
		fi
		return 1
	fi
	echo "fuzz: no crash, leak, timeout or OOM in ${FUZZ_SECONDS}s; corpus now $(find "$corpus" -type f | wc -l) files"
}

PHASES=(normal asan fuzz)
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
