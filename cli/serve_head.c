/* SPDX-License-Identifier: MIT */
/* fusebox serve: the parser of a request head, for clients that are not
 * trusted (strict: a malformed head is refused, never guessed at). */
#include "serve.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Says whether ch may be in a token (a method or header name). */
static bool tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch);
}

/* Says whether the comma-separated header value v (n bytes) lists tok,
 * case-insensitively. */
static bool has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	while (n) {
		size_t i = 0, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		v += i;
		n -= i;
		for (e = 0; e < n && v[e] != ','; e++)
			;
		i = e;
		while (i && (v[i - 1] == ' ' || v[i - 1] == '\t'))
			i--;
		if (i == tl && !strncasecmp(v, tok, tl))
			return true;
		v += e;
		n -= e;
	}
	return false;
}

/* Parses the request head h (n bytes, lines ending in "\r\n" or "\n",
 * without the empty line) into q; false when it is malformed. */
bool serve_parse_head(const char *h, size_t n, struct request *q)
{
	const char *end = h + n, *p = h, *sp, *eol;

	memset(q, 0, sizeof *q);
	eol = memchr(p, '\n', n);
	if (!eol)
		eol = end;
	/* METHOD SP TARGET SP HTTP/1.x */
	for (sp = p; sp < eol && tchar((unsigned char)*sp); sp++)
		;
	if (sp == p || sp >= eol || *sp != ' ' || sp - p > 16)
		return false;
	q->method = p;
	q->method_len = (size_t)(sp - p);
	p = sp + 1;
	for (sp = p; sp < eol && (unsigned char)*sp > ' ' && *sp != 0x7f; sp++)
		;
	if (sp == p || sp >= eol || *sp != ' ')
		return false;
	q->path = p;
	q->path_len = (size_t)(sp - p);
	p = sp + 1;
	if (eol - p == 9 && p[8] == '\r')
		; /* "HTTP/1.x\r" */
	else if (eol - p != 8)
		return false;
	if (strncmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1'))
		return false;
	q->http10 = p[7] == '0';
	/* header fields: NAME ":" VALUE */
	for (p = eol + 1; p < end; p = eol + 1) {
		const char *colon, *v, *ve;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		ve = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		for (colon = p; colon < ve && tchar((unsigned char)*colon);
		     colon++)
			;
		if (colon == p || colon >= ve || *colon != ':')
			return false; /* also obsolete line folding */
		for (v = colon + 1; v < ve; v++)
			if (((unsigned char)*v < ' ' && *v != '\t') ||
			    *v == 0x7f)
				return false;
		v = colon + 1;
		if (colon - p == 10 && !strncasecmp(p, "Connection", 10)) {
			q->close |= has_token(v, (size_t)(ve - v), "close");
			q->keep_alive |=
			    has_token(v, (size_t)(ve - v), "keep-alive");
		} else if ((colon - p == 14 &&
			    !strncasecmp(p, "Content-Length", 14)) ||
			   (colon - p == 17 &&
			    !strncasecmp(p, "Transfer-Encoding", 17))) {
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			q->has_body |= v == ve || *v != '0' || ve - v > 1;
		}
	}
	return true;
}
