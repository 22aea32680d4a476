#!/bin/sh
# Description: a sparse source of a little over 4 GiB (so offsets, block
# numbers and lengths cross 2^32) round-trips through an inline image and
# a sidecar manifest with parity; ranges around the 4 GiB mark read back
# exactly; a bad block past 4 GiB is named with its exact byte range and
# repaired from parity. Compares the full stream by length and cksum (a
# byte-wise cmp of 4 GiB through a pipe costs too much under ASan) and
# the interesting ranges byte for byte.
. "$(dirname "$0")/lib.sh"

G4=4294967296
size=$((G4 + 3 * 1048576 + 12345))
src=$T_DIR/big
if ! truncate -s "$size" "$src" 2>/dev/null; then
	skip "cannot make a sparse file of $size bytes under $STABLE_TMP"
	done_testing
fi
# Markers at the start, across 2^32, past it, and at the very end.
printf 'start of the big sparse file' | dd of="$src" conv=notrunc status=none
printf 'across 4 GiB' | dd of="$src" bs=1 seek=$((G4 - 5)) conv=notrunc status=none
random_file "$T_DIR/rnd" 65536
dd if="$T_DIR/rnd" of="$src" bs=1M seek=4097 conv=notrunc status=none
printf 'end.' | dd of="$src" bs=1 seek=$((size - 4)) conv=notrunc status=none
want_sum=$(cksum <"$src")

for mode in sidecar inline; do
	img=$T_DIR/$mode.img
	case $mode in
	sidecar) opts="-s -b 1M -p 8" ;;
	inline) opts="-b 4096" ;;
	esac
	# shellcheck disable=SC2086
	run "$MKIMAGE" -q $opts "$src" "$img"
	exits "$mode: stable-mkimage of $size bytes" 0
	is "$(info_field "$img" "data length")" "$size" "$mode: data length past 4 GiB"

	sum=$("$CAT" "$img" 2>"$T_DIR/cat.err" | cksum)
	is "$sum" "$want_sum" "$mode: stable-cat of the whole image: same length and cksum"
	[ "$sum" = "$want_sum" ] || diag "stable-cat said: $(head -c 600 "$T_DIR/cat.err")"

	for r in "$((G4 - 100)) 200" "$((G4 + 1048576 - 7)) 65550" "$((size - 10)) 10" "0 40"; do
		# shellcheck disable=SC2086
		set -- $r
		"$CAT" "$img" "$1" "$2" >"$T_DIR/part"
		range "$src" "$1" "$2" >"$T_DIR/want"
		same_file "$T_DIR/part" "$T_DIR/want" "$mode: range $1+$2 reads back"
	done
	run "$VERIFY" "$img"
	exits "$mode: stable-verify" 0
	like "$T_DIR/out" ': clean: .* 0 bad' "$mode: stable-verify summary says clean"
done

# A bad block past 4 GiB, in the sidecar's data file: named exactly.
img=$T_DIR/sidecar.img
range "$src" $G4 2097152 >"$T_DIR/want"
flip_bit "$src" $((G4 + 1048576 + 5)) 3
run "$VERIFY" "$img"
exits "sidecar, block 4097 corrupt: stable-verify" 1
like "$T_DIR/out" "data block 4097 \\(bytes 4296015872-4297064447, file offset 4296015872\\): crc32c mismatch" \
	"the bad block is named with its 64-bit byte range"
"$CAT" "$img" $G4 2097152 >"$T_DIR/part" 2>"$T_DIR/err"
is $? 0 "stable-cat across the bad block succeeds: rebuilt from parity"
same_file "$T_DIR/part" "$T_DIR/want" "stable-cat returned the true bytes, not the corrupt ones"
run "$VERIFY" --repair "$img"
exits "stable-verify --repair" 0
like "$T_DIR/out" "data block 4097 .*: repaired" "the bad block is reported repaired"
run "$VERIFY" "$img"
exits "stable-verify after the repair" 0
is "$("$CAT" "$img" | cksum)" "$want_sum" "the data file holds the true bytes again"

done_testing
