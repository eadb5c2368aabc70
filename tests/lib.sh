# Shared by the shell tests (sourced): a scratch directory, pass/fail counters and checks.
#   expect NAME RC PATTERN -- CMD...   CMD exits RC within $TIMEOUT s (default 60) and, unless
#                                      PATTERN is empty, its output matches PATTERN (grep);
#                                      output mentioning "internal error" always fails
#   same NAME FILE1 FILE2              the two files are identical
#   atmost NAME GOT LIMIT WHAT         the number GOT is at most LIMIT (an empty GOT fails);
#                                      WHAT describes GOT in the failure message
#   finish LABEL                       prints the tally; exit status 0 when nothing failed
# The CPU backend's tests stay on the CPU on machines with a GPU too (nnrun's default device).
export NNC_DEVICE=cpu
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

finish() {
	echo "$1: $pass passed, $fail failed"
	[ $fail = 0 ]
}
