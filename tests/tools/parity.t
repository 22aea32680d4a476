#!/bin/sh
# Description: XOR parity repairs one bad block per group. stable-cat
# returns the true data through a rebuild; stable-verify names every bad
# block (data and parity), and --repair rewrites them so that the image is
# byte-identical to the pristine one and verifies clean. Two bad blocks
# in one group cannot be rebuilt: both tools fail cleanly, name both, and
# write nothing wrong. For inline, compressed and sidecar images.
. "$(dirname "$0")/lib.sh"

BS=4096
random_file "$T_DIR/random" $((40 * BS - 123))
text_file "$T_DIR/text" $((600 * BS + 77))

# data_at IMAGE MODE: where the data blocks start in the file holding them.
data_at() {
	if [ "$2" = sidecar ]; then
		echo 0
	else
		info_field "$1" "data offset"
	fi
}

for mode in inline compressed sidecar; do
	case $mode in
	inline) opts='' src=$T_DIR/random ;;
	compressed) opts=-z src=$T_DIR/text ;;
	sidecar) opts=-s src=$T_DIR/random ;;
	esac
	cp "$src" "$T_DIR/src"
	src=$T_DIR/src
	img=$T_DIR/$mode.img
	# shellcheck disable=SC2086
	"$MKIMAGE" -q $opts -b $BS -p 4 "$src" "$img" >/dev/null
	cp "$img" "$T_DIR/pristine.img"
	cp "$src" "$T_DIR/pristine.src"
	dfile=$img
	[ $mode = sidecar ] && dfile=$src
	doff=$(data_at "$img" $mode)
	poff=$(info_field "$img" "parity offset")
	nblocks=$(info_field "$img" "data blocks")
	diag "$mode: $nblocks data blocks, parity at $poff"

	# One bad block in groups 0 and 2, and the parity block of group 1.
	flip_bit "$dfile" $((doff + 1 * BS + 100))
	flip_bit "$dfile" $((doff + 9 * BS + 4000)) 7
	flip_bit "$img" $((poff + 1 * BS + 5))

	run "$CAT" "$img"
	exits "$mode, one bad block per group: stable-cat" 0
	same_file "$T_DIR/out" "$T_DIR/pristine.src" "$mode: stable-cat output is the true data"

	run "$VERIFY" "$img"
	exits "$mode: stable-verify before repair" 1
	like "$T_DIR/out" "^$img: data block 1 \\(.*\\): crc32c mismatch" "$mode: data block 1 named"
	like "$T_DIR/out" "^$img: data block 9 \\(.*\\): crc32c mismatch" "$mode: data block 9 named"
	like "$T_DIR/out" "^$img: parity block of group 1 \\(.*\\): crc32c mismatch" "$mode: parity of group 1 named"
	like "$T_DIR/out" ": corrupt: .* 3 bad, 0 repaired" "$mode: summary counts 3 bad"

	run "$VERIFY" --repair "$img"
	exits "$mode: stable-verify --repair" 0
	like "$T_DIR/out" "data block 1 .*: repaired$" "$mode: block 1 repaired"
	like "$T_DIR/out" "data block 9 .*: repaired$" "$mode: block 9 repaired"
	like "$T_DIR/out" "parity block of group 1 .*: repaired$" "$mode: parity block repaired"
	like "$T_DIR/out" ": repaired: .* 3 bad, 3 repaired" "$mode: summary counts 3 repaired"
	run "$VERIFY" "$img"
	exits "$mode: stable-verify after repair" 0
	same_file "$img" "$T_DIR/pristine.img" "$mode: the image is byte-identical to the pristine one"
	same_file "$src" "$T_DIR/pristine.src" "$mode: the source is unchanged (sidecar: repaired)"

	# Two bad blocks in group 1 (blocks 4-7): no rebuild.
	flip_bit "$dfile" $((doff + 4 * BS + 10))
	flip_bit "$dfile" $((doff + 6 * BS + 10))
	cp "$img" "$T_DIR/broken.img"
	cp "$src" "$T_DIR/broken.src"
	run "$CAT" "$img"
	exits "$mode, two bad blocks in a group: stable-cat" 1
	like "$T_DIR/err" "block 4 .*block 6" "$mode: stable-cat names both bad blocks"
	is_prefix "$T_DIR/out" "$T_DIR/pristine.src" "$mode: stable-cat output stops before the bad block"
	run "$VERIFY" --repair "$img"
	exits "$mode, two bad blocks in a group: stable-verify --repair" 1
	like "$T_DIR/out" "data block 4 .*: not repaired: " "$mode: block 4 reported not repaired"
	like "$T_DIR/out" "data block 6 .*: not repaired: " "$mode: block 6 reported not repaired"
	same_file "$img" "$T_DIR/broken.img" "$mode: a failed repair writes nothing to the image"
	same_file "$src" "$T_DIR/broken.src" "$mode: a failed repair writes nothing to the source"
done

done_testing
