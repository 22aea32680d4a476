#!/bin/sh
# Runs inside the VM for `make bench-server-vm`: make bench-server's own
# script (scripts/bench-server.sh, carried into /bin with stabled,
# stable-mkimage, fio, nbdkit and its file plugin) on the ext4 virtio
# disk, so that stabled on kmbuf-ro, the default backend here, is
# measured against its other backends and nbdkit in one run. The make
# target sets BENCH_SIZE, BENCH_SECONDS and BENCH_SERVERS through
# vm-test.sh's VM_ENV. Absolute figures under TCG are far below native:
# read the ratios between rows.
set -e
# fio, nbdkit and qemu-nbd sit at their Debian paths; busybox owns /bin
export PATH="$PATH:/usr/bin:/usr/sbin"
export TMPDIR="${STABLE_TMP:-/mnt}"
# fio's job table wants System V shared memory, which this kernel lacks:
# a wrapper first in PATH runs it with the shim that maps it instead
mkdir -p /tmp/fio-shim
printf '#!/bin/sh\nLD_PRELOAD=/bin/vm-shm-shim.so exec /usr/bin/fio "$@"\n' > /tmp/fio-shim/fio
chmod +x /tmp/fio-shim/fio
export PATH="/tmp/fio-shim:$PATH"
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "# bench-server in the VM: $(uname -r), $(nproc) vCPUs under TCG, $mem RAM," \
	"BENCH_SIZE=${BENCH_SIZE:-1G} on ext4 (page-cached), BENCH_SECONDS=${BENCH_SECONDS:-8}"
echo
sh /bin/bench-server.sh /bin
