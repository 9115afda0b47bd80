/* SPDX-License-Identifier: MIT */
/* Unit tests of segment/, one thread at a time: creating, opening and
 * validating a segment (and refusing spoilt ones), its rule and address
 * tables, histograms, the robust lock, and the shared structures of
 * segment/shared.h (connections, the line, retry budget, rate) against
 * their contracts.  tests/concurrency races the same under many threads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "segment/segment.h"
#include "segment/shared.h"

#define NPROCS 4
#define NRULES 16
#define NADDRS 4
#define PID(i) (1000u + (uint32_t)(i))
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct seg_sizes small = {NPROCS, NRULES, NADDRS};
static struct seg sg;		    /* a private segment, fresh for each test */
static char shm_name[SEG_NAME_MAX]; /* unique to the test's process */
static uint32_t dead[NPROCS * 2];   /* pids the tests declared gone */
static unsigned ndead;

/* Makes sg and a shm name no real fusebox uses (Criterion runs each test
 * in a process of its own). */
static void setup(void)
{
	snprintf(shm_name, sizeof shm_name, "fusebox-unit-segment-%d",
		 (int)getpid());
	ndead = 0;
	cr_assert_eq(seg_private(&small, &sg), 0);
}

/* Unmaps sg and removes the shm object a test may have left. */
static void teardown(void)
{
	char path[SEG_NAME_MAX + 2];

	seg_close(&sg);
	snprintf(path, sizeof path, "/%s", shm_name);
	shm_unlink(path);
}

TestSuite(segment, .init = setup, .fini = teardown);

/* --- fake processes ------------------------------------------------------ */
/* Entry i is taken by a new process pid, as the shim's registration does:
 * a new generation, then the pid. */
static void proc_take(int i, uint32_t pid)
{
	struct seg_proc *p = &sg.procs[i];

	atomic_fetch_add(&p->gen, 1);
	atomic_store(&p->start, 5000u + pid);
	atomic_store(&p->pid, pid);
}

/* Declares process pid gone. */
static void proc_kill(uint32_t pid)
{
	cr_assert_lt(ndead, LEN(dead));
	dead[ndead++] = pid;
}

/* True when a test declared process pid gone. */
static bool pid_dead(uint32_t pid)
{
	for (unsigned i = 0; i < ndead; i++)
		if (dead[i] == pid)
			return true;
	return false;
}

/* seg_gone_fn: gone when a test declared it so; asked with the pid the
 * entry says. */
static bool fake_gone(const struct seg_proc *p, uint32_t pid)
{
	cr_assert_eq(pid, atomic_load(&p->pid), "asked about %u, entry says %u",
		     pid, atomic_load(&p->pid));
	return pid_dead(pid);
}

/* seg_line_count's alive(): the reader's view of the same processes. */
static bool fake_alive(uint32_t pid, uint64_t start)
{
	cr_assert_eq(start, 5000u + pid);
	return !pid_dead(pid);
}

/* --- creation and validation --------------------------------------------- */
Test(segment, private_segment_has_the_sizes_asked_or_the_defaults)
{
	static const struct {
		struct seg_sizes in, out;
	} t[] = {
	    {{4, 16, 4}, {4, 16, 4}},
	    {{1, 1, 1}, {1, 1, 1}},
	    {{0, 0, 0},
	     {SEG_DEFAULT_PROCS, SEG_DEFAULT_RULES, SEG_DEFAULT_ADDRS}},
	    {{SEG_MAX_ENTRIES + 1, 2, 0},
	     {SEG_DEFAULT_PROCS, 2, SEG_DEFAULT_ADDRS}},
	};
	char why[128] = "";

	for (size_t i = 0; i < LEN(t); i++) {
		struct seg s;

		cr_assert_eq(seg_private(&t[i].in, &s), 0, "case %zu", i);
		cr_assert_eq(s.nprocs, t[i].out.procs, "case %zu", i);
		cr_assert_eq(s.nrules, t[i].out.rules, "case %zu", i);
		cr_assert_eq(s.naddrs, t[i].out.addrs, "case %zu", i);
		cr_assert_eq(s.size, seg_bytes(&t[i].out), "case %zu", i);
		cr_assert_not(s.shared);
		cr_assert_eq(
		    seg_validate(s.base, s.size, getuid(), why, sizeof why), 0,
		    "case %zu: %s", i, why);
		seg_close(&s);
		cr_assert_null(s.base, "seg_close leaves s empty");
	}
	seg_close(&(struct seg){0}); /* an empty one: nothing to do */
}

enum { SPOIL_SET, SPOIL_ADD };
#define FIELD(f)                                                               \
	.off = offsetof(struct seg_header, f),                                 \
	.width = sizeof(((struct seg_header *)0)->f)

/* Sets or adds v to the width-byte field at off of a header. */
static void poke(void *base, size_t off, size_t width, int op, uint64_t v)
{
	unsigned char *p = (unsigned char *)base + off;
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;

	switch (width) {
	case 1:
		memcpy(&u8, p, 1);
		u8 = (uint8_t)(op == SPOIL_ADD ? u8 + v : v);
		memcpy(p, &u8, 1);
		break;
	case 4:
		memcpy(&u32, p, 4);
		u32 = (uint32_t)(op == SPOIL_ADD ? u32 + v : v);
		memcpy(p, &u32, 4);
		break;
	case 8:
		memcpy(&u64, p, 8);
		u64 = op == SPOIL_ADD ? u64 + v : v;
		memcpy(p, &u64, 8);
		break;
	default:
		cr_assert_fail("width %zu", width);
	}
}

Test(segment, validate_refuses_each_corruption)
{
	static const struct {
		const char *what;
		size_t off, width; /* width 0: no field changed */
		int op;
		uint64_t v;
		long len_by;	 /* added to the length validated */
		size_t len_to;	 /* not 0: the length validated */
		unsigned uid_by; /* added to the uid asked for */
		const char *why; /* in the reason; NULL: accepted */
	} t[] = {
	    {.what = "fresh"},
	    {"magic[0]", FIELD(magic[0]), SPOIL_SET, 'X', .why = "magic"},
	    {"magic[7]", FIELD(magic[7]), SPOIL_SET, 1, .why = "magic"},
	    {"version + 1", FIELD(version), SPOIL_ADD, 1, .why = "version"},
	    {"version 1", FIELD(version), SPOIL_SET, 1, .why = "version"},
	    {"header_size + 8", FIELD(header_size), SPOIL_ADD, 8,
	     .why = "version"},
	    {"size + 64", FIELD(size), SPOIL_ADD, 64, .why = "size"},
	    {"size 0", FIELD(size), SPOIL_SET, 0, .why = "size"},
	    {"64 bytes short", .len_by = -64, .why = "size"},
	    {"64 bytes long", .len_by = 64, .why = "size"},
	    {"header less one byte", .len_to = sizeof(struct seg_header) - 1,
	     .why = "too small"},
	    {"16 bytes", .len_to = 16, .why = "too small"},
	    {"another uid", .uid_by = 1, .why = "uid"},
	    {"not ready", FIELD(ready), SPOIL_SET, 0, .why = "not initialised"},
	    {"proc_size + 8", FIELD(proc_size), SPOIL_ADD, 8, .why = "corrupt"},
	    {"rule_size - 1", FIELD(rule_size), SPOIL_ADD, (uint64_t)-1,
	     .why = "corrupt"},
	    {"addr_size 0", FIELD(addr_size), SPOIL_SET, 0, .why = "corrupt"},
	    {"nprocs 0", FIELD(nprocs), SPOIL_SET, 0, .why = "corrupt"},
	    {"nrules over the most", FIELD(nrules), SPOIL_SET,
	     SEG_MAX_ENTRIES + 1, .why = "corrupt"},
	    {"naddrs + 1000", FIELD(naddrs), SPOIL_ADD, 1000, .why = "corrupt"},
	    {"procs_off + 4: unaligned", FIELD(procs_off), SPOIL_ADD, 4,
	     .why = "corrupt"},
	    {"procs_off 0: in the header", FIELD(procs_off), SPOIL_SET, 0,
	     .why = "corrupt"},
	    {"addrs_off + 2^40: past the end", FIELD(addrs_off), SPOIL_ADD,
	     (uint64_t)1 << 40, .why = "corrupt"},
	    {"rules_off - 64: over the procs", FIELD(rules_off), SPOIL_ADD,
	     (uint64_t)-64, .why = "overlap"},
	    {"addrs_off - 64: over the rules", FIELD(addrs_off), SPOIL_ADD,
	     (uint64_t)-64, .why = "overlap"},
	};

	for (size_t i = 0; i < LEN(t); i++) {
		char why[128] = "";
		struct seg s;
		size_t len;
		int r;

		cr_assert_eq(seg_private(&small, &s), 0);
		if (t[i].width)
			poke(s.base, t[i].off, t[i].width, t[i].op, t[i].v);
		len = t[i].len_to ? t[i].len_to
				  : (size_t)((long)s.size + t[i].len_by);
		r = seg_validate(s.base, len, getuid() + t[i].uid_by, why,
				 sizeof why);
		if (!t[i].why) {
			cr_assert_eq(r, 0, "%s: %d (%s)", t[i].what, r, why);
		} else {
			cr_assert_eq(r, -EINVAL, "%s: %d", t[i].what, r);
			cr_assert_not_null(strstr(why, t[i].why),
					   "%s: reason '%s', not '%s'",
					   t[i].what, why, t[i].why);
		}
		seg_close(&s);
	}
}

Test(segment, open_creates_then_shares_a_named_segment)
{
	struct seg_sizes other = {8, 8, 8};
	struct seg a, b, c;
	char why[128] = "";
	int ra, rb;

	cr_assert_eq(seg_open(shm_name, &small, true, &a, why, sizeof why), 0,
		     "%s", why);
	cr_assert(a.shared);
	cr_assert_str_eq(a.name, shm_name);
	cr_assert_eq(a.nprocs, NPROCS);
	cr_assert_eq(a.nrules, NRULES);
	cr_assert_eq(a.naddrs, NADDRS);
	cr_assert_eq(a.size, seg_bytes(&small));
	cr_assert_eq(seg_validate(a.base, a.size, getuid(), why, sizeof why), 0,
		     "%s", why);

	/* a second open finds it as made, whatever sizes it asks for */
	cr_assert_eq(seg_open(shm_name, &other, true, &b, why, sizeof why), 0,
		     "%s", why);
	cr_assert_eq(b.nprocs, NPROCS);
	cr_assert_eq(b.nrules, NRULES);
	cr_assert_neq(a.base, b.base);

	/* the same memory under both mappings */
	ra = seg_rule_get(&a, "payments");
	rb = seg_rule_get(&b, "payments");
	cr_assert_geq(ra, 0);
	cr_assert_eq(ra, rb);
	cr_assert_neq(seg_conn_reserve(&a, (uint32_t)ra, -1, 0),
		      SEG_HOLDER_NONE);
	cr_assert_eq(seg_conn_count(&b, (uint32_t)rb), 1);

	cr_assert_eq(seg_open_readonly(shm_name, &c, why, sizeof why), 0, "%s",
		     why);
	cr_assert(c.shared);
	cr_assert_eq(c.nrules, NRULES);
	cr_assert_eq(seg_conn_count(&c, (uint32_t)ra), 1);
	cr_assert_str_eq(c.rules[ra].name, "payments");
	seg_close(&c);
	seg_close(&b);
	seg_close(&a);
}

Test(segment, open_without_create_finds_nothing)
{
	struct seg s;
	char why[128] = "";

	cr_assert_eq(seg_open(shm_name, &small, false, &s, why, sizeof why),
		     -ENOENT);
	cr_assert_null(s.base);
	cr_assert_neq(why[0], '\0');
	why[0] = '\0';
	cr_assert_eq(seg_open_readonly(shm_name, &s, why, sizeof why), -ENOENT);
	cr_assert_null(s.base);
	cr_assert_neq(why[0], '\0');
}

enum { SHM_WRITE, SHM_RESIZE_BY, SHM_RESIZE_TO, SHM_CHMOD };

Test(segment, open_refuses_a_spoilt_named_segment)
{
	static const struct {
		const char *what;
		int how;
		size_t off, width; /* SHM_WRITE: where */
		int op;		   /* and how */
		int64_t v;	   /* what, how much, or the mode */
		int r;
	} t[] = {
	    {"bad magic", SHM_WRITE, FIELD(magic[0]), SPOIL_SET, 'X', -EINVAL},
	    {"version + 1", SHM_WRITE, FIELD(version), SPOIL_ADD, 1, -EINVAL},
	    {"size in the header + 64", SHM_WRITE, FIELD(size), SPOIL_ADD, 64,
	     -EINVAL},
	    {"64 bytes cut off", SHM_RESIZE_BY, .v = -64, .r = -EINVAL},
	    {"4096 bytes added", SHM_RESIZE_BY, .v = 4096, .r = -EINVAL},
	    {"cut to 16 bytes", SHM_RESIZE_TO, .v = 16, .r = -EINVAL},
	    {"mode 0640", SHM_CHMOD, .v = 0640, .r = -EPERM},
	    {"mode 0602", SHM_CHMOD, .v = 0602, .r = -EPERM},
	};
	char path[SEG_NAME_MAX + 2];

	snprintf(path, sizeof path, "/%s", shm_name);
	for (size_t i = 0; i < LEN(t); i++) {
		char why[128] = "";
		struct seg s;
		size_t len;
		int fd, r;

		cr_assert_eq(
		    seg_open(shm_name, &small, true, &s, why, sizeof why), 0,
		    "%s", why);
		len = s.size;
		seg_close(&s);
		fd = shm_open(path, O_RDWR, 0);
		cr_assert_geq(fd, 0);
		switch (t[i].how) {
		case SHM_WRITE: {
			unsigned char hdr[sizeof(struct seg_header)];

			cr_assert_eq(pread(fd, hdr, sizeof hdr, 0),
				     (ssize_t)sizeof hdr);
			poke(hdr, t[i].off, t[i].width, t[i].op,
			     (uint64_t)t[i].v);
			cr_assert_eq(pwrite(fd, hdr, sizeof hdr, 0),
				     (ssize_t)sizeof hdr);
			break;
		}
		case SHM_RESIZE_BY:
			cr_assert_eq(ftruncate(fd, (off_t)len + t[i].v), 0);
			break;
		case SHM_RESIZE_TO:
			cr_assert_eq(ftruncate(fd, (off_t)t[i].v), 0);
			break;
		case SHM_CHMOD:
			cr_assert_eq(fchmod(fd, (mode_t)t[i].v), 0);
			break;
		}
		close(fd);

		/* create or not, read-only or not: refused, s left empty */
		for (int create = 0; create < 3; create++) {
			why[0] = '\0';
			memset(&s, 0x5a, sizeof s);
			r = create == 2 ? seg_open_readonly(shm_name, &s, why,
							    sizeof why)
					: seg_open(shm_name, &small, create, &s,
						   why, sizeof why);
			cr_assert_eq(r, t[i].r, "%s (open %d): %d (%s)",
				     t[i].what, create, r, why);
			cr_assert_null(s.base, "%s", t[i].what);
			cr_assert_eq(s.nrules, 0, "%s", t[i].what);
			cr_assert_neq(why[0], '\0', "%s: no reason", t[i].what);
		}
		cr_assert_eq(shm_unlink(path), 0, "%s: the object is kept",
			     t[i].what);
	}
}

/* --- rule and address tables --------------------------------------------- */
Test(segment, rule_get_finds_what_it_added)
{
	static const char *const names[] = {"payments", "orders", "a",
					    "payments-eu"};
	int idx[LEN(names)];

	for (size_t i = 0; i < LEN(names); i++) {
		idx[i] = seg_rule_get(&sg, names[i]);
		cr_assert_geq(idx[i], 0, "%s", names[i]);
		cr_assert_lt(idx[i], NRULES, "%s", names[i]);
		cr_assert_str_eq(sg.rules[idx[i]].name, names[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_neq(idx[i], idx[j], "%s and %s", names[i],
				      names[j]);
	}
	for (size_t i = 0; i < LEN(names); i++)
		cr_assert_eq(seg_rule_get(&sg, names[i]), idx[i], "%s",
			     names[i]);
}

Test(segment, tables_when_full_refuse_only_new_keys)
{
	struct seg_sizes sz = {1, 3, 2};
	uint8_t a[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
	int rules[3], addrs[2];
	struct seg s;

	cr_assert_eq(seg_private(&sz, &s), 0);
	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof name, "r%d", i);
		rules[i] = seg_rule_get(&s, name);
		cr_assert_geq(rules[i], 0, "%s", name);
	}
	cr_assert_eq(seg_rule_get(&s, "r3"), -1);
	cr_assert_eq(seg_rule_get(&s, "r1"), rules[1]);

	for (int i = 0; i < 2; i++) {
		addrs[i] = seg_addr_get(&s, 0, a, (uint16_t)(80 + i), NULL);
		cr_assert_geq(addrs[i], 0);
	}
	cr_assert_neq(addrs[0], addrs[1]);
	cr_assert_eq(seg_addr_get(&s, 0, a, 82, NULL), -1);
	cr_assert_eq(seg_addr_get(&s, 0, a, 81, NULL), addrs[1]);
	seg_close(&s);
}

Test(segment, addr_get_keys_on_rule_address_and_port)
{
	static const struct {
		uint32_t rule;
		uint8_t last; /* of 127.0.0.x, IPv4-mapped */
		uint16_t port;
		const char *host;
	} t[] = {
	    {0, 1, 443, "api.example"},
	    {0, 1, 80, NULL},
	    {0, 2, 443, ""},
	    {1, 1, 443, "api.example"},
	};
	int idx[LEN(t)];

	for (size_t i = 0; i < LEN(t); i++) {
		uint8_t a[16] = {
		    [10] = 0xff, [11] = 0xff, [12] = 127, [15] = t[i].last};

		idx[i] = seg_addr_get(&sg, t[i].rule, a, t[i].port, t[i].host);
		cr_assert_geq(idx[i], 0, "case %zu", i);
		cr_assert_lt(idx[i], NADDRS, "case %zu", i);
		cr_assert_eq(sg.addrs[idx[i]].rule, t[i].rule);
		cr_assert_eq(sg.addrs[idx[i]].port, t[i].port);
		cr_assert_eq(memcmp(sg.addrs[idx[i]].addr, a, 16), 0);
		cr_assert_str_eq(sg.addrs[idx[i]].host,
				 t[i].host ? t[i].host : "");
		for (size_t j = 0; j < i; j++)
			cr_assert_neq(idx[i], idx[j], "cases %zu, %zu", i, j);
	}
	/* found again, under another host name too: the key is addr:port */
	for (size_t i = 0; i < LEN(t); i++) {
		uint8_t a[16] = {
		    [10] = 0xff, [11] = 0xff, [12] = 127, [15] = t[i].last};

		cr_assert_eq(seg_addr_get(&sg, t[i].rule, a, t[i].port, "x"),
			     idx[i], "case %zu", i);
	}
}

/* --- histograms and counter names ---------------------------------------- */
/* The median of a histogram holding only us, in µs. */
static double median_of(uint64_t us)
{
	struct seg_hist h;

	memset(&h, 0, sizeof h);
	seg_hist_add(&h, us);
	return seg_hist_quantile(&h, 0.5) * 1000.0;
}

Test(segment, hist_quantile_of_nothing_is_minus_one)
{
	struct seg_hist h;

	memset(&h, 0, sizeof h);
	cr_assert_eq(seg_hist_quantile(&h, 0.5), -1.0);
	cr_assert_eq(seg_hist_quantile(&h, 0.99), -1.0);
}

Test(segment, hist_quantile_falls_in_the_quarter_octave_of_its_value)
{
	static const uint64_t us[] = {1,     2,	     3,	      5,       7,
				      100,   1000,   1500,    1535,    1536,
				      65536, 999999, 1000000, 10000000};

	for (size_t i = 0; i < LEN(us); i++) {
		/* bucket 4k + j: [2^k (1 + j/4), 2^k (1 + (j+1)/4)) */
		double k = floor(log2((double)us[i])), o = exp2(k);
		double j = floor(((double)us[i] / o - 1) * 4);
		double lo = o * (1 + j / 4), hi = o * (1 + (j + 1) / 4);
		double m = median_of(us[i]);

		cr_assert(lo <= (double)us[i] && (double)us[i] < hi);
		cr_assert(m >= lo && m < hi,
			  "%llu µs: median %.3f, not in [%.3f, %.3f)",
			  (unsigned long long)us[i], m, lo, hi);
	}
}

Test(segment, hist_quantile_picks_the_bucket_holding_the_rank)
{
	static const struct {
		double q;
		uint64_t like; /* the quantile is that of this value */
	} t[] = {
	    {0.01, 1000}, {0.5, 1000},	  {0.9, 1000},
	    {0.91, 1000}, {0.95, 100000}, {0.99, 100000},
	};
	struct seg_hist h;

	memset(&h, 0, sizeof h);
	for (int i = 0; i < 91; i++)
		seg_hist_add(&h, 1000);
	for (int i = 0; i < 9; i++)
		seg_hist_add(&h, 100000);
	for (size_t i = 0; i < LEN(t); i++)
		cr_assert_eq(seg_hist_quantile(&h, t[i].q) * 1000.0,
			     median_of(t[i].like), "q %.2f", t[i].q);
}

Test(segment, counter_names_are_distinct)
{
	cr_assert_str_eq(seg_counter_name(SEG_CALLS), "calls");
	cr_assert_str_eq(seg_counter_name(SEG_REJECTED_BUDGET),
			 "rejected_budget");
	cr_assert_str_eq(seg_counter_name(SEG_BYTES_RECEIVED),
			 "bytes_received");
	cr_assert_str_eq(seg_counter_name(SEG_NCOUNTERS), "?");
	for (int i = 0; i < SEG_NCOUNTERS; i++) {
		const char *n = seg_counter_name((enum seg_counter)i);

		cr_assert(n && n[0] && strcmp(n, "?"), "counter %d", i);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(n,
					  seg_counter_name((enum seg_counter)j),
					  "counters %d and %d", i, j);
	}
}

/* --- the robust lock ----------------------------------------------------- */
/* Forks a child that takes the segment's alloc lock, says so on a pipe,
 * and then exits at once (hold 0) or when the pipe back closes; its pid,
 * with in *back the end that makes it exit. */
static pid_t lock_holder(bool hold, int *back)
{
	int up[2], down[2];
	char c;
	pid_t pid;

	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(down), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		if (seg_lock(&sg.hdr->alloc) < 0)
			_exit(1);
		(void)!write(up[1], "L", 1);
		if (hold)
			(void)!read(down[0], &c, 1); /* EOF: parent done */
		_exit(0);			     /* lock not given back */
	}
	close(up[1]);
	close(down[0]);
	cr_assert_eq(read(up[0], &c, 1), 1, "the child took no lock");
	close(up[0]);
	*back = down[1];
	return pid;
}

/* Waits for child pid to exit with 0. */
static void reap_child(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(segment, lock_recovers_from_a_dead_holder)
{
	int back;
	pid_t pid = lock_holder(false, &back);

	reap_child(pid);
	close(back);
	cr_assert_eq(seg_lock(&sg.hdr->alloc), 0);
	seg_unlock(&sg.hdr->alloc);
	cr_assert_eq(seg_lock(&sg.hdr->alloc), 0, "not made consistent");
	seg_unlock(&sg.hdr->alloc);
	cr_assert_geq(seg_rule_get(&sg, "after"), 0);
}

Test(segment, lock_held_by_a_live_process_is_given_up_after_a_second)
{
	struct timespec t0, t1;
	double s;
	int back;
	pid_t pid = lock_holder(true, &back);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(seg_lock(&sg.hdr->alloc), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert(s > 0.9 && s < 5, "gave up after %.2f s", s);
	close(back);
	reap_child(pid);
	cr_assert_eq(seg_lock(&sg.hdr->alloc), 0);
	seg_unlock(&sg.hdr->alloc);
}

/* --- connections of a rule ----------------------------------------------- */
/* Reserves a connection for proc in each rule of [from, to), each in
 * one of its held[] entries. */
static void hold_rules(int proc, uint32_t from, uint32_t to)
{
	for (uint32_t ri = from; ri < to; ri++) {
		int h = seg_conn_reserve(&sg, ri, proc, 0);

		cr_assert_geq(h, SEG_HOLDER_HELD, "rule %u: %d", ri, h);
		cr_assert_lt(h, SEG_HOLDER_HELD + SEG_HELD, "rule %u", ri);
	}
}

Test(segment, conn_reserve_stops_at_max)
{
	enum { ANY_HELD = -1 };
	static const struct {
		const char *what;
		int proc, fill; /* fill: proc holds SEG_HELD other rules */
		uint32_t max, tries, taken;
		int holder; /* expected; ANY_HELD: one of held[] */
	} t[] = {
	    {"no entry", -1, 0, 3, 5, 3, SEG_HOLDER_ANON},
	    {"an entry", 0, 0, 3, 5, 3, ANY_HELD},
	    {"max 1", 0, 0, 1, 4, 1, ANY_HELD},
	    {"no limit", 0, 0, 0, 200, 200, ANY_HELD},
	    {"no limit, no entry", -1, 0, 0, 50, 50, SEG_HOLDER_ANON},
	    {"held[] all taken", 1, 1, 2, 4, 2, SEG_HOLDER_OVERFLOW},
	};
	const uint32_t ri = NRULES - 1;

	for (size_t i = 0; i < LEN(t); i++) {
		int held[200], first = SEG_HOLDER_NONE;

		seg_close(&sg);
		cr_assert_eq(seg_private(&small, &sg), 0);
		if (t[i].proc >= 0)
			proc_take(t[i].proc, PID(t[i].proc));
		if (t[i].fill)
			hold_rules(t[i].proc, 0, SEG_HELD);
		for (uint32_t k = 0; k < t[i].tries; k++) {
			int h = seg_conn_reserve(&sg, ri, t[i].proc, t[i].max);

			held[k] = h;
			if (k >= t[i].taken) {
				cr_assert_eq(h, SEG_HOLDER_NONE, "%s: try %u",
					     t[i].what, k);
				continue;
			}
			if (t[i].holder == ANY_HELD) {
				cr_assert(h >= SEG_HOLDER_HELD &&
					      h < SEG_HOLDER_HELD + SEG_HELD,
					  "%s: %d", t[i].what, h);
				if (k == 0)
					first = h;
				cr_assert_eq(h, first, "%s: held[] moved",
					     t[i].what);
			} else {
				cr_assert_eq(h, t[i].holder, "%s: try %u",
					     t[i].what, k);
			}
		}
		cr_assert_eq(seg_conn_count(&sg, ri), (int32_t)t[i].taken, "%s",
			     t[i].what);
		if (t[i].holder == ANY_HELD)
			cr_assert_eq(
			    atomic_load(&sg.procs[t[i].proc]
					     .held[first - SEG_HOLDER_HELD]
					     .count),
			    (int32_t)t[i].taken, "%s", t[i].what);

		/* each release gives one back, and lets one in again */
		seg_conn_release(&sg, ri, t[i].proc, held[0]);
		cr_assert_eq(seg_conn_count(&sg, ri), (int32_t)t[i].taken - 1,
			     "%s", t[i].what);
		held[0] = seg_conn_reserve(&sg, ri, t[i].proc, t[i].max);
		cr_assert_neq(held[0], SEG_HOLDER_NONE, "%s", t[i].what);
		for (uint32_t k = 0; k < t[i].taken; k++)
			seg_conn_release(&sg, ri, t[i].proc, held[k]);
		cr_assert_eq(seg_conn_count(&sg, ri), 0, "%s", t[i].what);
		if (t[i].fill)
			cr_assert_eq(seg_conn_count(&sg, 0), 1, "%s",
				     t[i].what);
	}
}

Test(segment, conn_seen_changes_with_every_reserve_and_release)
{
	uint64_t v0, v1, v2;
	int h;

	proc_take(0, PID(0));
	v0 = seg_conn_seen(&sg, 3);
	cr_assert_eq(seg_conn_seen(&sg, 3), v0);
	h = seg_conn_reserve(&sg, 3, 0, 0);
	v1 = seg_conn_seen(&sg, 3);
	cr_assert_neq(v1, v0);
	seg_conn_release(&sg, 3, 0, h);
	v2 = seg_conn_seen(&sg, 3);
	cr_assert_eq(seg_conn_count(&sg, 3), 0);
	cr_assert_neq(v2, v0, "back to 0 connections, but changed twice");
	cr_assert_neq(v2, v1);
	cr_assert_eq(seg_conn_seen(&sg, 4), 0, "another rule moved");
}

Test(segment, conn_rule_out_of_range_counts_nothing)
{
	cr_assert_neq(seg_conn_reserve(&sg, 0, -1, 0), SEG_HOLDER_NONE);
	cr_assert_eq(seg_conn_count(&sg, NRULES), 0);
	cr_assert_eq(seg_conn_seen(&sg, NRULES), 0);
	cr_assert_eq(seg_conn_recount(&sg, NRULES, 1000), 0);
	seg_conn_release(&sg, NRULES, -1, SEG_HOLDER_ANON);
	seg_conn_release(&sg, 0, -1, SEG_HOLDER_NONE);
	cr_assert_eq(seg_conn_count(&sg, 0), 1);
}

Test(segment, conn_reap_frees_what_dead_holders_held)
{
	uint32_t gen0;
	int h1;

	proc_take(0, PID(0));
	proc_take(1, PID(1));
	for (int i = 0; i < 2; i++)
		cr_assert_neq(seg_conn_reserve(&sg, 0, 0, 0), SEG_HOLDER_NONE);
	cr_assert_neq(seg_conn_reserve(&sg, 1, 0, 0), SEG_HOLDER_NONE);
	h1 = seg_conn_reserve(&sg, 0, 1, 0);
	cr_assert_eq(seg_conn_count(&sg, 0), 3);
	gen0 = atomic_load(&sg.procs[0].gen);

	/* nobody dead: nothing to do */
	cr_assert_eq(seg_conn_reap(&sg, 0, fake_gone), 0);
	cr_assert_eq(seg_conn_count(&sg, 0), 3);
	cr_assert_eq(atomic_load(&sg.procs[0].pid), PID(0));

	proc_kill(PID(0));
	cr_assert_eq(seg_conn_reap(&sg, 0, fake_gone), 2);
	cr_assert_eq(seg_conn_count(&sg, 0), 1, "the live one's is kept");
	cr_assert_eq(seg_conn_count(&sg, 1), 0, "all a dead entry held");
	cr_assert_eq(atomic_load(&sg.procs[0].pid), 0, "entry not freed");
	cr_assert_eq(atomic_load(&sg.procs[0].gen), gen0 + 1);
	cr_assert_eq(atomic_load(&sg.procs[1].pid), PID(1));
	cr_assert_eq(seg_conn_reap(&sg, 0, fake_gone), 0, "reaped twice");

	seg_conn_release(&sg, 0, 1, h1);
	cr_assert_eq(seg_conn_count(&sg, 0), 0);
}

Test(segment, conn_reap_entry_gives_back_everything)
{
	struct seg_proc *p = &sg.procs[2];
	static const uint32_t n[3] = {2, 0, 3}; /* of rules 4, 5, 6 */

	proc_take(2, PID(2));
	for (uint32_t r = 0; r < 3; r++)
		for (uint32_t k = 0; k < n[r]; k++)
			cr_assert_neq(seg_conn_reserve(&sg, 4 + r, 2, 0),
				      SEG_HOLDER_NONE);
	cr_assert_neq(seg_conn_reserve(&sg, 6, -1, 0), SEG_HOLDER_NONE);
	atomic_store(&p->pid, UINT32_MAX); /* claimed, as the caller must */
	cr_assert_eq(seg_conn_reap_entry(&sg, p, 6), 3);
	cr_assert_eq(seg_conn_count(&sg, 4), 0);
	cr_assert_eq(seg_conn_count(&sg, 6), 1, "not the anonymous one");
	cr_assert_eq(seg_conn_reap_entry(&sg, p, 6), 0, "given back twice");
	cr_assert_eq(seg_conn_count(&sg, 6), 1);
}

/* Leaves a connection of rule ri counted that nobody holds: proc fills
 * its held[] with rules 0..7, takes one of ri past them (an overflow),
 * dies, and is reaped when ri is full; a reap knows no rule of an
 * overflow. */
static void leave_one_behind(int proc, uint32_t ri)
{
	int32_t before = seg_conn_count(&sg, ri);

	proc_take(proc, PID(proc));
	hold_rules(proc, 0, SEG_HELD);
	cr_assert_eq(seg_conn_reserve(&sg, ri, proc, 0), SEG_HOLDER_OVERFLOW);
	proc_kill(PID(proc));
	cr_assert_eq(seg_conn_reap(&sg, ri, fake_gone), 0);
	cr_assert_eq(atomic_load(&sg.procs[proc].pid), 0, "not reaped");
	for (uint32_t r = 0; r < SEG_HELD; r++)
		cr_assert_eq(seg_conn_count(&sg, r), 0, "rule %u", r);
	cr_assert_eq(seg_conn_count(&sg, ri), before + 1);
}

Test(segment, conn_recount_takes_off_what_nobody_holds)
{
	proc_take(1, PID(1));
	for (int i = 0; i < 2; i++)
		cr_assert_neq(seg_conn_reserve(&sg, 9, 1, 0), SEG_HOLDER_NONE);
	cr_assert_eq(seg_conn_recount(&sg, 9, 1000), 0, "count was right");
	cr_assert_eq(seg_conn_count(&sg, 9), 2);

	leave_one_behind(0, 9);
	cr_assert_eq(seg_conn_count(&sg, 9), 3);
	cr_assert_eq(seg_conn_recount(&sg, 9, 2000), 1);
	cr_assert_eq(seg_conn_count(&sg, 9), 2, "the live holder's two");
	cr_assert_eq(seg_conn_recount(&sg, 9, 3000), 0);
	cr_assert_eq(seg_conn_count(&sg, 9), 2);
}

Test(segment, conn_recount_runs_at_most_every_100ms)
{
	leave_one_behind(0, 9);
	cr_assert_eq(seg_conn_recount(&sg, 9, 1000), 1);
	leave_one_behind(2, 9);
	cr_assert_eq(seg_conn_recount(&sg, 9, 1050), 0, "50 ms later");
	cr_assert_eq(seg_conn_recount(&sg, 9, 1099), 0, "99 ms later");
	cr_assert_eq(seg_conn_count(&sg, 9), 1);
	cr_assert_eq(seg_conn_recount(&sg, 9, 1100), 1);
	cr_assert_eq(seg_conn_count(&sg, 9), 0);
}

Test(segment, conn_recount_waits_while_an_overflow_is_held)
{
	int h;

	leave_one_behind(0, 9);
	proc_take(2, PID(2));
	hold_rules(2, 0, SEG_HELD);
	h = seg_conn_reserve(&sg, 10, 2, 0);
	cr_assert_eq(h, SEG_HOLDER_OVERFLOW);
	cr_assert_eq(seg_conn_recount(&sg, 9, 1000), 0);
	cr_assert_eq(seg_conn_count(&sg, 9), 1);
	seg_conn_release(&sg, 10, 2, h);
	cr_assert_eq(seg_conn_count(&sg, 10), 0);
	cr_assert_eq(seg_conn_recount(&sg, 9, 2000), 1);
	cr_assert_eq(seg_conn_count(&sg, 9), 0);
}

/* --- the line of a rule -------------------------------------------------- */
/* Takes a place in rule ri's line for proc (no sweep), failing the test
 * unless it gets one. */
static struct seg_place enter(uint32_t ri, int proc, uint32_t maxp)
{
	struct seg_place me;
	int r = seg_line_enter(&sg, ri, proc, maxp, false, fake_gone, &me);

	cr_assert_eq(r, 0, "proc %d in rule %u (max %u): %d", proc, ri, maxp,
		     r);
	cr_assert_lt(me.slot, maxp < SEG_QUEUE ? maxp : SEG_QUEUE);
	return me;
}

Test(segment, line_tickets_follow_the_order_of_arrival)
{
	struct seg_place me[6];

	proc_take(0, PID(0));
	proc_take(1, PID(1));
	cr_assert_not(seg_line_busy(&sg, 2));
	for (uint32_t k = 0; k < 6; k++) {
		me[k] = enter(2, (int)(k % 2), 8);
		cr_assert_eq(me[k].ticket, me[0].ticket + k);
		for (uint32_t j = 0; j < k; j++)
			cr_assert_neq(me[k].slot, me[j].slot);
	}
	cr_assert(seg_line_busy(&sg, 2));
	cr_assert_not(seg_line_busy(&sg, 3));
	cr_assert_eq(seg_line_count(&sg, 2, NULL), 6);
	cr_assert_eq(seg_line_count(&sg, 2, fake_alive), 6);
	for (uint32_t k = 0; k < 6; k++) {
		cr_assert_eq(seg_line_ahead(&sg, 2, &me[k], 100), k);
		cr_assert_eq(seg_line_ahead(&sg, 2, &me[k], 2), k < 2 ? k : 2,
			     "limit 2");
	}
	for (uint32_t k = 0; k < 6; k++)
		seg_line_leave(&sg, 2, &me[k]);
	cr_assert_not(seg_line_busy(&sg, 2));
	cr_assert_eq(seg_line_count(&sg, 2, NULL), 0);
}

Test(segment, line_is_full_at_max_pending)
{
	static const struct {
		uint32_t maxp, places;
	} t[] = {
	    {0, 0},
	    {1, 1},
	    {3, 3},
	    {63, 63},
	    {64, 64},
	    {65, 65},
	    {SEG_QUEUE, SEG_QUEUE},
	    {SEG_QUEUE + 1, SEG_QUEUE},
	    {100000, SEG_QUEUE},
	};

	proc_take(0, PID(0));
	for (size_t i = 0; i < LEN(t); i++) {
		uint32_t ri = (uint32_t)i, n = 0;
		struct seg_place me;
		int r;

		while ((r = seg_line_enter(&sg, ri, 0, t[i].maxp, false,
					   fake_gone, &me)) == 0 &&
		       n <= SEG_QUEUE)
			n++;
		cr_assert_eq(r, -EAGAIN, "max %u: %d", t[i].maxp, r);
		cr_assert_eq(n, t[i].places, "max %u", t[i].maxp);
		cr_assert_eq(seg_line_count(&sg, ri, NULL), (int32_t)n);
		cr_assert_eq(seg_line_count(&sg, ri, fake_alive), (int32_t)n);
		/* a sweep finds nobody dead: still full */
		cr_assert_eq(
		    seg_line_enter(&sg, ri, 0, t[i].maxp, true, fake_gone, &me),
		    -EAGAIN, "max %u, swept", t[i].maxp);
		cr_assert_eq(seg_line_count(&sg, ri, NULL), (int32_t)n);
	}
}

Test(segment, line_needs_a_process_entry)
{
	struct seg_place me;

	cr_assert_eq(seg_line_enter(&sg, 0, -1, 4, true, fake_gone, &me),
		     -ENOENT);
	cr_assert_eq(seg_line_enter(&sg, 0, NPROCS, 4, true, fake_gone, &me),
		     -ENOENT);
	cr_assert_eq(seg_line_count(&sg, 0, NULL), 0);
	cr_assert_not(seg_line_busy(&sg, 0));
}

Test(segment, line_leave_moves_those_behind_up)
{
	struct seg_place a, b, c, d, e;

	proc_take(0, PID(0));
	a = enter(1, 0, 3);
	b = enter(1, 0, 3);
	c = enter(1, 0, 3);
	cr_assert_eq(seg_line_enter(&sg, 1, 0, 3, false, fake_gone, &e),
		     -EAGAIN);
	seg_line_leave(&sg, 1, &a);
	cr_assert_eq(seg_line_ahead(&sg, 1, &b, 10), 0);
	cr_assert_eq(seg_line_ahead(&sg, 1, &c, 10), 1);
	cr_assert_eq(seg_line_count(&sg, 1, NULL), 2);
	d = enter(1, 0, 3);
	cr_assert_eq(d.slot, a.slot, "the only free place");
	cr_assert_gt((int32_t)(d.ticket - c.ticket), 0);
	cr_assert_eq(seg_line_ahead(&sg, 1, &d, 10), 2);
	cr_assert_eq(seg_line_ahead(&sg, 1, &c, 10), 1);
	seg_line_leave(&sg, 1, &b);
	seg_line_leave(&sg, 1, &c);
	cr_assert(seg_line_busy(&sg, 1));
	seg_line_leave(&sg, 1, &d);
	cr_assert_not(seg_line_busy(&sg, 1));
	cr_assert_eq(seg_line_count(&sg, 1, NULL), 0);
}

Test(segment, line_again_keeps_the_ticket_and_the_place)
{
	struct seg_place a, b, c, d;
	uint32_t ticket, slot;

	proc_take(0, PID(0));
	a = enter(0, 0, 3);
	b = enter(0, 0, 3);
	c = enter(0, 0, 3);
	ticket = b.ticket;
	slot = b.slot;

	/* a took a connection and went; b left to take one and lost it */
	seg_line_leave(&sg, 0, &a);
	seg_line_leave(&sg, 0, &b);
	cr_assert_eq(seg_line_ahead(&sg, 0, &c, 10), 0);
	cr_assert_eq(seg_line_again(&sg, 0, 3, false, fake_gone, &b), 0);
	cr_assert_eq(b.ticket, ticket);
	cr_assert_eq(b.slot, slot, "not its own place, but a's");
	cr_assert_eq(seg_line_ahead(&sg, 0, &b, 10), 0);
	cr_assert_eq(seg_line_ahead(&sg, 0, &c, 10), 1);

	/* its place taken meanwhile: the line is full, unless longer */
	a = enter(0, 0, 3);
	seg_line_leave(&sg, 0, &b);
	d = enter(0, 0, 3);
	cr_assert_eq(d.slot, slot, "the only free place");
	cr_assert_eq(seg_line_again(&sg, 0, 3, false, fake_gone, &b), -EAGAIN);
	cr_assert_eq(seg_line_again(&sg, 0, 4, false, fake_gone, &b), 0);
	cr_assert_eq(b.ticket, ticket);
	cr_assert_eq(b.slot, 3);
	cr_assert_eq(seg_line_ahead(&sg, 0, &b, 10), 0);
	cr_assert_eq(seg_line_ahead(&sg, 0, &a, 10), 2, "b and c");
	cr_assert_eq(seg_line_ahead(&sg, 0, &d, 10), 3);
	cr_assert_eq(seg_line_count(&sg, 0, NULL), 4);
}

Test(segment, line_tickets_compare_across_the_wrap)
{
	struct seg_place me[4];

	proc_take(0, PID(0));
	atomic_store(&sg.rules[5].q_next, UINT32_MAX - 1);
	for (uint32_t k = 0; k < 4; k++)
		me[k] = enter(5, 0, 8);
	cr_assert_eq(me[2].ticket, 0);
	for (uint32_t k = 0; k < 4; k++)
		cr_assert_eq(seg_line_ahead(&sg, 5, &me[k], 10), k);
}

Test(segment, line_sweep_frees_the_places_of_the_dead)
{
	struct seg_place a, b, c, d;

	proc_take(0, PID(0));
	proc_take(1, PID(1));
	a = enter(3, 0, 3);
	b = enter(3, 0, 3);
	c = enter(3, 1, 3);
	proc_kill(PID(0));

	/* until a sweep, the dead hold their places */
	cr_assert_eq(seg_line_count(&sg, 3, NULL), 3);
	cr_assert_eq(seg_line_count(&sg, 3, fake_alive), 1);
	cr_assert_eq(seg_line_ahead(&sg, 3, &c, 10), 2);
	cr_assert_eq(seg_line_enter(&sg, 3, 1, 3, false, fake_gone, &d),
		     -EAGAIN);

	seg_line_sweep(&sg, 3, fake_gone);
	cr_assert_eq(seg_line_count(&sg, 3, NULL), 1);
	cr_assert_eq(seg_line_ahead(&sg, 3, &c, 10), 0);
	d = enter(3, 1, 3);
	cr_assert_eq(seg_line_ahead(&sg, 3, &d, 10), 1);
	seg_line_leave(&sg, 3, &c);
	seg_line_leave(&sg, 3, &d);
	cr_assert_not(seg_line_busy(&sg, 3), "bits of the dead left");
	(void)a;
	(void)b;
}

Test(segment, line_enter_sweeps_a_full_line_when_asked)
{
	struct seg_place me;

	proc_take(0, PID(0));
	proc_take(1, PID(1));
	enter(4, 0, 2);
	enter(4, 1, 2);
	proc_kill(PID(0));
	cr_assert_eq(seg_line_enter(&sg, 4, 1, 2, false, fake_gone, &me),
		     -EAGAIN);
	cr_assert_eq(seg_line_enter(&sg, 4, 1, 2, true, fake_gone, &me), 0);
	cr_assert_eq(seg_line_count(&sg, 4, NULL), 2);
	cr_assert_eq(seg_line_count(&sg, 4, fake_alive), 2);
	cr_assert_eq(seg_line_ahead(&sg, 4, &me, 10), 1);
}

Test(segment, line_place_of_a_reused_entry_is_swept)
{
	struct seg_place a;

	proc_take(0, PID(0));
	a = enter(6, 0, 4);
	/* the waiter's process is gone and another took its entry: alive,
	 * by pid, but not the owner of the place */
	proc_take(0, 2000);
	cr_assert_eq(seg_line_count(&sg, 6, NULL), 1);
	cr_assert_eq(seg_line_count(&sg, 6, fake_alive), 0);
	seg_line_sweep(&sg, 6, fake_gone);
	cr_assert_eq(seg_line_count(&sg, 6, NULL), 0);
	cr_assert_not(seg_line_busy(&sg, 6));
	(void)a;
}

/* Seconds since t0. */
static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(segment, line_sleep_ends_at_a_wake_or_its_time)
{
	struct timespec t0;
	uint32_t seq = atomic_load(&sg.rules[7].q_wake);
	double s;

	/* woken since seq: no sleep at all */
	seg_line_wake(&sg, 7);
	cr_assert_neq(atomic_load(&sg.rules[7].q_wake), seq);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 1234;
	seg_line_sleep(&sg, 7, seq, 5000000000u);
	s = since(&t0);
	cr_assert(s < 1, "slept %.3f s after a wake", s);
	cr_assert_eq(errno, 1234);

	/* nobody wakes it: 30 ms */
	seq = atomic_load(&sg.rules[7].q_wake);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	seg_line_sleep(&sg, 7, seq, 30000000u);
	s = since(&t0);
	cr_assert(s >= 0.025 && s < 2, "slept %.3f s for 30 ms", s);
	cr_assert_eq(errno, 1234);
}

/* --- retry budget -------------------------------------------------------- */
Test(segment, budget_retries_stay_within_share_and_minimum)
{
	static const struct {
		const char *what;
		uint32_t firsts;
		uint64_t first_sec, ask_sec;
		uint32_t ppm;
		uint64_t min_mps;
		uint32_t asks, granted;
	} t[] = {
	    {"20% of 100", 100, 100, 100, 200000, 0, 50, 20},
	    {"100% of 100", 100, 100, 100, 1000000, 0, 300, 100},
	    {"nothing to share", 0, 100, 100, 200000, 0, 5, 0},
	    {"1/s minimum: 10 in 10 s", 0, 100, 100, 0, 1000, 30, 10},
	    {"0.1/s minimum: 1", 0, 100, 100, 0, 100, 5, 1},
	    {"10% of 10: one", 10, 100, 100, 100000, 0, 5, 1},
	    {"10% of 7: one", 7, 100, 100, 100000, 0, 5, 1},
	    {"10% of 10 and 0.1/s", 10, 100, 100, 100000, 100, 5, 2},
	    {"first attempts 9 s ago", 100, 100, 109, 200000, 0, 50, 20},
	    {"first attempts 10 s ago", 100, 100, 110, 200000, 0, 50, 0},
	    {"first attempts later", 100, 100, 99, 200000, 0, 50, 0},
	    {"in the first seconds", 100, 3, 3, 500000, 0, 80, 50},
	    {"at second 0", 10, 0, 0, 1000000, 0, 20, 10},
	};

	for (size_t i = 0; i < LEN(t); i++) {
		struct seg_rule *r = &sg.rules[i];
		uint32_t n = 0;

		for (uint32_t k = 0; k < t[i].firsts; k++)
			seg_budget_first(r, t[i].first_sec);
		for (uint32_t k = 0; k < t[i].asks; k++) {
			bool ok = seg_budget_retry(r, t[i].ask_sec, t[i].ppm,
						   t[i].min_mps);

			cr_assert(!ok || n == k, "%s: granted after a no",
				  t[i].what);
			n += ok;
		}
		cr_assert_eq(n, t[i].granted, "%s: %u granted", t[i].what, n);
	}
}

Test(segment, budget_counts_granted_retries_over_10_seconds)
{
	static const struct {
		uint64_t sec;
		uint32_t firsts, asks, granted;
	} t[] = {
	    {100, 100, 10, 10}, /* 20 of 100 may be retried */
	    {105, 0, 20, 10},	/* 10 of them taken at 100 */
	    {109, 0, 5, 0},	/* all 20 taken */
	    {110, 0, 5, 0},	/* the 100 first attempts are gone */
	    {110, 200, 50, 30}, /* 40 of 200, less 10 taken at 105 */
	    {115, 0, 50, 10},	/* 105's 10 gone */
	    {125, 0, 5, 0},	/* everything gone */
	};
	struct seg_rule *r = &sg.rules[0];

	for (size_t i = 0; i < LEN(t); i++) {
		uint32_t n = 0;

		for (uint32_t k = 0; k < t[i].firsts; k++)
			seg_budget_first(r, t[i].sec);
		for (uint32_t k = 0; k < t[i].asks; k++)
			n += seg_budget_retry(r, t[i].sec, 200000, 0);
		cr_assert_eq(n, t[i].granted, "step %zu (second %llu): %u", i,
			     (unsigned long long)t[i].sec, n);
	}
}

Test(segment, budget_bucket_of_an_older_second_starts_again)
{
	struct seg_rule *r = &sg.rules[0];
	uint32_t n = 0;

	for (int k = 0; k < 50; k++)
		seg_budget_first(r, 100);
	seg_budget_first(r, 110); /* the same bucket, 10 s on */
	for (int k = 0; k < 10; k++)
		n += seg_budget_retry(r, 110, 1000000, 0);
	cr_assert_eq(n, 1, "%u retries for 1 first attempt", n);
	for (int k = 0; k < 10; k++)
		n += seg_budget_retry(r, 120, 1000000, 0);
	cr_assert_eq(n, 1);
}

/* --- rate ---------------------------------------------------------------- */
#define T0 1000000000u /* µs: 1000 s */

Test(segment, rate_takes_a_burst_then_one_per_step)
{
	/* script: takes at T0 + offset µs, each with '+' (a token) or '-'
	 * (none) */
	static const struct {
		const char *what;
		uint64_t step, burst, tat; /* tat: the word at first */
		const char *script;
	} t[] = {
	    {"1 a ms, burst 1", 1000, 1, 0,
	     "0+ 0- 999- 1000+ 1000- 5000+ 5000-"},
	    {"1 a 100 µs, burst 3", 100, 3, 0,
	     "0+ 0+ 0+ 0- 99- 100+ 100- 10000+ 10000+ 10000+ 10000-"},
	    {"two of three taken just now", 100, 3, T0 + 200,
	     "0+ 0- 100+ 100-"},
	    {"1 a µs, burst 2", 1, 2, 0, "0+ 0+ 0- 1+ 1- 3+ 3+ 3-"},
	    {"from time 0", 10, 2, 0,
	     "-1000000000+ -1000000000+ -1000000000- -999999990+"},
	};

	for (size_t i = 0; i < LEN(t); i++) {
		_Atomic uint64_t tat = t[i].tat;
		const char *p = t[i].script;
		char *end;

		for (unsigned k = 0; *p; k++) {
			long long dt = strtoll(p, &end, 10);

			cr_assert(end > p && (*end == '+' || *end == '-'),
				  "%s: script at '%s'", t[i].what, p);
			cr_assert_eq(seg_rate_take(&tat, T0 + (uint64_t)dt,
						   t[i].step, t[i].burst),
				     *end == '+', "%s: take %u, at T0%+lld",
				     t[i].what, k, dt);
			p = end + 1 + (end[1] == ' ');
		}
	}
}

Test(segment, rate_lets_through_the_burst_and_the_refill)
{
	_Atomic uint64_t tat = 0;
	unsigned n = 0;

	/* one ask a µs for 10 ms, 1 a 100 µs, burst 5: the 5 of the full
	 * bucket, then one a step from T0 + 100 to T0 + 9900 */
	for (uint64_t us = 0; us < 10000; us++)
		n += seg_rate_take(&tat, T0 + us, 100, 5);
	cr_assert_eq(n, 5 + 99);
}

/* A word far ahead of now (corrupt, another clock) is taken as now and
 * swapped away; one ahead by less than a second (a caller whose clock
 * read is late) is refused.  The first used to spin for ever: the word
 * taken as now was also the swap's expected value. */
Test(segment, rate_takes_a_far_word_as_now_and_a_near_one_as_busy,
     .timeout = 10)
{
	_Atomic uint64_t tat = 2 * (uint64_t)T0; /* 1000 s ahead */

	cr_assert(seg_rate_take(&tat, T0, 100, 1));
	cr_assert_eq(atomic_load(&tat), T0 + 100);
	atomic_store(&tat, T0 + 500000); /* 0.5 s ahead */
	cr_assert(!seg_rate_take(&tat, T0, 100, 1));
	cr_assert_eq(atomic_load(&tat), T0 + 500000);
}

/* A large address table fills to more than 90% before a new key finds
 * no slot within SEG_PROBES (512) of its own; then every key in it is
 * still found, and a miss is answered looking at SEG_PROBES slots at
 * most, not all the table's (a full table of 1,000,000 addresses used to
 * cost each connect to a new address a million looks). */
Test(segment, a_large_table_fills_and_stays_found_with_bounded_probes)
{
	struct seg_sizes sz = {1, 4, 4096};
	uint8_t a[16] = {[10] = 0xff, [11] = 0xff, [12] = 10};
	static int idx[4096];
	struct seg s;
	int n = 0;

	cr_assert_eq(seg_private(&sz, &s), 0);
	for (; n < 4096; n++) {
		a[13] = (uint8_t)(n >> 8);
		a[14] = (uint8_t)n;
		idx[n] = seg_addr_get(&s, 0, a, 80, NULL);
		if (idx[n] < 0)
			break;
	}
	cr_assert_geq(n, 4096 * 9 / 10, "refused at %d of 4096", n);
	for (int i = 0; i < n; i++) {
		a[13] = (uint8_t)(i >> 8);
		a[14] = (uint8_t)i;
		cr_assert_eq(seg_addr_get(&s, 0, a, 80, NULL), idx[i], "key %d",
			     i);
	}
	a[12] = 11; /* never added */
	for (int i = 0; i < 100; i++) {
		a[14] = (uint8_t)i;
		(void)seg_addr_get(&s, 0, a, 81, NULL); /* a slot or -1 */
	}
	seg_close(&s);
}
