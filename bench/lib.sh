# Shared by the timing benchmarks (sourced after `cd` to the repository root): thread and
# round counts from the environment, a scratch folder removed on exit, the median of a column
# of numbers on stdin, and the ms/step figure of an `nnrun bench` line.
threads=${NNC_THREADS:-$(nproc)}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ms_per_step() { sed 's/.*: \([0-9.]*\) ms\/step.*/\1/'; }
