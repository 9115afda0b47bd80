/* SPDX-License-Identifier: MIT */
/* Replay of HTTP/1.x requests (shim/replay.c): a request fusebox saw
 * whole, whose method is in retry_methods, is sent again on a fresh
 * connection when the server resets or closes before a reply byte
 * (retry_on = empty), lets response_timeout pass (response-timeout) or
 * answers 5xx (5xx, gateway-error) -- and the program sees only the
 * reply that came last.  Never a POST unless listed, never an upgrade.
 * Without replay, curl fails with exit 56 or sees the 503. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A new empty temporary file; its path (malloc'd). */
static char *temp_file(void)
{
	char *path = strdup("/tmp/fusebox-replay-XXXXXX");
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	close(fd);
	return path;
}

/* How many lines of file are exactly line. */
static int lines_in(const char *file, const char *line)
{
	char buf[256];
	int k = 0;
	FILE *f = fopen(file, "r");

	while (f && fgets(buf, sizeof buf, f))
		k += !strcmp(buf, line);
	if (f)
		fclose(f);
	return k;
}

/* The HTTP fixture: its first `first` requests get fault. */
static void start(struct fixture *f, const char *log, const char *first,
		  const char *fault)
{
	if (!strcmp(fault, "503"))
		cr_assert_eq(fixture_start(f, "http", "--first", first,
					   "--fault", "status", "--status",
					   "503", "--log", log, NULL),
			     0);
	else
		cr_assert_eq(fixture_start(f, "http", "--first", first,
					   "--fault", fault, "--log", log,
					   NULL),
			     0);
}

/* curl under pol: prints the status code; extra, extra2: more of its
 * argv (NULL: none). */
static struct run *curl2(const char *pol, int port, const char *extra,
			 const char *extra2)
{
	char url[64];
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};

	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
	char *argv[] = {
	    "curl",	    "-sS", "-o",	  "/dev/null",	  "-w",
	    "%{http_code}", url,   (char *)extra, (char *)extra2, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out);
	return r;
}

static struct run *curl(const char *pol, int port, const char *extra)
{
	return curl2(pol, port, extra, NULL);
}

#define POLICY                                                                 \
	"retries = 2\nretry_backoff = 10ms\nresponse_timeout = 500ms\n"        \
	"retry_on = empty, 5xx, response-timeout\n"

Test(replay, a_get_the_server_reset_goes_again)
{
	struct fixture f;
	char *log = temp_file(), *pol, *s;
	struct run *r;

	start(&f, log, "1", "reset");
	pol = rule_policy(f.port, POLICY);
	r = curl(pol, f.port, NULL);
	fixture_stop(&f);
	cr_assert_eq(r->status, 0, "curl: %s", r->err);
	cr_assert_str_eq(r->out, "200");
	cr_assert_eq(lines_in(log, "request GET\n"), 2);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "retries"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "replays_empty"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "resets"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 1, "%s", s);
	/* Prometheus: the retry by its reason */
	{
		char *bin = build_path("fusebox");
		struct run *p = run_new();
		struct run_opts o = {.timeout = 10};
		char *argv[] = {bin,
				"stats",
				"--prometheus",
				"-s",
				(char *)harness_segment(),
				NULL};
		cr_assert_eq(run_prog(p, &o, argv), 0);
		cr_assert(strstr(p->out, "reason=\"empty\"} 1\n"), "%s",
			  p->out);
		cr_assert(strstr(p->out, "reason=\"connect\"} 0\n"), "%s",
			  p->out);
		free(bin);
		free(p);
	}
	unlink(log);
}

Test(replay, a_post_is_never_sent_twice)
{
	struct fixture f;
	char *log = temp_file(), *pol, *s;
	struct run *r;

	start(&f, log, "1", "reset");
	pol = rule_policy(f.port, POLICY);
	r = curl(pol, f.port, "-dx=1");
	fixture_stop(&f);
	cr_assert_eq(r->status, 56, "curl: %d %s", r->status, r->err);
	cr_assert_eq(lines_in(log, "request POST\n"), 1);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "retries"), 0, "%s", s);
	unlink(log);
}

Test(replay, a_503_then_a_200_is_seen_as_the_200)
{
	struct fixture f;
	char *log = temp_file(), *pol, *s;
	struct run *r;

	start(&f, log, "1", "503");
	pol = rule_policy(f.port, POLICY);
	r = curl(pol, f.port, NULL);
	cr_assert_str_eq(r->out, "200", "curl: %s", r->err);
	free(r);
	/* Python requests, blocking: the same */
	{
		char url[64];
		struct run_opts o = {
		    .shim = true, .policy = pol, .timeout = 15};
		char prog[160];
		snprintf(url, sizeof url, "http://127.0.0.1:%d/y", f.port);
		snprintf(prog, sizeof prog,
			 "import requests; print(requests.get('%s')"
			 ".status_code)",
			 url);
		char *argv[] = {(char *)python(), "-c", prog, NULL};
		r = run_new();
		cr_assert_eq(run_prog(r, &o, argv), 0);
		cr_assert_str_eq(r->out, "200\n", "requests: %s", r->err);
	}
	fixture_stop(&f);
	cr_assert_eq(lines_in(log, "request GET\n"), 3);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "http_5xx"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "retries"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "replays_5xx"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 2, "%s", s);
	unlink(log);
}

Test(replay, a_request_left_unanswered_goes_again_at_response_timeout)
{
	struct fixture f;
	char *log = temp_file(), *pol, *s;
	struct run *r;

	start(&f, log, "1", "hang");
	pol = rule_policy(f.port, POLICY);
	r = curl(pol, f.port, NULL);
	fixture_stop(&f);
	cr_assert_str_eq(r->out, "200", "curl: %s", r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "response_timeouts"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "retries"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "replays_response_timeout"), 1, "%s", s);
	unlink(log);
}

/* Retries run out: the last reply reaches the program as it came. */
Test(replay, when_retries_run_out_the_last_reply_is_delivered)
{
	struct fixture f;
	char *log = temp_file(), *pol, *s;
	struct run *r;

	start(&f, log, "5", "503");
	pol = rule_policy(f.port, POLICY);
	r = curl(pol, f.port, NULL);
	fixture_stop(&f);
	cr_assert_str_eq(r->out, "503", "curl: %s", r->err);
	cr_assert_eq(lines_in(log, "request GET\n"), 3);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "retries"), 2, "%s", s);
	cr_assert_eq(stats_field(s, "http_5xx"), 2, "%s", s);
	unlink(log);
}

/* An upgrade (WebSocket) ends HTTP on its connection: never replayed. */
Test(replay, an_upgrade_is_never_replayed)
{
	struct fixture f;
	char *log = temp_file(), *pol;
	struct run *r;

	start(&f, log, "1", "reset");
	pol = rule_policy(f.port, POLICY);
	r = curl2(pol, f.port, "-HUpgrade: websocket", "-HConnection: Upgrade");
	fixture_stop(&f);
	cr_assert_neq(r->status, 0, "curl: %s", r->err);
	cr_assert_eq(lines_in(log, "request GET\n"), 1);
	unlink(log);
}

/* An event loop on epoll (Python's asyncio): the replay's fresh socket
 * takes the old one's place in the loop's epoll set; the read that got
 * the 503 finds nothing yet, the 200 comes next. */
Test(replay, an_asyncio_client_sees_the_200_after_a_503)
{
	static const char prog[] =
	    "import asyncio, sys\n"
	    "async def main(port):\n"
	    "    r, w = await asyncio.open_connection('127.0.0.1', port)\n"
	    "    w.write(b'GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
	    "    await w.drain()\n"
	    "    line = await asyncio.wait_for(r.readline(), 10)\n"
	    "    print(line.decode().split()[1])\n"
	    "asyncio.run(main(int(sys.argv[1])))\n";
	struct fixture f;
	char *log = temp_file(), *pol, *s, port[16];
	struct run *r = run_new();

	start(&f, log, "1", "503");
	pol = rule_policy(f.port, POLICY);
	snprintf(port, sizeof port, "%d", f.port);
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};
	char *argv[] = {(char *)python(), "-c", (char *)prog, port, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	fixture_stop(&f);
	cr_assert_str_eq(r->out, "200\n", "%s", r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "replays_5xx"), 1, "%s", s);
	unlink(log);
}
