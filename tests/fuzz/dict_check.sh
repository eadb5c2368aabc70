#!/bin/sh
# The fuzzers' dictionaries name every op: tests/fuzz/nn.dict every op a .nn file can call
# (`nnc ops`), tests/fuzz/plan.dict every kernel of the op table (core/ops.h). Run from the
# repository root: tests/fuzz/dict_check.sh PATH/TO/nnc
nnc=${1:?usage: dict_check.sh NNC}
fail=0
for op in $("$nnc" ops | sed 's/(.*//'); do
	grep -q "=\"$op\"$" tests/fuzz/nn.dict || { echo "FAIL nn.dict lacks the op '$op'"; fail=1; }
done
for op in $(awk '/^#define NNC_OPS\(X\)/ { on = 1; next } on && /^\t\/\*/ { next } on && /^\tX\(/ { sub(/^\tX\(/, ""); sub(/,.*/, ""); print; next } on { exit }' core/ops.h); do
	grep -q "=\"$op\"$" tests/fuzz/plan.dict || { echo "FAIL plan.dict lacks the kernel '$op'"; fail=1; }
done
[ $fail = 0 ] && echo "dict_check: both dictionaries name every op"
exit $fail
