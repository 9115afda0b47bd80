/* SPDX-License-Identifier: MIT */
/* Circuit breakers shared by separate processes through the segment:
 * short-lived curls open a breaker that later curls respect, half-open
 * lets exactly the probes through, and the counters add up. */
#include "harness.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs curl (no output) against port under the shim with policy. */
static struct run *curl(const char *policy, int port, const char *extra)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = policy, .timeout = 15};
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	char *argv[] = {"curl",
			"-sS",
			"-o",
			"/dev/null",
			"-m",
			"5",
			(char *)(extra ? extra : "-f"),
			url,
			NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

Test(breaker, ten_curls_open_it_and_a_listening_server_closes_it)
{
	struct fixture f;
	char port[16];

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	char *pol = rule_policy(f.port, "connect_timeout = 300ms\n"
					"breaker = on\nbreaker_failures = 3\n"
					"breaker_open = 1500ms\n");
	for (int i = 0; i < 10; i++) {
		struct run *r = curl(pol, f.port, NULL);
		if (i < 3) {
			cr_assert_eq(r->status, 28, "curl %d: %s", i, r->err);
			cr_assert(r->secs >= 0.28, "curl %d: %.2f s", i,
				  r->secs);
		} else {
			/* rejected at once: ECONNREFUSED, no connect */
			cr_assert_eq(r->status, 7, "curl %d: %s", i, r->err);
			cr_assert(r->secs < 0.25, "curl %d took %.2f s", i,
				  r->secs);
		}
	}
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	cr_assert_eq(stats_field(s, "connect_timeouts"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "rejected_breaker"), 7, "%s", s);
	cr_assert_eq(stats_field(s, "calls"), 3, "%s", s);
	/* the service comes back on the same port */
	snprintf(port, sizeof port, "%d", f.port);
	fixture_stop(&f);
	cr_assert_eq(fixture_start(&f, "http", "--port", port, NULL), 0);
	usleep(1600 * 1000);
	struct run *ok = curl(pol, f.port, NULL);
	cr_assert_eq(ok->status, 0, "after the open period: %s", ok->err);
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=closed"), "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 1, "%s", s);
	/* one curl, one call: its first-byte latency is sampled */
	cr_assert_gt(stats_field(s, "first_byte_us"), 0, "%s", s);
	fixture_stop(&f);
}

Test(breaker, half_open_lets_exactly_the_probes_through)
{
	struct fixture f;
	char log[] = "/tmp/fusebox-accepts-XXXXXX";
	int fd = mkstemp(log);

	cr_assert(fd >= 0);
	close(fd);
	/* replies take 400 ms, so both probes are out before one fails */
	cr_assert_eq(fixture_start(&f, "count", "--status", "503", "--delay",
				   "400", "--log", log, NULL),
		     0);
	char *pol = rule_policy(f.port, "classify = http\nbreaker = on\n"
					"breaker_failures = 3\n"
					"breaker_open = 1s\n"
					"breaker_probes = 2\n");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(curl(pol, f.port, "-s")->status, 0);
	cr_assert(strstr(stats_line("r"), "breaker=open"));
	usleep(1100 * 1000);
	/* 20 processes race for the half-open breaker */
	harness_segment();
	pid_t kids[20];
	for (int i = 0; i < 20; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct run *r = curl(pol, f.port, "-s");
			_exit(r->status == 0 ? 0 : 1);
		}
	}
	int reached = 0, rejected = 0;
	for (int i = 0; i < 20; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			reached++;
		else
			rejected++;
	}
	fixture_stop(&f);
	FILE *lf = fopen(log, "r");
	int accepts = 0;
	char line[64];
	while (lf && fgets(line, sizeof line, lf))
		accepts += !strcmp(line, "accept\n"); /* not "request ..." */
	if (lf)
		fclose(lf);
	unlink(log);
	cr_assert_eq(accepts, 3 + 2, "%d connections reached the server",
		     accepts);
	cr_assert_eq(reached, 2, "%d curls got through", reached);
	cr_assert_eq(rejected, 18);
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "probes got 503: %s", s);
	cr_assert_eq(stats_field(s, "http_5xx"), 5, "%s", s);
}

Test(breaker, http_5xx_opens_it_after_breaker_failures_curls)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "http", "--status", "503", NULL), 0);
	char *pol = rule_policy(f.port, "classify = http\nbreaker = on\n"
					"breaker_failures = 4\n");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(curl(pol, f.port, "-s")->status, 0);
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	cr_assert_eq(stats_field(s, "http_5xx"), 4, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 4, "%s", s);
	cr_assert_eq(curl(pol, f.port, "-s")->status, 7);
	fixture_stop(&f);
}

Test(breaker, first_exchange_failures_count_once)
{
	struct fixture h, r;

	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	cr_assert_eq(fixture_start(&r, "reset", NULL), 0);
	char *text;
	cr_assert(asprintf(&text,
			   "[hang]\nmatch = 127.0.0.1:%d\n"
			   "response_timeout = 300ms\n"
			   "[reset]\nmatch = 127.0.0.1:%d\n",
			   h.port, r.port) > 0);
	char *pol = policy_write(text);
	cr_assert_eq(curl(pol, h.port, "-s")->status, 56);
	cr_assert_eq(curl(pol, r.port, "-s")->status, 56);
	char *s = stats_line("hang");
	cr_assert_eq(stats_field(s, "calls"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "response_timeouts"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 0, "%s", s);
	s = stats_line("reset");
	cr_assert_eq(stats_field(s, "calls"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "resets"), 1, "%s", s);
	fixture_stop(&h);
	fixture_stop(&r);
}

Test(breaker, dry_run_reports_open_but_never_rejects)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "refuse", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = dry-run\n"
					"breaker_failures = 2\n");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(curl(pol, f.port, NULL)->status, 7);
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	/* every attempt reached the kernel: five refused, none rejected */
	cr_assert_eq(stats_field(s, "connect_refused"), 5, "%s", s);
	cr_assert_eq(stats_field(s, "rejected_breaker"), 0, "%s", s);
	fixture_stop(&f);
}

Test(breaker, failure_rate_over_a_window_opens_it)
{
	struct fixture ok, bad;

	cr_assert_eq(fixture_start(&ok, "http", NULL), 0);
	cr_assert_eq(fixture_start(&bad, "http", "--status", "500", NULL), 0);
	/* one rule, scope = rule: both ports feed one breaker */
	char *text;
	cr_assert(asprintf(&text,
			   "[r]\nmatch = 127.0.0.1:%d 127.0.0.1:%d\n"
			   "classify = http\nbreaker = on\n"
			   "breaker_scope = rule\nbreaker_failures = 100\n"
			   "breaker_failure_rate = 50%%\n"
			   "breaker_window = 10\nbreaker_min_calls = 6\n",
			   ok.port, bad.port) > 0);
	char *pol = policy_write(text);
	/* alternate: 50% failures, open once 6 calls are in the window */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(
		    curl(pol, i % 2 ? bad.port : ok.port, "-s")->status, 0);
	cr_assert(strstr(stats_line("r"), "breaker=closed"));
	cr_assert_eq(curl(pol, bad.port, "-s")->status, 0);
	cr_assert(strstr(stats_line("r"), "breaker=open"));
	cr_assert_eq(curl(pol, ok.port, "-s")->status, 7,
		     "scope = rule: the good port is rejected too");
	fixture_stop(&ok);
	fixture_stop(&bad);
}

Test(breaker, slow_calls_open_it)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "slow", "--delay", "300", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = on\nbreaker_failures = 100\n"
					"breaker_slow = 100ms\n"
					"breaker_slow_rate = 50%\n"
					"breaker_window = 4\n"
					"breaker_min_calls = 3\n");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(curl(pol, f.port, NULL)->status, 0);
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "slow_calls"), 3, "%s", s);
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	cr_assert_eq(curl(pol, f.port, NULL)->status, 7);
	fixture_stop(&f);
}

Test(breaker, open_period_doubles_on_reopen)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "refuse", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = on\nbreaker_failures = 1\n"
					"breaker_open = 600ms\n"
					"breaker_open_max = 5s\n");
	cr_assert_eq(curl(pol, f.port, NULL)->status, 7); /* opens, 600ms */
	usleep(700 * 1000);
	cr_assert_eq(curl(pol, f.port, NULL)->status, 7); /* probe fails */
	/* now open for about 1200 ms: still open after 700 ms */
	usleep(700 * 1000);
	struct run *r = curl(pol, f.port, NULL);
	cr_assert_eq(r->status, 7);
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "rejected_breaker"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "connect_refused"), 2, "%s", s);
	fixture_stop(&f);
}

Test(breaker, forced_states_win_until_auto)
{
	struct fixture f;
	char *bin = build_path("fusebox");
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};

	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = off\n");
	cr_assert_eq(curl(pol, f.port, NULL)->status, 0);
	char *open[] = {bin, "breaker", "open", "r", NULL};
	cr_assert_eq(run_prog(r, &o, open), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_eq(curl(pol, f.port, NULL)->status, 7,
		     "forced open rejects even with breaker = off");
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=forced_open"), "%s", s);
	char *aut[] = {bin, "breaker", "auto", "r", NULL};
	cr_assert_eq(run_prog(r, &o, aut), 0);
	cr_assert_eq(curl(pol, f.port, NULL)->status, 0);
	fixture_stop(&f);
}

Test(breaker, counters_are_exact_under_8_processes_of_8_threads)
{
	struct fixture f;
	char *prog = build_path("progs/threads");
	char port[16];

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	snprintf(port, sizeof port, "%d", f.port);
	char *pol = rule_policy(f.port, "breaker = on\n");
	harness_segment();
	pid_t kids[8];
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct run *r = run_new();
			struct run_opts o = {
			    .shim = true, .policy = pol, .timeout = 60};
			char *argv[] = {prog, port, "8", "25", NULL};
			run_prog(r, &o, argv);
			_exit(r->status);
		}
	}
	for (int i = 0; i < 8; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char *s = stats_line("r");
	/* 8 x 8 threads x 25 connections, each one exchange */
	cr_assert_eq(stats_field(s, "calls"), 1600, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 1600, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 0, "%s", s);
	cr_assert_eq(stats_field(s, "active"), 0, "%s", s);
	fixture_stop(&f);
}

Test(breaker, transitions_are_logged_once_and_reset_closes_it)
{
	struct fixture f;
	char *bin = build_path("fusebox");
	const char *env[] = {"FUSEBOX_LOG=info", NULL};

	cr_assert_eq(fixture_start(&f, "refuse", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = on\nbreaker_failures = 2\n");
	struct run_opts o = {
	    .shim = true, .policy = pol, .timeout = 10, .env = env};
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.port);
	char *argv[] = {"curl", "-sS", url, NULL};
	struct run *r = run_new();
	char want[128];

	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(run_prog(r, &o, argv), 0);
	snprintf(want, sizeof want,
		 "breaker r 127.0.0.1:%d closed\xe2\x86\x92open: 2 consecutive "
		 "failures (connection refused)",
		 f.port);
	cr_assert(strstr(r->err, want), "stderr: %s", r->err);
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!strstr(r->err, "breaker r"), "logged twice: %s", r->err);
	cr_assert(strstr(stats_line("r"), "breaker=open"));
	struct run_opts plain = {.timeout = 10};
	char *reset[] = {bin, "reset", "r", NULL};
	cr_assert_eq(run_prog(r, &plain, reset), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	char *s = stats_line("r");
	cr_assert(strstr(s, "breaker=closed"), "%s", s);
	cr_assert_eq(stats_field(s, "calls"), 0, "%s", s);
	cr_assert_eq(stats_field(s, "rejected_breaker"), 0, "%s", s);
	fixture_stop(&f);
}

/* An open breaker's refusal is a lookup and a compare: python's blocking
 * connects fail with ECONNREFUSED and its non-blocking one says
 * EINPROGRESS, without one system call on their sockets (no connect, no
 * getsockopt, no fcntl: socket() said what they are; strace shows it). */
Test(breaker, an_open_breakers_refusal_makes_no_system_call)
{
	struct fixture f;
	char *trace = NULL, *line, *save = NULL, want[64];
	int closed, fds[8] = {0}, nfds = 0, connects = 0, asked = 0;

	/* a port nobody listens on: the first connect is the kernel's */
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	closed = f.port;
	fixture_stop(&f);
	char *pol = rule_policy(closed, "breaker = on\nbreaker_failures = 1\n"
					"breaker_open = 1h\n"
					"breaker_open_max = 2h\n");
	char tr[] = "/tmp/fusebox-trace-XXXXXX";
	int tfd = mkstemp(tr);
	cr_assert_geq(tfd, 0);
	close(tfd);
	char script[] =
	    "import socket, sys\n"
	    "p = int(sys.argv[1])\n"
	    "for i in range(6):\n"
	    "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
	    "    try:\n"
	    "        s.connect(('127.0.0.1', p)); print('connected')\n"
	    "    except OSError as e:\n"
	    "        print('fd', s.fileno(), e.errno)\n"
	    "    s.close()\n"
	    "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
	    "s.setblocking(False)\n"
	    "try:\n"
	    "    s.connect(('127.0.0.1', p)); print('connected')\n"
	    "except OSError as e:\n"
	    "    print('fd', s.fileno(), e.errno)\n";
	char ps[16];
	snprintf(ps, sizeof ps, "%d", closed);
	char *argv[] = {"strace",
			"-qq",
			"-o",
			tr,
			"-e",
			"trace=connect,getsockopt,fcntl",
			(char *)python(),
			"-c",
			script,
			ps,
			NULL};
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	cr_assert_eq(run_prog(r, &o, argv), 0, "%s", r->err);
	/* the first: refused by the kernel; then by fusebox: 111, and 115
	 * for the non-blocking one (its 111 comes from SO_ERROR) */
	char *p = r->out;
	for (int i = 0; i < 7; i++) {
		int fd, e;
		cr_assert_eq(sscanf(p, "fd %d %d", &fd, &e), 2, "%s", r->out);
		cr_assert_eq(e, i < 6 ? 111 : 115, "%d: %s", i, r->out);
		if (i > 0)
			fds[nfds++] = fd;
		p = strchr(p, '\n') + 1;
	}
	FILE *tf = fopen(tr, "r");
	cr_assert(tf, "no trace");
	trace = calloc(1, 1 << 20);
	cr_assert(trace);
	fread(trace, 1, (1 << 20) - 1, tf);
	fclose(tf);
	snprintf(want, sizeof want, "htons(%d)", closed);
	for (line = strtok_r(trace, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "connect(") && strstr(line, want))
			connects++;
		/* before the first connect: python's own files at the
		 * same numbers */
		for (int i = 0; connects && i < nfds; i++) {
			char a[32], b[32];
			snprintf(a, sizeof a, "getsockopt(%d,", fds[i]);
			snprintf(b, sizeof b, "fcntl(%d,", fds[i]);
			if (!strncmp(line, a, strlen(a)) ||
			    !strncmp(line, b, strlen(b)))
				asked++;
		}
	}
	cr_assert_eq(connects, 1, "connects to the closed port: %d\n%s",
		     connects, r->out);
	cr_assert_eq(asked, 0, "system calls on refused sockets: %d", asked);
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "rejected_breaker"), 6, "%s", s);
	unlink(tr);
	free(trace);
}
