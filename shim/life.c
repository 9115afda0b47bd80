/* SPDX-License-Identifier: MIT */
/* The process's life: which process this memory belongs to, and the
 * parts of the library that must act at fork and at exit.  Every module
 * may call this one; it calls none of them by name: each part joins with
 * its handlers, in a constructor, before any thread of ours exists. */
#include "shim.h"

#include <pthread.h>
#include <unistd.h>

/* The process whose memory this is (set at load and in a forked child;
 * vfork() and clone(CLONE_VM) children run no fork handler). */
static pid_t life_pid;

/* Written by constructors only, read by the fork and exit handlers. */
static const struct life_part *parts[LIFE_PARTS];

/* Fork: no lock of ours may be held by a thread the child lacks.  The
 * parts take theirs in rank order, the one order every path uses. */
static void atfork_prepare(void)
{
	for (int i = 0; i < LIFE_PARTS; i++)
		if (parts[i] && parts[i]->prepare)
			parts[i]->prepare();
}

static void atfork_parent(void)
{
	for (int i = LIFE_PARTS - 1; i >= 0; i--)
		if (parts[i] && parts[i]->parent)
			parts[i]->parent();
}

static void atfork_child(void)
{
	life_pid = getpid();
	for (int i = LIFE_PARTS - 1; i >= 0; i--)
		if (parts[i] && parts[i]->child)
			parts[i]->child();
}

/* Takes part in the process's life at rank (the order of the fork
 * handlers); from a constructor only. */
void life_join(enum life_rank rank, const struct life_part *part)
{
	parts[rank] = part;
}

/* True in a vfork() or posix_spawn() child: it runs in its parent's
 * memory, so a hook that changed our state would change the parent's
 * (forget its sockets, release its connections).  A syscall: only for
 * the hooks that would change state. */
bool life_borrowed_memory(void)
{
	return getpid() != life_pid;
}

/* First of our constructors (priority 101 runs before the default). */
__attribute__((constructor(101))) static void life_ctor(void)
{
	life_pid = getpid();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* At exit(): each part that asked, in rank order. */
__attribute__((destructor)) static void life_dtor(void)
{
	int saved = errno;

	for (int i = 0; i < LIFE_PARTS; i++)
		if (parts[i] && parts[i]->exit)
			parts[i]->exit();
	errno = saved;
}
