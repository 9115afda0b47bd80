/* SPDX-License-Identifier: MIT */
/* fusebox run: placeholder until the shim lands. */
#include "cli.h"

/* fusebox run [-p FILE] -- COMMAND... */
int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("run", "not built yet");
}
