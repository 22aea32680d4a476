#!/bin/sh
# Description: the libFuzzer target (server/fuzz/fuzz-nbd.c) runs the
# handshake and request parser on mutated client streams for a bounded
# time ($FUZZ_SECONDS, 30 by default) without a crash, a sanitizer report
# or an extent left held. `make fuzz` runs it longer.
. "$(dirname "$0")/lib.sh"

if [ -z "${STABLED_FUZZ:-}" ] || [ ! -x "$STABLED_FUZZ" ]; then
	echo "1..0 # SKIP STABLED_FUZZ does not name the fuzz-nbd binary (make test-server builds it)"
	exit 0
fi
secs=${FUZZ_SECONDS:-30}
seeds=$(dirname "$0")/../../server/fuzz/seeds
mkdir -p "$T_DIR/corpus"

# the seeds alone first: each one is a known conversation
trun 120 "$STABLED_FUZZ" -runs=0 "$seeds"
exits "fuzz-nbd on the seed conversations" 0

trun $((secs + 60)) "$STABLED_FUZZ" -max_total_time="$secs" -max_len=4096 \
	-artifact_prefix="$T_DIR/" "$T_DIR/corpus" "$seeds"
exits "fuzz-nbd for $secs s" 0
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$T_DIR/err")
if [ -n "$runs" ] && [ "$runs" -gt 1000 ]; then
	pass "fuzz-nbd ran $runs inputs"
else
	fail "fuzz-nbd ran more than 1000 inputs" "runs: '$runs'" "$(tail -c 600 "$T_DIR/err")"
fi
for a in "$T_DIR"/crash-* "$T_DIR"/leak-* "$T_DIR"/timeout-*; do
	[ -e "$a" ] && fail "no fuzz artifact" "$a: $(od -An -tx1 "$a" | head -4)"
done
done_testing
