/* SPDX-License-Identifier: MIT */
/* fusebox run: validates the policy, puts libfusebox.so first in
 * LD_PRELOAD, exports an absolute FUSEBOX_POLICY and execs the command,
 * so that its exit status is the command's.  Warns first when the command
 * cannot be guarded (static, setuid/setcap, Go, io_uring, what a #!
 * script names), or has TLS whose requests the library does not see. */
#include "cli.h"
#include "elf_info.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Finds libfusebox.so: FUSEBOX_LIBRARY, next to this binary (build/), or
 * in ../lib relative to it (make install). */
static int find_library(char *out, size_t len)
{
	const char *env = getenv("FUSEBOX_LIBRARY");
	static const char *const rel[] = {"/libfusebox.so",
					  "/../lib/libfusebox.so",
					  "/../lib/fusebox/libfusebox.so"};
	char exe[PATH_MAX], *dir;
	ssize_t n;

	if (env && *env) {
		if (!realpath(env, out) || access(out, R_OK) < 0)
			return -1;
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	dir = dirname(exe);
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		char try[PATH_MAX + 64];
		snprintf(try, sizeof try, "%s%s", dir, rel[i]);
		if (access(try, R_OK) == 0 && realpath(try, out) &&
		    strlen(out) < len)
			return 0;
	}
	return -1;
}

/* Resolves a command name like execvp does; 0 and the path, or -1. */
static int which(const char *cmd, char *out, size_t len)
{
	const char *path = getenv("PATH");
	const char *p;

	if (strchr(cmd, '/')) {
		snprintf(out, len, "%s", cmd);
		return access(out, X_OK);
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", cmd);
		if (access(out, X_OK) == 0)
			return 0;
		p += n;
		if (*p == ':')
			p++;
	}
	return -1;
}

/* Warns when the program at path cannot be guarded, or only in part;
 * via says how the command reaches it ("" for the command itself). */
static void warn_program(const char *path, const char *via)
{
	struct elf_info e;
	struct stat st;

	/* Not a program: nothing to say.  The kernel ignores the set-ID
	 * bits and capabilities of a #! script: its interpreter's count. */
	elf_inspect(path, &e);
	if (!e.is_program || stat(path, &st) < 0)
		return;
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		fprintf(stderr,
			"fusebox run: warning: %s%s is set%cid: the loader "
			"ignores LD_PRELOAD for it, so it runs unguarded\n",
			path, via, st.st_mode & S_ISUID ? 'u' : 'g');
		return;
	}
	if (getxattr(path, "security.capability", NULL, 0) > 0) {
		fprintf(stderr,
			"fusebox run: warning: %s%s has file capabilities: "
			"the loader ignores LD_PRELOAD for it, so it runs "
			"unguarded\n",
			path, via);
		return;
	}
	if (e.is_go && e.is_static)
		fprintf(stderr,
			"fusebox run: warning: %s%s is a statically linked Go "
			"program: it makes its own system calls, so it runs "
			"unguarded; its TLS is Go's own (crypto/tls)\n",
			path, via);
	else if (e.is_go) /* cgo: the library is loaded, Go bypasses it */
		fprintf(stderr,
			"fusebox run: warning: %s%s is a Go program: its Go "
			"code (net, net/http) makes its own system calls and "
			"runs unguarded; only connections its C code (cgo) "
			"makes are guarded; its TLS is Go's own (crypto/tls), "
			"whose requests fusebox cannot see\n",
			path, via);
	else if (e.is_static)
		fprintf(stderr,
			"fusebox run: warning: %s%s is statically linked: "
			"LD_PRELOAD cannot reach it, so it runs unguarded\n",
			path, via);
	if (*e.uring)
		fprintf(stderr,
			"fusebox run: warning: %s%s %s: the connections it "
			"drives through io_uring bypass the library and run "
			"unguarded\n",
			path, via, e.uring);
	if (*e.tls) /* only a dynamic program that is not Go */
		fprintf(stderr,
			"fusebox run: warning: %s%s %s: fusebox guards its "
			"connections (connect, connect_timeout, breakers on "
			"connect failures, idle_timeout, send_timeout) but "
			"cannot see requests inside TLS: no per-request calls, "
			"response_timeout or classify = http there (only "
			"OpenSSL 3's libssl.so.3 is seen)\n",
			path, via, e.tls);
}

/* Bytes of a #! script that are read, and the most programs it names
 * that are looked into: a bound on the time run takes before it execs. */
#define SCRIPT_MAX 65536
#define NAMED_MAX  32

/* Whether c may be part of a path written in a script. */
static bool path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("/._-+@%,~", c));
}

/* Warns about the programs a script names by absolute path, as in
 * `exec /usr/local/bin/tool`: only the text is read, so a program found
 * in PATH, or in a path built from variables, is not seen; nor is the
 * text after the first SCRIPT_MAX bytes, nor words after a '#'.  Each
 * path is looked into once; seen holds nseen paths already looked into
 * and has room for NAMED_MAX more. */
static void scan_script(const char *script, const char *text, size_t len,
			const char **seen, int nseen)
{
	char via[PATH_MAX + 16], tok[PATH_MAX];
	int first = nseen;
	struct stat st;

	snprintf(via, sizeof via, ", named in %s,", script);
	for (size_t i = 0; i < len && nseen - first < NAMED_MAX; i++) {
		char prev = i ? text[i - 1] : '\n';
		size_t n = 0;
		bool dup = false;
		if (text[i] == '#' && (prev == ' ' || prev == '\t' ||
				       prev == '\n')) { /* a comment */
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		if (text[i] != '/' || !prev ||
		    !strchr(" \t\n'\"`=;(|&<>{:", prev))
			continue;
		while (i + n < len && path_char(text[i + n]))
			n++;
		if (n >= sizeof tok) {
			i += n - 1;
			continue;
		}
		memcpy(tok, text + i, n);
		tok[n] = 0;
		i += n - 1;
		for (int k = 0; k < nseen && !dup; k++)
			dup = !strcmp(seen[k], tok);
		if (dup || stat(tok, &st) < 0 || !S_ISREG(st.st_mode) ||
		    access(tok, X_OK) < 0 || !(seen[nseen] = strdup(tok)))
			continue;
		nseen++;
		warn_program(tok, via);
	}
	while (nseen > first)
		free((char *)seen[--nseen]);
}

/* Warns about a #! script: its interpreter (and the program that
 * `#!/usr/bin/env NAME` runs), then the programs its text names. */
static void warn_script(const char *script, const char *text, size_t len)
{
	const char *seen[NAMED_MAX + 2], *nl = memchr(text, '\n', len);
	size_t end = nl ? (size_t)(nl - text) : len;
	char line[256], via[PATH_MAX + 32], found[PATH_MAX];
	char *interp, *arg, *base;
	int nseen = 0;

	/* As the kernel does: "#!INTERPRETER [ARGUMENT]", the argument
	 * being the rest of the line without the blanks around it */
	snprintf(line, sizeof line, "%.*s", (int)(end - 2), text + 2);
	for (size_t n = strlen(line); n && strchr(" \t", line[n - 1]); n--)
		line[n - 1] = 0;
	interp = line + strspn(line, " \t");
	arg = interp + strcspn(interp, " \t");
	if (*arg)
		*arg++ = 0;
	arg += strspn(arg, " \t");
	snprintf(via, sizeof via, ", the interpreter of %s,", script);
	warn_program(interp, via);
	seen[nseen++] = interp;
	/* env finds NAME in PATH; `env -S ...` and the like are not read */
	base = strrchr(interp, '/');
	base = base ? base + 1 : interp;
	if (!strcmp(base, "env") && *arg && !strpbrk(arg, " \t=") &&
	    *arg != '-' && which(arg, found, sizeof found) == 0) {
		warn_program(found, via);
		seen[nseen++] = found;
	}
	if (nl)
		scan_script(script, nl + 1, len - end - 1, seen, nseen);
}

/* Warns when the command cannot be guarded, or only in part (SPEC §5):
 * a program file by its ELF headers, a #! script by its interpreter and
 * the programs it names. */
static void warn_unguardable(const char *cmd)
{
	char path[PATH_MAX], magic[2], *text = NULL;
	uint64_t size = 0;
	struct stat st;
	int fd;

	if (which(cmd, path, sizeof path) < 0)
		return;
	/* O_NONBLOCK: opening a FIFO must not hang run */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
		if (size > SCRIPT_MAX)
			size = SCRIPT_MAX;
		if (elf_read_at(fd, size, 0, magic, 2) == 0 &&
		    !memcmp(magic, "#!", 2))
			text = elf_read_part(fd, size, 0, size);
	}
	if (fd >= 0)
		close(fd);
	if (text)
		warn_script(path, text, (size_t)size);
	else
		warn_program(path, "");
	free(text);
}

/* Puts lib first in LD_PRELOAD, once. */
static int preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;
	int r;

	if (!old || !*old)
		return setenv("LD_PRELOAD", lib, 1);
	if (asprintf(&v, "%s %s", lib, old) < 0)
		return -1;
	r = setenv("LD_PRELOAD", v, 1);
	free(v);
	return r;
}

/* fusebox run [-p FILE] [-q] [--] COMMAND [ARG...] */
int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0}};
	const char *file = NULL;
	char lib[PATH_MAX], abs[PATH_MAX], *found = NULL;
	struct policy *p = NULL;
	bool quiet = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			file = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			printf("usage: fusebox run [-p FILE] [-q] [--] COMMAND "
			       "[ARG...]\n");
			return CLI_OK;
		default:
			return cli_usage_error("run", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("run", "no COMMAND to run");
	if (file || getenv("FUSEBOX_POLICY") ||
	    policy_locate(abs, sizeof abs) >= 0) {
		p = cli_load_policy(file, &found);
		if (!p) {
			fprintf(stderr,
				"fusebox run: invalid policy; %s not "
				"started\n",
				argv[optind]);
			return CLI_USAGE;
		}
		if (!realpath(found, abs)) {
			fprintf(stderr, "fusebox run: %s: %s\n", found,
				strerror(errno));
			free(found);
			policy_free(p);
			return CLI_USAGE;
		}
		free(found);
		policy_free(p);
		setenv("FUSEBOX_POLICY", abs, 1);
	} else if (!quiet) {
		fprintf(stderr,
			"fusebox run: warning: no policy file "
			"(-p FILE, FUSEBOX_POLICY or ./fusebox.ini); %s runs "
			"unguarded\n",
			argv[optind]);
	}
	if (find_library(lib, sizeof lib) < 0) {
		fprintf(stderr,
			"fusebox run: cannot find libfusebox.so next "
			"to this program or in ../lib; set FUSEBOX_LIBRARY\n");
		return CLI_USAGE;
	}
	if (preload(lib) < 0) {
		fprintf(stderr, "fusebox run: %s\n", strerror(errno));
		return CLI_USAGE;
	}
	if (!quiet)
		warn_unguardable(argv[optind]);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "fusebox run: %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
