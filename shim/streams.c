/* SPDX-License-Identifier: MIT */
/* HTTP/2 streams as calls.  On HTTP/2 (the client's first bytes are the
 * preface) a send is no request: a request ends with END_STREAM on a
 * client stream's HEADERS or DATA, and its reply starts with that
 * stream's first HEADERS from the server; SETTINGS, PING, WINDOW_UPDATE
 * and the other control frames expect nothing.  So each request that
 * ended waits for its own reply, oldest first: the connection's current
 * call is the oldest, and response_timeout runs from when it ended.
 * Replies out of order are calls of their own (calls_record()).  A
 * RST_STREAM from the server fails its stream's call.  The client's
 * preface waits for the server's first frame within the connect's call:
 * a server that never answers it fails that call.  Everything here
 * runs under the connection's lock (the deadline thread takes it too). */
#include "shim.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

/* What a frame callback needs. */
struct seen {
	int fd;
	struct conn *c;
	uint64_t now;
};

/* The oldest waiting request of c becomes its current call: started when
 * it ended, timed from then. */
static void wait_for_oldest(struct conn *c)
{
	uint8_t expect = CALL_NONE;

	/* the preface is no call of its own: it waits within the
	 * connect's, which its first stream goes on */
	if (c->h2.id[0]) {
		CONN_SET(c->wait_ns, c->h2.since[0]);
		if (!atomic_compare_exchange_strong(&c->call, &expect,
						    CALL_WAITING)) {
			expect = CALL_CONNECTED;
			atomic_compare_exchange_strong(&c->call, &expect,
						       CALL_WAITING);
		}
	}
	if (atomic_load_explicit(&c->watch, memory_order_relaxed) &
	    W_RESPONSE) {
		atomic_store_explicit(&c->awaiting, true, memory_order_relaxed);
		timer_arm(c, DL_RESPONSE,
			  c->h2.since[0] + c->response_ms * 1000000ull);
	}
}

/* Nothing waits on c any more. */
static void wait_for_none(struct conn *c)
{
	atomic_store_explicit(&c->awaiting, false, memory_order_relaxed);
	atomic_store_explicit(&c->dl[DL_RESPONSE], 0, memory_order_relaxed);
}

/* The reply of waiting request i came (ok), or its reset: its call
 * ends; the next oldest, if any, becomes the current call. */
static void reply_as(struct seen *x, int i, bool ok, int counter);

static void reply(struct seen *x, int i, bool ok)
{
	reply_as(x, i, ok, ok ? -1 : SEG_RESETS);
}

/* The same, counted in counter when it failed (-1: no counter). */
static void reply_as(struct seen *x, int i, bool ok, int counter)
{
	struct conn *c = x->c;
	struct h2 *h = &c->h2;
	uint64_t since;

	if (i < 0)
		return;
	since = h->since[i];
	h2_remove(h, i);
	if (i > 0) {
		calls_record(c, ok, counter, x->now - since, x->now);
		return;
	}
	calls_end(x->fd, c, ok, counter, x->now);
	if (h->n)
		wait_for_oldest(c);
	else
		wait_for_none(c);
}

static bool early_decoded(struct seen *x, uint32_t id);

/* A frame the client sent: a request that ends waits for its reply. */
static void sent_frame(void *arg, uint8_t type, uint8_t flags, uint32_t id)
{
	struct seen *x = arg;
	struct h2 *h = &x->c->h2;

	bool ok;

	if (!id || !(flags & H2_END_STREAM) ||
	    (type != H2_HEADERS && type != H2_DATA) || h2_find(h, id) >= 0 ||
	    !h2_add(h, id, x->now))
		return;
	if (id > h->last)
		h->last = id;
	if (h->n == 1)
		wait_for_oldest(x->c);
	/* its reply was read before this send was seen */
	if (early_decoded(x, id))
		return;
	if (h2_early_take(h, id, &ok))
		reply(x, h2_find(h, id), ok);
}

/* --- reply headers: :status and grpc-status (classify = http, grpc) ----
 * The server's header blocks are decoded with nghttp2's HPACK inflater,
 * all of them in order (its table follows every block).  What a
 * connection needs for that lives beside its slot, allocated at its
 * first block and freed at close: an fd's struct conn has no room. */
#define OPEN_MAX 8 /* gRPC replies started, their status to come */

struct ext {
	nghttp2_hd_inflater *inf;
	uint64_t ino;  /* of the socket it was made for */
	bool broken;   /* the decoder failed: headers no longer read */
	int status;    /* :status of the block being read, 0: none */
	int grpc;      /* its grpc-status, -1: none */
	uint8_t nopen; /* replies started awaiting their status */
	uint32_t open[OPEN_MAX];
	uint64_t wait[OPEN_MAX]; /* their time to first byte (ns) */
	/* verdicts read before their request was seen to end (another
	 * thread's send): id 0 is a free entry */
	struct {
		uint32_t id;
		int8_t counter; /* -1: ok */
		bool started;	/* headers without a status: it comes later */
	} early[OPEN_MAX];
};

/* The decoding state of c (fd), made when create; NULL without. */
static struct ext *ext_of(int fd, struct conn *c, bool create)
{
	struct ext **slot = (struct ext **)fdt_side(FDT_SIDE_H2, fd, create);
	struct ext *e;

	if (!slot)
		return NULL;
	e = *slot;
	if (e && e->ino != c->ino) { /* a socket closed behind our back */
		nghttp2_hd_inflate_del(e->inf);
		free(e);
		*slot = e = NULL;
	}
	if (e || !create)
		return e;
	e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	if (nghttp2_hd_inflate_new(&e->inf)) {
		free(e);
		return NULL;
	}
	e->ino = c->ino;
	e->grpc = -1;
	*slot = e;
	return e;
}

void streams_forget(int fd)
{
	struct ext **slot = (struct ext **)fdt_side(FDT_SIDE_H2, fd, false);
	struct conn *c;
	struct ext *e;

	if (LIKELY(!slot) || !*slot || !(c = fdt_get(fd)))
		return;
	conn_lock(c);
	e = *slot;
	*slot = NULL;
	conn_unlock(c);
	if (e) {
		nghttp2_hd_inflate_del(e->inf);
		free(e);
	}
}

/* A header of the block being read. */
static void header(struct ext *e, const nghttp2_nv *nv)
{
	int v = 0;

	if (nv->namelen == 7 && !memcmp(nv->name, ":status", 7)) {
		for (size_t k = 0; k < nv->valuelen && k < 3; k++)
			v = v * 10 + (nv->value[k] - '0');
		e->status = v;
	} else if (nv->namelen == 11 && !memcmp(nv->name, "grpc-status", 11)) {
		for (size_t k = 0; k < nv->valuelen && k < 3; k++)
			v = v * 10 + (nv->value[k] - '0');
		e->grpc = v;
	}
}

/* A header block of stream id ended: its reply's verdict. */
static void block_done(struct seen *x, struct ext *e, uint32_t id)
{
	struct conn *c = x->c;
	struct h2 *h = &c->h2;
	int i = h2_find(h, id), j;
	bool ok = true;
	int counter = -1;

	if (e->status >= 500 && e->status <= 599) {
		ok = false;
		counter = SEG_HTTP_5XX;
	}
	if (c->classify == POLICY_CLASSIFY_GRPC && e->grpc >= 0) {
		ok = e->grpc >= 32 || !(c->grpc_fail_on & (1u << e->grpc));
		counter = ok ? -1 : SEG_GRPC_FAILURES;
	}
	for (j = 0; j < e->nopen && e->open[j] != id; j++)
		;
	if (j < e->nopen) {
		/* the trailers of a reply that started: its status */
		uint64_t wait = e->wait[j];
		e->nopen--;
		memmove(&e->open[j], &e->open[j + 1],
			(size_t)(e->nopen - j) * sizeof e->open[0]);
		memmove(&e->wait[j], &e->wait[j + 1],
			(size_t)(e->nopen - j) * sizeof e->wait[0]);
		calls_record(c, ok, counter, wait, x->now);
	} else if (i >= 0 && c->classify == POLICY_CLASSIFY_GRPC &&
		   e->grpc < 0 && ok && e->nopen < OPEN_MAX) {
		/* a reply started without its status: it comes with the
		 * trailers; the request no longer waits */
		uint64_t since = h->since[i];
		e->open[e->nopen] = id;
		e->wait[e->nopen++] = x->now - since;
		h2_remove(h, i);
		if (i == 0) {
			if (h->n)
				wait_for_oldest(c);
			else
				wait_for_none(c);
		}
	} else if (i >= 0) {
		reply_as(x, i, ok, counter);
	} else {
		/* another thread's send of its request is not seen yet: the
		 * verdict waits for it, with its counter */
		bool started =
		    c->classify == POLICY_CLASSIFY_GRPC && e->grpc < 0 && ok;
		for (j = 0; j < OPEN_MAX && e->early[j].id; j++)
			;
		/* only a client stream above the last ended may still come */
		if (!(id & 1) || id <= h->last)
			j = OPEN_MAX + 1;
		if (j < OPEN_MAX) {
			e->early[j].id = id;
			e->early[j].counter = (int8_t)counter;
			e->early[j].started = started;
		} else if (j == OPEN_MAX && !started) {
			h2_early_put(h, id, ok);
		}
	}
	e->status = 0;
	e->grpc = -1;
}

/* The request of stream id was seen to end (it waits, at its place in
 * h2.id): a verdict decoded before, if any, is applied; true then. */
static bool early_decoded(struct seen *x, uint32_t id)
{
	struct conn *c = x->c;
	struct ext *e;
	int i, j;

	if (c->classify == POLICY_CLASSIFY_TCP ||
	    !(e = ext_of(x->fd, c, false)))
		return false;
	for (j = 0; j < OPEN_MAX && e->early[j].id != id; j++)
		;
	if (j == OPEN_MAX || (i = h2_find(&c->h2, id)) < 0)
		return false;
	e->early[j].id = 0;
	if (!e->early[j].started) {
		reply_as(x, i, e->early[j].counter < 0, e->early[j].counter);
		return true;
	}
	/* its reply started: it waits for its status, as in block_done() */
	if (e->nopen < OPEN_MAX) {
		e->open[e->nopen] = id;
		e->wait[e->nopen++] = 0;
		h2_remove(&c->h2, i);
		if (i == 0) {
			if (c->h2.n)
				wait_for_oldest(c);
			else
				wait_for_none(c);
		}
	} else {
		reply_as(x, i, true, -1);
	}
	return true;
}

/* A piece of a header block from the server (h2_block_fn). */
static void header_block(void *arg, uint32_t id, const uint8_t *p, size_t n,
			 bool last)
{
	struct seen *x = arg;
	struct ext *e = ext_of(x->fd, x->c, true);

	if (!e || e->broken) {
		if (last && id)
			reply(x, h2_find(&x->c->h2, id), true);
		return;
	}
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t r =
		    nghttp2_hd_inflate_hd2(e->inf, &nv, &flags, p, n, last);
		if (r < 0) {
			/* lost: what follows is judged by frames alone */
			e->broken = true;
			if (last && id)
				reply(x, h2_find(&x->c->h2, id), true);
			return;
		}
		p += r;
		n -= (size_t)r;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			header(e, &nv);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(e->inf);
			if (id)
				block_done(x, e, id);
			return;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && !n)
			return;
	}
}

/* A RST_STREAM of a reply that started: it failed. */
static void reset_open(struct seen *x, uint32_t id)
{
	struct ext *e = ext_of(x->fd, x->c, false);
	int j;

	if (!e)
		return;
	for (j = 0; j < e->nopen && e->open[j] != id; j++)
		;
	if (j == e->nopen)
		return;
	e->nopen--;
	memmove(&e->open[j], &e->open[j + 1],
		(size_t)(e->nopen - j) * sizeof e->open[0]);
	memmove(&e->wait[j], &e->wait[j + 1],
		(size_t)(e->nopen - j) * sizeof e->wait[0]);
	calls_record(x->c, false, SEG_RESETS, 0, x->now);
}

/* A frame the server sent: the first HEADERS of a waiting stream is its
 * reply, a RST_STREAM its failure. */
static void received_frame(void *arg, uint8_t type, uint8_t flags, uint32_t id)
{
	struct seen *x = arg;
	struct conn *c = x->c;
	struct h2 *h = &c->h2;
	bool ok = type == H2_HEADERS;
	int i;

	(void)flags;
	/* any first frame of the server answers the client's preface */
	if (h->n && !h->id[0]) {
		h2_remove(h, 0);
		if (h->n)
			wait_for_oldest(c);
		else
			wait_for_none(c);
	}
	if (!id || (type != H2_HEADERS && type != H2_RST_STREAM))
		return;
	/* headers read: the block's end decides (header_block()); a
	 * reset, its code (stream_reset()) */
	if (c->classify != POLICY_CLASSIFY_TCP)
		return;
	if ((i = h2_find(h, id)) >= 0)
		reply(x, i, ok);
	else
		/* another thread's send of its request is not seen yet */
		h2_early_put(h, id, ok);
}

/* The code of a RST_STREAM from the server (h2_reset_fn): its stream
 * failed; refused (REFUSED_STREAM: never processed) or reset. */
static void stream_reset(void *arg, uint32_t id, uint32_t code)
{
	struct seen *x = arg;
	struct h2 *h = &x->c->h2;
	int i;

	if (!id)
		return;
	reset_open(x, id);
	if ((i = h2_find(h, id)) >= 0)
		reply_as(x, i, false,
			 code == H2_REFUSED_STREAM ? SEG_CONNECT_REFUSED
						   : SEG_RESETS);
	else
		h2_early_put(h, id, false);
}

/* Feeds the first n bytes of iov to the server direction's parser,
 * header blocks to block (NULL: not read). */
static void frames(struct h2_in *dir, const struct iovec *iov, size_t cnt,
		   size_t n, h2_frame_fn *fn, h2_block_fn *block,
		   struct seen *x)
{
	for (size_t i = 0; i < cnt && n; i++) {
		size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;

		h2_feed_in(dir, iov[i].iov_base, len, fn, block,
			   block ? stream_reset : NULL, x);
		n -= len;
	}
}

/* The same for what the client sent, the preface first while it may
 * still come. */
static void feed(struct conn *c, struct h2_dir *dir, const struct iovec *iov,
		 size_t cnt, size_t n, h2_frame_fn *fn, struct seen *x)
{
	for (size_t i = 0; i < cnt && n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len < n ? iov[i].iov_len : n, k = 0;

		n -= len;
		if (c->h2.state == H2_UNKNOWN) {
			k = h2_preface(&c->h2, p, len);
			/* the preface waits for the server's first frame,
			 * unless that came already */
			if (c->h2.state == H2_ON && !c->h2.heard &&
			    h2_add(&c->h2, 0, x->now) && c->h2.n == 1)
				wait_for_oldest(c);
		}
		if (c->h2.state == H2_ON)
			h2_feed(dir, p + k, len - k, fn, x);
	}
}

/* c turned out not HTTP/2, or its frames were lost from view (bytes
 * moved where no buffer was seen): the generic bookkeeping takes over,
 * without response_timeout if it was HTTP/2 (a send is no request). */
static void give_up(struct conn *c)
{
	uint32_t off = W_H2;

	if (c->h2.state == H2_ON) {
		off |= W_RESPONSE;
		wait_for_none(c);
	}
	__atomic_store_n(&c->h2.state, H2_OFF, __ATOMIC_RELAXED);
	atomic_fetch_and(&c->watch, ~off);
}

void streams_sending(struct conn *c, const struct iovec *iov, size_t cnt)
{
	size_t at = 0;

	conn_lock(c);
	for (size_t i = 0; iov && i < cnt && c->h2.state == H2_UNKNOWN; i++) {
		if (!h2_may_be_preface(&c->h2, at, iov[i].iov_base,
				       iov[i].iov_len))
			give_up(c);
		at += iov[i].iov_len;
	}
	conn_unlock(c);
}

bool streams_sent(int fd, struct conn *c, const struct iovec *iov, size_t cnt,
		  size_t n)
{
	struct seen x = {.fd = fd, .c = c, .now = clock_ns()};
	bool h2;

	conn_lock(c);
	if (iov && c->h2.state != H2_OFF)
		feed(c, &c->h2.out, iov, cnt, n, sent_frame, &x);
	h2 = iov && c->h2.state != H2_OFF;
	if (!h2)
		give_up(c);
	conn_unlock(c);
	return h2;
}

bool streams_received(int fd, struct conn *c, const struct iovec *iov,
		      size_t cnt, size_t n, int flags)
{
	struct seen x = {.fd = fd, .c = c, .now = clock_ns()};
	bool h2;

	conn_lock(c);
	/* an HTTP/2 server sends its SETTINGS at once, maybe before the
	 * client's preface: until the client's first bytes tell, what the
	 * server sends is read as frames (nothing waits yet, so nothing
	 * else changes; for another protocol, what the server says first
	 * ends no call either) */
	h2 = iov && c->h2.state != H2_OFF;
	if (!h2) {
		give_up(c);
	} else if (!(flags & MSG_PEEK)) {
		/* peeked bytes come again */
		c->h2.heard = 1;
		frames(&c->h2.in, iov, cnt, n, received_frame,
		       c->classify != POLICY_CLASSIFY_TCP ? header_block : NULL,
		       &x);
	}
	conn_unlock(c);
	return h2;
}

bool streams_closed(int fd, struct conn *c)
{
	int saved = errno;
	bool h2;

	conn_lock(c);
	h2 = c->h2.state == H2_ON;
	if (h2) {
		struct ext *e = ext_of(fd, c, false);
		/* replies that started and never ended: failed */
		for (; e && e->nopen; e->nopen--)
			calls_record(c, false, SEG_RESETS, 0, clock_ns());
	}
	if (h2 && c->h2.n) {
		/* the current call fails; those behind it are not calls */
		c->h2.n = 0;
		wait_for_none(c);
		calls_end(fd, c, false, SEG_RESETS, 0);
	}
	conn_unlock(c);
	errno = saved;
	return h2;
}

uint64_t streams_expired(int fd, struct conn *c, uint64_t now, bool peek)
{
	struct seen x = {.fd = fd, .c = c, .now = now};
	struct h2_in copy = c->h2.in;
	uint8_t classify = c->classify;
	uint8_t buf[4096];
	struct iovec iov = {buf, sizeof buf};
	ssize_t n;

	if (c->h2.state != H2_ON || !c->h2.n)
		return 0;
	/* replies that came and wait unread count: parse a copy (the
	 * program reads them later, and finds their streams done) */
	n = peek ? real.recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) : 0;
	if (n > 0) {
		/* frames only: the decoder must see each block once, when
		 * the program reads it; a HEADERS is a reply for now */
		iov.iov_len = (size_t)n;
		c->classify = POLICY_CLASSIFY_TCP;
		frames(&c->h2.in, &iov, 1, (size_t)n, received_frame, NULL, &x);
		c->classify = classify;
		c->h2.in = copy;
	}
	if (!c->h2.n)
		return 0;
	if (c->h2.since[0] + c->response_ms * 1000000ull > now)
		return c->h2.since[0] + c->response_ms * 1000000ull;
	c->h2.n = 0; /* the abort fails them all; the timer counts one */
	return STREAMS_TIMED_OUT;
}
