/* SPDX-License-Identifier: MIT */
/* pingpong PORT N: one connection to an echo server at 127.0.0.1:PORT;
 * a reader thread waits in read() while the main thread writes, N times
 * a byte, each written only after the last echo was read (as Java's
 * HttpClient and other event loops split reading from writing).  The
 * reply can be read by the reader before the writer's send() has
 * returned.  Prints "ok N" or the errno that stopped it. */
#include "progs.h"

#include <pthread.h>
#include <semaphore.h>

static int fd;
static sem_t echoed;
static volatile int failed;

/* Reads each echo and lets the writer go on. */
static void *reader(void *arg)
{
	int n = *(int *)arg;
	char c;

	for (int i = 0; i < n; i++) {
		if (read(fd, &c, 1) != 1) {
			failed = errno ? errno : EPIPE;
			sem_post(&echoed);
			return NULL;
		}
		sem_post(&echoed);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	int n;

	if (argc != 3) {
		fprintf(stderr, "usage: pingpong PORT N\n");
		return 2;
	}
	n = atoi(argv[2]);
	fd = dial(atoi(argv[1]));
	CHECK(fd >= 0, "connect");
	CHECK(sem_init(&echoed, 0, 0) == 0, "sem_init");
	CHECK(pthread_create(&t, NULL, reader, &n) == 0, "pthread_create");
	for (int i = 0; i < n && !failed; i++) {
		CHECK(write(fd, "x", 1) == 1, "write");
		while (sem_wait(&echoed) < 0 && errno == EINTR)
			;
	}
	pthread_join(t, NULL);
	close(fd);
	if (failed)
		printf("errno %d\n", failed);
	else
		printf("ok %d\n", n);
	return 0;
}
