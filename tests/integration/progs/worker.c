/* SPDX-License-Identifier: MIT */
/* worker PORT [USER-ID]: what a server's master does with its workers
 * (nginx): clears its environment, forks a worker that switches to
 * USER-ID (when given and run as root), which sends to 127.0.0.1:PORT
 * and waits up to 5 s for a reply.  Prints the worker's "errno E" (0: a
 * reply came; EAGAIN: its own 5 s wait ran out). */
#include "progs.h"

#include <sys/time.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct timeval five = {.tv_sec = 5};
	int p[2], st = 0;
	char out[64] = "";
	pid_t kid;

	if (argc < 2) {
		fprintf(stderr, "usage: worker PORT [USER-ID]\n");
		return 2;
	}
	CHECK(clearenv() == 0, "clearenv");
	CHECK(pipe(p) == 0, "pipe");
	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		char c;
		int fd, e = 0;

		if (argc > 2 && getuid() == 0) {
			uid_t u = (uid_t)atoi(argv[2]);
			CHECK(setgid(u) == 0 && setuid(u) == 0, "setuid");
		}
		fd = dial(atoi(argv[1]));
		CHECK(fd >= 0, "connect");
		CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five,
				 sizeof five) == 0,
		      "setsockopt");
		CHECK(send(fd, "x", 1, 0) == 1, "send");
		if (recv(fd, &c, 1, 0) < 0)
			e = errno;
		close(fd);
		dprintf(p[1], "errno %d\n", e);
		_exit(0);
	}
	close(p[1]);
	CHECK(read(p[0], out, sizeof out - 1) >= 0, "read");
	CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
	fputs(out, stdout);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
