#!/usr/bin/env python3
# Description: a writer updating a block in place (vblocks update: data,
# parity, checksums, header, docs/format.md) that pauses between its
# steps leaves the block unverifiable for a while. A client that reads
# it in that while gets the new block, whole, once the writer is done,
# not EIO: stabled reads a failed piece again after 1, 4, 16 and 64 ms
# (server/later.c). Both with structured and with simple replies.
# Negative control: a writer that pauses far longer than that gets the
# client EIO at the block's offset, the log names the block, and the
# read after the writer finished gets the new block. Raw socket, so
# the read is sent the moment the new data is on disk.
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from nbdwire import *  # noqa: E402,F403

t = Tap("paused-writer.t")
d = scratch("paused-writer.t")
BS = 4096
NBLOCKS = 64
VBLOCKS = os.path.join(os.environ["STABLE_BIN"], "..", "tests", "vblocks")
src = os.path.join(d, "src")
img = os.path.join(d, "pw.stable")
subprocess.run([VBLOCKS, "gen", src, str(NBLOCKS), str(BS)], check=True)
mkimage(src, img, "-b", str(BS))
srv = Server(t, [img], d)


def read_block(c, block, structured):
    """(data or None, [errors]) for one block, as the server answered."""
    if structured:
        data, errors = read_structured(c, block * BS, BS)
        return data.get(block * BS), errors
    c.request(CMD_READ, block * BS, BS, handle=9)
    magic, err, handle, data = c.simple_reply(BS)
    return (data if not err else None), ([(err, None)] if err else [])


def update_while_reading(block, pause_us, structured):
    """Starts a paused update of block, reads it as soon as its new data
    is on disk; returns (version written, data, errors, data after)."""
    c = Conn(srv.sock).start("pw", structured)
    w = subprocess.Popen([VBLOCKS, "update", img, str(block), str(pause_us)],
                         stdout=subprocess.PIPE, text=True)
    line = w.stdout.readline().split()
    version = int(line[1]) if len(line) == 2 and line[0] == "data" else None
    data, errors = read_block(c, block, structured)
    rest = w.communicate()[0]
    t.ok(w.returncode == 0 and "committed" in rest, "the writer updated block %d" % block,
         "vblocks said %r %r" % (line, rest))
    after, after_errors = read_block(c, block, structured)
    c.close()
    return version, data, errors, after, after_errors


def header(block, version):
    return struct.pack("<QQ", block, version)


for structured in (True, False):
    kind = "structured" if structured else "simple"
    block = 5 if structured else 9
    # 10 ms between steps: unverifiable for about 30 ms, well inside 85
    v, data, errors, after, _ = update_while_reading(block, 10000, structured)
    t.is_(errors, [], "%s: no error for a block read while its writer paused" % kind)
    t.ok(data is not None and data[:16] == header(block, v),
         "%s: the read got the new version of the block" % kind,
         "got %r" % (data[:16] if data else None))
    t.ok(data is not None and data == after,
         "%s: whole: the same bytes as a read after the writer finished" % kind)

log = srv.logtext()
t.ok("verified when read again after" in log, "the log says the block was verified when read again",
     log[-600:])

# negative control: 200 ms between steps, unverifiable for 600 ms
block = 17
v, data, errors, after, after_errors = update_while_reading(block, 200000, True)
t.is_(errors, [(EIO, block * BS)], "a writer pausing 200 ms: EIO at the block's offset")
t.ok(data is None, "and no data for it")
t.ok(after is not None and after[:16] == header(block, v) and not after_errors,
     "the read after the writer finished gets the new version")
t.ok("block %d (bytes %d-%d)" % (block, block * BS, block * BS + BS - 1) in srv.logtext(),
     "the log names the block that failed")

srv.proc.send_signal(signal.SIGUSR1)
stats = ""
for _ in range(50):
    stats = [line for line in srv.logtext().splitlines() if "stats:" in line]
    if stats:
        break
    time.sleep(0.1)
field = stats[-1].split("delayed_rereads=") if stats else []
n = int(field[1].split()[0]) if len(field) == 2 else 0
t.ok(n >= 5, "the counters show the delayed re-reads (delayed_rereads=%d)" % n)
t.ok(srv.alive(), "stabled is still serving")
srv.stop()
t.done()
