#!/usr/bin/python3.11
# SPDX-License-Identifier: MIT
# make test-cpython: a regression guard built from CPython's own network
# test suites (Debian's libpython3.11-testsuite, /usr/lib/python3.11/test).
#
# The same subset of test modules runs three times with /usr/bin/python3.11
# and `python3.11 -m test -v -jN`:
#   baseline  without fusebox
#   passive   under `fusebox run`, a [default] section that only counts
#             (and a dry-run breaker, which decides but never rejects)
#   typical   under `fusebox run`, timeouts, a breaker, a high connection
#             limit, no retries (POLICIES below says why each value cannot
#             change an outcome of these tests)
# Every TCP connect these tests make goes to 127.0.0.1 (or ::1): the
# 'network' resource of regrtest stays disabled.  Then the outcome of every
# test id (ok, FAIL, ERROR, skipped, expected failure, unexpected success)
# and of every module (passed, failed, crashed, timed out, ...) is compared;
# any difference, or a test that ran in one run and not in another, fails
# the run and is listed.  Each fusebox run has a shared-memory segment of
# its own (FUSEBOX_SEGMENT=fusebox-cpython-PID-RUN), removed at the end;
# its counters must show guarded calls, or the run proves nothing.
#
# Bounded: 40-45 s a run on 2 cores, about 130 s for the three (-j8:
# most of these modules sleep or wait on sockets, about 30 s of CPU a
# run).  regrtest stops a module after --timeout (a "timed out" module is
# a difference) and this script a whole run after --run-timeout.
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3.11"
TESTDIR = "/usr/lib/python3.11/test"

# Why these: each opens TCP connections on 127.0.0.1 through a different
# layer of the standard library (blocking sockets with and without
# timeouts, makefile(), sendfile, OpenSSL, selectors, asyncio's
# non-blocking connects and event loop, clients of HTTP, XML-RPC, FTP,
# SMTP, POP3, IMAP, logging's socket handlers), or leans on a call the
# shim wraps without a TCP destination in sight (poll, select, epoll_ctl,
# fcntl, dup, close, close_range, read/write on pipes, fork and exec of
# guarded children: test_poll, test_epoll, test_select, test_selectors,
# test_io, test_eintr, test_subprocess, test_asyncio.test_subprocess).
# The times are of one module alone, without fusebox, on 2 cores.
MODULES = [
    # slowest first, so that -j keeps every worker busy to the end
    "test_ssl",                 # ~38 s; TLS over TCP, OpenSSL (dlopen'ed _ssl)
    "test_imaplib",             # ~32 s (mostly waits); imaplib + TLS servers
    "test_io",                  # ~28 s (mostly waits); read/write/readv
                                # are hooked: files, pipes, signals
    "test_xmlrpc",              # ~27 s; http.client + http.server, keep-alive
    "test_socket",              # ~26 s; the socket module itself
    "test_subprocess",          # ~23 s; fork/exec, fds, pipes, close_range
    "test_logging",             # ~21 s; SocketHandler, HTTPHandler, ...
    "test_selectors",           # ~15 s; select/poll/epoll over socketpairs
    "test_asyncio.test_subprocess",  # ~13 s; child watchers, pipes
    "test_poll",                # ~11 s (sleeps); poll() is hooked
    "test_ftplib",              # ~10 s; active and passive data connections
    "test_asyncio.test_ssl",    # ~9 s; asyncio TLS, non-blocking connects
    "test_poplib",              # ~8 s
    "test_eintr",               # ~7 s; socket, poll, epoll, read/write
                                # calls interrupted by signals
    "test_asyncio.test_events",  # ~5 s; create_connection, sock_connect, ...
    "test_asyncio.test_sslproto",
    "test_docxmlrpc",
    "test_urllib2_localnet",    # urllib over a local HTTP server, proxies
    "test_asyncore",
    "test_asyncio.test_sock_lowlevel",
    "test_select",
    "test_asynchat",
    "test_smtplib",
    "test_httpservers",
    "test_os",                  # os.sendfile to a TCP peer, fds, dup
    "test_httplib",
    "test_asyncio.test_streams",
    "test_asyncio.test_base_events",
    "test_urllib",
    "test_asyncio.test_server",
    "test_asyncio.test_selector_events",
    "test_asyncio.test_unix_events",
    "test_fcntl",               # fcntl() is hooked
    "test_epoll",
    "test_wsgiref",
    "test_telnetlib",
]
# Not here: test_socketserver (it requires the 'network' resource as a
# whole, which stays off); test_signal (~47 s of itimer sleeps: it would
# be the longest module, and its timing tests suffer under -j load);
# test_asyncio.test_sendfile (nearly every test binds its server to a
# find_unused_port() port: the race described at IGNORE; os.sendfile to
# TCP peers stays covered by test_socket and test_os); test_asyncio as a
# package (~3 min; its network modules are above).

# Test ids (regrtest --ignore globs) left out of every run, each with why.
IGNORE = [
    # Hangs without fusebox on this kind of machine: /dev/vsock exists
    # (a VM guest) but nothing answers on the host's CID, so the client's
    # connect() never returns and the module reaches --timeout.  Not TCP,
    # so nothing fusebox guards.
    ("*VSOCK*", "hangs without fusebox: AF_VSOCK connect never answered"),
    # Port races (one seen, in the typical run: CreateServerFunctionalTest.
    # test_dual_stack_client_v4, EADDRINUSE): these tests take a port from socket_helper.find_unused_port() (bind to port 0, read the
    # port, close) and bind to it again later, as a server or as a
    # client's source address; under -j8 another module's client takes
    # that ephemeral port in between, and the test fails with EADDRINUSE
    # or skips itself ("couldn't bind to port").  bind() is no call
    # fusebox wraps, and nothing else in these runs depends on it.
    # (testSockName, test_getsockaddrarg and test_events' create_server
    # tests retry on EADDRINUSE or expect it: kept.)
    ("*test_socket.CreateServerFunctionalTest.*", "find_unused_port race"),
    ("*test_socket.CreateServerTest.test_address", "find_unused_port race"),
    ("*test_socket.NetworkConnectionAttributesTest.testSourceAddress",
     "find_unused_port race"),
    ("*test_ftplib.*.test_source_address*", "find_unused_port race"),
    ("*test_smtplib.*.testSourceAddress", "find_unused_port race"),
    ("*test_httplib.SourceAddressTest.*", "find_unused_port race"),
    ("*test_asyncio.test_events.*.test_create_connection_local_addr*",
     "find_unused_port race"),
    ("*test_asyncio.test_unix_events.SelectorEventLoopUnixSockSendfileTests.*",
     "find_unused_port race"),
]

# Whatever these settings do must not change an outcome of these tests:
#   connect_timeout 10s   a connect to 127.0.0.1 ends in microseconds, and
#                         none of these tests connects to a black hole
#                         (that needs the 'network' resource)
#   response_timeout 30s  no test here waits anywhere near 30 s for a
#                         first reply byte
#   breaker on            address scope: it opens after 5 failed calls
#                         in a row to one 127.0.0.1:PORT and then
#                         rejects with ECONNREFUSED, what a closed port
#                         answers anyway.  Test servers listen on fresh
#                         ephemeral ports, and the calls that fail here
#                         (refused connects to a port no one listens
#                         on, peers that reset or close before replying)
#                         are spread over many ports: no breaker opened
#                         in the runs measured (the summary prints how
#                         many connects were rejected).  A test that
#                         made 5 such calls to one port and then
#                         expected a server there would differ, and
#                         rightly: it would be excluded by name here.
#   max_connections 100000 never reached
#   retries 0             nothing retried
#   segment_addresses     every test server listens on a new ephemeral
#                         port: 65536 addresses so that no destination
#                         runs out of table (the "table full" warning on
#                         stderr would be a legitimate difference)
POLICIES = {
    "passive": """\
; tests/cpython: guard every destination, change nothing
[global]
segment_addresses = 65536

[default]
breaker = dry-run
""",
    "typical": """\
; tests/cpython: what a service would set; nothing here may change an
; outcome of CPython's tests on 127.0.0.1
[global]
segment_addresses = 65536

[default]
connect_timeout = 10s
response_timeout = 30s
breaker = on
max_connections = 100000
retries = 0
""",
}
RUNS = ["baseline", "passive", "typical"]

# "name (module.Class.name) ... STATUS"; a subtest adds " (params)" or
# " [msg]" after the id, and its status is always on its line.  A test
# with a docstring has "name (id)" alone, then "First line ... STATUS".
START_RE = re.compile(r"^(\s*)(\w+) \(((?:test|unittest|__main__)\.[\w.]+)\)"
                      r"(.*?)(?: \.\.\. ?(.*))?$")
STATUS_RE = re.compile(r"^(ok|FAIL|ERROR|skipped\b.*|expected failure|"
                       r"unexpected success)\s*$")
MODULE_RE = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test[\w.]+) "
                       r"(passed|failed(?: \((?:env changed|uncaught "
                       r"exception|reference leak)\))?|skipped(?: \(resource "
                       r"denied\))?|crashed|interrupted|ran no tests|"
                       r"timed out)")


def category(status):
    """ok, FAIL, ERROR, skipped, expected failure, unexpected success."""
    return "skipped" if status.startswith("skipped") else status


def parse(text):
    """Returns ({test id: status}, {module: status}) from regrtest -v
    output.  A test's status follows ' ... ' on its line, or, when the
    test wrote something in between, comes on a line of its own later
    (after the lines of the tests of a script the test ran, as
    test_eintr does: hence a stack).  A failing subtest makes its test
    FAIL or ERROR.  The ids of a script's tests (__main__.Class.name)
    get the module's name in front."""
    tests, modules = {}, {}
    pending = []
    module = ""
    rank = {"ok": 0, "skipped": 0, "expected failure": 0,
            "unexpected success": 1, "FAIL": 2, "ERROR": 3}

    def put(tid, status):
        if tid.startswith("__main__."):
            tid = module + ":" + tid
        old = tests.get(tid)
        if old is None or rank[category(status)] > rank[category(old)]:
            tests[tid] = status

    def status_after_dots(line):
        """The status after one of the ' ... ' of a line, or None."""
        i = line.find(" ... ")
        while i >= 0:
            s = STATUS_RE.match(line[i + 5:].strip())
            if s:
                return s.group(1)
            i = line.find(" ... ", i + 1)
        return None

    doc = None      # (test id, is a subtest): its docstring line is next
    for line in text.splitlines():
        m = MODULE_RE.search(line)
        if m and not line.lstrip().startswith(("FAIL", "ERROR")):
            # with -j, a module's output comes after its progress line
            module = m.group(1)
            modules[module] = m.group(2)
            doc, pending = None, []
            continue
        if doc:
            tid, is_sub = doc
            doc = None
            if " ... " in line:
                s = status_after_dots(line)
                if s:
                    put(tid, s)
                elif not is_sub:
                    pending.append(tid)
                continue
        m = START_RE.match(line)
        if m:
            indent, _, tid, sub, rest = m.groups()
            is_sub = bool(indent or sub.strip())
            if rest is None:                # a docstring line follows
                doc = (tid, is_sub)
                continue
            s = STATUS_RE.match(rest)
            if s:
                put(tid, s.group(1))
            elif not is_sub:
                pending.append(tid)
            continue
        if pending:
            s = STATUS_RE.match(line.strip())
            if s:
                put(pending.pop(), s.group(1))
    return tests, modules


def segment_totals(fusebox, segment):
    """Sums of the counters of every address in the segment, or None."""
    try:
        out = subprocess.run([fusebox, "stats", "--json", "-s", segment],
                             capture_output=True, text=True, timeout=30)
        data = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    tot = {"addresses": 0, "elsewhere": []}
    for rule in data.get("rules", []):
        for a in rule.get("addresses", []):
            tot["addresses"] += 1
            # 0.0.0.0 and :: are this host too (test_imaplib connects
            # to the address its server is bound to)
            if not a.get("address", "").startswith(
                    ("127.", "[::1]:", "[::ffff:127.", "0.0.0.0:", "[::]:")):
                tot["elsewhere"].append(a.get("address"))
            for k, v in a.get("counters", {}).items():
                tot[k] = tot.get(k, 0) + (v or 0)
    return tot


def clean_env():
    """Ours, without anything that would steer the shim or Python."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FUSEBOX_", "PYTHON", "MAKE"))
           and k not in ("LD_PRELOAD", "MFLAGS")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def run_one(name, args, work, segment):
    """Runs the subset once; returns (tests, modules, seconds, log)."""
    cmd = [PYTHON, "-m", "test", "-v", "-j", str(args.jobs),
           "--timeout", str(args.timeout), "--tempdir",
           os.path.join(work, "tmp-" + name)]
    for pat, _ in IGNORE:
        cmd += ["--ignore", pat]
    cmd += args.modules
    env = clean_env()
    if name != "baseline":
        policy = os.path.join(work, name + ".ini")
        with open(policy, "w") as f:
            f.write(POLICIES[name])
        cmd = [args.fusebox, "run", "-p", policy, "--"] + cmd
        env["FUSEBOX_SEGMENT"] = segment
    log = os.path.join(work, name + ".log")
    t0 = time.monotonic()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, cwd=work,
                             start_new_session=True)
        try:
            p.wait(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            # the session is ours alone: regrtest and its workers
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            out.write("\ncpython.py: run killed after %d s\n"
                      % args.run_timeout)
    secs = time.monotonic() - t0
    with open(log, errors="replace") as f:
        tests, modules = parse(f.read())
    return tests, modules, secs, log


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default=os.path.join(here, "../../build"),
                    help="directory of fusebox and libfusebox.so")
    ap.add_argument("--jobs", type=int, default=8,
                    help="regrtest -j (default 8: most modules wait)")
    ap.add_argument("--timeout", type=int, default=80,
                    help="regrtest --timeout per module (s)")
    ap.add_argument("--run-timeout", type=int, default=100,
                    help="a whole run is killed after this (s)")
    ap.add_argument("--runs", default=",".join(RUNS),
                    help="comma-separated subset of " + ",".join(RUNS))
    ap.add_argument("--out", help="keep logs and policies here "
                    "(default: a temporary directory, removed when all "
                    "is well)")
    ap.add_argument("modules", nargs="*", help="test modules "
                    "(default: the built-in list)")
    args = ap.parse_args()
    args.modules = args.modules or MODULES
    if args.jobs < 1:
        ap.error("--jobs: 1 or more (regrtest runs each module in a "
                 "worker then)")
    args.fusebox = os.path.abspath(os.path.join(args.build, "fusebox"))
    runs = [r for r in args.runs.split(",") if r]
    if any(r not in RUNS for r in runs) or len(runs) < 2:
        ap.error("--runs: two or more of " + ",".join(RUNS))

    if not os.path.isfile(os.path.join(TESTDIR, "regrtest.py")):
        sys.exit("cpython: %s missing; apt-get install "
                 "libpython3.11-testsuite" % TESTDIR)
    if any(r != "baseline" for r in runs) and not (
            os.access(args.fusebox, os.X_OK) and
            os.path.isfile(os.path.join(args.build, "libfusebox.so"))):
        sys.exit("cpython: no %s or libfusebox.so; make all first"
                 % args.fusebox)

    if args.out:
        work = os.path.abspath(args.out)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    else:
        work = tempfile.mkdtemp(prefix="fusebox-cpython-")
    print("cpython: %d modules, %d test patterns left out, -j%d, runs %s; "
          "logs in %s" % (len(args.modules), len(IGNORE), args.jobs,
                          ",".join(runs), work), flush=True)

    results, bad = {}, []
    t_all = time.monotonic()
    for name in runs:
        segment = "fusebox-cpython-%d-%s" % (os.getpid(), name)
        try:
            tests, modules, secs, log = run_one(name, args, work, segment)
            tot = segment_totals(args.fusebox, segment) \
                if name != "baseline" else None
        finally:
            if name != "baseline":
                try:
                    os.unlink("/dev/shm/" + segment)
                except FileNotFoundError:
                    pass
        count = {}
        for s in tests.values():
            count[category(s)] = count.get(category(s), 0) + 1
        print("cpython: %-8s %5.1f s  %d tests: %s; %d/%d modules ran"
              % (name, secs, len(tests),
                 ", ".join("%s %d" % kv for kv in sorted(count.items())),
                 len(modules), len(args.modules)), flush=True)
        if tot is not None:
            print("cpython: %-8s segment: %d addresses, %d calls, %d "
                  "failures (%d refused, %d resets, %d timeouts), %d "
                  "rejected" % (
                      name, tot["addresses"], tot.get("calls", 0),
                      tot.get("failures", 0), tot.get("connect_refused", 0),
                      tot.get("resets", 0),
                      tot.get("connect_timeouts", 0) +
                      tot.get("response_timeouts", 0),
                      sum(tot.get(k, 0) for k in (
                          "rejected_breaker", "rejected_limit",
                          "rejected_rate", "rejected_budget"))), flush=True)
            if tot["elsewhere"]:
                bad.append("%s: connects beyond the loopback: %s"
                           % (name, " ".join(sorted(tot["elsewhere"]))))
            if not tot.get("calls"):
                bad.append("%s: the segment counted no call: was anything "
                           "guarded?" % name)
        if len(modules) != len(args.modules):
            missing = sorted(set(args.modules) - set(modules))
            bad.append("%s: no result for module(s) %s (see %s)"
                       % (name, " ".join(missing), log))
        results[name] = (tests, modules)

    base = runs[0]
    bt, bm = results[base]
    diffs = []
    for name in runs[1:]:
        t, m = results[name]
        for mod in sorted(set(bm) | set(m)):
            a, b = bm.get(mod, "-"), m.get(mod, "-")
            if a != b:
                diffs.append("module %s: %s %s, %s %s"
                             % (mod, base, a, name, b))
        for tid in sorted(set(bt) | set(t)):
            a, b = bt.get(tid, "not run"), t.get(tid, "not run")
            if category(a) != category(b):
                diffs.append("%s: %s %s, %s %s" % (tid, base, a, name, b))

    print("cpython: %.1f s in all" % (time.monotonic() - t_all))
    for line in bad + diffs:
        print("cpython: DIFF " + line if line in diffs
              else "cpython: " + line)
    if bad or diffs:
        print("cpython: FAIL: %d difference(s); logs in %s"
              % (len(diffs), work))
        return 1
    print("cpython: PASS: %d tests, same outcome in %s"
          % (len(bt), ", ".join(runs)))
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
