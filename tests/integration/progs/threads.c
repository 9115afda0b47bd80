/* SPDX-License-Identifier: MIT */
/* threads PORT NTHREADS NCONN: NTHREADS threads each make NCONN
 * connections to the echo fixture on 127.0.0.1:PORT, send a message of
 * their own, check the exact echo and close; prints "ok N failed M". */
#include "progs.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_THREADS 256
#define MSG_LEN	    1500

static int port, nconn;
static atomic_long ok, failed;
static atomic_int first_errno;

/* One connect/send/recv/close round with msg; 0 or an errno. */
static int round_trip(const char *msg, size_t len)
{
	int fd = dial(port), e = 0;

	if (fd < 0)
		return errno;
	if (echo_check(fd, msg, len) < 0)
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	return e;
}

/* A thread: nconn round trips, each with a message naming it. */
static void *worker(void *arg)
{
	long id = (long)arg;
	char msg[MSG_LEN];

	for (int i = 0; i < nconn; i++) {
		int n = snprintf(msg, sizeof msg, "thread %ld conn %d:", id, i);
		for (size_t j = (size_t)n; j < sizeof msg; j++)
			msg[j] = (char)(j * 7 + (size_t)id + (size_t)i);
		int e = round_trip(msg, sizeof msg);
		if (e) {
			int zero = 0;
			atomic_compare_exchange_strong(&first_errno, &zero, e);
			atomic_fetch_add(&failed, 1);
		} else {
			atomic_fetch_add(&ok, 1);
		}
	}
	return NULL;
}

/* Starts the threads, waits for them, prints the totals. */
int main(int argc, char **argv)
{
	pthread_t t[MAX_THREADS];
	int nthreads;

	if (argc != 4) {
		fprintf(stderr, "usage: threads PORT NTHREADS NCONN\n");
		return 2;
	}
	port = atoi(argv[1]);
	nthreads = atoi(argv[2]);
	nconn = atoi(argv[3]);
	if (nthreads < 1 || nthreads > MAX_THREADS || nconn < 1)
		return 2;
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return 1;
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("ok %ld failed %ld\n", atomic_load(&ok), atomic_load(&failed));
	if (atomic_load(&failed))
		fprintf(stderr, "threads: first error: %s\n",
			strerror(atomic_load(&first_errno)));
	return atomic_load(&failed) ? 1 : 0;
}
