/* SPDX-License-Identifier: MIT */
/* Unit tests of the HTTP/2 frame parser (shim/h2.c): the client's
 * preface in any pieces, frame headers split anywhere, payloads skipped,
 * and the table of waiting requests. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "shim/h2.h"

/* What the parser reported: type, flags, stream of each frame. */
static struct {
	int n;
	uint8_t type[16], flags[16];
	uint32_t id[16];
} got;

static void on_frame(void *arg, uint8_t type, uint8_t flags, uint32_t id)
{
	(void)arg;
	cr_assert(got.n < 16);
	got.type[got.n] = type;
	got.flags[got.n] = flags;
	got.id[got.n++] = id;
}

/* A frame header: payload length len, type, flags, stream id. */
static size_t frame(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags,
		    uint32_t id)
{
	p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len, p[3] = type, p[4] = flags;
	p[5] = (uint8_t)(id >> 24), p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8), p[8] = (uint8_t)id;
	memset(p + 9, 0xee, len);
	return 9 + len;
}

Test(h2, the_preface_in_pieces_then_frames)
{
	struct h2 h = {0};
	uint8_t buf[256];
	size_t n = 0, k;

	memcpy(buf, H2_PREFACE, H2_PREFACE_LEN);
	n = H2_PREFACE_LEN;
	n += frame(buf + n, 6, 4, 0, 0);		   /* SETTINGS */
	n += frame(buf + n, 20, H2_HEADERS, 4, 1);	   /* HEADERS */
	n += frame(buf + n, 5, H2_DATA, H2_END_STREAM, 1); /* DATA, end */
	memset(&got, 0, sizeof got);
	/* one byte at a time: every split of every header */
	for (size_t i = 0; i < n; i++) {
		k = h.state == H2_UNKNOWN ? h2_preface(&h, buf + i, 1) : 0;
		if (h.state == H2_ON && !k)
			h2_feed(&h.out, buf + i, 1, on_frame, NULL);
	}
	cr_assert_eq(h.state, H2_ON);
	cr_assert_eq(got.n, 3);
	cr_assert_eq(got.type[0], 4);
	cr_assert_eq(got.type[1], H2_HEADERS);
	cr_assert_eq(got.id[1], 1);
	cr_assert_eq(got.type[2], H2_DATA);
	cr_assert_eq(got.flags[2], H2_END_STREAM);
	cr_assert_eq(got.id[2], 1);
}

Test(h2, anything_else_is_not_http2_at_its_first_differing_byte)
{
	struct h2 h = {0};
	const char *get = "GET / HTTP/1.1\r\n";

	cr_assert_eq(h2_preface(&h, (const uint8_t *)"PRI * HTTP/1", 12), 11);
	cr_assert_eq(h.state, H2_OFF);
	memset(&h, 0, sizeof h);
	cr_assert_eq(h2_preface(&h, (const uint8_t *)get, strlen(get)), 0);
	cr_assert_eq(h.state, H2_OFF);
}

Test(h2, payloads_are_skipped_and_the_reserved_bit_dropped)
{
	struct h2_dir d = {0};
	uint8_t buf[300];
	size_t n = frame(buf, 200, H2_DATA, 0, 0x80000003u);

	n += frame(buf + n, 0, H2_RST_STREAM, 0, 3);
	memset(&got, 0, sizeof got);
	h2_feed(&d, buf, 100, on_frame, NULL);
	h2_feed(&d, buf + 100, n - 100, on_frame, NULL);
	cr_assert_eq(got.n, 2);
	cr_assert_eq(got.id[0], 3);
	cr_assert_eq(got.type[1], H2_RST_STREAM);
	cr_assert_eq(d.left, 0);
	cr_assert_eq(d.have, 0);
}

Test(h2, waiting_requests_keep_their_order_and_a_bound)
{
	struct h2 h = {0};

	for (uint32_t i = 0; i < H2_STREAMS; i++)
		cr_assert(h2_add(&h, 2 * i + 1, 100 + i));
	cr_assert(!h2_add(&h, 99, 200), "beyond the table: not timed");
	cr_assert_eq(h2_find(&h, 5), 2);
	h2_remove(&h, 2);
	cr_assert_eq(h.n, H2_STREAMS - 1);
	cr_assert_eq(h2_find(&h, 5), -1);
	cr_assert_eq(h.id[2], 7);
	cr_assert_eq(h.since[2], 103);
	h2_remove(&h, 0);
	cr_assert_eq(h.id[0], 3);
	h2_remove(&h, 40); /* out of range: nothing */
	cr_assert_eq(h.n, H2_STREAMS - 2);
}

Test(h2, a_send_is_judged_before_it_is_made)
{
	struct h2 h = {0};

	/* "POST" shares the first byte: the second rules HTTP/2 out */
	cr_assert(h2_may_be_preface(&h, 0, (const uint8_t *)"P", 1));
	cr_assert_eq(h.state, H2_UNKNOWN);
	cr_assert(!h2_may_be_preface(&h, 1, (const uint8_t *)"OST /", 5));
	cr_assert_eq(h.state, H2_OFF);
	memset(&h, 0, sizeof h);
	/* the preface, then frames: still possible, nothing decided */
	cr_assert(h2_may_be_preface(&h, 0, (const uint8_t *)H2_PREFACE "\0\0",
				    H2_PREFACE_LEN + 2));
	cr_assert_eq(h.state, H2_UNKNOWN);
	cr_assert_eq(h.pre, 0, "judging moves nothing");
}

Test(h2, a_reply_before_its_request_is_kept_for_it)
{
	struct h2 h = {0};
	bool ok = false;

	h.last = 3;
	cr_assert(!h2_early_put(&h, 3, true), "stream 3 ended: not early");
	cr_assert(!h2_early_put(&h, 6, true), "a server stream: never");
	cr_assert(h2_early_put(&h, 5, true));
	cr_assert(h2_early_put(&h, 7, false));
	cr_assert(h2_early_take(&h, 7, &ok));
	cr_assert(!ok, "a reset stays a reset");
	cr_assert(h2_early_take(&h, 5, &ok));
	cr_assert(ok);
	cr_assert(!h2_early_take(&h, 5, &ok), "taken once");
}

/* What h2_feed_in() handed over of header blocks: their bytes, each
 * block's stream and end marked by '|', as one string. */
static char blocks[256];
static size_t nblocks;

static void on_frame_quiet(void *arg, uint8_t type, uint8_t flags, uint32_t id)
{
	(void)arg, (void)type, (void)flags, (void)id;
}

static void on_block(void *arg, uint32_t id, const uint8_t *p, size_t n,
		     bool last)
{
	(void)arg;
	cr_assert(nblocks + n + 8 < sizeof blocks);
	memcpy(blocks + nblocks, p, n);
	nblocks += n;
	if (last)
		nblocks +=
		    (size_t)snprintf(blocks + nblocks, sizeof blocks - nblocks,
				     "|%u ", (unsigned)id);
	blocks[nblocks] = 0;
}

static void on_reset(void *arg, uint32_t id, uint32_t code)
{
	(void)arg;
	nblocks += (size_t)snprintf(blocks + nblocks, sizeof blocks - nblocks,
				    "rst%u:%u ", (unsigned)id, (unsigned)code);
}

/* A frame with payload bytes body (len n). */
static size_t frame_with(uint8_t *p, uint8_t type, uint8_t flags, uint32_t id,
			 const void *body, size_t n)
{
	frame(p, (uint32_t)n, type, flags, id);
	memcpy(p + 9, body, n);
	return 9 + n;
}

/* Header blocks with padding, priority and CONTINUATION, empty ones and
 * DATA between, fed in pieces of every size: the blocks' bytes come out
 * whole, in order, each end once. */
Test(h2, header_blocks_without_padding_and_priority_in_any_pieces)
{
	uint8_t buf[256];
	size_t len = 0;

	/* HEADERS 1: PADDED | PRIORITY, pad 3, "abcde", no END_HEADERS */
	len += frame_with(buf + len, H2_HEADERS, H2_PADDED | H2_PRIORITY, 1,
			  "\x03PPPPPabcde\0\0\0", 14);
	/* CONTINUATION 1: "fgh", END_HEADERS */
	len +=
	    frame_with(buf + len, H2_CONTINUATION, H2_END_HEADERS, 1, "fgh", 3);
	/* DATA 1, PADDED: skipped whole */
	len += frame_with(buf + len, H2_DATA, H2_PADDED | H2_END_STREAM, 1,
			  "\x02xyz\0\0", 6);
	/* HEADERS 3: an empty block */
	len += frame_with(buf + len, H2_HEADERS, H2_END_HEADERS, 3, "", 0);
	/* HEADERS 5: PADDED, pad 0, "q", END_HEADERS | END_STREAM */
	len +=
	    frame_with(buf + len, H2_HEADERS,
		       H2_PADDED | H2_END_HEADERS | H2_END_STREAM, 5, "\0q", 2);
	/* HEADERS 7: PADDED with pad 2 and an empty block */
	len += frame_with(buf + len, H2_HEADERS, H2_PADDED | H2_END_HEADERS, 7,
			  "\x02\0\0", 3);
	/* RST_STREAM 9: REFUSED_STREAM */
	len += frame_with(buf + len, H2_RST_STREAM, 0, 9, "\0\0\0\x07", 4);

	for (size_t piece = 1; piece <= len; piece++) {
		struct h2_in d = {0};

		nblocks = 0;
		blocks[0] = 0;
		for (size_t at = 0; at < len; at += piece)
			h2_feed_in(&d, buf + at,
				   piece < len - at ? piece : len - at,
				   on_frame_quiet, on_block, on_reset, NULL);
		cr_assert_str_eq(blocks, "abcdefgh|1 |3 q|5 |7 rst9:7 ",
				 "pieces of %zu", piece);
	}
}

/* Without a block callback, h2_feed_in() is h2_feed(). */
Test(h2, feed_in_without_blocks_reports_frames_only)
{
	uint8_t buf[64];
	size_t len = frame(buf, 5, H2_HEADERS, H2_END_HEADERS, 9);
	struct h2_in d = {0};

	got.n = 0;
	h2_feed_in(&d, buf, len, on_frame, NULL, NULL, NULL);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.id[0], 9);
	cr_assert_eq(d.d.left, 0);
}
