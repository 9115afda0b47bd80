/* SPDX-License-Identifier: MIT */
/* deepbind LIB PORT deep|plain: loads LIB (a path, or a bare name found
 * in this program's RUNPATH) with RTLD_DEEPBIND as PHP does, or plainly,
 * and runs its deep_exchange(PORT); prints "errno E" (0: a reply came;
 * EAGAIN: its own 5 s wait ran out), or "dlopen: why". */
#include "progs.h"

#include <dlfcn.h>

int main(int argc, char **argv)
{
	int (*exchange)(int);
	int mode = RTLD_LAZY | RTLD_GLOBAL;
	void *h;

	if (argc != 4) {
		fprintf(stderr, "usage: deepbind LIB PORT deep|plain\n");
		return 2;
	}
	if (!strcmp(argv[3], "deep"))
		mode |= RTLD_DEEPBIND;
	h = dlopen(argv[1], mode);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&exchange = dlsym(h, "deep_exchange");
	CHECK(exchange, "dlsym");
	printf("errno %d\n", exchange(atoi(argv[2])));
	return 0;
}
