/* SPDX-License-Identifier: MIT */
/* Snapshots of a mapped segment as the JSON object of SPEC §4 and as a
 * plain-text table.  A pure reader: the clock and the process liveness
 * check come from the caller, and every byte of the segment is untrusted. */
#ifndef FUSEBOX_REPORT_H
#define FUSEBOX_REPORT_H

#include "shim/segment.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct report_opts {
	const char *segment;  /* name printed as "segment" */
	uint64_t now_mono_ms; /* CLOCK_MONOTONIC, the breakers' clock */
	uint64_t now_real_ms; /* CLOCK_REALTIME, for generated_at */
	/* Says whether process pid, registered with start time start
	 * (field 22 of /proc/PID/stat), still runs; NULL: every used slot
	 * is listed (the fuzzer). */
	bool (*alive)(uint32_t pid, uint64_t start);
};

/* Writes the SPEC §4 object for s (validated by the caller, or NULL for
 * the empty result of a segment that does not exist yet) and a newline to
 * f.  Returns 0, -ENOMEM, or -EIO when writing failed. */
int report_json(FILE *f, const struct seg *s, const struct report_opts *o);

/* Writes the same snapshot as text: a summary line, a table of rules and
 * a table of one line per address, under 80 columns for usual names.
 * Returns 0, -ENOMEM or -EIO. */
int report_table(FILE *f, const struct seg *s, const struct report_opts *o);

/* The liveness check of the fusebox command: reads /proc/PID/stat and
 * compares its start time with start.  Thread-safe. */
bool report_proc_alive(uint32_t pid, uint64_t start);

#endif
