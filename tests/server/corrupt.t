#!/bin/sh
# Description: a block that fails its checksum never reaches a client.
# Without parity, real clients (qemu-io, qemu-img, nbdcopy) fail on exactly
# that block while the blocks around it read fine, and the log names the
# export, the block and its bytes; with parity the same read succeeds with
# the original bytes and the log says the block was rebuilt. The counters
# (--stats-file, SIGUSR1) count the failures and the rebuild.
. "$(dirname "$0")/lib.sh"
need qemu-io qemu-img nbdcopy

bs=4096
bad=37					# the corrupted block
src=$T_DIR/src.raw
random_file "$src" 1048576		# 256 blocks
mkimg "$src" "$T_DIR/plain.stable"
mkimg "$src" "$T_DIR/par.stable" -p 4
for img in plain par; do
	doff=$(info_field "$T_DIR/$img.stable" "data offset")
	flip_bit "$T_DIR/$img.stable" $((doff + bad * bs + 100)) 3
done
start_server --stats-file "$T_DIR/stats" "$T_DIR/plain.stable" "$T_DIR/par.stable" ||
	done_testing
plain="nbd+unix:///plain?socket=$SOCK"
par="nbd+unix:///par?socket=$SOCK"

# qemu-io: the blocks before and after read, the bad one does not
trun 60 qemu-io -r -f raw -c "read 0 $((bad * bs))" "$plain"
exits "qemu-io read of blocks 0-$((bad - 1))" 0
trun 60 qemu-io -r -f raw -c "read $(((bad + 1) * bs)) $(((255 - bad) * bs))" "$plain"
exits "qemu-io read of blocks $((bad + 1))-255" 0
trun 60 qemu-io -r -f raw -c "read $((bad * bs)) $bs" "$plain"
like "$T_DIR/out" "Input/output error" "qemu-io read of block $bad fails with EIO"
trun 60 qemu-io -r -f raw -c "read $((bad * bs + 4000)) 200" "$plain"
like "$T_DIR/out" "Input/output error" "qemu-io read of 200 bytes straddling block $bad's end fails"
trun 60 qemu-io -r -f raw -c "read $(((bad - 1) * bs)) $((3 * bs))" "$plain"
like "$T_DIR/out" "Input/output error" "qemu-io read of blocks $((bad - 1))-$((bad + 1)) fails"

trun 120 qemu-img convert -f raw -O raw "$plain" "$T_DIR/plain.out"
if [ "$rc" -ne 0 ]; then pass "qemu-img convert fails (status $rc)"; else fail "qemu-img convert fails" "status 0"; fi
trun 120 qemu-img compare -f raw -F raw "$src" "$plain"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then pass "qemu-img compare fails with an error (status $rc)"
else fail "qemu-img compare fails with an error, not a verdict" "status $rc"; fi
trun 120 nbdcopy "$plain" "$T_DIR/plain.nbdcopy"
if [ "$rc" -ne 0 ]; then pass "nbdcopy fails (status $rc)"; else fail "nbdcopy fails" "status 0"; fi

like "$LOG" "export plain: block $bad \(bytes $((bad * bs))-$(((bad + 1) * bs - 1))\): crc32c expected 0x[0-9a-f]{8}, found 0x[0-9a-f]{8}; cannot be verified" \
	"the log names export plain, block $bad and its bytes"
others=$(grep -o 'export plain: block [0-9]*' "$LOG" | sort -u | grep -v "block $bad\$" | head -3)
is "$others" "" "no other block of plain is named in the log"
unlike "$LOG" "export par: .*cannot be verified" "no failure logged for par"

# with parity the same reads succeed with the original bytes
trun 60 qemu-io -r -f raw -c "read -P 0 0 0" -c "read $((bad * bs)) $bs" "$par"
exits "qemu-io read of block $bad with parity" 0
trun 120 qemu-img convert -f raw -O raw "$par" "$T_DIR/par.out"
exits "qemu-img convert with parity" 0
same_file "$T_DIR/par.out" "$src" "qemu-img convert with parity: the original bytes"
trun 120 qemu-img compare -f raw -F raw "$src" "$par"
exits "qemu-img compare with parity" 0
like "$LOG" "export par: block $bad \(bytes $((bad * bs))-[0-9]*\): checksum mismatch, rebuilt from parity" \
	"the log says block $bad of par was rebuilt"

kill -USR1 "$SPID"
i=0
while [ ! -s "$T_DIR/stats" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
vf=$(stat_value verify_failures)
rb=$(stat_value rebuilds)
re=$(stat_value read_errors)
if [ "${vf:-0}" -ge 2 ]; then pass "SIGUSR1: verify_failures=$vf"; else fail "SIGUSR1: verify_failures >= 2" "got '$vf'"; fi
if [ "${rb:-0}" -ge 1 ]; then pass "SIGUSR1: rebuilds=$rb"; else fail "SIGUSR1: rebuilds >= 1" "got '$rb'"; fi
if [ "${re:-0}" -ge 3 ]; then pass "SIGUSR1: read_errors=$re"; else fail "SIGUSR1: read_errors >= 3" "got '$re'"; fi
like "$LOG" "stats: connections=[0-9]+ .*verify_failures=[1-9]" "SIGUSR1 logs the counters"
stop_server
done_testing
