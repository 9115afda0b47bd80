/* SPDX-License-Identifier: MIT */
/* The connect path: guard() decides whether a connect is guarded and
 * admits it (calls.c); a blocking connect under connect_timeout is a
 * non-blocking one and a poll; retries (on a fresh socket, with
 * failover to another address of the name) and refusals that follow the
 * kernel's protocol; getsockopt(SO_ERROR) and poll(), where a program
 * learns how a non-blocking connect ended, and epoll_ctl() after a retry
 * swapped the socket.  The I/O hooks are in hooks.c. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

/* True when every caught signal's handler has SA_RESTART, so that the
 * kernel would restart a blocking connect whichever signal came (poll()
 * does not say which).  A syscall a signal: only after an EINTR. */
static bool restarts(void)
{
	int saved = errno;
	bool all = true;

	for (int s = 1; s < NSIG && all; s++) {
		struct sigaction a;

		/* faults come from the thread's own code, not into a
		 * wait: crash handlers (sanitizers, runtimes) do not count */
		if (s == SIGKILL || s == SIGSTOP || s == SIGSEGV ||
		    s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP ||
		    s == SIGSYS || s == SIGABRT || sigaction(s, NULL, &a) < 0)
			continue;
		if (!(a.sa_flags & SA_SIGINFO) &&
		    (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN))
			continue;
		all = (a.sa_flags & SA_RESTART) != 0;
	}
	errno = saved;
	return all;
}

/* Waits for a blocking connect to to (tolen) in progress on fd until
 * deadline (ns); returns 0 or -1 with errno, like connect. */
static int connect_wait(int fd, struct conn *c, const struct sockaddr *to,
			socklen_t tolen, uint64_t deadline,
			uint64_t prog_deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r;

	for (;;) {
		uint64_t now = clock_ns(), until = deadline;
		if (prog_deadline && prog_deadline < until)
			until = prog_deadline;
		int ms =
		    now >= until ? 0 : (int)((until - now + 999999) / 1000000);
		r = real.poll(&p, 1, ms);
		if (r > 0)
			break;
		if (r < 0 && errno == EINTR && restarts()) {
			/* the kernel restarts a blocking connect after a
			 * handler with SA_RESTART; poll() it never restarts */
			continue;
		}
		if (r < 0 && errno == EINTR) {
			/* like the kernel: the connect goes on in the
			 * background, and our deadline with it */
			atomic_fetch_or(&c->watch, W_CONNECTING);
			timer_arm(c, DL_CONNECT, deadline);
			errno = EINTR;
			return -1;
		}
		if (r < 0)
			return -1;
		if (clock_ns() < until)
			continue;
		if (prog_deadline && prog_deadline < deadline) {
			/* the program's SO_SNDTIMEO ran out first */
			atomic_fetch_or(&c->watch, W_CONNECTING);
			timer_arm(c, DL_CONNECT, deadline);
			errno = EINPROGRESS;
			return -1;
		}
		struct sockaddr sa = {.sa_family = AF_UNSPEC};
		real.connect(fd, &sa, sizeof sa);
		shim_log(POLICY_LOG_INFO, "fd %d: connect_timeout (%ums) fired",
			 fd, c->connect_ms);
		errno = ETIMEDOUT;
		return -1;
	}
	/* The outcome, as a blocking connect learns it: by connect() once
	 * more, which also ends the kernel's connecting state (connected;
	 * or unconnected, for the next attempt on the socket).  Reading
	 * SO_ERROR instead left it connecting: a later connect() said 0
	 * where the kernel says EISCONN, or ECONNABORTED for a refusal. */
	r = real.connect(fd, to, tolen);
	if (r == 0 || errno == EISCONN)
		return 0;
	if (errno == EALREADY || errno == EINPROGRESS) {
		/* woken before the end: should not happen; ask SO_ERROR */
		socklen_t len = sizeof(int);
		int err = 0;

		if (real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -1;
		errno = err ? err : ETIMEDOUT;
		return -1;
	}
	return -1;
}

/* The address of key k at sa's port, in sa's family (v6: sa's scope). */
static socklen_t sibling_addr(const struct sockaddr *sa, const uint8_t k[16],
			      struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *o = (struct sockaddr_in *)out;

		o->sin_family = AF_INET;
		o->sin_port = ((const struct sockaddr_in *)sa)->sin_port;
		memcpy(&o->sin_addr, k + 12, 4);
		return sizeof *o;
	}
	memcpy(out, sa, sizeof *out);
	memcpy(&out->sin6_addr, k, 16);
	return sizeof *out;
}

/* Writes "IP:PORT" of a v4 or v6 address for the log. */
static void sa_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, ntohs(v4->sin_port));
	} else {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, ntohs(v6->sin6_port));
	}
}

/* Failover: walks the other addresses resolved for sa's name, starting
 * after sa in resolution order, for one that rule guards too and whose
 * breaker lets calls through; admits a connect there when admit is set.
 * Returns 1 with its settings in *t and the address in *alt, 0 when
 * there is none, -1 (errno set) when admission refused for a reason
 * other than that address's breaker. */
static int failover_pick(const struct sockaddr *sa, int rule, bool admit,
			 struct conn *t, struct sockaddr_in6 *alt,
			 socklen_t *altlen)
{
	uint8_t keys[DNS_SIBLINGS_MAX][16];
	size_t at, n = dns_siblings(sa, keys, DNS_SIBLINGS_MAX, &at);

	if (n < 2)
		return 0;
	for (size_t j = 1; j < n; j++) {
		*altlen = sibling_addr(sa, keys[(at + j) % n], alt);
		memset(t, 0, sizeof *t);
		if (!state_classify((struct sockaddr *)alt, t) ||
		    t->rule != rule || !calls_healthy(t))
			continue;
		if (!admit)
			return 1;
		/* the first attempt was counted for the budget already */
		t->retrying = 1;
		if (calls_admit(t) == 0) {
			t->retrying = 0;
			return 1;
		}
		if (t->rejected != REJECT_BREAKER)
			return -1;
	}
	return 0;
}

/* Logs a failover from one address to another at info. */
static void log_failover(const struct sockaddr *from, const struct sockaddr *to,
			 const char *why)
{
	char a[64], b[64];

	sa_text(from, a, sizeof a);
	sa_text(to, b, sizeof b);
	shim_log(POLICY_LOG_INFO, "failover %s \xe2\x86\x92 %s: %s", a, b, why);
}

/* True when a refusal of a connect to sa by its breaker may be final:
 * no other address of its name could take it (failover). */
static bool no_failover(const struct sockaddr *sa, const struct conn_cfg *cfg)
{
	uint8_t keys[DNS_SIBLINGS_MAX][16];
	size_t at;

	return !cfg->failover ||
	       dns_siblings(sa, keys, DNS_SIBLINGS_MAX, &at) < 2;
}

/* Sets up the slot of fd for a new connection to sa; NULL: pass through,
 * or, with *rejected set, the breaker refused it (errno set).  When moved
 * is not NULL, a connect its breaker refuses may fail over to another
 * address of the same name: *moved is then set and c->peer holds it. */
static struct conn *guard(int fd, const struct sockaddr *sa, socklen_t len,
			  bool *rejected, bool *moved)
{
	struct conn tmp, *c; /* what classify and admit fill in; no zeroing */
	struct sockaddr_in6 alt;
	socklen_t altlen = 0;
	struct stat st;
	int type = 0, fl;
	socklen_t tl = sizeof type;
	uint8_t kind = fdt_kind(fd);
	const struct conn_cfg *last;
	int32_t srule, saddr;
	int hit;

	*rejected = false;
	tmp.active = tmp.retrying = 0;
	/* the one clock read of classification and admission, and the
	 * connect's start */
	tmp.connect_ns = clock_ns();
	if (len < sizeof(struct sockaddr_in) ||
	    (sa->sa_family == AF_INET6 && len < sizeof(struct sockaddr_in6)))
		return NULL;
	/* this thread's last destination: its settings with no lock; a
	 * TCP socket that our socket() made, refused by an open breaker
	 * with a look at it, no copy and no system call */
	hit = state_last(sa, tmp.connect_ns, &last, &srule, &saddr);
	if (!hit)
		return NULL;
	tmp.looked = 0;
	if (hit > 0 && (kind & FDK_TCP)) {
		if (!calls_shut(last, srule, saddr, tmp.connect_ns)) {
			tmp.looked = 1; /* admission need not look again */
		} else if (no_failover(sa, last)) {
			*rejected = true;
			calls_refuse(last, srule, saddr, tmp.connect_ns);
			return NULL;
		}
	}
	if (hit > 0) {
		tmp.cfg = *last;
		tmp.srule = srule;
		tmp.saddr = saddr;
	} else if (!state_classify(sa, &tmp)) {
		return NULL;
	}
	/* a TCP socket that our socket() made needs no question */
	if (!(kind & FDK_TCP) &&
	    (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	     type != SOCK_STREAM))
		return NULL;
	/* an open breaker: fail now, no connect, no slot; or fail over */
	if (calls_admit(&tmp) < 0) {
		int e = errno, f = 0;

		if (moved && tmp.failover && tmp.rejected == REJECT_BREAKER) {
			f = failover_pick(sa, tmp.rule, true, &tmp, &alt,
					  &altlen);
			if (f == 0)
				errno = e;
		}
		if (f <= 0) {
			*rejected = true;
			return NULL;
		}
		log_failover(sa, (struct sockaddr *)&alt, "breaker open");
		*moved = true;
	}
	c = fdt_slot(fd);
	/* the flags: of a socket() whose flags only F_SETFL's O_NONBLOCK
	 * changed, known; else asked */
	fl = (kind & (FDK_TCP | FDK_FLAGS)) == FDK_TCP
		 ? O_RDWR | (kind & FDK_NONBLOCK ? O_NONBLOCK : 0)
		 : real.fcntl(fd, F_GETFL);
	if (!c || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || fl < 0) {
		calls_unadmit(&tmp); /* give back what admission took */
		return NULL;
	}
	conn_lock(c);
	atomic_store(&c->live, 0);
	c->ino = (uint64_t)st.st_ino;
	c->cfg = tmp.cfg;
	c->sndtimeo_ms = 0;
	c->idle_seen = c->idle_since = c->send_seen = c->send_since = 0;
	c->probe = tmp.probe;
	c->active = tmp.active;
	c->polled = 0;
	c->saddr = tmp.saddr;
	c->srule = tmp.srule;
	c->retrying = 0;
	c->sample = 0;
	c->fl = fl;
	/* a success concerns the breaker only when it is not closed and
	 * quiet: no slow calls to time, no rates to keep */
	c->quick = !tmp.bcfg.slow_ms && !tmp.bcfg.failure_rate_ppm &&
		   !tmp.bcfg.slow_rate_ppm &&
		   (uint32_t)tmp.srule < shim_seg.nrules;
	if (altlen) {
		memcpy(&c->peer, &alt, altlen);
		c->peerlen = altlen;
	}
	c->out = c->in = 0;
	c->wait_ns = c->connect_dur_ns = 0;
	c->connect_ns = tmp.connect_ns;
	atomic_store(&c->call, CALL_CONNECTING);
	atomic_store(&c->nonblock, (fl & O_NONBLOCK) != 0);
	atomic_store(&c->awaiting, false);
	memset(&c->h2, 0, sizeof c->h2);
	/* calls and response deadlines: HTTP/2 until its first bytes say
	 * otherwise (streams.c) */
	atomic_store(
	    &c->watch,
	    (tmp.response_ms ? W_RESPONSE : 0u) | (tmp.idle_ms ? W_IDLE : 0u) |
		(tmp.send_ms ? W_SEND : 0u) | (tmp.saddr >= 0 ? W_COUNT : 0u) |
		(tmp.response_ms || tmp.saddr >= 0 ? W_H2 : 0u) |
		((tmp.retry_on & POLICY_RETRY_REPLAY) && tmp.retries ? W_REPLAY
								     : 0u));
	atomic_store(&c->abort_errno, 0);
	atomic_store(&c->activity, 0);
	for (int d = 0; d < DL_COUNT; d++)
		atomic_store(&c->dl[d], 0);
	atomic_store_explicit(&c->live, 1, memory_order_release);
	conn_unlock(c);
	return c;
}

/* After a connect that succeeded or is in progress: the deadlines that
 * run for the life of the connection. */
static void connected(int fd, struct conn *c)
{
	if (c->send_ms) {
		/* blocking sends: the kernel's own send timer does it */
		uint64_t ms = c->send_ms;
		if (c->sndtimeo_ms && c->sndtimeo_ms < ms)
			ms = c->sndtimeo_ms;
		struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
				     .tv_usec =
					 (suseconds_t)(ms % 1000) * 1000};
		real.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	if (c->idle_ms) {
		c->idle_since = clock_ns();
		c->idle_seen = atomic_load(&c->activity);
		timer_arm(c, DL_IDLE, c->idle_since + c->idle_ms * 1000000ull);
	}
}

void fastopen(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct conn *c;

	if (shim_busy || atomic_load(&shim_disabled) || fdt_get(fd) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return;
	bool rejected;

	shim_busy = 1;
	c = guard(fd, sa, len, &rejected, NULL);
	if (c) {
		/* the outcome comes with the first I/O or SO_ERROR */
		atomic_fetch_or(&c->watch, W_CONNECTING);
		if (c->connect_ms)
			timer_arm(c, DL_CONNECT,
				  clock_ns() + c->connect_ms * 1000000ull);
		connected(fd, c);
	}
	shim_busy = 0;
}

/* One connect attempt of fd, within connect_timeout when set, waited for
 * even on a non-blocking socket when wait is set; 0 or -1 with errno. */
static int connect_once(int fd, struct conn *c, const struct sockaddr *sa,
			socklen_t len, bool wait)
{
	uint64_t now = c->connect_ns, deadline, prog;
	/* the flags as guard() read them (or F_SETFL set them, or a fresh
	 * socket has them), O_NONBLOCK as the program left it */
	int fl = (c->fl & ~O_NONBLOCK) |
		 (atomic_load(&c->nonblock) ? O_NONBLOCK : 0),
	    r, e;

	if (!c->connect_ms && !wait)
		return real.connect(fd, sa, len);
	/* a retry on a non-blocking socket waits too: 10 s at most */
	deadline = now + (c->connect_ms ? c->connect_ms : 10000) * 1000000ull;
	prog = c->sndtimeo_ms && !wait ? now + c->sndtimeo_ms * 1000000ull : 0;
	real.fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	r = real.connect(fd, sa, len);
	if (r < 0 && errno == EINPROGRESS)
		r = connect_wait(fd, c, sa, len, deadline, prog);
	e = errno;
	real.fcntl(fd, F_SETFL, fl);
	errno = e;
	return r;
}

/* True when retry_on names the failure e. */
static bool retryable(int e, uint32_t on)
{
	switch (e) {
	case ECONNREFUSED:
		return on & POLICY_RETRY_REFUSED;
	case ETIMEDOUT:
		return on & POLICY_RETRY_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return on & POLICY_RETRY_UNREACHABLE;
	case ECONNRESET:
		return on & POLICY_RETRY_RESET;
	default:
		return false;
	}
}

/* Socket options a retry carries over to the fresh socket (not buffer
 * sizes or the MSS: setting those would stop the kernel tuning them). */
static const struct {
	int level, name;
} carried[] = {
    {SOL_SOCKET, SO_KEEPALIVE},	 {SOL_SOCKET, SO_LINGER},
    {SOL_SOCKET, SO_SNDTIMEO},	 {SOL_SOCKET, SO_RCVTIMEO},
    {SOL_SOCKET, SO_REUSEADDR},	 {SOL_SOCKET, SO_PRIORITY},
    {SOL_SOCKET, SO_OOBINLINE},	 {IPPROTO_TCP, TCP_NODELAY},
    {IPPROTO_TCP, TCP_KEEPIDLE}, {IPPROTO_TCP, TCP_KEEPINTVL},
    {IPPROTO_TCP, TCP_KEEPCNT},	 {IPPROTO_TCP, TCP_USER_TIMEOUT},
    {IPPROTO_IP, IP_TOS},	 {IPPROTO_IP, IP_TTL},
    {IPPROTO_IPV6, IPV6_V6ONLY}, {IPPROTO_IPV6, IPV6_TCLASS},
};

static void epoll_again(int fd, struct conn *c, uint64_t old_ino);

/* Puts a fresh socket at the program's fd number (Linux will not connect
 * a TCP socket again after a failed attempt), with the options and the
 * close-on-exec flag of the old one; 0 or -1. */
static int fresh_socket(int fd, struct conn *c, int family)
{
	int fdfl = real.fcntl(fd, F_GETFD), fl = real.fcntl(fd, F_GETFL), nfd;
	int v[8];
	struct stat st;
	uint64_t old_ino;

	nfd = real.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (nfd < 0)
		return -1;
	if (fl >= 0) {
		real.fcntl(nfd, F_SETFL,
			   fl); /* O_NONBLOCK as the program set */
		c->fl = fl;
	}
	for (size_t i = 0; i < sizeof carried / sizeof carried[0]; i++) {
		socklen_t l = sizeof v;
		if (real.getsockopt(fd, carried[i].level, carried[i].name, v,
				    &l) == 0)
			real.setsockopt(nfd, carried[i].level, carried[i].name,
					v, l);
	}
	if (real.dup3(nfd, fd,
		      fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		real.close(nfd);
		return -1;
	}
	real.close(nfd);
	old_ino = c->ino;
	if (fstat(fd, &st) == 0)
		c->ino = (uint64_t)st.st_ino;
	c->swapped = 1;
	epoll_again(fd, c, old_ino);
	return 0;
}

int connect_again(int fd, struct conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	int r, saved = errno;

	if (!c->peerlen || fresh_socket(fd, c, sa->sa_family) < 0) {
		errno = saved;
		return -1;
	}
	/* the same connection to the rule's limits: nothing admitted */
	r = connect_once(fd, c, sa, c->peerlen, true);
	if (r < 0)
		shim_log(POLICY_LOG_INFO, "fd %d: connecting again failed: %s",
			 fd, strerror(errno));
	errno = saved;
	return r;
}

/* Sleeps a backoff: full jitter, uniform in [0, min(max, base * 2^n)]. */
static void backoff(const struct conn *c, unsigned n)
{
	uint64_t cap = (uint64_t)c->retry_backoff_ms << (n < 20 ? n : 20);
	uint64_t us;
	struct timespec ts;

	if (cap > c->retry_backoff_max_ms)
		cap = c->retry_backoff_max_ms;
	us = cap ? shim_random() % (cap * 1000 + 1) : 0;
	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* With failover on, moves c to the next address resolved for the same
 * name that its rule guards and whose breaker lets calls through. */
static void failover_next(struct conn *c)
{
	struct sockaddr_in6 alt;
	struct conn t;
	socklen_t altlen;
	int f, busy = shim_busy;

	if (!c->failover)
		return;
	shim_busy = 1; /* a signal handler's connect passes through */
	f = failover_pick((const struct sockaddr *)&c->peer, c->rule, false, &t,
			  &alt, &altlen);
	shim_busy = busy;
	if (f <= 0)
		return;
	log_failover((const struct sockaddr *)&c->peer,
		     (const struct sockaddr *)&alt, "retry");
	memcpy(&c->peer, &alt, altlen);
	c->peerlen = altlen;
	c->saddr = t.saddr; /* same rule: the same settings */
}

/* Retries after the attempt-th attempt failed with e: each retry is a
 * call, made on a fresh socket after a backoff, to c->peer or, with
 * failover, another address of its name, while retries and the rule's
 * retry budget last; 0 when one connected, else -1 with errno. */
static int retry_after(int fd, struct conn *c, int e, unsigned attempt)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;

	for (;; attempt++) {
		int r;

		if (attempt >= c->retries || !retryable(e, c->retry_on) ||
		    !calls_retry_ok(c)) {
			errno = e;
			return -1;
		}
		backoff(c, attempt);
		failover_next(c);
		if (fresh_socket(fd, c, sa->sa_family) < 0) {
			errno = e;
			return -1;
		}
		/* admitted like a connect, but no first attempt */
		c->retrying = 1;
		c->connect_ns = clock_ns();
		r = calls_admit(c);
		c->retrying = 0;
		if (r < 0)
			return -1; /* errno: the rule's reject_errno */
		atomic_store(&c->call, CALL_CONNECTING);
		r = connect_once(fd, c, sa, c->peerlen, true);
		e = errno;
		calls_connected(fd, c, r == 0 ? 0 : e, clock_ns());
		if (r == 0)
			return 0;
	}
}

/* A blocking connect with connect_timeout and retries. */
static int connect_blocking(int fd, struct conn *c, const struct sockaddr *sa,
			    socklen_t len, int saved)
{
	int r = connect_once(fd, c, sa, len, false), e = errno;

	if (r < 0 && (e == EINTR || e == EINPROGRESS)) {
		errno = e; /* goes on in the background */
		return -1;
	}
	calls_connected(fd, c, r == 0 ? 0 : e, clock_ns());
	if (r < 0 && retry_after(fd, c, e, 0) < 0)
		return -1;
	connected(fd, c);
	errno = saved;
	return 0;
}

/* A non-blocking connect of c failed with e, as getsockopt(SO_ERROR) is
 * about to tell the program: retries it there (the calling thread waits
 * for the backoff and the attempt) and returns the new SO_ERROR. */
static int retry_nonblocking(int fd, struct conn *c, int e)
{
	int saved = errno;

	if (!c->retries || !c->peerlen)
		return e;
	if (retry_after(fd, c, e, 0) == 0) {
		connected(fd, c);
		e = 0;
	} else {
		e = errno;
	}
	errno = saved;
	return e;
}

/* A connect fusebox refused (errno e) on a non-blocking socket, the way
 * the kernel reports a refusal there: EINPROGRESS now; the socket polls
 * ready at once (readable and writable, shut both ways: shutdown() of an
 * unconnected socket fails but marks it so and wakes the pollers); e
 * comes from getsockopt(SO_ERROR), or the next connect or I/O, once.  No
 * SYN leaves.  Without a slot to hold e, it fails at once instead. */
static int refuse_nonblocking(int fd, int e)
{
	struct conn *c = fdt_slot(fd);
	struct stat st;

	if (!c || fstat(fd, &st) < 0) {
		errno = e;
		return -1;
	}
	conn_lock(c);
	atomic_store(&c->live, 0);
	c->ino = (uint64_t)st.st_ino;
	c->active = c->probe = 0;
	CONN_SET(c->saddr, -1); /* no call: nothing to count at close */
	c->connect_timed_out = 0;
	atomic_store(&c->call, CALL_NONE);
	atomic_store(&c->nonblock, true);
	atomic_store(&c->awaiting, false);
	for (int d = 0; d < DL_COUNT; d++)
		atomic_store(&c->dl[d], 0);
	atomic_store(&c->abort_errno, e);
	atomic_store(&c->watch, W_ABORTED);
	atomic_store_explicit(&c->live, 1, memory_order_release);
	conn_unlock(c);
	shutdown(fd, SHUT_RDWR);
	errno = EINPROGRESS;
	return -1;
}

/* True when fd (of kind k) is in non-blocking mode. */
static bool nonblocking_fd(int fd, uint8_t k)
{
	int fl;

	if (k & FDK_TCP)
		return k & FDK_NONBLOCK;
	fl = real.fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct conn *c;
	bool rejected, moved = false;
	int r, e, saved = errno;

	if (shim_busy || !sa || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    atomic_load_explicit(&shim_disabled, memory_order_relaxed))
		return real.connect(fd, sa, len);
	c = fdt_get(fd);
	if (c && aborted(c) && !stale(fd, c))
		return (int)deliver(c);
	c = fdt_get(fd);
	if (c && (atomic_load(&c->watch) & W_CONNECTING)) {
		/* the program polls a non-blocking connect by calling it
		 * again: EALREADY, EISCONN, or the outcome */
		r = real.connect(fd, sa, len);
		e = errno;
		if (r == 0 || e == EISCONN)
			connected_now(fd, c, 0);
		else if (connect_error(e))
			connected_now(fd, c, e);
		errno = e;
		return r;
	}
	if (c)
		calls_close(fd, c); /* a new connect on a used socket */
	shim_busy = 1;
	c = guard(fd, sa, len, &rejected, &moved);
	shim_busy = 0;
	if (rejected) {
		e = errno; /* the rule's reject_errno */
		if (nonblocking_fd(fd, fdt_kind(fd)))
			return refuse_nonblocking(fd, e);
		errno = e;
		return -1;
	}
	errno = saved;
	if (!c)
		return real.connect(fd, sa, len);
	if (moved) {
		/* failover: the connect goes to the address guard() chose */
		sa = (const struct sockaddr *)&c->peer;
		len = c->peerlen;
	} else {
		/* sizes known at compile time: no call to memcpy */
		if (sa->sa_family == AF_INET) {
			memcpy(&c->peer, sa, sizeof(struct sockaddr_in));
			c->peerlen = sizeof(struct sockaddr_in);
		} else {
			memcpy(&c->peer, sa, sizeof(struct sockaddr_in6));
			c->peerlen = sizeof(struct sockaddr_in6);
		}
	}
	c->swapped = 0;
	c->connect_timed_out = 0;
	if (!atomic_load(&c->nonblock) && (c->connect_ms || c->retries))
		return connect_blocking(fd, c, sa, len, saved);
	r = real.connect(fd, sa, len);
	e = errno;
	if (r < 0 && (e == EINPROGRESS || e == EINTR)) {
		atomic_fetch_or(&c->watch, W_CONNECTING);
		if (c->connect_ms)
			timer_arm(c, DL_CONNECT,
				  clock_ns() + c->connect_ms * 1000000ull);
	} else {
		calls_connected(fd, c, r == 0 ? 0 : e, clock_ns());
	}
	if (r == 0 || e == EINPROGRESS)
		connected(fd, c);
	errno = r == 0 ? saved : e;
	return r;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct conn *c;

	c = fdt_get(fd);
	if (c && level == SOL_SOCKET && name == SO_ERROR && val && len &&
	    *len >= sizeof(int) && aborted(c) && !stale(fd, c)) {
		int e = atomic_exchange(&c->abort_errno, -1);
		if (e > 0) {
			atomic_fetch_and(&c->watch, ~W_ABORTED);
			if (c->connect_timed_out) {
				/* our connect_timeout: retryable too */
				c->connect_timed_out = 0;
				e = retry_nonblocking(fd, c, e);
			}
			memcpy(val, &e, sizeof e);
			*len = sizeof(int);
			return 0;
		}
	}
	if (c && level == SOL_SOCKET && name == SO_ERROR &&
	    (atomic_load(&c->watch) & W_CONNECTING)) {
		int r = real.getsockopt(fd, level, name, val, len),
		    saved = errno;
		struct sockaddr_storage peer;
		socklen_t pl = sizeof peer;
		int v = 0;

		if (r == 0 && val && len && *len >= sizeof(int)) {
			memcpy(&v, val, sizeof v);
			/* 0 means connected only once the peer is known */
			if (v && connect_error(v)) {
				connected_now(fd, c, v);
				v = retry_nonblocking(fd, c, v);
				memcpy(val, &v, sizeof v);
			} else if (!v &&
				   getpeername(fd, (struct sockaddr *)&peer,
					       &pl) == 0)
				connected_now(fd, c, 0);
		}
		errno = saved;
		return r;
	}
	return real.getsockopt(fd, level, name, val, len);
}

/* A failed non-blocking connect shows in poll() as POLLERR, which some
 * programs (curl) take as the end before they ask SO_ERROR: retry it here
 * and report the retried socket's readiness instead. */
static __attribute__((noinline)) void poll_retry(struct pollfd *p)
{
	struct conn *c = fdt_get(p->fd);
	socklen_t l = sizeof(int);
	int v = 0, saved = errno;

	if (!c || !(atomic_load(&c->watch) & W_CONNECTING) || !c->retries ||
	    real.getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &v, &l) < 0 ||
	    !connect_error(v))
		goto out;
	connected_now(p->fd, c, v);
	v = retry_nonblocking(p->fd, c, v);
	if (v == 0) {
		p->revents = (short)(p->events & (POLLOUT | POLLWRNORM));
	} else {
		/* the retries consumed SO_ERROR: tell the program once */
		atomic_store(&c->abort_errno, v);
		atomic_fetch_or(&c->watch, W_ABORTED);
	}
out:
	errno = saved;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int r = real.poll(fds, n, timeout);

	if (r > 0 && atomic_load_explicit(&fdt_max, memory_order_relaxed) >= 0)
		for (nfds_t i = 0; i < n; i++)
			if (UNLIKELY(fds[i].revents & (POLLERR | POLLHUP)) &&
			    fdt_get(fds[i].fd))
				poll_retry(&fds[i]);
	return r;
}

/* The epoll sets a guarded fd is in, with what it asked of each: a fresh
 * socket put at the fd (a retry, a stale connection, a replay) goes into
 * them too, since the kernel drops the old socket from them as it
 * closes.  Beside the slot (FDT_SIDE_EPOLL); a fd in more sets is never
 * swapped (POLLED_NO_SWAP). */
#define EPOLL_SETS 4

struct epolled {
	uint64_t ino; /* the socket the sets hold */
	int n;
	struct {
		int epfd;
		struct epoll_event ev;
	} set[EPOLL_SETS];
};

/* Notes what the epoll_ctl(op) that succeeded did to the sets of fd. */
static void epoll_note(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct conn *c = fdt_get(fd);
	struct epolled **slot, *e;
	int i;

	if (!c)
		return;
	slot = (struct epolled **)fdt_side(FDT_SIDE_EPOLL, fd,
					   op == EPOLL_CTL_ADD);
	if (!slot)
		return;
	e = *slot;
	if (e && e->ino != c->ino) /* another socket's: forgotten */
		e->n = 0;
	if (!e) {
		if (op != EPOLL_CTL_ADD || !(e = calloc(1, sizeof *e))) {
			c->polled |= POLLED_NO_SWAP;
			return;
		}
		*slot = e;
	}
	e->ino = c->ino;
	for (i = 0; i < e->n && e->set[i].epfd != epfd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < e->n)
			e->set[i] = e->set[--e->n];
		return;
	}
	if (i == e->n) {
		if (e->n == EPOLL_SETS) {
			c->polled |= POLLED_NO_SWAP;
			return;
		}
		e->n++;
	}
	e->set[i].epfd = epfd;
	if (ev)
		e->set[i].ev = *ev;
}

/* After a fresh socket took fd: into the sets the old one was in. */
static void epoll_again(int fd, struct conn *c, uint64_t old_ino)
{
	struct epolled **slot =
	    (struct epolled **)fdt_side(FDT_SIDE_EPOLL, fd, false);
	struct epolled *e = slot ? *slot : NULL;
	int saved = errno;

	if (!e || e->ino != old_ino)
		return;
	e->ino = c->ino;
	for (int i = 0; i < e->n; i++)
		real.epoll_ctl(e->set[i].epfd, EPOLL_CTL_ADD, fd,
			       &e->set[i].ev);
	errno = saved;
}

void connect_forget(int fd)
{
	struct epolled **slot =
	    (struct epolled **)fdt_side(FDT_SIDE_EPOLL, fd, false);

	if (LIKELY(!slot) || !*slot)
		return;
	free(*slot);
	*slot = NULL;
}

/* epoll_ctl: what a guarded fd asks is noted (epoll_note()).  After a
 * fresh socket took fd, a change of the old registration becomes an add
 * and a removal of what is gone succeeds. */
EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct conn *c;
	int r = real.epoll_ctl(epfd, op, fd, ev), saved = errno;

	if (LIKELY(!(c = fdt_get(fd))))
		return r;
	if (r < 0 && saved == ENOENT && c->swapped) {
		if (op == EPOLL_CTL_MOD)
			r = real.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev);
		else if (op == EPOLL_CTL_DEL)
			r = 0;
		saved = errno;
	}
	if (r == 0)
		epoll_note(epfd, op, fd, ev);
	errno = saved;
	return r;
}
