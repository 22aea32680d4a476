#!/bin/sh
# Description: -z of a sparse source makes a small image. An extent of
# zeroes is stored as nothing (a ZERO index entry, no blocks), so 256 MiB
# that are mostly holes take a few blocks for their data alone, where
# before every extent took at least one block (16 MiB here). The image
# verifies, reads back equal by every backend, and a block of its stored
# data that goes bad is still caught.
. "$(dirname "$0")/lib.sh"

size=$((256 * 1024 * 1024))
src=$T_DIR/sparse
truncate -s "$size" "$src"
text_file "$T_DIR/text" 200000
dd if="$T_DIR/text" of="$src" bs=1M seek=3 conv=notrunc status=none
printf 'the end' | dd of="$src" bs=1 seek=$((size - 7)) conv=notrunc status=none
want=$(cksum <"$src")

run "$MKIMAGE" -q -z "$src" "$T_DIR/img"
exits "mkimage -z of a 256 MiB sparse file" 0
img=$(wc -c < "$T_DIR/img")
[ "$img" -lt $((1024 * 1024)) ]
ok $? "the image is $img bytes, under 1 MiB (the extents of zeroes store nothing)"
[ "$(info_field "$T_DIR/img" "data blocks")" -lt 64 ]
ok $? "it stores $(info_field "$T_DIR/img" "data blocks") data blocks for 4096 extents"
run "$VERIFY" "$T_DIR/img"
exits "the image verifies" 0
for b in private sealed ro-view ro-fixed; do
	is "$("$CAT" --backend "$b" "$T_DIR/img" | cksum)" "$want" "$b: it reads back equal (cksum)"
done

# the data that is stored is checked as before
doff=$(info_field "$T_DIR/img" "data offset")
printf 'X' | dd of="$T_DIR/img" bs=1 seek=$((doff + 10)) conv=notrunc status=none
run "$VERIFY" "$T_DIR/img"
exits "a damaged stored block fails verification" 1
like "$T_DIR/out" "data block 0" "stable-verify names the damaged block"
done_testing
