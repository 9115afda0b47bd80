/* SPDX-License-Identifier: MIT */
/* libdeep.so, for progs/deepbind: a library that a program loads with
 * RTLD_DEEPBIND (as PHP loads its extensions), whose code sends a byte to
 * 127.0.0.1:port and waits up to 5 s for a reply. */
#include "../progs.h"

#include <sys/time.h>

__attribute__((visibility("default"))) int deep_exchange(int port);

/* 0 when a reply came, else the errno of the failed step. */
int deep_exchange(int port)
{
	struct timeval five = {.tv_sec = 5};
	int fd = dial(port), e = 0;
	char c;

	if (fd < 0)
		return errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five) < 0 ||
	    send(fd, "x", 1, 0) != 1 || recv(fd, &c, 1, 0) < 0)
		e = errno;
	close(fd);
	return e;
}
