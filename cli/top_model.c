/* SPDX-License-Identifier: MIT */
/* fusebox top: the sampled model.  Each refresh copies the segment into
 * rows; rates come from a history of counters this viewer keeps, and the
 * rows shown are sorted and filtered here.  Every byte of the segment is
 * untrusted. */
#include "top.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The counter of the segment behind each K_*. */
static const enum seg_counter kmap[NK] = {
    SEG_CALLS,		SEG_FAILURES,
    SEG_RETRIES,	SEG_REJECTED_BREAKER,
    SEG_REJECTED_LIMIT, SEG_REJECTED_RATE,
    SEG_REJECTED_BUDGET};

/* The counters of one destination at one instant (monotonic ms). */
struct sample {
	uint64_t ms;
	uint64_t v[NK];
};

/* The latency histograms of one destination at one instant. */
struct hbase {
	uint64_t ms;
	uint64_t b[2][SEG_HIST_BUCKETS]; /* connect, first byte */
};

/* What the viewer remembers of one destination (rule name, address and
 * port) between refreshes. */
struct dest {
	char rule[SEG_NAME_MAX + 1];
	uint8_t addr[16];
	uint16_t port;
	unsigned n, first; /* samples held; the oldest at ring[first] */
	struct sample ring[RING];
	unsigned nbase; /* baselines held, oldest first */
	struct hbase base[NBASE];
};

/* Reads a clock in milliseconds. */
uint64_t top_now_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The failure share of a row in percent, -1 when it had no call. */
double top_fail_pct(const struct vrow *r)
{
	double p;

	if (r->secs <= 0 || !r->win[K_CALLS])
		return -1;
	p = 100.0 * (double)r->win[K_FAILURES] / (double)r->win[K_CALLS];
	return p > 100 ? 100 : p;
}

/* How bad a breaker state is, for sorting by state. */
static int state_sev(const char *s)
{
	static const char *const order[] = {"disabled",	     "closed",
					    "forced_closed", "forced_open",
					    "half_open",     "open"};

	for (int i = 0; i < 6; i++)
		if (!strcmp(s, order[i]))
			return i;
	return 0;
}

/* The n-th sample of d, oldest first. */
static struct sample *ring_at(struct dest *d, unsigned i)
{
	return &d->ring[(d->first + i) % RING];
}

/* Forgets the history of d (the segment was reset). */
static void dest_forget(struct dest *d)
{
	d->n = d->first = d->nbase = 0;
}

/* Orders a destination's history against a rule name, address and
 * port, as the snapshot orders its rows. */
static int dest_cmp(const struct dest *d, const char *rule,
		    const uint8_t addr[16], uint16_t port)
{
	int c = strcmp(d->rule, rule);

	if (c)
		return c;
	c = memcmp(d->addr, addr, 16);
	if (c)
		return c;
	return d->port < port ? -1 : d->port > port;
}

/* Adds the counters v and histograms h of a refresh at now to d: a
 * sample about once a second, a latency baseline every few seconds.  A
 * counter that went back means a reset: the history is forgotten. */
static void dest_push(struct dest *d, uint64_t now, const uint64_t v[NK],
		      uint64_t h[2][SEG_HIST_BUCKETS])
{
	if (d->n) {
		const struct sample *last = ring_at(d, d->n - 1);

		for (int k = 0; k < NK; k++)
			if (v[k] < last->v[k]) {
				dest_forget(d);
				break;
			}
	}
	for (unsigned i = 0; d->nbase && i < 2 * SEG_HIST_BUCKETS; i++)
		if (h[i / SEG_HIST_BUCKETS][i % SEG_HIST_BUCKETS] <
		    d->base[d->nbase - 1]
			.b[i / SEG_HIST_BUCKETS][i % SEG_HIST_BUCKETS])
			d->nbase = 0;
	if (!d->n || now - ring_at(d, d->n - 1)->ms >= RING_STEP_MS) {
		struct sample *s;

		if (d->n == RING) {
			d->first = (d->first + 1) % RING;
			d->n--;
		}
		s = ring_at(d, d->n++);
		s->ms = now;
		memcpy(s->v, v, sizeof s->v);
	}
	if (!d->nbase || now - d->base[d->nbase - 1].ms >= BASE_STEP_MS) {
		if (d->nbase == NBASE) {
			memmove(&d->base[0], &d->base[1],
				(NBASE - 1) * sizeof d->base[0]);
			d->nbase--;
		}
		d->base[d->nbase].ms = now;
		memcpy(d->base[d->nbase].b, h, sizeof d->base[0].b);
		d->nbase++;
	}
}

/* Fills the figures of row r from d's history and the live counters v
 * and histograms h: counts over the last 10 s or what of them the viewer
 * saw, calls/s of each sample, and latencies since the oldest
 * baseline. */
static void dest_figures(struct dest *d, uint64_t now, const uint64_t v[NK],
			 uint64_t h[2][SEG_HIST_BUCKETS], struct vrow *r)
{
	const struct sample *base = NULL;

	r->rate = -1;
	r->secs = 0;
	for (int i = 0; i < 2; i++)
		r->lat[i][0] = r->lat[i][1] = -1;
	if (!d)
		return;
	for (unsigned i = 0; i < d->n; i++) {
		const struct sample *s = ring_at(d, i);

		if (now - s->ms <= WINDOW_MS + RING_STEP_MS / 2) {
			base = s;
			break;
		}
	}
	if (base && base->ms < now) {
		r->secs = (double)(now - base->ms) / 1000;
		for (int k = 0; k < NK; k++)
			r->win[k] = v[k] - base->v[k];
		r->rate = (double)r->win[K_CALLS] / r->secs;
	}
	for (unsigned i = 1; i < d->n; i++) {
		const struct sample *a = ring_at(d, i - 1), *b = ring_at(d, i);

		r->spark[r->nspark++] =
		    b->ms > a->ms
			? (float)((double)(b->v[K_CALLS] - a->v[K_CALLS]) *
				  1000 / (double)(b->ms - a->ms))
			: 0;
	}
	if (!d->nbase)
		return;
	for (int i = 0; i < 2; i++) {
		struct seg_hist delta;

		for (int j = 0; j < SEG_HIST_BUCKETS; j++)
			atomic_store_explicit(&delta.bucket[j],
					      h[i][j] - d->base[0].b[i][j],
					      memory_order_relaxed);
		r->lat[i][0] = seg_hist_quantile(&delta, 0.5);
		r->lat[i][1] = seg_hist_quantile(&delta, 0.99);
	}
}

/* Copies the live processes of the segment for the process line. */
static void take_procs(struct top *t)
{
	t->nprocs = 0;
	for (uint32_t i = 0; i < t->seg.nprocs; i++) {
		struct seg_proc *p = &t->seg.procs[i];
		uint32_t pid =
		    atomic_load_explicit(&p->pid, memory_order_acquire);
		uint64_t start;

		if (!pid || pid > INT32_MAX)
			continue;
		start = atomic_load_explicit(&p->start, memory_order_relaxed);
		if (!report_proc_alive(pid, start))
			continue;
		if (t->nprocs < PROCS_MAX) {
			struct proc *q = &t->procs[t->nprocs];

			q->pid = pid;
			memcpy(q->comm, p->comm, sizeof p->comm);
			q->comm[16] = 0;
		}
		t->nprocs++;
	}
}

/* Fills a rule row from rule r of the segment. */
static void rule_row(struct vrow *row, const struct report_rule *rr,
		     const struct seg_rule *r, uint32_t at)
{
	memset(row, 0, sizeof *row);
	row->is_rule = true;
	row->order = at;
	row->group = at;
	row->count = rr->count;
	memcpy(row->rule, rr->name, sizeof row->rule);
	row->active = 0; /* filled by the caller, with the dead left out */
	row->pending = 0;
	row->forced = atomic_load_explicit(&r->forced, memory_order_relaxed);
	row->max_conn =
	    atomic_load_explicit(&r->max_connections, memory_order_relaxed);
	row->mode =
	    atomic_load_explicit(&r->breaker_mode, memory_order_relaxed);
	row->scope =
	    atomic_load_explicit(&r->breaker_scope, memory_order_relaxed);
	row->rate = -1;
	for (int i = 0; i < 2; i++)
		row->lat[i][0] = row->lat[i][1] = -1;
	row->state = row->forced == BREAKER_FORCE_OPEN	   ? "forced_open"
		     : row->forced == BREAKER_FORCE_CLOSED ? "forced_closed"
		     : row->mode == BREAKER_MODE_OFF	   ? "disabled"
							   : "closed";
	row->sev = state_sev(row->state);
}

/* Adds address row a to the sums of its rule row. */
static void rule_add(struct vrow *rule, const struct vrow *a)
{
	for (int k = 0; k < NK; k++) {
		rule->win[k] += a->win[k];
		rule->tot[k] += a->tot[k];
	}
	if (a->rate >= 0)
		rule->rate = (rule->rate < 0 ? 0 : rule->rate) + a->rate;
	if (a->secs > rule->secs)
		rule->secs = a->secs;
	if (a->sev > rule->sev)
		rule->sev = a->sev;
	/* the samples of every destination were taken at the same
	 * refreshes: align them from the newest */
	if (a->nspark > rule->nspark) {
		unsigned grow = a->nspark - rule->nspark;

		memmove(rule->spark + grow, rule->spark,
			rule->nspark * sizeof rule->spark[0]);
		memset(rule->spark, 0, grow * sizeof rule->spark[0]);
		rule->nspark = a->nspark;
	}
	for (unsigned i = 0; i < a->nspark; i++)
		rule->spark[rule->nspark - 1 - i] +=
		    a->spark[a->nspark - 1 - i];
}

/* Builds the rows of the view from the segment and moves the history of
 * each destination along; 0 or -ENOMEM (the old view is kept). */
static int take_view(struct top *t)
{
	struct report_snap sn;
	struct dest **nd = NULL;
	struct vrow *rows = NULL;
	size_t nn = 0, nr = 0, oi = 0;
	uint64_t gen;

	if (report_snap_take(&t->seg, &sn) < 0)
		return -ENOMEM;
	nd = calloc(sn.naddrs + 1, sizeof *nd);
	rows = calloc(sn.nrules + sn.naddrs + 1, sizeof *rows);
	if (!nd || !rows) {
		free(nd);
		free(rows);
		report_snap_free(&sn);
		return -ENOMEM;
	}
	gen = atomic_load(&t->seg.hdr->reset_gen);
	if (gen != t->reset_gen) {
		for (size_t i = 0; i < t->ndests; i++)
			dest_forget(t->dests[i]);
		t->reset_gen = gen;
	}
	for (size_t k = 0; k < sn.nrules; k++) {
		const struct report_rule *rr = &sn.rules[k];
		const struct seg_rule *r = &t->seg.rules[rr->idx];
		struct vrow *rule = &rows[nr];

		rule_row(rule, rr, r, (uint32_t)nr);
		rule->active =
		    report_rule_active(&t->seg, rr->idx, report_proc_alive);
		rule->pending =
		    report_rule_pending(&t->seg, rr->idx, report_proc_alive);
		nr++;
		for (uint32_t j = 0; j < rr->count; j++) {
			const struct report_addr *ar = &sn.addrs[rr->first + j];
			const struct seg_addr *a = &t->seg.addrs[ar->idx];
			struct vrow *row = &rows[nr];
			uint64_t v[NK], h[2][SEG_HIST_BUCKETS];
			struct report_breaker bv;
			struct dest *d = NULL;

			/* histories of destinations gone are dropped */
			while (oi < t->ndests &&
			       dest_cmp(t->dests[oi], rr->name, ar->addr,
					ar->port) < 0) {
				free(t->dests[oi]);
				t->dests[oi++] = NULL;
			}
			if (oi < t->ndests && !dest_cmp(t->dests[oi], rr->name,
							ar->addr, ar->port)) {
				d = t->dests[oi];
				t->dests[oi++] = NULL;
			} else if ((d = calloc(1, sizeof *d))) {
				memcpy(d->rule, rr->name, sizeof d->rule);
				memcpy(d->addr, ar->addr, 16);
				d->port = ar->port;
			}
			if (d)
				nd[nn++] = d;
			for (int c = 0; c < NK; c++)
				v[c] = atomic_load_explicit(
				    &a->counter[kmap[c]], memory_order_relaxed);
			for (int i = 0; i < SEG_HIST_BUCKETS; i++) {
				h[0][i] = atomic_load_explicit(
				    &a->connect_us.bucket[i],
				    memory_order_relaxed);
				h[1][i] = atomic_load_explicit(
				    &a->first_byte_us.bucket[i],
				    memory_order_relaxed);
			}
			memset(row, 0, sizeof *row);
			row->order = (uint32_t)nr;
			row->group = rule->order;
			memcpy(row->rule, rr->name, sizeof row->rule);
			memcpy(row->addr, ar->addr, 16);
			row->port = ar->port;
			report_addr_text(row->addr_text, sizeof row->addr_text,
					 ar->addr, ar->port);
			memcpy(row->host, a->host, SEG_HOST_MAX);
			row->host[SEG_HOST_MAX] = 0;
			report_breaker_view(r, a, &bv);
			row->state = bv.state;
			row->sev = state_sev(bv.state);
			row->until_ms = bv.until_ms;
			row->consecutive = bv.consecutive;
			memcpy(row->tot, v, sizeof v);
			if (d)
				dest_push(d, t->now, v, h);
			dest_figures(d, t->now, v, h, row);
			rule_add(rule, row);
			nr++;
		}
	}
	for (size_t i = 0; i < t->ndests; i++)
		free(t->dests[i]);
	free(t->dests);
	t->dests = nd;
	t->ndests = nn;
	free(t->rows);
	t->rows = rows;
	t->nrows = nr;
	t->nrules = sn.nrules;
	t->naddrs = sn.naddrs;
	report_snap_free(&sn);
	take_procs(t);
	return 0;
}

/* Drops the view and the history (the segment went away). */
void top_drop_view(struct top *t)
{
	for (size_t i = 0; i < t->ndests; i++)
		free(t->dests[i]);
	free(t->dests);
	free(t->rows);
	t->dests = NULL;
	t->rows = NULL;
	t->ndests = t->nrows = t->nrules = t->naddrs = t->nprocs = 0;
	t->ndisp = 0;
}

/* Identifies the shm object name: 0 with its device, inode and size, or
 * -errno. */
static int seg_identity(const char *name, dev_t *dev, ino_t *ino, off_t *size)
{
	char path[SEG_NAME_MAX + 16];
	struct stat st;
	int fd, r = 0;

	memset(&st, 0, sizeof st);
	snprintf(path, sizeof path, "/%s", name);
	fd = shm_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd >= 0 && fstat(fd, &st) < 0)
		r = -errno;
	else if (fd < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	*dev = st.st_dev;
	*ino = st.st_ino;
	*size = st.st_size;
	return r;
}

/* Keeps the segment mapped: opens it when it appears, and reopens it
 * when it was removed, replaced or resized. */
static void seg_poll(struct top *t)
{
	dev_t dev = 0;
	ino_t ino = 0;
	off_t size = 0;
	int r = seg_identity(t->name, &dev, &ino, &size);

	if (t->open &&
	    (r < 0 || dev != t->dev || ino != t->ino || size != t->size)) {
		seg_close(&t->seg);
		t->open = false;
		top_drop_view(t);
	}
	if (t->open)
		return;
	if (r == -ENOENT) {
		snprintf(t->why, sizeof t->why,
			 "no segment %s yet (no guarded program has run)",
			 t->name);
		return;
	}
	if (r == 0)
		r = seg_open_readonly(t->name, &t->seg, t->why, sizeof t->why);
	if (r == -ENOENT) {
		snprintf(t->why, sizeof t->why,
			 "no segment %s yet (no guarded program has run)",
			 t->name);
	} else if (r < 0) {
		char why[160];

		snprintf(why, sizeof why, "%.159s",
			 t->why[0] ? t->why : strerror(-r));
		snprintf(t->why, sizeof t->why, "segment %.64s: %s", t->name,
			 why);
	} else {
		t->open = true;
		t->dev = dev;
		t->ino = ino;
		t->size = size;
		t->reset_gen = atomic_load(&t->seg.hdr->reset_gen);
		t->why[0] = 0;
	}
}

/* Orders two rows by the sort key, then by name. */
static int row_cmp(const void *pa, const void *pb, void *arg)
{
	const struct top *t = arg;
	const struct vrow *a = &t->rows[*(const uint32_t *)pa];
	const struct vrow *b = &t->rows[*(const uint32_t *)pb];
	double x = 0, y = 0;
	int c;

	switch (t->sort) {
	case SORT_RATE:
		x = a->rate;
		y = b->rate;
		break;
	case SORT_FAIL:
		x = top_fail_pct(a);
		y = top_fail_pct(b);
		break;
	case SORT_STATE:
		x = a->sev;
		y = b->sev;
		break;
	default:
		/* by name: the snapshot's order */
		x = -(double)a->order;
		y = -(double)b->order;
		break;
	}
	/* the largest first; name order ascending */
	c = x > y ? -1 : x < y;
	if (t->reverse)
		c = -c;
	if (!c)
		c = a->order < b->order ? -1 : a->order > b->order;
	return c;
}

/* Says whether row r matches the filter. */
static bool row_match(const struct top *t, const struct vrow *r)
{
	if (!t->filter[0])
		return true;
	if (r->is_rule)
		return strcasestr(r->rule, t->filter) != NULL;
	return strcasestr(r->addr_text, t->filter) ||
	       strcasestr(r->host, t->filter);
}

/* Builds the list of shown rows: rules sorted, each followed by its
 * destinations sorted, those the filter leaves; keeps the selection on
 * the same rule or destination. */
void top_build_disp(struct top *t)
{
	uint32_t *rules = NULL, *d;
	size_t nr = 0, nd = 0;

	free(t->disp);
	t->disp = NULL;
	t->ndisp = 0;
	d = malloc((t->nrows + 1) * sizeof *d);
	rules = malloc((t->nrules + 1) * sizeof *rules);
	if (!d || !rules) {
		free(d);
		free(rules);
		return;
	}
	for (size_t i = 0; i < t->nrows; i++)
		if (t->rows[i].is_rule)
			rules[nr++] = (uint32_t)i;
	qsort_r(rules, nr, sizeof *rules, row_cmp, t);
	for (size_t k = 0; k < nr; k++) {
		const struct vrow *r = &t->rows[rules[k]];
		bool all = row_match(t, r);
		size_t at = nd, n = 0;

		d[nd++] = rules[k];
		for (uint32_t j = 1; j <= r->count; j++)
			if (all || row_match(t, &t->rows[rules[k] + j]))
				d[nd + n++] = rules[k] + j;
		if (!all && !n) {
			nd = at;
			continue;
		}
		qsort_r(d + nd, n, sizeof *d, row_cmp, t);
		nd += n;
	}
	free(rules);
	t->disp = d;
	t->ndisp = nd;
	/* the selection follows its row, else stays where it was */
	for (size_t i = 0; i < nd; i++) {
		const struct vrow *r = &t->rows[d[i]];

		if (r->is_rule == t->sel_rule &&
		    !strcmp(r->rule, t->sel_name) &&
		    (r->is_rule || (!memcmp(r->addr, t->sel_addr, 16) &&
				    r->port == t->sel_port))) {
			t->sel = i;
			return;
		}
	}
	if (t->sel >= nd)
		t->sel = nd ? nd - 1 : 0;
}

/* Remembers which rule or destination the selection is on. */
void top_sel_keep(struct top *t)
{
	const struct vrow *r;

	if (!t->ndisp)
		return;
	r = &t->rows[t->disp[t->sel]];
	t->sel_rule = r->is_rule;
	memcpy(t->sel_name, r->rule, sizeof t->sel_name);
	memcpy(t->sel_addr, r->addr, 16);
	t->sel_port = r->port;
}

/* Sets the status line to a message. */
void top_status(struct top *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->status, sizeof t->status, fmt, ap);
	va_end(ap);
	t->status_ms = top_now_ms(CLOCK_MONOTONIC);
}

/* Reads the segment into the view. */
void top_refresh(struct top *t)
{
	t->now = top_now_ms(CLOCK_MONOTONIC);
	seg_poll(t);
	if (t->open && take_view(t) < 0)
		top_status(t, "fusebox top: out of memory");
	top_build_disp(t);
	top_sel_keep(t);
}
