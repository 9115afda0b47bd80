/* SPDX-License-Identifier: MIT */
/* errno PORT: sets errno to EDOM before each call on a guarded socket to
 * the echo fixture that succeeds (the first connect loads the policy) and
 * checks that the call left it alone, as libc does; prints "ok", or the
 * calls that changed errno. */
#include "progs.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/uio.h>

static int bad;

/* Reports when errno is not EDOM any more after the call named what. */
static void kept(const char *what, int ok)
{
	int e = errno;

	if (!ok) {
		printf("%s failed: %s\n", what, strerror(e));
		bad++;
	} else if (e != EDOM) {
		printf("%s succeeded but set errno to %d (%s)\n", what, e,
		       strerror(e));
		bad++;
	}
}

#define TRY(call, ok_if)                                                       \
	do {                                                                   \
		errno = EDOM;                                                  \
		long r_ = (long)(call);                                        \
		kept(#call, ok_if);                                            \
		(void)r_;                                                      \
	} while (0)

/* Runs every call once on a blocking socket, then a non-blocking connect. */
int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct timeval tv = {5, 0};
	char buf[16];
	struct iovec iov = {buf, 4};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fd, d, on = 1, off = 0, err;
	socklen_t len = sizeof err;

	if (argc != 2) {
		fprintf(stderr, "usage: errno PORT\n");
		return 2;
	}
	sa = loopback(atoi(argv[1]));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket");
	TRY(connect(fd, (struct sockaddr *)&sa, sizeof sa), r_ == 0);
	TRY(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), r_ == 0);
	TRY(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), r_ == 0);
	TRY(send(fd, "abcd", 4, 0), r_ == 4);
	TRY(recv(fd, buf, 4, MSG_WAITALL), r_ == 4);
	TRY(write(fd, "efgh", 4), r_ == 4);
	TRY(read(fd, buf, 4), r_ == 4);
	TRY(sendmsg(fd, &mh, 0), r_ == 4);
	TRY(recvmsg(fd, &mh, MSG_WAITALL), r_ == 4);
	TRY(writev(fd, &iov, 1), r_ == 4);
	TRY(readv(fd, &iov, 1), r_ == 4);
	TRY(sendto(fd, "ijkl", 4, 0, NULL, 0), r_ == 4);
	TRY(recvfrom(fd, buf, 4, MSG_WAITALL, NULL, NULL), r_ == 4);
	TRY(fcntl(fd, F_GETFL), r_ >= 0);
	TRY(fcntl(fd, F_SETFL, O_NONBLOCK), r_ == 0);
	TRY(ioctl(fd, FIONBIO, &off), r_ == 0);
	TRY(ioctl(fd, FIONBIO, &on), r_ == 0);
	TRY(fcntl(fd, F_SETFL, 0), r_ == 0);
	TRY(d = dup(fd), r_ >= 0);
	TRY(dup2(fd, d), r_ == d);
	TRY(dup3(fd, d, O_CLOEXEC), r_ == d);
	TRY(close(d), r_ == 0);
	TRY(d = fcntl(fd, F_DUPFD_CLOEXEC, 0), r_ >= 0);
	TRY(close(d), r_ == 0);
	TRY(close(fd), r_ == 0);
	/* a non-blocking connect: EINPROGRESS, then success */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(fd >= 0, "socket");
	errno = EDOM;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
	    errno == EINPROGRESS) {
		struct pollfd p = {fd, POLLOUT, 0};
		CHECK(poll(&p, 1, 5000) == 1, "poll");
	}
	TRY(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), r_ == 0);
	CHECK(err == 0, "non-blocking connect");
	TRY(send(fd, "mnop", 4, 0), r_ == 4);
	TRY(close(fd), r_ == 0);
	if (bad)
		return 1;
	printf("ok\n");
	return 0;
}
