/* SPDX-License-Identifier: MIT */
/* The index of destination patterns and the most-specific-wins matcher.
 * Exact addresses and hostnames are found by hash, CIDR blocks by one hash
 * probe per distinct prefix length (longest first), globs by one hash
 * probe per suffix of the name (keyed by the literal after their last
 * wildcard), the ports of a key's many patterns and of "*" by binary
 * search; policy_match_all() is the plain scan the index must agree with.
 * The patterns themselves are parsed in match_parse.c. */
#include "match.h"
#include "portmap.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* A key's patterns; check is the top half of the key's hash (the bottom
 * half places it), so that a probe rarely compares keys in vain. */
struct bucket {
	uint32_t check;
	uint32_t start, count; /* range in the class's sorted array */
};

/* Lists up to this long are walked: faster than a binary search. */
#define PORTMAP_MIN 9

struct table {
	struct bucket *b;
	size_t mask, nkeys;
	unsigned *sorted;     /* pattern indexes grouped by key, best first */
	struct portmap *maps; /* of buckets of PORTMAP_MIN or more, by first */
	size_t nmaps;
};

struct policy_index {
	struct table addr, host, cidr;
	struct table suffix; /* "*LITERAL" globs, keyed by the literal */
	struct table tails;  /* other globs ending in a literal, keyed by it */
	unsigned lens[129];  /* distinct CIDR prefix lengths, longest first */
	size_t nlens;
	unsigned *globs, *any; /* ranked; globs: those ending in a wildcard */
	size_t nglobs, nany;
	struct portmap any_map; /* n 0: none, any is short */
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

/* The literal tail of a glob, after its last '*' or '?': the names the
 * glob matches end with it, so a glob is found by hashing the suffixes
 * of a name rather than by trying every glob. */
static const char *glob_tail(const char *g)
{
	const char *tail = g;

	for (; *g; g++)
		if (*g == '*' || *g == '?')
			tail = g + 1;
	return tail;
}

/* True for a glob "*LITERAL": one leading '*' and no other wildcard.  It
 * matches exactly the names that end with LITERAL. */
static bool suffix_glob(const struct policy_pattern *pat)
{
	return pat->kind == POLICY_PAT_GLOB && pat->host[0] == '*' &&
	       pat->host[1] && !strpbrk(pat->host + 1, "*?");
}

/* The index class of a pattern: its kind, but "*LITERAL" globs and the
 * other globs with a literal tail have classes of their own; globs that
 * end in a wildcard keep POLICY_PAT_GLOB. */
#define CLASS_SUFFIX (POLICY_PAT_ADDR + 1)
#define CLASS_TAIL   (POLICY_PAT_ADDR + 2)
static int pattern_class(const struct policy_pattern *pat)
{
	if (pat->kind != POLICY_PAT_GLOB)
		return (int)pat->kind;
	if (suffix_glob(pat))
		return CLASS_SUFFIX;
	return *glob_tail(pat->host) ? CLASS_TAIL : POLICY_PAT_GLOB;
}

/* FNV-1a of s[0..n) read backwards, so that the suffixes of a name hash
 * incrementally from its end (see glob_pick). */
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
	case POLICY_PAT_GLOB: /* by the literal tail */
		return rev_hash(glob_tail(pat->host),
				strlen(glob_tail(pat->host)));
	default: /* ADDR has prefix 0 */
		return addr_hash(pat->addr, pat->prefix);
	}
}

/* The key of a hostname or glob: a glob's literal tail. */
static const char *key_name(const struct policy_pattern *pat)
{
	return pat->kind == POLICY_PAT_GLOB ? glob_tail(pat->host) : pat->host;
}

/* True when two patterns of one class have the same key. */
static bool key_eq(const struct policy_pattern *a,
		   const struct policy_pattern *b)
{
	if (a->kind == POLICY_PAT_HOST || a->kind == POLICY_PAT_GLOB)
		return !strcmp(key_name(a), key_name(b));
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
		c = strcmp(key_name(a), key_name(b));
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

/* Adds the port map of the bucket of count patterns from first in t's
 * sorted array; 0 or -ENOMEM. */
static int table_add_map(const struct policy *p, struct table *t,
			 uint32_t first, uint32_t count)
{
	struct portmap *maps = realloc(t->maps, (t->nmaps + 1) * sizeof *maps);

	if (!maps)
		return -ENOMEM;
	t->maps = maps;
	if (portmap_build(p, t->sorted + first, count, &maps[t->nmaps]) < 0)
		return -ENOMEM;
	maps[t->nmaps++].first = first;
	return 0;
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
		t->b[slot].check = (uint32_t)(h >> 32);
		t->b[slot].start = (uint32_t)i;
		t->b[slot].count = (uint32_t)(j - i);
		t->nkeys++;
		if (j - i >= PORTMAP_MIN &&
		    table_add_map(p, t, (uint32_t)i, (uint32_t)(j - i)) < 0)
			return -ENOMEM;
		i = j;
	}
	return 0;
}

/* Frees the arrays of t. */
static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nmaps; i++) {
		free(t->maps[i].pat);
		free(t->maps[i].lo);
	}
	free(t->maps);
	free(t->b);
	free(t->sorted);
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
	    table_build(p, CLASS_SUFFIX, &x->suffix) < 0 ||
	    table_build(p, CLASS_TAIL, &x->tails) < 0)
		return -ENOMEM;
	x->globs = collect(p, POLICY_PAT_GLOB, rank_only_cmp, &x->nglobs);
	x->any = collect(p, POLICY_PAT_ANY, rank_only_cmp, &x->nany);
	if (!x->globs || !x->any)
		return -ENOMEM;
	if (x->nany >= PORTMAP_MIN &&
	    portmap_build(p, x->any, (uint32_t)x->nany, &x->any_map) < 0)
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
		table_free(&x->addr);
		table_free(&x->host);
		table_free(&x->cidr);
		table_free(&x->suffix);
		table_free(&x->tails);
		free(x->globs);
		free(x->any);
		free(x->any_map.pat);
		free(x->any_map.lo);
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

/* The first of the ranked patterns ids[0..n) whose ports hold port, or
 * -1; m is their port map, or NULL to walk them. */
static int ranked_pick(const struct policy *p, const unsigned *ids, uint32_t n,
		       const struct portmap *m, uint16_t port)
{
	if (m)
		return portmap_pick(m, port);
	for (uint32_t i = 0; i < n; i++) {
		const struct policy_pattern *pat = &p->patterns[ids[i]];
		if (port >= pat->port_lo && port <= pat->port_hi)
			return (int)ids[i];
	}
	return -1;
}

/* The port map of t's bucket that starts at start, which has one. */
static const struct portmap *table_map(const struct table *t, uint32_t start)
{
	size_t lo = 0, hi = t->nmaps - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->maps[mid].first < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return &t->maps[lo];
}

/* The best pattern of a bucket range whose ports hold port, or -1. */
static int range_pick(const struct policy *p, const struct table *t,
		      const struct bucket *b, uint16_t port)
{
	return ranked_pick(
	    p, t->sorted + b->start, b->count,
	    b->count >= PORTMAP_MIN ? table_map(t, b->start) : NULL, port);
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
		if (b->check == (uint32_t)(h >> 32) &&
		    key_eq(probe, &p->patterns[t->sorted[b->start]]))
			return b;
		slot = (slot + 1) & t->mask;
	}
	return NULL;
}

/* The better ranked of patterns a and b, either of which may be -1; a on
 * a tie. */
static int better(const struct policy *p, int a, int b)
{
	if (a < 0 || b < 0)
		return a < 0 ? b : a;
	return rank_cmp(&p->patterns[b], &p->patterns[a]) < 0 ? b : a;
}

/* The bucket of a glob table whose literal is the k characters at suf,
 * or NULL; h is their rev_hash; suffix: the table of "*LITERAL" globs,
 * whose literal needs no search.  Inlined: it runs for every character
 * of every name, and a call costs as much as the probe. */
static inline __attribute__((always_inline)) const struct bucket *tail_find(
    const struct policy *p, const struct table *t, bool suffix, uint64_t h,
    const char *suf, size_t k)
{
	for (size_t slot = h & t->mask; t->b[slot].count;
	     slot = (slot + 1) & t->mask) {
		const struct bucket *b = &t->b[slot];
		const char *lit;

		if (b->check != (uint32_t)(h >> 32))
			continue;
		lit = p->patterns[t->sorted[b->start]].host;
		lit = suffix ? lit + 1 : glob_tail(lit);
		if (strlen(lit) == k && !memcmp(lit, suf, k))
			return b;
	}
	return NULL;
}

/* The first of the ranked globs ids[0..n) that matches name and port,
 * if it ranks before best; else best.  The walk stops at the first glob
 * that ranks after best: no later one could win. */
static int glob_walk(const struct policy *p, const unsigned *ids, size_t n,
		     const char *name, uint16_t port, int best)
{
	for (size_t i = 0; i < n; i++) {
		const struct policy_pattern *pat = &p->patterns[ids[i]];
		if (best >= 0 && rank_cmp(pat, &p->patterns[best]) > 0)
			break;
		if (port >= pat->port_lo && port <= pat->port_hi &&
		    match_glob(pat->host, name))
			return (int)ids[i];
	}
	return best;
}

/* The best glob of t that matches name (len characters) and port, if it
 * ranks before best; else best.  Step k hashes the last k characters and
 * looks them up as a literal: every "*LITERAL" glob (suffix) of the
 * bucket found matches, the other globs match_glob() checks. */
static int tail_scan(const struct policy *p, const struct table *t, bool suffix,
		     const char *name, size_t len, uint16_t port, int best)
{
	uint64_t h = FNV0;
	const struct bucket *b;

	for (size_t k = 1; k <= len; k++) {
		const char *suf = name + len - k;

		h ^= (uint8_t)*suf;
		h *= FNV_PRIME;
		if (!(b = tail_find(p, t, suffix, h, suf, k)))
			continue;
		if (suffix)
			best = better(p, best, range_pick(p, t, b, port));
		else
			best = glob_walk(p, t->sorted + b->start, b->count,
					 name, port, best);
	}
	return best;
}

/* The best glob that matches name and port, if it ranks before best;
 * else best.  The globs that end in a wildcard are walked. */
static int glob_pick(const struct policy *p, const struct policy_index *x,
		     const char *name, uint16_t port, int best)
{
	size_t len = strlen(name);

	if (x->suffix.nkeys)
		best = tail_scan(p, &x->suffix, true, name, len, port, best);
	if (x->tails.nkeys)
		best = tail_scan(p, &x->tails, false, name, len, port, best);
	return glob_walk(p, x->globs, x->nglobs, name, port, best);
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
	int best = -1;

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
		if ((b = table_find(p, &x->host, &probe)))
			best =
			    better(p, best, range_pick(p, &x->host, b, port));
	}
	if (best >= 0)
		goto found;
	for (size_t i = 0; i < nhosts; i++) {
		if (hosts[i] && lower(hosts[i], name))
			best = glob_pick(p, x, name, port, best);
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
	if ((best = ranked_pick(p, x->any, (uint32_t)x->nany,
				x->any_map.n ? &x->any_map : NULL, port)) >= 0)
		goto found;
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
