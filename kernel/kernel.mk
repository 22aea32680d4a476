# kernel/kernel.mk: the kernel part of the build, included by the top-level
# Makefile. The patched Linux tree and its build directory live outside the
# repository, under $(KERNEL_CACHE); test programs build under $(BUILD)/.
#
#   make kernel            fetch linux-source-7.3, apply kernel/patches, build bzImage
#   make vm-test           boot it under qemu (TCG) and run tests/kernel/ inside,
#                          the kernel's NBD client against stabled among them
#   make bench-vm          stable-bench in the VM (figures, kmbuf-ro included)
#   make bench-server-vm   make bench-server's table in the VM: stabled on
#                          kmbuf-ro, private and sealed against nbdkit
#   make checkpatch        scripts/checkpatch.pl --strict over the series
#   make test-kernel-host  tests/kernel/ on the running kernel (they skip without the series)
#   make uapi-check        include/stable/kmbuf_uapi.h against the patched uapi header
#
# KERNEL_SRC=DIR uses an existing Linux 7.3 tree instead of fetching one
# (the series is applied to it unless already applied).

KERNEL_CACHE ?= $(HOME)/.cache/stable
KERNEL_PKG ?= linux-source-7.3
KERNEL_JOBS ?= 3
ifeq ($(KERNEL_SRC),)
KERNEL_TREE := $(KERNEL_CACHE)/src/$(KERNEL_PKG)
KERNEL_BUILD ?= $(KERNEL_CACHE)/build
else
KERNEL_TREE := $(KERNEL_SRC)
KERNEL_BUILD ?= $(KERNEL_CACHE)/build-custom
endif
KERNEL_IMAGE := $(KERNEL_BUILD)/arch/x86/boot/bzImage
KERNEL_HEADERS := $(KERNEL_BUILD)/usr/include

KTEST_SRC := $(sort $(wildcard tests/kernel/kmbuf-*.c))
KTEST_NAMES := $(KTEST_SRC:tests/kernel/%.c=%)
KTEST_HDR := tests/kernel/kmbuf-test.h include/stable/kmbuf_uapi.h
KTEST_CFLAGS := -std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude -Itests/kernel
KTEST_HOST := $(BUILD)/kernel-tests/host
KTEST_STATIC := $(BUILD)/kernel-tests/static
KVM_DIR := $(BUILD)/kernel-vm

.PHONY: bench-vm bench-server-vm kernel kernel-source vm-test checkpatch test-kernel-host uapi-check check-series \
	kernel-tests-static

kernel-source:
ifeq ($(KERNEL_SRC),)
	kernel/fetch-source.sh $(KERNEL_CACHE) $(KERNEL_PKG)
endif

kernel: kernel-source
	kernel/build.sh $(KERNEL_TREE) $(KERNEL_BUILD) $(KERNEL_JOBS)

checkpatch: kernel-source
	kernel/checkpatch.sh $(KERNEL_TREE)

# Dynamic builds for the host run, static ones for the initramfs.
$(KTEST_HOST)/%: tests/kernel/%.c $(KTEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(KTEST_CFLAGS) $< -o $@ -luring -lpthread

$(KTEST_STATIC)/%: tests/kernel/%.c $(KTEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(KTEST_CFLAGS) -static $< -o $@ -luring -lpthread

kernel-tests-static: $(KTEST_NAMES:%=$(KTEST_STATIC)/%)

test-kernel-host: $(KTEST_NAMES:%=$(KTEST_HOST)/%)
	KMBUF_TEST_DIR=$(CURDIR)/$(BUILD)/tmp prove -f --exec tests/kernel/tap-exec.sh $^

# The series' uapi header, generated from the patched tree by `make headers`,
# against ours: one side of uapi-check.c compiled with each header.
uapi-check: kernel
	flock $(abspath $(KERNEL_BUILD)).lock \
		$(MAKE) -s -C $(KERNEL_TREE) O=$(abspath $(KERNEL_BUILD)) headers
	@mkdir -p $(BUILD)/kernel-tests
	$(CC) -std=gnu11 -Wall -Werror -DUAPI_KERNEL_SIDE -I$(KERNEL_HEADERS) \
		-c tests/kernel/uapi-check.c -o $(BUILD)/kernel-tests/uapi-kernel.o
	$(CC) -std=gnu11 -Wall -Werror -Iinclude tests/kernel/uapi-check.c \
		$(BUILD)/kernel-tests/uapi-kernel.o -o $(BUILD)/kernel-tests/uapi-check
	$(BUILD)/kernel-tests/uapi-check

# libstable's backend suites, run in the VM too: there kmbuf-ro is present
# and must pass like the other backends (they are dynamic programs).
VM_LIB_TESTS := $(addprefix $(BUILD)/tests/,test-async test-parity-rebuild \
	test-stress test-buffer-attacks test-table-reload test-reader-misuse \
	test-zero-extents)

# The kernel's NBD client against stabled (tests/kernel/nbd-client.sh):
# Debian's nbd-client and stabled go into the initramfs, the ext4 images
# and original files of nbd-fixture.sh onto the VM's test disk.
NBD_CLIENT ?= /usr/sbin/nbd-client
KNBD_DIR := $(BUILD)/kernel-nbd

$(KNBD_DIR)/.done: tests/kernel/nbd-fixture.sh $(BUILD)/bin/stable-mkimage \
		$(BUILD)/bin/stable-verify
	tests/kernel/nbd-fixture.sh $(BUILD)/bin/stable-mkimage $(KNBD_DIR)
	@touch $@

vm-test: kernel kernel-tests-static $(VM_LIB_TESTS) $(BUILD)/bin/stabled $(KNBD_DIR)/.done
	VM_EXTRA_BIN="$(abspath $(BUILD)/bin/stabled)" VM_HOST_PROGS=$(NBD_CLIENT) \
	VM_DISK_DIR=$(KNBD_DIR)/disk KERNEL_LOCK=$(abspath $(KERNEL_BUILD)).lock \
		kernel/vm-test.sh $(KERNEL_IMAGE) $(KTEST_STATIC) $(KVM_DIR) $(VM_LIB_TESTS) \
		tests/kernel/nbd-client.sh

# libstable's benchmark in the VM, where kmbuf-ro exists: the same
# stable-bench rows as make bench-lib, printed from the guest's console.
bench-vm: kernel $(BUILD)/bin/stable-bench $(BUILD)/bin/stable-mkimage
	@mkdir -p $(BUILD)/kernel-bench/none
	VM_EXTRA_BIN="$(abspath $(BUILD)/bin/stable-bench $(BUILD)/bin/stable-mkimage)" \
	KERNEL_LOCK=$(abspath $(KERNEL_BUILD)).lock KVM_TIMEOUT=$${KVM_TIMEOUT:-1800} \
		kernel/vm-test.sh $(KERNEL_IMAGE) $(BUILD)/kernel-bench/none \
		$(BUILD)/kernel-bench-vm kernel/vm-bench.sh > $(BUILD)/kernel-bench/verdict.txt || \
		{ cat $(BUILD)/kernel-bench/verdict.txt; exit 1; }
	sed -n '/^KTEST-START vm-bench.sh/,/^KTEST-RESULT vm-bench.sh/p' \
		$(BUILD)/kernel-bench-vm/console.txt | grep -v '^KTEST-'

# make bench-server's table in the VM: scripts/bench-server.sh runs in
# the guest (kernel/vm-bench-server.sh) with stabled on kmbuf-ro, its
# ro-fixed, private and sealed backends, nbdkit -r file and qemu-nbd side by side.
# fio, nbdkit with its file plugin (dlopened: carried by path) and
# qemu-nbd come from the host with their libraries; fio runs with
# kernel/vm-shm-shim.c preloaded, the kernel having no System V IPC. The data and its
# image sit on the ext4 disk, which must hold both; the guest's RAM must
# keep them in page cache. TCG: about 25 s per row at 20 s a row.
BENCH_VM_SIZE ?= 256M
BENCH_VM_SECONDS ?= 20
BENCH_VM_SERVERS ?= stabled stabled-ro-fixed stabled-private stabled-sealed nbdkit qemu-nbd
BENCH_VM_MEM ?= 2G
BENCH_VM_DISK_MB ?= 1024
BENCH_VM_PROGS = $(foreach p,fio $(filter nbdkit qemu-nbd,$(BENCH_VM_SERVERS)),$(shell command -v $(p))) \
	$(if $(filter nbdkit,$(BENCH_VM_SERVERS)),$(shell nbdkit --dump-config 2>/dev/null | \
		sed -n 's/^plugindir=//p')/nbdkit-file-plugin.so)
BENCH_VM_SHIM := $(BUILD)/kernel-bench-server/vm-shm-shim.so
$(BENCH_VM_SHIM): kernel/vm-shm-shim.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC $< -o $@

bench-server-vm: kernel $(BUILD)/bin/stabled $(BUILD)/bin/stable-mkimage $(BENCH_VM_SHIM)
	@mkdir -p $(BUILD)/kernel-bench-server/none
	@echo "# host load average before: $$(cut -d' ' -f1-3 /proc/loadavg)" > $(BUILD)/kernel-bench-server/host-load.txt
	VM_EXTRA_BIN="$(abspath $(BUILD)/bin/stabled $(BUILD)/bin/stable-mkimage \
		scripts/bench-server.sh $(BENCH_VM_SHIM))" \
	VM_HOST_PROGS="$(strip $(BENCH_VM_PROGS))" \
	VM_ENV='export BENCH_SIZE=$(BENCH_VM_SIZE) BENCH_SECONDS=$(BENCH_VM_SECONDS) BENCH_FINE=1 BENCH_SERVERS="$(BENCH_VM_SERVERS)"' \
	VM_DISK_MB=$(BENCH_VM_DISK_MB) KVM_MEM=$${KVM_MEM:-$(BENCH_VM_MEM)} KVM_SMP=$${KVM_SMP:-2} \
	KTEST_TIMEOUT=$${KTEST_TIMEOUT:-1500} KVM_TIMEOUT=$${KVM_TIMEOUT:-1800} \
	KERNEL_LOCK=$(abspath $(KERNEL_BUILD)).lock \
		kernel/vm-test.sh $(KERNEL_IMAGE) $(BUILD)/kernel-bench-server/none \
		$(BUILD)/kernel-bench-server-vm kernel/vm-bench-server.sh \
		> $(BUILD)/kernel-bench-server/verdict.txt || \
		{ cat $(BUILD)/kernel-bench-server/verdict.txt; exit 1; }
	@echo "# host load average after: $$(cut -d' ' -f1-3 /proc/loadavg)" >> $(BUILD)/kernel-bench-server/host-load.txt
	sed -n '/^KTEST-START vm-bench-server.sh/,/^KTEST-RESULT vm-bench-server.sh/p' \
		$(BUILD)/kernel-bench-server-vm/console.txt | grep -v '^KTEST-'
	@cat $(BUILD)/kernel-bench-server/host-load.txt

TEST_TARGETS += checkpatch test-kernel-host uapi-check vm-test

# Build at every step of the series (slow: one incremental build per patch).
check-series: kernel-source
	kernel/check-series.sh $(KERNEL_TREE) $(KERNEL_BUILD) $(KERNEL_JOBS)
