/* SPDX-License-Identifier: MIT */
/* fusebox run warns for programs whose TLS the library does not see
 * (GnuTLS, NSS, OpenSSL 1.x, Java, OpenSSL linked in), found in what they
 * need, what their libraries need, their symbols and read-only data; and
 * not for OpenSSL 3's libssl.so.3, which it sees. */
#include "run_util.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What every warning about TLS the library does not see ends with. */
#define TLS_TAIL                                                               \
	": fusebox guards its connections (connect, connect_timeout, "         \
	"breakers on connect failures, idle_timeout, send_timeout) but "       \
	"cannot see requests inside TLS: no per-request calls, "               \
	"response_timeout or classify = http there (only OpenSSL 3's "         \
	"libssl.so.3 is seen)\n"

/* How many times needle is in s. */
static int count(const char *s, const char *needle)
{
	int n = 0;

	for (; (s = strstr(s, needle)); s++)
		n++;
	return n;
}

Test(run, warns_for_a_program_whose_tls_fusebox_cannot_see)
{
	static const struct {
		const char *lib, *uses;
	} libs[] = {
	    {"libgnutls.so.30", "GnuTLS"},
	    {"libcurl-gnutls.so.4", "GnuTLS"},
	    {"libnss3.so", "NSS"},
	    {"libssl3.so", "NSS"},
	    {"libcurl-nss.so.4", "NSS"},
	    {"libssl.so.1.1", "OpenSSL 1.1"},
	    {"libssl.so.1.0.2", "OpenSSL 1.0"},
	    {"libjli.so", "Java's JSSE"},
	};
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("tls");
	char *ld, *bin, *err, *want;

	fake_lib(dir, "libssl.so.3", "");
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
		fake_lib(dir, libs[i].lib, "");
		/* needed, though nothing of it is called */
		cr_assert(asprintf(&ld,
				   "-Wl,--no-as-needed %s/%s -Wl,-rpath,%s",
				   dir, libs[i].lib, dir) > 0);
		bin = craft(dir, "prog", C_CONNECT, false, ld);
		err = run_err(pol, bin, NULL);
		cr_assert(asprintf(&want,
				   "fusebox run: warning: %s uses %s (needs "
				   "%s)" TLS_TAIL,
				   bin, libs[i].uses, libs[i].lib) > 0);
		cr_assert_str_eq(err, want, "%s", libs[i].lib);
		free(err);
		free(want);
		free(ld);
		/* with OpenSSL 3's libssl as well: no warning */
		cr_assert(asprintf(&ld,
				   "-Wl,--no-as-needed %s/%s %s/libssl.so.3 "
				   "-Wl,-rpath,%s",
				   dir, libs[i].lib, dir, dir) > 0);
		unlink(bin);
		free(bin);
		bin = craft(dir, "prog", C_CONNECT, false, ld);
		err = run_err(pol, bin, NULL);
		cr_assert_str_empty(err, "%s and libssl.so.3", libs[i].lib);
		free(err);
		free(ld);
		unlink(bin);
		free(bin);
	}
	/* a Java launcher is known by its name too */
	bin = craft(dir, "java", C_PLAIN, false, "");
	err = run_err(pol, bin, NULL);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s uses Java's JSSE (named "
			   "java)" TLS_TAIL,
			   bin) > 0);
	cr_assert_str_eq(err, want);
	free(err);
	free(want);
	free(bin);
	unlink(pol);
	remove_dir(dir);
}

Test(run, warns_for_tls_that_a_needed_library_brings)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("tlsdeps");
	char *ld, *bin, *err, *want, *env[2];

	fake_lib(dir, "libgnutls.so.30", "");
	fake_lib(dir, "libssl.so.3", "");
	/* libmid.so needs GnuTLS; the program finds it through
	 * RUNPATH=$ORIGIN */
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libgnutls.so.30 "
			   "-Wl,-rpath,%s",
			   dir, dir) > 0);
	fake_lib(dir, "libmid.so", ld);
	free(ld);
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libmid.so "
			   "-Wl,-rpath,'$ORIGIN'",
			   dir) > 0);
	bin = craft(dir, "prog", C_CONNECT, false, ld);
	err = run_err(pol, bin, NULL);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s uses GnuTLS (needs "
			   "libmid.so, which needs libgnutls.so.30)" TLS_TAIL,
			   bin) > 0);
	cr_assert_str_eq(err, want);
	free(err);
	free(want);
	free(bin);
	free(ld);
	/* found through LD_LIBRARY_PATH (the program has no RUNPATH) */
	shell("mkdir %s/ldpath && cp %s/libmid.so %s/ldpath/", dir, dir, dir);
	cr_assert(asprintf(&ld, "-Wl,--no-as-needed %s/ldpath/libmid.so", dir) >
		  0);
	bin = craft(dir, "noruns", C_CONNECT, false, ld);
	cr_assert(asprintf(&env[0], "LD_LIBRARY_PATH=%s/ldpath", dir) > 0);
	env[1] = NULL;
	err = run_err(pol, bin, (const char *const *)env);
	cr_assert(strstr(err, " uses GnuTLS (needs libmid.so, which needs "
			      "libgnutls.so.30)"),
		  "'%s'", err);
	free(err);
	free(env[0]);
	free(bin);
	free(ld);
	/* a library that needs OpenSSL 3's libssl and GnuTLS, as Debian's
	 * libcurl.so.4 needs libssl.so.3 and libldap (GnuTLS): none */
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libgnutls.so.30 "
			   "%s/libssl.so.3 -Wl,-rpath,%s",
			   dir, dir, dir) > 0);
	fake_lib(dir, "libboth.so", ld);
	free(ld);
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libboth.so -Wl,-rpath,%s",
			   dir, dir) > 0);
	bin = craft(dir, "both", C_CONNECT, false, ld);
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	free(bin);
	free(ld);
	/* only the program's own libraries are read, not theirs */
	cr_assert(asprintf(&ld, "-Wl,--no-as-needed %s/libmid.so -Wl,-rpath,%s",
			   dir, dir) > 0);
	fake_lib(dir, "libtop.so", ld);
	free(ld);
	cr_assert(asprintf(&ld, "-Wl,--no-as-needed %s/libtop.so -Wl,-rpath,%s",
			   dir, dir) > 0);
	bin = craft(dir, "deep", C_CONNECT, false, ld);
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	free(bin);
	free(ld);
	unlink(pol);
	remove_dir(dir);
}

/* A program that defines one of libssl's functions, as a program that
 * links OpenSSL's libssl.a does. */
#define C_SSL                                                                  \
	"int SSL_connect(void *s);\n"                                          \
	"int SSL_connect(void *s)\n{\n\treturn s != 0;\n}\n"                   \
	"int main(int argc, char **argv)\n{\n\t(void)argv;\n"                  \
	"\treturn argc > 99 ? SSL_connect(0) : 0;\n}\n"

/* The offset in the ELF file b of n bytes of its section named name;
 * its size in *len. */
static uint64_t section_at(const unsigned char *b, size_t n, const char *name,
			   uint64_t *len)
{
	Elf64_Ehdr eh;
	Elf64_Shdr s, names;

	memcpy(&eh, b, sizeof eh);
	cr_assert(eh.e_shoff + (uint64_t)eh.e_shnum * sizeof s <= n);
	memcpy(&names, b + eh.e_shoff + eh.e_shstrndx * sizeof s, sizeof s);
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		memcpy(&s, b + eh.e_shoff + i * sizeof s, sizeof s);
		if (!strcmp((const char *)b + names.sh_offset + s.sh_name,
			    name)) {
			*len = s.sh_size;
			return s.sh_offset;
		}
	}
	cr_assert_fail("no section %s", name);
	return 0;
}

Test(run, warns_for_a_program_that_links_openssl_statically)
{
	char *pol = policy_write(OK_POLICY), *dir = fresh_dir("tlsstatic");
	char *ld, *bin, *err, *want;
	unsigned char *b;
	uint64_t at, len;
	size_t n;

	/* its symbol table says so, then (stripped) its dynamic one */
	bin = craft(dir, "syms", C_SSL, false, "");
	err = run_err(pol, bin, NULL);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s links OpenSSL statically "
			   "(defines SSL_connect)" TLS_TAIL,
			   bin) > 0);
	cr_assert_str_eq(err, want);
	free(err);
	free(want);
	free(bin);
	bin = craft(dir, "dynsyms", C_SSL, false, "-rdynamic -s");
	err = run_err(pol, bin, NULL);
	cr_assert(strstr(err, " links OpenSSL statically (defines "
			      "SSL_connect)"),
		  "'%s'", err);
	free(err);
	free(bin);
	/* needing libssl.so.3 as well: none */
	fake_lib(dir, "libssl.so.3", "");
	cr_assert(asprintf(&ld,
			   "-Wl,--no-as-needed %s/libssl.so.3 -Wl,-rpath,%s",
			   dir, dir) > 0);
	bin = craft(dir, "with3", C_SSL, false, ld);
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	free(bin);
	/* stripped: the version string and a cipher suite's name */
	bin =
	    craft_rodata(dir, "strs", "OpenSSL 3.0.13 30 Jan 2024", true, "-s");
	err = run_err(pol, bin, NULL);
	cr_assert(asprintf(&want,
			   "fusebox run: warning: %s links OpenSSL statically "
			   "(its read-only data names OpenSSL 3.0.13)" TLS_TAIL,
			   bin) > 0);
	cr_assert_str_eq(err, want);
	free(err);
	free(want);
	free(bin);
	bin = craft_rodata(dir, "libre", "LibreSSL 3.8.2", true, "-s");
	err = run_err(pol, bin, NULL);
	cr_assert(strstr(err, " links LibreSSL statically (its read-only data "
			      "names LibreSSL 3.8.2)"),
		  "'%s'", err);
	free(err);
	free(bin);
	bin = craft_rodata(dir, "boring",
			   "OpenSSL 1.1.1 (compatible; BoringSSL)", true, "-s");
	err = run_err(pol, bin, NULL);
	cr_assert(strstr(err, " links BoringSSL statically (its read-only data "
			      "names BoringSSL)"),
		  "'%s'", err);
	free(err);
	free(bin);
	/* the version alone is libcrypto's, not TLS; with libssl.so.3,
	 * the program's own TLS is seen */
	bin = craft_rodata(dir, "crypto", "OpenSSL 3.0.13 30 Jan 2024", false,
			   "-s");
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	free(bin);
	bin =
	    craft_rodata(dir, "strs3", "OpenSSL 3.0.13 30 Jan 2024", true, ld);
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	free(bin);
	free(ld);
	/* the strings across the 1 MiB chunks .rodata is read in */
	cr_assert(asprintf(&ld, "%s/blob.c", dir) > 0);
	write_file(ld, "const char fusebox_big[3 << 20] = {1};\n", 39, 0644);
	free(ld);
	cr_assert(asprintf(&ld, "-s %s/blob.c", dir) > 0);
	bin = craft_rodata(dir, "big", "OpenSSL", false, ld);
	free(ld);
	err = run_err(pol, bin, NULL);
	cr_assert_str_empty(err);
	free(err);
	b = slurp(bin, &n);
	at = section_at(b, n, ".rodata", &len);
	cr_assert(len > (3u << 20));
	memcpy(b + at + (1u << 20) - 6, "OpenSSL 3.0.13 30 Jan 2024", 26);
	memcpy(b + at + (2u << 20) - 9, "TLS_AES_128_GCM_SHA256", 22);
	unlink(bin);
	write_file(bin, b, n, 0755);
	err = run_err(pol, bin, NULL);
	cr_assert(strstr(err, " links OpenSSL statically (its read-only data "
			      "names OpenSSL 3.0.13)"),
		  "'%s'", err);
	free(err);
	free(bin);
	free(b);
	/* statically linked: unguarded, TLS or not */
	if (static_links(dir)) {
		bin = craft(dir, "static", C_SSL, false, "-static");
		err = run_err(pol, bin, NULL);
		cr_assert(strstr(err, "is statically linked"), "'%s'", err);
		cr_assert(!strstr(err, "TLS"), "'%s'", err);
		free(err);
		free(bin);
	}
	unlink(pol);
	remove_dir(dir);
}

/* Whether the command name is found in PATH. */
static bool have(const char *name)
{
	struct run_opts o = {.timeout = 10};
	struct run *w = run_new();
	char *cmd;
	bool ok;

	cr_assert(asprintf(&cmd, "command -v %s >/dev/null", name) > 0);
	cr_assert_eq(run_prog(w, &o, (char *[]){"sh", "-c", cmd, NULL}), 0);
	ok = w->status == 0;
	free(cmd);
	free(w);
	return ok;
}

Test(run, warns_for_real_programs_whose_tls_fusebox_cannot_see)
{
	char *pol = policy_write(OK_POLICY);
	struct run *r;

	/* curl needs libssl.so.3: its TLS is seen */
	cr_assert(have("curl"), "curl is part of the suite (make deps)");
	r = fusebox_run(NULL, "-p", pol, "--", "curl", "--version", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert_eq(r->errlen, 0, "curl: '%s'", r->err);
	free(r);
	if (have("wget")) { /* Debian's needs GnuTLS */
		r = fusebox_run(NULL, "-p", pol, "--", "wget", "--version",
				NULL);
		cr_assert_eq(r->status, 0, "%s", r->err);
		cr_assert(
		    strstr(r->err, "wget uses GnuTLS (needs libgnutls.so"),
		    "wget: '%s'", r->err);
		cr_assert(strstr(r->err, TLS_TAIL), "wget: '%s'", r->err);
		cr_assert_eq(count(r->err, "fusebox run:"), 1, "'%s'", r->err);
		free(r);
	}
	if (access("/usr/lib/git-core/git-remote-https", X_OK) == 0) {
		r = fusebox_run(NULL, "-p", pol, "--",
				"/usr/lib/git-core/git-remote-https", NULL);
		cr_assert(strstr(r->err, "git-remote-https uses GnuTLS (needs "
					 "libcurl-gnutls.so"),
			  "git-remote-https: '%s'", r->err);
		free(r);
	}
	if (have("java")) {
		r = fusebox_run(NULL, "-p", pol, "--", "java", "-version",
				NULL);
		cr_assert(strstr(r->err, "java uses Java's JSSE ("),
			  "java: '%s'", r->err);
		free(r);
	}
	unlink(pol);
}
