#!/bin/sh
# Command-line and robustness tests for nnc: help and exit codes, dump options, and hostile
# inputs (a 10 MB file, binary garbage, absurd nesting, huge loops) that must end quickly with
# a clear error -- never a crash, a hang or an internal error. Run from the repository root:
#   tests/cli.sh PATH/TO/nnc
nnc=${1:?usage: cli.sh PATH/TO/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
. "$(dirname "$0")/lib.sh"


# --- help, usage errors and exit codes ---------------------------------------------------------
expect help 0 "commands:" -- "$nnc" --help
expect help-cmd 0 "usage: nnc compile" -- "$nnc" help compile
for c in check compile stats; do
	expect "help-$c" 0 "usage: nnc $c" -- "$nnc" $c --help
done
expect no-args 2 "usage: nnc" -- "$nnc"
expect bad-command 2 "unknown command 'bogus'" -- "$nnc" bogus
expect no-file 2 "no input file" -- "$nnc" check
expect bad-option 2 "unknown option '--frobnicate'" -- "$nnc" check --frobnicate models/tiny.nn
expect bad-batch 2 "batch must be an integer" -- "$nnc" check --batch 0 models/tiny.nn
expect bad-layout 2 "--layout must be nchw, nhwc or auto, got 'nhcw'" -- "$nnc" compile --layout nhcw models/tiny.nn
expect missing-value 2 "needs a value" -- "$nnc" check models/tiny.nn --batch
expect bad-dump 2 "unknown pass 'parse'" -- "$nnc" compile --dump-ir=sema,parse models/tiny.nn
expect missing-file 1 "no-such.nn: error: cannot open: No such file or directory" -- "$nnc" check "$tmp/no-such.nn"
expect directory 1 "is a directory" -- "$nnc" check models
expect device 1 "not a regular file" -- "$nnc" check /dev/zero
printf 'import "/dev/zero"\nmodel m {\n    input x: image[3, 8, 8]\n    output x\n}\n' >"$tmp/devzero.nn"
expect import-device 1 "cannot import '/dev/zero': it is not a regular file" -- "$nnc" check "$tmp/devzero.nn"
expect version 0 "backends: cpu" -- "$nnc" version
expect passes 0 "dce" -- "$nnc" passes

# --- outputs -------------------------------------------------------------------------------------
expect dump-dir 0 "compiled model 'resnet20'" -- "$nnc" compile --dump-dir "$tmp/dumps" models/resnet20.nn
for f in 01-sema.ir 02-dce.ir; do
	if grep -q "^graph resnet20 batch=128 {" "$tmp/dumps/$f"; then pass=$((pass + 1)); else echo "FAIL dump-dir: $f"; fail=$((fail + 1)); fi
done
expect dump-dot 0 "compiled" -- "$nnc" compile --dump-dot "$tmp/g.dot" models/resnet20.nn
expect dot-content 0 "v0 -> " -- cat "$tmp/g.dot"
expect stats-yaml 0 "trainable_params: 272474" -- "$nnc" stats --yaml models/resnet20.nn
expect stats-table 0 "layer3.2.conv2" -- "$nnc" stats models/resnet20.nn
cat >"$tmp/two.nn" <<'NN'
model a {
    input x: image[3, 8, 8]
    output x
}
model b {
    input x: image[3, 8, 8]
    h = relu(x)
    output h
}
NN
expect two-models 1 "more than one model" -- "$nnc" check "$tmp/two.nn"
expect pick-model 0 "relu" -- "$nnc" compile --model b --dump-ir=dce "$tmp/two.nn"
expect no-such-model 1 "no model named 'c'" -- "$nnc" check --model c "$tmp/two.nn"

# --- the README's examples ---------------------------------------------------------------------
expect example-first 0 "compiled model 'first'" -- "$nnc" compile examples/first.nn
expect example-broken 1 "2 errors generated" -- "$nnc" check examples/broken.nn

# --- hostile inputs --------------------------------------------------------------------------------
# A valid 10 MB file: 400,000 constants, then a model that uses the last one.
awk 'BEGIN { for (i = 0; i < 400000; i++) printf "c%d = %d * 2 + 1 # padding\n", i, i;
	print "model big {\n    input x: image[3, 8, 8]\n    h = conv2d(x, c9 - 11, kernel=3)\n    output h\n}" }' >"$tmp/big.nn"
expect big-valid 0 "channels=8" -- "$nnc" compile --dump-ir=dce "$tmp/big.nn"
# 10 MB of text garbage on one line, and of binary bytes (with and without NULs).
yes 'x = = ( ] } @' | head -c 10000000 | tr -d '\n' >"$tmp/junk.nn"
expect big-garbage 1 "too many errors" -- "$nnc" check "$tmp/junk.nn"
yes 'abcdefghijklmnopqrstuvwxyz' | head -c 10000000 | tr 'a-z' '\000-\031' >"$tmp/binary.nn"
expect binary-nul 1 "binary file" -- "$nnc" check "$tmp/binary.nn"
yes 'abcdefghijklmnopqrstuvwxyz' | head -c 1000000 | tr 'a-z' '\200-\231' >"$tmp/high.nn"
expect binary-high 1 "non-ASCII byte 0x80" -- "$nnc" check "$tmp/high.nn"
# Absurd nesting: brackets, a long left-leaning expression, nested ifs.
awk 'BEGIN { printf "x = "; for (i = 0; i < 100000; i++) printf "("; printf "1"; for (i = 0; i < 100000; i++) printf ")"; print "" }' >"$tmp/parens.nn"
expect deep-parens 1 "nesting too deep" -- "$nnc" check "$tmp/parens.nn"
awk 'BEGIN { printf "x = 1"; for (i = 0; i < 100000; i++) printf " + 1"; print "" }' >"$tmp/sum.nn"
expect long-sum 1 "nesting too deep" -- "$nnc" check "$tmp/sum.nn"
awk 'BEGIN { print "model m {\n input x: image[3, 8, 8]"; for (i = 0; i < 5000; i++) print "if true {"; for (i = 0; i < 5000; i++) print "}"; print "output x\n}" }' >"$tmp/ifs.nn"
expect deep-ifs 1 "nesting too deep" -- "$nnc" check "$tmp/ifs.nn"
# Compile-time work is bounded: nested loops and a huge model stop with an error, not a hang.
cat >"$tmp/loops.nn" <<'NN'
model m {
    input x: image[3, 8, 8]
    for i in range(3000000) {
        for j in range(3000000) {
            k = i * j
        }
    }
    output x
}
NN
expect huge-loops 1 "compile-time evaluation too large" -- "$nnc" check "$tmp/loops.nn"
cat >"$tmp/wide.nn" <<'NN'
model m {
    input x: image[3, 8, 8]
    for i in range(2000000) {
        x = relu(x)
    }
    output x
}
NN
expect huge-model 1 "model too large" -- "$nnc" check "$tmp/wide.nn"

finish cli
