/* SPDX-License-Identifier: MIT */
/* fork close|keep PORT: a guarded socket to the echo fixture is shared
 * with a forked child.  close: the child closes its copy and exits, the
 * parent goes on using the socket.  keep: the child keeps its copy and
 * makes guarded connections of its own for 2.5 s while the parent echoes
 * on the shared socket every 100 ms; the parent is never idle, so with
 * idle_timeout = 1s nothing may end its connection.  Prints "ok". */
#include "progs.h"

#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#define BUSY_ROUNDS 25 /* of 100 ms */

/* Sleeps ms milliseconds. */
static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The child of the keep case: its own busy connection, the inherited
 * socket left open and unused. */
static int busy_child(int port)
{
	int s = dial(port);

	if (s < 0)
		return 3;
	for (int i = 0; i < BUSY_ROUNDS + 5; i++) {
		if (echo_check(s, "child", 5) < 0)
			return 4;
		sleep_ms(100);
	}
	close(s);
	return 0;
}

/* Connects, forks, and checks the parent's socket as the mode says. */
int main(int argc, char **argv)
{
	int port, s, st;
	bool keep;
	pid_t pid;

	if (argc != 3 ||
	    (strcmp(argv[1], "close") && strcmp(argv[1], "keep"))) {
		fprintf(stderr, "usage: fork close|keep PORT\n");
		return 2;
	}
	keep = !strcmp(argv[1], "keep");
	port = atoi(argv[2]);
	s = dial(port);
	CHECK(s >= 0, "connect");
	CHECK(echo_check(s, "before fork", 11) == 0, "echo before the fork");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		if (!keep)
			_exit(close(s) == 0 ? 0 : 5);
		_exit(busy_child(port));
	}
	if (!keep)
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	for (int i = 0; i < BUSY_ROUNDS; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof msg, "parent %d", i);
		if (echo_check(s, msg, (size_t)n) < 0) {
			fprintf(stderr,
				"fork: echo %d of the parent after "
				"%.1f s: %s\n",
				i, i / 10.0, strerror(errno));
			if (keep)
				waitpid(pid, &st, 0);
			return 1;
		}
		sleep_ms(100);
	}
	if (keep)
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "fork: child status %d\n", st);
		return 1;
	}
	CHECK(close(s) == 0, "close");
	printf("ok\n");
	return 0;
}
