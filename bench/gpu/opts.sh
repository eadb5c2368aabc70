# The options bench/gpu/paper_table.sh and airbench.sh share (sourced, bash): the binaries, the
# device, the data and nnrun's limits, and the output file; each script adds its own.
#   gpu_parse NAME ARGS... takes every option of ARGS: the script's own through its function
#                          own_opt OPTION VALUE (false for one it does not know), the shared
#                          ones here; then reads DATA/subset.env (scripts/device-data.sh
#                          assemble) for the limits not given, and fills the array nnrun_opts
#                          with what nnrun train needs
nnc=build/nnc nnrun=build/nnrun device=cuda data=data out="" epochs="" train_limit="" test_limit="" records="" threads=""
gpu_opt() {
	case $1 in
	--nnc) nnc=$2 ;;
	--nnrun) nnrun=$2 ;;
	--device) device=$2 ;;
	--data) data=$2 ;;
	--epochs) epochs=$2 ;;
	--train-limit) train_limit=$2 ;;
	--test-limit) test_limit=$2 ;;
	--records-per-file) records=$2 ;;
	--threads) threads=$2 ;;
	-o) out=$2 ;;
	*) return 1 ;;
	esac
}
gpu_opts_done() {
	if [ -f "$data/subset.env" ]; then
		# shellcheck disable=SC1091 # written by scripts/device-data.sh assemble
		. "$data/subset.env"
		train_limit=${train_limit:-$TRAIN_LIMIT}
		test_limit=${test_limit:-$TEST_LIMIT}
	fi
	nnrun_opts=(--device "$device" --data "$data" --quiet)
	[ -n "$epochs" ] && nnrun_opts+=(--epochs "$epochs")
	[ -n "$train_limit" ] && nnrun_opts+=(--train-limit "$train_limit")
	[ -n "$test_limit" ] && nnrun_opts+=(--test-limit "$test_limit")
	[ -n "$records" ] && nnrun_opts+=(--records-per-file "$records")
	[ -n "$threads" ] && nnrun_opts+=(--threads "$threads")
	return 0
}
gpu_parse() {
	local name=$1
	shift
	while [ $# -gt 0 ]; do
		own_opt "$1" "${2:-}" || gpu_opt "$1" "${2:-}" ||
			{ echo "$name: unknown option $1 (see the comment at the top of bench/gpu/$name.sh)" >&2; exit 2; }
		shift 2 || { echo "$name: $1 needs a value" >&2; exit 2; }
	done
	gpu_opts_done
}
