#!/bin/sh
# Description: the command lines. Every tool answers --help (exit 0, a
# Usage line) and --version; usage errors exit 2 with one line naming
# the problem; a sidecar cannot be compressed; root digest pinning works
# with the printed digest and fails naming both digests otherwise;
# stable-verify exits 0 clean, 1 corrupt, 2 for usage and I/O errors, and
# its --json is valid.
. "$(dirname "$0")/lib.sh"

for tool in stable-mkimage stable-cat stable-verify stable-info; do
	run "$STABLE_BIN/$tool" --help
	exits "$tool --help" 0
	like "$T_DIR/out" "^Usage: $tool " "$tool --help prints its usage on stdout"
	like "$T_DIR/out" "^Exit status: " "$tool --help documents the exit status"
	run "$STABLE_BIN/$tool" --version
	exits "$tool --version" 0
	like "$T_DIR/out" "^$tool \\(stable\\) [0-9]+\\.[0-9]+\\.[0-9]+$" "$tool --version prints name and version"
	run "$STABLE_BIN/$tool" --no-such-option
	exits "$tool --no-such-option" 2
	like "$T_DIR/err" "unrecognized option" "$tool: an unknown option is named"
	run "$STABLE_BIN/$tool"
	exits "$tool without arguments" 2
	like "$T_DIR/err" "^Usage: $tool " "$tool without arguments prints its usage on stderr"
done

# Every long option of --help is documented in the tool's man page.
MAN=$(dirname "$0")/../../man
for tool in stable-mkimage stable-cat stable-verify stable-info; do
	missing=
	for opt in $("$STABLE_BIN/$tool" --help | grep -Eo -- '--[a-z][a-z-]*' | sort -u); do
		esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		grep -q -- "$esc" "$MAN/$tool.1" || missing="$missing $opt"
	done
	is "$missing" "" "man/$tool.1 documents every option of --help"
done

random_file "$T_DIR/src" 50000

# --- stable-mkimage usage errors
run "$MKIMAGE" -s -z "$T_DIR/src" "$T_DIR/bad"
exits "stable-mkimage --sidecar --compress" 2
like "$T_DIR/err" "^stable-mkimage: a sidecar image cannot be compressed" "sidecar + compress: the reason is given"
[ ! -e "$T_DIR/bad" ]
ok $? "sidecar + compress: no output file left behind"
run "$MKIMAGE" -b 3000 "$T_DIR/src" "$T_DIR/bad"
exits "stable-mkimage --block-size=3000" 2
like "$T_DIR/err" "block size 3000 is not a power of two" "bad block size named"
run "$MKIMAGE" -p 1 "$T_DIR/src" "$T_DIR/bad"
exits "stable-mkimage --parity=1" 2
like "$T_DIR/err" "^stable-mkimage: --parity: '1'" "bad parity group named"
run "$MKIMAGE" "$T_DIR/nonexistent" "$T_DIR/bad"
exits "stable-mkimage on a missing source" 2
like "$T_DIR/err" "^stable-mkimage: $T_DIR/nonexistent: No such file or directory$" "missing source: path and reason"

# --- stable-cat usage errors
"$MKIMAGE" -q "$T_DIR/src" "$T_DIR/img" >"$T_DIR/digest"
digest=$(cat "$T_DIR/digest")
run "$CAT" "$T_DIR/img" 50001
exits "stable-cat with OFFSET past the end" 2
like "$T_DIR/err" "OFFSET 50001 is past the end \\(50000 bytes\\)" "OFFSET past the end named"
run "$CAT" "$T_DIR/img" 100 49901
exits "stable-cat with a range past the end" 2
like "$T_DIR/err" "range 100\\+49901 is past the end" "range past the end named"
run "$CAT" "$T_DIR/img" x
exits "stable-cat with OFFSET x" 2
like "$T_DIR/err" "OFFSET 'x' is not a byte count" "bad OFFSET named"

# --- digest pinning
run "$CAT" --digest="$digest" "$T_DIR/img"
exits "stable-cat --digest=<printed digest>" 0
same_file "$T_DIR/out" "$T_DIR/src" "stable-cat --digest output"
wrong=$(printf '%08x' $(((0x$digest + 1) % 4294967296)))
run "$CAT" --digest="$wrong" "$T_DIR/img"
exits "stable-cat --digest=<wrong digest>" 2
like "$T_DIR/err" "root digest mismatch: expected $wrong, image has $digest" "wrong digest: both digests named"
is "$(wc -c <"$T_DIR/out")" 0 "wrong digest: nothing written"
run "$CAT" --digest=xyz "$T_DIR/img"
exits "stable-cat --digest=xyz" 2
like "$T_DIR/err" "--digest: 'xyz' is not 8 hex digits" "malformed digest named"
run "$VERIFY" --digest="$digest" "$T_DIR/img"
exits "stable-verify --digest=<printed digest>" 0
run "$VERIFY" --digest="$wrong" "$T_DIR/img"
exits "stable-verify --digest=<wrong digest>" 1
like "$T_DIR/err" "root digest mismatch: expected $wrong, image has $digest" "stable-verify: both digests named"
# The digest covers content, not layout: a sidecar of the same source
# with the same geometry has the same digest.
sdigest=$("$MKIMAGE" -q -s "$T_DIR/src" "$T_DIR/manifest")
is "$sdigest" "$digest" "sidecar and inline images of one source share a root digest"

# --- stable-verify exit codes and output
run "$VERIFY" "$T_DIR/img"
exits "stable-verify on a clean image" 0
like "$T_DIR/out" "^$T_DIR/img: clean: 13 blocks, 50000 bytes checked in [0-9.]+ s \\([0-9.]+ MiB/s\\); 0 bad, 0 repaired$" \
	"clean: the summary line"
run "$VERIFY" -q "$T_DIR/img"
is "$(cat "$T_DIR/out")" "" "stable-verify -q on a clean image prints nothing"
run "$VERIFY" "$T_DIR/nonexistent"
exits "stable-verify on a missing file" 2
like "$T_DIR/err" "^stable-verify: $T_DIR/nonexistent: No such file or directory$" "missing file: path and reason"
run "$VERIFY" "$T_DIR/img" "$T_DIR/img"
exits "stable-verify with two images" 2
run "$VERIFY" --repair "$T_DIR/img"
exits "stable-verify --repair on a clean image" 0
like "$T_DIR/out" ": clean: .* 0 bad, 0 repaired" "--repair on a clean image repairs nothing"

cp "$T_DIR/img" "$T_DIR/bad.img"
flip_bit "$T_DIR/bad.img" $((4096 + 3 * 4096 + 7))
run "$VERIFY" -q "$T_DIR/bad.img"
exits "stable-verify -q on a corrupt image" 1
like "$T_DIR/out" "data block 3 \\(bytes 12288-16383" "-q still reports the bad block"
unlike "$T_DIR/out" ": corrupt: " "-q prints no summary"
run "$VERIFY" --repair "$T_DIR/bad.img"
exits "stable-verify --repair without parity" 1
like "$T_DIR/out" "data block 3 .*: not repaired: no parity" "without parity: not repaired, and why"
chmod 0444 "$T_DIR/bad.img"
if [ "$(id -u)" -ne 0 ]; then
	run "$VERIFY" --repair "$T_DIR/bad.img"
	exits "stable-verify --repair on a read-only image" 2
	like "$T_DIR/err" "Permission denied" "read-only image: the reason"
else
	skip "root can write a read-only file"
fi

run "$VERIFY" --json "$T_DIR/bad.img"
exits "stable-verify --json on a corrupt image" 1
cp "$T_DIR/out" "$T_DIR/v.json"
if command -v jq >/dev/null 2>&1; then
	jq -e . "$T_DIR/v.json" >/dev/null
	ok $? "--json is valid JSON"
	is "$(jq -r '.status, .bad_blocks, .bad[0].block, .bad[0].offset, .bad[0].length' "$T_DIR/v.json" | tr '\n' ' ')" \
		"corrupt 1 3 12288 4096 " "--json: status, count and the bad block's range"
elif command -v python3 >/dev/null 2>&1; then
	python3 -m json.tool "$T_DIR/v.json" >/dev/null
	ok $? "--json is valid JSON"
else
	skip "no jq or python3 to check the JSON"
fi

# --json when the check cannot run: still one object, with the reason.
cp "$T_DIR/img" "$T_DIR/hdr.img"
flip_bit "$T_DIR/hdr.img" 20
run "$VERIFY" --json "$T_DIR/hdr.img"
exits "stable-verify --json on a bad header" 1
like "$T_DIR/out" '"status": "corrupt"' "--json, bad header: status corrupt"
like "$T_DIR/out" '"error": ".*header checksum mismatch' "--json, bad header: the reason"
run "$VERIFY" --json "$T_DIR/nonexistent"
exits "stable-verify --json on a missing file" 2
like "$T_DIR/out" '"status": "error"' "--json, missing file: status error"
if command -v jq >/dev/null 2>&1; then
	jq -e . "$T_DIR/out" >/dev/null
	ok $? "--json, missing file: valid JSON"
fi

done_testing
