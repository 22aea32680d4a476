#!/bin/sh
# make bench-server: fio's nbd engine against stabled, nbdkit (-r file)
# and qemu-nbd (-r) serving the same page-cached 1 GiB of data, each on
# a Unix socket: sequential 1 MiB and random 4 KiB reads at queue depth
# 16, with 1 and 4 connections (fio jobs). stabled runs three times:
# with the backend it picks on this kernel by default (named in the row:
# kmbuf-ro, else ro-fixed), with --backend=sealed (the strongest a stock
# kernel offers, at a cost per read) and with --backend=private (rows
# stabled-ro-view and stabled-ro-fixed on request). Prints a Markdown
# table with MiB/s, IOPS, the server's CPU seconds per GiB served, its
# peak RSS, the memory it pinned (VmPin: ro-fixed's buffers, which RSS
# does not count) and the machine's 1-minute load average when the row
# started (client and server share the CPUs: a load
# above their own ~2 means someone else's work is in the figures).
# Figures, not pass/fail: compare rows of one run.
#
#   sh scripts/bench-server.sh BINDIR      (BENCH_SECONDS=8 BENCH_SIZE=1G)
#
# BENCH_BASELINE=/path/to/an/older/stabled adds its rows (both backends)
# to the same run, for before/after figures side by side. BENCH_SERVERS
# picks the rows (default "stabled stabled-sealed stabled-private nbdkit
# qemu-nbd"; also stabled-ro-view, stabled-ro-fixed, baseline,
# baseline-private).
# The same script runs in the VM for make bench-server-vm
# (kernel/vm-bench-server.sh), under busybox: sh, awk and no python3.
# BENCH_FINE=1 prints MiB/s to a tenth and IOPS unrounded, for the VM's
# rows of a few MiB/s and 1000 IOPS.
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

servers="stabled stabled-sealed stabled-private nbdkit qemu-nbd"
[ -n "${BENCH_BASELINE:-}" ] && servers="baseline baseline-private $servers"
servers=${BENCH_SERVERS:-$servers}
for c in fio $servers; do
	case $c in fio|nbdkit|qemu-nbd) ;; *) continue ;; esac
	command -v "$c" >/dev/null || { echo "bench-server: $c is not installed" >&2; exit 1; }
done

echo "bench-server: making $size of data and its image in $dir" >&2
fio --name=mk --filename="$dir/data.raw" --size="$size" --rw=write --bs=1M \
	--ioengine=psync --refill_buffers --eta=never --output=/dev/null
"$bindir/stable-mkimage" -q "$dir/data.raw" "$dir/data.stable" >/dev/null
cat "$dir/data.raw" "$dir/data.stable" >/dev/null	# into the page cache

# cpu_ticks PID: user + system clock ticks so far
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

start() {
	rm -f "$dir/sock"
	case $1 in
	stabled)	# its default: kmbuf-ro, else ro-fixed
		"$bindir/stabled" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			"$dir/data.stable" 2>"$dir/stabled.log" &
		;;
	stabled-private|stabled-sealed|stabled-ro-view|stabled-ro-fixed)
		"$bindir/stabled" -f -U "$dir/sock" ${threads:+--threads "$threads"} \
			--backend="${1#stabled-}" "$dir/data.stable" 2>"$dir/stabled.log" &
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
	# stabled names its backend in the log just after it listens: wait
	# for the line (slow in the VM) before the row's label reads it
	case $1 in stabled|baseline)
		while ! grep -q ' backend ' "$dir/stabled.log" && [ $i -lt 200 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	esac
	# nbdkit and qemu-nbd may fork: measure the process holding the socket
	sleep 0.3
}

stop() {
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

hz=$(getconf CLK_TCK 2>/dev/null || echo 100)	# busybox has no getconf
echo "| server | workload | conns | MiB/s | IOPS | server CPU s/GiB | server peak RSS MiB | pinned MiB | load |"
echo "|---|---|---|---|---|---|---|---|---|"
for server in $servers; do
	start "$server"
	label=$server
	case $server in stabled|baseline)
		label="$server ($(sed -n 's/.*backend \([a-z-]*\), guarantee \([a-z-]*\).*/\1, guarantee \2/p' "$dir/stabled.log"))"
	esac
	for wl in "seq-1M read 1M" "rand-4K randread 4k"; do
		# shellcheck disable=SC2086 # split into its three words
		set -- $wl
		name=$1 rw=$2 bs=$3
		for jobs in 1 4; do
			load=$(cut -d' ' -f1 /proc/loadavg)
			t0=$(cpu_ticks "$spid")
			fio --name="$name" --ioengine=nbd --uri="nbd+unix:///?socket=$dir/sock" \
				--rw="$rw" --bs="$bs" --iodepth=16 --numjobs="$jobs" \
				--group_reporting --time_based --runtime="$secs" --size="$size" \
				--output-format=terse --terse-version=3 >"$dir/fio.terse"
			t1=$(cpu_ticks "$spid")
			# terse v3, one line per group: field 6 is the KiB read, 7 the
			# KiB/s, 8 the IOPS (awk, for the VM's busybox has no python3)
			awk -F';' -v server="$label" -v name="$name" -v jobs="$jobs" \
				-v ticks="$((t1 - t0))" -v hz="$hz" -v load="$load" \
				-v status="/proc/$spid/status" -v fine="${BENCH_FINE:-}" '
				/^3;/ { kib = $6; bw = $7; iops = $8 }
				END {
					rss = 0
					pin = 0
					while ((getline line < status) > 0) {
						split(line, f, " ")
						if (line ~ /^VmHWM:/) rss = f[2] / 1024
						if (line ~ /^VmPin:/) pin = f[2] / 1024
					}
					gib = kib / 1048576
					cpu = ticks / hz
					if (fine) {
						mib = sprintf("%.1f", bw / 1024)
						ops = sprintf("%d", iops)
					} else {
						mib = sprintf("%.0f", bw / 1024)
						ops = sprintf("%.1fk", iops / 1000)
					}
					printf "| %s | %s | %s | %s | %s | %.2f | %.0f | %.0f | %s |\n",
						server, name, jobs, mib, ops,
						gib ? cpu / gib : 0, rss, pin, load
				}' "$dir/fio.terse"
		done
	done
	stop
done
