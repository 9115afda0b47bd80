/* SPDX-License-Identifier: MIT */
/* fusebox stats output: a snapshot of the segment, and it as the JSON of
 * SPEC §4 (the text table is in report_table.c).  Everything read from
 * the segment is untrusted: strings are capped at their field and
 * escaped, indexes bounds-checked. */
#include "report.h"
#include "segment/shared.h"

#include "policy/breaker.h"
#include "policy/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NONE UINT32_MAX
/* Longest text column of the table before it is cut with '~'. */
#define COL_MAX 24
/* Instants further than this from now are shown as null (corrupt). */
#define FAR_MS (100ull * 366 * 24 * 3600 * 1000)

/* Orders rule rows by name, then by slot. */
static int rule_cmp(const void *a, const void *b)
{
	const struct report_rule *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Orders address rows by rule, address, port and slot. */
static int addr_cmp(const void *a, const void *b)
{
	const struct report_addr *x = a, *y = b;
	int c;

	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	c = memcmp(x->addr, y->addr, 16);
	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Frees what report_snap_take() allocated. */
void report_snap_free(struct report_snap *sn)
{
	free(sn->rules);
	free(sn->addrs);
	memset(sn, 0, sizeof *sn);
}

/* Copies the ready rules and addresses of s, sorted, into sn; an address
 * whose rule index is out of range or not a ready rule is left out.  0 or
 * -ENOMEM. */
int report_snap_take(const struct seg *s, struct report_snap *sn)
{
	uint32_t *pos = NULL;
	size_t cap = 0;

	memset(sn, 0, sizeof *sn);
	if (!s || !s->nrules || !s->naddrs)
		return 0;
	pos = malloc((size_t)s->nrules * sizeof *pos);
	if (!pos)
		goto fail;
	for (uint32_t i = 0; i < s->nrules; i++) {
		struct seg_rule *r = &s->rules[i];
		struct report_rule *row;

		pos[i] = NONE;
		if (atomic_load_explicit(&r->used, memory_order_acquire) != 2)
			continue;
		if (sn->nrules == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(sn->rules, ncap * sizeof *sn->rules);
			if (!p)
				goto fail;
			sn->rules = p;
			cap = ncap;
		}
		row = &sn->rules[sn->nrules++];
		memset(row, 0, sizeof *row);
		row->idx = i;
		memcpy(row->name, r->name, SEG_NAME_MAX);
		row->name[SEG_NAME_MAX] = 0;
	}
	if (sn->nrules)
		qsort(sn->rules, sn->nrules, sizeof *sn->rules, rule_cmp);
	for (size_t k = 0; k < sn->nrules; k++)
		pos[sn->rules[k].idx] = (uint32_t)k;
	cap = 0;
	for (uint32_t i = 0; i < s->naddrs; i++) {
		struct seg_addr *a = &s->addrs[i];
		struct report_addr *row;
		uint32_t rule;

		if (atomic_load_explicit(&a->used, memory_order_acquire) != 2)
			continue;
		rule = a->rule;
		if (rule >= s->nrules || pos[rule] == NONE)
			continue;
		if (sn->naddrs == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(sn->addrs, ncap * sizeof *sn->addrs);
			if (!p)
				goto fail;
			sn->addrs = p;
			cap = ncap;
		}
		row = &sn->addrs[sn->naddrs++];
		row->idx = i;
		row->rule = pos[rule];
		memcpy(row->addr, a->addr, 16);
		row->port = a->port;
	}
	if (sn->naddrs)
		qsort(sn->addrs, sn->naddrs, sizeof *sn->addrs, addr_cmp);
	for (size_t k = 0; k < sn->naddrs; k++) {
		struct report_rule *r = &sn->rules[sn->addrs[k].rule];

		if (!r->count)
			r->first = (uint32_t)k;
		r->count++;
	}
	free(pos);
	return 0;
fail:
	free(pos);
	report_snap_free(sn);
	return -ENOMEM;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 when
 * it is not one; *cp receives the code point. */
size_t report_utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Length of a string field of at most max bytes that may lack its NUL. */
size_t report_field_len(const char *s, size_t max)
{
	const char *z = memchr(s, 0, max);

	return z ? (size_t)(z - s) : max;
}

/* Writes a field of at most max bytes as a JSON string: control
 * characters escaped, bytes that are not UTF-8 as U+FFFD. */
static void json_string(FILE *f, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = report_field_len(s, max);

	fputc('"', f);
	while (n) {
		uint32_t cp;
		size_t len = report_utf8_len(p, n, &cp);

		if (!len) {
			fputs("\\ufffd", f);
			len = 1;
		} else if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (cp < 0x20 || cp == 0x7f) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(p, 1, len, f);
		}
		p += len;
		n -= len;
	}
	fputc('"', f);
}

/* Writes "IP:PORT", or "[IPv6]:PORT"; IPv4-mapped addresses as IPv4. */
void report_addr_text(char *buf, size_t len, const uint8_t a[16], uint16_t port)
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0,	 0,
				       0, 0, 0, 0, 0xff, 0xff};
	char ip[INET6_ADDRSTRLEN];

	if (!memcmp(a, v4, 12)) {
		inet_ntop(AF_INET, a + 12, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, (unsigned)port);
	} else {
		inet_ntop(AF_INET6, a, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, (unsigned)port);
	}
}

/* Writes a realtime instant in ms as ISO 8601 UTC ("...T19:00:00Z");
 * false when it cannot be shown. */
bool report_iso_time(char *buf, size_t len, uint64_t real_ms)
{
	time_t t = (time_t)(real_ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year > 9999 - 1900)
		return false;
	return strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* The realtime instant of a monotonic one, given both clocks now; false
 * when it is 0 (never), before 1970, or absurdly far from now. */
bool report_mono_to_real(const struct report_opts *o, uint64_t mono,
			 uint64_t *real)
{
	uint64_t d;

	if (!mono)
		return false;
	if (mono >= o->now_mono_ms) {
		d = mono - o->now_mono_ms;
		if (d > FAR_MS)
			return false;
		*real = o->now_real_ms + d;
	} else {
		d = o->now_mono_ms - mono;
		if (d > FAR_MS || d > o->now_real_ms)
			return false;
		*real = o->now_real_ms - d;
	}
	return true;
}

/* The breaker that counts for address a of rule r, as stats show it. */
void report_breaker_view(const struct seg_rule *r, const struct seg_addr *a,
			 struct report_breaker *v)
{
	struct breaker_config c;
	struct breaker b;
	uint32_t mode =
	    atomic_load_explicit(&r->breaker_mode, memory_order_relaxed);
	uint32_t scope =
	    atomic_load_explicit(&r->breaker_scope, memory_order_relaxed);
	int32_t forced = atomic_load_explicit(&r->forced, memory_order_relaxed);

	/* a copy: the shim may change it under its lock meanwhile */
	memcpy(&b, scope == POLICY_SCOPE_RULE ? &r->breaker : &a->breaker,
	       sizeof b);
	breaker_config_default(&c);
	c.mode = mode == BREAKER_MODE_ON	? BREAKER_MODE_ON
		 : mode == BREAKER_MODE_DRY_RUN ? BREAKER_MODE_DRY_RUN
						: BREAKER_MODE_OFF;
	memset(v, 0, sizeof *v);
	v->consecutive = breaker_consecutive(&b);
	if (forced == BREAKER_FORCE_OPEN || forced == BREAKER_FORCE_CLOSED) {
		/* the rule-wide override wins and keeps no time */
		v->state = forced == BREAKER_FORCE_OPEN ? "forced_open"
							: "forced_closed";
		return;
	}
	v->state = breaker_state_name(&b, &c);
	if (!strcmp(v->state, "disabled"))
		return;
	v->since_ms = breaker_since_ms(&b);
	v->until_ms = breaker_until_ms(&b);
}

/* Writes "p50/p99"-style latency figures with up to 3 decimals. */
static void fmt_ms(char *buf, size_t len, double ms)
{
	size_t n;

	snprintf(buf, len, "%.3f", ms);
	n = strlen(buf);
	if (!strchr(buf, '.'))
		return;
	while (n > 1 && buf[n - 1] == '0')
		buf[--n] = 0;
	if (n > 1 && buf[n - 1] == '.')
		buf[--n] = 0;
}

/* A minimal pretty JSON writer: tracks nesting to place commas; a flat
 * container keeps its members on one line. */
struct jw {
	FILE *f;
	int depth;   /* 0 before the top object */
	bool any[8]; /* a member was written at this depth */
	bool flat[8];
};

/* Starts a member at the current depth: comma, newline, indent, key. */
static void jw_member(struct jw *w, const char *key)
{
	if (w->any[w->depth])
		fputc(',', w->f);
	if (w->flat[w->depth]) {
		if (w->any[w->depth])
			fputc(' ', w->f);
	} else {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	w->any[w->depth] = true;
	if (key)
		fprintf(w->f, "\"%s\": ", key);
}

/* Opens an object or array ('{' or '[') as a member named key; flat:
 * its members on one line. */
static void jw_open(struct jw *w, const char *key, char c, bool flat)
{
	if (w->depth > 0)
		jw_member(w, key);
	fputc(c, w->f);
	w->depth++;
	w->any[w->depth] = false;
	w->flat[w->depth] = flat || w->flat[w->depth - 1];
}

/* Closes the innermost object or array with c. */
static void jw_close(struct jw *w, char c)
{
	bool any = w->any[w->depth], flat = w->flat[w->depth];

	w->depth--;
	if (any && !flat) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
}

/* A member whose value is already JSON text. */
static void jw_raw(struct jw *w, const char *key, const char *text)
{
	jw_member(w, key);
	fputs(text, w->f);
}

/* An unsigned number member. */
static void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_member(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

/* A signed number member. */
static void jw_i64(struct jw *w, const char *key, int64_t v)
{
	jw_member(w, key);
	fprintf(w->f, "%" PRId64, v);
}

/* A string member from a segment field of at most max bytes. */
static void jw_str(struct jw *w, const char *key, const char *s, size_t max)
{
	jw_member(w, key);
	json_string(w->f, s, max);
}

/* An instant member: ISO 8601 UTC, or null. */
static void jw_time(struct jw *w, const struct report_opts *o, const char *key,
		    uint64_t mono)
{
	char buf[40];
	uint64_t real;

	if (report_mono_to_real(o, mono, &real) &&
	    report_iso_time(buf, sizeof buf, real))
		jw_str(w, key, buf, sizeof buf);
	else
		jw_raw(w, key, "null");
}

/* The p50/p90/p99 object of one histogram; null figures when empty. */
static void jw_latency(struct jw *w, const char *key, const struct seg_hist *h)
{
	static const double qs[] = {0.5, 0.9, 0.99};
	static const char *const names[] = {"p50", "p90", "p99"};
	char buf[64];

	jw_open(w, key, '{', true);
	for (int i = 0; i < 3; i++) {
		double v = seg_hist_quantile(h, qs[i]);

		if (v < 0 || !isfinite(v)) {
			jw_raw(w, names[i], "null");
			continue;
		}
		fmt_ms(buf, sizeof buf, v);
		jw_raw(w, names[i], buf);
	}
	jw_close(w, '}');
}

/* The object of one address of a rule. */
static void json_addr(struct jw *w, const struct report_opts *o,
		      const struct seg_rule *r, const struct seg_addr *a,
		      const struct report_addr *row)
{
	char text[64];
	struct report_breaker v;

	report_breaker_view(r, a, &v);
	jw_open(w, NULL, '{', false);
	report_addr_text(text, sizeof text, row->addr, row->port);
	jw_str(w, "address", text, sizeof text);
	if (report_field_len(a->host, SEG_HOST_MAX))
		jw_str(w, "host", a->host, SEG_HOST_MAX);
	else
		jw_raw(w, "host", "null");
	jw_str(w, "breaker", v.state, strlen(v.state));
	jw_time(w, o, "breaker_since", v.since_ms);
	jw_time(w, o, "breaker_until", v.until_ms);
	jw_u64(w, "consecutive_failures", v.consecutive);
	jw_open(w, "counters", '{', false);
	for (int k = 0; k < SEG_NCOUNTERS; k++)
		jw_u64(
		    w, seg_counter_name((enum seg_counter)k),
		    atomic_load_explicit(&a->counter[k], memory_order_relaxed));
	jw_close(w, '}');
	jw_open(w, "latency_ms", '{', false);
	jw_latency(w, "connect", &a->connect_us);
	jw_latency(w, "first_byte", &a->first_byte_us);
	jw_close(w, '}');
	jw_close(w, '}');
}

/* Says whether process slot i is listed: taken, and alive when the
 * caller checks that; *pid receives its pid. */
bool report_proc_listed(const struct seg *s, const struct report_opts *o,
			uint32_t i, uint32_t *pid)
{
	struct seg_proc *p = &s->procs[i];
	uint64_t start;

	*pid = atomic_load_explicit(&p->pid, memory_order_acquire);
	if (!*pid || *pid > INT32_MAX)
		return false;
	start = atomic_load_explicit(&p->start, memory_order_relaxed);
	return !o->alive || o->alive(*pid, start);
}

/* Writes the SPEC §4 object for s (or the empty one when s is NULL). */
int report_json(FILE *f, const struct seg *s, const struct report_opts *o)
{
	struct jw w = {.f = f};
	struct report_snap sn;
	char when[40];

	if (report_snap_take(s, &sn) < 0)
		return -ENOMEM;
	if (!report_iso_time(when, sizeof when, o->now_real_ms))
		snprintf(when, sizeof when, "1970-01-01T00:00:00Z");
	jw_open(&w, NULL, '{', false);
	jw_u64(&w, "version", 1);
	jw_str(&w, "segment", o->segment ? o->segment : "",
	       o->segment ? strlen(o->segment) : 0);
	jw_str(&w, "generated_at", when, sizeof when);
	jw_open(&w, "processes", '[', false);
	for (uint32_t i = 0; s && i < s->nprocs; i++) {
		uint32_t pid;

		if (!report_proc_listed(s, o, i, &pid))
			continue;
		jw_open(&w, NULL, '{', true);
		jw_u64(&w, "pid", pid);
		jw_str(&w, "command", s->procs[i].comm,
		       sizeof s->procs[i].comm);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_open(&w, "rules", '[', false);
	for (size_t k = 0; k < sn.nrules; k++) {
		const struct report_rule *rr = &sn.rules[k];
		const struct seg_rule *r = &s->rules[rr->idx];
		uint32_t max = atomic_load_explicit(&r->max_connections,
						    memory_order_relaxed);

		jw_open(&w, NULL, '{', false);
		jw_str(&w, "name", rr->name, sizeof rr->name);
		jw_i64(&w, "connections_active",
		       report_rule_active(s, rr->idx, o->alive));
		if (max)
			jw_u64(&w, "max_connections", max);
		else
			jw_raw(&w, "max_connections", "null");
		jw_i64(&w, "pending",
		       report_rule_pending(s, rr->idx, o->alive));
		jw_open(&w, "addresses", '[', false);
		for (uint32_t j = 0; j < rr->count; j++) {
			const struct report_addr *ar = &sn.addrs[rr->first + j];

			json_addr(&w, o, r, &s->addrs[ar->idx], ar);
		}
		jw_close(&w, ']');
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_close(&w, '}');
	fputc('\n', f);
	report_snap_free(&sn);
	return ferror(f) ? -EIO : 0;
}

/* The open connections of rule slot ri as readers show them: the rule's
 * count less what processes that are gone still hold (the kernel has
 * closed their sockets; the shim releases them at the next connect that
 * finds the rule full).  alive NULL: the count as it is. */
int64_t report_rule_active(const struct seg *s, uint32_t ri,
			   bool (*alive)(uint32_t pid, uint64_t start))
{
	int64_t n = seg_conn_count(s, ri);

	for (uint32_t i = 0; alive && i < s->nprocs; i++) {
		const struct seg_proc *p = &s->procs[i];
		uint32_t pid =
		    atomic_load_explicit(&p->pid, memory_order_acquire);
		int64_t held = 0;

		if (!pid || pid > INT32_MAX)
			continue;
		for (int h = 0; h < SEG_HELD; h++)
			if (atomic_load_explicit(&p->held[h].rule,
						 memory_order_relaxed) ==
			    ri + 1)
				held += atomic_load_explicit(
				    &p->held[h].count, memory_order_relaxed);
		if (held > 0 &&
		    !alive(pid, atomic_load_explicit(&p->start,
						     memory_order_relaxed)))
			n -= held;
	}
	return n < 0 ? 0 : n;
}

/* Connects waiting in the line of rule slot ri, of processes alive by
 * alive (NULL: every place taken). */
int32_t report_rule_pending(const struct seg *s, uint32_t ri,
			    bool (*alive)(uint32_t pid, uint64_t start))
{
	return seg_line_count(s, ri, alive);
}

#ifndef FUSEBOX_FUZZ
/* Reads /proc/PID/stat and compares field 22 with start. */
bool report_proc_alive(uint32_t pid, uint64_t start)
{
	char path[32], buf[1024], *p;
	unsigned long long v;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%" PRIu32 "/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* the comm may hold spaces and ')': fields follow the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return false;
	p++;
	for (int field = 3; field <= 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	if (sscanf(p, "%llu", &v) != 1)
		return false;
	return v == start;
}
#endif
