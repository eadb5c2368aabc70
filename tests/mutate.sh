#!/bin/sh
# Mutation testing (tests/mutate/mutate.py): every mutation in tests/mutate/mutations.txt must
# make the fast tests named for it fail. Run from anywhere; a scratch copy and build live in
# $NNC_MUTATE_DIR (default /tmp/nnc-mutate).
#   tests/mutate.sh                          all of them (about 30 minutes on 2 cores)
#   tests/mutate.sh --sample 3               CI's sample: 3 spread over the list
#   tests/mutate.sh --doc docs/testing.md    all, and the table written into docs/testing.md
#   tests/mutate.sh ID...                    these only
exec python3 "$(dirname "$0")/mutate/mutate.py" "$@"
