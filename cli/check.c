/* SPDX-License-Identifier: MIT */
/* fusebox check and fusebox explain: validate a policy, print its
 * effective rules, and tell which rule guards a destination and why. */
#include "cli.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

/* Loads the policy at path (or the located one); prints every error. */
struct policy *cli_load_policy(const char *path, char **found)
{
	struct policy_errors errs = {0};
	struct policy *p;
	char buf[4096];

	*found = NULL;
	if (!path) {
		int r = policy_locate(buf, sizeof buf);
		if (r < 0) {
			fprintf(stderr,
				"fusebox: no policy file: set "
				"FUSEBOX_POLICY, pass a FILE, or create "
				"./fusebox.ini\n");
			return NULL;
		}
		path = buf;
	}
	p = policy_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!p && errs.n > 1)
		fprintf(stderr, "%zu errors\n", errs.n);
	policy_errors_free(&errs);
	if (p)
		*found = strdup(path);
	return p;
}

/* Prints every key of s, marking where each value comes from. */
void cli_print_settings(FILE *f, const struct policy *p,
			const struct policy_settings *s, bool is_default,
			const char *indent)
{
	char v[128];

	for (int k = 0; k < POLICY_KEY_COUNT; k++) {
		const char *from;
		char at[48];

		policy_format_value(s, k, v, sizeof v);
		if (s->set >> k & 1) {
			snprintf(at, sizeof at, "line %u", s->key_line[k]);
			from = at;
		} else if (!is_default && p->defaults.set >> k & 1) {
			snprintf(at, sizeof at, "from [default], line %u",
				 p->defaults.key_line[k]);
			from = at;
		} else {
			from = "built-in";
		}
		fprintf(f, "%s%-22s %-28s %s\n", indent, policy_key_name(k), v,
			from);
	}
}

/* Prints the match patterns of rule r on one line. */
static void print_patterns(const struct policy *p, size_t r)
{
	printf("  %-22s", "match");
	for (size_t i = 0; i < p->npatterns; i++)
		if (p->patterns[i].rule == r)
			printf(" %s", p->patterns[i].text);
	printf("\n");
}

/* fusebox check [FILE] */
int cmd_check(int argc, char **argv)
{
	struct policy *p;
	char *path;
	int bad = 0;

	if (argc > 2)
		return cli_usage_error("check", "one FILE at a time");
	if (argc == 2 && argv[1][0] == '-' && argv[1][1])
		return cli_usage_error("check", "unknown option '%s'", argv[1]);
	p = cli_load_policy(argc == 2 ? argv[1] : NULL, &path);
	if (!p)
		return CLI_FAIL;
	printf("%s: OK, %zu rule%s, %zu pattern%s\n\n", path, p->nrules,
	       p->nrules == 1 ? "" : "s", p->npatterns,
	       p->npatterns == 1 ? "" : "s");
	printf("[global]\n  %-22s %s\n  %-22s %s\n", "segment", p->segment,
	       "log",
	       (const char *[]){"error", "warn", "info", "debug"}[p->log]);
	if (p->reload_ms == 0)
		printf("  %-22s never\n\n", "reload");
	else if (p->reload_ms % 1000 == 0)
		printf("  %-22s %llus\n\n", "reload",
		       (unsigned long long)(p->reload_ms / 1000));
	else
		printf("  %-22s %llums\n\n", "reload",
		       (unsigned long long)p->reload_ms);
	printf("[default]  %s\n",
	       p->has_default ? "guards TCP destinations no rule matches"
			      : "(absent: destinations no rule matches pass "
				"through)");
	cli_print_settings(stdout, p, &p->defaults, true, "  ");
	for (size_t r = 0; r < p->nrules; r++) {
		printf("\n[%s]  line %u\n", p->rules[r].name, p->rules[r].line);
		print_patterns(p, r);
		cli_print_settings(stdout, p, &p->rules[r].s, false, "  ");
	}
	free(path);
	policy_free(p);
	return bad ? CLI_FAIL : CLI_OK;
}

/* Splits "HOST[:PORT]" or "[V6]:PORT" into host and port. */
static int split_target(const char *t, char *host, size_t len, unsigned *port)
{
	const char *colon = NULL;
	size_t n;
	char *end;

	*port = 80;
	if (t[0] == '[') {
		const char *close = strchr(t, ']');
		if (!close)
			return -1;
		n = (size_t)(close - t - 1);
		if (close[1] == ':')
			colon = close + 1;
		else if (close[1])
			return -1;
		t++;
	} else {
		colon = strchr(t, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* a bare IPv6 address */
		n = colon ? (size_t)(colon - t) : strlen(t);
	}
	if (!n || n >= len)
		return -1;
	memcpy(host, t, n);
	host[n] = 0;
	if (colon) {
		unsigned long v = strtoul(colon + 1, &end, 10);
		if (!colon[1] || *end || v < 1 || v > 65535)
			return -1;
		*port = (unsigned)v;
	}
	return 0;
}

/* Describes one pattern: text, kind and ports. */
static void describe(const struct policy *p, unsigned i, const char *tag)
{
	const struct policy_pattern *pat = &p->patterns[i];
	char ports[32];

	if (pat->port_lo == 0 && pat->port_hi == 65535)
		snprintf(ports, sizeof ports, "any port");
	else if (pat->port_lo == pat->port_hi)
		snprintf(ports, sizeof ports, "port %u", pat->port_lo);
	else
		snprintf(ports, sizeof ports, "ports %u-%u", pat->port_lo,
			 pat->port_hi);
	printf("  %-5s %-28s [%s] line %u: %s", tag, pat->text,
	       p->rules[pat->rule].name, pat->line,
	       policy_pattern_kind_name(pat->kind));
	if (pat->kind == POLICY_PAT_CIDR)
		printf(" /%u", pat->prefix >= 96 && pat->addr[10] == 0xff
				   ? pat->prefix - 96
				   : pat->prefix);
	else if (pat->kind == POLICY_PAT_GLOB)
		printf(" (%u literal characters)", pat->prefix);
	printf(", %s\n", ports);
}

/* Explains one resolved address. */
static void explain_one(const struct policy *p, const struct sockaddr *sa,
			const char *host)
{
	const char *hosts[1] = {host};
	unsigned matched[64];
	char addr[INET6_ADDRSTRLEN];
	struct policy_match m;
	size_t n;
	unsigned port;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
		port = ntohs(in->sin_port);
		printf("\n%s:%u", addr, port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
		port = ntohs(in6->sin6_port);
		printf("\n[%s]:%u", addr, port);
	}
	m = policy_match(p, sa, hosts, host ? 1 : 0);
	n = policy_match_all(p, sa, hosts, host ? 1 : 0, matched, 64);
	if (m.rule >= 0)
		printf(" -> rule [%s] (line %u)\n", p->rules[m.rule].name,
		       p->rules[m.rule].line);
	else if (m.rule == -1)
		printf(" -> [default]: no rule matches\n");
	else
		printf(" -> not guarded: no rule matches and there is no "
		       "[default]\n");
	for (size_t i = 0; i < n && i < 64; i++)
		describe(p, matched[i], i == 0 ? "won" : "lost");
	if (n > 1)
		printf("  (most specific wins: exact address > exact hostname "
		       "> hostname glob > longest CIDR prefix > *; then the "
		       "narrower port set; then the earlier pattern)\n");
	if (m.rule != -2)
		cli_print_settings(stdout, p, policy_settings_of(p, m),
				   m.rule == -1, "    ");
}

/* fusebox explain [-p FILE] HOST[:PORT] */
int cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'}, {0}};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	const char *file = NULL;
	char host[256], *path = NULL;
	unsigned port;
	struct policy *p;
	bool literal;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:", opts, NULL)) != -1) {
		if (c == 'p')
			file = optarg;
		else if (c == ':')
			return cli_usage_error("explain",
					       "option '%s' needs a "
					       "FILE",
					       argv[optind - 1]);
		else if (optopt)
			return cli_usage_error("explain",
					       "unknown option "
					       "'-%c'",
					       optopt);
		else
			return cli_usage_error("explain",
					       "unknown option "
					       "'%s'",
					       argv[optind - 1]);
	}
	if (optind != argc - 1)
		return cli_usage_error("explain", "expected one HOST[:PORT]");
	if (split_target(argv[optind], host, sizeof host, &port) < 0)
		return cli_usage_error("explain", "'%s' is not HOST[:PORT]",
				       argv[optind]);
	p = cli_load_policy(file, &path);
	if (!p)
		return CLI_FAIL;
	r = getaddrinfo(host, NULL, &hints, &res);
	if (r) {
		fprintf(stderr, "fusebox explain: cannot resolve '%s': %s\n",
			host, gai_strerror(r));
		policy_free(p);
		free(path);
		return CLI_FAIL;
	}
	{
		unsigned char tmp[16];
		literal = inet_pton(AF_INET, host, tmp) == 1 ||
			  inet_pton(AF_INET6, host, tmp) == 1;
	}
	printf("policy %s\n%s%s%s:%u resolves to", path,
	       strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	       port);
	for (ai = res; ai; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN];
		const void *src =
		    ai->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)ai->ai_addr)
			      ->sin_addr
			: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)
			      ->sin6_addr;
		inet_ntop(ai->ai_family, src, a, sizeof a);
		printf(" %s", a);
	}
	printf("\n");
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ai->ai_addr)->sin_port =
			    htons((uint16_t)port);
		else if (ai->ai_family == AF_INET6)
			((struct sockaddr_in6 *)ai->ai_addr)->sin6_port =
			    htons((uint16_t)port);
		else
			continue;
		explain_one(p, ai->ai_addr, literal ? NULL : host);
	}
	freeaddrinfo(res);
	policy_free(p);
	free(path);
	return CLI_OK;
}
