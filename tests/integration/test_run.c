/* SPDX-License-Identifier: MIT */
/* fusebox run: its exit status is the command's, an invalid policy stops
 * it before the command starts, it prepends the library to LD_PRELOAD and
 * exports an absolute FUSEBOX_POLICY, warns for programs it cannot guard,
 * and the policy really applies to the command. */
#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OK_POLICY "[default]\nconnect_timeout = 2s\n"

/* Runs `fusebox run ARGS...` (NULL-terminated) without the shim in the
 * runner; env adds KEY=VALUE strings. */
static struct run *fusebox_run(const char *const *env, ...)
{
	char *argv[32], *bin = build_path("fusebox");
	struct run_opts o = {.timeout = 20, .env = env};
	struct run *r = run_new();
	int n = 0;
	va_list ap;

	argv[n++] = bin;
	argv[n++] = "run";
	va_start(ap, env);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out, "fusebox run hung: %s %s", r->out, r->err);
	free(bin);
	return r;
}

/* The absolute, resolved path of the library. */
static char *library(void)
{
	char *lib = build_path("libfusebox.so"), *abs = realpath(lib, NULL);

	cr_assert(abs, "%s: not found", lib);
	free(lib);
	return abs;
}

/* A fresh path in /tmp that does not exist (malloc'd). */
static char *fresh_path(const char *stem)
{
	char *p;
	int fd;

	cr_assert(asprintf(&p, "/tmp/fusebox-%s-XXXXXX", stem) > 0);
	fd = mkstemp(p);
	cr_assert(fd >= 0);
	close(fd);
	unlink(p);
	return p;
}

/* Copies the file from to the new file to with mode. */
static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	cr_assert(in >= 0, "%s: cannot open", from);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0700);
	cr_assert(out >= 0, "%s: cannot create", to);
	while ((n = read(in, buf, sizeof buf)) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
	cr_assert_eq(chmod(to, mode), 0);
}

Test(run, exit_status_is_the_commands)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "sh", "-c", "exit 7", NULL);
	cr_assert_eq(r->status, 7, "exit %d: %s", r->status, r->err);
	r = fusebox_run(NULL, "-p", pol, "--", "true", NULL);
	cr_assert_eq(r->status, 0, "exit %d: %s", r->status, r->err);
	/* fusebox run execs: a signal ends the command as it would */
	r = fusebox_run(NULL, "-p", pol, "--", "sh", "-c", "kill -TERM $$",
			NULL);
	cr_assert_eq(r->status, 128 + 15, "exit %d: %s", r->status, r->err);
	unlink(pol);
}

Test(run, invalid_policy_exits_2_before_the_command)
{
	char *pol = policy_write("[default]\n"
				 "connect_timeout = 300\n"
				 "[r]\n"
				 "response_timeout = banana\n");
	char *marker = fresh_path("marker"), *cmd, *want;

	cr_assert(asprintf(&cmd, "touch %s", marker) > 0);
	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "sh", "-c", cmd, NULL);
	cr_assert_eq(r->status, 2, "exit %d: %s", r->status, r->err);
	cr_assert(access(marker, F_OK) < 0, "the command ran");
	/* every error, each as FILE:LINE: */
	for (int line = 2; line <= 4; line++) {
		cr_assert(asprintf(&want, "%s:%d: ", pol, line) > 0);
		cr_assert(strstr(r->err, want), "no '%s' in '%s'", want,
			  r->err);
		free(want);
	}
	free(cmd);
	free(marker);
	unlink(pol);
}

Test(run, library_prepended_to_ld_preload)
{
	/* malloc'd: run_prog frees the LD_PRELOAD= entries of the child's
	 * environment, ours included */
	const char *env[] = {strdup("LD_PRELOAD=/nonexistent-lib.so"), NULL};
	char *pol = policy_write(OK_POLICY), *lib = library(), *want;

	/* the loader complains about the missing library on stderr: fine */
	struct run *r = fusebox_run(env, "-p", pol, "--", "sh", "-c",
				    "printf '%s\\n' \"$LD_PRELOAD\"", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want, "%s /nonexistent-lib.so\n", lib) > 0);
	cr_assert_str_eq(r->out, want);
	free(want);
	/* no LD_PRELOAD before: the library alone */
	r = fusebox_run(NULL, "-p", pol, "--", "sh", "-c",
			"printf '%s\\n' \"$LD_PRELOAD\"", NULL);
	cr_assert(asprintf(&want, "%s\n", lib) > 0);
	cr_assert_str_eq(r->out, want, "stderr: %s", r->err);
	free(want);
	free(lib);
	unlink(pol);
}

Test(run, relative_policy_exported_absolute)
{
	char dir[] = "/tmp/fusebox-run-XXXXXX", *file, *cmd, *bin, *want;
	char real[PATH_MAX];
	struct run_opts o = {.timeout = 20};
	struct run *r = run_new();
	FILE *f;

	cr_assert(mkdtemp(dir));
	cr_assert(realpath(dir, real));
	cr_assert(asprintf(&file, "%s/rel.ini", dir) > 0);
	f = fopen(file, "w");
	cr_assert(f);
	fputs(OK_POLICY, f);
	fclose(f);
	bin = build_path("fusebox");
	cr_assert(asprintf(&cmd,
			   "cd %s && exec %s run -p rel.ini -- "
			   "sh -c 'echo \"$FUSEBOX_POLICY\"'",
			   dir, bin) > 0);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert(asprintf(&want, "%s/rel.ini\n", real) > 0);
	cr_assert_str_eq(r->out, want, "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	unlink(file);
	rmdir(dir);
	free(want);
	free(cmd);
	free(bin);
	free(file);
	free(r);
}

Test(run, warns_for_a_static_program)
{
	char *pol = policy_write(OK_POLICY), *src, *bin = fresh_path("static");
	struct run_opts o = {.timeout = 60};
	struct run *cc = run_new();
	FILE *f;

	cr_assert(asprintf(&src, "%s.c", bin) > 0);
	f = fopen(src, "w");
	cr_assert(f);
	fputs("int main(void)\n{\n\treturn 0;\n}\n", f);
	fclose(f);
	cr_assert_eq(
	    run_prog(cc, &o, (char *[]){"cc", "-static", "-o", bin, src, NULL}),
	    0);
	unlink(src);
	if (cc->status != 0)
		cr_skip_test("cc -static does not work here: %s", cc->err);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->err, "statically linked"), "no warning: '%s'",
		  r->err);
	cr_assert(strstr(r->err, bin), "warning without the path: '%s'",
		  r->err);
	unlink(bin);
	unlink(pol);
	free(src);
	free(bin);
	free(cc);
}

Test(run, warns_for_a_setuid_program)
{
	char *pol = policy_write(OK_POLICY), *bin = fresh_path("suid");

	copy_file("/bin/true", bin, 04755);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert(strstr(r->err, "setuid"), "no warning: '%s'", r->err);
	cr_assert(strstr(r->err, bin), "warning without the path: '%s'",
		  r->err);
	unlink(bin);
	unlink(pol);
	free(bin);
}

Test(run, no_warning_for_a_dynamic_program)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r = fusebox_run(NULL, "-p", pol, "--", "/bin/true", NULL);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->errlen, 0, "stderr: '%s'", r->err);
	r = fusebox_run(NULL, "-p", pol, "--", "true", NULL);
	cr_assert_eq(r->errlen, 0, "stderr: '%s'", r->err);
	unlink(pol);
}

Test(run, warns_for_a_go_program_without_cgo)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_path("go");
	char *src, *bin, *cmd;
	struct run_opts o = {.timeout = 120};
	struct run *r = run_new();

	cr_assert_eq(run_prog(r, &o, (char *[]){"go", "version", NULL}), 0);
	if (r->status != 0)
		cr_skip_test("no Go toolchain");
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert(asprintf(&src, "%s/main.go", dir) > 0);
	cr_assert(asprintf(&bin, "%s/prog", dir) > 0);
	FILE *f = fopen(src, "w");
	cr_assert(f);
	fputs("package main\n\nfunc main() {}\n", f);
	fclose(f);
	cr_assert(asprintf(&cmd,
			   "cd %s && CGO_ENABLED=0 GOCACHE=%s/cache "
			   "go build -o prog main.go",
			   dir, dir) > 0);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert_eq(r->status, 0, "go build: %s", r->err);
	r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert(strstr(r->err, "Go program"), "no warning: '%s'", r->err);
	free(src);
	free(bin);
	free(cmd);
	free(dir);
}

Test(run, the_policy_applies_to_the_command)
{
	char *pol = policy_write("[default]\nconnect_timeout = 300ms\n");
	struct run_opts bare = {.timeout = 15};
	struct fixture b;
	char *u;

	cr_assert_eq(fixture_start(&b, "blackhole", NULL), 0);
	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", b.port) > 0);
	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "curl", "-sS", "-o", "/dev/null",
			"--connect-timeout", "3", u, NULL);
	cr_assert_eq(r->status, 28, "curl exit %d: %s", r->status, r->err);
	cr_assert(r->secs < 1.5, "under fusebox run: %.2f s", r->secs);
	struct run *n = run_new();
	cr_assert_eq(run_prog(n, &bare,
			      (char *[]){"curl", "-sS", "-o", "/dev/null",
					 "--connect-timeout", "3", u, NULL}),
		     0);
	cr_assert_eq(n->status, 28, "curl exit %d: %s", n->status, n->err);
	cr_assert(n->secs >= 2.5, "without fusebox: %.2f s", n->secs);
	free(u);
	free(n);
	unlink(pol);
	fixture_stop(&b);
}

Test(run, usage_errors)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r = fusebox_run(NULL, NULL);
	cr_assert_eq(r->status, 2, "no COMMAND: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, NULL);
	cr_assert_eq(r->status, 2, "no COMMAND after -p: exit %d", r->status);
	r = fusebox_run(NULL, "--bogus", "--", "true", NULL);
	cr_assert_eq(r->status, 2, "unknown option: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, "--", "/nonexistent/command", NULL);
	cr_assert_eq(r->status, 127, "missing command: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, "--", "fusebox-no-such-command", NULL);
	cr_assert_eq(r->status, 127, "command not in PATH: exit %d", r->status);
	unlink(pol);
}
