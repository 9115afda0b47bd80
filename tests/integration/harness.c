/* SPDX-License-Identifier: MIT */
/* Helpers of the integration tests: fixtures, policy files, children. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Path of a file in the build directory (malloc'd). */
char *build_path(const char *name)
{
	const char *b = getenv("FUSEBOX_BUILD");
	char *p;

	if (asprintf(&p, "%s/%s", b ? b : "build", name) < 0)
		abort();
	return p;
}

/* Path of a file in the source tree (malloc'd). */
char *src_path(const char *name)
{
	const char *s = getenv("FUSEBOX_SRC");
	char *p;

	if (asprintf(&p, "%s/%s", s ? s : ".", name) < 0)
		abort();
	return p;
}

/* The python3 to run. */
const char *python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
						     : "python3";
}

/* Starts build/NAME MODE ARGS... (the list ap); 0 or -1. */
static int fixture_startv(struct fixture *f, const char *name, const char *mode,
			  va_list ap)
{
	char *argv[32], *bin = build_path(name);
	int n = 0, rc;

	argv[n++] = bin;
	argv[n++] = (char *)mode;
	while (n < 28 && (argv[n] = va_arg(ap, char *)))
		n++;
	argv[n++] = "--lifetime";
	argv[n++] = "60";
	argv[n] = NULL;
	rc = server_start(f, argv);
	free(bin);
	return rc;
}

int server_start(struct fixture *f, char *const argv[])
{
	char line[32];
	int pfd[2];
	ssize_t got = 0;

	if (pipe(pfd) < 0)
		return -1;
	f->pid = fork();
	if (f->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		unsetenv("LD_PRELOAD");
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while (got < (ssize_t)sizeof line - 1) {
		struct pollfd p = {pfd[0], POLLIN, 0};
		ssize_t r;
		if (poll(&p, 1, 10000) <= 0)
			break;
		r = read(pfd[0], line + got, sizeof line - 1 - (size_t)got);
		if (r <= 0)
			break;
		got += r;
		if (memchr(line, '\n', (size_t)got))
			break;
	}
	close(pfd[0]);
	line[got > 0 ? got : 0] = 0;
	f->port = atoi(line);
	return f->port > 0 ? 0 : -1;
}

/* Starts build/fixture MODE ARGS...; 0 or -1. */
int fixture_start(struct fixture *f, const char *mode, ...)
{
	va_list ap;
	int rc;

	va_start(ap, mode);
	rc = fixture_startv(f, "fixture", mode, ap);
	va_end(ap);
	return rc;
}

/* Starts build/fixture-tls MODE ARGS...; 0 or -1. */
int fixture_start_tls(struct fixture *f, const char *mode, ...)
{
	va_list ap;
	int rc;

	va_start(ap, mode);
	rc = fixture_startv(f, "fixture-tls", mode, ap);
	va_end(ap);
	return rc;
}

/* Stops a fixture. */
void fixture_stop(struct fixture *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
}

/* Writes text to a new temporary policy file. */
char *policy_write(const char *text)
{
	char *path = strdup("/tmp/fusebox-test-XXXXXX.ini");
	int fd = mkstemps(path, 4);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

/* Replaces the content of path with text. */
void policy_rewrite(const char *path, const char *text, bool by_rename)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.new", path);
	f = fopen(by_rename ? tmp : path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	if (by_rename)
		rename(tmp, path);
}

static char segment[64]; /* this test's segment, named once */

/* Removes this test's segment when the test process ends. */
static void unlink_segment(void)
{
	char name[80];

	snprintf(name, sizeof name, "/%s", segment);
	shm_unlink(name);
}

/* The segment name of this test (fusebox-test-PID of the test process,
 * also in the children it forks once this was called). */
const char *harness_segment(void)
{
	if (!segment[0]) {
		snprintf(segment, sizeof segment, "fusebox-test-%d",
			 (int)getpid());
		atexit(unlink_segment);
	}
	return segment;
}

/* Builds the child's environment: ours without LD_PRELOAD/FUSEBOX_*,
 * plus what the options ask for; each test process gets a segment of its
 * own (FUSEBOX_SEGMENT=fusebox-test-PID) unless it names one. */
static char **child_env(const struct run_opts *o)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	for (const char *const *e = o->env; e && *e; e++)
		n++;
	env = calloc(n + 9, sizeof *env);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) &&
		    strncmp(*e, "FUSEBOX_", 8))
			env[k++] = *e;
	if (o->shim) {
		const char *extra = getenv("FUSEBOX_TEST_PRELOAD");
		char *lib = build_path("libfusebox.so"), *v;
		if (asprintf(&v, "LD_PRELOAD=%s%s%s", extra ? extra : "",
			     extra ? " " : "", lib) < 0)
			abort();
		env[k++] = v;
	}
	if (o->policy) {
		char *v;
		if (asprintf(&v, "FUSEBOX_POLICY=%s", o->policy) < 0)
			abort();
		env[k++] = v;
	}
	bool named = false;
	for (const char *const *e = o->env; e && *e; e++) {
		named |= !strncmp(*e, "FUSEBOX_SEGMENT=", 16);
		env[k++] = (char *)*e;
	}
	if (!named) {
		char *v;
		if (asprintf(&v, "FUSEBOX_SEGMENT=%s", harness_segment()) < 0)
			abort();
		env[k++] = v;
	}
	env[k] = NULL;
	return env;
}

/* Allocates a zeroed struct run. */
struct run *run_new(void)
{
	struct run *r = calloc(1, sizeof *r);

	if (!r)
		abort();
	return r;
}

/* Runs argv under opts; fills r. */
int run_prog(struct run *r, const struct run_opts *o, char *const argv[])
{
	int out[2], err[2], in[2], st;
	double t0 = now(), limit = o->timeout > 0 ? o->timeout : 30;
	char **env = child_env(o);
	pid_t pid;

	r->outlen = r->errlen = 0;
	r->timed_out = false;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(in, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execvpe(argv[0], argv, env);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	close(in[0]);
	if (o->input) {
		ssize_t w = write(in[1], o->input, strlen(o->input));
		(void)w;
	}
	close(in[1]);
	for (int open = 2; open > 0;) {
		struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
		double left = limit - (now() - t0);
		if (left <= 0) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, (int)(left * 1000) + 1) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t *len = i ? &r->errlen : &r->outlen;
			size_t cap = i ? sizeof r->err : sizeof r->out;
			char sink[4096];
			ssize_t n;
			if (!(p[i].revents & (POLLIN | POLLHUP)) || p[i].fd < 0)
				continue;
			if (*len < cap - 1)
				n = read(p[i].fd, buf + *len, cap - 1 - *len);
			else
				n = read(p[i].fd, sink, sizeof sink);
			if (n <= 0) {
				close(i ? err[0] : out[0]);
				if (i)
					err[0] = -1;
				else
					out[0] = -1;
				open--;
			} else if (*len < cap - 1) {
				*len += (size_t)n;
			}
		}
		if (out[0] < 0 && err[0] < 0)
			break;
	}
	if (out[0] >= 0)
		close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	waitpid(pid, &st, 0);
	r->secs = now() - t0;
	r->out[r->outlen] = 0;
	r->err[r->errlen] = 0;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	free(env); /* its few malloc'd strings die with the test */
	return 0;
}

/* Number of open fds of this process. */
int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* One line of KEY=VALUE about rule, or RULE/ADDRESS, from `fusebox stats
 * --json` (see scripts/stat.py), or "norule". */
char *stats_line(const char *rule)
{
	struct run *r = run_new(), *p = run_new();
	struct run_opts o = {.timeout = 10};
	char *bin = build_path("fusebox");
	char *script = src_path("tests/integration/scripts/stat.py");
	char *argv[] = {bin, "stats", "--json", NULL};
	char *name = strdup(rule), *addr = strchr(name, '/');

	if (addr)
		*addr++ = 0;
	if (run_prog(r, &o, argv) < 0 || r->status != 0)
		return strdup("stats failed");
	struct run_opts po = {.timeout = 10, .input = r->out};
	char *pargv[] = {(char *)python(), script, name, addr, NULL};
	if (run_prog(p, &po, pargv) < 0 || p->status != 0)
		return strdup("stat.py failed");
	return strdup(p->out);
}

/* The value of key in a stats_line(), or -1. */
long stats_field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, " %s=", key);
	p = strstr(line, pat);
	if (!p && !strncmp(line, pat + 1, strlen(pat + 1)))
		p = line - 1;
	return p ? atol(p + strlen(pat)) : -1;
}

/* A policy file for one rule [r] on 127.0.0.1:port with extra keys. */
char *rule_policy(int port, const char *keys)
{
	char *text, *path;

	if (asprintf(&text, "[r]\nmatch = 127.0.0.1:%d\n%s", port, keys) < 0)
		abort();
	path = policy_write(text);
	free(text);
	return path;
}

int harness_cert(const char *dir, const char *name, char **cert, char **key)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 30};
	int rc = -1;

	if (asprintf(cert, "%s/%s-cert.pem", dir, name) < 0 ||
	    asprintf(key, "%s/%s-key.pem", dir, name) < 0)
		abort();
	char *argv[] = {"openssl",
			"req",
			"-x509",
			"-newkey",
			"ec",
			"-pkeyopt",
			"ec_paramgen_curve:P-256",
			"-nodes",
			"-subj",
			"/CN=localhost",
			"-addext",
			"subjectAltName=IP:127.0.0.1",
			"-days",
			"1",
			"-keyout",
			*key,
			"-out",
			*cert,
			NULL};
	if (run_prog(r, &o, argv) == 0 && r->status == 0)
		rc = 0;
	free(r);
	return rc;
}
