/* SPDX-License-Identifier: MIT */
/* The policy language: the parsed form of a fusebox INI file, its loader
 * and the most-specific-wins matcher.  Pure: no clock, no interposition;
 * the only I/O is reading the file. */
#ifndef FUSEBOX_POLICY_H
#define FUSEBOX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define POLICY_NAME_MAX	   64	    /* rule names, including the NUL */
#define POLICY_SEGMENT_MAX 64	    /* shm names, including the NUL */
#define POLICY_PPM	   1000000u /* shares are stored in parts per million */

enum policy_breaker_mode {
	POLICY_BREAKER_OFF,
	POLICY_BREAKER_ON,
	POLICY_BREAKER_DRY_RUN,
};

enum policy_scope {
	POLICY_SCOPE_ADDRESS,
	POLICY_SCOPE_RULE,
};

enum policy_classify {
	POLICY_CLASSIFY_TCP,
	POLICY_CLASSIFY_HTTP,
	POLICY_CLASSIFY_GRPC,
};

/* grpc_fail_on: a bit per gRPC status code (0 OK .. 16 UNAUTHENTICATED);
 * the default, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL
 * and UNAVAILABLE. */
#define POLICY_GRPC_CODES 17
#define POLICY_GRPC_FAIL_DEFAULT                                               \
	((1u << 2) | (1u << 4) | (1u << 8) | (1u << 13) | (1u << 14))

/* retry_on bits */
#define POLICY_RETRY_REFUSED	 0x1u
#define POLICY_RETRY_TIMEOUT	 0x2u
#define POLICY_RETRY_UNREACHABLE 0x4u
#define POLICY_RETRY_RESET	 0x8u
/* ... and what replays a request fusebox saw whole (HTTP/1.x) */
#define POLICY_RETRY_EMPTY	      0x10u /* closed before a reply byte */
#define POLICY_RETRY_RESPONSE_TIMEOUT 0x20u
#define POLICY_RETRY_5XX	      0x40u
#define POLICY_RETRY_GATEWAY	      0x80u /* 502, 503, 504 */
#define POLICY_RETRY_REPLAY                                                    \
	(POLICY_RETRY_EMPTY | POLICY_RETRY_RESPONSE_TIMEOUT |                  \
	 POLICY_RETRY_5XX | POLICY_RETRY_GATEWAY)

/* retry_methods: a bit per method */
enum policy_method {
	POLICY_METHOD_GET,
	POLICY_METHOD_HEAD,
	POLICY_METHOD_POST,
	POLICY_METHOD_PUT,
	POLICY_METHOD_DELETE,
	POLICY_METHOD_CONNECT,
	POLICY_METHOD_OPTIONS,
	POLICY_METHOD_TRACE,
	POLICY_METHOD_PATCH,
	POLICY_METHODS
};
#define POLICY_METHODS_IDEMPOTENT                                              \
	((1u << POLICY_METHOD_GET) | (1u << POLICY_METHOD_HEAD) |              \
	 (1u << POLICY_METHOD_OPTIONS) | (1u << POLICY_METHOD_PUT) |           \
	 (1u << POLICY_METHOD_DELETE) | (1u << POLICY_METHOD_TRACE))

/* The method of the n bytes at p (a request line's first word), or -1. */
int policy_method_of(const char *p, size_t n);

enum policy_log {
	POLICY_LOG_ERROR,
	POLICY_LOG_WARN,
	POLICY_LOG_INFO,
	POLICY_LOG_DEBUG,
};

/* One key of a rule: the table in policy/keys.c has one entry per value. */
enum policy_key {
	POLICY_KEY_CONNECT_TIMEOUT,
	POLICY_KEY_RESPONSE_TIMEOUT,
	POLICY_KEY_IDLE_TIMEOUT,
	POLICY_KEY_SEND_TIMEOUT,
	POLICY_KEY_HANDSHAKE_TIMEOUT,
	POLICY_KEY_RETRIES,
	POLICY_KEY_RETRY_ON,
	POLICY_KEY_RETRY_METHODS,
	POLICY_KEY_REPLAY_BUFFER,
	POLICY_KEY_RETRY_BACKOFF,
	POLICY_KEY_RETRY_BACKOFF_MAX,
	POLICY_KEY_RETRY_BUDGET,
	POLICY_KEY_RETRY_BUDGET_MIN,
	POLICY_KEY_FAILOVER,
	POLICY_KEY_BREAKER,
	POLICY_KEY_BREAKER_FAILURES,
	POLICY_KEY_BREAKER_FAILURE_RATE,
	POLICY_KEY_BREAKER_WINDOW,
	POLICY_KEY_BREAKER_MIN_CALLS,
	POLICY_KEY_BREAKER_SLOW,
	POLICY_KEY_BREAKER_SLOW_RATE,
	POLICY_KEY_BREAKER_OPEN,
	POLICY_KEY_BREAKER_OPEN_MAX,
	POLICY_KEY_BREAKER_PROBES,
	POLICY_KEY_BREAKER_SCOPE,
	POLICY_KEY_MAX_CONNECTIONS,
	POLICY_KEY_MAX_PENDING,
	POLICY_KEY_QUEUE_TIMEOUT,
	POLICY_KEY_RATE,
	POLICY_KEY_RATE_BURST,
	POLICY_KEY_REJECT_ERRNO,
	POLICY_KEY_CLASSIFY,
	POLICY_KEY_GRPC_FAIL_ON,
	POLICY_KEY_FAULT_ABORT,
	POLICY_KEY_FAULT_DELAY,
	POLICY_KEY_COUNT
};

/* The name of gRPC status code c (0 to 16), or NULL. */
const char *policy_grpc_code_name(unsigned c);

/* The effective settings of a rule.  Durations are milliseconds and 0
 * means "none"; shares are parts per million; rates are thousandths of a
 * token per second so that 600/m and 10/s are the same number. */
struct policy_settings {
	uint64_t connect_timeout_ms;
	uint64_t response_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t send_timeout_ms;
	uint64_t handshake_timeout_ms; /* TLS handshake, after the connect */
	uint32_t retries;
	uint32_t retry_on;
	uint32_t retry_methods; /* bits of enum policy_method */
	uint64_t replay_buffer; /* bytes of a request kept to replay it */
	uint64_t retry_backoff_ms;
	uint64_t retry_backoff_max_ms;
	uint32_t retry_budget_ppm;
	uint64_t retry_budget_min_mps; /* milli-retries per second */
	bool failover;
	enum policy_breaker_mode breaker;
	uint32_t breaker_failures;
	uint32_t breaker_failure_rate_ppm; /* 0: none */
	uint32_t breaker_window_calls;	   /* one of these two is set */
	uint64_t breaker_window_ms;
	uint32_t breaker_min_calls;
	uint64_t breaker_slow_ms;	/* 0: none */
	uint32_t breaker_slow_rate_ppm; /* 0: none */
	uint64_t breaker_open_ms;
	uint64_t breaker_open_max_ms;
	uint32_t breaker_probes;
	enum policy_scope breaker_scope;
	uint32_t max_connections; /* 0: none */
	uint32_t max_pending;
	uint64_t queue_timeout_ms;
	uint64_t rate_mps;   /* milli-connections per second; 0: none */
	uint32_t rate_burst; /* 0: the rate per second, at least 1 */
	int reject_errno;
	enum policy_classify classify;
	uint32_t grpc_fail_on; /* bits of gRPC status codes */
	uint32_t fault_abort_ppm;
	uint64_t fault_delay_ms;
	uint32_t fault_delay_ppm;
	uint64_t set; /* bit (1 << key): set in this section itself */
	uint32_t key_line[POLICY_KEY_COUNT]; /* line of that setting, or 0 */
};

enum policy_pattern_kind {
	POLICY_PAT_ANY,	 /* "*" */
	POLICY_PAT_CIDR, /* 10.0.0.0/8, [fd00::]/8 */
	POLICY_PAT_GLOB, /* *.internal */
	POLICY_PAT_HOST, /* payment-service */
	POLICY_PAT_ADDR, /* 10.1.0.5, [::1] */
};

/* One destination pattern of a rule.  Addresses are kept as IPv6, IPv4 as
 * v4-mapped (::ffff:a.b.c.d), so one index serves both families. */
struct policy_pattern {
	enum policy_pattern_kind kind;
	char *host;	  /* lower case; HOST and GLOB (the whole glob) */
	uint8_t addr[16]; /* ADDR and CIDR, masked */
	unsigned prefix;  /* CIDR prefix in bits of the v6 form */
	uint16_t port_lo, port_hi;
	unsigned rule;	/* index into policy.rules */
	unsigned order; /* position in the file, for the final tie-break */
	unsigned line;
	char *text; /* as written */
};

struct policy_rule {
	char name[POLICY_NAME_MAX];
	unsigned line;
	struct policy_settings s;
};

struct policy_index; /* the hash tables built by policy_load */

struct policy {
	char *path;			  /* as the user named it */
	char segment[POLICY_SEGMENT_MAX]; /* raw, before %u expansion */
	unsigned segment_line;
	enum policy_log log;
	uint64_t reload_ms;
	uint32_t segment_size[3]; /* processes, rules, addresses; 0: default */
	bool has_default;	  /* a [default] section guards unmatched TCP */
	struct policy_settings defaults;
	struct policy_rule *rules;
	size_t nrules;
	struct policy_pattern *patterns;
	size_t npatterns;
	struct policy_index *index;
};

/* Collected errors of one load: each one "FILE:LINE: message". */
struct policy_errors {
	char **msgs;
	size_t n;
};

/* The outcome of matching one destination. */
struct policy_match {
	int rule;    /* index into rules; -1: [default]; -2: unguarded */
	int pattern; /* index into patterns that won, or -1 */
};

/* Fills *s with the built-in defaults of SPEC §2. */
void policy_settings_init(struct policy_settings *s);

/* Parses the file at path; returns a new policy, or NULL with every error
 * appended to errs (which the caller frees with policy_errors_free). */
struct policy *policy_load(const char *path, struct policy_errors *errs);

/* Same, from a string; name is what errors call the file. */
struct policy *policy_load_string(const char *name, const char *text,
				  struct policy_errors *errs);

/* Frees a policy; NULL does nothing. */
void policy_free(struct policy *p);

/* Frees the messages of errs and empties it. */
void policy_errors_free(struct policy_errors *errs);

/* Finds the rule for a TCP destination: sa is the address connected to
 * (AF_INET or AF_INET6), hosts the names the program resolved to it (may
 * be empty).  Thread-safe on a policy nobody modifies; does not allocate. */
struct policy_match policy_match(const struct policy *p,
				 const struct sockaddr *sa,
				 const char *const *hosts, size_t nhosts);

/* Reference matcher: scans every pattern.  Fills matched[] (up to max) with
 * the indexes of every pattern that matches, best first, and returns how
 * many match.  For `fusebox explain` and tests. */
size_t policy_match_all(const struct policy *p, const struct sockaddr *sa,
			const char *const *hosts, size_t nhosts,
			unsigned *matched, size_t max);

/* The settings that apply for m: a rule's, or the defaults. */
const struct policy_settings *policy_settings_of(const struct policy *p,
						 struct policy_match m);

/* Name and one-line meaning of a key, for tables and help. */
const char *policy_key_name(enum policy_key k);

/* Formats the value of key k in s as the file would write it. */
void policy_format_value(const struct policy_settings *s, enum policy_key k,
			 char *buf, size_t len);

/* Parses a duration ("250ms", "1.5s", "0"); 0 or -EINVAL/-ERANGE. */
int policy_parse_duration(const char *v, uint64_t *ms);

/* Why a pattern is ranked where it is, in words ("exact address"). */
const char *policy_pattern_kind_name(enum policy_pattern_kind k);

/* Looks up a log level name; -1 when unknown. */
int policy_log_level(const char *name);

/* Expands %u in a segment name into buf; 0 or -ENAMETOOLONG. */
int policy_segment_name(const char *raw, unsigned uid, char *buf, size_t len);

/* Finds the policy file into buf: 1 when FUSEBOX_POLICY names it, 2 when
 * found in the search list of SPEC §1, -ENOENT when there is none. */
int policy_locate(char *buf, size_t len);

#endif
