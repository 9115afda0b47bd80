/* SPDX-License-Identifier: MIT */
/* The circuit breaker state machine: closed, open, half-open, with count or
 * time windows, slow-call rates, doubling jittered open periods and operator
 * overrides.  Pure: no clock, no randomness, no allocation, no I/O. */
#include <errno.h>
#include <string.h>

#include "breaker.h"

/* since_ms is stamped by the next call (breaker_force() takes no time). */
#define BREAKER_F_STAMP 0x1

/* A config with every value in range, derived from the caller's. */
struct norm {
	enum breaker_mode mode;
	uint32_t failures;
	uint32_t failure_rate_ppm;
	uint32_t window_calls;
	uint32_t window_ms;
	uint32_t min_calls;
	bool slow;
	uint32_t slow_rate_ppm;
	uint64_t open_ms;
	uint64_t open_max_ms;
	uint32_t probes;
	uint64_t probe_timeout_ms;
};

/* Counts of the window. */
struct tally {
	uint32_t calls;
	uint32_t failures;
	uint32_t slows;
};

/* A small writer into the fixed reason buffer of an event. */
struct text {
	char *buf;
	size_t len;
	size_t size;
};

/* Smaller and larger of two values. */
/* Stores a field that breaker_quiet() reads without the lock: an atomic
 * store (relaxed; the lock orders everything else), so that the lock-free
 * read is no data race. */
static void set_u8(uint8_t *field, uint8_t v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}

/* The same for consecutive, which the shim's common call end reads
 * without the lock (calls_ok). */
static void set_u32(uint32_t *field, uint32_t v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Copies c into n with every value brought into range. */
static void normalise(const struct breaker_config *c, struct norm *n)
{
	n->mode = c->mode;
	if (n->mode != BREAKER_MODE_ON && n->mode != BREAKER_MODE_DRY_RUN)
		n->mode = BREAKER_MODE_OFF;
	n->failures = c->failures;
	n->failure_rate_ppm = (uint32_t)min_u64(c->failure_rate_ppm, 1000000);
	n->window_calls = 0;
	n->window_ms = 0;
	if (c->window_calls)
		n->window_calls =
		    (uint32_t)min_u64(c->window_calls, BREAKER_RING_MAX);
	else if (c->window_ms)
		n->window_ms =
		    (uint32_t)min_u64(max_u64(c->window_ms, BREAKER_BUCKETS),
				      BREAKER_WINDOW_MS_MAX);
	else
		n->window_calls = 20;
	n->min_calls = c->min_calls ? c->min_calls : 1;
	n->slow = c->slow_ms != 0;
	n->slow_rate_ppm =
	    n->slow ? (uint32_t)min_u64(c->slow_rate_ppm, 1000000) : 0;
	n->open_ms = min_u64(c->open_ms, BREAKER_PERIOD_MAX_MS);
	n->open_max_ms =
	    min_u64(max_u64(c->open_max_ms, n->open_ms), BREAKER_PERIOD_MAX_MS);
	n->probes = c->probes ? c->probes : 1;
	if (n->probes > BREAKER_PROBES_MAX)
		n->probes = BREAKER_PROBES_MAX;
	n->probe_timeout_ms =
	    c->probe_timeout_ms
		? min_u64(c->probe_timeout_ms, BREAKER_PERIOD_MAX_MS)
		: BREAKER_PROBE_TIMEOUT_DEFAULT_MS;
}

/* Appends s, truncating at the end of the buffer. */
static void text_put(struct text *t, const char *s)
{
	while (*s && t->len + 1 < t->size)
		t->buf[t->len++] = *s++;
	t->buf[t->len] = '\0';
}

/* Appends v in decimal. */
static void text_uint(struct text *t, uint64_t v)
{
	char digits[24];
	size_t i = sizeof(digits) - 1;

	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	text_put(t, digits + i);
}

/* Writes a share in ppm as a percentage with up to two decimals, truncated
 * so that the order of two shares is kept: "60%", "12.5%", "33.33%". */
static void text_percent(struct text *t, uint32_t ppm)
{
	uint32_t hundredths = ppm / 100;

	text_uint(t, hundredths / 100);
	if (hundredths % 100) {
		char frac[4] = {'.', (char)('0' + hundredths % 100 / 10),
				(char)('0' + hundredths % 10), '\0'};

		if (frac[2] == '0')
			frac[2] = '\0';
		text_put(t, frac);
	}
	text_put(t, "%");
}

/* Reads the state, a corrupt value as closed. */
static enum breaker_state get_state(const struct breaker *b)
{
	switch (b->state) {
	case BREAKER_OPEN:
		return BREAKER_OPEN;
	case BREAKER_HALF_OPEN:
		return BREAKER_HALF_OPEN;
	default:
		return BREAKER_CLOSED;
	}
}

/* Reads the override, a corrupt value as none. */
static int get_forced(const struct breaker *b)
{
	if (b->forced == BREAKER_FORCE_OPEN ||
	    b->forced == BREAKER_FORCE_CLOSED)
		return b->forced;
	return BREAKER_FORCE_NONE;
}

/* Sets ev, if any, to "no change" in state s. */
static void event_init(struct breaker_event *ev, enum breaker_state s)
{
	if (!ev)
		return;
	ev->changed = false;
	ev->from = s;
	ev->to = s;
	ev->verdict = BREAKER_ALLOW;
	ev->reason[0] = '\0';
}

/* Starts the reason text of a transition to state to and returns a writer
 * for it; the writer is unusable (size 0) when there is no event. */
static struct text transition(struct breaker *b, enum breaker_state to,
			      uint64_t now, struct breaker_event *ev)
{
	struct text t = {NULL, 0, 0};

	set_u8(&b->state, (uint8_t)to);
	b->since_ms = now;
	if (ev) {
		ev->changed = true;
		ev->to = to;
		ev->reason[0] = '\0';
		t.buf = ev->reason;
		t.size = sizeof(ev->reason);
	}
	return t;
}

/* Appenders that do nothing when there is no event. */
static void put(struct text *t, const char *s)
{
	if (t->size)
		text_put(t, s);
}

static void put_uint(struct text *t, uint64_t v)
{
	if (t->size)
		text_uint(t, v);
}

static void put_percent(struct text *t, uint32_t ppm)
{
	if (t->size)
		text_percent(t, ppm);
}

/* Width of one time-window bucket in ms, at least 1. */
static uint64_t bucket_ms(const struct norm *n)
{
	return (n->window_ms + BREAKER_BUCKETS - 1) / BREAKER_BUCKETS;
}

/* Empties the window and fits it to the config. */
static void window_clear(struct breaker *b, const struct norm *n, uint64_t now)
{
	memset(&b->win, 0, sizeof(b->win));
	b->ring_pos = 0;
	b->ring_count = 0;
	b->win_calls = n->window_calls;
	b->win_ms = n->window_ms;
	b->slot = n->window_ms ? now / bucket_ms(n) : 0;
}

/* Makes the window fit the config (a reload may change it) and, for a time
 * window, drops the buckets that time has pushed out. */
static void window_sync(struct breaker *b, const struct norm *n, uint64_t now)
{
	uint64_t s, i;

	if (b->win_calls != n->window_calls || b->win_ms != n->window_ms) {
		window_clear(b, n, now);
		return;
	}
	if (n->window_calls) {
		if (b->ring_count > n->window_calls)
			b->ring_count = (uint16_t)n->window_calls;
		if (b->ring_count < n->window_calls)
			b->ring_pos = b->ring_count;
		else if (b->ring_pos >= n->window_calls)
			b->ring_pos = 0;
		return;
	}
	s = now / bucket_ms(n);
	if (s > b->slot) {
		uint64_t steps = s - b->slot;

		if (steps >= BREAKER_BUCKETS) {
			window_clear(b, n, now); /* all expired */
			return;
		}
		for (i = 1; i <= steps; i++)
			memset(&b->win.bucket[(b->slot + i) % BREAKER_BUCKETS],
			       0, sizeof(b->win.bucket[0]));
		b->slot = s;
	} else if (b->slot - s >= BREAKER_BUCKETS) {
		window_clear(b, n, now); /* far in the future: corrupt */
	}
	/* A slightly older now (another process read its clock before ours
	 * but took the lock after us) keeps the newer slot and is counted
	 * in its own bucket, still inside the window. */
}

/* Sets or clears bit pos of a ring bitmap. */
static void ring_set(uint64_t *bits, uint32_t pos, bool on)
{
	uint64_t mask = (uint64_t)1 << (pos % 64);

	if (on)
		bits[pos / 64] |= mask;
	else
		bits[pos / 64] &= ~mask;
}

/* Counts the set bits among the first count of a ring bitmap. */
static uint32_t ring_count_bits(const uint64_t *bits, uint32_t count)
{
	uint32_t total = 0, i;

	for (i = 0; i < count / 64; i++)
		total += (uint32_t)__builtin_popcountll(bits[i]);
	if (count % 64)
		total += (uint32_t)__builtin_popcountll(
		    bits[count / 64] & (((uint64_t)1 << (count % 64)) - 1));
	return total;
}

/* Adds one outcome to a window that window_sync() has just fitted. */
static void window_add(struct breaker *b, const struct norm *n, uint64_t now,
		       bool failed, bool slow)
{
	struct breaker_bucket *k;
	uint32_t i;

	if (n->window_calls) {
		uint32_t pos = b->ring_pos % n->window_calls;

		ring_set(b->win.ring.failed, pos, failed);
		ring_set(b->win.ring.slow, pos, slow);
		b->ring_pos = (uint16_t)((pos + 1) % n->window_calls);
		if (b->ring_count < n->window_calls)
			b->ring_count++;
		return;
	}
	k = &b->win.bucket[(now / bucket_ms(n)) % BREAKER_BUCKETS];
	if (k->calls == UINT16_MAX) {
		/* Halving every bucket keeps the shares of the window; the
		 * totals stay far above any min_calls. */
		for (i = 0; i < BREAKER_BUCKETS; i++) {
			b->win.bucket[i].calls /= 2;
			b->win.bucket[i].failures /= 2;
			b->win.bucket[i].slows /= 2;
		}
	}
	k->calls++;
	if (failed && k->failures < k->calls)
		k->failures++;
	if (slow && k->slows < k->calls)
		k->slows++;
}

/* Sums the window, clamping corrupt counts. */
static void window_tally(const struct breaker *b, const struct norm *n,
			 struct tally *t)
{
	uint32_t i;

	if (n->window_calls) {
		uint32_t count = b->ring_count;

		if (count > n->window_calls)
			count = n->window_calls;
		t->calls = count;
		t->failures = ring_count_bits(b->win.ring.failed, count);
		t->slows = ring_count_bits(b->win.ring.slow, count);
		return;
	}
	t->calls = t->failures = t->slows = 0;
	for (i = 0; i < BREAKER_BUCKETS; i++) {
		const struct breaker_bucket *k = &b->win.bucket[i];

		t->calls += k->calls;
		t->failures += k->failures < k->calls ? k->failures : k->calls;
		t->slows += k->slows < k->calls ? k->slows : k->calls;
	}
}

/* Scatters a 32-bit seed: allow() has no rnd of its own. */
static uint32_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Returns period with ±10% jitter: period * (0.9 + 0.2 * rnd / 2^32). */
static uint64_t jitter(uint64_t period, uint32_t rnd)
{
	/* period <= BREAKER_PERIOD_MAX_MS < 2^30, so no product overflows. */
	return period - period / 10 + (((period / 5) * rnd) >> 32);
}

/* Starts an open period of period ms (jittered) at now. */
static void open_for(struct breaker *b, uint64_t period, uint64_t now,
		     uint32_t rnd)
{
	b->period_ms = period;
	b->until_ms = now + jitter(period, rnd);
	b->probes_admitted = 0;
	b->probes_ok = 0;
	b->probe_ms = 0;
}

/* Opens a closed breaker for the first period. */
static struct text trip(struct breaker *b, const struct norm *n, uint64_t now,
			uint32_t rnd, struct breaker_event *ev)
{
	struct text t = transition(b, BREAKER_OPEN, now, ev);

	open_for(b, n->open_ms, now, rnd);
	return t;
}

/* Reopens a half-open breaker with twice the last period, up to the max. */
static struct text reopen(struct breaker *b, const struct norm *n, uint64_t now,
			  uint32_t rnd, struct breaker_event *ev)
{
	struct text t = transition(b, BREAKER_OPEN, now, ev);
	uint64_t p = b->period_ms ? min_u64(b->period_ms, n->open_max_ms) * 2
				  : n->open_ms;

	open_for(b, min_u64(max_u64(p, n->open_ms), n->open_max_ms), now, rnd);
	return t;
}

/* Closes a half-open breaker whose probes all succeeded. */
static void close_breaker(struct breaker *b, const struct norm *n, uint64_t now,
			  struct breaker_event *ev)
{
	struct text t = transition(b, BREAKER_CLOSED, now, ev);

	put_uint(&t, n->probes);
	put(&t, n->probes == 1 ? " probe succeeded" : " probes succeeded");
	set_u32(&b->consecutive, 0);
	b->until_ms = 0;
	b->period_ms = n->open_ms;
	b->probes_admitted = 0;
	b->probes_ok = 0;
	b->probe_ms = 0;
	window_clear(b, n, now);
}

/* Brings a half-open breaker's probe counts in line and fails a probe that
 * has been out longer than probe_timeout_ms, so half-open never sticks. */
static void half_open_check(struct breaker *b, const struct norm *n,
			    uint64_t now, uint32_t rnd,
			    struct breaker_event *ev)
{
	struct text t;

	if (b->probes_admitted > n->probes)
		b->probes_admitted = n->probes;
	if (b->probes_ok > b->probes_admitted)
		b->probes_ok = b->probes_admitted;
	if (b->probes_ok >= n->probes) {
		close_breaker(b, n, now, ev);
		return;
	}
	if (b->probes_ok == b->probes_admitted)
		return;
	/* Probes carry no id: every one still out was admitted no later
	 * than the latest, so once that one is too old, all are. */
	if (now > b->probe_ms && now - b->probe_ms > n->probe_timeout_ms) {
		t = reopen(b, n, now, rnd, ev);
		put(&t, "probe timed out after ");
		put_uint(&t, n->probe_timeout_ms);
		put(&t, "ms");
	} else if (b->probe_ms > now + n->probe_timeout_ms) {
		b->probe_ms = now; /* in the future: corrupt */
	}
}

/* Counts an outcome as a closed breaker does: consecutive and window. */
static void count(struct breaker *b, const struct norm *n, uint64_t now,
		  bool failed, bool slow)
{
	if (failed) {
		if (b->consecutive < UINT32_MAX)
			set_u32(&b->consecutive, b->consecutive + 1);
	} else {
		set_u32(&b->consecutive, 0);
	}
	window_sync(b, n, now);
	window_add(b, n, now, failed, slow);
}

/* Opens a closed breaker when a threshold is reached. */
static void closed_check(struct breaker *b, const struct norm *n, uint64_t now,
			 uint32_t rnd, struct breaker_event *ev)
{
	struct tally w;
	struct text t;

	if (n->failures && b->consecutive >= n->failures) {
		t = trip(b, n, now, rnd, ev);
		put_uint(&t, b->consecutive);
		put(&t, b->consecutive == 1 ? " consecutive failure"
					    : " consecutive failures");
		return;
	}
	if (!n->failure_rate_ppm && !n->slow_rate_ppm)
		return;
	window_tally(b, n, &w);
	if (w.calls < n->min_calls)
		return;
	if (n->failure_rate_ppm &&
	    (uint64_t)w.failures * 1000000 >=
		(uint64_t)n->failure_rate_ppm * w.calls) {
		t = trip(b, n, now, rnd, ev);
		put(&t, "failure rate ");
		put_percent(
		    &t, (uint32_t)((uint64_t)w.failures * 1000000 / w.calls));
		put(&t, " >= ");
		put_percent(&t, n->failure_rate_ppm);
	} else if (n->slow_rate_ppm &&
		   (uint64_t)w.slows * 1000000 >=
		       (uint64_t)n->slow_rate_ppm * w.calls) {
		t = trip(b, n, now, rnd, ev);
		put(&t, "slow-call rate ");
		put_percent(&t,
			    (uint32_t)((uint64_t)w.slows * 1000000 / w.calls));
		put(&t, " >= ");
		put_percent(&t, n->slow_rate_ppm);
	} else {
		return;
	}
	put(&t, " over ");
	put_uint(&t, w.calls);
	put(&t, w.calls == 1 ? " call" : " calls");
}

/* Stamps since_ms after breaker_force(), and keeps an open period that a
 * corrupt segment put far in the future from lasting forever. */
static void settle(struct breaker *b, const struct norm *n, uint64_t now)
{
	uint64_t longest = n->open_max_ms + n->open_max_ms / 10 + 1;

	if (b->flags & BREAKER_F_STAMP) {
		b->since_ms = now;
		set_u8(&b->flags, b->flags & (uint8_t)~BREAKER_F_STAMP);
	}
	if (get_state(b) == BREAKER_OPEN && b->until_ms > now &&
	    b->until_ms - now > longest)
		b->until_ms = now + longest;
}

/* Fills c with the SPEC defaults of a breaker (mode off). */
void breaker_config_default(struct breaker_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = BREAKER_MODE_OFF;
	c->failures = 5;
	c->window_calls = 20;
	c->min_calls = 10;
	c->open_ms = 30000;
	c->open_max_ms = 300000;
	c->probes = 1;
	c->probe_timeout_ms = BREAKER_PROBE_TIMEOUT_DEFAULT_MS;
}

/* Clears b to a zeroed, closed, unforced breaker; caller holds the lock. */
void breaker_reset(struct breaker *b)
{
	memset(b, 0, sizeof(*b));
}

/* Decides whether a call may start now; caller holds the segment lock. */
int breaker_allow(struct breaker *b, const struct breaker_config *c,
		  uint64_t now_ms, struct breaker_event *ev)
{
	struct norm n;
	struct text t;
	int forced = get_forced(b), verdict;

	normalise(c, &n);
	event_init(ev, get_state(b));
	if (forced != BREAKER_FORCE_NONE) {
		settle(b, &n, now_ms);
		verdict = forced == BREAKER_FORCE_OPEN ? BREAKER_REJECT
						       : BREAKER_ALLOW;
		if (ev)
			ev->verdict = verdict;
		return verdict;
	}
	if (n.mode == BREAKER_MODE_OFF)
		return BREAKER_ALLOW;
	settle(b, &n, now_ms);

	set_u8(&b->state, (uint8_t)get_state(b));
	if (b->state == BREAKER_OPEN && now_ms >= b->until_ms) {
		t = transition(b, BREAKER_HALF_OPEN, now_ms, ev);
		put(&t, "open period over");
		b->probes_admitted = 0;
		b->probes_ok = 0;
		b->probe_ms = 0;
	}
	if (b->state == BREAKER_HALF_OPEN)
		half_open_check(b, &n, now_ms, mix(b->seed ^ now_ms), ev);

	switch (b->state) {
	case BREAKER_OPEN:
		verdict = BREAKER_REJECT;
		break;
	case BREAKER_HALF_OPEN:
		if (b->probes_admitted < n.probes) {
			b->probes_admitted++;
			b->probe_ms = now_ms;
			verdict = BREAKER_PROBE;
		} else {
			verdict = BREAKER_REJECT;
		}
		break;
	default:
		verdict = BREAKER_ALLOW;
		break;
	}
	if (ev)
		ev->verdict = verdict;
	if (n.mode == BREAKER_MODE_DRY_RUN && verdict == BREAKER_REJECT)
		return BREAKER_ALLOW;
	return verdict;
}

/* Records the outcome of an admitted call; caller holds the segment lock. */
void breaker_record(struct breaker *b, const struct breaker_config *c,
		    uint64_t now_ms, int outcome_flags, bool probe,
		    uint32_t rnd, struct breaker_event *ev)
{
	struct norm n;
	struct text t;
	bool failed, slow;

	normalise(c, &n);
	event_init(ev, get_state(b));
	failed = (outcome_flags & BREAKER_FAILURE) != 0;
	slow = n.slow && (outcome_flags & BREAKER_SLOW);
	if (get_forced(b) != BREAKER_FORCE_NONE) {
		settle(b, &n, now_ms);
		count(b, &n, now_ms, failed, slow);
		return;
	}
	if (n.mode == BREAKER_MODE_OFF)
		return;
	settle(b, &n, now_ms);
	b->seed = rnd;

	set_u8(&b->state, (uint8_t)get_state(b));
	if (b->state == BREAKER_HALF_OPEN)
		half_open_check(b, &n, now_ms, rnd, ev);

	switch (b->state) {
	case BREAKER_CLOSED:
		count(b, &n, now_ms, failed, slow);
		closed_check(b, &n, now_ms, rnd, ev);
		break;
	case BREAKER_HALF_OPEN:
		/* Only a probe still out counts; calls admitted before the
		 * breaker opened, and late probes, count in nothing. */
		if (!probe || b->probes_ok >= b->probes_admitted)
			break;
		if (failed || (slow && n.slow_rate_ppm)) {
			t = reopen(b, &n, now_ms, rnd, ev);
			put(&t, failed ? "probe failed" : "probe slow");
			break;
		}
		b->probes_ok++;
		if (b->probes_ok >= n.probes)
			close_breaker(b, &n, now_ms, ev);
		break;
	default:
		break;
	}
}

/* Sets or lifts an operator override; 0 or -EINVAL. */
int breaker_force(struct breaker *b, int how)
{
	if (how != BREAKER_FORCE_NONE && how != BREAKER_FORCE_OPEN &&
	    how != BREAKER_FORCE_CLOSED)
		return -EINVAL;
	if (how == get_forced(b) && b->forced == how)
		return 0;
	set_u8(&b->forced, (uint8_t)how);
	set_u8(&b->state, BREAKER_CLOSED);
	b->until_ms = 0;
	b->probes_admitted = 0;
	b->probes_ok = 0;
	b->probe_ms = 0;
	set_u8(&b->flags, b->flags | BREAKER_F_STAMP);
	if (how == BREAKER_FORCE_NONE) {
		/* Back to the state machine with nothing remembered; the
		 * window is rebuilt by the next call that counts. */
		set_u32(&b->consecutive, 0);
		b->period_ms = 0;
		b->win_calls = 0;
		b->win_ms = 0;
		b->ring_pos = 0;
		b->ring_count = 0;
		b->slot = 0;
		memset(&b->win, 0, sizeof(b->win));
	}
	return 0;
}

/* Names a state machine state for logs. */
const char *breaker_state_str(enum breaker_state s)
{
	switch (s) {
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half_open";
	default:
		return "closed";
	}
}

/* Names the state as stats print it, overrides and mode off included. */
const char *breaker_state_name(const struct breaker *b,
			       const struct breaker_config *c)
{
	switch (get_forced(b)) {
	case BREAKER_FORCE_OPEN:
		return "forced_open";
	case BREAKER_FORCE_CLOSED:
		return "forced_closed";
	default:
		break;
	}
	if (c && c->mode != BREAKER_MODE_ON && c->mode != BREAKER_MODE_DRY_RUN)
		return "disabled";
	return breaker_state_str(get_state(b));
}

/* True when b is closed, not forced and owes no timestamp: then
 * breaker_allow() would allow and change nothing, so a caller may skip
 * its lock.  Reads bytes another process may be writing: a stale answer
 * only sends the caller down the locked path, or lets one call through
 * as a closed breaker would have a moment before. */
bool breaker_quiet(const struct breaker *b)
{
	return __atomic_load_n(&b->state, __ATOMIC_RELAXED) == BREAKER_CLOSED &&
	       __atomic_load_n(&b->forced, __ATOMIC_RELAXED) ==
		   BREAKER_FORCE_NONE &&
	       !(__atomic_load_n(&b->flags, __ATOMIC_RELAXED) &
		 BREAKER_F_STAMP);
}

/* True when b is open, not forced, and its open period runs at now_ms
 * (no longer than c's open_max allows), under mode on: breaker_allow()
 * would reject and change nothing, so a caller may refuse without the
 * lock.  Reads what another process may be writing: a stale answer only
 * sends the caller down the locked path, or refuses one call that a
 * breaker leaving its open state that instant would have let through. */
bool breaker_shut(const struct breaker *b, const struct breaker_config *c,
		  uint64_t now_ms)
{
	uint64_t until = __atomic_load_n(&b->until_ms, __ATOMIC_RELAXED);
	uint64_t open = min_u64(c->open_ms, BREAKER_PERIOD_MAX_MS);
	uint64_t longest =
	    min_u64(max_u64(c->open_max_ms, open), BREAKER_PERIOD_MAX_MS);

	longest += longest / 10 + 1; /* as settle() allows */
	return c->mode == BREAKER_MODE_ON &&
	       __atomic_load_n(&b->state, __ATOMIC_RELAXED) == BREAKER_OPEN &&
	       __atomic_load_n(&b->forced, __ATOMIC_RELAXED) ==
		   BREAKER_FORCE_NONE &&
	       !(__atomic_load_n(&b->flags, __ATOMIC_RELAXED) &
		 BREAKER_F_STAMP) &&
	       until > now_ms && until - now_ms <= longest;
}

/* Returns the state machine state, a corrupt value as closed. */
enum breaker_state breaker_current(const struct breaker *b)
{
	return get_state(b);
}

/* Returns the override in force, a corrupt value as none. */
int breaker_forced(const struct breaker *b)
{
	return get_forced(b);
}

/* Returns the consecutive failures since the last success. */
uint32_t breaker_consecutive(const struct breaker *b)
{
	return b->consecutive;
}

/* Returns when the current state was entered, monotonic ms. */
uint64_t breaker_since_ms(const struct breaker *b)
{
	return b->since_ms;
}

/* Returns when the open period ends, monotonic ms; 0 unless open. */
uint64_t breaker_until_ms(const struct breaker *b)
{
	if (get_forced(b) != BREAKER_FORCE_NONE || get_state(b) != BREAKER_OPEN)
		return 0;
	return b->until_ms;
}

/* Returns the base open period in ms, before jitter. */
uint64_t breaker_period_ms(const struct breaker *b)
{
	return b->period_ms;
}
