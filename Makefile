# SPDX-License-Identifier: MIT
# fusebox: one non-recursive Makefile; everything is built in build/.
# The user's CFLAGS/LDFLAGS are kept; project flags are added on top.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

CC ?= cc
CLANG ?= clang
CFLAGS ?= -O2 -g
LDFLAGS ?=
PKG_CONFIG ?= pkg-config
B := build$(if $(SANITIZER),/$(SANITIZER))
FUZZ_SECONDS ?= 60

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -fPIC -fvisibility=hidden \
	-I. $(WARN) $(SAN_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN_CFLAGS) $(LDFLAGS)

# Under TSan: die_after_fork=0, for the shim starts its deadline thread
# again in a forked child, by design (timer.c); report_thread_leaks=0,
# for a child forked by a threaded test program (forkconnect) exits with
# its copies of the parent's threads never joined, which is no race and
# not fusebox's; atexit_sleep_ms=0, for
# TSan sleeps 1 s in every exit otherwise, which the tests' limits count;
# setarch -R (no ASLR), for gcc 12's TSan dies at start ("unexpected
# memory mapping") on kernels with vm.mmap_rnd_bits above 28;
# suppressions for grpcio's own libraries only (see the file).  Any report
# fails the run (TSan's exit code 66); the report directory is writable
# by all, for a test's worker runs as nobody.
TSAN_DIR = $(abspath $(B))/tsan
TSAN_TEST_OPTIONS = die_after_fork=0 atexit_sleep_ms=0 second_deadlock_stack=1 \
	report_thread_leaks=0 suppressions=$(CURDIR)/tests/tsan/suppressions.txt
ifeq ($(SANITIZER),thread)
TSAN_RUN = TSAN_OPTIONS="$(TSAN_TEST_OPTIONS)" setarch -R
endif

ifeq ($(SANITIZER),address)
SAN_CFLAGS := -fsanitize=address -fno-omit-frame-pointer
else ifeq ($(SANITIZER),undefined)
SAN_CFLAGS := -fsanitize=undefined -fno-sanitize-recover=all
else ifeq ($(SANITIZER),thread)
SAN_CFLAGS := -fsanitize=thread
else ifneq ($(SANITIZER),)
$(error SANITIZER must be address, undefined or thread)
endif

# Libraries come from pkg-config.  These are recursive variables: they are
# expanded when a recipe runs, after the dependency check below.
INIH_CFLAGS = $(shell $(PKG_CONFIG) --cflags inih)
INIH_A = $(shell $(PKG_CONFIG) --variable=libdir inih)/libinih.a
# HPACK (shim/streams.c): linked in, hidden like inih
NGHTTP2_A = $(shell $(PKG_CONFIG) --variable=libdir libnghttp2)/libnghttp2.a
# HTTP/1 request framing (shim/replay.c): linked in, hidden
HTTP_PARSER_A = $(shell $(CC) -print-file-name=libhttp_parser.a)
UV_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv)
UV_LIBS = $(shell $(PKG_CONFIG) --libs libuv)
CRIT_CFLAGS = $(shell $(PKG_CONFIG) --cflags criterion)
CRIT_LIBS = $(shell $(PKG_CONFIG) --libs criterion)
SSL_CFLAGS = $(shell $(PKG_CONFIG) --cflags openssl)
SSL_LIBS = $(shell $(PKG_CONFIG) --libs openssl)

# Debian packages: what the build needs, and what the tests run.
BUILD_DEBS := gcc make pkg-config libinih-dev libuv1-dev libssl-dev \
	libcriterion-dev libnghttp2-dev libhttp-parser-dev
TEST_DEBS := curl wget busybox python3 python3-grpcio python3-requests \
	python3-aiohttp ruby php-cli php-curl openssl perl nodejs netcat-openbsd \
	redis-tools \
	clang libclang-rt-14-dev valgrind procps iproute2 tmux prometheus strace
DEV_DEBS := clang-format
DEMO_DEBS := curl
# make bench's wall-clock side by side: the sidecar it compares with, the chart
BENCH_DEBS := haproxy gnuplot-nox

POLICY_SRC := $(wildcard policy/*.c)
SEG_SRC := $(wildcard segment/*.c)
SHIM_SRC := $(wildcard shim/*.c)
CLI_SRC := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
INTEG_SRC := $(wildcard tests/integration/*.c)
PROG_SRC := $(wildcard tests/integration/progs/*.c)
PROGS := $(PROG_SRC:tests/integration/progs/%.c=$(B)/progs/%) \
	$(B)/progs/libdeep.so $(B)/progs/libdeeplazy.so

POLICY_OBJ := $(POLICY_SRC:%.c=$(B)/%.o)
SEG_OBJ := $(SEG_SRC:%.c=$(B)/%.o)
SHIM_OBJ := $(SHIM_SRC:%.c=$(B)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
INTEG_OBJ := $(INTEG_SRC:%.c=$(B)/%.o)

LIB := $(B)/libfusebox.so
BIN := $(B)/fusebox
FIXTURE := $(B)/fixture
FIXTURE_TLS := $(B)/fixture-tls
TARGETS := $(LIB) $(BIN) $(FIXTURE) $(FIXTURE_TLS)

.PHONY: all test check test-unit test-concurrency test-integration demo bench \
	bench-scale fuzz format \
	check-format check-exports check-layers install uninstall deps clean

all: $(TARGETS)

# --- dependencies --------------------------------------------------------
# Missing packages are installed when we run as root, else we say how.
define need_debs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "fusebox: installing$$missing"; \
	    $(MAKE) --no-print-directory deps DEPS="$$missing" || exit 1; \
	  else \
	    echo "fusebox: missing packages; run as root:" >&2; \
	    echo "  apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi
endef

$(B)/.deps-build: | $(B)
	$(call need_debs,$(BUILD_DEBS))
	@touch $@

$(B)/.deps-test: | $(B)
	$(call need_debs,$(TEST_DEBS))
	@touch $@

$(B)/.deps-demo: | $(B)
	$(call need_debs,$(DEMO_DEBS))
	@touch $@

$(B)/.deps-bench: | $(B)
	$(call need_debs,$(BENCH_DEBS))
	@touch $@

DEPS ?= $(BUILD_DEBS) $(TEST_DEBS) $(DEV_DEBS) $(COMPAT_DEBS) \
	$(CPYTHON_DEBS) $(BENCH_DEBS)
deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS) || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS); }

$(B):
	@mkdir -p $(B)

# --- objects --------------------------------------------------------------
$(B)/%.o: %.c | $(B)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(INIH_CFLAGS) $(UV_CFLAGS) -MMD -MP -c $< -o $@

-include $(wildcard $(B)/*/*.d $(B)/*/*/*.d)

$(B)/libpolicy.a: $(POLICY_OBJ)
	rm -f $@ && ar rcs $@ $^

# The shim links inih statically and hides it; only the interposed libc
# names are exported (make check-exports).
$(LIB): $(SHIM_OBJ) $(SEG_OBJ) $(B)/libpolicy.a shim/tls.map
	$(CC) -shared -o $@ $(SHIM_OBJ) $(SEG_OBJ) $(B)/libpolicy.a $(INIH_A) \
	  $(NGHTTP2_A) $(HTTP_PARSER_A) \
	  -Wl,--exclude-libs,ALL -Wl,-z,now -Wl,-z,relro $(ALL_LDFLAGS) \
	  -Wl,--version-script=shim/tls.map \
	  -Wl,-z,defs -lm -ldl -lpthread

# The command reads the segment with segment/; it never links the
# interposers.  OpenSSL is for serve --tls-cert (cli/serve_tls.c).
$(CLI_OBJ): ALL_CFLAGS += $(SSL_CFLAGS)
$(BIN): $(CLI_OBJ) $(SEG_OBJ) $(B)/libpolicy.a
	$(CC) -o $@ $(CLI_OBJ) $(SEG_OBJ) $(B)/libpolicy.a $(INIH_A) \
	  $(ALL_LDFLAGS) $(UV_LIBS) $(SSL_LIBS) -lm -lpthread

$(FIXTURE): tests/fixtures/fixture.c | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) $(UV_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(UV_LIBS)

# The HTTPS fixture: libuv and OpenSSL, a certificate made at start.
$(FIXTURE_TLS): tests/fixtures/tls.c | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) $(UV_CFLAGS) $(SSL_CFLAGS) $< -o $@ \
	  $(ALL_LDFLAGS) $(UV_LIBS) $(SSL_LIBS)

# --- tests ----------------------------------------------------------------
# shim/h2.c is pure (the HTTP/2 frame parser): unit-tested alone; so is
# segment/, on segments the tests make
$(B)/test-unit: $(UNIT_OBJ) $(SEG_OBJ) $(B)/libpolicy.a $(B)/shim/h2.o
	$(CC) -o $@ $(UNIT_OBJ) $(SEG_OBJ) $(B)/shim/h2.o $(B)/libpolicy.a \
	  $(INIH_A) $(ALL_LDFLAGS) $(CRIT_LIBS) -lm -lpthread

$(B)/test-integration: $(INTEG_OBJ) $(B)/libpolicy.a
	$(CC) -o $@ $(INTEG_OBJ) $(B)/libpolicy.a $(INIH_A) $(ALL_LDFLAGS) \
	  $(CRIT_LIBS) -lm -lpthread

test check: check-layers test-unit test-concurrency test-integration

# The shared structures under many threads, with interleavings and kills
# injected at their steps (FUSEBOX_INTERLEAVE); not Criterion, so that
# it runs under every sanitizer.  CONC_OPS: operations per structure.
CONC := $(B)/test-concurrency
$(CONC): tests/concurrency/conc.c $(SEG_SRC) $(B)/libpolicy.a | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) -DFUSEBOX_INTERLEAVE tests/concurrency/conc.c \
	  $(SEG_SRC) -o $@ $(B)/libpolicy.a $(ALL_LDFLAGS) -lpthread

test-concurrency: $(CONC)
	$(TSAN_RUN) $(CONC)

ifneq ($(SANITIZER),thread)
test-unit: $(B)/test-unit
	$(B)/test-unit --jobs 2
else
# policy/ is pure and single-threaded: TSan has nothing to watch there, and
# Criterion cannot run under it (see test-integration): natively.
test-unit:
	$(MAKE) --no-print-directory SANITIZER= test-unit
endif

$(B)/progs/%: tests/integration/progs/%.c | $(B)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) -lpthread

# the one program of the tests that links OpenSSL
$(B)/progs/tlsthreads: tests/integration/progs/tlsthreads.c | $(B)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SSL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(SSL_LIBS) \
	  -lpthread

# deepbind finds libdeep.so by its bare name in its RUNPATH too; the
# library comes bound at load and read-only (as Debian builds libcurl),
# and bound lazily.
$(B)/progs/deepbind: ALL_LDFLAGS += -ldl -Wl,-rpath,'$$ORIGIN'
$(B)/progs/libdeep.so: tests/integration/progs/lib/deep.c | $(B)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared $< -o $@ $(ALL_LDFLAGS) -Wl,-z,now,-z,relro
$(B)/progs/libdeeplazy.so: tests/integration/progs/lib/deep.c | $(B)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared $< -o $@ $(ALL_LDFLAGS) -Wl,-z,lazy,-z,norelro

# ASan's runtime must come first in LD_PRELOAD of the guarded children.
ifeq ($(SANITIZER),address)
TEST_PRELOAD = FUSEBOX_TEST_PRELOAD=$$($(CC) -print-file-name=libasan.so)
endif

ifneq ($(SANITIZER),thread)
test-integration: $(TARGETS) $(PROGS) $(B)/test-integration $(B)/.deps-test
	$(TEST_PRELOAD) FUSEBOX_BUILD=$(abspath $(B)) FUSEBOX_SRC=$(CURDIR) \
	  $(B)/test-integration --jobs 2 $(TEST_ARGS)
else
# TSan watches the shim where its hooks, its deadline thread and the
# segment meet: in the guarded programs.  libfusebox.so, the test
# programs, the fixture and the command are built with it; the Criterion
# runner is not: Criterion maps its arenas at fixed addresses that TSan
# keeps for its shadow, and aborts or crashes under it.
$(B)/tests/%.o: SAN_CFLAGS :=
$(B)/test-integration: private SAN_CFLAGS :=

$(B)/tsan-preload.so: tests/tsan/preload.c | $(B)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -fPIC -shared $< -o $@ $(LDFLAGS)

# The suites that guard real programs; not run/ and examples/, whose
# `fusebox run` puts libfusebox.so ahead of libtsan.so in LD_PRELOAD, nor
# the command's serve/ and top/.
TEST_ARGS ?= --filter '!(@(run|examples|serve|top))/*'

# Children: TSan's runtime first in LD_PRELOAD, then tests/tsan/preload.c
# (why: see there).  Reports go to files, checked after the run.
test-integration: $(TARGETS) $(PROGS) $(B)/test-integration \
	  $(B)/tsan-preload.so $(B)/.deps-test
	@rm -rf $(TSAN_DIR) && mkdir -p $(TSAN_DIR) && chmod 1777 $(TSAN_DIR)
	FUSEBOX_TEST_PRELOAD="$$($(CC) -print-file-name=libtsan.so) \
	  $(abspath $(B))/tsan-preload.so" \
	TSAN_OPTIONS="log_path=$(TSAN_DIR)/report $(TSAN_TEST_OPTIONS)" \
	FUSEBOX_BUILD=$(abspath $(B)) FUSEBOX_SRC=$(CURDIR) \
	  setarch -R $(B)/test-integration --jobs 2 $(TEST_ARGS); st=$$?; \
	if [ -n "$$(ls $(TSAN_DIR))" ]; then cat $(TSAN_DIR)/* >&2; \
	  echo "ThreadSanitizer: reports in $(TSAN_DIR)" >&2; exit 1; fi; \
	exit $$st
endif

# --- stress: processes x threads x kill -9 against one segment --------------
include tests/stress/stress.mk
include tests/compat/compat.mk
include tests/cpython/cpython.mk

# --- fuzzing --------------------------------------------------------------
$(B)/fuzz-policy: tests/fuzz/fuzz_policy.c $(POLICY_SRC) | $(B)/.deps-test
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -I. $(INIH_CFLAGS) \
	  -fsanitize=fuzzer,address,undefined $^ $(INIH_A) -o $@

$(B)/fuzz-segment: tests/fuzz/fuzz_segment.c $(SEG_SRC) cli/report.c \
	  cli/report_table.c cli/prom.c \
	  $(POLICY_SRC) | $(B)/.deps-test
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -DFUSEBOX_FUZZ -I. \
	  $(INIH_CFLAGS) -fsanitize=fuzzer,address,undefined $^ $(INIH_A) \
	  -lpthread -o $@

# Each harness gets half of FUZZ_SECONDS.
fuzz: $(B)/fuzz-policy $(B)/fuzz-segment
	@mkdir -p $(B)/corpus-policy $(B)/corpus-segment
	cp examples/*.ini $(B)/corpus-policy/ 2>/dev/null || true
	$(B)/fuzz-policy -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) \
	  -max_len=4096 -timeout=10 $(B)/corpus-policy
	$(B)/fuzz-segment -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) \
	  -timeout=10 $(B)/corpus-segment

# --- benchmarks ------------------------------------------------------------
$(B)/bench-match: bench/bench_match.c $(B)/libpolicy.a
	$(CC) $(ALL_CFLAGS) $< -o $@ $(B)/libpolicy.a $(INIH_A) $(ALL_LDFLAGS)

$(B)/bench-io: bench/bench_io.c | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS)

$(B)/bench-tls: bench/bench_tls.c | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) $(SSL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(SSL_LIBS)

$(B)/bench-wall: bench/bench_wall.c | $(B)/.deps-build
	$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) -lpthread

# $(call bench_step,NAME,COMMAND): COMMAND's output shown and kept in
# $(B)/bench/NAME.txt for the report; fails when COMMAND does.
bench_step = echo '$(2)'; { $(2); echo $$? >$(B)/bench/$(1).rc; } | \
	tee $(B)/bench/$(1).txt; st=$$(cat $(B)/bench/$(1).rc); \
	rm -f $(B)/bench/$(1).rc; exit $$st

# The matcher, instructions per call (callgrind, the stable figures), then
# wall clock against no shim and an HAProxy sidecar (bench/wall.sh, about
# a minute): tables on stdout, $(B)/bench/report.md and bench.svg.
bench: $(B)/bench-match $(B)/bench-io $(B)/bench-tls $(B)/bench-wall \
	  $(TARGETS) $(B)/.deps-test $(B)/.deps-bench
	@mkdir -p $(B)/bench && rm -f $(B)/bench/*.txt $(B)/bench/*.rc
	@$(call bench_step,match,$(B)/bench-match)
	@$(call bench_step,callgrind,bench/callgrind.sh $(B))
	bench/wall.sh $(B)

# How the per-connect cost grows with rules, live addresses, threads and
# processes, and what a reload under 10,000 open connections costs
# (bench/scale.sh, about 90 s; never part of make test).  The table goes
# to stdout and $(B)/bench/scale.md.
$(B)/bench-scale: bench/bench_scale.c $(B)/libpolicy.a
	$(CC) $(ALL_CFLAGS) $(INIH_CFLAGS) $< -o $@ $(B)/libpolicy.a $(INIH_A) \
	  $(ALL_LDFLAGS) -lpthread

$(B)/.deps-valgrind: | $(B)
	$(call need_debs,valgrind)
	@touch $@

bench-scale: $(B)/bench-scale $(LIB) $(B)/.deps-valgrind
	bench/scale.sh $(B)

# --- demo -----------------------------------------------------------------
# The README's first command: build, then the order -> payment scenario of
# examples/demo/demo.sh on 127.0.0.1, about 15 s (curl is all it needs).
demo: $(TARGETS) $(B)/.deps-demo
	@FUSEBOX_BUILD=$(abspath $(B)) examples/demo/demo.sh

# --- style and ABI --------------------------------------------------------
FORMAT_SRC = $(wildcard policy/*.[ch] segment/*.[ch] shim/*.[ch] cli/*.[ch] \
	tests/*/*.[ch] tests/integration/progs/*.[ch] bench/*.c)
format:
	clang-format -i $(FORMAT_SRC)

check-format:
	@command -v clang-format >/dev/null || $(MAKE) deps DEPS=clang-format
	clang-format --dry-run --Werror $(FORMAT_SRC)

check-exports: $(LIB)
	@nm -D --defined-only $(LIB) | awk '{print $$3}' | sort > $(B)/exports
	@if diff -u shim/exports.txt $(B)/exports; then \
	  echo "check-exports: $$(wc -l < $(B)/exports) symbols, as listed"; \
	else echo "check-exports: exports differ from shim/exports.txt" >&2; \
	  exit 1; fi

# --- install --------------------------------------------------------------
MAN1 := $(wildcard docs/*.1)
MAN5 := $(wildcard docs/*.5)
MAN7 := $(wildcard docs/*.7)

# The architecture: folders include one way, the shim's modules call one
# way (tests/layers/check.sh has the ranks).
check-layers: $(LIB)
	tests/layers/check.sh $(B)

install: $(LIB) $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/fusebox
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libfusebox.so
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fusebox $(DESTDIR)$(LIBDIR)/libfusebox.so
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))

clean:
	rm -rf $(B)
