/* SPDX-License-Identifier: MIT */
/* fusebox serve --tls-cert/--tls-key: OpenSSL on memory BIOs.  The
 * socket stays libuv's: ciphertext that arrives is fed in, plaintext comes
 * out for the HTTP code of serve.c, and replies go back in as plaintext
 * and out as ciphertext on the same stream. */
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define SERVE_TLS_IN 65536 /* bytes of ciphertext read at once */

/* The certificate and key, and the read buffer all sessions share. */
struct serve_tls {
	SSL_CTX *ctx;
	char in[SERVE_TLS_IN];
};

/* One session: rbio holds ciphertext not yet decrypted, wbio ciphertext
 * not yet handed to libuv; both belong to ssl. */
struct serve_tls_conn {
	struct serve_tls *t;
	SSL *ssl;
	BIO *rbio, *wbio;
};

/* Ciphertext the session sends by itself (handshake, alerts, tickets),
 * freed by its write callback. */
struct tls_flush {
	uv_write_t req;
	char data[];
};

/* The reason of the first OpenSSL error on this thread (the cause; later
 * ones say who called), for a user. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

/* Opens path for reading a PEM file; NULL after saying why. */
static FILE *open_pem(const char *path)
{
	struct stat st;
	FILE *f = fopen(path, "r");

	if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (!f)
		fprintf(stderr, "fusebox serve: %s: %s\n", path,
			strerror(errno));
	return f;
}

/* Refuses to ask for the passphrase of an encrypted key on a terminal;
 * notes that one was asked for. */
static int no_passphrase(char *buf, int size, int rw, void *asked)
{
	(void)buf;
	(void)size;
	(void)rw;
	*(bool *)asked = true;
	return -1;
}

/* Loads the certificate chain at cert into ctx; 0 or -EINVAL after
 * saying why. */
static int load_cert(SSL_CTX *ctx, const char *cert)
{
	FILE *f = open_pem(cert);

	if (!f)
		return -EINVAL;
	fclose(f);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fprintf(stderr,
			"fusebox serve: %s: not a PEM certificate (%s)\n", cert,
			ssl_reason());
		return -EINVAL;
	}
	return 0;
}

/* Loads the private key at key into ctx, which holds the certificate
 * cert already; 0 or -EINVAL after saying why. */
static int load_key(SSL_CTX *ctx, const char *key, const char *cert)
{
	EVP_PKEY *pk;
	bool asked = false;
	FILE *f = open_pem(key);
	int r = -EINVAL;

	if (!f)
		return -EINVAL;
	ERR_clear_error();
	pk = PEM_read_PrivateKey(f, NULL, no_passphrase, &asked);
	fclose(f);
	if (!pk) {
		if (asked)
			fprintf(stderr,
				"fusebox serve: %s: the private key is "
				"encrypted; give it unencrypted\n",
				key);
		else
			fprintf(stderr,
				"fusebox serve: %s: not a PEM private key "
				"(%s)\n",
				key, ssl_reason());
		return -EINVAL;
	}
	ERR_clear_error();
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		fprintf(stderr,
			"fusebox serve: %s: the private key does not match "
			"the certificate %s\n",
			key, cert);
	else
		r = 0;
	EVP_PKEY_free(pk);
	return r;
}

/* Loads the certificate (chain) at cert and the matching private key at
 * key; the context, or NULL after saying why on stderr. */
struct serve_tls *serve_tls_new(const char *cert, const char *key)
{
	struct serve_tls *t = calloc(1, sizeof *t);

	if (!t)
		goto nomem;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx)
		goto nomem;
	/* scrapers speak TLS 1.2 or 1.3; renegotiation only costs us */
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION |
					SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* an idle keep-alive connection keeps no record buffers */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (load_cert(t->ctx, cert) < 0 || load_key(t->ctx, key, cert) < 0)
		goto fail;
	return t;
nomem:
	fprintf(stderr, "fusebox serve: TLS: %s\n", strerror(ENOMEM));
fail:
	serve_tls_free(t);
	return NULL;
}

/* Frees t; serve_tls_free(NULL) does nothing. */
void serve_tls_free(struct serve_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* A new server-side session under t, or NULL when memory is short. */
struct serve_tls_conn *serve_tls_conn_new(struct serve_tls *t)
{
	struct serve_tls_conn *tc = calloc(1, sizeof *tc);

	if (!tc)
		return NULL;
	tc->t = t;
	tc->ssl = SSL_new(t->ctx);
	tc->rbio = BIO_new(BIO_s_mem());
	tc->wbio = BIO_new(BIO_s_mem());
	if (!tc->ssl || !tc->rbio || !tc->wbio) {
		BIO_free(tc->rbio);
		BIO_free(tc->wbio);
		SSL_free(tc->ssl);
		free(tc);
		return NULL;
	}
	/* an empty rbio means "more to come", not end of file */
	BIO_set_mem_eof_return(tc->rbio, -1);
	SSL_set_bio(tc->ssl, tc->rbio, tc->wbio); /* ssl owns both */
	SSL_set_accept_state(tc->ssl);
	return tc;
}

/* Frees a session; serve_tls_conn_free(NULL) does nothing. */
void serve_tls_conn_free(struct serve_tls_conn *tc)
{
	if (!tc)
		return;
	SSL_free(tc->ssl);
	free(tc);
}

/* Gives libuv the shared ciphertext buffer. */
void serve_tls_alloc(struct serve_tls_conn *tc, uv_buf_t *buf)
{
	buf->base = tc->t->in;
	buf->len = sizeof tc->t->in;
}

/* Takes n bytes of ciphertext that arrived; 0 or -ENOMEM. */
int serve_tls_feed(struct serve_tls_conn *tc, const char *data, size_t n)
{
	return BIO_write(tc->rbio, data, (int)n) == (int)n ? 0 : -ENOMEM;
}

/* Frees what the session sent once it is written (or cancelled). */
static void on_flushed(uv_write_t *req, int status)
{
	(void)status; /* a broken stream fails the next read or reply */
	free(req->data);
}

/* Writes on st what the session has to send by itself. */
static void flush(struct serve_tls_conn *tc, uv_stream_t *st)
{
	size_t n = BIO_ctrl_pending(tc->wbio);
	struct tls_flush *f;
	uv_buf_t b;

	if (!n)
		return;
	f = malloc(sizeof *f + n);
	if (!f)
		return; /* the client times out, as if the packet were lost */
	n = (size_t)BIO_read(tc->wbio, f->data, (int)n);
	f->req.data = f;
	b = uv_buf_init(f->data, (unsigned)n);
	if (uv_write(&f->req, st, &b, 1, on_flushed))
		free(f);
}

/* Decrypts what fits into buf (len bytes), adding to *got; writes on st
 * what the handshake has to send.  0, -ECONNRESET (the client closed the
 * session) or -EPROTO (it failed). */
int serve_tls_read(struct serve_tls_conn *tc, uv_stream_t *st, char *buf,
		   size_t len, size_t *got)
{
	size_t n, k = 0;
	int r = 0, e;

	while (k < len) {
		ERR_clear_error();
		if (SSL_read_ex(tc->ssl, buf + k, len - k, &n) == 1) {
			k += n;
			continue;
		}
		e = SSL_get_error(tc->ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN)
			r = -ECONNRESET;
		else if (e != SSL_ERROR_WANT_READ)
			r = -EPROTO;
		break;
	}
	ERR_clear_error();
	*got += k;
	flush(tc, st); /* the alert of a failure too */
	return r;
}

/* Encrypts the n buffers into one malloc'd *out (the caller's), with the
 * close_notify alert after them when last.  0, -ENOMEM or -EPROTO. */
int serve_tls_seal(struct serve_tls_conn *tc, const uv_buf_t *bufs, unsigned n,
		   bool last, char **out, size_t *outlen)
{
	size_t w, pending;
	int r = -EPROTO;

	*out = NULL;
	*outlen = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!bufs[i].len)
			continue;
		ERR_clear_error();
		/* a memory BIO takes all: the write is whole or fails */
		if (SSL_write_ex(tc->ssl, bufs[i].base, bufs[i].len, &w) != 1)
			goto fail;
	}
	if (last)
		SSL_shutdown(tc->ssl); /* 0: sent, the client's not seen */
	pending = BIO_ctrl_pending(tc->wbio);
	*out = malloc(pending ? pending : 1);
	if (!*out) {
		r = -ENOMEM;
		goto fail;
	}
	if (pending)
		*outlen = (size_t)BIO_read(tc->wbio, *out, (int)pending);
	ERR_clear_error();
	return 0;
fail:
	ERR_clear_error();
	return r;
}
