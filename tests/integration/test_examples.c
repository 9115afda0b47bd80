/* SPDX-License-Identifier: MIT */
/* examples/ runs as shipped: the script of `make demo` opens and closes
 * its breaker, every example script shows its behaviour (exit 0), every
 * examples/ policy passes `fusebox check` and the Kubernetes manifests
 * are YAML. */
#include "harness.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs bash examples/SCRIPT with the build directory in FUSEBOX_BUILD
 * (the harness hands FUSEBOX_* to no child unless told), no colour, 60 s
 * at most. */
static struct run *example(const char *script)
{
	struct run *r = run_new();
	const char *b = getenv("FUSEBOX_BUILD");
	char *path = src_path(script), *benv;

	cr_assert(asprintf(&benv, "FUSEBOX_BUILD=%s", b ? b : "build") > 0);
	const char *env[] = {benv, "NO_COLOR=1", NULL};
	struct run_opts o = {.timeout = 60, .env = env};
	char *argv[] = {"bash", path, NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out, "%s ran over 60 s:\n%s", script, r->out);
	free(path);
	free(benv);
	return r;
}

/* Asserts that the script exited 0 and printed each of the strings. */
static void assert_shown(const char *script, const struct run *r,
			 const char *const *want)
{
	cr_assert_eq(r->status, 0, "%s exited %d:\n%s\n%s", script, r->status,
		     r->out, r->err);
	cr_assert(strstr(r->out, "the behaviour was shown."), "%s:\n%s", script,
		  r->out);
	for (; *want; want++)
		cr_assert(strstr(r->out, *want), "%s: no '%s' in:\n%s", script,
			  *want, r->out);
}

/* The breaker states the `fusebox stats` tables of out show for the
 * address rows (lines "    | RULE  IP:PORT  STATE ..."), in order, as
 * one string "closed open closed". */
static char *breaker_states(const char *out)
{
	static char seq[4096];
	const char *p = out;
	size_t n = 0;

	seq[0] = 0;
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		char rule[64], addr[64], state[32];
		if (sscanf(p, " | %63s %63s %31s", rule, addr, state) == 3 &&
		    strstr(addr, "127.0.0.1:") && n + strlen(state) + 2 < 4096)
			n += (size_t)snprintf(seq + n, sizeof seq - n, "%s%s",
					      n ? " " : "", state);
		p = eol ? eol + 1 : NULL;
	}
	return seq;
}

/* Counts the occurrences of s in out. */
static int count(const char *out, const char *s)
{
	int n = 0;

	for (const char *p = out; (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

Test(examples, demo_opens_the_breaker_fails_fast_and_closes_it, .timeout = 90)
{
	struct run *r = example("examples/demo/demo.sh");
	static const char *const want[] = {
	    "Step 1", "Step 2", "Step 3", "fusebox top -s fusebox-demo-", NULL};

	assert_shown("demo.sh", r, want);
	/* the three stats tables: closed, then open, then closed again */
	cr_assert_str_eq(breaker_states(r->out), "closed open closed", "%s",
			 r->out);
	cr_assert(count(r->out, "fusebox timed it out") >= 1, "%s", r->out);
	cr_assert(count(r->out, "failed fast") >= 1, "%s", r->out);
	/* orders were paid after the failures too */
	const char *fast = strstr(r->out, "failed fast");
	cr_assert(fast && strstr(fast, "  paid "), "%s", r->out);
}

Test(examples, payments_limit_and_breaker, .timeout = 90)
{
	struct run *r = example("examples/payments.sh");
	static const char *const want[] = {
	    "50 connections in (50), 5 refused (5)", "breaker opened (open)",
	    "failed at once: the breaker is open", NULL};

	assert_shown("payments.sh", r, want);
	cr_assert_str_eq(r->err, "", "%s", r->err);
}

Test(examples, guard_everything_breaker_per_address, .timeout = 90)
{
	struct run *r = example("examples/guard-everything.sh");
	static const char *const want[] = {
	    "-> [default]", "reached the healthy service (6 of 6)",
	    "opened (open)", "stayed closed (closed)", NULL};

	assert_shown("guard-everything.sh", r, want);
	/* one row per address, in the table's order */
	const char *s = breaker_states(r->out);
	cr_assert(!strcmp(s, "open closed") || !strcmp(s, "closed open"), "%s",
		  r->out);
}

Test(examples, chaos_injects_aborts_and_delays, .timeout = 90)
{
	struct run *r = example("examples/chaos.sh");
	static const char *const want[] = {
	    "ok      fault_abort refused", "ok      fault_delay held",
	    "ok      the service saw only the connects let through", NULL};

	assert_shown("chaos.sh", r, want);
}

Test(examples, db_pool_lets_four_redis_clis_in_at_once, .timeout = 90)
{
	struct run *r = example("examples/db-pool.sh");
	static const char *const want[] = {
	    "server: PONG", "never had more than 4 connections",
	    "refused at once: pool and line full", NULL};

	assert_shown("db-pool.sh", r, want);
}

static int ini_count, ini_bad;
static char ini_errors[8192];

/* nftw callback: runs `fusebox check` on each *.ini. */
static int check_one(const char *path, const struct stat *st, int type,
		     struct FTW *ftw)
{
	size_t n = strlen(path);

	(void)st;
	(void)ftw;
	if (type != FTW_F || n < 4 || strcmp(path + n - 4, ".ini"))
		return 0;
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};
	char *bin = build_path("fusebox");
	char *argv[] = {bin, "check", (char *)path, NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	ini_count++;
	if (r->status != 0) {
		ini_bad++;
		n = strlen(ini_errors);
		snprintf(ini_errors + n, sizeof ini_errors - n,
			 "%.200s: %.1000s\n", path, r->err);
	}
	free(bin);
	free(r);
	return 0;
}

Test(examples, every_policy_passes_check)
{
	char *dir = src_path("examples");

	cr_assert_eq(nftw(dir, check_one, 16, FTW_PHYS), 0);
	/* demo, payments, guard-everything, chaos, db-pool, kubernetes */
	cr_assert(ini_count >= 6, "only %d policies under %s", ini_count, dir);
	cr_assert_eq(ini_bad, 0, "%s", ini_errors);
}

Test(examples, kubernetes_manifests_are_yaml)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 20};
	char *dir = src_path("examples/kubernetes");
	char *argv[] = {
	    (char *)python(), "-c",
	    "import glob, sys\n"
	    "try:\n"
	    "    import yaml\n"
	    "except ImportError:\n"
	    "    sys.exit(77)\n"
	    "files = sorted(glob.glob(sys.argv[1] + '/*.y*ml'))\n"
	    "for f in files:\n"
	    "    docs = [d for d in yaml.safe_load_all(open(f)) if d]\n"
	    "    assert docs, f\n"
	    "print(len(files))\n",
	    dir, NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	if (r->status == 77)
		cr_skip_test("python3 has no yaml module");
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(atoi(r->out) >= 4, "%s", r->out);
}
