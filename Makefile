# zenmon: one build for the kernel programs, the agent, the client library,
# the CLI and the tests. `make` builds; `make run` and `make test` first
# install what is missing (tools/install-deps.sh, needs root).
#
#   make                 build everything into build/
#   make run ARGS=...    install deps, build, run zenmond in the foreground
#   make test            install deps, build, run every test (and the fuzzers,
#                        FUZZ_SECONDS each: tests/fuzz/Makefile.inc)
#   make SAN=1 test      the same under AddressSanitizer + UBSan (build-san/),
#                        less the fuzzers (they always run under both)
#   make fuzz            build the fuzzers (build-fuzz/, clang) and run them
#   make bench [FULL=1]  the benchmarks (tools/bench, needs root)
#   make install         install into $(DESTDIR)$(PREFIX) (and the unit and the
#                        example config; see the variables below)
#   make uninstall       remove what make install put there

VERSION   := 0.1.0
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
BINDIR    ?= $(PREFIX)/bin
SBINDIR   ?= $(PREFIX)/sbin
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR    ?= $(PREFIX)/share/man
# /etc whatever the prefix: zenmond reads /etc/zenmon/zenmond.conf (with
# another SYSCONFDIR the unit passes --config).
SYSCONFDIR ?= /etc
UNITDIR   ?= $(PREFIX)/lib/systemd/system
CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')

ifeq ($(SAN),1)
BUILD     ?= build-san
SANFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD     ?= build
SANFLAGS  :=
endif

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wno-unused-parameter -Wformat=2 -Wvla
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE \
             -DZENMON_VERSION='"$(VERSION)"' -Iinclude -Iuser/common -I$(BUILD)
LDFLAGS   += $(SANFLAGS)
BPF_LIBS  := -lbpf -lelf -lz
# The agent's /metrics listener (user/zenmond/metrics_http.c).
HTTP_LIBS := -lmicrohttpd

COMMON_SRC := $(sort $(wildcard user/common/*.c))
AGENT_SRC  := $(sort $(wildcard user/zenmond/*.c))
LIB_SRC    := $(sort $(wildcard user/libzenmon/*.c))
CTL_SRC    := $(sort $(wildcard user/zenmonctl/*.c))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
IT_SRC     := $(sort $(wildcard tests/integration/test_*.c))
IT_HELPERS := $(filter-out $(IT_SRC),$(sort $(wildcard tests/integration/*.c)))

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(BUILD)/%.o)
AGENT_CORE := $(filter-out $(BUILD)/user/zenmond/main.o,$(AGENT_OBJ))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(COMMON_SRC:%.c=$(BUILD)/pic/%.o)
CTL_OBJ    := $(CTL_SRC:%.c=$(BUILD)/%.o)
CTL_CORE   := $(filter-out $(BUILD)/user/zenmonctl/main.o,$(CTL_OBJ))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
IT_BIN     := $(IT_SRC:tests/integration/%.c=$(BUILD)/tests/it_%)
IT_HOBJ    := $(IT_HELPERS:%.c=$(BUILD)/%.o)

SKEL       := $(BUILD)/zenmon.skel.h
BINS       := $(BUILD)/zenmond $(BUILD)/zenmonctl
LIBS       := $(BUILD)/libzenmon.a $(BUILD)/libzenmon.so

.PHONY: all deps run test test-unit test-integration bench install uninstall clean
.DELETE_ON_ERROR:
.SECONDARY: $(IT_HOBJ)

all: $(BINS) $(LIBS) $(BUILD)/zenmon.pc $(UNIT_BIN) $(IT_BIN) $(BUILD)/zm-bench

deps:
	@tools/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/zenmond
	exec $(BUILD)/zenmond $(ARGS)

test: deps
	@$(MAKE) --no-print-directory all $(FUZZ_TEST_BUILD)
	@$(FUZZ_TEST_ENV) tests/run-tests.sh $(BUILD)

test-unit: $(UNIT_BIN)
	@tests/run-tests.sh --unit $(BUILD)

test-integration: all
	@tests/run-tests.sh --integration $(BUILD)

# ---- kernel side ------------------------------------------------------------

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	@test -r /sys/kernel/btf/vmlinux || { echo "make: /sys/kernel/btf/vmlinux is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is required)" >&2; exit 1; }
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/zenmon.bpf.o: bpf/zenmon.bpf.c include/zenmon/kern.h $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Iinclude -I$(BUILD) -c $< -o $@

$(SKEL): $(BUILD)/zenmon.bpf.o
	$(BPFTOOL) gen skeleton $< name zenmon_bpf > $@

# ---- userspace --------------------------------------------------------------

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(AGENT_OBJ): $(SKEL)

$(BUILD)/libzmagent.a: $(AGENT_CORE) $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/zenmond: $(BUILD)/user/zenmond/main.o $(BUILD)/libzmagent.a
	$(CC) $(LDFLAGS) -o $@ $^ $(BPF_LIBS) $(HTTP_LIBS)

$(BUILD)/libzenmon.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libzenmon.so: $(LIB_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libzenmon.so.1 -o $@.1 $^
	ln -sf libzenmon.so.1 $@

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	     -e 's|@VERSION@|$(VERSION)|'

$(BUILD)/zenmon.pc: user/libzenmon/zenmon.pc.in Makefile
	$(PC_SED) $< > $@

$(BUILD)/zenmonctl: $(CTL_OBJ) $(BUILD)/libzenmon.a
	$(CC) $(LDFLAGS) -o $@ $^

# ---- tests ------------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libzmagent.a $(BUILD)/libzenmon.a $(CTL_CORE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iuser/zenmond -Iuser/zenmonctl -o $@ $< $(CTL_CORE) \
		$(BUILD)/libzmagent.a $(BUILD)/libzenmon.a $(LDFLAGS) -lcmocka $(BPF_LIBS) $(HTTP_LIBS)

$(BUILD)/tests/it_%: tests/integration/%.c $(IT_HOBJ) $(BUILD)/libzenmon.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/integration -o $@ $< $(IT_HOBJ) $(BUILD)/libzenmon.a \
		$(LDFLAGS) -lcmocka -lpthread

# ---- install ----------------------------------------------------------------

# Man pages are whatever docs/man holds, each into the section its suffix
# names. The .pc file and the unit are written here, not at build time, so
# that they name the directories of this install. An existing config file
# is never overwritten; uninstall removes it only if it is still the
# shipped one.
MAN_PAGES := $(sort $(wildcard docs/man/*.[1-8]))
CONF      := $(DESTDIR)$(SYSCONFDIR)/zenmon/zenmond.conf
UNIT_EXEC := $(SBINDIR)/zenmond$(if $(filter-out /etc,$(SYSCONFDIR)), --config $(SYSCONFDIR)/zenmon/zenmond.conf)

install: $(BINS) $(LIBS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)/zenmon $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/zenmond $(DESTDIR)$(SBINDIR)/zenmond
	install -m 0755 $(BUILD)/zenmonctl $(DESTDIR)$(BINDIR)/zenmonctl
	install -m 0644 $(BUILD)/libzenmon.a $(DESTDIR)$(LIBDIR)/libzenmon.a
	install -m 0755 $(BUILD)/libzenmon.so.1 $(DESTDIR)$(LIBDIR)/libzenmon.so.1
	ln -sf libzenmon.so.1 $(DESTDIR)$(LIBDIR)/libzenmon.so
	install -m 0644 include/zenmon.h $(DESTDIR)$(INCLUDEDIR)/zenmon.h
	install -m 0644 include/zenmon/proto.h $(DESTDIR)$(INCLUDEDIR)/zenmon/proto.h
	$(PC_SED) user/libzenmon/zenmon.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/zenmon.pc
	sed -e 's|^ExecStart=/usr/local/sbin/zenmond$$|ExecStart=$(UNIT_EXEC)|' dist/zenmond.service \
		> $(DESTDIR)$(UNITDIR)/zenmond.service
	@for f in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${f##*.}; \
		echo "install -m 0644 $$f $$d/"; install -d $$d && install -m 0644 $$f $$d/ || exit 1; \
	done
	@if [ -e $(CONF) ]; then \
		echo "keeping $(CONF) (the shipped example is dist/zenmond.conf)"; \
	else \
		echo "install -D -m 0644 dist/zenmond.conf $(CONF)"; \
		install -D -m 0644 dist/zenmond.conf $(CONF); \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/zenmond $(DESTDIR)$(BINDIR)/zenmonctl \
		$(DESTDIR)$(LIBDIR)/libzenmon.a $(DESTDIR)$(LIBDIR)/libzenmon.so.1 \
		$(DESTDIR)$(LIBDIR)/libzenmon.so $(DESTDIR)$(PKGCONFIGDIR)/zenmon.pc \
		$(DESTDIR)$(INCLUDEDIR)/zenmon.h $(DESTDIR)$(INCLUDEDIR)/zenmon/proto.h \
		$(DESTDIR)$(UNITDIR)/zenmond.service
	rm -f $(foreach f,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(f)))/$(notdir $(f)))
	rmdir $(DESTDIR)$(INCLUDEDIR)/zenmon 2>/dev/null || true
	@if [ -e $(CONF) ] && ! cmp -s dist/zenmond.conf $(CONF); then \
		echo "keeping $(CONF): it was changed after install"; \
	else \
		rm -f $(CONF); rmdir $(dir $(CONF)) 2>/dev/null || true; \
	fi

clean:
	rm -rf build build-san

include tools/bench/Makefile.inc
include tests/fuzz/Makefile.inc

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
