/* SPDX-License-Identifier: MIT */
/* The HTTPS fixture itself (build/fixture-tls), with no shim: it answers
 * curl over TLS in its modes, its certificate verifies, and its faults
 * are the ones the other suites rely on. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY "hello from fixture-tls\n"

/* A new empty temporary file; its path (malloc'd). */
static char *temp_file(void)
{
	char *path = strdup("/tmp/fusebox-tls-XXXXXX");
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	close(fd);
	return path;
}

/* Runs argv with no shim; asserts that it ended by itself. */
static struct run *run(char *const argv[], double timeout)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = timeout};

	cr_assert_eq(run_prog(r, &o, argv), 0, "cannot run %s", argv[0]);
	cr_assert(!r->timed_out, "%s hung: out '%s' err '%s'", argv[0], r->out,
		  r->err);
	return r;
}

/* curl -sk on /a and /b of 127.0.0.1:port on one connection; prints each
 * body, then each status code on its own line. */
static struct run *curl_two(int port)
{
	char a[64], b[64];

	snprintf(a, sizeof a, "https://127.0.0.1:%d/a", port);
	snprintf(b, sizeof b, "https://127.0.0.1:%d/b", port);
	char *argv[] = {"curl",		  "-sk", "-m", "10", "-w",
			"%{http_code}\n", a,	 b,    NULL};
	return run(argv, 15);
}

Test(tls, fixture_serves_ok_and_503_over_tls)
{
	struct fixture f;
	char *log = temp_file(), *rep = temp_file(), text[256];
	struct run *r;
	FILE *fp;
	size_t n;

	cr_assert_eq(
	    fixture_start_tls(&f, "ok", "--log", log, "--report", rep, NULL),
	    0);
	r = curl_two(f.port);
	fixture_stop(&f);
	cr_assert_eq(r->status, 0, "curl: %d %s", r->status, r->err);
	cr_assert_str_eq(r->out, BODY "200\n" BODY "200\n");
	free(r);

	/* Both requests seen, on one connection kept alive. */
	fp = fopen(log, "r");
	cr_assert(fp);
	n = fread(text, 1, sizeof text - 1, fp);
	text[n] = 0;
	fclose(fp);
	cr_assert_str_eq(text, "GET /a\nGET /b\n");
	fp = fopen(rep, "r");
	cr_assert(fp);
	n = fread(text, 1, sizeof text - 1, fp);
	text[n] = 0;
	fclose(fp);
	cr_assert(strstr(text, "accepted 1\nhandshakes 1\n"), "report: %s",
		  text);
	cr_assert(strstr(text, "requests 2\nreplies 2\n"), "report: %s", text);

	cr_assert_eq(fixture_start_tls(&f, "503", NULL), 0);
	r = curl_two(f.port);
	fixture_stop(&f);
	cr_assert_eq(r->status, 0, "curl: %d %s", r->status, r->err);
	cr_assert_str_eq(r->out, BODY "503\n" BODY "503\n");
	free(r);
	unlink(log);
	unlink(rep);
	free(log);
	free(rep);
}

Test(tls, fixture_certificate_verifies_from_cert_out)
{
	struct fixture f;
	char *pem = temp_file(), url[64], port[16];

	cr_assert_eq(fixture_start_tls(&f, "ok", "--cert-out", pem, NULL), 0);
	snprintf(url, sizeof url, "https://localhost:%d/v", f.port);
	snprintf(port, sizeof port, "%d", f.port);
	char *curl[] = {"curl", "-s", "-m", "10", "--cacert", pem, url, NULL};
	struct run *r = run(curl, 15);
	/* Python's checks, X.509-strict ones too, by name and by address. */
	char *py[] = {(char *)python(),
		      "-c",
		      "import ssl, sys, urllib.request\n"
		      "c = ssl.create_default_context(cafile=sys.argv[1])\n"
		      "c.verify_flags |= ssl.VERIFY_X509_STRICT\n"
		      "for h in ('localhost', '127.0.0.1'):\n"
		      "  u = 'https://%s:%s/p' % (h, sys.argv[2])\n"
		      "  print(urllib.request.urlopen(u, context=c, "
		      "timeout=10).status)\n",
		      pem,
		      port,
		      NULL};
	struct run *p = run(py, 15);

	fixture_stop(&f);
	cr_assert_eq(r->status, 0, "curl: %d %s", r->status, r->err);
	cr_assert_str_eq(r->out, BODY);
	cr_assert_eq(p->status, 0, "python: %s", p->err);
	cr_assert_str_eq(p->out, "200\n200\n");
	free(r);
	free(p);
	unlink(pem);
	free(pem);
}

Test(tls, fixture_hangs_after_handshake_and_aborts_handshake)
{
	struct fixture f;
	char url[64];

	/* hang: the handshake completes, the request is never answered. */
	cr_assert_eq(fixture_start_tls(&f, "hang", NULL), 0);
	snprintf(url, sizeof url, "https://127.0.0.1:%d/h", f.port);
	char *hang[] = {"curl", "-sk", "-m", "1", url, NULL};
	struct run *r = run(hang, 10);
	fixture_stop(&f);
	cr_assert_eq(r->status, 28, "curl: %d %s", r->status, r->err);
	free(r);

	/* abort: a reset after the ClientHello, an SSL connect error. */
	cr_assert_eq(fixture_start_tls(&f, "abort", NULL), 0);
	snprintf(url, sizeof url, "https://127.0.0.1:%d/x", f.port);
	char *abort_[] = {"curl", "-sk", "-m", "10", url, NULL};
	r = run(abort_, 15);
	fixture_stop(&f);
	cr_assert_eq(r->status, 35, "curl: %d %s", r->status, r->err);
	free(r);
}
