/* SPDX-License-Identifier: MIT */
/* fclose PORT: a guarded socket to the hang fixture wrapped in a stdio
 * stream with fdopen; the request goes out, the policy's response_timeout
 * passes before the program reads, and fclose (which closes the fd inside
 * libc, not through close()) ends it.  The fd number is then reused by a
 * regular file and by a new socket to the same fixture: both must work
 * as if fusebox had never seen the old socket.  (The request is sent with
 * send(), as stdio's own writes bypass the interposed write().)  Prints "ok".
 */
#include "progs.h"

#include <fcntl.h>
#include <time.h>

/* Aborts, fcloses, then reuses the fd number twice. */
int main(int argc, char **argv)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	struct timespec wait = {0, 700 * 1000000L};
	char tmpl[] = "/tmp/fusebox-fclose-XXXXXX", buf[8];
	struct sockaddr_in sa;
	int port, s, f;
	FILE *fp;

	if (argc != 2) {
		fprintf(stderr, "usage: fclose PORT\n");
		return 2;
	}
	port = atoi(argv[1]);
	sa = loopback(port);
	s = dial(port);
	CHECK(s >= 0, "connect");
	fp = fdopen(s, "r+");
	CHECK(fp != NULL, "fdopen");
	CHECK(send(s, req, sizeof req - 1, MSG_NOSIGNAL) > 0, "send");
	/* the response deadline passes: fusebox aborts the socket */
	nanosleep(&wait, NULL);
	CHECK(fclose(fp) == 0, "fclose");
	/* a regular file gets the same fd number */
	f = mkstemp(tmpl);
	CHECK(f >= 0, "mkstemp");
	unlink(tmpl);
	if (f != s) {
		fprintf(stderr, "fclose: the file got fd %d, not %d\n", f, s);
		return 1;
	}
	CHECK(write(f, "data", 4) == 4, "write to the reused fd");
	CHECK(lseek(f, 0, SEEK_SET) == 0, "lseek");
	CHECK(read(f, buf, 4) == 4 && !memcmp(buf, "data", 4),
	      "read from the reused fd");
	CHECK(close(f) == 0, "close the file");
	/* and so does a new socket */
	s = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(s == f, "socket on the reused fd");
	CHECK(connect(s, (struct sockaddr *)&sa, sizeof sa) == 0,
	      "connect on the reused fd");
	CHECK(send(s, "x", 1, MSG_NOSIGNAL) == 1, "send on the reused fd");
	CHECK(close(s) == 0, "close");
	printf("ok\n");
	return 0;
}
