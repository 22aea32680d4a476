#!/bin/sh
# Description: --run starts the server, runs the command with $uri,
# $unixsocket or $port set, stops the server when the command exits and
# exits with the command's status (nbdkit's captive mode). Also the
# command line: --help, --version, usage errors exit 2, an image that
# cannot be opened exits 1 naming it.
. "$(dirname "$0")/lib.sh"
need nbdinfo

random_file "$T_DIR/a.raw" 100000
mkimg "$T_DIR/a.raw" "$T_DIR/disk.img"

trun 30 "$STABLED" --help
exits "stabled --help" 0
like "$T_DIR/out" "--require-guarantee" "--help lists --require-guarantee"
trun 30 "$STABLED" --version
exits "stabled --version" 0
like "$T_DIR/out" "^stabled [0-9]+\.[0-9]+\.[0-9]+" "--version prints the version"
trun 30 "$STABLED" --no-such-option "$T_DIR/disk.img"
exits "stabled --no-such-option" 2
trun 30 "$STABLED" -f
exits "stabled with no image" 2
trun 30 "$STABLED" -f --threads 0 "$T_DIR/disk.img"
exits "stabled --threads 0" 2
trun 30 "$STABLED" -f --require-guarantee=strong "$T_DIR/disk.img"
exits "stabled --require-guarantee=strong" 2
trun 30 "$STABLED" -f -U "$T_DIR/s" "$T_DIR/nonexistent.img"
exits "stabled on a missing image" 1
like "$T_DIR/err" "nonexistent.img" "the error names the missing image"
trun 30 "$STABLED" -f -U "$T_DIR/s" "$T_DIR/a.raw"
exits "stabled on a file that is not an image" 1
trun 30 "$STABLED" -f -U "$T_DIR/s" "x=$T_DIR/disk.img" "x=$T_DIR/disk.img"
exits "stabled with two exports named x" 1
like "$T_DIR/err" "export name 'x' is already taken" "the error says the name is taken"

trun 60 "$STABLED" -f --run 'echo "uri=$uri"; echo "sock=$unixsocket"; nbdinfo --size "$uri"' "$T_DIR/disk.img"
exits "--run with a private Unix socket" 0
like "$T_DIR/out" '^uri=nbd\+unix:///\?socket=/.*/socket$' "--run sets \$uri to the private socket"
like "$T_DIR/out" '^sock=/' "--run sets \$unixsocket"
like "$T_DIR/out" '^100000$' "the command reaches the export through \$uri"
like "$T_DIR/err" "export 'disk' \(default\): .*100000 bytes" "the start-up summary names the export and its size"
like "$T_DIR/err" "backend [a-z-]+, guarantee (none|ro-view|ro-fixed|sealed|kernel-ro)" "the start-up summary names the backend and guarantee"
# as root (no RLIMIT_MEMLOCK on pinned buffers) auto-fast never falls to sealed
if [ "$(id -u)" = 0 ]; then
	like "$T_DIR/err" "backend (kmbuf-ro|ro-fixed), guarantee" "by default, a backend without a cost per read"
fi
# without CAP_IPC_LOCK and over RLIMIT_MEMLOCK, ro-fixed cannot pin its
# buffers: the default falls back to sealed and says why
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	trun 60 setpriv --bounding-set -ipc_lock sh -c 'ulimit -l 1024 && exec "$@"' sh \
		"$STABLED" -f --run 'true' "$T_DIR/disk.img"
	exits "stabled without CAP_IPC_LOCK, RLIMIT_MEMLOCK 1 MiB" 0
	like "$T_DIR/err" "backend sealed, guarantee sealed" "over RLIMIT_MEMLOCK the default is sealed"
	like "$T_DIR/err" "not ro-fixed: pinning [0-9]+ KiB of buffers for io_uring: over RLIMIT_MEMLOCK \(1024 KiB\)" \
		"the log says why ro-fixed was refused"
fi
# --buffers: each worker's buffers per export, pinned under ro-fixed
if [ "$(id -u)" = 0 ]; then
	trun 60 "$STABLED" -f --threads=2 --buffers=8 --backend=ro-fixed \
		--run 'grep VmPin /proc/$PPID/status' "$T_DIR/disk.img"
	like "$T_DIR/out" "^VmPin:[[:space:]]+16384 kB" "--buffers=8 with 2 threads: ro-fixed pins 16 MiB"
fi
# every worker holds buffers for every export: by default their total is
# kept to a budget (1 GiB, less on a small machine), and an explicit
# --buffers that would take over a quarter of RAM is refused
set --
for i in $(seq 1 40); do set -- "$@" "e$i=$T_DIR/disk.img"; done
if [ "$(id -u)" = 0 ]; then
	trun 120 "$STABLED" -f --threads=1 --backend=ro-fixed \
		--run 'grep VmPin /proc/$PPID/status' "$@"
	exits "stabled with 40 exports" 0
	like "$T_DIR/err" "read buffers: [0-9]+ MiB per worker and export, not 32: 1 worker x 40 exports at 32 MiB would be 1280 MiB, over the [0-9]+ MiB budget" \
		"40 exports at 32 MiB: the log says the buffers were lowered, and why"
	per=$(sed -n 's/.*read buffers: \([0-9]*\) MiB per worker.*/\1/p' "$T_DIR/err")
	like "$T_DIR/out" "^VmPin:[[:space:]]+$((40 * ${per:-0} * 1024)) kB" \
		"40 exports: ro-fixed pins 40 x the lowered buffers (${per:-?} MiB)"
fi
trun 60 "$STABLED" -f -U "$T_DIR/s" --threads=64 --buffers=512 "$@"
exits "stabled --threads=64 --buffers=512 with 40 exports" 1
like "$T_DIR/err" "refusing to start: 64 workers x 40 exports x 512 MiB of read buffers is 1310720 MiB, more than a quarter of RAM" \
	"buffers over a quarter of RAM: refused, naming the figures"
trun 30 "$STABLED" -f --buffers=3 "$T_DIR/disk.img"
exits "stabled --buffers=3" 2
like "$T_DIR/err" "--buffers: '3' is not a number from 4 to 512" "--buffers below 4 MiB: the message says the range"
trun 60 "$STABLED" -f --backend=auto --run 'true' "$T_DIR/disk.img"
like "$T_DIR/err" "backend (kmbuf-ro|sealed), guarantee" "--backend=auto: the strongest, at a cost per read"
trun 30 "$STABLED" -f --backend=fastest "$T_DIR/disk.img"
exits "stabled --backend=fastest" 2
like "$T_DIR/err" "'fastest' is not auto-fast, auto," "the message lists the backends"

trun 60 "$STABLED" -f --run 'exit 7' "$T_DIR/disk.img"
exits "--run passes on the command's exit status" 7
trun 60 "$STABLED" -f --run 'kill -TERM $$' "$T_DIR/disk.img"
exits "--run: a command killed by SIGTERM gives 128+15" 143

trun 60 "$STABLED" -f -U "$T_DIR/u.sock" --run 'test "$unixsocket" = "'"$T_DIR/u.sock"'" && nbdinfo --size "$uri"' "$T_DIR/disk.img"
exits "--run with -U PATH" 0
like "$T_DIR/out" '^100000$' "-U: the command reaches the export"
if [ -e "$T_DIR/u.sock" ]; then fail "the socket is removed at exit" "$T_DIR/u.sock exists"; else pass "the socket is removed at exit"; fi

# TCP: port 0 picks a free port, the default address is 127.0.0.1
trun 60 "$STABLED" -f -p 0 --run 'echo "uri=$uri port=$port"; nbdinfo --size "$uri"' "$T_DIR/disk.img"
exits "--run over TCP with -p 0" 0
like "$T_DIR/out" '^uri=nbd://127\.0\.0\.1:[1-9][0-9]*/ port=[1-9][0-9]*$' "TCP: \$uri and \$port name 127.0.0.1 and the port"
like "$T_DIR/out" '^100000$' "TCP: the command reaches the export"
like "$T_DIR/err" "listening on 127\.0\.0\.1 port [1-9]" "TCP listens on 127.0.0.1 by default"

# as a daemon: the command returns, the pid file names the server, which
# serves until SIGTERM and then removes its pid file and socket
trun 30 "$STABLED" -U "$T_DIR/d.sock" -P "$T_DIR/d.pid" "$T_DIR/disk.img"
exits "stabled without -f returns once it is a daemon" 0
i=0
while [ ! -s "$T_DIR/d.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
dpid=$(cat "$T_DIR/d.pid" 2>/dev/null)
if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
	pass "--pid-file names the running daemon ($dpid)"
	trun 30 nbdinfo --size "nbd+unix:///?socket=$T_DIR/d.sock"
	like "$T_DIR/out" '^100000$' "the daemon serves the export"
	kill -TERM "$dpid"
	i=0
	while kill -0 "$dpid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$dpid" 2>/dev/null; then
		fail "the daemon exits on SIGTERM" "pid $dpid still running"
		kill -KILL "$dpid"
	else
		pass "the daemon exits on SIGTERM"
	fi
	if [ -e "$T_DIR/d.pid" ] || [ -e "$T_DIR/d.sock" ]; then
		fail "the daemon removes its pid file and socket" "$(ls "$T_DIR")"
	else
		pass "the daemon removes its pid file and socket"
	fi
else
	fail "--pid-file names the running daemon" "pid file: '$dpid'"
fi
# a daemon that cannot start still makes the command fail
trun 30 "$STABLED" -U "$T_DIR/e.sock" -P "$T_DIR/e.pid" --require-guarantee=kernel-ro "$T_DIR/disk.img"
if [ "$rc" -eq 1 ]; then
	pass "a daemon below --require-guarantee=kernel-ro: stabled exits 1"
elif [ "$rc" -eq 0 ] && [ -s "$T_DIR/e.pid" ]; then
	kill -TERM "$(cat "$T_DIR/e.pid")"
	skip "this kernel has kmbuf-ro: the daemon started"
else
	fail "a daemon below --require-guarantee=kernel-ro: stabled exits 1" "status $rc"
fi
done_testing
