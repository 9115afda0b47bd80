/* SPDX-License-Identifier: MIT */
/* Resolver memory: which hostnames the program resolved to which
 * addresses (getaddrinfo, gethostbyname*), so that hostname rules match
 * the address it then connects to.  A fixed table in .bss, the oldest
 * entry replaced when full; a mutex, since resolving is never hot. */
#include "shim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define DNS_SLOTS   512
#define DNS_BUCKETS 1024 /* power of two */

struct dns_entry {
	uint8_t addr[16]; /* v6 or v4-mapped */
	uint32_t stamp;	  /* 0: free; else insertion order */
	int16_t next;	  /* next entry of the bucket, or -1 */
	char name[256];
};

static struct dns_entry table[DNS_SLOTS];
static int16_t buckets[DNS_BUCKETS]; /* entry index + 1; 0: empty */
static uint32_t clock_stamp;
static _Atomic uint32_t generation; /* bumped when a mapping changes */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The v6 key of an address. */
static void key(int family, const void *addr, uint8_t out[16])
{
	memset(out, 0, 16);
	if (family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, addr, 4);
	} else {
		memcpy(out, addr, 16);
	}
}

/* The v6 key of the address in sa; false when it is not IP. */
static bool sa_key(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET)
		key(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out);
	else if (sa->sa_family == AF_INET6)
		key(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    out);
	else
		return false;
	return true;
}

/* The bucket of an address key. */
static unsigned bucket(const uint8_t k[16])
{
	uint64_t a, b;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ull;
	return (unsigned)((a * 0xff51afd7ed558ccdull) >> 54) &
	       (DNS_BUCKETS - 1);
}

/* Unlinks entry i from its bucket; caller holds the lock. */
static void unlink_entry(int i)
{
	unsigned b = bucket(table[i].addr);
	int j = buckets[b] - 1;

	if (j == i) {
		buckets[b] = (int16_t)(table[i].next + 1);
		return;
	}
	for (; j >= 0; j = table[j].next)
		if (table[j].next == i) {
			table[j].next = table[i].next;
			return;
		}
}

/* True when name is an address literal rather than a hostname. */
static bool literal(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 ||
	       inet_pton(AF_INET6, name, buf) == 1;
}

/* Remembers that name resolved to addr of family. */
void dns_remember_raw(const char *name, int family, const void *addr)
{
	uint8_t k[16];
	size_t n;
	int victim = 0;
	uint32_t oldest = UINT32_MAX;
	unsigned b;

	if (!name || !*name || (family != AF_INET && family != AF_INET6) ||
	    strlen(name) > 255 || literal(name))
		return;
	key(family, addr, k);
	b = bucket(k);
	pthread_mutex_lock(&lock);
	for (int i = buckets[b] - 1; i >= 0; i = table[i].next)
		if (!memcmp(table[i].addr, k, 16) &&
		    !strcasecmp(table[i].name, name)) {
			table[i].stamp = ++clock_stamp;
			goto out;
		}
	/* the least recently resolved entry makes room */
	for (int i = 0; i < DNS_SLOTS; i++)
		if (table[i].stamp < oldest) {
			oldest = table[i].stamp;
			victim = i;
		}
	if (table[victim].stamp)
		unlink_entry(victim);
	atomic_fetch_add(&generation, 1);
	memcpy(table[victim].addr, k, 16);
	n = strlen(name);
	for (size_t i = 0; i <= n; i++)
		table[victim].name[i] = (char)tolower((unsigned char)name[i]);
	table[victim].stamp = ++clock_stamp;
	table[victim].next = (int16_t)(buckets[b] - 1);
	buckets[b] = (int16_t)(victim + 1);
out:
	pthread_mutex_unlock(&lock);
}

/* Remembers that name resolved to the address in sa. */
void dns_remember(const char *name, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		dns_remember_raw(name, AF_INET,
				 &((const struct sockaddr_in *)sa)->sin_addr);
	else if (sa->sa_family == AF_INET6)
		dns_remember_raw(name, AF_INET6,
				 &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* A number that changes whenever a name gets a new address. */
uint32_t dns_generation(void)
{
	return atomic_load_explicit(&generation, memory_order_acquire);
}

/* Fills names for the address in sa; returns how many. */
size_t dns_lookup(const struct sockaddr *sa, char (*names)[256], size_t max)
{
	uint8_t k[16];
	size_t n = 0;

	if (!sa_key(sa, k))
		return 0;
	pthread_mutex_lock(&lock);
	for (int i = buckets[bucket(k)] - 1; i >= 0 && n < max;
	     i = table[i].next)
		if (!memcmp(table[i].addr, k, 16))
			memcpy(names[n++], table[i].name, 256);
	pthread_mutex_unlock(&lock);
	return n;
}

/* Fills out with the addresses that the name sa's address was resolved
 * under resolved to, its own included, of the same kind (v4-mapped or
 * v6) and in the order they were resolved; returns how many (at most
 * max), 0 when the address was never resolved; *self receives the
 * position of sa's own address (n when it was left out). */
size_t dns_siblings(const struct sockaddr *sa, uint8_t (*out)[16], size_t max,
		    size_t *self)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};
	uint32_t stamps[DNS_SIBLINGS_MAX];
	uint8_t k[16];
	size_t n = 0;
	int first;

	/* nothing resolved yet (the generation moves with the first
	 * name): no lock to take */
	if (!atomic_load_explicit(&generation, memory_order_relaxed) ||
	    !sa_key(sa, k))
		return 0;
	if (max > DNS_SIBLINGS_MAX)
		max = DNS_SIBLINGS_MAX;
	pthread_mutex_lock(&lock);
	for (first = buckets[bucket(k)] - 1; first >= 0;
	     first = table[first].next)
		if (!memcmp(table[first].addr, k, 16))
			break;
	for (int i = 0; first >= 0 && i < DNS_SLOTS && n < max; i++) {
		struct dns_entry *e = &table[i];
		bool dup = false;
		size_t j;

		if (!e->stamp ||
		    !memcmp(e->addr, mapped, 12) != !memcmp(k, mapped, 12) ||
		    strcmp(e->name, table[first].name))
			continue;
		for (j = 0; j < n && !dup; j++)
			dup = !memcmp(out[j], e->addr, 16);
		if (dup)
			continue;
		/* insertion sort by resolution order */
		for (j = n; j > 0 && stamps[j - 1] > e->stamp; j--) {
			stamps[j] = stamps[j - 1];
			memcpy(out[j], out[j - 1], 16);
		}
		stamps[j] = e->stamp;
		memcpy(out[j], e->addr, 16);
		n++;
	}
	pthread_mutex_unlock(&lock);
	for (*self = 0; *self < n && memcmp(out[*self], k, 16); ++*self)
		;
	return n;
}

/* Fork: the resolver memory's lock, after the policy lock. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void atfork_child(void)
{
	/* taken by this thread in the prepare handler */
	pthread_mutex_unlock(&lock);
}

static const struct life_part part = {
    .prepare = atfork_prepare,
    .parent = atfork_parent,
    .child = atfork_child,
};

__attribute__((constructor)) static void dns_ctor(void)
{
	life_join(LIFE_DNS, &part);
}
