#!/bin/bash
# Run the kernel's checkpatch.pl --strict over kernel/patches/, in series
# order. Fails if any patch has an error; warnings and checks are shown
# but do not fail, so that a person sees them and decides.
#
# usage: checkpatch.sh KERNEL_TREE
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tree=${1:?usage: checkpatch.sh KERNEL_TREE}
cp=$tree/scripts/checkpatch.pl
[ -f "$cp" ] || { echo "checkpatch: no $cp" >&2; exit 1; }

errors=0
n=0
for p in $(grep -v '^#' "$here/patches/series"); do
	n=$((n + 1))
	out=$(perl "$cp" --strict --no-tree --no-color --show-types \
		"$here/patches/$p" 2>&1 || true)
	total=$(printf '%s\n' "$out" | grep -E '^total:' || echo "total: ?")
	echo "checkpatch: $p: $total"
	e=$(printf '%s\n' "$total" | sed -n 's/^total: \([0-9]*\) errors.*/\1/p')
	if [ "${e:-1}" != 0 ]; then
		printf '%s\n' "$out" | grep -E -A4 '^ERROR' || printf '%s\n' "$out"
		errors=$((errors + 1))
	fi
	printf '%s\n' "$out" | grep -E -A3 '^(WARNING|CHECK)' || true
done
echo "checkpatch: $n patches, $errors with errors"
[ "$errors" = 0 ]
