#!/bin/sh
# make bench-verify: how fast stable-verify checks a page-cached image,
# against reading the same file with dd and against crc32c over memory.
# Figures only, never pass/fail; docs/benchmarks.md ("Verification")
# records a run. Usage: sh scripts/bench-verify.sh BINDIR [SIZE_MIB]
set -eu

BIN=${1:?usage: bench-verify.sh BINDIR [SIZE_MIB]}
MIB=${2:-1024}
CRC=$BIN/../bench/crc-bench
TMP=${STABLE_TMP:-$(dirname "$BIN")/tmp}
mkdir -p "$TMP"
DIR=$(mktemp -d "$TMP/bench-verify.XXXXXX")
trap 'rm -rf "$DIR"' EXIT INT TERM

# best_of N CMD...: the shortest wall time of N runs, in seconds.
best_of() {
	n=$1
	shift
	best=
	while [ "$n" -gt 0 ]; do
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s%N)
		t=$((t1 - t0))
		if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
		n=$((n - 1))
	done
	awk -v ns="$best" 'BEGIN { printf "%.4f", ns / 1e9 }'
}

mibs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

echo "bench-verify: $MIB MiB of random data, $(nproc) cores, $(uname -r)"
head -c "${MIB}M" /dev/urandom >"$DIR/src"
"$BIN/stable-mkimage" -q "$DIR/src" "$DIR/img" >/dev/null
rm "$DIR/src"
bytes=$((MIB * 1048576))
# Page-cache the image (twice, so a first cold read does not count).
cat "$DIR/img" >/dev/null
cat "$DIR/img" >/dev/null

t_dd=$(best_of 5 dd if="$DIR/img" bs=1M of=/dev/null)
t_verify=$(best_of 5 "$BIN/stable-verify" -q "$DIR/img")
t_cat=$(best_of 3 sh -c "'$BIN/stable-cat' '$DIR/img' >/dev/null")
t_catp=$(best_of 3 sh -c "'$BIN/stable-cat' -B private '$DIR/img' >/dev/null")
# stable-verify's own clock: the scrub alone, without start-up and open.
inproc=$("$BIN/stable-verify" --json "$DIR/img" | sed -n 's/.*"bytes_per_second": \([0-9]*\).*/\1/p')

echo
printf '%-44s %8s %10s\n' "what" "seconds" "MiB/s"
printf '%-44s %8s %10s\n' "dd if=IMG bs=1M of=/dev/null" "$t_dd" "$(mibs $bytes "$t_dd")"
printf '%-44s %8s %10s\n' "stable-verify -q IMG" "$t_verify" "$(mibs $bytes "$t_verify")"
printf '%-44s %8s %10s\n' "  (its own clock, scrub only)" "" \
	"$(awk -v b="$inproc" 'BEGIN { printf "%.0f", b / 1048576 }')"
printf '%-44s %8s %10s\n' "stable-cat IMG >/dev/null (auto backend)" "$t_cat" "$(mibs $bytes "$t_cat")"
printf '%-44s %8s %10s\n' "stable-cat -B private IMG >/dev/null" "$t_catp" "$(mibs $bytes "$t_catp")"
if [ -x "$CRC" ]; then
	printf '%-44s %8s %10s\n' "crc32c over memory, 1 MiB buffer (cached)" "" \
		"$("$CRC" 4096 1 | cut -d' ' -f1)"
	printf '%-44s %8s %10s\n' "crc32c over memory, 256 MiB buffer" "" \
		"$("$CRC" 4096 256 | cut -d' ' -f1)"
else
	echo "crc32c: $CRC not built (make $CRC)"
fi
awk -v v="$t_verify" -v d="$t_dd" \
	'BEGIN { printf "stable-verify / dd throughput: %.2fx (goal >= 0.8x)\n", d / v }'
