#!/bin/sh
# make bench-server: fio's nbd engine against stabled, nbdkit (-r file)
# and qemu-nbd (-r) serving the same page-cached 1 GiB of data, each on a
# Unix socket: sequential 1 MiB and random 4 KiB reads at queue depth 16,
# with 1 and 4 connections (fio jobs). stabled runs twice: with the
# backend it picks on this kernel (named in the row) and with
# --backend=private. Prints a Markdown table with MiB/s, IOPS, the
# server's CPU seconds per GiB served, its peak RSS and the machine's
# 1-minute load average when the row started (client and server share
# the CPUs: a load above their own ~2 means someone else's work is in
# the figures). Figures, not pass/fail: compare rows of one run.
#
#   sh scripts/bench-server.sh BINDIR      (BENCH_SECONDS=8 BENCH_SIZE=1G)
#
# BENCH_BASELINE=/path/to/an/older/stabled adds its rows (both backends)
# to the same run, for before/after figures side by side.
set -eu
bindir=${1:-build/bin}
secs=${BENCH_SECONDS:-8}
size=${BENCH_SIZE:-1G}
threads=${BENCH_THREADS:-}
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-server.XXXXXX")
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for c in fio nbdkit qemu-nbd; do
	command -v $c >/dev/null || { echo "bench-server: $c is not installed" >&2; exit 1; }
done

echo "bench-server: making $size of data and its image in $dir" >&2
fio --name=mk --filename="$dir/data.raw" --size="$size" --rw=write --bs=1M \
	--ioengine=psync --refill_buffers --output=/dev/null
"$bindir/stable-mkimage" -q "$dir/data.raw" "$dir/data.stable" >/dev/null
cat "$dir/data.raw" "$dir/data.stable" >/dev/null	# into the page cache

# cpu_ticks PID: user + system clock ticks so far
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

start() {
	rm -f "$dir/sock"
	case $1 in
	stabled)	# the strongest backend this kernel offers
		"$bindir/stabled" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			"$dir/data.stable" 2>"$dir/stabled.log" &
		;;
	stabled-private)
		"$bindir/stabled" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			--backend=private "$dir/data.stable" 2>"$dir/stabled.log" &
		;;
	baseline)
		"$BENCH_BASELINE" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			"$dir/data.stable" 2>"$dir/stabled.log" &
		;;
	baseline-private)
		"$BENCH_BASELINE" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			--backend=private "$dir/data.stable" 2>"$dir/stabled.log" &
		;;
	nbdkit)
		nbdkit -f -r -U "$dir/sock" file "$dir/data.raw" &
		;;
	qemu-nbd)
		qemu-nbd -r -t --cache=writeback -f raw -k "$dir/sock" "$dir/data.raw" &
		;;
	esac
	spid=$!
	i=0
	while [ ! -S "$dir/sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	# nbdkit and qemu-nbd may fork: measure the process holding the socket
	sleep 0.3
}

stop() {
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

hz=$(getconf CLK_TCK)
echo "| server | workload | conns | MiB/s | IOPS | server CPU s/GiB | server peak RSS MiB | load |"
echo "|---|---|---|---|---|---|---|---|"
servers="stabled stabled-private nbdkit qemu-nbd"
[ -n "${BENCH_BASELINE:-}" ] && servers="baseline baseline-private $servers"
for server in ${BENCH_SERVERS:-$servers}; do
	start $server
	label=$server
	case $server in stabled|baseline)
		label="$server ($(sed -n 's/.*backend \([a-z-]*\), guarantee \([a-z-]*\).*/\1, guarantee \2/p' "$dir/stabled.log"))"
	esac
	for wl in "seq-1M read 1M" "rand-4K randread 4k"; do
		set -- $wl
		name=$1 rw=$2 bs=$3
		for jobs in 1 4; do
			load=$(cut -d' ' -f1 /proc/loadavg)
			t0=$(cpu_ticks "$spid")
			fio --name="$name" --ioengine=nbd --uri="nbd+unix:///?socket=$dir/sock" \
				--rw="$rw" --bs="$bs" --iodepth=16 --numjobs="$jobs" \
				--group_reporting --time_based --runtime="$secs" --size="$size" \
				--output-format=json >"$dir/fio.json"
			t1=$(cpu_ticks "$spid")
			python3 - "$dir/fio.json" "$label" "$name" "$jobs" "$((t1 - t0))" "$hz" \
				"/proc/$spid/status" "$load" <<'PY'
import json, sys
f, server, name, jobs, ticks, hz, status, load = sys.argv[1:]
text = open(f).read()
j = json.loads(text[text.index("{"):])["jobs"][0]["read"]
mib = j["bw_bytes"] / 2**20
gib = j["io_bytes"] / 2**30
cpu = int(ticks) / int(hz)
rss = 0
for line in open(status):
    if line.startswith("VmHWM:"):
        rss = int(line.split()[1]) / 1024
print("| %s | %s | %s | %.0f | %.1fk | %.2f | %.0f | %s |" % (
    server, name, jobs, mib, j["iops"] / 1000, cpu / gib if gib else 0, rss, load))
PY
		done
	done
	stop
done
