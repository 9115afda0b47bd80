/* SPDX-License-Identifier: MIT */
/* The ELF reader of fusebox run: whether a file is a static, Go or
 * io_uring program, and which TLS stack it uses, from its headers, its
 * dynamic section and those of the libraries it needs directly.  Every
 * offset and size read from a file goes through elf_read_at() first. */
#include "elf_info.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ELF_NATIVE ELFDATA2LSB
#else
#define ELF_NATIVE ELFDATA2MSB
#endif

/* The largest part of a file read at once (a header table, a note
 * segment, a symbol or string table, a script); more means corrupt. */
#define PART_MAX (16u << 20)

/* The most DT_NEEDED entries of a file that are read, and the most bytes
 * of .rodata looked through, in chunks that overlap by more than the
 * longest string looked for: bounds on the time run takes. */
#define NEEDED_MAX 64
#define RODATA_MAX (64u << 20)
#define CHUNK	   (1u << 20)
#define CHUNK_OVER 64
#define NO_STRING  UINT64_MAX

/* Where the loader finds libraries when neither the program nor
 * LD_LIBRARY_PATH says: Debian's multiarch directories of this machine
 * first, then the usual ones (/etc/ld.so.cache may add others). */
#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH "s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#endif
#ifdef MULTIARCH
#define LIB_DIRS                                                               \
	"/lib/" MULTIARCH ":/usr/lib/" MULTIARCH                               \
	":/lib64:/usr/lib64:/lib:/usr/lib:/usr/local/lib"
#else
#define LIB_DIRS "/lib64:/usr/lib64:/lib:/usr/lib:/usr/local/lib"
#endif

/* Reads len bytes at off of a file of size bytes into buf; 0, or -1 when
 * they are not all there.  Every offset and size read from a file goes
 * through here first, so a corrupt one only makes the read fail. */
int elf_read_at(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len)
{
	uint64_t got = 0;

	if (off > size || len > size - off)
		return -1;
	while (got < len) {
		ssize_t n =
		    pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) /* the file shrank under us */
			return -1;
		got += (uint64_t)n;
	}
	return 0;
}

/* elf_read_at() into a new buffer with a NUL after the bytes, so that
 * any string in it ends; NULL when it fails.  The caller frees it. */
char *elf_read_part(int fd, uint64_t size, uint64_t off, uint64_t len)
{
	char *b;

	if (len > PART_MAX || !(b = malloc(len + 1)))
		return NULL;
	if (elf_read_at(fd, size, off, b, len) < 0) {
		free(b);
		return NULL;
	}
	b[len] = 0;
	return b;
}

/* The string at i of a table of len bytes from elf_read_part(), or "". */
static const char *str_at(const char *tab, uint64_t len, uint64_t i)
{
	return tab && i < len ? tab + i : "";
}

/* Whether a note segment holds the build ID note (owner "Go", type 4)
 * that Go's linker writes into every binary, stripped or not. */
static bool has_go_note(const char *n, uint64_t len, uint64_t align)
{
	uint64_t off = 0;

	while (off <= len && len - off >= sizeof(Elf64_Nhdr)) {
		uint64_t name = off + sizeof(Elf64_Nhdr);
		Elf64_Nhdr h;
		memcpy(&h, n + off, sizeof h);
		if (h.n_type == 4 && h.n_namesz == 4 && len - name >= 4 &&
		    !memcmp(n + name, "Go\0\0", 4))
			return true;
		off = name + ((h.n_namesz + align - 1) & ~(align - 1)) +
		      ((h.n_descsz + align - 1) & ~(align - 1));
	}
	return false;
}

/* Whether a dynamic segment sets DF_1_PIE: an ET_DYN file without
 * PT_INTERP is then a static-pie program, else a library (or ld.so). */
static bool is_pie(const char *d, uint64_t len)
{
	for (uint64_t i = 0; len - i >= sizeof(Elf64_Dyn);
	     i += sizeof(Elf64_Dyn)) {
		Elf64_Dyn y;
		memcpy(&y, d + i, sizeof y);
		if (y.d_tag == DT_NULL)
			break;
		if (y.d_tag == DT_FLAGS_1 && (y.d_un.d_val & DF_1_PIE))
			return true;
	}
	return false;
}

/* A 64-bit ELF file of our byte order, open for reading: its size, its
 * header, and its section headers and their names when it has them. */
struct file {
	int fd;
	uint64_t size;
	Elf64_Ehdr eh;
	char *sh;    /* eh.e_shnum section headers, or NULL */
	char *names; /* the section name table, or NULL */
	uint64_t names_len;
};

/* Opens path into f; 0, or -1 when it is no ELF file of ours (f then
 * holds nothing).  Section headers may be stripped: f->sh is NULL then,
 * and the callers do without. */
static int file_open(struct file *f, const char *path)
{
	struct stat st;
	Elf64_Shdr s;

	memset(f, 0, sizeof *f);
	/* O_NONBLOCK: opening a FIFO must not hang run */
	f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (f->fd < 0)
		return -1;
	if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto fail;
	f->size = (uint64_t)st.st_size;
	if (elf_read_at(f->fd, f->size, 0, &f->eh, sizeof f->eh) < 0 ||
	    memcmp(f->eh.e_ident, ELFMAG, SELFMAG) ||
	    f->eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    f->eh.e_ident[EI_DATA] != ELF_NATIVE)
		goto fail;
	if (f->eh.e_shentsize == sizeof(Elf64_Shdr))
		f->sh = elf_read_part(f->fd, f->size, f->eh.e_shoff,
				      (uint64_t)f->eh.e_shnum * sizeof s);
	if (f->sh && f->eh.e_shstrndx < f->eh.e_shnum) {
		memcpy(&s, f->sh + f->eh.e_shstrndx * sizeof s, sizeof s);
		f->names =
		    elf_read_part(f->fd, f->size, s.sh_offset, s.sh_size);
		f->names_len = s.sh_size;
	}
	return 0;
fail:
	close(f->fd);
	f->fd = -1;
	return -1;
}

/* Releases what file_open() took. */
static void file_close(struct file *f)
{
	free(f->names);
	free(f->sh);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* The section header at i of f into s; false when there is none. */
static bool section(const struct file *f, uint64_t i, Elf64_Shdr *s)
{
	if (!f->sh || i >= f->eh.e_shnum)
		return false;
	memcpy(s, f->sh + i * sizeof *s, sizeof *s);
	return true;
}

/* What the .dynamic section of a file says of the libraries it needs:
 * its string table, and the offsets in it of the first NEEDED_MAX
 * DT_NEEDED names and of DT_RUNPATH and DT_RPATH (NO_STRING if none). */
struct dyn {
	char *str;
	uint64_t str_len;
	uint64_t needed[NEEDED_MAX];
	unsigned n;
	uint64_t runpath, rpath;
};

/* Reads the .dynamic section of f into d, empty when there is none (or
 * the section headers are stripped); dyn_free() releases it. */
static void dyn_read(const struct file *f, struct dyn *d)
{
	Elf64_Shdr s, strs;
	char *tab = NULL;

	memset(d, 0, sizeof *d);
	d->runpath = d->rpath = NO_STRING;
	for (unsigned i = 0; section(f, i, &s); i++) {
		if (s.sh_type != SHT_DYNAMIC || !section(f, s.sh_link, &strs))
			continue;
		tab = elf_read_part(f->fd, f->size, s.sh_offset, s.sh_size);
		d->str =
		    elf_read_part(f->fd, f->size, strs.sh_offset, strs.sh_size);
		d->str_len = strs.sh_size;
		break;
	}
	for (uint64_t i = 0;
	     tab && d->str && s.sh_size - i >= sizeof(Elf64_Dyn);
	     i += sizeof(Elf64_Dyn)) {
		Elf64_Dyn y;
		memcpy(&y, tab + i, sizeof y);
		if (y.d_tag == DT_NULL)
			break;
		if (y.d_tag == DT_NEEDED && d->n < NEEDED_MAX)
			d->needed[d->n++] = y.d_un.d_val;
		else if (y.d_tag == DT_RUNPATH)
			d->runpath = y.d_un.d_val;
		else if (y.d_tag == DT_RPATH)
			d->rpath = y.d_un.d_val;
	}
	free(tab);
}

/* The string at i of d's string table, or "". */
static const char *dyn_str(const struct dyn *d, uint64_t i)
{
	return str_at(d->str, d->str_len, i);
}

/* Releases what dyn_read() took. */
static void dyn_free(struct dyn *d)
{
	free(d->str);
	d->str = NULL;
}

/* The functions of OpenSSL's libssl (BoringSSL's, LibreSSL's) whose
 * definition in a program shows that it links libssl statically. */
static bool is_ssl_function(const char *name)
{
	static const char *const fns[] = {"SSL_connect", "SSL_do_handshake",
					  "SSL_read", "SSL_write",
					  "SSL_CTX_new"};

	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (!strcmp(name, fns[i]))
			return true;
	return false;
}

/* Looks through the symbol table s of f (.dynsym or .symtab): an import
 * whose name starts with io_uring_ goes into e->uring (io_uring_setup,
 * io_uring_enter, liburing's io_uring_queue_init…), a defined libssl
 * function into ssl (len bytes), each the first one found. */
static void scan_symbols(const struct file *f, const Elf64_Shdr *s,
			 struct elf_info *e, char *ssl, size_t len)
{
	Elf64_Shdr strs;
	char *tab, *str;

	if (!section(f, s->sh_link, &strs))
		return;
	tab = elf_read_part(f->fd, f->size, s->sh_offset, s->sh_size);
	str = elf_read_part(f->fd, f->size, strs.sh_offset, strs.sh_size);
	for (uint64_t i = 0; tab && str && s->sh_size - i >= sizeof(Elf64_Sym);
	     i += sizeof(Elf64_Sym)) {
		Elf64_Sym y;
		memcpy(&y, tab + i, sizeof y);
		const char *name = str_at(str, strs.sh_size, y.st_name);
		if (y.st_shndx == SHN_UNDEF && !*e->uring &&
		    s->sh_type == SHT_DYNSYM && !strncmp(name, "io_uring_", 9))
			snprintf(e->uring, sizeof e->uring, "imports %.60s",
				 name);
		if (y.st_shndx != SHN_UNDEF && !*ssl &&
		    ELF64_ST_TYPE(y.st_info) == STT_FUNC &&
		    is_ssl_function(name))
			snprintf(ssl, len, "%s", name);
	}
	free(tab);
	free(str);
}

/* The TLS stack a library of this name is or brings, whose plaintext
 * the library does not see; NULL for none of those. */
static const char *tls_stack(const char *lib)
{
	static const struct {
		const char *prefix, *stack;
	} libs[] = {
	    {"libgnutls.so", "GnuTLS"},
	    {"libcurl-gnutls.so", "GnuTLS"},
	    {"libnss3.so", "NSS"},
	    {"libssl3.so", "NSS"},
	    {"libcurl-nss.so", "NSS"},
	    {"libssl.so.1.1", "OpenSSL 1.1"},
	    {"libssl.so.1.0", "OpenSSL 1.0"},
	    {"libjli.so", "Java's JSSE"},
	};

	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
		if (!strncmp(lib, libs[i].prefix, strlen(libs[i].prefix)))
			return libs[i].stack;
	return NULL;
}

/* Opens path into f if it is a file of machine; 0, or -1. */
static int lib_try(struct file *f, const char *path, unsigned machine)
{
	if (file_open(f, path) < 0)
		return -1;
	if (f->eh.e_machine == machine)
		return 0;
	file_close(f);
	return -1;
}

/* Opens the library name from the directories of a ':'-separated list,
 * $ORIGIN standing for origin; 0 and f, or -1.  An entry with another
 * $ token, or empty, is skipped. */
static int lib_in(struct file *f, const char *name, const char *list,
		  const char *origin, unsigned machine)
{
	char path[PATH_MAX];

	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ":;");
		const char *dir = p, *sub = "";
		int dlen = (int)n;
		if (!strncmp(p, "$ORIGIN", 7) || !strncmp(p, "${ORIGIN}", 9)) {
			sub = origin;
			dir += p[1] == '{' ? 9 : 7;
			dlen -= p[1] == '{' ? 9 : 7;
		}
		p += n + (p[n] != 0);
		if (!n || memchr(dir, '$', (size_t)dlen) ||
		    snprintf(path, sizeof path, "%s%.*s/%s", sub, dlen, dir,
			     name) >= (int)sizeof path)
			continue;
		if (lib_try(f, path, machine) == 0)
			return 0;
	}
	return -1;
}

/* Opens the library name that a program of machine needs, where the
 * loader looks: by its path if it has a '/', else in DT_RPATH (when there
 * is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH of d, then the standard
 * directories, LIB_DIRS.  0 and f, or -1. */
static int lib_open(struct file *f, const char *name, const struct dyn *d,
		    const char *origin, unsigned machine)
{
	const char *rpath = NULL, *runpath = NULL;

	if (strchr(name, '/'))
		return lib_try(f, name, machine);
	if (d->runpath != NO_STRING)
		runpath = dyn_str(d, d->runpath);
	else if (d->rpath != NO_STRING)
		rpath = dyn_str(d, d->rpath);
	if (lib_in(f, name, rpath, origin, machine) == 0 ||
	    lib_in(f, name, getenv("LD_LIBRARY_PATH"), origin, machine) == 0 ||
	    lib_in(f, name, runpath, origin, machine) == 0)
		return 0;
	return lib_in(f, name, LIB_DIRS, origin, machine);
}

/* Whether p (n bytes on) starts an OpenSSL-style version string,
 * "OpenSSL 3.0.13 30 Jan 2024", "LibreSSL 3.8.2", "OpenSSL 1.1.1
 * (compatible; BoringSSL)"; puts its name and number into out. */
static bool version_at(const char *p, size_t n, char *out, size_t len)
{
	static const char *const names[] = {"OpenSSL ", "LibreSSL "};

	for (size_t k = 0; k < 2; k++) {
		size_t at = strlen(names[k]), dots = 0, end;
		if (n < at || memcmp(p, names[k], at))
			continue;
		for (end = at; end < n && end - at < 16; end++) {
			if (p[end] == '.' && end > at && p[end - 1] != '.')
				dots++;
			else if (p[end] < '0' || p[end] > '9')
				break;
		}
		if (dots < 2 || p[end - 1] == '.')
			continue;
		while (end < n && end - at < 16 && p[end] >= 'a' &&
		       p[end] <= 'z') /* 1.1.1w */
			end++;
		if (n - end >= 24 &&
		    !memcmp(p + end, " (compatible; BoringSSL)", 24))
			snprintf(out, len, "BoringSSL");
		else
			snprintf(out, len, "%.*s", (int)end, p);
		return true;
	}
	return false;
}

/* Looks through .rodata of f (its first RODATA_MAX bytes) for the
 * version string of OpenSSL, LibreSSL or BoringSSL, which libcrypto
 * holds, and a TLS cipher suite's name, which only libssl holds; true
 * and the version in out when both are there. */
static bool ssl_in_rodata(const struct file *f, char *out, size_t len)
{
	static const char *const suites[] = {"TLS_AES_128_GCM_SHA256",
					     "ECDHE-RSA-AES128-GCM-SHA256"};
	static const char *const names[] = {"OpenSSL ", "LibreSSL "};
	bool version = false, suite = false;
	Elf64_Shdr s;
	unsigned i;

	for (i = 0; section(f, i, &s); i++)
		if (s.sh_type == SHT_PROGBITS &&
		    !strcmp(str_at(f->names, f->names_len, s.sh_name),
			    ".rodata"))
			break;
	if (!section(f, i, &s))
		return false;
	for (uint64_t off = 0;
	     off < s.sh_size && off < RODATA_MAX && !(version && suite);
	     off += CHUNK) {
		uint64_t n = s.sh_size - off;
		char *b, *p;
		if (n > CHUNK + CHUNK_OVER)
			n = CHUNK + CHUNK_OVER;
		if (!(b = elf_read_part(f->fd, f->size, s.sh_offset + off, n)))
			return false;
		for (size_t k = 0; k < 2 && !version; k++)
			for (p = b; !version &&
				    (p = memmem(p, n - (size_t)(p - b),
						names[k], strlen(names[k])));
			     p++)
				version = version_at(p, n - (size_t)(p - b),
						     out, len);
		for (size_t k = 0; k < 2 && !suite; k++)
			suite = memmem(b, n, suites[k], strlen(suites[k]));
		free(b);
	}
	return version && suite;
}

/* Finds the TLS stack of a dynamically linked program f at path, with
 * dynamic section d and ssl the libssl function it defines ("" none):
 * the libraries it needs and those they need, then its own symbols and
 * read-only data.  Nothing when any of them needs libssl.so.3, which the
 * library sees. */
static void find_tls(const char *path, struct file *f, const struct dyn *d,
		     const char *ssl, struct elf_info *e)
{
	char real[PATH_MAX], *slash, why[160] = "", found[40] = "";
	const char *stack = NULL, *base = strrchr(path, '/');
	Elf64_Shdr s;

	for (unsigned i = 0; i < d->n; i++) {
		const char *lib = dyn_str(d, d->needed[i]), *t = tls_stack(lib);
		if (!strcmp(lib, "libssl.so.3"))
			return;
		if (t && !stack) {
			stack = t;
			snprintf(why, sizeof why, "needs %.60s", lib);
		}
	}
	if (!realpath(path, real) || !(slash = strrchr(real, '/')))
		snprintf(real, sizeof real, ".");
	else
		*slash = 0; /* $ORIGIN: the directory of the program */
	for (unsigned i = 0; i < d->n; i++) {
		const char *lib = dyn_str(d, d->needed[i]);
		struct file l;
		struct dyn ld;
		if (tls_stack(lib) ||
		    lib_open(&l, lib, d, real, f->eh.e_machine) < 0)
			continue;
		dyn_read(&l, &ld);
		for (unsigned k = 0; k < ld.n; k++) {
			const char *dep = dyn_str(&ld, ld.needed[k]);
			const char *t = tls_stack(dep);
			if (!strcmp(dep, "libssl.so.3")) {
				dyn_free(&ld);
				file_close(&l);
				return;
			}
			if (t && !stack) {
				stack = t;
				snprintf(why, sizeof why,
					 "needs %.60s, which needs %.60s", lib,
					 dep);
			}
		}
		dyn_free(&ld);
		file_close(&l);
	}
	base = base ? base + 1 : path;
	if (!stack && !strcmp(base, "java")) {
		stack = "Java's JSSE";
		snprintf(why, sizeof why, "named java");
	}
	if (stack) {
		snprintf(e->tls, sizeof e->tls, "uses %s (%s)", stack, why);
		return;
	}
	/* OpenSSL linked in: its functions in .dynsym (looked through
	 * already) or .symtab, else its strings */
	for (unsigned i = 0; !*ssl && section(f, i, &s); i++)
		if (s.sh_type == SHT_SYMTAB)
			scan_symbols(f, &s, e, found, sizeof found);
	if (*ssl || *found)
		snprintf(e->tls, sizeof e->tls,
			 "links OpenSSL statically (defines %s)",
			 *ssl ? ssl : found);
	else if (ssl_in_rodata(f, found, sizeof found))
		snprintf(e->tls, sizeof e->tls,
			 "links %.*s statically (its read-only data names %s)",
			 (int)strcspn(found, " "), found, found);
}

/* Looks into a file: a program?  Static?  Go?  io_uring?  TLS?  It
 * reads only what the headers point to, each part checked against the
 * file's size, for the file may be truncated, corrupt or hostile. */
void elf_inspect(const char *path, struct elf_info *e)
{
	char *ph = NULL, ssl[40] = "";
	bool interp = false, pie = false;
	struct file f;
	struct dyn d;
	Elf64_Shdr s;

	memset(e, 0, sizeof *e);
	memset(&d, 0, sizeof d);
	if (file_open(&f, path) < 0)
		return;
	if (f.eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    !(ph = elf_read_part(f.fd, f.size, f.eh.e_phoff,
				 (uint64_t)f.eh.e_phnum * sizeof(Elf64_Phdr))))
		goto out;
	for (unsigned i = 0; i < f.eh.e_phnum; i++) {
		Elf64_Phdr p;
		char *part = NULL;
		memcpy(&p, ph + i * sizeof p, sizeof p);
		if (p.p_type == PT_INTERP)
			interp = true;
		if (p.p_type == PT_DYNAMIC || p.p_type == PT_NOTE)
			part =
			    elf_read_part(f.fd, f.size, p.p_offset, p.p_filesz);
		if (part && p.p_type == PT_DYNAMIC)
			pie |= is_pie(part, p.p_filesz);
		if (part && p.p_type == PT_NOTE)
			e->is_go |= has_go_note(part, p.p_filesz,
						p.p_align == 8 ? 8 : 4);
		free(part);
	}
	e->is_program = f.eh.e_type == ET_EXEC ||
			(f.eh.e_type == ET_DYN && (interp || pie));
	e->is_static = e->is_program && !interp;
	/* Without section headers, the note above tells Go */
	for (unsigned i = 0; section(&f, i, &s); i++) {
		const char *name = str_at(f.names, f.names_len, s.sh_name);
		if (!strcmp(name, ".note.go.buildid") ||
		    !strcmp(name, ".go.buildinfo") ||
		    !strcmp(name, ".gopclntab"))
			e->is_go = true;
		if (s.sh_type == SHT_DYNSYM)
			scan_symbols(&f, &s, e, ssl, sizeof ssl);
	}
	dyn_read(&f, &d);
	for (unsigned i = 0; i < d.n && !*e->uring; i++) {
		const char *lib = dyn_str(&d, d.needed[i]);
		if (!strncmp(lib, "liburing", 8))
			snprintf(e->uring, sizeof e->uring, "links %.60s", lib);
	}
	if (e->is_program && !e->is_static && !e->is_go)
		find_tls(path, &f, &d, ssl, e);
out:
	dyn_free(&d);
	free(ph);
	file_close(&f);
}
