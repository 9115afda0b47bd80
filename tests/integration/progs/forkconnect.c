/* SPDX-License-Identifier: MIT */
/* forkconnect PORT1 PORT2: one thread connects to 127.0.0.1 on the two
 * ports in turn (so that no connect repeats the last destination, which
 * the shim would match from its cache) and closes, 300 times, while
 * another forks 100 times (each child exits at once); prints "ok" when
 * both finish.  Under a policy with a hostname pattern, the connect path
 * takes the policy lock, then the resolver memory's: fork handlers that
 * take them the other way round deadlock. */
#include "progs.h"

#include <pthread.h>
#include <sys/wait.h>

static int ports[2];

/* Connects and closes, again and again. */
static void *connector(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		int fd = dial(ports[i % 2]);
		CHECK(fd >= 0, "connect");
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 3) {
		fprintf(stderr, "usage: forkconnect PORT1 PORT2\n");
		return 2;
	}
	ports[0] = atoi(argv[1]);
	ports[1] = atoi(argv[2]);
	CHECK(pthread_create(&t, NULL, connector, NULL) == 0, "thread");
	for (int i = 0; i < 100; i++) {
		pid_t kid = fork();
		CHECK(kid >= 0, "fork");
		if (kid == 0)
			_exit(0);
		CHECK(waitpid(kid, NULL, 0) == kid, "waitpid");
	}
	pthread_join(t, NULL);
	printf("ok\n");
	return 0;
}
