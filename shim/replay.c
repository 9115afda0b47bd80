/* SPDX-License-Identifier: MIT */
/* Replay of HTTP/1.x requests (retry_on = empty, response-timeout, 5xx,
 * gateway-error).  While a request is sent, its bytes are kept, up to
 * replay_buffer; when a replay is asked, http-parser frames them
 * (method, body, pipelining, upgrades).  When the request was seen whole, its
 * method is one of retry_methods and no byte of its reply has reached the
 * program, a connection that ends, a response_timeout, or a reply that starts
 * with a 5xx status (502, 503, 504 for gateway-error) makes fusebox send it
 * again on a fresh connection at the same fd: after a backoff (a 503's
 * Retry-After, up to retry_backoff_max), within retries and the rule's
 * retry budget, invisibly to the program, whose read then waits for the
 * new reply (blocking) or finds nothing yet (EAGAIN).  The last reply is
 * delivered as it comes.  Not for TLS (the plaintext is not the
 * socket's) or HTTP/2.  What a connection needs lives beside its slot,
 * by fd (fdt_side()), allocated at its first request, freed at close. */
#include "shim.h"

#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum replay_state {
	R_OPEN,	 /* the request's bytes are being taken, not judged yet */
	R_WHOLE, /* judged: one whole request, replayable */
	R_NO,	 /* not replayable (too big, method, pipelined, upgrade) */
};

struct replay {
	uint64_t ino;	  /* of the socket it was made for */
	http_parser p;	  /* the request side */
	uint8_t state;	  /* enum replay_state */
	bool replied;	  /* a byte of the reply reached the program */
	bool fresh;	  /* no request taken yet */
	bool http;	  /* the connection speaks HTTP/1.x */
	uint8_t tries;	  /* replays of this request */
	uint8_t msgs;	  /* requests begun in the bytes taken */
	uint32_t methods; /* retry_methods of the rule */
	size_t len, cap;
	uint8_t buf[]; /* cap bytes */
};

/* The replay state of fd (c), made when create; NULL without. */
static struct replay *replay_of(int fd, struct conn *c, bool create)
{
	struct replay **slot =
	    (struct replay **)fdt_side(FDT_SIDE_REPLAY, fd, create);
	struct replay *r;
	struct policy_settings s;

	if (!slot)
		return NULL;
	r = *slot;
	if (r && r->ino != c->ino) { /* a socket closed behind our back */
		free(r);
		*slot = r = NULL;
	}
	if (r || !create)
		return r;
	if (!state_settings(c->rule, &s) || !s.replay_buffer)
		return NULL;
	r = calloc(1, sizeof *r + s.replay_buffer);
	if (!r)
		return NULL;
	r->ino = c->ino;
	r->cap = s.replay_buffer;
	r->methods = s.retry_methods;
	r->http = true;
	r->fresh = true;
	r->state = R_NO;
	*slot = r;
	return r;
}

void replay_forget(int fd)
{
	struct replay **slot =
	    (struct replay **)fdt_side(FDT_SIDE_REPLAY, fd, false);

	if (LIKELY(!slot) || !*slot)
		return;
	free(*slot);
	*slot = NULL;
}

/* http-parser's callbacks: a second request begun in the same bytes is
 * pipelining; an upgrade (WebSocket) ends HTTP here. */
static int on_begin(http_parser *p)
{
	struct replay *r = p->data;

	if (++r->msgs > 1)
		r->state = R_NO;
	return 0;
}

static int on_headers(http_parser *p)
{
	struct replay *r = p->data;
	const char *m = http_method_str((enum http_method)p->method);
	int k = policy_method_of(m, strlen(m));

	if (k < 0 || !(r->methods & (1u << k)) || p->upgrade)
		r->state = R_NO;
	return 0;
}

static int on_complete(http_parser *p)
{
	struct replay *r = p->data;

	if (r->state == R_OPEN)
		r->state = R_WHOLE;
	return 0;
}

static const http_parser_settings framing = {
    .on_message_begin = on_begin,
    .on_headers_complete = on_headers,
    .on_message_complete = on_complete,
};

/* True when p (n bytes) starts an HTTP/1.x request line. */
static bool request_line(const uint8_t *p, size_t n)
{
	size_t k = 0;

	while (k < n && k < 8 && p[k] >= 'A' && p[k] <= 'Z')
		k++;
	return k >= 3 && k + 1 < n && p[k] == ' ' &&
	       (p[k + 1] == '/' || p[k + 1] == '*' || p[k + 1] == 'h');
}

void replay_sent(int fd, struct conn *c, const struct iovec *iov, size_t cnt,
		 size_t n)
{
	struct replay *r;

	if (!iov || !cnt || !n)
		return;
	r = replay_of(fd, c, true);
	if (!r || !r->http)
		return;
	if (r->fresh || r->replied) {
		/* a new request: the first bytes after a reply */
		if (!request_line(iov[0].iov_base, iov[0].iov_len)) {
			r->http = false; /* not HTTP/1.x: never again */
			r->state = R_NO;
			atomic_fetch_and(&c->watch, ~W_REPLAY);
			return;
		}
		r->state = R_OPEN;
		r->fresh = r->replied = false;
		r->tries = 0;
		r->len = 0;
	}
	/* the bytes only: framing is judged if ever a replay is asked */
	for (size_t i = 0; i < cnt && n && r->state == R_OPEN; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		if (r->len + k > r->cap) {
			r->state = R_NO; /* more than kept */
			break;
		}
		memcpy(r->buf + r->len, iov[i].iov_base, k);
		r->len += k;
		n -= k;
	}
}

/* True when the bytes kept are one whole request that may go again:
 * http-parser frames them once, when a replay is first asked. */
static bool whole(struct replay *r)
{
	if (r->state == R_OPEN) {
		http_parser_init(&r->p, HTTP_REQUEST);
		r->p.data = r;
		r->msgs = 0;
		if (http_parser_execute(&r->p, &framing, (const char *)r->buf,
					r->len) != r->len ||
		    HTTP_PARSER_ERRNO(&r->p) != HPE_OK)
			r->state = R_NO;
		else if (r->state == R_OPEN)
			r->state = R_NO; /* not seen to its end */
	}
	return r->state == R_WHOLE;
}

/* The status of a reply that starts at p (n bytes), or 0. */
static int status_of(const uint8_t *p, size_t n)
{
	if (n < 12 || memcmp(p, "HTTP/1.", 7) || p[8] != ' ' || p[9] < '1' ||
	    p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9')
		return 0;
	return (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
}

/* A 503's Retry-After in seconds, as milliseconds (0: none). */
static uint64_t retry_after(const uint8_t *p, size_t n)
{
	static const char h[] = "\nretry-after:";
	uint64_t v = 0;

	for (size_t i = 0; i + sizeof h - 1 < n; i++) {
		size_t k = 0;
		while (k < sizeof h - 1 &&
		       (p[i + k] | (h[k] >= 'a' ? 0x20 : 0)) == (uint8_t)h[k])
			k++;
		if (k < sizeof h - 1)
			continue;
		for (i += k; i < n && p[i] == ' '; i++)
			;
		for (; i < n && p[i] >= '0' && p[i] <= '9' && v < 1000000; i++)
			v = v * 10 + (p[i] - '0');
		return v * 1000;
	}
	return 0;
}

/* Sleeps ms milliseconds, through signals. */
static void nap(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Sends the kept request on the fresh socket at fd, waiting for room
 * for up to 10 s; false when it could not. */
static bool resend(int fd, const struct replay *r)
{
	size_t off = 0;
	int waits = 0;

	while (off < r->len) {
		ssize_t k = real.send(fd, r->buf + off, r->len - off,
				      MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    waits++ < 100) {
			struct pollfd pf = {fd, POLLOUT, 0};
			real.poll(&pf, 1, 100);
			continue;
		}
		return false;
	}
	return true;
}

/* Sends the request of r again on a fresh connection at fd, as a new
 * call: the one that failed was counted by the caller.  wait_ms: a
 * Retry-After.  1 when it went out; 0 when it was not tried (retries or
 * budget spent: nothing changed); -1 when the fresh connection failed
 * (the old one is gone). */
static int again(int fd, struct conn *c, struct replay *r, uint64_t wait_ms,
		 int why)
{
	uint32_t w = atomic_load(&c->watch), pre;

	if (r->tries >= c->retries || !calls_retry_ok(c))
		return 0;
	calls_count(c, why); /* of the retries, the replays by why */
	r->tries++;
	if (wait_ms > c->retry_backoff_max_ms)
		wait_ms = c->retry_backoff_max_ms;
	if (!wait_ms) {
		uint64_t cap = (uint64_t)c->retry_backoff_ms
			       << (r->tries < 20 ? r->tries - 1 : 19);
		if (cap > c->retry_backoff_max_ms)
			cap = c->retry_backoff_max_ms;
		wait_ms = cap ? shim_random() % (cap + 1) : 0;
	}
	if (wait_ms)
		nap(wait_ms);
	if (connect_again(fd, c) < 0)
		return -1;
	r->ino = c->ino; /* the fresh socket's */
	/* the new exchange is a call, timed from its last byte sent */
	pre = send_pre(c, w & (W_COUNT | W_RESPONSE));
	if (!resend(fd, r)) {
		if (pre)
			send_undo(c, pre);
		return -1;
	}
	__atomic_fetch_add(&c->out, r->len, __ATOMIC_RELAXED);
	send_post(c, w & W_RESPONSE, (ssize_t)r->len, pre);
	shim_log(POLICY_LOG_INFO, "fd %d: request replayed (%u of %u)", fd,
		 r->tries, c->retries);
	return 1;
}

int replay_received(int fd, struct conn *c, ssize_t n, const void *buf, int err)
{
	struct replay *r = replay_of(fd, c, false);
	uint32_t on = c->retry_on;
	int status = 0, counter, why, saved;

	if (!r || r->state == R_NO || r->replied ||
	    (c->polled & POLLED_NO_SWAP))
		return 0;
	if (n > 0) {
		status = buf ? status_of(buf, (size_t)n) : 0;
		if (!((on & POLICY_RETRY_5XX) && status >= 500 &&
		      status <= 599) &&
		    !((on & POLICY_RETRY_GATEWAY) && status >= 502 &&
		      status <= 504)) {
			r->replied = true;
			return 0;
		}
		counter = SEG_HTTP_5XX;
		why = SEG_REPLAYS_5XX;
	} else if ((n == 0 || err == ECONNRESET || err == EPIPE) &&
		   (on & POLICY_RETRY_EMPTY)) {
		counter = SEG_RESETS;
		why = SEG_REPLAYS_EMPTY;
	} else {
		return 0;
	}
	if (r->tries >= c->retries || !whole(r)) {
		r->replied = n > 0;
		return 0; /* the last reply, as it comes */
	}
	/* the attempt that failed is a call that failed */
	saved = errno; /* the program's read must say what it said */
	calls_end(fd, c, false, counter, 0);
	if (again(fd, c, r,
		  n > 0 && status == 503 ? retry_after(buf, (size_t)n) : 0,
		  why) > 0)
		return 1;
	r->replied = true; /* the program sees what there is */
	errno = saved;
	return 0;
}

bool replay_aborted(int fd, struct conn *c)
{
	struct replay *r = replay_of(fd, c, false);
	int saved;

	if (!r || r->state == R_NO || r->replied ||
	    (c->polled & POLLED_NO_SWAP) ||
	    !(c->retry_on & POLICY_RETRY_RESPONSE_TIMEOUT) ||
	    atomic_load(&c->abort_errno) != ETIMEDOUT ||
	    r->tries >= c->retries || !whole(r))
		return false;
	/* the deadline thread counted the call that timed out */
	saved = errno;
	atomic_store(&c->abort_errno, 0);
	atomic_fetch_and(&c->watch, ~W_ABORTED);
	if (again(fd, c, r, 0, SEG_REPLAYS_TIMEOUT) > 0) {
		errno = saved;
		return true;
	}
	r->replied = true;
	if (!(atomic_load(&c->watch) & W_ABORTED)) {
		/* nothing replaced it: the program learns of the timeout */
		atomic_store(&c->abort_errno, ETIMEDOUT);
		atomic_fetch_or(&c->watch, W_ABORTED);
	}
	errno = saved;
	return false;
}
