#!/bin/bash
# Boot the patched kernel under qemu (TCG) and run the static test
# programs of tests/kernel/ inside it, then judge the run on the host.
#
# The guest is a busybox initramfs holding the tests; a second virtio
# disk carries an ext4 file system (made on the host with mkfs.ext4, no
# mounting needed) where the tests put their files, so O_DIRECT reads hit
# a real block device. Results come back over the serial console between
# markers: one "KTEST-RESULT name rc" line per test, then the guest's
# dmesg. The run fails if a test fails or skips, if the suite did not
# finish, or if the kernel log shows a warning, BUG, KASAN or lockdep
# report.
#
# Further arguments are more test programs, which may be dynamically
# linked (libstable's backend suites): their libraries, as ldd lists them,
# are carried into the initramfs at the same paths. Every test runs with
# STABLE_TMP=/mnt and STABLE_REQUIRE_KMBUF=1, so libstable's suites use the
# ext4 disk and fail, rather than skip, if kmbuf-ro is missing.
#
# VM_EXTRA_BIN names programs the tests call, put in the guest's /bin;
# VM_HOST_PROGS names host programs carried at their own paths (Debian's
# /usr/sbin/nbd-client, which a busybox applet must not shadow), both with
# their libraries. VM_DISK_DIR is a directory copied onto the ext4 disk
# (mkfs.ext4 -d), which grows by its size: fixtures for the tests.
# VM_DISK_MB sets the disk's size before that growth (default 256).
#
# For benchmarks (make bench-vm, make bench-server-vm): KTEST_TIMEOUT is
# the seconds each program may run (default 300), and VM_ENV is shell
# text the guest's init sources before the programs run, e.g.
# 'export BENCH_SECONDS=20 BENCH_SERVERS="a b"'.
#
# usage: vm-test.sh BZIMAGE TEST_DIR OUT_DIR [PROGRAM...]
set -euo pipefail

image=${1:?usage: vm-test.sh BZIMAGE TEST_DIR OUT_DIR [PROGRAM...]}
tests=${2:?}
out=${3:?}
shift 3
timeout_s=${KVM_TIMEOUT:-1200}
mem=${KVM_MEM:-1G}
smp=${KVM_SMP:-2}
busybox=${BUSYBOX:-/bin/busybox}

[ -f "$image" ] || { echo "vm-test: no kernel at $image" >&2; exit 1; }
file "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	{ echo "vm-test: $busybox is not static (install busybox-static)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
# take a copy of the kernel under the build lock, so that a concurrent
# `make kernel` cannot swap it in the middle of the run
if [ -n "${KERNEL_LOCK:-}" ]; then
	exec 9> "$KERNEL_LOCK"
	flock 9
fi
cp "$image" "$out/bzImage"
image=$out/bzImage
[ -n "${KERNEL_LOCK:-}" ] && exec 9>&-
mkdir -p "$out/root/bin" "$out/root/tests" "$out/root/proc" "$out/root/sys" \
	"$out/root/dev" "$out/root/tmp" "$out/root/mnt"
cp "$busybox" "$out/root/bin/busybox"
find "$tests" -maxdepth 1 -type f -perm -u+x -exec cp {} "$out/root/tests/" \;
# a dynamic program's libraries and loader, at the paths it expects
carry_libs() {
	# (a script or a static program has none: ldd and grep fail, harmlessly)
	{ ldd "$1" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
		[ -e "$out/root$lib" ] && continue
		mkdir -p "$out/root$(dirname "$lib")"
		cp -L "$lib" "$out/root$lib"
	done
}
for prog in "$@"; do
	cp "$prog" "$out/root/tests/"
	carry_libs "$prog"
done
# VM_EXTRA_BIN: programs the tests call (for make bench-vm), put in /bin
for prog in ${VM_EXTRA_BIN:-}; do
	cp "$prog" "$out/root/bin/"
	carry_libs "$prog"
done
for prog in ${VM_HOST_PROGS:-}; do
	mkdir -p "$out/root$(dirname "$prog")"
	cp -L "$prog" "$out/root$prog"
	carry_libs "$prog"
done
mkdir -p "$out/root/etc"
{
	printf 'ktest_timeout=%s\n' "${KTEST_TIMEOUT:-300}"
	printf '%s\n' "${VM_ENV:-}"
} > "$out/root/etc/ktest.env"
cat > "$out/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t ext4 /dev/vda /mnt || echo "KTEST-NOTE no ext4 disk"
echo 1 > /proc/sys/kernel/panic_on_warn 2>/dev/null
. /etc/ktest.env
echo "KTEST-BEGIN"
for t in /tests/*; do
	name=${t##*/}
	echo "KTEST-START $name"
	KMBUF_TEST_DIR=/mnt STABLE_TMP=/mnt STABLE_REQUIRE_KMBUF=1 timeout "$ktest_timeout" "$t"
	echo "KTEST-RESULT $name $?"
done
echo "KTEST-DMESG-BEGIN"
dmesg
echo "KTEST-DMESG-END"
echo "KTEST-END"
sync
reboot -f
INIT
chmod +x "$out/root/init"
(cd "$out/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.gz"

disk_mb=${VM_DISK_MB:-256}
populate=()
if [ -n "${VM_DISK_DIR:-}" ]; then
	disk_mb=$((disk_mb + $(du -s -m --apparent-size "$VM_DISK_DIR" | cut -f1)))
	populate=(-d "$VM_DISK_DIR")
fi
truncate -s "${disk_mb}M" "$out/disk.img"
# mkfs.ext4 lives in /sbin, which a non-root PATH may lack
PATH=$PATH:/sbin:/usr/sbin mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
	"${populate[@]}" "$out/disk.img"

start=$(date +%s)
set +e
# one core per socket: without ACPI the kernel learns its CPUs from
# SeaBIOS's MP table, which lists one per socket, so "-smp 2" alone (one
# socket, two cores) boots with a single CPU
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max \
	-smp "$smp,sockets=$smp,cores=1,threads=1" -m "$mem" \
	-nographic -no-reboot -monitor none \
	-kernel "$image" -initrd "$out/initrd.gz" \
	-drive file="$out/disk.img",if=virtio,format=raw,cache=unsafe \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=4 quiet" \
	< /dev/null > "$out/console.log" 2>&1
qrc=$?
set -e
elapsed=$(( $(date +%s) - start ))
tr -d '\r' < "$out/console.log" > "$out/console.txt"

# The verdict, as TAP.
fail=0
n=$(grep -c '^KTEST-RESULT ' "$out/console.txt" || true)
echo "1..$((n + 2))"
i=0
while read -r _ name rc; do
	i=$((i + 1))
	if [ "$rc" = 0 ]; then
		echo "ok $i - vm: $name"
	else
		echo "not ok $i - vm: $name (exit $rc)"
		sed -n "/^KTEST-START $name\$/,/^KTEST-RESULT $name /p" \
			"$out/console.txt" | sed 's/^/#   /'
		fail=1
	fi
done < <(grep '^KTEST-RESULT ' "$out/console.txt")

i=$((i + 1))
if grep -q '^KTEST-END' "$out/console.txt"; then
	echo "ok $i - vm: suite finished in ${elapsed}s (qemu exit $qrc)"
else
	echo "not ok $i - vm: suite did not finish (qemu exit $qrc after ${elapsed}s)"
	tail -40 "$out/console.txt" | sed 's/^/#   /'
	fail=1
fi

i=$((i + 1))
pat='WARNING:|BUG:|KASAN|UBSAN|possible circular locking|possible recursive locking|inconsistent lock state|INFO: |Call Trace|general protection|Oops|Kernel panic|kernel BUG|refcount_t:|list_add corruption|list_del corruption'
if grep -E -n "$pat" "$out/console.txt" > "$out/kernel-reports.txt"; then
	echo "not ok $i - vm: kernel log has reports (see $out/console.txt)"
	head -60 "$out/kernel-reports.txt" | sed 's/^/#   /'
	fail=1
else
	echo "ok $i - vm: no WARNING/BUG/KASAN/lockdep reports in the kernel log"
fi
echo "# vm-test: $n tests, ${elapsed}s in the VM, log $out/console.txt"
exit $fail
