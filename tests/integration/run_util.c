/* SPDX-License-Identifier: MIT */
/* Helpers of the fusebox run tests (test_run.c, test_run_tls.c): run the
 * command without the shim in the runner, and craft the programs it
 * looks into with cc, objcopy and a few bytes changed by hand. */
#include "run_util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs `fusebox run ARGS...` (NULL-terminated) without the shim in the
 * runner; env adds KEY=VALUE strings. */
struct run *fusebox_run(const char *const *env, ...)
{
	char *argv[32], *bin = build_path("fusebox");
	struct run_opts o = {.timeout = 20, .env = env};
	struct run *r = run_new();
	int n = 0;
	va_list ap;

	argv[n++] = bin;
	argv[n++] = "run";
	va_start(ap, env);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(run_prog(r, &o, argv), 0);
	cr_assert(!r->timed_out, "fusebox run hung: %s %s", r->out, r->err);
	free(bin);
	return r;
}

/* A fresh path in /tmp that does not exist (malloc'd). */
char *fresh_path(const char *stem)
{
	char *p;
	int fd;

	cr_assert(asprintf(&p, "/tmp/fusebox-%s-XXXXXX", stem) > 0);
	fd = mkstemp(p);
	cr_assert(fd >= 0);
	close(fd);
	unlink(p);
	return p;
}

/* Runs `sh -c CMD` (CMD from fmt) and asserts that it succeeds. */
void shell(const char *fmt, ...)
{
	struct run_opts o = {.timeout = 60};
	struct run *r = run_new();
	char *cmd;
	va_list ap;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert_eq(r->status, 0, "%s: %s", cmd, r->err);
	free(cmd);
	free(r);
}

/* Writes text to path with mode. */
void write_file(const char *path, const void *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert(fd >= 0, "%s: cannot create", path);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
}

/* A fresh directory in /tmp (malloc'd). */
char *fresh_dir(const char *stem)
{
	char *d = fresh_path(stem);

	cr_assert_eq(mkdir(d, 0755), 0);
	return d;
}

/* Removes a directory from fresh_dir() and what it holds; frees it. */
void remove_dir(char *dir)
{
	shell("rm -rf %s", dir);
	free(dir);
}

/* Builds dir/name from the C text src with cc, linked with ld (extra cc
 * arguments, "" for none); with go, the object first gets what Go's
 * linker writes into every Go binary, which is what fusebox looks for:
 * a build ID note owned by "Go" (type 4) and a .go.buildinfo section.
 * Returns the path (malloc'd). */
char *craft(const char *dir, const char *name, const char *src, bool go,
	    const char *ld)
{
	static const char note[] = "\4\0\0\0\10\0\0\0\4\0\0\0Go\0\0buildid!";
	char *c, *p;

	cr_assert(asprintf(&c, "%s/%s.c", dir, name) > 0);
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	write_file(c, src, strlen(src), 0644);
	shell("cc -c -o %s.o %s", p, c);
	if (go) {
		char *n, *b;
		cr_assert(asprintf(&n, "%s/go.note", dir) > 0);
		cr_assert(asprintf(&b, "%s/go.buildinfo", dir) > 0);
		write_file(n, note, sizeof note - 1, 0644);
		write_file(b, "\377 Go buildinf:\10\2", 16, 0644);
		shell("objcopy --add-section .note.go.buildid=%s "
		      "--set-section-flags .note.go.buildid=alloc,readonly "
		      "--add-section .go.buildinfo=%s "
		      "--set-section-flags .go.buildinfo=alloc,data %s.o",
		      n, b, p);
		free(n);
		free(b);
	}
	shell("cc -o %s %s.o %s", p, p, ld);
	free(c);
	return p;
}

/* Whether cc -static links here (Debian: libc6-dev has libc.a). */
bool static_links(const char *dir)
{
	struct run_opts o = {.timeout = 60};
	struct run *r = run_new();
	char *cmd;
	bool ok;

	cr_assert(asprintf(&cmd,
			   "printf 'int main(void){return 0;}' > %s/t.c && "
			   "cc -static -o %s/t %s/t.c",
			   dir, dir, dir) > 0);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	ok = r->status == 0;
	free(cmd);
	free(r);
	return ok;
}

/* The bytes of path (malloc'd), their count in *n. */
unsigned char *slurp(const char *path, size_t *n)
{
	struct stat st;
	unsigned char *b;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0 && fstat(fd, &st) == 0);
	*n = (size_t)st.st_size;
	b = malloc(*n);
	cr_assert(b);
	cr_assert_eq(read(fd, b, *n), (ssize_t)*n);
	close(fd);
	return b;
}

/* Builds dir/name, a library of that soname with one function, linked
 * with ld (more cc arguments: the libraries it needs). */
void fake_lib(const char *dir, const char *name, const char *ld)
{
	shell("printf 'int fusebox_test_fn(void){return 0;}' > %s/lib.c && "
	      "cc -shared -fPIC -Wl,-soname,%s -o %s/%s %s/lib.c %s",
	      dir, name, dir, name, dir, ld);
}

/* Runs `fusebox run -p pol -- bin` with env (may be NULL), asserts that
 * it exits 0 and returns what it wrote on stderr (malloc'd). */
char *run_err(const char *pol, const char *bin, const char *const *env)
{
	struct run *r = fusebox_run(env, "-p", pol, "--", bin, NULL);
	char *err;

	cr_assert_eq(r->status, 0, "%s: exit %d: %s", bin, r->status, r->err);
	err = strdup(r->err);
	cr_assert(err);
	free(r);
	return err;
}

/* A program whose read-only data hold version (a string literal) and,
 * when suite, a TLS cipher suite's name, as libcrypto.a and libssl.a
 * bring them. */
char *craft_rodata(const char *dir, const char *name, const char *version,
		   bool suite, const char *ld)
{
	char *src, *bin;

	cr_assert(asprintf(&src,
			   "const char v[] = \"%s\";\n"
			   "const char c[] = \"%s\";\n"
			   "int main(int argc, char **argv)\n{\n"
			   "\t(void)argv;\n"
			   "\treturn argc > 99 ? v[argc] + c[argc] : 0;\n}\n",
			   version, suite ? "TLS_AES_128_GCM_SHA256" : "") > 0);
	bin = craft(dir, name, src, false, ld);
	free(src);
	return bin;
}
