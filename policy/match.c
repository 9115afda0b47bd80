/* SPDX-License-Identifier: MIT */
/* The index of destination patterns and the most-specific-wins matcher.
 * Exact addresses and hostnames are found by hash, CIDR blocks by one hash
 * probe per distinct prefix length (longest first), "*LITERAL" globs by one
 * hash probe per suffix of the name, other globs and "*" by a short ranked
 * list; policy_match_all() is the plain scan the index must agree with.
 * The patterns themselves are parsed in match_parse.c. */
#include "match.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
	uint64_t hash;
	uint32_t start, count; /* range in the class's sorted array */
};

struct table {
	struct bucket *b;
	size_t mask;
	unsigned *sorted; /* pattern indexes grouped by key, best first */
};

struct policy_index {
	struct table addr, host, cidr;
	struct table suffix; /* "*LITERAL" globs, keyed by the literal */
	unsigned lens[129];  /* distinct CIDR prefix lengths, longest first */
	size_t nlens;
	unsigned *globs, *any; /* ranked; globs: the other globs */
	size_t nglobs, nany;
};

/* Why a pattern is ranked where it is, in words. */
const char *policy_pattern_kind_name(enum policy_pattern_kind k)
{
	switch (k) {
	case POLICY_PAT_ADDR:
		return "exact address";
	case POLICY_PAT_HOST:
		return "exact hostname";
	case POLICY_PAT_GLOB:
		return "hostname glob";
	case POLICY_PAT_CIDR:
		return "CIDR block";
	case POLICY_PAT_ANY:
		return "wildcard";
	}
	return "?";
}

/* Matches a lower-case hostname against a glob with '*' and '?'. */
bool match_glob(const char *g, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*g == '*') {
			star = g++;
			resume = s;
		} else if (*g == '?' || *g == *s) {
			g++;
			s++;
		} else if (star) {
			g = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*g == '*')
		g++;
	return !*g;
}

/* Orders two patterns best first: kind, then prefix or glob length, then
 * the narrower port set, then the earlier one. */
static int rank_cmp(const struct policy_pattern *a,
		    const struct policy_pattern *b)
{
	unsigned sa = (unsigned)(a->port_hi - a->port_lo);
	unsigned sb = (unsigned)(b->port_hi - b->port_lo);

	if (a->kind != b->kind)
		return a->kind > b->kind ? -1 : 1;
	if ((a->kind == POLICY_PAT_CIDR || a->kind == POLICY_PAT_GLOB) &&
	    a->prefix != b->prefix)
		return a->prefix > b->prefix ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

#define FNV0	  0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* 64-bit FNV-1a. */
static uint64_t fnv(const void *data, size_t n, uint64_t h)
{
	const uint8_t *d = data;

	for (size_t i = 0; i < n; i++) {
		h ^= d[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* True for a glob "*LITERAL": one leading '*' and no other wildcard.  It
 * matches the names that end with LITERAL, so it is found by hashing the
 * suffixes of a name rather than by trying every glob. */
static bool suffix_glob(const struct policy_pattern *pat)
{
	return pat->kind == POLICY_PAT_GLOB && pat->host[0] == '*' &&
	       !strpbrk(pat->host + 1, "*?");
}

/* The index class of a pattern: its kind, but "*LITERAL" globs have a
 * class of their own. */
#define CLASS_SUFFIX (POLICY_PAT_ADDR + 1)
static int pattern_class(const struct policy_pattern *pat)
{
	return suffix_glob(pat) ? CLASS_SUFFIX : (int)pat->kind;
}

/* FNV-1a of s[0..n) read backwards, so that the suffixes of a name hash
 * incrementally from its end (see suffix_pick). */
static uint64_t rev_hash(const char *s, size_t n)
{
	uint64_t h = FNV0;

	while (n--) {
		h ^= (uint8_t)s[n];
		h *= FNV_PRIME;
	}
	return h;
}

/* Hash of an address key and prefix length: two words and a 64-bit
 * finaliser (splitmix64), as the CIDR path hashes once per prefix length
 * and FNV byte by byte costs several times more. */
static uint64_t addr_hash(const uint8_t addr[16], unsigned prefix)
{
	uint64_t a, b, h;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	h = a * 0x9e3779b97f4a7c15ull ^ b ^ (uint64_t)prefix << 56;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ h >> 31;
}

/* The hash key of a pattern in its class. */
static uint64_t key_hash(const struct policy_pattern *pat)
{
	switch (pat->kind) {
	case POLICY_PAT_HOST:
		return fnv(pat->host, strlen(pat->host), FNV0);
	case POLICY_PAT_GLOB: /* only "*LITERAL" globs are hashed */
		return rev_hash(pat->host + 1, strlen(pat->host + 1));
	default: /* ADDR has prefix 0 */
		return addr_hash(pat->addr, pat->prefix);
	}
}

/* True when two patterns of one class have the same key. */
static bool key_eq(const struct policy_pattern *a,
		   const struct policy_pattern *b)
{
	if (a->kind == POLICY_PAT_HOST || a->kind == POLICY_PAT_GLOB)
		return !strcmp(a->host, b->host);
	return a->prefix == b->prefix && !memcmp(a->addr, b->addr, 16);
}

/* qsort_r comparator: by key, then rank. */
static int key_rank_cmp(const void *x, const void *y, void *ctx)
{
	const struct policy_pattern *pats = ctx;
	const struct policy_pattern *a = &pats[*(const unsigned *)x];
	const struct policy_pattern *b = &pats[*(const unsigned *)y];
	int c;

	if (a->kind == POLICY_PAT_HOST || a->kind == POLICY_PAT_GLOB)
		c = strcmp(a->host, b->host);
	else if (a->prefix != b->prefix)
		c = a->prefix < b->prefix ? -1 : 1;
	else
		c = memcmp(a->addr, b->addr, 16);
	return c ? c : rank_cmp(a, b);
}

/* qsort_r comparator: by rank. */
static int rank_only_cmp(const void *x, const void *y, void *ctx)
{
	const struct policy_pattern *pats = ctx;

	return rank_cmp(&pats[*(const unsigned *)x],
			&pats[*(const unsigned *)y]);
}

/* Collects the patterns of one class, sorted with cmp; n receives the
 * count. */
static unsigned *collect(const struct policy *p, int k,
			 int (*cmp)(const void *, const void *, void *),
			 size_t *n)
{
	unsigned *ids = malloc((p->npatterns + 1) * sizeof *ids);

	*n = 0;
	if (!ids)
		return NULL;
	for (size_t i = 0; i < p->npatterns; i++)
		if (pattern_class(&p->patterns[i]) == k)
			ids[(*n)++] = (unsigned)i;
	qsort_r(ids, *n, sizeof *ids, cmp, p->patterns);
	return ids;
}

/* Builds the hash table of one class; 0 or -ENOMEM. */
static int table_build(const struct policy *p, int k, struct table *t)
{
	size_t n, size = 8;

	t->sorted = collect(p, k, key_rank_cmp, &n);
	if (!t->sorted)
		return -ENOMEM;
	while (size < 2 * n)
		size *= 2;
	t->b = calloc(size, sizeof *t->b);
	if (!t->b)
		return -ENOMEM;
	t->mask = size - 1;
	for (size_t i = 0; i < n;) {
		const struct policy_pattern *first = &p->patterns[t->sorted[i]];
		size_t j = i + 1;
		uint64_t h = key_hash(first);
		size_t slot = h & t->mask;

		while (j < n && key_eq(first, &p->patterns[t->sorted[j]]))
			j++;
		while (t->b[slot].count)
			slot = (slot + 1) & t->mask;
		t->b[slot].hash = h;
		t->b[slot].start = (uint32_t)i;
		t->b[slot].count = (uint32_t)(j - i);
		i = j;
	}
	return 0;
}

/* Builds the lookup index of p; 0 or -ENOMEM. */
int match_build(struct policy *p)
{
	struct policy_index *x = calloc(1, sizeof *x);
	bool seen[129] = {0};

	if (!x)
		return -ENOMEM;
	p->index = x;
	if (table_build(p, POLICY_PAT_ADDR, &x->addr) < 0 ||
	    table_build(p, POLICY_PAT_HOST, &x->host) < 0 ||
	    table_build(p, POLICY_PAT_CIDR, &x->cidr) < 0 ||
	    table_build(p, CLASS_SUFFIX, &x->suffix) < 0)
		return -ENOMEM;
	x->globs = collect(p, POLICY_PAT_GLOB, rank_only_cmp, &x->nglobs);
	x->any = collect(p, POLICY_PAT_ANY, rank_only_cmp, &x->nany);
	if (!x->globs || !x->any)
		return -ENOMEM;
	for (size_t i = 0; i < p->npatterns; i++)
		if (p->patterns[i].kind == POLICY_PAT_CIDR)
			seen[p->patterns[i].prefix] = true;
	for (int l = 128; l >= 0; l--)
		if (seen[l])
			x->lens[x->nlens++] = (unsigned)l;
	return 0;
}

/* Frees patterns and index of p. */
void match_free(struct policy *p)
{
	struct policy_index *x = p->index;

	if (x) {
		free(x->addr.b);
		free(x->addr.sorted);
		free(x->host.b);
		free(x->host.sorted);
		free(x->cidr.b);
		free(x->cidr.sorted);
		free(x->suffix.b);
		free(x->suffix.sorted);
		free(x->globs);
		free(x->any);
		free(x);
		p->index = NULL;
	}
	for (size_t i = 0; i < p->npatterns; i++) {
		free(p->patterns[i].host);
		free(p->patterns[i].text);
	}
	free(p->patterns);
	p->patterns = NULL;
	p->npatterns = 0;
}

/* Converts a socket address into the v6 key and port; false if not IP. */
static bool sa_key(const struct sockaddr *sa, uint8_t addr[16], uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		memcpy(addr, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
		return true;
	}
	return false;
}

/* The best pattern of a bucket range whose ports hold port, or -1. */
static int range_pick(const struct policy *p, const struct table *t,
		      const struct bucket *b, uint16_t port)
{
	for (uint32_t i = 0; i < b->count; i++) {
		const struct policy_pattern *pat =
		    &p->patterns[t->sorted[b->start + i]];
		if (port >= pat->port_lo && port <= pat->port_hi)
			return (int)t->sorted[b->start + i];
	}
	return -1;
}

/* Finds the bucket whose key equals probe's, or NULL. */
static const struct bucket *table_find(const struct policy *p,
				       const struct table *t,
				       const struct policy_pattern *probe)
{
	uint64_t h = key_hash(probe);
	size_t slot = h & t->mask;

	while (t->b[slot].count) {
		const struct bucket *b = &t->b[slot];
		if (b->hash == h &&
		    key_eq(probe, &p->patterns[t->sorted[b->start]]))
			return b;
		slot = (slot + 1) & t->mask;
	}
	return NULL;
}

/* The best "*LITERAL" glob whose literal ends name and whose ports hold
 * port, or -1.  Step k hashes the last k characters; the longest literal
 * found wins, having the most literal characters. */
static int suffix_pick(const struct policy *p, const struct table *t,
		       const char *name, uint16_t port)
{
	size_t len = strlen(name);
	uint64_t h = FNV0;
	int best = -1, c;

	for (size_t k = 1; k <= len; k++) {
		const char *suf = name + len - k;
		size_t slot;

		h ^= (uint8_t)*suf;
		h *= FNV_PRIME;
		for (slot = h & t->mask; t->b[slot].count;
		     slot = (slot + 1) & t->mask) {
			const struct bucket *b = &t->b[slot];
			const char *lit;

			if (b->hash != h)
				continue;
			lit = p->patterns[t->sorted[b->start]].host + 1;
			if (strlen(lit) != k || memcmp(lit, suf, k))
				continue;
			if ((c = range_pick(p, t, b, port)) >= 0)
				best = c;
			break;
		}
	}
	return best;
}

/* Copies a hostname in lower case into buf; false if too long. */
static bool lower(const char *s, char *buf)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i >= MATCH_HOST_MAX - 1)
			return false;
		buf[i] = (char)tolower((unsigned char)s[i]);
	}
	buf[i] = 0;
	return true;
}

/* Finds the rule for a TCP destination. */
struct policy_match policy_match(const struct policy *p,
				 const struct sockaddr *sa,
				 const char *const *hosts, size_t nhosts)
{
	struct policy_match m = {.rule = p->has_default ? -1 : -2,
				 .pattern = -1};
	const struct policy_index *x = p->index;
	struct policy_pattern probe = {.kind = POLICY_PAT_ADDR};
	const struct bucket *b;
	char name[MATCH_HOST_MAX];
	uint16_t port;
	int best = -1, c;

	if (!x || !p->npatterns || !sa_key(sa, probe.addr, &port))
		return m; /* no patterns: [default] or nothing */
	if ((b = table_find(p, &x->addr, &probe)) &&
	    (best = range_pick(p, &x->addr, b, port)) >= 0)
		goto found;
	probe.kind = POLICY_PAT_HOST;
	probe.host = name;
	for (size_t i = 0; i < nhosts; i++) {
		if (!hosts[i] || !lower(hosts[i], name))
			continue;
		if ((b = table_find(p, &x->host, &probe)) &&
		    (c = range_pick(p, &x->host, b, port)) >= 0 &&
		    (best < 0 ||
		     rank_cmp(&p->patterns[c], &p->patterns[best]) < 0))
			best = c;
	}
	if (best >= 0)
		goto found;
	for (size_t i = 0; i < nhosts; i++) {
		if (!hosts[i] || !lower(hosts[i], name))
			continue;
		if ((c = suffix_pick(p, &x->suffix, name, port)) >= 0 &&
		    (best < 0 ||
		     rank_cmp(&p->patterns[c], &p->patterns[best]) < 0))
			best = c;
		/* the other globs, best first, while they could still win */
		for (size_t g = 0; g < x->nglobs; g++) {
			const struct policy_pattern *pat =
			    &p->patterns[x->globs[g]];
			if (best >= 0 && rank_cmp(pat, &p->patterns[best]) > 0)
				break;
			if (port >= pat->port_lo && port <= pat->port_hi &&
			    match_glob(pat->host, name)) {
				best = (int)x->globs[g];
				break;
			}
		}
	}
	if (best >= 0)
		goto found;
	probe.kind = POLICY_PAT_CIDR;
	for (size_t l = 0; l < x->nlens; l++) {
		uint8_t key[16];
		unsigned bits = x->lens[l];
		memcpy(key, probe.addr, 16);
		for (unsigned i = bits / 8; i < 16; i++)
			key[i] &= i == bits / 8
				      ? (uint8_t)(0xff00u >> (bits % 8))
				      : 0;
		struct policy_pattern q = {.kind = POLICY_PAT_CIDR,
					   .prefix = bits};
		memcpy(q.addr, key, 16);
		if ((b = table_find(p, &x->cidr, &q)) &&
		    (best = range_pick(p, &x->cidr, b, port)) >= 0)
			goto found;
	}
	for (size_t i = 0; i < x->nany; i++) {
		const struct policy_pattern *pat = &p->patterns[x->any[i]];
		if (port >= pat->port_lo && port <= pat->port_hi) {
			best = (int)x->any[i];
			goto found;
		}
	}
	return m;
found:
	m.pattern = best;
	m.rule = (int)p->patterns[best].rule;
	return m;
}

/* True when pat matches the destination. */
static bool pattern_matches(const struct policy_pattern *pat,
			    const uint8_t addr[16], uint16_t port,
			    const char *const *hosts, size_t nhosts)
{
	char name[MATCH_HOST_MAX];

	if (port < pat->port_lo || port > pat->port_hi)
		return false;
	switch (pat->kind) {
	case POLICY_PAT_ANY:
		return true;
	case POLICY_PAT_ADDR:
		return !memcmp(pat->addr, addr, 16);
	case POLICY_PAT_CIDR:
		for (unsigned bit = 0; bit < pat->prefix; bit++) {
			uint8_t m = (uint8_t)(0x80u >> (bit % 8));
			if ((addr[bit / 8] & m) != (pat->addr[bit / 8] & m))
				return false;
		}
		return true;
	case POLICY_PAT_HOST:
	case POLICY_PAT_GLOB:
		for (size_t i = 0; i < nhosts; i++) {
			if (!hosts[i] || !lower(hosts[i], name))
				continue;
			if (pat->kind == POLICY_PAT_HOST
				? !strcmp(pat->host, name)
				: match_glob(pat->host, name))
				return true;
		}
		return false;
	}
	return false;
}

/* Reference matcher: every matching pattern, best first. */
size_t policy_match_all(const struct policy *p, const struct sockaddr *sa,
			const char *const *hosts, size_t nhosts,
			unsigned *matched, size_t max)
{
	uint8_t addr[16];
	uint16_t port;
	size_t n = 0;

	if (!sa_key(sa, addr, &port))
		return 0;
	for (size_t i = 0; i < p->npatterns; i++) {
		if (!pattern_matches(&p->patterns[i], addr, port, hosts,
				     nhosts))
			continue;
		/* insertion into the ranked prefix that fits in max */
		size_t j = n < max ? n : max;
		while (j > 0 && rank_cmp(&p->patterns[i],
					 &p->patterns[matched[j - 1]]) < 0) {
			if (j < max)
				matched[j] = matched[j - 1];
			j--;
		}
		if (j < max)
			matched[j] = (unsigned)i;
		n++;
	}
	return n;
}
