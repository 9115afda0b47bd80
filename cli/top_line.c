/* SPDX-License-Identifier: MIT */
/* fusebox top: the line writer under its views.  A frame is one growing
 * buffer; a line in it takes untrusted text cut to its columns,
 * attributes (ANSI on a terminal, none in plain output) and sparklines. */
#include "top.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Appends n bytes to b; on failure marks b out of memory. */
void top_buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* Appends a NUL-terminated string to b. */
void top_buf_str(struct buf *b, const char *s)
{
	top_buf_add(b, s, strlen(s));
}

/* Appends printf-style text to b. */
void top_buf_fmt(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		top_buf_add(b, tmp,
			    (size_t)n < sizeof tmp ? (size_t)n
						   : sizeof tmp - 1);
}

/* Takes one character of untrusted text at p (n > 0 bytes left): returns
 * the bytes it spans, its columns in *w, and in *ok whether it can be
 * shown as is (else it is shown as '?': a control character, a byte that
 * is not UTF-8, or what this locale cannot show). */
static size_t next_char(const struct top *t, const unsigned char *p, size_t n,
			int *w, bool *ok)
{
	uint32_t cp;
	size_t len = report_utf8_len(p, n, &cp);

	*w = 1;
	*ok = false;
	if (!len)
		return 1;
	if (cp < 0x20 || cp == 0x7f)
		return len;
	if (cp < 0x80) {
		*ok = true;
		return len;
	}
	if (!t->utf8 || cp < 0xa0)
		return len;
	int cw = wcwidth((wchar_t)cp);
	if (cw == 1 || cw == 2) {
		*w = cw;
		*ok = true;
	}
	return len;
}

/* Columns that n bytes of untrusted text take. */
static int text_width(const struct top *t, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	int total = 0, w;
	bool ok;

	while (n) {
		size_t len = next_char(t, p, n, &w, &ok);

		total += w;
		p += len;
		n -= len;
	}
	return total;
}

/* Starts screen line y (1-based; plain output ignores it). */
void top_line_begin(struct line *l, struct top *t, struct buf *b, int y,
		    bool sel)
{
	l->t = t;
	l->b = b;
	l->col = 0;
	l->width = t->cols;
	l->sel = sel && t->tty;
	if (t->tty)
		top_buf_fmt(b, "\x1b[%d;1H\x1b[0%sm", y, l->sel ? ";7" : "");
	l->start = b->len;
}

/* Switches the attribute of the text that follows. */
void top_line_attr(struct line *l, enum attr a)
{
	static const char *const color[] = {"",	  "1",	"2",	"7",
					    "32", "33", "1;31", "1;35"};
	static const char *const mono[] = {"", "1", "2", "7", "", "", "1", "1"};
	const char *s;

	if (!l->t->tty)
		return;
	s = (l->t->color ? color : mono)[a];
	top_buf_fmt(l->b, "\x1b[0%s%s%sm", l->sel ? ";7" : "", *s ? ";" : "",
		    s);
}

/* Writes up to max bytes of untrusted text in at most cols columns (and
 * what is left of the line); longer text is cut and ends in '~'.
 * Returns the columns written. */
int top_line_text(struct line *l, const char *s, size_t max, int cols)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strnlen(s, max);
	int total, used = 0, w;
	bool ok;

	if (cols > l->width - l->col)
		cols = l->width - l->col;
	if (cols <= 0)
		return 0;
	total = text_width(l->t, s, n);
	while (n) {
		size_t len = next_char(l->t, p, n, &w, &ok);

		if (used + w > (total > cols ? cols - 1 : cols))
			break;
		if (ok)
			top_buf_add(l->b, (const char *)p, len);
		else
			top_buf_add(l->b, "?", 1);
		used += w;
		p += len;
		n -= len;
	}
	if (total > cols) {
		top_buf_add(l->b, "~", 1);
		used++;
	}
	l->col += used;
	return used;
}

/* Writes a NUL-terminated string, cut at the end of the line. */
void top_line_str(struct line *l, const char *s)
{
	top_line_text(l, s, strlen(s), l->width);
}

/* Pads the line with spaces up to column col. */
void top_line_pad(struct line *l, int col)
{
	if (col > l->width)
		col = l->width;
	while (l->col < col) {
		top_buf_add(l->b, " ", 1);
		l->col++;
	}
}

/* Writes s right-aligned in the w columns that start at column col. */
void top_line_right(struct line *l, int col, int w, const char *s)
{
	int n = text_width(l->t, s, strlen(s));

	top_line_pad(l, col + (n < w ? w - n : 0));
	top_line_text(l, s, strlen(s), w);
}

/* Ends the line: the bar across the screen, the rest of the line
 * cleared; plain output drops trailing spaces. */
void top_line_end(struct line *l)
{
	if (!l->t->tty) {
		while (l->b->len > l->start && l->b->p[l->b->len - 1] == ' ')
			l->b->len--;
		top_buf_add(l->b, "\n", 1);
		return;
	}
	if (l->sel)
		top_line_pad(l, l->width);
	top_buf_str(l->b, "\x1b[0m");
	/* at the last column the cursor waits to wrap; EL would erase it */
	if (l->col < l->width)
		top_buf_str(l->b, "\x1b[K");
}

/* Writes a sparkline of the last values of v (n of them) in cols
 * columns, newest at the right, scaled to the largest shown. */
void top_line_spark(struct line *l, const float *v, unsigned n, int cols)
{
	static const char ascii[] = " .:-=+*#";
	float max = 0;
	unsigned from;

	if (cols > l->width - l->col)
		cols = l->width - l->col;
	if (cols <= 0)
		return;
	from = n > (unsigned)cols ? n - (unsigned)cols : 0;
	for (unsigned i = from; i < n; i++)
		if (v[i] > max)
			max = v[i];
	top_line_pad(l, l->col + cols - (int)(n - from));
	for (unsigned i = from; i < n; i++) {
		int level = 0;

		if (v[i] > 0 && max > 0)
			level = 1 + (int)(v[i] / max * 6.999f);
		if (level > 7)
			level = 7;
		if (l->t->utf8) {
			char c[3] = {'\xe2', '\x96', (char)(0x81 + level)};
			top_buf_add(l->b, c, 3);
		} else {
			top_buf_add(l->b, &ascii[level], 1);
		}
		l->col++;
	}
}
