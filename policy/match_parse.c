/* SPDX-License-Identifier: MIT */
/* Parsing the destination patterns of a "match" value: HOST[:PORTS],
 * [IPv6]:PORTS, CIDR blocks, hostname globs and "*", each checked, with a
 * message saying how to fix it, and kept in the form the index in match.c
 * looks up (addresses as IPv6 keys, names in lower case). */
#include "match.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char oom_msg[] = "out of memory";

/* Parses "N", "N-M" or "*" into a port range; 0 or -1. */
static int parse_ports(const char *s, uint16_t *lo, uint16_t *hi)
{
	unsigned long a, b;
	char *end;

	if (!strcmp(s, "*")) {
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	a = strtoul(s, &end, 10);
	b = a;
	if (*end == '-') {
		if (!isdigit((unsigned char)end[1]))
			return -1;
		b = strtoul(end + 1, &end, 10);
	}
	if (*end || a < 1 || b > 65535 || a > b)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* Checks hostname characters; globs may also hold '*' and '?'. */
static bool valid_host(const char *s, bool glob)
{
	size_t n = strlen(s);

	if (!n || n >= MATCH_HOST_MAX)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' ||
		      *s == '_' || (glob && (*s == '*' || *s == '?'))))
			return false;
	return true;
}

/* True when the last label of a name (a trailing dot aside) is all
 * digits: "10.0.0.256", "1.2.3" and "8000" are mistyped addresses or
 * ports, never hostnames. */
static bool digits_last_label(const char *s)
{
	size_t n = strlen(s), i;

	if (n && s[n - 1] == '.')
		n--;
	for (i = n; i > 0 && s[i - 1] != '.'; i--)
		if (!isdigit((unsigned char)s[i - 1]))
			return false;
	return i < n;
}

/* Parses one pattern token into pat; NULL or a message in buf. */
static const char *parse_one(const char *tok, struct policy_pattern *pat,
			     char *buf, size_t len)
{
	char host[MATCH_HOST_MAX + 8];
	const char *ports = "*", *slash;
	bool v6 = false;
	size_t colons = 0;

	for (const char *c = tok; *c; c++)
		colons += *c == ':';
	if (tok[0] == '[') {
		const char *close = strchr(tok, ']');
		const char *after;
		size_t n;

		if (!close)
			goto bad;
		n = (size_t)(close - tok - 1);
		if (n >= sizeof host - 5)
			goto bad;
		memcpy(host, tok + 1, n);
		host[n] = 0;
		after = close + 1;
		if (*after == '/') {
			size_t k = strcspn(after, ":");
			if (k > 4)
				goto bad;
			memcpy(host + n, after, k);
			host[n + k] = 0;
			after += k;
		}
		if (*after == ':')
			ports = after + 1;
		else if (*after)
			goto bad;
		v6 = true;
	} else if (colons >= 2) {
		if (strlen(tok) >= sizeof host)
			goto bad;
		strcpy(host, tok);
		v6 = true;
	} else {
		const char *colon = strchr(tok, ':');
		size_t n = colon ? (size_t)(colon - tok) : strlen(tok);
		if (n >= sizeof host)
			goto bad;
		memcpy(host, tok, n);
		host[n] = 0;
		if (colon)
			ports = colon + 1;
	}
	if (parse_ports(ports, &pat->port_lo, &pat->port_hi) < 0) {
		snprintf(buf, len,
			 "'%s': ports are N, N-M or * with N from "
			 "1 to 65535 (e.g. 8000, 8000-8100)",
			 tok);
		return buf;
	}
	memset(pat->addr, 0, 16);
	if (!strcmp(host, "*") && !v6) {
		pat->kind = POLICY_PAT_ANY;
		return NULL;
	}
	slash = strchr(host, '/');
	if (slash) {
		char a[64];
		unsigned long plen;
		char *end;
		size_t n = (size_t)(slash - host);
		unsigned max = v6 ? 128 : 32;

		if (n >= sizeof a || !isdigit((unsigned char)slash[1]))
			goto bad;
		memcpy(a, host, n);
		a[n] = 0;
		plen = strtoul(slash + 1, &end, 10);
		if (*end)
			goto bad;
		if (v6 ? inet_pton(AF_INET6, a, pat->addr) != 1
		       : inet_pton(AF_INET, a, pat->addr + 12) != 1) {
			snprintf(buf, len,
				 "'%s': '%s' is not an IPv%c "
				 "address",
				 tok, a, v6 ? '6' : '4');
			return buf;
		}
		if (plen > max) {
			snprintf(buf, len,
				 "'%s': the prefix length of an "
				 "IPv%c block is 0 to %u",
				 tok, v6 ? '6' : '4', max);
			return buf;
		}
		if (!v6) {
			pat->addr[10] = pat->addr[11] = 0xff;
			plen += 96;
		}
		pat->kind = POLICY_PAT_CIDR;
		pat->prefix = (unsigned)plen;
		for (unsigned bit = pat->prefix; bit < 128; bit++)
			pat->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
		return NULL;
	}
	if (v6) {
		if (inet_pton(AF_INET6, host, pat->addr) != 1) {
			snprintf(buf, len,
				 "'%s' is not an IPv6 address; "
				 "write [::1]:8000 when a port follows",
				 tok);
			return buf;
		}
		pat->kind = POLICY_PAT_ADDR;
		return NULL;
	}
	if (inet_pton(AF_INET, host, pat->addr + 12) == 1) {
		pat->addr[10] = pat->addr[11] = 0xff;
		pat->kind = POLICY_PAT_ADDR;
		return NULL;
	}
	if (!strpbrk(host, "*?") && digits_last_label(host)) {
		if (strcmp(host, tok))
			snprintf(buf, len,
				 "'%s': '%s' is not an IPv4 address, and the "
				 "last label of a hostname must contain a "
				 "letter",
				 tok, host);
		else
			snprintf(buf, len,
				 "'%s' is not an IPv4 address, and the last "
				 "label of a hostname must contain a letter",
				 tok);
		return buf;
	}
	for (char *c = host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strpbrk(host, "*?")) {
		if (!valid_host(host, true))
			goto badhost;
		pat->kind = POLICY_PAT_GLOB;
		pat->prefix = 0; /* literal characters: longer globs win */
		for (char *c = host; *c; c++)
			pat->prefix += *c != '*' && *c != '?';
	} else {
		if (!valid_host(host, false))
			goto badhost;
		pat->kind = POLICY_PAT_HOST;
	}
	pat->host = strdup(host);
	if (!pat->host)
		return oom_msg;
	return NULL;
badhost:
	snprintf(buf, len,
		 "'%s' is not a hostname, address, CIDR block or "
		 "*; hostnames use letters, digits, '-', '.', '_'",
		 tok);
	return buf;
bad:
	snprintf(buf, len,
		 "'%s' is not a pattern; use HOST[:PORTS], "
		 "[IPv6]:PORTS or a CIDR block such as 10.0.0.0/8",
		 tok);
	return buf;
}

/* Makes room for one more pattern: the array doubles, its capacity implied
 * by npatterns (8, 16, 32, ...), so that a long policy loads in linear
 * time; 0 or -ENOMEM. */
static int patterns_reserve(struct policy *p)
{
	size_t n = p->npatterns;
	struct policy_pattern *grown;

	if (n && (n < 8 || (n & (n - 1))))
		return 0;
	grown = realloc(p->patterns, (n ? 2 * n : 8) * sizeof *grown);
	if (!grown)
		return -ENOMEM;
	p->patterns = grown;
	return 0;
}

/* Parses the patterns of one "match" value into p->patterns for section
 * sec; reports each bad pattern through report(ctx, message) and keeps the
 * good ones; 0 or -ENOMEM. */
int match_parse(struct policy *p, size_t sec, const char *value, unsigned line,
		void (*report)(void *ctx, const char *why), void *ctx)
{
	const char *s = value;
	char tok[MATCH_HOST_MAX + 32], buf[512];

	if (!*value) {
		report(ctx, "empty; list destinations such as "
			    "payment-service:8000");
		return 0;
	}
	while (*s) {
		size_t n = strcspn(s, " \t,");
		struct policy_pattern pat = {0};
		const char *err;

		if (!n) {
			s++;
			continue;
		}
		if (n >= sizeof tok) {
			snprintf(buf, sizeof buf,
				 "'%.20s...': a pattern longer than %zu "
				 "characters",
				 s, sizeof tok - 1);
			report(ctx, buf);
			s += n;
			continue;
		}
		memcpy(tok, s, n);
		tok[n] = 0;
		s += n;
		err = parse_one(tok, &pat, buf, sizeof buf);
		if (err) {
			free(pat.host);
			if (err == oom_msg)
				return -ENOMEM;
			report(ctx, err);
			continue;
		}
		pat.rule = (unsigned)sec;
		pat.order = (unsigned)p->npatterns;
		pat.line = line;
		pat.text = strdup(tok);
		if (!pat.text || patterns_reserve(p) < 0) {
			free(pat.text);
			free(pat.host);
			return -ENOMEM;
		}
		p->patterns[p->npatterns++] = pat;
	}
	return 0;
}
