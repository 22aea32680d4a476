#!/bin/sh
# Description: every combination of size, layout (inline, inline
# compressed, sidecar), block size (512, 4K, 64K, 1M) and parity (none,
# 2, 8) makes an image that stable-cat reads back byte for byte, in full
# and in ranges that start and end inside blocks, and that stable-verify
# finds clean. Sizes cover the edges: empty, one byte, one byte short of
# and past a block, a size that is no multiple of any block, a few MiB.
. "$(dirname "$0")/lib.sh"

# cat_range IMAGE SRC OFF LEN: stable-cat's OFF/LEN against dd's bytes.
cat_range() {
	"$CAT" "$1" "$3" "$4" >"$T_DIR/part" 2>"$T_DIR/part.err" || return 1
	range "$2" "$3" "$4" | cmp -s - "$T_DIR/part"
}

# check_ranges IMAGE SRC OFF LEN...: prints the ranges that read back wrong.
check_ranges() {
	_img=$1 _src=$2
	shift 2
	while [ $# -ge 2 ]; do
		if [ $(($1 + $2)) -le "$size" ]; then
			cat_range "$_img" "$_src" "$1" "$2" || printf ' [%s+%s]' "$1" "$2"
		fi
		shift 2
	done
}

for size in 0 1 4095 4097 100001 3145735; do
	src=$T_DIR/src.$size
	# Half random, half text, so compression has work both ways.
	random_file "$src" $((size / 2))
	text_file "$T_DIR/text" $((size - size / 2 + 1))
	head -c $((size - size / 2)) "$T_DIR/text" >>"$src"
	[ "$(wc -c <"$src")" -eq "$size" ] || fail "source of $size bytes"

	for mode in inline compressed sidecar; do
		case $mode in
		inline) mopt= ;;
		compressed) mopt=-z ;;
		sidecar) mopt=-s ;;
		esac
		for bs in 512 4096 65536 1M; do
			for parity in 0 2 8; do
				popt=
				[ "$parity" -ne 0 ] && popt="-p $parity"
				case="size $size, $mode, block $bs, parity $parity"
				img=$T_DIR/img
				# shellcheck disable=SC2086
				if ! "$MKIMAGE" -q $mopt -b $bs $popt "$src" "$img" \
					>"$T_DIR/digest" 2>"$T_DIR/err"; then
					fail "$case: stable-mkimage" "$(cat "$T_DIR/err")"
					continue
				fi
				"$CAT" --digest="$(cat "$T_DIR/digest")" "$img" >"$T_DIR/out" 2>"$T_DIR/err"
				st=$?
				if [ $st -eq 0 ] && cmp -s "$T_DIR/out" "$src"; then
					pass "$case: stable-cat returns the source"
				else
					fail "$case: stable-cat returns the source" "status $st" \
						"$(cmp "$T_DIR/out" "$src" 2>&1 | head -1)" "$(cat "$T_DIR/err")"
				fi

				if [ "$size" -ge 2 ]; then
					half=$((size / 2))
					if [ "$size" -gt 1000000 ]; then
						bad=$(check_ranges "$img" "$src" 1 $((size - 2)) 4095 2 \
							$half $((size - half)))
					else
						bad=$(check_ranges "$img" "$src" 1 $((size - 2)) 4095 2)
					fi
					if [ -z "$bad" ]; then
						pass "$case: ranges read back"
					else
						fail "$case: ranges read back" "wrong ranges:$bad" \
							"$(cat "$T_DIR/part.err")"
					fi
				fi

				"$VERIFY" -q "$img" >"$T_DIR/vout" 2>&1
				st=$?
				if [ $st -eq 0 ] && [ ! -s "$T_DIR/vout" ]; then
					pass "$case: stable-verify -q is clean and silent"
				else
					fail "$case: stable-verify -q is clean and silent" "status $st" \
						"$(head -c 600 "$T_DIR/vout")"
				fi
			done
		done
	done
done

done_testing
