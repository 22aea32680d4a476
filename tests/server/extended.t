#!/usr/bin/env python3
# Description: NBD_OPT_EXTENDED_HEADERS as the spec has it, byte for byte
# on a raw socket (Debian's libnbd 1.14 and qemu 7.2 do not speak it):
# negotiating it implies structured replies and refuses to go back, then
# every request is 32 bytes with a 64-bit length and every reply an
# extended chunk echoing the request's offset, with no simple replies.
# Lengths past 32 bits are refused, never truncated; payloads are
# skipped as their flag says; block status is the 64-bit chunk; and a
# request in the wrong form, EXPORT_NAME after negotiation or an
# oversized payload ends the connection; clients that vanish inside an
# extended header or reply cost nothing. Also: meta contexts hold only
# for the export SET_META_CONTEXT named.
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdwire import *  # noqa: E402,F403

t = Tap("extended.t")
d = scratch("extended.t")
BS = 4096
BAD = 37
src = os.urandom(2**21 + 1000)
srv = Server(t, good_and_bad(d, src, BAD, BS), d)
SIZE = len(src)


def ext_start(name="good", meta=True):
    c = Conn(srv.sock)
    c.greeting()
    c.option(OPT_EXTENDED_HEADERS)
    assert c.opt_reply()[2] == REP_ACK
    if meta:
        c.set_meta(name)
    rs = c.go(name)
    assert rs[-1][2] == REP_ACK, rs
    return c


def errors_of(chunks):
    return [(ct, struct.unpack(">I", p[:4])[0]) for fl, ct, h, o, p in chunks
            if ct & 0x8000]


# --- negotiation ---------------------------------------------------------------
c = Conn(srv.sock)
c.greeting()
c.option(OPT_EXTENDED_HEADERS, b"x")
t.is_(c.opt_reply()[2], REP_ERR_INVALID, "EXTENDED_HEADERS with data: ERR_INVALID")
c.option(OPT_EXTENDED_HEADERS)
t.is_(c.opt_reply()[2], REP_ACK, "EXTENDED_HEADERS: ACK")
c.option(OPT_EXTENDED_HEADERS)
t.is_(c.opt_reply()[2], REP_ERR_INVALID, "EXTENDED_HEADERS twice: ERR_INVALID")
c.option(OPT_STRUCTURED_REPLY)
t.is_(c.opt_reply()[2], REP_ERR_EXT_HEADER_REQD,
      "STRUCTURED_REPLY after EXTENDED_HEADERS: ERR_EXT_HEADER_REQD")
rs = c.set_meta("good")
t.is_([r[2] for r in rs], [REP_META, REP_ACK],
      "SET_META_CONTEXT needs no STRUCTURED_REPLY once extended headers are on")
c.option(OPT_EXPORT_NAME, b"good")
t.ok(c.closed_by_server(), "EXPORT_NAME after EXTENDED_HEADERS: closed (it cannot be refused)")
c.close()

# --- transmission ---------------------------------------------------------------
c = ext_start()
c.ext_request(CMD_READ, 0, SIZE, handle=3)
chunks = c.ext_reply()
data = {}
for fl, ct, h, o, p in chunks:
    if ct == TYPE_DATA:
        data[struct.unpack(">Q", p[:8])[0]] = p[8:]
got = b"".join(data[k] for k in sorted(data))
t.ok(got == src, "extended read of the whole export equals the source")
t.ok(all(h == 3 and o == 0 for fl, ct, h, o, p in chunks),
     "every chunk carries the cookie and the request's offset")
c.ext_request(CMD_READ, 2**20, 2**20, handle=4)
chunks = c.ext_reply()
t.is_([(fl, ct, o, len(p)) for fl, ct, h, o, p in chunks], [(1, TYPE_DATA, 2**20, 2**20 + 8)],
      "a 1 MiB read is one final data chunk")
t.ok(chunks[0][4][8:] == src[2**20:2**21], "and its bytes are the source's")
c.ext_request(CMD_READ, 0, 2**32 + 4096, handle=5)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EINVAL)],
      "read of 4 GiB + 4 KiB: EINVAL, not a 4 KiB read of a truncated length")
c.ext_request(CMD_READ, SIZE - 10, 11, handle=6)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EINVAL)], "read one byte past the end: EINVAL")
c.ext_request(CMD_FLUSH, 0, 0, handle=7)
t.is_([(fl, ct, h, p) for fl, ct, h, o, p in c.ext_reply()], [(1, TYPE_NONE, 7, b"")],
      "FLUSH: a final NONE chunk, not a simple reply")
c.ext_request(CMD_TRIM, 0, 2**33, handle=8)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EPERM)], "TRIM of 8 GiB: EPERM")
c.ext_request(CMD_WRITE, 4096, 4096, flags=FLAG_PAYLOAD_LEN, handle=9, payload=b"\xee" * 4096)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EPERM)], "WRITE with its payload: EPERM")
c.ext_request(CMD_WRITE, 4096, 4096, handle=10)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EINVAL)],
      "WRITE without NBD_CMD_FLAG_PAYLOAD_LEN: EINVAL (and no payload is read)")
c.ext_request(CMD_CACHE, 0, 10, flags=FLAG_PAYLOAD_LEN, handle=11, payload=b"0123456789")
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EINVAL)], "CACHE with a payload: EINVAL, payload skipped")
c.ext_request(CMD_CACHE, 0, SIZE, handle=12)
t.is_([ct for fl, ct, h, o, p in c.ext_reply()], [TYPE_NONE], "CACHE of the whole export: success")
c.ext_request(CMD_BLOCK_STATUS, 4096, 2**20, handle=13)
chunks = c.ext_reply()
t.is_([(ct, p) for fl, ct, h, o, p in chunks],
      [(TYPE_BS_EXT, struct.pack(">IIQQ", 1, 1, 2**20, 0))],
      "BLOCK_STATUS: the 64-bit chunk, one descriptor, all data")
c.ext_request(CMD_BLOCK_STATUS, 0, 2**32 + 1, handle=14)
t.is_(errors_of(c.ext_reply()), [(TYPE_ERROR, EINVAL)], "BLOCK_STATUS past the end: EINVAL")
c.ext_request(CMD_READ, 100, 5000, handle=15)
chunks = c.ext_reply()
t.ok(chunks[-1][4][8:] == src[100:5100], "after all that the stream is in step")
c.request(CMD_READ, 0, 4096, handle=16)
t.ok(c.closed_by_server(), "a compact request after extended headers: closed")
c.close()

c = ext_start()
c.ext_request(CMD_WRITE, 0, 2**30, flags=FLAG_PAYLOAD_LEN, handle=17)
t.ok(c.closed_by_server(), "a 1 GiB payload: closed rather than read")
c.close()

c = ext_start()
c.send(struct.pack(">IHHQ", EXT_REQ_MAGIC, 0, CMD_READ, 1) + b"\0" * 4)
c.close()		# vanishes inside an extended header
c = ext_start()
c.ext_request(CMD_READ, 0, 2**21, handle=21)
c.recv_exact(1000)
c.close()		# and in the middle of an extended reply
c = ext_start()
c.ext_request(CMD_READ, SIZE - 1, 1, handle=22)
t.ok(c.ext_reply()[-1][4][8:] == src[-1:], "after clients vanished mid-header and mid-reply, the last byte reads")
c.close()

c = Conn(srv.sock).start("good")
c.ext_request(CMD_READ, 0, 4096, handle=18)
t.ok(c.closed_by_server(), "an extended request without EXTENDED_HEADERS: closed")
c.close()

c = ext_start("bad")
lo, hi = (BAD - 1) * BS, (BAD + 2) * BS
c.ext_request(CMD_READ, lo, hi - lo, handle=19)
chunks = c.ext_reply()
errs = [(ct, struct.unpack(">Q", p[6 + struct.unpack(">H", p[4:6])[0]:][:8])[0])
        for fl, ct, h, o, p in chunks if ct == TYPE_ERROR_OFFSET]
good = sorted((struct.unpack(">Q", p[:8])[0], p[8:]) for fl, ct, h, o, p in chunks
              if ct == TYPE_DATA)
t.is_(errs, [(TYPE_ERROR_OFFSET, BAD * BS)], "a corrupt block: ERROR_OFFSET at its offset")
t.is_([(k, v == src[k:k + len(v)], len(v)) for k, v in good],
      [(lo, True, BS), ((BAD + 1) * BS, True, BS)], "the blocks around it are delivered")
c.close()

# --- meta contexts belong to the export they were set for ---------------------------
c = Conn(srv.sock)
c.greeting()
c.option(OPT_STRUCTURED_REPLY)
c.opt_reply()
c.set_meta("good")
c.go("bad")
c.request(CMD_BLOCK_STATUS, 0, 4096, handle=20)
t.is_(c.reply(), ("simple", EINVAL, 20),
      "SET_META_CONTEXT for 'good', GO 'bad': no context, BLOCK_STATUS is EINVAL")
c.close()
c = Conn(srv.sock)
c.greeting()
c.option(OPT_STRUCTURED_REPLY)
c.opt_reply()
c.set_meta("bad")
c.set_meta("good")
c.go("good")
c.request(CMD_BLOCK_STATUS, 0, 4096, handle=21)
t.is_(c.reply()[1][0][1], TYPE_BS, "the last SET_META_CONTEXT counts: 'good' has base:allocation")
c.close()

t.ok(srv.alive(), "the server is still running")
srv.stop()
t.done()
