#!/bin/sh
# Description: the kernel's own NBD client reads an ext4 file system that
# stabled serves from kmbuf-ro buffers, and gets exactly the original bytes
# or EIO, never anything else.
#
# Runs inside the VM (kernel/vm-test.sh, busybox sh) on the patched kernel:
# Debian's nbd-client attaches /dev/nbdN to a stabled export over a Unix
# socket (parity: TCP on 127.0.0.1, the other way the kernel's client
# talks), the file system is mounted read-only and every file compared
# with the originals that tests/kernel/nbd-fixture.sh left on the test
# disk (/mnt/nbd). Three exports, one stabled each (every worker holds a
# kmbuf reader per export, so one stabled per image keeps the VM's memory
# small):
#
#   plain    the device is the raw file system byte for byte, read-only
#            because stabled says so (attached without -readonly), a write
#            fails, the device ends where the file system does
#   parity   one damaged block, rebuilt from parity: all files equal,
#            stabled's log names the block as rebuilt
#   corrupt  the same block damaged, no parity: reading big.bin fails with
#            EIO after a correct prefix, the other files compare equal,
#            stabled's log names the block
#
# stabled must run with kmbuf-ro (--require-guarantee=kernel-ro, and its
# start-up line is checked) and exit 0 on SIGTERM. Every check prints
# KTEST-START/KTEST-RESULT lines of its own, so the harness lists and
# judges each; the script exits 1 if any failed.

fix=${NBD_FIXTURE:-/mnt/nbd}
work=/tmp/nbd-client
nbd_client=/usr/sbin/nbd-client   # Debian's, not a busybox applet
sock=$work/stabled.sock
port=10809
fails=0

say() { echo "nbd-client.sh: $*"; }

# check NAME CMD...: one harness-visible result per check (its variables
# have their own prefix: busybox sh functions share one namespace)
check() {
	ck_name=nbd-client:$1
	shift
	echo "KTEST-START $ck_name"
	"$@"
	ck_rc=$?
	echo "KTEST-RESULT $ck_name $ck_rc"
	[ "$ck_rc" = 0 ] || fails=$((fails + 1))
	return "$ck_rc"
}

prerequisites() {
	[ -f "$fix/nbd.env" ] || { say "no fixture at $fix (nbd-fixture.sh)"; return 1; }
	[ -x "$nbd_client" ] || { say "no $nbd_client in the initramfs"; return 1; }
	"$nbd_client" -V 2>&1 | grep -q 'from nbd 3\.' ||
		{ say "$nbd_client is not Debian's nbd-client: $("$nbd_client" -V 2>&1)"; return 1; }
	command -v stabled > /dev/null || { say "no stabled in PATH"; return 1; }
	[ -b /dev/nbd2 ] || { say "no /dev/nbd0..2 (CONFIG_BLK_DEV_NBD, devtmpfs)"; return 1; }
	# the guest's /init leaves the loopback interface down
	ip link set lo up || { say "ip link set lo up failed"; return 1; }
}

# stabled_start EXPORT unix|tcp: serve $fix/EXPORT.img in the foreground,
# logging to $work/EXPORT.log; waits until it listens and checks that it
# runs on kmbuf-ro, the kernel's read-only buffers
stabled_start() {
	exp=$1 via=$2
	log=$work/$exp.log
	rm -f "$sock"
	if [ "$via" = unix ]; then
		set -- -U "$sock"
	else
		set -- -b 127.0.0.1 -p "$port"
	fi
	stabled -f "$@" --require-guarantee=kernel-ro "$exp=$fix/$exp.img" 2> "$log" &
	pid=$!
	i=0
	until grep -q 'listening on' "$log"; do
		if ! kill -0 "$pid" 2> /dev/null; then
			say "stabled exited before listening:"; cat "$log"; return 1
		fi
		i=$((i + 1))
		[ "$i" -lt 600 ] || { say "stabled not listening after 60 s:"; cat "$log"; return 1; }
		sleep 0.1
	done
	grep 'backend kmbuf-ro, guarantee kernel-ro' "$log" ||
		{ say "stabled does not serve from kmbuf-ro:"; cat "$log"; return 1; }
	grep 'listening on' "$log"
}

# stabled_stop: SIGTERM must end it with status 0 (within 30 s)
stabled_stop() {
	kill -TERM "$pid"
	# its last log line says it is done (kill -0 cannot: the shell may not
	# have reaped it yet), and wait then gives the status
	i=0
	until grep -q ': stopped$' "$log"; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || break
		sleep 0.1
	done
	if [ "$i" -ge 300 ]; then
		say "stabled still running 30 s after SIGTERM"; kill -KILL "$pid"; wait "$pid"
		return 1
	fi
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] || { say "stabled exited $rc after SIGTERM:"; cat "$log"; return 1; }
}

# attach DEV EXPORT [-readonly]: the kernel client over stabled's socket,
# the one stabled_start chose (nbd-client configures the device over
# netlink and returns)
attach() {
	dev=$1 exp=$2
	shift 2
	if [ "$via" = unix ]; then
		set -- -unix "$sock" "$dev" "$@"
	else
		set -- 127.0.0.1 "$port" "$dev" "$@"
	fi
	"$nbd_client" "$@" -name "$exp" -block-size 4096 -timeout 60 ||
		{ say "nbd-client $* -name $exp failed"; return 1; }
	size=$(blockdev --getsize64 "$dev")
	[ "$size" = "$FS_SIZE" ] ||
		{ say "$dev is $size bytes, the file system $FS_SIZE"; return 1; }
}

# detach DEV: nbd-client -d, then the device reports no connection
detach() {
	"$nbd_client" -d "$1" || { say "nbd-client -d $1 failed"; return 1; }
	i=0
	while "$nbd_client" -c "$1" > /dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || { say "$1 still connected 10 s after -d"; return 1; }
		sleep 0.1
	done
}

# the raw device, before any file system touches it
device_checks() {
	dev=$1
	ro=$(blockdev --getro "$dev")
	[ "$ro" = 1 ] || { say "$dev not read-only (getro $ro) though stabled flags it so"; return 1; }
	sum=$(sha256sum < "$dev" | cut -d' ' -f1)
	[ "$sum" = "$FS_SHA256" ] ||
		{ say "$dev reads as sha256 $sum, the file system is $FS_SHA256"; return 1; }
	# at the device's end a read returns nothing (EOF)
	n=$(dd if="$dev" bs=4096 skip=$((FS_SIZE / 4096)) count=1 2> /dev/null | wc -c)
	[ "$n" = 0 ] || { say "read past the end of $dev gave $n bytes"; return 1; }
	if dd if=/dev/zero of="$dev" bs=4096 count=1 conv=notrunc 2> "$work/write.err"; then
		say "a write to $dev succeeded"; return 1
	fi
	say "write refused as it must be: $(cat "$work/write.err")"
	sum=$(sha256sum < "$dev" | cut -d' ' -f1)
	[ "$sum" = "$FS_SHA256" ] || { say "$dev changed after the refused write"; return 1; }
}

mount_ro() {
	mkdir -p "$2"
	mount -o ro -t ext4 "$1" "$2" || { say "mount -o ro -t ext4 $1 failed"; return 1; }
}

# compare_files MOUNTPOINT [SKIP]: the same files, byte for byte
compare_files() {
	mnt=$1 skip=${2:-}
	(cd "$fix/files" && find . -type f | sort) > "$work/want.list"
	(cd "$mnt" && find . -type f | sort) > "$work/got.list"
	cmp "$work/want.list" "$work/got.list" > /dev/null ||
		{ say "the file lists differ:"; diff "$work/want.list" "$work/got.list"; return 1; }
	bad=0 n=0
	while read -r f; do
		[ "$f" = "./$skip" ] && continue
		n=$((n + 1))
		cmp "$fix/files/$f" "$mnt/$f" || bad=1
	done < "$work/want.list"
	say "$n files compared"
	return "$bad"
}

# the damaged file: EIO, and what came before it is the original's prefix
damaged_file_fails() {
	f=$1/$CORRUPT_FILE
	orig=$fix/files/$CORRUPT_FILE
	for try in 1 2; do
		if dd if="$f" of="$work/partial" bs=4096 2> "$work/read.err"; then
			say "read $try of $f succeeded though its block $CORRUPT_BLOCK is damaged"
			return 1
		fi
		grep -q 'Input/output error' "$work/read.err" ||
			{ say "read $try of $f failed, but not with EIO: $(cat "$work/read.err")"; return 1; }
		got=$(wc -c < "$work/partial")
		[ "$got" -le "$CORRUPT_FILE_OFFSET" ] ||
			{ say "read $try gave $got bytes, past the damaged block at $CORRUPT_FILE_OFFSET"; return 1; }
		head -c "$got" "$orig" | cmp - "$work/partial" ||
			{ say "read $try: the $got bytes before the error differ from the original"; return 1; }
		say "read $try: EIO after $got correct bytes (damaged block at file offset $CORRUPT_FILE_OFFSET)"
	done
	# the blocks well after the damaged one still read, and right
	skip=$((CORRUPT_FILE_OFFSET / 4096 + 256))
	dd if="$f" bs=4096 skip="$skip" 2> "$work/read.err" > "$work/tail" ||
		{ say "read of $f from block $skip failed: $(cat "$work/read.err")"; return 1; }
	dd if="$orig" bs=4096 skip="$skip" 2> /dev/null | cmp - "$work/tail" ||
		{ say "$f from block $skip differs from the original"; return 1; }
}

log_has() {
	grep "$1" "$log" || { say "stabled's log lacks '$1':"; cat "$log"; return 1; }
}

log_clean() {
	if grep -E -q 'mismatch|EIO|failed' "$log"; then
		say "stabled's log reports trouble for an intact image:"; cat "$log"; return 1
	fi
}

# scenario EXPORT DEV CHECK...: start, attach, mount; the checks; tear down
# (tear-down runs whatever failed, so the next export finds a clean state)
cleanup() {
	umount "$work/mnt-$1" 2> /dev/null
	"$nbd_client" -d "$2" > /dev/null 2>&1
	kill -TERM "$pid" 2> /dev/null && wait "$pid"
}

run_plain() {
	check plain-stabled-start stabled_start plain unix || return
	check plain-attach attach /dev/nbd0 plain || { cleanup plain /dev/nbd0; return; }
	check plain-device device_checks /dev/nbd0
	check plain-mount mount_ro /dev/nbd0 "$work/mnt-plain" || { cleanup plain /dev/nbd0; return; }
	check plain-files compare_files "$work/mnt-plain"
	check plain-umount umount "$work/mnt-plain"
	check plain-detach detach /dev/nbd0
	check plain-log-clean log_clean
	check plain-stabled-stop stabled_stop
}

run_parity() {
	check parity-stabled-start stabled_start parity tcp || return
	check parity-attach attach /dev/nbd1 parity -readonly || { cleanup parity /dev/nbd1; return; }
	check parity-mount mount_ro /dev/nbd1 "$work/mnt-parity" || { cleanup parity /dev/nbd1; return; }
	check parity-files compare_files "$work/mnt-parity"
	check parity-log-rebuilt log_has \
		"export parity: block $CORRUPT_BLOCK (bytes [0-9-]*): checksum mismatch, rebuilt from parity"
	check parity-umount umount "$work/mnt-parity"
	check parity-detach detach /dev/nbd1
	check parity-stabled-stop stabled_stop
}

run_corrupt() {
	check corrupt-stabled-start stabled_start corrupt unix || return
	check corrupt-attach attach /dev/nbd2 corrupt -readonly || { cleanup corrupt /dev/nbd2; return; }
	check corrupt-mount mount_ro /dev/nbd2 "$work/mnt-corrupt" || { cleanup corrupt /dev/nbd2; return; }
	check corrupt-eio damaged_file_fails "$work/mnt-corrupt"
	check corrupt-other-files compare_files "$work/mnt-corrupt" "$CORRUPT_FILE"
	check corrupt-log-block log_has \
		"export corrupt: block $CORRUPT_BLOCK (bytes [0-9-]*): crc32c expected 0x[0-9a-f]*, found 0x[0-9a-f]*; cannot be verified"
	check corrupt-umount umount "$work/mnt-corrupt"
	check corrupt-detach detach /dev/nbd2
	check corrupt-stabled-stop stabled_stop
}

rm -rf "$work"
mkdir -p "$work"
if check prerequisites prerequisites; then
	# shellcheck source=/dev/null  # written by nbd-fixture.sh
	. "$fix/nbd.env"
	run_plain
	run_parity
	run_corrupt
fi
say "$fails check(s) failed"
[ "$fails" = 0 ]
