/* SPDX-License-Identifier: MIT */
/* Helpers shared by the small test programs (header only: each program
 * is built from its one .c file): dialling 127.0.0.1, an echo round trip,
 * counting open fds, and reporting a failed check. */
#ifndef FUSEBOX_PROGS_H
#define FUSEBOX_PROGS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Prints a failed check with errno's text and exits 1. */
#define CHECK(cond, what)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s failed (errno %d: %s)\n",   \
				__FILE__, __LINE__, what, errno,               \
				strerror(errno));                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* The address 127.0.0.1:port. */
static inline struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

/* A blocking TCP connect to 127.0.0.1:port: the fd, or -1 with errno. */
static inline int dial(int port)
{
	struct sockaddr_in sa = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM, 0), e;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Sends len bytes of msg on fd and reads the echo back: 0, or -1 with
 * errno (EPIPE for an early EOF, EBADMSG for different bytes). */
static inline int echo_check(int fd, const void *msg, size_t len)
{
	char got[8192];
	size_t have = 0;

	if (len > sizeof got) {
		errno = EMSGSIZE;
		return -1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n =
		    send(fd, (const char *)msg + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	while (have < len) {
		ssize_t n = recv(fd, got + have, len - have, 0);
		if (n == 0)
			errno = EPIPE;
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	if (memcmp(got, msg, len)) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* Number of open fds of this process, or -1. */
static inline int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

#endif
