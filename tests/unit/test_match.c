/* SPDX-License-Identifier: MIT */
/* Unit tests of destination patterns and the most-specific-wins matcher,
 * with a property test that the indexed policy_match() always agrees with
 * the plain scan of policy_match_all(). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "policy/match.h"
#include "policy/policy.h"

static struct policy_errors errs;

/* Loads text, which must succeed. */
static struct policy *load_ok(const char *text)
{
	struct policy *p = policy_load_string("m.ini", text, &errs);

	cr_assert_not_null(p, "load failed: %s", errs.n ? errs.msgs[0] : "?");
	return p;
}

/* A socket address for addr (IPv4 or IPv6 text) and port. */
static struct sockaddr_storage dest(const char *addr, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else {
		cr_assert_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1,
			     "bad test address %s", addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	}
	return ss;
}

/* Matches a destination with up to one host name, checks that the index
 * agrees with the reference scan, and returns the pattern index. */
static int match_pattern(const struct policy *p, const char *addr,
			 unsigned port, const char *host, int *rule)
{
	struct sockaddr_storage ss = dest(addr, port);
	const char *hosts[1] = {host};
	size_t nh = host ? 1 : 0;
	struct policy_match m;
	unsigned best = 0;
	size_t n;

	m = policy_match(p, (struct sockaddr *)&ss, hosts, nh);
	n = policy_match_all(p, (struct sockaddr *)&ss, hosts, nh, &best, 1);
	if (n) {
		cr_assert_eq(m.pattern, (int)best,
			     "%s:%u %s: index picked %d, scan %u", addr, port,
			     host ? host : "-", m.pattern, best);
		cr_assert_eq(m.rule, (int)p->patterns[best].rule);
	} else {
		cr_assert_eq(m.pattern, -1);
		cr_assert_eq(m.rule, p->has_default ? -1 : -2);
	}
	if (rule)
		*rule = m.rule;
	return m.pattern;
}

/* The name of the rule that wins for a destination; "(default)" or
 * "(none)" when no rule does. */
static const char *winner(const struct policy *p, const char *addr,
			  unsigned port, const char *host)
{
	int rule;

	match_pattern(p, addr, port, host, &rule);
	if (rule == -1)
		return "(default)";
	if (rule == -2)
		return "(none)";
	return p->rules[rule].name;
}

/* A destination and the rule that must win it: a rule's name, "(default)"
 * or "(none)". */
struct want_winner {
	const char *addr;
	unsigned port;
	const char *host;
	const char *rule;
};

/* Checks the winner of each destination of t[n]. */
static void expect_winners(const struct policy *p, const struct want_winner *t,
			   size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(winner(p, t[i].addr, t[i].port, t[i].host),
				 t[i].rule, "%s:%u %s", t[i].addr, t[i].port,
				 t[i].host ? t[i].host : "-");
}

Test(match, parses_every_pattern_form)
{
	struct policy *p = load_ok(
	    "[r]\n"
	    "match = payment-service:8000 Db.Example *.internal a?c\n"
	    "match = 10.1.2.3 [::1]:80 ::1 10.0.0.0/8 [fd00::]/8\n"
	    "match = * *:443 h:8000-8100 10.9.9.9/16:22 fd00::/16 h:*\n");
	/* What each pattern is kept as: host in lower case (NULL: none);
	 * address key as IPv6 text (NULL: zero); prefix: a block's bits or a
	 * glob's literal characters. */
	static const struct {
		const char *text;
		enum policy_pattern_kind kind;
		const char *host, *addr;
		unsigned prefix, port_lo, port_hi, line;
	} t[] = {
	    {"payment-service:8000", POLICY_PAT_HOST, "payment-service", NULL,
	     0, 8000, 8000, 2},
	    {"Db.Example", POLICY_PAT_HOST, "db.example", NULL, 0, 0, 65535, 2},
	    {"*.internal", POLICY_PAT_GLOB, "*.internal", NULL, 9, 0, 65535, 2},
	    {"a?c", POLICY_PAT_GLOB, "a?c", NULL, 2, 0, 65535, 2},
	    /* IPv4 kept v4-mapped */
	    {"10.1.2.3", POLICY_PAT_ADDR, NULL, "::ffff:10.1.2.3", 0, 0, 65535,
	     3},
	    {"[::1]:80", POLICY_PAT_ADDR, NULL, "::1", 0, 80, 80, 3},
	    {"::1", POLICY_PAT_ADDR, NULL, "::1", 0, 0, 65535, 3},
	    {"10.0.0.0/8", POLICY_PAT_CIDR, NULL, "::ffff:10.0.0.0", 96 + 8, 0,
	     65535, 3},
	    {"[fd00::]/8", POLICY_PAT_CIDR, NULL, "fd00::", 8, 0, 65535, 3},
	    {"*", POLICY_PAT_ANY, NULL, NULL, 0, 0, 65535, 4},
	    {"*:443", POLICY_PAT_ANY, NULL, NULL, 0, 443, 443, 4},
	    {"h:8000-8100", POLICY_PAT_HOST, "h", NULL, 0, 8000, 8100, 4},
	    /* CIDR address masked */
	    {"10.9.9.9/16:22", POLICY_PAT_CIDR, NULL, "::ffff:10.9.0.0",
	     96 + 16, 22, 22, 4},
	    {"fd00::/16", POLICY_PAT_CIDR, NULL, "fd00::", 16, 0, 65535, 4},
	    {"h:*", POLICY_PAT_HOST, "h", NULL, 0, 0, 65535, 4},
	};

	cr_assert_eq(p->npatterns, sizeof t / sizeof t[0]);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const struct policy_pattern *q = &p->patterns[i];
		const char *name = t[i].text;
		uint8_t a[16] = {0};

		if (t[i].addr)
			cr_assert_eq(inet_pton(AF_INET6, t[i].addr, a), 1);
		cr_expect_str_eq(q->text, t[i].text, "pattern %zu: %s", i,
				 q->text);
		cr_expect_eq(q->kind, t[i].kind, "%s: kind %d", name, q->kind);
		if (t[i].host) {
			cr_assert_not_null(q->host, "%s", name);
			cr_expect_str_eq(q->host, t[i].host, "%s: host %s",
					 name, q->host);
		} else {
			cr_expect_null(q->host, "%s: host %s", name, q->host);
		}
		cr_expect_eq(memcmp(q->addr, a, 16), 0, "%s: address", name);
		cr_expect_eq(q->prefix, t[i].prefix, "%s: prefix %u", name,
			     q->prefix);
		cr_expect_eq(q->port_lo, t[i].port_lo, "%s: ports from %u",
			     name, q->port_lo);
		cr_expect_eq(q->port_hi, t[i].port_hi, "%s: ports to %u", name,
			     q->port_hi);
		cr_expect_eq(q->line, t[i].line, "%s: line %u", name, q->line);
		cr_expect_eq(q->rule, 0, "%s: rule %u", name, q->rule);
		cr_expect_eq(q->order, i, "%s: order %u", name, q->order);
	}
	policy_free(p);
}

Test(match, lists_split_on_spaces_and_commas)
{
	struct policy *p = load_ok("[r]\nmatch = a, b,c  d ,\te\n");

	cr_assert_eq(p->npatterns, 5);
	cr_assert_str_eq(p->patterns[2].host, "c");
	cr_assert_str_eq(p->patterns[4].host, "e");
	policy_free(p);
}

/* A pattern the loader refuses, and why. */
struct bad_pattern {
	const char *pat, *why;
};

/* Loads a rule whose match is prefix and then each pattern of t[n] in
 * turn; each load must fail with that pattern's one message. */
static void expect_bad_patterns(const char *prefix, const struct bad_pattern *t,
				size_t n)
{
	char text[256], want[512];

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof text, "[r]\nmatch = %s%s\n", prefix,
			 t[i].pat);
		cr_assert_null(policy_load_string("m.ini", text, &errs),
			       "%s accepted", t[i].pat);
		cr_assert_eq(errs.n, 1);
		snprintf(want, sizeof want, "m.ini:2: match: %s", t[i].why);
		cr_assert_str_eq(errs.msgs[0], want);
		policy_errors_free(&errs);
	}
}

Test(match, reports_bad_patterns)
{
	static const struct bad_pattern t[] = {
	    {"[::1", "'[::1' is not a pattern; use HOST[:PORTS], "
		     "[IPv6]:PORTS or a CIDR block such as 10.0.0.0/8"},
	    {"[::1]x", "'[::1]x' is not a pattern; use HOST[:PORTS], "
		       "[IPv6]:PORTS or a CIDR block such as 10.0.0.0/8"},
	    {"bad!host", "'bad!host' is not a hostname, address, CIDR "
			 "block or *; hostnames use letters, digits, "
			 "'-', '.', '_'"},
	    {"[zz::1]:80", "'[zz::1]:80' is not an IPv6 address; write "
			   "[::1]:8000 when a port follows"},
	    {"999.1.1.1/8", "'999.1.1.1/8': '999.1.1.1' is not an IPv4 "
			    "address"},
	    {"10.0.0.0/x", "'10.0.0.0/x' is not a pattern; use "
			   "HOST[:PORTS], [IPv6]:PORTS or a CIDR block "
			   "such as 10.0.0.0/8"},
	    {"h:80-", "'h:80-': ports are N, N-M or * with N from 1 to "
		      "65535 (e.g. 8000, 8000-8100)"},
	    {"h:http", "'h:http': ports are N, N-M or * with N from 1 to "
		       "65535 (e.g. 8000, 8000-8100)"},
	};

	expect_bad_patterns("ok ", t, sizeof t / sizeof t[0]);
	cr_assert_null(policy_load_string("m.ini", "[r]\nmatch =\n", &errs));
	cr_assert_str_eq(errs.msgs[0], "m.ini:2: match: empty; list "
				       "destinations such as "
				       "payment-service:8000");
	policy_errors_free(&errs);
}

/* Collects the messages match_parse reports, one a call. */
struct reports {
	char msgs[8][512];
	size_t n;
};

static void collect_report(void *ctx, const char *why)
{
	struct reports *r = ctx;

	if (r->n < 8)
		snprintf(r->msgs[r->n], sizeof r->msgs[0], "%s", why);
	r->n++;
}

Test(match, parse_reports_every_bad_pattern)
{
	struct policy p = {0};
	struct reports r = {0};

	cr_assert_eq(match_parse(&p, 3, "x:0 good, [::1 10.0.0.0/33 h:80", 9,
				 collect_report, &r),
		     0);
	cr_assert_eq(r.n, 3);
	cr_assert_str_eq(r.msgs[0], "'x:0': ports are N, N-M or * with N "
				    "from 1 to 65535 (e.g. 8000, 8000-8100)");
	cr_assert_str_eq(r.msgs[1], "'[::1' is not a pattern; use "
				    "HOST[:PORTS], [IPv6]:PORTS or a CIDR "
				    "block such as 10.0.0.0/8");
	cr_assert_str_eq(r.msgs[2], "'10.0.0.0/33': the prefix length of an "
				    "IPv4 block is 0 to 32");
	cr_assert_eq(p.npatterns, 2, "the good patterns are kept");
	cr_assert_str_eq(p.patterns[0].text, "good");
	cr_assert_eq(p.patterns[0].rule, 3);
	cr_assert_eq(p.patterns[0].line, 9);
	cr_assert_str_eq(p.patterns[1].text, "h:80");
	match_free(&p);
	r.n = 0;
	cr_assert_eq(match_parse(&p, 0, "", 1, collect_report, &r), 0);
	cr_assert_eq(r.n, 1);
	cr_assert_str_eq(r.msgs[0], "empty; list destinations such as "
				    "payment-service:8000");
	cr_assert_eq(p.npatterns, 0);
	match_free(&p);
}

Test(match, all_digit_hosts_are_bad_ipv4_addresses)
{
	static const struct bad_pattern t[] = {
	    {"10.0.0.256", "'10.0.0.256' is not an IPv4 address, and the "
			   "last label of a hostname must contain a letter"},
	    {"1.2.3", "'1.2.3' is not an IPv4 address, and the last label "
		      "of a hostname must contain a letter"},
	    {"1.2.3.4.5:80", "'1.2.3.4.5:80': '1.2.3.4.5' is not an IPv4 "
			     "address, and the last label of a hostname "
			     "must contain a letter"},
	    {"127.1", "'127.1' is not an IPv4 address, and the last label "
		      "of a hostname must contain a letter"},
	    {"8000", "'8000' is not an IPv4 address, and the last label of "
		     "a hostname must contain a letter"},
	    {"host.123.", "'host.123.' is not an IPv4 address, and the "
			  "last label of a hostname must contain a letter"},
	};
	struct policy *p;

	expect_bad_patterns("", t, sizeof t / sizeof t[0]);
	/* digits elsewhere, a letter in the last label, and globs are fine */
	p = load_ok("[r]\nmatch = 123.example 10.0.0.x a1 1a 0x7f "
		    "web-01.internal 10.0.0.* db.example.\n");
	cr_assert_eq(p->npatterns, 8);
	cr_assert_eq(p->patterns[0].kind, POLICY_PAT_HOST);
	cr_assert_eq(p->patterns[6].kind, POLICY_PAT_GLOB);
	policy_free(p);
}

Test(match, hostname_with_port)
{
	struct policy *p = load_ok("[pay]\nmatch = payment-service:8000\n");
	static const struct want_winner t[] = {
	    {"10.0.0.1", 8000, "payment-service", "pay"},
	    {"10.0.0.1", 8001, "payment-service", "(none)"},
	    {"10.0.0.1", 8000, "payment-services", "(none)"},
	    {"10.0.0.1", 8000, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, hostname_is_case_insensitive)
{
	struct policy *p = load_ok("[pay]\nmatch = Payment-Service\n");
	static const struct want_winner t[] = {
	    {"::1", 1, "PAYMENT-service", "pay"},
	    {"::1", 1, "payment-service", "pay"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, hostname_glob_star)
{
	struct policy *p = load_ok("[in]\nmatch = *.internal\n");
	static const struct want_winner t[] = {
	    {"10.0.0.1", 80, "db.internal", "in"},
	    {"10.0.0.1", 80, "a.b.INTERNAL", "in"},
	    {"10.0.0.1", 80, "internal", "(none)"},
	    {"10.0.0.1", 80, "db.internal.com", "(none)"},
	    {"10.0.0.1", 80, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, hostname_glob_question_mark)
{
	struct policy *p = load_ok("[g]\nmatch = a?c\n");
	static const struct want_winner t[] = {
	    {"10.0.0.1", 80, "abc", "g"},
	    {"10.0.0.1", 80, "a.c", "g"},
	    {"10.0.0.1", 80, "ac", "(none)"},
	    {"10.0.0.1", 80, "abbc", "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, glob_function)
{
	static const struct {
		const char *glob, *name;
		bool match;
	} t[] = {
	    {"*", "", true},
	    {"*", "anything", true},
	    {"*.a.*", "x.a.y", true},
	    {"*ab", "aab", true},
	    {"a*b*c", "aXbYbZc", true},
	    {"??", "ab", true},
	    {"??", "a", false},
	    {"a*b", "ac", false},
	    {"abc", "ab", false},
	    {"", "a", false},
	    {"", "", true},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		cr_assert_eq(match_glob(t[i].glob, t[i].name), t[i].match,
			     "match_glob(\"%s\", \"%s\")", t[i].glob,
			     t[i].name);
}

Test(match, ipv4_address)
{
	struct policy *p = load_ok("[a]\nmatch = 10.1.2.3\n");
	static const struct want_winner t[] = {
	    {"10.1.2.3", 1, NULL, "a"},
	    {"10.1.2.3", 65535, "x", "a"},
	    {"10.1.2.4", 1, NULL, "(none)"},
	    /* IPv4-compatible is not v4-mapped */
	    {"::a01:203", 1, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, ipv6_address_in_brackets_with_port)
{
	struct policy *p = load_ok("[a]\nmatch = [::1]:80\n");
	static const struct want_winner t[] = {
	    {"::1", 80, NULL, "a"},
	    {"::1", 81, NULL, "(none)"},
	    {"::2", 80, NULL, "(none)"},
	    {"127.0.0.1", 80, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, bare_ipv6_address)
{
	struct policy *p = load_ok("[a]\nmatch = ::1 2001:DB8::5\n");
	static const struct want_winner t[] = {
	    {"::1", 80, NULL, "a"},
	    {"::1", 12345, NULL, "a"},
	    {"2001:db8:0:0::5", 1, NULL, "a"},
	    {"2001:db8::6", 1, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, ipv4_cidr)
{
	struct policy *p = load_ok("[a]\nmatch = 10.0.0.0/8\n"
				   "[b]\nmatch = 192.168.1.77/30:443\n");
	static const struct want_winner t[] = {
	    {"10.0.0.0", 1, NULL, "a"},
	    {"10.255.255.255", 1, NULL, "a"},
	    {"11.0.0.1", 1, NULL, "(none)"},
	    {"9.255.255.255", 1, NULL, "(none)"},
	    {"192.168.1.76", 443, NULL, "b"},
	    {"192.168.1.79", 443, NULL, "b"},
	    {"192.168.1.80", 443, NULL, "(none)"},
	    {"192.168.1.77", 80, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, ipv6_cidr)
{
	struct policy *p = load_ok("[a]\nmatch = [fd00::]/8\n"
				   "[b]\nmatch = 2001:db8::/32\n");
	static const struct want_winner t[] = {
	    {"fd12:3456::1", 1, NULL, "a"},
	    {"fdff:ffff::", 1, NULL, "a"},
	    {"fe00::1", 1, NULL, "(none)"},
	    {"fc00::1", 1, NULL, "(none)"},
	    {"2001:db8:ffff::1", 1, NULL, "b"},
	    {"2001:db9::1", 1, NULL, "(none)"},
	    {"10.0.0.1", 1, NULL, "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, star_and_star_with_port)
{
	struct policy *p = load_ok("[tls]\nmatch = *:443\n[all]\nmatch = *\n");
	static const struct want_winner t[] = {
	    {"10.0.0.1", 443, NULL, "tls"},
	    {"::1", 443, "x", "tls"},
	    {"10.0.0.1", 80, NULL, "all"},
	    {"fd00::1", 1, "y", "all"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, port_single_and_range)
{
	struct policy *p = load_ok("[one]\nmatch = h:8080\n"
				   "[range]\nmatch = h:8000-8100\n"
				   "[all]\nmatch = h:*\n");
	static const struct want_winner t[] = {
	    /* one port is narrower than a range */
	    {"10.0.0.1", 8080, "h", "one"},
	    /* the ends of the range */
	    {"10.0.0.1", 8000, "h", "range"},
	    {"10.0.0.1", 8100, "h", "range"},
	    /* just outside it */
	    {"10.0.0.1", 7999, "h", "all"},
	    {"10.0.0.1", 8101, "h", "all"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

/* The rules are written least specific first, so file order cannot be
 * what ranks them. */
Test(match, most_specific_wins)
{
	struct policy *p = load_ok("[any]\nmatch = *\n"
				   "[cidr8]\nmatch = 10.0.0.0/8\n"
				   "[cidr16]\nmatch = 10.1.0.0/16\n"
				   "[glob]\nmatch = *.internal\n"
				   "[host]\nmatch = db.internal\n"
				   "[addr]\nmatch = 10.1.2.3\n");
	static const struct want_winner t[] = {
	    {"10.1.2.3", 5432, "db.internal", "addr"},
	    {"10.1.2.4", 5432, "db.internal", "host"},
	    {"10.1.2.4", 5432, "x.internal", "glob"},
	    {"10.1.2.4", 5432, "db.external", "cidr16"},
	    {"10.2.0.1", 5432, NULL, "cidr8"},
	    {"11.0.0.1", 5432, NULL, "any"},
	    {"fd00::1", 5432, "db.internal", "host"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, longest_cidr_prefix_wins)
{
	struct policy *p = load_ok("[p8]\nmatch = 10.0.0.0/8\n"
				   "[p24]\nmatch = 10.1.2.0/24\n"
				   "[p16]\nmatch = 10.1.0.0/16\n"
				   "[p32]\nmatch = 10.1.2.3/32\n"
				   "[v6]\nmatch = [::ffff:10.1.2.0]/120\n");
	static const struct want_winner t[] = {
	    {"10.1.2.3", 1, NULL, "p32"},
	    /* /24 written as IPv4 comes before the same /120 */
	    {"10.1.2.4", 1, NULL, "p24"},
	    {"10.1.3.4", 1, NULL, "p16"},
	    {"10.3.3.4", 1, NULL, "p8"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, narrower_port_set_wins_a_tie)
{
	struct policy *p = load_ok("[wide]\nmatch = db:8000-8100\n"
				   "[narrow]\nmatch = db:8080\n"
				   "[cwide]\nmatch = 10.0.0.0/8\n"
				   "[cnarrow]\nmatch = 10.0.0.0/8:8000-8001\n"
				   "[gwide]\nmatch = *.svc:1-1000\n"
				   "[gnarrow]\nmatch = *.svc:80-81\n");
	static const struct want_winner t[] = {
	    {"::1", 8080, "db", "narrow"},
	    {"::1", 8081, "db", "wide"},
	    {"10.0.0.1", 8001, NULL, "cnarrow"},
	    {"10.0.0.1", 8002, NULL, "cwide"},
	    {"::1", 80, "a.svc", "gnarrow"},
	    {"::1", 82, "a.svc", "gwide"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, earlier_rule_wins_a_full_tie)
{
	struct policy *p = load_ok("[first]\nmatch = db:80 10.0.0.0/8 *.x\n"
				   "[second]\nmatch = db:80 10.0.0.0/8 *.x\n"
				   "[third]\nmatch = *\n[fourth]\nmatch = *\n");
	static const struct want_winner t[] = {
	    {"::1", 80, "db", "first"},
	    {"10.0.0.1", 1, NULL, "first"},
	    {"::1", 1, "a.x", "first"},
	    {"::1", 1, NULL, "third"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, longer_glob_wins)
{
	struct policy *p = load_ok("[short]\nmatch = *.internal\n"
				   "[long]\nmatch = *.db.internal\n"
				   "[q]\nmatch = x?.db.internal\n"
				   "[tie]\nmatch = ?y.db.internal\n");
	static const struct want_winner t[] = {
	    {"::1", 1, "x.db.internal", "long"},
	    /* x? has one literal character more than * */
	    {"::1", 1, "xy.db.internal", "q"},
	    {"::1", 1, "zy.db.internal", "tie"},
	    {"::1", 1, "y.internal", "short"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, v4_mapped_ipv6_matches_ipv4_patterns)
{
	struct policy *p = load_ok("[addr]\nmatch = 10.1.2.3:80\n"
				   "[cidr]\nmatch = 10.0.0.0/8\n"
				   "[mapped]\nmatch = [::ffff:192.168.0.1]\n");
	static const struct want_winner t[] = {
	    {"::ffff:10.1.2.3", 80, NULL, "addr"},
	    {"::ffff:10.1.2.3", 81, NULL, "cidr"},
	    {"::ffff:10.200.0.1", 81, NULL, "cidr"},
	    {"::ffff:11.0.0.1", 81, NULL, "(none)"},
	    {"192.168.0.1", 1, NULL, "mapped"},
	    {"::ffff:192.168.0.1", 1, NULL, "mapped"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, default_or_unguarded)
{
	struct policy *p = load_ok("[a]\nmatch = a\n");
	struct policy *d = load_ok("[default]\n[a]\nmatch = a\n");
	int rule;

	cr_assert_eq(match_pattern(p, "10.0.0.1", 80, "b", &rule), -1);
	cr_assert_eq(rule, -2);
	cr_assert_eq(match_pattern(d, "10.0.0.1", 80, "b", &rule), -1);
	cr_assert_eq(rule, -1);
	cr_assert_eq(match_pattern(d, "10.0.0.1", 80, "a", &rule), 0);
	cr_assert_eq(rule, 0);
	policy_free(p);
	policy_free(d);
}

/* Patterns are numbered by section while parsing and by rule after; a
 * [default] between rules shifts the numbers. */
Test(match, patterns_point_at_their_rule)
{
	struct policy *p = load_ok("[a]\nmatch = a\n[default]\nretries = 1\n"
				   "[b]\nmatch = b1 b2\n[c]\nmatch = c\n"
				   "[b2]\nmatch = 10.0.0.0/8\n");
	static const struct want_winner t[] = {
	    {"::1", 1, "b2", "b"},
	    {"::1", 1, "c", "c"},
	    {"10.9.9.9", 1, NULL, "b2"},
	    {"::1", 1, "z", "(default)"},
	};

	cr_assert_eq(p->nrules, 4);
	cr_assert_eq(p->patterns[0].rule, 0);
	cr_assert_eq(p->patterns[1].rule, 1);
	cr_assert_eq(p->patterns[2].rule, 1);
	cr_assert_eq(p->patterns[3].rule, 2);
	cr_assert_eq(p->patterns[4].rule, 3);
	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, ignores_non_ip_addresses)
{
	struct policy *p = load_ok("[default]\n[a]\nmatch = *\n");
	struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/x"};
	unsigned best = 99;
	struct policy_match m;

	m = policy_match(p, (struct sockaddr *)&un, NULL, 0);
	cr_assert_eq(m.rule, -1);
	cr_assert_eq(m.pattern, -1);
	cr_assert_eq(
	    policy_match_all(p, (struct sockaddr *)&un, NULL, 0, &best, 1), 0);
	cr_assert_eq(best, 99);
	policy_free(p);
}

Test(match, any_of_several_hosts)
{
	struct policy *p = load_ok("[g]\nmatch = *.svc\n[h]\nmatch = db\n");
	struct sockaddr_storage ss = dest("10.0.0.1", 80);
	const char *const hosts[] = {NULL, "x.svc", "DB"};
	char long_name[300];
	const char *const too_long[] = {long_name, "y.svc"};
	struct policy_match m;

	m = policy_match(p, (struct sockaddr *)&ss, hosts, 3);
	cr_assert_eq(m.rule, 1, "the exact hostname wins over the glob");
	m = policy_match(p, (struct sockaddr *)&ss, hosts, 2);
	cr_assert_eq(m.rule, 0);
	memset(long_name, 'a', sizeof long_name - 5);
	strcpy(long_name + sizeof long_name - 5, ".svc");
	m = policy_match(p, (struct sockaddr *)&ss, too_long, 1);
	cr_assert_eq(m.rule, -2, "a name over 253 characters is skipped");
	m = policy_match(p, (struct sockaddr *)&ss, too_long, 2);
	cr_assert_eq(m.rule, 0);
	policy_free(p);
}

Test(match, port_miss_falls_through_to_next_class)
{
	struct policy *p = load_ok("[addr]\nmatch = 10.1.2.3:80\n"
				   "[host]\nmatch = db:81\n"
				   "[glob]\nmatch = *.b:82\n"
				   "[c24]\nmatch = 10.1.2.0/24:83\n"
				   "[c16]\nmatch = 10.1.0.0/16:84\n"
				   "[any]\nmatch = *:85\n");
	static const struct want_winner t[] = {
	    {"10.1.2.3", 80, "db", "addr"},
	    /* from here on, the port misses every class above */
	    {"10.1.2.3", 81, "db", "host"},
	    {"10.1.2.3", 82, "db.b", "glob"},
	    {"10.1.2.3", 83, "db.b", "c24"},
	    {"10.1.2.3", 84, "db.b", "c16"},
	    {"10.1.2.3", 85, "db.b", "any"},
	    {"10.1.2.3", 86, "db.b", "(none)"},
	};

	expect_winners(p, t, sizeof t / sizeof t[0]);
	policy_free(p);
}

Test(match, match_all_lists_every_match_best_first)
{
	struct policy *p = load_ok("[any]\nmatch = *\n"
				   "[c]\nmatch = 10.0.0.0/8\n"
				   "[h]\nmatch = db\n"
				   "[a]\nmatch = 10.1.2.3\n"
				   "[miss]\nmatch = 10.1.2.4\n");
	struct sockaddr_storage ss = dest("10.1.2.3", 80);
	const char *const hosts[] = {"db"};
	unsigned got[8], two[2];

	cr_assert_eq(
	    policy_match_all(p, (struct sockaddr *)&ss, hosts, 1, got, 8), 4);
	cr_assert_eq(got[0], 3);
	cr_assert_eq(got[1], 2);
	cr_assert_eq(got[2], 1);
	cr_assert_eq(got[3], 0);
	cr_assert_eq(
	    policy_match_all(p, (struct sockaddr *)&ss, hosts, 1, two, 2), 4,
	    "the count is of all matches, not of those kept");
	cr_assert_eq(two[0], 3);
	cr_assert_eq(two[1], 2);
	policy_free(p);
}

Test(match, kind_names)
{
	static const struct {
		enum policy_pattern_kind kind;
		const char *name;
	} t[] = {
	    {POLICY_PAT_ADDR, "exact address"},
	    {POLICY_PAT_HOST, "exact hostname"},
	    {POLICY_PAT_GLOB, "hostname glob"},
	    {POLICY_PAT_CIDR, "CIDR block"},
	    {POLICY_PAT_ANY, "wildcard"},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		cr_assert_str_eq(policy_pattern_kind_name(t[i].kind),
				 t[i].name);
}

/* xorshift64*: the property test's deterministic random numbers. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned below(unsigned n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

static const unsigned port_pool[] = {22,   80,	 443,  5432, 6379,
				     8000, 8001, 8002, 8003, 8080};

/* A port near the ones patterns use. */
static unsigned some_port(void)
{
	if (below(8) == 0)
		return 1 + below(65535);
	return port_pool[below(10)] + (below(3) == 0 ? below(4) : 0);
}

/* Writes a random ":PORTS" suffix (or nothing) to buf. */
static void some_ports(char *buf, size_t len)
{
	unsigned lo;

	switch (below(4)) {
	case 0:
		buf[0] = 0;
		break;
	case 1:
		snprintf(buf, len, ":*");
		break;
	case 2:
		snprintf(buf, len, ":%u", port_pool[below(10)]);
		break;
	default:
		lo = port_pool[below(10)] - below(5);
		snprintf(buf, len, ":%u-%u", lo, lo + below(40));
	}
}

/* Writes a random host name near the ones patterns use; some upper case. */
static void some_host(char *buf, size_t len)
{
	switch (below(5)) {
	case 0:
	case 1:
		snprintf(buf, len, "h%u.example", below(220));
		break;
	case 2:
		snprintf(buf, len, "x%u.g%u.example", below(5), below(22));
		break;
	case 3:
		snprintf(buf, len, "h%u.g%u.Example", below(30), below(22));
		break;
	default:
		snprintf(buf, len, "svc%u", below(50));
	}
	if (below(4) == 0)
		buf[0] = (char)(buf[0] - 'a' + 'A');
}

/* Writes one random pattern of a mixed kind to buf. */
static void some_pattern(char *buf, size_t len)
{
	char ports[32];
	unsigned k = below(100);
	static const unsigned v4len[] = {8, 12, 16, 20, 24, 26, 28, 30, 32};
	static const unsigned v6len[] = {8,  16,  32,  48,  64,
					 96, 112, 120, 126, 128};

	some_ports(ports, sizeof ports);
	if (k < 20) {
		snprintf(buf, len, "10.%u.%u.%u%s", below(4), below(8),
			 below(32), ports);
	} else if (k < 25) {
		if (ports[0])
			snprintf(buf, len, "[fd00::%x:%x]%s", below(4),
				 below(64), ports);
		else
			snprintf(buf, len, "fd00::%x:%x", below(4), below(64));
	} else if (k < 27) {
		snprintf(buf, len, "[::ffff:10.%u.%u.%u]%s", below(4), below(8),
			 below(32), ports);
	} else if (k < 47) {
		some_host(buf, len);
		strcat(buf, ports);
	} else if (k < 62) {
		switch (below(5)) {
		case 0:
			snprintf(buf, len, "*.g%u.example%s", below(22), ports);
			break;
		case 1:
			snprintf(buf, len, "h%u*.example%s", below(22), ports);
			break;
		case 2:
			snprintf(buf, len, "h?.example%s", ports);
			break;
		case 3:
			snprintf(buf, len, "*.example%s", ports);
			break;
		default:
			snprintf(buf, len, "*%u*%s", below(10), ports);
		}
	} else if (k < 87) {
		snprintf(buf, len, "10.%u.%u.%u/%u%s", below(4), below(8),
			 below(256), v4len[below(9)], ports);
	} else if (k < 95) {
		if (below(4) == 0)
			snprintf(buf, len, "[::ffff:10.%u.0.0]/%u%s", below(4),
				 96 + 8 + below(25), ports);
		else if (ports[0])
			snprintf(buf, len, "[fd00::%x:0]/%u%s", below(4),
				 v6len[below(10)], ports);
		else
			snprintf(buf, len, "fd00::%x:%x/%u", below(4),
				 below(64), v6len[below(10)]);
	} else if (k < 97) {
		/* "*" with a port, so that some destinations match nothing */
		unsigned lo = port_pool[below(10)];

		snprintf(buf, len, "*:%u-%u", lo, lo + below(3));
	} else {
		snprintf(buf, len, "svc%u%s", below(50), ports);
	}
}

/* A random destination near the patterns: mostly 10.0-3.x.x, some
 * v4-mapped, some fd00::/16 and some far away. */
static struct sockaddr_storage some_dest(void)
{
	char a[64];
	unsigned k = below(100);

	if (k < 60)
		snprintf(a, sizeof a, "10.%u.%u.%u", below(4), below(8),
			 below(k < 30 ? 32 : 256));
	else if (k < 70)
		snprintf(a, sizeof a, "::ffff:10.%u.%u.%u", below(4), below(8),
			 below(32));
	else if (k < 90)
		snprintf(a, sizeof a, "fd00::%x:%x", below(4), below(64));
	else if (k < 95)
		snprintf(a, sizeof a, "fd%02x::%x", below(256), below(4));
	else
		snprintf(a, sizeof a, "192.168.%u.%u", below(256), below(256));
	return dest(a, some_port());
}

Test(match, index_agrees_with_reference_scan)
{
	enum { NPAT = 2000, NDEST = 20000, PER_RULE = 10 };
	size_t cap = NPAT * 64 + 64, o = 0;
	char *text = malloc(cap);
	struct policy *p;
	unsigned wins[5] = {0}, matched = 0;

	cr_assert_not_null(text);
	o += (size_t)snprintf(text, cap, "[default]\n");
	for (unsigned i = 0; i < NPAT; i++) {
		char pat[96];

		if (i % PER_RULE == 0)
			o += (size_t)snprintf(text + o, cap - o, "[r%u]\n",
					      i / PER_RULE);
		some_pattern(pat, sizeof pat);
		o += (size_t)snprintf(text + o, cap - o, "match = %s\n", pat);
	}
	cr_assert_lt(o, cap);
	p = load_ok(text);
	free(text);
	cr_assert_eq(p->npatterns, NPAT);
	cr_assert_eq(p->nrules, NPAT / PER_RULE);

	for (unsigned d = 0; d < NDEST; d++) {
		struct sockaddr_storage ss = some_dest();
		char names[3][64];
		const char *hosts[3];
		size_t nh = below(4);
		struct policy_match m;
		unsigned best = 0;
		size_t n;

		for (size_t i = 0; i < nh; i++) {
			some_host(names[i], sizeof names[i]);
			hosts[i] = below(20) ? names[i] : NULL;
		}
		m = policy_match(p, (struct sockaddr *)&ss, hosts, nh);
		n = policy_match_all(p, (struct sockaddr *)&ss, hosts, nh,
				     &best, 1);
		if (!n) {
			cr_assert_eq(m.pattern, -1, "destination %u", d);
			cr_assert_eq(m.rule, -1);
			continue;
		}
		cr_assert_eq(m.pattern, (int)best,
			     "destination %u: index %d (%s), scan %u (%s)", d,
			     m.pattern,
			     m.pattern >= 0 ? p->patterns[m.pattern].text : "-",
			     best, p->patterns[best].text);
		cr_assert_eq(m.rule, (int)p->patterns[best].rule);
		matched++;
		wins[p->patterns[best].kind]++;
	}
	cr_log_info("%u of %u matched; wins: any %u, cidr %u, glob %u, "
		    "host %u, addr %u",
		    matched, NDEST, wins[0], wins[1], wins[2], wins[3],
		    wins[4]);
	cr_assert_gt(matched, NDEST / 2, "only %u of %u matched", matched,
		     NDEST);
	for (int k = 0; k < 5; k++)
		cr_assert_gt(wins[k], 20, "%s won only %u times",
			     policy_pattern_kind_name(k), wins[k]);
	policy_free(p);
}

/* Matches a destination with the index and with the reference scan, which
 * must agree; the winning pattern's kind (-1: none) for the caller's
 * counts.  what says which test and query failed. */
static int agree(const struct policy *p, const struct sockaddr_storage *ss,
		 const char *const *hosts, size_t nh, const char *what)
{
	struct policy_match m;
	unsigned best = 0;
	size_t n;

	m = policy_match(p, (const struct sockaddr *)ss, hosts, nh);
	n = policy_match_all(p, (const struct sockaddr *)ss, hosts, nh, &best,
			     1);
	if (!n) {
		cr_assert_eq(m.pattern, -1, "%s: index %d (%s), scan none",
			     what, m.pattern,
			     m.pattern >= 0 ? p->patterns[m.pattern].text
					    : "-");
		return -1;
	}
	cr_assert_eq(m.pattern, (int)best, "%s: index %d (%s), scan %u (%s)",
		     what, m.pattern,
		     m.pattern >= 0 ? p->patterns[m.pattern].text : "-", best,
		     p->patterns[best].text);
	cr_assert_eq(m.rule, (int)p->patterns[best].rule);
	return (int)p->patterns[best].kind;
}

/* Appends "[rN]\nmatch = PAT\n" to text at *o, a new rule every 3rd
 * pattern, so that rules tie with each other on rank. */
static void add_pattern(char *text, size_t cap, size_t *o, unsigned i,
			const char *pat)
{
	if (i % 3 == 0)
		*o += (size_t)snprintf(text + *o, cap - *o, "[r%u]\n", i / 3);
	*o += (size_t)snprintf(text + *o, cap - *o, "match = %s\n", pat);
	cr_assert_lt(*o, cap);
}

static const unsigned dense_ports[] = {
    1, 2, 79, 80, 81, 443, 1000, 5432, 8000, 8080, 9000, 65534, 65535};

/* A port set dense in ties and overlaps, as ":PORTS" or nothing: single
 * ports (often the same), ranges from one to thousands of ports wide
 * (some reaching 1 or 65535), "*". */
static void dense_ports_text(char *buf, size_t len)
{
	unsigned a = dense_ports[below(13)], b = dense_ports[below(13)], t;

	if (a > b) {
		t = a;
		a = b;
		b = t;
	}
	switch (below(8)) {
	case 0:
		buf[0] = 0;
		break;
	case 1:
		snprintf(buf, len, ":*");
		break;
	case 2:
	case 3:
		snprintf(buf, len, ":%u", a);
		break;
	case 4:
		snprintf(buf, len, ":%u", 1000 + below(40));
		break;
	case 5:
		snprintf(buf, len, ":%u-%u", a, b);
		break;
	default:
		a = 1000 + below(40);
		snprintf(buf, len, ":%u-%u", a, a + below(30));
	}
}

/* A port to look up: near the ones of dense_ports_text, or any. */
static unsigned dense_port(void)
{
	switch (below(4)) {
	case 0:
		return below(65536);
	case 1:
		return 995 + below(80);
	default:
		return dense_ports[below(13)] + below(3) - 1u;
	}
}

/* Every class holds a few keys with hundreds of patterns each, at
 * overlapping ports: the buckets and "*" get port maps (more than 8
 * patterns), whose answers must be the ranked walk's. */
Test(match, port_maps_agree_with_reference_scan)
{
	enum { NPAT = 1800, NDEST = 30000 };
	static const char *const keys[] = {
	    "10.0.0.1",	  "10.0.0.2",	  "[fd00::1]",	 "h1.example",
	    "h2.example", "10.1.0.0/16",  "10.1.2.0/24", "*.s.example",
	    "*.example",  "a*.t.example", "*",		 "*",
	};
	size_t cap = NPAT * 48 + 64, o = 0;
	char *text = malloc(cap);
	unsigned wins[5] = {0};
	struct policy *p;

	cr_assert_not_null(text);
	o += (size_t)snprintf(text, cap, "[default]\n");
	for (unsigned i = 0; i < NPAT; i++) {
		char pat[64], ports[32];

		dense_ports_text(ports, sizeof ports);
		snprintf(pat, sizeof pat, "%s%s", keys[below(12)], ports);
		add_pattern(text, cap, &o, i, pat);
	}
	p = load_ok(text);
	free(text);
	for (unsigned d = 0; d < NDEST; d++) {
		static const char *const addrs[] = {
		    "10.0.0.1", "10.0.0.2", "fd00::1",	"10.0.0.3",
		    "10.1.2.9", "10.1.3.9", "11.0.0.1", "::ffff:10.0.0.1",
		};
		static const char *const names[] = {
		    "h1.example",   "H2.example",  "x.s.example",
		    "ab.t.example", "b.t.example", "zz.example",
		};
		struct sockaddr_storage ss =
		    dest(addrs[below(8)], dense_port());
		const char *hosts[2] = {names[below(6)], names[below(6)]};
		char what[32];
		int k;

		snprintf(what, sizeof what, "destination %u", d);
		k = agree(p, &ss, hosts, below(3), what);
		if (k >= 0)
			wins[k]++;
	}
	cr_log_info("wins: any %u, cidr %u, glob %u, host %u, addr %u", wins[0],
		    wins[1], wins[2], wins[3], wins[4]);
	for (int k = 0; k < 5; k++)
		cr_assert_gt(wins[k], 500, "%s won only %u times",
			     policy_pattern_kind_name(k), wins[k]);
	policy_free(p);
}

/* Letters and pieces that globs and names share, so that many names end
 * with many tails and '?' and '*' land on every boundary. */
static const char *const glob_pieces[] = {"a",	"b", "ab", "ba", ".a",
					  "-b", "x", "*",  "*",	 "?"};

/* Writes a random glob and ports to buf: a third "*LITERAL", the others
 * 1 to 5 pieces with at least one wildcard (plain "*" is the wildcard
 * pattern, which is fine). */
static void some_glob(char *buf, size_t len)
{
	char ports[32];
	size_t o = 0;
	bool suffix = below(3) == 0;
	unsigned n = 1 + below(5), wild = suffix ? 0 : below(n);

	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(
		    buf + o, len - o, "%s",
		    i == wild ? (suffix || below(3) ? "*" : "?")
			      : glob_pieces[below(suffix ? 7 : 10)]);
	dense_ports_text(ports, sizeof ports);
	snprintf(buf + o, len - o, "%s", ports);
}

/* Writes a random name of 1 to 6 pieces to buf, some in upper case. */
static void some_glob_name(char *buf, size_t len)
{
	size_t o = 0;
	unsigned n = 1 + below(6);

	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s",
				      glob_pieces[below(7)]);
	if (below(4) == 0)
		buf[0] =
		    (char)(buf[0] == '.' || buf[0] == '-' ? buf[0]
							  : buf[0] - 'a' + 'A');
}

/* How the index finds a glob: 0 "*LITERAL" by its literal, 1 by the
 * literal after its last wildcard, 2 ending in a wildcard, walked. */
static int glob_shape(const char *g)
{
	size_t n = strlen(g);

	if (g[n - 1] == '*' || g[n - 1] == '?')
		return 2;
	return g[0] == '*' && !strpbrk(g + 1, "*?") ? 0 : 1;
}

/* Globs of every shape over a small alphabet: "*LITERAL", literals after
 * '?' or after a '*' that is not first (hashed by that tail), several
 * globs per tail, globs ending in a wildcard (walked), at overlapping
 * ports; names that end with many tails at once, up to three a query.
 * The index must pick the scan's glob every time. */
Test(match, glob_index_agrees_with_reference_scan)
{
	enum { NPAT = 600, NDEST = 30000 };
	size_t cap = NPAT * 48 + 64, o = 0;
	char *text = malloc(cap);
	unsigned shapes[3] = {0}, any = 0, none = 0;
	struct policy *p;

	cr_assert_not_null(text);
	for (unsigned i = 0; i < NPAT; i++) {
		char pat[64];

		some_glob(pat, sizeof pat);
		add_pattern(text, cap, &o, i, pat);
	}
	p = load_ok(text);
	free(text);
	for (unsigned d = 0; d < NDEST; d++) {
		struct sockaddr_storage ss = dest("10.0.0.1", dense_port());
		char names[3][64], what[32];
		const char *hosts[3];
		size_t nh = below(4);
		int k;

		for (size_t i = 0; i < nh; i++) {
			some_glob_name(names[i], sizeof names[i]);
			hosts[i] = below(10) ? names[i] : NULL;
		}
		snprintf(what, sizeof what, "destination %u", d);
		k = agree(p, &ss, hosts, nh, what);
		if (k == POLICY_PAT_GLOB) {
			struct policy_match m =
			    policy_match(p, (struct sockaddr *)&ss, hosts, nh);
			shapes[glob_shape(p->patterns[m.pattern].host)]++;
		}
		any += k == POLICY_PAT_ANY;
		none += k < 0;
	}
	cr_log_info("won by *LITERAL %u, by tail %u, walked %u, * %u, "
		    "none %u",
		    shapes[0], shapes[1], shapes[2], any, none);
	for (int i = 0; i < 3; i++)
		cr_assert_gt(shapes[i], NDEST / 20, "glob shape %d won %u", i,
			     shapes[i]);
	policy_free(p);
}

/* Eleven patterns of one key at single ports, ranges that overlap and
 * tie, the ends 1 and 65535, and all ports: for each class a bucket (or
 * "*") with a port map, whose winners are checked at every edge. */
Test(match, port_map_edges)
{
	static const char *const rules[][2] = {
	    {"p80", "80"},	    {"q80", "80"},
	    {"r100", "1-100"},	    {"s81", "81"},
	    {"w8000", "8000-8100"}, {"n8050", "8050"},
	    {"top", "65535"},	    {"x5000", "5000-5001"},
	    {"y5001", "5001-5002"}, {"z9000", "9000-9001"},
	    {"all", "*"},
	};
	static const struct {
		unsigned port;
		const char *rule;
	} t[] = {
	    {80, "p80"},     {81, "s81"},     {79, "r100"},    {1, "r100"},
	    {0, "all"},	     {101, "all"},    {8000, "w8000"}, {8050, "n8050"},
	    {8051, "w8000"}, {8100, "w8000"}, {8101, "all"},   {5000, "x5000"},
	    {5001, "x5000"}, {5002, "y5001"}, {5003, "all"},   {65535, "top"},
	    {65534, "all"},  {9001, "z9000"}, {9002, "all"},   {7999, "all"},
	};
	static const char *const keys[][2] = {
	    {"10.0.0.1", NULL},		{"h.example", "h.example"},
	    {"*.example", "h.example"}, {"h*e", "h.example"},
	    {"10.0.0.0/8", NULL},	{"*", NULL},
	};

	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		char text[2048];
		size_t o = 0;
		struct policy *p;

		for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
			o += (size_t)snprintf(
			    text + o, sizeof text - o, "[%s]\nmatch = %s:%s\n",
			    rules[r][0], keys[k][0], rules[r][1]);
		p = load_ok(text);
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
			cr_assert_str_eq(
			    winner(p, "10.0.0.1", t[i].port, keys[k][1]),
			    t[i].rule, "%s port %u", keys[k][0], t[i].port);
		policy_free(p);
	}
}
