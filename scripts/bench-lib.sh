#!/bin/sh
# make bench-lib: the same workload through every libstable backend and the
# two baselines (stable-bench prints them side by side with ratios), for
# 4 KiB, 64 KiB and 1 MiB reads, sequential and random, page-cached and
# O_DIRECT. Figures, not a test. kmbuf-ro shows n/a on a kernel without
# our series; run it in the VM for that row (docs/kernel.md).
set -eu
bin=${1:-build/bin}
dir=${BENCH_DIR:-build/tmp/bench}
size_mib=${BENCH_MIB:-512}
mkdir -p "$dir"
if [ ! -f "$dir/lib.img" ] || [ "$(stat -c %s "$dir/lib.raw" 2>/dev/null)" != $((size_mib << 20)) ]; then
	head -c $((size_mib << 20)) /dev/urandom > "$dir/lib.raw"
	"$bin/stable-mkimage" -q "$dir/lib.raw" "$dir/lib.img" > /dev/null
fi
cat "$dir/lib.img" > /dev/null	# page-cache it
echo "# stable-bench on a ${size_mib} MiB image, $(nproc) cores, kernel $(uname -r)"
for io in "" "--direct"; do
	for pattern in "" "--random"; do
		for size in 4K 64K 1M; do
			case $size in 4K) bytes=64M ;; *) bytes=512M ;; esac
			echo
			echo "\$ stable-bench $io $pattern --size=$size --depth=8 --bytes=$bytes"
			"$bin/stable-bench" $io $pattern --size=$size --depth=8 --bytes=$bytes "$dir/lib.img"
		done
	done
done
