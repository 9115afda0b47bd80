/* SPDX-License-Identifier: MIT */
/* fusebox top: being written (issue 6). */
#include "cli.h"

#include <stdio.h>

int cmd_top(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "fusebox top: not built yet\n");
	return CLI_FAIL;
}
