/* SPDX-License-Identifier: MIT */
/* fusebox serve: a small libuv HTTP/1.1 server for scrapers.  GET
 * /metrics (Prometheus text), /stats.json (the JSON of stats) and /healthz;
 * each request re-reads the segment; with a certificate, over TLS
 * (serve_tls.c).  Clients are untrusted: requests are capped in size and
 * time, connections in number, and a client that goes away only loses its
 * own connection. */
#include "cli.h"
#include "report.h"
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#define SERVE_DEFAULT	  "127.0.0.1:9464"
#define SERVE_MAX_REQUEST 8192	/* bytes of a request head */
#define SERVE_MAX_CONNS	  1024	/* connections at once; more are closed */
#define SERVE_TIMEOUT_MS  10000 /* to send a request or read a reply */
#define SERVE_LINGER_MS	  2000	/* to read the client's FIN after ours */

/* The server: its listener, the segment it keeps mapped, its clients. */
struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_signal_t sigint, sigterm;
	char segment[SEG_NAME_MAX + 8];
	struct seg seg; /* mapped while the same shm object stays */
	dev_t dev;
	ino_t ino;
	off_t size;
	char warned[200];      /* the last trouble said on stderr */
	struct serve_tls *tls; /* NULL: plain HTTP */
	struct conn *conns;
	unsigned nconns, max_conns;
	bool stopping;
};

/* One client connection; freed once both of its handles are closed. */
struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shut;
	struct server *sv;
	struct serve_tls_conn *tls; /* NULL: plain HTTP */
	struct conn *prev, *next;
	size_t len;    /* bytes of buf in use */
	int handles;   /* open libuv handles */
	bool writing;  /* a reply is being written */
	bool reading;  /* uv_read_start is on */
	bool draining; /* the last reply went: wait for the client's FIN */
	bool closing;  /* uv_close was called */
	char buf[SERVE_MAX_REQUEST];
};

/* A reply in flight: head and body, freed by its write callback. */
struct reply {
	uv_write_t req;
	struct conn *c;
	char *body;   /* malloc'd, or NULL */
	char *sealed; /* TLS: head and body encrypted (malloc'd), or NULL */
	char head[512];
};

/* A parsed request line and the headers that matter. */

static void conn_process(struct conn *c);

/* Reads a clock in milliseconds. */
static uint64_t now_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Says trouble with the segment on stderr, once until it changes. */
static void warn_once(struct server *sv, const char *why)
{
	if (!strcmp(sv->warned, why))
		return;
	snprintf(sv->warned, sizeof sv->warned, "%s", why);
	if (*why)
		fprintf(stderr, "fusebox serve: segment %s: %s\n", sv->segment,
			why);
}

/* The segment as it is now: the mapping kept from the last request while
 * the shm object is the same one, else a new one; NULL when there is none
 * (*bad is set when it exists but cannot be read). */
static const struct seg *segment_now(struct server *sv, bool *bad)
{
	char path[SEG_NAME_MAX + 16], why[160];
	struct stat st;
	int fd, r;

	*bad = false;
	snprintf(path, sizeof path, "/%s", sv->segment);
	fd = shm_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = errno;
		if (fd >= 0)
			close(fd);
		seg_close(&sv->seg);
		if (r == ENOENT) {
			warn_once(sv, "");
			return NULL;
		}
		*bad = true;
		warn_once(sv, strerror(r));
		return NULL;
	}
	close(fd);
	if (sv->seg.base && st.st_dev == sv->dev && st.st_ino == sv->ino &&
	    st.st_size == sv->size)
		return &sv->seg;
	seg_close(&sv->seg);
	r = seg_open_readonly(sv->segment, &sv->seg, why, sizeof why);
	if (r == -ENOENT) {
		warn_once(sv, "");
		return NULL;
	}
	if (r < 0) {
		*bad = true;
		warn_once(sv, why);
		return NULL;
	}
	/* a segment replaced meanwhile differs next time: mapped again */
	sv->dev = st.st_dev;
	sv->ino = st.st_ino;
	sv->size = st.st_size;
	warn_once(sv, "");
	return &sv->seg;
}

/* Renders /metrics (json false) or /stats.json into a malloc'd *body of
 * *len bytes.  Returns the HTTP status: 200, 500 (no memory) or 503 (a
 * segment that cannot be read, for JSON only). */
static int render(struct server *sv, bool json, char **body, size_t *len)
{
	struct report_opts o = {.segment = sv->segment,
				.alive = report_proc_alive};
	const struct seg *s;
	bool bad;
	FILE *f;
	int r;

	*body = NULL;
	*len = 0;
	s = segment_now(sv, &bad);
	f = open_memstream(body, len);
	if (!f)
		return 500;
	if (json && bad) {
		fprintf(f, "{\"error\": \"segment cannot be read\"}\n");
		fclose(f);
		return 503;
	}
	o.now_mono_ms = now_ms(CLOCK_MONOTONIC);
	o.now_real_ms = now_ms(CLOCK_REALTIME);
	r = json ? report_json(f, s, &o) : report_prometheus(f, s, &o);
	if (fclose(f) != 0 || r < 0) {
		free(*body);
		*body = NULL;
		*len = 0;
		return 500;
	}
	return 200;
}

/* Frees a connection once both handles are closed. */
static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles == 0) {
		serve_tls_conn_free(c->tls);
		free(c);
	}
}

/* Closes a connection (pending writes are cancelled); idempotent. */
static void conn_close(struct conn *c)
{
	struct server *sv = c->sv;

	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		sv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sv->nconns--;
	uv_close((uv_handle_t *)&c->tcp, on_close);
	uv_close((uv_handle_t *)&c->timer, on_close);
}

/* The client was too slow to send a request, read a reply or close. */
static void on_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

/* Gives libuv the free end of the request buffer; once draining, the
 * whole buffer, whose bytes are thrown away.  TLS: a ciphertext buffer. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	if (c->tls) {
		serve_tls_alloc(c->tls, buf);
		return;
	}
	if (c->draining)
		c->len = 0;
	buf->base = c->buf + c->len;
	buf->len = sizeof c->buf - c->len;
}

/* Starts or stops reading. */
static void set_reading(struct conn *c, bool on);

/* Bytes arrived, or the client closed or failed. */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = st->data;

	if (n == 0)
		return;
	if (n < 0) {
		/* EOF or an error; reading is off while a reply is written,
		 * so no reply is lost to an early FIN */
		conn_close(c);
		return;
	}
	if (c->draining) {
		c->len = 0;
		return;
	}
	if (!c->tls)
		c->len += (size_t)n;
	else if (serve_tls_feed(c->tls, buf->base, (size_t)n) < 0) {
		conn_close(c);
		return;
	}
	conn_process(c);
}

/* Starts or stops reading. */
static void set_reading(struct conn *c, bool on)
{
	if (c->closing || c->reading == on)
		return;
	if (on && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
		conn_close(c);
		return;
	}
	if (!on)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = on;
}

/* Our side is shut down: wait a little for the client's FIN, so that
 * closing does not reset the connection under an unread reply. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, SERVE_LINGER_MS, 0);
	set_reading(c, true);
}

/* Frees a reply and its buffers. */
static void reply_free(struct reply *rp)
{
	free(rp->body);
	free(rp->sealed);
	free(rp);
}

/* A reply was written (or failed, or was cancelled by a close). */
static void on_write(uv_write_t *req, int status)
{
	struct reply *rp = req->data;
	struct conn *c = rp->c;

	reply_free(rp);
	if (c->closing)
		return;
	c->writing = false;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->draining) {
		c->shut.data = c;
		if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown))
			conn_close(c);
		return;
	}
	/* keep-alive: the next request, or idle until it comes */
	uv_timer_start(&c->timer, on_timeout, SERVE_TIMEOUT_MS, 0);
	conn_process(c);
	if (!c->closing && !c->writing && !c->draining)
		set_reading(c, true);
}

/* Queues a reply with status, content type and body (malloc'd, taken;
 * NULL for none); head_only leaves the body out (HEAD); last makes it the
 * last reply of the connection. */
static void reply(struct conn *c, int status, const char *type, char *body,
		  size_t len, bool head_only, bool last, const char *extra)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {{200, "OK"},
		       {400, "Bad Request"},
		       {404, "Not Found"},
		       {405, "Method Not Allowed"},
		       {431, "Request Header Fields Too Large"},
		       {500, "Internal Server Error"},
		       {503, "Service Unavailable"}};
	const char *reason = "Error";
	struct reply *rp = malloc(sizeof *rp);
	uv_buf_t bufs[2];
	unsigned nbufs = 2;
	size_t sealed;
	int n;

	if (!rp) {
		free(body);
		conn_close(c);
		return;
	}
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			reason = reasons[i].text;
	n = snprintf(rp->head, sizeof rp->head,
		     "HTTP/1.1 %d %s\r\n"
		     "Server: fusebox/" FUSEBOX_VERSION "\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "%s"
		     "Connection: %s\r\n\r\n",
		     status, reason, type, len, extra ? extra : "",
		     last ? "close" : "keep-alive");
	rp->c = c;
	rp->body = body;
	rp->sealed = NULL;
	rp->req.data = rp;
	bufs[0] = uv_buf_init(rp->head, (unsigned)n);
	bufs[1] = uv_buf_init(body ? body : rp->head,
			      head_only || !body ? 0 : (unsigned)len);
	if (c->tls) {
		if (serve_tls_seal(c->tls, bufs, 2, last, &rp->sealed,
				   &sealed) < 0) {
			reply_free(rp);
			conn_close(c);
			return;
		}
		bufs[0] = uv_buf_init(rp->sealed, (unsigned)sealed);
		nbufs = 1;
	}
	c->writing = true;
	if (last) {
		c->draining = true;
		c->len = 0;
	}
	/* the reply must be read within the timeout too */
	uv_timer_start(&c->timer, on_timeout, SERVE_TIMEOUT_MS, 0);
	set_reading(c, false);
	if (uv_write(&rp->req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write)) {
		reply_free(rp);
		conn_close(c);
	}
}

/* Queues a short text reply (error pages and /healthz). */
static void reply_text(struct conn *c, int status, const char *text,
		       bool head_only, bool last, const char *extra)
{
	char *body = strdup(text);

	if (!body) {
		conn_close(c);
		return;
	}
	reply(c, status, "text/plain; charset=utf-8", body, strlen(text),
	      head_only, last, extra);
}

/* Answers one parsed request. */
static void answer(struct conn *c, const struct request *q)
{
	bool head = q->method_len == 4 && !memcmp(q->method, "HEAD", 4);
	bool get = q->method_len == 3 && !memcmp(q->method, "GET", 3);
	/* a request body is not read: the connection ends after it */
	bool last = q->has_body || q->close || (q->http10 && !q->keep_alive);
	size_t plen = q->path_len;
	const char *qm = memchr(q->path, '?', plen);
	char *body;
	size_t len;
	int st;

	if (qm)
		plen = (size_t)(qm - q->path);
	if (!get && !head) {
		reply_text(c, 405, "method not allowed\n", false, last,
			   "Allow: GET, HEAD\r\n");
		return;
	}
	if (plen == 8 && !memcmp(q->path, "/metrics", 8)) {
		st = render(c->sv, false, &body, &len);
		if (st == 200)
			reply(c, st, "text/plain; version=0.0.4; charset=utf-8",
			      body, len, head, last, NULL);
		else
			reply(c, st, "text/plain; charset=utf-8", body, len,
			      head, last, NULL);
	} else if (plen == 11 && !memcmp(q->path, "/stats.json", 11)) {
		st = render(c->sv, true, &body, &len);
		reply(c, st, "application/json", body, len, head, last, NULL);
	} else if (plen == 8 && !memcmp(q->path, "/healthz", 8)) {
		reply_text(c, 200, "ok\n", head, last, NULL);
	} else {
		reply_text(c, 404, "not found\n", head, last, NULL);
	}
}

/* Answers the first complete request in the buffer, if any, unless a
 * reply is still being written; a full buffer with no complete head, or
 * a malformed one, gets an error and ends the connection.  TLS: first
 * decrypts what fits; a session closed or failed ends the connection
 * once what came before it is answered. */
static void conn_process(struct conn *c)
{
	struct request q;
	size_t head, used = 0;
	char *e;

	if (c->closing || c->writing || c->draining)
		return;
	if (c->tls &&
	    serve_tls_read(c->tls, (uv_stream_t *)&c->tcp, c->buf + c->len,
			   sizeof c->buf - c->len, &used) < 0 &&
	    !used) {
		conn_close(c);
		return;
	}
	c->len += used;
	if (!c->len)
		return;
	/* empty lines are allowed before a request */
	for (used = 0;
	     used < c->len && (c->buf[used] == '\r' || c->buf[used] == '\n');
	     used++)
		;
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	e = memmem(c->buf, c->len, "\n\r\n", 3);
	used = e ? (size_t)(e - c->buf) + 3 : 0;
	if (!e) {
		e = memmem(c->buf, c->len, "\n\n", 2);
		used = e ? (size_t)(e - c->buf) + 2 : 0;
	}
	if (!e) {
		/* say no to a bad request line without waiting for more */
		e = memchr(c->buf, '\n', c->len);
		if (memchr(c->buf, 0, c->len) ||
		    (e && !serve_parse_head(c->buf, (size_t)(e - c->buf), &q)))
			reply_text(c, 400, "bad request\n", false, true, NULL);
		else if (c->len == sizeof c->buf)
			reply_text(c, 431, "request too large\n", false, true,
				   NULL);
		return;
	}
	head = (size_t)(e - c->buf) + 1; /* through the last header's '\n' */
	if (memchr(c->buf, 0, head) ||
	    !serve_parse_head(c->buf, head - 1, &q)) {
		reply_text(c, 400, "bad request\n", false, true, NULL);
		return;
	}
	answer(c, &q);
	if (c->closing || c->draining)
		return;
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
}

/* A client connects: accepted, or closed at once beyond the cap. */
static void on_connection(uv_stream_t *ls, int status)
{
	struct server *sv = ls->data;
	struct conn *c;

	if (status < 0 || sv->stopping)
		return;
	c = calloc(1, sizeof *c);
	if (!c || uv_tcp_init(sv->loop, &c->tcp)) {
		free(c);
		return;
	}
	c->sv = sv;
	c->tcp.data = c;
	c->handles = 1;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) ||
	    sv->nconns >= sv->max_conns ||
	    (sv->tls && !(c->tls = serve_tls_conn_new(sv->tls)))) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_timer_init(sv->loop, &c->timer);
	c->timer.data = c;
	c->handles = 2;
	c->next = sv->conns;
	if (sv->conns)
		sv->conns->prev = c;
	sv->conns = c;
	sv->nconns++;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, on_timeout, SERVE_TIMEOUT_MS, 0);
	set_reading(c, true);
}

/* SIGINT or SIGTERM: stop listening, close every client, let the loop
 * end. */
static void on_signal(uv_signal_t *h, int signum)
{
	struct server *sv = h->data;

	(void)signum;
	if (sv->stopping)
		return;
	sv->stopping = true;
	uv_close((uv_handle_t *)&sv->listener, NULL);
	uv_close((uv_handle_t *)&sv->sigint, NULL);
	uv_close((uv_handle_t *)&sv->sigterm, NULL);
	while (sv->conns)
		conn_close(sv->conns);
}

/* Parses ADDR:PORT, [IPv6]:PORT or localhost:PORT (port 0: any free
 * one) into ss; 0 or -EINVAL. */
static int parse_listen(const char *text, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon;
	unsigned long port;
	char *end;
	size_t n;

	if (text[0] == '[') {
		const char *rb = strchr(text, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		n = (size_t)(rb - text - 1);
		colon = rb + 1;
		if (n >= sizeof host)
			return -EINVAL;
		memcpy(host, text + 1, n);
	} else {
		colon = strrchr(text, ':');
		if (!colon || strchr(text, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - text);
		if (n >= sizeof host)
			return -EINVAL;
		memcpy(host, text, n);
	}
	host[n] = 0;
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (text[0] == '[')
		return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss)
			   ? -EINVAL
			   : 0;
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) ? -EINVAL
								      : 0;
}

/* Writes the URL of /metrics on the bound address sa, with scheme
 * ("http" or "https"). */
static void metrics_url(char *buf, size_t len, const struct sockaddr *sa,
			const char *scheme)
{
	char ip[64];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		uv_ip6_name(s6, ip, sizeof ip);
		snprintf(buf, len, "%s://[%s]:%u/metrics", scheme, ip,
			 (unsigned)ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		uv_ip4_name(s4, ip, sizeof ip);
		snprintf(buf, len, "%s://%s:%u/metrics", scheme, ip,
			 (unsigned)ntohs(s4->sin_port));
	}
}

/* Raises the soft limit of open files to what max_conns needs, as far as
 * the hard limit allows, and caps max_conns to fit. */
static void fit_fd_limit(struct server *sv)
{
	struct rlimit rl;
	rlim_t want = SERVE_MAX_CONNS + 64;

	sv->max_conns = SERVE_MAX_CONNS;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		sv->max_conns =
		    rl.rlim_cur > 96 ? (unsigned)rl.rlim_cur - 64 : 32;
}

/* The options of serve. */
struct serve_args {
	const char *where, *seg; /* --listen, -s (or NULL) */
	const char *cert, *key;	 /* --tls-cert, --tls-key: both or neither */
};

/* Parses the options of serve; 0 or the CLI_USAGE of a printed error. */
static int serve_opts(int argc, char **argv, struct serve_args *a)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"segment", required_argument, NULL, 's'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {0}};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:l:", opts, NULL)) != -1) {
		if (c == 'l')
			a->where = optarg;
		else if (c == 's')
			a->seg = optarg;
		else if (c == 'C')
			a->cert = optarg;
		else if (c == 'K')
			a->key = optarg;
		else if (c == ':')
			return cli_usage_error("serve",
					       "option '%s' needs a value",
					       argv[optind - 1]);
		else if (c == '?' && optopt)
			return cli_usage_error("serve", "unknown option '-%c'",
					       optopt);
		else
			return cli_usage_error("serve", "unknown option '%s'",
					       argv[optind - 1]);
	}
	if (optind != argc)
		return cli_usage_error("serve", "unexpected argument '%s'",
				       argv[optind]);
	if (!a->cert != !a->key)
		return cli_usage_error("serve", "'%s' needs '%s' too",
				       a->cert ? "--tls-cert" : "--tls-key",
				       a->cert ? "--tls-key" : "--tls-cert");
	return 0;
}

/* fusebox serve [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE]
 * [-s NAME]: serves the segment over HTTP, or HTTPS, until SIGINT or
 * SIGTERM; returns the exit status. */
int cmd_serve(int argc, char **argv)
{
	struct serve_args a = {.where = SERVE_DEFAULT};
	struct sockaddr_storage ss;
	struct server sv;
	char url[128];
	int namelen = sizeof ss, r, ret = CLI_FAIL;

	r = serve_opts(argc, argv, &a);
	if (r)
		return r;
	memset(&ss, 0, sizeof ss);
	if (parse_listen(a.where, &ss) < 0)
		return cli_usage_error(
		    "serve", "'%s' is not ADDR:PORT or [IPv6]:PORT", a.where);
	memset(&sv, 0, sizeof sv);
	if (cli_segment_name("serve", a.seg, sv.segment, sizeof sv.segment) < 0)
		return CLI_FAIL;
	/* files that cannot serve are a mistake in the command line */
	if (a.cert && !(sv.tls = serve_tls_new(a.cert, a.key)))
		return CLI_USAGE;
	/* a client gone mid-reply is a write error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&sv);
	sv.loop = uv_default_loop();
	uv_tcp_init(sv.loop, &sv.listener);
	sv.listener.data = &sv;
	r = uv_tcp_bind(&sv.listener, (const struct sockaddr *)&ss, 0);
	if (!r)
		r = uv_listen((uv_stream_t *)&sv.listener, 511, on_connection);
	if (!r)
		r = uv_tcp_getsockname(&sv.listener, (struct sockaddr *)&ss,
				       &namelen);
	if (r) {
		fprintf(stderr, "fusebox serve: cannot listen on %s: %s\n",
			a.where, uv_strerror(r));
		uv_close((uv_handle_t *)&sv.listener, NULL);
		uv_run(sv.loop, UV_RUN_DEFAULT);
		goto out;
	}
	uv_signal_init(sv.loop, &sv.sigint);
	uv_signal_init(sv.loop, &sv.sigterm);
	sv.sigint.data = sv.sigterm.data = &sv;
	uv_signal_start(&sv.sigint, on_signal, SIGINT);
	uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
	metrics_url(url, sizeof url, (const struct sockaddr *)&ss,
		    sv.tls ? "https" : "http");
	printf("fusebox serve: listening on %s\n", url);
	fflush(stdout);
	uv_run(sv.loop, UV_RUN_DEFAULT);
	ret = CLI_OK;
out:
	uv_loop_close(sv.loop);
	seg_close(&sv.seg);
	serve_tls_free(sv.tls);
	return ret;
}
