"""Raw-socket helpers for the stabled protocol and hostile-client tests.

Not an NBD client library: just enough framing to send exactly the bytes
a test wants (including wrong ones) and to read back what the server said,
with a timeout on every read. Also a small TAP writer and a way to run
stabled from a test, the Python twin of tests/server/lib.sh.
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
CHUNK_MAGIC = 0x668E33EF
EXT_REQ_MAGIC = 0x21E41C71
EXT_REPLY_MAGIC = 0x6E8A278C

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META, OPT_SET_META, OPT_EXTENDED_HEADERS = 8, 9, 10, 11
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
REP_ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = REP_ERR | 1, REP_ERR | 2, REP_ERR | 3
REP_ERR_UNKNOWN = REP_ERR | 6
REP_ERR_EXT_HEADER_REQD = REP_ERR | 10
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES = 0, 1, 2, 3, 4, 5, 6
CMD_BLOCK_STATUS = 7
FLAG_FUA, FLAG_DF, FLAG_REQ_ONE, FLAG_PAYLOAD_LEN = 1, 4, 8, 32
TYPE_NONE, TYPE_DATA, TYPE_BS, TYPE_BS_EXT, TYPE_ERROR, TYPE_ERROR_OFFSET = 0, 1, 5, 6, 32769, 32770
EPERM, EIO, EINVAL, EOVERFLOW = 1, 5, 22, 75


class Closed(Exception):
    pass


class Tap:
    def __init__(self, name):
        self.name = name
        self.n = 0
        self.failed = 0
        # tests may report from several client threads at once (hostile.t):
        # a number and its line must not be split between two of them
        self.lock = threading.Lock()

    def ok(self, cond, msg, *detail):
        with self.lock:
            self.n += 1
            print(("ok %d - %s" if cond else "not ok %d - %s") % (self.n, msg), flush=True)
            if not cond:
                self.failed += 1
                for d in (self.name,) + detail:
                    print("#   %s" % d, file=sys.stderr, flush=True)
        return cond

    def is_(self, got, want, msg):
        return self.ok(got == want, msg, "got:      %r" % (got,), "expected: %r" % (want,))

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def need(*progs):
    for p in progs:
        if not any(os.access(os.path.join(d, p), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            print("1..0 # SKIP %s is not installed" % p)
            sys.exit(0)


class Server:
    """stabled -f on a Unix socket in a scratch folder; stop() checks it."""

    def __init__(self, tap, args, tmpdir):
        self.tap = tap
        self.sock = os.path.join(tmpdir, "sock")
        self.log = os.path.join(tmpdir, "stabled.log")
        binary = os.path.join(os.environ["STABLE_BIN"], "stabled")
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([binary, "-f", "-U", self.sock] + args,
                                     stdout=self.logf, stderr=self.logf)
        for _ in range(100):
            if os.path.exists(self.sock) or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(self.sock):
            tap.ok(False, "stabled starts", self.logtext()[-800:])
            self.kill()
            tap.done()

    def logtext(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.tap.ok(False, "stabled exits within 30 s of SIGTERM")
            self.kill()
            return
        self.tap.is_(rc, 0, "stabled exits 0 after SIGTERM")
        log = self.logtext()
        bad = [l for l in log.splitlines()
               if "Sanitizer" in l or "runtime error:" in l]
        self.tap.ok(not bad, "no sanitizer report in the server log", *bad[:5])


def mkimage(src, dst, *opts):
    tool = os.path.join(os.environ["STABLE_BIN"], "stable-mkimage")
    subprocess.run([tool, "-q"] + list(opts) + [src, dst], check=True,
                   stdout=subprocess.DEVNULL)


def good_and_bad(d, src, bad_block, bs=4096):
    """Makes good.stable and bad.stable in d from the bytes src; in
    bad.stable one bit of data block bad_block is flipped (its data starts
    one 4 KiB header block in). Returns the two paths."""
    raw = os.path.join(d, "src.raw")
    with open(raw, "wb") as f:
        f.write(src)
    paths = [os.path.join(d, n) for n in ("good.stable", "bad.stable")]
    for p in paths:
        mkimage(raw, p)
    with open(paths[1], "r+b") as f:
        f.seek(bs + bad_block * bs + 10)
        b = f.read(1)
        f.seek(bs + bad_block * bs + 10)
        f.write(bytes([b[0] ^ 0x40]))
    return paths


class Conn:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                got = self.s.recv(n - len(buf))
            except socket.timeout:
                raise Closed("timeout after %d of %d bytes" % (len(buf), n))
            except ConnectionResetError:
                raise Closed("reset after %d of %d bytes" % (len(buf), n))
            if not got:
                raise Closed("EOF after %d of %d bytes" % (len(buf), n))
            buf += got
        return buf

    def closed_by_server(self, wait=10):
        """True if the server closes the connection (EOF/reset) in time."""
        self.got = 0
        self.s.settimeout(wait)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
                self.got += len(b)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # --- handshake ---
    def greeting(self, cflags=3):
        g = self.recv_exact(18)
        magic, opts, hflags = struct.unpack(">QQH", g)
        self.send(struct.pack(">I", cflags))
        return magic, opts, hflags

    def option(self, code, data=b"", magic=IHAVEOPT, length=None):
        self.send(struct.pack(">QII", magic, code, len(data) if length is None else length) + data)

    def opt_reply(self):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv_exact(20))
        data = self.recv_exact(length) if length else b""
        return magic, opt, rtype, data

    def go(self, name="", infos=(3,), code=OPT_GO):
        n = name.encode()
        self.option(code, struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) +
                    b"".join(struct.pack(">H", i) for i in infos))
        replies = []
        while True:
            r = self.opt_reply()
            replies.append(r)
            if r[2] == REP_ACK or r[2] & REP_ERR:
                return replies

    def set_meta(self, name, query=b"base:allocation"):
        """NBD_OPT_SET_META_CONTEXT for export name with one query: the
        replies, through the final ACK or error."""
        n = name.encode()
        self.option(OPT_SET_META, struct.pack(">I", len(n)) + n +
                    struct.pack(">II", 1, len(query)) + query)
        replies = []
        while True:
            r = self.opt_reply()
            replies.append(r)
            if r[2] == REP_ACK or r[2] & REP_ERR:
                return replies

    def start(self, name="", structured=True):
        self.greeting()
        if structured:
            self.option(OPT_STRUCTURED_REPLY)
            assert self.opt_reply()[2] == REP_ACK
        rs = self.go(name)
        assert rs[-1][2] == REP_ACK, rs
        for r in rs:
            if r[2] == REP_INFO and struct.unpack(">H", r[3][:2])[0] == 0:
                self.size, self.tflags = struct.unpack(">QH", r[3][2:12])
        return self

    # --- transmission ---
    def request(self, cmd, off, length, flags=0, handle=1, magic=REQ_MAGIC, payload=b""):
        self.send(struct.pack(">IHHQQI", magic, flags, cmd, handle, off, length) + payload)

    def ext_request(self, cmd, off, length, flags=0, handle=1, magic=EXT_REQ_MAGIC,
                    payload=b""):
        self.send(struct.pack(">IHHQQQ", magic, flags, cmd, handle, off, length) + payload)

    def ext_reply(self):
        """One whole extended reply: a list of (flags, type, handle, offset, payload)."""
        chunks = []
        while True:
            magic, flags, ctype, handle, off, length = struct.unpack(
                ">IHHQQQ", self.recv_exact(32))
            if magic != EXT_REPLY_MAGIC:
                raise Closed("bad extended reply magic 0x%08x" % magic)
            chunks.append((flags, ctype, handle, off, self.recv_exact(length) if length else b""))
            if flags & 1:
                return chunks

    def simple_reply(self, length=0):
        magic, err, handle = struct.unpack(">IIQ", self.recv_exact(16))
        data = self.recv_exact(length) if (length and magic == SIMPLE_MAGIC and not err) else b""
        return magic, err, handle, data

    def chunk(self):
        magic, flags, ctype, handle, length = struct.unpack(">IHHQI", self.recv_exact(20))
        return magic, flags, ctype, handle, self.recv_exact(length) if length else b""

    def unit(self):
        """What comes next on the wire: a simple reply's header ('simple',
        err, handle) or one structured chunk ('chunk', flags, type,
        handle, payload)."""
        magic = struct.unpack(">I", self.recv_exact(4))[0]
        if magic == SIMPLE_MAGIC:
            err, handle = struct.unpack(">IQ", self.recv_exact(12))
            return ("simple", err, handle)
        if magic != CHUNK_MAGIC:
            raise Closed("bad reply magic 0x%08x" % magic)
        flags, ctype, handle, length = struct.unpack(">HHQI", self.recv_exact(16))
        return ("chunk", flags, ctype, handle, self.recv_exact(length) if length else b"")

    def reply(self):
        """One whole reply, its chunks in a row: ('simple', err, handle) or
        ('chunks', [(flags, type, handle, payload), ...])."""
        u = self.unit()
        if u[0] == "simple":
            return u
        chunks = [u[1:]]
        while not chunks[-1][0] & 1:
            u = self.unit()
            if u[0] != "chunk":
                raise Closed("a simple reply inside a structured one")
            chunks.append(u[1:])
        return ("chunks", chunks)


def replies(conn, n):
    """n whole replies to requests in flight together. Chunks of different
    replies may interleave and a reply's data chunks may come in any order
    (the spec allows both): {handle: ('simple', err) or [(flags, type,
    payload), ...]}."""
    out, done = {}, 0
    while done < n:
        u = conn.unit()
        if u[0] == "simple":
            out[u[2]] = ("simple", u[1])
            done += 1
            continue
        flags, ctype, handle, payload = u[1:]
        out.setdefault(handle, []).append((flags, ctype, payload))
        if flags & 1:
            done += 1
    return out


def assemble(chunks, off, length):
    """The bytes [off, off + length) from a structured reply's data chunks,
    each placed at its own offset; None if an error chunk came or a byte
    is missing or outside the range."""
    buf, have = bytearray(length), 0
    for fl, ctype, payload in chunks:
        if ctype in (TYPE_ERROR, TYPE_ERROR_OFFSET):
            return None
        if ctype == TYPE_DATA:
            at = struct.unpack(">Q", payload[:8])[0] - off
            if at < 0 or at + len(payload) - 8 > length:
                return None
            buf[at:at + len(payload) - 8] = payload[8:]
            have += len(payload) - 8
    return bytes(buf) if have == length else None


def read_structured(conn, off, length, flags=0, handle=7):
    """Reads with structured replies; returns (data dict offset->bytes, errors)."""
    conn.request(CMD_READ, off, length, flags=flags, handle=handle)
    kind, chunks = conn.reply()
    data, errors = {}, []
    for fl, ctype, h, payload in chunks:
        assert h == handle
        if ctype == TYPE_DATA:
            data[struct.unpack(">Q", payload[:8])[0]] = payload[8:]
        elif ctype == TYPE_ERROR_OFFSET:
            err, mlen = struct.unpack(">IH", payload[:6])
            errors.append((err, struct.unpack(">Q", payload[6 + mlen:14 + mlen])[0]))
        elif ctype == TYPE_ERROR:
            err, mlen = struct.unpack(">IH", payload[:6])
            errors.append((err, None))
    return data, errors


def scratch(name):
    base = os.environ.get("STABLE_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix=name + ".", dir=base)
    if not os.environ.get("KEEP_TMP"):
        atexit.register(shutil.rmtree, d, True)
    return d
