# SPDX-License-Identifier: MIT
# make test-cpython: CPython's own network test suites (Debian's
# libpython3.11-testsuite) run three times with /usr/bin/python3.11:
# without fusebox, under a policy that only counts, and under a typical
# one (timeouts, breaker, a high limit); every test id must have the same
# outcome in all three (tests/cpython/cpython.py says which modules, which
# tests are left out and why, and why the policies cannot change an
# outcome).  127.0.0.1 only; a segment of its own per run.  About 130 s
# on 2 cores; CPYTHON_JOBS is regrtest's -j (most modules wait, not
# compute), CPYTHON_ARGS goes to the driver (e.g. --out DIR to keep the
# logs, or module names to run only those).
#
# The Makefile includes this after it sets B, TARGETS and need_debs;
# alone:
#   make -f Makefile -f tests/cpython/cpython.mk test-cpython

CPYTHON_DEBS := python3.11 libpython3.11-testsuite
CPYTHON_JOBS ?= 8
CPYTHON_ARGS ?=

# wherever it is included, test-cpython never becomes the default goal
cpython_default_goal := $(.DEFAULT_GOAL)

.PHONY: test-cpython

ifeq ($(SANITIZER),)
test-cpython: $(TARGETS) $(B)/.deps-cpython
	/usr/bin/python3.11 tests/cpython/cpython.py --build $(abspath $(B)) \
	  --jobs $(CPYTHON_JOBS) $(CPYTHON_ARGS)
else
# fusebox run puts libfusebox.so ahead of the sanitizer's runtime in
# LD_PRELOAD, and python3.11 is not built with it.
test-cpython:
	@echo "test-cpython: not with SANITIZER=$(SANITIZER)" >&2; exit 2
endif

$(B)/.deps-cpython: | $(B)
	$(call need_debs,$(CPYTHON_DEBS))
	@touch $@

.DEFAULT_GOAL := $(cpython_default_goal)
