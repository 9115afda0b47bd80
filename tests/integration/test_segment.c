/* SPDX-License-Identifier: MIT */
/* A segment that cannot be trusted (random bytes, truncated, another
 * owner, another layout version) is refused with one warning, and the
 * guarded program works on with private state. */
#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs a guarded curl against port with segment name; returns the run. */
static struct run *curl_on(const char *name, int port)
{
	static char env[96];
	const char *envv[] = {env, NULL};
	char *pol = policy_write("[default]\nconnect_timeout = 2s\n"
				 "breaker = on\n");
	struct run *r = run_new();
	struct run_opts o = {
	    .shim = true, .policy = pol, .timeout = 15, .env = envv};
	char url[64];

	snprintf(env, sizeof env, "FUSEBOX_SEGMENT=%s", name);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	char *argv[] = {"curl", "-sS", url, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	return r;
}

/* Counts the occurrences of needle in s. */
static int count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The shm path of a test segment. */
static void seg_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/dev/shm/%s", name);
}

/* Asserts a curl worked and warned once, with why in the warning. */
static void works_with_one_warning(const struct run *r, const char *why)
{
	cr_assert_eq(r->status, 0, "curl failed: %s", r->err);
	cr_assert(strstr(r->out, "hello from fixture"), "%s", r->out);
	cr_assert_eq(count(r->err, "fusebox["), 1, "stderr: %s", r->err);
	cr_assert(strstr(r->err, why), "stderr: %s", r->err);
	cr_assert(strstr(r->err, "keeping private state"), "%s", r->err);
}

/* Makes a valid segment by running one guarded curl. */
static void make_valid(const char *name, int port)
{
	struct run *r = curl_on(name, port);

	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_eq(count(r->err, "fusebox["), 0, "%s", r->err);
}

Test(segment, random_bytes_are_refused)
{
	struct fixture f;
	char name[64], path[96], junk[8192];
	int fd;

	snprintf(name, sizeof name, "fusebox-test-junk-%d", (int)getpid());
	seg_path(path, sizeof path, name);
	srand(7);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)rand();
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	works_with_one_warning(curl_on(name, f.port), "not a fusebox segment");
	unlink(path);
	fixture_stop(&f);
}

Test(segment, a_truncated_segment_is_refused)
{
	struct fixture f;
	char name[64], path[96];

	snprintf(name, sizeof name, "fusebox-test-trunc-%d", (int)getpid());
	seg_path(path, sizeof path, name);
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	make_valid(name, f.port);
	cr_assert_eq(truncate(path, 4096), 0);
	works_with_one_warning(curl_on(name, f.port), "size");
	cr_assert_eq(truncate(path, 100), 0);
	works_with_one_warning(curl_on(name, f.port), "truncated");
	unlink(path);
	fixture_stop(&f);
}

Test(segment, another_owner_is_refused)
{
	struct fixture f;
	char name[64], path[96];

	if (geteuid() != 0)
		cr_skip_test("needs root to chown the segment");
	snprintf(name, sizeof name, "fusebox-test-uid-%d", (int)getpid());
	seg_path(path, sizeof path, name);
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	make_valid(name, f.port);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	works_with_one_warning(curl_on(name, f.port), "owned by uid 65534");
	unlink(path);
	fixture_stop(&f);
}

Test(segment, another_layout_version_is_refused)
{
	struct fixture f;
	char name[64], path[96];
	uint32_t v = 99;
	int fd;

	snprintf(name, sizeof name, "fusebox-test-ver-%d", (int)getpid());
	seg_path(path, sizeof path, name);
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	make_valid(name, f.port);
	fd = open(path, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, &v, sizeof v, 8), (ssize_t)sizeof v);
	close(fd);
	works_with_one_warning(curl_on(name, f.port), "layout version 99");
	unlink(path);
	fixture_stop(&f);
}

Test(segment, a_segment_open_to_others_is_refused)
{
	struct fixture f;
	char name[64], path[96];

	snprintf(name, sizeof name, "fusebox-test-mode-%d", (int)getpid());
	seg_path(path, sizeof path, name);
	cr_assert_eq(fixture_start(&f, "http", NULL), 0);
	make_valid(name, f.port);
	cr_assert_eq(chmod(path, 0666), 0);
	works_with_one_warning(curl_on(name, f.port), "lets others in");
	unlink(path);
	fixture_stop(&f);
}

Test(segment, a_full_address_table_never_mixes_breakers)
{
	/* 16 address slots, 20 destinations: the first 16 get breakers
	 * (rejecting with EHOSTUNREACH after one refusal), the last 4 are
	 * guarded but not counted: the kernel refuses them every time. */
	char *pol = policy_write("[global]\nsegment_addresses = 16\n"
				 "[default]\nbreaker = on\n"
				 "breaker_failures = 1\n"
				 "reject_errno = EHOSTUNREACH\n");
	const char *prog =
	    "import socket\n"
	    "ports = []\n"
	    "socks = [socket.socket() for i in range(20)]\n"
	    "for s in socks:\n"
	    "  s.bind(('127.0.0.1', 0)); ports.append(s.getsockname()[1])\n"
	    "for s in socks: s.close()\n"
	    "out = []\n"
	    "for p in ports:\n"
	    "  for attempt in range(2):\n"
	    "    s = socket.socket()\n"
	    "    e = s.connect_ex(('127.0.0.1', p))\n"
	    "    s.close()\n"
	    "  out.append(str(e))\n"
	    "print(' '.join(out))\n";
	struct run *r = run_new();
	struct run_opts o = {.shim = true, .policy = pol, .timeout = 20};
	char *argv[] = {(char *)python(), "-c", (char *)prog, NULL};
	int unreach = 0, refused = 0, other = 0;

	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	for (char *t = strtok(r->out, " \n"); t; t = strtok(NULL, " \n")) {
		int e = atoi(t);
		if (e == 113)
			unreach++;
		else if (e == 111)
			refused++;
		else
			other++;
	}
	cr_assert_eq(unreach, 16, "breakers: %d (stderr %s)", unreach, r->err);
	cr_assert_eq(refused, 4);
	cr_assert_eq(other, 0);
	cr_assert_eq(count(r->err, "a table is full"), 1, "%s", r->err);
}
