/* SPDX-License-Identifier: MIT */
/* The shim's process-wide state: initialisation at load (environment,
 * policy, segment), the process's slot at its first guarded connect, the
 * loaded policy and its reload (a stat every `reload` interval, from the
 * connect path, never a syscall per connect), and logging. */
#include "shim.h"
#include "segment/shared.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

atomic_int shim_disabled;
TLS int shim_busy;

static atomic_int log_level = POLICY_LOG_WARN;
static bool log_from_env;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_rwlock_t plock = PTHREAD_RWLOCK_INITIALIZER;
static struct policy *cur;	 /* under plock */
static bool cur_names;		 /* cur has hostname patterns: look names up */
static bool cur_guards;		 /* cur guards some destination */
static _Atomic int32_t *cur_seg; /* segment rule index per rule + 1 */
static struct conn_cfg *cur_cfg; /* connection settings per rule + 1 */
static uint64_t cur_gen;	 /* bumped with every cur, from 1 */
static char path[4096];		 /* empty: no policy file */
static struct stat seen;	 /* of the file last tried */
static _Atomic uint64_t next_check;
static _Atomic uint64_t reload_ns = 2000000000u;

struct seg shim_seg;	       /* set once in init(), before any guard */
static atomic_bool registered; /* this process has its slot */
int shim_proc = -1;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* A random number, per thread, no locks (xorshift). */
uint32_t shim_random(void)
{
	static TLS uint64_t x;

	if (UNLIKELY(!x))
		x = clock_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)&x;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (uint32_t)(x >> 16);
}

/* Start time of this process in clock ticks since boot (field 22 of
 * /proc/self/stat), which tells it from a later process with its pid. */
static uint64_t start_time(char comm[16])
{
	char buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	comm[0] = 0;
	if (fd < 0)
		return 0;
	n = real.read(fd, buf, sizeof buf - 1);
	real.close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	{
		char *open_ = strchr(buf, '(');
		size_t k = open_ ? (size_t)(p - open_ - 1) : 0;
		if (k > 15)
			k = 15;
		if (open_)
			memcpy(comm, open_ + 1, k);
		comm[k] = 0;
	}
	/* fields after the comm: state is field 3; start time is 22 */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		sscanf(p, "%llu", &v);
	return v;
}

/* True when the process of slot p (pid) is gone: no such pid, or a pid
 * reused by a later process (another start time). */
bool state_gone(const struct seg_proc *p, uint32_t pid)
{
	char pbuf[64], buf[1024], *q;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	if (pid == UINT32_MAX)
		return false; /* being claimed */
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(pbuf, sizeof pbuf, "/proc/%u/stat", pid);
	fd = open(pbuf, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = real.read(fd, buf, sizeof buf - 1);
	real.close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	q = strrchr(buf, ')');
	if (q && q[1] == ' ' && (q[2] == 'Z' || q[2] == 'X')) {
		/* a zombie holds nothing any more, but a main thread turns
		 * zombie while the other threads may still be exiting with
		 * the fd table: gone once field 20 (num_threads) is 1 */
		char *t = q + 2;
		for (int field = 3; field < 20 && t; field++) {
			t = strchr(t, ' ');
			if (t)
				t++;
		}
		return !t || strtol(t, NULL, 10) <= 1;
	}
	for (int field = 2; field < 22 && q; field++) {
		q = strchr(q + 1, ' ');
	}
	if (q)
		sscanf(q + 1, "%llu", &v);
	return v && v != atomic_load(&p->start);
}

/* Releases the connections held by dead processes in rule; when there
 * were none, sets right what a kill in mid-step left in its count. */
int state_reap(uint32_t rule)
{
	int n = seg_conn_reap(&shim_seg, rule, state_gone);

	if (!n)
		n = seg_conn_recount(&shim_seg, rule,
				     clock_coarse_ns() / 1000000u);
	return n;
}

/* Takes a process slot for this process (again after fork). */
static void register_process(void)
{
	struct seg *sg = &shim_seg;
	char comm[16];
	uint64_t st;
	pid_t me;

	if (atomic_load_explicit(&registered, memory_order_acquire) ||
	    !sg->base)
		return;
	pthread_mutex_lock(&reg_lock);
	me = getpid();
	if (!atomic_load_explicit(&registered, memory_order_relaxed)) {
		st = start_time(comm);
		for (uint32_t i = 0; i < sg->nprocs; i++) {
			struct seg_proc *p = &sg->procs[i];
			uint32_t pid = atomic_load(&p->pid);
			/* a free slot, or one whose process is gone */
			if (pid && pid != (uint32_t)me && !state_gone(p, pid))
				continue;
			/* claim it with an impossible pid, fill it, publish */
			if (!atomic_compare_exchange_strong(&p->pid, &pid,
							    UINT32_MAX))
				continue;
			/* places in lines under the old generation are
			 * the old owner's, not ours */
			atomic_fetch_add(&p->gen, 1);
			atomic_store(&p->start, st);
			memcpy(p->comm, comm, sizeof p->comm);
			if (pid && pid != (uint32_t)me)
				/* a dead process's slot: give back what it
				 * held (after exec, our own stays ours) */
				seg_conn_reap_entry(sg, p, UINT32_MAX);
			atomic_store(&p->pid, (uint32_t)me);
			shim_proc = (int)i;
			break;
		}
		atomic_store_explicit(&registered, true, memory_order_release);
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Opens the segment named by FUSEBOX_SEGMENT or the policy; a segment
 * that cannot be trusted means private state and one warning. */
static void open_segment(const struct policy *p)
{
	const char *env = getenv("FUSEBOX_SEGMENT");
	struct seg_sizes sz = {0};
	char name[POLICY_SEGMENT_MAX], why[160];

	if (p) {
		sz.procs = p->segment_size[0];
		sz.rules = p->segment_size[1];
		sz.addrs = p->segment_size[2];
	}
	if (env && *env)
		snprintf(name, sizeof name, "%s", env);
	else if (policy_segment_name(p ? p->segment : "fusebox-%u",
				     (unsigned)getuid(), name, sizeof name) < 0)
		snprintf(name, sizeof name, "fusebox-%u", (unsigned)getuid());
	if (strchr(name, '/') ||
	    seg_open(name, &sz, true, &shim_seg, why, sizeof why) < 0) {
		if (strchr(name, '/'))
			snprintf(why, sizeof why, "a name with '/'");
		shim_log(POLICY_LOG_WARN,
			 "segment %s not used: %s; keeping "
			 "private state",
			 name, why);
		if (seg_private(&sz, &shim_seg) < 0)
			memset(&shim_seg, 0, sizeof shim_seg);
	}
	/* the process slot is taken at the first connect: a process that
	 * never connects (most of a shell script's) takes none */
}

/* What the load-time init had to say (an unreadable policy, a segment
 * not used): said at the first connect, not at start, so that a program
 * that never connects (a child run as another user) writes nothing. */
static char deferred[2048];
static atomic_size_t deferred_len;
static atomic_bool deferring; /* only in the constructor */

/* Logs one line on stderr at level; keeps errno. */
void shim_log(int level, const char *fmt, ...)
{
	char buf[1024];
	int saved = errno, n;
	va_list ap;

	if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	n = snprintf(buf, sizeof buf, "fusebox[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	if (atomic_load_explicit(&deferring, memory_order_relaxed)) {
		size_t at =
		    atomic_load_explicit(&deferred_len, memory_order_relaxed);
		if (at + (size_t)n <= sizeof deferred) {
			memcpy(deferred + at, buf, (size_t)n);
			atomic_store(&deferred_len, at + (size_t)n);
		}
	} else if (real.write) {
		real.write(2, buf, (size_t)n);
	}
	errno = saved;
}

/* Says, once, what the load-time init had to say. */
static void say_deferred(void)
{
	static atomic_bool said;
	size_t n = atomic_load(&deferred_len);
	int saved = errno;

	if (n && !atomic_exchange(&said, true) && real.write)
		real.write(2, deferred, n);
	errno = saved;
}

/* True when two stats describe the same file contents. */
static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The settings a connection of rule (-1: [default]) of p takes. */
static void cfg_of(const struct policy *p, int rule, struct conn_cfg *c)
{
	const struct policy_settings *s =
	    policy_settings_of(p, (struct policy_match){.rule = rule});

	memset(c, 0, sizeof *c);
	c->rule = rule;
	c->connect_ms = (uint32_t)s->connect_timeout_ms;
	c->response_ms = (uint32_t)s->response_timeout_ms;
	c->idle_ms = (uint32_t)s->idle_timeout_ms;
	c->send_ms = (uint32_t)s->send_timeout_ms;
	c->handshake_ms = (uint32_t)s->handshake_timeout_ms;
	c->reject_errno = s->reject_errno;
	c->scope = (uint8_t)s->breaker_scope;
	c->classify = (uint8_t)s->classify;
	c->grpc_fail_on = s->grpc_fail_on;
	c->bcfg.mode = s->breaker == POLICY_BREAKER_ON ? BREAKER_MODE_ON
		       : s->breaker == POLICY_BREAKER_DRY_RUN
			   ? BREAKER_MODE_DRY_RUN
			   : BREAKER_MODE_OFF;
	c->bcfg.failures = s->breaker_failures;
	c->bcfg.failure_rate_ppm = s->breaker_failure_rate_ppm;
	c->bcfg.window_calls = s->breaker_window_calls;
	c->bcfg.window_ms = s->breaker_window_ms;
	c->bcfg.min_calls = s->breaker_min_calls;
	c->bcfg.slow_ms = s->breaker_slow_ms;
	c->bcfg.slow_rate_ppm = s->breaker_slow_rate_ppm;
	c->bcfg.open_ms = s->breaker_open_ms;
	c->bcfg.open_max_ms = s->breaker_open_max_ms;
	c->bcfg.probes = s->breaker_probes;
	/* a probe may take its connect, handshake and response */
	c->bcfg.probe_timeout_ms = s->connect_timeout_ms +
				   s->handshake_timeout_ms +
				   s->response_timeout_ms;
	c->retries = s->retries;
	c->retry_on = s->retry_on;
	c->retry_backoff_ms = (uint32_t)s->retry_backoff_ms;
	c->retry_backoff_max_ms = (uint32_t)s->retry_backoff_max_ms;
	c->retry_budget_ppm = s->retry_budget_ppm;
	c->retry_budget_min_mps = s->retry_budget_min_mps;
	c->failover = s->failover;
	c->max_connections = s->max_connections;
	c->max_pending = s->max_pending;
	c->queue_timeout_ms = (uint32_t)s->queue_timeout_ms;
	c->rate_mps = s->rate_mps;
	c->rate_burst = s->rate_burst;
	c->fault_abort_ppm = s->fault_abort_ppm;
	c->fault_delay_ppm = s->fault_delay_ppm;
	c->fault_delay_ms = s->fault_delay_ms;
}

/* Loads the policy file; on success it replaces the current one.  At
 * start a bad file means pass-through, later it means the old policy
 * stays; either way one line says so. */
static void load(bool first)
{
	struct policy_errors errs = {0};
	struct policy *p, *old;
	struct stat st;

	if (stat(path, &st) < 0) {
		if (first)
			shim_log(POLICY_LOG_ERROR,
				 "policy %s: %s; passing "
				 "through",
				 path, strerror(errno));
		memset(&seen, 0, sizeof seen);
		return;
	}
	if (!first && same_file(&st, &seen))
		return;
	seen = st;
	p = policy_load(path, &errs);
	if (!p) {
		shim_log(POLICY_LOG_ERROR,
			 "%s%s; %s (run 'fusebox check "
			 "%s')",
			 errs.n ? errs.msgs[0] : "policy: error",
			 errs.n > 1 ? " (and more)" : "",
			 first ? "passing through" : "keeping the old policy",
			 path);
		policy_errors_free(&errs);
		return;
	}
	if (!log_from_env)
		atomic_store(&log_level, (int)p->log);
	atomic_store(&reload_ns, p->reload_ms * 1000000u);
	_Atomic int32_t *idx = malloc((p->nrules + 1) * sizeof *idx), *oldidx;
	struct conn_cfg *cfg = malloc((p->nrules + 1) * sizeof *cfg), *oldcfg;
	if (!cfg) {
		shim_log(POLICY_LOG_ERROR, "policy %s: out of memory; %s", path,
			 first ? "passing through" : "keeping the old policy");
		free((void *)idx);
		policy_free(p);
		return;
	}
	for (size_t i = 0; idx && i <= p->nrules; i++)
		atomic_init(&idx[i], -1);
	for (size_t i = 0; i <= p->nrules; i++)
		cfg_of(p, (int)i - 1, &cfg[i]);
	pthread_rwlock_wrlock(&plock);
	old = cur;
	oldidx = cur_seg;
	oldcfg = cur_cfg;
	cur = p;
	cur_seg = idx;
	cur_cfg = cfg;
	bool names = false;
	for (size_t i = 0; i < p->npatterns; i++)
		if (p->patterns[i].kind == POLICY_PAT_HOST ||
		    p->patterns[i].kind == POLICY_PAT_GLOB)
			names = true;
	/* read without the lock by state_classify()'s cache check */
	__atomic_store_n(&cur_names, names, __ATOMIC_RELAXED);
	__atomic_store_n(&cur_guards, p->has_default || p->npatterns,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&cur_gen, cur_gen + 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&plock);
	policy_free(old);
	free((void *)oldidx);
	free(oldcfg);
	if (!first)
		shim_log(POLICY_LOG_INFO, "policy %s reloaded: %zu rules", path,
			 p->nrules);
}

/* Reads the environment and loads the policy, once. */
static void init(void)
{
	const char *v;
	int r;

	v = getenv("FUSEBOX_DISABLE");
	if (v && *v && strcmp(v, "0")) {
		atomic_store(&shim_disabled, 1);
		return;
	}
	v = getenv("FUSEBOX_LOG");
	if (v && *v) {
		int lvl = policy_log_level(v);
		if (lvl >= 0) {
			atomic_store(&log_level, lvl);
			log_from_env = true;
		} else {
			shim_log(POLICY_LOG_WARN,
				 "FUSEBOX_LOG=%s is not one "
				 "of error, warn, info, debug",
				 v);
		}
	}
	r = policy_locate(path, sizeof path);
	if (r < 0) {
		path[0] = 0; /* no policy: pass-through */
		return;
	}
	load(true);
	atomic_store(&next_check, clock_ns() + atomic_load(&reload_ns));
	pthread_rwlock_rdlock(&plock);
	if (cur)
		open_segment(cur);
	pthread_rwlock_unlock(&plock);
}

/* Reloads when the interval has passed and the file changed; one thread
 * does it, the others go on with the current policy. */
static void maybe_reload(uint64_t now)
{
	uint64_t due = atomic_load_explicit(&next_check, memory_order_relaxed);
	uint64_t every = atomic_load_explicit(&reload_ns, memory_order_relaxed);

	if (LIKELY(now < due) || !every || !path[0])
		return;
	if (!atomic_compare_exchange_strong(&next_check, &due, now + every))
		return;
	load(false);
}

uint64_t state_reload_due(void)
{
	if (!atomic_load_explicit(&reload_ns, memory_order_relaxed) ||
	    !path[0] || atomic_load(&shim_disabled))
		return 0;
	return atomic_load_explicit(&next_check, memory_order_relaxed);
}

void state_reload_ahead(uint64_t now, uint64_t ahead)
{
	maybe_reload(now + ahead);
}

/* The v6 key and port of an IP socket address. */
static void sockaddr_key(const struct sockaddr *sa, uint8_t key[16],
			 uint16_t *port)
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		memcpy(key, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
	}
}

/* Says once that a segment table is full: new destinations still get
 * their timeouts, but no breaker and no counters. */
static void table_full(const char *key)
{
	static atomic_int said;

	if (!atomic_exchange(&said, 1))
		shim_log(POLICY_LOG_WARN,
			 "segment %s: a table is full; new "
			 "destinations are not counted and have no breaker "
			 "(raise %s in [global])",
			 shim_seg.name, key);
}

/* The segment slot of address key:port of rule ri that this thread used
 * last, when its entry still says so (a loop to one destination skips
 * the hash probe), else -1. */
static TLS int addr_last = -1;

static int addr_cached(uint32_t ri, const uint8_t key[16], uint16_t port)
{
	int i = addr_last;

	if (i >= 0 && (uint32_t)i < shim_seg.naddrs) {
		const struct seg_addr *a = &shim_seg.addrs[i];

		uint64_t x[2], y[2];

		if (atomic_load_explicit(&a->used, memory_order_acquire) != 2)
			return -1;
		memcpy(x, a->addr, 16);
		memcpy(y, key, 16);
		if (x[0] == y[0] && x[1] == y[1] && a->rule == ri &&
		    a->port == port)
			return i;
	}
	return -1;
}

/* The segment slot of address key:port of rule ri, made if need be. */
static int addr_get(uint32_t ri, const uint8_t key[16], uint16_t port,
		    const char *host)
{
	int i = addr_cached(ri, key, port);

	if (i >= 0)
		return i;
	i = seg_addr_get(&shim_seg, ri, key, port, host);
	addr_last = i;
	return i;
}

/* Stores v in a segment field for the readers, unless it is there. */
static void publish(_Atomic uint32_t *field, uint32_t v)
{
	if (atomic_load_explicit(field, memory_order_relaxed) != v)
		atomic_store_explicit(field, v, memory_order_relaxed);
}

/* This thread's last destination and what it was matched to, for the
 * next connect to it: no lock, no match, no copy from the policy. */
static TLS struct {
	uint64_t pgen; /* cur_gen it was made under; 0: none */
	uint32_t dgen; /* dns_generation() then, with names */
	uint16_t port;
	uint8_t key[16];
	int rule;  /* -2: not guarded */
	int srule; /* its segment rule, or -1 */
	int saddr; /* its segment address then; -1: not counted */
	struct conn_cfg cfg;
} last;

/* What every connect does first: init, a reload when due, the process's
 * slot; false when nothing is guarded (pass through). */
static bool enter(uint64_t now)
{
	static atomic_bool inited; /* init() ran: no pthread_once() call */

	if (UNLIKELY(!atomic_load_explicit(&inited, memory_order_acquire))) {
		pthread_once(&init_once, init);
		atomic_store_explicit(&inited, true, memory_order_release);
	}
	if (UNLIKELY(atomic_load_explicit(&deferred_len, memory_order_relaxed)))
		say_deferred();
	if (atomic_load(&shim_disabled) || !path[0])
		return false;
	maybe_reload(now ? now : clock_coarse_ns());
	if (UNLIKELY(!atomic_load_explicit(&registered, memory_order_acquire)))
		register_process();
	return true;
}

int state_last(const struct sockaddr *sa, uint64_t now,
	       const struct conn_cfg **cfg, int32_t *srule, int32_t *saddr)
{
	uint8_t key[16];
	uint16_t port;
	uint32_t dgen;
	uint64_t gen;
	int i;

	if (!enter(now))
		return 0;
	sockaddr_key(sa, key, &port);
	/* same policy and names: what was copied then is what the lock
	 * would give now (a reload meanwhile bumps cur_gen; a stale flag
	 * only sends the caller to state_classify()) */
	gen = __atomic_load_n(&cur_gen, __ATOMIC_ACQUIRE);
	dgen = __atomic_load_n(&cur_names, __ATOMIC_RELAXED) ? dns_generation()
							     : 0;
	if (!gen || last.pgen != gen || last.dgen != dgen ||
	    last.port != port || memcmp(last.key, key, 16))
		return -1;
	if (last.rule == -2)
		return 0;
	*cfg = &last.cfg;
	*srule = *saddr = -1;
	if (!shim_seg.base)
		return 1;
	if (last.srule < 0)
		return -1; /* the rule's slot is looked for again */
	*srule = last.srule;
	/* no room in its rule's address table then: entries are never
	 * freed, so none now (a lookup in a full table costs SEG_PROBES
	 * looks) */
	if (last.saddr < 0)
		return 1;
	i = addr_cached((uint32_t)last.srule, key, port);
	if (i < 0)
		return -1;
	*saddr = i;
	return 1;
}

/* Decides whether a connect to sa is guarded and fills c's settings
 * (c->connect_ns is the time, or 0). */
bool state_classify(const struct sockaddr *sa, struct conn *c)
{
	char names[4][256];
	const char *hosts[4];
	const struct conn_cfg *cfg;
	struct policy_match m;
	uint8_t key[16];
	uint16_t port;
	uint32_t dgen;
	int32_t srule, saddr;
	size_t n;
	bool guarded = false;
	int hit = state_last(sa, c->connect_ns, &cfg, &srule, &saddr);

	if (hit >= 0) {
		if (hit) {
			c->cfg = *cfg;
			c->srule = srule;
			c->saddr = saddr;
		}
		return hit;
	}
	sockaddr_key(sa, key, &port);
	pthread_rwlock_rdlock(&plock);
	dgen = cur_names ? dns_generation() : 0;
	if (cur) {
		n = cur_names ? dns_lookup(sa, names, 4) : 0;
		for (size_t i = 0; i < n; i++)
			hosts[i] = names[i];
		m = policy_match(cur, sa, hosts, n);
	} else {
		m.rule = -2;
		n = 0;
	}
	if (m.rule != -2) {
		c->cfg = cur_cfg[m.rule + 1];
		c->saddr = c->srule = -1;
		if (shim_seg.base) {
			const char *rn =
			    m.rule >= 0 ? cur->rules[m.rule].name : "default";
			/* the rule's slot, found once per policy */
			int ri = cur_seg ? cur_seg[m.rule + 1] : -1;
			if (ri < 0) {
				ri = seg_rule_get(&shim_seg, rn);
				if (cur_seg)
					cur_seg[m.rule + 1] = ri;
			}
			if (ri >= 0) {
				c->srule = ri;
				c->saddr = addr_get((uint32_t)ri, key, port,
						    n ? hosts[0] : NULL);
				struct seg_rule *sr = &shim_seg.rules[ri];
				/* for the readers, when changed */
				publish(&sr->max_connections,
					c->max_connections);
				publish(&sr->breaker_mode,
					(uint32_t)c->bcfg.mode);
				publish(&sr->breaker_scope, c->scope);
			}
			if (c->saddr < 0)
				table_full(ri < 0 ? "segment_rules"
						  : "segment_addresses");
		}
		guarded = true;
		last.cfg = c->cfg;
		last.srule = c->srule;
		last.saddr = c->saddr;
	}
	if (cur) {
		last.pgen = cur_gen;
		last.dgen = dgen;
		last.port = port;
		memcpy(last.key, key, 16);
		last.rule = m.rule;
	}
	pthread_rwlock_unlock(&plock);
	return guarded;
}

bool state_policy(void)
{
	return __atomic_load_n(&cur_guards, __ATOMIC_RELAXED) &&
	       !atomic_load_explicit(&shim_disabled, memory_order_relaxed);
}

bool state_settings(int rule, struct policy_settings *out)
{
	bool ok = false;

	pthread_rwlock_rdlock(&plock);
	if (cur && rule < (int)cur->nrules) {
		*out = *policy_settings_of(cur,
					   (struct policy_match){.rule = rule});
		ok = true;
	}
	pthread_rwlock_unlock(&plock);
	return ok;
}

/* Fork: the policy lock comes first in the one order of locks
 * (state_classify() holds it while it looks names up, then the timer's).
 * A write-locked rwlock remembers its writer's tid, which the child's
 * thread does not have: the child starts from a fresh lock instead. */
static void atfork_prepare(void)
{
	pthread_rwlock_wrlock(&plock);
}

static void atfork_parent(void)
{
	pthread_rwlock_unlock(&plock);
}

static void atfork_child(void)
{
	pthread_mutex_init(&reg_lock, NULL);
	atomic_store(&registered, false); /* the child takes its own slot */
	shim_proc = -1;
#ifdef __SANITIZE_THREAD__
	/* TSan keeps the write lock of the prepare handler on its books
	 * through init: tell it of an unlock that glibc must not do */
	__tsan_mutex_pre_unlock(&plock, 0);
	__tsan_mutex_post_unlock(&plock, 0);
#endif
	pthread_rwlock_init(&plock, NULL);
}

static const struct life_part part = {
    .prepare = atfork_prepare,
    .parent = atfork_parent,
    .child = atfork_child,
};

/* At load time: reads the environment, loads the policy and maps the
 * segment.  Not at the first connect: a server's master (nginx) loads us
 * with the environment, then forks workers that clear it and switch
 * user; they inherit what is read and mapped here.  No thread is started
 * here. */
__attribute__((constructor)) static void state_ctor(void)
{
	int saved = errno;

	life_join(LIFE_POLICY, &part);
	atomic_store(&deferring, true);
	pthread_once(&init_once, init);
	atomic_store(&deferring, false);
	errno = saved;
}
