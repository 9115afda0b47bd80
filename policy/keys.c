/* SPDX-License-Identifier: MIT */
/* The key table of a rule section: the name, kind, field and range of
 * each key, how a value is parsed into struct policy_settings (with a
 * message saying how to fix a bad one) and formatted back. */
#include "policy_int.h"
#include "value.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum vkind {
	V_DURATION, /* ms; 0 allowed, "none" is not */
	V_TIMEOUT,  /* like V_DURATION, 0/none = no timeout */
	V_COUNT,    /* max_connections, rate_burst: "none" is 0 */
	V_PERCENT,
	V_RATE,
	V_SPECIAL, /* parsed by apply_special() */
};

struct keydef {
	const char *name;
	enum vkind kind;
	size_t off; /* of the field in struct policy_settings */
	uint64_t lo, hi;
	const char *help;
};

#define OFF(f) offsetof(struct policy_settings, f)

static const struct keydef keys[POLICY_KEY_COUNT] = {
    [POLICY_KEY_CONNECT_TIMEOUT] = {"connect_timeout", V_TIMEOUT,
				    OFF(connect_timeout_ms), 0, 0,
				    "longest a connect may take"},
    [POLICY_KEY_RESPONSE_TIMEOUT] = {"response_timeout", V_TIMEOUT,
				     OFF(response_timeout_ms), 0, 0,
				     "first reply byte within"},
    [POLICY_KEY_IDLE_TIMEOUT] = {"idle_timeout", V_TIMEOUT,
				 OFF(idle_timeout_ms), 0, 0,
				 "abort after this long idle"},
    [POLICY_KEY_SEND_TIMEOUT] = {"send_timeout", V_TIMEOUT,
				 OFF(send_timeout_ms), 0, 0,
				 "a stalled send fails after"},
    [POLICY_KEY_HANDSHAKE_TIMEOUT] = {"handshake_timeout", V_TIMEOUT,
				      OFF(handshake_timeout_ms), 0, 0,
				      "TLS handshake done within"},
    [POLICY_KEY_RETRIES] = {"retries", V_COUNT, OFF(retries), 0, 10,
			    "extra connect attempts"},
    [POLICY_KEY_RETRY_METHODS] = {"retry_methods", V_SPECIAL,
				  OFF(retry_methods), 0, 0,
				  "methods a failure may replay"},
    [POLICY_KEY_REPLAY_BUFFER] = {"replay_buffer", V_COUNT, OFF(replay_buffer),
				  0, 1048576, "bytes of a request kept"},
    [POLICY_KEY_RETRY_ON] = {"retry_on", V_SPECIAL, OFF(retry_on), 0, 0,
			     "connect failures retried"},
    [POLICY_KEY_RETRY_BACKOFF] = {"retry_backoff", V_DURATION,
				  OFF(retry_backoff_ms), 0, 0,
				  "base retry delay"},
    [POLICY_KEY_RETRY_BACKOFF_MAX] = {"retry_backoff_max", V_DURATION,
				      OFF(retry_backoff_max_ms), 0, 0,
				      "cap of one retry delay"},
    [POLICY_KEY_RETRY_BUDGET] = {"retry_budget", V_PERCENT,
				 OFF(retry_budget_ppm), 0, 0,
				 "retries per first attempts"},
    [POLICY_KEY_RETRY_BUDGET_MIN] = {"retry_budget_min", V_RATE,
				     OFF(retry_budget_min_mps), 0, 0,
				     "retries/s on top"},
    [POLICY_KEY_FAILOVER] = {"failover", V_SPECIAL, OFF(failover), 0, 0,
			     "retry other resolved addresses"},
    [POLICY_KEY_BREAKER] = {"breaker", V_SPECIAL, OFF(breaker), 0, 0,
			    "on, off or dry-run"},
    [POLICY_KEY_BREAKER_FAILURES] = {"breaker_failures", V_COUNT,
				     OFF(breaker_failures), 1, 1000,
				     "consecutive failures to open"},
    [POLICY_KEY_BREAKER_FAILURE_RATE] = {"breaker_failure_rate", V_PERCENT,
					 OFF(breaker_failure_rate_ppm), 0, 0,
					 "failure share to open"},
    [POLICY_KEY_BREAKER_WINDOW] = {"breaker_window", V_SPECIAL,
				   OFF(breaker_window_calls), 0, 0,
				   "last N calls or duration"},
    [POLICY_KEY_BREAKER_MIN_CALLS] = {"breaker_min_calls", V_COUNT,
				      OFF(breaker_min_calls), 1, 10000,
				      "calls before rates count"},
    [POLICY_KEY_BREAKER_SLOW] = {"breaker_slow", V_TIMEOUT,
				 OFF(breaker_slow_ms), 0, 0,
				 "a call slower than this is slow"},
    [POLICY_KEY_BREAKER_SLOW_RATE] = {"breaker_slow_rate", V_PERCENT,
				      OFF(breaker_slow_rate_ppm), 0, 0,
				      "slow share to open"},
    [POLICY_KEY_BREAKER_OPEN] = {"breaker_open", V_DURATION,
				 OFF(breaker_open_ms), 0, 0,
				 "first open period"},
    [POLICY_KEY_BREAKER_OPEN_MAX] = {"breaker_open_max", V_DURATION,
				     OFF(breaker_open_max_ms), 0, 0,
				     "longest open period"},
    [POLICY_KEY_BREAKER_PROBES] = {"breaker_probes", V_COUNT,
				   OFF(breaker_probes), 1, 100,
				   "half-open trial calls"},
    [POLICY_KEY_BREAKER_SCOPE] = {"breaker_scope", V_SPECIAL,
				  OFF(breaker_scope), 0, 0, "address or rule"},
    [POLICY_KEY_MAX_CONNECTIONS] = {"max_connections", V_COUNT,
				    OFF(max_connections), 1, 1000000,
				    "open connections, all hosts"},
    [POLICY_KEY_MAX_PENDING] = {"max_pending", V_COUNT, OFF(max_pending), 0,
				10000, "connects that may wait"},
    [POLICY_KEY_QUEUE_TIMEOUT] = {"queue_timeout", V_DURATION,
				  OFF(queue_timeout_ms), 0, 0,
				  "longest wait for a slot"},
    [POLICY_KEY_RATE] = {"rate", V_RATE, OFF(rate_mps), 0, 0,
			 "new connections per s or m"},
    [POLICY_KEY_RATE_BURST] = {"rate_burst", V_COUNT, OFF(rate_burst), 1,
			       1000000, "token bucket size"},
    [POLICY_KEY_REJECT_ERRNO] = {"reject_errno", V_SPECIAL, OFF(reject_errno),
				 0, 0, "errno of refused connects"},
    [POLICY_KEY_CLASSIFY] = {"classify", V_SPECIAL, OFF(classify), 0, 0,
			     "tcp, http (5xx fails) or grpc"},
    [POLICY_KEY_GRPC_FAIL_ON] = {"grpc_fail_on", V_SPECIAL, OFF(grpc_fail_on),
				 0, 0, "gRPC statuses that fail"},
    [POLICY_KEY_FAULT_ABORT] = {"fault_abort", V_PERCENT, OFF(fault_abort_ppm),
				0, 0, "chaos: refuse this share"},
    [POLICY_KEY_FAULT_DELAY] = {"fault_delay", V_SPECIAL, OFF(fault_delay_ms),
				0, 0, "chaos: DURATION@SHARE"},
};

static const struct {
	const char *name;
	int value;
} errnos[] = {
    {"ECONNREFUSED", ECONNREFUSED},
    {"ECONNRESET", ECONNRESET},
    {"ETIMEDOUT", ETIMEDOUT},
    {"EHOSTUNREACH", EHOSTUNREACH},
    {"EAGAIN", EAGAIN},
};

static void format_ms(uint64_t ms, char *buf, size_t len);

/* Name of a key as written in the file. */
const char *policy_key_name(enum policy_key k)
{
	return (unsigned)k < POLICY_KEY_COUNT ? keys[k].name : "?";
}

/* Index of a rule key by name, or -1. */
int keys_index(const char *name)
{
	for (int i = 0; i < POLICY_KEY_COUNT; i++)
		if (!strcmp(keys[i].name, name))
			return i;
	return -1;
}

static const char *const method_names[POLICY_METHODS] = {
    "GET",     "HEAD",	  "POST",  "PUT",  "DELETE",
    "CONNECT", "OPTIONS", "TRACE", "PATCH"};

int policy_method_of(const char *p, size_t n)
{
	for (int m = 0; m < POLICY_METHODS; m++)
		if (strlen(method_names[m]) == n &&
		    !memcmp(p, method_names[m], n))
			return m;
	return -1;
}

const char *policy_grpc_code_name(unsigned c)
{
	static const char *const names[POLICY_GRPC_CODES] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED"};

	return c < POLICY_GRPC_CODES ? names[c] : NULL;
}

/* Parses the value of a V_SPECIAL key into s; 0 or an error message. */
static const char *apply_special(struct policy_settings *s, enum policy_key k,
				 const char *v, char *buf, size_t len)
{
	int b;

	switch (k) {
	case POLICY_KEY_RETRY_ON: {
		uint32_t bits = 0;
		char word[32];
		const char *p = v;
		while (*p) {
			size_t n = strcspn(p, " ,\t");
			if (n) {
				if (n >= sizeof word)
					n = sizeof word - 1;
				memcpy(word, p, n);
				word[n] = 0;
				if (!strcmp(word, "refused"))
					bits |= POLICY_RETRY_REFUSED;
				else if (!strcmp(word, "timeout"))
					bits |= POLICY_RETRY_TIMEOUT;
				else if (!strcmp(word, "unreachable"))
					bits |= POLICY_RETRY_UNREACHABLE;
				else if (!strcmp(word, "reset"))
					bits |= POLICY_RETRY_RESET;
				else if (!strcmp(word, "empty"))
					bits |= POLICY_RETRY_EMPTY;
				else if (!strcmp(word, "response-timeout"))
					bits |= POLICY_RETRY_RESPONSE_TIMEOUT;
				else if (!strcmp(word, "5xx"))
					bits |= POLICY_RETRY_5XX;
				else if (!strcmp(word, "gateway-error"))
					bits |= POLICY_RETRY_GATEWAY;
				else if (!strcmp(word, "none"))
					;
				else {
					snprintf(
					    buf, len,
					    "'%s' is not a failure; use "
					    "refused, timeout, unreachable,"
					    " reset, empty, response-timeout,"
					    " 5xx, gateway-error or none",
					    word);
					return buf;
				}
				p += n;
			} else {
				p++;
			}
		}
		s->retry_on = bits;
		return NULL;
	}
	case POLICY_KEY_RETRY_METHODS: {
		uint32_t bits = 0;
		const char *p = v;

		while (*p) {
			size_t n = strcspn(p, " \t,");
			int m;

			if (!n) {
				p++;
				continue;
			}
			if (n == 4 && !strncmp(p, "none", 4)) {
				p += n;
				continue;
			}
			m = policy_method_of(p, n);
			if (m < 0) {
				snprintf(buf, len,
					 "'%.*s' is not a method; use GET, "
					 "HEAD, POST, PUT, DELETE, CONNECT, "
					 "OPTIONS, TRACE, PATCH or none",
					 (int)(n < 32 ? n : 32), p);
				return buf;
			}
			bits |= 1u << m;
			p += n;
		}
		s->retry_methods = bits;
		return NULL;
	}
	case POLICY_KEY_FAILOVER:
		if ((b = value_bool(v)) < 0)
			return "use on or off (yes/no, true/false)";
		s->failover = b;
		return NULL;
	case POLICY_KEY_BREAKER:
		if (!strcasecmp(v, "dry-run"))
			s->breaker = POLICY_BREAKER_DRY_RUN;
		else if ((b = value_bool(v)) >= 0)
			s->breaker = b ? POLICY_BREAKER_ON : POLICY_BREAKER_OFF;
		else {
			snprintf(buf, len,
				 "'%s' is not one of on, off, dry-run", v);
			return buf;
		}
		return NULL;
	case POLICY_KEY_BREAKER_WINDOW: {
		uint64_t n;
		int r = value_count(v, 1, 1000, &n);
		if (r == 0) {
			s->breaker_window_calls = (uint32_t)n;
			s->breaker_window_ms = 0;
			return NULL;
		}
		if (r == -ERANGE)
			return "a window of calls holds 1 to 1000 calls";
		r = value_duration(v, &n);
		if (r == 0 && n >= 1000 && n <= 3600000) {
			s->breaker_window_ms = n;
			s->breaker_window_calls = 0;
			return NULL;
		}
		if (r == 0 || r == -ERANGE)
			return "a window of time lasts 1s to 1h";
		snprintf(buf, len,
			 "'%s' is neither a number of calls (20) nor a "
			 "duration (30s)",
			 v);
		return buf;
	}
	case POLICY_KEY_BREAKER_SCOPE:
		if (!strcmp(v, "address"))
			s->breaker_scope = POLICY_SCOPE_ADDRESS;
		else if (!strcmp(v, "rule"))
			s->breaker_scope = POLICY_SCOPE_RULE;
		else {
			snprintf(buf, len, "'%s' is not address or rule", v);
			return buf;
		}
		return NULL;
	case POLICY_KEY_REJECT_ERRNO:
		for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
			if (!strcasecmp(v, errnos[i].name)) {
				s->reject_errno = errnos[i].value;
				return NULL;
			}
		snprintf(buf, len,
			 "'%s' is not one of ECONNREFUSED, ECONNRESET, "
			 "ETIMEDOUT, EHOSTUNREACH, EAGAIN",
			 v);
		return buf;
	case POLICY_KEY_CLASSIFY:
		if (!strcmp(v, "tcp"))
			s->classify = POLICY_CLASSIFY_TCP;
		else if (!strcmp(v, "http"))
			s->classify = POLICY_CLASSIFY_HTTP;
		else if (!strcmp(v, "grpc"))
			s->classify = POLICY_CLASSIFY_GRPC;
		else {
			snprintf(buf, len, "'%s' is not tcp, http or grpc", v);
			return buf;
		}
		return NULL;
	case POLICY_KEY_GRPC_FAIL_ON: {
		uint32_t bits = 0;
		const char *p = v;

		while (*p) {
			size_t n = strcspn(p, " \t,");
			char word[32];
			unsigned c;

			if (!n) {
				p++;
				continue;
			}
			if (n >= sizeof word)
				n = sizeof word - 1;
			memcpy(word, p, n);
			word[n] = 0;
			p += n;
			if (!strcmp(word, "none"))
				continue;
			for (c = 0; c < POLICY_GRPC_CODES; c++)
				if (!strcasecmp(word, policy_grpc_code_name(c)))
					break;
			if (c == POLICY_GRPC_CODES) {
				char *end;
				unsigned long u = strtoul(word, &end, 10);
				if (*end || end == word ||
				    u >= POLICY_GRPC_CODES) {
					snprintf(
					    buf, len,
					    "'%s' is not a gRPC status; use "
					    "names such as UNAVAILABLE or "
					    "codes 0 to 16",
					    word);
					return buf;
				}
				c = (unsigned)u;
			}
			bits |= 1u << c;
		}
		s->grpc_fail_on = bits;
		return NULL;
	}
	case POLICY_KEY_FAULT_DELAY: {
		const char *at = strchr(v, '@');
		char d[64];
		uint64_t ms;
		uint32_t ppm = POLICY_PPM;
		size_t n = at ? (size_t)(at - v) : strlen(v);

		if (!strcmp(v, "none") || !strcmp(v, "0")) {
			s->fault_delay_ms = 0;
			s->fault_delay_ppm = 0;
			return NULL;
		}
		if (n >= sizeof d)
			return "use DURATION@SHARE, e.g. 200ms@25%";
		memcpy(d, v, n);
		d[n] = 0;
		if (value_duration(d, &ms) < 0 || ms == 0)
			return "use DURATION@SHARE, e.g. 200ms@25% (units: ms, "
			       "s, m, h)";
		if (at && value_percent(at + 1, &ppm) < 0)
			return "the share after @ is a percentage from 0% to "
			       "100%, e.g. 200ms@25%";
		s->fault_delay_ms = ms;
		s->fault_delay_ppm = ppm;
		return NULL;
	}
	default:
		return "internal: not a special key";
	}
}

/* True for the counts that also take "none": max_connections (no limit)
 * and rate_burst (back to the rate per second). */
static bool optional_count(enum policy_key k)
{
	return k == POLICY_KEY_MAX_CONNECTIONS || k == POLICY_KEY_RATE_BURST;
}

/* Parses v for key k into s; NULL, or a message saying how to fix it. */
const char *keys_apply(struct policy_settings *s, enum policy_key k,
		       const char *v, char *buf, size_t len)
{
	const struct keydef *d = &keys[k];
	char *field = (char *)s + d->off;
	uint64_t u64;
	uint32_t u32;
	int r;

	switch (d->kind) {
	case V_TIMEOUT:
	case V_DURATION:
		if (d->kind == V_TIMEOUT && !strcmp(v, "none")) {
			memset(field, 0, sizeof(uint64_t));
			return NULL;
		}
		if (!strcmp(v, "none")) {
			struct policy_settings def;
			char ex[32];

			policy_settings_init(&def);
			memcpy(&u64, (char *)&def + d->off, sizeof u64);
			format_ms(u64, ex, sizeof ex);
			snprintf(buf, len,
				 "'none' is not allowed; %s needs a duration "
				 "(the default is %s)",
				 d->name, ex);
			return buf;
		}
		r = value_duration(v, &u64);
		if (r == -ENOENT) {
			snprintf(buf, len,
				 "'%s' needs a unit: ms, s, m or h (e.g. "
				 "%sms or %ss)",
				 v, v, v);
			return buf;
		}
		if (r == -ERANGE)
			return "out of range; use 1ms to 7 days (168h)";
		if (r < 0) {
			snprintf(buf, len,
				 "'%s' is not a duration; write a number and "
				 "a unit: ms, s, m or h (e.g. 500ms, 1.5s)",
				 v);
			return buf;
		}
		memcpy(field, &u64, sizeof u64);
		return NULL;
	case V_COUNT:
		if (optional_count(k) && !strcmp(v, "none")) {
			memset(field, 0, sizeof(uint32_t));
			return NULL;
		}
		r = value_count(v, d->lo, d->hi, &u64);
		if (r == -ERANGE) {
			snprintf(buf, len,
				 "%s is out of range; use %llu to "
				 "%llu%s",
				 v, (unsigned long long)d->lo,
				 (unsigned long long)d->hi,
				 optional_count(k) ? ", or none" : "");
			return buf;
		}
		if (r < 0) {
			snprintf(buf, len,
				 "'%s' is not a whole number; use "
				 "%llu to %llu%s",
				 v, (unsigned long long)d->lo,
				 (unsigned long long)d->hi,
				 optional_count(k) ? ", or none" : "");
			return buf;
		}
		u32 = (uint32_t)u64;
		memcpy(field, &u32, sizeof u32);
		return NULL;
	case V_PERCENT:
		if (!strcmp(v, "none")) {
			memset(field, 0, sizeof(uint32_t));
			return NULL;
		}
		r = value_percent(v, &u32);
		if (r == -ENOENT) {
			snprintf(buf, len, "'%s' needs a %% sign (e.g. %s%%)",
				 v, v);
			return buf;
		}
		if (r < 0) {
			snprintf(buf, len,
				 "'%s' is not a percentage; use 0%% "
				 "to 100%% (e.g. 20%%)",
				 v);
			return buf;
		}
		memcpy(field, &u32, sizeof u32);
		return NULL;
	case V_RATE:
		if (!strcmp(v, "none") && k == POLICY_KEY_RATE) {
			memset(field, 0, sizeof(uint64_t));
			return NULL;
		}
		r = value_rate(v, &u64);
		if (r == -ENOENT) {
			snprintf(buf, len,
				 "'%s' needs a unit: /s or /m (e.g. "
				 "%s/s)",
				 v, v);
			return buf;
		}
		if (r < 0 || (u64 == 0 && k == POLICY_KEY_RATE)) {
			snprintf(buf, len,
				 "'%s' is not a rate; write N/s or "
				 "N/m (e.g. 100/s, 600/m)%s",
				 v, k == POLICY_KEY_RATE ? ", or none" : "");
			return buf;
		}
		memcpy(field, &u64, sizeof u64);
		return NULL;
	case V_SPECIAL:
		return apply_special(s, k, v, buf, len);
	}
	return "internal: bad key kind";
}

/* Formats a duration in the largest unit that keeps it whole. */
static void format_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* Formats parts per million as a percentage. */
static void format_ppm(uint32_t ppm, char *buf, size_t len)
{
	if (ppm % 10000 == 0)
		snprintf(buf, len, "%u%%", ppm / 10000);
	else
		snprintf(buf, len, "%g%%", ppm / 10000.0);
}

/* The whole number N for which "N/m" parses to mps, or 0: a rate stored
 * in thousandths per second is exact per minute only after rounding, as
 * 7/m is 116.67 and kept as 117. */
static uint64_t per_minute(uint64_t mps)
{
	uint64_t n = (mps * 60 + 500) / 1000;

	return n && (n * 1000 + 30) / 60 == mps ? n : 0;
}

/* Formats the value of key k in s as the file would write it. */
void policy_format_value(const struct policy_settings *s, enum policy_key k,
			 char *buf, size_t len)
{
	const struct keydef *d;
	const char *field;
	uint64_t u64;
	uint32_t u32;

	if ((unsigned)k >= POLICY_KEY_COUNT) {
		snprintf(buf, len, "?");
		return;
	}
	d = &keys[k];
	field = (const char *)s + d->off;
	switch (d->kind) {
	case V_TIMEOUT:
	case V_DURATION:
		memcpy(&u64, field, sizeof u64);
		if (!u64 && d->kind == V_TIMEOUT)
			snprintf(buf, len, "none");
		else
			format_ms(u64, buf, len);
		return;
	case V_COUNT:
		memcpy(&u32, field, sizeof u32);
		if (k == POLICY_KEY_MAX_CONNECTIONS && !u32)
			snprintf(buf, len, "none");
		else if (k == POLICY_KEY_RATE_BURST && !u32)
			snprintf(buf, len, "rate per second");
		else
			snprintf(buf, len, "%u", u32);
		return;
	case V_PERCENT:
		memcpy(&u32, field, sizeof u32);
		if (!u32 && k != POLICY_KEY_RETRY_BUDGET)
			snprintf(buf, len, "none");
		else
			format_ppm(u32, buf, len);
		return;
	case V_RATE:
		memcpy(&u64, field, sizeof u64);
		if (!u64 && k == POLICY_KEY_RATE)
			snprintf(buf, len, "none");
		else if (u64 % 1000 == 0)
			snprintf(buf, len, "%llu/s",
				 (unsigned long long)(u64 / 1000));
		else if (per_minute(u64))
			snprintf(buf, len, "%llu/m",
				 (unsigned long long)per_minute(u64));
		else
			snprintf(buf, len, "%g/s", u64 / 1000.0);
		return;
	case V_SPECIAL:
		break;
	}
	switch (k) {
	case POLICY_KEY_RETRY_ON:
		snprintf(buf, len, "%s%s%s%s%s%s%s%s%s",
			 s->retry_on & POLICY_RETRY_REFUSED ? "refused " : "",
			 s->retry_on & POLICY_RETRY_TIMEOUT ? "timeout " : "",
			 s->retry_on & POLICY_RETRY_UNREACHABLE ? "unreachable "
								: "",
			 s->retry_on & POLICY_RETRY_RESET ? "reset " : "",
			 s->retry_on & POLICY_RETRY_EMPTY ? "empty " : "",
			 s->retry_on & POLICY_RETRY_RESPONSE_TIMEOUT
			     ? "response-timeout "
			     : "",
			 s->retry_on & POLICY_RETRY_5XX ? "5xx " : "",
			 s->retry_on & POLICY_RETRY_GATEWAY ? "gateway-error "
							    : "",
			 s->retry_on ? "" : "none");
		if (s->retry_on && strlen(buf))
			buf[strlen(buf) - 1] = 0;
		return;
	case POLICY_KEY_RETRY_METHODS: {
		size_t o = 0;

		buf[0] = 0;
		for (unsigned m = 0; m < POLICY_METHODS; m++)
			if ((s->retry_methods & (1u << m)) && o + 1 < len)
				o += (size_t)snprintf(buf + o, len - o, "%s%s",
						      o ? " " : "",
						      method_names[m]);
		if (!o)
			snprintf(buf, len, "none");
		return;
	}
	case POLICY_KEY_FAILOVER:
		snprintf(buf, len, "%s", s->failover ? "on" : "off");
		return;
	case POLICY_KEY_BREAKER:
		snprintf(buf, len, "%s",
			 s->breaker == POLICY_BREAKER_ON	? "on"
			 : s->breaker == POLICY_BREAKER_DRY_RUN ? "dry-run"
								: "off");
		return;
	case POLICY_KEY_BREAKER_WINDOW:
		if (s->breaker_window_ms)
			format_ms(s->breaker_window_ms, buf, len);
		else
			snprintf(buf, len, "%u", s->breaker_window_calls);
		return;
	case POLICY_KEY_BREAKER_SCOPE:
		snprintf(buf, len, "%s",
			 s->breaker_scope == POLICY_SCOPE_RULE ? "rule"
							       : "address");
		return;
	case POLICY_KEY_REJECT_ERRNO:
		for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
			if (errnos[i].value == s->reject_errno) {
				snprintf(buf, len, "%s", errnos[i].name);
				return;
			}
		snprintf(buf, len, "%d", s->reject_errno);
		return;
	case POLICY_KEY_CLASSIFY:
		snprintf(buf, len, "%s",
			 s->classify == POLICY_CLASSIFY_HTTP   ? "http"
			 : s->classify == POLICY_CLASSIFY_GRPC ? "grpc"
							       : "tcp");
		return;
	case POLICY_KEY_GRPC_FAIL_ON: {
		size_t o = 0;

		buf[0] = 0;
		for (unsigned c = 0; c < POLICY_GRPC_CODES; c++)
			if ((s->grpc_fail_on & (1u << c)) && o + 1 < len)
				o += (size_t)snprintf(buf + o, len - o, "%s%s",
						      o ? " " : "",
						      policy_grpc_code_name(c));
		if (!o)
			snprintf(buf, len, "none");
		return;
	}
	case POLICY_KEY_FAULT_DELAY: {
		char d1[32], d2[32];
		if (!s->fault_delay_ms) {
			snprintf(buf, len, "none");
			return;
		}
		format_ms(s->fault_delay_ms, d1, sizeof d1);
		format_ppm(s->fault_delay_ppm, d2, sizeof d2);
		snprintf(buf, len, "%s@%s", d1, d2);
		return;
	}
	default:
		snprintf(buf, len, "?");
	}
}
