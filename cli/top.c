/* SPDX-License-Identifier: MIT */
/* fusebox top: a live view of every rule and destination of the segment.
 * On a terminal it draws the full screen with ANSI escapes, one write per
 * frame, and reads keys in raw mode; otherwise it prints a plain table at
 * each refresh.  libuv drives the timer, the keyboard and the signals. */
#include "top.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <uv.h>

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
static void put(struct top *t, const char *p, size_t n)
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
static void draw(struct top *t)
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
		put(t, b.p, b.len);
	}
	free(b.p);
}

/* The refresh timer: reads, draws, and stops after -n refreshes. */
static void on_tick(uv_timer_t *h)
{
	struct top *t = h->data;

	top_refresh(t);
	draw(t);
	t->done++;
	if (t->count && t->done >= t->count)
		uv_stop(&t->loop);
}

/* Shows the alternate screen without a cursor. */
static void screen_enter(struct top *t)
{
	static const char s[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";

	put(t, s, sizeof s - 1);
	t->screen = true;
}

/* Returns to the normal screen with its cursor. */
static void screen_leave(struct top *t)
{
	static const char s[] = "\x1b[0m\x1b[?25h\x1b[?1049l";

	if (!t->screen)
		return;
	put(t, s, sizeof s - 1);
	t->screen = false;
}

/* Forces the breaker of the selected rule or destination (how is a
 * BREAKER_FORCE_*), opening the segment for writing for that. */
static void force(struct top *t, int how)
{
	static const char *const done[] = {"back to automatic", "forced open",
					   "forced closed"};
	const struct vrow *r;
	char why[160];
	struct seg s;
	int e;

	if (!t->ndisp) {
		top_status(t, "nothing selected");
		return;
	}
	r = &t->rows[t->disp[t->sel]];
	e = seg_open(t->name, NULL, false, &s, why, sizeof why);
	if (e < 0) {
		top_status(t, "fusebox top: segment %s: %s", t->name, why);
		return;
	}
	e = cli_breaker_force(&s, r->rule, r->is_rule ? NULL : r->addr, r->port,
			      how);
	seg_close(&s);
	if (e == -EAGAIN && r->is_rule)
		top_status(
		    t, "%s: some breakers were busy and kept their override",
		    r->rule);
	else if (e == -EAGAIN)
		top_status(t, "%s/%s: its lock stayed busy; nothing changed",
			   r->rule, r->addr_text);
	else if (e < 0)
		top_status(t, "fusebox top: segment %s: the %s table is full",
			   t->name, e == -ENOSPC ? "rule" : "address");
	else if (r->is_rule)
		top_status(t, "%s: breaker %s for every address", r->rule,
			   done[how]);
	else if (r->scope == POLICY_SCOPE_RULE)
		top_status(t,
			   "%s/%s: breaker %s, but breaker_scope = rule: use "
			   "the rule line",
			   r->rule, r->addr_text, done[how]);
	else if (t->rows[r->group].forced != BREAKER_FORCE_NONE)
		top_status(t, "%s/%s: breaker %s, but the whole rule is forced",
			   r->rule, r->addr_text, done[how]);
	else
		top_status(t, "%s/%s: breaker %s", r->rule, r->addr_text,
			   done[how]);
	top_refresh(t);
}

/* Moves the selection by delta rows. */
static void move(struct top *t, long delta)
{
	long s = (long)t->sel + delta;

	if (!t->ndisp)
		return;
	if (s < 0)
		s = 0;
	if (s >= (long)t->ndisp)
		s = (long)t->ndisp - 1;
	t->sel = (size_t)s;
	top_sel_keep(t);
}

/* Switches the sort order; the same key again reverses it. */
static void sort_by(struct top *t, int how)
{
	if (t->sort == how)
		t->reverse = !t->reverse;
	else
		t->reverse = false;
	t->sort = how;
	top_build_disp(t);
}

/* Stops the terminal for Ctrl-Z and takes it back on SIGCONT. */
static void suspend(struct top *t)
{
	screen_leave(t);
	uv_tty_set_mode(&t->in, UV_TTY_MODE_NORMAL);
	raise(SIGTSTP);
	uv_tty_set_mode(&t->in, UV_TTY_MODE_RAW);
	screen_enter(t);
	t->clear = true;
}

/* Takes a key typed on the filter prompt. */
static void prompt_key(struct top *t, unsigned char c)
{
	size_t n = strlen(t->input);

	if (c == '\r' || c == '\n') {
		memcpy(t->filter, t->input, sizeof t->filter);
		t->prompt = false;
		t->sel = 0;
		t->top_row = 0;
		top_build_disp(t);
		top_sel_keep(t);
	} else if (c == 0x1b) {
		t->prompt = false;
	} else if (c == 0x7f || c == 0x08) {
		/* a whole UTF-8 character */
		while (n && ((unsigned char)t->input[n - 1] & 0xc0) == 0x80)
			n--;
		if (n)
			n--;
		t->input[n] = 0;
	} else if (c == 0x15) {
		t->input[0] = 0;
	} else if (c >= 0x20 && n < FILTER_MAX) {
		t->input[n] = (char)c;
		t->input[n + 1] = 0;
	}
}

/* Keys that arrive as escape sequences. */
enum { KEY_UP = 0x100, KEY_DOWN, KEY_HOME, KEY_END, KEY_PGUP, KEY_PGDN };

/* Length of the escape sequence at p (n > 1 bytes, p[0] ESC) and the
 * key it stands for in *key (KEY_*, or 0 for another key); 1 when ESC
 * stands alone. */
static size_t escape_key(const unsigned char *p, size_t n, int *key)
{
	size_t i = 2;
	int param = 0;

	*key = 0;
	if (p[1] != '[' && p[1] != 'O')
		return 1;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		param = param * 10 + (p[i++] - '0');
	while (i < n && (p[i] < 0x40 || p[i] > 0x7e))
		i++;
	if (i >= n)
		return n;
	switch (p[i]) {
	case 'A':
		*key = KEY_UP;
		break;
	case 'B':
		*key = KEY_DOWN;
		break;
	case 'H':
		*key = KEY_HOME;
		break;
	case 'F':
		*key = KEY_END;
		break;
	case '~':
		*key = param == 5		  ? KEY_PGUP
		       : param == 6		  ? KEY_PGDN
		       : param == 1 || param == 7 ? KEY_HOME
		       : param == 4 || param == 8 ? KEY_END
						  : 0;
		break;
	default:
		break;
	}
	return i + 1;
}

/* Takes the bytes typed: keys, escape sequences, the filter prompt. */
static void on_keys(struct top *t, const unsigned char *p, size_t n)
{
	int page = t->lines > 10 ? t->lines - 10 : 1;

	while (n) {
		size_t used = 1;
		int key = p[0];

		if (key == 0x03) { /* Ctrl-C */
			uv_stop(&t->loop);
			return;
		}
		if (key == 0x1b && n > 1) {
			used = escape_key(p, n, &key);
			if (used == 1)
				key = 0x1b;
		}
		if (t->prompt) {
			/* the prompt takes no cursor keys */
			if (used == 1)
				prompt_key(t, p[0]);
			p += used;
			n -= used;
			continue;
		}
		if (t->help && key != 0x1a) {
			t->help = false;
			p += used;
			n -= used;
			continue;
		}
		switch (key) {
		case 'q':
		case 'Q':
			uv_stop(&t->loop);
			return;
		case 0x1a: /* Ctrl-Z */
			suspend(t);
			break;
		case 0x0c: /* Ctrl-L */
			t->clear = true;
			break;
		case 'j':
		case KEY_DOWN:
		case 0x0e:
			move(t, 1);
			break;
		case 'k':
		case KEY_UP:
		case 0x10:
			move(t, -1);
			break;
		case KEY_PGDN:
		case 0x06:
			move(t, page);
			break;
		case KEY_PGUP:
		case 0x02:
			move(t, -page);
			break;
		case 'g':
		case KEY_HOME:
			move(t, -(long)t->ndisp);
			break;
		case 'G':
		case KEY_END:
			move(t, (long)t->ndisp);
			break;
		case 'n':
			sort_by(t, SORT_NAME);
			break;
		case 'r':
			sort_by(t, SORT_RATE);
			break;
		case 'f':
			sort_by(t, SORT_FAIL);
			break;
		case 's':
			sort_by(t, SORT_STATE);
			break;
		case 'o':
			force(t, BREAKER_FORCE_OPEN);
			break;
		case 'c':
			force(t, BREAKER_FORCE_CLOSED);
			break;
		case 'a':
			force(t, BREAKER_FORCE_NONE);
			break;
		case '/':
			t->prompt = true;
			memcpy(t->input, t->filter, sizeof t->input);
			break;
		case 0x1b:
			if (t->filter[0]) {
				t->filter[0] = 0;
				top_build_disp(t);
			}
			break;
		case '?':
		case 'h':
			t->help = true;
			break;
		default:
			break;
		}
		p += used;
		n -= used;
	}
	draw(t);
}

/* Hands libuv the buffer for keys. */
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	struct top *t = h->data;

	(void)size;
	*b = uv_buf_init(t->rbuf, sizeof t->rbuf);
}

/* Takes what was read from the keyboard; the end of it ends top. */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct top *t = s->data;

	if (n < 0) {
		uv_read_stop(s);
		uv_stop(&t->loop);
		return;
	}
	on_keys(t, (const unsigned char *)b->base, (size_t)n);
}

/* SIGINT, SIGTERM and SIGHUP end top; SIGWINCH redraws. */
static void on_signal(uv_signal_t *h, int signum)
{
	struct top *t = h->data;

	if (signum == SIGWINCH) {
		t->clear = true;
		draw(t);
		return;
	}
	uv_stop(&t->loop);
}

/* Closes every handle of the loop. */
static void close_all(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Parses the options; 0, or the CLI_USAGE of a printed usage error. */
static int parse_opts(struct top *t, int argc, char **argv, const char **seg)
{
	static const struct option opts[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"count", required_argument, NULL, 'n'},
	    {"segment", required_argument, NULL, 's'},
	    {0}};
	double secs;
	char *end;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:n:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(secs) ||
			    secs < 0.1 || secs > 86400)
				return cli_usage_error(
				    "top",
				    "-i: '%s' is not a number of seconds "
				    "from 0.1 to 86400",
				    optarg);
			t->interval_ms = (uint64_t)llround(secs * 1000);
			break;
		case 'n':
			errno = 0;
			t->count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || t->count < 1)
				return cli_usage_error(
				    "top", "-n: '%s' is not a positive count",
				    optarg);
			break;
		case 's':
			*seg = optarg;
			break;
		case ':':
			return cli_usage_error("top",
					       "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			if (optopt)
				return cli_usage_error(
				    "top", "unknown option '-%c'", optopt);
			return cli_usage_error("top", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_usage_error("top", "unexpected argument '%s'",
				       argv[optind]);
	return 0;
}

/* On a fatal signal: gives the terminal back, then dies of the signal
 * as it would have (the handler is reset by SA_RESETHAND).  Only
 * async-signal-safe calls: write(2) and uv_tty_reset_mode(). */
static void on_fatal(int sig)
{
	static const char s[] = "\x1b[0m\x1b[?25h\x1b[?1049l";
	ssize_t n = write(STDOUT_FILENO, s, sizeof s - 1);

	(void)n;
	uv_tty_reset_mode();
	raise(sig);
}

/* Restores the terminal should fusebox top itself crash (a segment cut
 * short under its mapping raises SIGBUS, for one). */
static void catch_fatal(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
		sigaction(fatal[i], &sa, NULL);
}

/* Sets up the terminal: output, keys in raw mode, the alternate screen;
 * 0 or -1 after saying why. */
static int term_open(struct top *t)
{
	int r = uv_tty_init(&t->loop, &t->out, 1, 0);

	if (r < 0) {
		fprintf(stderr, "fusebox top: terminal: %s\n", uv_strerror(r));
		return -1;
	}
	t->out.data = t;
	/* a frame goes out whole before the next event */
	uv_stream_set_blocking((uv_stream_t *)&t->out, 1);
	if (uv_guess_handle(0) == UV_TTY &&
	    uv_tty_init(&t->loop, &t->in, 0, 1) == 0) {
		t->in.data = t;
		t->keys = true;
		if (uv_tty_set_mode(&t->in, UV_TTY_MODE_RAW) == 0)
			t->raw = true;
		uv_read_start((uv_stream_t *)&t->in, on_alloc, on_read);
	}
	if (uv_tty_get_winsize(&t->out, &t->cols, &t->lines) < 0 ||
	    t->cols <= 0 || t->lines <= 0) {
		t->cols = 80;
		t->lines = 24;
	}
	catch_fatal();
	screen_enter(t);
	return 0;
}

/* Gives the terminal back as it was. */
static void term_close(struct top *t)
{
	screen_leave(t);
	if (t->raw) {
		uv_tty_set_mode(&t->in, UV_TTY_MODE_NORMAL);
		uv_tty_reset_mode();
		t->raw = false;
	}
}

/* fusebox top [-i SECONDS] [-n COUNT] [-s NAME]: shows the segment live
 * until q or a signal, or COUNT refreshes; returns the exit status. */
int cmd_top(int argc, char **argv)
{
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
	const char *opt = NULL, *term = getenv("TERM");
	struct top *t = calloc(1, sizeof *t);
	int r, ret;

	if (!t) {
		fprintf(stderr, "fusebox top: out of memory\n");
		return CLI_FAIL;
	}
	t->interval_ms = 1000;
	r = parse_opts(t, argc, argv, &opt);
	if (r) {
		free(t);
		return r;
	}
	if (cli_segment_name("top", opt, t->name, sizeof t->name) < 0) {
		free(t);
		return CLI_FAIL;
	}
	setlocale(LC_CTYPE, "");
	t->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	t->tty = isatty(1) && !(term && !strcmp(term, "dumb"));
	t->color = t->tty && !getenv("NO_COLOR");
	t->cols = 80;
	t->lines = 24;
	r = uv_loop_init(&t->loop);
	if (r < 0) {
		fprintf(stderr, "fusebox top: %s\n", uv_strerror(r));
		free(t);
		return CLI_FAIL;
	}
	if (t->tty && term_open(t) < 0) {
		t->ret = CLI_FAIL;
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		if (signals[i] == SIGWINCH && !t->tty)
			continue;
		uv_signal_init(&t->loop, &t->sig[i]);
		t->sig[i].data = t;
		uv_signal_start(&t->sig[i], on_signal, signals[i]);
	}
	uv_timer_init(&t->loop, &t->timer);
	t->timer.data = t;
	uv_timer_start(&t->timer, on_tick, 0, t->interval_ms);
	uv_run(&t->loop, UV_RUN_DEFAULT);
out:
	term_close(t);
	uv_walk(&t->loop, close_all, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	uv_loop_close(&t->loop);
	if (t->open)
		seg_close(&t->seg);
	top_drop_view(t);
	free(t->disp);
	ret = t->ret;
	free(t);
	return ret;
}
