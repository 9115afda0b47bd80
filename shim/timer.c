/* SPDX-License-Identifier: MIT */
/* The deadline thread.  Hooks store deadlines in their fd's slot (one
 * atomic store); the thread sleeps on a futex until the earliest one,
 * scans the guarded fds, and aborts the sockets whose deadline passed with
 * connect(AF_UNSPEC), which wakes a blocked call or the program's event
 * loop (poll, select, epoll) at once.  It starts at the first deadline,
 * blocks every signal, and is started again lazily in a forked child. */
#include "shim.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_acked */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

atomic_int timer_started;	 /* 0 none, 1 starting/running */
_Atomic uint64_t timer_next = 1; /* when the thread wakes; 0 while scanning */
static _Atomic uint32_t seq;	 /* futex word: bumped to wake */
static pthread_mutex_t act_lock = PTHREAD_MUTEX_INITIALIZER;

/* Monotonic clock in ns. */
uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A cheaper monotonic clock, never behind clock_ns(). */
uint64_t clock_coarse_ns(void)
{
	static _Atomic uint64_t res_ns; /* set by any thread, same value */
	uint64_t res = atomic_load_explicit(&res_ns, memory_order_relaxed);
	struct timespec ts;

	if (UNLIKELY(!res)) {
		clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
		res = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		atomic_store_explicit(&res_ns, res, memory_order_relaxed);
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + res;
}

/* Wakes the thread so that it rescans. */
static void wake(void)
{
	int saved = errno;

	atomic_fetch_add(&seq, 1);
	syscall(SYS_futex, &seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved;
}

/* Aborts the socket of c with err; caller holds c's lock. */
void timer_abort(int fd, struct conn *c, int err)
{
	struct sockaddr sa = {.sa_family = AF_UNSPEC};
	int saved = errno;

	atomic_store(&c->abort_errno, err);
	atomic_fetch_or(&c->watch, W_ABORTED);
	for (int d = 0; d < DL_COUNT; d++)
		atomic_store_explicit(&c->dl[d], 0, memory_order_relaxed);
	/* On TCP, connect(AF_UNSPEC) is tcp_disconnect(): an RST to the
	 * peer, the socket back to CLOSE, and every waiter woken. */
	real.connect(fd, &sa, sizeof sa);
	/* That alone shows POLLOUT|POLLERR|POLLHUP but not POLLIN or
	 * POLLRDHUP, and loops that read only on POLLIN spin.  shutdown()
	 * of a closed socket fails (ENOTCONN) but still marks both ways
	 * shut and wakes the pollers: the socket then polls exactly like
	 * one the peer reset (IN, OUT, ERR, HUP, RDHUP); the next read
	 * returns err (the hooks deliver it). */
	shutdown(fd, SHUT_RDWR);
	errno = saved;
}

/* True when fd still is the socket that c guards.  The program may close
 * fd at any moment, by paths no hook sees (fclose, raw syscalls): the
 * inode tells.  Asked of the kernel directly, past any interposer: a
 * sanitizer's fstat() would take this check for a race with the close. */
static bool same_socket(int fd, const struct conn *c)
{
	struct stat st;

#ifdef SYS_fstat
	if (syscall(SYS_fstat, fd, &st) != 0)
		return false;
#else
	if (fstat(fd, &st) != 0)
		return false;
#endif
	return (uint64_t)st.st_ino == c->ino;
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
 * deadline of that kind (0 for none).  Caller holds c's lock. */
static uint64_t expire(int fd, struct conn *c, enum conn_deadline d,
		       uint64_t now)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;

	switch (d) {
	case DL_CONNECT:
		/* Connected but the program has not looked yet: fine. */
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0) {
			atomic_fetch_and(&c->watch, ~W_CONNECTING);
			calls_connected(fd, c, 0, now);
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
		char peek[16];
		ssize_t n;

		if (atomic_load(&c->watch) & W_H2) {
			/* HTTP/2: per stream (streams.c) */
			uint64_t next = streams_expired(fd, c, now);
			if (next != STREAMS_TIMED_OUT)
				return next;
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

/* Scans every guarded fd, fires what passed, returns the next deadline. */
static uint64_t scan(uint64_t now)
{
	int max = atomic_load(&fdt_max);
	uint64_t next = UINT64_MAX;

	pthread_mutex_lock(&act_lock);
	for (int fd = 0; fd <= max; fd++) {
		struct conn *c = fdt_get(fd);
		bool locked = false;

		if (!c)
			continue;
		for (int d = 0; d < DL_COUNT; d++) {
			uint64_t when = atomic_load(&c->dl[d]);
			if (!when)
				continue;
			if (when > now) {
				next = when < next ? when : next;
				continue;
			}
			if (!locked) {
				conn_lock(c);
				locked = true;
				if (!atomic_load(&c->live) ||
				    !same_socket(fd, c)) {
					/* closed behind our back: forget */
					atomic_store(&c->live, 0);
					break;
				}
			}
			/* re-read under the lock: the hook may have disarmed */
			when = atomic_load(&c->dl[d]);
			if (!when || when > now) {
				if (when)
					next = when < next ? when : next;
				continue;
			}
			when = expire(fd, c, (enum conn_deadline)d, now);
			uint64_t expect = atomic_load(&c->dl[d]);
			if (expect && expect <= now)
				atomic_store(&c->dl[d], when);
			else if (expect)
				when = expect;
			if (when)
				next = when < next ? when : next;
		}
		if (locked)
			conn_unlock(c);
	}
	pthread_mutex_unlock(&act_lock);
	return next;
}

/* The thread: scan, sleep until the next deadline or a wake, repeat. */
static void *run(void *arg)
{
	(void)arg;
	shim_busy = 1;
	for (;;) {
		uint32_t s = atomic_load(&seq);
		uint64_t now, next;
		struct timespec ts, *tp = NULL;

		atomic_store(&timer_next, 0);
		now = clock_ns();
		next = scan(now);
		atomic_store(&timer_next, next);
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tp = &ts;
		}
		syscall(SYS_futex, &seq, FUTEX_WAIT_PRIVATE, s, tp, NULL, 0);
	}
	return NULL;
}

/* Starts the thread with every signal blocked; once per process. */
static void start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t tid;
	int expected = 0;

	if (!atomic_compare_exchange_strong(&timer_started, &expected, 1))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	if (pthread_create(&tid, &attr, run, NULL) != 0) {
		atomic_store(&timer_started, 0);
		shim_log(POLICY_LOG_WARN,
			 "cannot start the timeout thread; "
			 "timeouts of non-blocking sockets will not fire");
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Starts the thread if needed and wakes it: a deadline came that is
 * earlier than its next wake. */
void timer_kick(void)
{
	if (!atomic_load(&timer_started))
		start();
	wake();
}

/* Keeps the thread out of its critical section across fork. */
void timer_atfork_prepare(void)
{
	pthread_mutex_lock(&act_lock);
}

void timer_atfork_parent(void)
{
	pthread_mutex_unlock(&act_lock);
}

/* The child has no thread: start one at the first deadline.  The
 * sockets it inherited are the parent's to time and to count: their
 * deadlines and accounting are dropped here, so a child never aborts or
 * releases what the parent still uses. */
void timer_atfork_child(void)
{
	int max = atomic_load(&fdt_max);

	for (int fd = 0; fd <= max; fd++) {
		struct conn *c = fdt_get(fd);
		if (!c)
			continue;
		atomic_flag_clear(&c->lock);
		for (int d = 0; d < DL_COUNT; d++)
			atomic_store(&c->dl[d], 0);
		atomic_fetch_and(&c->watch, ~(W_COUNT | W_CONNECTING));
		c->saddr = c->srule = -1;
		c->active = 0;
		c->probe = 0;
		atomic_store(&c->call, CALL_NONE);
	}
	/* taken by this thread in the prepare handler */
	pthread_mutex_unlock(&act_lock);
	atomic_store(&timer_started, 0);
	atomic_store(&timer_next, 1);
}
