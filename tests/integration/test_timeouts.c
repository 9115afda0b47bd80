/* SPDX-License-Identifier: MIT */
/* The four timeouts of fusebox.ini(5), each against a fixture that makes
 * the program wait, with blocking (python sockets) and event-loop clients
 * (curl's poll, python asyncio's epoll): fusebox ends the wait with
 * ETIMEDOUT, and without fusebox the same case still hangs. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLICY_300MS(key) "[default]\n" key " = 300ms\n"

/* Runs scripts/client.py MODE ACTION PORT; returns the run. */
static struct run *client(bool shim, const char *policy, const char *mode,
			  const char *action, int port, double limit)
{
	struct run *r = run_new();
	char *script = src_path("tests/integration/scripts/client.py");
	char portbuf[16];
	struct run_opts o = {.shim = shim, .policy = policy, .timeout = limit};

	snprintf(portbuf, sizeof portbuf, "%d", port);
	char *argv[] = {(char *)python(), script,  (char *)mode,
			(char *)action,	  portbuf, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	free(script);
	return r;
}

/* Asserts that a client.py run failed with ETIMEDOUT in lo..hi seconds. */
static void assert_timed_out(const struct run *r, double lo, double hi)
{
	int err = 0;
	double secs = 0;

	cr_assert(!r->timed_out, "client hung: %s %s", r->out, r->err);
	cr_assert_eq(sscanf(r->out, "error %d %lf", &err, &secs), 2,
		     "expected an error, got '%s' (stderr %s)", r->out, r->err);
	cr_assert_eq(err, 110, "errno %d, not ETIMEDOUT (%s)", err, r->out);
	cr_assert(secs >= lo && secs < hi,
		  "fired after %.3f s, not in "
		  "[%.2f, %.2f)",
		  secs, lo, hi);
}

/* Runs curl with args under the shim or not. */
static struct run *curl(bool shim, const char *policy, double limit,
			char *const *args)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = shim, .policy = policy, .timeout = limit};
	char *argv[16] = {"curl", "-sS", "-o", "/dev/null"};
	int n = 4;

	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

/* The URL of a fixture. */
static char *url(const struct fixture *f)
{
	char *u;

	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f->port) > 0);
	return u;
}

Test(timeouts, connect_timeout_blocking_and_asyncio)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("connect_timeout"));

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	struct run *b = client(true, pol, "block", "connect", f.port, 10);
	assert_timed_out(b, 0.28, 1.5);
	struct run *a = client(true, pol, "async", "connect", f.port, 10);
	assert_timed_out(a, 0.28, 1.5);
	/* the fixture really hangs: without fusebox nothing ends it */
	struct run *n = client(false, NULL, "block", "connect", f.port, 2.5);
	cr_assert(n->timed_out, "blackhole did not hang: %s", n->out);
	fixture_stop(&f);
}

Test(timeouts, connect_timeout_curl)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("connect_timeout"));

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	char *u = url(&f);
	struct run *r = curl(true, pol, 10, (char *[]){"-m", "4", u, NULL});
	cr_assert_eq(r->status, 28, "curl exit %d: %s", r->status, r->err);
	cr_assert(r->secs < 1.5, "took %.2f s", r->secs);
	cr_assert(strstr(r->err, "Failed to connect"), "%s", r->err);
	struct run *n = curl(false, NULL, 10, (char *[]){"-m", "3", u, NULL});
	cr_assert_eq(n->status, 28);
	cr_assert(n->secs >= 2.8, "without fusebox: %.2f s", n->secs);
	fixture_stop(&f);
}

Test(timeouts, response_timeout_blocking_and_asyncio)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("response_timeout"));

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	assert_timed_out(client(true, pol, "block", "request", f.port, 10),
			 0.28, 1.5);
	assert_timed_out(client(true, pol, "async", "request", f.port, 10),
			 0.28, 1.5);
	struct run *n = client(false, NULL, "async", "request", f.port, 2.5);
	cr_assert(n->timed_out, "hang fixture replied: %s", n->out);
	fixture_stop(&f);
}

Test(timeouts, response_timeout_curl)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("response_timeout"));

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *u = url(&f);
	struct run *r = curl(true, pol, 10, (char *[]){"-m", "4", u, NULL});
	cr_assert_eq(r->status, 56, "curl exit %d: %s", r->status, r->err);
	cr_assert(strstr(r->err, "Connection timed out"), "%s", r->err);
	cr_assert(r->secs < 1.5, "took %.2f s", r->secs);
	struct run *n = curl(false, NULL, 10, (char *[]){"-m", "3", u, NULL});
	cr_assert_eq(n->status, 28);
	cr_assert(n->secs >= 2.8);
	fixture_stop(&f);
}

Test(timeouts, response_timeout_spares_a_prompt_reply)
{
	struct fixture f;
	char *pol = policy_write("[default]\nresponse_timeout = 500ms\n");

	cr_assert_eq(fixture_start(&f, "slow", "--delay", "100", NULL), 0);
	struct run *r = client(true, pol, "block", "request", f.port, 10);
	cr_assert(!strncmp(r->out, "ok ", 3), "%s %s", r->out, r->err);
	fixture_stop(&f);
	cr_assert_eq(fixture_start(&f, "slow", "--delay", "1500", NULL), 0);
	assert_timed_out(client(true, pol, "block", "request", f.port, 10),
			 0.45, 1.4);
	fixture_stop(&f);
}

Test(timeouts, idle_timeout_blocking_and_asyncio)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("idle_timeout"));

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	/* idle: checked every quarter of the timeout */
	assert_timed_out(client(true, pol, "block", "idle", f.port, 10), 0.28,
			 1.6);
	assert_timed_out(client(true, pol, "async", "idle", f.port, 10), 0.28,
			 1.6);
	struct run *n = client(false, NULL, "block", "idle", f.port, 2.5);
	cr_assert(n->timed_out, "hang fixture closed: %s", n->out);
	fixture_stop(&f);
}

Test(timeouts, idle_timeout_curl)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("idle_timeout"));

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char *u = url(&f);
	struct run *r = curl(true, pol, 10, (char *[]){"-m", "4", u, NULL});
	cr_assert_eq(r->status, 56, "curl exit %d: %s", r->status, r->err);
	cr_assert(r->secs < 1.6, "took %.2f s", r->secs);
	fixture_stop(&f);
}

Test(timeouts, idle_timeout_spares_a_busy_connection)
{
	struct fixture f;
	char *pol = policy_write("[default]\nidle_timeout = 400ms\n");

	/* 3 s of traffic every 100 ms never sits idle for 400 ms */
	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *prog;
	cr_assert(asprintf(&prog,
			   "import socket,time\n"
			   "s=socket.create_connection(('127.0.0.1',%d))\n"
			   "for i in range(30):\n"
			   "  s.sendall(b'x'); assert s.recv(1)==b'x'\n"
			   "  time.sleep(0.1)\n"
			   "print('ok')\n",
			   f.port) > 0);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_str_eq(r->out, "ok\n", "%s", r->err);
	fixture_stop(&f);
}

Test(timeouts, send_timeout_blocking_and_asyncio)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("send_timeout"));

	cr_assert_eq(fixture_start(&f, "noread", NULL), 0);
	/* the buffers fill first, then the send stalls for 300 ms+ */
	assert_timed_out(client(true, pol, "block", "send", f.port, 15), 0.28,
			 3.0);
	assert_timed_out(client(true, pol, "async", "send", f.port, 15), 0.28,
			 3.0);
	struct run *n = client(false, NULL, "block", "send", f.port, 3.5);
	cr_assert(n->timed_out, "noread fixture read: %s", n->out);
	fixture_stop(&f);
}

Test(timeouts, send_timeout_curl_upload)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("send_timeout"));
	char file[] = "/tmp/fusebox-upload-XXXXXX";
	int fd = mkstemp(file);

	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, 64 << 20), 0);
	close(fd);
	cr_assert_eq(fixture_start(&f, "noread", NULL), 0);
	char *u = url(&f);
	struct run *r =
	    curl(true, pol, 15, (char *[]){"-m", "6", "-T", file, u, NULL});
	/* 55 or 56: whichever of send and recv curl calls first */
	cr_assert(r->status == 55 || r->status == 56, "curl exit %d: %s",
		  r->status, r->err);
	cr_assert(strstr(r->err, "Connection timed out"), "%s", r->err);
	cr_assert(r->secs < 3.0, "took %.2f s", r->secs);
	struct run *n =
	    curl(false, NULL, 15, (char *[]){"-m", "3", "-T", file, u, NULL});
	cr_assert_eq(n->status, 28, "without fusebox: exit %d", n->status);
	unlink(file);
	fixture_stop(&f);
}

Test(timeouts, unguarded_destination_keeps_waiting)
{
	struct fixture f;
	/* a rule for another port guards nothing here, and no [default] */
	char *pol = policy_write("[other]\nmatch = 127.0.0.1:1\n"
				 "connect_timeout = 300ms\n");

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	struct run *r = client(true, pol, "block", "connect", f.port, 2.0);
	cr_assert(r->timed_out, "an unmatched destination was guarded: %s",
		  r->out);
	fixture_stop(&f);
}

/* Connects (blocking, python) to host:port; returns the run. */
static struct run *connect_to(const char *pol, const char *host, int port,
			      double limit)
{
	char *prog;
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = limit};

	cr_assert(asprintf(&prog,
			   "import socket, time\n"
			   "t = time.monotonic()\n"
			   "try:\n"
			   "  socket.create_connection(('%s', %d), "
			   "source_address=('127.0.0.1', 0))\n"
			   "  print('ok')\n"
			   "except OSError as e:\n"
			   "  print('error %%d %%.3f' %% (e.errno, "
			   "time.monotonic() - t))\n",
			   host, port) > 0);
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

Test(timeouts, hostname_rules_match_the_names_the_program_resolved)
{
	struct fixture f;
	char *text;

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	/* a rule for the name python resolves (getaddrinfo), and one for a
	 * name it never resolves: only the first may apply */
	cr_assert(asprintf(&text,
			   "[byname]\nmatch = LocalHost:%d\n"
			   "connect_timeout = 300ms\n"
			   "[other]\nmatch = elsewhere.invalid:%d\n"
			   "connect_timeout = 100ms\n",
			   f.port, f.port) > 0);
	char *pol = policy_write(text);
	assert_timed_out(connect_to(pol, "localhost", f.port, 10), 0.28, 1.5);
	/* by address, neither name rule applies: it hangs */
	struct run *n = connect_to(pol, "127.0.0.1", f.port, 2.0);
	cr_assert(n->timed_out, "a name rule matched an address: %s", n->out);
	fixture_stop(&f);
}

Test(timeouts, msg_fastopen_is_a_connect)
{
	struct fixture f;
	char *pol = policy_write(POLICY_300MS("connect_timeout"));
	char *prog;

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	cr_assert(asprintf(&prog,
			   "import socket, time\n"
			   "s = socket.socket()\n"
			   "t = time.monotonic()\n"
			   "try:\n"
			   "  s.sendto(b'hi', socket.MSG_FASTOPEN, "
			   "('127.0.0.1', %d))\n"
			   "  print('sent')\n"
			   "except OSError as e:\n"
			   "  print('error %%d %%.3f' %% (e.errno, "
			   "time.monotonic() - t))\n",
			   f.port) > 0);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	assert_timed_out(r, 0.28, 1.5);
	struct run *n = run_new();
	struct run_opts no = {.timeout = 2.5};
	cr_assert_eq(run_prog(n, &no, argv), 0);
	cr_assert(n->timed_out, "fast open did not hang: %s", n->out);
	fixture_stop(&f);
}

/* Regression (issue 11): an aborted socket must poll like one the peer
 * reset (readable, RDHUP), or loops that read only on POLLIN never see
 * the timeout (wrk spun on epoll_wait); the read then says ETIMEDOUT.
 * The abort is two steps (disconnect, then shutdown): a program woken by
 * the first may look between them, so RDHUP is awaited a moment (1 s at
 * most; without the shutdown it never comes). */
Test(timeouts, an_aborted_socket_polls_like_a_reset_one)
{
	struct fixture h;

	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	char *pol = policy_write("[default]\nresponse_timeout = 300ms\n");
	char *prog;
	cr_assert(
	    asprintf(&prog,
		     "import select, selectors, socket, time\n"
		     "s = socket.create_connection(('127.0.0.1', %d))\n"
		     "s.setblocking(False)\n"
		     "s.send(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
		     "sel = selectors.EpollSelector()\n"
		     "sel.register(s, selectors.EVENT_READ)\n"
		     "if not sel.select(timeout=5):\n"
		     "  print('no event'); raise SystemExit\n"
		     "p = select.poll()\n"
		     "p.register(s, select.POLLIN | select.POLLRDHUP)\n"
		     "for i in range(100):\n"
		     "  ev = p.poll(0)\n"
		     "  rd = ev and ev[0][1] & select.POLLRDHUP\n"
		     "  if rd: break\n"
		     "  time.sleep(0.01)\n"
		     "try:\n"
		     "  s.recv(10); r = 'data'\n"
		     "except OSError as e:\n"
		     "  r = 'error %%d' %% e.errno\n"
		     "print('readable', 'rdhup' if rd else 'no rdhup', r)\n",
		     h.port) > 0);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_str_eq(r->out, "readable rdhup error 110\n",
			 "out: %s, stderr: %s", r->out, r->err);
	fixture_stop(&h);
}

/* Regression (issue 11): a reply counts when it arrives, read or not.  A
 * program that sends, works for a second, then reads must get the reply
 * that came at once, not ETIMEDOUT, and no timeout is counted. */
Test(timeouts, response_timeout_spares_a_reply_that_waits_unread)
{
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	char *pol = rule_policy(e.port, "response_timeout = 300ms\n");
	char *prog;
	cr_assert(asprintf(&prog,
			   "import socket, time\n"
			   "s = socket.create_connection(('127.0.0.1', %d))\n"
			   "s.sendall(b'ping')\n"
			   "time.sleep(1)\n"
			   "try:\n"
			   "  print(s.recv(10).decode())\n"
			   "except OSError as e:\n"
			   "  print('error %%d' %% e.errno)\n",
			   e.port) > 0);
	harness_segment();
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_str_eq(r->out, "ping\n", "stderr: %s", r->err);
	char *line = stats_line("r");
	cr_assert_eq(stats_field(line, "response_timeouts"), 0, "%s", line);
	cr_assert_eq(stats_field(line, "successes"), 1, "%s", line);
	fixture_stop(&e);
}

/* Regression (issue 11): on HTTP/2 every send armed response_timeout and
 * every received byte ended a call: grpcio's PING, PING-ACK, SETTINGS-ACK
 * and WINDOW_UPDATE frames were calls (8 for 3 RPCs), and could time out
 * a healthy channel.  Now each stream is a call, timed from its request's
 * END_STREAM to its first HEADERS; control frames arm nothing, and a slow
 * stream still times out. */
Test(timeouts, http2_streams_are_the_calls_and_control_frames_arm_nothing,
     .timeout = 60)
{
	char *pol = policy_write("[default]\nresponse_timeout = 500ms\n");
	char *script = src_path("tests/integration/scripts/grpc_calls.py");
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 40};
	char *argv[] = {"/usr/bin/python3", script, NULL};

	harness_segment();
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_str_eq(r->out, "a ok\nb ok\nslow UNAVAILABLE\n", "stderr: %s",
			 r->err);
	char *s = stats_line("default");
	cr_assert_eq(stats_field(s, "calls"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 2, "%s", s);
	cr_assert_eq(stats_field(s, "response_timeouts"), 1, "%s", s);
}

/* Regression (issue 11): the call of a send started after the send
 * returned, and a reply that another thread read in between was lost:
 * the call never ended (Java's HttpClient left a half-open probe open
 * for good) and its response_timeout fired on a healthy connection.  A
 * reader thread and a writer thread exchange 5,000 bytes: every one is a
 * call that succeeds, and nothing times out. */
Test(timeouts, a_reply_read_by_another_thread_during_the_send_counts,
     .timeout = 60)
{
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	char *pol = rule_policy(e.port, "response_timeout = 2s\n");
	char *prog = build_path("progs/pingpong"), port[16];
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 40};

	snprintf(port, sizeof port, "%d", e.port);
	harness_segment();
	cr_assert_eq(run_prog(r, &o, (char *[]){prog, port, "5000", NULL}), 0);
	cr_assert_str_eq(r->out, "ok 5000\n", "stderr: %s", r->err);
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "calls"), 5000, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 5000, "%s", s);
	cr_assert_eq(stats_field(s, "response_timeouts"), 0, "%s", s);
	fixture_stop(&e);
}

/* The deadline thread scans only the groups of 64 fds whose earliest
 * deadline passed: 15 response deadlines, 20 ms apart, among 150
 * connections whose idle deadlines are far, in three groups, each fire
 * 300 ms after its own request, and none of the others does. */
Test(timeouts, deadlines_in_many_fd_groups_each_fire_in_time)
{
	struct fixture f;
	char *pol = policy_write("[default]\nresponse_timeout = 300ms\n"
				 "idle_timeout = 10m\n");
	char script[] =
	    "import socket, select, sys, time\n"
	    "p = int(sys.argv[1])\n"
	    "socks = [socket.create_connection(('127.0.0.1', p))"
	    " for i in range(150)]\n"
	    "senders = socks[5::10]\n"
	    "sent = {}\n"
	    "for s in senders:\n"
	    "    time.sleep(0.02)\n"
	    "    s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
	    "    sent[s.fileno()] = time.monotonic()\n"
	    "by = {s.fileno(): s for s in socks}\n"
	    "pl = select.poll()\n"
	    "for s in socks:\n"
	    "    pl.register(s, select.POLLIN)\n"
	    "left = set(sent)\n"
	    "end = time.monotonic() + 5\n"
	    "while left and time.monotonic() < end:\n"
	    "    for fd, ev in pl.poll(100):\n"
	    "        pl.unregister(fd)\n"
	    "        try:\n"
	    "            by[fd].recv(1); r = 'data'\n"
	    "        except OSError as e:\n"
	    "            r = e.errno\n"
	    "        w = time.monotonic() - sent[fd] if fd in sent else -1\n"
	    "        print(fd, r, '%.3f' % w)\n"
	    "        left.discard(fd)\n"
	    "print('left', len(left))\n";

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	char ps[16];
	snprintf(ps, sizeof ps, "%d", f.port);
	char *argv[] = {(char *)python(), "-c", script, ps, NULL};
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	cr_assert_eq(run_prog(r, &o, argv), 0, "%s", r->err);
	int fired = 0, lo = 1000, hi = 0;
	char *line = r->out;
	for (;;) {
		int fd, e;
		double w;
		if (sscanf(line, "%d %d %lf", &fd, &e, &w) == 3) {
			/* a sender's own deadline, ETIMEDOUT, in time */
			cr_assert_eq(e, 110, "fd %d: %d\n%s", fd, e, r->out);
			cr_assert(w >= 0.28 && w < 1.5,
				  "fd %d after %.3f s\n%s", fd, w, r->out);
			fired++;
			lo = fd < lo ? fd : lo;
			hi = fd > hi ? fd : hi;
		} else if (!strncmp(line, "left ", 5)) {
			cr_assert_eq(atoi(line + 5), 0, "%s", r->out);
			break;
		} else {
			cr_assert_fail("unexpected: '%.40s'\n%s", line, r->out);
		}
		line = strchr(line, '\n');
		cr_assert(line, "%s", r->out);
		line++;
	}
	cr_assert_eq(fired, 15, "%s", r->out);
	cr_assert_geq(hi / 64 - lo / 64, 2, "fds %d..%d in one group", lo, hi);
	fixture_stop(&f);
}
