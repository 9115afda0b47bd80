/* SPDX-License-Identifier: MIT */
/* Internals of libfusebox.so shared by its modules: the real libc entry
 * points, the per-fd connection table, the deadline thread, the resolver
 * memory, logging and the loaded policy. */
#ifndef FUSEBOX_SHIM_H
#define FUSEBOX_SHIM_H

#include "policy/breaker.h"
#include "policy/policy.h"
#include "segment/segment.h"
#include "shim/h2.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Everything declared here is internal: direct, GOT-free access. */
#pragma GCC visibility push(hidden)

#define EXPORT	    __attribute__((visibility("default")))
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TLS	    __thread __attribute__((tls_model("initial-exec")))

/* --- real.c: the next definition of every symbol we replace ----------- */
struct real {
#define TRAMPOLINE(ret, fail, name, field, params, args) ret(*field) params;
#define VARIADIC(ret, name, field, params, args)	 ret(*field) params;
#include "real.def"
#undef TRAMPOLINE
#undef VARIADIC
};

extern struct real real;

/* Binds every real_* pointer once; safe from any thread, any time. */
void real_bind(void);

/* --- clock.c: the clocks ------------------------------------------- */
/* Monotonic clock in ns (CLOCK_MONOTONIC). */
uint64_t clock_ns(void);

/* A cheaper monotonic clock, never behind clock_ns(): the coarse clock
 * plus its resolution.  For deadlines, which may then be a tick late. */
uint64_t clock_coarse_ns(void);

/* --- life.c: the process's life (called by all, calls none back) ------ */
/* The parts that act at fork, in the order they take their locks. */
enum life_rank {
	LIFE_POLICY,
	LIFE_DNS,
	LIFE_TIMER,
	LIFE_CALLS,
	LIFE_KINDS,
	LIFE_PARTS
};

/* A module's handlers: prepare before fork (take its locks), parent and
 * child after it, exit at the library's destructor; any may be NULL. */
struct life_part {
	void (*prepare)(void);
	void (*parent)(void);
	void (*child)(void);
	void (*exit)(void);
};

/* Takes part in the process's life at rank; from a constructor only. */
void life_join(enum life_rank rank, const struct life_part *part);

/* True in a vfork() or posix_spawn() child, which runs in its parent's
 * memory: hooks must not change state there (the parent's). */
bool life_borrowed_memory(void);

/* --- conn: what we know of one guarded socket, in the fd table -------- */
enum conn_deadline { DL_CONNECT, DL_RESPONSE, DL_IDLE, DL_SEND, DL_COUNT };

/* conn.watch: what a hook must do besides calling libc.  Zero for a
 * guarded socket with nothing to watch, so its hooks cost a lookup. */
#define W_ABORTED    0x1u  /* abort_errno waits to be delivered */
#define W_CONNECTING 0x2u  /* a non-blocking connect is in progress */
#define W_RESPONSE   0x4u  /* response_timeout: arm on send, disarm on recv */
#define W_IDLE	     0x8u  /* idle_timeout: count activity */
#define W_SEND	     0x10u /* send_timeout */
#define W_COUNT	     0x20u /* calls and bytes go to the segment */
#define W_H2	     0x40u /* HTTP/2, or not known yet: shim/streams.c */
#define W_TLS                                                                  \
	0x80u		   /* TLS seen in OpenSSL: plaintext makes the         \
			    * calls (shim/tls.c); the socket's own I/O only    \
			    * counts bytes and activity */
#define W_HANDSHAKE 0x100u /* with W_TLS: the handshake is not done */
#define W_REPLAY    0x200u /* requests kept to replay them: replay.c */

/* conn.call: where the current call (connect, then one exchange) is. */
enum conn_call {
	CALL_NONE,	 /* between exchanges */
	CALL_CONNECTING, /* a non-blocking connect in progress */
	CALL_CONNECTED,	 /* connected, the first exchange not started */
	CALL_WAITING,	 /* sent, waiting for the first reply byte */
};

/* What a connection takes from its rule, computed once per policy load
 * and copied whole at connect (see struct conn_cfg and conn.cfg). */
#define CONN_CFG_FIELDS                                                        \
	int rule; /* rule index at connect; -1: [default] */                   \
	uint32_t connect_ms, response_ms, idle_ms, send_ms, handshake_ms;      \
	uint8_t scope;	  /* enum policy_scope */                              \
	uint8_t classify; /* enum policy_classify */                           \
	uint8_t failover; /* policy failover = on */                           \
	int reject_errno;                                                      \
	struct breaker_config bcfg;                                            \
	/* admission (calls_admit): rate limit and fault injection */          \
	uint64_t rate_mps; /* thousandths of a connect per second */           \
	uint32_t rate_burst;                                                   \
	uint32_t grpc_fail_on; /* classify = grpc: statuses that fail */       \
	uint32_t fault_abort_ppm, fault_delay_ppm;                             \
	uint64_t fault_delay_ms;                                               \
	uint32_t max_connections; /* 0: none */                                \
	uint32_t max_pending;                                                  \
	uint32_t queue_timeout_ms;                                             \
	/* retries of connects */                                              \
	uint32_t retries, retry_on;                                            \
	uint32_t retry_backoff_ms, retry_backoff_max_ms;                       \
	uint32_t retry_budget_ppm;                                             \
	uint64_t retry_budget_min_mps;

struct conn_cfg {
	CONN_CFG_FIELDS
};

struct conn {
	_Atomic uint32_t live;	       /* nonzero: guarded; read without lock */
	_Atomic uint32_t watch;	       /* W_* */
	atomic_flag lock;	       /* taken by close paths and the timer */
	_Atomic bool nonblock;	       /* O_NONBLOCK is set on the file */
	_Atomic bool awaiting;	       /* data sent, no reply byte yet */
	_Atomic int abort_errno;       /* set when fusebox aborted the socket */
	_Atomic uint64_t activity;     /* bumped by I/O when W_IDLE */
	_Atomic uint64_t dl[DL_COUNT]; /* monotonic ns; 0: not armed */
	uint64_t ino; /* socket inode: the timer's identity check */
	/* the rule's settings, by name or as one block */
	union {
		struct conn_cfg cfg;
		struct {
			CONN_CFG_FIELDS
		};
	};
	uint64_t idle_seen, idle_since; /* timer-only bookkeeping */
	uint64_t send_seen, send_since;
	uint64_t sndtimeo_ms; /* what the program set, for connect */
	/* calls, counters and breakers (calls.c) */
	_Atomic uint8_t call; /* enum conn_call; exchanged to end a call */
	uint8_t probe;	      /* the call is a half-open probe */
	uint8_t active;	      /* enum seg_holder: how the connection is
			       * counted in its rule's; 0: it is not */
	uint8_t polled;	      /* POLLED_*: no stale check on this connection */
	int32_t saddr, srule; /* segment indexes; -1: not counted */
	uint64_t connect_ns;  /* connect started */
	uint64_t wait_ns;     /* the exchange started (first send) */
	uint64_t connect_dur_ns;   /* how long the connect took */
	uint64_t out, in;	   /* bytes not yet added to the segment */
	uint8_t retrying;	   /* the connect being admitted is a retry */
	uint8_t looked;		   /* calls_shut() said no at connect_ns */
	uint8_t rejected;	   /* why calls_admit() refused: REJECT_* */
	uint8_t swapped;	   /* a retry put a fresh socket at the fd */
	uint8_t connect_timed_out; /* the timer ended a non-blocking connect */
	int fd;			   /* the slot's own fd (fdt_slot) */
	uint8_t quick;		   /* a success needs no more than counters
				    * and a look at the breaker (calls_ok) */
	uint8_t sample;		   /* calls started, for latency samples */
	int fl;			   /* the file's flags (F_GETFL) at connect */
	struct sockaddr_in6 peer;  /* where the program connects (v4 or v6) */
	socklen_t peerlen;
	struct h2 h2;	       /* HTTP/2 streams (W_H2), under the lock */
	void *_Atomic tls_ssl; /* the SSL object tied to it (tls.c) */
} __attribute__((aligned(1024)));

/* conn.polled */
#define POLLED_NO_SWAP                                                         \
	0x1		    /* never a fresh socket at the fd: a dup's         \
			     * copy, or in more epoll sets than noted */
#define POLLED_NOT_HTTP 0x2 /* its first request was no HTTP/1.x */

/* A power of two: fdt_get() finds a slot with one shift. */
_Static_assert(sizeof(struct conn) == 1024, "struct conn outgrew 1024 bytes");

/* Fields of a conn that the program's threads and the deadline thread
 * both touch (the call's times, its bytes, probe) are read and written as
 * relaxed atomics: no lock and no fence (plain moves on x86), no data
 * race; the call itself is handed over by exchanging conn.call. */
#define CONN_GET(f)    __atomic_load_n(&(f), __ATOMIC_RELAXED)
#define CONN_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)

/* conn.rejected */
#define REJECT_BREAKER 1

#define FDT_CHUNK  1024
#define FDT_CHUNKS 1024 /* fds 0 .. 1,048,575 */

extern struct conn *_Atomic fdt[FDT_CHUNKS];
extern atomic_int fdt_max; /* highest fd ever guarded, for the timer */

/* Looks up the guarded connection of fd: two loads, no lock. */
static inline struct conn *fdt_get(int fd)
{
	struct conn *chunk;
	struct conn *c;

	if (UNLIKELY((unsigned)fd >= FDT_CHUNK * FDT_CHUNKS))
		return NULL;
	chunk = atomic_load_explicit(&fdt[(unsigned)fd / FDT_CHUNK],
				     memory_order_acquire);
	if (LIKELY(!chunk))
		return NULL;
	c = &chunk[(unsigned)fd % FDT_CHUNK];
	return atomic_load_explicit(&c->live, memory_order_acquire) ? c : NULL;
}

/* Returns the slot of fd, mapping its chunk if needed; NULL if fd is out
 * of range or memory is short.  Connect path only. */
struct conn *fdt_slot(int fd);

/* What does not fit a struct conn lives beside it, by fd, in a side
 * table per kind; its owner frees it when the fd is closed. */
enum fdt_side {
	FDT_SIDE_H2,	 /* streams.c: the HPACK decoder */
	FDT_SIDE_REPLAY, /* replay.c: the request kept */
	FDT_SIDE_EPOLL,	 /* connect.c: the epoll sets of the fd */
	FDT_SIDES
};

extern void **_Atomic fdt_sides[FDT_SIDES];

/* Maps side table k if need be; the slot of fd, or NULL. */
void **fdt_side_map(enum fdt_side k, int fd);

/* The slot of fd in side table k (mapped when create), or NULL. */
static inline void **fdt_side(enum fdt_side k, int fd, bool create)
{
	void **t = atomic_load_explicit(&fdt_sides[k], memory_order_acquire);

	if (LIKELY(t) && LIKELY((unsigned)fd < FDT_CHUNK * FDT_CHUNKS))
		return &t[fd];
	return create ? fdt_side_map(k, fd) : NULL;
}

/* What socket() said of each fd, FDK_* bits, so that a connect needs
 * no system call to learn it (0: unknown, ask the kernel).  A cache:
 * set only by our socket(), cleared by every close, dup target and fork
 * we see; an fd closed behind our back keeps its bits until its number
 * is reused by our socket() (docs/design.md, the kind table). */
/* FDK_TCP: AF_INET or AF_INET6, SOCK_STREAM, TCP; FDK_NONBLOCK:
 * O_NONBLOCK (SOCK_NONBLOCK, F_SETFL, FIONBIO); FDK_FLAGS: F_SETFL set
 * flags besides O_NONBLOCK. */
#define FDK_TCP	     0x1
#define FDK_NONBLOCK 0x2
#define FDK_FLAGS    0x4
extern uint8_t *_Atomic fdt_kinds;

static inline uint8_t fdt_kind(int fd)
{
	uint8_t *t = atomic_load_explicit(&fdt_kinds, memory_order_acquire);

	if (LIKELY(t) && LIKELY((unsigned)fd < FDT_CHUNK * FDT_CHUNKS))
		return __atomic_load_n(&t[fd], __ATOMIC_RELAXED);
	return 0;
}

/* Sets the kind of fd (maps the table at the first nonzero k). */
void fdt_kind_set(int fd, uint8_t k);

/* Forgets the kind of fd, if it has one: every close. */
static inline void fdt_kind_forget(int fd)
{
	uint8_t *t = atomic_load_explicit(&fdt_kinds, memory_order_acquire);

	if (t && (unsigned)fd < FDT_CHUNK * FDT_CHUNKS &&
	    __atomic_load_n(&t[fd], __ATOMIC_RELAXED))
		__atomic_store_n(&t[fd], 0, __ATOMIC_RELAXED);
}

/* Marks c's slot free and its deadlines gone; caller holds c's lock. */
void fdt_clear(struct conn *c);

/* Makes newfd guarded like oldfd (dup family). */
void fdt_copy(int oldfd, int newfd);

static inline void conn_lock(struct conn *c)
{
	while (
	    atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
		__builtin_ia32_pause();
}

static inline void conn_unlock(struct conn *c)
{
	atomic_flag_clear_explicit(&c->lock, memory_order_release);
}

/* --- timer.c: the deadline thread ------------------------------------- */
extern atomic_int timer_started;
extern _Atomic uint64_t timer_next;

/* Starts the thread if needed and wakes it to rescan. */
void timer_kick(void);

/* The earliest deadline of each group of 64 fds, bitwise inverted (0:
 * none), so that the thread scans only the groups that are due.  A hook
 * lowers it after it stores a deadline; the thread resets a group to 0
 * before it scans it and lowers it again with what it found: whichever
 * comes first, a deadline stored before the thread's reset is seen by its
 * scan, one stored after lowers the group itself (all sequentially
 * consistent). */
#define TIMER_GROUP 64
extern _Atomic uint64_t timer_groups[FDT_CHUNK * FDT_CHUNKS / TIMER_GROUP];

static inline __attribute__((always_inline)) void timer_group_lower(
    int fd, uint64_t when)
{
	_Atomic uint64_t *g = &timer_groups[(unsigned)fd / TIMER_GROUP];
	uint64_t v = ~when, cur = atomic_load(g);

	while (v > cur && !atomic_compare_exchange_weak(g, &cur, v))
		;
}

/* Arms deadline d of c at when (ns); starts the thread on first use.  The
 * store is sequentially consistent so that the thread, which publishes
 * timer_next = 0 before it scans, either sees it or gets woken. */
static inline __attribute__((always_inline)) void timer_arm(
    struct conn *c, enum conn_deadline d, uint64_t when)
{
	uint64_t next;

	atomic_store(&c->dl[d], when);
	timer_group_lower(c->fd, when);
	next = atomic_load(&timer_next);
	if (UNLIKELY(
		when < next || !next ||
		!atomic_load_explicit(&timer_started, memory_order_relaxed)))
		timer_kick();
}

/* Aborts the socket of c with err: the program's next I/O fails with err
 * and its event loop wakes.  Caller holds c's lock. */
void timer_abort(int fd, struct conn *c, int err);

/* What the thread does with a passed deadline d of fd (caller holds c's
 * lock): returns the next deadline of that kind, 0 for none. */
typedef uint64_t timer_fire_fn(int fd, struct conn *c, enum conn_deadline d,
			       uint64_t now);

/* Sets what the thread calls for a passed deadline (the watcher, watch.c,
 * from its constructor): the timer itself knows no protocol. */
void timer_on_fire(timer_fire_fn *fn);

/* --- dns.c: which names the program resolved to which addresses ------- */
/* Remembers that name resolved to the address in sa. */
void dns_remember(const char *name, const struct sockaddr *sa);
void dns_remember_raw(const char *name, int family, const void *addr);

/* Fills names (each up to 256 bytes) for the address in sa; returns how
 * many (at most max). */
size_t dns_lookup(const struct sockaddr *sa, char (*names)[256], size_t max);

/* A number that changes whenever a name gets a new address: a match made
 * under the same number saw the same names. */
uint32_t dns_generation(void);

/* Fills out (16-byte keys, v4-mapped for IPv4) with the addresses that
 * the name sa's address was resolved under resolved to, sa's own
 * included, of sa's family, in resolution order; returns how many (at
 * most max, itself at most DNS_SIBLINGS_MAX; 0: never resolved); *self
 * receives the position of sa's own address. */
#define DNS_SIBLINGS_MAX 8
size_t dns_siblings(const struct sockaddr *sa, uint8_t (*out)[16], size_t max,
		    size_t *self);

/* --- state.c: init, policy, reload, logging --------------------------- */
extern atomic_int shim_disabled; /* FUSEBOX_DISABLE=1 or init failure */
extern TLS int shim_busy;	 /* re-entrancy guard */

/* Logs one line on stderr at level (POLICY_LOG_*); keeps errno. */
void shim_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Decides whether a connect to sa is guarded: copies the settings of the
 * matching rule into c, finds its segment entries, and returns true; false
 * means pass through. */
bool state_classify(const struct sockaddr *sa, struct conn *c);

/* The settings of this thread's last destination, if sa is it and
 * neither the policy nor the names changed since: 1 with *cfg (this
 * thread's copy, good until its next connect), the segment rule and
 * address (-1: not counted); 0 when sa is not guarded; -1 when
 * state_classify() must decide.  No lock, no copy.  now: the time (ns)
 * or 0. */
int state_last(const struct sockaddr *sa, uint64_t now,
	       const struct conn_cfg **cfg, int32_t *srule, int32_t *saddr);

/* When the policy file is next looked at for a reload (monotonic ns; 0:
 * never), and that look, done ahead ns early: the deadline thread
 * does it before a connect finds it due, so that no connect parses a
 * policy. */
uint64_t state_reload_due(void);
void state_reload_ahead(uint64_t now, uint64_t ahead);

/* True when the policy in force guards some destination. */
bool state_policy(void);

/* Copies the effective settings of rule (-1: [default]) of the policy
 * now loaded into out; false when there is none. */
bool state_settings(int rule, struct policy_settings *out);

/* The segment this process writes (shared, or private). */
extern struct seg shim_seg;

/* This process's slot in the process table, or -1. */
extern int shim_proc;

/* Releases the connections held by processes that died (SIGKILL) in
 * rule, or what a kill in mid-step left in its count; returns how many
 * were released. */
int state_reap(uint32_t rule);

/* True when the process of table entry p, which says pid, is gone (no
 * such pid, a zombie, or a later process with its pid): seg_gone_fn. */
bool state_gone(const struct seg_proc *p, uint32_t pid);

/* A random number, per thread, no locks. */
uint32_t shim_random(void);

/* --- calls.c: calls, counters and breakers ----------------------------- */
/* Asks the breaker, the rate limit and fault injection whether a connect
 * of c may go ahead (and delays it when fault_delay says so); 0, or -1
 * with errno = the rule's reject_errno after counting the rejection. */
int calls_admit(struct conn *c);

/* True when a connect with settings cfg to segment rule srule and
 * address saddr is refused at once: the rule forced open, or its breaker
 * open inside its period (a look, no lock, no count). */
bool calls_shut(const struct conn_cfg *cfg, int32_t srule, int32_t saddr,
		uint64_t now);

/* Counts such a refusal of a first attempt (and the attempt, for the
 * retry budget), sets errno to the rule's reject_errno; -1. */
int calls_refuse(const struct conn_cfg *cfg, int32_t srule, int32_t saddr,
		 uint64_t now);

/* Whether c's breaker would let a call through now (a look, no lock, no
 * count): failover's choice among addresses. */
bool calls_healthy(struct conn *c);

/* Asks the retry budget of c's rule for one retry (all processes share
 * it); true when allowed, which counts a retry, else counts a rejection. */
bool calls_retry_ok(struct conn *c);

/* Gives back what calls_admit() took for c (the connect is not made). */
void calls_unadmit(struct conn *c);

/* A connect of c ended: err 0 connected, else how it failed. */
void calls_connected(int fd, struct conn *c, int err, uint64_t now);

/* The current call of c ended; fail_counter is SEG_* or -1 for success,
 * http5xx/failure flags given by ok. */
void calls_end(int fd, struct conn *c, bool ok, int counter, uint64_t now);

/* Counts one call of c that ended, apart from c's current one (an
 * HTTP/2 stream): wait is how long it waited for its reply (ns, 0:
 * unknown); now may be 0. */
void calls_record(struct conn *c, bool ok, int counter, uint64_t wait,
		  uint64_t now);

/* --- what the hooks share (connect.c defines fastopen) ----------------- */
/* True when fusebox aborted c and the program has not been told yet. */
static inline bool aborted(struct conn *c)
{
	return atomic_load_explicit(&c->watch, memory_order_relaxed) &
	       W_ABORTED;
}

/* True for the errors that end a connect in progress. */
static inline bool connect_error(int e)
{
	return e == ECONNREFUSED || e == ETIMEDOUT || e == ECONNRESET ||
	       e == EHOSTUNREACH || e == ENETUNREACH || e == ECONNABORTED;
}

/* --- replay.c: HTTP/1.x requests sent again --------------------------- */
/* After n > 0 bytes at iov (cnt buffers) were sent on c (W_REPLAY): they
 * are kept and framed, a new request after a reply started. */
void replay_sent(int fd, struct conn *c, const struct iovec *iov, size_t cnt,
		 size_t n);

/* A read on c (W_REPLAY) returned n (its bytes at buf, or errno err):
 * 1 when the request was sent again on a fresh connection (the program
 * reads again, or finds nothing yet), else 0 (it takes what came). */
int replay_received(int fd, struct conn *c, ssize_t n, const void *buf,
		    int err);

/* The deadline thread aborted c for its response_timeout: true when the
 * request went out again instead (the abort is withdrawn). */
bool replay_aborted(int fd, struct conn *c);

/* Frees what fd's requests needed, before fd is closed or replaced. */
void replay_forget(int fd);

/* The peer closed the kept-alive connection of fd before the
 * program's next request, which nothing has sent yet: a fresh socket at
 * fd, connected to the same peer, takes the request; 0, or -1 when it
 * could not (the program then meets the dead connection, as without
 * fusebox).  Keeps errno. */
int connect_again(int fd, struct conn *c);

/* Frees what connect.c noted of fd (its epoll sets) as it closes. */
void connect_forget(int fd);

/* A connect with MSG_FASTOPEN data is a connect: guard it like one. */
void fastopen(int fd, const struct sockaddr *sa, socklen_t len);

/* --- watch.c: deadlines passed, and their aborts told ------------------ */
/* Hands the abort of c to the program once: -1 with errno. */
ssize_t deliver(struct conn *c);

/* True when the slot of fd outlived its socket (then it is dropped). */
bool stale(int fd, struct conn *c);

/* A non-blocking connect of c turned out done (err 0) or failed. */
void connected_now(int fd, struct conn *c, int err);

/* --- streams.c: HTTP/2 streams as calls ------------------------------- */
/* Before a send of iov on c, which has W_H2: bytes that cannot begin
 * the preface end the HTTP/2 look at once (W_H2 cleared), before a reply
 * can race the send's bookkeeping. */
void streams_sending(struct conn *c, const struct iovec *iov, size_t cnt);

/* After n > 0 bytes, at iov (cnt buffers; NULL: unknown), were sent on
 * c, which has W_H2 (or TLS plaintext on HTTP/2): true when HTTP/2 took
 * care of calls and deadlines (not of bytes: the caller counts them),
 * false when the generic bookkeeping must (not HTTP/2 after all). */
bool streams_sent(int fd, struct conn *c, const struct iovec *iov, size_t cnt,
		  size_t n);

/* The same after n > 0 bytes were received (flags of the call). */
bool streams_received(int fd, struct conn *c, const struct iovec *iov,
		      size_t cnt, size_t n, int flags);

/* The end of stream or a reset on c, which has W_H2: fails the request
 * that waits, if any; false when c is not HTTP/2 (the generic
 * bookkeeping then).  Keeps errno. */
bool streams_closed(int fd, struct conn *c);

/* Frees what the server's headers of fd needed (its HPACK decoder),
 * before fd is closed or replaced. */
void streams_forget(int fd);

/* response_timeout passed on c (W_H2, its lock held): a reply queued
 * unread ends its stream's call (peek: look for one; not under TLS,
 * where the socket holds records).  Returns the next response deadline (0:
 * none), or STREAMS_TIMED_OUT when the oldest request's passed: the
 * timer then fails the call and aborts the socket, as for any other. */
#define STREAMS_TIMED_OUT UINT64_MAX
uint64_t streams_expired(int fd, struct conn *c, uint64_t now, bool peek);

/* Bookkeeping after n bytes were sent on c (n > 0). */
void calls_sent(struct conn *c, size_t n);

/* The call part of calls_sent(), done before the send: a reply can then
 * never be read (by another thread) before its call waits for it.
 * Returns the state it left plus one, for calls_unsending() when the
 * send moved nothing; 0 when the call went on. */
static inline __attribute__((always_inline)) uint8_t calls_sending(
    struct conn *c)
{
	uint8_t st = atomic_load_explicit(&c->call, memory_order_relaxed);
	uint8_t k;

	if (st != CALL_NONE && st != CALL_CONNECTED)
		return 0; /* the call goes on */
	/* first-byte latency: every call when slow calls matter, else
	 * the first of each connection and one in eight after, which is
	 * plenty for p50/p90/p99 and saves two clock reads on the others.
	 * Its start is written before c->call says it waits (the deadline
	 * thread may end the call the moment it does). */
	k = CONN_GET(c->sample);
	CONN_SET(c->sample, (uint8_t)(k + 1));
	CONN_SET(c->wait_ns, c->bcfg.slow_ms || !(k & 7) ? clock_ns() : 0);
	/* the first send after a reply started is a new call; the first
	 * send after connect continues the connect's call */
	if (atomic_compare_exchange_strong(&c->call, &st, CALL_WAITING))
		return (uint8_t)(st + 1);
	if ((st == CALL_NONE || st == CALL_CONNECTED) &&
	    atomic_compare_exchange_strong(&c->call, &st, CALL_WAITING))
		return (uint8_t)(st + 1);
	return 0;
}

void calls_unsending(struct conn *c, uint8_t started);

/* After a receive on c returned n (>= 0; 0 is end of stream or a reset),
 * with the first bytes at buf for HTTP classification (may be NULL). */
void calls_received(int fd, struct conn *c, ssize_t n, const void *buf);

/* The reply of c's waiting call started, no failure: ends the call. */
void calls_ok(int fd, struct conn *c);

/* The same for a reply whose bytes were counted elsewhere (TLS: wire
 * bytes by the socket's hooks, the plaintext reply here). */
void calls_replied(int fd, struct conn *c, ssize_t n, const void *buf);

/* calls_received() for n > 0, its common case inline: the bytes count,
 * and the first of a waiting call's reply ends it. */
static inline __attribute__((always_inline)) void calls_got(int fd,
							    struct conn *c,
							    ssize_t n,
							    const void *buf)
{
	__atomic_fetch_add(&c->in, (uint64_t)n, __ATOMIC_RELAXED);
	/* connected: the server spoke first, still the connect's call */
	if (atomic_load_explicit(&c->call, memory_order_relaxed) !=
	    CALL_WAITING)
		return;
	if (c->classify == POLICY_CLASSIFY_HTTP)
		calls_replied(fd, c, n, buf); /* a 5xx fails it */
	else
		calls_ok(fd, c);
}

/* The deadline thread found the reply of c's call queued and unread (its
 * first n bytes at buf): the call ends as if it had been read. */
void calls_reply_queued(int fd, struct conn *c, const void *buf, ssize_t n);

/* The program closes the socket of c. */
void calls_close(int fd, struct conn *c);

/* Adds one to counter (SEG_*) of c's destination, outside any call. */
void calls_count(struct conn *c, int counter);

/* Forgets fd (close, dup2 target): ends its call and frees its slot,
 * under the slot's lock, so never while the timer ends a call of it. */
void calls_forget(int fd);

/* --- a send's call: the socket hooks (hooks.c) and TLS (tls.c) --------- */
/* What send_pre() did, for after the send. */
#define PRE_DONE  0x10u /* the call waits: done before */
#define PRE_AWAIT 0x20u /* it set awaiting, which was clear */
#define PRE_STATE 0x0fu /* calls_sending(): the state it left, plus 1 */

/* Before a send: the call waits (and awaiting is set) before the bytes
 * leave, so that a reply another thread reads at once finds its call
 * waiting; after the send it could come first and be lost.  Not while a
 * connect is in progress or HTTP/2 is possible: after the send,
 * send_done() does those.  The deadline is armed after the send: it runs
 * from the last byte sent, however long a blocking send takes. */
static inline __attribute__((always_inline)) uint32_t send_pre(struct conn *c,
							       uint32_t w)
{
	uint32_t pre = PRE_DONE;

	if (w & (W_CONNECTING | W_H2 | W_TLS))
		return 0;
	if (w & W_COUNT)
		pre |= calls_sending(c);
	if ((w & W_RESPONSE) &&
	    !atomic_load_explicit(&c->awaiting, memory_order_relaxed)) {
		pre |= PRE_AWAIT;
		atomic_store(&c->awaiting, true);
	}
	return pre;
}

/* The send that send_pre() prepared moved nothing: no call started. */
static __attribute__((noinline, unused)) void send_undo(struct conn *c,
							uint32_t pre)
{
	calls_unsending(c, (uint8_t)(pre & PRE_STATE));
	if (pre & PRE_AWAIT)
		atomic_store(&c->awaiting, false);
}

/* After a send that moved n bytes: bytes and idle bookkeeping, the call
 * unless send_pre() started it, and the response deadline: the reply must
 * start response_ms after the last byte sent. */
static inline __attribute__((always_inline)) void send_post(struct conn *c,
							    uint32_t w,
							    ssize_t n,
							    uint32_t pre)
{
	if (w & W_COUNT) {
		if (pre)
			__atomic_fetch_add(&c->out, (uint64_t)n,
					   __ATOMIC_RELAXED);
		else
			calls_sent(c, (size_t)n);
	}
	if (w & W_IDLE)
		atomic_store_explicit(
		    &c->activity,
		    atomic_load_explicit(&c->activity, memory_order_relaxed) +
			1,
		    memory_order_relaxed);
	if (w & W_RESPONSE) {
		if (!pre)
			atomic_store(&c->awaiting, true);
		timer_arm(c, DL_RESPONSE,
			  clock_coarse_ns() + c->response_ms * 1000000ull);
		/* a reply another thread read meanwhile cleared awaiting
		 * (then the deadline): sequentially consistent, so that one
		 * of us sees the other and no deadline outlives its reply */
		if (!atomic_load(&c->awaiting))
			atomic_store(&c->dl[DL_RESPONSE], 0);
	}
}

/* --- tls.c: TLS plaintext (OpenSSL 3) as calls ------------------------ */
/* An SSL object of this thread that waits to be tied to its socket: it
 * has no socket BIO, so the next ClientHello this thread sends is its. */
extern TLS void *tls_pending;

/* Before the first bytes sent on c (fd), iov: a ClientHello ties c to
 * the pending SSL object.  Caller: the send hooks, with W_H2 set. */
void tls_hello(int fd, struct conn *c, const struct iovec *iov, size_t cnt);

#pragma GCC visibility pop

#endif
