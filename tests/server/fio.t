#!/bin/sh
# Description: fio's nbd engine (libnbd) reads an export at queue depth 16
# and checks every block against the crc32c headers fio itself wrote into
# the data before it became an image (verify_only): sequential 64 KiB and
# random 4 KiB, over one connection and several jobs at once. A control
# image of other data must make the same verification fail.
. "$(dirname "$0")/lib.sh"
need fio
fio --enghelp=nbd >/dev/null 2>&1 || { echo "1..0 # SKIP this fio has no nbd engine"; exit 0; }

# fio writes its verification headers into a plain file first
for bs in 64k 4k; do
	fio --name=mk --filename="$T_DIR/fio-$bs.raw" --size=32M --rw=write --bs=$bs \
		--verify=crc32c --do_verify=0 --ioengine=psync --output=/dev/null \
		--verify_state_save=0
	mkimg "$T_DIR/fio-$bs.raw" "$T_DIR/seq$bs.stable"
done
random_file "$T_DIR/other.raw" 33554432
mkimg "$T_DIR/other.raw" "$T_DIR/other.stable"
start_server "$T_DIR/seq64k.stable" "$T_DIR/seq4k.stable" "$T_DIR/other.stable" || done_testing

# fio_verify EXPORT BS RW [more fio options]
fio_verify() {
	_e=$1 _bs=$2 _rw=$3
	shift 3
	trun 120 fio --name=v --ioengine=nbd --uri="nbd+unix:///$_e?socket=$SOCK" \
		--size=32M --bs="$_bs" --rw="$_rw" --verify=crc32c --verify_only=1 \
		--iodepth=16 --verify_fatal=1 --verify_state_save=0 "$@"
}

fio_verify seq64k 64k write
exits "fio verifies 32 MiB read sequentially in 64 KiB at QD16" 0
like "$T_DIR/out" "err= 0" "fio reports no error (sequential)"
like "$T_DIR/out" "io=32.0MiB" "fio read all 32 MiB (sequential)"

fio_verify seq4k 4k randwrite --randrepeat=1
exits "fio verifies 32 MiB read randomly in 4 KiB at QD16" 0
like "$T_DIR/out" "err= 0" "fio reports no error (random)"

fio_verify seq64k 64k write --numjobs=4 --group_reporting
exits "fio verifies with 4 jobs (4 connections) at once" 0

fio_verify other 64k write
if [ "$rc" -ne 0 ] || grep -q "verify: bad" "$T_DIR/out" "$T_DIR/err"; then
	pass "control: fio's verification fails on other data (status $rc)"
else
	fail "control: fio's verification fails on other data" "status 0"
fi
stop_server
done_testing
