#!/bin/sh
# Description: -z with big blocks still compresses. An extent is stored
# padded to whole blocks, so the default extent is 8 blocks when blocks
# are bigger than 8K (it was one 64K block at -b 64K, which could never
# shrink). A compressible source makes an image well under its size at
# -b 64K and -b 1M; it verifies and reads back equal.
. "$(dirname "$0")/lib.sh"

text_file "$T_DIR/src" $((6 * 1024 * 1024 + 123))
size=$(wc -c < "$T_DIR/src")
for b in 65536 1048576; do
	run "$MKIMAGE" -q -z -b $b "$T_DIR/src" "$T_DIR/img.$b"
	exits "mkimage -z -b $b" 0
	is "$(info_field "$T_DIR/img.$b" "extent size")" $((8 * b)) "-b $b: the default extent is 8 blocks"
	img=$(wc -c < "$T_DIR/img.$b")
	[ "$img" -lt $((size / 2)) ]
	ok $? "-b $b: the image ($img bytes) is under half the source ($size bytes)"
	run "$VERIFY" "$T_DIR/img.$b"
	exits "the -b $b image verifies" 0
	run "$CAT" "$T_DIR/img.$b"
	same_file "$T_DIR/out" "$T_DIR/src" "the -b $b image reads back equal"
done
done_testing
