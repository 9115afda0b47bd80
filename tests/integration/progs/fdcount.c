/* SPDX-License-Identifier: MIT */
/* fdcount ECHO BLACKHOLE HANG: counts this process's open fds, makes
 * guarded connections that succeed, that hit connect_timeout (blocking and
 * non-blocking) and that hit response_timeout, closes them all and counts
 * again.  Prints "fds BEFORE AFTER" and exits 0 when every call ended as
 * expected and the counts are equal. */
#include "progs.h"

#include <fcntl.h>
#include <poll.h>

#define ROUNDS 3

/* A non-blocking connect to 127.0.0.1:port that must time out: waits
 * for it with poll (up to 5 s) and checks SO_ERROR is ETIMEDOUT. */
static void nonblocking_timeout(int port)
{
	struct sockaddr_in sa = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	struct pollfd p = {.events = POLLOUT};
	socklen_t len = sizeof err;

	CHECK(fd >= 0, "socket");
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
		  errno == EINPROGRESS,
	      "non-blocking connect in progress");
	p.fd = fd;
	CHECK(poll(&p, 1, 5000) == 1, "poll ended by connect_timeout");
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0,
	      "getsockopt");
	errno = err;
	CHECK(err == ETIMEDOUT, "SO_ERROR is ETIMEDOUT");
	CHECK(close(fd) == 0, "close");
}

/* Runs ROUNDS rounds of every case between the two counts. */
int main(int argc, char **argv)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	int echo, hole, hang, before, after, fd[3 * ROUNDS], n = 0;
	char buf[64];

	if (argc != 4) {
		fprintf(stderr, "usage: fdcount ECHO BLACKHOLE HANG\n");
		return 2;
	}
	echo = atoi(argv[1]);
	hole = atoi(argv[2]);
	hang = atoi(argv[3]);
	before = open_fds();
	for (int i = 0; i < ROUNDS; i++) {
		/* a good connection, kept open until the end */
		fd[n] = dial(echo);
		CHECK(fd[n] >= 0, "connect to echo");
		CHECK(echo_check(fd[n], "hello", 5) == 0, "echo");
		n++;
		/* connect_timeout, blocking: dial closes the socket */
		CHECK(dial(hole) < 0 && errno == ETIMEDOUT,
		      "blocking connect times out");
		nonblocking_timeout(hole);
		/* response_timeout: the socket stays open until the end */
		fd[n] = dial(hang);
		CHECK(fd[n] >= 0, "connect to hang");
		CHECK(send(fd[n], req, sizeof req - 1, MSG_NOSIGNAL) ==
			  (ssize_t)sizeof req - 1,
		      "send the request");
		CHECK(recv(fd[n], buf, sizeof buf, 0) < 0 && errno == ETIMEDOUT,
		      "recv times out");
		n++;
		/* a timed-out socket duplicated, both copies kept */
		fd[n] = dup(fd[n - 1]);
		CHECK(fd[n] >= 0, "dup");
		n++;
	}
	for (int i = 0; i < n; i++)
		CHECK(close(fd[i]) == 0, "close");
	after = open_fds();
	printf("fds %d %d\n", before, after);
	return before == after && before > 0 ? 0 : 1;
}
