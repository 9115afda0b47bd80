/* SPDX-License-Identifier: MIT */
/* sigconnect PORT restart|norestart: a blocking connect to 127.0.0.1:PORT
 * while SIGALRM comes every 100 ms, its handler installed with or without
 * SA_RESTART; prints "errno E signals N" (E 0: connected).  The kernel
 * restarts a blocking connect after a handler with SA_RESTART, and fails
 * it with EINTR after one without. */
#include "progs.h"

#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t signals;

/* Counts the alarms. */
static void on_alarm(int sig)
{
	(void)sig;
	signals++;
}

int main(int argc, char **argv)
{
	struct sigaction a = {.sa_handler = on_alarm};
	struct itimerval every = {{0, 100000}, {0, 100000}};
	struct sockaddr_in sa;
	int fd, e = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: sigconnect PORT restart|norestart\n");
		return 2;
	}
	sa = loopback(atoi(argv[1]));
	a.sa_flags = strcmp(argv[2], "restart") ? 0 : SA_RESTART;
	sigemptyset(&a.sa_mask);
	CHECK(sigaction(SIGALRM, &a, NULL) == 0, "sigaction");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket");
	CHECK(setitimer(ITIMER_REAL, &every, NULL) == 0, "setitimer");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		e = errno;
	printf("errno %d signals %s\n", e, signals ? "some" : "none");
	return 0;
}
