/* SPDX-License-Identifier: MIT */
/* Calls, counters and breakers.  A call is a connect and the first
 * exchange on it, or each later exchange (a send, then the wait for the
 * first reply byte); its end feeds the counters and the breaker of its
 * address (or rule) in the shared segment.  Bytes are summed in the
 * connection and added to the segment once per call, so no shared cache
 * line bounces on every send and receive. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
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

/* The breaker of c and the lock that guards it, or NULL. */
static struct breaker *breaker_of(struct conn *c, pthread_mutex_t **lock)
{
	struct seg *s = &shim_seg;

	if (c->saddr < 0 || (uint32_t)c->saddr >= s->naddrs ||
	    (uint32_t)c->srule >= s->nrules)
		return NULL;
	if (c->scope == POLICY_SCOPE_RULE) {
		*lock = &s->rules[c->srule].lock;
		return &s->rules[c->srule].breaker;
	}
	*lock = &s->addrs[c->saddr].lock;
	return &s->addrs[c->saddr].breaker;
}

/* Adds v to counter k of c's address (a rule's figures are the sum of
 * its addresses', added up by the reader). */
static void count(struct conn *c, enum seg_counter k, uint64_t v)
{
	struct seg *s = &shim_seg;

	if (c->saddr < 0 || (uint32_t)c->saddr >= s->naddrs || !v)
		return;
	atomic_fetch_add_explicit(&s->addrs[c->saddr].counter[k], v,
				  memory_order_relaxed);
}

/* Adds the bytes c moved to the segment. */
static void flush_bytes(struct conn *c)
{
	count(c, SEG_BYTES_SENT, c->out);
	count(c, SEG_BYTES_RECEIVED, c->in);
	c->out = c->in = 0;
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
	const struct seg_addr *a = &shim_seg.addrs[c->saddr];
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

/* Takes a token from the rule's bucket: true when there was one.  The
 * bucket is a GCRA: one word, the theoretical arrival time of the next
 * connect, moved by compare-and-swap, so no lock is taken; a bucket of
 * burst tokens refilling at rate_mps / 1000 a second. */
static bool rate_take(struct conn *c)
{
	struct seg_rule *r = &shim_seg.rules[c->srule];
	uint64_t now = clock_ns() / 1000u; /* µs */
	uint64_t burst = c->rate_burst ? c->rate_burst : c->rate_mps / 1000;
	uint64_t step = 1000000000u / (c->rate_mps ? c->rate_mps : 1);
	uint64_t tat = atomic_load(&r->rate_tat_us), next;

	if (!step)
		step = 1; /* above a million a second: no limit to speak of */
	if (burst < 1)
		burst = 1;
	do {
		/* later than any bucket allows: corrupt, or another clock */
		if (tat > now + (burst + 1) * step)
			tat = now;
		next = (tat > now ? tat : now) + step;
		if (next - now > burst * step)
			return false;
	} while (!atomic_compare_exchange_weak(&r->rate_tat_us, &tat, next));
	return true;
}

/* Counts a connection of c in this process's held[] (for SIGKILL). */
static bool hold(struct conn *c, int delta)
{
	struct seg_proc *p;
	uint32_t want = (uint32_t)c->srule + 1;

	if (shim_proc < 0 || (uint32_t)shim_proc >= shim_seg.nprocs)
		return false;
	p = &shim_seg.procs[shim_proc];
	for (int h = 0; h < SEG_HELD; h++) {
		uint32_t r = atomic_load(&p->held[h].rule);
		if (r == want ||
		    (delta > 0 && !r &&
		     atomic_compare_exchange_strong(&p->held[h].rule, &r,
						    want)) ||
		    r == want) {
			atomic_fetch_add(&p->held[h].count, delta);
			return true;
		}
	}
	return false; /* more rules than SEG_HELD: not tracked */
}

/* Reserves a connection of c's rule: true, or false when the rule is at
 * max_connections (after releasing what dead processes held). */
static bool reserve(struct conn *c)
{
	struct seg_rule *r = &shim_seg.rules[c->srule];

	for (int attempt = 0; attempt < 2; attempt++) {
		int32_t n = atomic_fetch_add(&r->active, 1) + 1;
		if (!c->max_connections || n <= (int32_t)c->max_connections) {
			c->active = hold(c, 1) ? 2 : 1;
			return true;
		}
		atomic_fetch_sub(&r->active, 1);
		/* full: are some of these held by the dead? */
		if (!state_reap((uint32_t)c->srule))
			break;
	}
	return false;
}

/* Wakes every connect waiting in r's queue (they share one futex word
 * in the segment, so the futex is not process-private). */
static void queue_wake(struct seg_rule *r)
{
	int saved = errno;

	atomic_fetch_add(&r->q_wake, 1);
	syscall(SYS_futex, &r->q_wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	errno = saved;
}

/* Gives back the connection c reserved, once, even when two threads
 * release it at the same time. */
static void release(struct conn *c)
{
	uint8_t held = __atomic_exchange_n(&c->active, 0, __ATOMIC_ACQ_REL);
	struct seg_rule *r;

	if (held && (uint32_t)c->srule < shim_seg.nrules) {
		r = &shim_seg.rules[c->srule];
		atomic_fetch_sub(&r->active, 1);
		if (held == 2)
			hold(c, -1);
		if (atomic_load(&r->q_tail) != atomic_load(&r->q_head))
			queue_wake(r);
	}
}

/* Ends ticket t's turn: the next ticket not given up is served. */
static void queue_advance(struct seg_rule *r, uint32_t t)
{
	uint32_t h = t;

	if (!atomic_compare_exchange_strong(&r->q_head, &h, t + 1))
		return;
	for (h = t + 1;; h++) {
		_Atomic uint32_t *g = &r->q_gone[h % SEG_QUEUE];
		uint32_t want = h + 1, cur = h;
		if (atomic_load(g) != want ||
		    !atomic_compare_exchange_strong(g, &want, 0) ||
		    !atomic_compare_exchange_strong(&r->q_head, &cur, h + 1))
			break;
	}
	queue_wake(r);
}

/* Gives ticket t up (its waiter timed out or was never let in). */
static void queue_leave(struct seg_rule *r, uint32_t t)
{
	if (atomic_load(&r->q_head) == t) {
		queue_advance(r, t);
		return;
	}
	atomic_store(&r->q_gone[t % SEG_QUEUE], t + 1);
	/* the turn may have come meanwhile: then pass it on */
	if (atomic_load(&r->q_head) == t) {
		uint32_t want = t + 1;
		atomic_compare_exchange_strong(&r->q_gone[t % SEG_QUEUE], &want,
					       0);
		queue_advance(r, t);
	}
}

/* How often a waiter looks for connections the dead still hold. */
#define QUEUE_RECHECK_NS 250000000u

/* Waits in line, up to queue_timeout, for a connection of c's rule;
 * true when c got one.  Waiters are served in the order they came, and
 * sleep on a futex between releases. */
static bool queue_wait(struct conn *c)
{
	struct seg_rule *r = &shim_seg.rules[c->srule];
	uint32_t maxp = c->max_pending < SEG_QUEUE ? c->max_pending : SEG_QUEUE;
	uint32_t t = atomic_fetch_add(&r->q_tail, 1);
	uint64_t deadline =
	    clock_ns() + (uint64_t)c->queue_timeout_ms * 1000000u;
	bool ok = false;

	if (t - atomic_load(&r->q_head) >= maxp) {
		queue_leave(r, t); /* the line is full */
		return false;
	}
	atomic_fetch_add(&r->pending, 1);
	for (;;) {
		uint32_t seq = atomic_load(&r->q_wake);
		uint64_t now, wait;
		struct timespec ts;

		if (atomic_load(&r->q_head) == t && reserve(c)) {
			ok = true;
			break;
		}
		now = clock_ns();
		if (now >= deadline)
			break;
		/* a holder that exits without closing (or is killed) wakes
		 * nobody: look again at least every QUEUE_RECHECK_NS, when
		 * reserve() reaps what the dead held */
		wait = deadline - now < QUEUE_RECHECK_NS ? deadline - now
							 : QUEUE_RECHECK_NS;
		ts.tv_sec = (time_t)(wait / 1000000000u);
		ts.tv_nsec = (long)(wait % 1000000000u);
		syscall(SYS_futex, &r->q_wake, FUTEX_WAIT, seq, &ts, NULL, 0);
	}
	atomic_fetch_sub(&r->pending, 1);
	if (ok)
		queue_advance(r, t);
	else
		queue_leave(r, t);
	return ok;
}

/* The process exits by exit() (not _exit, not a signal): adds the bytes
 * of the connections it never closed (redis-cli, for one, never does).
 * Their slots under max_connections stay taken until the kernel has
 * closed them: a full rule, or a waiter, reaps them once the process is
 * gone, so the limit is never exceeded, even for a moment. */
void calls_exit(void)
{
	int max = atomic_load(&fdt_max);

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

/* The budget bucket of second sec, cleared when it still holds an older
 * second.  Lock-free: a count made by another process between the clear
 * and the stamp is lost, which errs on the side of fewer retries. */
static int budget_slot(struct seg_rule *r, uint64_t sec)
{
	int i = (int)(sec % 10);
	uint64_t old =
	    atomic_load_explicit(&r->budget_sec[i], memory_order_acquire);

	if (old != sec &&
	    atomic_compare_exchange_strong(&r->budget_sec[i], &old, sec)) {
		atomic_store(&r->budget_first[i], 0);
		atomic_store(&r->budget_retry[i], 0);
	}
	return i;
}

/* The current second of the budget's clock. */
static uint64_t budget_now(void)
{
	return clock_coarse_ns() / 1000000000u;
}

/* Counts a first attempt (a connect the program asked for) of c's rule,
 * the base of its retry budget. */
static void budget_first(struct conn *c)
{
	struct seg_rule *r = &shim_seg.rules[c->srule];

	if (!c->retries)
		return;
	atomic_fetch_add_explicit(
	    &r->budget_first[budget_slot(r, budget_now())], 1,
	    memory_order_relaxed);
}

/* Asks the retry budget for one retry: the retries of the last 10 s
 * must stay under the rule's share of its first attempts plus the
 * minimum; a compare-and-swap on this second's count makes concurrent
 * askers take turns rather than overshoot. */
bool calls_retry_ok(struct conn *c)
{
	struct seg_rule *r;
	uint64_t sec = budget_now(), first, retries;
	uint32_t mine;
	bool ok;
	int cur, tries = 0;

	if ((uint32_t)c->srule >= shim_seg.nrules)
		return true;
	r = &shim_seg.rules[c->srule];
	cur = budget_slot(r, sec);
	mine = atomic_load(&r->budget_retry[cur]);
	do {
		first = retries = 0;
		for (int i = 0; i < 10; i++)
			if (atomic_load(&r->budget_sec[i]) + 10 > sec) {
				first += atomic_load(&r->budget_first[i]);
				retries +=
				    i == cur ? mine
					     : atomic_load(&r->budget_retry[i]);
			}
		/* share of first attempts over 10 s, plus the minimum */
		ok = retries * 1000000u < first * c->retry_budget_ppm +
					      c->retry_budget_min_mps * 10000u;
	} while (ok &&
		 !atomic_compare_exchange_weak(&r->budget_retry[cur], &mine,
					       mine + 1) &&
		 ++tries < 1000);
	ok = ok && tries < 1000;
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

/* Asks the breaker, the rate limit and fault injection. */
int calls_admit(struct conn *c)
{
	struct breaker_event ev;
	pthread_mutex_t *lock;
	struct breaker *b;
	int verdict, forced;

	c->probe = 0;
	c->rejected = 0;
	if ((uint32_t)c->srule >= shim_seg.nrules)
		goto chaos;
	if (!c->retrying)
		budget_first(c);
	/* a rule forced by the operator wins, counted or not */
	forced = atomic_load_explicit(&shim_seg.rules[c->srule].forced,
				      memory_order_relaxed);
	if (forced == BREAKER_FORCE_OPEN) {
		count(c, SEG_REJECTED_BREAKER, 1);
		c->rejected = REJECT_BREAKER;
		goto reject;
	}
	b = forced == BREAKER_FORCE_CLOSED ? NULL : breaker_of(c, &lock);
	if (b && (c->bcfg.mode != BREAKER_MODE_OFF || breaker_forced(b)) &&
	    !breaker_quiet(b) && seg_lock(lock) == 0) {
		memset(&ev, 0, sizeof ev);
		verdict = breaker_allow(b, &c->bcfg, ms_of(clock_ns()), &ev);
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
	if (!c->probe && c->rate_mps && !rate_take(c)) {
		count(c, SEG_REJECTED_RATE, 1);
		goto reject;
	}
	/* a slot now, unless others wait for one: then in line */
	if (!(atomic_load(&shim_seg.rules[c->srule].q_tail) ==
		  atomic_load(&shim_seg.rules[c->srule].q_head) &&
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
	bool failure;
	int k;

	if (!atomic_compare_exchange_strong(&c->call, &expect,
					    err ? CALL_NONE : CALL_CONNECTED))
		return; /* someone else ended it */
	c->connect_dur_ns = now - c->connect_ns;
	c->wait_ns = 0;
	if (!err) {
		if (c->saddr >= 0 && (uint32_t)c->saddr < shim_seg.naddrs)
			seg_hist_add(&shim_seg.addrs[c->saddr].connect_us,
				     c->connect_dur_ns / 1000);
		return;
	}
	release(c); /* a failed connect holds no connection */
	k = connect_counter(err, &failure);
	if (!failure && !c->probe)
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
	default:
		return ok ? NULL : "failed";
	}
}

/* The current call of c ended; now (ns) may be 0 when the caller did
 * not read the clock. */
void calls_end(int fd, struct conn *c, bool ok, int counter, uint64_t now)
{
	struct breaker_event ev;
	pthread_mutex_t *lock;
	struct breaker *b;
	uint8_t was = atomic_exchange(&c->call, CALL_NONE);
	uint64_t wait;
	int flags = 0;

	(void)fd;
	if (was == CALL_NONE || c->saddr < 0)
		return;
	wait = 0;
	if (was == CALL_WAITING && c->wait_ns) {
		if (!now)
			now = clock_ns();
		wait = now - c->wait_ns;
	}
	count(c, SEG_CALLS, 1);
	count(c, ok ? SEG_SUCCESSES : SEG_FAILURES, 1);
	if (counter >= 0)
		count(c, (enum seg_counter)counter, 1);
	if (c->out + c->in >= 65536)
		flush_bytes(c); /* else at close */
	if (ok && wait)
		seg_hist_add(&shim_seg.addrs[c->saddr].first_byte_us,
			     wait / 1000);
	if (!ok)
		flags |= BREAKER_FAILURE;
	if (c->bcfg.slow_ms && (c->connect_dur_ns / 1000000 > c->bcfg.slow_ms ||
				wait / 1000000 > c->bcfg.slow_ms)) {
		flags |= BREAKER_SLOW;
		count(c, SEG_SLOW_CALLS, 1);
	}
	c->connect_dur_ns = 0;
	if (c->bcfg.mode == BREAKER_MODE_OFF && !c->probe)
		goto out;
	/* while the operator forces the rule, its breakers stand still */
	if ((uint32_t)c->srule < shim_seg.nrules &&
	    atomic_load_explicit(&shim_seg.rules[c->srule].forced,
				 memory_order_relaxed))
		goto out;
	b = breaker_of(c, &lock);
	if (!b || breaker_unmoved(b, &c->bcfg, flags, c->probe))
		goto out;
	if (seg_lock(lock) < 0)
		goto out;
	memset(&ev, 0, sizeof ev);
	if (!now)
		now = clock_ns();
	breaker_record(b, &c->bcfg, ms_of(now), flags, c->probe, shim_random(),
		       &ev);
	seg_unlock(lock);
	log_event(c, &ev, failure_words(counter, ok));
out:
	c->probe = 0;
}

/* Bookkeeping after n bytes were sent on c. */
void calls_sent(struct conn *c, size_t n)
{
	static TLS unsigned tick;
	uint8_t expect = atomic_load_explicit(&c->call, memory_order_relaxed);
	uint64_t now;

	c->out += n;
	if (expect == CALL_WAITING || expect == CALL_CONNECTING)
		return; /* the call goes on */
	/* first-byte latency: every call when slow calls matter, else one
	 * call in eight, which is plenty for p50/p90/p99 and saves two clock
	 * reads on the others */
	now = c->bcfg.slow_ms || (++tick & 7) == 0 ? clock_ns() : 0;
	expect = CALL_NONE;
	/* the first send after a reply started is a new call; the first
	 * send after connect continues the connect's call */
	if (atomic_compare_exchange_strong(&c->call, &expect, CALL_WAITING)) {
		c->wait_ns = now;
		return;
	}
	expect = CALL_CONNECTED;
	if (atomic_compare_exchange_strong(&c->call, &expect, CALL_WAITING))
		c->wait_ns = now;
}

/* True when buf starts an HTTP/1.x reply with a 5xx status. */
static bool http_5xx(const char *p, ssize_t n)
{
	return n >= 12 && !memcmp(p, "HTTP/1.", 7) && p[8] == ' ' &&
	       p[9] == '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
	       p[11] <= '9';
}

/* After a receive on c returned n, with its bytes at buf. */
void calls_received(int fd, struct conn *c, ssize_t n, const void *buf)
{
	uint8_t state = atomic_load_explicit(&c->call, memory_order_relaxed);
	uint64_t now;

	if (n > 0)
		c->in += (size_t)n;
	if (state != CALL_WAITING && state != CALL_CONNECTED)
		return;
	if (n > 0 && state == CALL_CONNECTED)
		return; /* the server spoke first: still the same call */
	now = 0;	/* read by calls_end only if it needs it */
	if (n > 0) {
		bool bad = c->classify == POLICY_CLASSIFY_HTTP && buf &&
			   http_5xx(buf, n);
		calls_end(fd, c, !bad, bad ? SEG_HTTP_5XX : -1, now);
	} else {
		/* end of stream or reset before the first reply byte */
		calls_end(fd, c, false, SEG_RESETS, now);
	}
}

/* The program closes the socket of c. */
void calls_close(int fd, struct conn *c)
{
	uint8_t state = atomic_load(&c->call);
	uint64_t now = clock_ns();

	if (c->saddr < 0)
		return;
	if (state == CALL_CONNECTED) {
		/* connected and closed without an exchange: it worked */
		calls_end(fd, c, true, -1, now);
	} else if ((state == CALL_WAITING || state == CALL_CONNECTING) &&
		   c->probe) {
		/* a probe given up counts as failed: half-open never sticks */
		calls_end(fd, c, false, -1, now);
	} else {
		atomic_store(&c->call, CALL_NONE);
	}
	flush_bytes(c);
	release(c);
	c->saddr = -1;
}
