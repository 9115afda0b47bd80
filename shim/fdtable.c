/* SPDX-License-Identifier: MIT */
/* The fd table: fd -> struct conn in two levels (1024 chunks of 1024
 * slots).  Lookups take no lock; chunks are mapped on the connect path the
 * first time an fd of their range is guarded and never unmapped, so a
 * reader never sees freed memory. */
#include "shim.h"

#include <string.h>
#include <sys/mman.h>

struct conn *_Atomic fdt[FDT_CHUNKS];
atomic_int fdt_max = -1;

/* Returns the slot of fd, mapping its chunk if needed. */
struct conn *fdt_slot(int fd)
{
	unsigned i = (unsigned)fd / FDT_CHUNK;
	struct conn *chunk, *expected = NULL;
	int max;

	if (fd < 0 || i >= FDT_CHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&fdt[i], memory_order_acquire);
	if (!chunk) {
		/* mmap, not malloc: no allocator lock on the connect path,
		 * and zeroed memory is a table of free slots. */
		chunk = mmap(NULL, FDT_CHUNK * sizeof *chunk,
			     PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (chunk == MAP_FAILED)
			return NULL;
		if (!atomic_compare_exchange_strong(&fdt[i], &expected,
						    chunk)) {
			munmap(chunk, FDT_CHUNK * sizeof *chunk);
			chunk = expected;
		}
	}
	max = atomic_load_explicit(&fdt_max, memory_order_relaxed);
	while (fd > max && !atomic_compare_exchange_weak(&fdt_max, &max, fd))
		;
	chunk[(unsigned)fd % FDT_CHUNK].fd = fd;
	return &chunk[(unsigned)fd % FDT_CHUNK];
}

/* Marks c's slot free and its deadlines gone; caller holds c's lock, so
 * that the timer, which acts under the same lock, never touches a reused
 * fd number. */
void fdt_clear(struct conn *c)
{
	atomic_store_explicit(&c->live, 0, memory_order_release);
	for (int d = 0; d < DL_COUNT; d++)
		atomic_store_explicit(&c->dl[d], 0, memory_order_relaxed);
}

/* Makes newfd guarded like oldfd (dup family): same socket, same rule and
 * timeouts; deadlines stay with the first fd. */
void fdt_copy(int oldfd, int newfd)
{
	struct conn *from = fdt_get(oldfd), *to;

	if (!from || oldfd == newfd)
		return;
	to = fdt_slot(newfd);
	if (!to)
		return;
	conn_lock(to);
	atomic_store_explicit(&to->live, 0, memory_order_relaxed);
	to->ino = from->ino;
	to->connect_ms = from->connect_ms;
	to->response_ms = from->response_ms;
	to->idle_ms = from->idle_ms;
	to->send_ms = from->send_ms;
	to->rule = from->rule;
	to->sndtimeo_ms = from->sndtimeo_ms;
	atomic_store(&to->nonblock, atomic_load(&from->nonblock));
	atomic_store(&to->awaiting, false);
	atomic_store(&to->abort_errno, atomic_load(&from->abort_errno));
	/* the first fd keeps the accounting of the connection, and its
	 * HTTP/2 streams: on a copy, a send is no request there */
	atomic_store(
	    &to->watch,
	    atomic_load(&from->watch) &
		~(W_CONNECTING | W_COUNT | W_H2 |
		  (__atomic_load_n(&from->h2.state, __ATOMIC_RELAXED) == H2_ON
		       ? W_RESPONSE
		       : 0u)));
	memset(&to->h2, 0, sizeof to->h2);
	to->h2.state = H2_OFF;
	to->saddr = to->srule = -1;
	to->active = 0;
	to->probe = 0;
	to->polled =
	    POLLED_NO_SWAP; /* a copy is never swapped for a fresh socket */
	atomic_store(&to->call, CALL_NONE);
	atomic_store(&to->activity, 0);
	for (int d = 0; d < DL_COUNT; d++)
		atomic_store_explicit(&to->dl[d], 0, memory_order_relaxed);
	atomic_store_explicit(&to->live, 1, memory_order_release);
	conn_unlock(to);
}

/* The side tables, by kind: a pointer per fd, mapped at first use
 * (MAP_NORESERVE: only the pages of fds in use cost memory). */
void **_Atomic fdt_sides[FDT_SIDES];

void **fdt_side_map(enum fdt_side k, int fd)
{
	void **t = atomic_load_explicit(&fdt_sides[k], memory_order_acquire);
	void **fresh = NULL;

	if ((unsigned)fd >= FDT_CHUNK * FDT_CHUNKS)
		return NULL;
	if (t)
		return &t[fd];
	t = mmap(NULL, FDT_CHUNK * FDT_CHUNKS * sizeof *t,
		 PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	if (!atomic_compare_exchange_strong(&fdt_sides[k], &fresh, t)) {
		munmap(t, FDT_CHUNK * FDT_CHUNKS * sizeof *t);
		t = fresh;
	}
	return &t[fd];
}

/* The kind table: a byte per fd, mapped at the first socket() we see
 * (MAP_NORESERVE: only the pages of fds in use cost memory). */
uint8_t *_Atomic fdt_kinds;

#define KINDS_SIZE ((size_t)FDT_CHUNK * FDT_CHUNKS)

void fdt_kind_set(int fd, uint8_t k)
{
	uint8_t *t = atomic_load_explicit(&fdt_kinds, memory_order_acquire);
	uint8_t *fresh = NULL;

	if ((unsigned)fd >= KINDS_SIZE)
		return;
	if (!t) {
		if (!k)
			return;
		t = mmap(NULL, KINDS_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (t == MAP_FAILED)
			return;
		if (!atomic_compare_exchange_strong(&fdt_kinds, &fresh, t)) {
			munmap(t, KINDS_SIZE);
			t = fresh;
		}
	}
	__atomic_store_n(&t[fd], k, __ATOMIC_RELAXED);
}

/* After a fork both processes share each socket's file flags, which
 * either may now change where the other's hooks do not see: both forget
 * every kind (the pages go back, zero). */
static void kinds_forget_all(void)
{
	uint8_t *t = atomic_load_explicit(&fdt_kinds, memory_order_acquire);

	if (t)
		madvise(t, KINDS_SIZE, MADV_DONTNEED);
}

static const struct life_part kinds_part = {
    .parent = kinds_forget_all,
    .child = kinds_forget_all,
};

__attribute__((constructor)) static void fdt_ctor(void)
{
	life_join(LIFE_KINDS, &kinds_part);
}
