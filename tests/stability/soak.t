#!/bin/sh
# Description: the soak. For SOAK_SECONDS (60 by default; `make soak
# DURATION=S` for any length) stabled serves three exports while, all at
# once:
#  - a consistent writer rewrites blocks of one (vblocks rewrite), and
#    nbdcopy (4 connections) and qemu-img convert copy it over and over;
#    every copy is checked block by block (vblocks check);
#  - a corrupting writer puts garbage into 4 blocks of another, and
#    qemu-io reads every block of it with a pattern check;
#  - a third export nobody writes is copied with nbdcopy and compared;
#  - the buffer attackers (test-buffer-attacks) run again and again.
# Checked: no unverified byte delivered (no torn block, no pattern
# failure, no wrong copy), reads fail only on the corrupted blocks (or,
# on the rewritten export, transiently), no crash, the daemon's file
# descriptors back to where they started once clients leave, and its
# RSS, sampled every 2 s, not growing between the first and the last
# third of the run. The attack x backend table goes to $SOAK_REPORT.
. "$(dirname "$0")/lib.sh"
need nbdcopy qemu-img qemu-io python3

TESTS=$STABLE_BIN/../tests
VBLOCKS=$TESTS/vblocks
ATTACKS=$TESTS/test-buffer-attacks
STABLED=${SOAK_STABLED:-$STABLED}
seconds=${SOAK_SECONDS:-60}
report=${SOAK_REPORT:-$T_DIR/soak-report.md}
bs=4096
cw_blocks=2048
cor_blocks=512
bad="5 77 130 201"
# RSS may grow this much (KiB) from the first third to the last: caches
# settling, not a leak (ASan builds keep a quarantine of freed memory)
rss_slack=${SOAK_RSS_SLACK_KB:-32768}

# --- images -------------------------------------------------------------------
"$VBLOCKS" gen "$T_DIR/cw.src" $cw_blocks $bs
mkimg "$T_DIR/cw.src" "$T_DIR/cw.stable" -b $bs -p 8
pattern_source "$T_DIR/cor.src" $cor_blocks $bs
mkimg "$T_DIR/cor.src" "$T_DIR/cor.stable" -b $bs
random_file "$T_DIR/still.src" $((16 * 1024 * 1024))
mkimg "$T_DIR/still.src" "$T_DIR/still.stable" -p 4
cor_doff=$(info_field "$T_DIR/cor.stable" "data offset")

# an ASan build holds freed memory in quarantine (256 MiB by default),
# which would read as growth: keep it small so RSS means what it says
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64" \
	start_server "$T_DIR/cw.stable" "$T_DIR/cor.stable" "$T_DIR/still.stable" || done_testing
backend=$(sed -n 's/.*backend \([a-z-]*\).*/\1/p' "$LOG" | head -1)
sleep 1
fd_base=$(ls /proc/$SPID/fd | wc -l)
rss_of() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' /proc/$SPID/status 2>/dev/null; }
rss_base=$(rss_of)
end=$(($(date +%s) + seconds))
running() { [ "$(date +%s)" -lt "$end" ]; }

# --- writers ------------------------------------------------------------------
"$VBLOCKS" rewrite "$T_DIR/cw.stable" "$seconds" 300 > "$T_DIR/cw-writer" &
pids=$!
(
	n=0
	while running; do
		for b in $bad; do
			head -c $bs /dev/urandom | dd of="$T_DIR/cor.stable" bs=$bs \
				seek=$((cor_doff / bs + b)) conv=notrunc status=none
			n=$((n + 1))
		done
		sleep 0.05
	done
	echo "$n" > "$T_DIR/cor-writes"
) &
pids="$pids $!"

# --- clients ------------------------------------------------------------------
# copy_loop NAME CLIENT EXPORT: copies and checks until the end; counts in
# $T_DIR/NAME.{copies,failed,torn}
copy_loop() {
	_copies=0 _failed=0 _torn=0
	while running; do
		_out=$T_DIR/$1.copy
		rm -f "$_out"
		if [ "$2" = nbdcopy ]; then
			timeout 120 nbdcopy --connections=4 "nbd+unix:///$3?socket=$SOCK" "$_out" \
				2>>"$T_DIR/$1.err"
		else
			timeout 120 qemu-img convert -f raw -O raw "nbd+unix:///$3?socket=$SOCK" \
				"$_out" 2>>"$T_DIR/$1.err"
		fi
		if [ $? -ne 0 ]; then
			_failed=$((_failed + 1))
			continue
		fi
		_copies=$((_copies + 1))
		if [ "$3" = still ]; then
			cmp -s "$_out" "$T_DIR/still.src" || _torn=$((_torn + 1))
		else
			"$VBLOCKS" check "$_out" $bs >/dev/null 2>>"$T_DIR/$1.err" ||
				_torn=$((_torn + 1))
		fi
	done
	echo "$_copies" > "$T_DIR/$1.copies"
	echo "$_failed" > "$T_DIR/$1.failed"
	echo "$_torn" > "$T_DIR/$1.torn"
}
copy_loop cw-nbdcopy nbdcopy cw &
pids="$pids $!"
copy_loop cw-qemu-img qemu-img cw &
pids="$pids $!"
copy_loop still-nbdcopy nbdcopy still &
pids="$pids $!"

(
	: > "$T_DIR/cor-reads"
	while running; do
		pattern_read cor $cor_blocks $bs >> "$T_DIR/cor-reads"
	done
) &
pids="$pids $!"

(
	n=0 bad_runs=0
	while running; do
		"$ATTACKS" --report "$T_DIR/attacks.$n.md" > "$T_DIR/attacks.out" 2>&1 ||
			{ bad_runs=$((bad_runs + 1)); cp "$T_DIR/attacks.out" "$T_DIR/attacks.failed"; }
		n=$((n + 1))
		sleep 0.5
	done
	echo "$n $bad_runs" > "$T_DIR/attack-runs"
) &
pids="$pids $!"

# --- the sampler --------------------------------------------------------------
: > "$T_DIR/samples"
while running; do
	rss=$(rss_of)
	fds=$(ls /proc/$SPID/fd 2>/dev/null | wc -l)
	echo "$(date +%s) ${rss:-0} $fds" >> "$T_DIR/samples"
	sleep 2
done
for p in $pids; do
	wait "$p"
done
sleep 1
fd_end=$(ls /proc/$SPID/fd 2>/dev/null | wc -l)
rss_end=$(rss_of)

# --- checks -------------------------------------------------------------------
kill -0 "$SPID" 2>/dev/null
ok $? "stabled is alive after ${seconds}s of soak"
cw_copies=$(($(cat "$T_DIR/cw-nbdcopy.copies") + $(cat "$T_DIR/cw-qemu-img.copies")))
cw_failed=$(($(cat "$T_DIR/cw-nbdcopy.failed") + $(cat "$T_DIR/cw-qemu-img.failed")))
cw_torn=$(($(cat "$T_DIR/cw-nbdcopy.torn") + $(cat "$T_DIR/cw-qemu-img.torn")))
cw_rewrites=$(sed -n 's/^rewrites //p' "$T_DIR/cw-writer")
[ "$cw_copies" -ge 1 ]
ok $? "the rewritten export was copied $cw_copies times ($cw_failed transient failures)"
is "$cw_torn" 0 "no copy of the rewritten export held a torn block"
is "$(cat "$T_DIR/still-nbdcopy.torn")" 0 \
	"every copy of the untouched export was right ($(cat "$T_DIR/still-nbdcopy.copies") copies)"
is "$(cat "$T_DIR/still-nbdcopy.failed")" 0 "no copy of the untouched export failed"
wrong=$(grep -c 'Pattern verification failed' "$T_DIR/cor-reads")
is "$wrong" 0 "no read of the corrupted export delivered garbage"
cor_fail=$(grep -c 'read failed' "$T_DIR/cor-reads")
passes=$(grep -c '^read 4096/4096 bytes at offset 0$' "$T_DIR/cor-reads")
# the blocks that never once read right are the corrupted ones, and no
# pass failed more reads than there are corrupted blocks
never=$(sed -n 's/^read 4096\/4096 bytes at offset \([0-9]*\)$/\1/p' "$T_DIR/cor-reads" |
	sort -n | uniq | awk -v n=$cor_blocks -v bs=$bs '
	{ seen[$1 / bs] = 1 } END { for (b = 0; b < n; b++) if (!(b in seen)) printf " %d", b }')
is "$never" " $(echo $bad)" "qemu-io: the blocks that never read right are exactly the corrupted ones"
[ "$passes" -ge 1 ] && [ "$cor_fail" -le $((passes * 4)) ] && [ "$cor_fail" -ge "$passes" ]
ok $? "qemu-io: $passes passes, $cor_fail failed reads: the 4 blocks each pass, nothing else"
like "$LOG" "block 77 \\(bytes 315392-" "the log names a corrupted block"
read -r attack_runs attack_bad < "$T_DIR/attack-runs"
is "$attack_bad" 0 "the buffer attackers ran $attack_runs times, every run as expected"
[ -f "$T_DIR/attacks.failed" ] && diag "$(tail -20 "$T_DIR/attacks.failed")"

is "$fd_end" "$fd_base" "the daemon's descriptors are back to $fd_base once clients left"
n=$(wc -l < "$T_DIR/samples")
third=$((n / 3))
rss_first=$(head -n "$third" "$T_DIR/samples" | awk 'm < $2 { m = $2 } END { print m + 0 }')
rss_last=$(tail -n "$third" "$T_DIR/samples" | awk 'm < $2 { m = $2 } END { print m + 0 }')
fd_max=$(awk 'm < $3 { m = $3 } END { print m + 0 }' "$T_DIR/samples")
diag "RSS peak first third ${rss_first} KiB, last third ${rss_last} KiB; fds at rest $fd_base, peak $fd_max ($n samples)"
[ "$third" -ge 1 ] && [ "$rss_last" -le $((rss_first + rss_slack)) ]
ok $? "RSS under load did not grow: peak ${rss_first} KiB, then ${rss_last} KiB"
[ "${rss_end:-0}" -le $((rss_base + rss_slack)) ]
ok $? "RSS at rest: ${rss_base} KiB before the clients, ${rss_end} KiB after"

trun 60 nbdcopy "nbd+unix:///cw?socket=$SOCK" "$T_DIR/final"
"$STABLE_BIN/stable-cat" "$T_DIR/cw.stable" > "$T_DIR/fresh"
same_file "$T_DIR/final" "$T_DIR/fresh" "after the soak the rewritten export reads as the image now is"
stop_server

# --- the report ---------------------------------------------------------------
# changed N: the bytes-changed cell of a writer row, whose N successes
# (torn copies, garbage reads) are counted by block, not by byte
changed() { if [ "$1" -eq 0 ]; then echo 0; else echo "in $1 deliveries"; fi; }
{
	echo "Soak of ${seconds} s: stabled (backend ${backend:-?}) with nbdcopy, qemu-img and qemu-io"
	echo "clients. Server RSS: ${rss_base} KiB at rest before, peak ${rss_first} KiB in the first"
	echo "third and ${rss_last} KiB in the last, ${rss_end} KiB at rest after. Descriptors:"
	echo "$fd_base at rest before, $fd_end after, $fd_max at most."
	echo
	echo "| attack or writer | backend | attempts | attacks that succeeded | bytes changed | errors seen |"
	echo "|---|---|---:|---:|---:|---|"
	echo "| consistent writer, rewriting blocks in place (copies by nbdcopy, qemu-img) | stabled/${backend:-?} | $cw_rewrites | $cw_torn | $(changed "$cw_torn") | $cw_failed of $((cw_copies + cw_failed)) copies failed while a block was mid-update |"
	echo "| corrupting writer, garbage into 4 blocks (qemu-io reads) | stabled/${backend:-?} | $(cat "$T_DIR/cor-writes") | $wrong | $(changed "$wrong") | $cor_fail reads failed with EIO, all on the 4 blocks |"
	cat "$T_DIR"/attacks.*.md | awk -F'|' '
		/^\| / && $2 != " attack " && $2 !~ /^-/ {
			k = $2 "|" $3
			if (!(k in att)) order[n++] = k
			att[k] += $4; won[k] += $5; bytes[k] += $6
			gsub(/^ +| +$/, "", $7); err[k] = $7
		}
		END {
			for (i = 0; i < n; i++) {
				k = order[i]
				printf "|%s| %d | %d | %d | %s |\n", k, att[k], won[k], bytes[k], err[k]
			}
		}'
} > "$report"
diag "report in $report"
done_testing
