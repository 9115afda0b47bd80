/* SPDX-License-Identifier: MIT */
/* Calls, counters and breakers.  A call is a connect and the first
 * exchange on it, or each later exchange (a send, then the wait for the
 * first reply byte); its end feeds the counters and the breaker of its
 * address (or rule) in the shared segment.  Bytes are summed in the
 * connection and added to the segment once per call, so no shared cache
 * line bounces on every send and receive. */
#include "shim.h"
#include "segment/shared.h"

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Milliseconds of the monotonic clock, for breakers (one clock for all
 * processes of the host). */
static uint64_t ms_of(uint64_t ns)
{
	return ns / 1000000u;
}

/* The breaker of a destination (its rule's scope, segment rule and
 * address) and the lock that guards it, or NULL. */
static struct breaker *breaker_at(uint8_t scope, int32_t srule, int32_t sa,
				  pthread_mutex_t **lock)
{
	struct seg *s = &shim_seg;

	if (sa < 0 || (uint32_t)sa >= s->naddrs || (uint32_t)srule >= s->nrules)
		return NULL;
	if (scope == POLICY_SCOPE_RULE) {
		*lock = &s->rules[srule].lock;
		return &s->rules[srule].breaker;
	}
	*lock = &s->addrs[sa].lock;
	return &s->addrs[sa].breaker;
}

/* The breaker of c and the lock that guards it, or NULL. */
static struct breaker *breaker_of(struct conn *c, pthread_mutex_t **lock)
{
	return breaker_at(c->scope, c->srule, CONN_GET(c->saddr), lock);
}

/* Adds v to counter k of c's address (a rule's figures are the sum of
 * its addresses', added up by the reader). */
static void count(struct conn *c, enum seg_counter k, uint64_t v)
{
	struct seg *s = &shim_seg;
	int32_t sa = CONN_GET(c->saddr);

	if (sa < 0 || (uint32_t)sa >= s->naddrs || !v)
		return;
	atomic_fetch_add_explicit(&s->addrs[sa].counter[k], v,
				  memory_order_relaxed);
}

/* Adds the bytes c moved to the segment. */
static void flush_bytes(struct conn *c)
{
	/* exchanged: a send on another thread adds to what is left; a
	 * connection that moved nothing (most connect+close) costs loads */
	if (CONN_GET(c->out))
		count(c, SEG_BYTES_SENT,
		      __atomic_exchange_n(&c->out, 0, __ATOMIC_RELAXED));
	if (CONN_GET(c->in))
		count(c, SEG_BYTES_RECEIVED,
		      __atomic_exchange_n(&c->in, 0, __ATOMIC_RELAXED));
}

/* True when an outcome cannot change the breaker, so that the common
 * success needs no lock: closed, nothing failed lately, and no window
 * share to keep. */
static bool breaker_unmoved(const struct breaker *b,
			    const struct breaker_config *cfg, int flags,
			    bool probe)
{
	return !flags && !probe && !cfg->failure_rate_ppm &&
	       !cfg->slow_rate_ppm && breaker_current(b) == BREAKER_CLOSED &&
	       breaker_consecutive(b) == 0 && !breaker_forced(b);
}

/* Writes "IP:PORT" of c's address into buf. */
static void addr_text(struct conn *c, char *buf, size_t len)
{
	const struct seg_addr *a = &shim_seg.addrs[CONN_GET(c->saddr)];
	char ip[INET6_ADDRSTRLEN];
	static const uint8_t v4[12] = {0, 0, 0, 0, 0,	 0,
				       0, 0, 0, 0, 0xff, 0xff};

	if (!memcmp(a->addr, v4, 12)) {
		inet_ntop(AF_INET, a->addr + 12, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, a->port);
	} else {
		inet_ntop(AF_INET6, a->addr, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, a->port);
	}
}

/* Logs a breaker transition once, at info. */
static void log_event(struct conn *c, const struct breaker_event *ev,
		      const char *why)
{
	char addr[64];

	if (!ev->changed)
		return;
	if (c->scope == POLICY_SCOPE_RULE)
		snprintf(addr, sizeof addr, "(all addresses)");
	else
		addr_text(c, addr, sizeof addr);
	shim_log(POLICY_LOG_INFO, "breaker %s %s %s\xe2\x86\x92%s: %s%s%s%s",
		 shim_seg.rules[c->srule].name, addr,
		 breaker_state_str(ev->from), breaker_state_str(ev->to),
		 ev->reason, why ? " (" : "", why ? why : "", why ? ")" : "");
}

/* Takes a token from the rule's rate bucket: true when there was one
 * (segment/shared.c: a GCRA word, lock-free). */
static bool rate_take(struct conn *c, uint64_t now)
{
	uint64_t burst = c->rate_burst ? c->rate_burst : c->rate_mps / 1000;

	/* above a million a second the step is 0: no limit to speak of */
	return seg_rate_take(&shim_seg.rules[c->srule].rate_tat_us, now / 1000u,
			     1000000000u / (c->rate_mps ? c->rate_mps : 1),
			     burst);
}

/* Reserves a connection of c's rule: true, or false when the rule is at
 * max_connections (after releasing what dead processes held). */
static bool reserve(struct conn *c)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int h = seg_conn_reserve(&shim_seg, (uint32_t)c->srule,
					 shim_proc, c->max_connections);
		if (h != SEG_HOLDER_NONE) {
			c->active = (uint8_t)h;
			return true;
		}
		/* full: are some of these held by the dead? */
		if (!state_reap((uint32_t)c->srule))
			break;
	}
	return false;
}

/* Gives back the connection c reserved, once, even when two threads
 * release it at the same time, and wakes the line if anyone waits. */
static void release(struct conn *c)
{
	uint8_t held = __atomic_exchange_n(&c->active, 0, __ATOMIC_ACQ_REL);

	if (held && (uint32_t)c->srule < shim_seg.nrules) {
		seg_conn_release(&shim_seg, (uint32_t)c->srule, shim_proc,
				 held);
		if (seg_line_busy(&shim_seg, (uint32_t)c->srule))
			seg_line_wake(&shim_seg, (uint32_t)c->srule);
	}
}

/* How often a waiter looks whether those ahead of it, and those that
 * hold connections, still live. */
#define QUEUE_RECHECK_NS 250000000u

/* How long an arrival that finds every place in line taken, while
 * connections are free, waits for those in line to move into them. */
#define QUEUE_MOVE_NS 10000000u

/* True at most once per QUEUE_RECHECK_NS for rule r, all processes
 * together: an arrival that finds the line full may sweep it then. */
static bool sweep_due(struct seg_rule *r, uint64_t now)
{
	uint64_t ms = now / 1000000u, last = atomic_load(&r->q_swept_ms);

	return (ms >= last + QUEUE_RECHECK_NS / 1000000u || ms < last) &&
	       atomic_compare_exchange_strong(&r->q_swept_ms, &last, ms);
}

/* Connections of c's rule free now (0 when full). */
static uint32_t free_now(struct conn *c)
{
	int32_t n = seg_conn_count(&shim_seg, (uint32_t)c->srule);

	return n < (int32_t)c->max_connections
		   ? c->max_connections - (uint32_t)n
		   : 0;
}

/* How many times an arrival looks again at a full line when connections
 * were taken or given back while it looked. */
#define QUEUE_LOOKS 4

/* Takes a place in line for c before deadline; false when the line is
 * full.  Full means every place taken while every connection stayed
 * taken: a full line while connections are free is a line about to move,
 * to wait for, and one seen while connections changed hands is looked at
 * again.  again: c had a place, left it to take a connection and lost
 * that to another; it takes a place with the ticket it had, waiting for
 * one if need be. */
static bool queue_enter(struct conn *c, uint64_t deadline, struct seg_place *me,
			bool again)
{
	uint32_t ri = (uint32_t)c->srule;
	struct seg_rule *r = &shim_seg.rules[ri];

	for (int looks = 0;;) {
		uint32_t seq = atomic_load(&r->q_wake);
		uint64_t now = clock_ns(), seen = seg_conn_seen(&shim_seg, ri);
		bool sweep = sweep_due(r, now);
		int e = again ? seg_line_again(&shim_seg, ri, c->max_pending,
					       sweep, state_gone, me)
			      : seg_line_enter(&shim_seg, ri, shim_proc,
					       c->max_pending, sweep,
					       state_gone, me);

		if (e != -EAGAIN)
			return e == 0;
		if (now >= deadline)
			return false;
		if (!again && !free_now(c)) {
			if (seg_conn_seen(&shim_seg, ri) == seen ||
			    ++looks > QUEUE_LOOKS)
				return false;
			continue;
		}
		seg_line_sleep(&shim_seg, ri, seq,
			       deadline - now < QUEUE_MOVE_NS ? deadline - now
							      : QUEUE_MOVE_NS);
	}
}

/* Waits in line, up to queue_timeout, for a connection of c's rule;
 * true when c got one.  Waiters are served in the order they came: one
 * may take a connection while fewer live waiters came before it than
 * there are connections free.  It leaves its place before it takes the
 * connection: nobody holds both, so that max_pending places hold every
 * waiter of max_connections + max_pending callers.  They sleep on a
 * futex between releases (segment/shared.c). */
static bool queue_wait(struct conn *c)
{
	uint32_t ri = (uint32_t)c->srule;
	struct seg_rule *r = &shim_seg.rules[ri];
	uint64_t now = clock_ns(), check = now + QUEUE_RECHECK_NS;
	uint64_t deadline = now + (uint64_t)c->queue_timeout_ms * 1000000u;
	struct seg_place me;

	if (!queue_enter(c, deadline, &me, false))
		return false;
	for (;;) {
		uint32_t seq = atomic_load(&r->q_wake), room = free_now(c);

		/* a holder that exits without closing (or is killed), or a
		 * waiter killed in line, wakes nobody: look at least every
		 * QUEUE_RECHECK_NS whether those ahead still live, and (the
		 * first) what the dead hold */
		if (now >= check) {
			check = now + QUEUE_RECHECK_NS;
			if (sweep_due(r, now))
				seg_line_sweep(&shim_seg, ri, state_gone);
			if (!room && !seg_line_ahead(&shim_seg, ri, &me, 1) &&
			    state_reap(ri))
				room = free_now(c);
		}
		if (room && seg_line_ahead(&shim_seg, ri, &me, room) < room) {
			seg_line_leave(&shim_seg, ri, &me);
			if (reserve(c)) {
				/* those behind look again: one fewer ahead,
				 * one connection fewer free */
				seg_line_wake(&shim_seg, ri);
				return true;
			}
			/* another took it under our nose */
			if (!queue_enter(c, deadline, &me, true))
				return false;
		}
		now = clock_ns();
		if (now >= deadline)
			break;
		if (now < check)
			seg_line_sleep(&shim_seg, ri, seq,
				       (deadline < check ? deadline : check) -
					   now);
		now = clock_ns();
	}
	seg_line_leave(&shim_seg, ri, &me);
	seg_line_wake(&shim_seg, ri);
	return false;
}

/* The process exits by exit() (not _exit, not a signal): adds the bytes
 * of the connections it never closed (redis-cli, for one, never does).
 * Their slots under max_connections stay taken until the kernel has
 * closed them: a full rule, or a waiter, reaps them once the process is
 * gone, so the limit is never exceeded, even for a moment. */
static void exit_flush(void)
{
	int max = atomic_load(&fdt_max);

	if (!shim_seg.base || atomic_load(&shim_disabled))
		return;

	for (int fd = 0; fd <= max; fd++) {
		struct conn *c = fdt_get(fd);

		if (c)
			flush_bytes(c);
	}
}

/* Gives back what calls_admit() took for c, when the connect will not
 * be made after all. */
void calls_unadmit(struct conn *c)
{
	release(c);
}

/* The current second of the budget's clock. */
static uint64_t budget_now(void)
{
	return clock_coarse_ns() / 1000000000u;
}

/* Counts a first attempt (a connect the program asked for) of c's rule,
 * the base of its retry budget. */
static void budget_first(struct conn *c, uint64_t now)
{
	if (c->retries)
		seg_budget_first(&shim_seg.rules[c->srule], now / 1000000000u);
}

/* Asks the retry budget of c's rule for one retry (segment/shared.c). */
bool calls_retry_ok(struct conn *c)
{
	bool ok;

	if ((uint32_t)c->srule >= shim_seg.nrules)
		return true;
	ok = seg_budget_retry(&shim_seg.rules[c->srule], budget_now(),
			      c->retry_budget_ppm, c->retry_budget_min_mps);
	count(c, ok ? SEG_RETRIES : SEG_REJECTED_BUDGET, 1);
	return ok;
}

/* True with probability ppm / 1,000,000. */
static bool chance(uint32_t ppm)
{
	return ppm && shim_random() % POLICY_PPM < ppm;
}

/* Sleeps ms milliseconds, through signals. */
static void delay(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};
	int saved = errno;

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	errno = saved;
}

/* Whether the breaker of c would let a call through now, by a look
 * without its lock: failover only prefers, admission decides. */
bool calls_healthy(struct conn *c)
{
	pthread_mutex_t *lock;
	struct breaker *b;
	int forced;

	if ((uint32_t)c->srule >= shim_seg.nrules)
		return true;
	forced = atomic_load_explicit(&shim_seg.rules[c->srule].forced,
				      memory_order_relaxed);
	if (forced != BREAKER_FORCE_NONE)
		return forced != BREAKER_FORCE_OPEN;
	b = breaker_of(c, &lock);
	if (!b || breaker_forced(b) == BREAKER_FORCE_CLOSED)
		return true;
	if (breaker_forced(b) == BREAKER_FORCE_OPEN)
		return false;
	if (c->bcfg.mode != BREAKER_MODE_ON)
		return true; /* off, or dry-run: never rejects */
	return breaker_current(b) != BREAKER_OPEN ||
	       ms_of(clock_ns()) >= breaker_until_ms(b);
}

bool calls_shut(const struct conn_cfg *cfg, int32_t srule, int32_t saddr,
		uint64_t now)
{
	pthread_mutex_t *lock;
	struct breaker *b;
	int forced;

	if ((uint32_t)srule >= shim_seg.nrules)
		return false;
	/* a rule forced by the operator wins, counted or not */
	forced = atomic_load_explicit(&shim_seg.rules[srule].forced,
				      memory_order_relaxed);
	if (forced != BREAKER_FORCE_NONE)
		return forced == BREAKER_FORCE_OPEN;
	/* open and inside its period: a refusal, read without the lock */
	b = breaker_at(cfg->scope, srule, saddr, &lock);
	return b && breaker_shut(b, &cfg->bcfg, ms_of(now));
}

int calls_refuse(const struct conn_cfg *cfg, int32_t srule, int32_t saddr,
		 uint64_t now)
{
	if (cfg->retries)
		seg_budget_first(&shim_seg.rules[srule], now / 1000000000u);
	if (saddr >= 0 && (uint32_t)saddr < shim_seg.naddrs)
		atomic_fetch_add_explicit(
		    &shim_seg.addrs[saddr].counter[SEG_REJECTED_BREAKER], 1,
		    memory_order_relaxed);
	errno = cfg->reject_errno;
	return -1;
}

/* Asks the breaker, the rate limit and fault injection. */
int calls_admit(struct conn *c)
{
	struct breaker_event ev;
	pthread_mutex_t *lock;
	struct breaker *b;
	int verdict, forced;
	/* one clock for all of admission, the connect's start if set */
	uint64_t now = c->connect_ns ? c->connect_ns : clock_ns();
	bool looked = c->looked; /* guard() found the breaker not shut */

	c->looked = 0; /* a retry looks again */
	c->probe = 0;
	c->rejected = 0;
	if ((uint32_t)c->srule >= shim_seg.nrules)
		goto chaos;
	if (!c->retrying)
		budget_first(c, now);
	if (!looked && calls_shut(&c->cfg, c->srule, CONN_GET(c->saddr), now)) {
		count(c, SEG_REJECTED_BREAKER, 1);
		c->rejected = REJECT_BREAKER;
		goto reject;
	}
	forced = atomic_load_explicit(&shim_seg.rules[c->srule].forced,
				      memory_order_relaxed);
	b = forced == BREAKER_FORCE_CLOSED ? NULL : breaker_of(c, &lock);
	if (b && (c->bcfg.mode != BREAKER_MODE_OFF || breaker_forced(b)) &&
	    !breaker_quiet(b) && seg_lock(lock) == 0) {
		memset(&ev, 0, sizeof ev);
		verdict = breaker_allow(b, &c->bcfg, ms_of(now), &ev);
		seg_unlock(lock);
		log_event(c, &ev, NULL);
		if (verdict == BREAKER_REJECT) {
			count(c, SEG_REJECTED_BREAKER, 1);
			c->rejected = REJECT_BREAKER;
			goto reject;
		}
		if (verdict == BREAKER_PROBE)
			c->probe = 1;
	}
	/* a half-open probe always goes out: it alone can close the
	 * breaker, so neither the rate limit nor chaos may eat it */
	if (!c->probe && c->rate_mps && !rate_take(c, now)) {
		count(c, SEG_REJECTED_RATE, 1);
		goto reject;
	}
	/* a slot now, unless others wait for one: then in line */
	if (!((!c->max_pending ||
	       !seg_line_busy(&shim_seg, (uint32_t)c->srule)) &&
	      reserve(c)) &&
	    !(c->max_connections && c->max_pending && queue_wait(c))) {
		count(c, SEG_REJECTED_LIMIT, 1);
		goto reject;
	}
chaos:
	/* fault injection: the program's own handling is what is tested */
	if (!c->probe && chance(c->fault_abort_ppm)) {
		release(c);
		goto reject;
	}
	if (c->fault_delay_ms && chance(c->fault_delay_ppm))
		delay(c->fault_delay_ms);
	return 0;
reject:
	errno = c->reject_errno;
	return -1;
}

/* The counter that names how a connect failed, or -1 when the failure is
 * the program's own (EINVAL, EADDRNOTAVAIL ...) and no call at all. */
static int connect_counter(int err, bool *is_failure)
{
	*is_failure = true;
	switch (err) {
	case ECONNREFUSED:
		return SEG_CONNECT_REFUSED;
	case ETIMEDOUT:
		return SEG_CONNECT_TIMEOUTS;
	case ECONNRESET:
	case ECONNABORTED:
		return SEG_RESETS;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return -1;
	default:
		*is_failure = false;
		return -1;
	}
}

/* A connect of c ended: err 0 connected, else how it failed. */
void calls_connected(int fd, struct conn *c, int err, uint64_t now)
{
	uint8_t expect = CALL_CONNECTING;
	uint64_t dur = now - c->connect_ns;
	bool failure;
	int k;

	/* written before c->call says connected: whoever ends the call
	 * reads them after it */
	if (atomic_load(&c->call) != CALL_CONNECTING)
		return; /* someone else ended it */
	CONN_SET(c->connect_dur_ns, dur);
	CONN_SET(c->wait_ns, 0);
	if (!atomic_compare_exchange_strong(&c->call, &expect,
					    err ? CALL_NONE : CALL_CONNECTED))
		return; /* someone else ended it */
	if (!err) {
		int32_t sa = CONN_GET(c->saddr);

		if (sa >= 0 && (uint32_t)sa < shim_seg.naddrs)
			seg_hist_add(&shim_seg.addrs[sa].connect_us,
				     dur / 1000);
		return;
	}
	release(c); /* a failed connect holds no connection */
	k = connect_counter(err, &failure);
	if (!failure && !CONN_GET(c->probe))
		return;
	/* a failed connect is a whole call */
	atomic_store(&c->call, CALL_WAITING);
	calls_end(fd, c, false, k, now);
}

/* How a call failed, in words for the log. */
static const char *failure_words(int counter, bool ok)
{
	switch (counter) {
	case SEG_CONNECT_REFUSED:
		return "connection refused";
	case SEG_CONNECT_TIMEOUTS:
		return "connect timed out";
	case SEG_RESPONSE_TIMEOUTS:
		return "response timed out";
	case SEG_RESETS:
		return "connection reset or closed";
	case SEG_HTTP_5XX:
		return "HTTP 5xx";
	case SEG_TLS_FAILURES:
		return "TLS handshake failed";
	case SEG_GRPC_FAILURES:
		return "gRPC status of grpc_fail_on";
	default:
		return ok ? NULL : "failed";
	}
}

/* The breaker's part of a call's end (flags BREAKER_*): under its lock
 * unless the outcome cannot move it. */
static __attribute__((noinline)) void record_breaker(struct conn *c, bool ok,
						     int counter, int flags,
						     uint64_t now)
{
	struct breaker_event ev;
	pthread_mutex_t *lock;
	struct breaker *b;
	uint8_t probe = CONN_GET(c->probe);

	if (c->bcfg.mode == BREAKER_MODE_OFF && !probe)
		goto out;
	/* while the operator forces the rule, its breakers stand still */
	if ((uint32_t)c->srule < shim_seg.nrules &&
	    atomic_load_explicit(&shim_seg.rules[c->srule].forced,
				 memory_order_relaxed))
		goto out;
	b = breaker_of(c, &lock);
	if (!b || breaker_unmoved(b, &c->bcfg, flags, probe))
		goto out;
	if (seg_lock(lock) < 0)
		goto out;
	memset(&ev, 0, sizeof ev);
	if (!now)
		now = clock_ns();
	breaker_record(b, &c->bcfg, ms_of(now), flags, probe, shim_random(),
		       &ev);
	seg_unlock(lock);
	log_event(c, &ev, failure_words(counter, ok));
out:
	CONN_SET(c->probe, 0);
}

/* Counts one call of c that ended (ok, counter as calls_end()) after
 * waiting wait ns for its reply: counters, latency, its breaker. */
static void record(struct conn *c, bool ok, int counter, uint64_t wait,
		   uint64_t now)
{
	uint64_t dur;
	int flags = 0;

	if (CONN_GET(c->saddr) < 0)
		return;
	dur = __atomic_exchange_n(&c->connect_dur_ns, 0, __ATOMIC_RELAXED);
	count(c, SEG_CALLS, 1);
	count(c, ok ? SEG_SUCCESSES : SEG_FAILURES, 1);
	if (counter >= 0)
		count(c, (enum seg_counter)counter, 1);
	if (CONN_GET(c->out) + CONN_GET(c->in) >= 65536)
		flush_bytes(c); /* else at close */
	if (ok && wait)
		seg_hist_add(&shim_seg.addrs[CONN_GET(c->saddr)].first_byte_us,
			     wait / 1000);
	if (!ok)
		flags |= BREAKER_FAILURE;
	if (c->bcfg.slow_ms && (dur / 1000000 > c->bcfg.slow_ms ||
				wait / 1000000 > c->bcfg.slow_ms)) {
		flags |= BREAKER_SLOW;
		count(c, SEG_SLOW_CALLS, 1);
	}
	record_breaker(c, ok, counter, flags, now);
}

void calls_end(int fd, struct conn *c, bool ok, int counter, uint64_t now)
{
	uint8_t was = atomic_exchange(&c->call, CALL_NONE);
	uint64_t wait = 0, started;

	(void)fd;
	if (was == CALL_NONE || CONN_GET(c->saddr) < 0)
		return;
	started = CONN_GET(c->wait_ns);
	if (was == CALL_WAITING && started) {
		if (!now)
			now = clock_ns();
		wait = now - started;
	}
	record(c, ok, counter, wait, now);
}

void calls_record(struct conn *c, bool ok, int counter, uint64_t wait,
		  uint64_t now)
{
	record(c, ok, counter, wait, now);
}

void calls_unsending(struct conn *c, uint8_t started)
{
	uint8_t expect = CALL_WAITING;

	if (started)
		atomic_compare_exchange_strong(&c->call, &expect,
					       (uint8_t)(started - 1));
}

void calls_sent(struct conn *c, size_t n)
{
	__atomic_fetch_add(&c->out, n, __ATOMIC_RELAXED);
	calls_sending(c);
}

/* True when buf starts an HTTP/1.x reply with a 5xx status. */
static bool http_5xx(const char *p, ssize_t n)
{
	return n >= 12 && !memcmp(p, "HTTP/1.", 7) && p[8] == ' ' &&
	       p[9] == '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
	       p[11] <= '9';
}

/* The reply of c's call started (n > 0 bytes at buf), or the connection
 * ended before it (n <= 0). */
static inline __attribute__((always_inline)) void replied(int fd,
							  struct conn *c,
							  ssize_t n,
							  const void *buf)
{
	uint8_t state = atomic_load_explicit(&c->call, memory_order_relaxed);

	if (state != CALL_WAITING && state != CALL_CONNECTED)
		return;
	if (n > 0 && state == CALL_CONNECTED)
		return; /* the server spoke first: still the same call */
	if (n > 0) {
		if (c->classify == POLICY_CLASSIFY_HTTP && buf &&
		    http_5xx(buf, n))
			calls_end(fd, c, false, SEG_HTTP_5XX, 0);
		else
			calls_ok(fd, c);
	} else {
		/* end of stream or reset before the first reply byte */
		calls_end(fd, c, false, SEG_RESETS, 0);
	}
}

/* After a receive on c returned n, with its bytes at buf. */
void calls_received(int fd, struct conn *c, ssize_t n, const void *buf)
{
	if (n > 0)
		__atomic_fetch_add(&c->in, (uint64_t)n, __ATOMIC_RELAXED);
	replied(fd, c, n, buf);
}

/* The reply of c's waiting call started and is no failure: the end of
 * most calls.  When c->quick says that nothing but the counters and a
 * closed, quiet breaker can be concerned, that is all it costs: two
 * counters, a latency sample now and then, and three loads of the
 * breaker; anything else goes the way of calls_end(). */
void calls_ok(int fd, struct conn *c)
{
	(void)fd;
	uint8_t was = atomic_exchange(&c->call, CALL_NONE);
	int32_t sa = CONN_GET(c->saddr);
	struct seg_addr *a;
	const struct breaker *b;
	uint64_t started, now = 0, wait = 0;

	if (was == CALL_NONE || sa < 0)
		return;
	started = CONN_GET(c->wait_ns);
	if (started && was == CALL_WAITING) {
		now = clock_ns();
		wait = now - started;
	}
	if (UNLIKELY(!c->quick ||
		     (was != CALL_WAITING && was != CALL_CONNECTED) ||
		     CONN_GET(c->probe))) {
		record(c, true, -1, wait, now);
		return;
	}
	a = &shim_seg.addrs[sa];
	atomic_fetch_add_explicit(&a->counter[SEG_CALLS], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&a->counter[SEG_SUCCESSES], 1,
				  memory_order_relaxed);
	if (wait)
		seg_hist_add(&a->first_byte_us, wait / 1000);
	if (UNLIKELY(CONN_GET(c->out) + CONN_GET(c->in) >= 65536))
		flush_bytes(c);
	if (c->bcfg.mode == BREAKER_MODE_OFF)
		return;
	/* a success moves a breaker that is not closed, counts failures,
	 * or is forced; the rule's own force is record()'s to weigh */
	b = c->scope == POLICY_SCOPE_RULE ? &shim_seg.rules[c->srule].breaker
					  : &a->breaker;
	if (LIKELY(__atomic_load_n(&b->state, __ATOMIC_RELAXED) ==
		       BREAKER_CLOSED &&
		   !__atomic_load_n(&b->consecutive, __ATOMIC_RELAXED) &&
		   __atomic_load_n(&b->forced, __ATOMIC_RELAXED) ==
		       BREAKER_FORCE_NONE))
		return;
	record_breaker(c, true, -1, 0, now);
}

void calls_replied(int fd, struct conn *c, ssize_t n, const void *buf)
{
	replied(fd, c, n, buf);
}

/* The deadline thread found the reply of c's call queued, unread (the
 * first n bytes at buf): ends the call as calls_received() would, but
 * counts no byte (the program reads them later) and no first-byte time
 * (when it arrived is unknown). */
void calls_reply_queued(int fd, struct conn *c, const void *buf, ssize_t n)
{
	bool bad;

	if (atomic_load(&c->call) != CALL_WAITING)
		return;
	bad = c->classify == POLICY_CLASSIFY_HTTP && http_5xx(buf, n);
	CONN_SET(c->wait_ns, 0);
	calls_end(fd, c, !bad, bad ? SEG_HTTP_5XX : -1, 0);
}

/* The program closes the socket of c. */
void calls_close(int fd, struct conn *c)
{
	uint8_t state = atomic_load(&c->call);

	if (CONN_GET(c->saddr) < 0)
		return;
	if (state == CALL_CONNECTED) {
		/* connected and closed without an exchange: it worked */
		calls_ok(fd, c);
	} else if ((state == CALL_WAITING || state == CALL_CONNECTING) &&
		   CONN_GET(c->probe)) {
		/* a probe given up counts as failed: half-open never sticks */
		calls_end(fd, c, false, -1, 0);
	} else {
		atomic_store(&c->call, CALL_NONE);
	}
	flush_bytes(c);
	release(c);
	CONN_SET(c->saddr, -1);
}

/* Forgets fd (close, dup2 target): ends its call and frees its slot,
 * under the slot's lock, so never while the timer ends a call of it. */
void calls_forget(int fd)
{
	struct conn *c = fdt_get(fd);

	if (!c)
		return;
	conn_lock(c);
	calls_close(fd, c);
	fdt_clear(c);
	conn_unlock(c);
}

static const struct life_part part = {.exit = exit_flush};

__attribute__((constructor)) static void calls_ctor(void)
{
	life_join(LIFE_CALLS, &part);
}

void calls_count(struct conn *c, int counter)
{
	count(c, (enum seg_counter)counter, 1);
}
