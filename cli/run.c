/* SPDX-License-Identifier: MIT */
/* fusebox run: validates the policy, puts libfusebox.so first in
 * LD_PRELOAD, exports an absolute FUSEBOX_POLICY and execs the command,
 * so that its exit status is the command's.  Warns first when the command
 * cannot be guarded (static, setuid/setcap, Go). */
#include "cli.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Looks into an ELF file: static?  Go?  Imports connect? */
static void inspect_elf(const char *path, bool *is_elf, bool *is_static,
			bool *is_go, bool *has_connect)
{
	struct stat st;
	const Elf64_Ehdr *eh;
	const uint8_t *m;
	int fd;

	*is_elf = *is_static = *is_go = *has_connect = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof *eh) {
		close(fd);
		return;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	eh = (const void *)m;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64)
		goto out;
	*is_elf = true;
	*is_static = true;
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) <=
	    (uint64_t)st.st_size) {
		const Elf64_Phdr *ph = (const void *)(m + eh->e_phoff);
		for (int i = 0; i < eh->e_phnum; i++)
			if (ph[i].p_type == PT_INTERP)
				*is_static = false;
	}
	if (eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <=
		(uint64_t)st.st_size &&
	    eh->e_shstrndx < eh->e_shnum) {
		const Elf64_Shdr *sh = (const void *)(m + eh->e_shoff);
		const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
		for (int i = 0; i < eh->e_shnum; i++) {
			const char *name;
			if (strs->sh_offset + sh[i].sh_name >=
			    (uint64_t)st.st_size)
				continue;
			name =
			    (const char *)m + strs->sh_offset + sh[i].sh_name;
			if (!strncmp(name, ".note.go.buildid", 16) ||
			    !strncmp(name, ".go.buildinfo", 13))
				*is_go = true;
			if (sh[i].sh_type == SHT_DYNSYM &&
			    sh[i].sh_link < eh->e_shnum &&
			    sh[i].sh_offset + sh[i].sh_size <=
				(uint64_t)st.st_size) {
				const Elf64_Sym *sym =
				    (const void *)(m + sh[i].sh_offset);
				const Elf64_Shdr *ss = &sh[sh[i].sh_link];
				size_t n = sh[i].sh_size / sizeof *sym;
				for (size_t j = 0; j < n; j++) {
					uint64_t o =
					    ss->sh_offset + sym[j].st_name;
					if (o + 8 <= (uint64_t)st.st_size &&
					    !strcmp((const char *)m + o,
						    "connect"))
						*has_connect = true;
				}
			}
		}
	}
out:
	munmap((void *)m, (size_t)st.st_size);
}

/* Warns when the command cannot be guarded (SPEC §5). */
static void warn_unguardable(const char *cmd)
{
	char path[PATH_MAX];
	struct stat st;
	bool elf, stat_, go, conn;

	if (which(cmd, path, sizeof path) < 0 || stat(path, &st) < 0)
		return;
	if (st.st_mode & (S_ISUID | S_ISGID))
		fprintf(stderr,
			"fusebox run: warning: %s is set%cid: the "
			"loader ignores LD_PRELOAD for it, so it runs "
			"unguarded\n",
			path, st.st_mode & S_ISUID ? 'u' : 'g');
	else if (getxattr(path, "security.capability", NULL, 0) > 0)
		fprintf(stderr,
			"fusebox run: warning: %s has file "
			"capabilities: the loader ignores LD_PRELOAD for it, "
			"so it runs unguarded\n",
			path);
	inspect_elf(path, &elf, &stat_, &go, &conn);
	if (!elf)
		return;
	if (go && !conn)
		fprintf(stderr,
			"fusebox run: warning: %s is a Go program "
			"without cgo: it makes its own system calls, so it "
			"runs unguarded\n",
			path);
	else if (stat_)
		fprintf(stderr,
			"fusebox run: warning: %s is statically "
			"linked: LD_PRELOAD cannot reach it, so it runs "
			"unguarded\n",
			path);
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
