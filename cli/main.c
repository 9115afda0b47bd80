/* SPDX-License-Identifier: MIT */
/* Entry point of the fusebox command: dispatches to subcommands and
 * prints help in the style of git and curl. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
};

static const struct command commands[] = {
    {"run", cmd_run, "run [-p FILE] [--] COMMAND [ARG...]",
     "Runs COMMAND with libfusebox.so preloaded and the policy FILE\n"
     "(validated first: an invalid policy exits 2 and COMMAND never\n"
     "starts).  Exits with COMMAND's status.\n"
     "  -p, --policy FILE   policy file (default: FUSEBOX_POLICY, then\n"
     "                      ./fusebox.ini, ~/.config/fusebox/fusebox.ini,\n"
     "                      /etc/fusebox/fusebox.ini)\n"
     "  -q, --quiet         no warning when COMMAND cannot be guarded\n"},
    {"check", cmd_check, "check [FILE]",
     "Validates a policy file.  Exits 0 and prints the effective rules\n"
     "(every key; inherited values marked), or exits 1 and prints every\n"
     "error as FILE:LINE: message.\n"},
    {"explain", cmd_explain, "explain [-p FILE] HOST[:PORT]",
     "Resolves HOST and tells, for each address, which rule guards it,\n"
     "which patterns matched and which lost, and the settings that\n"
     "apply.  PORT defaults to 80.\n"
     "  -p, --policy FILE   policy file (default as for run)\n"},
    {"stats", cmd_stats, "stats [--json | --prometheus] [-s NAME]",
     "Prints the breakers, connections, counters and latencies of every\n"
     "destination in the shared-memory segment, as tables or, with\n"
     "--json, as one JSON object, or with --prometheus as Prometheus\n"
     "text.  A segment that does not exist yet prints an empty result.\n"
     "  --json              one JSON object (see fusebox(1) for the keys)\n"
     "  --prometheus        Prometheus text format 0.0.4: fusebox_*\n"
     "                      metrics (see fusebox(1) for the names)\n"
     "  -s, --segment NAME  segment (default: FUSEBOX_SEGMENT, then\n"
     "                      [global] segment of the policy, then\n"
     "                      fusebox-UID)\n"},
    {"breaker", cmd_breaker, "breaker open|close|auto RULE[/ADDRESS] [-s NAME]",
     "Forces the breakers of RULE, for every address (those not seen\n"
     "yet too), or of the one ADDRESS (IP:PORT or [IPv6]:PORT), open or\n"
     "closed until 'auto' returns them to their policy; 'auto RULE'\n"
     "releases the overrides of its addresses too.\n"
     "  -s, --segment NAME  segment (default as for stats)\n"},
    {"reset", cmd_reset, "reset [RULE] [-s NAME]",
     "Zeroes the counters and latencies, closes the breakers and drops\n"
     "the overrides of every rule, or of RULE.\n"
     "  -s, --segment NAME  segment (default as for stats)\n"},
    {"top", cmd_top, "top [-i SECONDS] [-n COUNT] [-s NAME]",
     "Shows the segment live, full screen: a line per rule and per\n"
     "destination with its breaker, calls/s, failure %, latencies and\n"
     "rejections over the last 10 s, and the guarded processes.  Keys:\n"
     "q quit, j/k or arrows move, o/c/a force the selected breaker\n"
     "open, closed or back to auto, n/r/f/s sort by name, calls/s,\n"
     "failure % or state, / filter, ? help.  When standard output is\n"
     "not a terminal, prints a plain table at each refresh instead.\n"
     "  -i, --interval SECONDS  refresh period (default 1, at least 0.1)\n"
     "  -n, --count COUNT       stop after COUNT refreshes\n"
     "  -s, --segment NAME      segment (default as for stats)\n"},
    {"serve", cmd_serve,
     "serve [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE] "
     "[-s NAME]",
     "Serves the segment over HTTP, or HTTPS with a certificate, until\n"
     "SIGINT or SIGTERM: GET /metrics (what stats --prometheus prints),\n"
     "/stats.json (what stats --json prints) and /healthz.  Each\n"
     "request reads the segment anew.\n"
     "  --listen ADDR:PORT  where to listen (default 127.0.0.1:9464;\n"
     "                      [::1]:PORT for IPv6; port 0: any free\n"
     "                      port, printed on start)\n"
     "  --tls-cert FILE     serve HTTPS with this PEM certificate (and\n"
     "                      chain); needs --tls-key\n"
     "  --tls-key FILE      the PEM private key of the certificate,\n"
     "                      unencrypted; needs --tls-cert\n"
     "  -s, --segment NAME  segment (default as for stats)\n"},
    {"help", NULL, "help [COMMAND]",
     "Prints the overview of the commands, or the usage and options of\n"
     "COMMAND.\n"},
    {"version", NULL, "version", "Prints the version of fusebox.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Prints the overview of every command. */
static void usage(FILE *f)
{
	fprintf(f, "usage: fusebox [--help] [--version] COMMAND [ARGS]\n\n"
		   "Timeouts, retries, circuit breakers and limits for "
		   "unmodified programs.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "\nSee 'fusebox help COMMAND', fusebox(1), fusebox.ini(5) "
		   "and libfusebox(7).\n");
}

/* Finds a command by name, or NULL. */
static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Prints a usage error with a hint and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fusebox%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nSee 'fusebox help %s'.\n", cmd);
	else
		fprintf(stderr, "\nSee 'fusebox --help'.\n");
	return CLI_USAGE;
}

/* Prints the help of one command. */
static int help(const char *name)
{
	const struct command *c = find(name);

	if (!c)
		return cli_usage_error(NULL, "'%s' is not a fusebox command",
				       name);
	printf("usage: fusebox %s\n\n%s", c->usage, c->help);
	return CLI_OK;
}

/* Dispatches argv[1] to its command; returns the exit status. */
int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			usage(stdout);
			return CLI_OK;
		}
		return help(argv[2]);
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("fusebox %s\n", FUSEBOX_VERSION);
		return CLI_OK;
	}
	c = find(argv[1]);
	if (!c || !c->fn) {
		fprintf(stderr,
			"fusebox: '%s' is not a fusebox command. See "
			"'fusebox --help'.\n",
			argv[1]);
		return CLI_USAGE;
	}
	/* run stops at its command; the others take --help anywhere */
	for (int i = 2; i < argc && strcmp(argv[i], "--") &&
			(c->fn != cmd_run || argv[i][0] == '-');
	     i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return help(c->name);
	return c->fn(argc - 1, argv + 1);
}
