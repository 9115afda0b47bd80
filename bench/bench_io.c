/* SPDX-License-Identifier: MIT */
/* The workload that bench/callgrind.sh counts instructions of: a TCP
 * connection over loopback inside one process, then N send+recv pairs on
 * the connected (guardable) socket, on the accepted (never guarded) one,
 * N connect+close, or N refused connects.  Run with and without the shim, twice
 * with different N, the difference is what the shim adds per iteration. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A thread that only waits: with it the program is multi-threaded
 * before the shim starts one, so libc's send() and recv() take their
 * cancellable path with or without the shim. */
static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Fails loudly: a benchmark that silently measures nothing is worse. */
static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* A listener on 127.0.0.1:0; *sa receives its address. */
static int listener(struct sockaddr_in *sa)
{
	socklen_t len = sizeof *sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)sa, &len) < 0)
		die("listen");
	return fd;
}

/* Moves one byte each way n times on fd after the peer queued n bytes. */
static void pingpong(int fd, int peer, long n)
{
	char buf[4096];

	memset(buf, 'x', sizeof buf);
	for (long left = n; left > 0; left -= (long)sizeof buf)
		if (send(peer, buf, left < 4096 ? (size_t)left : 4096, 0) < 0)
			die("fill");
	for (long i = 0; i < n; i++) {
		if (send(fd, buf, 1, 0) != 1)
			die("send");
		if (recv(fd, buf, 1, 0) != 1)
			die("recv");
	}
}

/* n HTTP/1.1 requests and replies on fd, the peer's n replies queued
 * first (a reader thread would add its own cost): a GET of 30 bytes,
 * a 200 of 38. */
static void http_pairs(int fd, int peer, long n)
{
	static const char req[] = "GET /b HTTP/1.1\r\nHost: bench\r\n\r\n";
	static const char rep[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	char buf[4096];

	for (long i = 0; i < n; i++)
		if (send(peer, rep, sizeof rep - 1, 0) != sizeof rep - 1)
			die("fill");
	for (long i = 0; i < n; i++) {
		if (send(fd, req, sizeof req - 1, 0) != sizeof req - 1)
			die("send");
		if (recv(fd, buf, sizeof rep - 1, MSG_WAITALL) !=
		    sizeof rep - 1)
			die("recv");
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	long n;
	int l, c, s;

	if (argc != 3) {
		fprintf(stderr, "usage: bench-io guarded|unguarded|http|"
				"connect|refused[-mt] N\n");
		return 2;
	}
	n = atol(argv[2]);
	/* WORKLOAD-mt: the same in a program that has a second thread */
	size_t wl = strlen(argv[1]);
	if (wl > 3 && !strcmp(argv[1] + wl - 3, "-mt")) {
		pthread_t t;
		argv[1][wl - 3] = 0;
		if (pthread_create(&t, NULL, idle, NULL) != 0)
			die("pthread_create");
	}
	l = listener(&sa);
	if (!strcmp(argv[1], "refused")) {
		/* a port nobody listens on: every connect is refused, by the
		 * kernel or, once a breaker is open, by fusebox */
		struct sockaddr_in closed;
		int t = listener(&closed);
		close(t);
		for (long i = 0; i < n; i++) {
			c = socket(AF_INET, SOCK_STREAM, 0);
			if (c < 0 || connect(c, (struct sockaddr *)&closed,
					     sizeof closed) == 0)
				die("refused connect succeeded");
			close(c);
		}
		return 0;
	}
	if (!strcmp(argv[1], "connect")) {
		for (long i = 0; i < n; i++) {
			c = socket(AF_INET, SOCK_STREAM, 0);
			if (c < 0 ||
			    connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
				die("connect");
			s = accept(l, NULL, NULL);
			if (s < 0)
				die("accept");
			close(c);
			close(s);
		}
		return 0;
	}
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	if (!strcmp(argv[1], "http")) {
		int big = 1 << 22;
		setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
		setsockopt(c, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		http_pairs(c, s, n);
	} else if (!strcmp(argv[1], "guarded"))
		pingpong(c, s, n);
	else
		pingpong(s, c, n);
	return 0;
}
