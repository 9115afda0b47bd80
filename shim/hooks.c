/* SPDX-License-Identifier: MIT */
/* The interposed I/O and descriptor functions.  Every hook looks its fd
 * up in the fd table (two loads); an fd that no rule guards goes straight
 * to libc.  On a guarded socket a hook delivers an abort the deadline
 * thread made, starts and ends calls, counts activity and arms or disarms
 * the response deadline.  The connect path is in connect.c. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* What recv_done() returns when the request went again (replay.c): no
 * system call returns it. */
#define REPLAYED (-2)

/* True when a call on c with these flags may block. */
static inline bool blocking(struct conn *c, int flags)
{
	return !(flags & MSG_DONTWAIT) &&
	       !atomic_load_explicit(&c->nonblock, memory_order_relaxed);
}

/* Starts watching the send queue of a non-blocking socket for
 * send_timeout, unless the timer already does. */
static void send_stalled(struct conn *c)
{
	if (!atomic_load(&c->dl[DL_SEND])) {
		c->send_since = 0; /* the timer takes the snapshot */
		timer_arm(c, DL_SEND, clock_ns() + 1);
	}
}

/* TLS: the socket's bytes are records, which make no call (tls.c does,
 * on the plaintext): their bytes count, and they are activity. */
static inline void wire(struct conn *c, uint32_t w, uint64_t *bytes, ssize_t n)
{
	if (w & W_COUNT)
		__atomic_fetch_add(bytes, (uint64_t)n, __ATOMIC_RELAXED);
	if (w & W_IDLE)
		atomic_store_explicit(
		    &c->activity,
		    atomic_load_explicit(&c->activity, memory_order_relaxed) +
			1,
		    memory_order_relaxed);
}

/* True when iov starts an HTTP/1.x request line: a method of capital
 * letters, a space, and a target. */
static bool http1_request(const struct iovec *iov, size_t cnt)
{
	const char *p;
	size_t n, k = 0;

	if (!iov || !cnt)
		return false;
	p = iov[0].iov_base;
	n = iov[0].iov_len;
	while (k < n && k < 8 && p[k] >= 'A' && p[k] <= 'Z')
		k++;
	return k >= 3 && k + 1 < n && p[k] == ' ' &&
	       (p[k + 1] == '/' || p[k + 1] == '*' || p[k + 1] == 'h');
}

/* Before the first bytes of a new request on a kept-alive connection:
 * if the peer has closed or reset it meanwhile (its FIN or RST is
 * queued), the request goes to a fresh connection instead, connected
 * before the send returns.  Nothing was sent on the dead one: safe for
 * every method.  A syscall, on this path only. */
static __attribute__((noinline)) void stale_check(int fd, struct conn *c,
						  const struct iovec *iov,
						  size_t cnt)
{
	char b;
	ssize_t r;
	int saved = errno;

	if (!http1_request(iov, cnt)) {
		c->polled |= POLLED_NOT_HTTP; /* never looked at again */
		errno = saved;
		return;
	}
	/* the system call alone: recv() is a cancellation point, and
	 * this must not be one */
	r = syscall(SYS_recvfrom, fd, &b, 1, MSG_PEEK | MSG_DONTWAIT, NULL,
		    NULL);
	if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE))) {
		calls_count(c, SEG_STALE_RECONNECTS);
		shim_log(POLICY_LOG_INFO,
			 "fd %d: the peer closed the kept-alive connection; "
			 "connecting again before the request",
			 fd);
		connect_again(fd, c);
	}
	errno = saved;
}

/* The common case after a send that moved data.  False: send_done() has
 * more to do. */
static inline bool send_quick(int fd, struct conn *c, uint32_t w, ssize_t n,
			      const void *peek, uint32_t pre, int flags)
{
	(void)fd;
	(void)peek;
	(void)flags;
	if (w & (W_SEND | W_CONNECTING | W_H2 | W_REPLAY))
		return false;
	if (w & W_TLS)
		wire(c, w, &c->out, n);
	else
		send_post(c, w, n, pre);
	return true;
}

/* After a receive on a W_QUICK socket moved n > 0 bytes: the call ends
 * at its first byte, activity counts, the response deadline goes. */
static inline __attribute__((always_inline)) void recv_quick_post(
    int fd, struct conn *c, uint32_t w, ssize_t n, const void *peek,
    uint32_t pre)
{
	(void)pre;
	if (w & W_COUNT)
		calls_got(fd, c, n, peek);
	if (w & W_IDLE)
		atomic_store_explicit(
		    &c->activity,
		    atomic_load_explicit(&c->activity, memory_order_relaxed) +
			1,
		    memory_order_relaxed);
	if ((w & W_RESPONSE) &&
	    atomic_load_explicit(&c->awaiting, memory_order_relaxed)) {
		/* awaiting, then the deadline, in this order (send_post) */
		atomic_store(&c->awaiting, false);
		atomic_store(&c->dl[DL_RESPONSE], 0);
	}
}

/* The common case after a receive that got data. */
static inline bool recv_quick(int fd, struct conn *c, uint32_t w, ssize_t n,
			      const void *peek, uint32_t pre, int flags)
{
	(void)pre;
	if (w & (W_CONNECTING | W_H2 | W_REPLAY))
		return false;
	if (w & W_TLS) {
		/* peeked bytes come again */
		wire(c, flags & MSG_PEEK ? w & ~W_COUNT : w, &c->in, n);
		return true;
	}
	recv_quick_post(fd, c, w, n, peek, 0);
	return true;
}

/* What a quick path (W_QUICK, no other bit) does before a send: the call
 * starts (send_pre), and a new request on a kept-alive connection looks
 * at it first (stale_check). */
#define W_QUICK (W_COUNT | W_RESPONSE | W_IDLE)
static inline __attribute__((always_inline)) uint32_t send_quick_pre(
    int fd, struct conn *c, uint32_t w, const struct iovec *iov, size_t cnt)
{
	uint32_t pre = send_pre(c, w);

	if (UNLIKELY((pre & PRE_STATE) == CALL_NONE + 1) && !c->polled)
		stale_check(fd, c, iov, cnt);
	return pre;
}

static inline __attribute__((always_inline)) uint32_t recv_quick_pre(
    int fd, struct conn *c, uint32_t w, const struct iovec *iov, size_t cnt)
{
	(void)fd;
	(void)c;
	(void)w;
	(void)iov;
	(void)cnt;
	return 0;
}

/* ... and after it moved n > 0 bytes */
static inline __attribute__((always_inline)) void send_quick_post(
    int fd, struct conn *c, uint32_t w, ssize_t n, const void *peek,
    uint32_t pre)
{
	(void)fd;
	(void)peek;
	send_post(c, w, n, pre);
}

/* After a send-like call on a watched socket returned n. */
static __attribute__((noinline)) ssize_t send_done(int fd, struct conn *c,
						   ssize_t n, int flags,
						   const struct iovec *iov,
						   size_t cnt, uint32_t pre)
{
	uint32_t w = atomic_load_explicit(&c->watch, memory_order_relaxed);
	int saved = errno;

	if (n <= 0 && (w & W_ABORTED))
		return deliver(c);
	if (n > 0) {
		if (w & W_CONNECTING)
			connected_now(fd, c, 0);
		/* HTTP/2: its frames say what is a request */
		if ((w & W_H2) && streams_sent(fd, c, iov, cnt, (size_t)n)) {
			__atomic_fetch_add(&c->out, (uint64_t)n,
					   __ATOMIC_RELAXED);
			w &= ~(W_COUNT | W_RESPONSE);
		}
		/* TLS: its plaintext does (tls.c); here the wire bytes */
		if (w & W_TLS) {
			__atomic_fetch_add(&c->out, (uint64_t)n,
					   __ATOMIC_RELAXED);
			w &= ~(W_COUNT | W_RESPONSE);
		}
		/* the request's bytes, kept to replay it */
		if (w & W_REPLAY)
			replay_sent(fd, c, iov, cnt, (size_t)n);
		send_post(c, w, n, pre);
		/* a non-blocking sender may now wait for POLLOUT, which
		 * may never come: the timer watches the send queue */
		if ((w & W_SEND) && !blocking(c, flags))
			send_stalled(c);
	} else if ((w & W_CONNECTING) && connect_error(saved)) {
		connected_now(fd, c, saved);
	} else if ((w & W_SEND) && (saved == EAGAIN || saved == EWOULDBLOCK)) {
		if (!blocking(c, flags)) {
			send_stalled(c);
		} else if (!c->sndtimeo_ms || c->sndtimeo_ms > c->send_ms) {
			/* our SO_SNDTIMEO ran out: the send is stalled */
			calls_end(fd, c, false, -1, clock_ns());
			conn_lock(c);
			timer_abort(fd, c, ETIMEDOUT);
			conn_unlock(c);
			shim_log(POLICY_LOG_INFO,
				 "fd %d: send_timeout (%ums) "
				 "fired",
				 fd, c->send_ms);
			return deliver(c);
		}
	}
	errno = saved;
	return n;
}

/* After a receive-like call on a watched socket returned n. */
static __attribute__((noinline)) ssize_t recv_done(int fd, struct conn *c,
						   ssize_t n, int flags,
						   const void *peek,
						   const struct iovec *iov,
						   size_t cnt, uint32_t pre)
{
	(void)pre;
	uint32_t w = atomic_load_explicit(&c->watch, memory_order_relaxed);

	if (n <= 0 && (w & W_ABORTED))
		return deliver(c);
	/* a reply that ends or fails before its first byte, or a 5xx:
	 * the request may go again; the program never sees this one */
	if ((w & W_REPLAY) && !(flags & MSG_PEEK) &&
	    replay_received(fd, c, n, peek, n < 0 ? errno : 0) > 0)
		return REPLAYED;
	if (n > 0) {
		if (w & W_CONNECTING)
			connected_now(fd, c, 0);
		/* HTTP/2: a reply is its stream's first HEADERS */
		if ((w & W_H2) &&
		    streams_received(fd, c, iov, cnt, (size_t)n, flags)) {
			if (!(flags & MSG_PEEK)) /* peeked bytes come again */
				__atomic_fetch_add(&c->in, (uint64_t)n,
						   __ATOMIC_RELAXED);
			w &= ~(W_COUNT | W_RESPONSE);
		}
		if (w & W_TLS) {
			if (!(flags & MSG_PEEK))
				__atomic_fetch_add(&c->in, (uint64_t)n,
						   __ATOMIC_RELAXED);
			w &= ~(W_COUNT | W_RESPONSE);
		}
		recv_quick(fd, c, w & ~(W_CONNECTING | W_H2 | W_TLS | W_REPLAY),
			   n, peek, 0, flags);
	} else if ((w & W_H2) &&
		   (n == 0 || errno == ECONNRESET || errno == EPIPE) &&
		   streams_closed(fd, c)) {
		/* HTTP/2: the waiting stream failed */
	} else if (w & (W_CONNECTING | W_COUNT)) {
		int e = errno;
		if (n < 0 && (w & W_CONNECTING) && connect_error(e))
			connected_now(fd, c, e);
		else if ((w & (W_COUNT | W_HANDSHAKE)) ==
			     (W_COUNT | W_HANDSHAKE) &&
			 (n == 0 || e == ECONNRESET || e == EPIPE))
			/* TLS: the server ended the handshake */
			calls_end(fd, c, false, SEG_TLS_FAILURES, 0);
		else if ((w & W_COUNT) && (n == 0 || e == ECONNRESET ||
					   e == EPIPE || e == ETIMEDOUT))
			calls_received(fd, c, 0, NULL);
		errno = e;
	}
	return n;
}

#define UNPAREN(...) __VA_ARGS__
#define send_PEEK(p)
#define recv_PEEK(p) p,
/* Before a send: while HTTP/2 is not ruled out, rule it out first (w is
 * read again), then send_pre(); its result is pre. */
#define send_BEFORE(c, w, iov, cnt, pre)                                       \
	do {                                                                   \
		if (UNLIKELY((w)&W_H2)) {                                      \
			streams_sending(c, iov, cnt);                          \
			if (tls_pending)                                       \
				tls_hello(fd, c, iov, cnt);                    \
			(w) = atomic_load_explicit(&(c)->watch,                \
						   memory_order_relaxed);      \
		}                                                              \
		(pre) = send_pre(c, w);                                        \
		/* a new request on a kept-alive connection */                 \
		if (UNLIKELY((pre & PRE_STATE) == CALL_NONE + 1) &&            \
		    !(c)->polled)                                              \
			stale_check(fd, c, iov, cnt);                          \
	} while (0)
#define recv_BEFORE(c, w, iov, cnt, pre) ((void)0)
#define send_UNDO(c, pre)                                                      \
	do {                                                                   \
		if (pre)                                                       \
			send_undo(c, pre);                                     \
	} while (0)
#define recv_UNDO(c, pre) ((void)0)
/* The response_timeout's abort of c: with a request to replay, it goes
 * again instead (recv only). */
#define send_REPLAY_ABORTED(fd, c, w) false
#define recv_REPLAY_ABORTED(fd, c, w) (((w)&W_REPLAY) && replay_aborted(fd, c))

/* The buffer of a one-buffer call, as an iovec for streams.c. */
#define ONE(buf, len) (&(struct iovec){(void *)(buf), (len)})

/* An I/O hook: a socket that is not guarded, or guarded with nothing to
 * watch, costs the table lookup and one load; the rest is out of line. */
#define IO_HOOK(dir, ret, name, field, params, args, fd, flags, peek, iov,     \
		cnt)                                                           \
	/* The rare cases, out of the common path: an abort to deliver,        \
	 * or a request that went again (replayed: the read waits for its      \
	 * reply, or finds nothing yet). */                                    \
	static __attribute__((noinline, cold))                                 \
	ret name##_again(struct conn *c, bool replayed, UNPAREN params)        \
	{                                                                      \
		uint32_t w, pre = 0;                                           \
		ret n;                                                         \
		for (;;) {                                                     \
			if (replayed && !blocking(c, flags)) {                 \
				errno = EAGAIN;                                \
				return -1;                                     \
			}                                                      \
			w = atomic_load_explicit(&c->watch,                    \
						 memory_order_relaxed);        \
			if (w & W_ABORTED) {                                   \
				if (stale(fd, c))                              \
					return real.field args;                \
				if (!dir##_REPLAY_ABORTED(fd, c, w))           \
					return (ret)deliver(c);                \
				replayed = true;                               \
				continue;                                      \
			}                                                      \
			pre = 0;                                               \
			dir##_BEFORE(c, w, iov, cnt, pre);                     \
			n = real.field args;                                   \
			if (LIKELY(n > 0) &&                                   \
			    dir##_quick(fd, c, w, n, peek, pre, flags))        \
				return n;                                      \
			if (n <= 0)                                            \
				dir##_UNDO(c, pre);                            \
			n = (ret)dir##_done(fd, c, n, flags,                   \
					    dir##_PEEK(peek) iov, cnt, pre);   \
			if (n != REPLAYED)                                     \
				return n;                                      \
			replayed = true;                                       \
		}                                                              \
	}                                                                      \
	static __attribute__((noinline))                                       \
	ret name##_watched(struct conn *c, UNPAREN params)                     \
	{                                                                      \
		uint32_t w =                                                   \
		    atomic_load_explicit(&c->watch, memory_order_relaxed);     \
		uint32_t pre = 0;                                              \
		ret n;                                                         \
		if (w & W_ABORTED)                                             \
			return name##_again(c, false, UNPAREN args);           \
		dir##_BEFORE(c, w, iov, cnt, pre);                             \
		n = real.field args;                                           \
		if (LIKELY(n > 0) &&                                           \
		    dir##_quick(fd, c, w, n, peek, pre, flags))                \
			return n;                                              \
		if (n <= 0)                                                    \
			dir##_UNDO(c, pre);                                    \
		n = (ret)dir##_done(fd, c, n, flags, dir##_PEEK(peek) iov,     \
				    cnt, pre);                                 \
		if (UNLIKELY(n == REPLAYED))                                   \
			return name##_again(c, true, UNPAREN args);            \
		return n;                                                      \
	}                                                                      \
	/* The quick path's call moved nothing, or failed. */                  \
	static __attribute__((noinline)) ret name##_nothing(                   \
	    struct conn *c, uint32_t pre, ret n, UNPAREN params)               \
	{                                                                      \
		(void)pre;                                                     \
		dir##_UNDO(c, pre);                                            \
		n = (ret)dir##_done(fd, c, n, flags, dir##_PEEK(peek) iov,     \
				    cnt, 0);                                   \
		if (UNLIKELY(n == REPLAYED))                                   \
			return name##_again(c, true, UNPAREN args);            \
		return n;                                                      \
	}                                                                      \
	/* counted, response and idle deadlines: the common case, here;        \
	 * anything else is name##_watched()'s */                              \
	static __attribute__((noinline))                                       \
	ret name##_common(struct conn *c, uint32_t w, UNPAREN params)          \
	{                                                                      \
		uint32_t pre;                                                  \
		ret n;                                                         \
		if (UNLIKELY(w & ~W_QUICK))                                    \
			return name##_watched(c, UNPAREN args);                \
		pre = dir##_quick_pre(fd, c, w, iov, cnt);                     \
		n = real.field args;                                           \
		if (LIKELY(n > 0)) {                                           \
			dir##_quick_post(fd, c, w, n, peek, pre);              \
			return n;                                              \
		}                                                              \
		return name##_nothing(c, pre, n, UNPAREN args);                \
	}                                                                      \
	/* nothing here but the lookup: an fd no rule guards costs that */     \
	EXPORT ret name params                                                 \
	{                                                                      \
		struct conn *c = fdt_get(fd);                                  \
		uint32_t w;                                                    \
		if (LIKELY(!c) ||                                              \
		    LIKELY(!(w = atomic_load_explicit(&c->watch,               \
						      memory_order_relaxed)))) \
			return real.field args;                                \
		return name##_common(c, w, UNPAREN args);                      \
	}

/* The fortified entry points have no prototype in the public headers. */
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *from, socklen_t *fromlen);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);

IO_HOOK(send, ssize_t, send, send,
	(int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags),
	fd, flags, NULL, ONE(buf, len), 1)
IO_HOOK(send, ssize_t, write, write, (int fd, const void *buf, size_t len),
	(fd, buf, len), fd, 0, NULL, ONE(buf, len), 1)
IO_HOOK(send, ssize_t, writev, writev,
	(int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), fd, 0, NULL,
	iov, cnt > 0 ? (size_t)cnt : 0)
IO_HOOK(send, ssize_t, sendmsg, sendmsg,
	(int fd, const struct msghdr *msg, int flags), (fd, msg, flags), fd,
	flags, NULL, msg ? msg->msg_iov : NULL, msg ? msg->msg_iovlen : 0)
IO_HOOK(send, int, sendmmsg, sendmmsg,
	(int fd, struct mmsghdr *v, unsigned vlen, int flags),
	(fd, v, vlen, flags), fd, flags, NULL, NULL, 0)
IO_HOOK(recv, ssize_t, recv, recv, (int fd, void *buf, size_t len, int flags),
	(fd, buf, len, flags), fd, flags, buf, ONE(buf, len), 1)
IO_HOOK(recv, ssize_t, read, read, (int fd, void *buf, size_t len),
	(fd, buf, len), fd, 0, buf, ONE(buf, len), 1)
IO_HOOK(recv, ssize_t, readv, readv, (int fd, const struct iovec *iov, int cnt),
	(fd, iov, cnt), fd, 0,
	cnt > 0 && iov[0].iov_len >= 12 ? iov[0].iov_base : NULL, iov,
	cnt > 0 ? (size_t)cnt : 0)
IO_HOOK(recv, ssize_t, recvfrom, recvfrom,
	(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
	 socklen_t *fromlen),
	(fd, buf, len, flags, from, fromlen), fd, flags, buf, ONE(buf, len), 1)
IO_HOOK(recv, ssize_t, recvmsg, recvmsg,
	(int fd, struct msghdr *msg, int flags), (fd, msg, flags), fd, flags,
	msg && msg->msg_iovlen && msg->msg_iov[0].iov_len >= 12
	    ? msg->msg_iov[0].iov_base
	    : NULL,
	msg ? msg->msg_iov : NULL, msg ? msg->msg_iovlen : 0)
IO_HOOK(recv, int, recvmmsg, recvmmsg,
	(int fd, struct mmsghdr *v, unsigned vlen, int flags,
	 struct timespec *timeout),
	(fd, v, vlen, flags, timeout), fd, flags, NULL, NULL, 0)
IO_HOOK(recv, ssize_t, __recv_chk, recv_chk,
	(int fd, void *buf, size_t len, size_t buflen, int flags),
	(fd, buf, len, buflen, flags), fd, flags, buf, ONE(buf, len), 1)
IO_HOOK(recv, ssize_t, __recvfrom_chk, recvfrom_chk,
	(int fd, void *buf, size_t len, size_t buflen, int flags,
	 struct sockaddr *from, socklen_t *fromlen),
	(fd, buf, len, buflen, flags, from, fromlen), fd, flags, buf,
	ONE(buf, len), 1)
IO_HOOK(recv, ssize_t, __read_chk, read_chk,
	(int fd, void *buf, size_t len, size_t buflen), (fd, buf, len, buflen),
	fd, 0, buf, ONE(buf, len), 1)

static __attribute__((noinline)) ssize_t sendto_slow(int fd, const void *buf,
						     size_t len, int flags,
						     const struct sockaddr *to,
						     socklen_t tolen)
{
	struct conn *c;
	uint32_t w, pre;
	ssize_t n;

	if ((flags & MSG_FASTOPEN) && to)
		fastopen(fd, to, tolen);
	c = fdt_get(fd);
	if (!c || !atomic_load(&c->watch))
		return real.sendto(fd, buf, len, flags, to, tolen);
	if (aborted(c) && !stale(fd, c))
		return deliver(c);
	w = atomic_load(&c->watch);
	send_BEFORE(c, w, ONE(buf, len), 1, pre);
	n = real.sendto(fd, buf, len, flags, to, tolen);
	if (n <= 0)
		send_UNDO(c, pre);
	return send_done(fd, c, n, flags, ONE(buf, len), 1, n > 0 ? pre : 0);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
		      const struct sockaddr *to, socklen_t tolen)
{
	struct conn *c = fdt_get(fd);

	if (LIKELY(!(flags & MSG_FASTOPEN)) &&
	    (LIKELY(!c) ||
	     LIKELY(!atomic_load_explicit(&c->watch, memory_order_relaxed))))
		return real.sendto(fd, buf, len, flags, to, tolen);
	return sendto_slow(fd, buf, len, flags, to, tolen);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val,
		      socklen_t len)
{
	struct conn *c;
	int r;

	r = real.setsockopt(fd, level, name, val, len);
	c = fdt_get(fd);
	if (!c || r < 0 || level != SOL_SOCKET || name != SO_SNDTIMEO ||
	    len < sizeof(struct timeval))
		return r;
	{
		/* remember the program's send timeout; ours stays if shorter */
		int saved = errno;
		const struct timeval *tv = val;
		uint64_t ms =
		    (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
		c->sndtimeo_ms = ms;
		if (c->send_ms && (!ms || ms > c->send_ms)) {
			struct timeval ours = {
			    .tv_sec = c->send_ms / 1000,
			    .tv_usec = (suseconds_t)(c->send_ms % 1000) * 1000};
			real.setsockopt(fd, level, name, &ours, sizeof ours);
		}
		errno = saved;
	}
	return r;
}

/* fd is closed or replaced: what its connection needed goes. */
static void forget(int fd)
{
	streams_forget(fd);
	replay_forget(fd);
	connect_forget(fd);
	calls_forget(fd);
}

/* A TCP socket's kind is noted (fdt_kind), so that its connect needs no
 * system call to tell a TCP socket and its blocking mode. */
EXPORT int socket(int domain, int type, int proto)
{
	int fd = real.socket(domain, type, proto);
	uint8_t k = 0;

	if (fd < 0)
		return fd;
	if ((domain == AF_INET || domain == AF_INET6) &&
	    (type & 0xf) == SOCK_STREAM && (!proto || proto == IPPROTO_TCP))
		k = FDK_TCP | (type & SOCK_NONBLOCK ? FDK_NONBLOCK : 0);
	/* with no policy, no connect looks; a vfork() child's number is
	 * not its parent's to mark */
	if (k && state_policy() && !life_borrowed_memory()) {
		int saved = errno;
		fdt_kind_set(fd, k);
		errno = saved;
	} else {
		fdt_kind_forget(fd);
	}
	return fd;
}

EXPORT int close(int fd)
{
	fdt_kind_forget(fd);
	if (UNLIKELY(fdt_get(fd) != NULL) && !life_borrowed_memory()) {
		int saved = errno;
		forget(fd);
		errno = saved;
	}
	return real.close(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int max;

	if (!real.close_range) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC) && atomic_load(&fdt_kinds)) {
		/* forgetting is always safe: the kernel is asked instead */
		unsigned end = last < FDT_CHUNK * FDT_CHUNKS - 1
				   ? last
				   : FDT_CHUNK * FDT_CHUNKS - 1;
		for (unsigned fd = first; fd <= end; fd++)
			fdt_kind_forget((int)fd);
	}
	max = atomic_load(&fdt_max);
	if (!(flags & CLOSE_RANGE_CLOEXEC) && max >= 0 &&
	    first <= (unsigned)max && !life_borrowed_memory()) {
		int saved = errno;
		unsigned end = last < (unsigned)max ? last : (unsigned)max;
		for (unsigned fd = first; fd <= end; fd++) {
			forget((int)fd);
		}
		errno = saved;
	}
	return real.close_range(first, last, flags);
}

EXPORT int dup(int fd)
{
	int r;

	r = real.dup(fd);
	/* a copy shares the file's flags, which the hooks of either may
	 * change: its kind stays unknown */
	if (r >= 0)
		fdt_kind_forget(r);
	if (r >= 0 && fdt_get(fd)) {
		int saved = errno;
		fdt_copy(fd, r);
		errno = saved;
	}
	return r;
}

/* dup2 and dup3: the target is closed first, then made a copy. */
static int dup_to(int oldfd, int newfd, int flags, bool three)
{
	int r, saved = errno;

	bool mine =
	    !(fdt_get(newfd) || fdt_get(oldfd)) || !life_borrowed_memory();

	if (oldfd != newfd && mine && fdt_get(newfd)) {
		forget(newfd);
	}
	errno = saved;
	r = three ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
	if (r >= 0 && oldfd != newfd) {
		fdt_kind_forget(r); /* see dup() */
		fdt_kind_forget(oldfd);
	}
	if (r >= 0 && oldfd != newfd && mine && fdt_get(oldfd)) {
		saved = errno;
		fdt_copy(oldfd, r);
		errno = saved;
	}
	return r;
}

EXPORT int dup2(int oldfd, int newfd)
{
	return dup_to(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return dup_to(oldfd, newfd, flags, true);
}

/* fcntl and fcntl64: duplicates and O_NONBLOCK changes are tracked. */
static int do_fcntl(int fd, int cmd, void *arg)
{
	struct conn *c;
	int r, saved;

	r = real.fcntl(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		fdt_kind_forget(r); /* see dup() */
		fdt_kind_forget(fd);
	} else if (r >= 0 && cmd == F_SETFL && fdt_kind(fd)) {
		long fl = (long)arg;
		fdt_kind_set(
		    fd,
		    FDK_TCP | (fl & O_NONBLOCK ? FDK_NONBLOCK : 0) |
			(fl & ~(long)(O_NONBLOCK | O_ACCMODE) ? FDK_FLAGS : 0));
	}
	if (r < 0 || !(c = fdt_get(fd)))
		return r;
	saved = errno;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		fdt_copy(fd, r);
	else if (cmd == F_SETFL) {
		atomic_store(&c->nonblock, ((long)arg & O_NONBLOCK) != 0);
		c->fl = (int)(long)arg; /* restored by connect_once() */
	}
	errno = saved;
	return r;
}

/* fcntl and fcntl64 take one argument of any kind: pass it on. */
#define FCNTL_HOOK(name)                                                       \
	EXPORT int name(int fd, int cmd, ...)                                  \
	{                                                                      \
		va_list ap;                                                    \
		void *arg;                                                     \
		va_start(ap, cmd);                                             \
		arg = va_arg(ap, void *);                                      \
		va_end(ap);                                                    \
		return do_fcntl(fd, cmd, arg);                                 \
	}

FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct conn *c;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	r = real.ioctl(fd, req, arg);
	if (r == 0 && req == FIONBIO && arg && fdt_kind(fd))
		fdt_kind_set(fd,
			     (uint8_t)((fdt_kind(fd) & ~FDK_NONBLOCK) |
				       (*(const int *)arg ? FDK_NONBLOCK : 0)));
	if (r == 0 && req == FIONBIO && arg && (c = fdt_get(fd))) {
		atomic_store(&c->nonblock, *(const int *)arg != 0);
	}
	return r;
}

EXPORT int getaddrinfo(const char *node, const char *service,
		       const struct addrinfo *hints, struct addrinfo **res)
{
	int r;

	r = real.getaddrinfo(node, service, hints, res);
	if (r == 0 && node && !shim_busy) {
		int saved = errno;
		for (const struct addrinfo *ai = *res; ai; ai = ai->ai_next)
			if (ai->ai_addr)
				dns_remember(node, ai->ai_addr);
		errno = saved;
	}
	return r;
}

/* Remembers every address of a hostent under name. */
static void remember_hostent(const char *name, const struct hostent *h)
{
	int saved = errno;

	if (h && h->h_addr_list)
		for (char **a = h->h_addr_list; *a; a++)
			dns_remember_raw(name, h->h_addrtype, *a);
	errno = saved;
}

EXPORT struct hostent *gethostbyname(const char *name)
{
	struct hostent *h;

	h = real.gethostbyname(name);
	remember_hostent(name, h);
	return h;
}

EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	struct hostent *h;

	h = real.gethostbyname2(name, af);
	remember_hostent(name, h);
	return h;
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
			   size_t len, struct hostent **result, int *herr)
{
	int r;

	r = real.gethostbyname_r(name, ret, buf, len, result, herr);
	if (r == 0 && result && *result)
		remember_hostent(name, *result);
	return r;
}

EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret,
			    char *buf, size_t len, struct hostent **result,
			    int *herr)
{
	int r;

	r = real.gethostbyname2_r(name, af, ret, buf, len, result, herr);
	if (r == 0 && result && *result)
		remember_hostent(name, *result);
	return r;
}
