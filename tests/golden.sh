#!/bin/sh
# Golden tests, cproc/jq style. Run in tests/golden as: golden.sh [--update] PATH/TO/nnc
#   x.nn + x.err : `nnc check x.nn` must exit 1 and print exactly x.err on stderr
#   x.nn + x.ir  : `nnc compile --batch 2 --dump-ir=all x.nn` must exit 0 and print x.ir
#                  (stderr, i.e. warnings and the summary line, then stdout)
#   x.nn + x.stats : `nnc stats --batch 2 x.nn` must exit 0 and print x.stats
# With --update, every expectation is rewritten from the compiler's output (a new x.nn gets
# x.err if it fails to check, else x.ir); review the result with `git diff tests/golden`.
# A line "# args: ..." in x.nn adds those options (e.g. "# args: --precision mixed").
# Files under inc/ are helpers for imports, not tests.
update=0
if [ "$1" = "--update" ]; then update=1; shift; fi
nnc=${1:?usage: golden.sh [--update] PATH/TO/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
pass=0 fail=0
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp" "$tmp.out"' EXIT
for src in *.nn; do
	base=${src%.nn}
	if [ -f "$base.err" ]; then mode=err
	elif [ -f "$base.ir" ]; then mode=ir
	elif [ -f "$base.stats" ]; then mode=stats
	elif [ $update = 1 ]; then
		if "$nnc" check "$src" >/dev/null 2>&1; then mode=ir; else mode=err; fi
	else
		echo "FAIL $src: no expectation (.err, .ir or .stats); run with --update"
		fail=$((fail + 1)); continue
	fi
	args=$(sed -n 's/^# args: //p' "$src" | head -n 1)
	case $mode in
	err) timeout 20 "$nnc" check "$src" >/dev/null 2>"$tmp"; rc=$?; want=1 ;;
	# shellcheck disable=SC2086 # the args line is split into options on purpose
	ir) timeout 20 "$nnc" compile --batch 2 $args --dump-ir=all "$src" >"$tmp.out" 2>"$tmp"; rc=$?; want=0 ;;
	stats) timeout 20 "$nnc" stats --batch 2 "$src" >"$tmp.out" 2>"$tmp"; rc=$?; want=0 ;;
	esac
	[ $mode = err ] || { cat "$tmp.out" >>"$tmp"; rm -f "$tmp.out"; }
	if [ $update = 1 ]; then
		cp "$tmp" "$base.$mode"
		[ $rc = $want ] || echo "note: $src exited $rc (expected $want for .$mode)"
		continue
	fi
	if [ $rc != $want ]; then
		echo "FAIL $src: exit code $rc, expected $want"; cat "$tmp"; fail=$((fail + 1))
	elif ! diff -u "$base.$mode" "$tmp"; then
		echo "FAIL $src: output differs from $base.$mode"; fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
done
[ $update = 1 ] && { echo "updated expectations; review with git diff"; exit 0; }
echo "golden: $pass passed, $fail failed"
[ $fail = 0 ]
