/* SPDX-License-Identifier: MIT */
/* libFuzzer harness of the policy loader: parses the input as a policy
 * file and, when it loads, matches fixed destinations (checking the index
 * against the reference scan) and formats every setting.  Errors must come
 * in line order, and a segment name must fit once %u is expanded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fills ss with addr (IPv4 or IPv6 text) and port. */
static void make_addr(struct sockaddr_storage *ss, const char *addr,
		      unsigned port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	}
}

/* Formats every key of s, into a roomy and into tiny buffers. */
static void format_all(const struct policy_settings *s)
{
	char buf[256], tiny[4];

	for (int k = 0; k <= POLICY_KEY_COUNT; k++) {
		policy_format_value(s, (enum policy_key)k, buf, sizeof buf);
		if (!memchr(buf, 0, sizeof buf))
			abort();
		policy_format_value(s, (enum policy_key)k, tiny, sizeof tiny);
		if (!memchr(tiny, 0, sizeof tiny))
			abort();
		(void)policy_key_name((enum policy_key)k);
	}
}

/* Matches one destination; aborts when the index and the scan differ. */
static void match_one(const struct policy *p, const char *addr, unsigned port,
		      const char *const *hosts, size_t nhosts)
{
	struct sockaddr_storage ss;
	struct policy_match m;
	unsigned best[4];
	size_t n;

	make_addr(&ss, addr, port);
	m = policy_match(p, (const struct sockaddr *)&ss, hosts, nhosts);
	n = policy_match_all(p, (const struct sockaddr *)&ss, hosts, nhosts,
			     best, 4);
	if (n ? m.pattern != (int)best[0] : m.pattern != -1)
		abort();
	if (m.pattern >= 0 && (size_t)m.pattern >= p->npatterns)
		abort();
	if (m.rule >= 0 ? (size_t)m.rule >= p->nrules ||
			      m.rule != (int)p->patterns[m.pattern].rule
			: m.rule != (p->has_default ? -1 : -2))
		abort();
	(void)policy_match_all(p, (const struct sockaddr *)&ss, hosts, nhosts,
			       best, 0);
	format_all(policy_settings_of(p, m));
	if (m.pattern >= 0)
		(void)policy_pattern_kind_name(p->patterns[m.pattern].kind);
}

/* Parses data as a policy file; never keeps anything between calls. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const addrs[] = {
	    "10.1.2.3",	   "::1",	"::ffff:10.1.0.7", "fd00::1",
	    "192.168.1.1", "127.0.0.1", "2001:db8::5",
	};
	static const unsigned ports[] = {8000, 80, 443, 1, 65535};
	const char *hosts[8] = {"payment-service", "db.internal", "A.B.C", NULL,
				"x.svc3.internal"};
	char names[3][256], seg[POLICY_SEGMENT_MAX];
	struct policy_errors errs = {0};
	struct policy *p;
	char *text = malloc(size + 1);
	size_t nh = 5;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	p = policy_load_string("fuzz.ini", text, &errs);
	if (p ? errs.n != 0 : errs.n == 0)
		abort();
	for (size_t i = 0, last = 0; i < errs.n; i++) {
		unsigned long line;

		if (strncmp(errs.msgs[i], "fuzz.ini:", 9))
			abort();
		/* errors come in line order (those without a line first) */
		line = strtoul(errs.msgs[i] + 9, NULL, 10);
		if (line < last)
			abort();
		last = line;
	}
	if (p) {
		/* names of the policy's own host patterns, globs made
		 * concrete, so that the host paths are reached */
		for (size_t i = 0; i < p->npatterns && nh < 8; i++) {
			const char *h = p->patterns[i].host;
			size_t j;

			if (!h)
				continue;
			for (j = 0; h[j] && j < sizeof names[0] - 1; j++)
				names[nh - 5][j] = h[j] == '*'	 ? 'x'
						   : h[j] == '?' ? 'q'
								 : h[j];
			names[nh - 5][j] = 0;
			hosts[nh] = names[nh - 5];
			nh++;
		}
		for (size_t a = 0; a < sizeof addrs / sizeof addrs[0]; a++)
			for (size_t q = 0; q < sizeof ports / sizeof ports[0];
			     q++) {
				match_one(p, addrs[a], ports[q], hosts, nh);
				match_one(p, addrs[a], ports[q], NULL, 0);
			}
		for (size_t i = 0; i < p->npatterns && i < 64; i++) {
			const struct policy_pattern *pat = &p->patterns[i];
			char a[64];

			if (pat->kind != POLICY_PAT_ADDR &&
			    pat->kind != POLICY_PAT_CIDR)
				continue;
			inet_ntop(AF_INET6, pat->addr, a, sizeof a);
			match_one(p, a, pat->port_lo ? pat->port_lo : 80, hosts,
				  nh);
		}
		format_all(&p->defaults);
		for (size_t r = 0; r < p->nrules; r++)
			format_all(&p->rules[r].s);
		if (policy_segment_name(p->segment, 4294967295u, seg,
					sizeof seg) < 0)
			abort();
		policy_free(p);
	}
	policy_errors_free(&errs);
	free(text);
	return 0;
}
