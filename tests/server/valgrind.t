#!/bin/sh
# Description: the plain (not sanitized) stabled under valgrind's memcheck
# serves real clients, a corrupted block, an aborted handshake and a client
# that vanishes mid-reply, then exits on SIGTERM with no memory error and
# nothing definitely or indirectly lost.
. "$(dirname "$0")/lib.sh"
need valgrind nbdcopy qemu-io nbdinfo python3
# (valgrind 3.19 thinks io_uring_enter never blocks and held its lock
# while a worker waited in it, stopping every other thread; under
# valgrind the worker now waits in poll(2): see server/worker.c)
if [ -z "${STABLED_PLAIN:-}" ] || [ ! -x "$STABLED_PLAIN" ]; then
	echo "1..0 # SKIP STABLED_PLAIN does not name a plain stabled (make test-server sets it)"
	exit 0
fi

random_file "$T_DIR/src.raw" 2000000
mkimg "$T_DIR/src.raw" "$T_DIR/good.stable"
mkimg "$T_DIR/src.raw" "$T_DIR/bad.stable"
doff=$(info_field "$T_DIR/bad.stable" "data offset")
flip_bit "$T_DIR/bad.stable" $((doff + 100 * 4096 + 5))

cat >"$T_DIR/vg" <<VG
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	--log-file="$T_DIR/valgrind.log" "$STABLED_PLAIN" --threads 2 --timeout 5 "\$@"
VG
chmod +x "$T_DIR/vg"
STABLED=$T_DIR/vg START_WAIT=300 start_server "$T_DIR/good.stable" "$T_DIR/bad.stable" ||
	done_testing

trun 120 nbdcopy "nbd+unix:///good?socket=$SOCK" "$T_DIR/out.raw"
exits "nbdcopy under valgrind" 0
same_file "$T_DIR/out.raw" "$T_DIR/src.raw" "nbdcopy under valgrind: bytes equal"
trun 120 nbdinfo --list "nbd+unix:///?socket=$SOCK"
exits "nbdinfo --list under valgrind" 0
trun 120 qemu-io -r -f raw -c "read 0 1M" "nbd+unix:///bad?socket=$SOCK"
like "$T_DIR/out" "Input/output error" "qemu-io over the corrupted block gets EIO"
python3 - "$SOCK" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.recv(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, 4) + b"good")
s.recv(10)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 1, 0, 2000000))
s.recv(1000)
s.close()			# vanishes mid-reply
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.recv(18); s.sendall(b"\xff" * 64)	# garbage
s.close()
PY
trun 120 nbdcopy "nbd+unix:///good?socket=$SOCK" "$T_DIR/out2.raw"
exits "nbdcopy after the hostile clients" 0
stop_server
if grep -q . "$T_DIR/valgrind.log" 2>/dev/null; then
	fail "valgrind reports nothing" "$(head -c 1500 "$T_DIR/valgrind.log")"
else
	pass "valgrind reports nothing"
fi
done_testing
