/* SPDX-License-Identifier: MIT */
/* Many threads race through each shared structure of the segment, with
 * yields, spins and simulated kills injected at the steps its invariants
 * name (segment/shared.c is built with FUSEBOX_INTERLEAVE), and check the
 * invariants while they run, not only at the end.  A "kill" is a thread
 * that leaves the structure's code at a random step for good (longjmp)
 * and whose fake process is then marked gone, which is what SIGKILL
 * leaves behind.  Not Criterion: it also runs under the thread sanitizer.
 *   test-concurrency [STRUCTURE ...]   (CONC_OPS, CONC_THREADS) */
#include "policy/breaker.h"
#include "segment/shared.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t ops = 1000000; /* per structure, all threads together */
static int nthreads = 8;
static struct seg sg;
static uint32_t rc, rl, rb, rk; /* the rules of conns, line, budget,
				 * breaker, made by seg_rule_get() */
static atomic_int failed;

/* Reports a broken invariant once per structure and counts it. */
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&failed, 1) > 5)
		return;
	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail(__VA_ARGS__);                                     \
	} while (0)

/* --- interleaving and kills --------------------------------------------- */
static __thread uint64_t rng;
static __thread jmp_buf *death; /* set: this thread may die at a step */
static __thread uint32_t kill_odds;
static __thread int die_at; /* > 0: die at this many steps from now */
static atomic_ullong steps;

/* A per-thread xorshift. */
static uint64_t rnd(void)
{
	if (!rng)
		rng = ((uint64_t)(uintptr_t)&rng ^ (uint64_t)time(NULL) << 20) |
		      1;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Called by segment/shared.c between the steps its invariants name. */
void seg_interleave(void)
{
	uint64_t r = rnd();

	atomic_fetch_add_explicit(&steps, 1, memory_order_relaxed);
	if (death && die_at > 0 && --die_at == 0)
		longjmp(*death, 1);
	if (death && kill_odds && r % kill_odds == 0)
		longjmp(*death, 1);
	switch (r >> 8 & 15) {
	case 0:
		sched_yield();
		break;
	case 1:
	case 2:
		for (volatile int i = 0; i < (int)(r >> 16 & 255); i++)
			;
		break;
	default:
		break;
	}
}

/* --- fake processes ---------------------------------------------------- */
/* Process entry i is "alive" while dead[i] is clear; a kill sets it. */
#define NPROCS 64
static atomic_bool dead[NPROCS];
static atomic_uint next_pid = 1000;

/* seg_gone_fn: gone when the test marked its entry dead. */
static bool fake_gone(const struct seg_proc *p, uint32_t pid)
{
	(void)pid;
	return atomic_load(&dead[p - sg.procs]);
}

/* Takes a free or dead process entry for a new fake process, as the
 * shim's registration does (what a dead one held is given back); its
 * index, or -1. */
static int proc_new(void)
{
	for (int pass = 0; pass < 1000; pass++) {
		for (uint32_t i = 0; i < sg.nprocs && i < NPROCS; i++) {
			struct seg_proc *p = &sg.procs[i];
			uint32_t pid = atomic_load(&p->pid);

			if ((pid && !atomic_load(&dead[i])) ||
			    pid == UINT32_MAX ||
			    !atomic_compare_exchange_strong(&p->pid, &pid,
							    UINT32_MAX))
				continue;
			atomic_fetch_add(&p->gen, 1);
			if (pid)
				seg_conn_reap_entry(&sg, p, UINT32_MAX);
			atomic_store(&dead[i], false);
			atomic_store(&p->pid, atomic_fetch_add(&next_pid, 1));
			return (int)i;
		}
		sched_yield(); /* all taken: wait for a reap */
	}
	return -1;
}

/* Reaps every dead entry (as the shim does on a full rule). */
static void reap_all(void)
{
	seg_conn_reap(&sg, rc, fake_gone);
	seg_conn_reap(&sg, rl, fake_gone);
	for (uint32_t i = 0; i < NPROCS && i < sg.nprocs; i++) {
		struct seg_proc *p = &sg.procs[i];
		uint32_t pid = atomic_load(&p->pid);

		/* dead entries that held nothing are freed too */
		if (pid && pid != UINT32_MAX && atomic_load(&dead[i]) &&
		    atomic_compare_exchange_strong(&p->pid, &pid, UINT32_MAX)) {
			seg_conn_reap_entry(&sg, p, UINT32_MAX);
			atomic_fetch_add(&p->gen, 1);
			atomic_store(&p->pid, 0);
		}
	}
}

/* Runs fn in nthreads threads and waits for them; then their fake
 * processes have all exited (their entries are gone, not free). */
static void run_threads(void *(*fn)(void *))
{
	pthread_t t[64];
	int n = nthreads < 64 ? nthreads : 64;

	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NPROCS; i++)
		atomic_store(&dead[i], true);
}

static atomic_ullong done; /* operations so far, all threads */
static atomic_ullong tick; /* attempts so far: the clock of recounts */

/* Milliseconds of the recount's clock: one per 8 attempts. */
static uint64_t tick_ms(void)
{
	return atomic_fetch_add(&tick, 1) / 8;
}

/* --- connections: count, holders, reap and recount --------------------- */
#define CONN_MAX 6
static atomic_int holders; /* threads that hold a connection now */
static atomic_ullong kills, recounted;

/* After a thread "died" at a step: the kernel closed its connection (if
 * it held one), its process is gone with its entry left as it was, and a
 * new process takes its place; the new entry, or -1. */
static int reborn(int proc, int holding)
{
	death = NULL;
	if (holding)
		atomic_fetch_sub(&holders, 1);
	atomic_fetch_add(&kills, 1);
	atomic_store(&dead[proc], true);
	return proc_new();
}

/* One thread: reserve, hold, release; a share of threads die at a step
 * now and then and come back as a new process. */
static void *conn_thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	bool victim = id % 2 == 1;
	volatile int proc = proc_new();
	jmp_buf jb;
	volatile int holding = 0;

	if (proc < 0)
		return NULL;
	kill_odds = victim ? 2000 : 0;
	while (atomic_fetch_add(&done, 1) < ops) {
		if (setjmp(jb)) {
			proc = reborn(proc, holding);
			holding = 0;
			if (proc < 0)
				return NULL;
			continue;
		}
		death = &jb;
		int h = seg_conn_reserve(&sg, rc, proc, CONN_MAX);
		if (h == SEG_HOLDER_NONE) {
			death = NULL;
			if (!seg_conn_reap(&sg, rc, fake_gone))
				atomic_fetch_add(&recounted,
						 (uint64_t)seg_conn_recount(
						     &sg, rc, tick_ms()));
			continue;
		}
		holding = 1;
		int n = atomic_fetch_add(&holders, 1) + 1;
		CHECK(n <= CONN_MAX, "conns: %d hold a connection, max %d", n,
		      CONN_MAX);
		seg_interleave();
		atomic_fetch_sub(&holders, 1);
		holding = 0;
		seg_conn_release(&sg, rc, proc, h);
		death = NULL;
	}
	death = NULL;
	return NULL;
}

static atomic_bool conns_done;

/* Recounts all the time (no 100 ms spacing), so that recounts race with
 * every step of reserves and releases, not only with the odd full rule. */
static void *recounter(void *arg)
{
	uint64_t ms = 1000;

	(void)arg;
	while (!atomic_load(&conns_done)) {
		ms += 100;
		atomic_fetch_add(&recounted,
				 (uint64_t)seg_conn_recount(&sg, rc, ms));
		sched_yield();
	}
	return NULL;
}

/* A process killed at step step of a reserve or a release: while it
 * lives (a window still open) no recount may touch the count; once it is
 * gone, a reap and a recount leave the count exact. */
static void conns_kill_at(int step, int release)
{
	volatile int p = proc_new(), h = SEG_HOLDER_NONE;
	jmp_buf jb;

	if (release)
		h = seg_conn_reserve(&sg, rc, p, CONN_MAX);
	if (!setjmp(jb)) {
		death = &jb;
		die_at = step;
		if (release)
			seg_conn_release(&sg, rc, p, h);
		else
			h = seg_conn_reserve(&sg, rc, p, CONN_MAX);
	}
	death = NULL;
	bool died = die_at == 0;
	die_at = 0;
	int32_t before = seg_conn_count(&sg, rc);
	/* alive, maybe in mid-step: hands off */
	atomic_store(&sg.rules[rc].recount_ms, 0);
	int took = seg_conn_recount(&sg, rc, 1u << 20);
	CHECK(!died || took == 0,
	      "conns: a recount took %d off while a %s stood at step %d", took,
	      release ? "release" : "reserve", step);
	/* gone: reaped and recounted, nothing is held */
	atomic_store(&dead[p], true);
	reap_all();
	atomic_store(&sg.rules[rc].recount_ms, 0);
	seg_conn_recount(&sg, rc, 1u << 21);
	CHECK(seg_conn_count(&sg, rc) == 0,
	      "conns: %d left after a kill at step %d of a %s (%d before)",
	      seg_conn_count(&sg, rc), step, release ? "release" : "reserve",
	      before);
}

/* Each step of a reserve and of a release in turn. */
static void conns_each_step(void)
{
	for (int step = 1; step <= 4; step++)
		for (int release = 0; release < 2; release++)
			conns_kill_at(step, release);
}

/* The connection count never lets more than max in, and after kills
 * at any step, reaping and one recount leave it exact. */
static void test_conns(void)
{
	pthread_t t;

	conns_each_step();

	pthread_create(&t, NULL, recounter, NULL);
	run_threads(conn_thread);
	atomic_store(&conns_done, true);
	pthread_join(t, NULL);
	reap_all();
	atomic_store(&sg.rules[rc].recount_ms, 0);
	atomic_fetch_add(&recounted,
			 (uint64_t)seg_conn_recount(&sg, rc, 1u << 30));
	CHECK(seg_conn_count(&sg, rc) == 0, "conns: %d left counted",
	      seg_conn_count(&sg, rc));
	for (uint32_t i = 0; i < NPROCS; i++)
		for (int h = 0; h < SEG_HELD; h++)
			CHECK(!atomic_load(&sg.procs[i].held[h].busy) ||
				  atomic_load(&dead[i]),
			      "conns: entry %u busy", i);
	/* and no wedge: a lone reserve gets in at once */
	int p = proc_new();
	int h = seg_conn_reserve(&sg, rc, p, CONN_MAX);
	CHECK(h != SEG_HOLDER_NONE, "conns: a lone reserve refused");
	seg_conn_release(&sg, rc, p, h);
	printf("  kills %llu, recounts took off %llu\n",
	       (unsigned long long)kills, (unsigned long long)recounted);
}

/* --- the line ------------------------------------------------------------ */
#define LINE_CONNS  3
#define LINE_PLACES 12
static uint32_t line_places = LINE_PLACES;
static bool line_kills = true;
static atomic_ullong admitted, refused_full, timed_out;

/* Counts the places taken among the first n. */
static uint32_t places_taken(uint32_t n)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++)
		k += atomic_load(&sg.rules[rl].q_slot[i]) != 0;
	return k;
}

/* One thread: as calls_admit() and queue_wait() do, with yields for
 * sleeps and a bounded wait. */
static void *line_thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	volatile int proc = proc_new();
	jmp_buf jb;
	volatile int holding = 0;

	if (proc < 0)
		return NULL;
	kill_odds = line_kills && id % 3 == 2 ? 1500 : 0;
	while (atomic_fetch_add(&done, 1) < ops) {
		struct seg_place me;
		int h = SEG_HOLDER_NONE;

		if (setjmp(jb)) {
			proc = reborn(proc, holding);
			holding = 0;
			if (proc < 0)
				return NULL;
			continue;
		}
		death = &jb;
		if (!seg_line_busy(&sg, rl))
			h = seg_conn_reserve(&sg, rl, proc, LINE_CONNS);
		if (h == SEG_HOLDER_NONE) {
			bool sweep = rnd() % 16 == 0;
			int e, w = 0, looks = 0;
			/* as the shim: full is every place taken while every
			 * connection stayed taken; a full line while some
			 * are free is about to move, to wait for */
			for (;;) {
				uint64_t seen = seg_conn_seen(&sg, rl);
				e = seg_line_enter(&sg, rl, proc, line_places,
						   sweep, fake_gone, &me);
				if (e != -EAGAIN)
					break;
				if (seg_conn_count(&sg, rl) >= LINE_CONNS) {
					if (seg_conn_seen(&sg, rl) == seen ||
					    ++looks > 4)
						break;
					continue;
				}
				if (w++ >= 1000) {
					e = -ETIMEDOUT;
					break;
				}
				sched_yield();
			}
			if (e < 0) {
				atomic_fetch_add(e == -ETIMEDOUT
						     ? &timed_out
						     : &refused_full,
						 1);
				death = NULL;
				continue;
			}
			CHECK(places_taken(SEG_QUEUE) <= line_places,
			      "line: more than %u places taken", line_places);
			bool in = true;
			for (int tries = 0; tries < 2000; tries++) {
				int32_t c = seg_conn_count(&sg, rl);
				uint32_t room = c < LINE_CONNS
						    ? LINE_CONNS - (uint32_t)c
						    : 0;
				if (tries % 64 == 63) {
					/* the shim's look for the dead, every
					 * so often (time passes for all) */
					(void)tick_ms();
					seg_line_sweep(&sg, rl, fake_gone);
					if (in && !room &&
					    !seg_line_ahead(&sg, rl, &me, 1) &&
					    (seg_conn_reap(&sg, rl,
							   fake_gone) ||
					     seg_conn_recount(&sg, rl,
							      tick_ms())))
						continue;
				}
				if (!in) {
					/* lost the connection it left for */
					in = seg_line_again(
						 &sg, rl, line_places, false,
						 fake_gone, &me) == 0;
				} else if (room &&
					   seg_line_ahead(&sg, rl, &me, room) <
					       room) {
					/* out of line, then a connection */
					seg_line_leave(&sg, rl, &me);
					in = false;
					h = seg_conn_reserve(&sg, rl, proc,
							     LINE_CONNS);
					if (h != SEG_HOLDER_NONE)
						break;
				}
				sched_yield();
			}
			if (in)
				seg_line_leave(&sg, rl, &me);
			if (h == SEG_HOLDER_NONE) {
				atomic_fetch_add(&timed_out, 1);
				death = NULL;
				continue;
			}
		}
		holding = 1;
		int n = atomic_fetch_add(&holders, 1) + 1;
		CHECK(n <= LINE_CONNS, "line: %d hold a connection, max %d", n,
		      LINE_CONNS);
		atomic_fetch_add(&admitted, 1);
		seg_interleave();
		atomic_fetch_sub(&holders, 1);
		holding = 0;
		seg_conn_release(&sg, rl, proc, h);
		if (seg_line_busy(&sg, rl))
			seg_line_wake(&sg, rl);
		death = NULL;
	}
	death = NULL;
	return NULL;
}

/* The line never holds more than max_pending, never lets more than
 * max_connections in, and whatever kills leave, a sweep empties it and a
 * lone arrival gets in at once. */
static void test_line(void)
{
	struct seg_place me;

	run_threads(line_thread);
	reap_all();
	atomic_store(&sg.rules[rl].recount_ms, 0);
	seg_conn_recount(&sg, rl, 1u << 30);
	int p = proc_new();
	if (p < 0) {
		fail("line: no process entry for a lone arrival");
		return;
	}
	/* a lone arrival: the line may hold places of the dead */
	if (seg_line_enter(&sg, rl, p, LINE_PLACES, true, fake_gone, &me) < 0) {
		fail("line: a lone arrival found the line full");
		return;
	}
	seg_line_sweep(&sg, rl, fake_gone);
	CHECK(seg_line_ahead(&sg, rl, &me, 1) == 0,
	      "line: a lone arrival is not first");
	int h = seg_conn_reserve(&sg, rl, p, LINE_CONNS);
	CHECK(h != SEG_HOLDER_NONE, "line: a lone arrival refused (count %d)",
	      seg_conn_count(&sg, rl));
	seg_line_leave(&sg, rl, &me);
	seg_conn_release(&sg, rl, p, h);
	CHECK(places_taken(SEG_QUEUE) == 0, "line: %u places left taken",
	      places_taken(SEG_QUEUE));
	for (uint32_t i = 0; i < SEG_QUEUE; i++) {
		uint64_t w = atomic_load(&sg.rules[rl].q_slot[i]);
		uint32_t o = (uint32_t)(w >> 32), x = (o & 0xfffff) - 1;
		if (w)
			fprintf(stderr,
				"  place %u: ticket %u entry %u gen %u; "
				"entry pid %u gen %u dead %d\n",
				i, (uint32_t)w, x, o >> 20, sg.procs[x].pid,
				sg.procs[x].gen & 0xfff, (int)dead[x]);
	}
	CHECK(!seg_line_busy(&sg, rl), "line: bits left set");
	CHECK(seg_conn_count(&sg, rl) == 0, "line: %d connections left",
	      seg_conn_count(&sg, rl));
	printf("  admitted %llu, line full %llu, timed out %llu, kills %llu\n",
	       (unsigned long long)admitted, (unsigned long long)refused_full,
	       (unsigned long long)timed_out, (unsigned long long)kills);
}

/* As many threads as connections and places: none of them may find the
 * line full, whatever the interleaving.  A waiter that took its
 * connection before it left its place filled the line for a moment (one
 * refusal in 3,200 connects of 80 threads, under TSan). */
static void test_room(void)
{
	line_places =
	    nthreads > LINE_CONNS ? (uint32_t)nthreads - LINE_CONNS : 1;
	line_kills = false;
	atomic_store(&admitted, 0);
	atomic_store(&refused_full, 0);
	atomic_store(&timed_out, 0);
	run_threads(line_thread);
	line_places = LINE_PLACES;
	line_kills = true;
	CHECK(refused_full == 0,
	      "room: %llu found the line full, %d threads, %d connections "
	      "and %d places",
	      (unsigned long long)refused_full, nthreads, LINE_CONNS,
	      nthreads - LINE_CONNS);
	CHECK(places_taken(SEG_QUEUE) == 0, "room: %u places left taken",
	      places_taken(SEG_QUEUE));
	CHECK(seg_conn_count(&sg, rl) == 0, "room: %d connections left",
	      seg_conn_count(&sg, rl));
	printf("  admitted %llu, line full %llu, timed out %llu\n",
	       (unsigned long long)admitted, (unsigned long long)refused_full,
	       (unsigned long long)timed_out);
}

/* --- retry budget ------------------------------------------------------- */
#define BUDGET_PPM 200000u /* 20% */
#define BUDGET_MIN 2000u   /* 2/s */
#define SECS	   4096
static pthread_rwlock_t clock_lock = PTHREAD_RWLOCK_INITIALIZER;
static _Atomic uint64_t fake_now;
static atomic_uint firsts[SECS], grants[SECS];

/* Moves the fake clock by one unit, between operations. */
static void clock_tick(void)
{
	pthread_rwlock_wrlock(&clock_lock);
	atomic_fetch_add(&fake_now, 1);
	pthread_rwlock_unlock(&clock_lock);
}

/* One thread: first attempts and retries, and after each granted retry
 * the check that the window's grants stay within the budget. */
static void *budget_thread(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&done, 1) < ops) {
		uint64_t r = rnd();

		if (r % 5000 == 0) {
			clock_tick();
			continue;
		}
		pthread_rwlock_rdlock(&clock_lock);
		uint64_t sec = atomic_load(&fake_now);
		if (sec >= SECS) {
			pthread_rwlock_unlock(&clock_lock);
			break;
		}
		if (r % 4 != 0) {
			/* the test's tally first: it is never below the
			 * structure's */
			atomic_fetch_add(&firsts[sec], 1);
			seg_budget_first(&sg.rules[rb], sec);
		} else if (seg_budget_retry(&sg.rules[rb], sec, BUDGET_PPM,
					    BUDGET_MIN)) {
			uint64_t g = atomic_fetch_add(&grants[sec], 1) + 1;
			uint64_t f = 0;
			for (uint64_t k = 0; k < 10 && k <= sec; k++) {
				f += atomic_load(&firsts[sec - k]);
				if (k)
					g += atomic_load(&grants[sec - k]);
			}
			/* granted while R * 10^6 < F * ppm + min * 10^4 */
			uint64_t bound =
			    (f * BUDGET_PPM + BUDGET_MIN * 10000u + 999999u) /
			    1000000u;
			CHECK(g <= bound,
			      "budget: %" PRIu64
			      " retries in 10 s over %" PRIu64
			      " first attempts, bound %" PRIu64,
			      g, f, bound);
		}
		pthread_rwlock_unlock(&clock_lock);
	}
	return NULL;
}

/* Retries granted in any 10 s stay within share and minimum. */
static void test_budget(void)
{
	uint64_t g = 0;

	run_threads(budget_thread);
	for (int i = 0; i < SECS; i++)
		g += grants[i];
	CHECK(g > 0, "budget: no retry was ever granted");
	printf("  seconds %" PRIu64 ", retries granted %" PRIu64 "\n",
	       (uint64_t)atomic_load(&fake_now), g);
}

/* --- rate ------------------------------------------------------------------
 */
#define RATE_STEP  100u /* µs a token */
#define RATE_BURST 20u
#define TICKS	   65536
static _Atomic uint64_t rate_word;
static atomic_uint taken_at[TICKS];
static atomic_ullong taken;

/* Checks every window that ends at tick now (clock write-locked). */
static void rate_check(uint64_t now)
{
	uint64_t n = 0;

	for (uint64_t len = 1; len <= 256 && len <= now + 1; len++) {
		n += atomic_load(&taken_at[now + 1 - len]);
		/* ticks are 10 µs: len ticks span (len - 1) * 10 µs */
		uint64_t bound = RATE_BURST + (len - 1) * 10 / RATE_STEP + 1;
		CHECK(n <= bound,
		      "rate: %" PRIu64 " taken in %" PRIu64 " ticks, bound "
		      "%" PRIu64,
		      n, len, bound);
	}
}

/* One thread: takes tokens; the clock moves in 10 µs ticks. */
static void *rate_thread(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&done, 1) < ops) {
		uint64_t r = rnd();

		if (r % 16 == 0) {
			pthread_rwlock_wrlock(&clock_lock);
			uint64_t now = atomic_load(&fake_now);
			rate_check(now);
			if (now + 1 < TICKS)
				atomic_store(&fake_now, now + 1);
			pthread_rwlock_unlock(&clock_lock);
			continue;
		}
		pthread_rwlock_rdlock(&clock_lock);
		uint64_t now = atomic_load(&fake_now);
		if (seg_rate_take(&rate_word, 1000000 + now * 10, RATE_STEP,
				  RATE_BURST)) {
			atomic_fetch_add(&taken_at[now], 1);
			atomic_fetch_add(&taken, 1);
		}
		pthread_rwlock_unlock(&clock_lock);
	}
	return NULL;
}

/* No span lets more through than the burst and the refill. */
static void test_rate(void)
{
	atomic_store(&fake_now, 0);
	run_threads(rate_thread);
	rate_check(atomic_load(&fake_now));
	uint64_t now = atomic_load(&fake_now);
	CHECK(taken >= RATE_BURST &&
		  taken <= RATE_BURST + now * 10 / RATE_STEP + 1,
	      "rate: %llu taken in %" PRIu64 " ticks",
	      (unsigned long long)taken, now);
	printf("  ticks %" PRIu64 ", tokens taken %llu\n", now,
	       (unsigned long long)taken);
}

/* --- counters and histograms --------------------------------------------- */
static atomic_ullong added[SEG_NCOUNTERS], hist_adds;
static atomic_bool writers_done;

/* Reads the counters and the histogram while writers add, and checks
 * that nothing ever goes back. */
static void *counter_reader(void *arg)
{
	uint64_t last[SEG_NCOUNTERS] = {0}, lasth = 0;

	(void)arg;
	while (!atomic_load(&writers_done)) {
		uint64_t h = 0;
		for (int k = 0; k < SEG_NCOUNTERS; k++) {
			uint64_t v = atomic_load(&sg.addrs[0].counter[k]);
			CHECK(v >= last[k], "counters: %d went back", k);
			last[k] = v;
		}
		for (int b = 0; b < SEG_HIST_BUCKETS; b++)
			h += atomic_load(&sg.addrs[0].connect_us.bucket[b]);
		/* buckets are read one by one: the sum may only be late */
		CHECK(h <= atomic_load(&hist_adds), "histogram: ahead");
		CHECK(h >= lasth || h + (uint64_t)nthreads >= lasth,
		      "histogram: went back");
		lasth = h;
	}
	return NULL;
}

/* One thread: adds to counters and the histogram, tallying what it
 * added before, so that readers are never ahead of the tally. */
static void *counter_thread(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&done, 1) < ops) {
		uint64_t r = rnd();
		int k = (int)(r % SEG_NCOUNTERS);

		atomic_fetch_add(&added[k], r >> 60);
		atomic_fetch_add(&sg.addrs[0].counter[k], r >> 60);
		atomic_fetch_add(&hist_adds, 1);
		seg_hist_add(&sg.addrs[0].connect_us, (r >> 20) % 5000000);
	}
	return NULL;
}

/* Counters and histograms add up exactly, and never go back. */
static void test_counters(void)
{
	pthread_t reader;
	uint64_t h = 0;

	pthread_create(&reader, NULL, counter_reader, NULL);
	run_threads(counter_thread);
	atomic_store(&writers_done, true);
	pthread_join(reader, NULL);
	for (int k = 0; k < SEG_NCOUNTERS; k++)
		CHECK(atomic_load(&sg.addrs[0].counter[k]) == added[k],
		      "counters: %d is off", k);
	for (int b = 0; b < SEG_HIST_BUCKETS; b++)
		h += atomic_load(&sg.addrs[0].connect_us.bucket[b]);
	CHECK(h == hist_adds, "histogram: %" PRIu64 " of %llu", h,
	      (unsigned long long)hist_adds);
	CHECK(seg_hist_quantile(&sg.addrs[0].connect_us, 0.5) <=
		  seg_hist_quantile(&sg.addrs[0].connect_us, 0.99),
	      "histogram: p50 above p99");
	printf("  histogram adds %llu\n", (unsigned long long)hist_adds);
}

/* --- breaker record ----------------------------------------------------------
 */
static struct breaker_config bcfg;
static atomic_ullong quiet_admits, lock_deaths;

/* The breaker's own invariants; the caller holds its lock. */
static void breaker_invariants(const struct breaker *b)
{
	enum breaker_state st = breaker_current(b);

	CHECK(b->state <= BREAKER_HALF_OPEN, "breaker: state %u", b->state);
	if (st == BREAKER_CLOSED)
		CHECK(b->consecutive < bcfg.failures,
		      "breaker: closed with %u consecutive failures",
		      b->consecutive);
	if (st == BREAKER_HALF_OPEN)
		CHECK(b->probes_admitted <= bcfg.probes &&
			  b->probes_ok <= b->probes_admitted,
		      "breaker: %u probes of %u, %u ok", b->probes_admitted,
		      bcfg.probes, b->probes_ok);
	if (st == BREAKER_OPEN)
		CHECK(b->until_ms >= b->since_ms,
		      "breaker: open from %" PRIu64 " until %" PRIu64
		      " (period %" PRIu64 ")",
		      b->since_ms, b->until_ms, b->period_ms);
}

/* A thread that dies holding the lock: the next taker must recover. */
__attribute__((unused)) static void *lock_and_die(void *arg)
{
	struct seg_rule *r = arg;

	if (seg_lock(&r->lock) == 0)
		atomic_fetch_add(&lock_deaths, 1);
	return NULL; /* exits holding it: EOWNERDEAD for the next */
}

/* One thread: admission (lock-free when quiet) and outcomes under the
 * robust lock, checking the invariants each time it holds the lock. */
static void *breaker_thread(void *arg)
{
	struct seg_rule *r = &sg.rules[rk];
	struct breaker *b = &r->breaker;
	int id = (int)(intptr_t)arg;

	(void)id;
	while (atomic_fetch_add(&done, 1) < ops) {
		uint64_t now = atomic_load(&done) / 16;
		uint64_t x = rnd();
		bool probe = false;
		int verdict = BREAKER_ALLOW;

#ifndef __SANITIZE_THREAD__
		/* the thread sanitizer does not model a robust mutex handed
		 * on by EOWNERDEAD: it would see every later section as a
		 * race; lock holders die only in the plain build */
		if (id == 0 && x % 20000 == 0) {
			pthread_t t;
			pthread_create(&t, NULL, lock_and_die, r);
			pthread_join(t, NULL);
			continue;
		}
#endif
		if (breaker_quiet(b)) {
			atomic_fetch_add(&quiet_admits, 1);
		} else {
			if (seg_lock(&r->lock) < 0)
				continue;
			/* the clock is read under the lock, as the shim does */
			verdict = breaker_allow(b, &bcfg,
						atomic_load(&done) / 16, NULL);
			breaker_invariants(b);
			if (verdict == BREAKER_PROBE)
				probe = true;
			seg_unlock(&r->lock);
			if (verdict == BREAKER_REJECT)
				continue;
		}
		sched_yield();
		/* failures come in runs, so the breaker opens and closes */
		bool bad = (now / 256) % 3 == 0 ? x % 2 == 0 : x % 50 == 0;
		if (seg_lock(&r->lock) < 0)
			continue;
		breaker_record(b, &bcfg, atomic_load(&done) / 16,
			       bad ? BREAKER_FAILURE : 0, probe,
			       (uint32_t)(x >> 32), NULL);
		breaker_invariants(b);
		seg_unlock(&r->lock);
	}
	return NULL;
}

/* The breaker record keeps its invariants under its robust lock, across
 * lock holders that die, with lock-free admission of a closed breaker
 * beside it. */
static void test_breaker(void)
{
	breaker_config_default(&bcfg);
	bcfg.mode = BREAKER_MODE_ON;
	bcfg.failures = 3;
	bcfg.open_ms = 20;
	bcfg.open_max_ms = 80;
	bcfg.probes = 2;
	bcfg.probe_timeout_ms = 50;
	run_threads(breaker_thread);
	CHECK(seg_lock(&sg.rules[rk].lock) == 0, "breaker: lock lost");
	breaker_invariants(&sg.rules[rk].breaker);
	seg_unlock(&sg.rules[rk].lock);
	printf("  lock-free admits %llu, lock holders died %llu\n",
	       (unsigned long long)quiet_admits,
	       (unsigned long long)lock_deaths);
}

/* --- main -------------------------------------------------------------------
 */
static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
    {"conns", test_conns},     {"line", test_line}, {"room", test_room},
    {"budget", test_budget},   {"rate", test_rate}, {"counters", test_counters},
    {"breaker", test_breaker},
};

int main(int argc, char **argv)
{
	struct seg_sizes sz = {.procs = NPROCS, .rules = 4, .addrs = 4};
	const char *v;
	int bad = 0;

	if ((v = getenv("CONC_OPS")) && atoll(v) > 0)
		ops = (uint64_t)atoll(v);
	if ((v = getenv("CONC_THREADS")) && atoi(v) > 0)
		nthreads = atoi(v);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (seg_private(&sz, &sg) < 0) {
		fprintf(stderr, "test-concurrency: no memory\n");
		return 1;
	}
	/* rules as the shim makes them: robust locks and all */
	int r0 = seg_rule_get(&sg, "conns"), r1 = seg_rule_get(&sg, "line"),
	    r2 = seg_rule_get(&sg, "budget"), r3 = seg_rule_get(&sg, "breaker");
	if (r0 < 0 || r1 < 0 || r2 < 0 || r3 < 0) {
		fprintf(stderr, "test-concurrency: no rules\n");
		return 1;
	}
	rc = (uint32_t)r0, rl = (uint32_t)r1, rb = (uint32_t)r2,
	rk = (uint32_t)r3;
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], tests[i].name);
		if (!want)
			continue;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		atomic_store(&done, 0);
		atomic_store(&kills, 0);
		atomic_store(&failed, 0);
		atomic_store(&steps, 0);
		printf("%s: %" PRIu64 " operations, %d threads\n",
		       tests[i].name, ops, nthreads);
		tests[i].fn();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("  %llu interleaving points, %.1f s: %s\n",
		       (unsigned long long)steps,
		       (double)(t1.tv_sec - t0.tv_sec) +
			   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		       failed ? "FAIL" : "ok");
		bad |= failed != 0;
	}
	seg_close(&sg);
	return bad;
}
