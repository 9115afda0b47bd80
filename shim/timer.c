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
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

atomic_int timer_started;	 /* 0 none, 1 starting/running */
_Atomic uint64_t timer_next = 1; /* when the thread wakes; 0 while scanning */
static _Atomic uint32_t seq;	 /* futex word: bumped to wake */
static pthread_mutex_t act_lock = PTHREAD_MUTEX_INITIALIZER;
static timer_fire_fn *fire; /* set once, at load, by the watcher */

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

_Atomic uint64_t timer_groups[FDT_CHUNK * FDT_CHUNKS / TIMER_GROUP];

/* Fires what passed of fd's deadlines; returns its next deadline
 * (UINT64_MAX: none). */
static uint64_t scan_fd(int fd, uint64_t now)
{
	struct conn *c = fdt_get(fd);
	uint64_t next = UINT64_MAX;
	bool locked = false;

	if (!c)
		return next;
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
			if (!atomic_load(&c->live) || !same_socket(fd, c)) {
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
		if (UNLIKELY(!fire)) /* a connect before our load */
			continue;
		when = fire(fd, c, (enum conn_deadline)d, now);
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
	return next;
}

/* Scans the groups of fds that are due, fires what passed, returns the
 * next deadline.  A group not due costs one load: with many connections
 * whose deadlines are far (idle_timeout), a wake costs the groups, not
 * the fds. */
static uint64_t scan(uint64_t now)
{
	int max = atomic_load(&fdt_max);
	uint64_t next = UINT64_MAX;

	pthread_mutex_lock(&act_lock);
	for (int g = 0; max >= 0 && g <= max / TIMER_GROUP; g++) {
		uint64_t v = atomic_load(&timer_groups[g]), m = UINT64_MAX;

		if (!v)
			continue; /* nothing armed */
		if (~v > now) {
			next = ~v < next ? ~v : next;
			continue;
		}
		/* due: reset, scan, lower it to what is left */
		atomic_store(&timer_groups[g], 0);
		for (int fd = g * TIMER_GROUP;
		     fd < (g + 1) * TIMER_GROUP && fd <= max; fd++) {
			uint64_t w = scan_fd(fd, now);
			m = w < m ? w : m;
		}
		if (m != UINT64_MAX) {
			timer_group_lower(g * TIMER_GROUP, m);
			next = m < next ? m : next;
		}
	}
	pthread_mutex_unlock(&act_lock);
	return next;
}

/* How early the thread looks at the policy file for a reload: before
 * the connects do (reload is at least 100 ms). */
#define RELOAD_AHEAD_NS 20000000u

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
		/* the policy's reload look, a little before a connect would
		 * make it (and parse a changed file on its own time) */
		uint64_t due = state_reload_due();
		if (due) {
			if (now + RELOAD_AHEAD_NS >= due) {
				state_reload_ahead(now, RELOAD_AHEAD_NS);
				due = state_reload_due();
			}
			if (due > RELOAD_AHEAD_NS)
				due -= RELOAD_AHEAD_NS;
			next = due < next ? due : next;
		}
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
static void atfork_prepare(void)
{
	pthread_mutex_lock(&act_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&act_lock);
}

/* The child has no thread: start one at the first deadline.  The
 * sockets it inherited are the parent's to time and to count: their
 * deadlines and accounting are dropped here, so a child never aborts or
 * releases what the parent still uses. */
static void atfork_child(void)
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
	for (int g = 0; max >= 0 && g <= max / TIMER_GROUP; g++)
		atomic_store(&timer_groups[g], 0);
	/* taken by this thread in the prepare handler */
	pthread_mutex_unlock(&act_lock);
	atomic_store(&timer_started, 0);
	atomic_store(&timer_next, 1);
}

static const struct life_part part = {
    .prepare = atfork_prepare,
    .parent = atfork_parent,
    .child = atfork_child,
};

__attribute__((constructor)) static void timer_ctor(void)
{
	life_join(LIFE_TIMER, &part);
}

/* Sets what the thread calls for a passed deadline; once, at load. */
void timer_on_fire(timer_fire_fn *fn)
{
	fire = fn;
}
