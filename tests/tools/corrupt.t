#!/bin/sh
# Description: the corruption matrix. A bit flipped in the data, the
# checksum table, the header or the compression index; an image cut short
# inside each of its regions; a manifest whose data file is shorter or
# gone. Each is detected, and the message names the block, the region or
# field, or the path. stable-cat never writes a wrong byte: its output is
# always a prefix of the true data. stable-verify exits 1 for corruption
# and 2 for a missing file.
. "$(dirname "$0")/lib.sh"

BS=65536
text_file "$T_DIR/true" $((20 * BS + 999))

# check CASE IMAGE CAT_STATUS VERIFY_STATUS PATTERN: stable-cat and
# stable-verify both fail as told, both messages match PATTERN, and
# stable-cat wrote only a prefix of the true data.
check() {
	run "$CAT" -r 0 "$2"
	exits "$1: stable-cat" "$3"
	like "$T_DIR/err" "$5" "$1: stable-cat says /$5/"
	is_prefix "$T_DIR/out" "$T_DIR/true" "$1: stable-cat output"
	run "$VERIFY" "$2"
	cat "$T_DIR/err" >>"$T_DIR/out"
	exits "$1: stable-verify" "$4"
	like "$T_DIR/out" "$5" "$1: stable-verify says /$5/"
}

# field IMAGE NAME
field() { info_field "$1" "$2"; }

for mode in inline compressed sidecar; do
	case $mode in
	inline) opts= ;;
	compressed) opts="-z -e $BS" ;;	# one block per extent, as the offsets below assume
	sidecar) opts=-s ;;
	esac
	cp "$T_DIR/true" "$T_DIR/src"
	pristine=$T_DIR/$mode.pristine
	# shellcheck disable=SC2086
	"$MKIMAGE" -q $opts -b $BS "$T_DIR/src" "$pristine" >/dev/null
	img=$T_DIR/$mode.img
	doff=$(field "$pristine" "data offset")
	toff=$(field "$pristine" "table offset")
	dfile=$img
	[ $mode = sidecar ] && dfile=$T_DIR/src

	# --- a bit in the data: block 5 (compressed: extent 5 is block 5
	# when each 64 KiB extent compresses into one 64 KiB block)
	cp "$pristine" "$img"
	flip_bit "$dfile" $((doff + 5 * BS + 333)) 2
	if [ $mode = compressed ]; then
		is "$(field "$img" "data blocks")" 21 "compressed: one stored block per extent"
		check "$mode, data bit" "$img" 1 1 "block 5 \\((in the extent of )?bytes 327680-393215[,)]"
		run "$VERIFY" "$img"
		like "$T_DIR/out" "data block 5 \\(in the extent of bytes 327680-393215, file offset $((doff + 5 * BS))\\): crc32c mismatch" \
			"$mode, data bit: stable-verify gives the extent's bytes and the file offset"
	else
		check "$mode, data bit" "$img" 1 1 "block 5 \\(bytes 327680-393215"
		run "$VERIFY" "$img"
		like "$T_DIR/out" "data block 5 \\(bytes 327680-393215, file offset $((doff + 5 * BS))\\): crc32c mismatch \\[crc32c expected 0x[0-9a-f]{8}, found 0x[0-9a-f]{8}\\]" \
			"$mode, data bit: stable-verify gives the bytes, file offset and both crcs"
	fi
	"$CAT" "$img" >"$T_DIR/out" 2>/dev/null
	[ "$(wc -c <"$T_DIR/out")" -le $((5 * BS)) ]
	ok $? "$mode, data bit: stable-cat stops at or before the bad block"
	cp "$T_DIR/true" "$T_DIR/src"

	# --- a bit in the checksum table
	cp "$pristine" "$img"
	flip_bit "$img" $((toff + 4 * 3 + 1))
	check "$mode, table bit" "$img" 2 1 "checksum table checksum mismatch: header says 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}"

	# --- bits in the header: the magic, a field, the header crc itself
	cp "$pristine" "$img"
	flip_bit "$img" 0
	check "$mode, magic bit" "$img" 2 1 "$img: header: bad magic"
	cp "$pristine" "$img"
	flip_bit "$img" 17
	check "$mode, block size bit" "$img" 2 1 "$img: header: header checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}"
	cp "$pristine" "$img"
	flip_bit "$img" 253 6
	check "$mode, header crc bit" "$img" 2 1 "header checksum mismatch"

	# --- truncated inside each region
	for region in header-short header data parity table index path; do
		case $mode/$region in
		*/header-short) at=100 want="truncated: 100 bytes, a header needs 256" ;;
		*/header) at=2000 want="header \\[0, 4096\\) extends past the end of the file \\(2000 bytes\\): truncated\\?" ;;
		sidecar/data | */path | */parity) continue ;;
		*/data) at=$((doff + 3 * BS + 5)) want="data region \\[$doff, .* extends past the end of the file \\($at bytes\\)" ;;
		*/table) at=$((toff + 2)) want="checksum table \\[$toff, .* extends past the end of the file \\($at bytes\\)" ;;
		compressed/index)
			ioff=$(field "$pristine" "index offset")
			at=$((ioff + 5)) want="compression index \\[$ioff, .* extends past the end of the file \\($at bytes\\)" ;;
		*/index) continue ;;
		esac
		cp "$pristine" "$img"
		truncate -s "$at" "$img"
		check "$mode, cut in the $region at $at" "$img" 2 1 "$want"
	done
done

# --- a bit in the compression index
img=$T_DIR/compressed.img
cp "$T_DIR/compressed.pristine" "$img"
flip_bit "$img" $(($(field "$img" "index offset") + 16 * 2 + 8))
check "compressed, index bit" "$img" 2 1 "compression index checksum mismatch: header says 0x[0-9a-f]{8}, computed"

# --- parity region and manifest path, with parity
"$MKIMAGE" -q -p 4 -b $BS "$T_DIR/true" "$T_DIR/p.pristine" >/dev/null
poff=$(field "$T_DIR/p.pristine" "parity offset")
cp "$T_DIR/p.pristine" "$T_DIR/p.img"
truncate -s $((poff + 100)) "$T_DIR/p.img"
check "inline, cut in the parity region" "$T_DIR/p.img" 2 1 \
	"parity region \\[$poff, .* extends past the end of the file \\($((poff + 100)) bytes\\)"

cp "$T_DIR/true" "$T_DIR/src"
"$MKIMAGE" -q -s "$T_DIR/src" "$T_DIR/m.pristine" >/dev/null
cp "$T_DIR/m.pristine" "$T_DIR/m.img"
truncate -s 4100 "$T_DIR/m.img"
check "sidecar, cut in the data path" "$T_DIR/m.img" 2 1 "data path \\[4096, .* extends past the end of the file \\(4100 bytes\\)"

# --- the manifest's data file: shorter, then gone
cp "$T_DIR/m.pristine" "$T_DIR/m.img"
real=$(realpath "$T_DIR/src")
truncate -s $((20 * BS)) "$T_DIR/src"
check "sidecar, data file shorter" "$T_DIR/m.img" 2 1 \
	"data file $real is 1310720 bytes, shorter than the 1311719 bytes the manifest covers"
rm "$T_DIR/src"
check "sidecar, data file missing" "$T_DIR/m.img" 2 2 "$T_DIR/m.img: data file $real: No such file or directory"

# --- the manifest's data file replaced by one of the same size
random_file "$T_DIR/src" $((20 * BS + 999))
check "sidecar, data file replaced" "$T_DIR/m.img" 1 1 "block 0 \\(bytes 0-4095"

done_testing
