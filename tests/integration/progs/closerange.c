/* SPDX-License-Identifier: MIT */
/* closerange ECHO HANG: a guarded socket to the hang fixture that the
 * policy's response_timeout has aborted (the program has not been told
 * yet) is closed with close_range(2); its fd number, reused by a regular
 * file, must work as any file does.  Then sockets to the echo fixture are
 * closed by close_range with CLOSE_RANGE_CLOEXEC and by a wide range;
 * prints "ok" when all went right. */
#include "progs.h"

#include <fcntl.h>
#include <time.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define FILE_LEN 65536

/* Sleeps ms milliseconds. */
static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Writes FILE_LEN pattern bytes to fd, waits, reads them back. */
static void file_round_trip(int fd)
{
	static char out[FILE_LEN], in[FILE_LEN];
	size_t have = 0;

	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (char)(i * 31 + 7);
	for (size_t off = 0; off < sizeof out;) {
		ssize_t n = write(fd, out + off, sizeof out - off);
		CHECK(n > 0, "write to the file");
		off += (size_t)n;
	}
	/* a response or idle deadline wrongly armed on this fd has passed */
	sleep_ms(700);
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	while (have < sizeof in) {
		ssize_t n = read(fd, in + have, sizeof in - have);
		CHECK(n > 0, "read from the file");
		have += (size_t)n;
	}
	CHECK(!memcmp(in, out, sizeof in), "file content");
	CHECK(write(fd, "tail", 4) == 4, "second write to the file");
}

/* Runs the steps above in order; the first failed check exits 1. */
int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/fusebox-closerange-XXXXXX";
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	int port, s, f, s2, s3;

	if (argc != 3) {
		fprintf(stderr, "usage: closerange ECHO HANG\n");
		return 2;
	}
	port = atoi(argv[1]);
	s = dial(atoi(argv[2]));
	CHECK(s >= 0, "connect");
	/* the request is out, no reply comes: response_timeout aborts s */
	CHECK(send(s, req, sizeof req - 1, MSG_NOSIGNAL) > 0, "send");
	sleep_ms(700);
	CHECK(close_range((unsigned)s, (unsigned)s, 0) == 0, "close_range");
	f = mkstemp(tmpl);
	CHECK(f >= 0, "mkstemp");
	unlink(tmpl);
	if (f != s) {
		fprintf(stderr, "closerange: the file got fd %d, not %d\n", f,
			s);
		return 1;
	}
	file_round_trip(f);
	s2 = dial(port);
	CHECK(s2 >= 0, "second connect");
	CHECK(echo_check(s2, "pong", 4) == 0, "echo on the second socket");
	/* CLOSE_RANGE_CLOEXEC closes nothing: s2 keeps working */
	CHECK(close_range((unsigned)s2, (unsigned)s2, CLOSE_RANGE_CLOEXEC) == 0,
	      "close_range(CLOEXEC)");
	CHECK(echo_check(s2, "again", 5) == 0, "echo after CLOEXEC");
	s3 = dial(port);
	CHECK(s3 >= 0, "third connect");
	CHECK(send(s3, "x", 1, MSG_NOSIGNAL) == 1, "send on the third");
	/* a range wider than anything open closes both sockets */
	CHECK(close_range((unsigned)f + 1, ~0U, 0) == 0, "close_range(wide)");
	CHECK(fcntl(s2, F_GETFD) < 0 && errno == EBADF, "s2 closed");
	s2 = open("/dev/null", O_RDWR);
	CHECK(s2 >= 0, "open /dev/null");
	CHECK(write(s2, "zz", 2) == 2, "write to /dev/null");
	sleep_ms(700);
	CHECK(write(s2, "zz", 2) == 2, "write to /dev/null after a wait");
	CHECK(close(f) == 0 && close(s2) == 0, "close");
	printf("ok\n");
	return 0;
}
