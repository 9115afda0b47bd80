/* SPDX-License-Identifier: MIT */
/* The effective settings of each rule: the built-in defaults, [default]
 * on top of them, the rule's own keys on top of that, and the checks of
 * settings that only make sense together. */
#include "policy_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Fills *s with the built-in defaults of SPEC §2. */
void policy_settings_init(struct policy_settings *s)
{
	memset(s, 0, sizeof *s);
	s->retry_on = POLICY_RETRY_REFUSED | POLICY_RETRY_TIMEOUT |
		      POLICY_RETRY_UNREACHABLE;
	s->retry_backoff_ms = 25;
	s->retry_backoff_max_ms = 250;
	s->retry_budget_ppm = 200000;
	s->retry_budget_min_mps = 10000;
	s->failover = true;
	s->breaker = POLICY_BREAKER_OFF;
	s->breaker_failures = 5;
	s->breaker_window_calls = 20;
	s->breaker_min_calls = 10;
	s->breaker_open_ms = 30000;
	s->breaker_open_max_ms = 300000;
	s->breaker_probes = 1;
	s->breaker_scope = POLICY_SCOPE_ADDRESS;
	s->max_pending = 0;
	s->queue_timeout_ms = 1000;
	s->reject_errno = ECONNREFUSED;
	s->classify = POLICY_CLASSIFY_TCP;
	s->grpc_fail_on = POLICY_GRPC_FAIL_DEFAULT;
	s->retry_methods = POLICY_METHODS_IDEMPOTENT;
	s->replay_buffer = 65536;
}

/* Applies a section's entries on top of s and marks them as set. */
static void overlay(struct policy_settings *s, const struct section *sec,
		    bool mark)
{
	char buf[256];

	for (size_t i = 0; i < sec->nentries; i++) {
		const struct entry *e = &sec->entries[i];
		keys_apply(s, e->key, e->value, buf, sizeof buf);
		if (mark) {
			s->set |= 1ull << e->key;
			s->key_line[e->key] = e->line;
		}
	}
}

/* Reports a conflict between settings of sec.  It is blamed on the first
 * of keys a and b (b may be -1) that sec sets itself, at that key's line;
 * a rule that sets neither only inherits the conflict from [default],
 * which reports it once, so the rule does not. */
static void conflict(struct loader *L, const struct section *sec,
		     const struct policy_settings *s, int a, int b,
		     const char *msg)
{
	unsigned line = sec->line;

	if (s->set >> a & 1)
		line = s->key_line[a];
	else if (b >= 0 && s->set >> b & 1)
		line = s->key_line[b];
	else if (!sec->is_default)
		return;
	loader_error(L, line, "[%s]: %s", sec->name, msg);
}

/* Checks settings that only make sense together. */
static void cross_check(struct loader *L, const struct section *sec,
			const struct policy_settings *s)
{
	if (s->retry_backoff_max_ms < s->retry_backoff_ms)
		conflict(L, sec, s, POLICY_KEY_RETRY_BACKOFF_MAX,
			 POLICY_KEY_RETRY_BACKOFF,
			 "retry_backoff_max is less than retry_backoff; raise "
			 "it or lower retry_backoff");
	if (s->breaker_open_max_ms < s->breaker_open_ms)
		conflict(L, sec, s, POLICY_KEY_BREAKER_OPEN_MAX,
			 POLICY_KEY_BREAKER_OPEN,
			 "breaker_open_max is less than breaker_open; raise it "
			 "or lower breaker_open");
	if (s->breaker_open_ms == 0)
		conflict(L, sec, s, POLICY_KEY_BREAKER_OPEN, -1,
			 "breaker_open must be at least 1ms");
	if (s->breaker_slow_rate_ppm && !s->breaker_slow_ms)
		conflict(L, sec, s, POLICY_KEY_BREAKER_SLOW_RATE,
			 POLICY_KEY_BREAKER_SLOW,
			 "breaker_slow_rate needs breaker_slow (how long a "
			 "slow call takes, e.g. breaker_slow = 1s)");
	/* these two are errors only where the key itself is set: a rule
	 * may turn off rate or max_connections and leave the other unused */
	if ((s->set >> POLICY_KEY_RATE_BURST & 1) && s->rate_burst &&
	    !s->rate_mps)
		conflict(L, sec, s, POLICY_KEY_RATE_BURST, -1,
			 "rate_burst needs rate (e.g. rate = 100/s)");
	if ((s->set >> POLICY_KEY_MAX_PENDING & 1) && s->max_pending &&
	    !s->max_connections)
		conflict(L, sec, s, POLICY_KEY_MAX_PENDING, -1,
			 "max_pending needs max_connections");
}

/* The special section a misspelt name was probably meant to be, or NULL:
 * "[defualt]", "[globl]" and "[DEFAULT]" are otherwise rules without a
 * match. */
static const char *meant_special(const char *name)
{
	char low[POLICY_NAME_MAX];
	size_t i;

	for (i = 0; name[i] && i < sizeof low - 1; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = 0;
	if (loader_distance(low, "default") <= 2)
		return "default";
	if (loader_distance(low, "global") <= 2)
		return "global";
	return NULL;
}

/* Turns the sections read into rules with inherited settings. */
void settings_finish(struct loader *L)
{
	struct policy *p = L->p;
	const struct section *def = NULL;
	size_t nrules = 0;

	policy_settings_init(&p->defaults);
	for (size_t i = 0; i < L->nsecs; i++)
		if (L->secs[i].is_default)
			def = &L->secs[i];
	if (def) {
		p->has_default = true;
		overlay(&p->defaults, def, true);
		cross_check(L, def, &p->defaults);
	}
	p->rules = calloc(L->nsecs ? L->nsecs : 1, sizeof *p->rules);
	if (!p->rules) {
		L->oom = 1;
		return;
	}
	for (size_t i = 0; i < L->nsecs; i++) {
		const struct section *sec = &L->secs[i];
		struct policy_rule *r;

		if (sec->is_default)
			continue;
		if (!sec->has_match) {
			const char *meant = meant_special(sec->name);

			loader_error(L, sec->line,
				     "[%s] has no 'match'; add the "
				     "destinations it guards, e.g. 'match = "
				     "payment-service:8000'%s%s%s",
				     sec->name, meant ? "; did you mean [" : "",
				     meant ? meant : "", meant ? "]?" : "");
		}
		r = &p->rules[nrules];
		snprintf(r->name, sizeof r->name, "%s", sec->name);
		r->line = sec->line;
		r->s = p->defaults;
		r->s.set = 0;
		memset(r->s.key_line, 0, sizeof r->s.key_line);
		overlay(&r->s, sec, true);
		cross_check(L, sec, &r->s);
		L->secs[i].rule = (unsigned)nrules++;
	}
	/* patterns were numbered by section (never [default]); renumber
	 * them by rule in one pass, not one pass per rule */
	for (size_t j = 0; j < p->npatterns; j++)
		p->patterns[j].rule = L->secs[p->patterns[j].rule].rule;
	p->nrules = nrules;
}

/* The settings that apply for m: a rule's, or the defaults. */
const struct policy_settings *policy_settings_of(const struct policy *p,
						 struct policy_match m)
{
	if (m.rule >= 0 && (size_t)m.rule < p->nrules)
		return &p->rules[m.rule].s;
	return &p->defaults;
}
