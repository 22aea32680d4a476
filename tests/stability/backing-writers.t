#!/bin/sh
# Description: writers aimed at the backing file while stabled serves it
# to a real NBD client (qemu-io). Every block of the source holds one byte
# value, so qemu-io's `read -P` checks each whole block it receives.
#  - A corrupting writer puts garbage into a set of blocks, without
#    touching the checksums, while the client reads every block over and
#    over: no read ever returns a wrong byte (no pattern failure), and the
#    only reads that fail are those of the corrupted blocks.
#  - Negative control: the same writer against nbdkit serving a raw copy
#    of the source (no checksums) does deliver wrong bytes, which shows
#    the pattern check catches what it claims to catch.
#  - The backing file of one export is truncated while it is served: reads
#    past the cut fail cleanly, the daemon does not crash, and another
#    export goes on serving right bytes.
. "$(dirname "$0")/lib.sh"
need qemu-io python3

bs=4096
nblocks=256
src=$T_DIR/src.raw
pattern_source "$src" $nblocks $bs
mkimg "$src" "$T_DIR/victim.stable"
mkimg "$src" "$T_DIR/cut.stable"
mkimg "$src" "$T_DIR/control.stable"
doff=$(info_field "$T_DIR/victim.stable" "data offset")
start_server "$T_DIR/victim.stable" "$T_DIR/cut.stable" "$T_DIR/control.stable" ||
	done_testing

# read_all EXPORT OUT: every block once, through one qemu-io connection
read_all() {
	pattern_read "$1" $nblocks $bs > "$2"
}

# --- corrupting writer -------------------------------------------------------
bad="5 77 130 201"
(
	end=$(($(date +%s) + 6))
	while [ "$(date +%s)" -lt "$end" ]; do
		for b in $bad; do
			head -c $bs /dev/urandom | dd of="$T_DIR/victim.stable" bs=$bs \
				seek=$((doff / bs + b)) conv=notrunc status=none
		done
		sleep 0.05
	done
) &
writer=$!
passes=0
: > "$T_DIR/all-reads"
while kill -0 $writer 2>/dev/null && [ $passes -lt 20 ]; do
	read_all victim "$T_DIR/pass"
	cat "$T_DIR/pass" >> "$T_DIR/all-reads"
	passes=$((passes + 1))
done
wait $writer
read_all victim "$T_DIR/pass"	# once more, after the writer stopped
cat "$T_DIR/pass" >> "$T_DIR/all-reads"
passes=$((passes + 1))

[ $passes -ge 2 ]
ok $? "the client read all $nblocks blocks $passes times while the writer ran"
wrong=$(grep -c 'Pattern verification failed' "$T_DIR/all-reads")
is "$wrong" 0 "no read delivered a wrong byte (qemu-io pattern check)"
# the offsets that never read successfully are exactly the corrupted blocks
good=$(sed -n 's/^read [0-9]*\/[0-9]* bytes at offset \([0-9]*\)$/\1/p' "$T_DIR/pass" | sort -n | uniq)
failed=""
b=0
while [ $b -lt $nblocks ]; do
	echo "$good" | grep -qx "$((b * bs))" || failed="$failed $b"
	b=$((b + 1))
done
is "$failed" " $(echo $bad)" "the last pass fails exactly the corrupted blocks"
errs=$(grep -c 'read failed' "$T_DIR/all-reads")
[ "$errs" -ge 4 ]
ok $? "reads of corrupted blocks failed ($errs failures over $passes passes)"
for b in $bad; do
	like "$LOG" "block $b \\(bytes $((b * bs))-" "the log names corrupted block $b"
done

# --- truncation while served -------------------------------------------------
truncate -s $((doff + 100 * bs)) "$T_DIR/cut.stable"
read_all cut "$T_DIR/cut-reads"
is "$(grep -c 'Pattern verification failed' "$T_DIR/cut-reads")" 0 \
	"after truncation no read of the cut export delivers a wrong byte"
cutgood=$(grep -c '^read 4096/4096 bytes' "$T_DIR/cut-reads")
is "$cutgood" 100 "the 100 blocks before the cut still read"
kill -0 "$SPID" 2>/dev/null
ok $? "the daemon is still running"
read_all control "$T_DIR/control-reads"
is "$(grep -c '^read 4096/4096 bytes' "$T_DIR/control-reads")" $nblocks \
	"the control export still serves every block right"
stop_server

# --- negative control: no verification, same writer ---------------------------
if command -v nbdkit >/dev/null 2>&1; then
	cp "$src" "$T_DIR/raw-victim"
	rm -f "$T_DIR/kit.sock"
	nbdkit -r -f -U "$T_DIR/kit.sock" file "$T_DIR/raw-victim" &
	kit=$!
	i=0
	while [ ! -S "$T_DIR/kit.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	for b in $bad; do
		head -c $bs /dev/urandom | dd of="$T_DIR/raw-victim" bs=$bs seek=$b \
			conv=notrunc status=none
	done
	SOCK=$T_DIR/kit.sock read_all "" "$T_DIR/kit-reads"
	kill $kit 2>/dev/null
	wait $kit 2>/dev/null
	is "$(grep -c 'Pattern verification failed' "$T_DIR/kit-reads")" 4 \
		"negative control: nbdkit without checksums delivers the 4 garbage blocks"
else
	skip "negative control: nbdkit is not installed"
fi
done_testing
