#!/bin/sh
# Runs inside the VM for `make bench-vm`: stable-bench on an image on the
# ext4 virtio disk, so kmbuf-ro is measured against the baselines and the
# other backends in one run. Absolute figures under TCG are far below
# native: read the ratios (x-pbuf, x-copy).
set -e
dir=${STABLE_TMP:-/mnt}/bench
mkdir -p "$dir"
mib=${VM_BENCH_MIB:-64}
head -c $((mib << 20)) /dev/urandom > "$dir/raw"
stable-mkimage -q "$dir/raw" "$dir/img" > /dev/null
rm -f "$dir/raw"
echo "# stable-bench in the VM: $(uname -r), ${mib} MiB image, $(nproc) vCPUs under TCG"
for io in "" "--direct"; do
	for size in 64K 1M; do
		echo
		echo "\$ stable-bench $io --size=$size --depth=8 --bytes=${mib}M"
		stable-bench $io --size=$size --depth=8 --bytes=${mib}M "$dir/img"
	done
done
