/* SPDX-License-Identifier: MIT */
/* The ELF reader of fusebox run (elf.c): what a program file says of
 * itself and of the libraries it needs, read with bounded pread()s from a
 * file that may be truncated, corrupt or hostile, and never run. */
#ifndef FUSEBOX_ELF_INFO_H
#define FUSEBOX_ELF_INFO_H

#include <stdbool.h>
#include <stdint.h>

/* What elf_inspect() learnt of a file. */
struct elf_info {
	bool is_program; /* a 64-bit ELF executable in our byte order */
	bool is_static;	 /* ... that the kernel starts without ld.so */
	bool is_go;	 /* Go's build ID note or one of Go's sections */
	char uring[80];	 /* "imports io_uring_setup", "links liburing.so.2" */
	/* A TLS stack whose plaintext the library does not see, in a
	 * dynamically linked program that is not Go and needs no
	 * libssl.so.3: "uses GnuTLS (needs libgnutls.so.30)", "links
	 * OpenSSL statically (defines SSL_connect)"; "" for none */
	char tls[200];
};

/* Looks into the file at path: a program?  Static?  Go?  io_uring?
 * Which TLS stack?  Fills e (all zero when the file is no ELF file of
 * ours), reading at most 16 MiB of each part and 64 MiB of .rodata, and
 * the dynamic sections of the libraries it needs (found as the loader
 * would, LD_LIBRARY_PATH included).  Thread-safe while no thread changes
 * the environment. */
void elf_inspect(const char *path, struct elf_info *e);

/* Reads len bytes at off of the file fd of size bytes into buf; 0, or -1
 * when they are not all there (off and len are checked first). */
int elf_read_at(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len);

/* elf_read_at() into a new buffer of len bytes and a NUL after them, so
 * that any string in it ends; NULL when it fails or len is over 16 MiB.
 * The caller frees it. */
char *elf_read_part(int fd, uint64_t size, uint64_t off, uint64_t len);

#endif
