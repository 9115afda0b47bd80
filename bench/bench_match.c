/* SPDX-License-Identifier: MIT */
/* Times policy_match() on a generated 10,000-rule policy of a realistic mix
 * of patterns, over about a million lookups of mixed destinations, and
 * prints medians per lookup; it reports, it never fails on timing.
 * "bench-match scale MODE N" instead makes the 10,000-rule policies of
 * bench/scale.sh and matches its destination N times, for callgrind:
 *   valgrind --tool=callgrind --toggle-collect=policy_match \
 *       build/bench-match scale any 1000
 * counts only policy_match(); the total over N is the cost per lookup. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"

#define N_HOST		4000
#define N_ADDR		3000
#define N_CIDR		2000
#define N_V6		500
#define N_GLOB		499
#define N_RULES		(N_HOST + N_ADDR + N_CIDR + N_V6 + N_GLOB + 1)
#define BATCHES		15
#define MIXED_PER_BATCH 65536
#define CLASS_PER_BATCH 16384
#define PER_CLASS	4096
#define N_MIXED		16384 /* a power of two */
#define TARGET_NS	1000

enum dclass { D_ADDR, D_HOST, D_GLOB, D_CIDR, D_V6, D_MISS, D_COUNT };

static const char *const class_names[D_COUNT] = {
    "exact IPv4 address", "exact hostname",    "hostname glob",
    "IPv4 CIDR block",	  "IPv6 address/CIDR", "miss (catch-all *)",
};

/* One destination: address, the name the program resolved, its class. */
struct dest {
	struct sockaddr_storage sa;
	const char *hosts[1];
	size_t nhosts;
	enum dclass cls;
};

/* Growing text buffer of the generated policy. */
struct text {
	char *s;
	size_t len, cap;
};

static uint64_t rng = 0x2545f4914f6cdd1dull;

/* xorshift64*: deterministic numbers below n. */
static uint32_t below(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* Reports a setup failure and exits. */
static void die(const char *what)
{
	fprintf(stderr, "bench-match: %s\n", what);
	exit(1);
}

/* Appends printf-style text to t, growing it. */
static void append(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void append(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			die("vsnprintf");
		if ((size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t)n;
		t->s = realloc(t->s, t->cap);
		if (!t->s)
			die("out of memory");
	}
	t->len += (size_t)n;
}

/* The generated patterns, kept to draw destinations that hit them. */
static uint32_t addr_ip[N_ADDR];
static uint16_t addr_port[N_ADDR], host_port[N_HOST], glob_lo[N_GLOB];
static uint32_t cidr_ip[N_CIDR];
static unsigned cidr_len[N_CIDR];
static unsigned v6_hi[N_V6], v6_lo[N_V6], v6_len[N_V6];

static const uint16_t ports[] = {80, 443, 5432, 6379, 8080, 9092};

/* Starts one rule section with a pattern and a few realistic keys. */
static void rule(struct text *t, unsigned n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rule(struct text *t, unsigned n, const char *fmt, ...)
{
	char pat[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pat, sizeof pat, fmt, ap);
	va_end(ap);
	append(t, "[r%u]\nmatch = %s\nconnect_timeout = %ums\n", n, pat,
	       100 + n % 900);
	if (n % 5 == 0)
		append(t, "retries = 2\nbreaker = on\n");
}

/* A prefix length of an IPv4 block: a few /8-/12, more /13-/20, most
 * /21-/30. */
static unsigned some_v4_len(void)
{
	uint32_t k = below(100);

	if (k < 5)
		return 8 + below(5);
	if (k < 30)
		return 13 + below(8);
	return 21 + below(10);
}

/* The IPv4 netmask of a prefix length, host order. */
static uint32_t mask(unsigned len)
{
	return len ? ~0u << (32 - len) : 0;
}

/* Writes the policy text; the pattern arrays record what was written. */
static void generate(struct text *t)
{
	unsigned n = 0;
	char ip[INET_ADDRSTRLEN];

	append(t, "[global]\nlog = warn\n\n[default]\nconnect_timeout = 5s\n"
		  "retries = 1\n\n");
	for (unsigned i = 0; i < N_HOST; i++) {
		host_port[i] = i % 2 ? ports[below(6)] : 0;
		if (host_port[i])
			rule(t, n++, "svc-%05u.prod.example.com:%u", i,
			     host_port[i]);
		else
			rule(t, n++, "svc-%05u.prod.example.com", i);
	}
	for (unsigned i = 0; i < N_ADDR; i++) {
		struct in_addr a;

		/* unique addresses in 10.128.0.0/9 */
		addr_ip[i] = 0x0a800000u | (i * 2654435761u & 0x7fffffu);
		addr_port[i] = ports[below(6)];
		a.s_addr = htonl(addr_ip[i]);
		inet_ntop(AF_INET, &a, ip, sizeof ip);
		rule(t, n++, "%s:%u", ip, addr_port[i]);
	}
	for (unsigned i = 0; i < N_CIDR; i++) {
		struct in_addr a;
		uint32_t first;

		do
			first = 1 + below(223);
		while (first == 10 || first == 127 || first == 203);
		cidr_len[i] = some_v4_len();
		cidr_ip[i] =
		    (first << 24 | below(1u << 24)) & mask(cidr_len[i]);
		a.s_addr = htonl(cidr_ip[i]);
		inet_ntop(AF_INET, &a, ip, sizeof ip);
		if (i % 4 == 0)
			rule(t, n++, "%s/%u:%u-%u", ip, cidr_len[i], 8000,
			     8100);
		else
			rule(t, n++, "%s/%u", ip, cidr_len[i]);
	}
	for (unsigned i = 0; i < N_V6; i++) {
		v6_hi[i] = i;
		v6_lo[i] = 1 + below(0xfffe);
		if (i % 2 == 0) {
			v6_len[i] = 128;
			rule(t, n++, "[2001:db8:%x::%x]:443", v6_hi[i],
			     v6_lo[i]);
		} else {
			v6_len[i] = 48 + 8 * below(3);
			rule(t, n++, "[2001:db8:%x::]/%u", v6_hi[i], v6_len[i]);
		}
	}
	for (unsigned i = 0; i < N_GLOB; i++) {
		glob_lo[i] = i % 3 == 0 ? 8000 : 0;
		if (glob_lo[i])
			rule(t, n++, "*.svc%u.internal:8000-8100", i);
		else
			rule(t, n++, "*.svc%u.internal", i);
	}
	rule(t, n++, "*");
	if (n != N_RULES)
		die("rule count");
}

/* Sets d's address to an IPv4 address and port. */
static void set_v4(struct dest *d, uint32_t ip, unsigned port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&d->sa;

	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(ip);
	in->sin_port = htons((uint16_t)port);
}

/* Sets d's address to 2001:db8:HI:SUB::LO and port. */
static void set_v6(struct dest *d, unsigned hi, unsigned sub, unsigned lo,
		   unsigned port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->sa;
	char a[64];

	snprintf(a, sizeof a, "2001:db8:%x:%x::%x", hi, sub, lo);
	in6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &in6->sin6_addr);
	in6->sin6_port = htons((uint16_t)port);
}

/* True when ip falls in one of the generated IPv4 blocks. */
static int in_some_cidr(uint32_t ip)
{
	for (unsigned i = 0; i < N_CIDR; i++)
		if ((ip & mask(cidr_len[i])) == cidr_ip[i])
			return 1;
	return 0;
}

/* Fills d with a destination of class c; names go to the name pool. */
static void make_dest(struct dest *d, enum dclass c, char *name, size_t len)
{
	unsigned i, port;

	memset(d, 0, sizeof *d);
	d->cls = c;
	d->hosts[0] = name;
	d->nhosts = 1;
	switch (c) {
	case D_ADDR:
		i = below(N_ADDR);
		set_v4(d, addr_ip[i], addr_port[i]);
		snprintf(name, len, "db-%u.example.net", i);
		break;
	case D_HOST:
		i = below(N_HOST);
		set_v4(d, 0xc0a80000u | below(65536),
		       host_port[i] ? host_port[i] : ports[below(6)]);
		snprintf(name, len, "SVC-%05u.prod.example.com", i);
		break;
	case D_GLOB:
		i = below(N_GLOB);
		set_v4(d, 0xc0a80000u | below(65536),
		       glob_lo[i] ? 8000 + below(101) : ports[below(6)]);
		snprintf(name, len, "api-%u.svc%u.internal", below(100), i);
		break;
	case D_CIDR:
		i = below(N_CIDR);
		port = i % 4 == 0 ? 8000 + below(101) : ports[below(6)];
		set_v4(d, cidr_ip[i] | (below(1u << 31) & ~mask(cidr_len[i])),
		       port);
		snprintf(name, len, "node-%u.cluster.example.org", below(999));
		break;
	case D_V6:
		i = below(N_V6);
		if (v6_len[i] == 128)
			set_v6(d, v6_hi[i], 0, v6_lo[i], 443);
		else
			set_v6(d, v6_hi[i], v6_len[i] == 48 ? below(256) : 0,
			       1 + below(1000), ports[below(6)]);
		d->nhosts = 0;
		break;
	default: {
		uint32_t ip;

		if (below(2)) {
			do
				ip =
				    0xcb007100u | below(256); /* 203.0.113/24 */
			while (in_some_cidr(ip));
			set_v4(d, ip, ports[below(6)]);
		} else {
			struct sockaddr_in6 *in6 = (void *)&d->sa;
			in6->sin6_family = AF_INET6;
			inet_pton(AF_INET6, "2a00:1450:4001::200e",
				  &in6->sin6_addr);
			in6->sin6_addr.s6_addr[15] = (uint8_t)below(256);
			in6->sin6_port = htons(443);
		}
		snprintf(name, len, "unknown-%u.example.org", below(9999));
	}
	}
}

/* CLOCK_MONOTONIC in nanoseconds. */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* qsort comparator of doubles. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v (sorted in place). */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile long sink;

/* Runs BATCHES batches of per_batch lookups cycling over ds[0..n) (n a
 * power of two) and returns the median ns per lookup. */
static double time_lookups(const struct policy *p, const struct dest *ds,
			   size_t n, size_t per_batch)
{
	double ns[BATCHES];
	long acc = 0;

	for (int b = 0; b < BATCHES; b++) {
		double t0 = now_ns();

		for (size_t i = 0; i < per_batch; i++) {
			const struct dest *d = &ds[i & (n - 1)];
			struct policy_match m;

			m = policy_match(p, (const struct sockaddr *)&d->sa,
					 d->hosts, d->nhosts);
			acc += m.pattern;
		}
		ns[b] = (now_ns() - t0) / (double)per_batch;
	}
	sink = acc;
	return median(ns, BATCHES);
}

/* The pattern kinds each destination class must be won by. */
static int kind_ok(enum dclass c, enum policy_pattern_kind k)
{
	switch (c) {
	case D_ADDR:
		return k == POLICY_PAT_ADDR;
	case D_HOST:
		return k == POLICY_PAT_HOST;
	case D_GLOB:
		return k == POLICY_PAT_GLOB;
	case D_CIDR:
		return k == POLICY_PAT_CIDR;
	case D_V6:
		return k == POLICY_PAT_ADDR || k == POLICY_PAT_CIDR;
	default:
		return k == POLICY_PAT_ANY;
	}
}

#define SCALE_RULES 10000
#define SCALE_PORT  40000 /* never one of the other rules' 1024+N */

/* The policy of bench/scale.sh's rows of SCALE_RULES rules, the target
 * last: "addr" its mix (1,000 patterns of 127.1.0.1 at other ports),
 * "globs" svc-*.zone-N.example, "any" *:PORT_N, "ranges" *:N-N+100
 * (not bench/scale.sh's; the target is a wider range). */
static int scale_policy(struct text *t, const char *mode)
{
	append(t, "[global]\nreload = 0\n");
	for (unsigned i = 0; i < SCALE_RULES - 1; i++) {
		unsigned k = i % 5;

		append(t, "[r%u]\n", i);
		if (!strcmp(mode, "globs"))
			append(t, "match = svc-*.zone-%u.example\n", i);
		else if (!strcmp(mode, "any"))
			append(t, "match = *:%u\n", 1024 + i);
		else if (!strcmp(mode, "ranges"))
			append(t, "match = *:%u-%u\n", 1024 + i % 30000,
			       1124 + i % 30000);
		else if (strcmp(mode, "addr"))
			return -1;
		else if (k == 0)
			append(t, "match = 10.%u.%u.%u:80\n", i / 65536 % 256,
			       i / 256 % 256, i % 256);
		else if (k == 1)
			append(t, "match = 127.1.0.%u:%u\n", 1 + i / 5 % 2,
			       1024 + i);
		else if (k == 2)
			append(t, "match = host-%u.example:443\n", i);
		else if (k == 3)
			append(t, "match = *.zone-%u.example\n", i);
		else
			append(t, "match = 11.%u.%u.0/24\n", i / 256 % 256,
			       i % 256);
	}
	if (!strcmp(mode, "globs"))
		append(t, "[target]\nmatch = 127.0.0.0/8:%u\n", SCALE_PORT);
	else if (!strcmp(mode, "addr"))
		append(t, "[target]\nmatch = 127.1.0.1:%u 127.1.0.2:%u\n",
		       SCALE_PORT, SCALE_PORT);
	else if (!strcmp(mode, "ranges")) /* wider: ranked after the others */
		append(t, "[target]\nmatch = *:%u-%u\n", SCALE_PORT - 1000,
		       SCALE_PORT + 1000);
	else
		append(t, "[target]\nmatch = *:%u\n", SCALE_PORT);
	return 0;
}

/* bench-match scale MODE N: n lookups of the destination of a scale
 * policy, which [target] must win; 0, or 1 with a message. */
static int scale(const char *mode, long n)
{
	struct text t = {.cap = 1 << 20};
	struct policy_errors errs = {0};
	struct policy *p;
	struct dest d = {0};
	long acc = 0;

	t.s = malloc(t.cap);
	if (!t.s || n <= 0 || scale_policy(&t, mode) < 0)
		die("usage: bench-match scale addr|globs|any|ranges N");
	p = policy_load_string("scale.ini", t.s, &errs);
	if (!p)
		die(errs.n ? errs.msgs[0] : "load failed");
	set_v4(&d, !strcmp(mode, "globs") ? 0x7f000001u : 0x7f010001u,
	       SCALE_PORT);
	d.hosts[0] = "localhost";
	d.nhosts = !strcmp(mode, "globs");
	for (long i = 0; i < n; i++) {
		struct policy_match m;

		m = policy_match(p, (const struct sockaddr *)&d.sa, d.hosts,
				 d.nhosts);
		acc += m.rule;
	}
	sink = acc;
	if (acc != n * (long)(p->nrules - 1))
		die("[target] did not win");
	printf("bench-match scale %s: %ld lookups, %zu rules\n", mode, n,
	       p->nrules);
	policy_free(p);
	free(t.s);
	return 0;
}

/* Generates the policy, loads it, builds the destinations and prints the
 * timings; exits 0 whatever they are.  See the top for "scale". */
int main(int argc, char **argv)
{
	struct text t = {.cap = 1 << 20};
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	static struct dest by_class[D_COUNT][PER_CLASS];
	static struct dest mixed[N_MIXED];
	static char names[D_COUNT][PER_CLASS][64];
	double load_ms[5], cls_ns[D_COUNT], overall;
	size_t nmixed = N_MIXED, wrong = 0;

	if (argc == 4 && !strcmp(argv[1], "scale"))
		return scale(argv[2], atol(argv[3]));
	t.s = malloc(t.cap);
	if (!t.s)
		die("out of memory");
	generate(&t);
	for (int i = 0; i < 5; i++) {
		double t0 = now_ns();

		policy_free(p);
		p = policy_load_string("bench.ini", t.s, &errs);
		load_ms[i] = (now_ns() - t0) / 1e6;
		if (!p) {
			fprintf(stderr, "bench-match: %s\n",
				errs.n ? errs.msgs[0] : "load failed");
			return 1;
		}
	}
	for (int c = 0; c < D_COUNT; c++)
		for (int i = 0; i < PER_CLASS; i++) {
			struct dest *d = &by_class[c][i];
			struct policy_match m;

			make_dest(d, c, names[c][i], sizeof names[c][i]);
			m = policy_match(p, (const struct sockaddr *)&d->sa,
					 d->hosts, d->nhosts);
			if (m.pattern < 0 ||
			    !kind_ok(c, p->patterns[m.pattern].kind))
				wrong++;
		}
	/* the mixed set: every class equally, in a shuffled order */
	for (size_t i = 0; i < nmixed; i++)
		mixed[i] = by_class[i % D_COUNT][below(PER_CLASS)];
	for (size_t i = nmixed - 1; i > 0; i--) {
		size_t j = below((uint32_t)i + 1);
		struct dest tmp = mixed[i];
		mixed[i] = mixed[j];
		mixed[j] = tmp;
	}

	printf("bench-match: %zu rules, %zu patterns: %d hostnames, %d IPv4 "
	       "addresses, %d IPv4 CIDR blocks (/8-/30), %d IPv6, %d globs, "
	       "1 catch-all\n",
	       p->nrules, p->npatterns, N_HOST, N_ADDR, N_CIDR, N_V6, N_GLOB);
	printf("load + index build: median %.1f ms of 5 (%zu KiB of "
	       "text)\n",
	       median(load_ms, 5), t.len / 1024);
	if (wrong)
		printf("warning: %zu of %d destinations were not won by the "
		       "pattern kind of their class\n",
		       wrong, D_COUNT * PER_CLASS);
	printf("per class, median of %d batches of %d lookups:\n", BATCHES,
	       CLASS_PER_BATCH);
	for (int c = 0; c < D_COUNT; c++) {
		cls_ns[c] =
		    time_lookups(p, by_class[c], PER_CLASS, CLASS_PER_BATCH);
		printf("  %-20s %7.0f ns\n", class_names[c], cls_ns[c]);
	}
	overall = time_lookups(p, mixed, nmixed, MIXED_PER_BATCH);
	printf("mixed: %d batches of %d lookups (%d in all)\n", BATCHES,
	       MIXED_PER_BATCH, BATCHES * MIXED_PER_BATCH);
	printf("match: median %.0f ns per lookup with %zu rules (target <= "
	       "%d ns): %s\n",
	       overall, p->nrules, TARGET_NS,
	       overall <= TARGET_NS ? "OK" : "OVER TARGET");
	policy_free(p);
	policy_errors_free(&errs);
	free(t.s);
	return 0;
}
