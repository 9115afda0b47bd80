/* SPDX-License-Identifier: MIT */
/* The fusebox command: one function per subcommand, sharing helpers. */
#ifndef FUSEBOX_CLI_H
#define FUSEBOX_CLI_H

#include "policy/policy.h"

#define FUSEBOX_VERSION "0.1.0"

/* Exit codes: success, a failed check, a usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_check(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_breaker(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints a usage error with a hint and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Loads the policy at path (or the one policy_locate finds when path is
 * NULL); prints every error on stderr and returns NULL on failure.  *found
 * receives the path used (owned by the caller). */
struct policy *cli_load_policy(const char *path, char **found);

/* Names the segment into buf: opt (-s NAME), else FUSEBOX_SEGMENT, else
 * [global] segment of the policy policy_locate() finds with %u expanded,
 * else fusebox-UID.  Returns 0, or -EINVAL after saying on stderr, as
 * "fusebox cmd: ...", that the name cannot be a segment. */
int cli_segment_name(const char *cmd, const char *opt, char *buf, size_t len);

/* Forces the breaker of rule, or of its address key:port (a 16-byte
 * IPv4-mapped or IPv6 key) when key is not NULL, to how (BREAKER_FORCE_*
 * of policy/breaker.h), adding the rule or address to s when not seen
 * yet.  Returns 0, -ENOSPC (rule table full), -ENOMEM (address table
 * full) or -EAGAIN (a lock stayed busy). */
struct seg;
int cli_breaker_force(struct seg *s, const char *rule, const uint8_t *key,
		      uint16_t port, int how);

/* Prints every key of s, marking where each value comes from. */
void cli_print_settings(FILE *f, const struct policy *p,
			const struct policy_settings *s, bool is_default,
			const char *indent);

#endif
