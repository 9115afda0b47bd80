/* SPDX-License-Identifier: MIT */
/* What the files of the policy loader share; not part of the API, which is
 * policy.h.  keys.c holds the key table of rule sections. */
#ifndef FUSEBOX_POLICY_INT_H
#define FUSEBOX_POLICY_INT_H

#include "policy.h"

/* Index of a rule key by name, or -1. */
int keys_index(const char *name);

/* Parses v for key k into s; NULL, or a message saying how to fix it (a
 * constant, or buf of len bytes). */
const char *keys_apply(struct policy_settings *s, enum policy_key k,
		       const char *v, char *buf, size_t len);

#endif
