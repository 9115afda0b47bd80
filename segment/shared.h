/* SPDX-License-Identifier: MIT */
/* The structures of the segment that many processes change at once, each
 * lock-free and each repairable after a SIGKILL at any instruction: the
 * connection count of a rule with its holders, the line of connects
 * waiting for a connection, the retry budget and the rate word.  Pure:
 * callers pass the time, and say how to tell a process that is gone. */
#ifndef FUSEBOX_SHARED_H
#define FUSEBOX_SHARED_H

#include "segment/segment.h"

#include <stdbool.h>
#include <stdint.h>

/* Tells whether the process of table entry p (which says pid) is gone;
 * the shim reads /proc, tests use their own. */
typedef bool seg_gone_fn(const struct seg_proc *p, uint32_t pid);

/* A test build (FUSEBOX_INTERLEAVE) calls seg_interleave() between the
 * steps that the invariants name, to shuffle the threads there. */
#ifdef FUSEBOX_INTERLEAVE
void seg_interleave(void);
#define SEG_STEP() seg_interleave()
#else
#define SEG_STEP() ((void)0)
#endif

/* --- connections of a rule -------------------------------------------- */
/* Who holds a reserved connection, for its release (conn.active). */
enum seg_holder {
	SEG_HOLDER_NONE,     /* nothing reserved */
	SEG_HOLDER_ANON,     /* a process with no table entry: rule.anon */
	SEG_HOLDER_OVERFLOW, /* an entry with no held[] left: overflow */
	SEG_HOLDER_HELD,     /* held[h]: SEG_HOLDER_HELD + h */
};

/* Open connections of rule ri as its count says (never below 0). */
int32_t seg_conn_count(const struct seg *s, uint32_t ri);

/* The count of rule ri with its change count: equal on two looks when no
 * connection was reserved or released in between. */
uint64_t seg_conn_seen(const struct seg *s, uint32_t ri);

/* Reserves a connection of rule ri for process entry proc (-1: none)
 * when fewer than max are open (max 0: no limit); returns the holder
 * code for seg_conn_release(), or SEG_HOLDER_NONE when the rule is full.
 * Thread-safe, lock-free. */
int seg_conn_reserve(struct seg *s, uint32_t ri, int proc, uint32_t max);

/* Gives back a connection reserve() returned holder for (same proc). */
void seg_conn_release(struct seg *s, uint32_t ri, int proc, int holder);

/* Gives back everything dead entry p holds; the caller has claimed p
 * (pid UINT32_MAX).  Returns how many connections were of rule ri. */
int seg_conn_reap_entry(struct seg *s, struct seg_proc *p, uint32_t ri);

/* Releases the connections that dead processes hold in rule ri (each
 * dead entry is claimed, emptied and freed once); returns how many. */
int seg_conn_reap(struct seg *s, uint32_t ri, seg_gone_fn *gone);

/* Sets rule ri's count to what its live holders hold, when a kill left
 * it too high; at most once per 100 ms (now_ms) and only from a
 * consistent view.  Returns how many it took off (0: nothing to do, or
 * not now). */
int seg_conn_recount(struct seg *s, uint32_t ri, uint64_t now_ms);

/* --- the line of a rule (max_pending) --------------------------------- */
/* A place in a line. */
struct seg_place {
	uint32_t slot;
	uint32_t ticket;
	uint64_t word;
};

/* Takes a place in rule ri's line for process entry proc, among its
 * first maxp places (at most SEG_QUEUE); 0, or -EAGAIN when they are
 * all taken (after a sweep for the places of the dead, if sweep). */
int seg_line_enter(struct seg *s, uint32_t ri, int proc, uint32_t maxp,
		   bool sweep, seg_gone_fn *gone, struct seg_place *me);

/* Takes a place again for me, who left the line to take a connection and
 * lost it to another: with the ticket it had, so that it keeps its turn.
 * 0, or -EAGAIN when the first maxp places are all taken. */
int seg_line_again(struct seg *s, uint32_t ri, uint32_t maxp, bool sweep,
		   seg_gone_fn *gone, struct seg_place *me);

/* Live waiters that came before me (older tickets), counted up to
 * limit (places of the dead count until a sweep frees them). */
uint32_t seg_line_ahead(struct seg *s, uint32_t ri, const struct seg_place *me,
			uint32_t limit);

/* Frees every place of rule ri whose owner is gone, and clears the bits
 * of free places (what kills leave). */
void seg_line_sweep(struct seg *s, uint32_t ri, seg_gone_fn *gone);

/* Leaves the line (wakes nobody: seg_line_wake() then, once what the
 * others look at has changed). */
void seg_line_leave(struct seg *s, uint32_t ri, const struct seg_place *me);

/* True when somebody (perhaps dead) has a place in rule ri's line: a
 * look at four words, inline, for every release.  The loads are
 * sequentially consistent: a release (count, then this look) and a waiter
 * (its bit, then a look at the count) never both miss each other. */
static inline bool seg_line_busy(const struct seg *s, uint32_t ri)
{
	_Atomic uint64_t const *b = s->rules[ri].q_bits;

	_Static_assert(SEG_QUEUE == 256, "four words of bits");
	return (atomic_load(&b[0]) | atomic_load(&b[1]) | atomic_load(&b[2]) |
		atomic_load(&b[3])) != 0;
}

/* Wakes every waiter of rule ri (a connection was released). */
void seg_line_wake(struct seg *s, uint32_t ri);

/* Sleeps until woken after seq (a value of q_wake read before the last
 * look) or for at most ns. */
void seg_line_sleep(struct seg *s, uint32_t ri, uint32_t seq, uint64_t ns);

/* Waiters in rule ri's line whose process is alive by alive() (NULL:
 * every place taken); for readers. */
int32_t seg_line_count(const struct seg *s, uint32_t ri,
		       bool (*alive)(uint32_t pid, uint64_t start));

/* --- retry budget ------------------------------------------------------- */
/* Counts a first attempt of rule ri in second sec. */
void seg_budget_first(struct seg_rule *r, uint64_t sec);

/* Asks for one retry in second sec: allowed while the retries of the
 * last 10 s stay under ppm / 10^6 of the first attempts plus min_mps
 * thousandths a second; true counts it. */
bool seg_budget_retry(struct seg_rule *r, uint64_t sec, uint32_t ppm,
		      uint64_t min_mps);

/* --- rate ---------------------------------------------------------------- */
/* Takes a token at now_us from a GCRA bucket of burst tokens refilling
 * one per step_us; true when there was one. */
bool seg_rate_take(_Atomic uint64_t *tat, uint64_t now_us, uint64_t step_us,
		   uint64_t burst);

#endif
