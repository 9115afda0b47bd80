/* SPDX-License-Identifier: MIT */
/* fusebox top, inside: the state of one top, the rows it shows, and the
 * functions its files share.  Only cli/top*.c include it. */
#ifndef FUSEBOX_TOP_H
#define FUSEBOX_TOP_H

#include "cli.h"
#include "report.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <uv.h>

#define RING	     64	   /* counter samples kept per destination ... */
#define RING_STEP_MS 950   /* ... about one a second */
#define WINDOW_MS    10000 /* rates, failure % and counts cover this */
#define NBASE	     3	   /* latency baselines per destination ... */
#define BASE_STEP_MS 5000  /* ... this far apart: a 10 to 15 s window */
#define STATUS_MS    5000  /* how long a status message stays */
#define FILTER_MAX   64	   /* bytes of a filter */
#define PROCS_MAX    64	   /* processes named on the process line */
#define DETAIL_LINES 5	   /* the pane about the selected row */

/* The counters the viewer keeps a history of. */
enum {
	K_CALLS,
	K_FAILURES,
	K_RETRIES,
	K_REJ_BREAKER,
	K_REJ_LIMIT,
	K_REJ_RATE,
	K_REJ_BUDGET,
	NK
};

enum { SORT_NAME, SORT_RATE, SORT_FAIL, SORT_STATE };

/* Attributes of text on the screen; none at all in plain output. */
enum attr { A_NONE, A_BOLD, A_DIM, A_REV, A_OK, A_WARN, A_BAD, A_FORCED };

/* One row of the view: a rule, or one of its destinations.  Rows own
 * copies of what they show, so that a redraw needs no segment. */
struct vrow {
	bool is_rule;
	uint32_t order; /* position in the snapshot: name order */
	uint32_t group; /* the row of its rule (itself for a rule) */
	uint32_t count; /* rule rows: the address rows that follow */
	char rule[SEG_NAME_MAX + 1];
	uint8_t addr[16];
	uint16_t port;
	char addr_text[64];
	char host[SEG_HOST_MAX + 1];
	const char *state; /* a SPEC §4 state name (static) */
	int sev;	   /* how bad the state is, for sorting */
	uint64_t until_ms;
	uint32_t consecutive;
	int32_t active, pending, forced; /* rule rows */
	uint32_t max_conn, mode, scope;
	double rate; /* calls/s over the window; -1: not known yet */
	double secs; /* length of the window; 0: none yet */
	uint64_t win[NK];
	uint64_t tot[NK];
	double lat[2][2]; /* connect, first byte: p50, p99 ms; -1: none */
	float spark[RING];
	unsigned nspark;
};

/* A guarded process as the process line shows it. */
struct proc {
	uint32_t pid;
	char comm[17];
};

/* The whole state of one fusebox top. */
struct top {
	uv_loop_t loop;
	uv_timer_t timer;
	uv_tty_t in, out;
	uv_signal_t sig[4];
	bool tty;    /* full screen; else plain tables */
	bool keys;   /* stdin is a terminal we read keys from */
	bool raw;    /* its mode was changed */
	bool screen; /* the alternate screen is shown */
	bool utf8, color;
	int ret;
	char name[SEG_NAME_MAX + 8];
	uint64_t interval_ms;
	long count, done;
	/* the segment */
	struct seg seg;
	bool open;
	dev_t dev;
	ino_t ino;
	off_t size;
	uint64_t reset_gen;
	char why[256]; /* why there is no segment to show, or "" */
	/* history and view */
	struct dest **dests;
	size_t ndests;
	struct vrow *rows;
	size_t nrows, nrules, naddrs;
	uint32_t *disp;
	size_t ndisp;
	struct proc procs[PROCS_MAX];
	size_t nprocs; /* live processes, maybe more than listed */
	uint64_t now;
	/* the screen and the keys */
	int cols, lines;
	bool clear, help;
	int sort;
	bool reverse;
	char filter[FILTER_MAX + 1];
	bool prompt;
	char input[FILTER_MAX + 1];
	size_t sel, top_row;
	bool sel_rule;
	char sel_name[SEG_NAME_MAX + 1];
	uint8_t sel_addr[16];
	uint16_t sel_port;
	char status[256];
	uint64_t status_ms;
	char rbuf[256];
};

/* A growing byte buffer: one frame. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* One line being drawn: where it starts and how wide it has become. */
struct line {
	struct top *t;
	struct buf *b;
	size_t start; /* offset of the line in b */
	int col, width;
	bool sel; /* the selection bar: reverse video across the line */
};

/* Reads a clock in milliseconds. */
uint64_t top_now_ms(clockid_t id);

/* The failure share of row r over its window in percent, -1 when it had
 * no call. */
double top_fail_pct(const struct vrow *r);

/* Reads the segment into the view of t: reopens it when it changed,
 * moves the history along, rebuilds the shown rows. */
void top_refresh(struct top *t);

/* Rebuilds the list of shown rows of t after a change of the sort order
 * or the filter; the selection stays on its row. */
void top_build_disp(struct top *t);

/* Remembers which rule or destination the selection of t is on. */
void top_sel_keep(struct top *t);

/* Drops the view and the history of t (the segment went away). */
void top_drop_view(struct top *t);

/* Sets the status line of t to a message, shown for STATUS_MS. */
void top_status(struct top *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends n bytes to b; on failure marks b out of memory. */
void top_buf_add(struct buf *b, const char *s, size_t n);

/* Appends a NUL-terminated string to b. */
void top_buf_str(struct buf *b, const char *s);

/* Appends printf-style text to b. */
void top_buf_fmt(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts screen line y (1-based; plain output ignores it) of t in b, as
 * the selection bar when sel. */
void top_line_begin(struct line *l, struct top *t, struct buf *b, int y,
		    bool sel);

/* Switches the attribute of the text that follows. */
void top_line_attr(struct line *l, enum attr a);

/* Writes up to max bytes of untrusted text in at most cols columns, cut
 * with '~'; returns the columns written. */
int top_line_text(struct line *l, const char *s, size_t max, int cols);

/* Writes a NUL-terminated string, cut at the end of the line. */
void top_line_str(struct line *l, const char *s);

/* Pads the line with spaces up to column col. */
void top_line_pad(struct line *l, int col);

/* Writes s right-aligned in the w columns that start at column col. */
void top_line_right(struct line *l, int col, int w, const char *s);

/* Ends the line: the bar across the screen, the rest cleared. */
void top_line_end(struct line *l);

/* Writes a sparkline of the n values of v in cols columns, newest at
 * the right. */
void top_line_spark(struct line *l, const float *v, unsigned n, int cols);

/* Writes n bytes of a frame to standard output (an error on a pipe or
 * file ends fusebox top). */
void top_put(struct top *t, const char *p, size_t n);

/* Draws the view of t, full screen or as a plain table. */
void top_draw(struct top *t);

#endif
