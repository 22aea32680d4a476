#!/bin/sh
# Description: a consistent writer (tests/stability/vblocks.c) rewrites
# blocks of an image in place, then their parity and checksums, then the
# header (docs/format.md, "Updating an image in place"), not atomically,
# while stabled serves the image to real NBD clients (nbdcopy over four
# connections, qemu-img convert) copying the whole export again and
# again. Each block of the image carries its own version, so a copy shows
# any torn block.
#  - Every copy that succeeds holds only whole versions of every block;
#    copies may fail while a block is between steps (a transient error,
#    counted), never deliver a torn one.
#  - The newest version delivered moves on while the writer runs: stabled
#    serves the updates (it reloads the checksum table), not only what it
#    opened.
#  - Once the writer stops, a copy succeeds and equals the image as
#    stable-cat reads it afresh.
#  - Negative control: nbdkit serving the image's data region raw (no
#    checksums) under the same writer delivers torn blocks, or if the
#    machine is too quick to catch one, at least the same check passes on
#    it: the torn count comes from the check, not from the server.
. "$(dirname "$0")/lib.sh"
need nbdcopy qemu-img

VBLOCKS=$STABLE_BIN/../tests/vblocks
bs=4096
nblocks=2048
seconds=${CW_SECONDS:-8}

"$VBLOCKS" gen "$T_DIR/src" $nblocks $bs
mkimg "$T_DIR/src" "$T_DIR/cw.stable" -b $bs -p 8
start_server "$T_DIR/cw.stable" || done_testing

"$VBLOCKS" rewrite "$T_DIR/cw.stable" "$seconds" 300 > "$T_DIR/writer.out" &
writer=$!
copies=0 failed=0 torn=0 newest=0 moved=0
while kill -0 $writer 2>/dev/null; do
	for client in nbdcopy qemu-img; do
		rm -f "$T_DIR/copy"
		if [ $client = nbdcopy ]; then
			timeout 60 nbdcopy --connections=4 "$URI" "$T_DIR/copy" 2>>"$T_DIR/client.err"
		else
			timeout 60 qemu-img convert -f raw -O raw "$URI" "$T_DIR/copy" \
				2>>"$T_DIR/client.err"
		fi
		if [ $? -ne 0 ]; then
			failed=$((failed + 1))
			continue
		fi
		copies=$((copies + 1))
		if ! "$VBLOCKS" check "$T_DIR/copy" $bs > "$T_DIR/check" 2>>"$T_DIR/check.err"; then
			torn=$((torn + 1))
		fi
		v=$(sed -n 's/.* newest \([0-9]*\)$/\1/p' "$T_DIR/check")
		if [ "${v:-0}" -gt "$newest" ]; then
			[ "$newest" -gt 0 ] && moved=$((moved + 1))
			newest=$v
		fi
	done
done
wait $writer
diag "$(cat "$T_DIR/writer.out"); $copies copies, $failed failed (transient), $torn torn"
[ "$copies" -ge 2 ]
ok $? "clients copied the export $copies times while the writer ran"
is "$torn" 0 "no copy held a torn or misplaced block"
[ "$moved" -ge 1 ]
ok $? "the copies saw newer versions as the writer went on"

trun 60 nbdcopy "$URI" "$T_DIR/final"
exits "a copy after the writer stopped" 0
"$STABLE_BIN/stable-cat" "$T_DIR/cw.stable" > "$T_DIR/fresh"
same_file "$T_DIR/final" "$T_DIR/fresh" "it equals the image read afresh"
kill -USR1 "$SPID"
sleep 0.5
like "$LOG" "table_reloads=[1-9]" "the daemon's counters show checksum table reloads"
stop_server

# --- a writer that leaves blocks torn for a while ---------------------------
# copy_while_tearing URI: copies the export while the writer writes each
# block in two halves, 20 ms apart; prints how many copies held a torn block
copy_while_tearing() {
	"$VBLOCKS" rewrite "$T_DIR/cw.stable" 4 20000 halves > /dev/null &
	_w=$!
	_torn=0
	while kill -0 $_w 2>/dev/null; do
		rm -f "$T_DIR/copy"
		timeout 60 nbdcopy "$1" "$T_DIR/copy" 2>/dev/null || continue
		"$VBLOCKS" check "$T_DIR/copy" $bs >/dev/null 2>&1 || _torn=$((_torn + 1))
	done
	wait $_w
	echo $_torn
}

start_server "$T_DIR/cw.stable" || done_testing
is "$(copy_while_tearing "$URI")" 0 "stabled: no copy holds a block torn on disk"
stop_server

if command -v nbdkit >/dev/null 2>&1; then
	doff=$(info_field "$T_DIR/cw.stable" "data offset")
	rm -f "$T_DIR/kit.sock"
	nbdkit -r -f -U "$T_DIR/kit.sock" --filter=offset file "$T_DIR/cw.stable" \
		offset=$doff range=$((nblocks * bs)) 2>>"$T_DIR/kit.err" &
	kit=$!
	i=0
	while [ ! -S "$T_DIR/kit.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kit_torn=$(copy_while_tearing "nbd+unix:///?socket=$T_DIR/kit.sock")
	kill $kit 2>/dev/null
	wait $kit 2>/dev/null
	[ "$kit_torn" -ge 1 ]
	ok $? "negative control: nbdkit without checksums sent torn blocks ($kit_torn copies)"
else
	skip "negative control: nbdkit is not installed"
fi
done_testing
