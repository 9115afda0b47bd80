/* SPDX-License-Identifier: MIT */
/* TLS plaintext as calls: OpenSSL 3's SSL_* functions, interposed.  On a
 * guarded connection whose TLS runs in libssl.so.3, a call is a plaintext
 * request (SSL_write) to the first plaintext reply byte (SSL_read):
 * records that carry no data (session tickets, key updates) end nothing,
 * and classify = http reads the decrypted status line.  The handshake
 * belongs to the connect's call; one that fails fails it (tls_failures).
 * An SSL object is tied to its socket by its socket BIO, or, on memory
 * BIOs (Python's asyncio), by the ClientHello the same thread sends next.
 * libssl is never linked: its functions are found at first use, so a
 * program that never loads it pays nothing.  Our SSL_* carry libssl's
 * version, OPENSSL_3.0.0 (shim/tls.map): OpenSSL 1.1 callers bind past
 * us. */
#include <openssl/ssl.h> /* before shim.h: its prototypes stay default */

#include "shim.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define OSSL_VERSION "OPENSSL_3.0.0"

/* libssl's own functions, bound at first use. */
static struct {
	int (*connect)(SSL *);
	int (*do_handshake)(SSL *);
	int (*read)(SSL *, void *, int);
	int (*read_ex)(SSL *, void *, size_t, size_t *);
	int (*peek)(SSL *, void *, int);
	int (*peek_ex)(SSL *, void *, size_t, size_t *);
	int (*write)(SSL *, const void *, int);
	int (*write_ex)(SSL *, const void *, size_t, size_t *);
	int (*shutdown)(SSL *);
	void (*free)(SSL *);
	int (*get_rfd)(const SSL *);
	int (*get_error)(const SSL *, int);
	int (*is_server)(const SSL *);
	int (*is_init_finished)(const SSL *);
	void (*alpn)(const SSL *, const unsigned char **, unsigned int *);
} ossl;

static pthread_once_t bind_once = PTHREAD_ONCE_INIT;
static atomic_bool ready; /* bind_ossl() ran */
static bool bound;	  /* every function of ossl was found */

TLS void *tls_pending;
static TLS int inside;	   /* in libssl for a hook of ours: pass through */
static TLS SSL *cache_ssl; /* this thread's last SSL, and its tie */
static TLS int cache_tie;
static TLS uint32_t cache_gen; /* frees when it was cached */
/* Bumped by every SSL_free() of an SSL in the table: an address cached
 * by one thread may be another SSL's after another thread freed it. */
static _Atomic uint32_t frees;

/* --- ties: SSL object -> fd ---------------------------------------------
 * An open-addressing table, mapped at the first TLS call, lock-free: a
 * slot's key goes from empty (0) or gone (1) to an SSL by compare and
 * swap, and back to gone at SSL_free().  Its value: the fd, or TIE_NOT
 * (not ours: a server's, an unguarded socket's) or TIE_WAIT (no socket
 * BIO: tied by its ClientHello).  The conn says which SSL it is tied to
 * (conn.tls_ssl): a tie whose conn disagrees is stale, never used. */
#define TIES	   65536u /* slots: 1 MiB of address space */
#define TIE_PROBES 64u
#define TIE_NONE   (-3) /* no slot: not in the table */
#define TIE_WAIT   (-2)
#define TIE_NOT	   (-1)
#define KEY_GONE   ((uintptr_t)1)

struct tie {
	_Atomic uintptr_t ssl;
	_Atomic int32_t fd;
};

static struct tie *_Atomic ties;

static uint32_t tie_hash(const SSL *s)
{
	return (uint32_t)(((uintptr_t)s >> 4) * 0x9e3779b97f4a7c15ull >> 40) &
	       (TIES - 1);
}

/* The slot of s, or NULL. */
static struct tie *tie_find(const SSL *s)
{
	struct tie *t = atomic_load_explicit(&ties, memory_order_acquire);
	uint32_t h = tie_hash(s);

	if (!t)
		return NULL;
	for (uint32_t i = 0; i < TIE_PROBES; i++) {
		struct tie *e = &t[(h + i) & (TIES - 1)];
		uintptr_t k =
		    atomic_load_explicit(&e->ssl, memory_order_acquire);
		if (k == (uintptr_t)s)
			return e;
		if (!k)
			return NULL;
	}
	return NULL;
}

/* Records fd (or TIE_*) for s; false when the table is full. */
static bool tie_put(SSL *s, int fd)
{
	struct tie *t = atomic_load_explicit(&ties, memory_order_acquire);
	struct tie *e = tie_find(s);
	uint32_t h = tie_hash(s);

	if (e) {
		atomic_store(&e->fd, fd);
		return true;
	}
	if (!t) {
		struct tie *fresh = NULL;
		t = mmap(NULL, TIES * sizeof *t, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (t == MAP_FAILED)
			return false;
		if (!atomic_compare_exchange_strong(&ties, &fresh, t)) {
			munmap(t, TIES * sizeof *t);
			t = fresh;
		}
	}
	for (uint32_t i = 0; i < TIE_PROBES; i++) {
		e = &t[(h + i) & (TIES - 1)];
		uintptr_t k = atomic_load(&e->ssl);
		if (k > KEY_GONE)
			continue;
		atomic_store(&e->fd, TIE_NOT); /* not yet: readers see NOT */
		if (atomic_compare_exchange_strong(&e->ssl, &k, (uintptr_t)s)) {
			atomic_store(&e->fd, fd);
			return true;
		}
	}
	return false;
}

/* Binds libssl's functions: the next definition after ours, else the
 * libssl.so.3 loaded where RTLD_NEXT does not look (dlopen'ed with
 * RTLD_LOCAL by the module that uses it: Python's _ssl). */
static int find_libssl(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *name = info->dlpi_name, *base;

	(void)size;
	if (!name || !*name)
		return 0;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(base, "libssl.so.3", 11))
		return 0;
	/* the C library's dlopen: ours (dl.c) is a hook, above this file */
	void *(*open)(const char *, int) = dlsym(RTLD_NEXT, "dlopen");
	*(void **)data = open ? open(name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
	return *(void **)data != NULL;
}

static void *sym(void *lib, const char *name)
{
	void *p = dlvsym(RTLD_NEXT, name, OSSL_VERSION);

	return p || !lib ? p : dlvsym(lib, name, OSSL_VERSION);
}

static void bind_ossl(void)
{
	void *lib = NULL;
	int saved = errno;

	if (!dlvsym(RTLD_NEXT, "SSL_read", OSSL_VERSION))
		dl_iterate_phdr(find_libssl, &lib);
#define BIND(field, name) *(void **)&ossl.field = sym(lib, name)
	BIND(connect, "SSL_connect");
	BIND(do_handshake, "SSL_do_handshake");
	BIND(read, "SSL_read");
	BIND(read_ex, "SSL_read_ex");
	BIND(peek, "SSL_peek");
	BIND(peek_ex, "SSL_peek_ex");
	BIND(write, "SSL_write");
	BIND(write_ex, "SSL_write_ex");
	BIND(shutdown, "SSL_shutdown");
	BIND(free, "SSL_free");
	BIND(get_rfd, "SSL_get_rfd");
	BIND(get_error, "SSL_get_error");
	BIND(is_server, "SSL_is_server");
	BIND(is_init_finished, "SSL_is_init_finished");
	BIND(alpn, "SSL_get0_alpn_selected");
#undef BIND
	bound = ossl.connect && ossl.do_handshake && ossl.read &&
		ossl.read_ex && ossl.peek && ossl.peek_ex && ossl.write &&
		ossl.write_ex && ossl.shutdown && ossl.free && ossl.get_rfd &&
		ossl.get_error && ossl.is_server && ossl.is_init_finished &&
		ossl.alpn;
	if (!bound)
		shim_log(POLICY_LOG_WARN, "libssl.so.3 not found: TLS is "
					  "guarded at the socket only");
	atomic_store_explicit(&ready, true, memory_order_release);
	errno = saved;
}

/* Binds libssl's functions once; after that, one load. */
static inline void bind_now(void)
{
	if (UNLIKELY(!atomic_load_explicit(&ready, memory_order_acquire)))
		pthread_once(&bind_once, bind_ossl);
}

/* True when the hooks may look at TLS: bound, not inside libssl for a
 * hook of ours, fusebox on. */
static inline bool watching(void)
{
	return bound && !inside &&
	       !atomic_load_explicit(&shim_disabled, memory_order_relaxed);
}

/* Ties c (fd) to s: its plaintext makes the calls from now on.  False
 * when the table is full: the socket alone, as without TLS. */
static bool tie(SSL *s, int fd, struct conn *c, bool handshaking)
{
	uint32_t on = W_TLS | (handshaking ? W_HANDSHAKE : 0u);

	if (!tie_put(s, fd))
		return false;
	conn_lock(c);
	/* the raw bytes are records, never HTTP/2 frames */
	__atomic_store_n(&c->h2.state, H2_OFF, __ATOMIC_RELAXED);
	atomic_store(&c->tls_ssl, (void *)s);
	if (handshaking)
		CONN_SET(c->wait_ns, clock_ns()); /* the handshake's start */
	atomic_fetch_or(&c->watch, on);
	atomic_fetch_and(&c->watch, ~(W_H2 | W_REPLAY)); /* not its bytes */
	if (handshaking && c->handshake_ms)
		timer_arm(c, DL_RESPONSE,
			  clock_coarse_ns() + c->handshake_ms * 1000000ull);
	conn_unlock(c);
	cache_ssl = s;
	cache_tie = fd;
	cache_gen = atomic_load_explicit(&frees, memory_order_acquire);
	return true;
}

/* First sight of s: ties it if its socket BIO is a guarded socket;
 * returns what the table now says of it.  client: s is in SSL_connect(),
 * which sets the client's role only inside (an SSL of TLS_method() says
 * "server" until then). */
static int look(SSL *s, bool client)
{
	struct conn *c;
	int fd;

	if (!client && ossl.is_server(s)) {
		tie_put(s, TIE_NOT);
		return TIE_NOT;
	}
	fd = ossl.get_rfd(s);
	if (fd < 0) {
		tie_put(s, TIE_WAIT);
		return TIE_WAIT;
	}
	c = fdt_get(fd);
	if (!c || !atomic_load(&c->live) ||
	    !(atomic_load(&c->watch) & (W_COUNT | W_RESPONSE))) {
		tie_put(s, TIE_NOT);
		return TIE_NOT;
	}
	if (!tie(s, fd, c, !ossl.is_init_finished(s)))
		return TIE_NOT;
	return fd;
}

/* conn_of() when this thread's last SSL was another, or waits for its
 * tie: the table, or a first look. */
static __attribute__((noinline)) struct conn *conn_slow(SSL *s, int *fd,
							bool client)
{
	uint32_t gen = atomic_load_explicit(&frees, memory_order_acquire);
	struct tie *e;
	struct conn *c;
	int t;

	if (!watching())
		return NULL;
	e = tie_find(s); /* after gen: a free meanwhile makes it stale */
	t = e ? atomic_load(&e->fd) : TIE_NONE;
	if (t == TIE_NONE)
		t = look(s, client);
	cache_ssl = s;
	cache_tie = t;
	cache_gen = gen;
	if (t < 0) {
		if (t == TIE_WAIT)
			tls_pending = s;
		return NULL;
	}
	c = fdt_get(t);
	if (!c || !atomic_load_explicit(&c->live, memory_order_relaxed) ||
	    atomic_load_explicit(&c->tls_ssl, memory_order_relaxed) !=
		(void *)s) {
		cache_ssl = NULL; /* stale: the fd was closed or reused */
		return NULL;
	}
	*fd = t;
	return c;
}

/* The connection s is tied to (its fd in *fd), or NULL: this thread's
 * last SSL, in a few loads; another, out of line. */
static inline struct conn *conn_of(SSL *s, int *fd, bool client)
{
	if (LIKELY(s == cache_ssl) &&
	    LIKELY(cache_gen ==
		   atomic_load_explicit(&frees, memory_order_relaxed))) {
		int t = cache_tie;
		if (t >= 0) {
			struct conn *c = fdt_get(t);
			if (LIKELY(c &&
				   atomic_load_explicit(&c->live,
							memory_order_relaxed) &&
				   atomic_load_explicit(&c->tls_ssl,
							memory_order_relaxed) ==
				       (void *)s &&
				   !inside)) {
				*fd = t;
				return c;
			}
		} else if (t == TIE_NOT) {
			return NULL;
		}
	}
	return conn_slow(s, fd, client);
}

/* True when a ClientHello starts the bytes: a handshake record (22) of
 * TLS 1.x whose first message is a client_hello (1). */
static bool client_hello(const struct iovec *iov, size_t cnt)
{
	const uint8_t *p;

	if (!iov || !cnt || iov[0].iov_len < 6)
		return false;
	p = iov[0].iov_base;
	return p[0] == 22 && p[1] == 3 && p[2] <= 4 && p[5] == 1;
}

void tls_hello(int fd, struct conn *c, const struct iovec *iov, size_t cnt)
{
	SSL *s = tls_pending;
	struct tie *e;

	tls_pending = NULL;
	if (!client_hello(iov, cnt) || atomic_load(&c->tls_ssl))
		return;
	e = tie_find(s);
	if (!e || atomic_load(&e->fd) != TIE_WAIT)
		return;
	tie(s, fd, c, true);
}

/* True when c carries HTTP/2 in its plaintext (ALPN h2): streams.c
 * makes its calls, as on a bare socket. */
static inline bool h2(struct conn *c)
{
	return __atomic_load_n(&c->h2.state, __ATOMIC_RELAXED) != H2_OFF;
}

/* The handshake of c ended: ok, or failed (counted as tls_failures).
 * With ALPN h2, the plaintext is HTTP/2 from now on. */
static void handshake_over(SSL *s, int fd, struct conn *c, bool ok)
{
	uint64_t start = CONN_GET(c->wait_ns);

	atomic_fetch_and(&c->watch, ~W_HANDSHAKE);
	atomic_store(&c->dl[DL_RESPONSE], 0); /* its deadline, if any */
	CONN_SET(c->wait_ns, 0);
	if (ok) {
		const unsigned char *p = NULL;
		unsigned len = 0;

		/* the first call's connect took the handshake too */
		if (start)
			CONN_SET(c->connect_dur_ns,
				 CONN_GET(c->connect_dur_ns) + clock_ns() -
				     start);
		ossl.alpn(s, &p, &len);
		if (len == 2 && !memcmp(p, "h2", 2)) {
			conn_lock(c);
			memset(&c->h2, 0, sizeof c->h2); /* H2_UNKNOWN */
			conn_unlock(c);
		}
		return;
	}
	if (atomic_load(&c->watch) & W_COUNT)
		calls_end(fd, c, false, SEG_TLS_FAILURES, 0);
}

/* True when r from an SSL call of s says the connection ended (not
 * "again later"). */
static bool ended(SSL *s, int r)
{
	int saved = errno, e = ossl.get_error(s, r);

	errno = saved;
	return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ||
	       e == SSL_ERROR_SSL;
}

/* After an SSL call of s on c returned r, while c's handshake was not
 * done. */
static void handshaking(SSL *s, int fd, struct conn *c, int r)
{
	if (!(atomic_load(&c->watch) & W_HANDSHAKE))
		return;
	if (ossl.is_init_finished(s))
		handshake_over(s, fd, c, true);
	else if (r <= 0 && ended(s, r))
		handshake_over(s, fd, c, false);
}

/* A handshake call: SSL_connect() or SSL_do_handshake(). */
static int handshake(SSL *s, int (*fn)(SSL *))
{
	struct conn *c = NULL;
	int fd = -1, r;

	c = conn_of(s, &fd, fn == ossl.connect);
	inside++;
	r = fn(s);
	inside--;
	if (c)
		handshaking(s, fd, c, r);
	return r;
}

EXPORT int SSL_connect(SSL *s)
{
	bind_now();
	if (UNLIKELY(!ossl.connect))
		return -1;
	return handshake(s, ossl.connect);
}

EXPORT int SSL_do_handshake(SSL *s)
{
	bind_now();
	if (UNLIKELY(!ossl.do_handshake))
		return -1;
	return handshake(s, ossl.do_handshake);
}

/* The plaintext of a write: what W_* of c make of it. */
#define PLAIN(w) ((w) & (W_COUNT | W_RESPONSE | W_IDLE))

/* Before a write of num plaintext bytes at buf on c (its watch w): a
 * request, as a send is on a bare socket (send_pre() of shim.h), unless
 * HTTP/2's frames make the calls (*framed). */
static inline uint32_t write_before(struct conn *c, uint32_t w, const void *buf,
				    size_t num, bool *framed)
{
	if (w & W_HANDSHAKE)
		return 0;
	if (UNLIKELY(h2(c))) {
		struct iovec iov = {(void *)buf, num};
		streams_sending(c, &iov, 1);
		if ((*framed = h2(c)))
			return 0;
	}
	return send_pre(c, PLAIN(w));
}

/* After that write returned r, having moved n bytes. */
static inline void write_after(SSL *s, int fd, struct conn *c, uint32_t w,
			       int r, const void *buf, size_t n, uint32_t pre,
			       bool framed)
{
	if (w & W_HANDSHAKE) {
		handshaking(s, fd, c, r);
		if (r <= 0)
			return;
		/* done within: the request starts now */
		if (!(framed = h2(c)))
			pre = send_pre(c, PLAIN(w));
	}
	if (framed) {
		struct iovec iov = {(void *)buf, n};
		if (r > 0)
			streams_sent(fd, c, &iov, 1, n);
		return;
	}
	if (r > 0)
		send_post(c, PLAIN(w) & ~W_COUNT, 1, pre);
	else if (pre)
		send_undo(c, pre);
}

/* A write of plaintext on c, tied to s: SSL_write (num) or, with
 * written, SSL_write_ex (len).  One function on the path, so one
 * prologue. */
static __attribute__((noinline)) int write_tied(SSL *s, struct conn *c, int fd,
						const void *buf, int num,
						size_t len, size_t *written,
						bool ex)
{
	uint32_t w = atomic_load_explicit(&c->watch, memory_order_relaxed);
	bool framed = false;
	uint32_t pre = write_before(c, w, buf, len, &framed);
	size_t n;
	int r;

	inside++;
	r = ex ? ossl.write_ex(s, buf, len, written) : ossl.write(s, buf, num);
	inside--;
	n = ex ? (r > 0 && written ? *written : 0) : (r > 0 ? (size_t)r : 0);
	write_after(s, fd, c, w, r, buf, n, pre, framed);
	return r;
}

EXPORT int SSL_write(SSL *s, const void *buf, int num)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.write))
		return -1;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.write(s, buf, num);
	return write_tied(s, c, fd, buf, num, num > 0 ? (size_t)num : 0, NULL,
			  false);
}

EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.write_ex))
		return 0;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.write_ex(s, buf, num, written);
	return write_tied(s, c, fd, buf, 0, num, written, true);
}

/* After a read of plaintext on c returned r (n bytes at buf): the first
 * reply byte ends the call; the end of the connection before it fails
 * it. */
static inline void read_done(SSL *s, int fd, struct conn *c, int r,
			     const void *buf, size_t n, int flags)
{
	uint32_t w = atomic_load_explicit(&c->watch, memory_order_relaxed);

	if (UNLIKELY(w & W_HANDSHAKE)) {
		handshaking(s, fd, c, r);
		if (r <= 0)
			return;
	}
	if (r <= 0 && !ended(s, r))
		return;
	if (UNLIKELY(h2(c))) {
		struct iovec iov = {(void *)buf, n};
		if (r > 0 ? streams_received(fd, c, &iov, 1, n, flags)
			  : streams_closed(fd, c))
			return;
	}
	/* a peek too short for the status line (PHP peeks one byte to see
	 * that the connection lives) shows the reply came; the read after
	 * it ends the call, classified */
	if ((w & W_COUNT) && !(r > 0 && (flags & MSG_PEEK) && n < 12 &&
			       c->classify == POLICY_CLASSIFY_HTTP))
		calls_replied(fd, c, r > 0 ? (ssize_t)n : 0, buf);
	if ((w & W_RESPONSE) &&
	    atomic_load_explicit(&c->awaiting, memory_order_relaxed)) {
		/* awaiting, then the deadline, in this order (send_post) */
		atomic_store(&c->awaiting, false);
		atomic_store(&c->dl[DL_RESPONSE], 0);
	}
}

/* A read of plaintext on c, tied to s, by kind: SSL_read, SSL_read_ex,
 * SSL_peek or SSL_peek_ex (then got). */
enum read_kind { READ, READ_EX, PEEK, PEEK_EX };

static __attribute__((noinline)) int read_tied(SSL *s, struct conn *c, int fd,
					       void *buf, int num, size_t len,
					       size_t *got, enum read_kind k)
{
	size_t n;
	int r;

	inside++;
	switch (k) {
	case READ:
		r = ossl.read(s, buf, num);
		break;
	case READ_EX:
		r = ossl.read_ex(s, buf, len, got);
		break;
	case PEEK:
		r = ossl.peek(s, buf, num);
		break;
	default:
		r = ossl.peek_ex(s, buf, len, got);
		break;
	}
	inside--;
	if (k == READ || k == PEEK)
		n = r > 0 ? (size_t)r : 0;
	else
		n = r > 0 && got ? *got : 0;
	read_done(s, fd, c, r, buf, n, k >= PEEK ? MSG_PEEK : 0);
	return r;
}

EXPORT int SSL_read(SSL *s, void *buf, int num)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.read))
		return -1;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.read(s, buf, num);
	return read_tied(s, c, fd, buf, num, 0, NULL, READ);
}

EXPORT int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *got)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.read_ex))
		return 0;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.read_ex(s, buf, num, got);
	return read_tied(s, c, fd, buf, 0, num, got, READ_EX);
}

EXPORT int SSL_peek(SSL *s, void *buf, int num)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.peek))
		return -1;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.peek(s, buf, num);
	return read_tied(s, c, fd, buf, num, 0, NULL, PEEK);
}

EXPORT int SSL_peek_ex(SSL *s, void *buf, size_t num, size_t *got)
{
	struct conn *c;
	int fd;

	bind_now();
	if (UNLIKELY(!ossl.peek_ex))
		return 0;
	c = conn_of(s, &fd, false);
	if (LIKELY(!c))
		return ossl.peek_ex(s, buf, num, got);
	return read_tied(s, c, fd, buf, 0, num, got, PEEK_EX);
}

/* close_notify goes out as a record: no call (the socket's hooks see
 * W_TLS). */
EXPORT int SSL_shutdown(SSL *s)
{
	int r;

	bind_now();
	if (UNLIKELY(!ossl.shutdown))
		return -1;
	inside++;
	r = ossl.shutdown(s);
	inside--;
	return r;
}

/* s is gone: so is its tie (its address may come back as another). */
EXPORT void SSL_free(SSL *s)
{
	bind_now();
	if (s && bound) {
		struct tie *e = tie_find(s);
		if (e) {
			int fd = atomic_load(&e->fd);
			struct conn *c = fd >= 0 ? fdt_get(fd) : NULL;
			void *expect = s;
			if (c)
				atomic_compare_exchange_strong(&c->tls_ssl,
							       &expect, NULL);
			atomic_store(&e->ssl, KEY_GONE);
			atomic_fetch_add(&frees, 1);
		}
		if (cache_ssl == s)
			cache_ssl = NULL;
		if (tls_pending == s)
			tls_pending = NULL;
	}
	if (ossl.free)
		ossl.free(s);
}
