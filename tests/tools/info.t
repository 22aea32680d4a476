#!/bin/sh
# Description: stable-info prints the header fields libstable validated
# (layout, geometry, offsets, root digest, data path) in text and as valid
# JSON, for inline, compressed and sidecar images, and escapes odd paths.
. "$(dirname "$0")/lib.sh"

json_ok() {
	if command -v jq >/dev/null 2>&1; then
		jq -e . "$1" >/dev/null 2>&1
	elif command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool "$1" >/dev/null 2>&1
	else
		return 2
	fi
}

json_get() {
	if command -v jq >/dev/null 2>&1; then
		jq -r "$2" "$1"
	else
		python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].lstrip(".").split("."): v=v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1" "$2"
	fi
}

src=$T_DIR/src
random_file "$src" 100000

digest=$("$MKIMAGE" -q -p 4 "$src" "$T_DIR/img")
run "$INFO" "$T_DIR/img"
exits "stable-info on an inline image" 0
like "$T_DIR/out" '^layout: +inline$' "inline: layout"
like "$T_DIR/out" '^block size: +4096$' "inline: block size"
like "$T_DIR/out" '^data length: +100000$' "inline: data length"
like "$T_DIR/out" '^flags: +0x4 \(parity\)$' "inline: flags named"
like "$T_DIR/out" '^parity group: +4$' "inline: parity group"
like "$T_DIR/out" '^parity blocks: +7$' "inline: parity blocks (25 data blocks in groups of 4)"
like "$T_DIR/out" '^data offset: +4096$' "inline: data offset after the header area"
like "$T_DIR/out" "^root digest: +$digest\$" "inline: root digest is the one stable-mkimage printed"
like "$T_DIR/out" '^uuid: +[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "inline: uuid is a version 4 uuid"
like "$T_DIR/out" '^topology: ' "inline: a topology line"
like "$T_DIR/out" '^content: +no filesystem or partition table found' "inline: random data holds no filesystem"

digest=$("$MKIMAGE" -q -z -b 1024 -e 8K "$src" "$T_DIR/zimg")
run "$INFO" "$T_DIR/zimg"
exits "stable-info on a compressed image" 0
like "$T_DIR/out" '^flags: +0x2 \(compressed\)$' "compressed: flags named"
like "$T_DIR/out" '^extent size: +8192$' "compressed: extent size"
like "$T_DIR/out" '^extents: +13$' "compressed: 13 extents of 8 KiB for 100000 bytes"
like "$T_DIR/out" '^index length: +208$' "compressed: index of 13 entries of 16 bytes"
like "$T_DIR/out" "^root digest: +$digest\$" "compressed: root digest"

digest=$("$MKIMAGE" -q -s -b 512 "$src" "$T_DIR/manifest")
run "$INFO" "$T_DIR/manifest"
exits "stable-info on a sidecar manifest" 0
like "$T_DIR/out" '^layout: +sidecar$' "sidecar: layout"
like "$T_DIR/out" "^data path: +$(realpath "$src")\$" "sidecar: data path is the source's real path"
like "$T_DIR/out" '^data blocks: +196$' "sidecar: 196 blocks of 512 bytes"
like "$T_DIR/out" "^root digest: +$digest\$" "sidecar: root digest"

run "$INFO" --no-probe "$T_DIR/manifest"
unlike "$T_DIR/out" '^(topology|content):' "--no-probe prints no probe results"

# JSON: valid, with the same values, even for a path that needs escaping.
odd="$T_DIR/a \"quoted\" \\ name	tab"
cp "$T_DIR/img" "$odd"
run "$INFO" --json "$odd"
exits "stable-info --json" 0
cp "$T_DIR/out" "$T_DIR/info.json"
json_ok "$T_DIR/info.json"
st=$?
if [ $st -eq 2 ]; then
	skip "no jq or python3 to check the JSON"
else
	ok $st "--json output is valid JSON (path with quotes, backslash and tab)"
	is "$(json_get "$T_DIR/info.json" .image)" "$odd" "JSON: image path round-trips"
	is "$(json_get "$T_DIR/info.json" .data_length)" 100000 "JSON: data_length"
	is "$(json_get "$T_DIR/info.json" .parity_group)" 4 "JSON: parity_group"
	is "$(json_get "$T_DIR/info.json" .layout)" inline "JSON: layout"
	is "$(json_get "$T_DIR/info.json" .content.probed)" true "JSON: content probed"
fi

run "$INFO" --json "$T_DIR/zimg"
cp "$T_DIR/out" "$T_DIR/z.json"
if json_ok "$T_DIR/z.json"; then
	pass "--json on a compressed image is valid JSON"
	is "$(json_get "$T_DIR/z.json" .content.method)" verified "JSON: compressed data probed through verified reads"
else
	fail "--json on a compressed image is valid JSON" "$(head -c 600 "$T_DIR/z.json")"
fi

# An image that does not open: exit 2, the path and the reason.
head -c 8192 /dev/zero >"$T_DIR/zeros"
run "$INFO" "$T_DIR/zeros"
exits "stable-info on a file that is not an image" 2
like "$T_DIR/err" "^stable-info: .*zeros: header: bad magic" "not an image: message names the path and the magic"

done_testing
