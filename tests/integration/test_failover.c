/* SPDX-License-Identifier: MIT */
/* Failover: a retry, or a connect whose breaker is open, goes to another
 * address the program resolved for the same name.  The name comes from a
 * hosts file bind-mounted over /etc/hosts in a mount namespace of the
 * client alone: svc.fusebox.test is 127.0.0.2, where nothing listens,
 * then 127.0.0.3, where a fixture answers.  The clients take only the
 * first address (gethostbyname, Perl's IO::Socket::INET), as many do. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "svc.fusebox.test"

/* The hosts file of the namespace. */
static char *hosts_file(void)
{
	char *path = strdup("/tmp/fusebox-hosts-XXXXXX");
	int fd = mkstemp(path);
	static const char text[] = "127.0.0.1 localhost\n"
				   "127.0.0.2 " NAME "\n"
				   "127.0.0.3 " NAME "\n";

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, sizeof text - 1),
		     (ssize_t)sizeof text - 1);
	close(fd);
	return path;
}

/* Skips the test when this machine cannot make a mount namespace. */
static void need_namespaces(void)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};
	char *argv[] = {"unshare", "-m", "true", NULL};

	if (run_prog(r, &o, argv) < 0 || r->status != 0)
		cr_skip_test("unshare -m is not allowed here: %s", r->err);
	free(r);
}

/* Runs argv where NAME resolves to 127.0.0.2 then 127.0.0.3, under pol
 * (NULL: without fusebox). */
static struct run *in_ns(const char *pol, char *const argv[])
{
	static char *hosts;
	struct run *r = run_new();
	struct run_opts o = {.shim = pol != NULL, .policy = pol, .timeout = 20};
	char *full[16] = {"unshare", "-m", "sh", "-c",
			  "mount --bind \"$0\" /etc/hosts && exec \"$@\""};
	int n = 5;

	if (!hosts)
		hosts = hosts_file();
	full[n++] = hosts;
	for (int i = 0; argv[i] && n < 15; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	cr_assert_eq(run_prog(r, &o, full), 0);
	return r;
}

/* client.py MODE request PORT NAME: "ok ..." or "error ERRNO ...". */
static struct run *client(const char *pol, const char *mode, int port)
{
	char portbuf[16];
	char *script = src_path("tests/integration/scripts/client.py");

	snprintf(portbuf, sizeof portbuf, "%d", port);
	char *argv[] = {(char *)python(), script, (char *)mode, "request",
			portbuf,	  NAME,	  NULL};
	return in_ns(pol, argv);
}

/* The fixture behind the second address; its port is the service's. */
static void start_second(struct fixture *f)
{
	cr_assert_eq(fixture_start(f, "http", "--host", "127.0.0.3", NULL), 0);
}

/* A policy with one rule [svc] for NAME:port and extra keys. */
static char *svc_policy(int port, const char *keys)
{
	char *text, *path;

	cr_assert(
	    asprintf(&text, "[svc]\nmatch = %s:%d\n%s", NAME, port, keys) > 0);
	path = policy_write(text);
	free(text);
	return path;
}

Test(failover, a_retry_goes_to_the_next_address_of_the_name)
{
	struct fixture f;
	struct run *r;
	char *on, *off, *line, addr[64];

	need_namespaces();
	harness_segment();
	start_second(&f);
	on = svc_policy(f.port, "retries = 2\nretry_backoff = 10ms\n");
	off = svc_policy(f.port, "retries = 2\nretry_backoff = 10ms\n"
				 "failover = off\n");

	/* without fusebox, and with failover off: refused by 127.0.0.2 */
	r = client(NULL, "block", f.port);
	cr_expect(!strncmp(r->out, "error 111", 9), "no shim: %s", r->out);
	r = client(off, "block", f.port);
	cr_expect(!strncmp(r->out, "error 111", 9), "off: %s %s", r->out,
		  r->err);

	/* blocking, then asyncio (the retry in getsockopt SO_ERROR) */
	r = client(on, "block", f.port);
	cr_expect(!strncmp(r->out, "ok ", 3), "block: %s %s", r->out, r->err);
	r = client(on, "async", f.port);
	cr_expect(!strncmp(r->out, "ok ", 3), "async: %s %s", r->out, r->err);

	/* the calls that reached the fixture count on its address */
	snprintf(addr, sizeof addr, "svc/127.0.0.3:%d", f.port);
	line = stats_line(addr);
	cr_expect_eq(stats_field(line, "successes"), 2, "%s", line);
	fixture_stop(&f);
}

Test(failover, an_open_breaker_sends_the_connect_to_a_healthy_address)
{
	struct fixture f;
	struct run *r;
	char *on, *off, *line, addr[64], *prog;

	need_namespaces();
	harness_segment();
	start_second(&f);
	on = svc_policy(f.port, "breaker = on\nbreaker_failures = 1\n"
				"breaker_open = 60s\n");
	off = svc_policy(f.port, "breaker = on\nbreaker_failures = 1\n"
				 "breaker_open = 60s\nfailover = off\n");

	/* with failover off, the first call opens 127.0.0.2's breaker and
	 * the second is refused by it, without a connect */
	r = client(off, "block", f.port);
	cr_expect(!strncmp(r->out, "error 111", 9), "%s", r->out);
	r = client(off, "block", f.port);
	cr_expect(!strncmp(r->out, "error 111", 9), "%s", r->out);
	snprintf(addr, sizeof addr, "svc/127.0.0.2:%d", f.port);
	line = stats_line(addr);
	cr_expect_eq(stats_field(line, "rejected_breaker"), 1, "%s", line);
	cr_expect(strstr(line, "breaker=open"), "%s", line);

	/* failover on: the breaker still refuses 127.0.0.2, and the
	 * connect goes to 127.0.0.3 instead; Perl tries one address */
	r = client(on, "block", f.port);
	cr_expect(!strncmp(r->out, "ok ", 3), "python: %s %s", r->out, r->err);
	cr_assert(asprintf(&prog,
			   "use IO::Socket::INET;"
			   "my $s = IO::Socket::INET->new(PeerAddr => '%s:%d')"
			   " or die \"connect: $!\\n\";"
			   "print $s \"GET / HTTP/1.0\\r\\n\\r\\n\";"
			   "print <$s>;",
			   NAME, f.port) > 0);
	char *perl[] = {"perl", "-e", prog, NULL};
	r = in_ns(on, perl);
	cr_expect(strstr(r->out, "hello from fixture"), "perl: %s %s", r->out,
		  r->err);
	line = stats_line(addr);
	cr_expect_eq(stats_field(line, "rejected_breaker"), 3, "%s", line);
	snprintf(addr, sizeof addr, "svc/127.0.0.3:%d", f.port);
	line = stats_line(addr);
	cr_expect_eq(stats_field(line, "successes"), 2, "%s", line);
	fixture_stop(&f);
}
