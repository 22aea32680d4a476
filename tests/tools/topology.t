#!/bin/sh
# Description: stable-info's probes beyond filesystems: a partition
# table inside the data is reported (PTTYPE, and the PTUUID blkid prints
# for the raw file), and for data on a block device the topology comes
# from libblkid (a loop device with 4096-byte sectors says 4096). The
# loop device part needs root and a free loop device, and skips without.
. "$(dirname "$0")/lib.sh"

# --- a partition table inside the data: an MBR written by hand (disk
# signature deadbeef, one Linux partition from sector 2048 to the end)
disk=$T_DIR/disk.raw
truncate -s 16M "$disk"
# shellcheck disable=SC2059 # the octal escapes are the point
wr() { printf "$2" | dd of="$disk" bs=1 seek="$1" conv=notrunc status=none; }
wr 440 '\357\276\255\336'
wr 446 '\000\040\041\000\203\376\377\377\000\010\000\000\000\170\000\000'
wr 510 '\125\252'
if command -v blkid >/dev/null 2>&1; then
	is "$(blkid -p -o value -s PTUUID "$disk")" deadbeef "blkid reads the hand-made MBR"
fi
for mode in inline sidecar compressed; do
	case $mode in
	inline) opt= ;;
	sidecar) opt=-s ;;
	compressed) opt=-z ;;
	esac
	# shellcheck disable=SC2086
	"$MKIMAGE" -q $opt "$disk" "$T_DIR/disk.$mode" >/dev/null
	run "$INFO" "$T_DIR/disk.$mode"
	exits "$mode image of an MBR disk: stable-info" 0
	like "$T_DIR/out" '^  PTTYPE=dos$' "$mode: PTTYPE=dos"
	like "$T_DIR/out" '^  PTUUID=deadbeef$' "$mode: PTUUID is the disk signature"
done

# --- topology of a block device, through a loop device
if [ "$(id -u)" -ne 0 ] || ! command -v losetup >/dev/null 2>&1; then
	skip "loop device topology: needs root and losetup"
	done_testing
fi
back=$T_DIR/loop.back
truncate -s 8M "$back"
loop=$(losetup -f --show -b 4096 "$back" 2>"$T_DIR/losetup.err") || loop=
if [ -z "$loop" ] || [ ! -b "$loop" ]; then
	skip "loop device topology: losetup failed: $(cat "$T_DIR/losetup.err")"
	done_testing
fi
trap 'losetup -d "$loop"; rm -rf "$T_DIR"' EXIT
"$MKIMAGE" -q -s "$loop" "$T_DIR/loop.manifest" >/dev/null
run "$INFO" "$T_DIR/loop.manifest"
exits "sidecar on $loop: stable-info" 0
like "$T_DIR/out" "^topology: +blkid $loop\$" "topology comes from libblkid for a block device"
like "$T_DIR/out" '^  logical sector size: +4096$' "logical sector size of a 4096-byte-sector loop device"
like "$T_DIR/out" '^  physical sector size: +4096$' "physical sector size"
run "$INFO" --json "$T_DIR/loop.manifest"
like "$T_DIR/out" '"logical_sector_size": 4096' "--json: logical_sector_size"

done_testing
