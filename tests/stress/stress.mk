# SPDX-License-Identifier: MIT
# make stress: N processes x M threads of real clients (python3, curl)
# under the shim against fixtures on 127.0.0.1, one shared segment,
# kill -9 of guarded clients mid-connect and mid-wait, then checks that
# print PASS or FAIL with their numbers (tests/stress/stress.py says
# what each relies on).  STRESS_SECONDS (60 by default; CI runs 15) bounds
# the run when all is well; STRESS_PROCS x STRESS_THREADS are the clients
# of the rule whose processes are killed.
#
# The Makefile includes this after it sets B and TARGETS (prerequisites
# are expanded as the rule is read); alone:
#   make -f Makefile -f tests/stress/stress.mk stress

STRESS_SECONDS ?= 60
STRESS_PROCS ?= 6
STRESS_THREADS ?= 16

# wherever it is included, stress never becomes the default goal
stress_default_goal := $(.DEFAULT_GOAL)

.PHONY: stress

stress: $(TARGETS) $(B)/.deps-test
	$(TEST_PRELOAD) python3 tests/stress/stress.py --build $(abspath $(B)) \
	  --seconds $(STRESS_SECONDS) --procs $(STRESS_PROCS) \
	  --threads $(STRESS_THREADS)

.DEFAULT_GOAL := $(stress_default_goal)
