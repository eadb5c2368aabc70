#!/bin/sh
# Checks every model in models/*.nn against its expected PyTorch-style trainable parameter count
# (the `trainable_params:` line of `nnc stats --yaml`), and ResNet-56's forward MACs against the
# published 125.5M (within 1%). A model file without an expected count fails, and so does an
# expected count whose model file is gone: add new models to the table below.
#
# usage: tests/models.sh PATH/TO/nnc      (run from anywhere; models/ is found beside tests/)
# Exits 0 when every check passes, 1 otherwise.

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/nnc" >&2
	exit 2
fi
nnc=$1
if [ ! -x "$nnc" ]; then
	echo "models.sh: '$nnc' is not an executable" >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd) || exit 2
models=$root/models

# model name (file models/NAME.nn) and its expected trainable parameter count.
expected='
resnet20      272474
resnet32      466906
resnet56      855770
resnet110     1730714
resnet34      21282122
mobilenet_v2  2236682
vgg16         33641162
alexnet       20972394
airbench94    1971352
tiny          1586
'

# ResNet-56 forward MACs per image: He et al. 2016 / common profilers give 125.5M.
resnet56_macs=125500000

fails=0
checked=0
tmp=${TMPDIR:-/tmp}/nnc-models.$$
trap 'rm -f "$tmp"' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# Prints the expected count for model $1, or nothing.
expected_for() {
	echo "$expected" | awk -v m="$1" '$1 == m { print $2 }'
}

# Prints the value of the top-level YAML key $1 in $tmp, or nothing.
yaml_value() {
	awk -v k="$1:" '$1 == k { print $2; exit }' "$tmp"
}

for f in "$models"/*.nn; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .nn)
	want=$(expected_for "$name")
	if [ -z "$want" ]; then
		fail "$name: models/$name.nn has no expected parameter count; add it to the table in tests/models.sh"
		continue
	fi
	if ! "$nnc" stats --yaml "$f" >"$tmp" 2>&1; then
		fail "$name: '$nnc stats --yaml models/$name.nn' failed:"
		sed 's/^/    /' "$tmp"
		continue
	fi
	got=$(yaml_value trainable_params)
	if [ -z "$got" ]; then
		fail "$name: no trainable_params line in the output of 'nnc stats --yaml'"
		continue
	fi
	checked=$((checked + 1))
	if [ "$got" != "$want" ]; then
		fail "$name: trainable parameters: expected $want, nnc stats gives $got"
	else
		echo "ok   $name: $got trainable parameters"
	fi
	if [ "$name" = resnet56 ]; then
		macs=$(yaml_value macs_per_image)
		case $macs in
		'' | *[!0-9]*)
			fail "resnet56: no integer macs_per_image in the output of 'nnc stats --yaml' (got '$macs')"
			;;
		*)
			diff=$((macs - resnet56_macs))
			[ "$diff" -lt 0 ] && diff=$((-diff))
			# within 1%: 100 * |macs - ref| <= ref
			if [ $((diff * 100)) -gt "$resnet56_macs" ]; then
				fail "resnet56: forward MACs per image: expected $resnet56_macs (within 1%), nnc stats gives $macs"
			else
				echo "ok   resnet56: $macs forward MACs per image (reference $resnet56_macs, within 1%)"
			fi
			;;
		esac
	fi
done

# Every model compiles, training step included, in each precision and under a policy file.
for f in "$models"/*.nn; do
	name=$(basename "$f" .nn)
	for prec in fp16 mixed tests/golden/inc/policy.yaml; do
		if ! out=$("$nnc" compile --batch 8 --precision "$prec" "$f" 2>&1); then
			fail "$name: does not compile with --precision $prec:
$out"
		fi
	done
done

# Every model in the table must still exist.
for name in $(echo "$expected" | awk 'NF { print $1 }'); do
	if [ ! -e "$models/$name.nn" ]; then
		fail "$name: in the table of tests/models.sh (expected $(expected_for "$name") parameters) but models/$name.nn does not exist"
	fi
done

if [ "$fails" -ne 0 ]; then
	echo "models.sh: $fails failure(s), $checked model(s) checked"
	exit 1
fi
echo "models.sh: all $checked models pass"
exit 0
