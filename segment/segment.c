/* SPDX-License-Identifier: MIT */
/* Creating, opening and validating the shared-memory segment, and the
 * lookups of its rule and address tables.  Linked into the shim and into
 * the fusebox command; never trusts what it maps until seg_validate()
 * says so, and bounds-checks every index it follows. */
#include "segment/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALIGN(x) (((x) + 63u) & ~(uint64_t)63u)

/* Bytes a segment with these table sizes takes. */
size_t seg_bytes(const struct seg_sizes *sz)
{
	return ALIGN(sizeof(struct seg_header)) +
	       ALIGN((uint64_t)sz->procs * sizeof(struct seg_proc)) +
	       ALIGN((uint64_t)sz->rules * sizeof(struct seg_rule)) +
	       ALIGN((uint64_t)sz->addrs * sizeof(struct seg_addr));
}

/* Checks a table of n entries of size esz at off fits in len. */
static bool table_ok(uint64_t off, uint32_t n, uint32_t esz, uint64_t len)
{
	return n >= 1 && n <= SEG_MAX_ENTRIES && off % 8 == 0 && off <= len &&
	       (uint64_t)n * esz <= len - off;
}

/* Checks that the bytes at base are a segment this process may use. */
int seg_validate(const void *base, size_t len, unsigned uid, char *why,
		 size_t whylen)
{
	const struct seg_header *h = base;

	if (len < sizeof *h) {
		snprintf(why, whylen, "too small (%zu bytes)", len);
		return -EINVAL;
	}
	if (memcmp(h->magic, SEG_MAGIC, 8)) {
		snprintf(why, whylen, "not a fusebox segment (bad magic)");
		return -EINVAL;
	}
	if (h->version != SEG_VERSION ||
	    h->header_size != sizeof(struct seg_header)) {
		snprintf(why, whylen,
			 "layout version %u, this fusebox reads "
			 "version %u",
			 h->version, SEG_VERSION);
		return -EINVAL;
	}
	if (h->size != len) {
		snprintf(why, whylen, "size %llu in the header, %zu mapped",
			 (unsigned long long)h->size, len);
		return -EINVAL;
	}
	if (h->uid != uid) {
		snprintf(why, whylen, "made by uid %u", h->uid);
		return -EINVAL;
	}
	if (atomic_load(&((struct seg_header *)h)->ready) != SEG_READY) {
		snprintf(why, whylen, "not initialised");
		return -EINVAL;
	}
	if (h->proc_size != sizeof(struct seg_proc) ||
	    h->rule_size != sizeof(struct seg_rule) ||
	    h->addr_size != sizeof(struct seg_addr) ||
	    !table_ok(h->procs_off, h->nprocs, h->proc_size, len) ||
	    !table_ok(h->rules_off, h->nrules, h->rule_size, len) ||
	    !table_ok(h->addrs_off, h->naddrs, h->addr_size, len) ||
	    h->procs_off < sizeof *h || h->rules_off < sizeof *h ||
	    h->addrs_off < sizeof *h) {
		snprintf(why, whylen, "corrupt table layout");
		return -EINVAL;
	}
	/* the tables follow each other without overlap */
	if (h->rules_off < h->procs_off + (uint64_t)h->nprocs * h->proc_size ||
	    h->addrs_off < h->rules_off + (uint64_t)h->nrules * h->rule_size) {
		snprintf(why, whylen, "corrupt table layout (overlap)");
		return -EINVAL;
	}
	return 0;
}

/* Points s at the tables of a validated segment. */
static void attach(struct seg *s, void *base, size_t len)
{
	s->base = base;
	s->size = len;
	s->hdr = base;
	s->procs = (void *)((char *)base + s->hdr->procs_off);
	s->rules = (void *)((char *)base + s->hdr->rules_off);
	s->addrs = (void *)((char *)base + s->hdr->addrs_off);
	s->nprocs = s->hdr->nprocs;
	s->nrules = s->hdr->nrules;
	s->naddrs = s->hdr->naddrs;
}

/* Initialises a robust mutex that processes share. */
static void mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* Writes a fresh segment into zeroed memory of seg_bytes(sz). */
static void format(void *base, size_t len, const struct seg_sizes *sz)
{
	struct seg_header *h = base;
	struct timespec ts;

	memcpy(h->magic, SEG_MAGIC, 8);
	h->version = SEG_VERSION;
	h->header_size = sizeof *h;
	h->size = len;
	h->uid = (uint32_t)getuid();
	h->nprocs = sz->procs;
	h->nrules = sz->rules;
	h->naddrs = sz->addrs;
	h->proc_size = sizeof(struct seg_proc);
	h->rule_size = sizeof(struct seg_rule);
	h->addr_size = sizeof(struct seg_addr);
	h->procs_off = ALIGN(sizeof *h);
	h->rules_off =
	    h->procs_off + ALIGN((uint64_t)sz->procs * sizeof(struct seg_proc));
	h->addrs_off =
	    h->rules_off + ALIGN((uint64_t)sz->rules * sizeof(struct seg_rule));
	clock_gettime(CLOCK_REALTIME, &ts);
	h->created_realtime_ms =
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	mutex_init(&h->alloc);
	atomic_store_explicit(&h->ready, SEG_READY, memory_order_release);
}

/* Checks table sizes; fills defaults for zeros. */
static void sizes_fix(const struct seg_sizes *in, struct seg_sizes *out)
{
	*out = in ? *in : (struct seg_sizes){0};
	if (!out->procs || out->procs > SEG_MAX_ENTRIES)
		out->procs = SEG_DEFAULT_PROCS;
	if (!out->rules || out->rules > SEG_MAX_ENTRIES)
		out->rules = SEG_DEFAULT_RULES;
	if (!out->addrs || out->addrs > SEG_MAX_ENTRIES)
		out->addrs = SEG_DEFAULT_ADDRS;
}

/* Maps an open shm fd and validates it; the creator waits for nobody. */
static int map_existing(int fd, bool writable, struct seg *s, char *why,
			size_t whylen)
{
	struct stat st;
	void *base;
	int r;

	for (int i = 0; i < 100; i++) {
		/* a creator between shm_open and ftruncate: wait a little */
		if (fstat(fd, &st) < 0) {
			snprintf(why, whylen, "fstat: %s", strerror(errno));
			return -errno;
		}
		if (st.st_size >= (off_t)sizeof(struct seg_header))
			break;
		usleep(1000);
	}
	if (st.st_uid != getuid()) {
		snprintf(why, whylen, "owned by uid %u, not %u",
			 (unsigned)st.st_uid, (unsigned)getuid());
		return -EPERM;
	}
	if (st.st_mode & 077) {
		snprintf(why, whylen, "mode %03o lets others in",
			 (unsigned)(st.st_mode & 0777));
		return -EPERM;
	}
	if (st.st_size < (off_t)sizeof(struct seg_header)) {
		snprintf(why, whylen, "truncated (%lld bytes)",
			 (long long)st.st_size);
		return -EINVAL;
	}
	base = mmap(NULL, (size_t)st.st_size,
		    PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		snprintf(why, whylen, "mmap: %s", strerror(errno));
		return -errno;
	}
	for (int i = 0; i < 200; i++) {
		/* the creator formats after ftruncate: up to 200 ms */
		if (atomic_load_explicit(&((struct seg_header *)base)->ready,
					 memory_order_acquire) == SEG_READY)
			break;
		usleep(1000);
	}
	r = seg_validate(base, (size_t)st.st_size, (unsigned)getuid(), why,
			 whylen);
	if (r < 0) {
		munmap(base, (size_t)st.st_size);
		return r;
	}
	attach(s, base, (size_t)st.st_size);
	s->shared = true;
	return 0;
}

/* Opens (and with create, creates race-free) the shm object name. */
int seg_open(const char *name, const struct seg_sizes *sz, bool create,
	     struct seg *s, char *why, size_t whylen)
{
	char path[SEG_NAME_MAX + 2];
	struct seg_sizes want;
	size_t len;
	void *base;
	int fd, r;

	memset(s, 0, sizeof *s);
	snprintf(path, sizeof path, "/%s", name);
	fd = shm_open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && create) {
		sizes_fix(sz, &want);
		len = seg_bytes(&want);
		fd = shm_open(
		    path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd >= 0) {
			/* ours: size it, format it, then mark it ready */
			if (fchmod(fd, 0600) < 0 ||
			    ftruncate(fd, (off_t)len) < 0) {
				snprintf(why, whylen, "ftruncate: %s",
					 strerror(errno));
				r = -errno;
				shm_unlink(path);
				close(fd);
				return r;
			}
			base = mmap(NULL, len, PROT_READ | PROT_WRITE,
				    MAP_SHARED, fd, 0);
			close(fd);
			if (base == MAP_FAILED) {
				snprintf(why, whylen, "mmap: %s",
					 strerror(errno));
				return -ENOMEM;
			}
			format(base, len, &want);
			attach(s, base, len);
			s->shared = true;
			snprintf(s->name, sizeof s->name, "%s", name);
			return 0;
		}
		if (errno != EEXIST) {
			snprintf(why, whylen, "shm_open: %s", strerror(errno));
			return -errno;
		}
		/* someone created it between our two opens */
		fd = shm_open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		snprintf(why, whylen, "shm_open: %s", strerror(errno));
		return -errno;
	}
	r = map_existing(fd, true, s, why, whylen);
	close(fd);
	if (r == 0)
		snprintf(s->name, sizeof s->name, "%s", name);
	return r;
}

/* Opens name read-only for the fusebox command. */
int seg_open_readonly(const char *name, struct seg *s, char *why, size_t whylen)
{
	char path[SEG_NAME_MAX + 2];
	int fd, r;

	memset(s, 0, sizeof *s);
	snprintf(path, sizeof path, "/%s", name);
	fd = shm_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	r = map_existing(fd, false, s, why, whylen);
	close(fd);
	if (r == 0)
		snprintf(s->name, sizeof s->name, "%s", name);
	return r;
}

/* Makes a private segment in anonymous memory. */
int seg_private(const struct seg_sizes *sz, struct seg *s)
{
	struct seg_sizes want;
	size_t len;
	void *base;

	memset(s, 0, sizeof *s);
	sizes_fix(sz, &want);
	len = seg_bytes(&want);
	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	format(base, len, &want);
	attach(s, base, len);
	s->shared = false;
	snprintf(s->name, sizeof s->name, "(private)");
	return 0;
}

/* Unmaps s. */
void seg_close(struct seg *s)
{
	if (s->base)
		munmap(s->base, s->size);
	memset(s, 0, sizeof *s);
}

/* Locks a robust mutex; a dead holder's lock is recovered.  A lock still
 * busy after a second (a stuck or corrupt segment) is not taken: -1, and
 * the caller goes on without it. */
int seg_lock(pthread_mutex_t *m)
{
	struct timespec ts;
	int r;

#ifdef __SANITIZE_THREAD__
	/* gcc 12's thread sanitizer does not intercept clocklock: it would
	 * not see the lock taken and report every section under it */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	r = pthread_mutex_timedlock(m, &ts);
#else
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 1;
	r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		return 0;
	}
	return r == 0 ? 0 : -1;
}

void seg_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

/* Hash of a table key. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* The key of a rule or address lookup. */
struct key {
	const char *name; /* rules */
	uint32_t rule;	  /* addresses: rule, addr, port, host */
	const uint8_t *addr;
	uint64_t w[2]; /* addr as two words */
	uint16_t port;
	const char *host;
};

/* Entry i of the rule table, or of the address table. */
static _Atomic uint32_t *entry(struct seg *s, bool rules, uint32_t i)
{
	return rules ? &s->rules[i].used : &s->addrs[i].used;
}

/* True when a published entry holds key k. */
static inline bool same(struct seg *s, bool rules, uint32_t i,
			const struct key *k)
{
	const struct seg_addr *a = &s->addrs[i];
	uint64_t x[2];

	if (rules)
		return !strncmp(s->rules[i].name, k->name, SEG_NAME_MAX - 1);
	/* two loads, no call: a miss in a full table compares up to
	 * SEG_PROBES entries */
	memcpy(x, a->addr, 16);
	return x[0] == k->w[0] && x[1] == k->w[1] && a->port == k->port &&
	       a->rule == k->rule;
}

/* Writes key k into the free entry i (under the alloc lock). */
static void fill(struct seg *s, bool rules, uint32_t i, const struct key *k)
{
	if (rules) {
		snprintf(s->rules[i].name, sizeof s->rules[i].name, "%s",
			 k->name);
		mutex_init(&s->rules[i].lock);
		return;
	}
	s->addrs[i].rule = k->rule;
	s->addrs[i].port = k->port;
	memcpy(s->addrs[i].addr, k->addr, 16);
	snprintf(s->addrs[i].host, sizeof s->addrs[i].host, "%s",
		 k->host ? k->host : "");
	mutex_init(&s->addrs[i].lock);
}

/* Finds or adds key k in an open-addressing table of n entries from slot
 * i: lookups read published entries without a lock; an add takes the
 * alloc lock and looks again from the first free slot it saw.  The index,
 * or -1 when the table is full or the lock is stuck. */
static inline __attribute__((always_inline)) int table_get(
    struct seg *s, bool rules, uint32_t n, uint32_t i, const struct key *k)
{
	/* a key lives within SEG_PROBES slots of its own: a miss in a full
	 * table costs that many looks, not the table's size */
	uint32_t most = n < SEG_PROBES ? n : SEG_PROBES;

	for (uint32_t seen = 0; seen < most;
	     seen++, i = i + 1 < n ? i + 1 : 0) {
		uint32_t u = atomic_load_explicit(entry(s, rules, i),
						  memory_order_acquire);
		if (u == 2 && same(s, rules, i, k))
			return (int)i;
		if (u != 0)
			continue;
		int found = -1;
		if (seg_lock(&s->hdr->alloc) < 0)
			return -1;
		for (; seen < most; seen++, i = (i + 1) % n) {
			u = atomic_load(entry(s, rules, i));
			if (u == 2 && same(s, rules, i, k)) {
				found = (int)i;
				break;
			}
			if (u == 0) {
				fill(s, rules, i, k);
				atomic_store_explicit(entry(s, rules, i), 2,
						      memory_order_release);
				found = (int)i;
				break;
			}
		}
		seg_unlock(&s->hdr->alloc);
		return found;
	}
	return -1;
}

/* Finds or adds the rule named name. */
int seg_rule_get(struct seg *s, const char *name)
{
	struct key k = {.name = name};
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	return table_get(s, true, s->nrules, (uint32_t)(mix(h) % s->nrules),
			 &k);
}

/* Finds or adds address addr:port of rule. */
int seg_addr_get(struct seg *s, uint32_t rule, const uint8_t addr[16],
		 uint16_t port, const char *host)
{
	struct key k = {.rule = rule, .addr = addr, .port = port, .host = host};
	uint64_t a, b;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	k.w[0] = a;
	k.w[1] = b;
	return table_get(
	    s, false, s->naddrs,
	    (uint32_t)(mix(a ^ mix(b ^ ((uint64_t)rule << 16 | port))) %
		       s->naddrs),
	    &k);
}

/* Adds v microseconds to a histogram. */
void seg_hist_add(struct seg_hist *h, uint64_t us)
{
	unsigned i = 0;

	if (us > 0) {
		/* quarter octaves: 4 * log2(us), from the top bits */
		unsigned lg = 63u - (unsigned)__builtin_clzll(us);
		unsigned frac = lg >= 2 ? (unsigned)(us >> (lg - 2)) & 3u
					: (unsigned)(us << (2 - lg)) & 3u;
		i = lg * 4 + frac;
	}
	if (i >= SEG_HIST_BUCKETS)
		i = SEG_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
}

/* The q-quantile of h in milliseconds, or -1 when empty. */
double seg_hist_quantile(const struct seg_hist *h, double q)
{
	uint64_t total = 0, seen = 0, counts[SEG_HIST_BUCKETS];

	for (unsigned i = 0; i < SEG_HIST_BUCKETS; i++) {
		counts[i] = atomic_load_explicit(
		    &((struct seg_hist *)h)->bucket[i], memory_order_relaxed);
		total += counts[i];
	}
	if (!total)
		return -1;
	for (unsigned i = 0; i < SEG_HIST_BUCKETS; i++) {
		seen += counts[i];
		if ((double)seen >= q * (double)total) {
			/* the middle of the bucket: 2^((i + 0.5) / 4) µs */
			unsigned lg = i / 4, frac = i % 4;
			double lo = (double)(1ull << lg) * (1.0 + frac / 4.0);
			double hi =
			    (double)(1ull << lg) * (1.0 + (frac + 1) / 4.0);
			return (lo + hi) / 2 / 1000.0;
		}
	}
	return -1;
}

/* Name of a counter as JSON and Prometheus print it. */
const char *seg_counter_name(enum seg_counter c)
{
	static const char *const names[SEG_NCOUNTERS] = {
	    [SEG_CALLS] = "calls",
	    [SEG_SUCCESSES] = "successes",
	    [SEG_FAILURES] = "failures",
	    [SEG_CONNECT_REFUSED] = "connect_refused",
	    [SEG_CONNECT_TIMEOUTS] = "connect_timeouts",
	    [SEG_RESPONSE_TIMEOUTS] = "response_timeouts",
	    [SEG_RESETS] = "resets",
	    [SEG_HTTP_5XX] = "http_5xx",
	    [SEG_TLS_FAILURES] = "tls_failures",
	    [SEG_GRPC_FAILURES] = "grpc_failures",
	    [SEG_SLOW_CALLS] = "slow_calls",
	    [SEG_RETRIES] = "retries",
	    [SEG_STALE_RECONNECTS] = "stale_reconnects",
	    [SEG_REPLAYS_EMPTY] = "replays_empty",
	    [SEG_REPLAYS_TIMEOUT] = "replays_response_timeout",
	    [SEG_REPLAYS_5XX] = "replays_5xx",
	    [SEG_REJECTED_BREAKER] = "rejected_breaker",
	    [SEG_REJECTED_LIMIT] = "rejected_limit",
	    [SEG_REJECTED_RATE] = "rejected_rate",
	    [SEG_REJECTED_BUDGET] = "rejected_budget",
	    [SEG_BYTES_SENT] = "bytes_sent",
	    [SEG_BYTES_RECEIVED] = "bytes_received",
	};

	return (unsigned)c < SEG_NCOUNTERS && names[c] ? names[c] : "?";
}
