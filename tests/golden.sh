#!/bin/sh
# Golden tests, cproc/jq style. Run in tests/golden as: golden.sh [--update] PATH/TO/nnc
#   x.nn + x.err : `nnc check x.nn` must exit 1 and print exactly x.err on stderr
#   x.nn + x.ir  : `nnc compile --batch 2 --dump-ir=all x.nn` must exit 0 and print x.ir
#                  (stderr, i.e. warnings and the summary line, then stdout)
#   x.nn + x.stats : `nnc stats --batch 2 x.nn` must exit 0 and print x.stats
# With --update, every expectation is rewritten from the compiler's output (a new x.nn gets
# x.err if it fails to check, else x.ir); review the result with `git diff tests/golden`. An
# expectation whose exit code would change (a .ir test that now fails, an .err test that now
# compiles) is not rewritten: --update refuses it and exits 1, unless that file is named with
# --accept-exit x.nn (repeatable), which moves it to the other kind (.ir <-> .err).
# A line "# args: ..." in x.nn adds those options (e.g. "# args: --precision mixed").
# Files under inc/ are helpers for imports, not tests.
update=0 accept=" " refused=0
while :; do
	case $1 in
	--update) update=1; shift ;;
	--accept-exit) accept="$accept$2 "; shift 2 ;;
	*) break ;;
	esac
done
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
		if [ $rc != $want ] && [ -f "$base.$mode" ]; then
			case $accept in
			*" $src "*)
				# the expectation changes kind: a compiled file's IR, or a failing file's errors
				rm -f "$base.$mode"
				if [ $mode = err ]; then mode=ir; want=0; else mode=err; want=1; fi
				case $mode in
				err) timeout 20 "$nnc" check "$src" >/dev/null 2>"$tmp"; rc=$? ;;
				# shellcheck disable=SC2086
				ir) timeout 20 "$nnc" compile --batch 2 $args --dump-ir=all "$src" >"$tmp.out" 2>"$tmp"; rc=$?
					cat "$tmp.out" >>"$tmp"; rm -f "$tmp.out" ;;
				esac
				echo "note: $src now exits $rc: its expectation is $base.$mode (--accept-exit)" ;;
			*)
				echo "REFUSED $src: exit code $rc, but $base.$mode expects $want; not rewritten (name it with --accept-exit $src if the change is meant)"
				refused=$((refused + 1))
				continue ;;
			esac
		fi
		cp "$tmp" "$base.$mode"
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
if [ $update = 1 ]; then
	[ $refused = 0 ] || { echo "updated the other expectations; $refused refused (above)"; exit 1; }
	echo "updated expectations; review with git diff"
	exit 0
fi
echo "golden: $pass passed, $fail failed"
[ $fail = 0 ]
