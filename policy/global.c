/* SPDX-License-Identifier: MIT */
/* The keys of [global]: the segment name, the log level, the reload
 * interval and the sizes of the segment's tables. */
#include "policy_int.h"
#include "value.h"

#include <errno.h>
#include <string.h>

/* The keys of [global], in the order global_set() tells them apart. */
const char *const global_keys[GLOBAL_NKEYS] = {
    "segment",		 "log",		  "reload",
    "segment_processes", "segment_rules", "segment_addresses",
};

static const char *const log_names[] = {"error", "warn", "info", "debug"};

/* Handles one key of [global]. */
void global_set(struct loader *L, const char *name, const char *value)
{
	const unsigned nglobal = GLOBAL_NKEYS;
	int which = -1;

	for (unsigned i = 0; i < nglobal; i++)
		if (!strcmp(name, global_keys[i]))
			which = (int)i;
	if (which < 0) {
		const char *s = loader_suggest(name, global_keys, nglobal);
		if (s)
			loader_error(L, L->line,
				     "unknown key '%s' in [global]; "
				     "did you mean '%s'?",
				     name, s);
		else
			loader_error(L, L->line,
				     "unknown key '%s' in [global]; "
				     "[global] takes segment, log, reload, "
				     "segment_processes, segment_rules and "
				     "segment_addresses",
				     name);
		return;
	}
	if (L->global_line[which]) {
		loader_error(L, L->line,
			     "duplicate key '%s' in [global] (first "
			     "set at line %u); remove one",
			     name, L->global_line[which]);
		return;
	}
	L->global_line[which] = L->line;
	if (which == 0) {
		char probe[POLICY_SEGMENT_MAX];
		const char *bad = NULL;
		for (const char *p = value; *p && !bad; p++)
			if (*p == '%' ? p[1] != 'u'
				      : !((*p >= 'a' && *p <= 'z') ||
					  (*p >= 'A' && *p <= 'Z') ||
					  (*p >= '0' && *p <= '9') ||
					  *p == '_' || *p == '-' || *p == '.'))
				bad = p;
		if (!*value || bad) {
			loader_error(L, L->line,
				     "segment: '%s' is not a segment "
				     "name; use letters, digits, '_', '-', '.' "
				     "and %%u for the uid",
				     value);
			return;
		}
		if (policy_segment_name(value, 4294967295u, probe,
					sizeof probe) < 0) {
			loader_error(
			    L, L->line,
			    "segment: '%s' is too long; with "
			    "each %%u counted as 10 digits, the name must "
			    "fit in %d characters",
			    value, POLICY_SEGMENT_MAX - 1);
			return;
		}
		snprintf(L->p->segment, sizeof L->p->segment, "%s", value);
		L->p->segment_line = L->line;
	} else if (which == 1) {
		int lvl = policy_log_level(value);
		if (lvl < 0) {
			loader_error(L, L->line,
				     "log: '%s' is not one of error, "
				     "warn, info, debug",
				     value);
			return;
		}
		L->p->log = lvl;
	} else if (which >= 3) {
		uint64_t n;
		if (value_count(value, 16, 1000000, &n) < 0) {
			loader_error(L, L->line,
				     "%s: '%s' is not a table size; use 16 to "
				     "1000000",
				     name, value);
			return;
		}
		L->p->segment_size[which - 3] = (uint32_t)n;
	} else {
		uint64_t ms;
		int r = value_duration(value, &ms);
		if (r == -ENOENT)
			loader_error(L, L->line,
				     "reload: '%s' needs a unit: ms, "
				     "s, m or h (e.g. %ss), or 0 for never",
				     value, value);
		else if (r < 0 || (ms && ms < 100))
			loader_error(
			    L, L->line,
			    "reload: '%s' is not a duration "
			    "of at least 100ms (e.g. 2s), or 0 for never",
			    value);
		else
			L->p->reload_ms = ms;
	}
}

/* Looks up a log level name; -1 when unknown. */
int policy_log_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, log_names[i]))
			return i;
	return -1;
}

/* Expands %u in a segment name into buf; 0 or -ENAMETOOLONG. */
int policy_segment_name(const char *raw, unsigned uid, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return -ENAMETOOLONG;
	for (const char *p = raw; *p; p++) {
		int n;
		if (p[0] == '%' && p[1] == 'u') {
			n = snprintf(buf + o, o < len ? len - o : 0, "%u", uid);
			p++;
		} else {
			n = 1;
			if (o + 1 < len)
				buf[o] = *p;
		}
		o += (size_t)n;
		if (o >= len)
			return -ENAMETOOLONG;
	}
	buf[o] = 0;
	return 0;
}
