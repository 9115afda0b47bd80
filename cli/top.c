/* SPDX-License-Identifier: MIT */
/* fusebox top: a live view of every rule and destination of the segment.
 * On a terminal it draws the full screen with ANSI escapes, one write per
 * frame, and reads keys in raw mode; otherwise it prints a plain table at
 * each refresh.  libuv drives the timer, the keyboard and the signals:
 * this file holds them, the options and the terminal; top_model.c samples
 * the segment, top_draw.c lays out the views. */
#include "top.h"

#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

/* The refresh timer: reads, draws, and stops after -n refreshes. */
static void on_tick(uv_timer_t *h)
{
	struct top *t = h->data;

	top_refresh(t);
	top_draw(t);
	t->done++;
	if (t->count && t->done >= t->count)
		uv_stop(&t->loop);
}

/* Shows the alternate screen without a cursor. */
static void screen_enter(struct top *t)
{
	static const char s[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";

	top_put(t, s, sizeof s - 1);
	t->screen = true;
}

/* Returns to the normal screen with its cursor. */
static void screen_leave(struct top *t)
{
	static const char s[] = "\x1b[0m\x1b[?25h\x1b[?1049l";

	if (!t->screen)
		return;
	top_put(t, s, sizeof s - 1);
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
	top_draw(t);
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
		top_draw(t);
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
