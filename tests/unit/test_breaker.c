/* SPDX-License-Identifier: MIT */
/* Unit tests of the circuit breaker state machine with a fake clock:
 * thresholds, windows, open periods, probes, dry-run, overrides, event
 * texts, and corrupt segment contents. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/breaker.h"

/* rnd that gives no jitter: period * (0.9 + 0.2 * 2^31 / 2^32). */
#define MID 0x80000000u

/* A breaker that is on, with the SPEC defaults and a 1 s open period. */
static struct breaker_config on_config(void)
{
	struct breaker_config c;

	breaker_config_default(&c);
	c.mode = BREAKER_MODE_ON;
	c.open_ms = 1000;
	c.open_max_ms = 8000;
	return c;
}

/* Runs one call at now: asks, and if admitted records flags; returns the
 * verdict, and in ev the event of the record (or of the rejection). */
static int call(struct breaker *b, const struct breaker_config *c, uint64_t now,
		int flags, struct breaker_event *ev)
{
	int v = breaker_allow(b, c, now, ev);

	if (v != BREAKER_REJECT)
		breaker_record(b, c, now, flags, v == BREAKER_PROBE, MID, ev);
	return v;
}

/* Records n outcomes with flags at now, failing on any state change
 * unless the last call makes it. */
static void calls(struct breaker *b, const struct breaker_config *c,
		  uint64_t now, int flags, int n)
{
	struct breaker_event ev;
	int i;

	for (i = 0; i < n; i++) {
		call(b, c, now, flags, &ev);
		cr_assert_not(ev.changed, "call %d changed state: %s", i,
			      ev.reason);
	}
}

/* Opens a closed breaker at now with consecutive failures. */
static void trip(struct breaker *b, const struct breaker_config *c,
		 uint64_t now)
{
	uint32_t i;

	for (i = 0; i < c->failures; i++)
		call(b, c, now, BREAKER_FAILURE, NULL);
	cr_assert_eq(breaker_current(b), BREAKER_OPEN);
}

/* Open period in force: until - since. */
static uint64_t period_in_force(const struct breaker *b)
{
	return breaker_until_ms(b) - breaker_since_ms(b);
}

Test(breaker, struct_fits_the_segment)
{
	cr_assert_leq(sizeof(struct breaker), 512);
}

Test(breaker, config_defaults_follow_the_spec)
{
	struct breaker_config c;

	breaker_config_default(&c);
	cr_assert_eq(c.mode, BREAKER_MODE_OFF);
	cr_assert_eq(c.failures, 5);
	cr_assert_eq(c.failure_rate_ppm, 0);
	cr_assert_eq(c.window_calls, 20);
	cr_assert_eq(c.window_ms, 0);
	cr_assert_eq(c.min_calls, 10);
	cr_assert_eq(c.slow_ms, 0);
	cr_assert_eq(c.slow_rate_ppm, 0);
	cr_assert_eq(c.open_ms, 30000);
	cr_assert_eq(c.open_max_ms, 300000);
	cr_assert_eq(c.probes, 1);
}

Test(breaker, zeroed_memory_is_a_closed_breaker)
{
	struct breaker b;
	struct breaker_config c = on_config();
	struct breaker_event ev;

	memset(&b, 0, sizeof(b));
	cr_assert_str_eq(breaker_state_name(&b, &c), "closed");
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	cr_assert_eq(breaker_forced(&b), BREAKER_FORCE_NONE);
	cr_assert_eq(breaker_consecutive(&b), 0);
	cr_assert_eq(breaker_until_ms(&b), 0);
	cr_assert_eq(breaker_allow(&b, &c, 5, &ev), BREAKER_ALLOW);
	cr_assert_not(ev.changed);
	cr_assert_str_eq(ev.reason, "");
	cr_assert_eq(ev.verdict, BREAKER_ALLOW);
}

Test(breaker, opens_after_consecutive_failures)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;

	calls(&b, &c, 100, BREAKER_FAILURE, 4);
	cr_assert_eq(breaker_consecutive(&b), 4);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	call(&b, &c, 200, BREAKER_FAILURE, &ev);
	cr_assert(ev.changed);
	cr_assert_eq(ev.from, BREAKER_CLOSED);
	cr_assert_eq(ev.to, BREAKER_OPEN);
	cr_assert_str_eq(ev.reason, "5 consecutive failures");
	cr_assert_str_eq(breaker_state_name(&b, &c), "open");
	cr_assert_eq(breaker_consecutive(&b), 5);
	cr_assert_eq(breaker_since_ms(&b), 200);
	cr_assert_eq(breaker_until_ms(&b), 1200);
	cr_assert_eq(breaker_allow(&b, &c, 300, &ev), BREAKER_REJECT);
	cr_assert_eq(ev.verdict, BREAKER_REJECT);
	cr_assert_not(ev.changed);
}

Test(breaker, success_resets_consecutive)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	calls(&b, &c, 0, BREAKER_FAILURE, 4);
	calls(&b, &c, 0, 0, 1);
	cr_assert_eq(breaker_consecutive(&b), 0);
	calls(&b, &c, 0, BREAKER_FAILURE, 4);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	call(&b, &c, 0, BREAKER_FAILURE, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
}

/* The limits of a case, in the order of struct breaker_config. */
struct limits {
	uint32_t failures, failure_rate_ppm, window_calls;
	uint64_t window_ms;
	uint32_t min_calls;
	uint64_t slow_ms;
	uint32_t slow_rate_ppm;
};

/* A run of outcomes: n calls at now with flags. */
struct run {
	uint64_t now;
	int flags;
	int n;
};

/* A breaker that starts closed under limits: its runs change nothing and
 * leave `consecutive` failures in a row; then the call `last` opens it for
 * `reason`, or, without a reason, there is no last call. */
struct closed_case {
	const char *name;
	struct limits set;
	struct run runs[4]; /* up to the first with n 0 */
	uint32_t consecutive;
	struct run last;
	const char *reason;
};

/* Runs one case on a zeroed breaker; each check names the case. */
static void run_case(const struct closed_case *t)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	size_t r;
	int i;

	c.failures = t->set.failures;
	c.failure_rate_ppm = t->set.failure_rate_ppm;
	c.window_calls = t->set.window_calls;
	c.window_ms = t->set.window_ms;
	c.min_calls = t->set.min_calls;
	c.slow_ms = t->set.slow_ms;
	c.slow_rate_ppm = t->set.slow_rate_ppm;
	for (r = 0; r < 4 && t->runs[r].n; r++) {
		for (i = 0; i < t->runs[r].n; i++) {
			call(&b, &c, t->runs[r].now, t->runs[r].flags, &ev);
			cr_expect_not(ev.changed,
				      "%s: run %zu, call %d changed state: %s",
				      t->name, r, i, ev.reason);
		}
		cr_expect_eq(breaker_current(&b), BREAKER_CLOSED,
			     "%s: closed after run %zu", t->name, r);
	}
	cr_expect_eq(breaker_consecutive(&b), t->consecutive,
		     "%s: %u consecutive failures", t->name,
		     breaker_consecutive(&b));
	if (!t->reason)
		return;
	call(&b, &c, t->last.now, t->last.flags, &ev);
	cr_expect(ev.changed, "%s: the last call opens it", t->name);
	cr_expect_eq(ev.from, BREAKER_CLOSED, "%s", t->name);
	cr_expect_eq(ev.to, BREAKER_OPEN, "%s", t->name);
	cr_expect_str_eq(ev.reason, t->reason, "%s: \"%s\"", t->name,
			 ev.reason);
	cr_expect_eq(breaker_current(&b), BREAKER_OPEN, "%s", t->name);
}

/* The limits of each case: failures, failure_rate_ppm, window_calls,
 * window_ms, min_calls, slow_ms, slow_rate_ppm; on_config() has
 * {5, 0, 20, 0, 10, 0, 0}. */
Test(breaker, rates_and_thresholds_open_it)
{
	static const struct closed_case t[] = {
	    {"failure rate over a count window",
	     {100, 500000, 20, 0, 10, 0, 0},
	     .runs = {{0, 0, 6},
		      {0, BREAKER_FAILURE, 4},	/* 4/10 */
		      {0, BREAKER_FAILURE, 1}}, /* 5/11 */
	     .consecutive = 5,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "failure rate 50% >= 50% over 12 calls"},
	    {"failure rate waits for min_calls",
	     {100, 500000, 20, 0, 10, 0, 0},
	     .runs = {{0, BREAKER_FAILURE, 9}}, /* 100%, but only 9 calls */
	     .consecutive = 9,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "failure rate 100% >= 50% over 10 calls"},
	    {"count window forgets older calls",
	     {100, 500000, 10, 0, 10, 0, 0},
	     .runs = {{0, BREAKER_FAILURE, 4},
		      {0, 0, 10},		/* pushes the 4 failures out */
		      {0, BREAKER_FAILURE, 4}}, /* 4/10 */
	     .consecutive = 4,
	     .last = {0, BREAKER_FAILURE}, /* 5/10 */
	     .reason = "failure rate 50% >= 50% over 10 calls"},
	    {"count window of one thousand calls",
	     {0, 100000, 1000, 0, 1000, 0, 0},
	     .runs = {{0, BREAKER_FAILURE, 99}, {0, 0, 900}},
	     .consecutive = 0,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "failure rate 10% >= 10% over 1000 calls"},
	    {"time window counts recent calls",
	     {0, 500000, 0, 10000, 4, 0, 0},
	     .runs = {{1000000, BREAKER_FAILURE, 3}},
	     .consecutive = 3,
	     .last = {1009000, 0}, /* 3/4 within 10 s */
	     .reason = "failure rate 75% >= 50% over 4 calls"},
	    {"time window takes a slightly older clock",
	     {0, 500000, 0, 10000, 4, 0, 0},
	     .runs = {{2000000, 0, 1},
		      {1999500, BREAKER_FAILURE, 2}}, /* another process */
	     .consecutive = 2,
	     .last = {2000100, BREAKER_FAILURE},
	     .reason = "failure rate 75% >= 50% over 4 calls"},
	    {"slow rate",
	     {5, 0, 20, 0, 4, 800, 500000},
	     .runs = {{0, BREAKER_SLOW, 1}, {0, 0, 2}},
	     .consecutive = 0,
	     .last = {0, BREAKER_SLOW},
	     .reason = "slow-call rate 50% >= 50% over 4 calls"},
	    {"a slow failure counts as both",
	     {100, 0, 20, 0, 3, 800, 1000000},
	     .runs = {{0, BREAKER_SLOW | BREAKER_FAILURE, 2}},
	     .consecutive = 2,
	     .last = {0, BREAKER_SLOW | BREAKER_FAILURE},
	     .reason = "slow-call rate 100% >= 100% over 3 calls"},
	    {"one consecutive failure",
	     {1, 0, 20, 0, 10, 0, 0},
	     .consecutive = 0,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "1 consecutive failure"},
	    {"failure rate with decimals",
	     {0, 550000, 20, 0, 12, 0, 0},
	     .runs = {{0, 0, 5}, {0, BREAKER_FAILURE, 6}},
	     .consecutive = 6,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "failure rate 58.33% >= 55% over 12 calls"},
	    {"failure rate over one call",
	     {0, 125000, 20, 0, 1, 0, 0},
	     .consecutive = 0,
	     .last = {0, BREAKER_FAILURE},
	     .reason = "failure rate 100% >= 12.5% over 1 call"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		run_case(&t[i]);
}

/* Limits as above. */
Test(breaker, stays_closed_within_its_limits)
{
	static const struct closed_case t[] = {
	    {"zero failures never opens on consecutive",
	     {0, 0, 20, 0, 10, 0, 0},
	     .runs = {{0, BREAKER_FAILURE, 2000}},
	     .consecutive = 2000},
	    {"slow flag ignored without slow_ms",
	     {5, 0, 20, 0, 1, 0, 100000},
	     .runs = {{0, BREAKER_SLOW, 100}},
	     .consecutive = 0},
	    {"time window drops expired buckets",
	     {0, 500000, 0, 10000, 4, 0, 0},
	     .runs = {{1000000, BREAKER_FAILURE, 3},
		      {1011000, BREAKER_FAILURE, 1}, /* the 3 are gone */
		      {1011000, 0, 3},		     /* 1/4 */
		      /* much later, all expired at once */
		      {5000000, BREAKER_FAILURE, 3}},
	     .consecutive = 3},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		run_case(&t[i]);
}

Test(breaker, time_window_survives_saturated_buckets)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	int i;

	c.failures = 0;
	c.failure_rate_ppm = 600000;
	c.window_calls = 0;
	c.window_ms = 3600000;
	c.min_calls = 10;
	for (i = 0; i < 70000; i++)
		call(&b, &c, 5000, i % 2 ? BREAKER_FAILURE : 0, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	/* The halved counts keep the 50% share: 60% comes after about a
	 * quarter of the (halved) calls again fail. */
	for (i = 0; i < 70000 && breaker_current(&b) == BREAKER_CLOSED; i++)
		call(&b, &c, 5000, BREAKER_FAILURE, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	cr_assert_gt(i, 1000);
}

Test(breaker, open_period_doubles_up_to_the_max)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	static const uint64_t want[] = {1000, 2000, 4000, 8000, 8000, 8000};
	uint64_t now = 1000;
	size_t i;

	trip(&b, &c, now);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(breaker_period_ms(&b), want[i], "open %zu", i);
		cr_assert_eq(period_in_force(&b), want[i], "open %zu", i);
		now = breaker_until_ms(&b);
		cr_assert_eq(call(&b, &c, now - 1, 0, NULL), BREAKER_REJECT);
		cr_assert_eq(call(&b, &c, now, BREAKER_FAILURE, NULL),
			     BREAKER_PROBE);
		cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	}
	/* A success closes and brings the period back to open_ms. */
	now = breaker_until_ms(&b);
	cr_assert_eq(call(&b, &c, now, 0, NULL), BREAKER_PROBE);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	cr_assert_eq(breaker_period_ms(&b), 1000);
	trip(&b, &c, now + 1);
	cr_assert_eq(period_in_force(&b), 1000);
}

Test(breaker, open_period_jitter_stays_within_ten_percent)
{
	struct breaker_config c = on_config();
	uint64_t lo = UINT64_MAX, hi = 0;
	uint32_t rnd = 12345;
	int i;

	c.failures = 1;
	c.open_ms = 30000;
	c.open_max_ms = 300000;
	for (i = 0; i < 1002; i++) {
		struct breaker b = {0};
		uint64_t p;

		rnd = rnd * 1103515245u + 12345u;
		breaker_allow(&b, &c, 50, NULL);
		breaker_record(&b, &c, 50, BREAKER_FAILURE, false,
			       i == 0	? 0
			       : i == 1 ? UINT32_MAX
					: rnd,
			       NULL);
		p = period_in_force(&b);
		cr_assert_geq(p, 27000);
		cr_assert_leq(p, 33000);
		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
		cr_assert_eq(breaker_period_ms(&b), 30000);
	}
	cr_assert_eq(lo, 27000);
	cr_assert_geq(hi, 32990);
}

Test(breaker, reopen_jitter_stays_within_ten_percent)
{
	struct breaker_config c = on_config();
	uint32_t rnd = 99;
	int i;

	c.failures = 1;
	for (i = 0; i < 200; i++) {
		struct breaker b = {0};
		uint64_t until, p;

		rnd = rnd * 1103515245u + 12345u;
		trip(&b, &c, 0);
		until = breaker_until_ms(&b);
		cr_assert_eq(breaker_allow(&b, &c, until, NULL), BREAKER_PROBE);
		breaker_record(&b, &c, until, BREAKER_FAILURE, true, rnd, NULL);
		p = period_in_force(&b);
		cr_assert_geq(p, 1800);
		cr_assert_leq(p, 2200);
	}
}

Test(breaker, half_open_admits_exactly_the_probes)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	c.probes = 3;
	trip(&b, &c, 0);
	cr_assert_eq(breaker_allow(&b, &c, 999, &ev), BREAKER_REJECT);
	cr_assert_eq(breaker_allow(&b, &c, 1000, &ev), BREAKER_PROBE);
	cr_assert(ev.changed);
	cr_assert_eq(ev.from, BREAKER_OPEN);
	cr_assert_eq(ev.to, BREAKER_HALF_OPEN);
	cr_assert_str_eq(ev.reason, "open period over");
	cr_assert_str_eq(breaker_state_name(&b, &c), "half_open");
	cr_assert_eq(breaker_since_ms(&b), 1000);
	cr_assert_eq(breaker_until_ms(&b), 0);
	cr_assert_eq(breaker_allow(&b, &c, 1001, &ev), BREAKER_PROBE);
	cr_assert_not(ev.changed);
	cr_assert_eq(breaker_allow(&b, &c, 1002, NULL), BREAKER_PROBE);
	for (i = 0; i < 50; i++)
		cr_assert_eq(breaker_allow(&b, &c, 1003 + i, NULL),
			     BREAKER_REJECT);
	cr_assert_eq(breaker_current(&b), BREAKER_HALF_OPEN);
}

Test(breaker, all_probes_succeeding_close_it)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	c.probes = 3;
	c.failure_rate_ppm = 500000;
	c.min_calls = 4;
	trip(&b, &c, 0); /* four failures open it by rate */
	for (i = 0; i < 3; i++)
		cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 1010, 0, true, MID, &ev);
	breaker_record(&b, &c, 1020, 0, true, MID, &ev);
	cr_assert_not(ev.changed);
	cr_assert_eq(breaker_current(&b), BREAKER_HALF_OPEN);
	breaker_record(&b, &c, 1030, 0, true, MID, &ev);
	cr_assert(ev.changed);
	cr_assert_eq(ev.from, BREAKER_HALF_OPEN);
	cr_assert_eq(ev.to, BREAKER_CLOSED);
	cr_assert_str_eq(ev.reason, "3 probes succeeded");
	cr_assert_eq(breaker_consecutive(&b), 0);
	cr_assert_eq(breaker_since_ms(&b), 1030);
	cr_assert_eq(breaker_allow(&b, &c, 1040, NULL), BREAKER_ALLOW);
	/* The window was cleared: three failures out of three calls are
	 * below min_calls. */
	calls(&b, &c, 1050, BREAKER_FAILURE, 3);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
}

Test(breaker, failed_probe_reopens_for_longer)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;

	c.probes = 3;
	trip(&b, &c, 0);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 1100, 0, true, MID, &ev);
	cr_assert_not(ev.changed);
	breaker_record(&b, &c, 1200, BREAKER_FAILURE, true, MID, &ev);
	cr_assert(ev.changed);
	cr_assert_eq(ev.from, BREAKER_HALF_OPEN);
	cr_assert_eq(ev.to, BREAKER_OPEN);
	cr_assert_str_eq(ev.reason, "probe failed");
	cr_assert_eq(breaker_period_ms(&b), 2000);
	cr_assert_eq(breaker_until_ms(&b), 3200);
	cr_assert_eq(breaker_allow(&b, &c, 3199, NULL), BREAKER_REJECT);
}

/* What one probe's outcome leaves: a slow probe fails only where a
 * slow-call rate is set. */
Test(breaker, probe_outcome_decides_the_state)
{
	static const struct {
		const char *name;
		uint64_t slow_ms;
		uint32_t slow_rate_ppm;
		uint64_t at; /* when the probe admitted at 1000 reports */
		int flags;
		enum breaker_state state;
		const char *reason;
	} t[] = {
	    {"success", 0, 0, 1000, 0, BREAKER_CLOSED, "1 probe succeeded"},
	    {"failure", 0, 0, 1100, BREAKER_FAILURE, BREAKER_OPEN,
	     "probe failed"},
	    {"slow, slow rate set", 500, 500000, 1600, BREAKER_SLOW,
	     BREAKER_OPEN, "probe slow"},
	    {"slow, no slow rate", 500, 0, 1600, BREAKER_SLOW, BREAKER_CLOSED,
	     "1 probe succeeded"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct breaker b = {0};
		struct breaker_config c = on_config();
		struct breaker_event ev;

		c.slow_ms = t[i].slow_ms;
		c.slow_rate_ppm = t[i].slow_rate_ppm;
		trip(&b, &c, 0);
		cr_expect_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE,
			     "%s", t[i].name);
		breaker_record(&b, &c, t[i].at, t[i].flags, true, MID, &ev);
		cr_expect(ev.changed, "%s", t[i].name);
		cr_expect_eq(ev.from, BREAKER_HALF_OPEN, "%s", t[i].name);
		cr_expect_eq(ev.to, t[i].state, "%s", t[i].name);
		cr_expect_str_eq(ev.reason, t[i].reason, "%s: \"%s\"",
				 t[i].name, ev.reason);
		cr_expect_eq(breaker_current(&b), t[i].state, "%s", t[i].name);
		cr_expect_str_eq(breaker_state_name(&b, &c),
				 breaker_state_str(t[i].state), "%s",
				 t[i].name);
	}
}

Test(breaker, stale_probe_counts_as_failed)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;

	c.probe_timeout_ms = 2000;
	trip(&b, &c, 0);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	/* The probe's process died: nobody reports it. */
	cr_assert_eq(breaker_allow(&b, &c, 3000, &ev), BREAKER_REJECT);
	cr_assert_not(ev.changed);
	cr_assert_eq(breaker_allow(&b, &c, 3001, &ev), BREAKER_REJECT);
	cr_assert(ev.changed);
	cr_assert_eq(ev.from, BREAKER_HALF_OPEN);
	cr_assert_eq(ev.to, BREAKER_OPEN);
	cr_assert_str_eq(ev.reason, "probe timed out after 2000ms");
	cr_assert_eq(breaker_period_ms(&b), 2000);
	cr_assert_geq(period_in_force(&b), 1800);
	cr_assert_leq(period_in_force(&b), 2200);
	/* Its late success counts in nothing. */
	breaker_record(&b, &c, 3100, 0, true, MID, &ev);
	cr_assert_not(ev.changed);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	/* The next half-open admits a probe again. */
	cr_assert_eq(breaker_allow(&b, &c, breaker_until_ms(&b), NULL),
		     BREAKER_PROBE);
}

Test(breaker, stale_probe_found_by_record_too)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;

	c.probe_timeout_ms = 2000;
	c.probes = 2;
	trip(&b, &c, 0);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 5000, 0, false, MID, &ev);
	cr_assert(ev.changed);
	cr_assert_str_eq(ev.reason, "probe timed out after 2000ms");
}

Test(breaker, late_outcomes_count_in_nothing)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	trip(&b, &c, 0);
	for (i = 0; i < 10; i++) {
		breaker_record(&b, &c, 10, i % 2 ? BREAKER_FAILURE : 0, false,
			       MID, &ev);
		cr_assert_not(ev.changed);
	}
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	cr_assert_eq(breaker_consecutive(&b), 5);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	for (i = 0; i < 10; i++) {
		breaker_record(&b, &c, 1010, i % 2 ? BREAKER_FAILURE : 0, false,
			       MID, &ev);
		cr_assert_not(ev.changed);
	}
	cr_assert_eq(breaker_current(&b), BREAKER_HALF_OPEN);
	cr_assert_eq(breaker_consecutive(&b), 5);
}

Test(breaker, probe_outcomes_beyond_those_out_are_ignored)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	c.probes = 2;
	trip(&b, &c, 0);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 1010, 0, true, MID, NULL);
	/* One probe was out and has reported: a second report, or a
	 * failure from an earlier half-open, changes nothing. */
	breaker_record(&b, &c, 1020, 0, true, MID, NULL);
	breaker_record(&b, &c, 1030, BREAKER_FAILURE, true, MID, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_HALF_OPEN);
	cr_assert_eq(breaker_allow(&b, &c, 1040, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 1050, 0, true, MID, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
}

Test(breaker, dry_run_never_rejects)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	c.mode = BREAKER_MODE_DRY_RUN;
	calls(&b, &c, 0, BREAKER_FAILURE, 4);
	call(&b, &c, 0, BREAKER_FAILURE, &ev);
	cr_assert(ev.changed);
	cr_assert_eq(ev.to, BREAKER_OPEN);
	cr_assert_str_eq(ev.reason, "5 consecutive failures");
	cr_assert_str_eq(breaker_state_name(&b, &c), "open");
	for (i = 0; i < 10; i++) {
		cr_assert_eq(breaker_allow(&b, &c, 500, &ev), BREAKER_ALLOW);
		cr_assert_eq(ev.verdict, BREAKER_REJECT);
	}
	cr_assert_eq(breaker_allow(&b, &c, 1000, &ev), BREAKER_PROBE);
	cr_assert_str_eq(ev.reason, "open period over");
	cr_assert_eq(breaker_allow(&b, &c, 1001, &ev), BREAKER_ALLOW);
	cr_assert_eq(ev.verdict, BREAKER_REJECT);
	breaker_record(&b, &c, 1002, 0, true, MID, &ev);
	cr_assert_str_eq(ev.reason, "1 probe succeeded");
	cr_assert_str_eq(breaker_state_name(&b, &c), "closed");
}

Test(breaker, mode_off_changes_nothing)
{
	struct breaker b, zero;
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	memset(&b, 0, sizeof(b));
	memset(&zero, 0, sizeof(zero));
	c.mode = BREAKER_MODE_OFF;
	for (i = 0; i < 100; i++) {
		cr_assert_eq(breaker_allow(&b, &c, i, &ev), BREAKER_ALLOW);
		cr_assert_not(ev.changed);
		breaker_record(&b, &c, i, BREAKER_FAILURE | BREAKER_SLOW, i % 2,
			       MID, &ev);
		cr_assert_not(ev.changed);
	}
	cr_assert_eq(memcmp(&b, &zero, sizeof(b)), 0);
	cr_assert_str_eq(breaker_state_name(&b, &c), "disabled");
	cr_assert_str_eq(breaker_state_name(&b, NULL), "closed");

	/* An open breaker whose rule is switched off lets calls through. */
	c.mode = BREAKER_MODE_ON;
	trip(&b, &c, 0);
	c.mode = BREAKER_MODE_OFF;
	cr_assert_eq(breaker_allow(&b, &c, 1, NULL), BREAKER_ALLOW);
	cr_assert_str_eq(breaker_state_name(&b, &c), "disabled");
}

Test(breaker, forced_open_rejects_everything)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_OPEN), 0);
	cr_assert_str_eq(breaker_state_name(&b, &c), "forced_open");
	cr_assert_eq(breaker_forced(&b), BREAKER_FORCE_OPEN);
	cr_assert_eq(breaker_allow(&b, &c, 7000, &ev), BREAKER_REJECT);
	cr_assert_eq(breaker_since_ms(&b), 7000);
	for (i = 0; i < 20; i++) {
		breaker_record(&b, &c, 7001, BREAKER_FAILURE, false, MID, &ev);
		cr_assert_not(ev.changed);
	}
	cr_assert_eq(breaker_consecutive(&b), 20);
	calls(&b, &c, 99999, 0, 3); /* rejected: nothing recorded */
	breaker_record(&b, &c, 99999, 0, true, MID, &ev);
	cr_assert_eq(breaker_consecutive(&b), 0);
	cr_assert_str_eq(breaker_state_name(&b, &c), "forced_open");
	cr_assert_eq(breaker_until_ms(&b), 0);

	/* Whatever the mode says. */
	c.mode = BREAKER_MODE_OFF;
	cr_assert_eq(breaker_allow(&b, &c, 100000, NULL), BREAKER_REJECT);
	c.mode = BREAKER_MODE_DRY_RUN;
	cr_assert_eq(breaker_allow(&b, &c, 100000, NULL), BREAKER_REJECT);
}

Test(breaker, forced_closed_admits_everything)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;
	int i;

	trip(&b, &c, 0);
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_CLOSED), 0);
	cr_assert_str_eq(breaker_state_name(&b, &c), "forced_closed");
	for (i = 0; i < 100; i++) {
		cr_assert_eq(call(&b, &c, 10 + i, BREAKER_FAILURE, &ev),
			     BREAKER_ALLOW);
		cr_assert_not(ev.changed);
	}
	cr_assert_eq(breaker_consecutive(&b), 105);
	cr_assert_eq(breaker_since_ms(&b), 10);
	cr_assert_str_eq(breaker_state_name(&b, &c), "forced_closed");
}

Test(breaker, auto_returns_to_a_cleared_closed_breaker)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	c.failure_rate_ppm = 500000;
	c.min_calls = 4;
	c.failures = 5;
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_CLOSED), 0);
	calls(&b, &c, 10, BREAKER_FAILURE, 30);
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_NONE), 0);
	cr_assert_eq(breaker_forced(&b), BREAKER_FORCE_NONE);
	cr_assert_str_eq(breaker_state_name(&b, &c), "closed");
	cr_assert_eq(breaker_consecutive(&b), 0);
	cr_assert_eq(breaker_allow(&b, &c, 20, NULL), BREAKER_ALLOW);
	cr_assert_eq(breaker_since_ms(&b), 20);
	/* The window starts empty: three failures are below min_calls. */
	calls(&b, &c, 30, BREAKER_FAILURE, 3);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
	call(&b, &c, 30, BREAKER_FAILURE, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);

	/* Auto on an open, unforced breaker changes nothing. */
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_NONE), 0);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	cr_assert_eq(breaker_force(&b, 7), -EINVAL);
	cr_assert_eq(breaker_force(&b, -1), -EINVAL);
}

Test(breaker, forcing_open_then_auto_forgets_the_period)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	trip(&b, &c, 0);
	cr_assert_eq(call(&b, &c, 1000, BREAKER_FAILURE, NULL), BREAKER_PROBE);
	cr_assert_eq(breaker_period_ms(&b), 2000);
	breaker_force(&b, BREAKER_FORCE_OPEN);
	breaker_force(&b, BREAKER_FORCE_NONE);
	trip(&b, &c, 5000);
	cr_assert_eq(period_in_force(&b), 1000);
}

Test(breaker, reset_clears_everything)
{
	struct breaker b = {0}, zero;
	struct breaker_config c = on_config();

	memset(&zero, 0, sizeof(zero));
	trip(&b, &c, 0);
	breaker_force(&b, BREAKER_FORCE_OPEN);
	breaker_reset(&b);
	cr_assert_eq(memcmp(&b, &zero, sizeof(b)), 0);
}

Test(breaker, window_change_on_reload_starts_afresh)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	c.failures = 0;
	c.failure_rate_ppm = 500000;
	c.min_calls = 4;
	calls(&b, &c, 1000, BREAKER_FAILURE, 3);
	c.window_calls = 0;
	c.window_ms = 30000;
	calls(&b, &c, 1000, BREAKER_FAILURE, 3);
	c.window_calls = 10;
	c.window_ms = 0;
	calls(&b, &c, 1000, BREAKER_FAILURE, 3);
	call(&b, &c, 1000, BREAKER_FAILURE, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
}

Test(breaker, state_names)
{
	static const struct {
		uint8_t state, forced; /* as the segment holds them */
		enum breaker_mode mode;
		const char *name;
	} t[] = {
	    {200, 0, BREAKER_MODE_ON, "closed"}, /* unknown: read as closed */
	    {200, 77, BREAKER_MODE_ON, "closed"},
	    {BREAKER_HALF_OPEN, 77, BREAKER_MODE_ON, "half_open"},
	    {BREAKER_HALF_OPEN, BREAKER_FORCE_CLOSED, BREAKER_MODE_ON,
	     "forced_closed"},
	    {BREAKER_HALF_OPEN, BREAKER_FORCE_OPEN, BREAKER_MODE_OFF,
	     "forced_open"},
	    {BREAKER_HALF_OPEN, 0, BREAKER_MODE_OFF, "disabled"},
	};
	struct breaker_config c = on_config();
	struct breaker b = {0};

	cr_assert_str_eq(breaker_state_str(BREAKER_CLOSED), "closed");
	cr_assert_str_eq(breaker_state_str(BREAKER_OPEN), "open");
	cr_assert_str_eq(breaker_state_str(BREAKER_HALF_OPEN), "half_open");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		b.state = t[i].state;
		b.forced = t[i].forced;
		c.mode = t[i].mode;
		cr_expect_str_eq(breaker_state_name(&b, &c), t[i].name,
				 "state %u, forced %u, mode %d: %s", t[i].state,
				 t[i].forced, (int)t[i].mode,
				 breaker_state_name(&b, &c));
	}
	b.state = 200;
	b.forced = 77;
	cr_assert_eq(breaker_forced(&b), BREAKER_FORCE_NONE);
}

Test(breaker, event_reasons)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	struct breaker_event ev;

	c.failures = 0;
	c.slow_ms = 100;
	c.slow_rate_ppm = 333333;
	c.min_calls = 3;
	calls(&b, &c, 0, 0, 2);
	call(&b, &c, 0, BREAKER_SLOW, &ev);
	cr_assert_str_eq(ev.reason,
			 "slow-call rate 33.33% >= 33.33% over 3 calls");

	c.probes = 2;
	cr_assert_eq(call(&b, &c, 1000, 0, &ev), BREAKER_PROBE);
	cr_assert_str_eq(ev.reason, "");
	cr_assert_eq(call(&b, &c, 1000, 0, &ev), BREAKER_PROBE);
	cr_assert_str_eq(ev.reason, "2 probes succeeded");
}

/* xorshift64*: the fuzz loop's own reproducible generator. */
static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* A value that is often at an edge. */
static uint64_t edgy(uint64_t *s)
{
	static const uint64_t edges[] = {
	    0,	  1,	 2,	  63,	      64,	 1000,
	    1024, 65535, 3600000, UINT32_MAX, INT64_MAX, UINT64_MAX};
	uint64_t r = next(s);

	switch (r % 4) {
	case 0:
		return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return (r >> 8) % 2000;
	case 2:
		return (r >> 8) % 1000000;
	default:
		return next(s);
	}
}

Test(breaker, corrupt_segment_never_breaks_it, .timeout = 60)
{
	static const char *const names[] = {"closed",	     "open",
					    "half_open",     "forced_open",
					    "forced_closed", "disabled"};
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct breaker *b = malloc(sizeof(*b)); /* exact size for ASan */
	int i, j, k;

	cr_assert_not_null(b);
	for (i = 0; i < 10000; i++) {
		struct breaker_config c;
		uint8_t *p = (uint8_t *)b;
		uint64_t now = edgy(&seed);

		for (k = 0; k < (int)sizeof(*b); k++)
			p[k] = (uint8_t)next(&seed);
		if (i % 3 == 0) { /* plausible small values, corrupt rest */
			b->state = (uint8_t)(next(&seed) % 4);
			b->forced = (uint8_t)(next(&seed) % 4);
			b->slot = now / 16 + next(&seed) % 130 - 65;
			b->probe_ms = now - next(&seed) % 5000;
			b->until_ms = now + next(&seed) % 5000;
		}
		c.mode = (enum breaker_mode)(next(&seed) % 4);
		c.failures = (uint32_t)edgy(&seed);
		c.failure_rate_ppm = (uint32_t)edgy(&seed);
		c.window_calls = next(&seed) % 2 ? (uint32_t)edgy(&seed) : 0;
		c.window_ms = edgy(&seed);
		c.min_calls = (uint32_t)edgy(&seed);
		c.slow_ms = edgy(&seed);
		c.slow_rate_ppm = (uint32_t)edgy(&seed);
		c.open_ms = edgy(&seed);
		c.open_max_ms = edgy(&seed);
		c.probes = (uint32_t)edgy(&seed);
		c.probe_timeout_ms = edgy(&seed);
		for (j = 0; j < 20; j++) {
			struct breaker_event ev;
			const char *name;
			size_t n;
			int v;

			now +=
			    next(&seed) % 3 ? next(&seed) % 3000 : edgy(&seed);
			if (next(&seed) % 50 == 0)
				breaker_force(b, (int)(next(&seed) % 4));
			v = breaker_allow(b, &c, now, &ev);
			cr_assert(v == BREAKER_ALLOW || v == BREAKER_PROBE ||
				  v == BREAKER_REJECT);
			cr_assert_lt(strnlen(ev.reason, sizeof(ev.reason)),
				     sizeof(ev.reason));
			breaker_record(b, &c, now, (int)(next(&seed) % 8),
				       next(&seed) % 2, (uint32_t)next(&seed),
				       &ev);
			cr_assert_lt(strnlen(ev.reason, sizeof(ev.reason)),
				     sizeof(ev.reason));
			cr_assert_leq(ev.to, BREAKER_HALF_OPEN);
			name = breaker_state_name(b, &c);
			for (n = 0; n < 6 && strcmp(name, names[n]); n++)
				;
			cr_assert_lt(n, 6, "state name %s", name);
			cr_assert_leq(breaker_current(b), BREAKER_HALF_OPEN);
			(void)breaker_consecutive(b);
			(void)breaker_since_ms(b);
			(void)breaker_until_ms(b);
			(void)breaker_period_ms(b);
		}
	}
	free(b);
}

Test(breaker, corrupt_open_period_does_not_last_forever)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	b.state = BREAKER_OPEN;
	b.until_ms = UINT64_MAX - 5;
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_REJECT);
	cr_assert_leq(breaker_until_ms(&b), 1000 + 8000 + 800 + 1);
	cr_assert_eq(breaker_allow(&b, &c, 1000 + 8801, NULL), BREAKER_PROBE);
}

Test(breaker, corrupt_probe_counts_are_clamped)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();

	c.probes = 2;
	b.state = BREAKER_HALF_OPEN;
	b.probes_admitted = 4000000000u;
	b.probes_ok = 1;
	b.probe_ms = 500;
	/* Two admitted, one finished, one out since 500: rejected. */
	cr_assert_eq(breaker_allow(&b, &c, 600, NULL), BREAKER_REJECT);
	cr_assert_eq(b.probes_admitted, 2);
	breaker_record(&b, &c, 700, 0, true, MID, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_CLOSED);
}

Test(breaker, null_event_is_fine)
{
	struct breaker b = {0};
	struct breaker_config c = on_config();
	int i;

	for (i = 0; i < 5; i++) {
		cr_assert_eq(breaker_allow(&b, &c, 0, NULL), BREAKER_ALLOW);
		breaker_record(&b, &c, 0, BREAKER_FAILURE, false, MID, NULL);
	}
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
	cr_assert_eq(breaker_allow(&b, &c, 1000, NULL), BREAKER_PROBE);
	breaker_record(&b, &c, 1000, BREAKER_FAILURE, true, MID, NULL);
	cr_assert_eq(breaker_current(&b), BREAKER_OPEN);
}

Test(breaker, corrupt_ring_indices_are_clamped)
{
	struct breaker *b = calloc(1, sizeof(*b)); /* exact size for ASan */
	struct breaker_config c = on_config();
	int i;

	cr_assert_not_null(b);
	c.failures = 0;
	c.failure_rate_ppm = 500000;
	c.window_calls = 1000;
	c.min_calls = 1000;
	b->win_calls = 1000;
	b->ring_count = 60000;
	b->ring_pos = 60000;
	memset(&b->win, 0xff, sizeof(b->win)); /* all failed */
	call(b, &c, 0, 0, NULL);
	cr_assert_eq(breaker_current(b), BREAKER_OPEN); /* 999 of 1000 */
	breaker_reset(b);
	b->win_calls = 1000;
	b->ring_count = 10;
	b->ring_pos = 65535;
	for (i = 0; i < 2000; i++)
		call(b, &c, 0, 0, NULL);
	cr_assert_eq(breaker_current(b), BREAKER_CLOSED);
	free(b);
}

/* breaker_quiet() is the lock-free admission of the shim: it may say yes
 * only where breaker_allow() would allow and leave the bytes unchanged. */
Test(breaker, quiet_only_where_allow_changes_nothing)
{
	struct breaker b = {0}, copy;
	struct breaker_config c = on_config();
	struct breaker_event ev;

	cr_assert(breaker_quiet(&b));
	memcpy(&copy, &b, sizeof b);
	cr_assert_eq(breaker_allow(&b, &c, 1000, &ev), BREAKER_ALLOW);
	cr_assert_eq(memcmp(&copy, &b, sizeof b), 0);

	/* closed with failures below the threshold: still quiet */
	breaker_record(&b, &c, 1000, BREAKER_FAILURE, false, MID, &ev);
	cr_assert(breaker_quiet(&b));
	memcpy(&copy, &b, sizeof b);
	cr_assert_eq(breaker_allow(&b, &c, 1001, &ev), BREAKER_ALLOW);
	cr_assert_eq(memcmp(&copy, &b, sizeof b), 0);

	/* open, half-open and forced are never quiet */
	trip(&b, &c, 2000);
	cr_assert_not(breaker_quiet(&b));
	cr_assert_eq(breaker_allow(&b, &c, 99999, &ev), BREAKER_PROBE);
	cr_assert_not(breaker_quiet(&b));
	breaker_reset(&b);
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_CLOSED), 0);
	cr_assert_not(breaker_quiet(&b));
	cr_assert_eq(breaker_force(&b, BREAKER_FORCE_NONE), 0);
	/* back to automatic owes a timestamp to the next call */
	cr_assert_not(breaker_quiet(&b));
	breaker_allow(&b, &c, 5000, &ev);
	cr_assert(breaker_quiet(&b));
}

/* breaker_shut(): a refusal without the lock only where breaker_allow()
 * would refuse and change nothing; each row agrees with it. */
Test(breaker, shut_refuses_only_what_allow_would)
{
	static const struct {
		const char *what;
		int mode;	/* BREAKER_MODE_* */
		bool trip;	/* open it at 1000 */
		uint64_t at;	/* asked at */
		int force;	/* BREAKER_FORCE_* or -1 */
		uint64_t until; /* written over until_ms when nonzero */
		bool shut;
	} t[] = {
	    {"closed", BREAKER_MODE_ON, false, 1500, -1, 0, false},
	    {"open, inside its period", BREAKER_MODE_ON, true, 1500, -1, 0,
	     true},
	    {"open, its period over", BREAKER_MODE_ON, true, 9000000, -1, 0,
	     false},
	    {"open, dry-run", BREAKER_MODE_DRY_RUN, true, 1500, -1, 0, false},
	    {"open, forced closed", BREAKER_MODE_ON, true, 1500,
	     BREAKER_FORCE_CLOSED, 0, false},
	    {"open, until far beyond open_max (corrupt)", BREAKER_MODE_ON, true,
	     1500, -1, 1ull << 50, false},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct breaker_config c = on_config();
		struct breaker b;
		struct breaker_event ev;

		breaker_reset(&b);
		if (t[i].trip)
			trip(&b, &c, 1000);
		c.mode = t[i].mode;
		if (t[i].force >= 0)
			breaker_force(&b, t[i].force);
		if (t[i].until)
			b.until_ms = t[i].until;
		cr_expect_eq(breaker_shut(&b, &c, t[i].at), t[i].shut, "%s",
			     t[i].what);
		if (t[i].shut)
			cr_expect_eq(breaker_allow(&b, &c, t[i].at, &ev),
				     BREAKER_REJECT, "%s: allow disagrees",
				     t[i].what);
	}
}
