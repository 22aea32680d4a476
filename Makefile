# stable: the one Makefile of the tree (GNU make). README.md lists the
# targets people use; everything builds under $(BUILD)/, never in sources.
#
#   make demo           make a checksummed image from sample data, read it back verified
#   make test           build everything and run every test (ASan + UBSan)
#   make test-valgrind  the C tests under valgrind with leak checking
#   make install        PREFIX=/usr/local DESTDIR=
#   make deps           install the Debian packages the build and tests need

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CFLAGS ?= -O2 -g

# Quiet by default; V=1 prints every command.
Q := $(if $(V),,@)
say = $(if $(V),,@printf '  %-5s %s\n' $(1) $(2))

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wvla -Wformat=2
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -Iinclude -fPIC $(WARN) $(CFLAGS)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LIB_LIBS := -luring -lisal -lz -lpthread
TOOL_LIBS := -lblkid

LIB_SRC := $(sort $(wildcard libstable/*.c))
TOOL_NAMES := $(patsubst tools/%.c,%,$(sort $(wildcard tools/stable-*.c)))
TOOL_COMMON_SRC := $(filter-out $(TOOL_NAMES:%=tools/%.c),$(wildcard tools/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c) $(wildcard tests/stability/test-*.c))
UNIT_NAMES := $(notdir $(UNIT_SRC:%.c=%))
# Programs the stability scripts drive (not tests themselves).
STABILITY_HELPERS := vblocks

DEPS_STAMP := $(BUILD)/.deps-installed

.PHONY: all lib tools deps demo test test-unit test-valgrind install clean help \
	bench-verify bench-lib stability-report soak asan build-clang
all: lib tools

# Objects are not intermediates to delete.
.SECONDARY:

help:
	@sed -n '3,10p' Makefile

# --- dependencies --------------------------------------------------------
deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps.sh $(wildcard scripts/deps/*.txt)
	@mkdir -p $(@D)
	sh scripts/install-deps.sh
	@touch $@

# --- build: one pattern per variant (plain and sanitized) -----------------
# $(call variant,DIR,EXTRA_CFLAGS)
define variant
$(1)/obj/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$$(call say,CC,$$@)
	$$(Q)$$(CC) $$(BASE_CFLAGS) $(2) -MMD -MP -c $$< -o $$@

$(1)/lib/libstable.a: $(LIB_SRC:%.c=$(1)/obj/%.o)
	@mkdir -p $$(@D)
	$$(call say,AR,$$@)
	$$(Q)rm -f $$@ && $$(AR) rcs $$@ $$^

$(1)/bin/%: tools/%.c $(TOOL_COMMON_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libstable.a $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$$(call say,LD,$$@)
	$$(Q)$$(CC) $$(BASE_CFLAGS) $(2) -Itools $$< $(TOOL_COMMON_SRC:%.c=$(1)/obj/%.o) \
		$(1)/lib/libstable.a $$(TOOL_LIBS) $$(LIB_LIBS) -o $$@

$(1)/tests/%: tests/unit/%.c $(wildcard tests/lib/*.h) $(1)/lib/libstable.a
	@mkdir -p $$(@D)
	$$(call say,LD,$$@)
	$$(Q)$$(CC) $$(BASE_CFLAGS) $(2) -Ilibstable -Itests/lib $$< $(1)/lib/libstable.a \
		$$(LIB_LIBS) -o $$@

$(1)/tests/%: tests/stability/%.c $(wildcard tests/lib/*.h) $(1)/lib/libstable.a
	@mkdir -p $$(@D)
	$$(call say,LD,$$@)
	$$(Q)$$(CC) $$(BASE_CFLAGS) $(2) -Ilibstable -Itests/lib $$< $(1)/lib/libstable.a \
		$$(LIB_LIBS) -o $$@
endef

$(eval $(call variant,$(BUILD),))
$(eval $(call variant,$(BUILD)/asan,$(SAN_FLAGS)))

$(BUILD)/lib/libstable.so.0: $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libstable.so.0 -o $@ $^ $(LIB_LIBS)
	$(Q)ln -sf libstable.so.0 $(BUILD)/lib/libstable.so

$(BUILD)/lib/libstable.pc: libstable/libstable.pc.in Makefile
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

lib: $(BUILD)/lib/libstable.a $(BUILD)/lib/libstable.so.0 $(BUILD)/lib/libstable.pc
tools: $(TOOL_NAMES:%=$(BUILD)/bin/%)
asan: $(TOOL_NAMES:%=$(BUILD)/asan/bin/%) $(UNIT_NAMES:%=$(BUILD)/asan/tests/%) \
	$(STABILITY_HELPERS:%=$(BUILD)/asan/tests/%)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- demo ------------------------------------------------------------------
demo: all
	sh scripts/demo.sh $(BUILD)/bin

# --- tests -------------------------------------------------------------------
# Parts append their targets (kernel/kernel.mk adds the kernel and VM suites).
TEST_TARGETS := test-unit build-clang

# Warnings are errors under clang too: build everything with it once.
build-clang:
	$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang all
-include kernel/kernel.mk
# stabled (server/): its build rules, test-server, fuzz and bench-server.
-include server/server.mk

# The unit programs and the tool scripts in one prove run, one summary.
test-unit: asan
	STABLE_BIN=$(CURDIR)/$(BUILD)/asan/bin STABLE_TMP=$(CURDIR)/$(BUILD)/tmp \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	prove -f $(UNIT_NAMES:%=$(BUILD)/asan/tests/%) $(sort $(wildcard tests/tools/*.t)) \
		$(sort $(wildcard tests/docs/*.t)) $(sort $(wildcard tests/stability/*.t))

test: $(TEST_TARGETS)

VALGRIND := valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99
test-valgrind: $(UNIT_NAMES:%=$(BUILD)/tests/%)
	STABLE_TMP=$(CURDIR)/$(BUILD)/tmp prove -f --exec '$(VALGRIND)' $^

# --- benchmarks (figures, never pass/fail) -----------------------------------
bench-verify: all
	sh scripts/bench-verify.sh $(BUILD)/bin

# stable-verify's benchmark helper (tools/bench/, used by bench-verify.sh):
# crc32c over memory, the ceiling that a page-cached verify can reach.
$(BUILD)/bench/crc-bench: tools/bench/crc-bench.c $(BUILD)/lib/libstable.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $< $(BUILD)/lib/libstable.a $(LIB_LIBS) -o $@
bench-verify: $(BUILD)/bench/crc-bench

bench-lib: all
	sh scripts/bench-lib.sh $(BUILD)/bin

# The attack x backend table of docs/stability.md.
stability-report: $(BUILD)/asan/tests/test-buffer-attacks
	STABLE_TMP=$(CURDIR)/$(BUILD)/tmp $< --report $(BUILD)/stability-buffers.md
	cat $(BUILD)/stability-buffers.md

# The soak (tests/stability/soak.t) for DURATION seconds, with the
# optimised stabled so that its RSS figures mean what they say; make test
# runs the same test for a minute against the ASan build.
DURATION ?= 600
soak: asan $(BUILD)/bin/stabled
	SOAK_SECONDS=$(DURATION) SOAK_REPORT=$(CURDIR)/$(BUILD)/soak-report.md \
	SOAK_STABLED=$(CURDIR)/$(BUILD)/bin/stabled \
	STABLE_BIN=$(CURDIR)/$(BUILD)/asan/bin STABLE_TMP=$(CURDIR)/$(BUILD)/tmp \
		prove -v tests/stability/soak.t
	cat $(BUILD)/soak-report.md

# --- install -------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/stable $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOL_NAMES:%=$(BUILD)/bin/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/lib/libstable.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/lib/libstable.so.0 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libstable.so.0 $(DESTDIR)$(PREFIX)/lib/libstable.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' libstable/libstable.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/libstable.pc
	install -m 644 include/stable/*.h $(DESTDIR)$(PREFIX)/include/stable/
	$(if $(wildcard man/*.1),install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/)
	install -d $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 man/man3/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/

clean:
	rm -rf $(BUILD)
