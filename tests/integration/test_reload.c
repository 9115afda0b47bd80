/* SPDX-License-Identifier: MIT */
/* Policy loading in a running program: a changed file is picked up (by
 * rename and in place), an invalid one is ignored with one line, an
 * invalid one at start means pass-through with one line. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOW "[global]\nreload = 200ms\n[default]\nconnect_timeout = 1500ms\n"
#define FAST "[global]\nreload = 200ms\n[default]\nconnect_timeout = 300ms\n"
#define BAD  "[global]\nreload = 200ms\n[default]\nconnect_timeout = 300\n"

/* Counts the lines of s that contain needle. */
static int lines_with(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Runs reload.py with the policy first, then the text of next. */
static struct run *reload(const char *first, const char *next, const char *how,
			  int port, const char *const *env)
{
	char *pol = policy_write(first), *nxt = policy_write(next);
	char *script = src_path("tests/integration/scripts/reload.py");
	char portbuf[16];
	struct run *r = run_new();
	struct run_opts o = {
	    .shim = true, .policy = pol, .timeout = 20, .env = env};

	snprintf(portbuf, sizeof portbuf, "%d", port);
	char *argv[] = {(char *)python(), script,  pol, nxt,
			(char *)how,	  portbuf, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

/* Parses the two attempts of reload.py. */
static void attempts(const struct run *r, double *a, double *b)
{
	int e1, e2;

	cr_assert_eq(sscanf(r->out, "%lf %d\n%lf %d", a, &e1, b, &e2), 4,
		     "output '%s' stderr '%s'", r->out, r->err);
	cr_assert_eq(e1, 110);
	cr_assert_eq(e2, 110);
}

Test(reload, picks_up_a_file_replaced_by_rename)
{
	struct fixture f;
	double a, b;

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	attempts(reload(SLOW, FAST, "rename", f.port, NULL), &a, &b);
	cr_assert(a >= 1.4 && a < 2.5, "first attempt %.3f s", a);
	cr_assert(b >= 0.28 && b < 1.0, "after reload %.3f s", b);
	fixture_stop(&f);
}

Test(reload, picks_up_a_file_rewritten_in_place)
{
	struct fixture f;
	double a, b;

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	attempts(reload(SLOW, FAST, "inplace", f.port, NULL), &a, &b);
	cr_assert(a >= 1.4 && a < 2.5, "first attempt %.3f s", a);
	cr_assert(b >= 0.28 && b < 1.0, "after reload %.3f s", b);
	fixture_stop(&f);
}

Test(reload, keeps_the_old_policy_when_the_new_one_is_invalid)
{
	struct fixture f;
	double a, b;

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	struct run *r = reload(SLOW, BAD, "rename", f.port, NULL);
	attempts(r, &a, &b);
	cr_assert(a >= 1.4 && b >= 1.4, "old policy lost: %.3f %.3f", a, b);
	cr_assert_eq(lines_with(r->err, "fusebox["), 1, "stderr: %s", r->err);
	cr_assert(strstr(r->err, "needs a unit"), "%s", r->err);
	cr_assert(strstr(r->err, "keeping the old policy"), "%s", r->err);
	fixture_stop(&f);
}

Test(reload, invalid_policy_at_start_passes_through_with_one_line)
{
	struct fixture f;
	char *pol = policy_write(BAD);
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 10};

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	char *u;
	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f.port) > 0);
	char *argv[] = {"curl", "-sS", "--connect-timeout", "2", u, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 28);
	cr_assert(r->secs >= 1.9, "a policy applied: %.2f s", r->secs);
	cr_assert_eq(lines_with(r->err, "fusebox["), 1, "stderr: %s", r->err);
	cr_assert(strstr(r->err, ":4: connect_timeout"), "%s", r->err);
	cr_assert(strstr(r->err, "passing through"), "%s", r->err);
	fixture_stop(&f);
}

Test(reload, log_info_reports_the_timeout)
{
	struct fixture f;
	char *pol = policy_write(FAST);
	struct run *r = run_new();
	const char *env[] = {"FUSEBOX_LOG=info", NULL};
	struct run_opts o = {
	    .shim = true, .policy = pol, .timeout = 10, .env = env};

	cr_assert_eq(fixture_start(&f, "blackhole", NULL), 0);
	char *u;
	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", f.port) > 0);
	char *argv[] = {"curl", "-sS", "-m", "3", u, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 28);
	cr_assert(strstr(r->err, "connect_timeout (300ms) fired"), "%s",
		  r->err);
	fixture_stop(&f);
}
