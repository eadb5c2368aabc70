#!/bin/bash
# Fuzzes nnc with libFuzzer (clang), ASan and UBSan, in build-fuzz/:
#   frontend  .nn source text through the whole compiler (tests/fuzz/fuzz_frontend.c): seeds
#             models/, tests/golden/ and tests/fuzz/seeds/; dictionary tests/fuzz/nn.dict
#   plan      plan files through the loader and its checks (tests/fuzz/fuzz_plan.c): seeds the
#             models and seed files compiled in fp32, fp16 and mixed; dictionary plan.dict
#   safetensors  .safetensors files through the reader (tests/fuzz/fuzz_safetensors.c): seeds
#             io_tool's sample file and checkpoint; dictionary safetensors.dict
# A crash, sanitizer report, timeout, runaway memory or internal compiler error fails the run,
# with its reproducer file named. scripts/test.sh runs both briefly; a long run is, e.g.:
#   scripts/fuzz.sh frontend 3600      (docs/testing.md records what such runs found)
#   scripts/fuzz.sh TARGET SECONDS [JOBS]   (JOBS libFuzzer workers, default 1)
set -eu
set -o pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
target=${1:?usage: fuzz.sh frontend|plan|safetensors SECONDS [JOBS]}
seconds=${2:?usage: fuzz.sh frontend|plan|safetensors SECONDS [JOBS]}
jobs=${3:-1}
case $target in frontend | plan | safetensors) ;; *) echo "fuzz.sh: target must be frontend, plan or safetensors" >&2; exit 2 ;; esac
command -v clang >/dev/null 2>&1 || { echo "fuzz.sh: clang not found; run scripts/setup.sh" >&2; exit 1; }
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Configured every time (quick once cached), so a target added since the last run is known.
# No oneDNN: its OpenMP header is GCC's, which clang cannot compile, and nnc (the helper that
# compiles the plan seeds, linked with the runtime for tune-precision) does not need it.
CC=clang cmake -S . -B build-fuzz -DNNC_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" \
	-DNNC_CUDA=OFF -DNNC_DNNL=OFF >/dev/null
helper=nnc
[ "$target" = safetensors ] && helper=io_tool
cmake --build build-fuzz -j"$(nproc 2>/dev/null || echo 2)" --target "fuzz_$target" $helper >/dev/null

# A fresh seed corpus (git-ignored); libFuzzer adds the inputs that reach new code to it.
corpus=$ROOT/tests/fuzz/corpus-$target
rm -rf "$corpus"
mkdir -p "$corpus"
sources="models/*.nn tests/fuzz/seeds/*.nn"
if [ "$target" = frontend ]; then
	for f in $sources models/lib/*.nn tests/golden/*.nn; do
		[ -f "$f" ] && cp "$f" "$corpus/$(echo "$f" | tr / _)"
	done
	dict=tests/fuzz/nn.dict
elif [ "$target" = safetensors ]; then
	build-fuzz/io_tool sample "$corpus/sample.safetensors"
	build-fuzz/io_tool ckpt "$corpus/sample.ckpt"
	dict=tests/fuzz/safetensors.dict
else
	for f in models/tiny.nn models/resnet20.nn models/mobilenet_v2.nn models/airbench94.nn tests/fuzz/seeds/*.nn \
		tests/golden/chain_unary.nn; do
		for p in fp32 fp16 mixed; do
			build-fuzz/nnc compile --batch 2 --precision $p "$f" -o "$corpus/$(basename "$f" .nn)-$p.plan" 2>/dev/null ||
				{ echo "fuzz.sh: cannot compile the seed $f ($p)" >&2; exit 1; }
		done
	done
	dict=tests/fuzz/plan.dict
fi
n=$(find "$corpus" -type f | wc -l)

# The fuzzer runs in a scratch directory, against which imports in its inputs resolve (a copy
# of models/lib/ there lets the seed models' imports work).
work=$ROOT/build-fuzz/run-$target artifacts=$ROOT/build-fuzz/artifacts-$target log=$ROOT/build-fuzz/fuzz-$target.log
rm -rf "$work" "$artifacts"
mkdir -p "$work" "$artifacts"
[ -d models/lib ] && cp -R models/lib "$work/lib"
echo "fuzz: $target for ${seconds}s, $jobs worker(s), $n seed files (log: build-fuzz/fuzz-$target.log)"
rc=0
workers=()
[ "$jobs" -gt 1 ] && workers=(-fork="$jobs" -ignore_crashes=0)
(cd "$work" && exec "$ROOT/build-fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-dict="$ROOT/$dict" -artifact_prefix="$artifacts/" -print_final_stats=1 "${workers[@]}" "$corpus") \
	</dev/null >"$log" 2>&1 || rc=$?
grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|cov: [0-9]+' "$log" | tail -4 || true
found=$(find "$artifacts" -type f 2>/dev/null | sort)
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
	echo "fuzz: FUZZER FOUND A PROBLEM in $target (exit status $rc); the report from $log:" >&2
	# From the first error line on, without ASan's shadow-memory dump, at most 80 lines.
	awk '/ERROR:|runtime error:|ALARM:|fuzz_[a-z]*: / { on = 1 }
		/^Shadow bytes around/ { skip = 1 } /==ABORTING/ { skip = 0 }
		on && !skip' "$log" | head -n 80 >&2 || true
	grep -E '^SUMMARY:' "$log" >&2 || true
	if [ -n "$found" ]; then
		echo "fuzz: reproducer file(s):" >&2
		find "$artifacts" -type f -printf '    %p\n' | sort >&2
		echo "fuzz: reproduce with: (cd build-fuzz/run-$target && ../fuzz_$target FILE)" >&2
	fi
	exit 1
fi
files=$(find "$corpus" -type f | wc -l)
echo "fuzz: $target: no crash, leak, timeout or OOM in ${seconds}s; corpus now $files files"
# NNC_FUZZ_DOC=FILE: the run's figures as a row of FILE's fuzzing table (scripts/fuzz_record.py).
if [ -n "${NNC_FUZZ_DOC:-}" ]; then
	scripts/fuzz_record.py "$NNC_FUZZ_DOC" "$log" "$target" "$seconds" "$jobs" "$n" "$files" none
fi
