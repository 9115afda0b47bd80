/* SPDX-License-Identifier: MIT */
/* libFuzzer harness of the segment reader: builds a segment from the input
 * (patches over a small populated one, its start overwritten, or the raw
 * bytes), and when seg_validate() accepts it, writes the JSON, the text
 * report and the Prometheus text; each must be valid UTF-8 with no control
 * characters but '\n'. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/report.h"
#include "policy/policy.h"
#include "segment/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small segment with rules and addresses in every state, made once. */
static struct seg tmpl;

/* Adds address ip4:port (IPv4, or IPv6 when v6) to rule ri with some
 * counters and latencies; returns its index. */
static int add_addr(uint32_t ri, const uint8_t ip[16], uint16_t port,
		    const char *host, unsigned n)
{
	int ai = seg_addr_get(&tmpl, ri, ip, port, host);
	struct seg_addr *a;

	if (ai < 0)
		abort();
	a = &tmpl.addrs[ai];
	for (int k = 0; k < SEG_NCOUNTERS; k++)
		a->counter[k] = (uint64_t)n * (unsigned)(k + 1) * 977u;
	for (unsigned i = 0; i < n; i++) {
		seg_hist_add(&a->connect_us, 100u * (i + 1));
		seg_hist_add(&a->first_byte_us, 3000u * (i + 1) * (i + 1));
	}
	return ai;
}

/* Builds the template: 4 process slots, 4 rules, 8 addresses. */
static void make_template(void)
{
	struct seg_sizes sz = {.procs = 4, .rules = 4, .addrs = 8};
	uint8_t v4[16] = {[10] = 0xff, [11] = 0xff, 10, 1, 0, 5};
	uint8_t v6[16] = {0xfd, 0, [15] = 1};
	int pay, def, odd, ai;

	if (seg_private(&sz, &tmpl) < 0)
		abort();
	tmpl.procs[0].pid = 4242;
	tmpl.procs[0].start = 12345;
	memcpy(tmpl.procs[0].comm, "curl", 5);
	tmpl.procs[2].pid = 77;
	{
		static const char comm[] = "\x1b[31mred\xff\"q\\";

		memcpy(tmpl.procs[2].comm, comm, sizeof comm);
	}
	pay = seg_rule_get(&tmpl, "payments");
	def = seg_rule_get(&tmpl, "default");
	odd = seg_rule_get(&tmpl, "caf\xc3\xa9\ttab\x7f");
	if (pay < 0 || def < 0 || odd < 0)
		abort();
	tmpl.rules[pay].max_connections = 50;
	tmpl.rules[pay].conns = 2;
	tmpl.rules[pay].q_slot[3] = (uint64_t)3 << 32 | 7; /* a waiter */
	tmpl.rules[pay].breaker_mode = BREAKER_MODE_ON;
	ai = add_addr((uint32_t)pay, v4, 8000, "payment-service", 5);
	tmpl.addrs[ai].breaker.state = BREAKER_OPEN;
	tmpl.addrs[ai].breaker.since_ms = 1000;
	tmpl.addrs[ai].breaker.until_ms = 31000;
	tmpl.addrs[ai].breaker.consecutive = 5;
	v4[15] = 6;
	ai = add_addr((uint32_t)pay, v4, 8000, "", 0);
	breaker_force(&tmpl.addrs[ai].breaker, BREAKER_FORCE_CLOSED);
	ai = add_addr((uint32_t)pay, v6, 443, "v6.internal", 2);
	tmpl.addrs[ai].breaker.state = BREAKER_HALF_OPEN;
	tmpl.rules[def].breaker_mode = BREAKER_MODE_DRY_RUN;
	tmpl.rules[def].breaker_scope = POLICY_SCOPE_RULE;
	tmpl.rules[def].breaker.state = BREAKER_OPEN;
	tmpl.rules[def].breaker.until_ms = 99999;
	add_addr((uint32_t)def, v6, 80, NULL, 1);
	tmpl.rules[odd].forced = BREAKER_FORCE_OPEN;
	add_addr((uint32_t)odd, v4, 1, "h\xe2\x82", 3);
}

/* Aborts unless buf is UTF-8 with no control character but '\n'. */
static void check_text(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;

	for (size_t i = 0; i < len;) {
		unsigned c = p[i], n = c < 0x80	  ? 1
				       : c < 0xe0 ? 2
				       : c < 0xf0 ? 3
						  : 4;

		if ((c < 0x20 && c != '\n') || c == 0x7f ||
		    (c >= 0x80 && c < 0xc2) || c > 0xf4 || i + n > len)
			abort();
		for (unsigned k = 1; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				abort();
		i += n;
	}
}

/* Runs one report writer into memory and checks what it wrote. */
static void run(int (*fn)(FILE *, const struct seg *,
			  const struct report_opts *),
		const struct seg *s, const struct report_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	fn(f, s, o);
	fclose(f);
	check_text(buf, len);
	free(buf);
}

/* A liveness check that needs no /proc: odd pids live. */
static bool odd_alive(uint32_t pid, uint64_t start)
{
	(void)start;
	return pid & 1;
}

/* Builds a segment from the input: mode 0 applies patches (offset:2,
 * length:1, bytes) to the template, mode 1 overwrites its start, mode 2
 * takes the rest of the input as the whole segment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report_opts o = {.segment = "fuzz\x01seg",
				.now_mono_ms = 20000,
				.now_real_ms = 1795000000000ull};
	struct seg s = {0};
	const struct seg_header *h;
	char why[160];
	uint8_t *buf;
	size_t len;

	if (!tmpl.base)
		make_template();
	if (size < 1)
		return 0;
	if (data[0] % 3 == 2) {
		len = size - 1;
		buf = malloc(len ? len : 1);
		if (!buf)
			return 0;
		memcpy(buf, data + 1, len);
	} else {
		len = tmpl.size;
		buf = malloc(len);
		if (!buf)
			return 0;
		memcpy(buf, tmpl.base, len);
		if (data[0] % 3 == 1) {
			memcpy(buf, data + 1, size - 1 < len ? size - 1 : len);
		} else {
			for (size_t i = 1; i + 3 <= size;) {
				size_t off =
				    ((size_t)data[i] << 8 | data[i + 1]) *
				    (len / 65536 + 1) % len;
				size_t n = data[i + 2];

				i += 3;
				if (n > size - i)
					n = size - i;
				if (n > len - off)
					n = len - off;
				memcpy(buf + off, data + i, n);
				i += n;
			}
		}
	}
	if (seg_validate(buf, len, (unsigned)getuid(), why, sizeof why) == 0) {
		/* what seg_open() does once a mapping is validated */
		h = (const struct seg_header *)buf;
		s.base = buf;
		s.size = len;
		s.hdr = (struct seg_header *)buf;
		s.procs = (struct seg_proc *)(buf + h->procs_off);
		s.rules = (struct seg_rule *)(buf + h->rules_off);
		s.addrs = (struct seg_addr *)(buf + h->addrs_off);
		s.nprocs = h->nprocs;
		s.nrules = h->nrules;
		s.naddrs = h->naddrs;
		run(report_json, &s, &o);
		run(report_table, &s, &o);
		run(report_prometheus, &s, &o);
		o.now_mono_ms = UINT64_MAX;
		o.now_real_ms = 0;
		o.alive = odd_alive; /* and dead holders left out */
		run(report_json, &s, &o);
		run(report_prometheus, &s, &o);
	} else if (!memchr(why, 0, sizeof why)) {
		abort();
	}
	free(buf);
	return 0;
}
