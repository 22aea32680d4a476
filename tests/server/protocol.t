#!/usr/bin/env python3
# Description: stabled answers each handshake option and each command the
# way the NBD spec asks, seen byte for byte on a raw socket: option errors
# keep haggling going, writes/trims/zeroes get EPERM on the read-only
# export, out-of-range and malformed requests get EINVAL, and a corrupted
# block becomes an error chunk at its offset (structured replies) or an
# EIO for the whole request (simple replies) while everything else is
# delivered, and the reply stream stays in step afterwards.
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdwire import *  # noqa: E402,F403

t = Tap("protocol.t")
d = scratch("protocol.t")
BS = 4096
BAD = 37
src = os.urandom(256 * BS + 1000)
srv = Server(t, good_and_bad(d, src, BAD, BS), d)
SIZE = len(src)

# --- handshake -----------------------------------------------------------
c = Conn(srv.sock)
magic, opts, hflags = c.greeting()
t.is_((magic, opts), (NBDMAGIC, IHAVEOPT), "greeting: NBDMAGIC then IHAVEOPT")
t.is_(hflags, 3, "handshake flags: FIXED_NEWSTYLE | NO_ZEROES")
c.option(99, b"whatever")
t.is_(c.opt_reply()[2], REP_ERR_UNSUP, "unknown option 99: NBD_REP_ERR_UNSUP")
c.option(OPT_STARTTLS)
t.is_(c.opt_reply()[2], REP_ERR_POLICY, "STARTTLS: NBD_REP_ERR_POLICY (no TLS)")
c.option(OPT_LIST, b"x")
t.is_(c.opt_reply()[2], REP_ERR_INVALID, "LIST with data: NBD_REP_ERR_INVALID")
c.option(OPT_INFO, struct.pack(">I", 100) + b"good")
t.is_(c.opt_reply()[2], REP_ERR_INVALID, "INFO whose name length runs past the option: ERR_INVALID")
t.is_(c.go("nosuch", code=OPT_INFO)[-1][2], REP_ERR_UNKNOWN, "INFO on an unknown export: ERR_UNKNOWN")
c.option(OPT_SET_META, struct.pack(">II", 0, 0))
t.is_(c.opt_reply()[2], REP_ERR_INVALID, "SET_META_CONTEXT before STRUCTURED_REPLY: ERR_INVALID")
c.option(OPT_LIST)
names = []
while True:
    r = c.opt_reply()
    if r[2] != REP_SERVER:
        break
    names.append(r[3][4:4 + struct.unpack(">I", r[3][:4])[0]].decode())
t.is_((names, r[2]), (["good", "bad"], REP_ACK), "LIST: one NBD_REP_SERVER per export, then ACK")
rs = c.go("good", code=OPT_INFO, infos=(0, 1, 3))
types = [struct.unpack(">H", x[3][:2])[0] for x in rs if x[2] == REP_INFO]
t.is_((sorted(types), rs[-1][2]), ([0, 1, 3], REP_ACK), "INFO: EXPORT, NAME and BLOCK_SIZE, then ACK")
c.option(OPT_EXPORT_NAME, b"good")
size, tflags = struct.unpack(">QH", c.recv_exact(10))
t.is_(size, SIZE, "EXPORT_NAME: the export's size (no 124 zero bytes with NO_ZEROES)")
t.ok(tflags & 0x103 == 0x103, "transmission flags: HAS_FLAGS, READ_ONLY, CAN_MULTI_CONN (0x%x)" % tflags)
t.ok(not tflags & (0x20 | 0x40 | 0x8), "transmission flags: no TRIM, WRITE_ZEROES or FUA")
c.request(CMD_READ, 0, 4096, handle=5)
m, err, h, data = c.simple_reply(4096)
t.is_((m, err, h, data == src[:4096]), (SIMPLE_MAGIC, 0, 5, True), "simple reply read after EXPORT_NAME")
c.close()

c = Conn(srv.sock)
c.greeting()
c.option(OPT_ABORT)
t.is_(c.opt_reply()[2], REP_ACK, "ABORT: ACK")
t.ok(c.closed_by_server(), "ABORT: the server then closes")
c.close()

# --- transmission, structured -------------------------------------------------
c = Conn(srv.sock).start("good")
t.ok(c.tflags & 0x80, "DF is offered with structured replies")
data, errors = read_structured(c, 0, SIZE)
got = b"".join(data[k] for k in sorted(data))
t.ok(got == src and not errors, "structured read of the whole export equals the source",
     "%d bytes, errors %r" % (len(got), errors))
c.request(CMD_WRITE, 0, 4096, handle=9, payload=b"\xff" * 4096)
t.is_(c.reply(), ("simple", EPERM, 9), "WRITE with payload: EPERM")
for cmd, name in ((CMD_TRIM, "TRIM"), (CMD_WRITE_ZEROES, "WRITE_ZEROES")):
    c.request(cmd, 0, 4096, handle=10)
    t.is_(c.reply(), ("simple", EPERM, 10), "%s: EPERM" % name)
data, errors = read_structured(c, 0, 4096)
t.ok(data.get(0) == src[:4096], "after the refused write the data is unchanged")


def read_error(off, length, flags=0):
    c.request(CMD_READ, off, length, flags=flags, handle=11)
    r = c.reply()
    if r[0] != "chunks":
        return r
    return [(ctype, struct.unpack(">I", p[:4])[0]) for fl, ctype, h, p in r[1]]


t.is_(read_error(SIZE - 100, 101), [(TYPE_ERROR, EINVAL)], "read one byte past the end: EINVAL")
t.is_(read_error(SIZE, 1), [(TYPE_ERROR, EINVAL)], "read at the end: EINVAL")
t.is_(read_error(2**64 - 512, 1024), [(TYPE_ERROR, EINVAL)], "read whose offset+length overflows: EINVAL")
t.is_(read_error(0, 0), [(TYPE_ERROR, EINVAL)], "read of 0 bytes: EINVAL")
t.is_(read_error(0, 32 * 2**20 + 1), [(TYPE_ERROR, EINVAL)], "read of 32 MiB + 1: EINVAL")
t.is_(read_error(0, 4096, flags=FLAG_FUA), [(TYPE_ERROR, EINVAL)], "read with FUA (not offered): EINVAL")
t.is_(read_error(0, 4096, flags=0x80), [(TYPE_ERROR, EINVAL)], "read with an undefined flag: EINVAL")
t.is_(read_error(0, 2**20 + 500, flags=FLAG_DF), [(TYPE_ERROR, EOVERFLOW)], "DF read of more than 1 MiB: EOVERFLOW")
c.request(42, 0, 0, handle=12)
t.is_(c.reply(), ("simple", EINVAL, 12), "unknown command 42: EINVAL")
c.request(CMD_FLUSH, 0, 0, handle=13)
t.is_(c.reply(), ("simple", 0, 13), "FLUSH: success")
c.request(CMD_FLUSH, 0, 1, handle=13)
t.is_(c.reply(), ("simple", EINVAL, 13), "FLUSH with a length: EINVAL")
c.request(CMD_CACHE, 4096, 8192, handle=14)
t.is_(c.reply(), ("simple", 0, 14), "CACHE: success")
c.request(CMD_CACHE, SIZE, 8192, handle=14)
t.is_(c.reply(), ("simple", EINVAL, 14), "CACHE past the end: EINVAL")
c.request(CMD_BLOCK_STATUS, 0, 4096, handle=15)
t.is_(c.reply(), ("simple", EINVAL, 15), "BLOCK_STATUS without a meta context: EINVAL")
# many requests in flight, answered whole and in step
for i in range(64):
    c.request(CMD_READ, (i * 7919) % (SIZE - 70000), 65536 + i, handle=1000 + i)
okc = 0
got = replies(c, 64)
for i in range(64):
    off = (i * 7919) % (SIZE - 70000)
    okc += assemble(got.get(1000 + i, []), off, 65536 + i) == src[off:off + 65536 + i]
t.is_(okc, 64, "64 pipelined reads: every reply complete and correct")
c.request(CMD_DISC, 0, 0)
t.ok(c.closed_by_server(), "DISC: the server closes")
c.close()

# --- a corrupted block: structured ------------------------------------------------
c = Conn(srv.sock).start("bad")
lo, hi = (BAD - 1) * BS, (BAD + 2) * BS
data, errors = read_structured(c, lo, hi - lo)
t.is_(errors, [(EIO, BAD * BS)], "read over block %d: one ERROR_OFFSET chunk, EIO at %d" % (BAD, BAD * BS))
t.is_(sorted((k, len(v)) for k, v in data.items()), [(lo, BS), ((BAD + 1) * BS, BS)],
      "read over block %d: the blocks around it are delivered" % BAD)
t.ok(all(v == src[k:k + len(v)] for k, v in data.items()), "the delivered data is the source's")
data, errors = read_structured(c, BAD * BS + 100, 50)
t.is_((data, errors), ({}, [(EIO, BAD * BS + 100)]), "50 bytes inside block %d: EIO at the request's offset" % BAD)
data, errors = read_structured(c, lo, hi - lo, flags=FLAG_DF)
t.is_((data, errors), ({}, [(EIO, BAD * BS)]), "DF read over block %d: no content chunk, only the error" % BAD)
data, errors = read_structured(c, 0, SIZE)
t.is_(errors, [(EIO, BAD * BS)], "whole-export read: exactly one error, at block %d" % BAD)
t.is_(sum(len(v) for v in data.values()), SIZE - BS, "whole-export read: every other byte delivered")
c.close()

# --- a corrupted block: simple replies ----------------------------------------------
c = Conn(srv.sock).start("bad", structured=False)
c.request(CMD_READ, lo, hi - lo, handle=21)
t.is_(c.simple_reply(hi - lo)[:3], (SIMPLE_MAGIC, EIO, 21), "simple read over block %d: EIO, no data" % BAD)
c.request(CMD_READ, 0, BS, handle=22)
m, err, h, payload = c.simple_reply(BS)
t.is_((err, h, payload == src[:BS]), (0, 22, True), "the next simple read is in step and correct")
c.close()

# --- base:allocation ----------------------------------------------------------------
c = Conn(srv.sock)
c.greeting()
c.option(OPT_STRUCTURED_REPLY)
c.opt_reply()
q = b"base:allocation"
r1, r2 = c.set_meta("good", q)
t.is_((r1[2], r1[3][4:], r2[2]), (REP_META, q, REP_ACK), "SET_META_CONTEXT base:allocation: selected")
rs = c.go("good")
c.request(CMD_BLOCK_STATUS, 4096, 10000, handle=31)
kind, chunks = c.reply()
t.is_([(ct, p) for fl, ct, h, p in chunks], [(TYPE_BS, struct.pack(">III", struct.unpack(">I", r1[3][:4])[0], 10000, 0))],
      "BLOCK_STATUS: one descriptor, all data")
c.close()

t.ok(srv.alive(), "the server is still running")
srv.stop()
t.done()
