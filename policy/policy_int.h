/* SPDX-License-Identifier: MIT */
/* What the files of the policy loader share; not part of the API, which is
 * policy.h.  policy.c reads the file and reports errors, keys.c holds the
 * key table of rule sections, global.c the keys of [global], settings.c
 * makes the effective settings of each rule. */
#ifndef FUSEBOX_POLICY_INT_H
#define FUSEBOX_POLICY_INT_H

#include "policy.h"

#define GLOBAL_NKEYS 6 /* the keys of [global] */

extern const char *const global_keys[GLOBAL_NKEYS];

/* One key = value of a section, kept until every section is read. */
struct entry {
	enum policy_key key;
	char *value;
	unsigned line;
};

struct section {
	char name[POLICY_NAME_MAX];
	unsigned line;
	bool is_default;
	bool has_match;
	unsigned rule; /* index in policy.rules, set by settings_finish() */
	struct entry *entries;
	size_t nentries;
};

struct loader {
	const char *file; /* as the user named it */
	const char *text, *pos;
	unsigned line;
	/* S_IGNORED: a section with an error of its own; its keys are still
	 * checked, in scratch, but never used */
	enum { S_NONE, S_GLOBAL, S_RULE, S_IGNORED } where;
	bool seen_global;
	unsigned global_line[GLOBAL_NKEYS];
	struct policy *p;
	struct section *secs;
	size_t nsecs;
	unsigned *sec_index; /* open hash of section names: index + 1 or 0 */
	size_t sec_mask;
	struct section scratch;
	char scratch_name[128]; /* as written, which may be too long */
	struct policy_errors *errs;
	size_t first_err;    /* errs->msgs[first_err..] are this load's */
	unsigned *err_lines; /* their lines, for sorting; NULL: not kept */
	bool keep_lines;
	int oom;
};

/* Appends "FILE:LINE: message" to L's errors; a line of 0 leaves out the
 * LINE.  Out of memory is noted in L->oom. */
void loader_error(struct loader *L, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Edit distance of two short strings, capped for long ones. */
unsigned loader_distance(const char *a, const char *b);

/* The closest of names[] to s, or NULL when none is close. */
const char *loader_suggest(const char *s, const char *const *names, size_t n);

/* Index of a rule key by name, or -1. */
int keys_index(const char *name);

/* Parses v for key k into s; NULL, or a message saying how to fix it (a
 * constant, or buf of len bytes). */
const char *keys_apply(struct policy_settings *s, enum policy_key k,
		       const char *v, char *buf, size_t len);

/* Handles one key of [global] at the line being read, into L->p. */
void global_set(struct loader *L, const char *name, const char *value);

/* Turns the sections read into rules with inherited settings. */
void settings_finish(struct loader *L);

#endif
