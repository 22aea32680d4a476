#!/bin/bash
# Host side of nbd-client.sh: the files that test serves to the VM's own
# NBD client. A directory of generated files of awkward sizes becomes a
# 32 MiB ext4 file system (mkfs.ext4 -d, no mounting), which stable-mkimage
# turns into three images:
#
#   plain.img    as made, no parity: every file must read back equal
#   parity.img   parity every 8 blocks, one data block of big.bin damaged:
#                stabled must rebuild it, so every file still reads equal
#   corrupt.img  no parity, the same block damaged: big.bin must fail with
#                EIO at that block (never wrong bytes), the rest read equal
#
# The originals go along so the guest compares against them, not against
# anything that went through stable. nbd.env tells the guest the raw file
# system's size and sha256 and which block was damaged, so it can check
# stabled's log names it.
#
# usage: nbd-fixture.sh STABLE_MKIMAGE OUT_DIR
#   OUT_DIR/disk/ goes onto the guest's test disk: OUT_DIR/disk/nbd is /mnt/nbd.
set -euo pipefail

mkimage=${1:?usage: nbd-fixture.sh STABLE_MKIMAGE OUT_DIR}
out=${2:?}
export PATH=$PATH:/sbin:/usr/sbin   # mkfs.ext4 and debugfs, for non-root users
fs_size=$((32 * 1024 * 1024))
bs=4096
# the damaged block: this block of big.bin (3 MiB + 123 bytes, 769 blocks)
corrupt_file=big.bin
corrupt_file_block=300

rm -rf "$out"
mkdir -p "$out/disk/nbd/files/dir/sub" "$out/work"
files=$out/disk/nbd/files
# sizes around the 4 KiB block and page, a file spanning many extents'
# worth of blocks, an empty one and a few in subdirectories
rnd() { head -c "$2" /dev/urandom > "$files/$1"; }
rnd one.bin 1
rnd block-minus.bin 4095
rnd block.bin 4096
rnd block-plus.bin 4097
rnd odd.bin 100003
rnd mib.bin 1048576
rnd "$corrupt_file" $((3 * 1024 * 1024 + 123))
rnd dir/a.bin 65536
rnd dir/sub/b.bin 12345
: > "$files/empty"
printf 'stable over the kernel NBD client\n' > "$files/dir/hello.txt"

truncate -s "$fs_size" "$out/work/fs.raw"
mkfs.ext4 -q -F -b "$bs" -L stable-nbd -E lazy_itable_init=0,lazy_journal_init=0 \
	-d "$files" "$out/work/fs.raw"

"$mkimage" -q "$out/work/fs.raw" "$out/disk/nbd/plain.img" > /dev/null
"$mkimage" -q -p 8 "$out/work/fs.raw" "$out/disk/nbd/parity.img" > /dev/null

# The file system block of big.bin's block 300; ext4 and the image both
# use 4 KiB blocks, so it is also the image's data block number.
block=$(debugfs -R "bmap /$corrupt_file $corrupt_file_block" "$out/work/fs.raw" 2>/dev/null)
case $block in
'' | *[!0-9]*) echo "nbd-fixture: debugfs bmap gave '$block'" >&2; exit 1 ;;
esac

# Flip one byte (xor 0xff, so it surely changes) in that block of an
# inline image: the data region starts at the header's data_offset, a
# little-endian u64 at byte 48 (docs/format.md).
damage() {
	local img=$1 data_off off byte
	data_off=$(od -An -t u8 -j 48 -N 8 "$img" | tr -d ' ')
	off=$((data_off + block * bs + 1234))
	byte=$(od -An -t u1 -j "$off" -N 1 "$img" | tr -d ' ')
	# shellcheck disable=SC2059  # the format is the byte, as an octal escape
	printf "\\$(printf %03o $((byte ^ 255)))" |
		dd of="$img" bs=1 seek="$off" conv=notrunc status=none
}
cp "$out/disk/nbd/plain.img" "$out/disk/nbd/corrupt.img"
damage "$out/disk/nbd/corrupt.img"
damage "$out/disk/nbd/parity.img"

# The damage must be what the checksums see: stable-verify finds exactly
# that one block bad (it exits 1 for corruption).
for img in corrupt parity; do
	rc=0
	"$(dirname "$mkimage")/stable-verify" "$out/disk/nbd/$img.img" > "$out/work/$img.verify" 2>&1 || rc=$?
	[ "$rc" = 1 ] || { echo "nbd-fixture: stable-verify $img.img exit $rc, not 1" >&2; exit 1; }
done

cat > "$out/disk/nbd/nbd.env" <<EOF
FS_SIZE=$fs_size
FS_SHA256=$(sha256sum < "$out/work/fs.raw" | cut -d' ' -f1)
CORRUPT_FILE=$corrupt_file
CORRUPT_FILE_OFFSET=$((corrupt_file_block * bs))
CORRUPT_BLOCK=$block
EOF
