/* SPDX-License-Identifier: MIT */
/* fusebox serve: being written (issue 6). */
#include "cli.h"

#include <stdio.h>

int cmd_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "fusebox serve: not built yet\n");
	return CLI_FAIL;
}
