/* SPDX-License-Identifier: MIT */
/* HTTP/2 frame headers, both directions (see h2.h).  state is written
 * atomically: fdt_copy() reads it without the connection's lock. */
#include "h2.h"

#include <string.h>

size_t h2_preface(struct h2 *h, const uint8_t *p, size_t n)
{
	size_t k = 0;

	while (h->state == H2_UNKNOWN && k < n) {
		if (p[k] != (uint8_t)H2_PREFACE[h->pre]) {
			__atomic_store_n(&h->state, H2_OFF, __ATOMIC_RELAXED);
			break;
		}
		k++;
		if (++h->pre == H2_PREFACE_LEN)
			__atomic_store_n(&h->state, H2_ON, __ATOMIC_RELAXED);
	}
	return k;
}

/* Takes bytes of the next frame header from *p (*n): true once its 9
 * bytes are whole (d->left then holds its payload's length). */
static bool header_of(struct h2_dir *d, const uint8_t **p, size_t *n)
{
	size_t take = 9u - d->have < *n ? 9u - d->have : *n;

	memcpy(d->hdr + d->have, *p, take);
	d->have = (uint8_t)(d->have + take);
	*p += take;
	*n -= take;
	if (d->have < 9)
		return false;
	d->have = 0;
	d->left =
	    (uint32_t)d->hdr[0] << 16 | (uint32_t)d->hdr[1] << 8 | d->hdr[2];
	return true;
}

/* The stream of the frame header in d. */
static uint32_t stream_of(const struct h2_dir *d)
{
	return ((uint32_t)d->hdr[5] << 24 | (uint32_t)d->hdr[6] << 16 |
		(uint32_t)d->hdr[7] << 8 | d->hdr[8]) &
	       0x7fffffffu;
}

void h2_feed(struct h2_dir *d, const uint8_t *p, size_t n, h2_frame_fn *fn,
	     void *arg)
{
	while (n) {
		if (d->left) {
			size_t skip = n < d->left ? n : d->left;
			d->left -= (uint32_t)skip;
			p += skip;
			n -= skip;
			continue;
		}
		if (!header_of(d, &p, &n))
			break;
		fn(arg, d->hdr[3], d->hdr[4], stream_of(d));
	}
}

void h2_feed_in(struct h2_in *d, const uint8_t *p, size_t n, h2_frame_fn *fn,
		h2_block_fn *block, h2_reset_fn *reset, void *arg)
{
	struct h2_dir *f = &d->d;

	if (!block) {
		h2_feed(f, p, n, fn, arg);
		return;
	}
	while (n) {
		if (f->left) {
			bool blk =
			    d->type == H2_HEADERS || d->type == H2_CONTINUATION;
			size_t data, k;

			if (blk && d->front) {
				/* PADDED: the pad length is the first byte
				 * (the flag is dropped once it is read) */
				if (d->flags & H2_PADDED) {
					d->pad = *p;
					d->flags &= (uint8_t)~H2_PADDED;
				}
				d->front--;
				f->left--;
				p++;
				n--;
				continue;
			}
			if (d->type == H2_RST_STREAM && reset) {
				/* its code, in the header's buffer (free
				 * while a payload is read) */
				if (d->front < 4)
					f->hdr[d->front++] = *p;
				if (d->front == 4 && f->left == 1)
					reset(arg, d->stream,
					      (uint32_t)f->hdr[0] << 24 |
						  (uint32_t)f->hdr[1] << 16 |
						  (uint32_t)f->hdr[2] << 8 |
						  f->hdr[3]);
				f->left--;
				p++;
				n--;
				continue;
			}
			data = blk && f->left > d->pad ? f->left - d->pad : 0;
			if (data) {
				bool end;
				k = data < n ? data : n;
				end = (d->flags & H2_END_HEADERS) && k == data;
				if (end) /* said once */
					d->flags &= (uint8_t)~H2_END_HEADERS;
				block(arg, d->stream, p, k, end);
			} else {
				if (blk && (d->flags & H2_END_HEADERS)) {
					d->flags &= (uint8_t)~H2_END_HEADERS;
					block(arg, d->stream, p, 0, true);
				}
				k = f->left < n ? f->left : n;
			}
			f->left -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		if (!header_of(f, &p, &n))
			break;
		d->type = f->hdr[3];
		d->flags = f->hdr[4];
		d->stream = stream_of(f);
		d->pad = 0;
		d->front = 0;
		if (d->type == H2_HEADERS)
			d->front = (uint8_t)((d->flags & H2_PADDED ? 1 : 0) +
					     (d->flags & H2_PRIORITY ? 5 : 0));
		else if (d->type != H2_CONTINUATION)
			d->flags &= (uint8_t) ~(H2_PADDED | H2_END_HEADERS);
		if (d->front > f->left) { /* malformed: no block */
			d->front = (uint8_t)f->left;
			d->flags &= (uint8_t)~H2_END_HEADERS;
		}
		fn(arg, d->type, d->flags, d->stream);
		/* an empty frame still may end its block */
		if (!f->left && (d->flags & H2_END_HEADERS)) {
			d->flags &= (uint8_t)~H2_END_HEADERS;
			block(arg, d->stream, p, 0, true);
		}
	}
}

int h2_find(const struct h2 *h, uint32_t id)
{
	for (int i = 0; i < h->n; i++)
		if (h->id[i] == id)
			return i;
	return -1;
}

bool h2_add(struct h2 *h, uint32_t id, uint64_t now)
{
	if (h->n >= H2_STREAMS)
		return false;
	h->id[h->n] = id;
	h->since[h->n] = now;
	h->n++;
	return true;
}

void h2_remove(struct h2 *h, int i)
{
	if (i < 0 || i >= h->n)
		return;
	h->n--;
	memmove(h->id + i, h->id + i + 1, (size_t)(h->n - i) * sizeof h->id[0]);
	memmove(h->since + i, h->since + i + 1,
		(size_t)(h->n - i) * sizeof h->since[0]);
}

bool h2_early_put(struct h2 *h, uint32_t id, bool ok)
{
	if (!(id & 1) || id <= h->last || (id & 0x80000000u))
		return false;
	/* the older one goes */
	h->early[1] = h->early[0];
	h->early[0] = id | (ok ? 0 : 0x80000000u);
	return true;
}

bool h2_early_take(struct h2 *h, uint32_t id, bool *ok)
{
	for (int i = 0; i < H2_EARLY; i++)
		if (h->early[i] && (h->early[i] & 0x7fffffffu) == id) {
			*ok = !(h->early[i] & 0x80000000u);
			h->early[i] = 0;
			return true;
		}
	return false;
}

bool h2_may_be_preface(struct h2 *h, size_t at, const uint8_t *p, size_t n)
{
	for (size_t k = 0; h->state == H2_UNKNOWN && k < n; k++) {
		size_t i = h->pre + at + k;

		if (i >= H2_PREFACE_LEN)
			break;
		if (p[k] != (uint8_t)H2_PREFACE[i]) {
			__atomic_store_n(&h->state, H2_OFF, __ATOMIC_RELAXED);
			return false;
		}
	}
	return h->state != H2_OFF;
}
