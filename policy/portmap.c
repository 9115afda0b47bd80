/* SPDX-License-Identifier: MIT */
/* Port maps (portmap.h): ports 0-65535 cut at every pattern's ends, each
 * segment won by the first pattern of the ranked list that holds it. */
#include "portmap.h"

#include <errno.h>
#include <stdlib.h>

/* qsort comparator of uint32_t. */
static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The index of v in the sorted a[0..n), which holds it. */
static uint32_t u32_find(const uint32_t *a, uint32_t n, uint32_t v)
{
	uint32_t lo = 0, hi = n - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first segment at or after i that no pattern has won yet: next[]
 * leads past the won ones (a union-find with path halving). */
static uint32_t unwon(uint32_t *next, uint32_t i)
{
	while (next[i] != i) {
		next[i] = next[next[i]];
		i = next[i];
	}
	return i;
}

/* The cuts of a port map of ids[0..n): 0 and each pattern's port_lo and
 * port_hi + 1, sorted, without repeats, into cut (2n + 1 entries); their
 * count. */
static uint32_t portmap_cuts(const struct policy *p, const unsigned *ids,
			     uint32_t n, uint32_t *cut)
{
	uint32_t nc = 0, j = 1;

	cut[nc++] = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct policy_pattern *pat = &p->patterns[ids[i]];
		cut[nc++] = pat->port_lo;
		cut[nc++] = pat->port_hi + 1u; /* 65536: past the end */
	}
	qsort(cut, nc, sizeof *cut, u32_cmp);
	for (uint32_t i = 1; i < nc; i++)
		if (cut[i] != cut[j - 1])
			cut[j++] = cut[i];
	return j;
}

/* Cuts a to its first size bytes; a itself when realloc fails. */
static void *shrunk(void *a, size_t size)
{
	void *smaller = realloc(a, size);

	return smaller ? smaller : a;
}

/* Builds m over the ranked patterns ids[0..n); 0 or -ENOMEM, m empty.
 * Each pattern in rank order wins the segments of its ports that no
 * better one won; next[] skips those, so each segment is won once and
 * the build takes O(n log n).  Neighbours with one winner are merged. */
int portmap_build(const struct policy *p, const unsigned *ids, uint32_t n,
		  struct portmap *m)
{
	uint32_t *cut = malloc((2 * n + 1) * sizeof *cut);
	uint32_t *next = malloc((2 * n + 2) * sizeof *next);
	uint32_t nc, j = 0;

	m->pat = malloc((2 * n + 1) * sizeof *m->pat);
	m->lo = malloc((2 * n + 1) * sizeof *m->lo);
	if (!cut || !next || !m->pat || !m->lo)
		goto fail;
	nc = portmap_cuts(p, ids, n, cut);
	for (uint32_t i = 0; i <= nc; i++)
		next[i] = i;
	for (uint32_t i = 0; i < nc; i++)
		m->pat[i] = PORTMAP_NONE;
	for (uint32_t i = 0; i < n; i++) {
		const struct policy_pattern *pat = &p->patterns[ids[i]];
		uint32_t end = u32_find(cut, nc, pat->port_hi + 1u);

		for (uint32_t c = unwon(next, u32_find(cut, nc, pat->port_lo));
		     c < end; c = unwon(next, c + 1)) {
			m->pat[c] = ids[i];
			next[c] = c + 1;
		}
	}
	for (uint32_t i = 0; i < nc && cut[i] <= 65535; i++) {
		if (j && m->pat[j - 1] == m->pat[i])
			continue;
		m->pat[j] = m->pat[i];
		m->lo[j++] = (uint16_t)cut[i];
	}
	m->n = j;
	m->pat = shrunk(m->pat, j * sizeof *m->pat);
	m->lo = shrunk(m->lo, j * sizeof *m->lo);
	free(cut);
	free(next);
	return 0;
fail:
	free(cut);
	free(next);
	free(m->pat);
	free(m->lo);
	m->pat = NULL;
	m->lo = NULL;
	return -ENOMEM;
}

/* The pattern of m that wins port, or -1. */
int portmap_pick(const struct portmap *m, uint16_t port)
{
	uint32_t lo = 0, hi = m->n; /* m->lo[lo] <= port < m->lo[hi] */

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->lo[mid] <= port)
			lo = mid;
		else
			hi = mid;
	}
	return m->pat[lo] == PORTMAP_NONE ? -1 : (int)m->pat[lo];
}
