# SPDX-License-Identifier: MIT
# make compat: a matrix of real client programs (curl, wget, busybox wget,
# Python urllib/requests/asyncio/grpcio, Perl, Node, Ruby, PHP, Java,
# git, psql, redis-cli, nginx, socat, wrk, ab, h2load) run under fusebox
# against fixtures on 127.0.0.1.  Per client: the same output with and
# without fusebox, calls counted, response_timeout ending a hang, and a
# breaker that opens across processes and closes again.  Prints the table
# (PASS / FAIL / SKIP with a reason), writes it to $(B)/compat.md, and
# fails when a row FAILs that tests/compat/compat.py does not list as
# unguardable.  A client whose package is missing is SKIPPED.  About a
# minute on 2 cores; COMPAT_BUDGET (270 s) bounds it.
#
#   COMPAT_ONLY=curl,psql   run a subset (compat.py --list names them)
#   COMPAT_JOBS=3           clients run at once
#
# The Makefile includes this after it sets B and TARGETS; alone:
#   make -f Makefile -f tests/compat/compat.mk compat

# The Debian 12 packages of the clients (and of nghttpd, the HTTP/2 server
# h2load needs).  Installing nginx starts its service where policy-rc.d
# allows it.
COMPAT_DEBS := curl wget busybox python3 python3-requests python3-grpcio \
	perl nodejs ruby php-cli php-curl openjdk-17-jdk-headless git \
	postgresql-client redis-tools nginx socat wrk apache2-utils \
	nghttp2-client nghttp2-server

COMPAT_ONLY ?=
COMPAT_JOBS ?= 3
COMPAT_BUDGET ?= 270

# wherever it is included, compat never becomes the default goal
compat_default_goal := $(.DEFAULT_GOAL)

.PHONY: compat compat-deps

# As root, install what is missing, one package at a time if the whole
# set fails; never fail here: a client left without its package is
# reported SKIPPED.  As another user, say what to run.  Checked at each
# run (dpkg-query, a fraction of a second).
compat-deps:
	@missing=""; for p in $(COMPAT_DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "compat: installing$$missing"; \
	    $(MAKE) --no-print-directory deps DEPS="$$missing" || \
	    for p in $$missing; do \
	      $(MAKE) --no-print-directory deps DEPS=$$p || \
	        echo "compat: $$p cannot be installed; its clients are SKIPPED"; \
	    done; \
	  else \
	    echo "compat: missing packages (their clients are SKIPPED); as root:"; \
	    echo "  apt-get install -y$$missing"; \
	  fi; \
	fi

compat: $(TARGETS) compat-deps
	COMPAT_ONLY="$(COMPAT_ONLY)" COMPAT_JOBS="$(COMPAT_JOBS)" \
	  COMPAT_BUDGET="$(COMPAT_BUDGET)" \
	  /usr/bin/python3 tests/compat/compat.py --build $(abspath $(B)) \
	  --src $(CURDIR)

.DEFAULT_GOAL := $(compat_default_goal)
