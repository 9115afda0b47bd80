/* SPDX-License-Identifier: MIT */
/* Code loaded with RTLD_DEEPBIND.  PHP loads its extensions so: libcurl
 * under php-curl then binds connect, send and recv to the C library
 * before it looks at the preloaded ones, and runs unguarded.  dlopen() is
 * interposed: without RTLD_DEEPBIND it jumps straight to the C library's
 * (a jump, not a call: dlopen searches the caller's RUNPATH and resolves
 * $ORIGIN by its return address, which must stay the program's).  With
 * it, once the objects are loaded, the slots of their global offset
 * tables that name a function this library interposes are pointed at
 * ours, as LD_PRELOAD would have bound them; every other symbol keeps its
 * deep binding. */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__aarch64__)

/* The C library's dlopen, bound at load; 0 until then. */
__attribute__((visibility("hidden"))) void *fb_real_dlopen;

void *fb_dlopen_slow(const char *file, int mode);
int fb_dlopen_rebinds(const char *file, int mode);

/* dlopen: a load that fb_dlopen_rebinds() wants, or a call before our
 * constructor, goes to fb_dlopen_slow(); anything else jumps to the C
 * library's dlopen with the caller's return address untouched. */
#if defined(__x86_64__)
__asm__(".text\n"
	".globl dlopen\n"
	".type dlopen, @function\n"
	"dlopen:\n"
	"	testl $0x8, %esi\n" /* RTLD_DEEPBIND */
	"	jz 2f\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	subq $8, %rsp\n"
	"	call fb_dlopen_rebinds\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	testl %eax, %eax\n"
	"	jnz 1f\n"
	"2:	movq fb_real_dlopen(%rip), %rax\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	jmp *%rax\n"
	"1:	jmp fb_dlopen_slow\n"
	".size dlopen, .-dlopen\n");
#else
__asm__(".text\n"
	".globl dlopen\n"
	".type dlopen, %function\n"
	"dlopen:\n"
	"	tbz w1, #3, 2f\n" /* RTLD_DEEPBIND */
	"	stp x29, x30, [sp, #-32]!\n"
	"	stp x0, x1, [sp, #16]\n"
	"	bl fb_dlopen_rebinds\n"
	"	mov w2, w0\n"
	"	ldp x0, x1, [sp, #16]\n"
	"	ldp x29, x30, [sp], #32\n"
	"	cbnz w2, 1f\n"
	"2:	adrp x16, fb_real_dlopen\n"
	"	ldr x16, [x16, :lo12:fb_real_dlopen]\n"
	"	cbz x16, 1f\n"
	"	br x16\n"
	"1:	b fb_dlopen_slow\n"
	".size dlopen, .-dlopen\n");
#endif

/* Whether a load with RTLD_DEEPBIND is rebound: only a path with '/' and
 * no '$'.  A bare name is searched for in the caller's RUNPATH, and
 * $ORIGIN is the caller's: only a jump keeps them. */
__attribute__((visibility("hidden"))) int fb_dlopen_rebinds(const char *file,
							    int mode)
{
	return (mode & RTLD_DEEPBIND) && file && strchr(file, '/') &&
	       !strchr(file, '$') && fb_real_dlopen &&
	       !atomic_load(&shim_disabled);
}

/* The functions whose slots are rebound: the ones the shim interposes
 * (shim/exports.txt), but dlopen itself. */
static const char *const hooked[] = {
    "__read_chk",
    "__recv_chk",
    "__recvfrom_chk",
    "close",
    "close_range",
    "connect",
    "dup",
    "dup2",
    "dup3",
    "epoll_ctl",
    "fcntl",
    "fcntl64",
    "fdopen",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname2_r",
    "gethostbyname_r",
    "getsockopt",
    "ioctl",
    "poll",
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "write",
    "writev",
    /* OPENSSL_3.0.0 only (tls.c): see versioned() */
    "SSL_connect",
    "SSL_do_handshake",
    "SSL_free",
    "SSL_peek",
    "SSL_peek_ex",
    "SSL_read",
    "SSL_read_ex",
    "SSL_shutdown",
    "SSL_write",
    "SSL_write_ex",
};

#define NHOOKED (sizeof hooked / sizeof hooked[0])

/* Our definition of each hooked name, looked up once per rebinding. */
static void *ours[NHOOKED];

/* The index in hooked[] of name, or -1. */
static int hooked_index(const char *name)
{
	for (size_t i = 0; i < NHOOKED; i++)
		if (!strcmp(name, hooked[i]))
			return (int)i;
	return -1;
}

/* A pointer of the dynamic section: relocated by the loader on most
 * machines, an address relative to base on the others. */
static uintptr_t dyn_ptr(ElfW(Addr) base, ElfW(Addr) v)
{
	return v < base ? base + v : v;
}

/* The read-only-after-relocation range of the object at base. */
struct relro {
	ElfW(Addr) base;
	uintptr_t from, to;
};

static int find_relro(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct relro *r = arg;

	(void)size;
	if (info->dlpi_addr != r->base)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
			r->from = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
			r->to = r->from + info->dlpi_phdr[i].p_memsz;
		}
	return 1;
}

/* Points the slot at addr to fn, through RELRO if need be. */
static void set_slot(uintptr_t addr, void *fn, const struct relro *r)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t page = addr & ~(uintptr_t)(pg - 1);
	bool ro = addr >= r->from && addr < r->to;

	if (ro && mprotect((void *)page, (size_t)pg, PROT_READ | PROT_WRITE))
		return;
	__atomic_store_n((void **)addr, fn, __ATOMIC_RELAXED);
	if (ro)
		mprotect((void *)page, (size_t)pg, PROT_READ);
}

/* What an object's dynamic section says of the versions it needs. */
struct needs {
	const ElfW(Half) * versym; /* per dynamic symbol; NULL: none */
	const ElfW(Verneed) * verneed;
	size_t nverneed;
	const char *str;
};

/* True when dynamic symbol i of the object is needed at version want
 * (an SSL_* of OpenSSL 3, not of another OpenSSL that a module loaded
 * with RTLD_DEEPBIND may use). */
static bool versioned(const struct needs *v, size_t i, const char *want)
{
	ElfW(Half) ndx;
	const ElfW(Verneed) *vn = v->verneed;

	if (!v->versym || !vn)
		return false;
	ndx = v->versym[i] & 0x7fff;
	for (size_t k = 0; k < v->nverneed && vn; k++) {
		const ElfW(Vernaux) *a =
		    (const void *)((const char *)vn + vn->vn_aux);
		for (unsigned j = 0; j < vn->vn_cnt; j++) {
			if (a->vna_other == ndx)
				return !strcmp(v->str + a->vna_name, want);
			a = (const void *)((const char *)a + a->vna_next);
		}
		if (!vn->vn_next)
			break;
		vn = (const void *)((const char *)vn + vn->vn_next);
	}
	return false;
}

/* Rebinds the hooked slots of one relocation table of the object at
 * base. */
static void rebind_table(ElfW(Addr) base, const ElfW(Rela) * rel, size_t n,
			 const ElfW(Sym) * sym, const char *str,
			 const struct relro *r, const struct needs *v)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long t = ELF64_R_TYPE(rel[i].r_info);
		int k;

#if defined(__x86_64__)
		if (t != R_X86_64_JUMP_SLOT && t != R_X86_64_GLOB_DAT)
			continue;
#else
		if (t != R_AARCH64_JUMP_SLOT && t != R_AARCH64_GLOB_DAT)
			continue;
#endif
		size_t si = ELF64_R_SYM(rel[i].r_info);
		const char *name = str + sym[si].st_name;
		k = hooked_index(name);
		if (k < 0 || !ours[k])
			continue;
		if (!strncmp(name, "SSL_", 4) &&
		    !versioned(v, si, "OPENSSL_3.0.0"))
			continue;
		set_slot(base + rel[i].r_offset, ours[k], r);
	}
}

/* Rebinds the hooked slots of the object lm. */
static void rebind_object(struct link_map *lm)
{
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const ElfW(Rela) *jmp = NULL, *rela = NULL;
	size_t njmp = 0, nrela = 0;
	struct relro r = {.base = lm->l_addr};
	struct needs v = {0};
	bool is_rela = true;

	for (const ElfW(Dyn) *d = lm->l_ld; d && d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:
			sym = (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_STRTAB:
			str = (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_JMPREL:
			jmp = (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_PLTRELSZ:
			njmp = d->d_un.d_val / sizeof(ElfW(Rela));
			break;
		case DT_PLTREL:
			is_rela = d->d_un.d_val == DT_RELA;
			break;
		case DT_RELA:
			rela = (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_RELASZ:
			nrela = d->d_un.d_val / sizeof(ElfW(Rela));
			break;
		case DT_VERSYM:
			v.versym =
			    (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_VERNEED:
			v.verneed =
			    (const void *)dyn_ptr(lm->l_addr, d->d_un.d_ptr);
			break;
		case DT_VERNEEDNUM:
			v.nverneed = d->d_un.d_val;
			break;
		}
	}
	v.str = str;
	if (!sym || !str || !is_rela)
		return;
	dl_iterate_phdr(find_relro, &r);
	if (jmp)
		rebind_table(lm->l_addr, jmp, njmp, sym, str, &r, &v);
	if (rela)
		rebind_table(lm->l_addr, rela, nrela, sym, str, &r, &v);
}

/* Points the hooked slots of h and of what was loaded after it (its
 * dependencies) at our functions; not ours, not the loader's or the C
 * library's (they call themselves inside). */
static void rebind(void *h)
{
	struct link_map *lm = NULL;
	Dl_info self;
	void *me;

	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) || !lm ||
	    !dladdr((void *)rebind, &self) || !self.dli_fname)
		return;
	me = fb_real_dlopen ? ((void *(*)(const char *, int))fb_real_dlopen)(
				  self.dli_fname, RTLD_LAZY | RTLD_NOLOAD)
			    : NULL;
	if (!me)
		return;
	for (size_t i = 0; i < NHOOKED; i++) {
		Dl_info at;
		void *f = dlsym(me, hooked[i]);
		/* ours only: dlsym also finds what our dependencies define */
		ours[i] = f && dladdr(f, &at) && at.dli_fbase == self.dli_fbase
			      ? f
			      : NULL;
	}
	for (; lm; lm = lm->l_next) {
		const char *n = lm->l_name ? lm->l_name : "";
		if ((void *)lm->l_addr == self.dli_fbase ||
		    strstr(n, "/libc.so") || strstr(n, "/ld-linux") ||
		    strstr(n, "/libdl.so") || strstr(n, "/libpthread.so"))
			continue;
		rebind_object(lm);
	}
	dlclose(me);
}

/* dlopen with RTLD_DEEPBIND, or before our constructor. */
__attribute__((visibility("hidden"))) void *fb_dlopen_slow(const char *file,
							   int mode)
{
	void *(*real_dlopen)(const char *, int);
	int saved;
	void *h;

	if (!fb_real_dlopen)
		fb_real_dlopen = dlsym(RTLD_NEXT, "dlopen");
	real_dlopen = (void *(*)(const char *, int))fb_real_dlopen;
	if (!real_dlopen)
		return NULL;
	h = real_dlopen(file, mode);
	if (!h || !fb_dlopen_rebinds(file, mode))
		return h; /* a call before our constructor */
	saved = errno;
	rebind(h);
	errno = saved;
	return h;
}

__attribute__((constructor)) static void dl_init(void)
{
	if (!fb_real_dlopen)
		fb_real_dlopen = dlsym(RTLD_NEXT, "dlopen");
}

#endif
