#!/bin/sh
# tests/golden.sh --update must not turn a failure into an expectation: in a scratch copy, a .ir
# test whose source now fails to compile is refused (exit 1, the .ir untouched) unless named with
# --accept-exit, which makes it an .err test; a passing file is still rewritten.
#   tests/golden_update.sh PATH/TO/nnc
nnc=${1:?usage: golden_update.sh NNC}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
. "$(dirname "$0")/lib.sh"
golden=$(cd "$(dirname "$0")" && pwd)/golden.sh
cp tests/golden/fuse.nn tests/golden/fuse.ir "$tmp/"
printf 'model broken {\n    input image: image[3, 32, 32]\n    output nothing\n}\n' >"$tmp/turned.nn"
"$nnc" compile --batch 2 --dump-ir=all tests/golden/fuse.nn >"$tmp/turned.ir" 2>&1
cp "$tmp/turned.ir" "$tmp/turned.ir.before"
printf 'stale\n' >>"$tmp/fuse.ir"
expect refuse 1 "REFUSED turned.nn: exit code 1, but turned.ir expects 0" -- sh -c "cd '$tmp' && '$golden' --update '$nnc'"
same "a refused expectation is left as it was" "$tmp/turned.ir" "$tmp/turned.ir.before"
expect others-rewritten 0 "" -- sh -c "cd '$tmp' && ! grep -q stale fuse.ir"
expect accept 0 "turned.nn now exits 1: its expectation is turned.err" -- \
	sh -c "cd '$tmp' && '$golden' --update --accept-exit turned.nn '$nnc'"
expect accepted-kind 0 "" -- sh -c "test -f '$tmp/turned.err' && test ! -e '$tmp/turned.ir'"
finish golden_update
