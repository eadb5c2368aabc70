#!/bin/sh
# Multiply-add contraction in the CUDA kernels (no GPU needed). The kernels' formulas are shared
# with the host, where tests/unit/test_cuda_host.cu checks them against the CPU kernels bit for
# bit; the CPU code is C11 and never contracts. nvcc contracts a * b + c into one fma by
# default, and differently in each kernel a formula is inlined into, so a fused kernel and its
# single-step twin could round the same formula apart (issue 13). The CUDA build turns that off
# (-fmad=false, CMakeLists.txt); this test reads the PTX built with the library's device options
# and fails when any kernel holds an fma that is not the math library's own: only the kernels
# that call expf, erff, tanhf, logf or pow (the elementwise programs, softmax, the loss, Adam's
# bias correction in the multi-tensor launch) may.
#   tests/cuda_contract.sh PTX...       (from the source root: reads core/ops.h)
[ $# -gt 0 ] || { echo "usage: cuda_contract.sh PTX..."; exit 2; }
# k_multi<OP_adam_update> is mangled with the op's number: its row in the op table
adam=$(awk '/^#define NNC_OPS\(X\)/ { on = 1; next } on && /^\tX\(/ { if ($0 ~ /X\(adam_update,/) { print n; exit } n++ }' core/ops.h)
[ -n "$adam" ] || { echo "FAIL: adam_update not found in core/ops.h"; exit 1; }
allowed="k_ew|k_softmax_fwd|k_softmax_bwd|k_xent_fwd|k_xent_bwd|k_multiIL2Op${adam}E"
status=0 kernels=0
for f in "$@"; do
	[ -s "$f" ] || { echo "FAIL $f: no PTX"; exit 1; }
	report=$(awk '/\.entry/ { name = $2; sub(/\(.*/, "", name); n++ }
		/^[ \t]*fma\./ { fma[name]++ }
		END { print "kernels", n + 0; for (k in fma) print k, fma[k] }' "$f")
	kernels=$((kernels + $(echo "$report" | awk '$1 == "kernels" { print $2 }')))
	bad=$(echo "$report" | grep -v '^kernels ' | grep -Ev "$allowed" || true)
	if [ -n "$bad" ]; then
		echo "FAIL $f: fused multiply-adds in kernels whose formulas the host checks (contraction is on?):"
		echo "$bad" | sed 's/^/  /'
		status=1
	fi
done
[ "$kernels" -gt 0 ] || { echo "FAIL: no kernels found in $*"; exit 1; }
[ $status = 0 ] && echo "cuda_contract: $kernels kernels, no contracted multiply-adds outside the math library's"
exit $status
