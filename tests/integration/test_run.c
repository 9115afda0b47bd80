/* SPDX-License-Identifier: MIT */
/* fusebox run: its exit status is the command's, an invalid policy stops
 * it before the command starts, it prepends the library to LD_PRELOAD and
 * exports an absolute FUSEBOX_POLICY, warns for programs it cannot guard,
 * and the policy really applies to the command. */
#include "run_util.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* The absolute, resolved path of the library. */
static char *library(void)
{
	char *lib = build_path("libfusebox.so"), *abs = realpath(lib, NULL);

	cr_assert(abs, "%s: not found", lib);
	free(lib);
	return abs;
}

/* Copies the file from to the new file to with mode. */
static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	cr_assert(in >= 0, "%s: cannot open", from);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0700);
	cr_assert(out >= 0, "%s: cannot create", to);
	while ((n = read(in, buf, sizeof buf)) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
	cr_assert_eq(chmod(to, mode), 0);
}

Test(run, exit_status_is_the_commands)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "sh", "-c", "exit 7", NULL);
	cr_assert_eq(r->status, 7, "exit %d: %s", r->status, r->err);
	r = fusebox_run(NULL, "-p", pol, "--", "true", NULL);
	cr_assert_eq(r->status, 0, "exit %d: %s", r->status, r->err);
	/* fusebox run execs: a signal ends the command as it would */
	r = fusebox_run(NULL, "-p", pol, "--", "sh", "-c", "kill -TERM $$",
			NULL);
	cr_assert_eq(r->status, 128 + 15, "exit %d: %s", r->status, r->err);
	unlink(pol);
}

Test(run, invalid_policy_exits_2_before_the_command)
{
	char *pol = policy_write("[default]\n"
				 "connect_timeout = 300\n"
				 "[r]\n"
				 "response_timeout = banana\n");
	char *marker = fresh_path("marker"), *cmd, *want;

	cr_assert(asprintf(&cmd, "touch %s", marker) > 0);
	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "sh", "-c", cmd, NULL);
	cr_assert_eq(r->status, 2, "exit %d: %s", r->status, r->err);
	cr_assert(access(marker, F_OK) < 0, "the command ran");
	/* every error, each as FILE:LINE: */
	for (int line = 2; line <= 4; line++) {
		cr_assert(asprintf(&want, "%s:%d: ", pol, line) > 0);
		cr_assert(strstr(r->err, want), "no '%s' in '%s'", want,
			  r->err);
		free(want);
	}
	free(cmd);
	free(marker);
	unlink(pol);
}

Test(run, library_prepended_to_ld_preload)
{
	/* malloc'd: run_prog frees the LD_PRELOAD= entries of the child's
	 * environment, ours included */
	const char *env[] = {strdup("LD_PRELOAD=/nonexistent-lib.so"), NULL};
	char *pol = policy_write(OK_POLICY), *lib = library(), *want;

	/* the loader complains about the missing library on stderr: fine */
	struct run *r = fusebox_run(env, "-p", pol, "--", "sh", "-c",
				    "printf '%s\\n' \"$LD_PRELOAD\"", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want, "%s /nonexistent-lib.so\n", lib) > 0);
	cr_assert_str_eq(r->out, want);
	free(want);
	/* no LD_PRELOAD before: the library alone */
	r = fusebox_run(NULL, "-p", pol, "--", "sh", "-c",
			"printf '%s\\n' \"$LD_PRELOAD\"", NULL);
	cr_assert(asprintf(&want, "%s\n", lib) > 0);
	cr_assert_str_eq(r->out, want, "stderr: %s", r->err);
	free(want);
	free(lib);
	unlink(pol);
}

Test(run, relative_policy_exported_absolute)
{
	char dir[] = "/tmp/fusebox-run-XXXXXX", *file, *cmd, *bin, *want;
	char real[PATH_MAX];
	struct run_opts o = {.timeout = 20};
	struct run *r = run_new();
	FILE *f;

	cr_assert(mkdtemp(dir));
	cr_assert(realpath(dir, real));
	cr_assert(asprintf(&file, "%s/rel.ini", dir) > 0);
	f = fopen(file, "w");
	cr_assert(f);
	fputs(OK_POLICY, f);
	fclose(f);
	bin = build_path("fusebox");
	cr_assert(asprintf(&cmd,
			   "cd %s && exec %s run -p rel.ini -- "
			   "sh -c 'echo \"$FUSEBOX_POLICY\"'",
			   dir, bin) > 0);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert(asprintf(&want, "%s/rel.ini\n", real) > 0);
	cr_assert_str_eq(r->out, want, "stderr: %s", r->err);
	cr_assert_eq(r->status, 0);
	unlink(file);
	rmdir(dir);
	free(want);
	free(cmd);
	free(bin);
	free(file);
	free(r);
}

Test(run, warns_for_a_static_program)
{
	char *pol = policy_write(OK_POLICY), *src, *bin = fresh_path("static");
	struct run_opts o = {.timeout = 60};
	struct run *cc = run_new();
	FILE *f;

	cr_assert(asprintf(&src, "%s.c", bin) > 0);
	f = fopen(src, "w");
	cr_assert(f);
	fputs("int main(void)\n{\n\treturn 0;\n}\n", f);
	fclose(f);
	cr_assert_eq(
	    run_prog(cc, &o, (char *[]){"cc", "-static", "-o", bin, src, NULL}),
	    0);
	unlink(src);
	if (cc->status != 0)
		cr_skip_test("cc -static does not work here: %s", cc->err);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->err, "statically linked"), "no warning: '%s'",
		  r->err);
	cr_assert(strstr(r->err, bin), "warning without the path: '%s'",
		  r->err);
	unlink(bin);
	unlink(pol);
	free(src);
	free(bin);
	free(cc);
}

Test(run, warns_for_a_setuid_program)
{
	char *pol = policy_write(OK_POLICY), *bin = fresh_path("suid");

	copy_file("/bin/true", bin, 04755);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert(strstr(r->err, "setuid"), "no warning: '%s'", r->err);
	cr_assert(strstr(r->err, bin), "warning without the path: '%s'",
		  r->err);
	unlink(bin);
	unlink(pol);
	free(bin);
}

Test(run, no_warning_for_a_dynamic_program)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r = fusebox_run(NULL, "-p", pol, "--", "/bin/true", NULL);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->errlen, 0, "stderr: '%s'", r->err);
	r = fusebox_run(NULL, "-p", pol, "--", "true", NULL);
	cr_assert_eq(r->errlen, 0, "stderr: '%s'", r->err);
	unlink(pol);
}

Test(run, warns_for_a_go_program_without_cgo)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_path("go");
	char *src, *bin, *cmd;
	struct run_opts o = {.timeout = 120};
	struct run *r = run_new();

	cr_assert_eq(run_prog(r, &o, (char *[]){"go", "version", NULL}), 0);
	if (r->status != 0)
		cr_skip_test("no Go toolchain");
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert(asprintf(&src, "%s/main.go", dir) > 0);
	cr_assert(asprintf(&bin, "%s/prog", dir) > 0);
	FILE *f = fopen(src, "w");
	cr_assert(f);
	fputs("package main\n\nfunc main() {}\n", f);
	fclose(f);
	cr_assert(asprintf(&cmd,
			   "cd %s && CGO_ENABLED=0 GOCACHE=%s/cache "
			   "go build -o prog main.go",
			   dir, dir) > 0);
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert_eq(r->status, 0, "go build: %s", r->err);
	r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert(strstr(r->err, "is a statically linked Go program"),
		  "no warning: '%s'", r->err);
	free(src);
	free(bin);
	free(cmd);
	free(dir);
}

Test(run, warns_for_a_static_go_program)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("gostatic");
	Elf64_Ehdr eh;
	char *bin;
	int fd;

	if (!static_links(dir))
		cr_skip_test("cc -static does not work here");
	bin = craft(dir, "prog", C_PLAIN, true, "-static");
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->err, "is a statically linked Go program: it makes "
				 "its own system calls, so it runs unguarded; "
				 "its TLS is Go's own (crypto/tls)\n"),
		  "'%s'", r->err);
	cr_assert(strstr(r->err, bin), "warning without the path: '%s'",
		  r->err);
	cr_assert(!strstr(r->err, "cgo"), "'%s'", r->err);
	/* section headers stripped: the note segment still says Go */
	fd = open(bin, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &eh, sizeof eh, 0), (ssize_t)sizeof eh);
	eh.e_shoff = 0;
	eh.e_shnum = eh.e_shstrndx = 0;
	cr_assert_eq(pwrite(fd, &eh, sizeof eh, 0), (ssize_t)sizeof eh);
	close(fd);
	r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->err, "is a statically linked Go program"),
		  "no sections: '%s'", r->err);
	unlink(pol);
	remove_dir(dir);
}

Test(run, warns_that_a_cgo_program_is_guarded_only_in_its_c_code)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("cgo");
	static const char want[] =
	    "is a Go program: its Go code (net, net/http) makes its own "
	    "system calls and runs unguarded; only connections its C code "
	    "(cgo) makes are guarded; its TLS is Go's own (crypto/tls), whose "
	    "requests fusebox cannot see\n";
	/* cgo links the C library dynamically; whether its C code imports
	 * connect or not, Go's net package makes its own system calls */
	const char *srcs[] = {C_PLAIN, C_CONNECT};

	for (int i = 0; i < 2; i++) {
		char *bin = craft(dir, i ? "conn" : "plain", srcs[i], true, "");
		struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
		cr_assert_eq(r->status, 0, "%s", r->err);
		cr_assert(strstr(r->err, want), "%s: '%s'", bin, r->err);
		cr_assert(!strstr(r->err, "without cgo"), "'%s'", r->err);
		free(bin);
		free(r);
	}
	/* a real one: Debian's promtool is a cgo Go program */
	struct run_opts o = {.timeout = 10};
	struct run *w = run_new();
	cr_assert_eq(
	    run_prog(w, &o,
		     (char *[]){"sh", "-c", "command -v promtool", NULL}),
	    0);
	if (w->status == 0) {
		struct run *r = fusebox_run(NULL, "-p", pol, "--", "promtool",
					    "--version", NULL);
		cr_assert(strstr(r->err, want), "promtool: '%s'", r->err);
		free(r);
	}
	free(w);
	unlink(pol);
	remove_dir(dir);
}

Test(run, warns_for_an_io_uring_program)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("uring");
	char *ld, *bin, *want;

	/* io_uring_setup from a library of its own, then liburing */
	shell("printf 'int io_uring_setup(unsigned n, void *p)"
	      "{(void)n; (void)p; return -1;}' > %s/lib.c && "
	      "cc -shared -fPIC -Wl,-soname,libfusebox-test-uring.so "
	      "-o %s/libfusebox-test-uring.so %s/lib.c && "
	      "cc -shared -fPIC -Wl,-soname,liburing.so.2 "
	      "-o %s/liburing.so.2 %s/lib.c",
	      dir, dir, dir, dir, dir);
	cr_assert(asprintf(&ld, "%s/libfusebox-test-uring.so -Wl,-rpath,%s",
			   dir, dir) > 0);
	bin = craft(dir, "imports", C_URING, false, ld);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s imports io_uring_setup: "
			   "the connections it drives through io_uring "
			   "bypass the library and run unguarded\n",
			   bin) > 0);
	cr_assert(strstr(r->err, want), "'%s'", r->err);
	free(ld);
	free(bin);
	free(want);
	/* needed, though nothing of it is called (as a plugin might) */
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/liburing.so.2 -Wl,-rpath,%s",
			   dir, dir) > 0);
	bin = craft(dir, "links", C_PLAIN, false, ld);
	r = fusebox_run(NULL, "-p", pol, "--", bin, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->err, "links liburing.so.2: the connections it "
				 "drives through io_uring"),
		  "'%s'", r->err);
	unlink(pol);
	remove_dir(dir);
}

Test(run, warns_for_static_programs_a_script_runs)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("script");
	char *stat, *named, *interp, *viaenv, *text, *want, *cmd, *bin;
	struct run_opts o = {.timeout = 20};
	struct run *r;

	if (!static_links(dir))
		cr_skip_test("cc -static does not work here");
	stat = craft(dir, "tool", C_PLAIN, false, "-static");
	/* named by absolute path in the text: looked into */
	cr_assert(asprintf(&named, "%s/named.sh", dir) > 0);
	cr_assert(asprintf(&text, "#!/bin/sh\nexec %s \"$@\"\n", stat) > 0);
	write_file(named, text, strlen(text), 0755);
	r = fusebox_run(NULL, "-p", pol, "--", named, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s, named in %s, is "
			   "statically linked: LD_PRELOAD cannot reach it, so "
			   "it runs unguarded\n",
			   stat, named) > 0);
	cr_assert(strstr(r->err, want), "'%s'", r->err);
	/* its interpreter */
	cr_assert(asprintf(&interp, "%s/interp.sh", dir) > 0);
	cr_assert(asprintf(&text, "#!%s\n", stat) > 0);
	write_file(interp, text, strlen(text), 0755);
	r = fusebox_run(NULL, "-p", pol, "--", interp, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want,
			   "%s, the interpreter of %s, is statically linked",
			   stat, interp) > 0);
	cr_assert(strstr(r->err, want), "'%s'", r->err);
	/* #!/usr/bin/env NAME: NAME found in PATH as env will */
	cr_assert(asprintf(&viaenv, "%s/viaenv.sh", dir) > 0);
	write_file(viaenv, "#!/usr/bin/env tool\n", 20, 0755);
	bin = build_path("fusebox");
	cr_assert(asprintf(&cmd, "PATH=%s:$PATH exec %s run -p %s -- %s", dir,
			   bin, pol, viaenv) > 0);
	r = run_new();
	cr_assert_eq(run_prog(r, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(asprintf(&want,
			   "%s, the interpreter of %s, is statically linked",
			   stat, viaenv) > 0);
	cr_assert(strstr(r->err, want), "'%s'", r->err);
	free(r);
	unlink(pol);
	remove_dir(dir);
}

Test(run, no_warning_for_a_script_of_dynamic_programs)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("dynscript");
	char *stat, *script, *text;

	if (!static_links(dir))
		cr_skip_test("cc -static does not work here");
	stat = craft(dir, "tool", C_PLAIN, false, "-static");
	cr_assert(asprintf(&script, "%s/s.sh", dir) > 0);
	/* a comment is not run; nor is a file that is not executable; the
	 * set-user-ID bit of a script does nothing (its interpreter's
	 * would) */
	cr_assert(asprintf(&text,
			   "#! /bin/sh -e\n"
			   "# %s used to be run here\n"
			   "/bin/true </dev/null >/dev/null\n"
			   "cat /etc/hostname >/dev/null; exec /bin/true\n",
			   stat) > 0);
	write_file(script, text, strlen(text), 04755);
	struct run *r = fusebox_run(NULL, "-p", pol, "--", script, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_eq(r->errlen, 0, "stderr: '%s'", r->err);
	unlink(pol);
	remove_dir(dir);
}

/* Sets the little-endian field of w bytes at off of b to v. */
static void set_field(unsigned char *b, size_t off, int w, uint64_t v)
{
	for (int i = 0; i < w; i++)
		b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

/* Offsets and sizes that point outside a file of n bytes, or wrap. */
#define BAD_VALUES(n)                                                          \
	{                                                                      \
		~0ull - 7, ~0ull - 63, 1ull << 63, 1ull << 40, (n)-1           \
	}

/* Writes the n bytes of orig, one field of w bytes at off set to each
 * BAD_VALUES in turn, to dir/PREFIX%03d from *k on; runs each under
 * `fusebox run` too when run is true. */
static void write_bad(const unsigned char *orig, size_t n, size_t off, int w,
		      const char *dir, const char *prefix, int *k, bool run,
		      const char *pol)
{
	uint64_t bad[] = BAD_VALUES(n);
	unsigned char *b = malloc(n);

	cr_assert(b);
	for (size_t v = 0; v < sizeof bad / sizeof bad[0]; v++) {
		char *p;
		memcpy(b, orig, n);
		set_field(b, off, w, bad[v]);
		cr_assert(asprintf(&p, "%s/%s%03d", dir, prefix, (*k)++) > 0);
		write_file(p, b, n, 0755);
		if (run) {
			struct run *r =
			    fusebox_run(NULL, "-p", pol, "--", p, NULL);
			cr_assert_eq(r->status, 0, "%s: exit %d: %s", p,
				     r->status, r->err);
			free(r);
		}
		free(p);
	}
	free(b);
}

/* Runs fusebox run on copies of the program base, written to dir, with
 * the offsets and sizes of its headers made wrong, cut short and with
 * random bytes: it must run every one it can start. */
static void corrupt(const char *dir, const char *base, const char *pol)
{
	unsigned char *orig, *b;
	uint32_t seed = 2463534242u;
	int k = 0, named = 0;
	Elf64_Ehdr eh;
	size_t n;

	orig = slurp(base, &n);
	cr_assert(n > sizeof eh);
	memcpy(&eh, orig, sizeof eh);
	cr_assert(eh.e_shoff < n && eh.e_phoff < n);
	/* Section headers: the kernel and ld.so never read them, so the
	 * program runs whatever they say, and fusebox run must let it */
	write_bad(orig, n, offsetof(Elf64_Ehdr, e_shoff), 8, dir, "s", &k, true,
		  pol);
	write_bad(orig, n, offsetof(Elf64_Ehdr, e_shnum), 2, dir, "s", &k, true,
		  pol);
	write_bad(orig, n, offsetof(Elf64_Ehdr, e_shstrndx), 2, dir, "s", &k,
		  true, pol);
	for (size_t i = 0; i < eh.e_shnum; i++) {
		size_t sh = eh.e_shoff + i * sizeof(Elf64_Shdr);
		write_bad(orig, n, sh + offsetof(Elf64_Shdr, sh_offset), 8, dir,
			  "s", &k, true, pol);
		write_bad(orig, n, sh + offsetof(Elf64_Shdr, sh_size), 8, dir,
			  "s", &k, true, pol);
		write_bad(orig, n, sh + offsetof(Elf64_Shdr, sh_link), 4, dir,
			  "s", &k, true, pol);
		write_bad(orig, n, sh + offsetof(Elf64_Shdr, sh_name), 4, dir,
			  "s", &k, true, pol);
	}
	/* Program headers, truncated files and random bytes may stop the
	 * kernel: such files are only named in a script, which runs */
	write_bad(orig, n, offsetof(Elf64_Ehdr, e_phoff), 8, dir, "p", &named,
		  false, NULL);
	for (size_t i = 0; i < eh.e_phnum; i++) {
		size_t ph = eh.e_phoff + i * sizeof(Elf64_Phdr);
		write_bad(orig, n, ph + offsetof(Elf64_Phdr, p_offset), 8, dir,
			  "p", &named, false, NULL);
		write_bad(orig, n, ph + offsetof(Elf64_Phdr, p_filesz), 8, dir,
			  "p", &named, false, NULL);
	}
	for (size_t cut = 0; cut < n; cut += cut < 128 ? 7 : n / 40) {
		char *p;
		cr_assert(asprintf(&p, "%s/p%03d", dir, named++) > 0);
		write_file(p, orig, cut, 0755);
		free(p);
	}
	b = malloc(n);
	cr_assert(b);
	for (int i = 0; i < 120; i++) {
		char *p;
		memcpy(b, orig, n);
		for (int j = 0; j < 24; j++) { /* mostly where offsets live */
			size_t at;
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			at = j % 2   ? seed % sizeof eh
			     : j % 4 ? eh.e_phoff + seed % 512
				     : eh.e_shoff + seed % (n - eh.e_shoff);
			if (at < n)
				b[at] = (unsigned char)(seed >> 8);
		}
		cr_assert(asprintf(&p, "%s/p%03d", dir, named++) > 0);
		write_file(p, b, n, 0755);
		free(p);
	}
	/* scripts naming 30 of them each (run looks into 32 at most) */
	for (int first = 0; first < named; first += 30) {
		char *script, *text = strdup("#!/bin/sh\n:"), *t;
		for (int i = first; i < named && i < first + 30; i++) {
			cr_assert(asprintf(&t, "%s %s/p%03d", text, dir, i) >
				  0);
			free(text);
			text = t;
		}
		cr_assert(asprintf(&t, "%s\nexit 0\n", text) > 0);
		cr_assert(asprintf(&script, "%s/named%03d.sh", dir, first) > 0);
		write_file(script, t, strlen(t), 0755);
		struct run *r =
		    fusebox_run(NULL, "-p", pol, "--", script, NULL);
		cr_assert_eq(r->status, 0, "%s: exit %d: %s", script, r->status,
			     r->err);
		free(r);
		free(script);
		free(text);
		free(t);
	}
	free(orig);
	free(b);
}

Test(run, survives_corrupt_and_truncated_programs, .timeout = 240)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("corrupt");
	char *base = craft(dir, "base", C_CONNECT, true, ""), *tls, *ld, *sub;

	corrupt(dir, base, pol);
	/* not Go: the TLS checks read its libraries (through RUNPATH), its
	 * symbol table and .rodata too */
	cr_assert(asprintf(&sub, "%s/tls", dir) > 0);
	cr_assert_eq(mkdir(sub, 0700), 0);
	fake_lib(dir, "libplain.so", "");
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libplain.so -Wl,-rpath,%s",
			   dir, dir) > 0);
	tls =
	    craft_rodata(sub, "base", "OpenSSL 3.0.13 30 Jan 2024", false, ld);
	corrupt(sub, tls, pol);
	free(tls);
	free(sub);
	free(ld);
	free(base);
	unlink(pol);
	remove_dir(dir);
}

Test(run, the_policy_applies_to_the_command)
{
	char *pol = policy_write("[default]\nconnect_timeout = 300ms\n");
	struct run_opts bare = {.timeout = 15};
	struct fixture b;
	char *u;

	cr_assert_eq(fixture_start(&b, "blackhole", NULL), 0);
	cr_assert(asprintf(&u, "http://127.0.0.1:%d/", b.port) > 0);
	struct run *r =
	    fusebox_run(NULL, "-p", pol, "--", "curl", "-sS", "-o", "/dev/null",
			"--connect-timeout", "3", u, NULL);
	cr_assert_eq(r->status, 28, "curl exit %d: %s", r->status, r->err);
	cr_assert(r->secs < 1.5, "under fusebox run: %.2f s", r->secs);
	struct run *n = run_new();
	cr_assert_eq(run_prog(n, &bare,
			      (char *[]){"curl", "-sS", "-o", "/dev/null",
					 "--connect-timeout", "3", u, NULL}),
		     0);
	cr_assert_eq(n->status, 28, "curl exit %d: %s", n->status, n->err);
	cr_assert(n->secs >= 2.5, "without fusebox: %.2f s", n->secs);
	free(u);
	free(n);
	unlink(pol);
	fixture_stop(&b);
}

Test(run, usage_errors)
{
	char *pol = policy_write(OK_POLICY);

	struct run *r = fusebox_run(NULL, NULL);
	cr_assert_eq(r->status, 2, "no COMMAND: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, NULL);
	cr_assert_eq(r->status, 2, "no COMMAND after -p: exit %d", r->status);
	r = fusebox_run(NULL, "--bogus", "--", "true", NULL);
	cr_assert_eq(r->status, 2, "unknown option: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, "--", "/nonexistent/command", NULL);
	cr_assert_eq(r->status, 127, "missing command: exit %d", r->status);
	r = fusebox_run(NULL, "-p", pol, "--", "fusebox-no-such-command", NULL);
	cr_assert_eq(r->status, 127, "command not in PATH: exit %d", r->status);
	unlink(pol);
}
