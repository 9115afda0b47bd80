/* SPDX-License-Identifier: MIT */
/* Helpers of the fusebox run tests: run the command, craft programs. */
#ifndef FUSEBOX_RUN_UTIL_H
#define FUSEBOX_RUN_UTIL_H

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define OK_POLICY "[default]\nconnect_timeout = 2s\n"

/* C programs to craft binaries from: one that makes no call, one that
 * imports connect, one that imports io_uring_setup. */
#define C_PLAIN "int main(void)\n{\n\treturn 0;\n}\n"
#define C_CONNECT                                                              \
	"#include <sys/socket.h>\n"                                            \
	"int main(int argc, char **argv)\n{\n\t(void)argv;\n"                  \
	"\treturn argc > 99 ? connect(0, 0, 0) : 0;\n}\n"
#define C_URING                                                                \
	"int io_uring_setup(unsigned n, void *p);\n"                           \
	"int main(int argc, char **argv)\n{\n\t(void)argv;\n"                  \
	"\treturn argc > 99 ? io_uring_setup(0, 0) : 0;\n}\n"

/* Runs `fusebox run ARGS...` (NULL-terminated) without the shim in the
 * runner; env adds KEY=VALUE strings. */
struct run *fusebox_run(const char *const *env, ...);

/* A fresh path in /tmp that does not exist (malloc'd). */
char *fresh_path(const char *stem);

/* Runs `sh -c CMD` (CMD from fmt) and asserts that it succeeds. */
void shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes text to path with mode. */
void write_file(const char *path, const void *text, size_t len, mode_t mode);

/* A fresh directory in /tmp (malloc'd). */
char *fresh_dir(const char *stem);

/* Removes a directory from fresh_dir() and what it holds; frees it. */
void remove_dir(char *dir);

/* Builds dir/name from the C text src with cc, linked with ld (extra cc
 * arguments, "" for none); with go, the object first gets what Go's
 * linker writes into every Go binary, which is what fusebox looks for:
 * a build ID note owned by "Go" (type 4) and a .go.buildinfo section.
 * Returns the path (malloc'd). */
char *craft(const char *dir, const char *name, const char *src, bool go,
	    const char *ld);

/* Whether cc -static links here (Debian: libc6-dev has libc.a). */
bool static_links(const char *dir);

/* The bytes of path (malloc'd), their count in *n. */
unsigned char *slurp(const char *path, size_t *n);

/* Builds dir/name, a library of that soname with one function, linked
 * with ld (more cc arguments: the libraries it needs). */
void fake_lib(const char *dir, const char *name, const char *ld);

/* Runs `fusebox run -p pol -- bin` with env (may be NULL), asserts that
 * it exits 0 and returns what it wrote on stderr (malloc'd). */
char *run_err(const char *pol, const char *bin, const char *const *env);

/* A program whose read-only data hold version (a string literal) and,
 * when suite, a TLS cipher suite's name, as libcrypto.a and libssl.a
 * bring them. */
char *craft_rodata(const char *dir, const char *name, const char *version,
		   bool suite, const char *ld);

#endif
