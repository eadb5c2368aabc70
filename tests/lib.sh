# Shared by the shell tests (sourced): a scratch directory, pass/fail counters and checks.
#   expect NAME RC PATTERN -- CMD...   CMD exits RC within $TIMEOUT s (default 60) and, unless
#                                      PATTERN is empty, its output matches PATTERN (grep);
#                                      output mentioning "internal error" always fails
#   same NAME FILE1 FILE2              the two files are identical
#   atmost NAME GOT LIMIT WHAT         the number GOT is at most LIMIT (an empty GOT fails);
#                                      WHAT describes GOT in the failure message
#   finish LABEL                       prints the tally; exit status 0 when nothing failed
#   need_cifar DIR                     exits 77 (skipped) without CIFAR-10 in DIR; 1 under CI=true
#   cuda_needs NNRUN PLAN              for the `cuda` tests: exits 77 (skipped) unless nnrun runs
#                                      PLAN on a usable GPU; sets data and records (NNC_DATA,
#                                      NNC_RECORDS: a subset's file size) and clears NNC_DEVICE
# The CPU backend's tests stay on the CPU on machines with a GPU too (nnrun's default device).
export NNC_DEVICE=cpu
# OpenMP's threads (the CPU pool with oneDNN, docs/cpu.md) sleep between parallel regions
# instead of spinning: tests are not timed, and `ctest -j` runs several at once
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0

expect() {
	name=$1 want=$2 pat=$3
	shift 4
	timeout "${TIMEOUT:-60}" "$@" >"$tmp/out" 2>&1
	rc=$?
	if [ $rc != "$want" ]; then
		echo "FAIL $name: exit $rc, expected $want"
	elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; then
		echo "FAIL $name: output does not match '$pat'"
	elif grep -q "internal error" "$tmp/out"; then
		echo "FAIL $name: internal error"
	else
		pass=$((pass + 1))
		return
	fi
	head -c 2000 "$tmp/out"
	echo
	fail=$((fail + 1))
}

same() {
	if cmp -s "$2" "$3"; then
		pass=$((pass + 1))
	else
		echo "FAIL $1: $2 and $3 differ"
		fail=$((fail + 1))
	fi
}

atmost() {
	if awk -v g="$2" -v l="$3" 'BEGIN { exit !(g != "" && g + 0 <= l + 0) }'; then
		pass=$((pass + 1))
	else
		echo "FAIL $1: $4 is ${2:-missing}, above the limit $3"
		fail=$((fail + 1))
	fi
}

# need_cifar DIR: exits 77 (skipped) when DIR holds no CIFAR-10 -- but under CI=true, where the
# set-up fetched the data, exits 1 (failed), so a test that needs the data never skips silently.
need_cifar() {
	[ -f "$1/cifar-10-batches-bin/test_batch.bin" ] || [ -f "$1/test_batch.bin" ] && return 0
	if [ "${CI:-}" = true ]; then
		echo "FAIL: no CIFAR-10 in $1, and CI=true: scripts/setup.sh should have fetched it"
		exit 1
	fi
	echo "skipped: no CIFAR-10 in $1 (scripts/setup.sh fetches it)"
	exit 77
}

cuda_needs() {
	data=${NNC_DATA:-data}
	records=${NNC_RECORDS:+--records-per-file $NNC_RECORDS}
	unset NNC_DEVICE
	need_cifar "$data"
	"$1" bench "$2" --steps 1 --device cuda 2>&1 | grep -q "no usable GPU\|without the CUDA backend" &&
		{ echo "skipped: no usable GPU"; exit 77; }
}

finish() {
	echo "$1: $pass passed, $fail failed"
	[ $fail = 0 ]
}

# delta_of FILE: nnrun compare's largest delta in FILE, with inf (a NaN or Inf output) as 1e308.
delta_of() {
	sed -n 's/.*largest delta \([^ ]*\).*/\1/p' "$1" | sed 's/^-\{0,1\}inf$/1e308/; s/^-\{0,1\}nan$/1e308/'
}
