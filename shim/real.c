/* SPDX-License-Identifier: MIT */
/* Binds the next definition (RTLD_NEXT) of every libc symbol the shim
 * replaces, once, before the first hook needs it. */
#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>

struct real real;
atomic_int shim_bound;

static pthread_once_t once = PTHREAD_ONCE_INIT;

#define BIND(field, name) real.field = dlsym(RTLD_NEXT, name)

/* Looks every symbol up; missing ones stay NULL and their hooks fail
 * with ENOSYS (close_range on old glibc). */
static void bind_all(void)
{
	BIND(connect, "connect");
	BIND(close, "close");
	BIND(close_range, "close_range");
	BIND(dup, "dup");
	BIND(dup2, "dup2");
	BIND(dup3, "dup3");
	BIND(fcntl, "fcntl");
	BIND(ioctl, "ioctl");
	BIND(send, "send");
	BIND(sendto, "sendto");
	BIND(sendmsg, "sendmsg");
	BIND(sendmmsg, "sendmmsg");
	BIND(recv, "recv");
	BIND(recvfrom, "recvfrom");
	BIND(recvmsg, "recvmsg");
	BIND(recvmmsg, "recvmmsg");
	BIND(read, "read");
	BIND(write, "write");
	BIND(readv, "readv");
	BIND(writev, "writev");
	BIND(recv_chk, "__recv_chk");
	BIND(recvfrom_chk, "__recvfrom_chk");
	BIND(read_chk, "__read_chk");
	BIND(getsockopt, "getsockopt");
	BIND(setsockopt, "setsockopt");
	BIND(getaddrinfo, "getaddrinfo");
	BIND(gethostbyname, "gethostbyname");
	BIND(gethostbyname2, "gethostbyname2");
	BIND(gethostbyname_r, "gethostbyname_r");
	BIND(gethostbyname2_r, "gethostbyname2_r");
	atomic_store_explicit(&shim_bound, 1, memory_order_release);
}

/* Binds every real_* pointer once; safe from any thread, any time. */
void real_bind(void)
{
	pthread_once(&once, bind_all);
}

/* Binds at load time, before main, so hooks seldom take the slow path. */
__attribute__((constructor)) static void real_init(void)
{
	real_bind();
}
