/* SPDX-License-Identifier: MIT */
/* fusebox top, driven inside tmux at 80x24: it shows the rules, the
 * breaker a real curl opened, forces the selected breaker, quits on q and
 * on SIGTERM with the terminal restored, follows resizes and filters; and
 * prints plain tables without escapes when its output is a pipe. */
#include "harness.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char sock[64];	     /* this test's tmux server, -L sock */
static struct fixture fx[2]; /* stopped in teardown */

/* Runs tmux -S sock -f /dev/null ARGS... (NULL-terminated). */
static struct run *tmux(const char *arg, ...)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};
	char *argv[16] = {"tmux", "-S", sock, "-f", "/dev/null"};
	int n = 5;
	va_list ap;

	va_start(ap, arg);
	for (const char *a = arg; a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

/* Kills this test's tmux server and its fixtures, whatever happened. */
static void teardown(void)
{
	if (sock[0]) {
		free(tmux("kill-server", NULL));
		unlink(sock);
		sock[0] = 0;
	}
	for (int i = 0; i < 2; i++)
		fixture_stop(&fx[i]);
}

TestSuite(top, .fini = teardown, .timeout = 120);

/* Starts fusebox top with args in a detached 80x24 tmux session "t" of
 * a server of this test's own; after top the pane prints its status and
 * the terminal modes that matter, and stays a while.  args bound top's
 * refreshes with -n, so that the server ends by itself within 90 s even
 * when this test is killed before its teardown. */
static void top_start(const char *args)
{
	char *bin = build_path("fusebox"), *cmd;
	struct run *r;

	snprintf(sock, sizeof sock, "/tmp/fusebox-top-%d.tmux", (int)getpid());
	cr_assert(asprintf(&cmd,
			   "env FUSEBOX_SEGMENT=%s %s top %s; "
			   "echo TOP-EXIT=$?; stty -a | tr ' ;' '\\n\\n' | "
			   "grep -E '^-?(icanon|echo|isig|opost|icrnl)$' | "
			   "tr '\\n' ' ' | sed 's/^/MODES: /'; echo; sleep 30",
			   harness_segment(), bin, args) > 0);
	r = tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "t", cmd,
		 NULL);
	cr_assert_eq(r->status, 0, "tmux new-session: %s", r->err);
	free(r);
	free(cmd);
	free(bin);
}

/* What the pane shows now (malloc'd). */
static char *capture(void)
{
	struct run *r = tmux("capture-pane", "-p", "-t", "t", NULL);
	char *s = strdup(r->out);

	free(r);
	return s;
}

/* A tmux format of the pane, as "#{alternate_on}" (malloc'd). */
static char *pane_format(const char *fmt)
{
	struct run *r = tmux("display", "-p", "-t", "t", fmt, NULL);
	char *s = strdup(r->out);

	free(r);
	s[strcspn(s, "\n")] = 0;
	return s;
}

/* Sends keys to the pane. */
static void keys(const char *k)
{
	free(tmux("send-keys", "-t", "t", k, NULL));
}

/* The line of text that holds what (malloc'd), or "". */
static char *line_of(const char *text, const char *what)
{
	const char *p = strstr(text, what), *b, *e;

	if (!p)
		return strdup("");
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	return strndup(b, e ? (size_t)(e - b) : strlen(b));
}

/* Polls the pane, at most 10 s, until the line that holds what also
 * holds and (or until what shows, when and is NULL) and, when not is
 * given, the pane does not show not; returns the last capture. */
static char *wait_for(const char *what, const char *and, const char * not )
{
	char *cap = NULL;

	for (int i = 0; i < 100; i++) {
		char *line;
		bool ok;

		free(cap);
		cap = capture();
		line = line_of(cap, what);
		ok = strstr(cap, what) && (!and || strstr(line, and)) &&
		     (!not || !strstr(cap, not ));
		free(line);
		if (ok)
			break;
		usleep(100 * 1000);
	}
	return cap;
}

/* Runs curl under the shim with policy against port; returns its exit
 * status. */
static int curl(const char *policy, int port)
{
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = policy, .timeout = 15};
	char url[64];
	int st;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	char *argv[] = {"curl", "-sS", "-o", "/dev/null", "-m", "5", url, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	st = r->status;
	free(r);
	return st;
}

/* A policy with rules named a and b for ports pa and pb. */
static char *two_rules(const char *a, int pa, const char *b, int pb,
		       const char *keys_a)
{
	char *text, *path;

	cr_assert(asprintf(&text,
			   "[%s]\nmatch = 127.0.0.1:%d\n%s\n"
			   "[%s]\nmatch = 127.0.0.1:%d\n",
			   a, pa, keys_a, b, pb) > 0);
	path = policy_write(text);
	free(text);
	return path;
}

Test(top, waits_for_the_segment_then_shows_the_breaker_curl_opened)
{
	char addr[64], *cap, *line;

	cr_assert_eq(fixture_start(&fx[0], "refuse", NULL), 0);
	cr_assert_eq(fixture_start(&fx[1], "http", NULL), 0);
	char *pol = two_rules("payments", fx[0].port, "search", fx[1].port,
			      "breaker = on\nbreaker_failures = 3\n"
			      "breaker_open = 60s\n");
	top_start("-i 0.2 -n 300");
	cap = wait_for("no segment", NULL, NULL);
	cr_assert(strstr(cap, "no segment fusebox-test-"), "%s", cap);
	cr_assert(strstr(cap, " yet"), "%s", cap);
	free(cap);
	cr_assert_eq(curl(pol, fx[1].port), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(curl(pol, fx[0].port), 7);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", fx[0].port);
	cap = wait_for(addr, " open ", NULL);
	line = line_of(cap, addr);
	cr_assert(strstr(line, " open "), "no open breaker:\n%s", cap);
	cr_assert(strstr(cap, "payments"), "%s", cap);
	cr_assert(strstr(cap, "search"), "%s", cap);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", fx[1].port);
	free(line);
	line = line_of(cap, addr);
	cr_assert(strstr(line, "disabled"), "search has no breaker:\n%s", cap);
	/* every line fits the 80 columns (UTF-8 continuation bytes take
	 * none) */
	for (const char *p = cap; *p;) {
		int cols = 0;

		for (; *p && *p != '\n'; p++)
			cols += ((unsigned char)*p & 0xc0) != 0x80;
		cr_assert_leq(cols, 80, "%s", cap);
		if (*p)
			p++;
	}
	free(line);
	free(cap);
}

Test(top, keys_force_the_selected_breaker_and_release_it)
{
	char addr[64], *cap, *s;

	cr_assert_eq(fixture_start(&fx[0], "http", NULL), 0);
	char *pol = rule_policy(fx[0].port, "breaker = on\n");
	cr_assert_eq(curl(pol, fx[0].port), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", fx[0].port);
	top_start("-i 0.2 -n 300");
	free(wait_for(addr, " closed", NULL));
	/* the selection starts on the rule; down to its address */
	keys("j");
	keys("o");
	cap = wait_for(addr, "forced_open", NULL);
	cr_assert(strstr(cap, "breaker forced open"), "%s", cap);
	free(cap);
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=forced_open"), "%s", s);
	free(s);
	keys("a");
	free(wait_for(addr, " closed", NULL));
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=closed"), "%s", s);
	free(s);
	/* back up to the rule: the whole rule */
	keys("k");
	keys("c");
	cap = wait_for(addr, "forced_closed", NULL);
	cr_assert(strstr(cap, "for every address"), "%s", cap);
	free(cap);
	s = stats_line("r");
	cr_assert(strstr(s, "breaker=forced_closed"), "%s", s);
	free(s);
}

/* Checks that top has gone and left the terminal as it found it. */
static void assert_restored(void)
{
	static const char *const modes[] = {"icanon", "echo", "isig", "opost",
					    "icrnl"};
	char *cap = wait_for("MODES:", NULL, NULL), *flags;
	char *line = line_of(cap, "MODES:");

	cr_assert(strstr(cap, "TOP-EXIT=0"), "%s", cap);
	cr_assert_null(strstr(cap, "q quit"), "the top screen stayed:\n%s",
		       cap);
	for (int i = 0; i < 5; i++) {
		char neg[16];

		snprintf(neg, sizeof neg, "-%s ", modes[i]);
		cr_assert(strstr(line, modes[i]), "%s", line);
		cr_assert_null(strstr(line, neg), "%s", line);
	}
	flags = pane_format("#{alternate_on} #{cursor_flag}");
	cr_assert_str_eq(flags, "0 1", "alternate screen, cursor: %s", flags);
	free(flags);
	free(line);
	free(cap);
}

Test(top, q_quits_and_restores_the_terminal)
{
	char *cap, *flags;

	top_start("-n 60");
	cap = wait_for("q quit", NULL, NULL);
	cr_assert(strstr(cap, "fusebox top"), "%s", cap);
	free(cap);
	flags = pane_format("#{alternate_on} #{cursor_flag}");
	cr_assert_str_eq(flags, "1 0", "while top runs: %s", flags);
	free(flags);
	keys("q");
	assert_restored();
}

Test(top, sigterm_restores_the_terminal)
{
	char path[64], comm[64] = "", *cap, *pid = NULL;
	FILE *f;
	int top = 0;

	top_start("-n 60");
	free(wait_for("q quit", NULL, NULL));
	pid = pane_format("#{pane_pid}");
	/* the pane's shell runs top as its one child */
	snprintf(path, sizeof path, "/proc/%s/task/%s/children", pid, pid);
	f = fopen(path, "r");
	cr_assert(f, "%s", path);
	cr_assert_eq(fscanf(f, "%d", &top), 1);
	fclose(f);
	snprintf(path, sizeof path, "/proc/%d/comm", top);
	f = fopen(path, "r");
	cr_assert(f && fgets(comm, sizeof comm, f));
	fclose(f);
	cr_assert_str_eq(comm, "fusebox\n");
	cr_assert_eq(kill(top, SIGTERM), 0);
	assert_restored();
	cap = capture();
	cr_assert_null(strstr(cap, "NAME "), "%s", cap);
	free(cap);
	free(pid);
}

/* The line (from 1) of the pane that shows what, or 0. */
static int line_no(const char *cap, const char *what)
{
	const char *at = strstr(cap, what);
	int n = 1;

	if (!at)
		return 0;
	for (const char *p = cap; p < at; p++)
		n += *p == '\n';
	return n;
}

Test(top, follows_a_resize)
{
	char *cap = NULL;

	top_start("-i 0.2 -n 300");
	free(wait_for("q quit", NULL, NULL));
	free(tmux("resize-window", "-t", "t", "-x", "100", "-y", "30", NULL));
	/* the footer moves to the new last line */
	for (int i = 0; i < 100; i++) {
		free(cap);
		cap = capture();
		if (line_no(cap, "q quit") == 30)
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(line_no(cap, "q quit"), 30, "%s", cap);
	free(cap);
	cap = NULL;
	free(tmux("resize-window", "-t", "t", "-x", "80", "-y", "24", NULL));
	for (int i = 0; i < 100; i++) {
		free(cap);
		cap = capture();
		if (line_no(cap, "q quit") == 24)
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(line_no(cap, "q quit"), 24, "%s", cap);
	free(cap);
	keys("q");
	assert_restored();
}

Test(top, filter_keeps_the_rules_that_match)
{
	char *cap;

	cr_assert_eq(fixture_start(&fx[0], "http", NULL), 0);
	cr_assert_eq(fixture_start(&fx[1], "http", NULL), 0);
	char *pol = two_rules("alpha", fx[0].port, "beta", fx[1].port, "");
	cr_assert_eq(curl(pol, fx[0].port), 0);
	cr_assert_eq(curl(pol, fx[1].port), 0);
	top_start("-i 0.2 -n 300");
	free(wait_for("beta", NULL, NULL));
	free(wait_for("alpha", NULL, NULL));
	keys("/");
	keys("beta");
	keys("Enter");
	cap = wait_for("beta", NULL, "alpha");
	cr_assert_null(strstr(cap, "alpha"), "%s", cap);
	cr_assert(strstr(cap, "filter: beta"), "%s", cap);
	free(cap);
	keys("Escape");
	cap = wait_for("alpha", NULL, NULL);
	cr_assert(strstr(cap, "alpha"), "%s", cap);
	free(cap);
}

Test(top, plain_tables_without_escapes_when_piped)
{
	char *bin = build_path("fusebox");
	struct run *r = run_new();
	struct run_opts o = {.timeout = 20};
	int frames = 0;

	cr_assert_eq(fixture_start(&fx[0], "http", NULL), 0);
	char *pol = rule_policy(fx[0].port, "breaker = on\n");
	cr_assert_eq(curl(pol, fx[0].port), 0);
	char *argv[] = {bin, "top", "-n", "2", "-i", "0.2", NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_null(memchr(r->out, 0x1b, r->outlen), "%s", r->out);
	for (const char *p = r->out; (p = strstr(p, "\nNAME ")); p++)
		frames++;
	cr_assert_eq(frames, 2, "%s", r->out);
	cr_assert(strstr(r->out, "closed"), "%s", r->out);
	cr_assert(strstr(r->out, "\nr "), "%s", r->out);
	free(r);
	free(bin);
}

Test(top, plain_says_when_there_is_no_segment)
{
	char *bin = build_path("fusebox");
	struct run *r = run_new();
	const char *env[] = {"FUSEBOX_SEGMENT=fusebox-test-none-here", NULL};
	struct run_opts o = {.timeout = 10, .env = env};
	char *argv[] = {bin, "top", "-n", "1", NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "no segment fusebox-test-none-here yet"), "%s",
		  r->out);
	free(r);
	free(bin);
}
