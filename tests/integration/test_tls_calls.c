/* SPDX-License-Identifier: MIT */
/* TLS seen through OpenSSL 3 (shim/tls.c), by the real clients: each
 * plaintext request is a call, response_timeout fires on a request (the
 * session tickets a TLS 1.3 server sends after the handshake end
 * nothing), classify = http reads 5xx from the plaintext, and a failed or
 * slow handshake fails the connect's call (tls_failures).  Before
 * tls.c, a hanging server was waited on until the client's own limit, a
 * 503 counted as success, and N requests were N + 1 calls. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A client: how it makes COUNT GET requests to URL on one connection
 * (PHP's file_get_contents: a connection each).  Each prints one line per
 * request: the status code, or "ERR ..." (then stops). */
enum kind { CURL, PY, RUBY, PHP };

struct client {
	const char *name;
	enum kind kind;
	const char *arg;   /* the script's KIND argument */
	bool one_conn;	   /* all requests on one connection */
	const char *needs; /* a Python module it needs, or NULL */
};

static const struct client clients[] = {
    {"curl", CURL, NULL, true, NULL},
    {"python http.client", PY, "http.client", true, NULL},
    {"python requests", PY, "requests", true, "requests"},
    {"python asyncio", PY, "asyncio", true, NULL},
    {"python aiohttp", PY, "aiohttp", true, "aiohttp"},
    {"ruby net/http", RUBY, NULL, true, NULL},
    {"php curl", PHP, "curl", true, NULL},
    {"php file_get_contents", PHP, "stream", false, NULL},
    {"python urllib", PY, "urllib", false, NULL},
};

#define NCLIENTS (sizeof clients / sizeof clients[0])

/* True when cl can run here (its interpreter and modules exist). */
static bool available(const struct client *cl)
{
	char cmd[256];

	switch (cl->kind) {
	case RUBY:
		return access("/usr/bin/ruby", X_OK) == 0;
	case PHP: {
		/* PHP loads its extensions with RTLD_DEEPBIND, which the
		 * sanitizers' runtimes refuse outright */
		const char *pre = getenv("FUSEBOX_TEST_PRELOAD");
		return access("/usr/bin/php", X_OK) == 0 &&
		       !(pre && strstr(pre, "libtsan"));
	}
	case PY:
		if (!cl->needs)
			return true;
		snprintf(cmd, sizeof cmd, "%s -c 'import %s' 2>/dev/null",
			 python(), cl->needs);
		return system(cmd) == 0;
	default:
		return true;
	}
}

/* Runs cl under the shim with policy pol: count requests to /x on
 * 127.0.0.1:port.  The run must end by itself (the clients' own limits
 * are 20 s, the harness's 15 s: a request nobody times out fails it). */
static struct run *run_client(const struct client *cl, const char *pol,
			      int port, int count)
{
	char url[64], n[16], *script = NULL;
	char *argv[24];
	int a = 0;
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};

	snprintf(url, sizeof url, "https://127.0.0.1:%d/x", port);
	snprintf(n, sizeof n, "%d", count);
	switch (cl->kind) {
	case CURL:
		argv[a++] = "curl";
		argv[a++] = "-sk";
		argv[a++] = "-o";
		argv[a++] = "/dev/null";
		argv[a++] = "-w";
		argv[a++] = "%{http_code}\n";
		for (int i = 0; i < count && a < 20; i++)
			argv[a++] = url;
		break;
	case PY:
		script = src_path("tests/integration/scripts/tls_client.py");
		argv[a++] = (char *)python();
		argv[a++] = script;
		argv[a++] = (char *)cl->arg;
		argv[a++] = url;
		argv[a++] = n;
		break;
	case RUBY:
		script = src_path("tests/integration/scripts/tls_client.rb");
		argv[a++] = "ruby";
		argv[a++] = script;
		argv[a++] = url;
		argv[a++] = n;
		break;
	case PHP:
		script = src_path("tests/integration/scripts/tls_client.php");
		argv[a++] = "php";
		argv[a++] = script;
		argv[a++] = (char *)cl->arg;
		argv[a++] = url;
		argv[a++] = n;
		break;
	}
	argv[a] = NULL;
	cr_assert_eq(run_prog(r, &o, argv), 0, "cannot run %s", cl->name);
	cr_assert(!r->timed_out, "%s hung: out '%s' err '%s'", cl->name, r->out,
		  r->err);
	free(script);
	return r;
}

/* How many lines of out are exactly line. */
static int lines_of(const char *out, const char *line)
{
	size_t n = strlen(line);
	int k = 0;

	for (const char *p = out; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, line, n))
			k++;
		p = e ? e + 1 : NULL;
	}
	return k;
}

/* Three requests on one connection are three calls (not the handshake's
 * flight as a fourth), all successes. */
static void requests_are_calls(const struct client *cl)
{
	struct fixture f;
	struct run *r;
	char *pol, *s;

	cr_assert_eq(fixture_start_tls(&f, "ok", NULL), 0);
	pol = rule_policy(f.port, "response_timeout = 5s\n");
	r = run_client(cl, pol, f.port, 3);
	fixture_stop(&f);
	cr_assert_eq(lines_of(r->out, "200"), 3, "%s: out '%s' err '%s'",
		     cl->name, r->out, r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "calls"), 3, "%s: %s", cl->name, s);
	cr_assert_eq(stats_field(s, "successes"), 3, "%s: %s", cl->name, s);
	cr_assert_eq(stats_field(s, "tls_failures"), 0, "%s: %s", cl->name, s);
	free(r);
	free(pol);
}

/* 503s read from the plaintext fail calls (classify = http) and open the
 * breaker: the fourth run is refused before it connects. */
static void http_5xx_opens_the_breaker(const struct client *cl)
{
	struct fixture f;
	struct run *r;
	char *pol, *s;

	cr_assert_eq(fixture_start_tls(&f, "503", NULL), 0);
	pol = rule_policy(f.port, "classify = http\nbreaker = on\n"
				  "breaker_failures = 3\n"
				  "breaker_open = 1m\n");
	for (int i = 0; i < 3; i++) {
		r = run_client(cl, pol, f.port, 1);
		cr_assert_eq(lines_of(r->out, "503"), 1,
			     "%s run %d: out '%s' err '%s'", cl->name, i,
			     r->out, r->err);
		free(r);
	}
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=open"), "%s: %s", cl->name, s);
	cr_assert_eq(stats_field(s, "http_5xx"), 3, "%s: %s", cl->name, s);
	r = run_client(cl, pol, f.port, 1);
	fixture_stop(&f);
	cr_assert_eq(lines_of(r->out, "503"), 0, "%s: out '%s'", cl->name,
		     r->out);
	cr_assert(strstr(r->out, "ERR") || !strncmp(r->out, "000", 3),
		  "%s got through an open breaker: '%s'", cl->name, r->out);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "rejected_breaker"), 1, "%s: %s", cl->name,
		     s);
	free(r);
	free(pol);
}

/* A server that completes the handshake (and sends its tickets), reads
 * the request and never answers: response_timeout fails the call, long
 * before the client's own 20 s. */
static void response_timeout_fires(const struct client *cl)
{
	struct fixture f;
	struct run *r;
	char *pol, *s;

	cr_assert_eq(fixture_start_tls(&f, "hang", NULL), 0);
	pol = rule_policy(f.port, "response_timeout = 500ms\n");
	r = run_client(cl, pol, f.port, 1);
	fixture_stop(&f);
	cr_assert_eq(lines_of(r->out, "200"), 0, "%s: '%s'", cl->name, r->out);
	s = stats_line("r");
	cr_assert_geq(stats_field(s, "response_timeouts"), 1, "%s: %s",
		      cl->name, s);
	cr_assert_eq(stats_field(s, "successes"), 0, "%s: %s", cl->name, s);
	free(r);
	free(pol);
}

#define CLIENT_TESTS(id, i)                                                    \
	Test(tls_calls, id##_requests_are_calls)                               \
	{                                                                      \
		if (!available(&clients[i]))                                   \
			cr_skip_test("%s cannot run here", clients[i].name);   \
		if (clients[i].one_conn)                                       \
			requests_are_calls(&clients[i]);                       \
		else                                                           \
			cr_skip_test("%s opens a connection per request",      \
				     clients[i].name);                         \
	}                                                                      \
	Test(tls_calls, id##_5xx_opens_the_breaker)                            \
	{                                                                      \
		if (!available(&clients[i]))                                   \
			cr_skip_test("%s cannot run here", clients[i].name);   \
		http_5xx_opens_the_breaker(&clients[i]);                       \
	}                                                                      \
	Test(tls_calls, id##_response_timeout_fires)                           \
	{                                                                      \
		if (!available(&clients[i]))                                   \
			cr_skip_test("%s cannot run here", clients[i].name);   \
		response_timeout_fires(&clients[i]);                           \
	}

CLIENT_TESTS(curl, 0)
CLIENT_TESTS(python_http_client, 1)
CLIENT_TESTS(python_requests, 2)
CLIENT_TESTS(python_asyncio, 3)
CLIENT_TESTS(python_aiohttp, 4)
CLIENT_TESTS(ruby, 5)
CLIENT_TESTS(php_curl, 6)
CLIENT_TESTS(php_file_get_contents, 7)
CLIENT_TESTS(python_urllib, 8)

_Static_assert(NCLIENTS == 9, "a client without its tests");

/* A server that accepts and never answers the ClientHello: with
 * handshake_timeout the connect's call fails as a TLS failure; curl gets
 * an error at once instead of its own limit. */
Test(tls_calls, handshake_timeout_fails_the_connects_call)
{
	struct fixture f;
	struct run *r;
	char *pol, *s;

	cr_assert_eq(fixture_start(&f, "hang", NULL), 0);
	pol = rule_policy(f.port, "handshake_timeout = 500ms\n");
	r = run_client(&clients[0], pol, f.port, 1);
	fixture_stop(&f);
	cr_assert_eq(r->status, 35, "curl: %d %s", r->status, r->err);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "tls_failures"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "calls"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "failures"), 1, "%s", s);
	free(r);
	free(pol);
}

/* A handshake the server resets or refuses with an alert is a failed
 * call, counted as a TLS failure, for a socket BIO (curl) and a memory
 * BIO (asyncio) alike. */
Test(tls_calls, a_failed_handshake_is_a_tls_failure)
{
	static const char *const modes[] = {"abort", "alert"};
	static const int clients_of[] = {0, 3};

	for (size_t m = 0; m < 2; m++) {
		struct fixture f;
		char *pol, *s, text[256];

		cr_assert_eq(fixture_start_tls(&f, modes[m], NULL), 0);
		/* a rule per mode: stats_line() shows its address */
		snprintf(text, sizeof text, "[%s]\nmatch = 127.0.0.1:%d\n",
			 modes[m], f.port);
		pol = policy_write(text);
		for (size_t k = 0; k < 2; k++) {
			const struct client *cl = &clients[clients_of[k]];
			struct run *r = run_client(cl, pol, f.port, 1);

			cr_assert_eq(lines_of(r->out, "200"), 0);
			free(r);
		}
		fixture_stop(&f);
		s = stats_line(modes[m]);
		cr_assert_eq(stats_field(s, "tls_failures"), 2, "%s: %s",
			     modes[m], s);
		cr_assert_eq(stats_field(s, "failures"), 2, "%s: %s", modes[m],
			     s);
		free(pol);
	}
}

/* HTTP/2 inside TLS (ALPN h2, curl --http2 against a node server): each
 * stream is a call, as on a bare socket; SETTINGS, WINDOW_UPDATE and the
 * other control frames are none; a 503 fails its stream (classify =
 * http); a stream left unanswered fails at response_timeout. */
Test(tls_calls, http2_over_tls_streams_are_the_calls)
{
	char dir[] = "/tmp/fusebox-h2tls-XXXXXX", *key, *cert, url[4][64];
	struct fixture f;
	struct run *r = run_new();
	char *script = src_path("tests/integration/scripts/h2tls.js");
	char *pol, *s;

	cr_assert(mkdtemp(dir));
	cr_assert_eq(harness_cert(dir, "h2", &cert, &key), 0, "openssl req");
	char *node[] = {"node", script, key, cert, NULL};
	cr_assert_eq(server_start(&f, node), 0, "node http2 server");
	snprintf(url[0], sizeof url[0], "https://127.0.0.1:%d/a", f.port);
	snprintf(url[1], sizeof url[1], "https://127.0.0.1:%d/503", f.port);
	snprintf(url[2], sizeof url[2], "https://127.0.0.1:%d/c", f.port);
	snprintf(url[3], sizeof url[3], "https://127.0.0.1:%d/hang", f.port);
	pol =
	    rule_policy(f.port, "response_timeout = 500ms\nclassify = http\n");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 15};
	char *three[] = {"curl", "-sk",	 "--http2", "-w", "%{http_version}\n",
			 url[0], url[1], url[2],    NULL};
	cr_assert_eq(run_prog(r, &o, three), 0);
	cr_assert_eq(r->status, 0, "curl: %s", r->err);
	cr_assert_eq(lines_of(r->out, "2"), 3, "not HTTP/2: '%s'", r->out);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "calls"), 3, "%s", s);
	/* the 503 read from the decrypted :status (classify = http) */
	cr_assert_eq(stats_field(s, "successes"), 2, "%s", s);
	cr_assert_eq(stats_field(s, "http_5xx"), 1, "%s", s);
	char *hang[] = {"curl", "-sk", "--http2", "-m", "10", url[3], NULL};
	cr_assert_eq(run_prog(r, &o, hang), 0);
	fixture_stop(&f);
	cr_assert(!r->timed_out);
	cr_assert(r->status != 0 && r->status != 28,
		  "curl waited for its own limit: %d", r->status);
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "response_timeouts"), 1, "%s", s);
	cr_assert_eq(stats_field(s, "calls"), 4, "%s", s);
	unlink(key);
	unlink(cert);
	rmdir(dir);
	free(key);
	free(cert);
	free(script);
	free(pol);
	free(r);
}

/* 16 threads, each opening 20 TLS connections in turn with 3 requests on
 * each, half on socket BIOs, half on memory BIOs pumped by hand, every
 * SSL freed after its connection: each request is one call, whichever
 * thread or address an SSL object had before. */
Test(tls_calls, ties_hold_under_threads_and_frees)
{
	struct fixture f;
	struct run *r = run_new();
	char *prog = build_path("progs/tlsthreads"), port[16], *pol, *s;

	cr_assert_eq(fixture_start_tls(&f, "ok", NULL), 0);
	snprintf(port, sizeof port, "%d", f.port);
	pol = rule_policy(f.port, "response_timeout = 10s\nclassify = http\n");
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 60};
	char *argv[] = {prog, port, "16", "20", "3", NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	fixture_stop(&f);
	cr_assert_eq(r->status, 0, "tlsthreads: %s", r->err);
	cr_assert_str_eq(r->out, "960\n");
	s = stats_line("r");
	cr_assert_eq(stats_field(s, "calls"), 960, "%s", s);
	cr_assert_eq(stats_field(s, "successes"), 960, "%s", s);
	free(prog);
	free(pol);
	free(r);
}
