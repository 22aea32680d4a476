# stabled, the NBD daemon (server/): included by the top-level Makefile.
# Builds $(BUILD)/bin/stabled and its sanitized twin, the libFuzzer
# target, and runs tests/server/*.t (TAP, real NBD clients).
#
#   make stabled        the daemon
#   make test-server    the server tests (part of make test)
#   make fuzz           fuzz the handshake and request parser (FUZZ_SECONDS=600)
#   make bench-server   fio against stabled, nbdkit and qemu-nbd (figures)

SERVER_SRC := $(sort $(wildcard server/*.c))
# The protocol code the fuzzer drives without sockets.
FUZZ_SRC := server/handshake.c server/protocol.c server/outq.c server/exports.c \
	server/later.c server/log.c server/stats.c
FUZZ_SECONDS ?= 600
FUZZ_TEST_SECONDS ?= 30

.PHONY: stabled test-server fuzz bench-server

define server_variant
$(1)/bin/stabled: $(SERVER_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libstable.a
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $(2) $(SERVER_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libstable.a \
		$$(LIB_LIBS) -o $$@
endef
$(eval $(call server_variant,$(BUILD),))
$(eval $(call server_variant,$(BUILD)/asan,$(SAN_FLAGS)))

stabled: $(BUILD)/bin/stabled
all: stabled
asan: $(BUILD)/asan/bin/stabled

# libFuzzer needs clang's sanitizer runtime: the library is compiled in too.
$(BUILD)/fuzz/fuzz-nbd: server/fuzz/fuzz-nbd.c $(FUZZ_SRC) $(LIB_SRC) \
		$(wildcard server/*.h libstable/*.h) $(DEPS_STAMP)
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Iinclude -Iserver -Ilibstable -g -O1 \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		server/fuzz/fuzz-nbd.c $(FUZZ_SRC) $(LIB_SRC) $(LIB_LIBS) -o $@

fuzz: $(BUILD)/fuzz/fuzz-nbd
	@mkdir -p $(BUILD)/fuzz/corpus
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus server/fuzz/seeds

TEST_TARGETS += test-server
test-server: $(BUILD)/asan/bin/stabled $(TOOL_NAMES:%=$(BUILD)/asan/bin/%) $(BUILD)/fuzz/fuzz-nbd \
		$(BUILD)/bin/stabled
	STABLE_BIN=$(CURDIR)/$(BUILD)/asan/bin STABLE_TMP=$(CURDIR)/$(BUILD)/tmp \
	STABLED_PLAIN=$(CURDIR)/$(BUILD)/bin/stabled \
	STABLED_FUZZ=$(CURDIR)/$(BUILD)/fuzz/fuzz-nbd FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	prove -f $(sort $(wildcard tests/server/*.t))

.PHONY: test-server-valgrind
test-server-valgrind: $(BUILD)/bin/stabled $(TOOL_NAMES:%=$(BUILD)/asan/bin/%)
	STABLE_BIN=$(CURDIR)/$(BUILD)/asan/bin STABLE_TMP=$(CURDIR)/$(BUILD)/tmp \
	STABLED_PLAIN=$(CURDIR)/$(BUILD)/bin/stabled \
	prove -f tests/server/valgrind.t

# Three interleaved rounds of 5 s rows: medians and ratios to nbdkit.
BENCH_ROUNDS ?= 3
BENCH_SECONDS ?= 5
bench-server: $(BUILD)/bin/stabled $(TOOL_NAMES:%=$(BUILD)/bin/%)
	BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_SECONDS=$(BENCH_SECONDS) sh scripts/bench-server.sh $(BUILD)/bin

.PHONY: install-stabled
install: install-stabled
install-stabled: $(BUILD)/bin/stabled
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILD)/bin/stabled $(DESTDIR)$(PREFIX)/sbin/
	install -m 644 man/stabled.8 $(DESTDIR)$(PREFIX)/share/man/man8/
