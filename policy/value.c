/* SPDX-License-Identifier: MIT */
/* Value parsers of the policy language: durations, shares, rates, counts.
 * Each returns 0, -EINVAL (malformed) or -ERANGE, and writes nothing on
 * error. */
#include "value.h"
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rounds a non-negative value to the nearest whole number, halves up; no
 * libm, so that libpolicy.a links without -lm (the shim, the fuzzer). */
static uint64_t round_half_up(double v)
{
	return (uint64_t)(v + 0.5);
}

/* Parses a non-negative decimal ("12", "1.5") prefix of s; 0 or -EINVAL. */
static int parse_decimal(const char *s, double *out, const char **end)
{
	const char *p = s;
	double v = 0, scale = 0.1;
	int digits = 0;

	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			v += (*p++ - '0') * scale;
			scale /= 10;
			digits++;
		}
	}
	if (!digits || v > 1e15)
		return -EINVAL;
	*out = v;
	*end = p;
	return 0;
}

/* Parses a duration such as "250ms", "1.5s", "1m", "1h" or a bare "0" into
 * milliseconds; -EINVAL names no unit, so callers say which ones exist. */
int value_duration(const char *s, uint64_t *ms)
{
	double v, mul;
	const char *u;
	uint64_t r;

	if (parse_decimal(s, &v, &u) < 0)
		return -EINVAL;
	if (!strcmp(u, "ms"))
		mul = 1;
	else if (!strcmp(u, "s"))
		mul = 1000;
	else if (!strcmp(u, "m"))
		mul = 60000;
	else if (!strcmp(u, "h"))
		mul = 3600000;
	else if (!*u && v == 0)
		mul = 0;
	else
		return *u ? -EINVAL
			  : -ENOENT; /* -ENOENT: the unit is missing */
	v *= mul;
	if (v > 7 * 24 * 3600000.0)
		return -ERANGE;
	r = round_half_up(v);
	if (v > 0 && r == 0)
		return -ERANGE; /* below a millisecond */
	*ms = r;
	return 0;
}

/* Parses a share "10%", "0.5%" into parts per million (0..1,000,000). */
int value_percent(const char *s, uint32_t *ppm)
{
	double v;
	const char *u;

	if (parse_decimal(s, &v, &u) < 0)
		return -EINVAL;
	if (!*u)
		return -ENOENT;
	if (strcmp(u, "%"))
		return -EINVAL;
	if (v > 100)
		return -ERANGE;
	*ppm = (uint32_t)round_half_up(v * 10000);
	return 0;
}

/* Parses a rate "100/s" or "600/m" into milli-events per second. */
int value_rate(const char *s, uint64_t *mps)
{
	double v;
	const char *u;
	uint64_t r;

	if (parse_decimal(s, &v, &u) < 0)
		return -EINVAL;
	if (!*u)
		return -ENOENT;
	if (!strcmp(u, "/s"))
		v *= 1000;
	else if (!strcmp(u, "/m"))
		v = v * 1000 / 60;
	else
		return -EINVAL;
	if (v > 1e12)
		return -ERANGE;
	r = round_half_up(v);
	if (v > 0 && r == 0)
		return -ERANGE;
	*mps = r;
	return 0;
}

/* Parses a whole decimal number within lo..hi. */
int value_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Parses on/off style switches, in any case; 1, 0 or -EINVAL. */
int value_bool(const char *s)
{
	if (!strcasecmp(s, "on") || !strcasecmp(s, "yes") ||
	    !strcasecmp(s, "true"))
		return 1;
	if (!strcasecmp(s, "off") || !strcasecmp(s, "no") ||
	    !strcasecmp(s, "false"))
		return 0;
	return -EINVAL;
}

/* Parses a duration ("250ms", "1.5s", "0") into milliseconds; 0, -EINVAL
 * (malformed or without a unit) or -ERANGE. */
int policy_parse_duration(const char *v, uint64_t *ms)
{
	int r = value_duration(v, ms);

	return r == -ENOENT ? -EINVAL : r;
}
