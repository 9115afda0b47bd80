/* SPDX-License-Identifier: MIT */
/* Preloaded right after libtsan.so into the guarded children of
 * `make SANITIZER=thread test`.  In a program that is not built with
 * -fsanitize=thread, TSan starts at its first intercepted call, which can
 * be a malloc inside newlocale() from another library's constructor (curl
 * and wget: libp11-kit), under glibc's locale lock.  Its start-up looks up
 * swift_demangle; the failed dlsym() leaves a message that dlerror()
 * translates, and gettext takes the same lock: glibc's lock word is
 * corrupted and the program's next setlocale() hangs for ever.  Defining
 * the symbol makes the look-up succeed; it never demangles anything. */
#include <stddef.h>
#include <stdint.h>

char *swift_demangle(const char *mangled, size_t len, char *out, size_t *outlen,
		     uint32_t flags);

/* TSan's optional Swift demangler: NULL says "not a Swift name". */
__attribute__((visibility("default"))) char *swift_demangle(
    const char *mangled, size_t len, char *out, size_t *outlen, uint32_t flags)
{
	(void)mangled;
	(void)len;
	(void)out;
	(void)outlen;
	(void)flags;
	return NULL;
}
