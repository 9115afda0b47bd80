/* SPDX-License-Identifier: MIT */
/* What HTTP/2 replies say (shim/streams.c, nghttp2's HPACK decoder):
 * with classify = http a stream whose :status is 5xx fails; with
 * classify = grpc a call fails on a grpc-status of grpc_fail_on, read
 * from a trailers-only reply or from the trailers after the headers.
 * Before, every HTTP/2 reply that started was a success. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* gRPC calls of grpc_status.py, one channel, under pol. */
static struct run *grpc_calls(const char *pol, char *const calls[])
{
	char *script = src_path("tests/integration/scripts/grpc_status.py");
	char *argv[16] = {"/usr/bin/python3", script};
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 40};
	int a = 2;

	for (int i = 0; calls[i] && a < 15; i++)
		argv[a++] = calls[i];
	argv[a] = NULL;
	harness_segment();
	cr_assert_eq(run_prog(r, &o, argv), 0);
	free(script);
	return r;
}

Test(http2, grpc_status_fails_calls_with_classify_grpc, .timeout = 60)
{
	char *pol = policy_write("[default]\nclassify = grpc\n"
				 "response_timeout = 5s\n");
	char *calls[] = {"ok",	      "unavailable",   "ok", "internal",
			 "not_found", "late_internal", "ok", NULL};
	struct run *r = grpc_calls(pol, calls);
	char *s;

	cr_assert_str_eq(r->out,
			 "ok ok\nunavailable UNAVAILABLE\nok ok\n"
			 "internal INTERNAL\nnot_found NOT_FOUND\n"
			 "late_internal INTERNAL\nok ok\n",
			 "stderr: %s", r->err);
	s = stats_line("default");
	cr_assert_eq(stats_field(s, "calls"), 7, "%s", s);
	/* NOT_FOUND is not in grpc_fail_on: the service answered */
	cr_assert_eq(stats_field(s, "grpc_failures"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 4, "%s", s);
	free(r);
	free(pol);
}

Test(http2, grpc_unavailable_opens_the_breaker, .timeout = 60)
{
	char *pol = policy_write("[default]\nclassify = grpc\nbreaker = on\n"
				 "breaker_failures = 3\nbreaker_open = 1m\n"
				 "grpc_fail_on = UNAVAILABLE, NOT_FOUND\n");
	char *calls[] = {"unavailable", "not_found", "unavailable", NULL};
	struct run *r = grpc_calls(pol, calls);
	char *s;

	cr_assert_str_eq(r->out,
			 "unavailable UNAVAILABLE\nnot_found NOT_FOUND\n"
			 "unavailable UNAVAILABLE\n",
			 "stderr: %s", r->err);
	s = stats_line("default");
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	cr_assert_eq(stats_field(s, "grpc_failures"), 3, "%s", s);
	free(r);
	free(pol);
}

/* A node HTTP/2 server in clear, answering 503 on /503, and curl with
 * prior knowledge, a connection per run. */
Test(http2, status_5xx_fails_streams_with_classify_http, .timeout = 60)
{
	char *script = src_path("tests/integration/scripts/h2tls.js");
	char *node[] = {"node", script, NULL}, url[5][64], *pol, *s;
	static const char *const paths[] = {"a", "503", "503", "503", "a"};
	static const char *const want[] = {"200", "503", "503", "503", "000"};
	struct fixture f;
	struct run *r = run_new();

	cr_assert_eq(server_start(&f, node), 0, "node http2 server");
	pol = rule_policy(f.port, "classify = http\nbreaker = on\n"
				  "breaker_failures = 3\nbreaker_open = 1m\n");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};
	for (int i = 0; i < 5; i++) {
		snprintf(url[i], sizeof url[i], "http://127.0.0.1:%d/%s",
			 f.port, paths[i]);
		char *argv[] = {
		    "curl",	    "-s",	 "--http2-prior-knowledge",
		    "-o",	    "/dev/null", "-w",
		    "%{http_code}", url[i],	 NULL};
		cr_assert_eq(run_prog(r, &o, argv), 0);
		cr_assert_str_eq(r->out, want[i], "run %d: %s", i, r->err);
	}
	fixture_stop(&f);
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	cr_assert_eq(stats_field(s, "http_5xx"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "rejected_breaker"), 1, "%s", s);
	free(script);
	free(pol);
	free(r);
}

/* A stream the server resets with REFUSED_STREAM (it never processed
 * it) is a refused call, counted in connect_refused. */
Test(http2, a_refused_stream_is_a_refused_call, .timeout = 60)
{
	char *script = src_path("tests/integration/scripts/h2tls.js");
	char *node[] = {"node", script, NULL}, url[64], *pol, *s;
	struct fixture f;
	struct run *r = run_new();

	cr_assert_eq(server_start(&f, node), 0, "node http2 server");
	pol = rule_policy(f.port, "classify = http\n");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};
	snprintf(url, sizeof url, "http://127.0.0.1:%d/refuse", f.port);
	char *argv[] = {"curl", "-s",	     "--http2-prior-knowledge",
			"-o",	"/dev/null", url,
			NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	fixture_stop(&f);
	cr_assert_neq(r->status, 0, "curl took a refused stream");
	s = stats_line("r");
	/* curl tries a refused stream again on fresh connections (6 in
	 * all): each is a refused call */
	cr_assert_geq(stats_field(s, "connect_refused"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "connect_refused"), stats_field(s, "calls"),
		     "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 0, "%s", s);
	cr_assert_eq(stats_field(s, "resets"), 0, "%s", s);
	free(script);
	free(pol);
	free(r);
}
