/* SPDX-License-Identifier: MIT */
/* Unit tests of the policy loader: every key and its default, every kind
 * of error with its FILE:LINE prefix, [default] inheritance, cross-checks,
 * the INI dialect (comments, CRLF, indentation), [global] and locating the
 * file. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

static struct policy_errors errs;

/* Loads text as the file "t.ini"; errors go to errs. */
static struct policy *load(const char *text)
{
	return policy_load_string("t.ini", text, &errs);
}

/* All errors of errs, one a line, for failure messages (static buffer). */
static const char *dump(void)
{
	static char buf[8192];
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < errs.n && o < sizeof buf; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "  %s\n",
				      errs.msgs[i]);
	return buf;
}

/* Loads text, which must succeed without errors. */
static struct policy *load_ok(const char *text)
{
	struct policy *p = load(text);

	cr_assert_not_null(p, "load failed:\n%s", dump());
	cr_assert_eq(errs.n, 0, "errors on success:\n%s", dump());
	return p;
}

/* Loads text, which must succeed, and frees the policy. */
static void check_ok(const char *text)
{
	policy_free(load_ok(text));
}

/* Loads text, which must fail with exactly the n messages of want, in
 * that order. */
static void expect_errors(const char *text, const char *const *want, size_t n)
{
	struct policy *p = load(text);

	cr_assert_null(p, "load succeeded, expected %zu errors", n);
	cr_assert_eq(errs.n, n, "expected %zu errors, got %zu:\n%s", n, errs.n,
		     dump());
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(errs.msgs[i], want[i], "error %zu of:\n%s", i,
				 dump());
	policy_errors_free(&errs);
}

#define EXPECT_ERRORS(text, ...)                                               \
	expect_errors(text, (const char *const[]){__VA_ARGS__},                \
		      sizeof((const char *const[]){__VA_ARGS__}) /             \
			  sizeof(const char *))

/* Loads "[r]\nmatch = h\n" plus one line; the rule must load. */
static struct policy *load_rule_line(const char *line)
{
	char text[512];

	snprintf(text, sizeof text, "[r]\nmatch = h\n%s\n", line);
	return load_ok(text);
}

/* Formats key k of s into a static buffer. */
static const char *fmt(const struct policy_settings *s, enum policy_key k)
{
	static char buf[128];

	policy_format_value(s, k, buf, sizeof buf);
	return buf;
}

/* Every key in enum order with a non-default value and how it formats. */
static const struct {
	enum policy_key k;
	const char *name, *value, *formatted;
} every_key[] = {
    {POLICY_KEY_CONNECT_TIMEOUT, "connect_timeout", "100ms", "100ms"},
    {POLICY_KEY_RESPONSE_TIMEOUT, "response_timeout", "2s", "2s"},
    {POLICY_KEY_IDLE_TIMEOUT, "idle_timeout", "5m", "5m"},
    {POLICY_KEY_SEND_TIMEOUT, "send_timeout", "1h", "1h"},
    {POLICY_KEY_HANDSHAKE_TIMEOUT, "handshake_timeout", "1500ms", "1500ms"},
    {POLICY_KEY_RETRIES, "retries", "3", "3"},
    {POLICY_KEY_RETRY_ON, "retry_on", "refused, reset, empty, 5xx",
     "refused reset empty 5xx"},
    {POLICY_KEY_RETRY_METHODS, "retry_methods", "GET, POST", "GET POST"},
    {POLICY_KEY_REPLAY_BUFFER, "replay_buffer", "4096", "4096"},
    {POLICY_KEY_RETRY_BACKOFF, "retry_backoff", "50ms", "50ms"},
    {POLICY_KEY_RETRY_BACKOFF_MAX, "retry_backoff_max", "1.5s", "1500ms"},
    {POLICY_KEY_RETRY_BUDGET, "retry_budget", "12.5%", "12.5%"},
    {POLICY_KEY_RETRY_BUDGET_MIN, "retry_budget_min", "0/s", "0/s"},
    {POLICY_KEY_FAILOVER, "failover", "off", "off"},
    {POLICY_KEY_BREAKER, "breaker", "dry-run", "dry-run"},
    {POLICY_KEY_BREAKER_FAILURES, "breaker_failures", "7", "7"},
    {POLICY_KEY_BREAKER_FAILURE_RATE, "breaker_failure_rate", "50%", "50%"},
    {POLICY_KEY_BREAKER_WINDOW, "breaker_window", "30s", "30s"},
    {POLICY_KEY_BREAKER_MIN_CALLS, "breaker_min_calls", "4", "4"},
    {POLICY_KEY_BREAKER_SLOW, "breaker_slow", "800ms", "800ms"},
    {POLICY_KEY_BREAKER_SLOW_RATE, "breaker_slow_rate", "25%", "25%"},
    {POLICY_KEY_BREAKER_OPEN, "breaker_open", "10s", "10s"},
    {POLICY_KEY_BREAKER_OPEN_MAX, "breaker_open_max", "2m", "2m"},
    {POLICY_KEY_BREAKER_PROBES, "breaker_probes", "3", "3"},
    {POLICY_KEY_BREAKER_SCOPE, "breaker_scope", "rule", "rule"},
    {POLICY_KEY_MAX_CONNECTIONS, "max_connections", "50", "50"},
    {POLICY_KEY_MAX_PENDING, "max_pending", "5", "5"},
    {POLICY_KEY_QUEUE_TIMEOUT, "queue_timeout", "250ms", "250ms"},
    {POLICY_KEY_RATE, "rate", "30/m", "30/m"},
    {POLICY_KEY_RATE_BURST, "rate_burst", "20", "20"},
    {POLICY_KEY_REJECT_ERRNO, "reject_errno", "ETIMEDOUT", "ETIMEDOUT"},
    {POLICY_KEY_CLASSIFY, "classify", "http", "http"},
    {POLICY_KEY_GRPC_FAIL_ON, "grpc_fail_on", "unavailable, 4",
     "DEADLINE_EXCEEDED UNAVAILABLE"},
    {POLICY_KEY_FAULT_ABORT, "fault_abort", "10%", "10%"},
    {POLICY_KEY_FAULT_DELAY, "fault_delay", "200ms@25%", "200ms@25%"},
};

#define NKEYS (sizeof every_key / sizeof every_key[0])

Test(policy, key_table_covers_every_key)
{
	cr_assert_eq(NKEYS, POLICY_KEY_COUNT);
	for (size_t i = 0; i < NKEYS; i++) {
		cr_assert_eq(every_key[i].k, (enum policy_key)i);
		cr_assert_str_eq(policy_key_name(every_key[i].k),
				 every_key[i].name);
	}
	cr_assert_str_eq(policy_key_name(POLICY_KEY_COUNT), "?");
}

Test(policy, settings_init_has_spec_defaults)
{
	struct policy_settings s;

	memset(&s, 0xa5, sizeof s);
	policy_settings_init(&s);
	cr_assert_eq(s.connect_timeout_ms, 0);
	cr_assert_eq(s.response_timeout_ms, 0);
	cr_assert_eq(s.idle_timeout_ms, 0);
	cr_assert_eq(s.send_timeout_ms, 0);
	cr_assert_eq(s.retries, 0);
	cr_assert_eq(s.retry_on, POLICY_RETRY_REFUSED | POLICY_RETRY_TIMEOUT |
				     POLICY_RETRY_UNREACHABLE);
	cr_assert_eq(s.retry_backoff_ms, 25);
	cr_assert_eq(s.retry_backoff_max_ms, 250);
	cr_assert_eq(s.retry_budget_ppm, 200000);
	cr_assert_eq(s.retry_budget_min_mps, 10000);
	cr_assert_eq(s.failover, true);
	cr_assert_eq(s.breaker, POLICY_BREAKER_OFF);
	cr_assert_eq(s.breaker_failures, 5);
	cr_assert_eq(s.breaker_failure_rate_ppm, 0);
	cr_assert_eq(s.breaker_window_calls, 20);
	cr_assert_eq(s.breaker_window_ms, 0);
	cr_assert_eq(s.breaker_min_calls, 10);
	cr_assert_eq(s.breaker_slow_ms, 0);
	cr_assert_eq(s.breaker_slow_rate_ppm, 0);
	cr_assert_eq(s.breaker_open_ms, 30000);
	cr_assert_eq(s.breaker_open_max_ms, 300000);
	cr_assert_eq(s.breaker_probes, 1);
	cr_assert_eq(s.breaker_scope, POLICY_SCOPE_ADDRESS);
	cr_assert_eq(s.max_connections, 0);
	cr_assert_eq(s.max_pending, 0);
	cr_assert_eq(s.queue_timeout_ms, 1000);
	cr_assert_eq(s.rate_mps, 0);
	cr_assert_eq(s.rate_burst, 0);
	cr_assert_eq(s.reject_errno, ECONNREFUSED);
	cr_assert_eq(s.classify, POLICY_CLASSIFY_TCP);
	cr_assert_eq(s.fault_abort_ppm, 0);
	cr_assert_eq(s.fault_delay_ms, 0);
	cr_assert_eq(s.fault_delay_ppm, 0);
	cr_assert_eq(s.set, 0);
	for (int k = 0; k < POLICY_KEY_COUNT; k++)
		cr_assert_eq(s.key_line[k], 0);
}

Test(policy, formats_every_default_as_the_spec_writes_it)
{
	static const char *const want[POLICY_KEY_COUNT] = {
	    [POLICY_KEY_CONNECT_TIMEOUT] = "none",
	    [POLICY_KEY_RESPONSE_TIMEOUT] = "none",
	    [POLICY_KEY_IDLE_TIMEOUT] = "none",
	    [POLICY_KEY_SEND_TIMEOUT] = "none",
	    [POLICY_KEY_HANDSHAKE_TIMEOUT] = "none",
	    [POLICY_KEY_RETRIES] = "0",
	    [POLICY_KEY_RETRY_METHODS] = "GET HEAD PUT DELETE OPTIONS TRACE",
	    [POLICY_KEY_REPLAY_BUFFER] = "65536",
	    [POLICY_KEY_RETRY_ON] = "refused timeout unreachable",
	    [POLICY_KEY_RETRY_BACKOFF] = "25ms",
	    [POLICY_KEY_RETRY_BACKOFF_MAX] = "250ms",
	    [POLICY_KEY_RETRY_BUDGET] = "20%",
	    [POLICY_KEY_RETRY_BUDGET_MIN] = "10/s",
	    [POLICY_KEY_FAILOVER] = "on",
	    [POLICY_KEY_BREAKER] = "off",
	    [POLICY_KEY_BREAKER_FAILURES] = "5",
	    [POLICY_KEY_BREAKER_FAILURE_RATE] = "none",
	    [POLICY_KEY_BREAKER_WINDOW] = "20",
	    [POLICY_KEY_BREAKER_MIN_CALLS] = "10",
	    [POLICY_KEY_BREAKER_SLOW] = "none",
	    [POLICY_KEY_BREAKER_SLOW_RATE] = "none",
	    [POLICY_KEY_BREAKER_OPEN] = "30s",
	    [POLICY_KEY_BREAKER_OPEN_MAX] = "5m",
	    [POLICY_KEY_BREAKER_PROBES] = "1",
	    [POLICY_KEY_BREAKER_SCOPE] = "address",
	    [POLICY_KEY_MAX_CONNECTIONS] = "none",
	    [POLICY_KEY_MAX_PENDING] = "0",
	    [POLICY_KEY_QUEUE_TIMEOUT] = "1s",
	    [POLICY_KEY_RATE] = "none",
	    [POLICY_KEY_RATE_BURST] = "rate per second",
	    [POLICY_KEY_REJECT_ERRNO] = "ECONNREFUSED",
	    [POLICY_KEY_CLASSIFY] = "tcp",
	    [POLICY_KEY_GRPC_FAIL_ON] =
		"UNKNOWN DEADLINE_EXCEEDED RESOURCE_EXHAUSTED INTERNAL "
		"UNAVAILABLE",
	    [POLICY_KEY_FAULT_ABORT] = "none",
	    [POLICY_KEY_FAULT_DELAY] = "none",
	};
	struct policy_settings s;

	policy_settings_init(&s);
	for (int k = 0; k < POLICY_KEY_COUNT; k++)
		cr_assert_str_eq(fmt(&s, k), want[k], "key %s",
				 policy_key_name(k));
	cr_assert_str_eq(fmt(&s, POLICY_KEY_COUNT), "?");
}

Test(policy, empty_file_has_builtin_defaults)
{
	struct policy *p = load_ok("");
	struct policy_settings s;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(80),
				  .sin_addr.s_addr = htonl(0x7f000001)};
	struct policy_match m;

	policy_settings_init(&s);
	cr_assert_str_eq(p->segment, "fusebox-%u");
	cr_assert_eq(p->log, POLICY_LOG_WARN);
	cr_assert_eq(p->reload_ms, 2000);
	cr_assert_eq(p->has_default, false);
	cr_assert_eq(p->nrules, 0);
	cr_assert_eq(p->npatterns, 0);
	cr_assert_eq(memcmp(&p->defaults, &s, sizeof s), 0);
	m = policy_match(p, (struct sockaddr *)&sin, NULL, 0);
	cr_assert_eq(m.rule, -2);
	cr_assert_eq(m.pattern, -1);
	policy_free(p);
}

Test(policy, comments_and_blank_lines_only)
{
	struct policy *p =
	    load_ok("; a comment\n# another\n\n   \n\t; x = y\n");

	cr_assert_eq(p->nrules, 0);
	policy_free(p);
}

Test(policy, parses_every_key_with_its_line)
{
	char text[4096];
	size_t o;
	struct policy *p;
	const struct policy_settings *s;

	o = (size_t)snprintf(text, sizeof text, "[r]\nmatch = h\n");
	for (size_t i = 0; i < NKEYS; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "%s = %s\n",
				      every_key[i].name, every_key[i].value);
	p = load_ok(text);
	cr_assert_eq(p->nrules, 1);
	s = &p->rules[0].s;
	cr_assert_eq(s->set, (1ull << POLICY_KEY_COUNT) - 1);
	for (size_t i = 0; i < NKEYS; i++) {
		cr_assert_eq(s->key_line[i], 3 + i, "line of %s",
			     every_key[i].name);
		cr_assert_str_eq(fmt(s, every_key[i].k), every_key[i].formatted,
				 "format of %s", every_key[i].name);
	}
	cr_assert_eq(s->connect_timeout_ms, 100);
	cr_assert_eq(s->response_timeout_ms, 2000);
	cr_assert_eq(s->idle_timeout_ms, 300000);
	cr_assert_eq(s->send_timeout_ms, 3600000);
	cr_assert_eq(s->retries, 3);
	cr_assert_eq(s->retry_on, POLICY_RETRY_REFUSED | POLICY_RETRY_RESET |
				      POLICY_RETRY_EMPTY | POLICY_RETRY_5XX);
	cr_assert_eq(s->retry_backoff_ms, 50);
	cr_assert_eq(s->retry_backoff_max_ms, 1500);
	cr_assert_eq(s->retry_budget_ppm, 125000);
	cr_assert_eq(s->retry_budget_min_mps, 0);
	cr_assert_eq(s->failover, false);
	cr_assert_eq(s->breaker, POLICY_BREAKER_DRY_RUN);
	cr_assert_eq(s->breaker_failures, 7);
	cr_assert_eq(s->breaker_failure_rate_ppm, 500000);
	cr_assert_eq(s->breaker_window_ms, 30000);
	cr_assert_eq(s->breaker_window_calls, 0);
	cr_assert_eq(s->breaker_min_calls, 4);
	cr_assert_eq(s->breaker_slow_ms, 800);
	cr_assert_eq(s->breaker_slow_rate_ppm, 250000);
	cr_assert_eq(s->breaker_open_ms, 10000);
	cr_assert_eq(s->breaker_open_max_ms, 120000);
	cr_assert_eq(s->breaker_probes, 3);
	cr_assert_eq(s->breaker_scope, POLICY_SCOPE_RULE);
	cr_assert_eq(s->max_connections, 50);
	cr_assert_eq(s->max_pending, 5);
	cr_assert_eq(s->queue_timeout_ms, 250);
	cr_assert_eq(s->rate_mps, 500);
	cr_assert_eq(s->rate_burst, 20);
	cr_assert_eq(s->reject_errno, ETIMEDOUT);
	cr_assert_eq(s->classify, POLICY_CLASSIFY_HTTP);
	cr_assert_eq(s->fault_abort_ppm, 100000);
	cr_assert_eq(s->fault_delay_ms, 200);
	cr_assert_eq(s->fault_delay_ppm, 250000);
	policy_free(p);
}

Test(policy, parses_other_forms_of_special_values)
{
	struct policy *p = load_ok("[r]\nmatch = h\n"
				   "breaker_window = 50\n"
				   "breaker = on\n"
				   "reject_errno = econnreset\n"
				   "retry_on = none\n"
				   "failover = yes\n"
				   "fault_delay = 1s\n"
				   "rate = 100/s\n"
				   "breaker_scope = address\n"
				   "classify = tcp\n"
				   "[s]\nmatch = i\n"
				   "breaker = off\n"
				   "fault_delay = none\n"
				   "rate = none\n"
				   "retry_on = timeout,unreachable\n"
				   "reject_errno = EAGAIN\n"
				   "breaker_window = 1h\n");
	const struct policy_settings *r = &p->rules[0].s, *s = &p->rules[1].s;

	cr_assert_eq(r->breaker_window_calls, 50);
	cr_assert_eq(r->breaker_window_ms, 0);
	cr_assert_eq(r->breaker, POLICY_BREAKER_ON);
	cr_assert_eq(r->reject_errno, ECONNRESET);
	cr_assert_eq(r->retry_on, 0);
	cr_assert_str_eq(fmt(r, POLICY_KEY_RETRY_ON), "none");
	cr_assert_eq(r->failover, true);
	cr_assert_eq(r->fault_delay_ms, 1000);
	cr_assert_eq(r->fault_delay_ppm, POLICY_PPM);
	cr_assert_str_eq(fmt(r, POLICY_KEY_FAULT_DELAY), "1s@100%");
	cr_assert_eq(r->rate_mps, 100000);
	cr_assert_str_eq(fmt(r, POLICY_KEY_RATE), "100/s");
	cr_assert_eq(r->breaker_scope, POLICY_SCOPE_ADDRESS);
	cr_assert_eq(r->classify, POLICY_CLASSIFY_TCP);
	cr_assert_eq(s->breaker, POLICY_BREAKER_OFF);
	cr_assert_eq(s->fault_delay_ms, 0);
	cr_assert_eq(s->rate_mps, 0);
	cr_assert_eq(s->retry_on,
		     POLICY_RETRY_TIMEOUT | POLICY_RETRY_UNREACHABLE);
	cr_assert_eq(s->reject_errno, EAGAIN);
	cr_assert_eq(s->breaker_window_ms, 3600000);
	cr_assert_eq(s->breaker_window_calls, 0);
	policy_free(p);
}

Test(policy, parses_every_duration_unit)
{
	static const struct {
		const char *v;
		uint64_t ms;
	} t[] = {{"250ms", 250}, {"2s", 2000},	  {"1.5s", 1500},
		 {"1m", 60000},	 {"1h", 3600000}, {"0.5m", 30000},
		 {"0", 0},	 {"none", 0},	  {"0ms", 0},
		 {"2.25s", 2250}};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char line[64];
		struct policy *p;

		snprintf(line, sizeof line, "idle_timeout = %s", t[i].v);
		p = load_rule_line(line);
		cr_assert_eq(p->rules[0].s.idle_timeout_ms, t[i].ms, "%s",
			     t[i].v);
		policy_free(p);
	}
}

Test(policy, parses_percentages_and_rates)
{
	struct policy *p = load_ok("[r]\nmatch = h\n"
				   "retry_budget = 0.5%\n"
				   "fault_abort = 100%\n"
				   "breaker_failure_rate = 33.3%\n"
				   "retry_budget_min = 120/m\n"
				   "rate = 2.5/s\n"
				   "fault_delay = 1.5s@0.5%\n");
	const struct policy_settings *s = &p->rules[0].s;

	cr_assert_eq(s->retry_budget_ppm, 5000);
	cr_assert_str_eq(fmt(s, POLICY_KEY_RETRY_BUDGET), "0.5%");
	cr_assert_eq(s->fault_abort_ppm, 1000000);
	cr_assert_eq(s->breaker_failure_rate_ppm, 333000);
	cr_assert_eq(s->retry_budget_min_mps, 2000);
	cr_assert_str_eq(fmt(s, POLICY_KEY_RETRY_BUDGET_MIN), "2/s");
	cr_assert_eq(s->rate_mps, 2500);
	cr_assert_str_eq(fmt(s, POLICY_KEY_RATE), "150/m");
	cr_assert_eq(s->fault_delay_ms, 1500);
	cr_assert_eq(s->fault_delay_ppm, 5000);
	policy_free(p);
}

Test(policy, reports_unknown_key_with_suggestion)
{
	EXPECT_ERRORS("[r]\nmatch = h\nconect_timeout = 1s\n",
		      "t.ini:3: unknown key 'conect_timeout' in [r]; did you "
		      "mean 'connect_timeout'?");
	EXPECT_ERRORS("[r]\nmach = h\n",
		      "t.ini:1: [r] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'",
		      "t.ini:2: unknown key 'mach' in [r]; did you mean "
		      "'match'?");
	EXPECT_ERRORS("[default]\nbreaker_failure = 3\n",
		      "t.ini:2: unknown key 'breaker_failure' in [default]; "
		      "did you mean 'breaker_failures'?");
}

Test(policy, reports_unknown_key_without_suggestion)
{
	EXPECT_ERRORS("[r]\nmatch = h\nfrobnicate = 1\n",
		      "t.ini:3: unknown key 'frobnicate' in [r]; see "
		      "fusebox.ini(5) for the keys");
}

Test(policy, reports_bare_number_naming_the_units)
{
	EXPECT_ERRORS("[r]\nmatch = h\nconnect_timeout = 250\n",
		      "t.ini:3: connect_timeout: '250' needs a unit: ms, s, m "
		      "or h (e.g. 250ms or 250s)");
	EXPECT_ERRORS("[r]\nmatch = h\nretry_budget = 20\n",
		      "t.ini:3: retry_budget: '20' needs a % sign (e.g. 20%)");
	EXPECT_ERRORS("[r]\nmatch = h\nrate = 100\n",
		      "t.ini:3: rate: '100' needs a unit: /s or /m (e.g. "
		      "100/s)");
}

Test(policy, reports_malformed_values)
{
	EXPECT_ERRORS("[r]\nmatch = h\nqueue_timeout = soon\n",
		      "t.ini:3: queue_timeout: 'soon' is not a duration; "
		      "write a number and a unit: ms, s, m or h (e.g. 500ms, "
		      "1.5s)");
	EXPECT_ERRORS("[r]\nmatch = h\nretry_backoff = none\n",
		      "t.ini:3: retry_backoff: 'none' is not allowed; "
		      "retry_backoff needs a duration (the default is 25ms)");
	EXPECT_ERRORS("[r]\nmatch = h\nretries = two\n",
		      "t.ini:3: retries: 'two' is not a whole number; use 0 "
		      "to 10");
	EXPECT_ERRORS("[r]\nmatch = h\nrate = 0/s\n",
		      "t.ini:3: rate: '0/s' is not a rate; write N/s or N/m "
		      "(e.g. 100/s, 600/m), or none");
	EXPECT_ERRORS("[r]\nmatch = h\nretry_on = refused, crashed\n",
		      "t.ini:3: retry_on: 'crashed' is not a failure; use "
		      "refused, timeout, unreachable, reset, empty, "
		      "response-timeout, 5xx, gateway-error or none");
	EXPECT_ERRORS("[r]\nmatch = h\nretry_methods = GET, FETCH\n",
		      "t.ini:3: retry_methods: 'FETCH' is not a method; use "
		      "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, "
		      "PATCH or none");
	EXPECT_ERRORS("[r]\nmatch = h\nfailover = maybe\n",
		      "t.ini:3: failover: use on or off (yes/no, true/false)");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_scope = host\n",
		      "t.ini:3: breaker_scope: 'host' is not address or rule");
	EXPECT_ERRORS("[r]\nmatch = h\nreject_errno = EPERM\n",
		      "t.ini:3: reject_errno: 'EPERM' is not one of "
		      "ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, "
		      "EAGAIN");
	EXPECT_ERRORS("[r]\nmatch = h\nclassify = soap\n",
		      "t.ini:3: classify: 'soap' is not tcp, http or grpc");
	EXPECT_ERRORS("[r]\nmatch = h\ngrpc_fail_on = UNAVAILABLE, 17\n",
		      "t.ini:3: grpc_fail_on: '17' is not a gRPC status; use "
		      "names such as UNAVAILABLE or codes 0 to 16");
	EXPECT_ERRORS("[r]\nmatch = h\nfault_delay = 200ms@lots\n",
		      "t.ini:3: fault_delay: the share after @ is a percentage "
		      "from 0% to 100%, e.g. 200ms@25%");
	EXPECT_ERRORS("[r]\nmatch = h\nfault_delay = 200@25%\n",
		      "t.ini:3: fault_delay: use DURATION@SHARE, e.g. "
		      "200ms@25% (units: ms, s, m, h)");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_window = often\n",
		      "t.ini:3: breaker_window: 'often' is neither a number "
		      "of calls (20) nor a duration (30s)");
	EXPECT_ERRORS("[r]\nmatch = h\nretry_budget = 1.5.5%\n",
		      "t.ini:3: retry_budget: '1.5.5%' is not a percentage; "
		      "use 0% to 100% (e.g. 20%)");
}

Test(policy, reports_out_of_range_naming_the_range)
{
	EXPECT_ERRORS("[r]\nmatch = h\nretries = 11\n",
		      "t.ini:3: retries: 11 is out of range; use 0 to 10");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_failures = 0\n",
		      "t.ini:3: breaker_failures: 0 is out of range; use 1 to "
		      "1000");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_probes = 101\n",
		      "t.ini:3: breaker_probes: 101 is out of range; use 1 to "
		      "100");
	EXPECT_ERRORS("[r]\nmatch = h\nconnect_timeout = 200h\n",
		      "t.ini:3: connect_timeout: out of range; use 1ms to 7 "
		      "days (168h)");
	EXPECT_ERRORS("[r]\nmatch = h\nfault_abort = 120%\n",
		      "t.ini:3: fault_abort: '120%' is not a percentage; use "
		      "0% to 100% (e.g. 20%)");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_window = 0\n",
		      "t.ini:3: breaker_window: a window of calls holds 1 to "
		      "1000 calls");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_window = 500ms\n",
		      "t.ini:3: breaker_window: a window of time lasts 1s to "
		      "1h");
}

Test(policy, reports_cidr_prefix_out_of_range)
{
	EXPECT_ERRORS("[r]\nmatch = 10.0.0.0/33\n",
		      "t.ini:2: match: '10.0.0.0/33': the prefix length of an "
		      "IPv4 block is 0 to 32");
	EXPECT_ERRORS("[r]\nmatch = [fd00::]/129\n",
		      "t.ini:2: match: '[fd00::]/129': the prefix length of "
		      "an IPv6 block is 0 to 128");
	EXPECT_ERRORS("[r]\nmatch = fd00::/129\n",
		      "t.ini:2: match: 'fd00::/129': the prefix length of an "
		      "IPv6 block is 0 to 128");
}

Test(policy, reports_bad_ports)
{
	EXPECT_ERRORS("[r]\nmatch = h:0\nmatch = h:70000\nmatch = h:9-3\n"
		      "match = [::1]:\n",
		      "t.ini:2: match: 'h:0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:3: match: 'h:70000': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:4: match: 'h:9-3': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:5: match: '[::1]:': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)");
}

Test(policy, reports_rule_without_match)
{
	EXPECT_ERRORS("[r]\nretries = 1\n",
		      "t.ini:1: [r] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'");
}

Test(policy, reports_breaker_maybe)
{
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker = maybe\n",
		      "t.ini:3: breaker: 'maybe' is not one of on, off, "
		      "dry-run");
}

Test(policy, reports_duplicate_key_with_first_line)
{
	EXPECT_ERRORS("[r]\nmatch = h\nretries = 1\n\nretries = 2\n",
		      "t.ini:5: duplicate key 'retries' in [r] (first set at "
		      "line 3); remove one");
	EXPECT_ERRORS("[global]\nlog = info\nlog = debug\n",
		      "t.ini:3: duplicate key 'log' in [global] (first set at "
		      "line 2); remove one");
}

Test(policy, match_may_repeat)
{
	struct policy *p = load_ok("[r]\nmatch = a\nmatch = b, c\n");

	cr_assert_eq(p->npatterns, 3);
	cr_assert_eq(p->patterns[2].line, 3);
	policy_free(p);
}

Test(policy, reports_unknown_key_in_global)
{
	EXPECT_ERRORS("[global]\nsegmnt = x\n",
		      "t.ini:2: unknown key 'segmnt' in [global]; did you mean "
		      "'segment'?");
	EXPECT_ERRORS("[global]\nconnect_timeout = 1s\n",
		      "t.ini:2: unknown key 'connect_timeout' in [global]; "
		      "[global] takes segment, log, reload, segment_processes, "
		      "segment_rules and segment_addresses");
}

Test(policy, reads_segment_table_sizes)
{
	struct policy_errors e = {0};
	struct policy *p = policy_load_string(
	    "t.ini",
	    "[global]\nsegment_processes = 64\nsegment_rules = 32\n"
	    "segment_addresses = 100000\n",
	    &e);

	cr_assert_not_null(p);
	cr_assert_eq(p->segment_size[0], 64);
	cr_assert_eq(p->segment_size[1], 32);
	cr_assert_eq(p->segment_size[2], 100000);
	policy_free(p);
	EXPECT_ERRORS("[global]\nsegment_rules = 8\n",
		      "t.ini:2: segment_rules: '8' is not a table size; use 16 "
		      "to 1000000");
}

Test(policy, reports_match_in_default)
{
	EXPECT_ERRORS("[default]\nmatch = h\n",
		      "t.ini:2: 'match' is not allowed in [default]; put it in "
		      "a rule section");
}

Test(policy, reports_duplicate_section)
{
	EXPECT_ERRORS("[r]\nmatch = h\n[r]\nmatch = i\n",
		      "t.ini:3: section [r] is already defined at line 1; "
		      "merge the two");
	EXPECT_ERRORS("[default]\n[default]\n",
		      "t.ini:2: section [default] is already defined at line "
		      "1; merge the two");
	EXPECT_ERRORS("[global]\n[global]\n",
		      "t.ini:2: section [global] is already defined; merge the "
		      "two");
}

Test(policy, reports_malformed_lines)
{
	EXPECT_ERRORS("[r]\nmatch = h\njust some words\n",
		      "t.ini:3: expected 'key = value', a [section] or a ; "
		      "comment");
	EXPECT_ERRORS("[r\n",
		      "t.ini:1: malformed section header; write [name]");
	EXPECT_ERRORS("[r] x\n",
		      "t.ini:1: malformed section header; write [name]");
	EXPECT_ERRORS("[bad name!]\n",
		      "t.ini:1: [bad name!]: a rule name is 1 to 63 letters, "
		      "digits, '_', '-' or '.'");
}

/* inih drops a line whose '=' follows an inline comment without calling
 * the handler; the loader must report it rather than ignore it. */
Test(policy, reports_comment_before_equals)
{
	EXPECT_ERRORS("[r]\nmatch = h\nretries ; = 3\n",
		      "t.ini:3: expected 'key = value', a [section] or a ; "
		      "comment");
}

Test(policy, reports_key_outside_section)
{
	EXPECT_ERRORS("retries = 1\n[r]\nmatch = h\n",
		      "t.ini:1: 'retries' is outside any section; put it under "
		      "[global], [default] or a rule");
}

Test(policy, reports_long_line)
{
	char text[512], host[256];
	struct policy *p;

	/* "match = " is 8 characters: 190 more make 198, the longest */
	memset(host, 'a', 190);
	host[190] = 0;
	snprintf(text, sizeof text, "[r]\nmatch = %s\n", host);
	p = load_ok(text);
	cr_assert_eq(strlen(p->patterns[0].host), 190);
	policy_free(p);
	host[190] = 'a';
	host[191] = 0;
	snprintf(text, sizeof text, "[r]\nmatch = %s\nmatch = h\n", host);
	EXPECT_ERRORS(text, "t.ini:2: line is longer than 198 characters; "
			    "split a long 'match' over several match lines");
}

Test(policy, reports_every_error_not_just_the_first)
{
	EXPECT_ERRORS("retries = 1\n"		/* 1 */
		      "[global]\n"		/* 2 */
		      "segmnt = x\n"		/* 3 */
		      "[default]\n"		/* 4 */
		      "match = a\n"		/* 5 */
		      "[r]\n"			/* 6 */
		      "match = h:0\n"		/* 7 */
		      "conect_timeout = 1s\n"	/* 8 */
		      "connect_timeout = 250\n" /* 9 */
		      "retries = 11\n"		/* 10 */
		      "breaker = maybe\n"	/* 11 */
		      "breaker_failures = 3\n"	/* 12 */
		      "breaker_failures = 4\n"	/* 13 */
		      "garbage line\n"		/* 14 */
		      "[r]\n"			/* 15 */
		      "match = x\n"		/* 16 */
		      "[s]\n"			/* 17 */
		      "retries = 1\n",		/* 18 */
		      "t.ini:1: 'retries' is outside any section; put it under "
		      "[global], [default] or a rule",
		      "t.ini:3: unknown key 'segmnt' in [global]; did you mean "
		      "'segment'?",
		      "t.ini:5: 'match' is not allowed in [default]; put it in "
		      "a rule section",
		      "t.ini:7: match: 'h:0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:8: unknown key 'conect_timeout' in [r]; did you "
		      "mean 'connect_timeout'?",
		      "t.ini:9: connect_timeout: '250' needs a unit: ms, s, m "
		      "or h (e.g. 250ms or 250s)",
		      "t.ini:10: retries: 11 is out of range; use 0 to 10",
		      "t.ini:11: breaker: 'maybe' is not one of on, off, "
		      "dry-run",
		      "t.ini:13: duplicate key 'breaker_failures' in [r] "
		      "(first set at line 12); remove one",
		      "t.ini:14: expected 'key = value', a [section] or a ; "
		      "comment",
		      "t.ini:15: section [r] is already defined at line 6; "
		      "merge the two",
		      "t.ini:17: [s] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'");
}

Test(policy, appends_errors_after_existing_ones)
{
	struct policy *p;

	cr_assert_null(load("[r]\n"));
	cr_assert_eq(errs.n, 1);
	p = load("[r]\nmatch = h\n");
	cr_assert_not_null(p, "a good file fails when errs holds old errors");
	cr_assert_eq(errs.n, 1);
	cr_assert_null(load("[s]\n"));
	cr_assert_eq(errs.n, 2);
	cr_assert_str_eq(errs.msgs[1], "t.ini:1: [s] has no 'match'; add the "
				       "destinations it guards, e.g. 'match = "
				       "payment-service:8000'");
	policy_errors_free(&errs);
	cr_assert_eq(errs.n, 0);
	cr_assert_null(errs.msgs);
	policy_errors_free(&errs);
	policy_errors_free(NULL);
	policy_free(p);
	policy_free(NULL);
}

Test(policy, inherits_from_default)
{
	struct policy *p = load_ok("[default]\n"	       /* 1 */
				   "connect_timeout = 5s\n"    /* 2 */
				   "response_timeout = 2s\n"   /* 3 */
				   "retries = 2\n"	       /* 4 */
				   "breaker = on\n"	       /* 5 */
				   "[a]\n"		       /* 6 */
				   "match = a\n"	       /* 7 */
				   "retries = 3\n"	       /* 8 */
				   "response_timeout = none\n" /* 9 */
				   "[b]\n"		       /* 10 */
				   "match = b\n");	       /* 11 */
	const struct policy_settings *d = &p->defaults;
	const struct policy_settings *a = &p->rules[0].s, *b = &p->rules[1].s;
	struct policy_settings want = *d;

	cr_assert(p->has_default);
	cr_assert_eq(p->nrules, 2);
	cr_assert_str_eq(p->rules[0].name, "a");
	cr_assert_eq(p->rules[0].line, 6);
	cr_assert_str_eq(p->rules[1].name, "b");
	cr_assert_eq(d->set, 1ull << POLICY_KEY_CONNECT_TIMEOUT |
				 1ull << POLICY_KEY_RESPONSE_TIMEOUT |
				 1ull << POLICY_KEY_RETRIES |
				 1ull << POLICY_KEY_BREAKER);
	cr_assert_eq(d->key_line[POLICY_KEY_CONNECT_TIMEOUT], 2);
	cr_assert_eq(d->key_line[POLICY_KEY_BREAKER], 5);
	cr_assert_eq(d->connect_timeout_ms, 5000);
	cr_assert_eq(d->retries, 2);

	cr_assert_eq(a->connect_timeout_ms, 5000);
	cr_assert_eq(a->breaker, POLICY_BREAKER_ON);
	cr_assert_eq(a->retries, 3);
	cr_assert_eq(a->response_timeout_ms, 0, "none clears the inherited");
	cr_assert_eq(a->set, 1ull << POLICY_KEY_RETRIES |
				 1ull << POLICY_KEY_RESPONSE_TIMEOUT);
	cr_assert_eq(a->key_line[POLICY_KEY_RETRIES], 8);
	cr_assert_eq(a->key_line[POLICY_KEY_RESPONSE_TIMEOUT], 9);
	cr_assert_eq(a->key_line[POLICY_KEY_CONNECT_TIMEOUT], 0);

	want.set = 0;
	memset(want.key_line, 0, sizeof want.key_line);
	cr_assert_eq(memcmp(b, &want, sizeof want), 0,
		     "[b] is not [default] with nothing set");
	policy_free(p);
}

Test(policy, inherits_from_a_later_default)
{
	struct policy *p = load_ok("[a]\nmatch = a\n[default]\nretries = 4\n");

	cr_assert_eq(p->rules[0].s.retries, 4);
	cr_assert_eq(p->rules[0].s.set, 0);
	policy_free(p);
}

Test(policy, settings_of_rule_or_default)
{
	struct policy *p = load_ok("[default]\nretries = 1\n[a]\nmatch = a\n"
				   "retries = 2\n");
	struct policy_match m = {.rule = 0, .pattern = 0};

	cr_assert_eq(policy_settings_of(p, m), &p->rules[0].s);
	m.rule = -1;
	cr_assert_eq(policy_settings_of(p, m), &p->defaults);
	m.rule = -2;
	cr_assert_eq(policy_settings_of(p, m), &p->defaults);
	m.rule = 7;
	cr_assert_eq(policy_settings_of(p, m), &p->defaults);
	policy_free(p);
}

Test(policy, cross_checks_retry_backoff_max)
{
	EXPECT_ERRORS("[r]\nmatch = h\nretry_backoff = 100ms\n"
		      "retry_backoff_max = 50ms\n",
		      "t.ini:4: [r]: retry_backoff_max is less than "
		      "retry_backoff; raise it or lower retry_backoff");
	/* with an inherited maximum, the key the rule sets is blamed */
	EXPECT_ERRORS("[r]\nmatch = h\nretry_backoff = 1s\n",
		      "t.ini:3: [r]: retry_backoff_max is less than "
		      "retry_backoff; raise it or lower retry_backoff");
	check_ok("[r]\nmatch = h\nretry_backoff = 1s\nretry_backoff_max = "
		 "1s\n");
}

Test(policy, cross_checks_breaker_open_max)
{
	EXPECT_ERRORS("[default]\nbreaker_open = 10m\n",
		      "t.ini:2: [default]: breaker_open_max is less than "
		      "breaker_open; raise it or lower breaker_open");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_open_max = 10s\n",
		      "t.ini:3: [r]: breaker_open_max is less than "
		      "breaker_open; raise it or lower breaker_open");
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_open = 0\n",
		      "t.ini:3: [r]: breaker_open must be at least 1ms");
}

Test(policy, cross_checks_breaker_slow_rate)
{
	EXPECT_ERRORS("[r]\nmatch = h\nbreaker_slow_rate = 50%\n",
		      "t.ini:3: [r]: breaker_slow_rate needs breaker_slow (how "
		      "long a slow call takes, e.g. breaker_slow = 1s)");
	check_ok("[r]\nmatch = h\nbreaker_slow_rate = 50%\nbreaker_slow = "
		 "1s\n");
}

Test(policy, cross_checks_rate_burst)
{
	EXPECT_ERRORS("[r]\nmatch = h\nrate_burst = 10\n",
		      "t.ini:3: [r]: rate_burst needs rate (e.g. rate = "
		      "100/s)");
	check_ok("[default]\nrate = 5/s\n[r]\nmatch = h\nrate_burst = 10\n");
}

Test(policy, cross_checks_max_pending)
{
	EXPECT_ERRORS("[r]\nmatch = h\nmax_pending = 5\n",
		      "t.ini:3: [r]: max_pending needs max_connections");
	check_ok("[r]\nmatch = h\nmax_pending = 0\n");
	check_ok("[r]\nmatch = h\nmax_pending = 5\nmax_connections = 2\n");
}

Test(policy, strips_inline_comments)
{
	struct policy *p = load_ok("[r] ; the rule\n"
				   "match = a:80 b:81 ; two of them\n"
				   "connect_timeout = 5s ; short\n"
				   "retry_on = reset\t; only that\n");

	cr_assert_eq(p->nrules, 1);
	cr_assert_eq(p->npatterns, 2);
	cr_assert_str_eq(p->patterns[1].text, "b:81");
	cr_assert_eq(p->rules[0].s.connect_timeout_ms, 5000);
	cr_assert_eq(p->rules[0].s.retry_on, POLICY_RETRY_RESET);
	policy_free(p);
}

Test(policy, accepts_crlf_line_endings)
{
	struct policy *p = load_ok("[global]\r\nlog = info\r\n\r\n[r]\r\n"
				   "match = h:80\r\n"
				   "connect_timeout = 1s ; c\r\n"
				   "breaker = on\r\n");

	cr_assert_eq(p->log, POLICY_LOG_INFO);
	cr_assert_str_eq(p->patterns[0].text, "h:80");
	cr_assert_eq(p->patterns[0].port_lo, 80);
	cr_assert_eq(p->rules[0].s.connect_timeout_ms, 1000);
	cr_assert_eq(p->rules[0].s.breaker, POLICY_BREAKER_ON);
	cr_assert_eq(p->rules[0].s.key_line[POLICY_KEY_BREAKER], 7);
	policy_free(p);
	EXPECT_ERRORS("[r]\r\nmatch = h\r\nretries = x\r\n",
		      "t.ini:3: retries: 'x' is not a whole number; use 0 to "
		      "10");
}

Test(policy, indented_lines_are_not_continuations)
{
	struct policy *p = load_ok("[r]\n"
				   "  match = a\n"
				   "\tretries = 2\n"
				   "  [s]\n"
				   "    match = b\n");

	cr_assert_eq(p->nrules, 2);
	cr_assert_eq(p->npatterns, 2);
	cr_assert_str_eq(p->patterns[0].host, "a");
	cr_assert_eq(p->rules[0].s.retries, 2);
	cr_assert_eq(p->rules[0].s.key_line[POLICY_KEY_RETRIES], 3);
	policy_free(p);
	EXPECT_ERRORS("[r]\nmatch = a\n   b.example:80\n",
		      "t.ini:3: expected 'key = value', a [section] or a ; "
		      "comment");
}

Test(policy, no_trailing_newline)
{
	struct policy *p = load_ok("[r]\nmatch = h\nretries = 3");

	cr_assert_eq(p->rules[0].s.retries, 3);
	policy_free(p);
}

Test(policy, parses_global)
{
	struct policy *p = load_ok("[global]\n"
				   "segment = fb-%u.x_y\n"
				   "log = debug\n"
				   "reload = 500ms\n");

	cr_assert_str_eq(p->segment, "fb-%u.x_y");
	cr_assert_eq(p->segment_line, 2);
	cr_assert_eq(p->log, POLICY_LOG_DEBUG);
	cr_assert_eq(p->reload_ms, 500);
	policy_free(p);
	p = load_ok("[global]\nreload = 0\nlog = error\n");
	cr_assert_eq(p->reload_ms, 0);
	cr_assert_eq(p->log, POLICY_LOG_ERROR);
	policy_free(p);
}

Test(policy, reports_bad_global_values)
{
	EXPECT_ERRORS("[global]\nsegment = a/b\nlog = loud\nreload = 5\n"
		      "[global]\n",
		      "t.ini:2: segment: 'a/b' is not a segment name; use "
		      "letters, digits, '_', '-', '.' and %u for the uid",
		      "t.ini:3: log: 'loud' is not one of error, warn, info, "
		      "debug",
		      "t.ini:4: reload: '5' needs a unit: ms, s, m or h (e.g. "
		      "5s), or 0 for never",
		      "t.ini:5: section [global] is already defined; merge the "
		      "two");
	EXPECT_ERRORS("[global]\nreload = 50ms\n",
		      "t.ini:2: reload: '50ms' is not a duration of at least "
		      "100ms (e.g. 2s), or 0 for never");
	EXPECT_ERRORS("[global]\nsegment = a%x\n",
		      "t.ini:2: segment: 'a%x' is not a segment name; use "
		      "letters, digits, '_', '-', '.' and %u for the uid");
}

/* Loads "[global]\nsegment = " plus n letters plus tail: NULL when
 * rejected, with the one error checked against the 63 character rule. */
static struct policy *load_segment(size_t n, const char *tail)
{
	char name[128], text[192], want[256];
	struct policy *p;

	memset(name, 'a', n);
	snprintf(name + n, sizeof name - n, "%s", tail);
	snprintf(text, sizeof text, "[global]\nsegment = %s\n", name);
	p = load(text);
	if (p) {
		cr_assert_eq(errs.n, 0, "%s", dump());
		cr_assert_str_eq(p->segment, name);
		return p;
	}
	cr_assert_eq(errs.n, 1, "%s", dump());
	snprintf(want, sizeof want,
		 "t.ini:2: segment: '%s' is too long; with each %%u counted "
		 "as 10 digits, the name must fit in 63 characters",
		 name);
	cr_assert_str_eq(errs.msgs[0], want);
	policy_errors_free(&errs);
	return NULL;
}

Test(policy, segment_length_check_agrees_with_its_message)
{
	char buf[POLICY_SEGMENT_MAX];
	struct policy *p;

	/* 63 characters without %u fit; the message used to say 53 */
	p = load_segment(63, "");
	cr_assert_not_null(p);
	cr_assert_eq(policy_segment_name(p->segment, 0, buf, sizeof buf), 0);
	policy_free(p);
	cr_assert_null(load_segment(64, ""));
	/* 53 + the 10 digits of the largest uid = 63 */
	p = load_segment(53, "%u");
	cr_assert_not_null(p);
	cr_assert_eq(
	    policy_segment_name(p->segment, 4294967295u, buf, sizeof buf), 0);
	cr_assert_eq(strlen(buf), 63);
	policy_free(p);
	cr_assert_null(load_segment(54, "%u"));
	cr_assert_null(load_segment(44, "%u%u"));
	policy_free(load_segment(43, "%u%u"));
}

Test(policy, log_level_names)
{
	cr_assert_eq(policy_log_level("error"), POLICY_LOG_ERROR);
	cr_assert_eq(policy_log_level("warn"), POLICY_LOG_WARN);
	cr_assert_eq(policy_log_level("info"), POLICY_LOG_INFO);
	cr_assert_eq(policy_log_level("debug"), POLICY_LOG_DEBUG);
	cr_assert_eq(policy_log_level("trace"), -1);
	cr_assert_eq(policy_log_level(""), -1);
}

Test(policy, segment_name_expands_uid)
{
	char buf[64];

	cr_assert_eq(policy_segment_name("fusebox-%u", 1000, buf, sizeof buf),
		     0);
	cr_assert_str_eq(buf, "fusebox-1000");
	cr_assert_eq(policy_segment_name("plain", 5, buf, sizeof buf), 0);
	cr_assert_str_eq(buf, "plain");
	cr_assert_eq(policy_segment_name("%u.%u", 7, buf, sizeof buf), 0);
	cr_assert_str_eq(buf, "7.7");
	cr_assert_eq(policy_segment_name("x%u", 4294967295u, buf, sizeof buf),
		     0);
	cr_assert_str_eq(buf, "x4294967295");
	cr_assert_eq(policy_segment_name("", 1, buf, sizeof buf), 0);
	cr_assert_str_eq(buf, "");
}

Test(policy, segment_name_too_long)
{
	char buf[8];

	memset(buf, 'z', sizeof buf);
	cr_assert_eq(policy_segment_name("abc%u", 1234, buf, 8), 0);
	cr_assert_str_eq(buf, "abc1234");
	cr_assert_eq(policy_segment_name("abc%u", 12345, buf, 8),
		     -ENAMETOOLONG);
	cr_assert_eq(policy_segment_name("abcdefgh", 1, buf, 8), -ENAMETOOLONG);
	cr_assert_eq(policy_segment_name("abcdefg", 1, buf, 8), 0);
	cr_assert_eq(policy_segment_name("", 1, buf, 0), -ENAMETOOLONG);
}

/* Writes text to a new temporary file whose name goes to path. */
static void write_temp(char *path, const char *text, size_t len)
{
	int fd;

	strcpy(path, "/tmp/fusebox-test-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

Test(policy, loads_a_file)
{
	static const char text[] = "[global]\nlog = info\n[r]\nmatch = h\n"
				   "retries = 3\n";
	char path[64];
	struct policy *p;

	write_temp(path, text, sizeof text - 1);
	p = policy_load(path, &errs);
	cr_assert_not_null(p, "%s", dump());
	cr_assert_str_eq(p->path, path);
	cr_assert_eq(p->log, POLICY_LOG_INFO);
	cr_assert_eq(p->rules[0].s.retries, 3);
	policy_free(p);
	unlink(path);
}

Test(policy, file_errors_name_the_file_as_given)
{
	static const char text[] = "[r]\nmatch = h\nretries = 99\n";
	char path[64], want[160];

	write_temp(path, text, sizeof text - 1);
	cr_assert_null(policy_load(path, &errs));
	cr_assert_eq(errs.n, 1, "%s", dump());
	snprintf(want, sizeof want,
		 "%s:3: retries: 99 is out of range; use 0 to 10", path);
	cr_assert_str_eq(errs.msgs[0], want);
	policy_errors_free(&errs);
	unlink(path);
}

Test(policy, file_missing_or_binary)
{
	static const char text[] = "[r]\nmatch\0= h\n";
	char path[64], want[160];

	cr_assert_null(policy_load("/nonexistent/fusebox.ini", &errs));
	cr_assert_eq(errs.n, 1);
	cr_assert_str_eq(errs.msgs[0], "/nonexistent/fusebox.ini: cannot "
				       "open: No such file or directory");
	policy_errors_free(&errs);
	write_temp(path, text, sizeof text - 1);
	cr_assert_null(policy_load(path, &errs));
	cr_assert_eq(errs.n, 1);
	snprintf(want, sizeof want,
		 "%s: contains a NUL byte; is this a policy file?", path);
	cr_assert_str_eq(errs.msgs[0], want);
	policy_errors_free(&errs);
	unlink(path);
}

Test(policy, loads_many_sections_in_linear_time, .timeout = 10)
{
	size_t n = 20000, cap = n * 48, o = 0;
	char *text = malloc(cap);
	struct policy *p;

	cr_assert_not_null(text);
	for (size_t i = 0; i < n; i++) {
		if (i == n / 2)
			o += (size_t)snprintf(text + o, cap - o,
					      "[default]\nretries = 1\n");
		o += (size_t)snprintf(text + o, cap - o,
				      "[r%zu]\nmatch = h%zu\n", i, i);
	}
	p = load_ok(text);
	cr_assert_eq(p->nrules, n);
	cr_assert_eq(p->npatterns, n);
	for (size_t i = 0; i < n; i += 997) {
		char name[32];

		snprintf(name, sizeof name, "r%zu", i);
		cr_assert_str_eq(p->rules[i].name, name);
		cr_assert_eq(p->patterns[i].rule, i,
			     "pattern of [r%zu] is not of rule %zu", i, i);
	}
	cr_assert_eq(p->rules[n - 1].s.retries, 1);
	policy_free(p);
	/* duplicates among many sections are still found, with the line */
	o += (size_t)snprintf(text + o, cap - o, "[r7]\n[r19999]\n[default]\n");
	cr_assert_null(load(text));
	cr_assert_eq(errs.n, 3, "%s", dump());
	cr_assert_str_eq(errs.msgs[0], "t.ini:40003: section [r7] is already "
				       "defined at line 15; merge the two");
	cr_assert_str_eq(errs.msgs[1], "t.ini:40004: section [r19999] is "
				       "already defined at line 40001; merge "
				       "the two");
	cr_assert_str_eq(errs.msgs[2], "t.ini:40005: section [default] is "
				       "already defined at line 20001; merge "
				       "the two");
	policy_errors_free(&errs);
	free(text);
}

Test(policy, loads_a_large_file, .timeout = 10)
{
	size_t n = 20000, cap = n * 32, o = 0;
	char *text = malloc(cap), path[64];
	struct policy *p;

	cr_assert_not_null(text);
	o += (size_t)snprintf(text, cap, "[r]\n");
	for (size_t i = 0; i < n; i++)
		o +=
		    (size_t)snprintf(text + o, cap - o, "match = h%zu:80\n", i);
	write_temp(path, text, o);
	p = policy_load(path, &errs);
	cr_assert_not_null(p, "%s", dump());
	cr_assert_eq(p->npatterns, n);
	cr_assert_str_eq(p->patterns[n - 1].host, "h19999");
	cr_assert_eq(p->patterns[n - 1].line, n + 1);
	policy_free(p);
	free(text);
	unlink(path);
}

Test(policy, reports_every_bad_pattern_of_a_match_line)
{
	struct policy *p;

	EXPECT_ERRORS("[r]\nmatch = a:0 ok bad!host b:70000 fine:80\n",
		      "t.ini:2: match: 'a:0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:2: match: 'bad!host' is not a hostname, address, "
		      "CIDR block or *; hostnames use letters, digits, '-', "
		      "'.', '_'",
		      "t.ini:2: match: 'b:70000': ports are N, N-M or * with "
		      "N from 1 to 65535 (e.g. 8000, 8000-8100)");
	/* the good patterns of the line are kept */
	p = load_ok("[r]\nmatch = ok fine:80\n");
	cr_assert_eq(p->npatterns, 2);
	policy_free(p);
}

Test(policy, checks_keys_of_sections_it_cannot_use)
{
	/* a malformed header: its keys are checked under the name it has */
	EXPECT_ERRORS("[r\nretries = 11\nmatch = h:0\nfrob = 1\n",
		      "t.ini:1: malformed section header; write [name]",
		      "t.ini:2: retries: 11 is out of range; use 0 to 10",
		      "t.ini:3: match: 'h:0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:4: unknown key 'frob' in [r]; see fusebox.ini(5) "
		      "for the keys");
	EXPECT_ERRORS("[r] x\nbreaker = maybe\n",
		      "t.ini:1: malformed section header; write [name]",
		      "t.ini:2: breaker: 'maybe' is not one of on, off, "
		      "dry-run");
	/* a bad rule name */
	EXPECT_ERRORS("[bad name!]\nmatch = h\nretries = x\nretries = 1\n"
		      "retries = 2\n",
		      "t.ini:1: [bad name!]: a rule name is 1 to 63 letters, "
		      "digits, '_', '-' or '.'",
		      "t.ini:3: retries: 'x' is not a whole number; use 0 to "
		      "10",
		      "t.ini:5: duplicate key 'retries' in [bad name!] (first "
		      "set at line 4); remove one");
	/* a repeated rule: checked, but its keys are not merged into the
	 * first one, so no duplicate across the two */
	EXPECT_ERRORS("[r]\nmatch = h\nretries = 1\n[r]\nmatch = 10.0.0.0/40\n"
		      "retries = 2\nconect_timeout = 1s\n",
		      "t.ini:4: section [r] is already defined at line 1; "
		      "merge the two",
		      "t.ini:5: match: '10.0.0.0/40': the prefix length of an "
		      "IPv4 block is 0 to 32",
		      "t.ini:7: unknown key 'conect_timeout' in [r]; did you "
		      "mean 'connect_timeout'?");
	/* a repeated [default]: still no match in it */
	EXPECT_ERRORS("[default]\n[default]\nmatch = h\nrate = 5\n",
		      "t.ini:2: section [default] is already defined at line "
		      "1; merge the two",
		      "t.ini:3: 'match' is not allowed in [default]; put it in "
		      "a rule section",
		      "t.ini:4: rate: '5' needs a unit: /s or /m (e.g. 5/s)");
	/* the next good section is used as before */
	EXPECT_ERRORS("[bad!]\nretries = 1\n[r]\nretries = 2\n",
		      "t.ini:1: [bad!]: a rule name is 1 to 63 letters, "
		      "digits, '_', '-' or '.'",
		      "t.ini:3: [r] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'");
}

Test(policy, none_clears_max_connections_and_rate_burst)
{
	struct policy *p = load_ok("[default]\n"
				   "max_connections = 10\n"
				   "rate = 5/s\n"
				   "rate_burst = 20\n"
				   "[a]\n"
				   "match = a\n"
				   "max_connections = none\n"
				   "rate_burst = none\n"
				   "[b]\n"
				   "match = b\n");
	const struct policy_settings *a = &p->rules[0].s, *b = &p->rules[1].s;

	cr_assert_eq(a->max_connections, 0);
	cr_assert_eq(a->rate_burst, 0);
	cr_assert_eq(a->rate_mps, 5000);
	cr_assert_str_eq(fmt(a, POLICY_KEY_MAX_CONNECTIONS), "none");
	cr_assert_str_eq(fmt(a, POLICY_KEY_RATE_BURST), "rate per second");
	cr_assert_eq(a->key_line[POLICY_KEY_MAX_CONNECTIONS], 7);
	cr_assert_eq(b->max_connections, 10);
	cr_assert_eq(b->rate_burst, 20);
	policy_free(p);
	/* none needs no rate, and a rule may drop the limit its inherited
	 * max_pending waits for */
	check_ok("[r]\nmatch = h\nrate_burst = none\n");
	check_ok("[default]\nmax_connections = 5\nmax_pending = 2\n"
		 "[r]\nmatch = h\nmax_connections = none\n");
	EXPECT_ERRORS("[r]\nmatch = h\nmax_connections = 0\n",
		      "t.ini:3: max_connections: 0 is out of range; use 1 to "
		      "1000000, or none");
	EXPECT_ERRORS("[r]\nmatch = h\nrate_burst = lots\n",
		      "t.ini:3: rate_burst: 'lots' is not a whole number; use "
		      "1 to 1000000, or none");
	EXPECT_ERRORS("[r]\nmatch = h\nretries = none\n",
		      "t.ini:3: retries: 'none' is not a whole number; use 0 "
		      "to 10");
}

Test(policy, durations_that_are_not_optional_reject_none)
{
	EXPECT_ERRORS("[default]\n"
		      "retry_backoff_max = none\n"
		      "breaker_open = none\n"
		      "breaker_open_max = none\n"
		      "queue_timeout = none\n",
		      "t.ini:2: retry_backoff_max: 'none' is not allowed; "
		      "retry_backoff_max needs a duration (the default is "
		      "250ms)",
		      "t.ini:3: breaker_open: 'none' is not allowed; "
		      "breaker_open needs a duration (the default is 30s)",
		      "t.ini:4: breaker_open_max: 'none' is not allowed; "
		      "breaker_open_max needs a duration (the default is 5m)",
		      "t.ini:5: queue_timeout: 'none' is not allowed; "
		      "queue_timeout needs a duration (the default is 1s)");
}

Test(policy, default_conflict_is_reported_once_at_its_key)
{
	/* three rules inherit it; only [default] reports, at line 3 */
	EXPECT_ERRORS("[default]\n"
		      "retries = 1\n"
		      "retry_backoff = 1s\n"
		      "breaker_slow_rate = 50%\n"
		      "[a]\nmatch = a\n"
		      "[b]\nmatch = b\n"
		      "[c]\nmatch = c\n",
		      "t.ini:3: [default]: retry_backoff_max is less than "
		      "retry_backoff; raise it or lower retry_backoff",
		      "t.ini:4: [default]: breaker_slow_rate needs "
		      "breaker_slow (how long a slow call takes, e.g. "
		      "breaker_slow = 1s)");
	/* a rule that sets one of the keys has a conflict of its own */
	EXPECT_ERRORS("[default]\n"
		      "retry_backoff = 100ms\n"
		      "retry_backoff_max = 200ms\n"
		      "[a]\nmatch = a\n"
		      "retry_backoff_max = 50ms\n"
		      "[b]\nmatch = b\n",
		      "t.ini:6: [a]: retry_backoff_max is less than "
		      "retry_backoff; raise it or lower retry_backoff");
	EXPECT_ERRORS("[default]\n"
		      "breaker_open_max = 1s\n"
		      "breaker_open = 2s\n"
		      "[a]\nmatch = a\n"
		      "breaker_open = 3s\n",
		      "t.ini:2: [default]: breaker_open_max is less than "
		      "breaker_open; raise it or lower breaker_open",
		      "t.ini:6: [a]: breaker_open_max is less than "
		      "breaker_open; raise it or lower breaker_open");
	/* fixing it in the rule is not an error */
	EXPECT_ERRORS("[default]\nbreaker_slow_rate = 10%\n"
		      "[a]\nmatch = a\nbreaker_slow = 1s\n"
		      "[b]\nmatch = b\n",
		      "t.ini:2: [default]: breaker_slow_rate needs "
		      "breaker_slow (how long a slow call takes, e.g. "
		      "breaker_slow = 1s)");
}

Test(policy, errors_are_in_line_order)
{
	EXPECT_ERRORS("[a]\n"		     /* 1: no match */
		      "retries = 1\n"	     /* 2 */
		      "retry_backoff = 2s\n" /* 3: cross-check */
		      "retries = 2\n"	     /* 4: duplicate */
		      "[default]\n"	     /* 5 */
		      "breaker_open = 0\n"   /* 6: cross-check */
		      "breaker_probes = 0\n" /* 7: range */
		      "[b]\n"		     /* 8: no match */
		      "rate_burst = 3\n",    /* 9: cross-check */
		      "t.ini:1: [a] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'",
		      "t.ini:3: [a]: retry_backoff_max is less than "
		      "retry_backoff; raise it or lower retry_backoff",
		      "t.ini:4: duplicate key 'retries' in [a] (first set at "
		      "line 2); remove one",
		      "t.ini:6: [default]: breaker_open must be at least 1ms",
		      "t.ini:7: breaker_probes: 0 is out of range; use 1 to "
		      "100",
		      "t.ini:8: [b] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'",
		      "t.ini:9: [b]: rate_burst needs rate (e.g. rate = "
		      "100/s)");
	/* errors of one line stay in the order found */
	EXPECT_ERRORS("[r]\nmatch = h:0 h:1-0\n",
		      "t.ini:2: match: 'h:0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)",
		      "t.ini:2: match: 'h:1-0': ports are N, N-M or * with N "
		      "from 1 to 65535 (e.g. 8000, 8000-8100)");
}

Test(policy, sorts_only_the_errors_of_this_load)
{
	cr_assert_null(load("[r]\nmatch = h\nretries = 50\n"));
	cr_assert_null(load("[s]\nretries = x\n"));
	cr_assert_eq(errs.n, 3, "%s", dump());
	cr_assert_str_eq(errs.msgs[0], "t.ini:3: retries: 50 is out of range; "
				       "use 0 to 10");
	cr_assert_str_eq(errs.msgs[1], "t.ini:1: [s] has no 'match'; add the "
				       "destinations it guards, e.g. 'match = "
				       "payment-service:8000'");
	cr_assert_str_eq(errs.msgs[2], "t.ini:2: retries: 'x' is not a whole "
				       "number; use 0 to 10");
	policy_errors_free(&errs);
}

Test(policy, skips_a_utf8_byte_order_mark)
{
	struct policy *p = load_ok("\xef\xbb\xbf[r]\nmatch = h\nretries = 2\n");

	cr_assert_eq(p->nrules, 1);
	cr_assert_str_eq(p->rules[0].name, "r");
	cr_assert_eq(p->rules[0].s.retries, 2);
	policy_free(p);
	p = load_ok("\xef\xbb\xbf; comment\r\n[global]\r\nlog = info\r\n");
	cr_assert_eq(p->log, POLICY_LOG_INFO);
	policy_free(p);
	check_ok("\xef\xbb\xbf");
	/* only before the first line */
	EXPECT_ERRORS("[r]\nmatch = h\n\xef\xbb\xbfretries = 2\n",
		      "t.ini:3: '\xef\xbb\xbfretries' is not a key name; did "
		      "you mean 'retries'?");
}

Test(policy, reports_a_file_over_64_mib)
{
	char path[64], want[160];
	int fd;

	write_temp(path, "[r]\nmatch = h\n", 14);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (64 << 20) + 1), 0);
	close(fd);
	cr_assert_null(policy_load(path, &errs));
	cr_assert_eq(errs.n, 1, "%s", dump());
	snprintf(want, sizeof want,
		 "%s: larger than 64 MiB; is this a policy file?", path);
	cr_assert_str_eq(errs.msgs[0], want);
	policy_errors_free(&errs);
	unlink(path);
}

Test(policy, reports_a_key_that_is_not_a_key_name)
{
	EXPECT_ERRORS("[r]\nmatch = h\nretries: 2\n",
		      "t.ini:3: 'retries: 2' is not a key name; write key = "
		      "value");
	EXPECT_ERRORS("[r]\nmatch: a = b\n",
		      "t.ini:1: [r] has no 'match'; add the destinations it "
		      "guards, e.g. 'match = payment-service:8000'",
		      "t.ini:2: 'match: a' is not a key name; write key = "
		      "value");
	EXPECT_ERRORS("[r]\nmatch = h\nretries: 2 ; two\n",
		      "t.ini:3: 'retries: 2' is not a key name; write key = "
		      "value");
	EXPECT_ERRORS("[global]\nlog: info\n",
		      "t.ini:2: 'log: info' is not a key name; write key = "
		      "value");
	/* close to a key: the suggestion instead */
	EXPECT_ERRORS("[r]\nmatch = h\nconnect-timeout = 1s\n"
		      "retry backoff = 1s\n= 3\n",
		      "t.ini:3: 'connect-timeout' is not a key name; did you "
		      "mean 'connect_timeout'?",
		      "t.ini:4: 'retry backoff' is not a key name; did you "
		      "mean 'retry_backoff'?",
		      "t.ini:5: '' is not a key name; write key = value");
	EXPECT_ERRORS("[global]\nre-load = 1s\n",
		      "t.ini:2: 're-load' is not a key name; did you mean "
		      "'reload'?");
	/* a value may hold ':' and '=' */
	check_ok("[r]\nmatch = h:80 [::1]:80\n");
	/* not key-like before the ':': the plain message */
	EXPECT_ERRORS("[r]\nmatch = h\nb.example:80\n",
		      "t.ini:3: expected 'key = value', a [section] or a ; "
		      "comment");
}

Test(policy, suggests_the_special_section_meant)
{
	EXPECT_ERRORS(
	    "[defualt]\nretries = 1\n[globl]\nlog = info\n"
	    "[DEFAULT]\n[GLOBL]\n[defaults]\n[other]\n",
	    "t.ini:1: [defualt] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'; did you "
	    "mean [default]?",
	    "t.ini:3: [globl] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'; did you "
	    "mean [global]?",
	    "t.ini:4: unknown key 'log' in [globl]; see "
	    "fusebox.ini(5) for the keys",
	    "t.ini:5: [DEFAULT] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'; did you "
	    "mean [default]?",
	    "t.ini:6: [GLOBL] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'; did you "
	    "mean [global]?",
	    "t.ini:7: [defaults] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'; did you "
	    "mean [default]?",
	    "t.ini:8: [other] has no 'match'; add the destinations "
	    "it guards, e.g. 'match = payment-service:8000'");
}

Test(policy, formats_rates_exact_per_minute)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"7/m", "7/m"},	    {"1/m", "1/m"},
	    {"59/m", "59/m"},	    {"61/m", "61/m"},
	    {"600/m", "10/s"},	    {"90/m", "90/m"},
	    {"0.5/s", "30/m"},	    {"2.5/s", "150/m"},
	    {"100/s", "100/s"},	    {"0.001/s", "0.001/s"},
	    {"1.234/s", "1.234/s"}, {"100000/m", "100000/m"},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char line[64];
		struct policy *p;

		snprintf(line, sizeof line, "rate = %s", t[i].in);
		p = load_rule_line(line);
		cr_assert_str_eq(fmt(&p->rules[0].s, POLICY_KEY_RATE), t[i].out,
				 "%s", t[i].in);
		policy_free(p);
	}
}

Test(policy, switch_words_in_any_case)
{
	struct policy *p = load_ok("[r]\nmatch = h\nfailover = OFF\n"
				   "breaker = On\n"
				   "[s]\nmatch = i\nfailover = No\n"
				   "breaker = Dry-Run\n"
				   "[t]\nmatch = j\nbreaker = FALSE\n");

	cr_assert_eq(p->rules[0].s.failover, false);
	cr_assert_eq(p->rules[0].s.breaker, POLICY_BREAKER_ON);
	cr_assert_eq(p->rules[1].s.failover, false);
	cr_assert_eq(p->rules[1].s.breaker, POLICY_BREAKER_DRY_RUN);
	cr_assert_eq(p->rules[2].s.breaker, POLICY_BREAKER_OFF);
	policy_free(p);
}

/* Environment and working directory saved around the locate tests. */
static char saved_cwd[PATH_MAX];
static char *saved_env[3];
static const char *const env_names[3] = {"FUSEBOX_POLICY", "XDG_CONFIG_HOME",
					 "HOME"};
static char tmpdir[64];

static void locate_setup(void)
{
	cr_assert_not_null(getcwd(saved_cwd, sizeof saved_cwd));
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(env_names[i]);
		saved_env[i] = v ? strdup(v) : NULL;
		unsetenv(env_names[i]);
	}
	strcpy(tmpdir, "/tmp/fusebox-locate-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_eq(chdir(tmpdir), 0);
}

static void locate_teardown(void)
{
	char cmd[128];

	if (chdir(saved_cwd) != 0)
		perror("chdir");
	for (int i = 0; i < 3; i++) {
		if (saved_env[i])
			setenv(env_names[i], saved_env[i], 1);
		else
			unsetenv(env_names[i]);
		free(saved_env[i]);
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (tmpdir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Creates dir/sub/fusebox.ini (sub may be ""), making the folders. */
static void touch_policy(const char *dir, const char *sub)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	mkdir(path, 0700);
	if (strchr(sub, '/')) {
		snprintf(path, sizeof path, "%s/%.*s", dir,
			 (int)(strchr(sub, '/') - sub), sub);
		mkdir(path, 0700);
		snprintf(path, sizeof path, "%s/%s", dir, sub);
		mkdir(path, 0700);
	}
	snprintf(path, sizeof path, "%s/%s/fusebox.ini", dir, sub);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs("[default]\n", f);
	fclose(f);
}

Test(policy, locate_follows_the_search_order, .init = locate_setup,
     .fini = locate_teardown)
{
	char buf[PATH_MAX], want[PATH_MAX];
	bool etc = access("/etc/fusebox/fusebox.ini", R_OK) == 0;

	/* nothing anywhere (unless this machine has /etc/fusebox) */
	setenv("HOME", tmpdir, 1);
	if (!etc)
		cr_assert_eq(policy_locate(buf, sizeof buf), -ENOENT);

	/* ~/.config/fusebox/fusebox.ini */
	touch_policy(tmpdir, ".config/fusebox");
	snprintf(want, sizeof want, "%s/.config/fusebox/fusebox.ini", tmpdir);
	cr_assert_eq(policy_locate(buf, sizeof buf), 2);
	cr_assert_str_eq(buf, want);

	/* $XDG_CONFIG_HOME replaces ~/.config */
	setenv("XDG_CONFIG_HOME", "/nonexistent-xdg", 1);
	if (!etc)
		cr_assert_eq(policy_locate(buf, sizeof buf), -ENOENT);
	snprintf(want, sizeof want, "%s/xdg", tmpdir);
	setenv("XDG_CONFIG_HOME", want, 1);
	touch_policy(tmpdir, "xdg/fusebox");
	snprintf(want, sizeof want, "%s/xdg/fusebox/fusebox.ini", tmpdir);
	cr_assert_eq(policy_locate(buf, sizeof buf), 2);
	cr_assert_str_eq(buf, want);

	/* ./fusebox.ini comes before both */
	touch_policy(tmpdir, ".");
	cr_assert_eq(policy_locate(buf, sizeof buf), 2);
	cr_assert_str_eq(buf, "fusebox.ini");

	/* FUSEBOX_POLICY comes first, even when it does not exist; empty is
	 * unset */
	setenv("FUSEBOX_POLICY", "", 1);
	cr_assert_eq(policy_locate(buf, sizeof buf), 2);
	setenv("FUSEBOX_POLICY", "/somewhere/p.ini", 1);
	cr_assert_eq(policy_locate(buf, sizeof buf), 1);
	cr_assert_str_eq(buf, "/somewhere/p.ini");
	cr_assert_eq(policy_locate(buf, 8), -ENAMETOOLONG);
}
