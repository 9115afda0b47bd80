/* SPDX-License-Identifier: MIT */
/* fusebox stats --prometheus and fusebox serve: a breaker that curls
 * opened shows in metrics that promtool accepts, over HTTP too, a real
 * Prometheus scrapes them, and the server survives hostile and numerous
 * clients. */
#include "harness.h"
#include "segment/segment.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Children a test started, stopped by teardown() even after a failure. */
static pid_t serve_pid, prom_pid;
static char prom_dir[64];

/* Stops a child: SIGTERM, up to 5 s, then SIGKILL; its exit status (or
 * 128 + signal). */
static int stop(pid_t *pid)
{
	int st = 0;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(*pid, &st, WNOHANG) == *pid)
			goto done;
		usleep(100 * 1000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
done:
	*pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Removes one entry of a tree walked depth first. */
static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Kills what a test left running and removes Prometheus's directory. */
static void teardown(void)
{
	stop(&prom_pid);
	stop(&serve_pid);
	if (prom_dir[0]) {
		nftw(prom_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		prom_dir[0] = 0;
	}
}

/* Forks argv with stdout on a pipe (returned in *out, or closed when out
 * is NULL), stderr to errlog (or inherited when NULL), no LD_PRELOAD,
 * this test's segment, and death with the test process. */
static pid_t spawn(char *const argv[], int *out, const char *errlog)
{
	int p[2];
	pid_t pid;

	harness_segment(); /* named here, not in the child */
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (errlog) {
			int fd =
			    open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd >= 0)
				dup2(fd, 2);
		}
		unsetenv("LD_PRELOAD");
		setenv("FUSEBOX_SEGMENT", harness_segment(), 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (out)
		*out = p[0];
	else
		close(p[0]);
	return pid;
}

/* Starts `fusebox serve --listen 127.0.0.1:0` and returns the port it
 * says it listens on. */
static int serve_start(void)
{
	char *bin = build_path("fusebox");
	char *argv[] = {bin, "serve", "--listen", "127.0.0.1:0", NULL};
	char line[256];
	size_t got = 0;
	const char *p;
	int fd, port;

	harness_segment();
	serve_pid = spawn(argv, &fd, NULL);
	/* one line, within 10 s */
	for (int i = 0; i < 100 && got < sizeof line - 1; i++) {
		struct pollfd pf = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = read(fd, line + got, sizeof line - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	close(fd);
	line[got] = 0;
	p = strstr(line, "fusebox serve: listening on http://127.0.0.1:");
	cr_assert(p, "serve said: '%s'", line);
	port =
	    atoi(p + strlen("fusebox serve: listening on http://127.0.0.1:"));
	cr_assert(port > 0 && strstr(line, "/metrics\n"), "%s", line);
	free(bin);
	return port;
}

/* Runs curl on http://127.0.0.1:port/path with extra options (or NULL);
 * the body is followed by a line "HTTP <code>". */
static struct run *http(int port, const char *path, const char *extra)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 20};
	char url[128];

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	char *argv[] = {"curl",	     "-sS",
			"-m",	     "10",
			"-w",	     "\nHTTP %{http_code}\n",
			(char *)url, extra ? (char *)extra : "-g",
			NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "curl %s: %s", path, r->err);
	return r;
}

/* Cuts the "HTTP <code>" line off a http() run; returns the code. */
static int http_code(struct run *r)
{
	char *p = strstr(r->out, "\nHTTP ");
	int code;

	cr_assert(p, "%s", r->out);
	code = atoi(p + 6);
	*p = 0;
	r->outlen = (size_t)(p - r->out);
	return code;
}

/* Asserts that promtool check metrics accepts text with no complaint. */
static void promtool_ok(const char *text)
{
	char path[] = "/tmp/fusebox-prom-XXXXXX";
	int fd = mkstemp(path);
	struct run *r = run_new();
	struct run_opts o = {.timeout = 30};
	char *cmd;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert(asprintf(&cmd, "promtool check metrics < %s", path) > 0);
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	unlink(path);
	cr_assert_eq(r->status, 0, "promtool: %s%s\n%s", r->out, r->err, text);
	cr_assert_eq(r->outlen + r->errlen, 0, "promtool: %s%s", r->out,
		     r->err);
	free(cmd);
}

/* Opens the breaker of rule r on a refusing fixture with three guarded
 * curls (two refused, one rejected); returns the fixture's port. */
static int open_breaker(struct fixture *f)
{
	char url[64];

	cr_assert_eq(fixture_start(f, "refuse", NULL), 0);
	char *pol = rule_policy(f->port, "breaker = on\n"
					 "breaker_failures = 2\n"
					 "breaker_open = 60s\n");
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", f->port);
	harness_segment();
	for (int i = 0; i < 3; i++) {
		struct run *r = run_new();
		struct run_opts o = {
		    .shim = true, .policy = pol, .timeout = 15};
		char *argv[] = {"curl", "-sS", "-o", "/dev/null",
				"-m",	"5",   url,  NULL};

		cr_assert_eq(run_prog(r, &o, argv), 0);
		cr_assert_eq(r->status, 7, "curl %d: %s", i, r->err);
		free(r);
	}
	return f->port;
}

/* The metric line of the open breaker of rule r on port. */
static char *open_line(int port)
{
	char *s;

	cr_assert(asprintf(&s,
			   "\nfusebox_breaker_state{rule=\"r\",address="
			   "\"127.0.0.1:%d\",state=\"open\"} 1\n",
			   port) > 0);
	return s;
}

/* Runs fusebox stats --prometheus with extra arguments. */
static struct run *stats_prom(const char *a1, const char *a2)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};
	char *bin = build_path("fusebox");
	char *argv[] = {bin,	    "stats",	"--prometheus",
			(char *)a1, (char *)a2, NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	free(bin);
	return r;
}

Test(serve, stats_prometheus_shows_an_open_breaker_to_promtool,
     .fini = teardown)
{
	struct fixture f;
	char line[160];
	int port = open_breaker(&f);
	struct run *r = stats_prom(NULL, NULL);

	cr_assert_eq(r->status, 0, "%s", r->err);
	promtool_ok(r->out);
	cr_assert(strstr(r->out, open_line(port)), "%s", r->out);
	cr_assert(strstr(r->out, "\nfusebox_up 1\n"), "%s", r->out);
	snprintf(line, sizeof line,
		 "\nfusebox_connect_refused_total{rule=\"r\",address="
		 "\"127.0.0.1:%d\"} 2\n",
		 port);
	cr_assert(strstr(r->out, line), "%s", r->out);
	snprintf(line, sizeof line,
		 "\nfusebox_rejections_total{rule=\"r\",address="
		 "\"127.0.0.1:%d\",reason=\"breaker\"} 1\n",
		 port);
	cr_assert(strstr(r->out, line), "%s", r->out);
	cr_assert(strstr(r->out, "# TYPE fusebox_connect_duration_seconds "
				 "histogram\n"),
		  "%s", r->out);
	fixture_stop(&f);
}

Test(serve, stats_prometheus_without_a_segment_is_empty_but_valid,
     .fini = teardown)
{
	char name[64];

	snprintf(name, sizeof name, "fusebox-test-none-%d", (int)getpid());
	struct run *r = stats_prom("-s", name);

	cr_assert_eq(r->status, 0, "%s", r->err);
	promtool_ok(r->out);
	cr_assert(strstr(r->out, "fusebox_up 0\n"), "%s", r->out);
	cr_assert_null(strstr(r->out, "fusebox_breaker_state"), "%s", r->out);
}

/* The segment of this test, mapped read-write, and its rule r. */
static struct seg_header *map_segment(size_t *len)
{
	char path[128];
	struct stat st;
	void *base;
	int fd;

	snprintf(path, sizeof path, "/dev/shm/%s", harness_segment());
	fd = open(path, O_RDWR);
	cr_assert(fd >= 0, "%s", path);
	cr_assert_eq(fstat(fd, &st), 0);
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(base, MAP_FAILED);
	*len = (size_t)st.st_size;
	return base;
}

Test(serve, hostile_names_in_the_segment_are_escaped, .fini = teardown)
{
	/* 64 bytes, no NUL: quote, backslash, newline, a byte that is not
	 * UTF-8, a control character, then filler */
	static const char evil[] = "r\"\\\n\xff\x01yz";
	struct fixture f;
	size_t len;
	int port = open_breaker(&f), done = 0;
	struct seg_header *h = map_segment(&len);

	for (uint32_t i = 0; i < h->nrules; i++) {
		struct seg_rule *r = (void *)((char *)h + h->rules_off +
					      (size_t)i * h->rule_size);

		if (r->used != 2 || strncmp(r->name, "r", SEG_NAME_MAX))
			continue;
		memset(r->name, 'n', SEG_NAME_MAX);
		memcpy(r->name, evil, sizeof evil - 1);
		for (uint32_t j = 0; j < h->naddrs; j++) {
			struct seg_addr *a = (void *)((char *)h + h->addrs_off +
						      (size_t)j * h->addr_size);

			if (a->used != 2 || a->rule != i)
				continue;
			memset(a->host, 'h', SEG_HOST_MAX);
			memcpy(a->host, evil, sizeof evil - 1);
			done++;
		}
	}
	munmap(h, len);
	cr_assert_eq(done, 1);
	struct run *r = stats_prom(NULL, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	promtool_ok(r->out);
	/* escaped as the format says, the rest replaced, capped at 64 */
	char *want;
	const char *esc = "r\\\"\\\\\\n\xef\xbf\xbd\xef\xbf\xbd"
			  "yz";
	cr_assert(
	    asprintf(&want, "{rule=\"%s%.56s\",", esc,
		     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		     "nnnnnnnnnn") > 0);
	cr_assert(strstr(r->out, want), "%s not in %s", want, r->out);
	cr_assert(
	    asprintf(&want, ",host=\"%s%.56s\"}", esc,
		     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
		     "hhhhhhhhhh") > 0);
	cr_assert(strstr(r->out, want), "%s not in %s", want, r->out);
	(void)port;
	fixture_stop(&f);
}

Test(serve, serves_metrics_json_and_health, .fini = teardown)
{
	struct fixture f;
	struct run *r;
	int port = serve_start(), fport;

	/* no segment yet: empty but valid */
	r = http(port, "/metrics", NULL);
	cr_assert_eq(http_code(r), 200);
	promtool_ok(r->out);
	cr_assert(strstr(r->out, "fusebox_up 0\n"), "%s", r->out);

	fport = open_breaker(&f);
	r = http(port, "/metrics", NULL);
	cr_assert_eq(http_code(r), 200);
	promtool_ok(r->out);
	cr_assert(strstr(r->out, open_line(fport)), "%s", r->out);

	r = http(port, "/stats.json", NULL);
	cr_assert_eq(http_code(r), 200);
	struct run *py = run_new();
	struct run_opts po = {.timeout = 10, .input = r->out};
	char *pargv[] = {(char *)python(), "-c",
			 "import json, sys\n"
			 "d = json.load(sys.stdin)\n"
			 "a = [r for r in d['rules'] if r['name'] == 'r']\n"
			 "print(a[0]['addresses'][0]['breaker'])\n",
			 NULL};
	cr_assert_eq(run_prog(py, &po, pargv), 0);
	cr_assert_eq(py->status, 0, "%s\n%s", py->err, r->out);
	cr_assert_str_eq(py->out, "open\n");

	r = http(port, "/healthz", NULL);
	cr_assert_eq(http_code(r), 200);
	cr_assert_str_eq(r->out, "ok\n");
	r = http(port, "/nothing-here", NULL);
	cr_assert_eq(http_code(r), 404);
	r = http(port, "/metrics", "-XPOST");
	cr_assert_eq(http_code(r), 405);
	r = http(port, "/metrics?x=1", "-I");
	cr_assert_eq(http_code(r), 200);
	cr_assert(strstr(r->out, "text/plain; version=0.0.4"), "%s", r->out);

	/* SIGTERM: a clean exit */
	cr_assert_eq(stop(&serve_pid), 0);
	fixture_stop(&f);
}

/* A free TCP port on 127.0.0.1 (bound to port 0, then released). */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

Test(serve, a_prometheus_server_scrapes_the_breaker_state, .fini = teardown,
     .timeout = 90)
{
	struct fixture f;
	char cfg[128], data[128], logf[128], web[64], query[128];
	bool found = false;
	struct run *r = NULL;
	FILE *fp;

	if (access("/usr/bin/prometheus", X_OK))
		cr_skip_test("no /usr/bin/prometheus");
	int port = serve_start();
	open_breaker(&f);
	snprintf(prom_dir, sizeof prom_dir, "/tmp/fusebox-prom-XXXXXX");
	cr_assert(mkdtemp(prom_dir));
	snprintf(cfg, sizeof cfg, "%s/prom.yml", prom_dir);
	snprintf(data, sizeof data, "--storage.tsdb.path=%s/data", prom_dir);
	snprintf(logf, sizeof logf, "%s/prometheus.log", prom_dir);
	fp = fopen(cfg, "w");
	cr_assert(fp);
	fprintf(fp,
		"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
		"scrape_configs:\n  - job_name: fusebox\n"
		"    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
		port);
	fclose(fp);
	int pport = free_port();
	snprintf(web, sizeof web, "--web.listen-address=127.0.0.1:%d", pport);
	char cfgarg[160];
	snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
	char *argv[] = {"/usr/bin/prometheus", cfgarg, data, web, NULL};
	prom_pid = spawn(argv, NULL, logf);

	/* at most 40 queries, half a second apart */
	snprintf(query, sizeof query, "/api/v1/query?query=%s",
		 "fusebox_breaker_state%7Bstate%3D%22open%22%7D%3D%3D1");
	for (int i = 0; i < 40 && !found; i++) {
		usleep(500 * 1000);
		struct run_opts o = {.timeout = 10};
		char url[256];
		snprintf(url, sizeof url, "http://127.0.0.1:%d%s", pport,
			 query);
		char *cargv[] = {"curl", "-s", "-m", "5", url, NULL};
		r = run_new();
		cr_assert_eq(run_prog(r, &o, cargv), 0);
		found = r->status == 0 && strstr(r->out, "\"result\":[{") &&
			strstr(r->out, "\"rule\":\"r\"");
	}
	cr_assert(found, "Prometheus answered: %s", r ? r->out : "");
	cr_assert(kill(serve_pid, 0) == 0);
	fixture_stop(&f);
}

Test(serve, survives_200_clients_garbage_and_silent_ones, .fini = teardown,
     .timeout = 120)
{
	struct fixture f;
	struct run *r = run_new();
	struct run_opts o = {.timeout = 90};
	char *script = src_path("tests/integration/scripts/serve_clients.py");
	char p[16];
	int st;

	open_breaker(&f);
	int port = serve_start();
	snprintf(p, sizeof p, "%d", port);
	char *argv[] = {(char *)python(), script, p, "200", NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "%s%s", r->out, r->err);
	cr_assert(strstr(r->out, "ok=200 garbage=400 huge=431 silent=closed "
				 "partial=closed final=200"),
		  "%s%s", r->out, r->err);
	/* still alive, and still answering */
	cr_assert_eq(waitpid(serve_pid, &st, WNOHANG), 0);
	struct run *h = http(port, "/healthz", NULL);
	cr_assert_eq(http_code(h), 200);
	cr_assert_eq(stop(&serve_pid), 0);
	fixture_stop(&f);
}
