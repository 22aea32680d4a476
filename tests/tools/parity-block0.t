#!/bin/sh
# Description: when a parity rebuild fails because another block of the
# group is bad too, stable-cat's message names that other block, even
# when it is block 0 (once taken for "no other block").
. "$(dirname "$0")/lib.sh"

BS=4096
random_file "$T_DIR/src" $((10 * BS))
"$MKIMAGE" -q -b $BS -p 4 "$T_DIR/src" "$T_DIR/img" >/dev/null
doff=$(info_field "$T_DIR/img" "data offset")
flip_bit "$T_DIR/img" $((doff + 1))
flip_bit "$T_DIR/img" $((doff + BS + 1))

run "$CAT" "$T_DIR/img" $BS $BS
exits "blocks 0 and 1 bad, reading block 1" 1
like "$T_DIR/err" "block 1 \\(bytes 4096-8191\\).*another block of the parity group is bad too \\(block 0\\)" \
	"the other bad block is named though it is block 0"
is "$(wc -c <"$T_DIR/out")" 0 "nothing written"

run "$CAT" "$T_DIR/img"
exits "blocks 0 and 1 bad, reading from block 0" 1
like "$T_DIR/err" "block 0 \\(bytes 0-4095\\).*bad too \\(block 1\\)" "reading from 0 names block 1"

done_testing
