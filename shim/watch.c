/* SPDX-License-Identifier: MIT */
/* The TCP watcher: what a passed deadline means for a connection, and
 * how its abort reaches the program.  The timer (timer.c) only knows
 * when; this file knows what: a connect that took too long, a reply that
 * did not come (or came unread), a connection that stopped moving.  It
 * joins the timer at load. */
#include "shim.h"

#include <errno.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_acked */
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/sockios.h>

/* Hands the abort of c to the program once: -1 with errno; afterwards
 * the socket (closed by the abort) answers for itself. */
__attribute__((noinline)) ssize_t deliver(struct conn *c)
{
	int e = atomic_exchange(&c->abort_errno, -1);

	atomic_fetch_and(&c->watch, ~W_ABORTED);
	errno = e > 0 ? e : EPIPE;
	return -1;
}

/* True when the slot of fd outlived its socket: the program closed it
 * where we could not see (fclose of an fdopen stream, a raw syscall) and
 * the number now names another file.  The slot is dropped. */
__attribute__((noinline)) bool stale(int fd, struct conn *c)
{
	struct stat st;
	int saved = errno;
	bool gone = fstat(fd, &st) < 0 || (uint64_t)st.st_ino != c->ino;

	if (gone) {
		conn_lock(c);
		fdt_clear(c);
		conn_unlock(c);
	}
	errno = saved;
	return gone;
}

/* A non-blocking connect of c turned out done (err 0) or failed. */
void connected_now(int fd, struct conn *c, int err)
{
	atomic_fetch_and(&c->watch, ~W_CONNECTING);
	calls_connected(fd, c, err, clock_ns());
}

/* Bytes the peer acknowledged on fd, or 0 when unknown. */
static uint64_t acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;

	if (real.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return 0;
	return ti.tcpi_bytes_acked;
}

/* Progress check of idle_timeout and send_timeout: v is a figure that
 * moves while the connection makes progress; when it has not moved for
 * ms, the call fails and the socket is aborted.  Returns when to look
 * again (0: never).  Caller holds c's lock. */
static uint64_t stalled(int fd, struct conn *c, uint64_t v, uint64_t *seen,
			uint64_t *since, uint32_t ms, const char *key,
			uint64_t now)
{
	uint64_t limit = (uint64_t)ms * 1000000u;

	if (v != *seen || !*since) {
		*seen = v;
		*since = now;
		return now + limit / 4 + 1;
	}
	if (now - *since < limit)
		return now + limit / 4 + 1;
	calls_end(fd, c, false, -1, now);
	timer_abort(fd, c, ETIMEDOUT);
	shim_log(POLICY_LOG_INFO, "fd %d: %s (%ums) fired", fd, key, ms);
	return 0;
}

/* Handles the passed deadline d of the slot of fd; returns the next
 * deadline of that kind (0 for none).  Caller holds c's lock: the
 * timer's timer_fire_fn. */
static uint64_t expire(int fd, struct conn *c, enum conn_deadline d,
		       uint64_t now)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;

	switch (d) {
	case DL_CONNECT:
		/* Connected but the program has not looked yet: fine. */
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0) {
			connected_now(fd, c, 0);
			return 0;
		}
		atomic_fetch_and(&c->watch, ~W_CONNECTING);
		calls_connected(fd, c, ETIMEDOUT, now);
		c->connect_timed_out = 1; /* getsockopt may retry it */
		timer_abort(fd, c, ETIMEDOUT);
		shim_log(POLICY_LOG_INFO,
			 "fd %d: connect_timeout (%ums) "
			 "fired",
			 fd, c->connect_ms);
		return 0;
	case DL_RESPONSE: {
		uint32_t w = atomic_load(&c->watch);
		char peek[16];
		ssize_t n;

		if (w & W_HANDSHAKE) {
			/* TLS: the deadline is handshake_timeout's */
			atomic_fetch_and(&c->watch, ~W_HANDSHAKE);
			calls_end(fd, c, false, SEG_TLS_FAILURES, now);
			timer_abort(fd, c, ETIMEDOUT);
			shim_log(POLICY_LOG_INFO,
				 "fd %d: handshake_timeout (%ums) fired", fd,
				 c->handshake_ms);
			return 0;
		}
		if ((w & W_H2) ||
		    ((w & W_TLS) &&
		     __atomic_load_n(&c->h2.state, __ATOMIC_RELAXED) !=
			 H2_OFF)) {
			/* HTTP/2: per stream (streams.c); under TLS, what
			 * waits unread on the socket is records: no peek */
			uint64_t next =
			    streams_expired(fd, c, now, !(w & W_TLS));
			if (next != STREAMS_TIMED_OUT)
				return next;
			n = 0;
		} else if (w & W_TLS) {
			/* what waits unread may be records of no reply
			 * (session tickets): no peek */
			n = 0;
		} else {
			n = real.recv(fd, peek, sizeof peek,
				      MSG_PEEK | MSG_DONTWAIT);
		}
		if (n > 0) {
			/* the reply is there, unread (the program is busy
			 * elsewhere): it came, so the call went well */
			atomic_store(&c->awaiting, false);
			calls_reply_queued(fd, c, peek, n);
			return 0;
		}
	}
		/* account first: the abort wakes a program that may exit */
		calls_end(fd, c, false, SEG_RESPONSE_TIMEOUTS, now);
		timer_abort(fd, c, ETIMEDOUT);
		shim_log(POLICY_LOG_INFO,
			 "fd %d: response_timeout (%ums) "
			 "fired",
			 fd, c->response_ms);
		return 0;
	case DL_IDLE:
		/* checked every quarter: fires within the timeout + 25% */
		return stalled(fd, c, atomic_load(&c->activity), &c->idle_seen,
			       &c->idle_since, c->idle_ms, "idle_timeout", now);
	case DL_SEND: {
		/* Data queued and nothing acked for send_ms: stalled.  An
		 * empty queue ends the watch until the next send. */
		int queued = 0;
		if (real.ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0)
			return 0;
		return stalled(fd, c, acked(fd), &c->send_seen, &c->send_since,
			       c->send_ms, "send_timeout", now);
	}
	case DL_COUNT:
		break;
	}
	return 0;
}

__attribute__((constructor)) static void watch_ctor(void)
{
	timer_on_fire(expire);
}
