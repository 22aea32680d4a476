#!/usr/bin/env python3
# Description: base:allocation tells a client where an image reads as
# zeroes with nothing stored (a plain image's holes whose checksums say
# zeroes, a compressed image's zero extents) so that nbdinfo --map,
# qemu-img map and a sparse qemu-img convert see the source's layout and
# skip the holes, and the copy is still byte for byte the source. A hole
# punched into data (the negative control) is reported as data, and a
# client reading it gets EIO, not zeroes. On the wire: REQ_ONE gives one
# descriptor, extended headers 64-bit ones, a range of many runs is
# answered in part (at most 256 descriptors, never past the request).
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdwire import *  # noqa: E402,F403

need("nbdinfo", "qemu-img", "nbdcopy")
t = Tap("map.t")
d = scratch("map.t")
BS = 4096
MIB = 1 << 20
# data [0, 1M), hole [1M, 4M), data [4M, 4M+64K), hole to the end (the
# last block short): every edge on a 64 KiB extent boundary too
SIZE = 6 * MIB + 1000
DATA = [(0, MIB), (4 * MIB, 65536)]
WANT = [(0, MIB, 0), (MIB, 3 * MIB, 3), (4 * MIB, 65536, 0), (4 * MIB + 65536, SIZE - 4 * MIB - 65536, 3)]
PUNCH = 4 * MIB + BS			# one block inside the second data run

src = os.path.join(d, "src.raw")
with open(src, "wb") as f:
    f.truncate(SIZE)
    for off, n in DATA:
        f.seek(off)
        f.write(os.urandom(n))
# a zebra of 600 blocks, data and zeroes in turn: 600 runs
zebra = os.path.join(d, "zebra.raw")
with open(zebra, "wb") as f:
    f.truncate(600 * BS)
    for b in range(0, 600, 2):
        f.seek(b * BS)
        f.write(os.urandom(BS))

img = {n: os.path.join(d, n + ".stable") for n in ("sparse", "z", "punched", "zebra")}
mkimage(src, img["sparse"])
mkimage(src, img["z"], "-z")
mkimage(src, img["punched"])
mkimage(zebra, img["zebra"])
# the data region starts one block into the file
r = subprocess.run(["fallocate", "-p", "-o", str(BS + PUNCH), "-l", str(BS), img["punched"]])
t.is_(r.returncode, 0, "punch a hole into data block %d of punched.stable" % (PUNCH // BS))

srv = Server(t, [img["sparse"], img["z"], img["punched"], img["zebra"]], d)


def uri(name):
    return "nbd+unix:///%s?socket=%s" % (name, srv.sock)


def nbdinfo_map(name):
    r = subprocess.run(["nbdinfo", "--map", uri(name)], capture_output=True, text=True, timeout=60)
    rows = [tuple(int(x) for x in line.split()[:3]) for line in r.stdout.splitlines() if line.strip()]
    return r.returncode, rows


# --- real clients ------------------------------------------------------------
t.is_(nbdinfo_map("sparse"), (0, WANT), "nbdinfo --map, plain image: data, hole,zero, data, hole,zero")
t.is_(nbdinfo_map("z"), (0, WANT), "nbdinfo --map, compressed image: its zero extents are holes")
t.is_(nbdinfo_map("punched"), (0, WANT),
      "a hole punched into data is data: its checksum is not that of zeroes")

r = subprocess.run(["qemu-img", "map", "--output=json", uri("sparse")], capture_output=True,
                   text=True, timeout=60)
# (qemu rounds the size up to 512 bytes and maps that tail itself)
qmap = [(e["start"], e["length"], e["zero"], e["data"]) for e in json.loads(r.stdout or "[]")
        if e["start"] < SIZE]
t.is_(qmap, [(o, n, s == 3, s == 0) for o, n, s in WANT], "qemu-img map sees the same layout")

out = os.path.join(d, "copy.raw")
r = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri("sparse"), out],
                   capture_output=True, text=True, timeout=120)
t.ok(r.returncode == 0, "qemu-img convert of the sparse export", r.stderr)
with open(src, "rb") as a, open(out, "rb") as b:
    want, got = a.read(), b.read()
# (qemu-img writes whole 512-byte sectors: the copy ends in 24 zeroes)
t.ok(got[:SIZE] == want and got[SIZE:] == bytes(len(got) - SIZE),
     "the copy is byte for byte the source (%d bytes, %d written)" % (SIZE, len(got)))
st = os.stat(out)
t.ok(st.st_blocks * 512 < 2 * MIB,
     "the copy is sparse: %d bytes allocated of %d (the holes were skipped)" % (st.st_blocks * 512, SIZE))

r = subprocess.run(["nbdcopy", uri("punched"), os.path.join(d, "punched.raw")],
                   capture_output=True, text=True, timeout=120)
t.ok(r.returncode != 0 and "Input/output error" in r.stderr,
     "nbdcopy of the punched export fails with EIO, not zeroes", r.stderr[-300:])
t.ok("block %d " % (PUNCH // BS) in srv.logtext(), "the log names the punched block")


# --- on the wire -------------------------------------------------------------
def meta_conn(name, extended=False):
    c = Conn(srv.sock)
    c.greeting()
    c.option(OPT_EXTENDED_HEADERS if extended else OPT_STRUCTURED_REPLY)
    assert c.opt_reply()[2] == REP_ACK
    assert c.set_meta(name)[-1][2] == REP_ACK
    rs = c.go(name)
    assert rs[-1][2] == REP_ACK, rs
    return c


def descriptors(c, off, length, flags=0):
    """BLOCK_STATUS over 32-bit headers: [(length, status)]."""
    c.request(CMD_BLOCK_STATUS, off, length, flags=flags, handle=9)
    kind, chunks = c.reply()
    (fl, ct, h, p), = chunks
    assert ct == TYPE_BS, ct
    return [struct.unpack(">II", p[i:i + 8]) for i in range(4, len(p), 8)]


c = meta_conn("sparse")
t.is_(descriptors(c, 0, SIZE), [(n, s) for o, n, s in WANT], "BLOCK_STATUS of the whole export: 4 descriptors")
t.is_(descriptors(c, 0, SIZE, FLAG_REQ_ONE), [(MIB, 0)], "with REQ_ONE: one descriptor")
t.is_(descriptors(c, MIB + 100, 5000, FLAG_REQ_ONE), [(5000, 3)], "inside a hole, unaligned: never past the request")
t.is_(descriptors(c, MIB - 10, 20), [(10, 0), (10, 3)], "across the edge of data and a hole")
c.close()

c = meta_conn("zebra")
got = descriptors(c, 0, 600 * BS)
t.ok(len(got) == 256 and sum(n for n, s in got) == 256 * BS and
     all(s == (3 if i % 2 else 0) for i, (n, s) in enumerate(got)),
     "600 runs: the reply stops at 256 descriptors (%d, %d bytes)" % (len(got), sum(n for n, s in got)))
c.close()

c = meta_conn("z", extended=True)
c.ext_request(CMD_BLOCK_STATUS, 0, SIZE, handle=5)
(fl, ct, h, o, p), = c.ext_reply()
ctx, count = struct.unpack(">II", p[:8])
ext = [struct.unpack(">QQ", p[i:i + 16]) for i in range(8, len(p), 16)]
t.is_((ct, count, ext), (TYPE_BS_EXT, 4, [(n, s) for o, n, s in WANT]),
      "extended headers: 4 descriptors of 64 bits, counted")
c.close()

t.ok(srv.alive(), "the server is still running")
srv.stop()
t.done()
