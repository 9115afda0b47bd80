/* SPDX-License-Identifier: MIT */
/* "Do no harm": real programs against local fixtures give byte-identical
 * output and exit status with no shim, with the shim and an empty policy,
 * and with the shim and a policy that guards them; and the corners that a
 * careless interposer breaks (threads, fork, dup, close_range, fd leaks,
 * errno, FUSEBOX_DISABLE, UDP and Unix sockets) come out untouched. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Guards every TCP destination, with limits no healthy exchange hits. */
#define GUARD                                                                  \
	"[default]\nconnect_timeout = 2s\nresponse_timeout = 5s\n"             \
	"idle_timeout = 10s\nsend_timeout = 5s\n"
/* Fires fast: proves the guard is on where a test needs that. */
#define FAST "[default]\nconnect_timeout = 300ms\nresponse_timeout = 300ms\n"

#define BODY	 "fusebox harmless body: 0123456789 <>&\"' ~!@#$%^*()_+\n"
#define DATA_LEN 6144

/* The 6 KiB every echo client sends: every byte value, in order. */
static void echo_data(char *buf)
{
	for (size_t i = 0; i < DATA_LEN; i++)
		buf[i] = (char)(i % 256);
}

/* Whether the program name is found in PATH. */
static bool have(const char *name)
{
	char *cmd;
	bool ok;

	cr_assert(asprintf(&cmd, "command -v %s >/dev/null 2>&1", name) > 0);
	ok = system(cmd) == 0;
	free(cmd);
	return ok;
}

/* Runs argv under o; asserts that it ended by itself. */
static struct run *run(const struct run_opts *o, char *const argv[])
{
	struct run *r = run_new();

	cr_assert_eq(run_prog(r, o, argv), 0, "cannot run %s", argv[0]);
	cr_assert(!r->timed_out, "%s hung: out '%s' err '%s'", argv[0], r->out,
		  r->err);
	return r;
}

/* Runs argv with no shim, then with the shim under an empty policy and
 * under GUARD; asserts the three give the same status and stdout byte for
 * byte, and that the first exits 0 with want (wantlen bytes) in stdout,
 * or with any output when want is NULL. */
static void three_ways(char *const argv[], const char *input, const char *want,
		       size_t wantlen)
{
	char *empty = policy_write("; nothing guarded\n");
	char *guard = policy_write(GUARD);
	struct run_opts o[3] = {
	    {.shim = false, .timeout = 20, .input = input},
	    {.shim = true, .policy = empty, .timeout = 20, .input = input},
	    {.shim = true, .policy = guard, .timeout = 20, .input = input},
	};
	static const char *const how[3] = {"no shim", "empty policy",
					   "guarding policy"};
	struct run *r[3];

	for (int i = 0; i < 3; i++)
		r[i] = run(&o[i], argv);
	cr_assert_eq(r[0]->status, 0, "%s failed without the shim: %s", argv[0],
		     r[0]->err);
	if (want)
		cr_assert(r[0]->outlen >= wantlen &&
			      memmem(r[0]->out, r[0]->outlen, want, wantlen),
			  "%s: unexpected output (%zu bytes): '%s'", argv[0],
			  r[0]->outlen, r[0]->out);
	else
		cr_assert_gt(r[0]->outlen, 0, "%s printed nothing", argv[0]);
	for (int i = 1; i < 3; i++) {
		/* a library the loader cannot preload would prove nothing */
		cr_assert(!strstr(r[i]->err, "ld.so"), "%s, %s: %s", argv[0],
			  how[i], r[i]->err);
		cr_assert_eq(r[i]->status, r[0]->status,
			     "%s, %s: exit %d, not %d; stderr '%s'", argv[0],
			     how[i], r[i]->status, r[0]->status, r[i]->err);
		cr_assert_eq(r[i]->outlen, r[0]->outlen,
			     "%s, %s: %zu bytes of output, not %zu", argv[0],
			     how[i], r[i]->outlen, r[0]->outlen);
		cr_assert(!memcmp(r[i]->out, r[0]->out, r[0]->outlen),
			  "%s, %s: output differs", argv[0], how[i]);
	}
	for (int i = 0; i < 3; i++)
		free(r[i]);
	unlink(empty);
	unlink(guard);
	free(empty);
	free(guard);
}

/* The URL of a fixture. */
static char *url(const struct fixture *f)
{
	char *u;

	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f->port) > 0);
	return u;
}

/* The port of a fixture as a string, in a static buffer that the next
 * call overwrites. */
static char *port_of(const struct fixture *f)
{
	static char buf[16];

	snprintf(buf, sizeof buf, "%d", f->port);
	return buf;
}

/* An HTTP client of the http fixture, three ways. */
static void http_client(char *const argv_with_url[])
{
	three_ways(argv_with_url, NULL, BODY, strlen(BODY));
}

/* An echo client that sends echo_data() itself, three ways. */
static void echo_client(char *const argv[])
{
	char data[DATA_LEN];

	echo_data(data);
	three_ways(argv, NULL, data, sizeof data);
}

Test(harmless, curl)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "http", "--body", BODY, NULL), 0);
	char *u = url(&f);
	/* -i: the headers must come out the same too */
	http_client((char *[]){"curl", "-sS", "-i", u, NULL});
	http_client(
	    (char *[]){"curl", "-sS", "-X", "POST", "-d", "a=1&b=2", u, NULL});
	free(u);
	fixture_stop(&f);
}

Test(harmless, wget)
{
	struct fixture f;

	cr_assert_eq(fixture_start(&f, "http", "--body", BODY, NULL), 0);
	char *u = url(&f);
	http_client((char *[]){"wget", "-qO-", u, NULL});
	free(u);
	fixture_stop(&f);
}

Test(harmless, python_urllib_raw_and_asyncio)
{
	struct fixture h, e;
	char *script = src_path("tests/integration/scripts/harmless.py");

	cr_assert_eq(fixture_start(&h, "http", "--body", BODY, NULL), 0);
	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	char *u = url(&h);
	http_client((char *[]){(char *)python(), script, "urllib", u, NULL});
	echo_client(
	    (char *[]){(char *)python(), script, "raw", port_of(&e), NULL});
	echo_client(
	    (char *[]){(char *)python(), script, "async", port_of(&e), NULL});
	free(u);
	free(script);
	fixture_stop(&h);
	fixture_stop(&e);
}

Test(harmless, perl_io_socket_inet)
{
	static const char prog[] =
	    "use IO::Socket::INET;\n"
	    "my $s = IO::Socket::INET->new(PeerAddr => \"127.0.0.1\",\n"
	    "  PeerPort => $ARGV[0], Proto => 'tcp') or die \"$!\";\n"
	    "my $d = join('', map { chr($_ % 256) } 0 .. 6143);\n"
	    "for (my $o = 0; $o < length $d;) {\n"
	    "  my $n = $s->syswrite($d, length($d) - $o, $o);\n"
	    "  die \"write: $!\" unless $n; $o += $n; }\n"
	    "$s->shutdown(1);\n"
	    "my $got = '';\n"
	    "while (1) { my $n = $s->sysread(my $b, 65536);\n"
	    "  die \"read: $!\" unless defined $n; last unless $n;\n"
	    "  $got .= $b; }\n"
	    "binmode STDOUT; print $got;\n";
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	echo_client((char *[]){"perl", "-e", (char *)prog, port_of(&e), NULL});
	fixture_stop(&e);
}

Test(harmless, node_http_and_net)
{
	static const char get[] =
	    "require('http').get(process.argv[1], r => {\n"
	    "  const c = []; r.on('data', d => c.push(d));\n"
	    "  r.on('end', () => process.stdout.write(Buffer.concat(c)));\n"
	    "}).on('error', e => { console.error(e); process.exit(1); });\n";
	static const char net[] =
	    "const d = Buffer.alloc(6144);\n"
	    "for (let i = 0; i < d.length; i++) d[i] = i % 256;\n"
	    "const s = require('net').connect(+process.argv[1],\n"
	    "  '127.0.0.1', () => s.end(d));\n"
	    "const c = []; s.on('data', x => c.push(x));\n"
	    "s.on('end', () => process.stdout.write(Buffer.concat(c)));\n"
	    "s.on('error', e => { console.error(e); process.exit(1); });\n";
	struct fixture h, e;

	if (!have("node"))
		cr_skip_test("node is not installed");
	cr_assert_eq(fixture_start(&h, "http", "--body", BODY, NULL), 0);
	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	char *u = url(&h);
	http_client((char *[]){"node", "-e", (char *)get, u, NULL});
	echo_client((char *[]){"node", "-e", (char *)net, port_of(&e), NULL});
	free(u);
	fixture_stop(&h);
	fixture_stop(&e);
}

Test(harmless, netcat)
{
	char input[4096 + 1];
	struct fixture e;

	if (!have("nc"))
		cr_skip_test("nc is not installed");
	/* stdin is a C string here: every byte value but NUL */
	for (size_t i = 0; i < sizeof input - 1; i++)
		input[i] = (char)(i % 255 + 1);
	input[sizeof input - 1] = 0;
	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	three_ways((char *[]){"nc", "-N", "127.0.0.1", port_of(&e), NULL},
		   input, input, sizeof input - 1);
	fixture_stop(&e);
}

Test(harmless, redis_cli)
{
	struct fixture e;

	if (!have("redis-cli"))
		cr_skip_test("redis-cli is not installed");
	/* the echo fixture sends the request back; redis-cli prints what it
	 * makes of that, and must make the same of it every time */
	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	three_ways((char *[]){"redis-cli", "-h", "127.0.0.1", "-p", port_of(&e),
			      "PING", NULL},
		   NULL, NULL, 0);
	fixture_stop(&e);
}

Test(harmless, threads_32_by_100_connections)
{
	char *pol = policy_write(GUARD), *prog = build_path("progs/threads");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 30};
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	struct run *r =
	    run(&o, (char *[]){prog, port_of(&e), "32", "100", NULL});
	cr_assert_str_eq(r->out, "ok 3200 failed 0\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
}

Test(harmless, shell_forks_50_guarded_curls)
{
	char *pol = policy_write(GUARD), *cmd;
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 30};
	struct fixture h;
	size_t n = 0;

	cr_assert_eq(fixture_start(&h, "http", "--body", BODY, NULL), 0);
	cr_assert(asprintf(&cmd,
			   "for i in $(seq 50); do curl -sS "
			   "http://127.0.0.1:%d/ & done; wait",
			   h.port) > 0);
	struct run *r = run(&o, (char *[]){"sh", "-c", cmd, NULL});
	cr_assert_eq(r->status, 0, "%s", r->err);
	/* each reply is one write of less than PIPE_BUF: never interleaved */
	for (const char *p = r->out; (p = strstr(p, BODY)); p += strlen(BODY))
		n++;
	cr_assert_eq(n, 50, "%zu complete replies; stderr %s", n, r->err);
	cr_assert_eq(r->outlen, 50 * strlen(BODY));
	free(cmd);
	fixture_stop(&h);
}

Test(harmless, close_range_then_fd_reuse)
{
	/* the socket closed by close_range was aborted by response_timeout:
	 * a slot not forgotten would hand that abort to the file */
	char *pol = policy_write(FAST), *prog = build_path("progs/closerange");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct fixture e, h;
	char pe[16], ph[16];

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	snprintf(pe, sizeof pe, "%d", e.port);
	snprintf(ph, sizeof ph, "%d", h.port);
	struct run *r = run(&o, (char *[]){prog, pe, ph, NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
	fixture_stop(&h);
}

Test(harmless, no_fd_leaked_by_timeouts)
{
	char *pol = policy_write(FAST), *prog = build_path("progs/fdcount");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 30};
	struct fixture e, b, h;
	int before = -1, after = -2;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&b, "blackhole", NULL), 0);
	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	char pe[16], pb[16], ph[16];
	snprintf(pe, sizeof pe, "%d", e.port);
	snprintf(pb, sizeof pb, "%d", b.port);
	snprintf(ph, sizeof ph, "%d", h.port);
	struct run *r = run(&o, (char *[]){prog, pe, pb, ph, NULL});
	cr_assert_eq(sscanf(r->out, "fds %d %d", &before, &after), 2,
		     "out '%s' err '%s'", r->out, r->err);
	cr_assert_eq(after, before, "%d fds before, %d after", before, after);
	cr_assert_eq(r->status, 0, "stderr: %s", r->err);
	fixture_stop(&e);
	fixture_stop(&b);
	fixture_stop(&h);
}

Test(harmless, errno_kept_by_successful_calls)
{
	char *pol = policy_write(GUARD), *prog = build_path("progs/errno");
	struct run_opts bare = {.timeout = 20};
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	/* libc itself keeps errno on these calls */
	struct run *n = run(&bare, (char *[]){prog, port_of(&e), NULL});
	cr_assert_str_eq(n->out, "ok\n", "without the shim: %s", n->err);
	struct run *r = run(&o, (char *[]){prog, port_of(&e), NULL});
	cr_assert_str_eq(r->out, "ok\n", "out: %s, stderr: %s", r->out, r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
}

Test(harmless, dup_dup2_dup3_fcntl_dupfd)
{
	char *guard = policy_write(GUARD), *fast = policy_write(FAST);
	char *prog = build_path("progs/dup");
	struct run_opts og = {.shim = true, .policy = guard, .timeout = 20};
	struct run_opts of = {.shim = true, .policy = fast, .timeout = 20};
	struct fixture e, h;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	struct run *r = run(&og, (char *[]){prog, "echo", port_of(&e), NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	/* and the copy is still guarded once the original is gone */
	r = run(&of, (char *[]){prog, "hang", port_of(&h), NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	fixture_stop(&e);
	fixture_stop(&h);
}

Test(harmless, fork_child_closes_its_copy)
{
	char *pol = policy_write(GUARD), *prog = build_path("progs/fork");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	struct run *r = run(&o, (char *[]){prog, "close", port_of(&e), NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
}

/* Regression: a forked child inherits the parent's fd table with its
 * armed deadlines; its own timer thread must not abort (with stale
 * activity counters) the socket the parent still uses. */
Test(harmless, fork_child_timer_spares_the_parents_socket)
{
	char *pol = policy_write("[default]\nconnect_timeout = 2s\n"
				 "idle_timeout = 1s\n");
	char *prog = build_path("progs/fork");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run_opts bare = {.timeout = 20};
	struct fixture e;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	struct run *n = run(&bare, (char *[]){prog, "keep", port_of(&e), NULL});
	cr_assert_str_eq(n->out, "ok\n", "without the shim: %s", n->err);
	struct run *r = run(&o, (char *[]){prog, "keep", port_of(&e), NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
}

/* Regression: fclose() closes its fd inside libc, where close() is not
 * seen; a pending abort must not reach the file that reuses the number
 * (the hook checks the socket's inode before delivering). */
Test(harmless, fclose_of_an_aborted_socket_leaves_no_trace)
{
	char *pol = policy_write(FAST), *prog = build_path("progs/fclose");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run_opts bare = {.timeout = 20};
	struct fixture h;

	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	struct run *n = run(&bare, (char *[]){prog, port_of(&h), NULL});
	cr_assert_str_eq(n->out, "ok\n", "without the shim: %s", n->err);
	struct run *r = run(&o, (char *[]){prog, port_of(&h), NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	fixture_stop(&h);
}

Test(harmless, fusebox_disable_applies_no_timeout)
{
	static const char *const off[] = {"FUSEBOX_DISABLE=1", NULL};
	char *pol = policy_write(FAST);
	struct run_opts on = {.shim = true, .policy = pol, .timeout = 15};
	struct run_opts dis = {
	    .shim = true, .policy = pol, .timeout = 15, .env = off};
	struct fixture b;

	cr_assert_eq(fixture_start(&b, "blackhole", NULL), 0);
	char *u = url(&b);
	char *argv[] = {"curl", "-sS", "-o", "/dev/null", "--connect-timeout",
			"3",	u,     NULL};
	/* the policy fires at 300 ms ... */
	struct run *r = run(&on, argv);
	cr_assert_eq(r->status, 28, "curl exit %d: %s", r->status, r->err);
	cr_assert(r->secs < 1.5, "guarded: %.2f s", r->secs);
	/* ... unless FUSEBOX_DISABLE=1: curl's own 3 s limit ends it */
	struct run *d = run(&dis, argv);
	cr_assert_eq(d->status, 28, "curl exit %d: %s", d->status, d->err);
	cr_assert(d->secs >= 2.5, "FUSEBOX_DISABLE=1: ended after %.2f s",
		  d->secs);
	free(u);
	fixture_stop(&b);
}

Test(harmless, udp_and_unix_sockets_untouched)
{
	/* replies come 600 ms late: any of these timeouts applied to UDP or
	 * Unix sockets would end them */
	char *pol =
	    policy_write("[default]\nconnect_timeout = 300ms\n"
			 "response_timeout = 300ms\n"
			 "idle_timeout = 300ms\nsend_timeout = 300ms\n");
	char *script = src_path("tests/integration/scripts/harmless.py");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};

	struct run *r =
	    run(&o, (char *[]){(char *)python(), script, "udp_unix", NULL});
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	free(script);
}

/* Regression (issue 11): with a hostname pattern the connect path takes
 * the policy lock, then the resolver memory's lock; the fork handlers
 * took them the other way round, and a program that forks while another
 * thread connects hung after a few forks. */
Test(harmless, fork_while_connecting_never_deadlocks)
{
	struct fixture e, f;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&f, "echo", NULL), 0);
	char *pol = policy_write("[r]\nmatch = localhost\n"
				 "connect_timeout = 2s\n");
	char *prog = build_path("progs/forkconnect");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char pf[16];
	snprintf(pf, sizeof pf, "%d", f.port);
	struct run *r = run(&o, (char *[]){prog, port_of(&e), pf, NULL});
	cr_assert(!r->timed_out, "deadlocked: killed after 20 s");
	cr_assert_str_eq(r->out, "ok\n", "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	fixture_stop(&e);
	fixture_stop(&f);
}

/* Regression (issue 11): under connect_timeout a blocking connect is a
 * non-blocking one and a wait; the kernel's connecting state must end as
 * a blocking connect ends it: a second connect on a connected socket
 * says EISCONN, and connects repeated on a refused socket all say
 * ECONNREFUSED (not ECONNABORTED every other time). */
Test(harmless, connect_errno_as_the_kernel_says_under_connect_timeout)
{
	struct fixture e, x;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&x, "refuse", NULL), 0);
	char *pol = policy_write("[default]\nconnect_timeout = 2s\n");
	char *prog;
	cr_assert(asprintf(&prog,
			   "import socket\n"
			   "s = socket.socket()\n"
			   "s.connect(('127.0.0.1', %d))\n"
			   "t = socket.socket()\n"
			   "print(s.connect_ex(('127.0.0.1', %d)),\n"
			   "      [t.connect_ex(('127.0.0.1', %d))\n"
			   "       for _ in range(4)])\n",
			   e.port, e.port, x.port) > 0);
	char *argv[] = {(char *)python(), "-c", prog, NULL};
	struct run *n = run_new(), *r = run_new();
	struct run_opts bare = {.timeout = 20};
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	cr_assert_eq(run_prog(n, &bare, argv), 0);
	cr_assert_str_eq(n->out, "106 [111, 111, 111, 111]\n", "%s", n->err);
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_str_eq(r->out, n->out, "stderr: %s", r->err);
	fixture_stop(&e);
	fixture_stop(&x);
}

/* Regression (issue 11): a signal whose handler has SA_RESTART, arriving
 * during a blocking connect under connect_timeout, made connect fail with
 * EINTR; the kernel restarts it.  Without SA_RESTART, EINTR it is. */
Test(harmless, sa_restart_restarts_a_blocking_connect)
{
	struct fixture b;

	cr_assert_eq(fixture_start(&b, "blackhole", NULL), 0);
	char *pol = policy_write("[default]\nconnect_timeout = 700ms\n");
	char *prog = build_path("progs/sigconnect");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run *r = run(&o, (char *[]){prog, port_of(&b), "restart", NULL});
	cr_assert_str_eq(r->out, "errno 110 signals some\n", "stderr: %s",
			 r->err);
	r = run(&o, (char *[]){prog, port_of(&b), "norestart", NULL});
	cr_assert_str_eq(r->out, "errno 4 signals some\n", "stderr: %s",
			 r->err);
	fixture_stop(&b);
}

/* Regression (issue 11): a connect that fusebox refuses on a non-blocking
 * socket failed at once with ECONNREFUSED, where the kernel says
 * EINPROGRESS and reports the refusal by poll() and SO_ERROR; ab, Java
 * and nginx took other paths.  The same program against a closed port
 * without fusebox, and against a live server that fusebox refuses, must
 * print the same; a blocking connect still fails at once. */
Test(harmless, a_refused_nonblocking_connect_reports_as_the_kernel_does)
{
	struct fixture e, x;

	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	cr_assert_eq(fixture_start(&x, "refuse", NULL), 0);
	char *pol = policy_write("[default]\nfault_abort = 100%\n");
	const char *prog =
	    "import socket, select, errno, sys\n"
	    "port = int(sys.argv[1])\n"
	    "s = socket.socket(); s.setblocking(False)\n"
	    "e = s.connect_ex(('127.0.0.1', port))\n"
	    "p = select.poll(); p.register(s, select.POLLIN | select.POLLOUT)\n"
	    "ev = p.poll(5000); m = ev[0][1] if ev else 0\n"
	    "so = socket.SOL_SOCKET, socket.SO_ERROR\n"
	    "print(errno.errorcode[e], 'out' if m & select.POLLOUT else '',\n"
	    "      'in' if m & select.POLLIN else '',\n"
	    "      errno.errorcode.get(s.getsockopt(*so)), s.getsockopt(*so))\n"
	    "b = socket.socket()\n"
	    "print(errno.errorcode[b.connect_ex(('127.0.0.1', port))])\n";
	struct run_opts bare = {.timeout = 20};
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run *n = run(&bare, (char *[]){(char *)python(), "-c",
					      (char *)prog, port_of(&x), NULL});
	cr_assert_str_eq(n->out,
			 "EINPROGRESS out in ECONNREFUSED 0\n"
			 "ECONNREFUSED\n",
			 "%s", n->err);
	struct run *r = run(&o, (char *[]){(char *)python(), "-c", (char *)prog,
					   port_of(&e), NULL});
	cr_assert_str_eq(r->out, n->out, "stderr: %s", r->err);
	fixture_stop(&e);
	fixture_stop(&x);
}

/* Regression (issue 11): nginx's workers get a cleared environment, and
 * the library read FUSEBOX_POLICY at the first connect: the workers were
 * guarded by nothing.  The policy is read, and the segment mapped, when
 * the library loads, in the master; a worker that clears its environment
 * and (as root) switches to nobody is guarded, and counts in the
 * segment that `fusebox stats` of the starting user reads. */
Test(harmless, a_worker_with_a_cleared_environment_stays_guarded)
{
	struct fixture h;

	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	char *pol = rule_policy(h.port, "response_timeout = 300ms\n");
	char *prog = build_path("progs/worker");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run *r = run(&o, (char *[]){prog, port_of(&h), "65534", NULL});
	cr_assert_str_eq(r->out, "errno 110\n", "stderr: %s", r->err);
	char *line = stats_line("r");
	cr_assert_eq(stats_field(line, "response_timeouts"), 1, "%s", line);
	fixture_stop(&h);
}

/* Regression (issue 11): busybox wget drives its socket through stdio
 * (fdopen, fprintf, fgets, fread), whose reads and writes no hook saw: no
 * response_timeout, no call counted, and a half-open probe that never
 * ended, so the breaker refused 3 of 4 runs against a healthy server. */
Test(harmless, busybox_wget_through_stdio_is_guarded)
{
	struct fixture f;
	char port[16];

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	snprintf(port, sizeof port, "%d", f.port);
	char *pol = rule_policy(f.port, "response_timeout = 300ms\n"
					"breaker = on\nbreaker_failures = 2\n"
					"breaker_open = 300ms\n");
	char *u = url(&f);
	char *argv[] = {"busybox", "wget", "-q", "-O", "-", u, NULL};
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	for (int i = 0; i < 2; i++) {
		struct run *r = run(&o, argv);
		cr_assert_neq(r->status, 0, "run %d: %s", i, r->out);
		cr_assert(strstr(r->err, "timed out"), "run %d: %s", i, r->err);
	}
	char *s = stats_line("r");
	cr_assert_eq(stats_field(s, "response_timeouts"), 2, "%s", s);
	cr_assert(strstr(s, "breaker=open"), "%s", s);
	/* the service comes back: the probe ends, and every run gets in */
	fixture_stop(&f);
	cr_assert_eq(fixture_start(&f, "http", "--port", port, NULL), 0);
	usleep(400 * 1000);
	for (int i = 0; i < 4; i++) {
		struct run *r = run(&o, argv);
		cr_assert_eq(r->status, 0, "run %d after: %s", i, r->err);
		cr_assert_str_eq(r->out, "hello from fixture\n");
	}
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=closed"), "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 4, "%s", s);
	free(u);
	fixture_stop(&f);
}

/* Regression (issue 11): PHP loads its extensions with RTLD_DEEPBIND, so
 * libcurl under php-curl bound connect, send and recv to the C library
 * and ran unguarded (curl_exec hung).  Code loaded so is guarded now,
 * bound at load behind RELRO or lazily; and the interposed dlopen still
 * searches the caller's RUNPATH for a bare name, with or without it. */
Test(harmless, code_loaded_with_rtld_deepbind_is_guarded)
{
	const char *pre = getenv("FUSEBOX_TEST_PRELOAD");
	struct fixture h, e;

	/* the sanitizers' runtimes refuse RTLD_DEEPBIND outright */
	if (pre && strstr(pre, "libtsan"))
		cr_skip_test("RTLD_DEEPBIND under ThreadSanitizer");

	cr_assert_eq(fixture_start(&h, "hang", NULL), 0);
	cr_assert_eq(fixture_start(&e, "echo", NULL), 0);
	char *pol = policy_write("[default]\nresponse_timeout = 300ms\n");
	char *prog = build_path("progs/deepbind");
	char *now = build_path("progs/libdeep.so");
	char *lazy = build_path("progs/libdeeplazy.so");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run *r =
	    run(&o, (char *[]){prog, now, port_of(&h), "deep", NULL});
	cr_assert_str_eq(r->out, "errno 110\n", "stderr: %s", r->err);
	r = run(&o, (char *[]){prog, lazy, port_of(&h), "deep", NULL});
	cr_assert_str_eq(r->out, "errno 110\n", "stderr: %s", r->err);
	r = run(&o, (char *[]){prog, "libdeep.so", port_of(&e), "deep", NULL});
	cr_assert_str_eq(r->out, "errno 0\n", "stderr: %s", r->err);
	r = run(&o, (char *[]){prog, "libdeep.so", port_of(&e), "plain", NULL});
	cr_assert_str_eq(r->out, "errno 0\n", "stderr: %s", r->err);
	fixture_stop(&h);
	fixture_stop(&e);
}

/* The policy is read when the library loads: a program that cannot read
 * it (a child run as another user) must still write nothing unless it
 * connects; the warning comes at its first connect. */
Test(harmless, an_unreadable_policy_is_said_only_at_the_first_connect)
{
	if (getuid() != 0)
		cr_skip_test("needs root to run a child as nobody");
	char *pol = policy_write("[default]\nconnect_timeout = 1s\n");
	cr_assert_eq(chmod(pol, 0600), 0);
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	struct run *r =
	    run(&o, (char *[]){"setpriv", "--reuid=nobody", "--regid=nogroup",
			       "--clear-groups", "/bin/true", NULL});
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_str_eq(r->err, "", "a program that never connects spoke");
	r = run(&o, (char *[]){"setpriv", "--reuid=nobody", "--regid=nogroup",
			       "--clear-groups", (char *)python(), "-c",
			       "import socket\n"
			       "socket.socket().connect_ex(('127.0.0.1', 9))",
			       NULL});
	cr_assert(strstr(r->err, "Permission denied"), "stderr: %s", r->err);
}
