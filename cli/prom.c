/* SPDX-License-Identifier: MIT */
/* The snapshot of a segment as Prometheus text exposition format 0.0.4:
 * the figures of `stats --json` as fusebox_* metrics with rule and address
 * labels.  Everything read from the segment is untrusted: label values are
 * capped at their field, escaped, and bytes that are not UTF-8 replaced. */
#include "cli.h"
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Histogram buckets are whole octaves of microseconds: le = 2^k µs for
 * k from PROM_OCT_MIN to PROM_OCT_MAX, then the floor of the segment's
 * last bucket, which holds everything slower. */
#define PROM_OCT_MIN 4	/* 16 µs */
#define PROM_OCT_MAX 23 /* 8.388608 s */

/* The breaker states of SPEC §4, one gauge series each. */
static const char *const states[] = {
    "closed", "open", "half_open", "forced_open", "forced_closed", "disabled"};

/* A writer of metric families: HELP and TYPE come before the family's
 * first sample, so that a family with no samples prints nothing. */
struct pw {
	FILE *f;
	const char *name, *type, *help;
	bool started;
};

/* Starts family name of type with its help text (constant, no '\\'). */
static void family(struct pw *w, const char *name, const char *type,
		   const char *help)
{
	w->name = name;
	w->type = type;
	w->help = help;
	w->started = false;
}

/* Prints the HELP and TYPE lines of the current family once, then the
 * metric name plus suffix (e.g. "_bucket") of a sample. */
static void sample(struct pw *w, const char *suffix)
{
	if (!w->started) {
		fprintf(w->f, "# HELP %s %s\n# TYPE %s %s\n", w->name, w->help,
			w->name, w->type);
		w->started = true;
	}
	fputs(w->name, w->f);
	fputs(suffix, w->f);
}

/* Writes a label value from a field of at most max bytes that may lack
 * its NUL, quoted: '\\', '"' and newline escaped as the format says,
 * other control characters and bytes that are not UTF-8 as U+FFFD. */
static void label_value(FILE *f, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *z = memchr(s, 0, max);
	size_t n = z ? (size_t)(z - s) : max;

	fputc('"', f);
	while (n) {
		uint32_t cp;
		size_t len = report_utf8_len(p, n, &cp);

		if (!len || (cp < 0x20 && cp != '\n') || cp == 0x7f) {
			fputs("\xef\xbf\xbd", f);
			len = len ? len : 1;
		} else if (cp == '\\') {
			fputs("\\\\", f);
		} else if (cp == '"') {
			fputs("\\\"", f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else {
			fwrite(p, 1, len, f);
		}
		p += len;
		n -= len;
	}
	fputc('"', f);
}

/* Writes name="value" (after a comma unless first) from a field of at
 * most max bytes. */
static void label(FILE *f, bool first, const char *name, const char *s,
		  size_t max)
{
	if (!first)
		fputc(',', f);
	fputs(name, f);
	fputc('=', f);
	label_value(f, s, max);
}

/* One destination of a snapshot, with its label texts ready. */
struct dest {
	const struct seg_rule *r;
	const struct seg_addr *a;
	const char *rule; /* capped copy from the snapshot */
	char addr[64];
};

/* Writes {rule="...",address="..." and leaves the set open. */
static void dest_labels(FILE *f, const struct dest *d)
{
	fputc('{', f);
	label(f, true, "rule", d->rule, SEG_NAME_MAX);
	label(f, false, "address", d->addr, sizeof d->addr);
}

/* Calls fn for every destination of sn, skipping duplicates of a rule
 * name or of an address within a rule (a corrupt segment). */
static void each_dest(const struct seg *s, const struct report_snap *sn,
		      void (*fn)(struct pw *, const struct dest *, void *),
		      struct pw *w, void *arg)
{
	for (size_t k = 0; k < sn->nrules; k++) {
		const struct report_rule *rr = &sn->rules[k];

		if (k && !strcmp(rr->name, sn->rules[k - 1].name))
			continue;
		for (uint32_t j = 0; j < rr->count; j++) {
			const struct report_addr *ar =
			    &sn->addrs[rr->first + j];
			struct dest d;

			if (j && ar->port == ar[-1].port &&
			    !memcmp(ar->addr, ar[-1].addr, 16))
				continue;
			d.r = &s->rules[rr->idx];
			d.a = &s->addrs[ar->idx];
			d.rule = rr->name;
			report_addr_text(d.addr, sizeof d.addr, ar->addr,
					 ar->port);
			fn(w, &d, arg);
		}
	}
}

/* fusebox_address_info: 1, with the host name the program resolved. */
static void put_info(struct pw *w, const struct dest *d, void *arg)
{
	(void)arg;
	sample(w, "");
	dest_labels(w->f, d);
	if (d->a->host[0])
		label(w->f, false, "host", d->a->host, SEG_HOST_MAX);
	fputs("} 1\n", w->f);
}

/* fusebox_breaker_state: one series a state, 1 for the current one. */
static void put_state(struct pw *w, const struct dest *d, void *arg)
{
	struct report_breaker v;

	(void)arg;
	report_breaker_view(d->r, d->a, &v);
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		sample(w, "");
		dest_labels(w->f, d);
		label(w->f, false, "state", states[i], strlen(states[i]));
		fprintf(w->f, "} %d\n", !strcmp(v.state, states[i]));
	}
}

/* fusebox_breaker_consecutive_failures. */
static void put_consecutive(struct pw *w, const struct dest *d, void *arg)
{
	struct report_breaker v;

	(void)arg;
	report_breaker_view(d->r, d->a, &v);
	sample(w, "");
	dest_labels(w->f, d);
	fprintf(w->f, "} %" PRIu32 "\n", v.consecutive);
}

/* The Unix time in seconds of a monotonic instant in ms, given both
 * clocks now; false when it is 0 (unknown) or absurd. */
static bool mono_to_unix(const struct report_opts *o, uint64_t mono,
			 double *secs)
{
	uint64_t real;

	if (!report_mono_to_real(o, mono, &real))
		return false;
	*secs = (double)real / 1000.0;
	return true;
}

/* fusebox_breaker_state_{since,until}_timestamp_seconds, when known;
 * arg points at the report_opts and a flag chooses "until". */
struct when_arg {
	const struct report_opts *o;
	bool until;
};

/* Writes the since or until instant of a breaker, when it has one. */
static void put_when(struct pw *w, const struct dest *d, void *arg)
{
	const struct when_arg *wa = arg;
	struct report_breaker v;
	double t;

	report_breaker_view(d->r, d->a, &v);
	if (!mono_to_unix(wa->o, wa->until ? v.until_ms : v.since_ms, &t))
		return;
	sample(w, "");
	dest_labels(w->f, d);
	fprintf(w->f, "} %.3f\n", t);
}

/* A counter family: the segment counter it shows and its name. */
struct counter {
	enum seg_counter k;
	const char *name, *help;
};

static const struct counter counters[] = {
    {SEG_CALLS, "fusebox_calls_total",
     "Calls (exchanges) to the destination that ended."},
    {SEG_SUCCESSES, "fusebox_successes_total", "Calls that succeeded."},
    {SEG_FAILURES, "fusebox_failures_total",
     "Calls that failed, for any reason."},
    {SEG_CONNECT_REFUSED, "fusebox_connect_refused_total",
     "Failed calls: the connection was refused."},
    {SEG_CONNECT_TIMEOUTS, "fusebox_connect_timeouts_total",
     "Failed calls: connect_timeout expired."},
    {SEG_RESPONSE_TIMEOUTS, "fusebox_response_timeouts_total",
     "Failed calls: response_timeout expired."},
    {SEG_RESETS, "fusebox_resets_total",
     "Failed calls: the connection was reset or closed early."},
    {SEG_HTTP_5XX, "fusebox_http_5xx_total",
     "Failed calls: an HTTP 5xx reply (classify = http)."},
    {SEG_TLS_FAILURES, "fusebox_tls_failures_total",
     "Failed calls: the TLS handshake failed or timed out."},
    {SEG_GRPC_FAILURES, "fusebox_grpc_failures_total",
     "Failed calls: a gRPC status of grpc_fail_on (classify = grpc)."},
    {SEG_SLOW_CALLS, "fusebox_slow_calls_total",
     "Calls slower than breaker_slow."},
    {SEG_RETRIES, "fusebox_retries_total", "Retried connects."},
    {SEG_STALE_RECONNECTS, "fusebox_stale_reconnects_total",
     "Kept-alive connections the peer had closed, connected again before "
     "the next request."},
    {SEG_BYTES_SENT, "fusebox_sent_bytes_total",
     "Bytes the program sent to the destination."},
    {SEG_BYTES_RECEIVED, "fusebox_received_bytes_total",
     "Bytes the program received from the destination."},
};

/* The rejection counters, by reason label. */
static const struct {
	enum seg_counter k;
	const char *reason;
} rejections[] = {
    {SEG_REJECTED_BREAKER, "breaker"},
    {SEG_REJECTED_LIMIT, "limit"},
    {SEG_REJECTED_RATE, "rate"},
    {SEG_REJECTED_BUDGET, "budget"},
};

/* One sample of the counter *arg (a struct counter). */
static void put_counter(struct pw *w, const struct dest *d, void *arg)
{
	const struct counter *c = arg;

	sample(w, "");
	dest_labels(w->f, d);
	fprintf(
	    w->f, "} %" PRIu64 "\n",
	    atomic_load_explicit(&d->a->counter[c->k], memory_order_relaxed));
}

/* fusebox_retries_by_reason_total: what made fusebox try again, a
 * series a reason (connect: the retries that were no replay). */
static void put_retry_reasons(struct pw *w, const struct dest *d, void *arg)
{
	static const struct {
		int k;
		const char *reason;
	} why[] = {
	    {-1, "connect"},
	    {SEG_REPLAYS_EMPTY, "empty"},
	    {SEG_REPLAYS_TIMEOUT, "response-timeout"},
	    {SEG_REPLAYS_5XX, "5xx"},
	    {SEG_STALE_RECONNECTS, "stale"},
	};
	const _Atomic uint64_t *k = d->a->counter;
	uint64_t replays = atomic_load(&k[SEG_REPLAYS_EMPTY]) +
			   atomic_load(&k[SEG_REPLAYS_TIMEOUT]) +
			   atomic_load(&k[SEG_REPLAYS_5XX]);
	uint64_t retries = atomic_load(&k[SEG_RETRIES]);

	(void)arg;
	for (size_t i = 0; i < sizeof why / sizeof why[0]; i++) {
		uint64_t v = why[i].k < 0
				 ? (retries > replays ? retries - replays : 0)
				 : atomic_load(&k[why[i].k]);
		sample(w, "");
		dest_labels(w->f, d);
		label(w->f, false, "reason", why[i].reason,
		      strlen(why[i].reason));
		fprintf(w->f, "} %" PRIu64 "\n", v);
	}
}

/* fusebox_rejections_total: one series a reason. */
static void put_rejections(struct pw *w, const struct dest *d, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < sizeof rejections / sizeof rejections[0]; i++) {
		sample(w, "");
		dest_labels(w->f, d);
		label(w->f, false, "reason", rejections[i].reason,
		      strlen(rejections[i].reason));
		fprintf(w->f, "} %" PRIu64 "\n",
			atomic_load_explicit(&d->a->counter[rejections[i].k],
					     memory_order_relaxed));
	}
}

/* Writes a bucket bound in seconds from microseconds, without trailing
 * zeros: 16 -> "0.000016". */
static void fmt_le(char *buf, size_t len, double us)
{
	size_t n;

	snprintf(buf, len, "%.6f", us / 1e6);
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '0')
		buf[--n] = 0;
	if (n > 1 && buf[n - 1] == '.')
		buf[--n] = 0;
}

/* One _bucket sample with bound le and cumulative count. */
static void put_bucket(struct pw *w, const struct dest *d, const char *le,
		       uint64_t count)
{
	sample(w, "_bucket");
	dest_labels(w->f, d);
	label(w->f, false, "le", le, strlen(le));
	fprintf(w->f, "} %" PRIu64 "\n", count);
}

/* The histogram of *arg's offset in the address: buckets from one copy
 * of the segment's counts, so that they add up; _sum estimated from the
 * middle of each bucket, as the JSON quantiles are. */
static void put_hist(struct pw *w, const struct dest *d, void *arg)
{
	const struct seg_hist *h =
	    (const void *)((const char *)d->a + *(const size_t *)arg);
	uint64_t counts[SEG_HIST_BUCKETS], total = 0, below = 0;
	double sum_us = 0;
	char le[32];
	unsigned i = 0;

	for (unsigned b = 0; b < SEG_HIST_BUCKETS; b++) {
		/* bucket b is [2^lg (1 + frac/4), 2^lg (1 + (frac+1)/4)) µs */
		double base = (double)(1ull << (b / 4));
		double mid = base * (1.0 + (b % 4) / 4.0) + base / 8.0;

		counts[b] = atomic_load_explicit(
		    &((struct seg_hist *)h)->bucket[b], memory_order_relaxed);
		total += counts[b];
		sum_us += (double)counts[b] * mid;
	}
	for (unsigned k = PROM_OCT_MIN; k <= PROM_OCT_MAX; k++) {
		/* bucket 4k starts at 2^k µs */
		for (; i < 4 * k; i++)
			below += counts[i];
		fmt_le(le, sizeof le, (double)(1ull << k));
		put_bucket(w, d, le, below);
	}
	for (; i < SEG_HIST_BUCKETS - 1; i++)
		below += counts[i];
	fmt_le(le, sizeof le, (double)(1ull << 23) * 1.75);
	put_bucket(w, d, le, below);
	put_bucket(w, d, "+Inf", total);
	sample(w, "_sum");
	dest_labels(w->f, d);
	fprintf(w->f, "} %.9g\n", sum_us / 1e6);
	sample(w, "_count");
	dest_labels(w->f, d);
	fprintf(w->f, "} %" PRIu64 "\n", total);
}

/* The live processes of s, as stats lists them. */
static unsigned live_procs(const struct seg *s, const struct report_opts *o)
{
	unsigned n = 0;

	for (uint32_t i = 0; s && i < s->nprocs; i++) {
		uint32_t pid = atomic_load_explicit(&s->procs[i].pid,
						    memory_order_acquire);
		uint64_t start;

		if (!pid || pid > INT32_MAX)
			continue;
		start = atomic_load_explicit(&s->procs[i].start,
					     memory_order_relaxed);
		n += !o->alive || o->alive(pid, start);
	}
	return n;
}

/* The per-rule gauges: connections held, waiting and allowed. */
static void rule_gauges(struct pw *w, const struct seg *s,
			const struct report_opts *o,
			const struct report_snap *sn, int which)
{
	for (size_t k = 0; k < sn->nrules; k++) {
		const struct report_rule *rr = &sn->rules[k];
		const struct seg_rule *r = &s->rules[rr->idx];
		int64_t v;

		if (k && !strcmp(rr->name, sn->rules[k - 1].name))
			continue;
		if (which == 0)
			v = report_rule_active(s, rr->idx, o->alive);
		else if (which == 1)
			v = report_rule_pending(s, rr->idx, o->alive);
		else
			v = atomic_load_explicit(&r->max_connections,
						 memory_order_relaxed);
		if (which == 2 && !v)
			continue; /* no limit */
		sample(w, "");
		fputc('{', w->f);
		label(w->f, true, "rule", rr->name, SEG_NAME_MAX);
		fprintf(w->f, "} %" PRId64 "\n", v);
	}
}

/* Writes the snapshot of s (NULL: the segment does not exist yet) as
 * Prometheus text format 0.0.4.  0, -ENOMEM or -EIO. */
int report_prometheus(FILE *f, const struct seg *s, const struct report_opts *o)
{
	static const size_t conn_off = offsetof(struct seg_addr, connect_us);
	static const size_t fb_off = offsetof(struct seg_addr, first_byte_us);
	struct pw w = {.f = f};
	struct report_snap sn;
	struct when_arg wa = {.o = o};

	if (report_snap_take(s, &sn) < 0)
		return -ENOMEM;
	family(&w, "fusebox_up", "gauge",
	       "1 when the shared-memory segment was read, 0 when it does "
	       "not exist yet or cannot be read.");
	sample(&w, "");
	fprintf(f, " %d\n", s != NULL);
	family(&w, "fusebox_info", "gauge",
	       "Always 1; the fusebox version and the segment read.");
	sample(&w, "{");
	label(f, true, "version", FUSEBOX_VERSION, strlen(FUSEBOX_VERSION));
	label(f, false, "segment", o->segment ? o->segment : "",
	      o->segment ? strlen(o->segment) : 0);
	fputs("} 1\n", f);
	family(&w, "fusebox_processes", "gauge",
	       "Guarded processes attached to the segment that still run.");
	sample(&w, "");
	fprintf(f, " %u\n", live_procs(s, o));

	family(&w, "fusebox_connections_active", "gauge",
	       "Open connections of the rule, all processes together.");
	rule_gauges(&w, s, o, &sn, 0);
	family(&w, "fusebox_connections_pending", "gauge",
	       "Connects of the rule waiting for a connection slot.");
	rule_gauges(&w, s, o, &sn, 1);
	family(&w, "fusebox_connections_max", "gauge",
	       "max_connections of the rule; absent when it has none.");
	rule_gauges(&w, s, o, &sn, 2);

	family(&w, "fusebox_address_info", "gauge",
	       "Always 1; one series a destination, with the host name the "
	       "program resolved when known.");
	each_dest(s, &sn, put_info, &w, NULL);
	family(&w, "fusebox_breaker_state", "gauge",
	       "Breaker of the destination: 1 for its current state, 0 for "
	       "the others.");
	each_dest(s, &sn, put_state, &w, NULL);
	family(&w, "fusebox_breaker_consecutive_failures", "gauge",
	       "Consecutive failed calls since the last success.");
	each_dest(s, &sn, put_consecutive, &w, NULL);
	family(&w, "fusebox_breaker_state_since_timestamp_seconds", "gauge",
	       "When the breaker entered its state, Unix time.");
	each_dest(s, &sn, put_when, &w, &wa);
	wa.until = true;
	family(&w, "fusebox_breaker_state_until_timestamp_seconds", "gauge",
	       "When an open breaker lets probes through, Unix time.");
	each_dest(s, &sn, put_when, &w, &wa);
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		family(&w, counters[i].name, "counter", counters[i].help);
		each_dest(s, &sn, put_counter, &w, (void *)&counters[i]);
	}
	family(&w, "fusebox_rejections_total", "counter",
	       "Connects fusebox refused itself, by reason: breaker, limit "
	       "(max_connections), rate or budget (retry budget).");
	each_dest(s, &sn, put_rejections, &w, NULL);
	family(&w, "fusebox_retries_by_reason_total", "counter",
	       "What made fusebox try again: a connect that failed (connect), "
	       "a request replayed (empty, response-timeout, 5xx), a "
	       "kept-alive connection the peer had closed (stale).");
	each_dest(s, &sn, put_retry_reasons, &w, NULL);
	family(&w, "fusebox_connect_duration_seconds", "histogram",
	       "Time successful connects took.");
	each_dest(s, &sn, put_hist, &w, (void *)&conn_off);
	family(&w, "fusebox_first_byte_duration_seconds", "histogram",
	       "Wait from the request to the first byte of the reply.");
	each_dest(s, &sn, put_hist, &w, (void *)&fb_off);
	report_snap_free(&sn);
	return ferror(f) ? -EIO : 0;
}
