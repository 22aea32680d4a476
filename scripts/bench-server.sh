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
#   sh scripts/bench-server.sh BINDIR      (BENCH_SECONDS=8 BENCH_SIZE=1G
#                                           BENCH_ROUNDS=1)
#
# BENCH_ROUNDS=N runs every row N times, the servers interleaved round
# by round, and ends with a table of medians and of each row's ratio to
# nbdkit's row of the same round (median, lowest-highest): on 2 cores
# shared with the client, one row of one server swings by 20% between
# minutes, so a single round cannot tell 0.97x from 1.1x.
# BENCH_BASELINE=/path/to/an/older/stabled adds its rows (both backends)
# to the same run, for before/after figures side by side. BENCH_SERVERS
# picks the rows (default "stabled stabled-sealed stabled-private nbdkit
# qemu-nbd"; also stabled-ro-view, stabled-ro-fixed, baseline,
# baseline-private).
# The same script runs in the VM for make bench-server-vm
# (kernel/vm-bench-server.sh), under busybox: sh, awk and no python3.
# BENCH_FINE=1 prints MiB/s to a tenth and IOPS unrounded, for the VM's
# rows of a few MiB/s and 1000 IOPS.
# BENCH_PROFILE=1 (needs perf, from linux-perf) samples every CPU with
# perf in the middle of each row and ends with a table of where the CPU
# went, in ms per GiB served: the server's, its copy out of the page
# cache, its copy into the socket and its crc32c, and the client's (fio)
# with its copy out of the socket. Copies are told apart by the kernel
# functions doing them (6.18: __pi_memcpy or _copy_to_iter into a read
# buffer, _copy_from_iter into the socket, _copy_to_iter out of it).
set -eu
bindir=${1:-build/bin}
secs=${BENCH_SECONDS:-8}
rounds=${BENCH_ROUNDS:-1}
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
profile=${BENCH_PROFILE:-}
[ -n "$profile" ] && ! command -v perf >/dev/null &&
	{ echo "bench-server: BENCH_PROFILE needs perf (apt install linux-perf)" >&2; exit 1; }
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

# BENCH_PROFILE: perf samples every CPU for the row's middle seconds...
profile_window() {
	sleep 1
	perf record -a -q -o "$dir/perf.data" -- sleep $((secs > 3 ? secs - 2 : 1)) \
		>/dev/null 2>&1
}

# ...and a sample's share of all CPUs, over the GiB served in the same
# time, is ms per GiB: share% x 10 x CPUs x 1024 / MiB/s (the row's mean).
profile_split() {
	perf report -i "$dir/perf.data" --no-children --sort comm,sym 2>/dev/null |
	awk -v comm="$(cat "/proc/$spid/comm")" -v terse="$dir/fio.terse" \
		-v ncpu="$(grep -c ^processor /proc/cpuinfo)" '
		BEGIN {
			while ((getline line < terse) > 0)
				if (line ~ /^3;/) { split(line, f, ";"); mibs = f[7] / 1024 }
		}
		/^#/ || NF < 4 { next }
		{ p = $1 + 0 }
		$2 == comm {
			srv += p
			if ($4 == "__pi_memcpy" || $4 == "_copy_to_iter") rd += p
			if ($4 == "_copy_from_iter") snd += p
			if ($4 ~ /^crc32/) crc += p
		}
		$2 == "fio" { cli += p; if ($4 == "_copy_to_iter") cpy += p }
		END {
			k = mibs ? 10 * ncpu * 1024 / mibs : 0
			printf "%.0f %.0f %.0f %.0f %.0f %.0f", srv * k, rd * k, snd * k,
				crc * k, cli * k, cpy * k
		}'
}

hz=$(getconf CLK_TCK 2>/dev/null || echo 100)	# busybox has no getconf
echo "| server | workload | conns | MiB/s | IOPS | server CPU s/GiB | server peak RSS MiB | pinned MiB | load |"
echo "|---|---|---|---|---|---|---|---|---|"
: >"$dir/rows"
round=0
while [ "$round" -lt "$rounds" ]; do
	round=$((round + 1))
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
					--output-format=terse --terse-version=3 >"$dir/fio.terse" &
				fpid=$!
				[ -n "$profile" ] && profile_window
				wait "$fpid"
				t1=$(cpu_ticks "$spid")
				costs=
				[ -n "$profile" ] && costs=$(profile_split)
				# terse v3, one line per group: field 6 is the KiB read, 7 the
				# KiB/s, 8 the IOPS (awk, for the VM's busybox has no python3)
				awk -F';' -v server="$label" -v name="$name" -v jobs="$jobs" \
					-v ticks="$((t1 - t0))" -v hz="$hz" -v load="$load" \
					-v status="/proc/$spid/status" -v fine="${BENCH_FINE:-}" \
					-v round="$round" -v rows="$dir/rows" -v costs="$costs" '
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
						printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", round, server,
							name, jobs, bw, iops, gib ? cpu / gib : 0, costs >> rows
					}' "$dir/fio.terse"
			done
		done
		stop
	done
done

# Medians over the rounds, and each row's ratio to nbdkit's row of the
# same round (the median of those ratios, with their range): rows of one
# round ran minutes apart, rounds further, so pairing by round keeps
# some of the machine's drift out of the ratio.
echo
echo "Medians of $rounds round(s) of ${secs} s rows; x nbdkit: the median of each round's ratio (lowest-highest)"
echo
echo "| server | workload | conns | MiB/s | IOPS | server CPU s/GiB | x nbdkit |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' -v fine="${BENCH_FINE:-}" '
	function median(list,    v, n, i, j, t) {
		n = split(list, v, " ")
		for (i = 2; i <= n; i++)	# insertion sort: a handful of values
			for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
				t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
			}
		lo = v[1]; hi = v[n]
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	{
		key = $2 SUBSEP $3 SUBSEP $4
		if (!(key in bw)) order[++nkeys] = key
		bw[key] = bw[key] " " $5
		iops[key] = iops[key] " " $6
		cpu[key] = cpu[key] " " $7
		if ($8 != "") {		# BENCH_PROFILE: six ms/GiB figures
			n = split($8, cv, " ")
			for (i = 1; i <= n; i++) cost[key, i] = cost[key, i] " " cv[i]
			profiled = 1
		}
		val[$1, key] = $5
		if ($2 == "nbdkit") ref[$1, $3 SUBSEP $4] = $5
		if ($1 > rounds) rounds = $1
	}
	END {
		for (k = 1; k <= nkeys; k++) {
			key = order[k]
			split(key, f, SUBSEP)
			ratios = ""
			for (r = 1; r <= rounds; r++)
				if ((r, f[2] SUBSEP f[3]) in ref && ref[r, f[2] SUBSEP f[3]] > 0 &&
				    (r, key) in val)
					ratios = ratios " " val[r, key] / ref[r, f[2] SUBSEP f[3]]
			x = "-"
			if (ratios != "") {
				m = median(ratios)
				if (lo == hi)
					x = sprintf("%.2fx", m)
				else
					x = sprintf("%.2fx (%.2f-%.2f)", m, lo, hi)
			}
			b = median(bw[key]); o = median(iops[key]); c = median(cpu[key])
			if (fine)
				printf "| %s | %s | %s | %.1f | %d | %.2f | %s |\n",
					f[1], f[2], f[3], b / 1024, o, c, x
			else
				printf "| %s | %s | %s | %.0f | %.1fk | %.2f | %s |\n",
					f[1], f[2], f[3], b / 1024, o / 1000, c, x
		}
		if (!profiled)
			exit
		print "\nWhere the CPU went (BENCH_PROFILE), medians in ms per GiB served\n"
		print "| server | workload | conns | server | its page-cache copy | its socket copy | crc32c | client (fio) | its socket copy |"
		print "|---|---|---|---|---|---|---|---|---|"
		for (k = 1; k <= nkeys; k++) {
			key = order[k]
			split(key, f, SUBSEP)
			line = "| " f[1] " | " f[2] " | " f[3] " |"
			for (i = 1; i <= 6; i++)
				line = line sprintf(" %.0f |", median(cost[key, i]))
			print line
		}
	}' "$dir/rows"
