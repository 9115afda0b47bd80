/* SPDX-License-Identifier: MIT */
/* fusebox stats as text: a table of rules and one of addresses, with
 * widths fitted to the cells, cut with '~' past COL_MAX.  Everything
 * read from the segment is untrusted (see report.c). */
#include "report.h"
#include "segment/shared.h"

#include "policy/breaker.h"
#include "policy/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest text column of the table before it is cut with '~'. */
#define COL_MAX 24

/* Copies a field of at most max bytes into out (outlen bytes) for a
 * terminal: control characters and bytes that are not UTF-8 become '?',
 * and more than width characters are cut, ending in '~'.  Returns the
 * characters written. */
static size_t text_clean(char *out, size_t outlen, const char *s, size_t max,
			 size_t width)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = report_field_len(s, max), o = 0, chars = 0;

	while (n && chars < width && o + 5 < outlen) {
		uint32_t cp;
		size_t len = report_utf8_len(p, n, &cp);

		if (chars + 1 == width && n > (len ? len : 1)) {
			out[o++] = '~';
			chars++;
			break;
		}
		if (!len || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			out[o++] = '?';
			len = len ? len : 1;
		} else {
			memcpy(out + o, p, len);
			o += len;
		}
		chars++;
		p += len;
		n -= len;
	}
	out[o] = 0;
	return chars;
}

/* Columns of the tables: the rules table uses the first six. */
enum {
	C_RULE,
	C_ADDR,
	C_HOST,
	C_BREAKER,
	C_CALLS,
	C_FAIL,
	C_REJ,
	C_CONN,
	C_FB,
	NCOLS
};
enum { R_RULE, R_ACTIVE, R_MAX, R_PENDING, R_BREAKER, R_SCOPE, NRCOLS };

/* One line of a table: its cells and their widths in characters. */
struct trow {
	char cell[NCOLS][4 * COL_MAX + 8];
	size_t width[NCOLS];
};

/* How a table is laid out; widths are fitted to the cells by a first
 * pass over the rows, which are printed by a second one. */
struct table {
	FILE *f;
	int ncols;
	const bool *left; /* left-aligned text, else right-aligned */
	bool shown[NCOLS];
	size_t w[NCOLS];
	bool print; /* second pass */
};

/* Sets a plain ASCII cell. */
static void cell_set(struct trow *t, int c, const char *s)
{
	snprintf(t->cell[c], sizeof t->cell[c], "%s", s);
	t->width[c] = strlen(t->cell[c]);
}

/* Sets a cell from a segment field of at most max bytes, cleaned. */
static void cell_field(struct trow *t, int c, const char *s, size_t max)
{
	t->width[c] =
	    text_clean(t->cell[c], sizeof t->cell[c], s, max, COL_MAX);
}

/* First pass: widens the columns to t; second: prints t, text cells
 * left-aligned, two spaces apart, numbers right-aligned. */
static void table_row(struct table *tb, const struct trow *t)
{
	bool first = true, prev_left = false;
	size_t pad_after = 0;

	if (!tb->print) {
		for (int c = 0; c < tb->ncols; c++)
			if (t->width[c] > tb->w[c])
				tb->w[c] = t->width[c];
		return;
	}
	for (int c = 0; c < tb->ncols; c++) {
		size_t pad;

		if (!tb->shown[c])
			continue;
		pad = tb->w[c] > t->width[c] ? tb->w[c] - t->width[c] : 0;
		/* two spaces next to text, one between numbers */
		if (!first)
			fprintf(tb->f, "%*s",
				(int)(pad_after +
				      (tb->left[c] || prev_left ? 2 : 1)),
				"");
		first = false;
		prev_left = tb->left[c];
		pad_after = 0;
		if (tb->left[c]) {
			fputs(t->cell[c], tb->f);
			pad_after = pad;
		} else {
			fprintf(tb->f, "%*s%s", (int)pad, "", t->cell[c]);
		}
	}
	fputc('\n', tb->f);
}

/* Name of a rule's breaker mode as the policy writes it. */
static const char *mode_name(uint32_t mode)
{
	return mode == BREAKER_MODE_ON	      ? "on"
	       : mode == BREAKER_MODE_DRY_RUN ? "dry-run"
					      : "off";
}

/* Writes a count in at most digits + 0 or 1 characters: whole below
 * 10^digits, else 123k, 12.3M. */
void report_fmt_count(char *buf, size_t len, uint64_t v, unsigned digits)
{
	static const char units[] = "kMGTPE";
	double d = (double)v;
	uint64_t plain = 1;
	int u = -1;

	while (digits--)
		plain *= 10;
	if (v < plain) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	while (d >= 999.5 && u < 5) {
		d /= 1000;
		u++;
	}
	if (d < 9.95)
		snprintf(buf, len, "%.1f%c", d, units[u]);
	else
		snprintf(buf, len, "%.0f%c", d, units[u]);
}

/* Writes one latency figure in ms, short: 0.25, 12.5, 950, 12s. */
static void fmt_short_ms(char *buf, size_t len, double ms)
{
	if (ms < 0 || !isfinite(ms))
		snprintf(buf, len, "-");
	else if (ms < 1)
		snprintf(buf, len, "%.2f", ms);
	else if (ms < 100)
		snprintf(buf, len, "%.1f", ms);
	else if (ms < 10000)
		snprintf(buf, len, "%.0f", ms);
	else
		snprintf(buf, len, "%.0fs", ms / 1000);
}

/* Writes "p50/p99" in ms, short, or "-" when p50 is unknown (< 0). */
void report_fmt_latency(char *buf, size_t len, double p50, double p99)
{
	char a[16], b[16];

	if (p50 < 0 || !isfinite(p50)) {
		snprintf(buf, len, "-");
		return;
	}
	fmt_short_ms(a, sizeof a, p50);
	fmt_short_ms(b, sizeof b, p99);
	snprintf(buf, len, "%s/%s", a, b);
}

/* Writes "p50/p99" of h in ms, or "-" when it is empty. */
static void fmt_pair(char *buf, size_t len, const struct seg_hist *h)
{
	report_fmt_latency(buf, len, seg_hist_quantile(h, 0.5),
			   seg_hist_quantile(h, 0.99));
}

/* Sets cell c to a counter of a, compacted. */
static void cell_counter(struct trow *t, int c, const struct seg_addr *a,
			 enum seg_counter k)
{
	char buf[32];

	report_fmt_count(
	    buf, sizeof buf,
	    atomic_load_explicit(&a->counter[k], memory_order_relaxed), 5);
	cell_set(t, c, buf);
}

/* Runs the rows of the rules table through tb. */
static void rules_rows(struct table *tb, const struct seg *s,
		       const struct report_opts *o,
		       const struct report_snap *sn)
{
	static const char *const head[NRCOLS] = {"RULE",    "ACTIVE",  "MAX",
						 "PENDING", "BREAKER", "SCOPE"};
	struct trow t;

	memset(&t, 0, sizeof t);
	for (int c = 0; c < NRCOLS; c++)
		cell_set(&t, c, head[c]);
	table_row(tb, &t);
	for (size_t k = 0; k < sn->nrules; k++) {
		const struct seg_rule *r = &s->rules[sn->rules[k].idx];
		uint32_t max = atomic_load_explicit(&r->max_connections,
						    memory_order_relaxed);
		int32_t forced =
		    atomic_load_explicit(&r->forced, memory_order_relaxed);
		uint32_t mode = atomic_load_explicit(&r->breaker_mode,
						     memory_order_relaxed);
		uint32_t scope = atomic_load_explicit(&r->breaker_scope,
						      memory_order_relaxed);
		char buf[32];

		cell_field(&t, R_RULE, sn->rules[k].name, SEG_NAME_MAX);
		snprintf(buf, sizeof buf, "%" PRId64,
			 report_rule_active(s, sn->rules[k].idx, o->alive));
		cell_set(&t, R_ACTIVE, buf);
		snprintf(buf, sizeof buf, "%" PRIu32, max);
		cell_set(&t, R_MAX, max ? buf : "-");
		snprintf(buf, sizeof buf, "%" PRId32,
			 report_rule_pending(s, sn->rules[k].idx, o->alive));
		cell_set(&t, R_PENDING, buf);
		if (forced == BREAKER_FORCE_OPEN)
			cell_set(&t, R_BREAKER, "forced_open");
		else if (forced == BREAKER_FORCE_CLOSED)
			cell_set(&t, R_BREAKER, "forced_closed");
		else
			cell_set(&t, R_BREAKER, mode_name(mode));
		cell_set(&t, R_SCOPE,
			 scope == POLICY_SCOPE_RULE ? "rule" : "address");
		table_row(tb, &t);
	}
}

/* Runs the rows of the address table through tb: one a destination, and
 * one with dashes for a rule that has none. */
static void addr_rows(struct table *tb, const struct seg *s,
		      const struct report_snap *sn)
{
	static const char *const head[NCOLS] = {
	    "RULE", "ADDRESS", "HOST",	  "BREAKER", "CALLS",
	    "FAIL", "REJ",     "CONNECT", "1ST BYTE"};
	struct trow t;

	memset(&t, 0, sizeof t);
	for (int c = 0; c < NCOLS; c++)
		cell_set(&t, c, head[c]);
	table_row(tb, &t);
	for (size_t k = 0; k < sn->nrules; k++) {
		const struct report_rule *rr = &sn->rules[k];
		const struct seg_rule *r = &s->rules[rr->idx];

		cell_field(&t, C_RULE, rr->name, SEG_NAME_MAX);
		if (!rr->count) {
			for (int c = C_ADDR; c < NCOLS; c++)
				cell_set(&t, c, "-");
			table_row(tb, &t);
			continue;
		}
		for (uint32_t j = 0; j < rr->count; j++) {
			const struct report_addr *ar =
			    &sn->addrs[rr->first + j];
			const struct seg_addr *a = &s->addrs[ar->idx];
			struct report_breaker v;
			char buf[64];

			report_breaker_view(r, a, &v);
			report_addr_text(buf, sizeof buf, ar->addr, ar->port);
			cell_set(&t, C_ADDR, buf);
			if (report_field_len(a->host, SEG_HOST_MAX)) {
				cell_field(&t, C_HOST, a->host, SEG_HOST_MAX);
				if (!tb->print)
					tb->shown[C_HOST] = true;
			} else {
				cell_set(&t, C_HOST, "-");
			}
			cell_set(&t, C_BREAKER, v.state);
			cell_counter(&t, C_CALLS, a, SEG_CALLS);
			cell_counter(&t, C_FAIL, a, SEG_FAILURES);
			cell_counter(&t, C_REJ, a, SEG_REJECTED_BREAKER);
			fmt_pair(buf, sizeof buf, &a->connect_us);
			cell_set(&t, C_CONN, buf);
			fmt_pair(buf, sizeof buf, &a->first_byte_us);
			cell_set(&t, C_FB, buf);
			table_row(tb, &t);
		}
	}
}

/* Prints the summary line: segment, time and live processes. */
static void table_summary(FILE *f, const struct seg *s,
			  const struct report_opts *o)
{
	char when[40], text[4 * SEG_NAME_MAX + 8];
	unsigned shown = 0, more = 0;

	if (!report_iso_time(when, sizeof when, o->now_real_ms))
		snprintf(when, sizeof when, "?");
	text_clean(text, sizeof text, o->segment ? o->segment : "",
		   o->segment ? strlen(o->segment) : 0, SEG_NAME_MAX);
	fprintf(f, "segment %s at %s; processes:", text, when);
	for (uint32_t i = 0; s && i < s->nprocs; i++) {
		uint32_t pid;

		if (!report_proc_listed(s, o, i, &pid))
			continue;
		if (shown == 4) {
			more++;
			continue;
		}
		text_clean(text, sizeof text, s->procs[i].comm,
			   sizeof s->procs[i].comm, 16);
		fprintf(f, "%s %" PRIu32 " %s", shown ? "," : "", pid, text);
		shown++;
	}
	if (more)
		fprintf(f, " and %u more", more);
	else if (!shown)
		fprintf(f, " none");
	fputc('\n', f);
}

/* Writes the snapshot of s as text tables (s NULL: empty tables). */
int report_table(FILE *f, const struct seg *s, const struct report_opts *o)
{
	static const bool rleft[NCOLS] = {true,	 false, false,
					  false, true,	true};
	static const bool aleft[NCOLS] = {true, true, true, true};
	struct table tb;
	struct report_snap sn;

	if (report_snap_take(s, &sn) < 0)
		return -ENOMEM;
	table_summary(f, s, o);

	memset(&tb, 0, sizeof tb);
	tb.f = f;
	tb.ncols = NRCOLS;
	tb.left = rleft;
	for (int c = 0; c < NCOLS; c++)
		tb.shown[c] = true;
	rules_rows(&tb, s, o, &sn);
	tb.print = true;
	fputc('\n', f);
	rules_rows(&tb, s, o, &sn);

	/* the host column only when some destination has a name */
	memset(&tb, 0, sizeof tb);
	tb.f = f;
	tb.ncols = NCOLS;
	tb.left = aleft;
	for (int c = 0; c < NCOLS; c++)
		tb.shown[c] = c != C_HOST;
	addr_rows(&tb, s, &sn);
	tb.print = true;
	fputc('\n', f);
	addr_rows(&tb, s, &sn);
	fprintf(f, "\nREJ: connects the breaker refused; CONNECT, 1ST BYTE: "
		   "p50/p99 in ms.\n");
	report_snap_free(&sn);
	return ferror(f) ? -EIO : 0;
}
