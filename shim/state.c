/* SPDX-License-Identifier: MIT */
/* The shim's process-wide state: lazy initialisation at the first TCP
 * connect, the loaded policy and its reload (a stat every `reload`
 * interval, from the connect path, never a syscall per connect), logging,
 * and the fork handlers. */
#include "shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

atomic_int shim_disabled;
TLS int shim_busy;

static atomic_int log_level = POLICY_LOG_WARN;
static bool log_from_env;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_rwlock_t plock = PTHREAD_RWLOCK_INITIALIZER;
static struct policy *cur; /* under plock */
static bool cur_names;     /* cur has hostname patterns: look names up */
static char path[4096];    /* empty: no policy file */
static struct stat seen;   /* of the file last tried */
static _Atomic uint64_t next_check;
static _Atomic uint64_t reload_ns = 2000000000u;

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
	if (real.write)
		real.write(2, buf, (size_t)n);
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
			shim_log(POLICY_LOG_ERROR, "policy %s: %s; passing "
				 "through", path, strerror(errno));
		memset(&seen, 0, sizeof seen);
		return;
	}
	if (!first && same_file(&st, &seen))
		return;
	seen = st;
	p = policy_load(path, &errs);
	if (!p) {
		shim_log(POLICY_LOG_ERROR, "%s%s; %s (run 'fusebox check "
			 "%s')", errs.n ? errs.msgs[0] : "policy: error",
			 errs.n > 1 ? " (and more)" : "",
			 first ? "passing through" : "keeping the old policy",
			 path);
		policy_errors_free(&errs);
		return;
	}
	if (!log_from_env)
		atomic_store(&log_level, (int)p->log);
	atomic_store(&reload_ns, p->reload_ms * 1000000u);
	pthread_rwlock_wrlock(&plock);
	old = cur;
	cur = p;
	cur_names = false;
	for (size_t i = 0; i < p->npatterns; i++)
		if (p->patterns[i].kind == POLICY_PAT_HOST ||
		    p->patterns[i].kind == POLICY_PAT_GLOB)
			cur_names = true;
	pthread_rwlock_unlock(&plock);
	policy_free(old);
	if (!first)
		shim_log(POLICY_LOG_INFO, "policy %s reloaded: %zu rules",
			 path, p->nrules);
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
			shim_log(POLICY_LOG_WARN, "FUSEBOX_LOG=%s is not one "
				 "of error, warn, info, debug", v);
		}
	}
	r = policy_locate(path, sizeof path);
	if (r < 0) {
		path[0] = 0; /* no policy: pass-through */
		return;
	}
	load(true);
	atomic_store(&next_check, clock_ns() + atomic_load(&reload_ns));
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

/* Decides whether a connect to sa is guarded and fills c's settings. */
bool state_classify(const struct sockaddr *sa, struct conn *c)
{
	char names[4][256];
	const char *hosts[4];
	const struct policy_settings *s;
	struct policy_match m;
	size_t n;
	bool guarded = false;

	pthread_once(&init_once, init);
	if (atomic_load(&shim_disabled) || !path[0])
		return false;
	maybe_reload(clock_coarse_ns());
	pthread_rwlock_rdlock(&plock);
	n = cur_names ? dns_lookup(sa, names, 4) : 0;
	for (size_t i = 0; i < n; i++)
		hosts[i] = names[i];
	if (cur) {
		m = policy_match(cur, sa, hosts, n);
		if (m.rule != -2) {
			s = policy_settings_of(cur, m);
			c->rule = m.rule;
			c->connect_ms = (uint32_t)s->connect_timeout_ms;
			c->response_ms = (uint32_t)s->response_timeout_ms;
			c->idle_ms = (uint32_t)s->idle_timeout_ms;
			c->send_ms = (uint32_t)s->send_timeout_ms;
			guarded = true;
		}
	}
	pthread_rwlock_unlock(&plock);
	return guarded;
}

/* Fork: no lock of ours may be held by a thread the child lacks. */
static void atfork_prepare(void)
{
	dns_atfork_prepare();
	pthread_rwlock_wrlock(&plock);
	timer_atfork_prepare();
}

static void atfork_parent(void)
{
	timer_atfork_parent();
	pthread_rwlock_unlock(&plock);
	dns_atfork_parent();
}

/* A write-locked rwlock remembers its writer's tid, which the child's
 * thread does not have: start from a fresh lock instead of unlocking. */
static void atfork_child(void)
{
	timer_atfork_child();
	pthread_rwlock_init(&plock, NULL);
	dns_atfork_child();
}

/* Registers the fork handlers at load time. */
__attribute__((constructor)) static void state_ctor(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
