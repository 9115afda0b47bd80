/* SPDX-License-Identifier: MIT */
/* Destination patterns: parsing "match" values (match_parse.c) and the
 * matcher's index (match.c). */
#ifndef FUSEBOX_MATCH_H
#define FUSEBOX_MATCH_H

#include "policy.h"

/* Bytes of the longest hostname (253) with its NUL. */
#define MATCH_HOST_MAX 254

/* Parses the patterns of one "match" value into p->patterns for section
 * sec; reports each bad pattern through report(ctx, message), one call per
 * pattern, and keeps the good ones; 0 or -ENOMEM. */
int match_parse(struct policy *p, size_t sec, const char *value, unsigned line,
		void (*report)(void *ctx, const char *why), void *ctx);

/* Builds the lookup index of p; 0 or -ENOMEM. */
int match_build(struct policy *p);

/* Frees patterns and index of p. */
void match_free(struct policy *p);

/* Matches a lower-case hostname against a glob with '*' and '?'. */
bool match_glob(const char *glob, const char *name);

#endif
