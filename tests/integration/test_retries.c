/* SPDX-License-Identifier: MIT */
/* Retries of blocking connects on a fresh socket, and the retry budget
 * that all processes share. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs client.py block request PORT under policy (or no shim). */
static struct run *request(const char *pol, int port)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = pol != NULL, .policy = pol, .timeout = 15};
	char portbuf[16];
	char *script = src_path("tests/integration/scripts/client.py");

	snprintf(portbuf, sizeof portbuf, "%d", port);
	char *argv[] = {(char *)python(), script,  "block",
			"request",	  portbuf, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

/* A quick blocking connect to port (python, no heavy imports). */
static struct run *quick_connect(const char *pol, int port)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = pol != NULL, .policy = pol, .timeout = 30};
	char *prog;

	cr_assert(asprintf(&prog,
			   "import socket\n"
			   "s = socket.socket()\n"
			   "print(s.connect_ex(('127.0.0.1', %d)))\n",
			   port) > 0);
	char *argv[] = {(char *)python(), "-S", "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

Test(retries, a_late_server_is_reached_by_blocking_retries)
{
	struct fixture f;
	char *text;

	/* the server listens 1 s late; ten retries of 0-600 ms each */
	cr_assert_eq(fixture_start(&f, "late", "--delay", "1000", NULL), 0);
	cr_assert(asprintf(&text,
			   "[r]\nmatch = 127.0.0.1:%d\nretries = 10\n"
			   "retry_backoff = 300ms\nretry_backoff_max = 600ms\n",
			   f.port) > 0);
	char *pol = policy_write(text);
	struct run *r = quick_connect(pol, f.port);
	cr_assert_str_eq(r->out, "0\n", "%s", r->err);
	char *s = stats_line("r");
	cr_assert(stats_field(s, "retries") >= 1, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "calls"), stats_field(s, "retries") + 1,
		     "%s", s);
	fixture_stop(&f);
	/* the same late start without fusebox: refused at once */
	cr_assert_eq(fixture_start(&f, "late", "--delay", "1000", NULL), 0);
	struct run *n = quick_connect(NULL, f.port);
	cr_assert_str_eq(n->out, "111\n");
	fixture_stop(&f);
}

Test(retries, never_after_a_byte_was_sent_and_only_what_retry_on_says)
{
	struct fixture f;
	char *text;

	cr_assert_eq(fixture_start(&f, "refuse", NULL), 0);
	cr_assert(asprintf(&text,
			   "[r]\nmatch = 127.0.0.1:%d\nretries = 3\n"
			   "retry_on = timeout\n",
			   f.port) > 0);
	char *pol = policy_write(text);
	struct run *r = request(pol, f.port);
	cr_assert(!strncmp(r->out, "error 111", 9), "%s", r->out);
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "retries"), 0, "refused is not retried: %s",
		     s);
	cr_assert_eq(stats_field(s, "calls"), 1, "%s", s);
	fixture_stop(&f);
}

Test(retries, the_budget_caps_retries_of_40_processes)
{
	struct fixture f;
	char *text;

	cr_assert_eq(fixture_start(&f, "refuse", NULL), 0);
	cr_assert(asprintf(&text,
			   "[r]\nmatch = 127.0.0.1:%d\nretries = 3\n"
			   "retry_backoff = 1ms\nretry_backoff_max = 2ms\n"
			   "retry_budget = 20%%\nretry_budget_min = 0/s\n",
			   f.port) > 0);
	char *pol = policy_write(text);
	harness_segment();
	pid_t kids[40];
	for (int i = 0; i < 40; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct run *r = quick_connect(pol, f.port);
			_exit(strcmp(r->out, "111\n") ? 1 : 0);
		}
	}
	for (int i = 0; i < 40; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char *s = stats_line("r");
	long retries = stats_field(s, "retries"),
	     rejected = stats_field(s, "rejected_budget");
	/* 20% of 40 first attempts: 8 retries, with a little slack for
	 * first attempts still to come when the early ones retried */
	cr_assert(retries <= 10, "%ld retries: %s", retries, s);
	cr_assert(retries >= 1, "%s", s);
	cr_assert(rejected >= 40 - retries - 2, "%s", s);
	fixture_stop(&f);
}

/* Starts a late server and the policy that retries long enough for it. */
static char *late_policy(struct fixture *f)
{
	char *text;

	cr_assert_eq(fixture_start(f, "late", "--delay", "1000", NULL), 0);
	cr_assert(asprintf(&text,
			   "[r]\nmatch = 127.0.0.1:%d\nretries = 10\n"
			   "retry_backoff = 300ms\nretry_backoff_max = 600ms\n",
			   f->port) > 0);
	return policy_write(text);
}

/* Runs argv under pol (or without the shim when pol is NULL). */
static struct run *run_under(const char *pol, char **argv)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = pol != NULL, .policy = pol, .timeout = 20};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

Test(retries, curl_reaches_a_late_server_through_poll)
{
	struct fixture f;
	char *pol = late_policy(&f), *u;

	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f.port) > 0);
	char *argv[] = {"curl", "-sS", "-m", "10", u, NULL};
	struct run *r = run_under(pol, argv);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "hello from fixture"), "%s", r->out);
	cr_assert(stats_field(stats_line("r"), "retries") >= 1);
	fixture_stop(&f);
	pol = late_policy(&f);
	free(u);
	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f.port) > 0);
	char *argv2[] = {"curl", "-sS", "-m", "10", u, NULL};
	cr_assert_eq(run_under(NULL, argv2)->status, 7);
	fixture_stop(&f);
}

Test(retries, asyncio_reaches_a_late_server_through_epoll)
{
	struct fixture f;
	char *pol = late_policy(&f), port[16];
	char *script = src_path("tests/integration/scripts/client.py");

	snprintf(port, sizeof port, "%d", f.port);
	char *argv[] = {(char *)python(), script, "async",
			"request",	  port,	  NULL};
	struct run *r = run_under(pol, argv);
	cr_assert(!strncmp(r->out, "ok ", 3), "%s %s", r->out, r->err);
	cr_assert(stats_field(stats_line("r"), "retries") >= 1);
	fixture_stop(&f);
}

Test(retries, node_reaches_a_late_server)
{
	struct fixture f;
	char *pol = late_policy(&f), *js;

	cr_assert(asprintf(&js,
			   "require('http').get('http://127.0.0.1:%d/', r => "
			   "r.on('data', d => process.stdout.write(d)))"
			   ".on('error', e => console.log('error', e.code))",
			   f.port) > 0);
	char *argv[] = {"node", "-e", js, NULL};
	struct run *r = run_under(pol, argv);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "hello from fixture"), "%s", r->out);
	fixture_stop(&f);
}
