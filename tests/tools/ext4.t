#!/bin/sh
# Description: an ext4 filesystem made in a file and turned into an image
# (inline, compressed, sidecar) is found by stable-info: TYPE ext4 and the
# same UUID and LABEL that blkid prints for the raw file.
. "$(dirname "$0")/lib.sh"

if ! command -v mkfs.ext4 >/dev/null 2>&1 || ! command -v blkid >/dev/null 2>&1; then
	skip "mkfs.ext4 or blkid missing (e2fsprogs, util-linux)"
	done_testing
fi

fs=$T_DIR/fs.raw
truncate -s 32M "$fs"
if ! mkfs.ext4 -q -F -L stabletest "$fs" >"$T_DIR/mkfs.log" 2>&1; then
	fail "mkfs.ext4 on a 32 MiB file" "$(cat "$T_DIR/mkfs.log")"
	done_testing
fi
uuid=$(blkid -o value -s UUID "$fs")
[ -n "$uuid" ]
ok $? "blkid reads a UUID from the raw filesystem ($uuid)"

for mode in inline compressed sidecar; do
	case $mode in
	inline) opts="-p 8" ;;
	compressed) opts="-z" ;;
	sidecar) opts="-s -b 65536" ;;
	esac
	# shellcheck disable=SC2086
	"$MKIMAGE" -q $opts "$fs" "$T_DIR/$mode.img" >/dev/null
	run "$INFO" "$T_DIR/$mode.img"
	exits "$mode: stable-info" 0
	like "$T_DIR/out" '^  TYPE=ext4$' "$mode: content TYPE=ext4"
	like "$T_DIR/out" "^  UUID=$uuid\$" "$mode: content UUID matches blkid's"
	like "$T_DIR/out" '^  LABEL=stabletest$' "$mode: content LABEL"
	run "$INFO" --json "$T_DIR/$mode.img"
	like "$T_DIR/out" "\"UUID\": \"$uuid\"" "$mode: --json has the UUID"
done

# The verified probe of a compressed image stops at a bad block, says so
# and finds nothing it cannot trust.
zimg=$T_DIR/compressed.img
off=$(info_field "$zimg" "data offset")
flip_bit "$zimg" $((off + 100))
run "$INFO" "$zimg"
exits "compressed, first block corrupt: stable-info still reports the header" 0
like "$T_DIR/out" '^content: +not probed: .*block 0 ' "compressed, corrupt: content not probed, block 0 named"
unlike "$T_DIR/out" 'TYPE=' "compressed, corrupt: no content reported from unverified bytes"

done_testing
