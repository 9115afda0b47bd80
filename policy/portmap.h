/* SPDX-License-Identifier: MIT */
/* Port maps: which pattern of a ranked list wins each port, by a binary
 * search (match.c uses them for long lists). */
#ifndef FUSEBOX_PORTMAP_H
#define FUSEBOX_PORTMAP_H

#include "policy.h"

#include <stdint.h>

/* Which pattern of a ranked list wins each port.  Ports 0-65535 are cut
 * at every pattern's ends into segments: segment i holds ports lo[i] to
 * lo[i + 1] - 1 (lo[0] is 0) and is won by pattern pat[i], the first of
 * the list whose ports hold it, or by none (PORTMAP_NONE).  A binary
 * search gives what walking the list would. */
#define PORTMAP_NONE UINT32_MAX
struct portmap {
	uint32_t first; /* a bucket's: its start in the sorted array */
	uint32_t n;
	uint32_t *pat;
	uint16_t *lo;
};

/* Builds m over the ranked patterns ids[0..n) of p; 0 or -ENOMEM, m
 * empty. */
int portmap_build(const struct policy *p, const unsigned *ids, uint32_t n,
		  struct portmap *m);

/* The pattern of m that wins port, or -1. */
int portmap_pick(const struct portmap *m, uint16_t port);

#endif
