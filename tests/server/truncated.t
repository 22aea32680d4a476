#!/bin/sh
# Description: an image truncated while stabled serves it. The blocks
# still in the file read as before; those past its new end fail with EIO
# (clients never get the zeroes of a short read), the log says the file
# ends before the block rather than naming a checksum of bytes that were
# never read, and the daemon and its other export go on.
. "$(dirname "$0")/lib.sh"
need qemu-io nbdinfo

bs=4096
cut=100					# the first block past the new end
src=$T_DIR/src.raw
random_file "$src" 1048576		# 256 blocks
mkimg "$src" "$T_DIR/cut.stable"
mkimg "$src" "$T_DIR/whole.stable"
doff=$(info_field "$T_DIR/cut.stable" "data offset")
start_server "$T_DIR/cut.stable" "$T_DIR/whole.stable" || done_testing
cut_uri="nbd+unix:///cut?socket=$SOCK"
whole_uri="nbd+unix:///whole?socket=$SOCK"

# the file now ends 1000 bytes into block $cut
truncate -s $((doff + cut * bs + 1000)) "$T_DIR/cut.stable"

trun 60 qemu-io -r -f raw -c "read 0 $((cut * bs))" "$cut_uri"
exits "qemu-io read of blocks 0-$((cut - 1)), still in the file" 0
trun 60 qemu-io -r -f raw -c "read $((cut * bs)) $bs" "$cut_uri"
like "$T_DIR/out" "Input/output error" "qemu-io read of block $cut, cut short, fails with EIO"
trun 60 qemu-io -r -f raw -c "read $((200 * bs)) $bs" "$cut_uri"
like "$T_DIR/out" "Input/output error" "qemu-io read of block 200, past the end, fails with EIO"

like "$LOG" "export cut: block $cut \(bytes $((cut * bs))-$(((cut + 1) * bs - 1))\): the image file ends before it \(truncated while served\?\)" \
	"the log says the file ends before block $cut"
like "$LOG" "export cut: block 200 \(bytes $((200 * bs))-[0-9]*\): the image file ends before it" \
	"the log says the file ends before block 200"
unlike "$LOG" "export cut: block (100|200) .*crc32c expected" \
	"no checksum is quoted for bytes that were never read"

# the other export, and the daemon, are unaffected
trun 120 qemu-io -r -f raw -c "read 0 1048576" "$whole_uri"
exits "qemu-io read of all of the other export" 0
trun 60 nbdinfo --size "$cut_uri"
like "$T_DIR/out" "^1048576$" "the truncated export still answers the handshake with its size"
stop_server
done_testing
