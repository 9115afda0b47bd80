/* SPDX-License-Identifier: MIT */
/* fusebox stats --prometheus and fusebox serve: a breaker that curls
 * opened shows in metrics that promtool accepts, over HTTP and HTTPS too,
 * a real Prometheus scrapes them (HTTPS too), and the server survives
 * hostile and numerous clients. */
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

/* Children a test started, stopped by teardown() even after a failure;
 * directories it made, removed by it. */
static pid_t serve_pid, prom_pid;
static char prom_dir[64], tls_dir[64];

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

/* Kills what a test left running and removes the directories of
 * Prometheus and of the certificates. */
static void teardown(void)
{
	stop(&prom_pid);
	stop(&serve_pid);
	if (prom_dir[0]) {
		nftw(prom_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		prom_dir[0] = 0;
	}
	if (tls_dir[0]) {
		nftw(tls_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		tls_dir[0] = 0;
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

/* Starts `fusebox serve --listen 127.0.0.1:0`, over HTTPS with cert and
 * key when they are not NULL, and returns the port it says it listens
 * on. */
static int serve_launch(const char *cert, const char *key)
{
	char *bin = build_path("fusebox"), *want;
	char *argv[] = {bin,
			"serve",
			"--listen",
			"127.0.0.1:0",
			cert ? "--tls-cert" : NULL,
			(char *)cert,
			"--tls-key",
			(char *)key,
			NULL};
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
	cr_assert(asprintf(&want, "fusebox serve: listening on %s://127.0.0.1:",
			   cert ? "https" : "http") > 0);
	p = strstr(line, want);
	cr_assert(p, "serve said: '%s'", line);
	port = atoi(p + strlen(want));
	cr_assert(port > 0 && strstr(line, "/metrics\n"), "%s", line);
	free(want);
	free(bin);
	return port;
}

/* Starts `fusebox serve --listen 127.0.0.1:0` (plain HTTP) and returns
 * its port. */
static int serve_start(void)
{
	return serve_launch(NULL, NULL);
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

/* Runs curl on https://127.0.0.1:port/path, and on path2 too over the
 * same connection when it is not NULL, trusting the certificate cacert;
 * the bodies are followed by a line "HTTP <code> <connections opened>". */
static struct run *https(int port, const char *path, const char *path2,
			 const char *cacert)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 20};
	char url[128], url2[128];

	snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
	snprintf(url2, sizeof url2, "https://127.0.0.1:%d%s", port,
		 path2 ? path2 : "");
	char *argv[] = {"curl",	    "-sS",
			"-m",	    "10",
			"--cacert", (char *)cacert,
			"-w",	    "\nHTTP %{http_code} %{num_connects}\n",
			url,	    path2 ? url2 : NULL,
			NULL};
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 0, "curl %s: %s", path, r->err);
	return r;
}

/* Makes a self-signed P-256 certificate for 127.0.0.1, valid one day,
 * with the openssl command; *cert and *key receive the paths of the
 * files (malloc'd), in a directory teardown() removes. */
static void make_cert(const char *name, char **cert, char **key)
{
	if (!tls_dir[0]) {
		snprintf(tls_dir, sizeof tls_dir, "/tmp/fusebox-tls-XXXXXX");
		cr_assert(mkdtemp(tls_dir));
	}
	cr_assert_eq(harness_cert(tls_dir, name, cert, key), 0,
		     "openssl req failed");
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

Test(serve, serves_metrics_over_tls_and_not_to_plain_http, .fini = teardown,
     .timeout = 60)
{
	struct fixture f;
	struct run *r;
	char *cert, *key, url[64];

	make_cert("serve", &cert, &key);
	int port = serve_launch(cert, key);
	int fport = open_breaker(&f);

	/* two requests on one connection: keep-alive works over TLS */
	r = https(port, "/healthz", "/metrics", cert);
	cr_assert(strstr(r->out, "ok\n\nHTTP 200 1\n"), "%s", r->out);
	char *second = strstr(r->out, "\nHTTP 200 1\n") + 12;
	cr_assert(strstr(second, "\nHTTP 200 0\n"), "%s", r->out);
	*strstr(second, "\nHTTP 200 0\n") = 0;
	promtool_ok(second);
	cr_assert(strstr(second, open_line(fport)), "%s", second);
	cr_assert(strstr(second, "\nfusebox_up 1\n"), "%s", second);

	/* plain HTTP to the TLS port gets no metrics */
	struct run *p = run_new();
	struct run_opts o = {.timeout = 20};
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	char *argv[] = {"curl", "-sS", "-m", "10", url, NULL};
	cr_assert_eq(run_prog(p, &o, argv), 0);
	cr_assert_neq(p->status, 0, "plain curl got: %s", p->out);
	cr_assert_null(strstr(p->out, "fusebox_"), "%s", p->out);

	/* nor does a client that does not trust the certificate */
	snprintf(url, sizeof url, "https://127.0.0.1:%d/metrics", port);
	char *argv2[] = {"curl", "-sS", "-m", "10", url, NULL};
	p = run_new();
	cr_assert_eq(run_prog(p, &o, argv2), 0);
	cr_assert_eq(p->status, 60, "curl: %d %s", p->status, p->err);

	/* the server is unharmed by both, and stops cleanly */
	r = https(port, "/stats.json", NULL, cert);
	cr_assert(strstr(r->out, "\"breaker\": \"open\""), "%s", r->out);
	cr_assert(strstr(r->out, "\nHTTP 200 1\n"), "%s", r->out);
	cr_assert_eq(stop(&serve_pid), 0);
	fixture_stop(&f);
}

/* Runs fusebox serve --tls-cert cert --tls-key key, which must fail at
 * once; asserts exit status 2 and one line on stderr that starts with
 * "fusebox serve: NAMED: " and holds why. */
static void serve_refuses(const char *cert, const char *key, const char *named,
			  const char *why)
{
	struct run *r = run_new();
	struct run_opts o = {.timeout = 10};
	char *bin = build_path("fusebox"), *want;
	char *argv[] = {bin,	       "serve",	     "--listen",
			"127.0.0.1:0", "--tls-cert", (char *)cert,
			"--tls-key",   (char *)key,  NULL};

	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert_eq(r->status, 2, "%s: status %d, %s", key, r->status, r->err);
	cr_assert(asprintf(&want, "fusebox serve: %s: ", named) > 0);
	cr_assert(!strncmp(r->err, want, strlen(want)), "%s", r->err);
	cr_assert(strstr(r->err, why), "%s", r->err);
	cr_assert(r->errlen && r->err[r->errlen - 1] == '\n' &&
		      memchr(r->err, '\n', r->errlen) == r->err + r->errlen - 1,
		  "not one line: %s", r->err);
	cr_assert_eq(r->outlen, 0, "%s", r->out);
	free(want);
	free(bin);
	free(r);
}

Test(serve, a_bad_tls_key_exits_2_naming_the_file, .fini = teardown,
     .timeout = 60)
{
	char *cert, *key, *cert2, *key2, *junk, *missing;
	FILE *fp;

	make_cert("one", &cert, &key);
	make_cert("two", &cert2, &key2);
	cr_assert(asprintf(&junk, "%s/junk.pem", tls_dir) > 0);
	cr_assert(asprintf(&missing, "%s/missing.pem", tls_dir) > 0);
	fp = fopen(junk, "w");
	cr_assert(fp);
	fputs("not a key\n", fp);
	fclose(fp);

	/* the key of another certificate */
	serve_refuses(cert, key2, key2, "does not match the certificate");
	/* no key in the file; no file */
	serve_refuses(cert, junk, junk, "not a PEM private key");
	serve_refuses(cert, missing, missing, "No such file or directory");
	/* no certificate in the file */
	serve_refuses(key, key, key, "not a PEM certificate");
}

Test(serve, tls_cert_and_key_go_together, .fini = teardown)
{
	char *bin = build_path("fusebox");
	const char *opt[] = {"--tls-cert", "--tls-key"};

	for (int i = 0; i < 2; i++) {
		struct run *r = run_new();
		struct run_opts o = {.timeout = 10};
		char *argv[] = {bin, "serve", (char *)opt[i], "/dev/null",
				NULL};

		cr_assert_eq(run_prog(r, &o, argv), 0);
		cr_assert_eq(r->status, 2, "%s", r->err);
		cr_assert(strstr(r->err, opt[!i]), "%s", r->err);
		cr_assert(strstr(r->err, "See 'fusebox help serve'."), "%s",
			  r->err);
		free(r);
	}
	free(bin);
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

/* Starts Prometheus scraping fusebox serve on port every second, over
 * HTTPS trusting the certificate ca when it is not NULL; returns the port
 * of its web API. */
static int prom_start(int port, const char *ca)
{
	char cfg[128], data[128], logf[128], web[64], cfgarg[160];
	FILE *fp;

	snprintf(prom_dir, sizeof prom_dir, "/tmp/fusebox-prom-XXXXXX");
	cr_assert(mkdtemp(prom_dir));
	snprintf(cfg, sizeof cfg, "%s/prom.yml", prom_dir);
	snprintf(data, sizeof data, "--storage.tsdb.path=%s/data", prom_dir);
	snprintf(logf, sizeof logf, "%s/prometheus.log", prom_dir);
	fp = fopen(cfg, "w");
	cr_assert(fp);
	fprintf(fp, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
		    "scrape_configs:\n  - job_name: fusebox\n");
	if (ca)
		fprintf(fp,
			"    scheme: https\n"
			"    tls_config:\n      ca_file: %s\n",
			ca);
	fprintf(fp, "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
		port);
	fclose(fp);
	int pport = free_port();
	snprintf(web, sizeof web, "--web.listen-address=127.0.0.1:%d", pport);
	snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
	char *argv[] = {"/usr/bin/prometheus", cfgarg, data, web, NULL};
	prom_pid = spawn(argv, NULL, logf);
	return pport;
}

/* Asks Prometheus on pport the query (URL-encoded) until the answer has a
 * result that holds want: at most 40 times, half a second apart. */
static void prom_wait(int pport, const char *query, const char *want)
{
	struct run *r = NULL;
	bool found = false;

	for (int i = 0; i < 40 && !found; i++) {
		usleep(500 * 1000);
		struct run_opts o = {.timeout = 10};
		char url[256];
		snprintf(url, sizeof url,
			 "http://127.0.0.1:%d/api/v1/query?query=%s", pport,
			 query);
		char *cargv[] = {"curl", "-s", "-m", "5", url, NULL};
		free(r);
		r = run_new();
		cr_assert_eq(run_prog(r, &o, cargv), 0);
		found = r->status == 0 && strstr(r->out, "\"result\":[{") &&
			strstr(r->out, want);
	}
	cr_assert(found, "Prometheus answered %s: %s", query, r ? r->out : "");
	free(r);
}

Test(serve, a_prometheus_server_scrapes_the_breaker_state, .fini = teardown,
     .timeout = 90)
{
	struct fixture f;

	if (access("/usr/bin/prometheus", X_OK))
		cr_skip_test("no /usr/bin/prometheus");
	int port = serve_start();
	open_breaker(&f);
	int pport = prom_start(port, NULL);
	prom_wait(pport, "fusebox_breaker_state%7Bstate%3D%22open%22%7D%3D%3D1",
		  "\"rule\":\"r\"");
	cr_assert(kill(serve_pid, 0) == 0);
	fixture_stop(&f);
}

Test(serve, a_prometheus_server_scrapes_over_tls, .fini = teardown,
     .timeout = 90)
{
	struct fixture f;
	char *cert, *key;

	if (access("/usr/bin/prometheus", X_OK))
		cr_skip_test("no /usr/bin/prometheus");
	make_cert("serve", &cert, &key);
	int port = serve_launch(cert, key);
	open_breaker(&f);
	int pport = prom_start(port, cert);
	/* the target is up (scraped over TLS), and its metrics are there */
	prom_wait(pport, "up%7Bjob%3D%22fusebox%22%7D%3D%3D1",
		  "\"job\":\"fusebox\"");
	prom_wait(pport, "fusebox_breaker_state%7Bstate%3D%22open%22%7D%3D%3D1",
		  "\"rule\":\"r\"");
	cr_assert(kill(serve_pid, 0) == 0);
	cr_assert_eq(stop(&serve_pid), 0);
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
