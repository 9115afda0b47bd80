/* SPDX-License-Identifier: MIT */
/* Unit tests of the value parsers of the policy language: durations with
 * their units, percentages, rates, counts and switches. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "policy/policy.h"
#include "policy/value.h"

/* Parses s as a duration and returns the milliseconds, failing the test
 * when it does not parse. */
static uint64_t ms_of(const char *s)
{
	uint64_t ms = 12345;
	int r = value_duration(s, &ms);

	cr_assert_eq(r, 0, "value_duration(\"%s\") returned %d", s, r);
	return ms;
}

Test(value, duration_milliseconds)
{
	cr_assert_eq(ms_of("250ms"), 250);
	cr_assert_eq(ms_of("1ms"), 1);
	cr_assert_eq(ms_of("0ms"), 0);
}

Test(value, duration_seconds)
{
	cr_assert_eq(ms_of("2s"), 2000);
	cr_assert_eq(ms_of("30s"), 30000);
}

Test(value, duration_minutes_and_hours)
{
	cr_assert_eq(ms_of("1m"), 60000);
	cr_assert_eq(ms_of("5m"), 300000);
	cr_assert_eq(ms_of("1h"), 3600000);
	cr_assert_eq(ms_of("168h"), 168ull * 3600000);
}

Test(value, duration_decimals)
{
	cr_assert_eq(ms_of("1.5s"), 1500);
	cr_assert_eq(ms_of("0.25s"), 250);
	cr_assert_eq(ms_of(".5s"), 500);
	cr_assert_eq(ms_of("1.5m"), 90000);
	cr_assert_eq(ms_of("0.5h"), 1800000);
	cr_assert_eq(ms_of("2.5ms"), 3); /* rounded to the millisecond */
}

Test(value, duration_bare_zero_is_allowed)
{
	cr_assert_eq(ms_of("0"), 0);
	cr_assert_eq(ms_of("0.0"), 0);
}

Test(value, duration_bare_number_misses_its_unit)
{
	uint64_t ms = 77;

	cr_assert_eq(value_duration("250", &ms), -ENOENT);
	cr_assert_eq(value_duration("1.5", &ms), -ENOENT);
	cr_assert_eq(ms, 77, "output written on error");
}

Test(value, duration_rejects_malformed)
{
	static const char *const bad[] = {"",	  "s",	  "5x",	  "5 s", "-1s",
					  "1e3s", "5sec", "ms5",  "5S",	 "1,5s",
					  "none", "5ms ", "0x10s"};
	uint64_t ms = 77;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = value_duration(bad[i], &ms);
		cr_assert_eq(r, -EINVAL, "'%s' gave %d", bad[i], r);
	}
	cr_assert_eq(ms, 77, "output written on error");
}

Test(value, duration_range_is_1ms_to_7_days)
{
	uint64_t ms = 77;

	cr_assert_eq(value_duration("169h", &ms), -ERANGE);
	cr_assert_eq(value_duration("604800001ms", &ms), -ERANGE);
	cr_assert_eq(value_duration("0.1ms", &ms), -ERANGE);
	cr_assert_eq(value_duration("0.0001s", &ms), -ERANGE);
	cr_assert_eq(ms, 77);
	cr_assert_eq(ms_of("604800000ms"), 604800000);
}

Test(value, policy_parse_duration_reports_missing_unit_as_einval)
{
	static const struct {
		const char *s;
		int r;
		uint64_t ms; /* when r is 0 */
	} t[] = {
	    {"1.5s", 0, 1500}, {"0", 0, 0},	     {"15", -EINVAL, 0},
	    {"x", -EINVAL, 0}, {"200h", -ERANGE, 0},
	};
	uint64_t ms = 0;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = policy_parse_duration(t[i].s, &ms);

		cr_assert_eq(r, t[i].r, "'%s' gave %d", t[i].s, r);
		if (r == 0)
			cr_assert_eq(ms, t[i].ms, "'%s'", t[i].s);
	}
}

Test(value, percent_whole_and_decimal)
{
	static const struct {
		const char *s;
		uint32_t ppm;
	} t[] = {
	    {"20%", 200000}, {"0%", 0},		 {"100%", 1000000},
	    {"0.5%", 5000},  {"12.25%", 122500}, {"0.0001%", 1},
	};
	uint32_t ppm = 1;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		cr_assert_eq(value_percent(t[i].s, &ppm), 0, "'%s'", t[i].s);
		cr_assert_eq(ppm, t[i].ppm, "'%s'", t[i].s);
	}
}

Test(value, percent_needs_sign_and_range)
{
	static const struct {
		const char *s;
		int r;
	} t[] = {
	    {"20", -ENOENT},   {"20 %", -EINVAL}, {"20%%", -EINVAL},
	    {"%", -EINVAL},    {"-5%", -EINVAL},  {"100.1%", -ERANGE},
	    {"250%", -ERANGE},
	};
	uint32_t ppm = 9;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = value_percent(t[i].s, &ppm);

		cr_assert_eq(r, t[i].r, "'%s' gave %d", t[i].s, r);
	}
	cr_assert_eq(ppm, 9, "output written on error");
}

Test(value, rate_per_second_and_minute)
{
	static const struct {
		const char *s;
		uint64_t mps;
	} t[] = {
	    {"100/s", 100000},
	    /* 600/m is 10/s */
	    {"600/m", 10000},
	    {"0/s", 0},
	    {"0.5/s", 500},
	    {"30/m", 500},
	};
	uint64_t mps = 1;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		cr_assert_eq(value_rate(t[i].s, &mps), 0, "'%s'", t[i].s);
		cr_assert_eq(mps, t[i].mps, "'%s'", t[i].s);
	}
}

Test(value, rate_needs_unit)
{
	static const struct {
		const char *s;
		int r;
	} t[] = {
	    {"100", -ENOENT}, {"100/h", -EINVAL},    {"100s", -EINVAL},
	    {"/s", -EINVAL},  {"0.0001/s", -ERANGE},
	};
	uint64_t mps = 3;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = value_rate(t[i].s, &mps);

		cr_assert_eq(r, t[i].r, "'%s' gave %d", t[i].s, r);
	}
	cr_assert_eq(mps, 3, "output written on error");
}

Test(value, count_within_bounds)
{
	/* the successes first: the last of them leaves v at 10 */
	static const struct {
		const char *s;
		uint64_t lo, hi;
		int r;
		uint64_t v; /* when r is 0 */
	} t[] = {
	    {"0", 0, 10, 0, 0},
	    {"10", 0, 10, 0, 10},
	    {"11", 0, 10, -ERANGE, 0},
	    {"0", 1, 10, -ERANGE, 0},
	    {"99999999999999999999999", 0, 10, -ERANGE, 0},
	    {"", 0, 10, -EINVAL, 0},
	    {"1.5", 0, 10, -EINVAL, 0},
	    {"-1", 0, 10, -EINVAL, 0},
	    {"5s", 0, 10, -EINVAL, 0},
	};
	uint64_t v = 99;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = value_count(t[i].s, t[i].lo, t[i].hi, &v);

		cr_assert_eq(r, t[i].r, "'%s' gave %d", t[i].s, r);
		if (r == 0)
			cr_assert_eq(v, t[i].v, "'%s'", t[i].s);
	}
	cr_assert_eq(v, 10, "output written on error");
}

/* Checks that value_bool() gives want for each of the n words. */
static void expect_bool(const char *const *words, size_t n, int want)
{
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(value_bool(words[i]), want, "'%s'", words[i]);
}

Test(value, bool_words)
{
	static const char *const on[] = {"on", "yes", "true"};
	static const char *const off[] = {"off", "no", "false"};
	static const char *const bad[] = {"maybe", "", "o", "onn"};

	expect_bool(on, sizeof on / sizeof on[0], 1);
	expect_bool(off, sizeof off / sizeof off[0], 0);
	expect_bool(bad, sizeof bad / sizeof bad[0], -EINVAL);
}

Test(value, bool_words_in_any_case)
{
	static const char *const on[] = {"ON", "Yes", "TRUE"};
	static const char *const off[] = {"Off", "NO", "False"};

	expect_bool(on, sizeof on / sizeof on[0], 1);
	expect_bool(off, sizeof off / sizeof off[0], 0);
}
