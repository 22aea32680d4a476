#!/usr/bin/env python3
# Description: hostile and broken clients cost the daemon nothing: wrong
# magic, unknown client flags, oversized option or write lengths, half
# requests, clients that vanish mid-reply, never finish the handshake or
# never read their replies (slowloris), and more connections than allowed.
# Each gets the spec's error or is closed; the daemon keeps serving a
# well-behaved client throughout, and exits cleanly with no leak (ASan).
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdwire import *  # noqa: E402,F403

t = Tap("hostile.t")
d = scratch("hostile.t")
src = os.urandom(40 * 2**20)
with open(os.path.join(d, "src.raw"), "wb") as f:
    f.write(src)
mkimage(os.path.join(d, "src.raw"), os.path.join(d, "disk.stable"))
srv = Server(t, ["--timeout", "2", "--max-connections", "12", "--threads", "2",
                 os.path.join(d, "disk.stable")], d)


def good_client(msg):
    """A well-behaved client reads a few ranges correctly."""
    try:
        c = Conn(srv.sock, timeout=20).start()
        okc = 0
        for off in (0, 12345678, len(src) - 70000):
            data, errors = read_structured(c, off, 65536)
            okc += not errors and data.get(off) == src[off:off + 65536]
        c.request(CMD_DISC, 0, 0)
        c.close()
        t.is_(okc, 3, "a good client is served: %s" % msg)
    except Exception as e:  # noqa: BLE001
        t.ok(False, "a good client is served: %s" % msg, repr(e))


def closed_case(msg, setup, wait=10):
    c = Conn(srv.sock)
    try:
        setup(c)
        t.ok(c.closed_by_server(wait), msg)
    except (Closed, BrokenPipeError, ConnectionResetError):
        t.ok(True, msg)
    c.close()


closed_case("wrong option magic: closed",
            lambda c: (c.greeting(), c.option(OPT_GO, b"", magic=0x1122334455667788)))
closed_case("unknown client flags: closed", lambda c: c.greeting(cflags=0x80))
closed_case("option length of 1 GiB: closed",
            lambda c: (c.greeting(), c.option(OPT_GO, b"", length=2**30)))
closed_case("EXPORT_NAME of an unknown export: closed",
            lambda c: (c.greeting(), c.option(OPT_EXPORT_NAME, b"nosuch")))
closed_case("wrong request magic: closed", lambda c: (c.start(), c.request(CMD_READ, 0, 512, magic=0xdeadbeef)))
closed_case("WRITE of 64 MiB: closed", lambda c: (c.start(), c.request(CMD_WRITE, 0, 64 * 2**20)))
closed_case("garbage instead of a handshake: closed",
            lambda c: (c.recv_exact(18), c.send(os.urandom(4096))))
good_client("after the malformed clients")

# half a request, then the client vanishes
c = Conn(srv.sock).start()
c.send(struct.pack(">IHH", REQ_MAGIC, 0, CMD_READ))
c.close()
# vanishes in the middle of a 32 MiB reply
c = Conn(srv.sock).start()
c.request(CMD_READ, 0, 32 * 2**20, handle=3)
c.recv_exact(100000)
c.close()
# vanishes with many big replies queued
c = Conn(srv.sock).start()
for i in range(8):
    c.request(CMD_READ, i * 2**20, 32 * 2**20, handle=i)
time.sleep(0.2)
c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()		# RST
good_client("after clients vanished mid-request and mid-reply")

# slowloris: one never finishes the handshake, one never reads its replies
t0 = time.time()
lazy = Conn(srv.sock)
lazy.recv_exact(18)
stuck = Conn(srv.sock).start()
stuck.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
for i in range(16):
    stuck.request(CMD_READ, 0, 32 * 2**20, handle=i)
good_client("while a client never reads 512 MiB of replies")
t.ok(lazy.closed_by_server(15), "a handshake left unfinished is closed (--timeout 2)")
time.sleep(max(0, t0 + 6 - time.time()))	# reading nothing meanwhile
closed = stuck.closed_by_server(15)
t.ok(closed and stuck.got < 16 * 2**20,
     "a client that reads nothing is closed (--timeout 2)",
     "closed %s after the client read %d bytes" % (closed, stuck.got))
t.ok(time.time() - t0 < 20, "both within 20 s (%.1f s)" % (time.time() - t0))
lazy.close()
stuck.close()

# more connections than --max-connections
idle = [Conn(srv.sock) for _ in range(12)]
for c in idle:
    c.recv_exact(18)
extra = Conn(srv.sock)
t.ok(extra.closed_by_server(5), "connection 13 of --max-connections 12: closed")
extra.close()
for c in idle:
    c.close()
time.sleep(0.5)
good_client("after the connection limit was hit")

# many clients at once, mixing good and bad
threads = [threading.Thread(target=good_client, args=("concurrently %d" % i,)) for i in range(4)]
for th in threads:
    th.start()
for i in range(20):
    try:
        c = Conn(srv.sock)
        c.recv_exact(18)
        c.send(os.urandom(200))
        c.close()
    except Exception:  # noqa: BLE001
        pass
for th in threads:
    th.join(60)

log = srv.logtext()
t.ok("handshake not finished after 2 s" in log, "the log says why the lazy client was closed")
t.ok("client read none of" in log, "the log says why the stuck client was closed")
t.ok("refused: already 12 connections" in log, "the log says why connection 13 was refused")
t.ok(srv.alive(), "the server is still running")
srv.stop()
t.done()
