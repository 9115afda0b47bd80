/* SPDX-License-Identifier: MIT */
/* fusebox stats, breaker and reset: read the shared-memory segment as
 * JSON or a table, force breakers open or closed, and zero counters.  Only
 * breaker and reset write to the segment, and neither ever creates it. */
#include "cli.h"
#include "report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads a clock in milliseconds. */
static uint64_t now_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Names the segment: -s NAME, else FUSEBOX_SEGMENT, else [global] segment
 * of the policy file, else fusebox-UID; 0, or -EINVAL when the name
 * cannot be a segment (said on stderr). */
int cli_segment_name(const char *cmd, const char *opt, char *buf, size_t len)
{
	const char *env = getenv("FUSEBOX_SEGMENT");
	unsigned uid = (unsigned)getuid();
	char path[4096];

	if (opt)
		snprintf(buf, len, "%s", opt);
	else if (env && *env)
		snprintf(buf, len, "%s", env);
	else
		snprintf(buf, len, "fusebox-%u", uid);
	if (!opt && !(env && *env) && policy_locate(path, sizeof path) > 0) {
		struct policy_errors errs = {0};
		struct policy *p = policy_load(path, &errs);

		if (!p)
			fprintf(stderr,
				"fusebox %s: %s is not a valid policy (see "
				"'fusebox check %s'); using segment %s\n",
				cmd, path, path, buf);
		else if (policy_segment_name(p->segment, uid, buf, len) < 0)
			snprintf(buf, len, "fusebox-%u", uid);
		policy_free(p);
		policy_errors_free(&errs);
	}
	if (!*buf || strchr(buf, '/') || strlen(buf) >= SEG_NAME_MAX ||
	    strlen(buf) + 1 >= len) {
		fprintf(stderr,
			"fusebox %s: '%s' is not a segment name (1 to %d "
			"characters, no '/')\n",
			cmd, buf, SEG_NAME_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

/* What stats prints. */
enum { FMT_TABLE, FMT_JSON, FMT_PROMETHEUS };

/* Parses the -s option shared by the segment commands into *seg, and
 * --json or --prometheus into *format (FMT_*) when format is not NULL;
 * leaves optind at the first operand.  Returns 0 or the CLI_USAGE of a
 * printed usage error. */
static int parse_opts(const char *cmd, int argc, char **argv, const char **seg,
		      int *format)
{
	static const struct option opts[] = {
	    {"segment", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"prometheus", no_argument, NULL, 'P'},
	    {0}};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:", opts, NULL)) != -1) {
		if (c == 's') {
			*seg = optarg;
		} else if ((c == 'j' || c == 'P') && format) {
			int want = c == 'j' ? FMT_JSON : FMT_PROMETHEUS;

			if (*format != FMT_TABLE && *format != want)
				return cli_usage_error(
				    cmd, "--json and --prometheus exclude "
					 "each other");
			*format = want;
		} else if (c == ':') {
			return cli_usage_error(cmd, "option '%s' needs a NAME",
					       argv[optind - 1]);
		} else if (c == '?' && optopt) {
			return cli_usage_error(cmd, "unknown option '-%c'",
					       optopt);
		} else {
			return cli_usage_error(cmd, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	return 0;
}

/* Writes the snapshot of s (NULL: no segment yet) to f as format says. */
static int stats_write(FILE *f, int format, const struct seg *s,
		       const struct report_opts *o)
{
	if (format == FMT_JSON)
		return report_json(f, s, o);
	if (format == FMT_PROMETHEUS)
		return report_prometheus(f, s, o);
	return report_table(f, s, o);
}

/* fusebox stats [--json | --prometheus] [-s NAME]: prints a snapshot of
 * the segment as tables, JSON or Prometheus text; returns the exit
 * status. */
int cmd_stats(int argc, char **argv)
{
	struct report_opts o = {.alive = report_proc_alive};
	const char *opt = NULL;
	char name[SEG_NAME_MAX + 8], why[160];
	struct seg s;
	int format = FMT_TABLE;
	int r;

	r = parse_opts("stats", argc, argv, &opt, &format);
	if (r)
		return r;
	if (optind != argc)
		return cli_usage_error("stats", "unexpected argument '%s'",
				       argv[optind]);
	if (cli_segment_name("stats", opt, name, sizeof name) < 0)
		return CLI_FAIL;
	o.segment = name;
	r = seg_open_readonly(name, &s, why, sizeof why);
	o.now_mono_ms = now_ms(CLOCK_MONOTONIC);
	o.now_real_ms = now_ms(CLOCK_REALTIME);
	if (r == -ENOENT) {
		fprintf(stderr,
			"fusebox stats: no segment %s yet (no guarded "
			"program has run)\n",
			name);
		r = stats_write(stdout, format, NULL, &o);
	} else if (r < 0) {
		fprintf(stderr, "fusebox stats: segment %s: %s\n", name, why);
		return CLI_FAIL;
	} else {
		r = stats_write(stdout, format, &s, &o);
		seg_close(&s);
	}
	if (fflush(stdout) != 0 || r < 0) {
		fprintf(stderr, "fusebox stats: %s\n",
			strerror(r < 0 ? -r : errno));
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Opens the segment read-write for breaker and reset, never creating it;
 * prints why not and returns -1 when it cannot. */
static int open_rw(const char *cmd, const char *opt, struct seg *s, char *name,
		   size_t len)
{
	char why[160];
	int r;

	if (cli_segment_name(cmd, opt, name, len) < 0)
		return -1;
	r = seg_open(name, NULL, false, s, why, sizeof why);
	if (r == -ENOENT) {
		fprintf(stderr,
			"fusebox %s: no segment %s yet (no guarded "
			"program has run)\n",
			cmd, name);
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "fusebox %s: segment %s: %s\n", cmd, name, why);
		return -1;
	}
	return 0;
}

/* Parses "IP:PORT" or "[IPv6]:PORT" into a 16-byte key (IPv4 mapped, as
 * the shim stores it) and a port; 0 or -EINVAL. */
static int parse_address(const char *text, uint8_t key[16], uint16_t *port)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *colon, *p;
	unsigned long v;
	char *end;
	size_t n;

	memset(key, 0, 16);
	if (text[0] == '[') {
		p = strchr(text, ']');
		if (!p || p[1] != ':')
			return -EINVAL;
		n = (size_t)(p - text - 1);
		colon = p + 1;
		if (n >= sizeof ip)
			return -EINVAL;
		memcpy(ip, text + 1, n);
		ip[n] = 0;
		if (inet_pton(AF_INET6, ip, key) != 1)
			return -EINVAL;
	} else {
		colon = strrchr(text, ':');
		if (!colon || strchr(text, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - text);
		if (n >= sizeof ip)
			return -EINVAL;
		memcpy(ip, text, n);
		ip[n] = 0;
		key[10] = key[11] = 0xff;
		if (inet_pton(AF_INET, ip, key + 12) != 1)
			return -EINVAL;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* Releases every address override of rule ri and the rule breaker's
 * own; returns how many addresses could not be locked. */
static int release_all(struct seg *s, uint32_t ri)
{
	struct seg_rule *r = &s->rules[ri];
	int busy = 0;

	if (seg_lock(&r->lock) == 0) {
		breaker_force(&r->breaker, BREAKER_FORCE_NONE);
		seg_unlock(&r->lock);
	} else {
		busy++;
	}
	for (uint32_t i = 0; i < s->naddrs; i++) {
		struct seg_addr *a = &s->addrs[i];

		if (atomic_load_explicit(&a->used, memory_order_acquire) != 2 ||
		    a->rule != ri || !breaker_forced(&a->breaker))
			continue;
		if (seg_lock(&a->lock) < 0) {
			busy++;
			continue;
		}
		breaker_force(&a->breaker, BREAKER_FORCE_NONE);
		seg_unlock(&a->lock);
	}
	return busy;
}

/* Forces the breaker of rule, or of its address key:port when key is not
 * NULL, to how (BREAKER_FORCE_*), adding the rule or address when not
 * seen yet.  Returns 0; -ENOSPC when the rule and -ENOMEM when the
 * address cannot be added; -EAGAIN when a breaker's lock stayed busy
 * (for a whole rule: the others changed). */
int cli_breaker_force(struct seg *s, const char *rule, const uint8_t *key,
		      uint16_t port, int how)
{
	int ri = seg_rule_get(s, rule), ai;
	struct seg_addr *a;
	bool changed;

	if (ri < 0)
		return -ENOSPC;
	if (!key) {
		struct seg_rule *sr = &s->rules[ri];

		atomic_store(&sr->forced, how);
		atomic_fetch_add(&sr->forced_gen, 1);
		if (how == BREAKER_FORCE_NONE && release_all(s, (uint32_t)ri))
			return -EAGAIN;
		return 0;
	}
	ai = seg_addr_get(s, (uint32_t)ri, key, port, NULL);
	if (ai < 0)
		return -ENOMEM;
	a = &s->addrs[ai];
	if (seg_lock(&a->lock) < 0)
		return -EAGAIN;
	changed = breaker_forced(&a->breaker) != how;
	breaker_force(&a->breaker, how);
	/* breaker_force() leaves the time to the next call; until then
	 * stats show when the override was set */
	if (changed)
		a->breaker.since_ms = now_ms(CLOCK_MONOTONIC);
	seg_unlock(&a->lock);
	atomic_fetch_add(&s->rules[ri].forced_gen, 1);
	return 0;
}

/* fusebox breaker open|close|auto RULE[/ADDRESS] [-s NAME]: sets or drops
 * the override of a rule or one address; returns the exit status. */
int cmd_breaker(int argc, char **argv)
{
	static const char *const done[] = {"back to automatic", "forced open",
					   "forced closed"};
	const char *opt = NULL, *slash;
	char name[SEG_NAME_MAX + 8], rule[SEG_NAME_MAX];
	struct seg s;
	uint8_t key[16];
	uint16_t port = 0;
	int how, ri, r, ret = CLI_FAIL;
	size_t n;

	r = parse_opts("breaker", argc, argv, &opt, NULL);
	if (r)
		return r;
	if (argc - optind != 2)
		return cli_usage_error("breaker", "expected open, close or "
						  "auto and RULE[/ADDRESS]");
	if (!strcmp(argv[optind], "open"))
		how = BREAKER_FORCE_OPEN;
	else if (!strcmp(argv[optind], "close"))
		how = BREAKER_FORCE_CLOSED;
	else if (!strcmp(argv[optind], "auto"))
		how = BREAKER_FORCE_NONE;
	else
		return cli_usage_error(
		    "breaker", "'%s' is not open, close or auto", argv[optind]);
	slash = strchr(argv[optind + 1], '/');
	n = slash ? (size_t)(slash - argv[optind + 1])
		  : strlen(argv[optind + 1]);
	if (!n || n >= sizeof rule)
		return cli_usage_error("breaker",
				       "'%s': RULE must be 1 to %d characters",
				       argv[optind + 1], SEG_NAME_MAX - 1);
	memcpy(rule, argv[optind + 1], n);
	rule[n] = 0;
	if (slash && parse_address(slash + 1, key, &port) < 0)
		return cli_usage_error(
		    "breaker", "'%s' is not IP:PORT or [IPv6]:PORT", slash + 1);
	if (open_rw("breaker", opt, &s, name, sizeof name) < 0)
		return CLI_FAIL;
	r = cli_breaker_force(&s, rule, slash ? key : NULL, port, how);
	if (r == -EAGAIN && !slash) {
		fprintf(stderr,
			"fusebox breaker: some breakers of %s were "
			"busy and kept their override\n",
			rule);
	} else if (r == -EAGAIN) {
		fprintf(stderr,
			"fusebox breaker: %s/%s: its lock stayed busy; "
			"nothing changed\n",
			rule, slash + 1);
		goto out;
	} else if (r < 0) {
		fprintf(stderr,
			"fusebox breaker: segment %s: the %s table is full "
			"or locked\n",
			name, r == -ENOSPC ? "rule" : "address");
		goto out;
	}
	if (!slash) {
		printf("%s: breaker %s for every address (segment %s)\n", rule,
		       done[how], name);
		ret = CLI_OK;
		goto out;
	}
	ri = seg_rule_get(&s, rule);
	printf("%s/%s: breaker %s (segment %s)\n", rule, slash + 1, done[how],
	       name);
	if (atomic_load(&s.rules[ri].breaker_scope) == POLICY_SCOPE_RULE)
		fprintf(stderr,
			"fusebox breaker: warning: rule %s has breaker_scope "
			"= rule, so one breaker serves all its addresses and "
			"this override has no effect; use 'fusebox breaker "
			"%s %s'\n",
			rule, argv[optind], rule);
	else if (atomic_load(&s.rules[ri].forced) != BREAKER_FORCE_NONE)
		fprintf(stderr,
			"fusebox breaker: warning: the whole rule %s is "
			"forced, which wins over this override until "
			"'fusebox breaker auto %s'\n",
			rule, rule);
	ret = CLI_OK;
out:
	seg_close(&s);
	return ret;
}

/* Zeroes the counters of an address and its histograms and resets its
 * breaker; false when its lock stayed busy (counters are zeroed anyway). */
static bool reset_addr(struct seg_addr *a)
{
	for (int k = 0; k < SEG_NCOUNTERS; k++)
		atomic_store_explicit(&a->counter[k], 0, memory_order_relaxed);
	for (int i = 0; i < SEG_HIST_BUCKETS; i++) {
		atomic_store_explicit(&a->connect_us.bucket[i], 0,
				      memory_order_relaxed);
		atomic_store_explicit(&a->first_byte_us.bucket[i], 0,
				      memory_order_relaxed);
	}
	if (seg_lock(&a->lock) < 0)
		return false;
	breaker_reset(&a->breaker);
	seg_unlock(&a->lock);
	return true;
}

/* Zeroes the counters of a rule, resets its breaker and drops its
 * override; false when its lock stayed busy. */
static bool reset_rule(struct seg_rule *r)
{
	for (int k = 0; k < SEG_NCOUNTERS; k++)
		atomic_store_explicit(&r->counter[k], 0, memory_order_relaxed);
	if (atomic_exchange(&r->forced, BREAKER_FORCE_NONE) !=
	    BREAKER_FORCE_NONE)
		atomic_fetch_add(&r->forced_gen, 1);
	if (seg_lock(&r->lock) < 0)
		return false;
	breaker_reset(&r->breaker);
	seg_unlock(&r->lock);
	return true;
}

/* fusebox reset [RULE] [-s NAME]: zeroes counters and resets breakers of
 * every rule or of RULE; returns the exit status. */
int cmd_reset(int argc, char **argv)
{
	const char *opt = NULL, *only;
	char name[SEG_NAME_MAX + 8];
	unsigned nrules = 0, naddrs = 0, busy = 0;
	bool *picked;
	struct seg s;
	int r;

	r = parse_opts("reset", argc, argv, &opt, NULL);
	if (r)
		return r;
	if (argc - optind > 1)
		return cli_usage_error("reset", "expected at most one RULE");
	only = optind < argc ? argv[optind] : NULL;
	if (only && (!*only || strlen(only) >= SEG_NAME_MAX))
		return cli_usage_error("reset",
				       "'%s': RULE must be 1 to %d characters",
				       only, SEG_NAME_MAX - 1);
	if (open_rw("reset", opt, &s, name, sizeof name) < 0)
		return CLI_FAIL;
	picked = calloc(s.nrules, sizeof *picked);
	if (!picked) {
		fprintf(stderr, "fusebox reset: out of memory\n");
		seg_close(&s);
		return CLI_FAIL;
	}
	for (uint32_t i = 0; i < s.nrules; i++) {
		struct seg_rule *sr = &s.rules[i];

		if (atomic_load_explicit(&sr->used, memory_order_acquire) !=
			2 ||
		    (only && strncmp(sr->name, only, SEG_NAME_MAX)))
			continue;
		busy += !reset_rule(sr);
		picked[i] = true;
		nrules++;
	}
	for (uint32_t j = 0; j < s.naddrs; j++) {
		struct seg_addr *a = &s.addrs[j];
		uint32_t ri = a->rule;

		if (atomic_load_explicit(&a->used, memory_order_acquire) != 2 ||
		    ri >= s.nrules || !picked[ri])
			continue;
		busy += !reset_addr(a);
		naddrs++;
	}
	free(picked);
	if (only && !nrules) {
		fprintf(stderr, "fusebox reset: no rule %s in segment %s\n",
			only, name);
		seg_close(&s);
		return CLI_FAIL;
	}
	atomic_fetch_add(&s.hdr->reset_gen, 1);
	seg_close(&s);
	printf("reset %u rule%s and %u address%s (segment %s)\n", nrules,
	       nrules == 1 ? "" : "s", naddrs, naddrs == 1 ? "" : "es", name);
	if (busy) {
		fprintf(stderr,
			"fusebox reset: %u breaker%s stayed locked and "
			"were not reset\n",
			busy, busy == 1 ? "" : "s");
		return CLI_FAIL;
	}
	return CLI_OK;
}
