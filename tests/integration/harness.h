/* SPDX-License-Identifier: MIT */
/* Helpers of the integration tests: fixture servers, temporary policy
 * files, and child programs run with the shim preloaded in their own
 * environment only, with a time limit. */
#ifndef FUSEBOX_HARNESS_H
#define FUSEBOX_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fixture {
	pid_t pid;
	int port;
};

struct run_opts {
	bool shim;		/* preload build/libfusebox.so */
	const char *policy;	/* FUSEBOX_POLICY, or NULL */
	double timeout;		/* seconds; the child is killed after */
	const char *const *env; /* extra KEY=VALUE, NULL-terminated */
	const char *input;	/* written to stdin, or NULL */
};

struct run {
	int status;	/* exit code, or 128 + signal */
	bool timed_out; /* killed by the harness */
	double secs;	/* wall time */
	char out[1 << 18];
	size_t outlen;
	char err[1 << 14];
	size_t errlen;
};

/* Starts build/fixture MODE ARGS... (NULL-terminated); 0 or -1. */
int fixture_start(struct fixture *f, const char *mode, ...);

/* Starts build/fixture-tls MODE ARGS... (NULL-terminated): HTTPS on
 * 127.0.0.1 with a self-signed certificate; 0 or -1. */
int fixture_start_tls(struct fixture *f, const char *mode, ...);

/* Starts the server argv (searched in PATH, no shim), which prints its
 * port on its first line; 0 or -1.  Stopped with fixture_stop(). */
int server_start(struct fixture *f, char *const argv[]);

/* Stops a fixture (SIGTERM, then reaps it). */
void fixture_stop(struct fixture *f);

/* Writes text to a new temporary policy file; returns its path (static
 * storage per call site is not needed: the string is malloc'd). */
char *policy_write(const char *text);

/* Replaces the content of path with text (in place, or by rename). */
void policy_rewrite(const char *path, const char *text, bool by_rename);

/* Runs argv under opts; fills r (r is large: allocate it). */
int run_prog(struct run *r, const struct run_opts *opts, char *const argv[]);

/* Path of a file in the build directory (malloc'd). */
char *build_path(const char *name);

/* Path of a file in the source tree (malloc'd). */
char *src_path(const char *name);

/* The python3 to run (Debian's when present). */
const char *python(void);

/* Number of open fds of this process. */
int count_fds(void);

/* The segment name of this test; call it before forking children that
 * run guarded programs, so that they share it. */
const char *harness_segment(void);

/* One line of KEY=VALUE about rule, or RULE/ADDRESS (its first address
 * otherwise), from `fusebox stats --json` (see scripts/stat.py), or
 * "norule". */
char *stats_line(const char *rule);

/* The value of key in a stats_line(), or -1. */
long stats_field(const char *line, const char *key);

/* A policy file for one rule [r] on 127.0.0.1:port with extra keys. */
char *rule_policy(int port, const char *keys);

/* Makes a self-signed P-256 certificate for 127.0.0.1 (CN localhost),
 * valid one day, with the openssl command, in dir: *cert and *key
 * receive the files' paths (malloc'd); 0 or -1. */
int harness_cert(const char *dir, const char *name, char **cert, char **key);

/* Allocates a zeroed struct run. */
struct run *run_new(void);

#endif
