/* SPDX-License-Identifier: MIT */
/* The circuit breaker as a pure state machine over a fixed-size struct that
 * lives in the shared-memory segment: callers pass the time and randomness,
 * hold the segment lock around every call, and log the events it returns. */
#ifndef FUSEBOX_BREAKER_H
#define FUSEBOX_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

/* Largest count window (breaker_window = N calls) and time window. */
#define BREAKER_RING_MAX      1024
#define BREAKER_WINDOW_MS_MAX 3600000u
/* A time window is kept as this many buckets of window_ms / 64 each. */
#define BREAKER_BUCKETS 64
/* Open periods and probe timeouts are capped at 7 days. */
#define BREAKER_PERIOD_MAX_MS 604800000u
/* Probe timeout used when the caller passes 0. */
#define BREAKER_PROBE_TIMEOUT_DEFAULT_MS 10000u
#define BREAKER_PROBES_MAX		 100u

enum breaker_mode {
	BREAKER_MODE_OFF,
	BREAKER_MODE_ON,
	BREAKER_MODE_DRY_RUN,
};

enum breaker_state {
	BREAKER_CLOSED,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN,
};

/* How breaker_force() overrides the state machine. */
enum {
	BREAKER_FORCE_NONE,
	BREAKER_FORCE_OPEN,
	BREAKER_FORCE_CLOSED,
};

/* Verdicts of breaker_allow(). */
enum {
	BREAKER_ALLOW,
	BREAKER_PROBE,
	BREAKER_REJECT,
};

/* Outcome flags of breaker_record(); 0 is a fast success. */
#define BREAKER_FAILURE 0x1
#define BREAKER_SLOW	0x2

/* Settings of one breaker, filled by the caller from the policy. */
struct breaker_config {
	enum breaker_mode mode;
	uint32_t failures;	   /* consecutive failures that open; 0: none */
	uint32_t failure_rate_ppm; /* 0: none */
	uint32_t window_calls;	   /* count window, or ... */
	uint64_t window_ms;	   /* ... time window; exactly one nonzero */
	uint32_t min_calls;	   /* calls in the window before rates count */
	uint64_t slow_ms;	/* 0: no call is slow, BREAKER_SLOW ignored */
	uint32_t slow_rate_ppm; /* 0: none */
	uint64_t open_ms;	/* first open period */
	uint64_t open_max_ms;	/* cap of the doubled periods */
	uint32_t probes;	/* half-open trial calls, 1-100 */
	uint64_t probe_timeout_ms; /* a probe unfinished this long failed */
};

/* A time-window bucket; counts are halved together when one saturates. */
struct breaker_bucket {
	uint16_t calls;
	uint16_t failures;
	uint16_t slows;
};

/*
 * Part of the shared-memory segment ABI: fixed size, integers only, fields
 * only appended.  All-zero memory is a valid closed breaker, and any bytes
 * at all are safe to pass in (every index is bounds-checked).
 */
struct breaker {
	uint8_t state;	/* enum breaker_state */
	uint8_t forced; /* BREAKER_FORCE_* */
	uint8_t flags;	/* BREAKER_F_* in breaker.c */
	uint8_t reserved0;
	uint32_t consecutive;	  /* consecutive failures */
	uint64_t since_ms;	  /* when the state was entered */
	uint64_t until_ms;	  /* open: when the open period ends */
	uint64_t period_ms;	  /* base open period, before jitter */
	uint32_t probes_admitted; /* half-open: probes let through */
	uint32_t probes_ok;	  /* half-open: probes that succeeded */
	uint64_t probe_ms;	  /* half-open: latest probe admitted */
	uint32_t win_calls;	  /* count window the data was built for */
	uint32_t win_ms;	  /* time window the data was built for */
	uint16_t ring_pos;	  /* count window: next slot written */
	uint16_t ring_count;	  /* count window: slots in use */
	uint32_t seed;		  /* last rnd recorded, for jitter in allow */
	uint64_t slot;		  /* time window: number of newest bucket */
	union {
		struct {
			uint64_t failed[BREAKER_RING_MAX / 64];
			uint64_t slow[BREAKER_RING_MAX / 64];
		} ring;
		struct breaker_bucket bucket[BREAKER_BUCKETS];
	} win;
};

_Static_assert(sizeof(struct breaker) <= 512, "struct breaker is segment ABI");

/* What a call did to the breaker, for the caller's log line. */
struct breaker_event {
	bool changed;		 /* the state changed; from, to, reason set */
	enum breaker_state from; /* state before the call */
	enum breaker_state to;	 /* state after the call */
	int verdict;	 /* breaker_allow(): the decision before dry-run */
	char reason[64]; /* "5 consecutive failures", "" if unchanged */
};

/* Fills c with the SPEC defaults (mode off, 5 failures, window 20 calls,
 * min 10 calls, open 30 s up to 5 min, 1 probe, 10 s probe timeout). */
void breaker_config_default(struct breaker_config *c);

/* Clears b to a closed breaker with an empty window, dropping a forced
 * state too (fusebox reset). */
void breaker_reset(struct breaker *b);

/* Decides whether a call may start at now_ms (monotonic ms): returns
 * BREAKER_ALLOW, BREAKER_PROBE (a half-open probe: report it with probe
 * true) or BREAKER_REJECT; moves open to half-open when the period is over
 * and fails a half-open probe older than probe_timeout_ms.  Dry-run never
 * rejects; mode off allows and changes nothing.  ev may be NULL. */
int breaker_allow(struct breaker *b, const struct breaker_config *c,
		  uint64_t now_ms, struct breaker_event *ev);

/* Records how a call admitted by breaker_allow() ended (BREAKER_FAILURE,
 * BREAKER_SLOW or both; probe as returned), opening, reopening or closing
 * the breaker; rnd is a uniform random number for the ±10% jitter of an
 * open period.  A slow probe fails when slow_rate_ppm is set.  ev may be
 * NULL. */
void breaker_record(struct breaker *b, const struct breaker_config *c,
		    uint64_t now_ms, int outcome_flags, bool probe,
		    uint32_t rnd, struct breaker_event *ev);

/* Forces b open or closed (BREAKER_FORCE_OPEN/CLOSED) until
 * BREAKER_FORCE_NONE returns it to a closed breaker with a cleared window;
 * outcomes are still counted while forced but never change the state.
 * Returns 0 or -EINVAL for an unknown how. */
int breaker_force(struct breaker *b, int how);

/* Returns the state as stats print it: "closed", "open", "half_open",
 * "forced_open", "forced_closed", or "disabled" when c says mode off (c may
 * be NULL). */
const char *breaker_state_name(const struct breaker *b,
			       const struct breaker_config *c);

/* Returns "closed", "open" or "half_open" for a state (events, logs). */
const char *breaker_state_str(enum breaker_state s);

/* Returns the state machine's state (a corrupt value reads as closed). */
enum breaker_state breaker_current(const struct breaker *b);

/* True when breaker_allow() would allow without changing b (closed, not
 * forced); safe to call without the lock. */
bool breaker_quiet(const struct breaker *b);

/* True when b is open, unforced and inside its open period at now_ms
 * under c (mode on): a refusal needs no lock.  Lock-free (see
 * breaker_quiet()). */
bool breaker_shut(const struct breaker *b, const struct breaker_config *c,
		  uint64_t now_ms);

/* Returns BREAKER_FORCE_NONE, _OPEN or _CLOSED. */
int breaker_forced(const struct breaker *b);

/* Returns the consecutive failures recorded since the last success. */
uint32_t breaker_consecutive(const struct breaker *b);

/* Returns the monotonic ms at which the current state was entered. */
uint64_t breaker_since_ms(const struct breaker *b);

/* Returns the monotonic ms at which the open period ends, 0 unless open. */
uint64_t breaker_until_ms(const struct breaker *b);

/* Returns the current base open period in ms (before jitter; the period in
 * force is until - since), 0 before the first open. */
uint64_t breaker_period_ms(const struct breaker *b);

#endif
