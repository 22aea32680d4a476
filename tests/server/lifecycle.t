#!/usr/bin/env python3
# Description: the daemon's life: SIGTERM lets requests already received
# finish (their replies arrive whole) before it exits 0; --idle-timeout
# closes quiet connections; --require-guarantee refuses to start below the
# level asked for; systemd socket activation (LISTEN_PID/LISTEN_FDS)
# serves on the inherited socket; SIGUSR1 rewrites --stats-file.
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdwire import *  # noqa: E402,F403

t = Tap("lifecycle.t")
d = scratch("lifecycle.t")
src = os.urandom(64 * 2**20)
raw = os.path.join(d, "src.raw")
img = os.path.join(d, "disk.stable")
with open(raw, "wb") as f:
    f.write(src)
mkimage(raw, img)
stabled = os.path.join(os.environ["STABLE_BIN"], "stabled")

# --- SIGTERM finishes in-flight requests --------------------------------------
srv = Server(t, ["--stats-file", os.path.join(d, "stats"), img], d)
c = Conn(srv.sock, timeout=30).start()
for i in range(8):
    c.request(CMD_READ, i * 4 * 2**20, 4 * 2**20, handle=100 + i)
time.sleep(0.5)		# received, and replies are waiting in the socket
srv.proc.send_signal(signal.SIGTERM)
good = 0
try:
    got = replies(c, 8)
    for i in range(8):
        off = i * 4 * 2**20
        good += assemble(got.get(100 + i, []), off, 4 * 2**20) == src[off:off + 4 * 2**20]
except Closed as e:
    t.ok(False, "replies after SIGTERM", str(e))
t.is_(good, 8, "SIGTERM: all 8 requests in flight are answered whole and correct")
t.ok(c.closed_by_server(20), "SIGTERM: then the connection is closed")
c.close()
try:
    rc = srv.proc.wait(timeout=20)
except subprocess.TimeoutExpired:
    rc = None
    srv.kill()
t.is_(rc, 0, "SIGTERM: stabled exits 0")
log = srv.logtext()
t.ok("finishing in-flight requests" in log, "SIGTERM is logged")
t.ok(not any("Sanitizer" in l or "runtime error" in l for l in log.splitlines()),
     "no sanitizer report after SIGTERM")
stats = dict(l.split() for l in open(os.path.join(d, "stats")))
t.ok(int(stats.get("bytes", 0)) >= 32 * 2**20, "--stats-file is written at exit (bytes=%s)" % stats.get("bytes"))
t.ok(int(stats.get("connections", 0)) == 1, "--stats-file counts the connection")
os.unlink(srv.log)

# --- SIGUSR1 and --idle-timeout ---------------------------------------------------
srv = Server(t, ["--idle-timeout", "1", "--stats-file", os.path.join(d, "stats2"), img], d)
c = Conn(srv.sock).start()
t0 = time.time()
t.ok(c.closed_by_server(10), "--idle-timeout 1: a quiet connection is closed")
t.ok(time.time() - t0 < 5, "--idle-timeout 1: within 5 s (%.1f s)" % (time.time() - t0))
c.close()
srv.proc.send_signal(signal.SIGUSR1)
for _ in range(50):
    if os.path.exists(os.path.join(d, "stats2")):
        break
    time.sleep(0.1)
t.ok(os.path.exists(os.path.join(d, "stats2")), "SIGUSR1 writes --stats-file while running")
t.ok(srv.alive(), "SIGUSR1 does not stop the server")
srv.stop()
os.unlink(srv.log)

# --- --require-guarantee ---------------------------------------------------------------
r = subprocess.run([stabled, "-f", "-U", os.path.join(d, "g.sock"), "--require-guarantee=none",
                    "--run", "true", img], capture_output=True, text=True, timeout=60)
t.is_(r.returncode, 0, "--require-guarantee=none starts")
r = subprocess.run([stabled, "-f", "-U", os.path.join(d, "g.sock"), "--require-guarantee=kernel-ro",
                    "--run", "true", img], capture_output=True, text=True, timeout=60)
if r.returncode == 0:
    t.ok("guarantee kernel-ro" in r.stderr, "--require-guarantee=kernel-ro: this kernel has kmbuf-ro")
else:
    t.is_(r.returncode, 1, "--require-guarantee=kernel-ro without kmbuf-ro: exits 1")
    t.ok("refusing to start" in r.stderr and "kernel-ro" in r.stderr,
         "--require-guarantee=kernel-ro: the message says why", r.stderr[-400:])
    t.ok(not os.path.exists(os.path.join(d, "g.sock")), "no socket is left behind")

# --- systemd socket activation -------------------------------------------------------
path = os.path.join(d, "activated.sock")
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(path)
ls.listen(8)
fd = ls.fileno()

# LISTEN_PID must be the server's own pid: set it in the child before exec
env = dict(os.environ, LISTEN_FDS="1")
logf = open(os.path.join(d, "activated.log"), "wb")
p = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$0" -f "$1"', stabled, img],
                     env=env, stdout=logf, stderr=logf, pass_fds=(fd,),
                     preexec_fn=lambda: os.dup2(fd, 3))
ls.close()
try:
    c = Conn(path, timeout=20).start()
    data, errors = read_structured(c, 4096, 65536)
    t.ok(data.get(4096) == src[4096:4096 + 65536] and not errors,
         "socket activation: served on the inherited socket")
    c.close()
except Exception as e:  # noqa: BLE001
    t.ok(False, "socket activation: served on the inherited socket", repr(e))
p.send_signal(signal.SIGTERM)
try:
    t.is_(p.wait(timeout=20), 0, "socket activation: exits 0 on SIGTERM")
except subprocess.TimeoutExpired:
    p.kill()
    t.ok(False, "socket activation: exits 0 on SIGTERM")
alog = open(os.path.join(d, "activated.log"), errors="replace").read()
t.ok("socket from systemd" in alog, "socket activation: logged", alog[-400:])
t.done()
