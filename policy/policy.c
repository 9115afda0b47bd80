/* SPDX-License-Identifier: MIT */
/* Loads a policy file: inih splits it into key/value pairs, this file
 * checks each against the key table (keys.c, global.c), reports every error
 * as FILE:LINE, and has settings.c build the effective settings of each
 * rule ([default] inherited). */
#include "policy_int.h"
#include "match.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Appends "FILE:LINE: message" to errs. */
void loader_error(struct loader *L, unsigned line, const char *fmt, ...)
{
	char msg[512], *full;
	char **grown;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line)
		n = snprintf(NULL, 0, "%s:%u: %s", L->file, line, msg);
	else
		n = snprintf(NULL, 0, "%s: %s", L->file, msg);
	if (L->keep_lines) {
		size_t k = L->errs->n - L->first_err;
		unsigned *lines =
		    realloc(L->err_lines, (k + 1) * sizeof *lines);

		if (!lines) {
			L->oom = 1;
			return;
		}
		L->err_lines = lines;
		lines[k] = line;
	}
	full = malloc((size_t)n + 1);
	grown = realloc(L->errs->msgs, (L->errs->n + 1) * sizeof *grown);
	if (!full || !grown) {
		free(full);
		if (grown)
			L->errs->msgs = grown;
		L->oom = 1;
		return;
	}
	if (line)
		snprintf(full, (size_t)n + 1, "%s:%u: %s", L->file, line, msg);
	else
		snprintf(full, (size_t)n + 1, "%s: %s", L->file, msg);
	L->errs->msgs = grown;
	L->errs->msgs[L->errs->n++] = full;
}

/* Frees the messages of errs and empties it. */
void policy_errors_free(struct policy_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

/* Edit distance of two short strings, capped for long ones. */
unsigned loader_distance(const char *a, const char *b)
{
	unsigned row[64], prev, tmp;
	size_t la = strlen(a), lb = strlen(b);

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			tmp = row[j];
			unsigned sub = prev + (a[i - 1] != b[j - 1]);
			unsigned del = row[j] + 1, ins = row[j - 1] + 1;
			row[j] = sub < del ? (sub < ins ? sub : ins)
					   : (del < ins ? del : ins);
			prev = tmp;
		}
	}
	return row[lb];
}

/* The closest of names[] to s, or NULL when none is close. */
const char *loader_suggest(const char *s, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t len = strlen(s);
	unsigned bestd = 99, limit = len > 6 ? 3 : len > 3 ? 2 : 1;

	for (size_t i = 0; i < n; i++) {
		unsigned d = loader_distance(s, names[i]);
		if (d < bestd) {
			bestd = d;
			best = names[i];
		}
	}
	return bestd <= limit ? best : NULL;
}

/* FNV-1a of a section name. */
static size_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return (size_t)h;
}

/* Puts section i into the name index, which has room. */
static void index_put(struct loader *L, size_t i)
{
	size_t slot = name_hash(L->secs[i].name) & L->sec_mask;

	while (L->sec_index[slot])
		slot = (slot + 1) & L->sec_mask;
	L->sec_index[slot] = (unsigned)i + 1;
}

/* Creates the section named name, or reports it as a duplicate.  Sections
 * grow by doubling (capacity 8, 16, ... implied by nsecs) and are found by
 * a hash of their names, so that many sections load in linear time. */
static struct section *section_add(struct loader *L, const char *name,
				   unsigned line)
{
	struct section *grown, *sec;
	size_t slot, cap;
	unsigned *index;

	for (slot = name_hash(name) & L->sec_mask;
	     L->sec_index && L->sec_index[slot];
	     slot = (slot + 1) & L->sec_mask) {
		sec = &L->secs[L->sec_index[slot] - 1];
		if (!strcmp(sec->name, name)) {
			loader_error(L, line,
				     "section [%s] is already defined at "
				     "line %u; merge the two",
				     name, sec->line);
			return NULL;
		}
	}
	if (!L->nsecs || (L->nsecs >= 8 && !(L->nsecs & (L->nsecs - 1)))) {
		cap = L->nsecs ? 2 * L->nsecs : 8;
		grown = realloc(L->secs, cap * sizeof *grown);
		index = calloc(2 * cap, sizeof *index);
		if (grown)
			L->secs = grown;
		if (!grown || !index) {
			free(index);
			L->oom = 1;
			return NULL;
		}
		free(L->sec_index);
		L->sec_index = index;
		L->sec_mask = 2 * cap - 1;
		for (size_t i = 0; i < L->nsecs; i++)
			index_put(L, i);
	}
	sec = &L->secs[L->nsecs];
	memset(sec, 0, sizeof *sec);
	snprintf(sec->name, POLICY_NAME_MAX, "%s", name);
	sec->line = line;
	sec->is_default = !strcmp(name, "default");
	index_put(L, L->nsecs++);
	return sec;
}

/* Checks a rule name: letters, digits, '_', '-', '.'. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= POLICY_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
		      *s == '.'))
			return false;
	return true;
}

/* Checks a key name of n bytes: letters, digits and '_'. */
static bool valid_key(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Forgets the keys of the unused section, and names the next one. */
static void scratch_reset(struct loader *L, const char *name, size_t n)
{
	for (size_t i = 0; i < L->scratch.nentries; i++)
		free(L->scratch.entries[i].value);
	free(L->scratch.entries);
	memset(&L->scratch, 0, sizeof L->scratch);
	if (n >= sizeof L->scratch_name)
		n = sizeof L->scratch_name - 1;
	memcpy(L->scratch_name, name, n);
	L->scratch_name[n] = 0;
	L->scratch.is_default = !strcmp(L->scratch_name, "default");
	L->scratch.line = L->line;
}

/* Sees a "[name]" line; keeps track of where keys go.  A section that
 * cannot be used still has its keys checked, so that every error shows. */
static void on_section(struct loader *L, const char *name)
{
	scratch_reset(L, name, strlen(name));
	if (!strcmp(name, "global")) {
		if (L->seen_global)
			loader_error(L, L->line,
				     "section [global] is already "
				     "defined; merge the two");
		L->seen_global = true;
		L->where = S_GLOBAL;
		return;
	}
	if (!valid_name(name)) {
		loader_error(L, L->line,
			     "[%s]: a rule name is 1 to %d letters, "
			     "digits, '_', '-' or '.'",
			     name, POLICY_NAME_MAX - 1);
		L->where = S_IGNORED;
		return;
	}
	L->where = section_add(L, name, L->line) ? S_RULE : S_IGNORED;
}

/* True when an inline "; comment" starts before the first '=' or ':' of a
 * key line: inih would then drop the line without calling the handler. */
static bool comment_before_equals(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=' || s[i] == ':')
			return false;
		if (s[i] == ';' && i && (s[i - 1] == ' ' || s[i - 1] == '\t'))
			return true;
	}
	return false;
}

/* Reports a key line whose key, the n bytes at s, is not a key name: with
 * a suggestion when it looks like a misspelt key ("connect-timeout"), else
 * with the form of a key line ("retries: 2", "match: a = b"). */
static void bad_key_name(struct loader *L, const char *s, size_t n)
{
	const char *names[POLICY_KEY_COUNT + 1], *near = NULL;
	char key[128];

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= sizeof key)
		n = sizeof key - 1;
	memcpy(key, s, n);
	key[n] = 0;
	if (!memchr(key, ':', n)) {
		if (L->where == S_GLOBAL) {
			near = loader_suggest(key, global_keys, GLOBAL_NKEYS);
		} else {
			for (int i = 0; i < POLICY_KEY_COUNT; i++)
				names[i] = policy_key_name(i);
			names[POLICY_KEY_COUNT] = "match";
			near = loader_suggest(key, names, POLICY_KEY_COUNT + 1);
		}
	}
	if (near)
		loader_error(L, L->line,
			     "'%s' is not a key name; did you mean '%s'?", key,
			     near);
	else
		loader_error(L, L->line,
			     "'%s' is not a key name; write key = value", key);
}

/* Checks the key of a key line of n bytes at s: true when inih may have
 * it, else the error is reported. */
static bool check_key_line(struct loader *L, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n), *colon = memchr(s, ':', n);
	size_t k;

	if (comment_before_equals(s, n))
		goto malformed;
	if (!eq) {
		/* "retries: 2": a key, then ':' instead of '=' */
		if (!colon || !valid_key(s, (size_t)(colon - s)))
			goto malformed;
		for (k = 0; k + 1 < n; k++)
			if (s[k + 1] == ';' && (s[k] == ' ' || s[k] == '\t'))
				break;
		bad_key_name(L, s, k + 1 < n ? k : n);
		return false;
	}
	k = (size_t)(eq - s);
	while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	if (!valid_key(s, k)) {
		bad_key_name(L, s, k);
		return false;
	}
	return true;
malformed:
	loader_error(L, L->line,
		     "expected 'key = value', a [section] or a ; comment");
	return false;
}

/* Feeds inih one line at a time (so that this file knows the line number),
 * with leading blanks removed (no inih continuation lines) and section
 * headers and malformed lines handled here, so every error is reported.
 * A UTF-8 byte order mark before the first line is skipped. */
static char *reader(char *str, int num, void *stream)
{
	struct loader *L = stream;
	const char *start, *end, *p;
	size_t n;

	if (!*L->pos)
		return NULL;
	start = L->pos;
	end = strchr(start, '\n');
	if (!end)
		end = start + strlen(start);
	L->pos = *end ? end + 1 : end;
	L->line++;
	str[0] = '\0';
	if (L->line == 1 && !strncmp(start, "\xef\xbb\xbf", 3))
		start += 3;
	n = (size_t)(end - start);
	if (n && start[n - 1] == '\r')
		n--;
	while (n && (*start == ' ' || *start == '\t')) {
		start++;
		n--;
	}
	if (n == 0 || *start == ';' || *start == '#')
		return str;
	if (*start == '[') {
		char name[128];
		const char *close = memchr(start, ']', n);
		size_t k;

		p = close ? close + 1 : NULL;
		while (p && p < start + n && (*p == ' ' || *p == '\t'))
			p++;
		if (!close || (p < start + n && *p != ';' && *p != '#')) {
			loader_error(L, L->line,
				     "malformed section header; write "
				     "[name]");
			/* its keys are checked under the name it seems to
			 * have */
			k = close ? (size_t)(close - start - 1) : n - 1;
			while (k && (start[k] == ' ' || start[k] == '\t'))
				k--;
			scratch_reset(L, start + 1, k);
			L->where = S_IGNORED;
			return str;
		}
		k = (size_t)(close - start - 1);
		if (k >= sizeof name)
			k = sizeof name - 1;
		memcpy(name, start + 1, k);
		name[k] = 0;
		on_section(L, name);
		return str;
	}
	if (!check_key_line(L, start, n))
		return str;
	if (n >= (size_t)num - 1) {
		loader_error(L, L->line,
			     "line is longer than %d characters; "
			     "split a long 'match' over several match lines",
			     num - 2);
		return str;
	}
	/* inih sees "[s]\n" style state only through our where: pass key
	 * lines under a fixed section name. */
	memcpy(str, start, n);
	str[n] = '\n';
	str[n + 1] = 0;
	return str;
}

/* Reports one bad pattern of the "match" line being read. */
static void report_match(void *ctx, const char *why)
{
	struct loader *L = ctx;

	loader_error(L, L->line, "match: %s", why);
}

/* inih callback: one "name = value" line. */
static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct loader *L = user;
	struct section *sec;
	struct entry *grown;
	struct policy_settings scratch;
	const char *why, *shown;
	char buf[256];
	int k;

	(void)section;
	switch (L->where) {
	case S_NONE:
		loader_error(L, L->line,
			     "'%s' is outside any section; put it "
			     "under [global], [default] or a rule",
			     name);
		return 1;
	case S_GLOBAL:
		global_set(L, name, value);
		return 1;
	case S_IGNORED:
		sec = &L->scratch;
		shown = L->scratch_name;
		break;
	case S_RULE:
	default:
		sec = &L->secs[L->nsecs - 1];
		shown = sec->name;
		break;
	}
	if (!strcmp(name, "match")) {
		if (sec->is_default) {
			loader_error(L, L->line,
				     "'match' is not allowed in "
				     "[default]; put it in a rule section");
			return 1;
		}
		sec->has_match = true;
		if (L->where == S_RULE) {
			if (match_parse(L->p, L->nsecs - 1, value, L->line,
					report_match, L) < 0)
				L->oom = 1;
		} else {
			/* checked, then thrown away with the section */
			struct policy tmp = {0};

			if (match_parse(&tmp, 0, value, L->line, report_match,
					L) < 0)
				L->oom = 1;
			match_free(&tmp);
		}
		return 1;
	}
	k = keys_index(name);
	if (k < 0) {
		const char *names[POLICY_KEY_COUNT + 1];
		const char *s;
		for (int i = 0; i < POLICY_KEY_COUNT; i++)
			names[i] = policy_key_name(i);
		names[POLICY_KEY_COUNT] = "match";
		s = loader_suggest(name, names, POLICY_KEY_COUNT + 1);
		if (s)
			loader_error(L, L->line,
				     "unknown key '%s' in [%s]; did "
				     "you mean '%s'?",
				     name, shown, s);
		else
			loader_error(L, L->line,
				     "unknown key '%s' in [%s]; see "
				     "fusebox.ini(5) for the keys",
				     name, shown);
		return 1;
	}
	for (size_t i = 0; i < sec->nentries; i++)
		if (sec->entries[i].key == (enum policy_key)k) {
			loader_error(L, L->line,
				     "duplicate key '%s' in [%s] "
				     "(first set at line %u); remove one",
				     name, shown, sec->entries[i].line);
			return 1;
		}
	policy_settings_init(&scratch);
	why = keys_apply(&scratch, k, value, buf, sizeof buf);
	if (why) {
		loader_error(L, L->line, "%s: %s", name, why);
		return 1;
	}
	grown = realloc(sec->entries, (sec->nentries + 1) * sizeof *grown);
	if (!grown) {
		L->oom = 1;
		return 1;
	}
	sec->entries = grown;
	grown[sec->nentries].key = k;
	grown[sec->nentries].line = L->line;
	grown[sec->nentries].value = strdup(value);
	if (!grown[sec->nentries].value)
		L->oom = 1;
	else
		sec->nentries++;
	return 1;
}

/* One error of this load, for sorting: its line, then its position. */
struct err_ref {
	unsigned line;
	size_t pos;
	char *msg;
};

/* qsort comparator: by line, then in the order found (a stable sort). */
static int err_ref_cmp(const void *x, const void *y)
{
	const struct err_ref *a = x, *b = y;

	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Puts the errors of this load in line order, keeping every one; errors
 * found at the same line stay in the order they were found. */
static void sort_errors(struct loader *L)
{
	size_t n = L->errs->n - L->first_err;
	struct err_ref *refs;

	if (n < 2 || !L->err_lines)
		return;
	refs = malloc(n * sizeof *refs);
	if (!refs) {
		L->oom = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		refs[i].line = L->err_lines[i];
		refs[i].pos = i;
		refs[i].msg = L->errs->msgs[L->first_err + i];
	}
	qsort(refs, n, sizeof *refs, err_ref_cmp);
	for (size_t i = 0; i < n; i++) {
		L->errs->msgs[L->first_err + i] = refs[i].msg;
		L->err_lines[i] = refs[i].line;
	}
	free(refs);
}

/* Same as policy_load, from a string; name is what errors call the file. */
struct policy *policy_load_string(const char *name, const char *text,
				  struct policy_errors *errs)
{
	struct loader L = {0};
	struct policy *p = calloc(1, sizeof *p);
	size_t before = errs->n;

	L.file = name;
	L.text = L.pos = text;
	L.errs = errs;
	L.first_err = before;
	L.keep_lines = true;
	L.p = p;
	if (!p || !(p->path = strdup(name)))
		goto oom;
	snprintf(p->segment, sizeof p->segment, "fusebox-%%u");
	p->log = POLICY_LOG_WARN;
	p->reload_ms = 2000;
	/* Every line goes through reader(); inih only splits key = value. */
	ini_parse_stream(reader, &L, handler, &L);
	settings_finish(&L);
	if (!L.oom && errs->n == before && match_build(p) < 0)
		L.oom = 1;
	for (size_t i = 0; i < L.nsecs; i++) {
		for (size_t j = 0; j < L.secs[i].nentries; j++)
			free(L.secs[i].entries[j].value);
		free(L.secs[i].entries);
	}
	free(L.secs);
	free(L.sec_index);
	scratch_reset(&L, "", 0);
	sort_errors(&L);
	free(L.err_lines);
	L.keep_lines = false;
	if (L.oom)
		goto oom;
	if (errs->n != before) {
		policy_free(p);
		return NULL;
	}
	return p;
oom:
	loader_error(&L, 0, "out of memory");
	policy_free(p);
	return NULL;
}

#define POLICY_FILE_MAX (64u << 20) /* a policy file is far smaller */

/* Parses the file at path; returns a new policy, or NULL with every error
 * appended to errs. */
struct policy *policy_load(const char *path, struct policy_errors *errs)
{
	struct loader L = {.file = path, .errs = errs};
	struct policy *p = NULL;
	char *text = NULL;
	size_t len = 0, cap = 0, n, before = errs->n;
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f) {
		loader_error(&L, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* a regular file is measured first; a pipe as it is read */
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size > POLICY_FILE_MAX)
		goto too_big;
	for (;;) {
		if (cap - len < 4096) {
			char *g = realloc(text, cap ? cap * 2 : 8192);
			if (!g)
				goto out;
			text = g;
			cap = cap ? cap * 2 : 8192;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (len > POLICY_FILE_MAX)
			goto too_big;
		if (n == 0)
			break;
	}
	if (ferror(f) || memchr(text, 0, len)) {
		loader_error(
		    &L, 0,
		    ferror(f) ? "read error"
			      : "contains a NUL byte; is this a policy file?");
		goto out;
	}
	text[len] = 0;
	p = policy_load_string(path, text, errs);
	goto out;
too_big:
	loader_error(&L, 0, "larger than 64 MiB; is this a policy file?");
out:
	if (!p && errs->n == before)
		loader_error(&L, 0, "out of memory");
	free(text);
	fclose(f);
	return p;
}

/* Frees a policy; NULL does nothing. */
void policy_free(struct policy *p)
{
	if (!p)
		return;
	match_free(p);
	free(p->rules);
	free(p->path);
	free(p);
}
