/* SPDX-License-Identifier: MIT */
/* Admission beyond breakers: the rate limit's token bucket, shared by
 * every process, and fault injection, whose shares must hold over many
 * connects. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Python: N connects to port; prints "ok REFUSED SLOW" where SLOW counts
 * the connects that took at least 40 ms. */
static const char *loop = "import socket, sys, time\n"
			  "port, n = int(sys.argv[1]), int(sys.argv[2])\n"
			  "ok = refused = slow = 0\n"
			  "for i in range(n):\n"
			  "  s = socket.socket()\n"
			  "  t = time.monotonic()\n"
			  "  e = s.connect_ex(('127.0.0.1', port))\n"
			  "  if time.monotonic() - t >= 0.04: slow += 1\n"
			  "  s.close()\n"
			  "  if e == 0: ok += 1\n"
			  "  elif e == 111: refused += 1\n"
			  "  else: sys.exit('errno %d' % e)\n"
			  "print(ok, refused, slow)\n";

/* Runs the loop under policy; fills ok/refused/slow. */
static void connects(const char *pol, int port, int n, int *ok, int *refused,
		     int *slow)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 60};
	char p[16], c[16];

	snprintf(p, sizeof p, "%d", port);
	snprintf(c, sizeof c, "%d", n);
	char *argv[] = {(char *)python(), "-c", (char *)loop, p, c, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_eq(sscanf(r->out, "%d %d %d", ok, refused, slow), 3, "%s",
		     r->out);
}

/* A policy for one rule on 127.0.0.1:port with extra keys. */
static char *rule_policy(int port, const char *keys)
{
	char *text;

	cr_assert(asprintf(&text, "[r]\nmatch = 127.0.0.1:%d\n%s", port, keys) >
		  0);
	return policy_write(text);
}

Test(limits, rate_lets_about_the_rate_through)
{
	struct fixture f;
	int ok, refused, slow;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "rate = 10/s\n");
	/* 40 rapid connects: the full bucket (10) and what refills meanwhile */
	connects(pol, f.port, 40, &ok, &refused, &slow);
	cr_assert(ok >= 10 && ok <= 16, "%d connects went through", ok);
	cr_assert_eq(ok + refused, 40);
	fixture_stop(&f);
}

Test(limits, rate_is_shared_by_processes)
{
	struct fixture f;
	int total = 0;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "rate = 600/m\nrate_burst = 8\n");
	harness_segment();
	int fds[4][2];
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pipe(fds[i]), 0);
		kids[i] = fork();
		if (kids[i] == 0) {
			int ok, refused, slow;
			connects(pol, f.port, 10, &ok, &refused, &slow);
			cr_assert_eq(write(fds[i][1], &ok, sizeof ok),
				     (ssize_t)sizeof ok);
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (int i = 0; i < 4; i++) {
		int ok = 0, st;
		cr_assert_eq(read(fds[i][0], &ok, sizeof ok),
			     (ssize_t)sizeof ok);
		waitpid(kids[i], &st, 0);
		total += ok;
	}
	/* one bucket of 8 for all four, refilled at 10/s meanwhile */
	cr_assert(total >= 8 && total <= 16, "%d of 40 went through", total);
	fixture_stop(&f);
}

Test(limits, fault_abort_share_holds_over_1000_connects)
{
	struct fixture f;
	int ok, refused, slow;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "fault_abort = 30%\n");
	connects(pol, f.port, 1000, &ok, &refused, &slow);
	/* binomial(1000, 0.3): mean 300, sd 14.5; 5 sd either way */
	cr_assert(refused >= 228 && refused <= 372, "%d of 1000 refused",
		  refused);
	cr_assert_eq(ok + refused, 1000);
	fixture_stop(&f);
}

Test(limits, fault_delay_share_holds)
{
	struct fixture f;
	int ok, refused, slow;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "fault_delay = 50ms@20%\n");
	connects(pol, f.port, 200, &ok, &refused, &slow);
	/* binomial(200, 0.2): mean 40, sd 5.7; 5 sd either way */
	cr_assert(slow >= 12 && slow <= 68, "%d of 200 delayed", slow);
	cr_assert_eq(ok, 200);
	fixture_stop(&f);
}
