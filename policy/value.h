/* SPDX-License-Identifier: MIT */
/* Value parsers of the policy language (durations, shares, rates). */
#ifndef FUSEBOX_VALUE_H
#define FUSEBOX_VALUE_H

#include <stdint.h>

/* Each returns 0, -EINVAL (malformed), -ENOENT (a unit is missing) or
 * -ERANGE, and leaves *out alone on error. */
int value_duration(const char *s, uint64_t *ms);
int value_percent(const char *s, uint32_t *ppm);
int value_rate(const char *s, uint64_t *mps);
int value_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int value_bool(const char *s);

#endif
