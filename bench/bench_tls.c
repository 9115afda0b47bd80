/* SPDX-License-Identifier: MIT */
/* The TLS workload that bench/callgrind.sh counts instructions of: one
 * TLS connection to the HTTPS fixture (build/fixture-tls ok) at PORT,
 * then N requests, each an SSL_write of a request and SSL_reads of its
 * reply.  Run with and without the shim, twice with different N, the
 * difference is what the shim adds per SSL_write + SSL_read pair. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Fails loudly: a benchmark that silently measures nothing is worse. */
static void die(const char *what)
{
	fprintf(stderr, "bench-tls: %s\n", what);
	exit(1);
}

int main(int argc, char **argv)
{
	static const char req[] = "GET /b HTTP/1.1\r\nHost: bench\r\n\r\n";
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char buf[4096];
	size_t first = 0;
	SSL_CTX *ctx;
	SSL *s;
	long n;
	int fd;

	if (argc != 3)
		die("usage: bench-tls PORT N");
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	n = atol(argv[2]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !(s = SSL_new(ctx)) || !SSL_set_fd(s, fd) ||
	    SSL_connect(s) != 1)
		die("handshake");
	for (long i = 0; i < n; i++) {
		size_t got = 0;

		if (SSL_write(s, req, sizeof req - 1) != (int)sizeof req - 1)
			die("SSL_write");
		/* the first reply's size is every reply's */
		do {
			int r = SSL_read(s, buf, sizeof buf);
			if (r <= 0)
				die("SSL_read");
			got += (size_t)r;
		} while (first ? got < first : !strstr(buf, "\r\n\r\n"));
		if (!first)
			first = got;
	}
	SSL_shutdown(s);
	SSL_free(s);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
