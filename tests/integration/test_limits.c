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

/* Python: connect to port, print "ok" or "error ERRNO SECS", hold the
 * connection for hold seconds (or until killed). */
static char *holder(int port, double hold)
{
	char *p;

	cr_assert(asprintf(&p,
			   "import socket, sys, time\n"
			   "t = time.monotonic()\n"
			   "s = socket.socket()\n"
			   "e = s.connect_ex(('127.0.0.1', %d))\n"
			   "print('ok' if e == 0 else 'error %%d %%.3f' %% (e, "
			   "time.monotonic() - t), flush=True)\n"
			   "time.sleep(%g if e == 0 else 0)\n",
			   port, hold) > 0);
	return p;
}

/* The value of "active" for rule r in `fusebox stats --json`. */
static int active_of(const char *rule)
{
	char *line = stats_line(rule);

	if (!strncmp(line, "norule", 6))
		return 0; /* no connect of the rule yet */
	cr_assert(!strncmp(line, "active=", 7), "%s", line);
	return atoi(line + 7);
}

/* Runs python prog under pol in n processes at once (stagger_ms apart)
 * and collects what each printed, in start order. */
static void race(int n, int stagger_ms, const char *pol, const char *prog,
		 char (*outs)[256])
{
	int fds[8][2];
	pid_t kids[8];

	cr_assert(n <= 8);
	harness_segment();
	for (int i = 0; i < n; i++) {
		cr_assert_eq(pipe(fds[i]), 0);
		kids[i] = fork();
		if (kids[i] == 0) {
			struct run *r = run_new();
			struct run_opts o = {
			    .shim = true, .policy = pol, .timeout = 20};
			char *argv[] = {(char *)python(), "-c", (char *)prog,
					NULL};
			run_prog(r, &o, argv);
			ssize_t w =
			    write(fds[i][1], r->out, strlen(r->out) + 1);
			(void)w;
			_exit(0);
		}
		close(fds[i][1]);
		if (stagger_ms)
			usleep((useconds_t)stagger_ms * 1000);
	}
	for (int i = 0; i < n; i++) {
		memset(outs[i], 0, 256);
		cr_assert(read(fds[i][0], outs[i], 255) > 0);
		close(fds[i][0]);
		waitpid(kids[i], NULL, 0);
	}
}

Test(limits, max_connections_lets_two_of_five_in)
{
	struct fixture f;
	int ok = 0, refused = 0;

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 2\n");
	char outs[5][256];
	race(5, 0, pol, holder(f.port, 2.0), outs);
	for (int i = 0; i < 5; i++) {
		double secs = 9;
		int e = 0;
		if (!strncmp(outs[i], "ok", 2))
			ok++;
		else if (sscanf(outs[i], "error %d %lf", &e, &secs) == 2 &&
			 e == 111 && secs < 0.5)
			refused++;
		else
			cr_assert_fail("unexpected: %s", outs[i]);
	}
	cr_assert_eq(ok, 2);
	cr_assert_eq(refused, 3);
	cr_assert_eq(active_of("r"), 0, "connections left counted");
	fixture_stop(&f);
}

/* Starts a holder of rule r's one connection for secs seconds under
 * pol, in a child, and waits until it holds it; returns the child. */
static pid_t start_holder(const char *pol, int port, int secs)
{
	harness_segment();
	pid_t kid = fork();
	if (kid == 0) {
		struct run *r = run_new();
		struct run_opts o = {
		    .shim = true, .policy = pol, .timeout = secs};
		char *argv[] = {(char *)python(), "-c", holder(port, secs),
				NULL};
		run_prog(r, &o, argv);
		_exit(0);
	}
	for (int i = 0; i < 100 && active_of("r") < 1; i++)
		usleep(50 * 1000);
	cr_assert_eq(active_of("r"), 1);
	return kid;
}

Test(limits, a_holder_killed_with_sigkill_frees_its_slot)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 1\n");
	pid_t kid = start_holder(pol, f.port, 30);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", holder(f.port, 0), NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!strncmp(r->out, "error 111", 9), "not full: %s", r->out);
	/* SIGKILL the python holder (the child's child) */
	struct run *k = run_new();
	struct run_opts ko = {.timeout = 10};
	char *pattern;
	cr_assert(asprintf(&pattern, "time.sleep\\(30 if") > 0);
	char *kargv[] = {"pkill", "-KILL", "-f", pattern, NULL};
	cr_assert_eq(run_prog(k, &ko, kargv), 0);
	cr_assert_eq(k->status, 0, "pkill: %s", k->err);
	waitpid(kid, NULL, 0);
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!strncmp(r->out, "ok", 2), "slot still held: %s", r->out);
	fixture_stop(&f);
}

Test(limits, a_connection_shared_with_a_fork_is_released_once)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 1\n");
	char *prog;
	cr_assert(asprintf(&prog,
			   "import os, socket\n"
			   "s = socket.create_connection(('127.0.0.1', %d))\n"
			   "pid = os.fork()\n"
			   "if pid == 0:\n"
			   "  s.close(); os._exit(0)\n"
			   "os.waitpid(pid, 0)\n"
			   "s.sendall(b'x'); assert s.recv(1) == b'x'\n"
			   "t = socket.socket()\n"
			   "print(t.connect_ex(('127.0.0.1', %d)))\n"
			   "s.close(); t.close()\n",
			   f.port, f.port) > 0);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	/* the child's close did not free the parent's slot */
	cr_assert_str_eq(r->out, "111\n");
	cr_assert_eq(active_of("r"), 0, "released twice or never");
	fixture_stop(&f);
}

Test(limits, max_pending_lets_all_five_in_in_order)
{
	struct fixture f;
	double asked[5], got[5];

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 2\n"
					"max_pending = 5\n"
					"queue_timeout = 5s\n");
	/* each holds its connection 800 ms; they start 150 ms apart, and
	 * print when they asked and when they got in (CLOCK_MONOTONIC, the
	 * same for all): the order that counts is the asking, which a slow
	 * start (a loaded machine, a sanitizer) may change */
	char *prog;
	cr_assert(asprintf(&prog,
			   "import socket, time\n"
			   "s = socket.socket()\n"
			   "t = time.monotonic()\n"
			   "e = s.connect_ex(('127.0.0.1', %d))\n"
			   "print(e, t, time.monotonic(), flush=True)\n"
			   "time.sleep(0.8)\n",
			   f.port) > 0);
	char outs[5][256];
	race(5, 150, pol, prog, outs);
	for (int i = 0; i < 5; i++) {
		int e = -1;
		cr_assert_eq(
		    sscanf(outs[i], "%d %lf %lf", &e, &asked[i], &got[i]), 3,
		    "%s", outs[i]);
		cr_assert_eq(e, 0, "process %d: errno %d", i, e);
	}
	/* first come, first served: who asked earlier got in no later
	 * (asking 10 ms apart or more: the line's entry is after the ask) */
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			if (asked[i] + 0.01 < asked[j])
				cr_assert(got[i] <= got[j],
					  "process %d asked %.3f s before "
					  "%d and got in %.3f s after it",
					  i, asked[j] - asked[i], j,
					  got[i] - got[j]);
	/* the last three waited for the first ones to leave */
	double first = got[0], third;
	double sorted[5];
	memcpy(sorted, got, sizeof sorted);
	for (int i = 1; i < 5; i++)
		for (int k = i; k > 0 && sorted[k] < sorted[k - 1]; k--) {
			double t = sorted[k];
			sorted[k] = sorted[k - 1];
			sorted[k - 1] = t;
		}
	first = sorted[0];
	third = sorted[2];
	cr_assert(third - first >= 0.3, "no wait: %.3f", third - first);
	cr_assert_eq(active_of("r"), 0);
	fixture_stop(&f);
}

/* A waiter in line is not woken by a holder that dies: it must look for
 * dead holders itself, or it would wait out its queue_timeout. */
Test(limits, a_waiter_gets_the_slot_of_a_holder_killed_meanwhile)
{
	struct fixture f;
	int fds[2];

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	/* a queue_timeout far beyond the waiter's life: only a waiter that
	 * looks for dead holders itself gets in before it is killed */
	char *pol =
	    rule_policy(f.port, "max_connections = 1\n"
				"max_pending = 1\nqueue_timeout = 60s\n");
	pid_t holder_kid = start_holder(pol, f.port, 31);
	/* the waiter queues behind the holder */
	cr_assert_eq(pipe(fds), 0);
	pid_t waiter = fork();
	if (waiter == 0) {
		struct run *r = run_new();
		struct run_opts o = {
		    .shim = true, .policy = pol, .timeout = 10};
		char *argv[] = {(char *)python(), "-c", holder(f.port, 0),
				NULL};
		run_prog(r, &o, argv);
		if (r->timed_out)
			snprintf(r->out, sizeof r->out, "killed after 10 s");
		ssize_t w = write(fds[1], r->out, strlen(r->out) + 1);
		(void)w;
		_exit(0);
	}
	close(fds[1]);
	usleep(500 * 1000);
	struct run *k = run_new();
	struct run_opts ko = {.timeout = 10};
	char *kargv[] = {"pkill", "-KILL", "-f", "time.sleep\\(31 if", NULL};
	cr_assert_eq(run_prog(k, &ko, kargv), 0);
	cr_assert_eq(k->status, 0, "pkill: %s", k->err);
	waitpid(holder_kid, NULL, 0);
	char out[256] = {0};
	cr_assert(read(fds[0], out, sizeof out - 1) > 0);
	waitpid(waiter, NULL, 0);
	cr_assert(!strncmp(out, "ok", 2), "the waiter timed out: %s", out);
	fixture_stop(&f);
}

/* redis-cli exits without closing its connection: its slot is taken
 * again by the next connect once the process is gone, stats do not show
 * it as open, and its bytes are counted at exit. */
Test(limits, a_program_that_exits_without_closing_holds_nothing)
{
	struct fixture f;
	char port[16];

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 1\n");
	harness_segment();
	snprintf(port, sizeof port, "%d", f.port);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {"redis-cli", "-h",   "127.0.0.1", "-p",
			port,	     "PING", NULL};
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(run_prog(r, &o, argv), 0);
		cr_assert_eq(r->status, 0, "redis-cli %d: %s %s", i, r->out,
			     r->err);
		cr_assert(strstr(r->out, "PING"), "no echo: %s", r->out);
	}
	char *line = stats_line("r");
	cr_assert_eq(stats_field(line, "calls"), 2, "%s", line);
	cr_assert_gt(stats_field(line, "bytes_received"), 0, "%s", line);
	cr_assert_eq(active_of("r"), 0, "still counted after exit: %s", line);
	fixture_stop(&f);
}

/* Python: THREADS threads each loop LOOPS times connect, send 64 bytes,
 * read them back, close; prints "ok FAILED" and the first failure. */
static const char *burst =
    "import socket, sys, threading\n"
    "port, nt, loops = map(int, sys.argv[1:4])\n"
    "ok = [0]; bad = []; lock = threading.Lock()\n"
    "def work():\n"
    "  for i in range(loops):\n"
    "    s = socket.socket()\n"
    "    e = s.connect_ex(('127.0.0.1', port))\n"
    "    if e == 0:\n"
    "      s.sendall(b'x' * 64); got = b''\n"
    "      while len(got) < 64:\n"
    "        b = s.recv(64 - len(got))\n"
    "        if not b: break\n"
    "        got += b\n"
    "    s.close()\n"
    "    with lock:\n"
    "      if e == 0 and len(got) == 64: ok[0] += 1\n"
    "      else: bad.append((e, len(got) if e == 0 else -1))\n"
    "ts = [threading.Thread(target=work) for _ in range(nt)]\n"
    "[t.start() for t in ts]; [t.join() for t in ts]\n"
    "print(ok[0], len(bad), bad[:1])\n";

/* Runs burst under pol in procs processes of threads threads at once;
 * returns the connects that failed, all processes together. */
static int bursts(const char *pol, int port, int procs, int threads, int loops,
		  char *said, size_t n)
{
	int fds[8][2], failed = 0;
	pid_t kids[8];

	cr_assert(procs <= 8);
	harness_segment();
	for (int i = 0; i < procs; i++) {
		cr_assert_eq(pipe(fds[i]), 0);
		kids[i] = fork();
		if (kids[i] == 0) {
			struct run *r = run_new();
			struct run_opts o = {
			    .shim = true, .policy = pol, .timeout = 60};
			char p[16], t[16], l[16];
			snprintf(p, sizeof p, "%d", port);
			snprintf(t, sizeof t, "%d", threads);
			snprintf(l, sizeof l, "%d", loops);
			char *argv[] = {(char *)python(),
					"-c",
					(char *)burst,
					p,
					t,
					l,
					NULL};
			run_prog(r, &o, argv);
			if (r->status)
				snprintf(r->out, sizeof r->out, "0 %d exit %d",
					 threads * loops, r->status);
			ssize_t w =
			    write(fds[i][1], r->out, strlen(r->out) + 1);
			(void)w;
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (int i = 0; i < procs; i++) {
		char out[256] = {0};
		int ok = 0, bad = 0;
		cr_assert(read(fds[i][0], out, sizeof out - 1) > 0);
		close(fds[i][0]);
		waitpid(kids[i], NULL, 0);
		cr_assert_eq(sscanf(out, "%d %d", &ok, &bad), 2, "%s", out);
		cr_assert_eq(ok + bad, threads * loops, "%s", out);
		failed += bad;
		if (bad && !said[0])
			snprintf(said, n, "%s", out);
	}
	return failed;
}

/* A lone connect under pol: its errno (0: it got in). */
static int lone(const char *pol, int port)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", holder(port, 0), NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	if (!strncmp(r->out, "ok", 2))
		return 0;
	return atoi(r->out + 6);
}

/* Issue 10: a burst of many threads in many processes, never more than
 * max_connections + max_pending of them at once, must all get in; then
 * the line must be empty and a lone connect must get in at once.  The
 * ticket line that this replaced refused thousands of these and then
 * every connect, for good. */
Test(limits, a_burst_within_limit_and_line_all_get_in, .timeout = 120)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "breaker = on\n"
					"max_connections = 24\n"
					"max_pending = 56\n"
					"queue_timeout = 20s\n");
	/* 4 x 20 = 80 threads want a connection: 24 hold, 56 wait, and
	 * not one more place: a waiter that took a connection before it
	 * left its place filled the line for a moment */
	char said[256] = "";
	int failed = bursts(pol, f.port, 4, 20, 40, said, sizeof said);
	cr_assert_eq(
	    failed, 0,
	    "%d of 3200 connects failed (ok, failed, [(errno, echoed)]: %s)",
	    failed, said);
	char *line = stats_line("r");
	cr_assert_eq(stats_field(line, "active"), 0, "%s", line);
	cr_assert_eq(stats_field(line, "pending"), 0, "%s", line);
	cr_assert_eq(stats_field(line, "rejected_limit"), 0, "%s", line);
	cr_assert_eq(lone(pol, f.port), 0, "a lone connect was refused");
	fixture_stop(&f);
}

/* Arrivals turned away by a full line, by thousands, must leave the line
 * as they found it: afterwards a lone connect gets in. */
Test(limits, a_line_overrun_by_thousands_recovers, .timeout = 120)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 4\n"
					"max_pending = 6\n"
					"queue_timeout = 50ms\n");
	char said[256] = "";
	int failed = bursts(pol, f.port, 4, 24, 40, said, sizeof said);
	cr_assert(failed > 0, "the line never overflowed: no test");
	char *line = stats_line("r");
	cr_assert_eq(stats_field(line, "active"), 0, "%s", line);
	cr_assert_eq(stats_field(line, "pending"), 0, "%s", line);
	/* every refusal is counted as one, and nothing else refused */
	cr_assert_eq(stats_field(line, "rejected_limit"), failed, "%s", line);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lone(pol, f.port), 0, "lone connect %d refused",
			     i);
	fixture_stop(&f);
}

/* A waiter killed with SIGKILL while in line leaves its place behind;
 * those who came after it must not wait behind a dead place beyond the
 * next sweep (the ticket line waited out its queue_timeout). */
Test(limits, a_waiter_killed_in_line_holds_back_nobody, .timeout = 60)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *pol =
	    rule_policy(f.port, "max_connections = 1\n"
				"max_pending = 4\nqueue_timeout = 30s\n");
	pid_t holder_kid = start_holder(pol, f.port, 3);
	/* the first waiter: queued behind the holder, then killed */
	pid_t first = fork();
	if (first == 0) {
		struct run *r = run_new();
		struct run_opts o = {
		    .shim = true, .policy = pol, .timeout = 20};
		char *argv[] = {(char *)python(), "-c", holder(f.port, 33),
				NULL};
		run_prog(r, &o, argv);
		_exit(0);
	}
	usleep(500 * 1000);
	struct run *k = run_new();
	struct run_opts ko = {.timeout = 10};
	char *kargv[] = {"pkill", "-KILL", "-f", "time.sleep\\(33 if", NULL};
	cr_assert_eq(run_prog(k, &ko, kargv), 0);
	cr_assert_eq(k->status, 0, "pkill: %s", k->err);
	waitpid(first, NULL, 0);
	/* the second waiter comes after the dead one; the holder leaves
	 * at 3 s: the second must get in soon after, not at 30 s */
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", holder(f.port, 0), NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out, "the second waiter waited behind the dead");
	cr_assert(!strncmp(r->out, "ok", 2), "%s", r->out);
	waitpid(holder_kid, NULL, 0);
	cr_assert_eq(stats_field(stats_line("r"), "pending"), 0);
	fixture_stop(&f);
}

/* Regression (issue 11): Python's subprocess starts the child with
 * vfork(), and the child's close_range() ran the shim's close hooks in
 * the parent's memory: the parent's socket lost its guard (no response
 * timeout) and its connection slot (a second connect let in). */
Test(limits, a_vfork_child_leaves_the_parents_guard_alone, .timeout = 60)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *pol = rule_policy(f.port, "max_connections = 1\n"
					"response_timeout = 1s\n");
	char *prog;
	cr_assert(asprintf(&prog,
			   "import socket, subprocess, time\n"
			   "s = socket.create_connection(('127.0.0.1', %d))\n"
			   "subprocess.run(['/bin/true'], check=True)\n"
			   "t = socket.socket()\n"
			   "e = t.connect_ex(('127.0.0.1', %d))\n"
			   "s.sendall(b'ping')\n"
			   "try:\n"
			   "  s.recv(10); r = 'reply'\n"
			   "except OSError as x:\n"
			   "  r = 'error %%d' %% x.errno\n"
			   "print(e, r)\n",
			   f.port, f.port) > 0);
	harness_segment();
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out, "the response timeout never fired");
	/* the slot still held: refused; the timeout still armed: fired */
	cr_assert_str_eq(r->out, "111 error 110\n", "stderr: %s", r->err);
	fixture_stop(&f);
}
