/* SPDX-License-Identifier: MIT */
/* HTTP/2 as the shim sees it: the client's preface, then 9-byte frame
 * headers in each direction, payloads skipped.  Pure: no clock, no
 * state of the shim; shim/streams.c drives the calls from it. */
#ifndef FUSEBOX_H2_H
#define FUSEBOX_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Frame types and the flag the shim reads (RFC 9113, 6). */
enum {
	H2_DATA = 0,
	H2_HEADERS = 1,
	H2_RST_STREAM = 3,
	H2_GOAWAY = 7,
	H2_CONTINUATION = 9
};
#define H2_END_STREAM  0x1
#define H2_END_HEADERS 0x4
#define H2_PADDED      0x8
#define H2_PRIORITY    0x20

/* Requests of one connection whose reply has not started, oldest first;
 * beyond these, requests are not timed.  Stream 0 stands for the
 * client's preface, which waits for the server's first frame. */
#define H2_STREAMS 5

/* Replies remembered that came before their request was seen to end:
 * one thread's read may pass another's send between the system call and
 * its bookkeeping. */
#define H2_EARLY 2

/* h2.state */
enum h2_state {
	H2_UNKNOWN, /* the client's first bytes are still to come */
	H2_ON,	    /* it sent the preface: frames follow */
	H2_OFF,	    /* not HTTP/2, or its frames were lost from view */
};

/* The frame parser of one direction. */
struct h2_dir {
	uint32_t left; /* payload bytes of the current frame to skip */
	uint8_t have;  /* bytes of the next frame header in hdr */
	uint8_t hdr[9];
};

/* The server's direction, which may also hand over header blocks: the
 * payloads of HEADERS and CONTINUATION frames without their padding and
 * priority fields (for an HPACK decoder). */
struct h2_in {
	struct h2_dir d;
	uint32_t stream; /* of the frame whose payload comes */
	uint8_t type, flags;
	uint8_t front; /* payload bytes to skip first (pad length, priority) */
	uint8_t pad;   /* padding at the payload's end */
};

struct h2 {
	uint8_t state; /* enum h2_state */
	uint8_t pre;   /* preface bytes matched so far */
	uint8_t n;     /* requests waiting: id[0 .. n-1] */
	uint8_t heard; /* the server has sent something */
	struct h2_dir out;
	struct h2_in in;
	uint32_t last;		  /* highest request id that ended */
	uint32_t early[H2_EARLY]; /* replies seen before their request
				   * ended (id, top bit: a reset) */
	uint32_t id[H2_STREAMS];
	uint64_t since[H2_STREAMS]; /* when each request ended (ns) */
};

/* Called for every whole frame header. */
typedef void h2_frame_fn(void *arg, uint8_t type, uint8_t flags,
			 uint32_t stream);

/* Matches the client's first bytes against the preface: sets h->state
 * to H2_ON once all of it came, H2_OFF at the first byte that differs;
 * returns how many of the n bytes at p were preface. */
size_t h2_preface(struct h2 *h, const uint8_t *p, size_t n);

/* Feeds n bytes of one direction: fn is called for each frame header
 * they complete. */
void h2_feed(struct h2_dir *d, const uint8_t *p, size_t n, h2_frame_fn *fn,
	     void *arg);

/* Called with each piece of a header block (HEADERS and CONTINUATION
 * payloads, padding and priority left out), in order; last is set with
 * the block's final piece (END_HEADERS), which may be empty. */
typedef void h2_block_fn(void *arg, uint32_t stream, const uint8_t *p, size_t n,
			 bool last);

/* Called with the error code of each RST_STREAM, once its payload came. */
typedef void h2_reset_fn(void *arg, uint32_t stream, uint32_t code);

/* RST_STREAM's code for a stream the server did not process. */
#define H2_REFUSED_STREAM 0x7

/* Feeds n bytes of the server's direction: fn for each frame header, as
 * h2_feed(), and, when block is not NULL, block with the header blocks'
 * bytes and reset with the codes of RST_STREAM frames. */
void h2_feed_in(struct h2_in *d, const uint8_t *p, size_t n, h2_frame_fn *fn,
		h2_block_fn *block, h2_reset_fn *reset, void *arg);

/* The index of stream id among the waiting requests, or -1. */
int h2_find(const struct h2 *h, uint32_t id);

/* Adds a waiting request of stream id at now; false when there is no
 * room (it is then not timed). */
bool h2_add(struct h2 *h, uint32_t id, uint64_t now);

/* Removes waiting request i, keeping the order of the others. */
void h2_remove(struct h2 *h, int i);

/* Remembers the reply (ok) or reset of client stream id, whose request
 * has not been seen to end, when it may still come (an odd id above
 * h->last); false when it cannot. */
bool h2_early_put(struct h2 *h, uint32_t id, bool ok);

/* Takes the remembered reply of stream id: true, and *ok, when there was
 * one. */
bool h2_early_take(struct h2 *h, uint32_t id, bool *ok);

/* False as soon as a byte of the n at p differs from the preface at
 * h->pre + at onwards (then h->state is H2_OFF).  A send may be judged
 * before it is made: whatever part of it the kernel takes, these bytes
 * come first. */
bool h2_may_be_preface(struct h2 *h, size_t at, const uint8_t *p, size_t n);

#endif
