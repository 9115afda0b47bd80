/* SPDX-License-Identifier: MIT */
/* fusebox serve over TLS (cli/serve_tls.c): a certificate and key loaded
 * once, and per connection an OpenSSL session on memory BIOs that the
 * libuv read and write path of cli/serve.c feeds and drains. */
#ifndef FUSEBOX_SERVE_H
#define FUSEBOX_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

/* A request head as fusebox serve reads it (serve_head.c). */
struct request {
	const char *method, *path;
	size_t method_len, path_len;
	bool http10, keep_alive, close, has_body;
};

/* Parses the request head h (n bytes, lines ending in "\r\n" or "\n",
 * without the empty line) into q; false when it is malformed. */
bool serve_parse_head(const char *h, size_t n, struct request *q);

struct serve_tls;      /* the server's certificate and key */
struct serve_tls_conn; /* the TLS session of one connection */

/* Loads the PEM certificate (chain) at cert and the private key at key,
 * which must match.  Returns the context (serve_tls_free() frees it), or
 * NULL after printing "fusebox serve: FILE: reason" on stderr. */
struct serve_tls *serve_tls_new(const char *cert, const char *key);

/* Frees t; serve_tls_free(NULL) does nothing. */
void serve_tls_free(struct serve_tls *t);

/* A new server-side session under t (which must outlive it), or NULL when
 * memory is short. */
struct serve_tls_conn *serve_tls_conn_new(struct serve_tls *t);

/* Frees a session; serve_tls_conn_free(NULL) does nothing. */
void serve_tls_conn_free(struct serve_tls_conn *tc);

/* Gives libuv a buffer for ciphertext; all sessions of a server share it,
 * for libuv hands each read to its callback before it reads again. */
void serve_tls_alloc(struct serve_tls_conn *tc, uv_buf_t *buf);

/* Takes n bytes of ciphertext that arrived.  0 or -ENOMEM. */
int serve_tls_feed(struct serve_tls_conn *tc, const char *data, size_t n);

/* Decrypts into buf, up to len bytes, what the ciphertext fed so far
 * holds, adding the count to *got, and writes what the session has to
 * send (handshake, alerts) on st.  0, -EAGAIN when the client closed the
 * session, or -EPROTO when the session failed; the plaintext got before
 * either is still good. */
int serve_tls_read(struct serve_tls_conn *tc, uv_stream_t *st, char *buf,
		   size_t len, size_t *got);

/* Encrypts the n buffers into one malloc'd *out of *outlen bytes (the
 * caller owns it), followed by the close_notify alert when last.  0,
 * -ENOMEM or -EPROTO. */
int serve_tls_seal(struct serve_tls_conn *tc, const uv_buf_t *bufs, unsigned n,
		   bool last, char **out, size_t *outlen);

#endif
