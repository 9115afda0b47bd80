/* SPDX-License-Identifier: MIT */
/* fusebox top: the views.  The full screen (title, processes, table,
 * detail pane, prompt and status) or, when not on a terminal, plain
 * tables at each refresh; a frame goes out in one write. */
#include "top.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Widths of the columns after NAME, and the width NAME gets at least. */
#define W_STATE 13
#define W_RATE	6
#define W_FAIL	5
#define W_LAT	9
#define W_REJ	4
#define W_TREND 8
#define W_FIXED                                                                \
	(1 + W_STATE + 1 + W_RATE + 1 + W_FAIL + 1 + W_LAT + 1 + W_LAT + 1 +   \
	 W_REJ + 1 + W_TREND)
#define W_NAME_MIN 10

/* The sort orders (SORT_*) as the title names them. */
static const char *const sort_names[] = {"name", "calls/s", "failure %",
					 "state"};

/* Writes calls per second in at most 6 characters, "-" when unknown. */
static void fmt_rate(char *buf, size_t len, double r)
{
	if (r < 0 || !isfinite(r))
		snprintf(buf, len, "-");
	else if (r < 99.95)
		snprintf(buf, len, "%.1f", r);
	else if (r < 99999.5)
		snprintf(buf, len, "%.0f", r);
	else
		report_fmt_count(buf, len, (uint64_t)r, 4);
}

/* Writes a failure share: "0%", "4.5%", "41%", or "-". */
static void fmt_pct(char *buf, size_t len, double p)
{
	if (p < 0)
		snprintf(buf, len, "-");
	else if (p == 0 || p >= 9.95)
		snprintf(buf, len, "%.0f%%", p);
	else
		snprintf(buf, len, "%.1f%%", p);
}

/* Writes a duration of ms as 12s, 4m30s or 2h05m. */
static void fmt_left(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = (ms + 999) / 1000;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
			 s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s / 60 % 60);
}

/* The colour of a breaker state. */
static enum attr state_attr(const char *s)
{
	if (!strcmp(s, "closed"))
		return A_OK;
	if (!strcmp(s, "half_open"))
		return A_WARN;
	if (!strcmp(s, "open"))
		return A_BAD;
	if (!strncmp(s, "forced_", 7))
		return A_FORCED;
	if (!strcmp(s, "disabled"))
		return A_DIM;
	return A_NONE;
}

/* The state an address row shows: its word, and the time left when
 * open. */
static void fmt_state(const struct top *t, const struct vrow *r, char *buf,
		      size_t len)
{
	char left[32];

	if (strcmp(r->state, "open") || !r->until_ms) {
		snprintf(buf, len, "%s", r->state);
		return;
	}
	fmt_left(left, sizeof left,
		 r->until_ms > t->now ? r->until_ms - t->now : 0);
	snprintf(buf, len, "open %s", left);
}

/* Draws one row of the table: a rule, or a destination indented under
 * it. */
static void draw_row(struct top *t, struct line *l, const struct vrow *r)
{
	int nw = l->width - W_FIXED, x;
	char buf[64];

	if (nw < W_NAME_MIN)
		nw = W_NAME_MIN;
	x = nw + 1;
	if (r->is_rule) {
		top_line_attr(l, A_BOLD);
		top_line_text(l, r->rule, sizeof r->rule, nw);
		top_line_attr(l, A_NONE);
		top_line_pad(l, x);
		/* a rule shows its override, or that its breaker is off */
		if (r->forced == BREAKER_FORCE_OPEN ||
		    r->forced == BREAKER_FORCE_CLOSED ||
		    r->mode != BREAKER_MODE_ON) {
			const char *s = r->forced ? r->state
					: r->mode == BREAKER_MODE_DRY_RUN
					    ? "dry-run"
					    : "disabled";

			top_line_attr(l, r->forced ? A_FORCED : A_DIM);
			top_line_text(l, s, strlen(s), W_STATE);
			top_line_attr(l, A_NONE);
		}
	} else {
		top_line_pad(l, 2);
		top_line_text(l, r->addr_text, sizeof r->addr_text, nw - 2);
		top_line_pad(l, x);
		fmt_state(t, r, buf, sizeof buf);
		top_line_attr(l, state_attr(r->state));
		top_line_text(l, buf, strlen(buf), W_STATE);
		top_line_attr(l, A_NONE);
	}
	x += W_STATE + 1;
	fmt_rate(buf, sizeof buf, r->rate);
	top_line_right(l, x, W_RATE, buf);
	x += W_RATE + 1;
	fmt_pct(buf, sizeof buf, top_fail_pct(r));
	top_line_right(l, x, W_FAIL, buf);
	x += W_FAIL + 1;
	if (r->is_rule) {
		char max[16];

		/* the rule's connections where its rows show latencies */
		snprintf(max, sizeof max, "/%" PRIu32, r->max_conn);
		snprintf(buf, sizeof buf, "conn %" PRId32 "%s pend %" PRId32,
			 r->active, r->max_conn ? max : "", r->pending);
		top_line_pad(l, x);
		top_line_text(l, buf, strlen(buf), 2 * W_LAT + 1);
		x += 2 * W_LAT + 2;
	} else {
		report_fmt_latency(buf, sizeof buf, r->lat[0][0], r->lat[0][1]);
		top_line_right(l, x, W_LAT, buf);
		x += W_LAT + 1;
		report_fmt_latency(buf, sizeof buf, r->lat[1][0], r->lat[1][1]);
		top_line_right(l, x, W_LAT, buf);
		x += W_LAT + 1;
	}
	if (r->secs > 0)
		report_fmt_count(buf, sizeof buf,
				 r->win[K_REJ_BREAKER] + r->win[K_REJ_LIMIT] +
				     r->win[K_REJ_RATE] + r->win[K_REJ_BUDGET],
				 4);
	else
		snprintf(buf, sizeof buf, "-");
	top_line_right(l, x, W_REJ, buf);
	x += W_REJ + 1;
	top_line_pad(l, x);
	top_line_spark(l, r->spark, r->nspark, W_TREND);
}

/* Draws the column heads. */
static void draw_head(struct line *l)
{
	int nw = l->width - W_FIXED, x;

	if (nw < W_NAME_MIN)
		nw = W_NAME_MIN;
	top_line_attr(l, A_BOLD);
	top_line_str(l, "NAME");
	x = nw + 1;
	top_line_pad(l, x);
	top_line_str(l, "STATE");
	x += W_STATE + 1;
	top_line_right(l, x, W_RATE, "CALL/S");
	x += W_RATE + 1;
	top_line_right(l, x, W_FAIL, "FAIL%");
	x += W_FAIL + 1;
	top_line_right(l, x, W_LAT, "CONNECT");
	x += W_LAT + 1;
	top_line_right(l, x, W_LAT, "1ST BYTE");
	x += W_LAT + 1;
	top_line_right(l, x, W_REJ, "REJ");
	x += W_REJ + 1;
	top_line_pad(l, x);
	top_line_str(l, "TREND");
	top_line_attr(l, A_NONE);
}

/* Draws the title: segment, time, refresh period, sort order (on the
 * screen) and how many rules and destinations there are. */
static void draw_title(struct top *t, struct line *l)
{
	char when[32], text[160];
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) ||
	    !strftime(when, sizeof when,
		      t->tty ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(when, sizeof when, "?");
	top_line_attr(l, A_REV);
	top_line_str(l, t->tty ? "fusebox top  " : "segment ");
	top_line_text(l, t->name, sizeof t->name, SEG_NAME_MAX);
	if (t->tty)
		snprintf(text, sizeof text, "  %s  every %gs  sort %s%s", when,
			 (double)t->interval_ms / 1000, sort_names[t->sort],
			 t->reverse ? " (rev)" : "");
	else
		snprintf(text, sizeof text, " at %s", when);
	top_line_str(l, text);
	if (t->open && !t->tty) {
		snprintf(text, sizeof text, "; %zu rule%s, %zu destination%s",
			 t->nrules, t->nrules == 1 ? "" : "s", t->naddrs,
			 t->naddrs == 1 ? "" : "s");
		top_line_str(l, text);
	} else if (t->open) {
		/* at the right, when it fits */
		snprintf(text, sizeof text, "%zu rule%s %zu dest%s", t->nrules,
			 t->nrules == 1 ? "" : "s", t->naddrs,
			 t->naddrs == 1 ? "" : "s");
		if (l->col + 2 + (int)strlen(text) <= l->width) {
			top_line_pad(l, l->width - (int)strlen(text));
			top_line_str(l, text);
		}
	}
	if (t->tty)
		top_line_pad(l, l->width);
	top_line_attr(l, A_NONE);
}

/* Draws the process line: how many guarded processes run, and which. */
static void draw_procs(struct top *t, struct line *l)
{
	char buf[48];

	if (!t->nprocs) {
		top_line_str(l, "no guarded process running");
		return;
	}
	snprintf(buf, sizeof buf, "%zu guarded process%s:", t->nprocs,
		 t->nprocs == 1 ? "" : "es");
	top_line_str(l, buf);
	for (size_t i = 0; i < t->nprocs && i < PROCS_MAX; i++) {
		snprintf(buf, sizeof buf, "%s %" PRIu32 " ", i ? "," : "",
			 t->procs[i].pid);
		top_line_str(l, buf);
		top_line_text(l, t->procs[i].comm, sizeof t->procs[i].comm, 16);
	}
	if (t->nprocs > PROCS_MAX)
		top_line_str(l, ", ...");
}

/* Columns of the counts table after its label: calls, failed, retries,
 * then rejected by breaker, limit, rate and budget; where each ends. */
static const int count_end[7] = {7, 14, 22, 41, 47, 52, 59};

/* Writes the counts of v (NK counters) after a label of w columns. */
static void draw_counts(struct line *l, int w, const uint64_t v[NK])
{
	static const int k[7] = {K_CALLS,	K_FAILURES,  K_RETRIES,
				 K_REJ_BREAKER, K_REJ_LIMIT, K_REJ_RATE,
				 K_REJ_BUDGET};
	char buf[8];

	for (int i = 0; i < 7; i++) {
		report_fmt_count(buf, sizeof buf, v[k[i]], 4);
		top_line_right(l, w + count_end[i] - 6, 6, buf);
	}
}

/* Writes the head of the counts table after a label of w columns. */
static void draw_counts_head(struct line *l, int w, const char *label)
{
	static const char *const head[7] = {
	    "calls", "failed", "retries", "breaker", "limit", "rate", "budget"};

	top_line_str(l, label);
	for (int i = 0; i < 7; i++) {
		int n = (int)strlen(head[i]);

		if (i == 3) {
			top_line_pad(l, w + count_end[2] + 2);
			top_line_str(l, "rejected:");
		}
		top_line_right(l, w + count_end[i] - n, n, head[i]);
	}
}

/* Draws line n (0 to DETAIL_LINES - 1) of the pane about row r: what it
 * is, its counts over the last 10 s and in all, and its calls/s. */
static void draw_detail(struct top *t, struct line *l, const struct vrow *r,
			int n)
{
	char buf[200], state[40], max[16];

	switch (n) {
	case 0:
		top_line_attr(l, A_BOLD);
		top_line_text(l, r->rule, sizeof r->rule, SEG_NAME_MAX);
		top_line_attr(l, A_NONE);
		if (r->is_rule) {
			snprintf(max, sizeof max, "of %" PRIu32, r->max_conn);
			snprintf(
			    buf, sizeof buf,
			    ": breaker %s%s, scope %s; %" PRId32
			    " connections (%s), %" PRId32 " pending",
			    r->mode == BREAKER_MODE_ON	      ? "on"
			    : r->mode == BREAKER_MODE_DRY_RUN ? "dry-run"
							      : "off",
			    r->forced == BREAKER_FORCE_OPEN ? " forced open"
			    : r->forced == BREAKER_FORCE_CLOSED
				? " forced closed"
				: "",
			    r->scope == POLICY_SCOPE_RULE ? "rule" : "address",
			    r->active, r->max_conn ? max : "no limit",
			    r->pending);
			top_line_str(l, buf);
			break;
		}
		top_line_str(l, " ");
		top_line_text(l, r->addr_text, sizeof r->addr_text, 64);
		if (r->host[0]) {
			top_line_str(l, " (");
			top_line_text(l, r->host, sizeof r->host, 32);
			top_line_str(l, ")");
		}
		fmt_state(t, r, state, sizeof state);
		snprintf(buf, sizeof buf, ": %s%s", state,
			 strcmp(r->state, "open") || !r->until_ms ? ""
								  : " left");
		if (r->consecutive)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
				 ", %" PRIu32 " failure%s in a row",
				 r->consecutive,
				 r->consecutive == 1 ? "" : "s");
		top_line_attr(l, state_attr(r->state));
		top_line_str(l, buf);
		top_line_attr(l, A_NONE);
		break;
	case 1:
		draw_counts_head(l, 11, "");
		break;
	case 2:
		if (r->secs <= 0) {
			top_line_str(l,
				     "last 10s    (from the next refresh on)");
			break;
		}
		snprintf(buf, sizeof buf, "last %.0fs", r->secs);
		top_line_str(l, buf);
		draw_counts(l, 11, r->win);
		break;
	case 3:
		top_line_str(l, "in all");
		draw_counts(l, 11, r->tot);
		break;
	default:
		top_line_str(l, "calls/s     ");
		top_line_spark(l, r->spark, r->nspark, l->width - l->col);
		break;
	}
}

/* The help that '?' shows in place of the table. */
static const char *const help_text[] = {
    "q, Ctrl-C      quit",
    "j k, arrows    move the selection (PgUp PgDn Home End too)",
    "o c a          force the selected breaker open, closed, or back to auto",
    "               (on a rule line: every destination of the rule)",
    "n r f s        sort by name, calls/s, failure %, state; again: reverse",
    "/              filter rules, addresses and hosts; Esc clears it",
    "",
    "CALL/S, FAIL%, REJ, TREND: calls per second, the share of failed calls",
    "and connects fusebox refused (breaker, limit, rate or budget) over the",
    "last 10 s; TREND: calls/s, a bar a second.  CONNECT, 1ST BYTE: p50/p99",
    "in ms over the last 10-15 s.  A rule line shows its open connections",
    "(of max_connections) and the connects waiting for one (pend).",
    "",
    "Press any key to go back.",
};

/* Draws the whole screen into b. */
static void draw_screen(struct top *t, struct buf *b)
{
	int H = t->lines, area, detail, y;
	struct line l;
	const struct vrow *sel = t->ndisp ? &t->rows[t->disp[t->sel]] : NULL;
	uint64_t now = top_now_ms(CLOCK_MONOTONIC);

	top_buf_str(b, "\x1b[?25l");
	if (t->clear) {
		top_buf_str(b, "\x1b[0m\x1b[2J");
		t->clear = false;
	}
	detail = H >= 17 ? DETAIL_LINES : 0;
	area = H - 5 - detail;
	top_line_begin(&l, t, b, 1, false);
	draw_title(t, &l);
	top_line_end(&l);
	if (H < 6 || t->cols < 40) {
		for (y = 2; y <= H; y++) {
			top_line_begin(&l, t, b, y, false);
			if (y == 2)
				top_line_str(&l, "(the terminal is too small)");
			top_line_end(&l);
		}
		return;
	}
	top_line_begin(&l, t, b, 2, false);
	if (t->open)
		draw_procs(t, &l);
	top_line_end(&l);
	top_line_begin(&l, t, b, 3, false);
	draw_head(&l);
	top_line_end(&l);
	/* keep the selection in sight */
	if (t->sel < t->top_row)
		t->top_row = t->sel;
	if (t->sel >= t->top_row + (size_t)area)
		t->top_row = t->sel - (size_t)area + 1;
	if (t->top_row + (size_t)area > t->ndisp)
		t->top_row =
		    t->ndisp > (size_t)area ? t->ndisp - (size_t)area : 0;
	for (int i = 0; i < area; i++) {
		size_t k = t->top_row + (size_t)i;

		y = 4 + i;
		if (t->help) {
			top_line_begin(&l, t, b, y, false);
			if ((size_t)i < sizeof help_text / sizeof *help_text)
				top_line_str(&l, help_text[i]);
			top_line_end(&l);
			continue;
		}
		top_line_begin(&l, t, b, y, k < t->ndisp && k == t->sel);
		if (!t->open && i == 0)
			top_line_str(&l, t->why);
		else if (t->open && !t->ndisp && i == 0)
			top_line_str(&l, t->filter[0]
					     ? "nothing matches the filter"
					     : "no rule in the segment yet");
		else if (k < t->ndisp)
			draw_row(t, &l, &t->rows[t->disp[k]]);
		top_line_end(&l);
	}
	for (int i = 0; i < detail; i++) {
		top_line_begin(&l, t, b, 4 + area + i, false);
		if (sel && !t->help)
			draw_detail(t, &l, sel, i);
		top_line_end(&l);
	}
	top_line_begin(&l, t, b, H - 1, false);
	if (t->prompt) {
		top_line_str(&l, "filter: ");
		top_line_text(&l, t->input, sizeof t->input, l.width - 12);
		top_line_attr(&l, A_REV);
		top_line_str(&l, " ");
		top_line_attr(&l, A_NONE);
		top_line_str(&l, "  (Enter applies, Esc cancels)");
	} else if (t->status[0] && now - t->status_ms < STATUS_MS) {
		top_line_str(&l, t->status);
	} else if (t->filter[0]) {
		top_line_str(&l, "filter: ");
		top_line_text(&l, t->filter, sizeof t->filter, l.width - 30);
		top_line_str(&l, "  (Esc clears it)");
	}
	top_line_end(&l);
	top_line_begin(&l, t, b, H, false);
	top_line_attr(&l, A_REV);
	top_line_str(&l,
		     "q quit  j/k move  o/c/a open/close/auto  n/r/f/s sort  "
		     "/ filter  ? help");
	top_line_pad(&l, l.width);
	top_line_attr(&l, A_NONE);
	top_line_end(&l);
}

/* Writes the plain tables of one refresh into b: the rows as on the
 * screen, then the counts of every rule over the last 10 s. */
static void draw_plain(struct top *t, struct buf *b)
{
	struct line l;

	if (t->done)
		top_buf_str(b, "\n");
	top_line_begin(&l, t, b, 0, false);
	draw_title(t, &l);
	top_line_end(&l);
	top_line_begin(&l, t, b, 0, false);
	if (t->open)
		draw_procs(t, &l);
	else
		top_line_str(&l, t->why);
	top_line_end(&l);
	if (!t->open)
		return;
	if (!t->nrows) {
		top_buf_str(b, "no rule in the segment yet\n");
		return;
	}
	top_buf_str(b, "\n");
	top_line_begin(&l, t, b, 0, false);
	draw_head(&l);
	top_line_end(&l);
	for (size_t k = 0; k < t->ndisp; k++) {
		top_line_begin(&l, t, b, 0, false);
		draw_row(t, &l, &t->rows[t->disp[k]]);
		top_line_end(&l);
	}
	top_buf_str(b, "\n");
	top_line_begin(&l, t, b, 0, false);
	draw_counts_head(&l, 20, "LAST 10S");
	top_line_end(&l);
	for (size_t k = 0; k < t->ndisp; k++) {
		const struct vrow *r = &t->rows[t->disp[k]];

		if (!r->is_rule)
			continue;
		top_line_begin(&l, t, b, 0, false);
		top_line_text(&l, r->rule, sizeof r->rule, 19);
		if (r->secs > 0) {
			draw_counts(&l, 20, r->win);
		} else {
			top_line_pad(&l, 20 + count_end[0] - 1);
			top_line_str(&l, "-");
		}
		top_line_end(&l);
	}
	top_buf_str(b,
		    "CALL/S, FAIL%, REJ, LAST 10S: over the last 10 s; "
		    "CONNECT, 1ST BYTE: p50/p99\nms over the last 10-15 s.\n");
}

/* Writes a frame to standard output: the terminal, or the pipe or file
 * (an error there ends fusebox top). */
void top_put(struct top *t, const char *p, size_t n)
{
	if (!t->tty) {
		if (fwrite(p, 1, n, stdout) != n || fflush(stdout)) {
			fprintf(stderr, "fusebox top: standard output: %s\n",
				strerror(errno));
			t->ret = CLI_FAIL;
			uv_stop(&t->loop);
		}
		return;
	}
	while (n) {
		uv_buf_t ub = uv_buf_init((char *)p, (unsigned)n);
		int r = uv_try_write((uv_stream_t *)&t->out, &ub, 1);

		if (r == UV_EAGAIN || r == UV_EINTR) {
			usleep(1000);
			continue;
		}
		if (r < 0)
			return;
		p += r;
		n -= (size_t)r;
	}
}

/* Draws the view, full screen or as a plain table. */
void top_draw(struct top *t)
{
	struct buf b = {0};

	if (t->tty) {
		int w, h;

		if (uv_tty_get_winsize(&t->out, &w, &h) == 0 && w > 0 &&
		    h > 0) {
			if (w != t->cols || h != t->lines)
				t->clear = true;
			t->cols = w;
			t->lines = h;
		}
		draw_screen(t, &b);
	} else {
		draw_plain(t, &b);
	}
	if (b.oom) {
		if (!t->tty)
			fprintf(stderr, "fusebox top: out of memory\n");
	} else if (b.len) {
		top_put(t, b.p, b.len);
	}
	free(b.p);
}
