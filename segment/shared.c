/* SPDX-License-Identifier: MIT */
/* The lock-free structures of the segment that many processes change at
 * once.  Above each: what any instant may show, what a SIGKILL at any
 * instruction leaves, and who repairs it; docs/design.md sums them up and
 * tests/concurrency checks them while threads race through SEG_STEP(). */
#include "segment/shared.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Connections of a rule
 * ---------------------
 * rule.conns holds the open connections of the rule in its low 32 bits and
 * a count of changes in its high 32 bits: every change moves the whole
 * word, so a reader that sees the same word twice knows nothing changed.
 * Each process also counts what it holds, in its entry's held[] (or in
 * overflow, or the rule's anon when it has no entry).
 *
 * Reserve: busy++, conns += 1 (and back when over max), count++, busy--.
 * Release: busy++, count--, conns -= 1, busy--.
 *
 * At any instant: conns = sum of counts + (threads with busy > 0 between
 * their two steps, each 0 or 1) + overflow + anon.  Between the two steps
 * conns is the higher, never the lower, so a limit is never exceeded.
 *
 * A SIGKILL leaves: busy > 0 and conns one too high per thread caught in
 * a window; or counts of connections the kernel has since closed.
 * Repair: seg_conn_reap() claims a dead process's entry (pid UINT32_MAX),
 * marks it busy, takes its counts off conns and frees it; what a window
 * left in conns is then taken off by seg_conn_recount(), which sets conns
 * to the sum of the counts when it saw no window open and conns unchanged
 * across its reading.  A reserve never waits for either.
 */

#define CONNS_ONE ((uint64_t)1 << 32) /* the change count's unit */

/* Adds n (may be negative) to a rule's connections, as one change. */
static void conns_add(struct seg_rule *r, int32_t n)
{
	atomic_fetch_add(&r->conns, CONNS_ONE + (uint64_t)(int64_t)n);
}

/* The connection count in a value of conns. */
static int32_t conns_of(uint64_t v)
{
	return (int32_t)(uint32_t)v;
}

/* Open connections of rule ri as its count says. */
int32_t seg_conn_count(const struct seg *s, uint32_t ri)
{
	int32_t n;

	if (ri >= s->nrules)
		return 0;
	/* sequentially consistent: see seg_line_busy() */
	n = conns_of(atomic_load(&s->rules[ri].conns));
	return n < 0 ? 0 : n;
}

uint64_t seg_conn_seen(const struct seg *s, uint32_t ri)
{
	return ri < s->nrules ? atomic_load(&s->rules[ri].conns) : 0;
}

/* The held[] entry of rule ri in p, taken if need be; -1 when all are
 * taken by other rules.  Entries stay with their rule for the life of the
 * process, so two threads never take two for one rule. */
static int held_entry(struct seg_proc *p, uint32_t ri)
{
	uint32_t want = ri + 1;

	for (int h = 0; h < SEG_HELD; h++) {
		uint32_t r = atomic_load(&p->held[h].rule);

		if (r == want)
			return h;
		if (!r && (atomic_compare_exchange_strong(&p->held[h].rule, &r,
							  want) ||
			   r == want))
			return h;
	}
	return -1;
}

/* Reserves a connection of rule ri for entry proc. */
int seg_conn_reserve(struct seg *s, uint32_t ri, int proc, uint32_t max)
{
	struct seg_rule *r = &s->rules[ri];
	struct seg_proc *p = NULL;
	int holder = SEG_HOLDER_ANON, h = -1;
	int32_t n;

	if (proc >= 0 && (uint32_t)proc < s->nprocs) {
		p = &s->procs[proc];
		h = held_entry(p, ri);
		holder = h >= 0 ? SEG_HOLDER_HELD + h : SEG_HOLDER_OVERFLOW;
	}
	if (h >= 0)
		atomic_fetch_add(&p->held[h].busy, 1);
	else if (p)
		atomic_fetch_add(&p->overflow, 1);
	else
		atomic_fetch_add(&r->anon, 1);
	SEG_STEP();
	n = conns_of(atomic_fetch_add(&r->conns, CONNS_ONE + 1)) + 1;
	SEG_STEP();
	if (max && n > (int32_t)max) {
		conns_add(r, -1);
		SEG_STEP();
		holder = SEG_HOLDER_NONE;
	} else if (h >= 0) {
		atomic_fetch_add(&p->held[h].count, 1);
		SEG_STEP();
	}
	if (h >= 0)
		atomic_fetch_sub(&p->held[h].busy, 1);
	else if (holder == SEG_HOLDER_NONE && p)
		atomic_fetch_sub(&p->overflow, 1);
	else if (holder == SEG_HOLDER_NONE)
		atomic_fetch_sub(&r->anon, 1);
	return holder;
}

/* Gives back a connection of rule ri that holder holds. */
void seg_conn_release(struct seg *s, uint32_t ri, int proc, int holder)
{
	struct seg_rule *r;
	struct seg_proc *p;
	int h = holder - SEG_HOLDER_HELD;

	if (ri >= s->nrules || holder == SEG_HOLDER_NONE)
		return;
	r = &s->rules[ri];
	if (holder == SEG_HOLDER_ANON || proc < 0 ||
	    (uint32_t)proc >= s->nprocs) {
		conns_add(r, -1);
		SEG_STEP();
		atomic_fetch_sub(&r->anon, 1);
		return;
	}
	p = &s->procs[proc];
	if (holder == SEG_HOLDER_OVERFLOW || h >= SEG_HELD) {
		conns_add(r, -1);
		SEG_STEP();
		atomic_fetch_sub(&p->overflow, 1);
		return;
	}
	atomic_fetch_add(&p->held[h].busy, 1);
	atomic_fetch_sub(&p->held[h].count, 1);
	SEG_STEP();
	conns_add(r, -1);
	SEG_STEP();
	atomic_fetch_sub(&p->held[h].busy, 1);
}

/* Gives back what dead entry p holds; the caller claimed p. */
int seg_conn_reap_entry(struct seg *s, struct seg_proc *p, uint32_t ri)
{
	int freed = 0;

	for (int h = 0; h < SEG_HELD; h++) {
		/* busy while the counts are gone but conns not yet less */
		atomic_fetch_add(&p->held[h].busy, 1);
		uint32_t r = atomic_exchange(&p->held[h].rule, 0);
		int32_t n = atomic_exchange(&p->held[h].count, 0);
		SEG_STEP();
		if (r && r - 1 < s->nrules && n > 0) {
			conns_add(&s->rules[r - 1], -n);
			if (r == ri + 1)
				freed += n;
		}
		SEG_STEP();
		atomic_store(&p->held[h].busy, 0);
	}
	/* connections of unknown rules: the next recount takes them off */
	atomic_store(&p->overflow, 0);
	return freed;
}

/* True when p has anything that a reap or a recount of ri must see to. */
static bool entry_matters(const struct seg_proc *p, uint32_t ri)
{
	if (atomic_load(&p->overflow))
		return true;
	for (int h = 0; h < SEG_HELD; h++)
		if (atomic_load(&p->held[h].busy) ||
		    (atomic_load(&p->held[h].rule) == ri + 1 &&
		     atomic_load(&p->held[h].count) > 0))
			return true;
	return false;
}

/* Releases what dead processes hold in rule ri. */
int seg_conn_reap(struct seg *s, uint32_t ri, seg_gone_fn *gone)
{
	int freed = 0;

	for (uint32_t i = 0; i < s->nprocs; i++) {
		struct seg_proc *p = &s->procs[i];
		uint32_t pid = atomic_load(&p->pid);

		if (!pid || pid == UINT32_MAX || !entry_matters(p, ri) ||
		    !gone(p, pid))
			continue;
		/* claim the dead entry, so that it is released once */
		if (!atomic_compare_exchange_strong(&p->pid, &pid, UINT32_MAX))
			continue;
		freed += seg_conn_reap_entry(s, p, ri);
		atomic_fetch_add(&p->gen, 1);
		atomic_store(&p->pid, 0);
	}
	return freed;
}

/* Sets rule ri's count to the sum of what its holders hold. */
int seg_conn_recount(struct seg *s, uint32_t ri, uint64_t now_ms)
{
	struct seg_rule *r;
	uint64_t last, v;
	int64_t sum = 0;

	if (ri >= s->nrules)
		return 0;
	r = &s->rules[ri];
	last = atomic_load(&r->recount_ms);
	if ((now_ms < last + 100 && now_ms >= last) ||
	    !atomic_compare_exchange_strong(&r->recount_ms, &last, now_ms))
		return 0;
	/* conns first: any change after this fails the exchange below */
	v = atomic_load(&r->conns);
	if (atomic_load(&r->anon))
		return 0;
	for (uint32_t i = 0; i < s->nprocs; i++) {
		struct seg_proc *p = &s->procs[i];
		uint32_t pid = atomic_load(&p->pid);

		if (pid == UINT32_MAX || atomic_load(&p->overflow))
			return 0;
		for (int h = 0; h < SEG_HELD; h++) {
			/* a window open across these reads shows as busy */
			if (atomic_load(&p->held[h].busy))
				return 0;
			uint32_t rule = atomic_load(&p->held[h].rule);
			int32_t n = atomic_load(&p->held[h].count);
			SEG_STEP();
			if (atomic_load(&p->held[h].busy))
				return 0;
			if (rule == ri + 1 && n > 0)
				sum += n;
		}
	}
	if (sum >= conns_of(v) || sum > INT32_MAX)
		return 0; /* nothing left behind (or too many to trust) */
	if (!atomic_compare_exchange_strong(
		&r->conns, &v,
		((v & ~(CONNS_ONE - 1)) + CONNS_ONE) | (uint64_t)sum))
		return 0;
	return (int)(conns_of(v) - sum);
}

/*
 * The line of a rule (max_pending)
 * --------------------------------
 * A waiter takes a ticket (q_next++) and a free place among the first
 * max_pending of q_slot[] by compare-and-swap from 0 to (owner << 32 |
 * ticket), owner being its process entry and that entry's generation;
 * then it sets the place's bit in q_bits.  Its turn comes when fewer
 * places hold older tickets than there are connections free; it takes
 * one, then leaves by clearing its bit, then its place.
 *
 * At any instant: at most max_pending places taken (the count of waiters
 * is the count of places taken, there is no other); a bit set for a free
 * place, or a place taken without its bit, for a moment.  q_bits is a
 * hint for the fast path ("nobody waits, do not queue") and for who to
 * compare tickets with.
 *
 * A SIGKILL leaves: a place taken by a process that is gone (with or
 * without its bit), or a bit without a place.  Nothing else: no count
 * to drift, no head to pass on.  Repair: a sweep (seg_line_sweep()) asks
 * of each taken place whether its owner (entry and generation, then pid
 * and start time) still lives, frees it if not, and clears the bits of
 * free places; the shim sweeps at most every 250 ms per rule, from a
 * waiter that has waited that long or an arrival that finds every place
 * taken.  Until then a dead place only holds back those behind it.
 * Tickets wrap: two live tickets are compared by their signed difference.
 */

#define OWNER_PROC_BITS 20u /* nprocs <= SEG_MAX_ENTRIES < 2^20 */
#define OWNER_GEN_MASK	0xfffu

/* True when the owner of place word w is gone (or cannot be). */
static bool owner_gone(const struct seg *s, uint64_t w, seg_gone_fn *gone)
{
	uint32_t owner = (uint32_t)(w >> 32);
	uint32_t idx = (owner & ((1u << OWNER_PROC_BITS) - 1)) - 1;
	const struct seg_proc *p;
	uint32_t pid;

	if (idx >= s->nprocs)
		return true;
	p = &s->procs[idx];
	if ((atomic_load(&p->gen) & OWNER_GEN_MASK) != owner >> OWNER_PROC_BITS)
		return true; /* the entry was taken again since */
	pid = atomic_load(&p->pid);
	if (!pid)
		return true;
	return pid != UINT32_MAX && gone(p, pid);
}

/* Clears the bit of place i, found free.  A new owner may take the place
 * and set its bit between that look and the clear: so look again after
 * the clear and set the bit back if the place is taken.  The bit of a
 * taken place is then never lost (a bit of a free place may stay, for
 * the next look to clear). */
static void bit_clear(struct seg_rule *r, uint32_t i)
{
	uint64_t bit = (uint64_t)1 << (i % 64);

	atomic_fetch_and(&r->q_bits[i / 64], ~bit);
	SEG_STEP();
	if (atomic_load(&r->q_slot[i]))
		atomic_fetch_or(&r->q_bits[i / 64], bit);
}

/* Frees place i that held w (a dead owner's), bit after place. */
static void place_free(struct seg_rule *r, uint32_t i, uint64_t w)
{
	if (atomic_compare_exchange_strong(&r->q_slot[i], &w, 0)) {
		SEG_STEP();
		bit_clear(r, i);
	}
}

/* Frees the places of dead owners among the first n of r, and bits
 * left without a place; each owner is asked about once. */
static void line_sweep(struct seg *s, struct seg_rule *r, uint32_t n,
		       seg_gone_fn *gone)
{
	uint32_t seen[8], nseen = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t w = atomic_load(&r->q_slot[i]);
		uint32_t owner = (uint32_t)(w >> 32), k;

		if (!w) {
			uint64_t bit = (uint64_t)1 << (i % 64);
			if (atomic_load(&r->q_bits[i / 64]) & bit) {
				SEG_STEP();
				bit_clear(r, i);
			}
			continue;
		}
		for (k = 0; k < nseen && seen[k] != owner; k++)
			;
		if (k < nseen)
			continue; /* this owner lives: asked already */
		if (owner_gone(s, w, gone))
			place_free(r, i, w);
		else if (nseen < 8)
			seen[nseen++] = owner;
	}
}

/* Frees every place of rule ri whose owner is gone. */
void seg_line_sweep(struct seg *s, uint32_t ri, seg_gone_fn *gone)
{
	if (ri < s->nrules)
		line_sweep(s, &s->rules[ri], SEG_QUEUE, gone);
}

/* Takes a free place among the first maxp of r for me->word, looking
 * from place first on, then sets its bit. */
static int line_take(struct seg *s, struct seg_rule *r, uint32_t maxp,
		     bool sweep, seg_gone_fn *gone, struct seg_place *me,
		     uint32_t first)
{
	if (maxp > SEG_QUEUE)
		maxp = SEG_QUEUE;
	if (first >= maxp)
		first = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < maxp; k++) {
			uint32_t i = (first + k) % maxp;
			uint64_t zero = 0;

			if (atomic_load_explicit(&r->q_slot[i],
						 memory_order_relaxed) ||
			    !atomic_compare_exchange_strong(&r->q_slot[i],
							    &zero, me->word))
				continue;
			SEG_STEP();
			atomic_fetch_or(&r->q_bits[i / 64],
					(uint64_t)1 << (i % 64));
			me->slot = i;
			return 0;
		}
		if (!sweep)
			break;
		line_sweep(s, r, SEG_QUEUE, gone);
	}
	return -EAGAIN;
}

/* Takes a ticket and a place in rule ri's line. */
int seg_line_enter(struct seg *s, uint32_t ri, int proc, uint32_t maxp,
		   bool sweep, seg_gone_fn *gone, struct seg_place *me)
{
	struct seg_rule *r = &s->rules[ri];
	uint32_t gen, owner;

	if (proc < 0 || (uint32_t)proc >= s->nprocs || ri >= s->nrules)
		return -ENOENT; /* no entry: no name to wait under */
	gen = atomic_load(&s->procs[proc].gen) & OWNER_GEN_MASK;
	owner = gen << OWNER_PROC_BITS | ((uint32_t)proc + 1);
	me->ticket = atomic_fetch_add(&r->q_next, 1);
	me->word = (uint64_t)owner << 32 | me->ticket;
	SEG_STEP();
	return line_take(s, r, maxp, sweep, gone, me, 0);
}

/* Takes a place again, with the ticket me had. */
int seg_line_again(struct seg *s, uint32_t ri, uint32_t maxp, bool sweep,
		   seg_gone_fn *gone, struct seg_place *me)
{
	if (ri >= s->nrules)
		return -ENOENT;
	/* its own place first, if still free: one who counted the places
	 * while it was out then counts it once */
	return line_take(s, &s->rules[ri], maxp, sweep, gone, me, me->slot);
}

/* Live waiters that came before me, counted up to limit. */
uint32_t seg_line_ahead(struct seg *s, uint32_t ri, const struct seg_place *me,
			uint32_t limit)
{
	struct seg_rule *r = &s->rules[ri];
	uint32_t ahead = 0;

	for (uint32_t k = 0; k < SEG_QUEUE / 64 && ahead < limit; k++) {
		uint64_t bits = atomic_load(&r->q_bits[k]);

		while (bits && ahead < limit) {
			uint32_t i = k * 64 + (uint32_t)__builtin_ctzll(bits);
			uint64_t w;

			bits &= bits - 1;
			if (i == me->slot)
				continue;
			w = atomic_load(&r->q_slot[i]);
			if (!w) {
				/* a bit left by a kill: clear it (a hint; a
				 * new owner sets it again after its place) */
				SEG_STEP();
				bit_clear(r, i);
				continue;
			}
			if ((int32_t)((uint32_t)w - me->ticket) >= 0)
				continue; /* came after me */
			ahead++;
		}
	}
	return ahead;
}

/* Leaves the line: bit, then place. */
void seg_line_leave(struct seg *s, uint32_t ri, const struct seg_place *me)
{
	struct seg_rule *r = &s->rules[ri];
	uint64_t w = me->word;

	atomic_fetch_and(&r->q_bits[me->slot / 64],
			 ~((uint64_t)1 << (me->slot % 64)));
	SEG_STEP();
	atomic_compare_exchange_strong(&r->q_slot[me->slot], &w, 0);
}

/* Wakes every waiter of rule ri; keeps errno. */
void seg_line_wake(struct seg *s, uint32_t ri)
{
	struct seg_rule *r = &s->rules[ri];
	int saved = errno;

	/* waiters of all processes share this word: not a private futex */
	atomic_fetch_add(&r->q_wake, 1);
	syscall(SYS_futex, &r->q_wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	errno = saved;
}

/* Sleeps on rule ri's futex word while it holds seq, at most ns. */
void seg_line_sleep(struct seg *s, uint32_t ri, uint32_t seq, uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};
	int saved = errno;

	syscall(SYS_futex, &s->rules[ri].q_wake, FUTEX_WAIT, seq, &ts, NULL, 0);
	errno = saved;
}

/* Waiters of rule ri whose process lives, for readers. */
int32_t seg_line_count(const struct seg *s, uint32_t ri,
		       bool (*alive)(uint32_t pid, uint64_t start))
{
	const struct seg_rule *r;
	int32_t n = 0;

	if (ri >= s->nrules)
		return 0;
	r = &s->rules[ri];
	for (uint32_t i = 0; i < SEG_QUEUE; i++) {
		uint64_t w =
		    atomic_load_explicit(&r->q_slot[i], memory_order_relaxed);
		uint32_t owner = (uint32_t)(w >> 32), idx, pid;
		const struct seg_proc *p;

		if (!w)
			continue;
		idx = (owner & ((1u << OWNER_PROC_BITS) - 1)) - 1;
		if (alive) {
			if (idx >= s->nprocs)
				continue;
			p = &s->procs[idx];
			pid =
			    atomic_load_explicit(&p->pid, memory_order_relaxed);
			if ((atomic_load_explicit(&p->gen,
						  memory_order_relaxed) &
			     OWNER_GEN_MASK) != owner >> OWNER_PROC_BITS ||
			    !pid || pid > INT32_MAX ||
			    !alive(pid, atomic_load_explicit(
					    &p->start, memory_order_relaxed)))
				continue;
		}
		n++;
	}
	return n;
}

/*
 * Retry budget
 * ------------
 * Ten buckets of first attempts and ten of retries, one per second (sec
 * % 10).  Each bucket is one word: the second it counts (24 bits) and
 * its count (40 bits).  A bucket found holding an older second is
 * replaced by (this second, 1) in the same compare-and-swap that counts,
 * so no count is ever lost or left over.
 *
 * At any instant: a bucket holds the exact count of its second.  The
 * retries granted in any 10 s never exceed the share of the first
 * attempts counted meanwhile plus the minimum: each retry is counted by a
 * compare-and-swap of the very word its decision read (other buckets of
 * the window only gain first attempts, which only raise the bound).  A
 * SIGKILL leaves each word as before or after one change: nothing to
 * repair.
 */

#define BUDGET_SEC_SHIFT 40
#define BUDGET_COUNT	 ((UINT64_C(1) << BUDGET_SEC_SHIFT) - 1)
#define BUDGET_SEC_MASK	 0xffffffu

/* The count a bucket word holds for second sec (0 for another second). */
static uint64_t bucket_count(uint64_t w, uint64_t sec)
{
	return (w >> BUDGET_SEC_SHIFT) == (sec & BUDGET_SEC_MASK)
		   ? w & BUDGET_COUNT
		   : 0;
}

/* Sums the buckets of the 10 s up to sec in b. */
static uint64_t bucket_sum(_Atomic uint64_t *b, uint64_t sec)
{
	uint64_t n = 0;

	for (uint64_t k = 0; k < 10 && k <= sec; k++)
		n += bucket_count(atomic_load(&b[(sec - k) % 10]), sec - k);
	return n;
}

/* The word that counts one more in second sec after w. */
static uint64_t bucket_next(uint64_t w, uint64_t sec)
{
	uint64_t n = bucket_count(w, sec);

	if (n == BUDGET_COUNT)
		return w; /* saturated: stays */
	return (sec & BUDGET_SEC_MASK) << BUDGET_SEC_SHIFT | (n + 1);
}

/* Counts a first attempt in second sec. */
void seg_budget_first(struct seg_rule *r, uint64_t sec)
{
	_Atomic uint64_t *b = &r->budget_first[sec % 10];
	uint64_t w = atomic_load_explicit(b, memory_order_relaxed);

	while (!atomic_compare_exchange_weak(b, &w, bucket_next(w, sec)))
		SEG_STEP();
}

/* Asks the budget for one retry in second sec. */
bool seg_budget_retry(struct seg_rule *r, uint64_t sec, uint32_t ppm,
		      uint64_t min_mps)
{
	_Atomic uint64_t *mine = &r->budget_retry[sec % 10];
	uint64_t w = atomic_load(mine), first, retries;

	for (int tries = 0; tries < 1000; tries++) {
		first = bucket_sum(r->budget_first, sec);
		retries = bucket_count(w, sec);
		for (uint64_t k = 1; k < 10 && k <= sec; k++)
			retries += bucket_count(
			    atomic_load(&r->budget_retry[(sec - k) % 10]),
			    sec - k);
		SEG_STEP();
		/* share of first attempts over 10 s, plus the minimum */
		if (retries * 1000000u >= first * ppm + min_mps * 10000u)
			return false;
		if (atomic_compare_exchange_weak(mine, &w, bucket_next(w, sec)))
			return true;
	}
	return false; /* too busy to decide: no retry */
}

/*
 * Rate
 * ----
 * A GCRA: one word, the theoretical arrival time (µs) of the next
 * connect, moved forward by compare-and-swap by one step per token.  At
 * any instant the connects let through in any span of T µs number at
 * most burst + T / step + 1.  One word, one change: a SIGKILL leaves it
 * as before or after the take.  A word more than a second beyond what
 * the burst allows (corrupt, or from another clock) is taken as now; a
 * caller whose now is late by less (preempted after its clock read) is
 * refused, never let through.  The word read stays the swap's expected
 * value: a word taken as now must still be swapped away.
 */
#define RATE_SLACK_US 1000000u

bool seg_rate_take(_Atomic uint64_t *tat_word, uint64_t now, uint64_t step,
		   uint64_t burst)
{
	uint64_t seen = atomic_load(tat_word), tat, next;

	if (!step)
		step = 1;
	if (burst < 1)
		burst = 1;
	do {
		tat = seen > now + (burst + 1) * step + RATE_SLACK_US ? now
								      : seen;
		next = (tat > now ? tat : now) + step;
		if (next - now > burst * step)
			return false;
		SEG_STEP();
	} while (!atomic_compare_exchange_weak(tat_word, &seen, next));
	return true;
}
