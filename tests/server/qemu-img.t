#!/bin/sh
# Description: qemu-img, a real NBD client, sees the export's size, copies
# it to raw and compares it equal to the original bytes, for an inline,
# a compressed and a sidecar image whose size is a multiple of 512 but not
# of the block size, and a compressed image of a sparse source (its
# extents of zeroes store nothing and are served without a read) (qemu rounds other sizes up to 512: see nbdcopy.t for
# odd sizes).
. "$(dirname "$0")/lib.sh"
need qemu-img

src=$T_DIR/src.raw
random_file "$src" 3000832	# 5861 sectors: not a multiple of 4096
mkimg "$src" "$T_DIR/inline.stable"
mkimg "$src" "$T_DIR/small.stable" -b 512
mkimg "$src" "$T_DIR/sidecar.stable" --sidecar
text_file "$T_DIR/text.raw" 2000384
mkimg "$T_DIR/text.raw" "$T_DIR/zip.stable" -z
truncate -s 2000384 "$T_DIR/holes.raw"
dd if="$T_DIR/text.raw" of="$T_DIR/holes.raw" bs=65536 seek=10 count=3 conv=notrunc status=none
mkimg "$T_DIR/holes.raw" "$T_DIR/holes.stable" -z

start_server "$T_DIR/inline.stable" "$T_DIR/small.stable" \
	"$T_DIR/sidecar.stable" "$T_DIR/zip.stable" "$T_DIR/holes.stable" || done_testing

for e in inline small sidecar zip holes; do
	orig=$src
	[ $e = zip ] && orig=$T_DIR/text.raw
	[ $e = holes ] && orig=$T_DIR/holes.raw
	u="nbd+unix:///$e?socket=$SOCK"

	trun 60 qemu-img info --output=json "$u"
	exits "qemu-img info $e" 0
	like "$T_DIR/out" "\"virtual-size\": $(wc -c <"$orig")," \
		"qemu-img info $e: size is $(wc -c <"$orig")"

	trun 120 qemu-img convert -f raw -O raw "$u" "$T_DIR/$e.out"
	exits "qemu-img convert $e" 0
	same_file "$T_DIR/$e.out" "$orig" "qemu-img convert $e: bytes equal the original"

	trun 120 qemu-img compare -f raw -F raw "$orig" "$u"
	exits "qemu-img compare $e against the original" 0
done

# writes are refused, the data stays the same, and nothing past the end
u="nbd+unix:///inline?socket=$SOCK"
if command -v qemu-io >/dev/null 2>&1; then
	trun 60 qemu-io -f raw -c "write -P 0xaa 0 4096" "$u"
	if [ "$rc" -ne 0 ] || grep -Eq "read-only|Operation not permitted|failed" "$T_DIR/out" "$T_DIR/err"; then
		pass "qemu-io write is refused"
	else
		fail "qemu-io write is refused" "status $rc" "$(cat "$T_DIR/out")"
	fi
	trun 60 qemu-io -r -f raw -c "read 3000832 512" "$u"
	like "$T_DIR/out" "(Input/output error|Invalid argument|out of range|failed)" "qemu-io read past the end fails"
	trun 60 qemu-io -r -f raw -c "read -v 3000320 512" "$u"
	exits "qemu-io read of the last sector" 0
else
	skip "qemu-io is not installed"
fi
trun 120 qemu-img convert -n -f raw -O raw "$T_DIR/zip.out" "$u"
if [ "$rc" -ne 0 ]; then pass "qemu-img convert onto the export is refused (status $rc)"; else fail "qemu-img convert onto the export is refused" "status 0"; fi
trun 120 qemu-img compare -f raw -F raw "$src" "$u"
exits "the export still equals the original after the refused writes" 0
stop_server
done_testing
