#!/usr/bin/env python3
"""Writes the fuzzer's seed inputs (client byte streams) into seeds/.

Each seed starts with the rhythm byte fuzz-nbd.c reads, then a realistic
conversation: client flags, options, then requests, so that the fuzzer
starts from deep inside the protocol instead of guessing magic numbers.
"""
import os
import struct
import sys

OPTS = 0x49484156454F5054
REQ = 0x25609513
EXT_REQ = 0x21E41C71


def opt(code, data=b""):
    return struct.pack(">QII", OPTS, code, len(data)) + data


def go(name, code=7, infos=(3,)):
    n = name.encode()
    return opt(code, struct.pack(">I", len(n)) + n +
               struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos))


def meta(code, name, queries):
    n = name.encode()
    d = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q.encode()
    return opt(code, d)


def req(cmd, off, length, flags=0, handle=1):
    return struct.pack(">IHHQQI", REQ, flags, cmd, handle, off, length)


def ext_req(cmd, off, length, flags=0, handle=1, payload=b""):
    """An extended request (after NBD_OPT_EXTENDED_HEADERS), 64-bit length."""
    return struct.pack(">IHHQQQ", EXT_REQ, flags, cmd, handle, off, length) + payload


def main(out):
    os.makedirs(out, exist_ok=True)
    flags = struct.pack(">I", 3)
    disc = req(2, 0, 0)
    seeds = {
        "go-read-parity": b"\x00" + flags + opt(8) + go("p") +
        req(0, 0, 65536) + req(0, 3 * 4096, 4096, handle=2) + req(0, 90000, 7304, handle=3) + disc,
        "go-read-eio": b"\x31" + flags + opt(8) + go("n") +
        req(0, 4096, 8 * 4096) + req(0, 5 * 4096, 100, flags=4, handle=2) + disc,
        "simple-read-eio": b"\x02" + flags + go("n") + req(0, 0, 98304) + disc,
        "export-name-z": b"\x47" + flags + opt(1, b"z") + req(0, 1000, 50000) +
        req(5, 0, 4096) + req(3, 0, 0) + req(1, 0, 4) + b"abcd" + req(4, 0, 4096) + disc,
        "list-info-meta": b"\x10" + flags + opt(3) + go("p", 6, (0, 1, 2, 3)) + opt(8) +
        meta(9, "", []) + meta(10, "z", ["base:allocation"]) + go("z") +
        req(7, 0, 4096, flags=8) + req(0, 0, 100, flags=1) + req(9, 0, 0) + disc,
        "abort": b"\x05" + flags + opt(99, b"xyz") + opt(5) + opt(2),
        "bad-magic": b"\x00" + flags + opt(8) + go("p") + b"\x00" * 28,
        "extended": b"\x21" + flags + opt(11) + opt(8) + meta(10, "n", ["base:allocation"]) +
        go("n") + ext_req(0, 4096, 8 * 4096) + ext_req(0, 0, 2**32 + 512, handle=2) +
        ext_req(7, 0, 2**33, handle=3) + ext_req(7, 100, 5000, handle=4) +
        ext_req(1, 0, 4, flags=32, handle=5, payload=b"abcd") + ext_req(1, 0, 4, handle=6) +
        ext_req(5, 0, 3, flags=32, handle=7, payload=b"xyz") + ext_req(3, 0, 0, handle=8) +
        req(0, 0, 4096) + ext_req(2, 0, 0),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds"))
