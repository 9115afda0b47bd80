/* SPDX-License-Identifier: MIT */
/* Stdio streams on guarded sockets.  A program that wraps its socket in
 * a stream (busybox wget: fdopen, then fprintf, fgets, fread) has its
 * bytes moved by glibc's internal read and write, which no hook sees: no
 * timeout would fire, no call would be counted, and a half-open probe
 * would never end.  fdopen() of a guarded socket returns a stream whose
 * reads, writes and close go through the hooks instead: a fopencookie()
 * stream over the descriptor that still answers fileno() with it, so the
 * program may poll it as before.  Unguarded descriptors get glibc's
 * fdopen(). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The cookie is the descriptor itself: no allocation. */
static ssize_t cookie_read(void *cookie, char *buf, size_t n)
{
	return read((int)(intptr_t)cookie, buf, n); /* our hook */
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
	ssize_t w = write((int)(intptr_t)cookie, buf, n); /* our hook */

	/* glibc takes 0 for an error that sets no flag: say it */
	return w == 0 && n ? -1 : w;
}

static int cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie); /* ends the call */
}

/* True when fd is a socket that a live slot guards, by its inode (the
 * number may name another file since). */
static bool guarded(int fd)
{
	struct conn *c = fdt_get(fd);
	struct stat st;

	return c && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == c->ino;
}

EXPORT FILE *fdopen(int fd, const char *mode)
{
	static const cookie_io_functions_t io = {
	    .read = cookie_read, .write = cookie_write, .close = cookie_close};
	int saved = errno, fl;
	FILE *f;

	if (!mode || !guarded(fd) || (fl = real.fcntl(fd, F_GETFL)) < 0) {
		errno = saved;
		return real.fdopen(fd, mode);
	}
	/* what glibc's fdopen checks: the mode fits the descriptor */
	if ((mode[0] == 'r' && !strchr(mode, '+') &&
	     (fl & O_ACCMODE) == O_WRONLY) ||
	    ((mode[0] != 'r' || strchr(mode, '+')) &&
	     (fl & O_ACCMODE) == O_RDONLY) ||
	    !strchr("rwa", mode[0])) {
		errno = EINVAL;
		return NULL;
	}
	f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (!f) {
		errno = saved;
		return real.fdopen(fd, mode);
	}
	/* glibc marks a cookie stream with -2 (open, no descriptor); the
	 * descriptor instead makes fileno() answer it, and nothing else of
	 * the stream reads this field: its I/O is the cookie's */
	f->_fileno = fd;
	if (strchr(mode, 'e'))
		real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	errno = saved;
	return f;
}
