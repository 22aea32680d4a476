#!/bin/sh
# Description: a source that ends in zeros (a sparse disk image, say)
# with parity. The zero blocks are left as holes in the image, and the
# parity pass reads them back: the image must already reach that far,
# else the read back comes up short (it once failed with "reading block
# 0 back for parity failed"). The image verifies and reads back equal.
. "$(dirname "$0")/lib.sh"

BS=4096
for shape in all-zero zero-tail; do
	src=$T_DIR/$shape
	truncate -s $((600 * BS)) "$src"
	[ $shape = zero-tail ] && random_file "$T_DIR/head" $((5 * BS)) &&
		dd if="$T_DIR/head" of="$src" conv=notrunc status=none
	run "$MKIMAGE" -q -b $BS -p 4 "$src" "$T_DIR/$shape.img"
	exits "mkimage -p 4 of a $shape source" 0
	run "$VERIFY" "$T_DIR/$shape.img"
	exits "the $shape image verifies" 0
	run "$CAT" "$T_DIR/$shape.img"
	same_file "$T_DIR/out" "$src" "the $shape image reads back equal"
done
done_testing
