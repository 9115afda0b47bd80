/* SPDX-License-Identifier: MIT */
/* The workloads of bench/scale.sh, run with and without libfusebox.so:
 * connect+close loops over 1..K loopback destinations (127/8), threads
 * doing the same at once, a reload of the policy under 10,000 open
 * guarded connections with every call timed, the policy loader alone,
 * and the deadline thread's CPU while many idle deadlines fire.  Every
 * loop is bounded in count and in time; it fails loudly, never quietly. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

#define MAX_SECONDS 60 /* no loop of this program runs longer */

static int err_fd = 2; /* stderr, also once fd 2 is the log pipe */

/* Fails loudly: a benchmark that silently measures nothing is worse. */
static void die(const char *what)
{
	dprintf(err_fd, "bench-scale: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Monotonic nanoseconds. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Destination i of the benchmark: 127.a.b.c, never .0 or .255 last. */
static struct sockaddr_in dest(unsigned i, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	uint32_t a = 127u << 24 | (1u + i / 62500u) << 16 |
		     (i / 250u % 250u) << 8 | (1u + i % 250u);

	sa.sin_addr.s_addr = htonl(a);
	return sa;
}

/* A listener on addr:port (port 0: any); the port it got. */
static int listener(uint32_t addr, uint16_t port, uint16_t *got)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(addr)};
	socklen_t len = sizeof sa;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("listen");
	if (got)
		*got = ntohs(sa.sin_port);
	return fd;
}

/* A connected socket to sa; -1 with errno. */
static int dial(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Raises the open-file limit to at least n, up to the hard limit (past
 * it only with CAP_SYS_RESOURCE); fails when that is too few. */
static void want_files(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if (rl.rlim_cur >= n)
		return;
	rl.rlim_cur = n;
	if (rl.rlim_max < n) {
		struct rlimit up = {n, n};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
		rl.rlim_cur = rl.rlim_max;
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < n) {
		fprintf(stderr,
			"bench-scale: %llu files needed, the hard limit is "
			"%llu\n",
			(unsigned long long)n, (unsigned long long)rl.rlim_max);
		exit(1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorts v). */
static uint64_t quantile(uint64_t *v, size_t n, double q)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	return v[(size_t)(q * (double)(n - 1))];
}

/* --- port: a free TCP port, for the policies to name --------------- */

static int cmd_port(void)
{
	uint16_t port;
	int fd = listener(INADDR_ANY, 0, &port);

	close(fd);
	printf("%u\n", port);
	return 0;
}

/* --- connect: n connect+close, the j-th to dest(first + j % k) ------ */
/* With name, destination 0 is instead the IPv4 address that name
 * resolves to, resolved once with getaddrinfo() (which the shim
 * remembers, so that hostname rules are tried for it). */

/* One connect+close to sa through listener l; the server end closes
 * first, so that the client never holds a TIME_WAIT port. */
static void connect_close(int l, const struct sockaddr_in *sa)
{
	int c = dial(sa), s;

	if (c < 0)
		die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(s);
	close(c);
}

static int cmd_connect(uint16_t port, long n, unsigned k, unsigned first,
		       const char *name)
{
	int l = listener(INADDR_ANY, port, NULL);
	struct sockaddr_in named = {0};
	uint64_t t0, end;
	long i;

	if (k < 1)
		k = 1;
	if (name) {
		struct addrinfo hints = {.ai_family = AF_INET,
					 .ai_socktype = SOCK_STREAM},
				*res;
		if (getaddrinfo(name, NULL, &hints, &res) != 0)
			die("getaddrinfo");
		memcpy(&named, res->ai_addr, sizeof named);
		named.sin_port = htons(port);
		freeaddrinfo(res);
	}
	t0 = now_ns();
	end = t0 + MAX_SECONDS * 1000000000ull;
	for (i = 0; i < n && now_ns() < end; i++) {
		unsigned j = (unsigned)(i % k);
		struct sockaddr_in sa =
		    name && !j ? named : dest(first + j, port);
		connect_close(l, &sa);
	}
	if (i < n)
		fprintf(stderr, "bench-scale: stopped after %ld of %ld\n", i,
			n);
	printf("ns_per_connect %llu\n",
	       (unsigned long long)((now_ns() - t0) / (uint64_t)(i ? i : 1)));
	close(l);
	return 0;
}

/* --- serve: accept and close, or accept and hold ------------------ */

static int serve_l;
static bool serve_hold;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int s = accept(serve_l, NULL, NULL);
		if (s >= 0 && !serve_hold)
			close(s);
		else if (s >= 0)
			continue; /* held: open until the process exits */
		else if (errno != EINTR && errno != ECONNABORTED)
			return NULL;
	}
}

/* Accepts on 0.0.0.0:port for at most `seconds`; with hold, keeps
 * every connection open (the far ends of a client's held connections,
 * in a process of their own: one process may not open both ends of
 * 10,000 connections under a hard limit of 20,000 files). */
static int cmd_serve(uint16_t port, int seconds, bool hold)
{
	pthread_t t[8];

	if (hold)
		want_files(19000);
	serve_hold = hold;
	serve_l = listener(INADDR_ANY, port, NULL);
	for (int i = 0; i < 8; i++)
		if (pthread_create(&t[i], NULL, acceptor, NULL) != 0)
			die("pthread_create");
	printf("ready\n");
	fflush(stdout);
	sleep((unsigned)(seconds > 0 && seconds < 600 ? seconds : 600));
	return 0;
}

/* --- threads: t threads doing n connect+close each ----------------- */

struct client {
	pthread_t t;
	struct sockaddr_in to;
	long n;
	uint64_t *lat; /* ns of each connect+close */
	long done;
	uint64_t deadline;
	uint64_t first, last; /* when its first began, its last ended */
};

static pthread_barrier_t go;

static void *client(void *arg)
{
	struct client *c = arg;
	struct linger rst = {.l_onoff = 1, .l_linger = 0};

	pthread_barrier_wait(&go);
	c->first = c->last = now_ns();
	for (c->done = 0; c->done < c->n; c->done++) {
		uint64_t t0 = now_ns();
		int fd;

		if (t0 > c->deadline)
			break;
		fd = dial(&c->to);
		if (fd < 0)
			die("connect");
		/* a reset, not a FIN: no TIME_WAIT port left behind */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
		close(fd);
		c->last = now_ns();
		c->lat[c->done] = c->last - t0;
	}
	return NULL;
}

static int cmd_threads(uint16_t port, int t, long n)
{
	struct client *cs = calloc((size_t)t, sizeof *cs);
	uint64_t *all, first = UINT64_MAX, last = 0;
	long total = 0;

	if (!cs || t < 1 || n < 1)
		die("threads");
	pthread_barrier_init(&go, NULL, (unsigned)t + 1);
	for (int i = 0; i < t; i++) {
		cs[i].to = dest(0, port);
		cs[i].to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cs[i].n = n;
		cs[i].lat = calloc((size_t)n, sizeof *cs[i].lat);
		cs[i].deadline = now_ns() + MAX_SECONDS * 1000000000ull;
		if (!cs[i].lat ||
		    pthread_create(&cs[i].t, NULL, client, &cs[i]) != 0)
			die("thread");
	}
	pthread_barrier_wait(&go);
	/* from the first start to the last end: the main thread may run
	 * late after the barrier, the clients not */
	for (int i = 0; i < t; i++) {
		pthread_join(cs[i].t, NULL);
		first = cs[i].first < first ? cs[i].first : first;
		last = cs[i].last > last ? cs[i].last : last;
	}
	all = calloc((size_t)t * (size_t)n, sizeof *all);
	if (!all)
		die("calloc");
	for (int i = 0; i < t; i++) {
		memcpy(all + total, cs[i].lat,
		       (size_t)cs[i].done * sizeof *all);
		total += cs[i].done;
	}
	printf("elapsed_ns %llu connects %ld",
	       (unsigned long long)(last - first), total);
	printf(" median_ns %llu",
	       (unsigned long long)quantile(all, (size_t)total, 0.5));
	printf(" p99_ns %llu",
	       (unsigned long long)quantile(all, (size_t)total, 0.99));
	/* CLOCK_MONOTONIC is one clock for all processes */
	printf(" first_ns %llu last_ns %llu\n", (unsigned long long)first,
	       (unsigned long long)last);
	return 0;
}

/* --- load: the policy loader alone --------------------------------- */

static int cmd_load(const char *path, int reps)
{
	uint64_t v[64];
	size_t rules = 0;

	if (reps < 1 || reps > 64)
		reps = 5;
	for (int i = 0; i < reps; i++) {
		struct policy_errors errs = {0};
		uint64_t t0 = now_ns();
		struct policy *p = policy_load(path, &errs);

		v[i] = now_ns() - t0;
		if (!p) {
			fprintf(stderr, "%s\n", errs.n ? errs.msgs[0] : path);
			return 1;
		}
		rules = p->nrules;
		policy_free(p);
		policy_errors_free(&errs);
	}
	printf("rules %zu median_load_ns %llu\n", rules,
	       (unsigned long long)quantile(v, (size_t)reps, 0.5));
	return 0;
}

/* --- reload: a reload under held connections, every call timed ----- */

enum call_kind { K_CONNECT, K_SEND, K_RECV, K_COUNT };
static const char *const kind_names[K_COUNT] = {"connect", "send", "recv"};

#define SAMPLES (1u << 21) /* per worker: about 40 s of calls */

struct sample {
	uint64_t start, dur;
	uint64_t cpu; /* connects: CPU time of the thread in the call */
	uint8_t kind;
};

struct worker {
	pthread_t t;
	bool pingpong; /* send/recv on c; else connect+close */
	int l, c, s;   /* listener; guarded end; accepted end */
	struct sockaddr_in to;
	struct sample *v;
	size_t n;
};

static atomic_bool stop_workers;
static uint64_t workers_deadline;

/* Records one call of w that started at t0. */
static void record(struct worker *w, enum call_kind k, uint64_t t0,
		   uint64_t cpu)
{
	uint64_t t1 = now_ns();

	if (w->n < SAMPLES)
		w->v[w->n++] = (struct sample){t0, t1 - t0, cpu, (uint8_t)k};
}

/* CPU nanoseconds of the calling thread: a call that did the reload
 * used CPU for it, one that was only preempted did not. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	char b = 'x';

	while (!atomic_load(&stop_workers) && w->n < SAMPLES &&
	       now_ns() < workers_deadline) {
		uint64_t t0 = now_ns();
		if (w->pingpong) {
			if (send(w->c, &b, 1, 0) != 1)
				die("send");
			record(w, K_SEND, t0, 0);
			if (send(w->s, &b, 1, 0) != 1)
				die("reply");
			t0 = now_ns();
			if (recv(w->c, &b, 1, 0) != 1)
				die("recv");
			record(w, K_RECV, t0, 0);
			/* the peer's side drains: the send above fills no
			 * buffer, so no recv ever waits for another one */
			if (recv(w->s, &b, 1, 0) != 1)
				die("drain");
		} else {
			uint64_t cpu = thread_cpu_ns();
			int c = dial(&w->to), s;
			if (c < 0)
				die("connect");
			cpu = thread_cpu_ns() - cpu;
			record(w, K_CONNECT, t0, cpu);
			s = accept(w->l, NULL, NULL);
			if (s < 0)
				die("accept");
			close(s);
			close(c);
		}
	}
	return NULL;
}

/* The log lines of the shim (stderr) as they come: its "reloaded" line
 * says that a reload was made. */
static int log_in;
static int log_out;
static atomic_int log_reloads;

static void *log_reader(void *arg)
{
	char buf[4096];
	ssize_t r;

	(void)arg;
	while ((r = read(log_in, buf, sizeof buf - 1)) > 0) {
		buf[r] = 0;
		for (char *p = buf; (p = strstr(p, "reloaded")); p++)
			atomic_fetch_add(&log_reloads, 1);
		if (write(log_out, buf, (size_t)r) < 0)
			break;
	}
	return NULL;
}

/* Sleeps ms milliseconds. */
static void nap(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct window {
	uint64_t from, to;
};

/* A growing array of durations. */
struct durs {
	uint64_t *v;
	size_t n, cap;
};

static void durs_add(struct durs *d, uint64_t x)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 4096;
		d->v = realloc(d->v, d->cap * sizeof *d->v);
		if (!d->v)
			die("realloc");
	}
	d->v[d->n++] = x;
}

/* Prints the calls of the workers in a quiet window and in the window
 * of one reload: the connect that did the reload (the one of the most
 * CPU time), then by kind of call the median, the 99th percentile and
 * the longest, in the quiet window and in the reload's window without
 * the reloading connect. */
static void report_phase(const char *name, struct worker *ws, int nw,
			 struct window quiet, struct window busy, bool logged)
{
	struct durs q[K_COUNT] = {0}, b[K_COUNT] = {0};
	const struct sample *r = NULL;

	for (int i = 0; i < nw; i++)
		for (size_t j = 0; j < ws[i].n; j++) {
			const struct sample *s = &ws[i].v[j];
			if (s->kind == K_CONNECT && s->start >= busy.from &&
			    s->start < busy.to && (!r || s->cpu > r->cpu))
				r = s;
		}
	for (int i = 0; i < nw; i++)
		for (size_t j = 0; j < ws[i].n; j++) {
			const struct sample *s = &ws[i].v[j];
			if (s->start >= quiet.from && s->start < quiet.to)
				durs_add(&q[s->kind], s->dur);
			if (s->start + s->dur >= busy.from &&
			    s->start < busy.to && s != r)
				durs_add(&b[s->kind], s->dur);
		}
	printf("phase %s reloaded %d reload_us %.1f reload_cpu_us %.1f", name,
	       logged, r ? (double)r->dur / 1000.0 : 0.0,
	       r ? (double)r->cpu / 1000.0 : 0.0);
	for (int k = 0; k < K_COUNT; k++) {
		/* quantile() sorts: the largest is last after it */
		uint64_t qmed = quantile(q[k].v, q[k].n, 0.5);
		uint64_t q99 = quantile(q[k].v, q[k].n, 0.99);
		uint64_t qmax = q[k].n ? q[k].v[q[k].n - 1] : 0;
		uint64_t b99 = quantile(b[k].v, b[k].n, 0.99);
		uint64_t bmax = b[k].n ? b[k].v[b[k].n - 1] : 0;

		printf(" %s_median_us %.1f", kind_names[k],
		       (double)qmed / 1000.0);
		printf(" quiet_p99_%s_us %.1f quiet_max_%s_us %.1f",
		       kind_names[k], (double)q99 / 1000.0, kind_names[k],
		       (double)qmax / 1000.0);
		printf(" busy_p99_%s_us %.1f busy_max_%s_us %.1f",
		       kind_names[k], (double)b99 / 1000.0, kind_names[k],
		       (double)bmax / 1000.0);
		free(q[k].v);
		free(b[k].v);
	}
	printf("\n");
}

/* Reads the file at path into a new string. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, cap = 0, r;

	if (!f)
		die(path);
	do {
		if (len + 65536 + 1 > cap) {
			cap = 2 * cap + 65536 + 1;
			text = realloc(text, cap);
			if (!text)
				die("realloc");
		}
		r = fread(text + len, 1, 65536, f);
		len += r;
	} while (r > 0);
	fclose(f);
	text[len] = 0;
	return text;
}

/* Puts text in place of the policy file, by rename (a new inode: the
 * shim notices it at its next check). */
static void replace_policy(const char *policy, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.new", policy);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die(tmp);
	if (rename(tmp, policy) < 0)
		die("rename");
}

/* One timed connect+close to to through listener l: the wall and the
 * thread's CPU nanoseconds of the connect (cpu may be NULL). */
static uint64_t timed_connect(int l, const struct sockaddr_in *to,
			      uint64_t *cpu)
{
	uint64_t c0 = thread_cpu_ns(), t0 = now_ns(), d;
	int c = dial(to), s;

	d = now_ns() - t0;
	if (cpu)
		*cpu = thread_cpu_ns() - c0;
	if (c < 0)
		die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(s);
	close(c);
	return d;
}

/* Holds `held` guarded connections to the hold server on hport.  Then,
 * alone, for each file of next[] in turn: puts it in place of policy,
 * waits past the `reload` interval (at most every_ms) and times the
 * connect that reloads; back to the first policy, and twice more (the
 * median of 3 is printed).  Then it runs 2
 * connect threads and 2 send/recv threads (on a listener of its own);
 * for each file of next[] again: a quiet second, the file in place of
 * policy, and the calls timed until the reload's log line and 300 ms
 * more. */
static int cmd_reload(uint16_t hport, long held, unsigned every_ms,
		      const char *policy, char **next, int nnext)
{
	enum { NW = 4 };
	struct worker ws[NW];
	pthread_t logt;
	int pfd[2], l, *fds;
	uint16_t port;
	uint64_t t0;

	if (held < 0 || held > 100000)
		die("held");
	want_files((rlim_t)held + 1024);
	/* the shim's log lines, timestamped on the way to stderr */
	log_out = dup(2);
	if (log_out < 0 || pipe(pfd) < 0 || dup2(pfd[1], 2) < 0)
		die("pipe");
	err_fd = log_out;
	close(pfd[1]);
	log_in = pfd[0];
	if (pthread_create(&logt, NULL, log_reader, NULL) != 0)
		die("pthread_create");

	l = listener(INADDR_LOOPBACK, 0, &port);
	fds = calloc((size_t)held + 1, sizeof *fds);
	if (!fds)
		die("calloc");
	struct sockaddr_in to = dest(0, port), far = dest(0, hport);
	to.sin_addr.s_addr = far.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t0 = now_ns();
	for (long i = 0; i < held; i++) {
		if ((fds[i] = dial(&far)) < 0)
			die("connect (held)");
		if (now_ns() - t0 > MAX_SECONDS * 1000000000ull)
			die("opening the held connections took too long");
	}
	printf("held %ld open_ms %llu\n", held,
	       (unsigned long long)((now_ns() - t0) / 1000000));

	/* alone: the connect that reloads, against the connects before */
	char *first = slurp(policy), *texts[8];
	uint64_t base[21];
	if (nnext > 8)
		nnext = 8;
	nap(200); /* the hold server is still accepting */
	for (int i = 0; i < 21; i++)
		base[i] = timed_connect(l, &to, NULL);
	printf("solo median_connect_us %.1f\n",
	       (double)quantile(base, 21, 0.5) / 1000.0);
	/* the sequence three times over, from the first policy each time */
	uint64_t solo[8][3], solo_cpu[8][3];
	bool solo_seen[8] = {0};
	for (int p = 0; p < nnext; p++)
		texts[p] = slurp(next[p]);
	for (int rep = 0; rep < 3; rep++) {
		for (int p = 0; p < nnext; p++) {
			int seen = atomic_load(&log_reloads);

			replace_policy(policy, texts[p]);
			nap(every_ms + 50);
			solo[p][rep] = timed_connect(l, &to, &solo_cpu[p][rep]);
			for (int i = 0;
			     i < 100 && atomic_load(&log_reloads) == seen; i++)
				nap(10);
			solo_seen[p] = atomic_load(&log_reloads) > seen;
		}
		replace_policy(policy, first);
		nap(every_ms + 50);
		timed_connect(l, &to, NULL);
	}
	for (int p = 0; p < nnext; p++) {
		const char *name = strrchr(next[p], '/');

		printf("solo %s reloaded %d connect_us %.1f cpu_us %.1f\n",
		       name ? name + 1 : next[p], solo_seen[p],
		       (double)quantile(solo[p], 3, 0.5) / 1000.0,
		       (double)quantile(solo_cpu[p], 3, 0.5) / 1000.0);
	}

	workers_deadline = now_ns() + MAX_SECONDS * 1000000000ull;
	/* every pair connected before any thread accepts on l */
	for (int i = 0; i < NW; i++) {
		struct worker *w = &ws[i];
		memset(w, 0, sizeof *w);
		w->pingpong = i >= 2;
		w->l = l;
		w->to = to;
		w->v = malloc(SAMPLES * sizeof *w->v);
		if (!w->v)
			die("malloc");
		if (w->pingpong && ((w->c = dial(&to)) < 0 ||
				    (w->s = accept(l, NULL, NULL)) < 0))
			die("connect (worker)");
	}
	for (int i = 0; i < NW; i++)
		if (pthread_create(&ws[i].t, NULL, work, &ws[i]) != 0)
			die("pthread_create");

	struct window quiet[8], busy[8];
	bool logged[8] = {0};
	for (int p = 0; p < nnext; p++) {
		int seen = atomic_load(&log_reloads);
		quiet[p].from = now_ns();
		nap(1000);
		quiet[p].to = busy[p].from = now_ns();
		replace_policy(policy, texts[p]);
		/* bounded: the reload interval is at most a few seconds */
		for (int i = 0; i < 500 && atomic_load(&log_reloads) == seen;
		     i++)
			nap(10);
		logged[p] = atomic_load(&log_reloads) > seen;
		nap(300);
		busy[p].to = now_ns();
	}
	atomic_store(&stop_workers, true);
	for (int i = 0; i < NW; i++)
		pthread_join(ws[i].t, NULL);
	for (int p = 0; p < nnext; p++) {
		const char *name = strrchr(next[p], '/');
		report_phase(name ? name + 1 : next[p], ws, NW, quiet[p],
			     busy[p], logged[p]);
	}
	fflush(stdout);
	return 0;
}

/* --- idle: the deadline thread's CPU while idle deadlines fire ----- */

/* CPU seconds of every thread of this process but the calling one, from
 * /proc/self/task/TID/schedstat (nanoseconds on the CPU). */
static double other_threads_cpu(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long me = (long)gettid();
	double sum = 0;

	if (!d)
		die("/proc/self/task");
	while ((e = readdir(d))) {
		char path[300];
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.' || atol(e->d_name) == me)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/schedstat",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			die(path);
		if (fscanf(f, "%llu", &ns) == 1)
			sum += (double)ns / 1e9;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* Opens bg guarded connections to 127.0.0.1 (the policy gives them a
 * long idle_timeout, they never fire), then n to 127.0.0.2 spread over
 * spread_ms (their idle_timeout aborts each idle_ms after it opened),
 * all to the hold server on hport; waits until the last of the n passed
 * and prints the CPU time of the shim's threads while they fired. */
static int cmd_idle(uint16_t hport, long bg, long n, unsigned spread_ms,
		    unsigned idle_ms)
{
	int *fds = calloc((size_t)(bg + n) + 1, sizeof *fds);
	struct sockaddr_in to = dest(0, hport);
	uint64_t t0, gap;

	if (!fds || bg < 0 || n < 1 || bg + n > 100000)
		die("idle");
	want_files((rlim_t)(bg + n) + 1024);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t0 = now_ns();
	for (long i = 0; i < bg; i++)
		if ((fds[i] = dial(&to)) < 0 ||
		    now_ns() - t0 > MAX_SECONDS * 1000000000ull)
			die("connect (background)");
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
	gap = (uint64_t)spread_ms * 1000000u / (uint64_t)n;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		while (now_ns() < t0 + (uint64_t)i * gap)
			;
		if ((fds[bg + i] = dial(&to)) < 0)
			die("connect (idle)");
		if (now_ns() - t0 > MAX_SECONDS * 1000000000ull)
			die("opening took too long");
	}
	double before = other_threads_cpu();
	/* every deadline passes idle_ms after its connect; then a margin */
	uint64_t until = t0 + ((uint64_t)spread_ms + idle_ms + 500) * 1000000u;
	while (now_ns() < until)
		nap(50);
	double after = other_threads_cpu();
	/* how many the shim aborted: their reads fail at once */
	long aborted = 0, bg_aborted = 0;
	for (long i = 0; i < bg + n; i++) {
		char b;
		if (recv(fds[i], &b, 1, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK)
			++*(i < bg ? &bg_aborted : &aborted);
	}
	printf("background %ld aborted %ld idle %ld aborted %ld "
	       "timer_cpu_ms %.1f\n",
	       bg, bg_aborted, n, aborted, (after - before) * 1000);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "port"))
		return cmd_port();
	if (!strcmp(cmd, "connect") && argc >= 5 && argc <= 7)
		return cmd_connect((uint16_t)atoi(argv[2]), atol(argv[3]),
				   (unsigned)atoi(argv[4]),
				   argc >= 6 ? (unsigned)atoi(argv[5]) : 0,
				   argc == 7 ? argv[6] : NULL);
	if (!strcmp(cmd, "serve") && (argc == 4 || argc == 5))
		return cmd_serve((uint16_t)atoi(argv[2]), atoi(argv[3]),
				 argc == 5 && !strcmp(argv[4], "hold"));
	if (!strcmp(cmd, "threads") && argc == 5)
		return cmd_threads((uint16_t)atoi(argv[2]), atoi(argv[3]),
				   atol(argv[4]));
	if (!strcmp(cmd, "load") && argc == 4)
		return cmd_load(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "reload") && argc >= 7)
		return cmd_reload((uint16_t)atoi(argv[2]), atol(argv[3]),
				  (unsigned)atoi(argv[4]), argv[5], argv + 6,
				  argc - 6);
	if (!strcmp(cmd, "idle") && argc == 7)
		return cmd_idle((uint16_t)atoi(argv[2]), atol(argv[3]),
				atol(argv[4]), (unsigned)atoi(argv[5]),
				(unsigned)atoi(argv[6]));
	fprintf(
	    stderr,
	    "usage: bench-scale port\n"
	    "       bench-scale connect PORT N K [FIRST [NAME]]\n"
	    "       bench-scale serve PORT SECONDS [hold]\n"
	    "       bench-scale threads PORT THREADS N\n"
	    "       bench-scale load POLICY REPS\n"
	    "       bench-scale reload PORT HELD EVERY_MS POLICY NEXT...\n"
	    "       bench-scale idle PORT BACKGROUND N SPREAD_MS IDLE_MS\n");
	return 2;
}
