/* SPDX-License-Identifier: MIT */
/* The wall-clock load generator of bench/wall.sh: COUNT round trips of
 * 64 bytes each way on each of CONNECTIONS connections (threads), or
 * COUNT connect + one round trip + close cycles per thread; it prints the
 * elapsed seconds.  `serve` is the echo server it talks to, run in its
 * own process (never under the shim); `port` prints a free port. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WALL_MSG      64   /* bytes of a request, and of its reply */
#define WALL_MAX_CONN 256  /* most client threads */
#define WALL_LIFETIME 600  /* seconds a server lives unless told */
#define WALL_IO_MS    5000 /* longest wait of one send or receive */

enum wall_mode {
	WALL_RR, /* round trips on connections kept open */
	WALL_CC, /* connect, one round trip, close */
};

struct worker {
	pthread_t thread;
	const struct addrinfo *ai;
	enum wall_mode mode;
	long count;
	int fd; /* WALL_RR: connected before the clock starts */
};

static pthread_barrier_t start;

/* Fails loudly: a benchmark that silently measures nothing is worse. */
static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected TCP socket to ai, Nagle off and receives bounded. */
static int dial(const struct addrinfo *ai)
{
	struct timeval tv = {WALL_IO_MS / 1000, 0};
	int one = 1;
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return fd;
}

/* Sends WALL_MSG bytes on fd and reads the WALL_MSG of the echo. */
static void round_trip(int fd)
{
	char buf[WALL_MSG];
	size_t got = 0;

	memset(buf, 'x', sizeof buf);
	if (send(fd, buf, sizeof buf, MSG_NOSIGNAL) != (ssize_t)sizeof buf)
		die("send");
	while (got < sizeof buf) {
		ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
		if (n <= 0)
			die(n == 0 ? "recv: closed early" : "recv");
		got += (size_t)n;
	}
}

/* One client thread: its connection first (WALL_RR), then the start
 * line, then its count of operations. */
static void *work(void *arg)
{
	struct worker *w = arg;

	if (w->mode == WALL_RR)
		w->fd = dial(w->ai);
	pthread_barrier_wait(&start);
	for (long i = 0; i < w->count; i++) {
		if (w->mode == WALL_RR) {
			round_trip(w->fd);
			continue;
		}
		int fd = dial(w->ai);
		round_trip(fd);
		close(fd);
	}
	if (w->mode == WALL_RR)
		close(w->fd);
	return NULL;
}

/* The load: conns threads against host:port; prints elapsed seconds,
 * from all threads ready to all done. */
static int client(const char *host, const char *port, enum wall_mode mode,
		  long count, int conns)
{
	static struct worker w[WALL_MAX_CONN];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai;
	double t0;
	int rc = getaddrinfo(host, port, &hints, &ai);

	if (rc) {
		fprintf(stderr, "bench-wall: %s: %s\n", host, gai_strerror(rc));
		return 1;
	}
	if (pthread_barrier_init(&start, NULL, (unsigned)conns + 1))
		die("pthread_barrier_init");
	for (int i = 0; i < conns; i++) {
		w[i] = (struct worker){.ai = ai, .mode = mode, .count = count};
		if (pthread_create(&w[i].thread, NULL, work, &w[i]))
			die("pthread_create");
	}
	pthread_barrier_wait(&start);
	t0 = now();
	for (int i = 0; i < conns; i++)
		pthread_join(w[i].thread, NULL);
	printf("%.6f\n", now() - t0);
	freeaddrinfo(ai);
	return 0;
}

/* A listener on 127.0.0.1:port (0: any); *sa receives its address. */
static int listener(long port, struct sockaddr_in *sa)
{
	socklen_t len = sizeof *sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0 ||
	    listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)sa, &len) < 0)
		die("listen");
	return fd;
}

/* Writes all of buf to the non-blocking fd; -1 when the peer is gone or
 * stuck for WALL_IO_MS. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, WALL_IO_MS) <= 0)
			return -1;
	}
	return 0;
}

/* Accepts every pending connection on l into the epoll set ep. */
static void accept_all(int l, int ep)
{
	for (;;) {
		int one = 1;
		int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			close(fd);
	}
}

/* The echo server: one thread, epoll, every connection answered with
 * what it sent; prints its port, exits after lifetime seconds. */
static int serve(long port, double lifetime)
{
	struct sockaddr_in sa;
	struct epoll_event evs[64];
	char buf[16384];
	int l = listener(port, &sa);
	int ep = epoll_create1(0);
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = l};
	double end = now() + lifetime;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev) < 0)
		die("epoll");
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	while (now() < end) {
		int n = epoll_wait(ep, evs, 64, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l) {
				accept_all(l, ep);
				continue;
			}
			ssize_t got = recv(fd, buf, sizeof buf, 0);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got <= 0 || write_all(fd, buf, (size_t)got) < 0)
				close(fd); /* leaves the epoll set with it */
		}
	}
	return 0;
}

/* Prints a port of 127.0.0.1 free at this instant (for haproxy). */
static int free_port(void)
{
	struct sockaddr_in sa;
	int l = listener(0, &sa);

	printf("%d\n", ntohs(sa.sin_port));
	close(l);
	return 0;
}

int main(int argc, char **argv)
{
	long count;
	int conns;

	if (argc >= 2 && !strcmp(argv[1], "serve") && argc <= 4)
		return serve(argc > 2 ? atol(argv[2]) : 0,
			     argc > 3 ? atof(argv[3]) : WALL_LIFETIME);
	if (argc == 2 && !strcmp(argv[1], "port"))
		return free_port();
	if (argc != 6 || (strcmp(argv[3], "rr") && strcmp(argv[3], "cc")))
		goto usage;
	count = atol(argv[4]);
	conns = atoi(argv[5]);
	if (count < 1 || conns < 1 || conns > WALL_MAX_CONN)
		goto usage;
	return client(argv[1], argv[2], argv[3][0] == 'r' ? WALL_RR : WALL_CC,
		      count, conns);
usage:
	fprintf(stderr,
		"usage: bench-wall HOST PORT rr|cc COUNT CONNECTIONS\n"
		"       bench-wall serve [PORT [SECONDS]]\n"
		"       bench-wall port\n"
		"rr: COUNT round trips of %d bytes on each connection; "
		"cc: COUNT connect, round trip, close per connection.\n"
		"Prints the elapsed seconds.\n",
		WALL_MSG);
	return 2;
}
