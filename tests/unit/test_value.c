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
	uint64_t ms = 0;

	cr_assert_eq(policy_parse_duration("1.5s", &ms), 0);
	cr_assert_eq(ms, 1500);
	cr_assert_eq(policy_parse_duration("0", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(policy_parse_duration("15", &ms), -EINVAL);
	cr_assert_eq(policy_parse_duration("x", &ms), -EINVAL);
	cr_assert_eq(policy_parse_duration("200h", &ms), -ERANGE);
}

Test(value, percent_whole_and_decimal)
{
	uint32_t ppm = 1;

	cr_assert_eq(value_percent("20%", &ppm), 0);
	cr_assert_eq(ppm, 200000);
	cr_assert_eq(value_percent("0%", &ppm), 0);
	cr_assert_eq(ppm, 0);
	cr_assert_eq(value_percent("100%", &ppm), 0);
	cr_assert_eq(ppm, 1000000);
	cr_assert_eq(value_percent("0.5%", &ppm), 0);
	cr_assert_eq(ppm, 5000);
	cr_assert_eq(value_percent("12.25%", &ppm), 0);
	cr_assert_eq(ppm, 122500);
	cr_assert_eq(value_percent("0.0001%", &ppm), 0);
	cr_assert_eq(ppm, 1);
}

Test(value, percent_needs_sign_and_range)
{
	uint32_t ppm = 9;

	cr_assert_eq(value_percent("20", &ppm), -ENOENT);
	cr_assert_eq(value_percent("20 %", &ppm), -EINVAL);
	cr_assert_eq(value_percent("20%%", &ppm), -EINVAL);
	cr_assert_eq(value_percent("%", &ppm), -EINVAL);
	cr_assert_eq(value_percent("-5%", &ppm), -EINVAL);
	cr_assert_eq(value_percent("100.1%", &ppm), -ERANGE);
	cr_assert_eq(value_percent("250%", &ppm), -ERANGE);
	cr_assert_eq(ppm, 9, "output written on error");
}

Test(value, rate_per_second_and_minute)
{
	uint64_t mps = 1;

	cr_assert_eq(value_rate("100/s", &mps), 0);
	cr_assert_eq(mps, 100000);
	cr_assert_eq(value_rate("600/m", &mps), 0);
	cr_assert_eq(mps, 10000, "600/m is 10/s");
	cr_assert_eq(value_rate("0/s", &mps), 0);
	cr_assert_eq(mps, 0);
	cr_assert_eq(value_rate("0.5/s", &mps), 0);
	cr_assert_eq(mps, 500);
	cr_assert_eq(value_rate("30/m", &mps), 0);
	cr_assert_eq(mps, 500);
}

Test(value, rate_needs_unit)
{
	uint64_t mps = 3;

	cr_assert_eq(value_rate("100", &mps), -ENOENT);
	cr_assert_eq(value_rate("100/h", &mps), -EINVAL);
	cr_assert_eq(value_rate("100s", &mps), -EINVAL);
	cr_assert_eq(value_rate("/s", &mps), -EINVAL);
	cr_assert_eq(value_rate("0.0001/s", &mps), -ERANGE);
	cr_assert_eq(mps, 3, "output written on error");
}

Test(value, count_within_bounds)
{
	uint64_t v = 99;

	cr_assert_eq(value_count("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(value_count("10", 0, 10, &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(value_count("11", 0, 10, &v), -ERANGE);
	cr_assert_eq(value_count("0", 1, 10, &v), -ERANGE);
	cr_assert_eq(value_count("99999999999999999999999", 0, 10, &v),
		     -ERANGE);
	cr_assert_eq(value_count("", 0, 10, &v), -EINVAL);
	cr_assert_eq(value_count("1.5", 0, 10, &v), -EINVAL);
	cr_assert_eq(value_count("-1", 0, 10, &v), -EINVAL);
	cr_assert_eq(value_count("5s", 0, 10, &v), -EINVAL);
	cr_assert_eq(v, 10, "output written on error");
}

Test(value, bool_words)
{
	cr_assert_eq(value_bool("on"), 1);
	cr_assert_eq(value_bool("yes"), 1);
	cr_assert_eq(value_bool("true"), 1);
	cr_assert_eq(value_bool("off"), 0);
	cr_assert_eq(value_bool("no"), 0);
	cr_assert_eq(value_bool("false"), 0);
	cr_assert_eq(value_bool("maybe"), -EINVAL);
	cr_assert_eq(value_bool(""), -EINVAL);
	cr_assert_eq(value_bool("o"), -EINVAL);
	cr_assert_eq(value_bool("onn"), -EINVAL);
}

Test(value, bool_words_in_any_case)
{
	cr_assert_eq(value_bool("ON"), 1);
	cr_assert_eq(value_bool("Yes"), 1);
	cr_assert_eq(value_bool("TRUE"), 1);
	cr_assert_eq(value_bool("Off"), 0);
	cr_assert_eq(value_bool("NO"), 0);
	cr_assert_eq(value_bool("False"), 0);
}
