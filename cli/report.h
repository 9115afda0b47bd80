/* SPDX-License-Identifier: MIT */
/* Snapshots of a mapped segment as the JSON object of SPEC §4 and as a
 * plain-text table.  A pure reader: the clock and the process liveness
 * check come from the caller, and every byte of the segment is untrusted. */
#ifndef FUSEBOX_REPORT_H
#define FUSEBOX_REPORT_H

#include "segment/segment.h"

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

/* A rule of a snapshot, with its name copied out of the segment. */
struct report_rule {
	uint32_t idx;	       /* slot in the segment's rule table */
	uint32_t first, count; /* its rows in the sorted address rows */
	char name[SEG_NAME_MAX + 1];
};

/* An address of a snapshot; its key copied so sorting stays sane. */
struct report_addr {
	uint32_t idx;  /* slot in the segment's address table */
	uint32_t rule; /* position in the sorted rule rows */
	uint8_t addr[16];
	uint16_t port;
};

/* The ready rules of a segment sorted by name, each followed by its
 * addresses sorted by address and port. */
struct report_snap {
	struct report_rule *rules;
	size_t nrules;
	struct report_addr *addrs;
	size_t naddrs;
};

/* How one address's breaker looks once overrides and scope apply. */
struct report_breaker {
	const char *state;	     /* a SPEC §4 breaker state name */
	uint64_t since_ms, until_ms; /* monotonic; 0: unknown */
	uint32_t consecutive;
};

/* Copies the ready rules and addresses of s (NULL: none) into sn.
 * Returns 0 or -ENOMEM; free with report_snap_free(). */
int report_snap_take(const struct seg *s, struct report_snap *sn);
void report_snap_free(struct report_snap *sn);

/* The breaker that counts for address a of rule r, as stats show it. */
void report_breaker_view(const struct seg_rule *r, const struct seg_addr *a,
			 struct report_breaker *v);

/* Length of the well-formed UTF-8 sequence at p (n > 0 bytes left), 0
 * when it is not one; *cp receives the code point. */
size_t report_utf8_len(const unsigned char *p, size_t n, uint32_t *cp);

/* The realtime instant in ms of a monotonic one, given both clocks now
 * in o; false when it is 0 (never), before 1970, or absurdly far. */
bool report_mono_to_real(const struct report_opts *o, uint64_t mono,
			 uint64_t *real);

/* Writes "p50/p99" in ms, short (0.25/12.5, 950/12s), or "-" when p50
 * is unknown (negative). */
void report_fmt_latency(char *buf, size_t len, double p50, double p99);

/* Writes count v whole when below 10^digits, else short: 123k, 12.3M. */
void report_fmt_count(char *buf, size_t len, uint64_t v, unsigned digits);

/* Writes "IP:PORT", or "[IPv6]:PORT"; IPv4-mapped addresses as IPv4. */
void report_addr_text(char *buf, size_t len, const uint8_t a[16],
		      uint16_t port);

/* Writes the SPEC §4 object for s (validated by the caller, or NULL for
 * the empty result of a segment that does not exist yet) and a newline to
 * f.  Returns 0, -ENOMEM, or -EIO when writing failed. */
int report_json(FILE *f, const struct seg *s, const struct report_opts *o);

/* Writes the same snapshot as text: a summary line, a table of rules and
 * a table of one line per address, under 80 columns for usual names.
 * Returns 0, -ENOMEM or -EIO. */
int report_table(FILE *f, const struct seg *s, const struct report_opts *o);

/* Writes the same snapshot as Prometheus text exposition format 0.0.4
 * (fusebox_* metrics with rule and address labels; cli/prom.c) to f; s
 * NULL gives fusebox_up 0 and no destinations.  0, -ENOMEM or -EIO. */
int report_prometheus(FILE *f, const struct seg *s,
		      const struct report_opts *o);

/* The open connections of rule slot ri of s as readers show them: less
 * what processes that are gone (alive says no) still hold; alive NULL:
 * the segment's count.  Never negative. */
int64_t report_rule_active(const struct seg *s, uint32_t ri,
			   bool (*alive)(uint32_t pid, uint64_t start));

/* The liveness check of the fusebox command: reads /proc/PID/stat and
 * compares its start time with start.  Thread-safe. */
bool report_proc_alive(uint32_t pid, uint64_t start);

/* Connects waiting in the line of rule slot ri, of processes alive by
 * alive (NULL: every place taken). */
int32_t report_rule_pending(const struct seg *s, uint32_t ri,
			    bool (*alive)(uint32_t pid, uint64_t start));

/* Shared by report.c (JSON) and report_table.c (text). */
/* Length of a string field of at most max bytes that may lack its NUL. */
size_t report_field_len(const char *s, size_t max);

/* Writes a realtime instant in ms as ISO 8601 UTC ("...T19:00:00Z");
 * false when it cannot be shown. */
bool report_iso_time(char *buf, size_t len, uint64_t real_ms);

/* Says whether process slot i is listed: taken, and alive when the
 * caller checks that; *pid receives its pid. */
bool report_proc_listed(const struct seg *s, const struct report_opts *o,
			uint32_t i, uint32_t *pid);

#endif
