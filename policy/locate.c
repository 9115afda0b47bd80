/* SPDX-License-Identifier: MIT */
/* Where the policy file is: FUSEBOX_POLICY, else the first that exists of
 * ./fusebox.ini, $XDG_CONFIG_HOME/fusebox/fusebox.ini (~/.config/...),
 * /etc/fusebox/fusebox.ini. */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies s into buf; 0 or -ENAMETOOLONG. */
static int put(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Finds the policy file into buf: 1 from FUSEBOX_POLICY, 2 from the search
 * list, -ENOENT when there is none, -ENAMETOOLONG.  Uses getenv and
 * access, so call it once, at start. */
int policy_locate(char *buf, size_t len)
{
	const char *env = getenv("FUSEBOX_POLICY");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (env && *env)
		return put(buf, len, env, "") < 0 ? -ENAMETOOLONG : 1;
	if (access("fusebox.ini", R_OK) == 0)
		return put(buf, len, "fusebox.ini", "") < 0 ? -ENAMETOOLONG : 2;
	if (xdg && *xdg) {
		if (put(buf, len, xdg, "/fusebox/fusebox.ini") == 0 &&
		    access(buf, R_OK) == 0)
			return 2;
	} else if (home && *home) {
		if (put(buf, len, home, "/.config/fusebox/fusebox.ini") == 0 &&
		    access(buf, R_OK) == 0)
			return 2;
	}
	if (access("/etc/fusebox/fusebox.ini", R_OK) == 0)
		return put(buf, len, "/etc/fusebox/fusebox.ini", "") < 0
			   ? -ENAMETOOLONG
			   : 2;
	buf[0] = 0;
	return -ENOENT;
}
