#!/bin/sh
# Runs a test program that takes plans (test_cuda_vs_cpu: the CUDA backend against the CPU
# backend, op by op and step by step; test_step_groups: the plan's step groups on the CPU) on plans
# of every model in CUDA_MODELS (default: all) in fp32, fp16 and mixed precision at batch
# CUDA_BATCH (default 8), in the layout CUDA_LAYOUT (default nchw; nnc --layout). With CUDA_JOBS=N (default 1), N models run at once, one process each
# (the device check's 16 cores: every model in about a minute); their outputs follow one another.
# The models in CUDA_SR_MODELS (default: tiny resnet20) also run in fp16 with stochastic rounding
# (optimizer.rounding, runtime/sround.h): the updates' stored bits must be the CPU's; and under
# tests/precision/policy_layers.yaml, layers of both dtypes in one plan (nnc tune-precision's).
# Skipped (77) when the program, run without plans, says so (no usable GPU), before compiling
# anything.
#   tests/cuda.sh PATH/TO/nnc PATH/TO/TEST_PROGRAM
nnc=${1:?usage: cuda.sh NNC TEST_PROGRAM}
test=${2:?usage: cuda.sh NNC TEST_PROGRAM}
"$test" >/dev/null 2>&1
[ $? = 77 ] && { echo "skipped: no usable GPU"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
models=${CUDA_MODELS:-$(cd models && ls *.nn | sed "s/\.nn$//")}
for m in $models; do
	for p in fp32 fp16 mixed; do
		"$nnc" compile --batch "${CUDA_BATCH:-8}" --precision $p --layout "${CUDA_LAYOUT:-nchw}" "models/$m.nn" \
			-o "$tmp/$m-$p.plan" 2>/dev/null || {
			echo "FAIL compile $m $p"
			exit 1
		}
	done
	case " ${CUDA_SR_MODELS-tiny resnet20} " in
	*" $m "*)
		"$nnc" compile --batch "${CUDA_BATCH:-8}" --precision fp16 --set optimizer.rounding=stochastic \
			--layout "${CUDA_LAYOUT:-nchw}" "models/$m.nn" -o "$tmp/$m-fp16sr.plan" 2>/dev/null || {
			echo "FAIL compile $m fp16 stochastic rounding"
			exit 1
		}
		"$nnc" compile --batch "${CUDA_BATCH:-8}" --precision tests/precision/policy_layers.yaml \
			--layout "${CUDA_LAYOUT:-nchw}" "models/$m.nn" -o "$tmp/$m-layers.plan" 2>/dev/null || {
			echo "FAIL compile $m per-layer policy"
			exit 1
		}
		;;
	esac
done
if [ "${CUDA_JOBS:-1}" -le 1 ]; then
	plans=""
	for m in $models; do
		plans="$plans $tmp/$m-fp32.plan $tmp/$m-fp16.plan $tmp/$m-mixed.plan"
		[ -f "$tmp/$m-fp16sr.plan" ] && plans="$plans $tmp/$m-fp16sr.plan $tmp/$m-layers.plan"
	done
	exec "$test" $plans
fi
# one process per model, CUDA_JOBS at a time; each leaves its output and its exit status
printf '%s\n' $models | xargs -P "$CUDA_JOBS" -I{} sh -c \
	'"$1" "$2/$3"-*.plan >"$2/$3.out" 2>&1; echo $? >"$2/$3.rc"' \
	sh "$test" "$tmp" {}
status=0
for m in $models; do
	cat "$tmp/$m.out"
	[ "$(cat "$tmp/$m.rc" 2>/dev/null)" = 0 ] || status=1
done
echo "cuda.sh: $(echo $models | wc -w) models, $([ $status = 0 ] && echo "all passed" || echo "some FAILED")"
exit $status
