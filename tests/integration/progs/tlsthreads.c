/* SPDX-License-Identifier: MIT */
/* tlsthreads PORT THREADS CONNS REQS: THREADS threads, each opening CONNS
 * TLS connections one after another to the HTTPS fixture on 127.0.0.1
 * PORT (a new SSL each, freed after), with REQS requests on each; odd
 * threads use a socket BIO, even ones a pair of memory BIOs driven by
 * hand, as Python's asyncio does.  Prints the replies it got; exits 1 at
 * the first failure.  The ties of SSL objects to sockets (shim/tls.c)
 * under threads and SSL_free() churn. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port, conns, reqs;
static SSL_CTX *ctx;
static atomic_long replies;

static void fail(const char *what)
{
	fprintf(stderr, "tlsthreads: %s\n", what);
	exit(1);
}

/* Moves what the SSL wrote into wbio to the socket, and, if want, one
 * read of the socket into rbio. */
static void pump(SSL *s, int fd, BIO *rbio, BIO *wbio, int want)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(wbio, buf, sizeof buf)) > 0)
		if (send(fd, buf, (size_t)n, 0) != n)
			fail("send");
	if (want) {
		ssize_t got = recv(fd, buf, sizeof buf, 0);
		if (got <= 0)
			fail("recv");
		BIO_write(rbio, buf, (int)got);
	}
	(void)s;
}

static void *run(void *arg)
{
	long id = (long)arg;
	static const char req[] = "GET /t HTTP/1.1\r\nHost: t\r\n\r\n";
	struct sockaddr_in sa = {.sin_family = AF_INET};

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int k = 0; k < conns; k++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), r;
		SSL *s = SSL_new(ctx);
		BIO *rbio = NULL, *wbio = NULL;
		char buf[4096];

		if (fd < 0 || !s ||
		    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			fail("connect");
		if (id & 1) {
			SSL_set_fd(s, fd);
			if (SSL_connect(s) != 1)
				fail("SSL_connect");
		} else {
			rbio = BIO_new(BIO_s_mem());
			wbio = BIO_new(BIO_s_mem());
			SSL_set_bio(s, rbio, wbio);
			SSL_set_connect_state(s);
			while ((r = SSL_do_handshake(s)) != 1) {
				if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
					fail("SSL_do_handshake");
				pump(s, fd, rbio, wbio, 1);
			}
			pump(s, fd, rbio, wbio, 0);
		}
		for (int i = 0; i < reqs; i++) {
			if (SSL_write(s, req, sizeof req - 1) != sizeof req - 1)
				fail("SSL_write");
			if (wbio)
				pump(s, fd, rbio, wbio, 0);
			for (;;) {
				r = SSL_read(s, buf, sizeof buf);
				if (r > 0)
					break;
				if (!wbio ||
				    SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
					fail("SSL_read");
				pump(s, fd, rbio, wbio, 1);
			}
			if (strncmp(buf, "HTTP/1.1 200", 12))
				fail("reply");
			atomic_fetch_add(&replies, 1);
		}
		SSL_free(s); /* frees the BIOs too */
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[64];
	int n;

	if (argc != 5)
		fail("usage: tlsthreads PORT THREADS CONNS REQS");
	port = atoi(argv[1]);
	n = atoi(argv[2]);
	conns = atoi(argv[3]);
	reqs = atoi(argv[4]);
	if (n < 1 || n > 64)
		fail("1 to 64 threads");
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		fail("SSL_CTX_new");
	for (long i = 0; i < n; i++)
		pthread_create(&t[i], NULL, run, (void *)i);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	SSL_CTX_free(ctx);
	printf("%ld\n", atomic_load(&replies));
	return 0;
}
