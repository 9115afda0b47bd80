/* SPDX-License-Identifier: MIT */
/* The shared-memory segment: its layout is the one contract between the
 * shim, which writes it, and the fusebox command, which reads it.  Magic,
 * version and size come first; fields are only appended; counters are
 * atomics; every index read from it is bounds-checked by the reader. */
#ifndef FUSEBOX_SEGMENT_H
#define FUSEBOX_SEGMENT_H

#include "policy/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEG_MAGIC "FUSEBOX\0"
#define SEG_VERSION                                                            \
	3u /* 2: the line of waiters is owned slots; 3: tls_failures,          \
	      grpc_failures */
#define SEG_READY 0x52454459u /* "REDY": the creator finished */

/* Default table sizes; [global] segment_rules/segment_addresses and
 * segment_processes change them for a segment that does not exist yet. */
#define SEG_DEFAULT_PROCS 1024u
#define SEG_DEFAULT_RULES 1024u
#define SEG_DEFAULT_ADDRS 4096u
#define SEG_MAX_ENTRIES	  1000000u

#define SEG_NAME_MAX 64
#define SEG_HELD     8	 /* rules a process holds connections of, tracked */
#define SEG_QUEUE    256 /* most waiters per rule (max_pending is capped) */
#define SEG_HOST_MAX 64
/* Rule and address tables: a key lives within this many slots of its
 * hash's, so that a miss in a full table costs no more looks. */
#define SEG_PROBES 512

/* Latency histograms: each octave of microseconds [2^k, 2^(k+1)) is cut
 * in four equal buckets (bucket 4k + j), from 1 µs to 2^24 µs (16.8 s);
 * longer latencies count in the last bucket. */
#define SEG_HIST_BUCKETS 96

/* Counters of SPEC §4, in the order the JSON prints them. */
enum seg_counter {
	SEG_CALLS,
	SEG_SUCCESSES,
	SEG_FAILURES,
	SEG_CONNECT_REFUSED,
	SEG_CONNECT_TIMEOUTS,
	SEG_RESPONSE_TIMEOUTS,
	SEG_RESETS,
	SEG_HTTP_5XX,
	SEG_TLS_FAILURES,
	SEG_GRPC_FAILURES,
	SEG_SLOW_CALLS,
	SEG_RETRIES,
	SEG_STALE_RECONNECTS,
	SEG_REPLAYS_EMPTY, /* of retries: requests replayed, by why */
	SEG_REPLAYS_TIMEOUT,
	SEG_REPLAYS_5XX,
	SEG_REJECTED_BREAKER,
	SEG_REJECTED_LIMIT,
	SEG_REJECTED_RATE,
	SEG_REJECTED_BUDGET,
	SEG_BYTES_SENT,
	SEG_BYTES_RECEIVED,
	SEG_NCOUNTERS
};

struct seg_hist {
	_Atomic uint64_t bucket[SEG_HIST_BUCKETS];
};

/* One guarded process.
 *
 * Invariants (segment/shared.c keeps them; docs/design.md explains):
 * - pid 0: free; UINT32_MAX: being claimed or reaped by one process,
 *   which alone writes the entry until it stores a real pid or 0.
 * - gen changes each time a process takes the entry: a waiter's place in
 *   a line names (entry, gen), so a place of a process that is gone is
 *   known as such even after another process took its entry.
 * - held[h] is written only by its process's threads (and by the one
 *   reaper of a dead process).  held[h].busy counts the threads between
 *   the two steps of a reserve or a release (the rule's count and this
 *   count) and the reaper at work; a SIGKILL may leave it above 0: the
 *   entry is then emptied by the reaper, and the rule's count set right
 *   by a recount (seg_conn_recount()).
 * - overflow counts the connections of rules this process could not give
 *   a held[] entry (more than SEG_HELD rules); while it is not 0 no rule
 *   is recounted. */
struct seg_proc {
	_Atomic uint32_t pid;	/* 0: free slot */
	_Atomic uint32_t gen;	/* bumped by each process that takes it */
	_Atomic uint64_t start; /* start time in clock ticks since boot,
				 * /proc/PID/stat field 22: tells a reused
				 * pid from the process that registered */
	char comm[16];
	/* connections this process holds, per rule (index + 1; 0: free),
	 * so that those of a process killed with SIGKILL can be released */
	struct {
		_Atomic uint32_t rule;
		_Atomic int32_t count;
		_Atomic int32_t busy; /* count and the rule's may disagree */
		uint32_t reserved;
	} held[SEG_HELD];
	_Atomic int32_t overflow; /* connections held outside held[] */
	uint32_t reserved2;
};

/* One rule, by name; connections and the breaker of scope = rule.
 * The invariants of conns, the line (q_*), the retry budget and the rate
 * word are written above their code in segment/shared.c. */
struct seg_rule {
	_Atomic uint32_t used; /* 0 free, 1 being written, 2 ready */
	uint32_t reserved;
	char name[SEG_NAME_MAX];
	pthread_mutex_t lock;		  /* robust, process-shared */
	struct breaker breaker;		  /* breaker_scope = rule */
	_Atomic uint64_t conns;		  /* open connections, all processes
					   * (low 32 bits), and a count of
					   * changes (high 32 bits) */
	_Atomic int32_t anon;		  /* of processes with no entry */
	_Atomic uint32_t max_connections; /* as the last writer's policy said */
	_Atomic uint32_t breaker_mode;	  /* enum breaker_mode, likewise */
	_Atomic uint32_t breaker_scope;	  /* enum policy_scope, likewise */
	_Atomic int32_t forced;	     /* BREAKER_FORCE_* for every address */
	_Atomic uint64_t forced_gen; /* bumped by each force, for addresses */
	_Atomic uint64_t recount_ms; /* last recount of conns */
	/* max_pending: the line of connects waiting for a slot */
	_Atomic uint32_t q_next;     /* the next ticket to hand out */
	_Atomic uint32_t q_wake;     /* futex word, bumped when a slot frees */
	_Atomic uint64_t q_swept_ms; /* last sweep for dead waiters */
	_Atomic uint64_t q_bits[SEG_QUEUE / 64]; /* places taken (a hint) */
	_Atomic uint64_t q_slot[SEG_QUEUE]; /* owner << 32 | ticket; 0 free */
	/* retry budget: first attempts and retries per second, last 10 s,
	 * lock-free (segment/shared.c) */
	_Atomic uint64_t budget_first[10]; /* second << 40 | count */
	_Atomic uint64_t budget_retry[10]; /* likewise */
	_Atomic uint64_t rate_tat_us; /* rate: GCRA arrival time, lock-free */
	uint64_t reserved2;
	_Atomic uint64_t counter[SEG_NCOUNTERS]; /* reserved: a rule's figures
						  * are the sums of its
						  * addresses' */
};

/* One destination address:port of a rule, with its breaker. */
struct seg_addr {
	_Atomic uint32_t used; /* 0 free, 1 being written, 2 ready */
	uint32_t rule;	       /* index into the rule table */
	uint8_t addr[16];      /* IPv6, or IPv4-mapped */
	uint16_t port;
	uint16_t reserved;
	uint32_t reserved2;
	char host[SEG_HOST_MAX]; /* a name the program resolved, or "" */
	pthread_mutex_t lock;	 /* robust, process-shared */
	struct breaker breaker;
	_Atomic uint64_t counter[SEG_NCOUNTERS];
	struct seg_hist connect_us;
	struct seg_hist first_byte_us;
};

struct seg_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;	/* sizeof(struct seg_header) */
	uint64_t size;		/* of the whole segment, in bytes */
	uint32_t uid;		/* owner */
	_Atomic uint32_t ready; /* SEG_READY once initialised */
	uint32_t nprocs, nrules, naddrs;
	uint32_t proc_size, rule_size, addr_size; /* sizeof each entry */
	uint64_t procs_off, rules_off, addrs_off; /* from the segment start */
	uint64_t created_realtime_ms;
	_Atomic uint64_t reset_gen; /* bumped by fusebox reset */
	pthread_mutex_t alloc; /* robust: taken to add rules and addresses */
};

/* A mapped and validated segment, as this process sees it. */
struct seg {
	void *base;
	size_t size;
	struct seg_header *hdr;
	struct seg_proc *procs;
	struct seg_rule *rules;
	struct seg_addr *addrs;
	uint32_t nprocs, nrules, naddrs; /* copied after validation */
	bool shared;			 /* false: private fallback */
	char name[SEG_NAME_MAX];
};

struct seg_sizes {
	uint32_t procs, rules, addrs;
};

/* Bytes a segment with these table sizes takes. */
size_t seg_bytes(const struct seg_sizes *sz);

/* Checks that the bytes at base (len long) are a segment of ours that
 * this process may use: magic, version, sizes, offsets, uid.  Returns 0,
 * or -EINVAL with a reason in why. */
int seg_validate(const void *base, size_t len, unsigned uid, char *why,
		 size_t whylen);

/* Opens (and, with create, creates race-free) the POSIX shm object name
 * for reading and writing; fills s.  On any trouble returns -errno with a
 * reason in why and leaves s empty. */
int seg_open(const char *name, const struct seg_sizes *sz, bool create,
	     struct seg *s, char *why, size_t whylen);

/* Opens name read-only for the fusebox command; 0 or -errno + why. */
int seg_open_readonly(const char *name, struct seg *s, char *why,
		      size_t whylen);

/* Makes a private segment in anonymous memory (the fallback when the
 * shared one cannot be trusted); 0 or -ENOMEM. */
int seg_private(const struct seg_sizes *sz, struct seg *s);

/* Unmaps s; an empty s does nothing. */
void seg_close(struct seg *s);

/* Finds or adds the rule named name; its index, or -1 when the table is
 * full. */
int seg_rule_get(struct seg *s, const char *name);

/* Finds or adds address addr:port of rule; its index, or -1 when full. */
int seg_addr_get(struct seg *s, uint32_t rule, const uint8_t addr[16],
		 uint16_t port, const char *host);

/* Locks a robust mutex of the segment, recovering it from a dead holder;
 * 0, or -1 when it stayed busy for a second (do without it). */
int seg_lock(pthread_mutex_t *m);
void seg_unlock(pthread_mutex_t *m);

/* Adds v to a histogram: the bucket of v microseconds. */
void seg_hist_add(struct seg_hist *h, uint64_t us);

/* The q-quantile (0 < q < 1) of h in milliseconds, or -1 when empty. */
double seg_hist_quantile(const struct seg_hist *h, double q);

/* Name of a counter as JSON and Prometheus print it. */
const char *seg_counter_name(enum seg_counter c);

#endif
