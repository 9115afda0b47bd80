/* SPDX-License-Identifier: MIT */
/* dup echo|hang PORT: duplicates a guarded socket with dup, dup2, dup3
 * and fcntl(F_DUPFD, F_DUPFD_CLOEXEC).  echo: both fds carry the echo,
 * and closing either leaves the other working.  hang: after the original
 * is closed, the copy still has the policy's response_timeout (ETIMEDOUT
 * within 3 s).  Prints "ok". */
#include "progs.h"

#include <fcntl.h>
#include <time.h>

enum how { DUP, DUP2, DUP3, DUPFD, DUPFD_CLOEXEC, NHOW };

static const char *const names[NHOW] = {"dup", "dup2", "dup3", "F_DUPFD",
					"F_DUPFD_CLOEXEC"};

/* Duplicates fd the way how says, to a number >= 50 when it may choose. */
static int duplicate(int fd, enum how how)
{
	switch (how) {
	case DUP:
		return dup(fd);
	case DUP2:
		return dup2(fd, 60);
	case DUP3:
		return dup3(fd, 61, O_CLOEXEC);
	case DUPFD:
		return fcntl(fd, F_DUPFD, 50);
	case DUPFD_CLOEXEC:
		return fcntl(fd, F_DUPFD_CLOEXEC, 50);
	case NHOW:
		break;
	}
	return -1;
}

/* Echo through both fds; closing one (first the copy, then on the next
 * round the original) leaves the other working. */
static void echo_case(int port, enum how how, int round)
{
	int s = dial(port), d, keep, gone;

	CHECK(s >= 0, "connect");
	d = duplicate(s, how);
	CHECK(d >= 0 && d != s, names[how]);
	CHECK(echo_check(s, "original", 8) == 0, "echo on the original");
	CHECK(echo_check(d, "copy", 4) == 0, "echo on the copy");
	keep = round ? d : s;
	gone = round ? s : d;
	CHECK(close(gone) == 0, "close one");
	for (int i = 0; i < 5; i++)
		CHECK(echo_check(keep, "still here", 10) == 0,
		      "echo on the other after the close");
	CHECK(close(keep) == 0, "close the other");
}

/* The copy keeps the guard of the closed original. */
static void hang_case(int port, enum how how)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	struct timespec t0, t1;
	int s = dial(port), d;
	char buf[64];
	double secs;

	CHECK(s >= 0, "connect");
	d = duplicate(s, how);
	CHECK(d >= 0, names[how]);
	CHECK(close(s) == 0, "close the original");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(send(d, req, sizeof req - 1, MSG_NOSIGNAL) > 0, "send");
	CHECK(recv(d, buf, sizeof buf, 0) < 0 && errno == ETIMEDOUT,
	      "response_timeout on the copy");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs > 3) {
		fprintf(stderr, "dup: %s: timed out after %.2f s\n", names[how],
			secs);
		exit(1);
	}
	CHECK(close(d) == 0, "close the copy");
}

/* Runs the chosen case for every way of duplicating. */
int main(int argc, char **argv)
{
	int port;

	if (argc != 3 || (strcmp(argv[1], "echo") && strcmp(argv[1], "hang"))) {
		fprintf(stderr, "usage: dup echo|hang PORT\n");
		return 2;
	}
	port = atoi(argv[2]);
	for (int how = 0; how < NHOW; how++) {
		if (!strcmp(argv[1], "echo")) {
			echo_case(port, (enum how)how, 0);
			echo_case(port, (enum how)how, 1);
		} else {
			hang_case(port, (enum how)how);
		}
	}
	printf("ok\n");
	return 0;
}
