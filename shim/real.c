/* SPDX-License-Identifier: MIT */
/* The next definition (RTLD_NEXT) of every libc symbol the shim replaces.
 * Each pointer starts at a trampoline that binds them all (once, under
 * pthread_once) and then calls through, so a hook never tests whether it
 * is bound: a call that comes before our constructor still works. */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Looks every symbol up; a missing one (close_range on old glibc) is
 * left to a trampoline that fails with ENOSYS. */
static void bind_all(void);

/* Binds every real_* pointer once; safe from any thread, any time. */
void real_bind(void)
{
	pthread_once(&once, bind_all);
}

#define TRAMPOLINE(ret, fail, name, field, params, args)                       \
	static ret first_##field params                                        \
	{                                                                      \
		real_bind();                                                   \
		if (real.field == first_##field) {                             \
			errno = ENOSYS;                                        \
			return fail;                                           \
		}                                                              \
		return real.field args;                                        \
	}
#define VARIADIC(ret, name, field, params, args)                               \
	static ret first_##field params                                        \
	{                                                                      \
		va_list ap;                                                    \
		void *c;                                                       \
		va_start(ap, b);                                               \
		c = va_arg(ap, void *);                                        \
		va_end(ap);                                                    \
		real_bind();                                                   \
		if (real.field == first_##field) {                             \
			errno = ENOSYS;                                        \
			return -1;                                             \
		}                                                              \
		return real.field args;                                        \
	}
#include "real.def"
#undef TRAMPOLINE
#undef VARIADIC

struct real real = {
#define TRAMPOLINE(ret, fail, name, field, params, args) .field = first_##field,
#define VARIADIC(ret, name, field, params, args)	 .field = first_##field,
#include "real.def"
#undef TRAMPOLINE
#undef VARIADIC
};

static void bind_all(void)
{
	void *p;

#define TRAMPOLINE(ret, fail, name, field, params, args)                       \
	if ((p = dlsym(RTLD_NEXT, name)))                                      \
		real.field = (ret(*) params)p;
#define VARIADIC(ret, name, field, params, args)                               \
	TRAMPOLINE(ret, -1, name, field, params, args)
#include "real.def"
#undef TRAMPOLINE
#undef VARIADIC
}

/* Binds at load time, before main, so trampolines seldom run. */
__attribute__((constructor)) static void real_init(void)
{
	real_bind();
}
