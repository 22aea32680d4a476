#!/bin/bash
# Build the stable test kernel: apply kernel/patches/series to a Linux 7.3
# tree and build bzImage out of tree, from tinyconfig plus
# kernel/stable.config.  Everything lives under a cache directory outside
# the repository, and the build directory is kept between runs so that a
# change to the series only recompiles what the patches touch.
#
# usage: build.sh SRC_TREE BUILD_DIR [JOBS]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:?usage: build.sh SRC BUILD [JOBS]}" && pwd)
out=${2:?usage: build.sh SRC BUILD [JOBS]}
jobs=${3:-3}
# STABLE_SERIES names another series file in kernel/patches/ (check-series.sh)
series=${STABLE_SERIES:-$here/patches/series}
frag=$here/stable.config
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One build at a time: parallel make and concurrent `make test` runs share
# the cached tree. check-series.sh holds the lock across its steps.
if [ -z "${STABLE_KERNEL_LOCKED:-}" ]; then
	exec 9> "$out.lock"
	flock 9
	export STABLE_KERNEL_LOCKED=1
fi

# 1. The series.  The hash of the series and every patch names what is
# applied; the tree records it in .stable-series.
hash=$(cd "$here/patches" && cat "$series" $(grep -v '^#' "$series") |
	sha256sum | cut -c1-16)
have=$(cat "$src/.stable-series" 2>/dev/null || true)
if [ "$have" != "$hash" ]; then
	if [ -n "$have" ]; then
		if ! git -C "$src" rev-parse -q --verify pristine >/dev/null; then
			echo "build: $src carries another version of the series" \
			     "and has no 'pristine' git tag to go back to" >&2
			exit 1
		fi
		echo "build: resetting $src to the pristine tree"
		# Only files that differ are rewritten, so mtimes of the
		# rest survive and the rebuild stays incremental.
		git -C "$src" reset -q --hard pristine
		git -C "$src" clean -qfd -- io_uring include
		rm -f "$src/.stable-series"
	fi
	for p in $(grep -v '^#' "$series"); do
		echo "build: applying $p"
		if ! patch -d "$src" -p1 --fuzz=0 --no-backup-if-mismatch -s \
		     -i "$here/patches/$p"; then
			echo "build: $p does not apply cleanly to $src" >&2
			exit 1
		fi
	done
	echo "$hash" > "$src/.stable-series"
fi

# 2. The configuration, regenerated only when the fragment changes.
fhash=$(sha256sum "$frag" | cut -c1-16)
if [ "$(cat "$out/.stable-config" 2>/dev/null || true)" != "$fhash" ]; then
	echo "build: configuring $out"
	make -s -C "$src" O="$out" tinyconfig
	(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
		"$out/.config" "$frag" >/dev/null)
	make -s -C "$src" O="$out" olddefconfig
	missing=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			opt=${line%%=*} val=${line#*=}
			if [ "$val" = n ]; then
				got=$(grep -c "^$opt=" "$out/.config" || true)
				[ "$got" = 0 ] && continue
			elif grep -qx "$opt=$val" "$out/.config"; then
				continue
			fi
			echo "build: $opt=$val did not survive olddefconfig" >&2
			missing=1 ;;
		esac
	done < "$frag"
	[ "$missing" = 0 ] || exit 1
	echo "$fhash" > "$out/.stable-config"
fi

# 3. The kernel.
start=$(date +%s)
make -s -C "$src" O="$out" -j"$jobs" bzImage
echo "build: bzImage ready in $(( $(date +%s) - start )) s:" \
     "$out/arch/x86/boot/bzImage"
