#!/bin/bash
# Build the kernel at every step of kernel/patches/series, so that each
# patch is known to build on its own (bisectable), as upstream expects.
# Uses the same cached tree and build directory as `make kernel`; each
# step is an incremental build. Ends with the whole series applied.
#
# usage: check-series.sh SRC_TREE BUILD_DIR [JOBS]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: check-series.sh SRC BUILD [JOBS]}
out=${2:?}
jobs=${3:-3}
mkdir -p "$out"
exec 9> "$(cd "$out" && pwd).lock"
flock 9
export STABLE_KERNEL_LOCKED=1
# the partial series lives next to the build, not in the repository
tmp=$(mktemp "$(cd "$out" && pwd).series-step.XXXXXX")
trap 'rm -f "$tmp"' EXIT

mapfile -t patches < <(grep -v '^#' "$here/patches/series")
for i in $(seq 1 "${#patches[@]}"); do
	printf '%s\n' "${patches[@]:0:$i}" > "$tmp"
	start=$(date +%s)
	if ! STABLE_SERIES=$tmp "$here/build.sh" "$src" "$out" "$jobs" > "$out.step.log" 2>&1; then
		echo "not ok $i - ${patches[$((i - 1))]} does not build; see $out.step.log"
		tail -20 "$out.step.log"
		exit 1
	fi
	# a patch must build without new compiler warnings too
	if grep -q 'warning:' "$out.step.log"; then
		echo "not ok $i - ${patches[$((i - 1))]} builds with warnings"
		grep -A3 'warning:' "$out.step.log"
		exit 1
	fi
	echo "ok $i - builds with ${patches[$((i - 1))]} ($(( $(date +%s) - start )) s)"
done
