/* SPDX-License-Identifier: MIT */
/* Stale kept-alive connections (shim/hooks.c stale_check(),
 * connect.c connect_again()): a server closes a connection it answered
 * on (as its keep-alive timeout would) and the client sends its next
 * request there.  Without fusebox Python's http.client gets
 * RemoteDisconnected; with it the request goes to a fresh connection,
 * counted in stale_reconnects.  Bytes that are no HTTP request are left
 * alone. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct run *keepalive(const char *pol, int port, bool shim)
{
	char *script = src_path("tests/integration/scripts/keepalive.py");
	char p[16];
	struct run *r = run_new();
	struct run_opts o = {.shim = shim, .policy = pol, .timeout = 20};

	snprintf(p, sizeof p, "%d", port);
	char *argv[] = {(char *)python(), script, p, "4", "0.3", NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	free(script);
	return r;
}

Test(stale, a_kept_alive_connection_the_peer_closed_is_connected_again)
{
	struct fixture f;
	struct run *r;
	char *pol, *s;

	/* each connection: one reply, kept alive, then the server closes */
	cr_assert_eq(fixture_start(&f, "http", "--requests", "1", NULL), 0);
	pol = rule_policy(f.port, "response_timeout = 5s\n");
	r = keepalive(pol, f.port, false);
	cr_assert_str_eq(r->out,
			 "200\nERR RemoteDisconnected\n200\n"
			 "ERR RemoteDisconnected\n",
			 "without fusebox: %s", r->err);
	free(r);
	r = keepalive(pol, f.port, true);
	fixture_stop(&f);
	cr_assert_str_eq(r->out, "200\n200\n200\n200\n", "with: %s", r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "stale_reconnects"), 3, "%s", s);
	cr_assert_eq(stats_field(s, "calls"), 4, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 4, "%s", s);
	free(r);
	free(pol);
}

/* A line that is no HTTP request, sent where the peer closed: the
 * program meets the closed connection, as without fusebox. */
Test(stale, what_is_no_http_request_is_left_alone)
{
	static const char prog[] =
	    "import socket, sys, time\n"
	    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
	    "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
	    "print(s.recv(4096).split()[1].decode())\n"
	    "time.sleep(0.3)\n"
	    "try:\n"
	    "    s.sendall(b'hello there\\n')\n"
	    "    print('read', len(s.recv(10)))\n"
	    "except OSError as e:\n"
	    "    print('ERR', type(e).__name__)\n";
	struct fixture f;
	struct run *r = run_new();
	char *pol, *s, port[16];

	cr_assert_eq(fixture_start(&f, "http", "--requests", "1", NULL), 0);
	pol = rule_policy(f.port, "response_timeout = 5s\n");
	snprintf(port, sizeof port, "%d", f.port);
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char *argv[] = {(char *)python(), "-c", (char *)prog, port, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	fixture_stop(&f);
	/* the closed connection: the send goes out, the read gets its end */
	cr_assert_str_eq(r->out, "200\nread 0\n", "%s", r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "stale_reconnects"), 0, "%s", s);
	free(r);
	free(pol);
}

/* Node's keep-alive agent (libuv, epoll) against a server that closes
 * each connection after its reply: without fusebox a few requests in a
 * hundred meet the closed connection (ECONNRESET, "socket hang up");
 * with it none does: the fresh socket goes into libuv's epoll set in the
 * old one's place. */
Test(stale, a_node_keep_alive_agent_meets_no_closed_connection, .timeout = 60)
{
	struct fixture f;
	struct run *r = run_new();
	char *script = src_path("tests/integration/scripts/node_keepalive.js");
	char *pol, *s, port[16];

	cr_assert_eq(fixture_start(&f, "http", "--requests", "1", NULL), 0);
	snprintf(port, sizeof port, "%d", f.port);
	pol = rule_policy(f.port, "retries = 2\nretry_on = empty\n"
				  "retry_backoff = 1ms\n");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 40};
	char *argv[] = {"node", script, port, "200", NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	fixture_stop(&f);
	cr_assert_str_eq(r->out, "ok 200 errors 0\n", "%s", r->err);
	s = stats_line("r");
	cr_assert_geq(stats_field(s, "stale_reconnects") +
			  stats_field(s, "retries"),
		      1, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 200, "%s", s);
	free(script);
	free(pol);
	free(r);
}
