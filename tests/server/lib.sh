# Helpers for the stabled tests (tests/server/*.t), sourced by each after
# the tool tests' helpers (pass, fail, is, like, run, flip_bit, ...).
#
# A test starts stabled on a Unix socket in its own scratch folder (never
# a TCP port unless it says so), talks to it with real NBD clients, and
# stops it with SIGTERM, checking that it exits 0 with no sanitizer
# report. Every wait is bounded.
. "$(dirname "$0")/../tools/lib.sh"

STABLED=$STABLE_BIN/stabled
SOCK=$T_DIR/sock
URI="nbd+unix:///?socket=$SOCK"
LOG=$T_DIR/stabled.log
SPID=

trap 'stop_quietly; [ -n "${KEEP_TMP:-}" ] || rm -rf "$T_DIR"' EXIT

# need CMD...: skips the whole file when a program is missing.
need() {
	for _c in "$@"; do
		if ! command -v "$_c" >/dev/null 2>&1; then
			echo "1..0 # SKIP $_c is not installed (scripts/deps/server.txt)"
			exit 0
		fi
	done
}

stop_quietly() {
	if [ -n "$SPID" ]; then
		kill -KILL "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
		SPID=
	fi
}

# start_server ARGS...: stabled -f on $SOCK; waits ($START_WAIT tenths of
# a second, 10 s by default) until it serves. Fails the test and returns
# 1 if it does not.
start_server() {
	rm -f "$SOCK" "$T_DIR/started.pid"
	# the pid file is written once it serves: after the start-up summary
	"$STABLED" -f -U "$SOCK" -P "$T_DIR/started.pid" "$@" >>"$LOG" 2>&1 &
	SPID=$!
	_i=0
	while [ ! -s "$T_DIR/started.pid" ] && [ $_i -lt "${START_WAIT:-100}" ]; do
		if ! kill -0 "$SPID" 2>/dev/null; then
			break
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	if [ ! -S "$SOCK" ] || [ ! -s "$T_DIR/started.pid" ]; then
		fail "stabled starts with $*" "log: $(tail -c 800 "$LOG" | tr '\n' '|')"
		stop_quietly
		return 1
	fi
	return 0
}

# stop_server: SIGTERM, then expects exit 0 within 20 s and a clean log.
stop_server() {
	[ -n "$SPID" ] || return 0
	kill -TERM "$SPID"
	_i=0
	while kill -0 "$SPID" 2>/dev/null && [ $_i -lt 200 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$SPID" 2>/dev/null; then
		fail "stabled exits within 20 s of SIGTERM" "$(tail -c 600 "$LOG")"
		stop_quietly
		return
	fi
	_rc=0
	wait "$SPID" || _rc=$?
	SPID=
	is "$_rc" 0 "stabled exits 0 after SIGTERM"
	unlike "$LOG" 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
		"no sanitizer report in the server log"
}

# with_timeout SECONDS CMD...: like run, bounded.
trun() {
	_t=$1
	shift
	run timeout "$_t" "$@"
}

# mkimg SOURCE IMAGE [mkimage options]: makes an image quietly.
mkimg() {
	_s=$1
	_d=$2
	shift 2
	"$STABLE_BIN/stable-mkimage" -q "$@" "$_s" "$_d" >/dev/null
}

# stat_value NAME: a counter from the --stats-file in $T_DIR/stats.
stat_value() {
	sed -n "s/^$1 //p" "$T_DIR/stats"
}
