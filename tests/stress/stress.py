#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make stress: many processes of real clients (python3 threads, curl)
# under libfusebox.so against fault-injecting fixtures on 127.0.0.1, all
# sharing one segment, with kill -9 of guarded clients mid-connect and
# mid-wait; then checks of what the segment, the clients and the
# fixtures say.  Bounded: the load runs STRESS_SECONDS - 6 s (5 s at
# least), the checks take a second or two (up to the 5 s queue_timeout
# more when a line is wedged); fixtures stop by themselves; everything
# this script started is killed at the end, by pid, and its segment is
# removed.
#
# Rules, one policy, one segment (FUSEBOX_SEGMENT=fusebox-stress-PID):
#   limit     max_connections 20 + max_pending 10, echo fixture; its
#             clients (PROCS x THREADS) are killed with SIGKILL at random
#             while they hold connections or wait in line, and replaced
#   issue     the shape of the wedge bug: 7 x 32 threads x 40 connects
#             against max_connections 200 + max_pending 100, in rounds;
#             never killed, so its counts must be exact
#   flappy    a breaker (3 failures, open 300-500 ms) on a fixture that
#             listens 400 ms and refuses 400 ms, so it churns
#             open -> half_open -> closed
#   rate      rate = 200/s over an echo port (python) and an HTTP port
#             (curl loops)
#   retry     retries = 3 under a retry budget, on a refusing port
#   failover  svc.stress.test is 127.0.0.2 (refuses) then 127.0.0.3 (a
#             fixture), in a mount namespace with its own /etc/hosts;
#             skipped when unshare -m is not allowed
import argparse
import json
import math
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "client.py")
CURL_LOOP = os.path.join(HERE, "curl_loop.sh")
SVC = "svc.stress.test"

# The policy.  Numbers the checks use are read back from here.
LIMIT = {"max_connections": 20, "max_pending": 10, "queue_timeout_s": 1}
ISSUE = {"max_connections": 200, "max_pending": 100, "queue_timeout_s": 5,
         "procs": 7, "threads": 32, "iterations": 40}
FLAP_MS = 400
RATE = {"per_s": 200, "burst": 200}
RETRY = {"retries": 3, "share": 0.20, "min_per_s": 5}
FAILOVER = {"retries": 2, "share": 0.20, "min_per_s": 10}
RETRY_THREADS = FAILOVER_THREADS = 4  # one process each

POLICY = """\
; make stress (tests/stress/stress.py): every shared structure at once
[limit]
match = 127.0.0.1:{limit}
max_connections = {lim[max_connections]}
max_pending = {lim[max_pending]}
queue_timeout = {lim[queue_timeout_s]}s

[issue]
match = 127.0.0.1:{issue}
max_connections = {iss[max_connections]}
max_pending = {iss[max_pending]}
queue_timeout = {iss[queue_timeout_s]}s

[flappy]
match = 127.0.0.1:{flappy}
breaker = on
breaker_failures = 3
breaker_open = 300ms
breaker_open_max = 500ms

[rate]
match = 127.0.0.1:{rate_echo} 127.0.0.1:{rate_http}
rate = {rate[per_s]}/s
rate_burst = {rate[burst]}

[retry]
match = 127.0.0.1:{retry}
retries = {rty[retries]}
retry_backoff = 1ms
retry_backoff_max = 4ms
retry_budget = {rty_pct}%
retry_budget_min = {rty[min_per_s]}/s
"""

POLICY_FAILOVER = """
[failover]
match = {svc}:{failover}
retries = {fo[retries]}
retry_backoff = 1ms
retry_budget = {fo_pct}%
retry_budget_min = {fo[min_per_s]}/s
breaker = on
breaker_failures = 2
breaker_open = 1s
"""

COUNTER_NAMES = ("calls", "successes", "failures", "connect_refused",
                 "retries", "rejected_breaker", "rejected_limit",
                 "rejected_rate", "rejected_budget", "bytes_sent",
                 "bytes_received")


def log(msg):
    print("stress: " + msg, flush=True)


class Proc:
    """A process this script started, with what it leaves behind."""

    def __init__(self, popen, group, tally=None, state=None, err=None):
        self.p = popen
        self.group = group
        self.tally = tally
        self.state = state
        self.err = err
        self.started = time.monotonic()
        self.killed = False


class Stress:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.lib = os.path.join(self.build, "libfusebox.so")
        self.fusebox = os.path.join(self.build, "fusebox")
        self.fixture_bin = os.path.join(self.build, "fixture")
        self.python = sys.executable or "python3"
        self.segment = "fusebox-stress-%d" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="fusebox-stress-")
        self.procs = []     # every Proc: killed at the end if still there
        self.fixtures = {}  # name -> (Proc, port, report path)
        self.checks = []    # (name, ok or None for skip, detail)
        self.kills = []     # (holding, waiting, pending at the kill)
        self.samples = {"limit": [], "issue": []}  # (active, pending)
        self.breaker_seen = set()
        self.rounds = 0
        self.spawned = 0
        self.failover = False
        self.final = None  # (stats before the lone clients, reports)
        self.t0 = time.monotonic()

    # --- processes ---------------------------------------------------
    def env(self, log_level="warn"):
        """The environment of a guarded child: ours without LD_PRELOAD
        and FUSEBOX_*, then the shim, the policy and our segment."""
        e = {k: v for k, v in os.environ.items()
             if k != "LD_PRELOAD" and not k.startswith("FUSEBOX_")}
        pre = os.environ.get("FUSEBOX_TEST_PRELOAD")  # ASan runtime first
        e["LD_PRELOAD"] = (pre + ":" if pre else "") + self.lib
        e["FUSEBOX_POLICY"] = self.policy
        e["FUSEBOX_SEGMENT"] = self.segment
        e["FUSEBOX_LOG"] = log_level
        return e

    def plain_env(self):
        return {k: v for k, v in os.environ.items()
                if k != "LD_PRELOAD" and not k.startswith("FUSEBOX_")}

    def spawn(self, group, argv, tally=None, state=None, env=None,
              log_level="warn"):
        self.spawned += 1
        err = os.path.join(self.tmp, "%s-%d.err" % (group, self.spawned))
        with open(err, "wb") as ef:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=ef,
                                 env=env or self.env(log_level))
        pr = Proc(p, group, tally, state, err)
        self.procs.append(pr)
        return pr

    def client(self, group, port, seconds, threads, iterations, extra=(),
               state=False, wrap=(), log_level="warn"):
        n = self.spawned + 1
        tally = os.path.join(self.tmp, "%s-%d.json" % (group, n))
        st = os.path.join(self.tmp, "%s-%d.state" % (group, n)) \
            if state else None
        argv = list(wrap) + [self.python, CLIENT, "--port", str(port),
                             "--threads", str(threads), "--iterations",
                             str(iterations), "--seconds", "%.2f" % seconds,
                             "--tally", tally] + list(extra)
        if st:
            argv += ["--state", st]
        return self.spawn(group, argv, tally, st, log_level=log_level)

    def fixture(self, name, mode, *extra):
        """Starts build/fixture MODE with a lifetime and a report; waits
        for its port."""
        report = os.path.join(self.tmp, "fixture-%s.report" % name)
        life = "%d" % (self.args.seconds + 60)
        argv = [self.fixture_bin, mode, "--lifetime", life, "--report",
                report] + list(extra)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             env=self.plain_env())
        pr = Proc(p, "fixture")
        self.procs.append(pr)
        r, _, _ = select.select([p.stdout], [], [], 5)
        line = p.stdout.readline() if r else b""
        if not line.strip().isdigit():
            raise RuntimeError("fixture %s %s did not start: %s" %
                               (mode, " ".join(extra),
                                p.stderr.read1(4096) if p.poll() is not None
                                else "no port"))
        port = int(line)
        self.fixtures[name] = (pr, port, report)
        return port

    def kill_all(self):
        """Kills whatever this script started and still runs, by pid."""
        for pr in self.procs:
            if pr.p.poll() is None:
                try:
                    pr.p.kill()
                except OSError:
                    pass
        for pr in self.procs:
            try:
                pr.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def stats(self):
        """fusebox stats --json of our segment, or None."""
        try:
            out = subprocess.run([self.fusebox, "stats", "--json", "-s",
                                  self.segment], capture_output=True,
                                 timeout=10, env=self.plain_env())
            if out.returncode != 0:
                return None
            return json.loads(out.stdout)
        except (subprocess.TimeoutExpired, ValueError):
            return None

    # --- setup -------------------------------------------------------
    def namespaces_work(self):
        """Whether a mount namespace with our own /etc/hosts works."""
        self.hosts = os.path.join(self.tmp, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n127.0.0.2 %s\n127.0.0.3 %s\n" %
                    (SVC, SVC))
        try:
            r = subprocess.run(["unshare", "-m", "sh", "-c",
                                'mount --bind "$0" /etc/hosts && '
                                'getent ahostsv4 "$1"', self.hosts, SVC],
                               capture_output=True, timeout=10,
                               env=self.plain_env())
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0 and b"127.0.0.3" in r.stdout

    def setup(self):
        ports = {
            "limit": self.fixture("limit", "echo"),
            "issue": self.fixture("issue", "echo"),
            "flappy": self.fixture("flappy", "echo", "--flap",
                                   str(FLAP_MS)),
            "rate_echo": self.fixture("rate_echo", "echo"),
            "rate_http": self.fixture("rate_http", "http"),
            "retry": self.fixture("retry", "refuse"),
        }
        text = POLICY.format(lim=LIMIT, iss=ISSUE, rate=RATE, rty=RETRY,
                             rty_pct=int(RETRY["share"] * 100), **ports)
        self.failover = not self.args.no_failover and self.namespaces_work()
        if self.failover:
            ports["failover"] = self.fixture("failover", "echo", "--host",
                                             "127.0.0.3")
            text += POLICY_FAILOVER.format(
                svc=SVC, fo=FAILOVER, fo_pct=int(FAILOVER["share"] * 100),
                **ports)
        self.ports = ports
        self.policy = os.path.join(self.tmp, "stress.ini")
        with open(self.policy, "w") as f:
            f.write(text)
        r = subprocess.run([self.fusebox, "check", self.policy],
                           capture_output=True, env=self.plain_env())
        if r.returncode != 0:
            raise RuntimeError("fusebox check: %s" %
                               (r.stdout + r.stderr).decode())

    # --- the load ----------------------------------------------------
    def victim(self, seconds):
        """A client of the limit rule that may be killed."""
        return self.client("limit", self.ports["limit"], seconds,
                           self.args.threads, 1000000,
                           ["--hold-ms", "60", "--backoff-ms", "50",
                            "--nonblock-every", "4"], state=True)

    def issue_round(self, seconds):
        self.rounds += 1
        return [self.client("issue", self.ports["issue"], seconds,
                            ISSUE["threads"], ISSUE["iterations"],
                            ["--backoff-ms", "0"])
                for _ in range(ISSUE["procs"])]

    def kill_one(self, remaining):
        """SIGKILLs a random live victim; notes what it held and how many
        of its threads were in connect (waiting in line); replaces it."""
        live = [pr for pr in self.procs if pr.group == "limit" and
                not pr.killed and pr.p.poll() is None and
                time.monotonic() - pr.started > 0.3]
        if not live:
            return
        pr = random.choice(live)
        s = self.stats()
        pending = rule_of(s, "limit").get("pending", 0) if s else 0
        try:
            with open(pr.state, "rb") as f:
                st = f.read()
        except OSError:
            st = b""
        try:
            os.kill(pr.p.pid, signal.SIGKILL)
        except OSError:
            return
        pr.killed = True
        pr.p.wait()
        self.kills.append((st.count(b"H"), st.count(b"W"), pending))
        if remaining > 1.5:
            self.victim(remaining)

    def sample(self):
        s = self.stats()
        if not s:
            return
        for name in ("limit", "issue"):
            r = rule_of(s, name)
            if r:
                self.samples[name].append((r.get("connections_active", 0),
                                           r.get("pending", 0)))
        for a in addresses_of(s, "flappy"):
            self.breaker_seen.add(a.get("breaker"))

    def load(self):
        load_s = load_seconds(self.args.seconds)
        self.load_s = load_s
        start = time.monotonic()
        end = start + load_s
        self.load_start = start
        for _ in range(self.args.procs):
            self.victim(load_s)
        issue = self.issue_round(load_s)
        next_round = start + 2.0
        for _ in range(2):
            self.client("flappy", self.ports["flappy"], load_s, 8, 1000000,
                        ["--pause-ms", "2", "--backoff-ms", "10"],
                        log_level="info")
        self.client("rate", self.ports["rate_echo"], load_s, 8, 1000000,
                    ["--pause-ms", "20", "--backoff-ms", "20",
                     "--nonblock-every", "2"])
        url = "http://127.0.0.1:%d/" % self.ports["rate_http"]
        for i in range(2):
            tally = os.path.join(self.tmp, "curl-%d.json" % i)
            self.spawn("rate-curl", ["sh", CURL_LOOP, url, "100000",
                                     str(int(load_s)), tally], tally=tally)
        self.client("retry", self.ports["retry"], load_s, RETRY_THREADS,
                    1000000,
                    ["--connect-only", "--pause-ms", "5", "--backoff-ms",
                     "5"])
        if self.failover:
            wrap = ["unshare", "-m", "sh", "-c",
                    'mount --bind "$0" /etc/hosts && exec "$@"', self.hosts]
            self.client("failover", self.ports["failover"], load_s,
                        FAILOVER_THREADS, 1000000, ["--host", SVC, "--pause-ms", "10"],
                        wrap=wrap)
        next_kill = start + 0.5
        next_sample = start
        while True:
            now = time.monotonic()
            if now >= end:
                break
            remaining = end - now
            if now >= next_kill:
                self.kill_one(remaining)
                next_kill = now + random.uniform(0.15, 0.5)
            if (all(pr.p.poll() is not None for pr in issue) and
                    now >= next_round and remaining > 3.0 and
                    self.rounds < 100):
                issue = self.issue_round(remaining)
                next_round = now + 2.0
            if now >= next_sample:
                self.sample()
                next_sample = now + 0.5
            time.sleep(0.05)
        # everything ends by its own deadline: wait for it, bounded
        drain_end = time.monotonic() + ISSUE["queue_timeout_s"] + 12
        late = []
        for pr in self.procs:
            if pr.group == "fixture" or pr.killed:
                continue
            try:
                pr.p.wait(timeout=max(0.1, drain_end - time.monotonic()))
            except subprocess.TimeoutExpired:
                late.append(pr)
                print(diagnose(pr.p.pid, pr.group), flush=True)
                pr.p.kill()
                pr.p.wait()
        self.load_end = time.monotonic()
        log("load done in %.1f s: %d limit clients killed, %d issue "
            "rounds; checking" % (self.load_end - self.load_start,
                                  len(self.kills), self.rounds))
        self.check("clients ended by their deadline", not late,
                   "%d late (killed): %s" % (len(late), ", ".join(
                       "%s pid %d" % (p.group, p.p.pid) for p in late))
                   if late else "%d processes" % len(
                       [p for p in self.procs if p.group != "fixture"]))

    # --- checks ------------------------------------------------------
    def check(self, name, ok, detail):
        self.checks.append((name, ok, detail))
        word = "SKIP" if ok is None else "PASS" if ok else "FAIL"
        print("%s  %s: %s" % (word, name, detail), flush=True)

    def tallies(self, group):
        """The summed tallies of group's processes that ended normally,
        and how many processes left none."""
        t = {"attempted": 0, "connected": 0, "refused": 0, "errnos": {},
             "echo_errors": 0, "other": 0, "bytes_sent": 0,
             "bytes_received": 0, "procs": 0, "missing": 0}
        for pr in self.procs:
            if pr.group != group:
                continue
            try:
                with open(pr.tally) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                t["missing"] += 1
                continue
            t["procs"] += 1
            for k in ("attempted", "connected", "echo_errors", "other",
                      "bytes_sent", "bytes_received"):
                t[k] += d.get(k, 0)
            for k, v in d.get("errnos", {}).items():
                t["errnos"][k] = t["errnos"].get(k, 0) + v
        t["refused"] = t["errnos"].get("ECONNREFUSED", 0)
        return t

    def reports(self):
        out = {}
        for name, (pr, port, path) in self.fixtures.items():
            d = {}
            try:
                with open(path) as f:
                    for line in f:
                        k, v = line.split()
                        d[k] = int(v)
            except (OSError, ValueError):
                pass
            out[name] = d
        return out

    def lone(self, rule):
        """A one-shot client under the shim, as after an outage: its
        errno and how long its connect took."""
        return self.client("lone-" + rule, self.ports[rule],
                           ISSUE["queue_timeout_s"] + 5, 1, 1,
                           ["--connect-only", "--backoff-ms", "0"])

    def exact(self, rule, t, c, extra=0, breaker=True):
        """calls + rejections == connects asked for + retries made.  With
        failover a connect the breaker refuses may still be made at
        another address: there (breaker=False) every connect succeeded,
        and calls == connects + retries."""
        rej = c["rejected_limit"] + c["rejected_rate"]
        if breaker:
            rej += c["rejected_breaker"]
        lhs = c["calls"] + rej
        rhs = t["attempted"] + extra + c["retries"]
        self.check("%s: calls + rejections == connects + retries" % rule,
                   lhs == rhs and t["missing"] == 0,
                   "%d calls + %d limit + %d breaker + %d rate = %d; "
                   "clients made %d connects (+%d retries) = %d%s" %
                   (c["calls"], c["rejected_limit"],
                    c["rejected_breaker"] if breaker else 0,
                    c["rejected_rate"], lhs, t["attempted"] + extra,
                    c["retries"], rhs,
                    "; %d tallies missing" % t["missing"]
                    if t["missing"] else ""))

    def bytes_exact(self, what, c, rep):
        ok = (rep.get("bytes_received") == c["bytes_sent"] and
              rep.get("bytes_sent") == c["bytes_received"])
        self.check("%s: segment bytes == fixture bytes" % what, ok,
                   "sent %d / fixture got %s; received %d / fixture sent %s"
                   % (c["bytes_sent"], rep.get("bytes_received"),
                      c["bytes_received"], rep.get("bytes_sent")))

    def budget_bound(self, rule, c, first, share, min_per_s):
        """retries <= 2 share F + blocks (10 min + 1): see below."""
        # SPEC: the retries of the last 10 s stay under share x the first
        # attempts of the last 10 s + retry_budget_min x 10 s.  The shim
        # grants a retry at second s only while the retries counted for
        # seconds s-9..s are fewer than that.  Cut the run into aligned
        # 10 s blocks: the grants of a block all lie in the window of its
        # last grant, so they number at most 1 + share x (first attempts
        # of this block and the one before) + 10 x min.  Summed over the
        # blocks the run touches (span / 10 + 2 at most), each first
        # attempt counts twice at most.  No count is lost: each bucket
        # is one word, second and count (segment/shared.c).
        span = self.load_end - self.load_start
        blocks = math.floor(span / 10) + 2
        bound = 2 * share * first + blocks * (10 * min_per_s + 1)
        self.check("%s: retries within the retry budget" % rule,
                   c["retries"] <= bound,
                   "%d retries <= 2 x %.0f%% x %d first attempts + %d "
                   "blocks x (10 x %d/s + 1) = %.0f" %
                   (c["retries"], share * 100, first, blocks, min_per_s,
                    bound))

    def verify(self):
        # 1. No wedge.  SPEC 3: a process killed with SIGKILL holds nothing
        # for long (its connections stop counting within 1 s, or at the
        # next refused connect).  The stats reader leaves out what dead
        # processes hold, so connections_active may read 0 while the
        # shim's own count is still up: the lone client that must get its
        # connect through is what tells.  pending is the raw count of
        # connects in line; with every client gone it must be 0.
        # Settle first: up to 2.5 s for both to read 0.
        settle_end = time.monotonic() + 2.5
        while True:
            s = self.stats()
            act = [(rule_of(s, r).get("connections_active", -1),
                    rule_of(s, r).get("pending", -1))
                   for r in ("limit", "issue")] if s else None
            if act and all(a == 0 and p == 0 for a, p in act):
                break
            if time.monotonic() >= settle_end:
                break
            time.sleep(0.1)
        settled = time.monotonic()
        before = s  # counters before the lone clients
        # lone clients, both at once: each must connect at once
        lones = {r: self.lone(r) for r in ("limit", "issue")}
        for pr in lones.values():
            try:
                pr.p.wait(timeout=ISSUE["queue_timeout_s"] + 10)
            except subprocess.TimeoutExpired:
                pr.p.kill()
                pr.p.wait()
        for r, pr in lones.items():
            d = {}
            try:
                with open(pr.tally) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                pass
            errs = d.get("errnos", {})
            ok = d.get("connected") == 1
            self.check("no wedge: a lone client connects on %s" % r, ok,
                       "errno %s in %.3f s (max_connections %d, line %d)" %
                       ("0" if ok else (",".join(errs) or "none: no tally"),
                        d.get("max_connect_s", -1),
                        (LIMIT if r == "limit" else ISSUE)["max_connections"],
                        (LIMIT if r == "limit" else ISSUE)["max_pending"]))
        after = self.stats()
        for r in ("limit", "issue"):
            a0 = rule_of(before, r)
            a1 = rule_of(after, r)
            ok = (a1.get("connections_active") == 0 and
                  a1.get("pending") == 0 and
                  a0.get("connections_active") == 0 and
                  a0.get("pending") == 0)
            self.check("%s: connections_active and pending back to 0" % r,
                       ok, "active %s pending %s %.1f s after the load; "
                       "after the lone client: active %s pending %s" %
                       (a0.get("connections_active"), a0.get("pending"),
                        settled - self.load_end,
                        a1.get("connections_active"), a1.get("pending")))
        # the fixtures' reports: stop them first
        for name, (pr, port, path) in self.fixtures.items():
            if pr.p.poll() is None:
                pr.p.send_signal(signal.SIGTERM)
        for name, (pr, port, path) in self.fixtures.items():
            try:
                pr.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.p.kill()
                pr.p.wait()
        reps = self.reports()

        # 2. max_connections never exceeded, as the fixture saw it.  The
        # fixture counts a connection from accept until the client's FIN
        # or reset, and on a new peak recounts with poll(POLLRDHUP) what
        # the kernel says, so the order of its loop's events makes no
        # peak.  The clients close gracefully (shutdown, the server's FIN,
        # then close), so a slot is given back only after the fixture saw
        # the end; the kernel closes a killed client's sockets before its
        # process is gone.  A higher peak means connects admitted beyond
        # the limit, or a dead process's slots given back while its
        # sockets were still open.
        for r, lim in (("limit", LIMIT), ("issue", ISSUE)):
            peak = reps.get(r, {}).get("peak", -1)
            self.check("%s: fixture peak <= max_connections" % r,
                       0 <= peak <= lim["max_connections"],
                       "peak %d open at once, max_connections %d; "
                       "segment samples: most active %d, most pending %d" %
                       (peak, lim["max_connections"],
                        max([a for a, p in self.samples[r]] or [0]),
                        max([p for a, p in self.samples[r]] or [0])))

        # 3. Exact counts on rules whose clients are never killed (their
        # tallies all exist), from the counters read before the lone
        # clients.  What they rely on (SPEC 2, "what a call is"): a
        # connect fusebox refuses (breaker, limit, rate) counts one
        # rejected_* and is no call; every connect that reaches the
        # kernel is one call (a failed connect is a whole call; a
        # connection and its first exchange are one call, and these
        # clients exchange once); each retry granted counts one `retries`
        # and is admitted again (one more call or rejection); a retry the
        # budget refuses counts one rejected_budget and nothing else.
        # Hence calls + rejected_{limit,breaker,rate} == connects the
        # program asked for + retries.  Bytes reach the segment when the
        # socket is closed (or at exit() for sockets left open): exact
        # where no process is killed; the clients read every echoed byte
        # before they close, so the fixture has read what they sent.
        c = counters(before, "issue")
        t = self.tallies("issue")
        self.exact("issue", t, c)
        self.check("issue: no connect refused (%d x %d threads want at "
                   "most %d; %d slots + %d in line)" %
                   (ISSUE["procs"], ISSUE["threads"],
                    ISSUE["procs"] * ISSUE["threads"],
                    ISSUE["max_connections"], ISSUE["max_pending"]),
                   c["rejected_limit"] == 0 and t["refused"] == 0,
                   "%d of %d connects refused (rejected_limit %d) in %d "
                   "rounds" % (t["refused"], t["attempted"],
                               c["rejected_limit"], self.rounds))
        self.bytes_exact("issue", c, reps.get("issue", {}))

        # flappy: what the clients saw refused is what the fixture refused
        # (a failed connect, a call) plus what the breaker refused; its
        # transitions come from the clients' FUSEBOX_LOG=info lines
        c = counters(before, "flappy")
        t = self.tallies("flappy")
        self.exact("flappy", t, c)
        self.check("flappy: refused == connect_refused + rejected_breaker",
                   t["refused"] == c["connect_refused"] +
                   c["rejected_breaker"],
                   "clients saw %d ECONNREFUSED; segment %d refused by the "
                   "fixture + %d by the breaker" %
                   (t["refused"], c["connect_refused"],
                    c["rejected_breaker"]))
        moves = self.breaker_moves()
        need = ("closed->open", "open->half_open", "half_open->closed")
        self.check("flappy: breaker churned open -> half_open -> closed",
                   all(moves.get(k, 0) > 0 for k in need),
                   ", ".join("%s %d" % (k, moves.get(k, 0))
                             for k in need + ("half_open->open",)) +
                   "; states sampled: %s" % " ".join(
                       sorted(x for x in self.breaker_seen if x)))

        # rate: each curl run makes one connect (an IPv4 literal, no
        # --retry); a token bucket admits at most burst + rate x t in t
        c = counters(before, "rate")
        t = self.tallies("rate")
        tc = self.tallies("rate-curl")
        self.exact("rate", t, c, tc["attempted"])
        span = self.load_end - self.load_start
        bound = RATE["burst"] + RATE["per_s"] * span + 1
        admitted = c["calls"]
        self.check("rate: admitted <= burst + rate x time, and limited",
                   admitted <= bound and c["rejected_rate"] > 0,
                   "%d admitted <= %d + %d/s x %.1f s = %.0f; %d rejected "
                   "(curl: %d runs, %d refused, %d other)" %
                   (admitted, RATE["burst"], RATE["per_s"], span, bound,
                    c["rejected_rate"], tc["attempted"], tc["refused"],
                    tc["other"]))
        self.bytes_exact("rate (python, echo port)",
                         counters(before, "rate", self.ports["rate_echo"]),
                         reps.get("rate_echo", {}))
        self.bytes_exact("rate (curl, http port)",
                         counters(before, "rate", self.ports["rate_http"]),
                         reps.get("rate_http", {}))

        c = counters(before, "retry")
        t = self.tallies("retry")
        self.exact("retry", t, c)
        a, b, r, n = t["attempted"], c["rejected_budget"], c["retries"], \
            RETRY["retries"]
        # each connect got k <= n retries and, when k < n, asked once
        # more and was refused by the budget (b of them): so
        # n (a - b) <= r <= n a - b
        self.check("retry: retries and budget refusals add up",
                   n * (a - b) <= r <= n * a - b and
                   t["refused"] == a and c["connect_refused"] == c["calls"],
                   "%d connects, all refused: %d; %d retries, %d refused by "
                   "the budget: %d <= %d <= %d" %
                   (a, t["refused"], r, b, n * (a - b), r, n * a - b))
        # 4. the retry budget held
        self.budget_bound("retry", c, a, RETRY["share"], RETRY["min_per_s"])

        # failover: a connect 127.0.0.2's breaker refuses counts one
        # rejected_breaker there and, when it fails over, one call at
        # 127.0.0.3; so the identity leaves breaker rejections out, and
        # holds (calls == connects + retries) when every connect ended
        # well, which is checked too
        if self.failover:
            c = counters(before, "failover")
            t = self.tallies("failover")
            self.exact("failover", t, c, breaker=False)
            good = counters(before, "failover", self.ports["failover"],
                            "127.0.0.3")
            self.check("failover: every connect ended on 127.0.0.3",
                       t["connected"] == t["attempted"] > 0 and
                       good["successes"] == t["attempted"],
                       "%d connects, %d connected, %d successes on "
                       "127.0.0.3; %d retries, %d breaker rejections on "
                       "127.0.0.2" % (t["attempted"], t["connected"],
                                      good["successes"], c["retries"],
                                      c["rejected_breaker"]))
            self.bytes_exact("failover", good, reps.get("failover", {}))
            self.budget_bound("failover", c, t["attempted"],
                              FAILOVER["share"], FAILOVER["min_per_s"])
        else:
            self.check("failover", None, "unshare -m is not allowed here"
                       if not self.args.no_failover else "--no-failover")

        # the kills did what they are for: the state file says what each
        # killed process's threads were doing (H: holding a connection,
        # W: in connect, which on this rule mostly means in line)
        held = sum(1 for h, w, p in self.kills if h)
        waited = sum(1 for h, w, p in self.kills if w)
        self.check("kill -9 hit holders and waiters", held > 0 and
                   waited > 0, "%d kills: %d while holding (%d connections),"
                   " %d while in connect (%d threads; segment pending > 0 "
                   "at %d)" % (len(self.kills), held,
                               sum(h for h, w, p in self.kills), waited,
                               sum(w for h, w, p in self.kills),
                               sum(1 for h, w, p in self.kills if p > 0)))
        self.final = (before, reps)

    def breaker_moves(self):
        """Breaker transitions the flappy clients logged (FUSEBOX_LOG=info:
        "breaker RULE ADDR FROM→TO: why")."""
        moves = {}
        pat = re.compile(r"breaker flappy \S+ (\w+)\u2192(\w+)")
        for pr in self.procs:
            if pr.group != "flappy":
                continue
            try:
                with open(pr.err, encoding="utf-8", errors="replace") as f:
                    for m in pat.finditer(f.read()):
                        k = m.group(1) + "->" + m.group(2)
                        moves[k] = moves.get(k, 0) + 1
            except OSError:
                pass
        return moves

    def summary(self, s, reps):
        print()
        print("%-9s %8s %8s %8s %8s %7s %7s %7s %7s %7s %5s" %
              ("rule", "connects", "ok", "refused", "calls", "rej_lim",
               "rej_brk", "rej_rat", "rej_bud", "retries", "peak"))
        for r, groups in (("limit", ["limit"]), ("issue", ["issue"]),
                          ("flappy", ["flappy"]),
                          ("rate", ["rate", "rate-curl"]),
                          ("retry", ["retry"]), ("failover", ["failover"])):
            if r == "failover" and not self.failover:
                continue
            c = counters(s, r)
            ts = [self.tallies(g) for g in groups]
            fx = {"rate": "rate_echo"}.get(r, r)
            print("%-9s %8d %8d %8d %8d %7d %7d %7d %7d %7d %5s" %
                  (r, sum(t["attempted"] for t in ts),
                   sum(t["connected"] for t in ts),
                   sum(t["refused"] for t in ts), c["calls"],
                   c["rejected_limit"], c["rejected_breaker"],
                   c["rejected_rate"], c["rejected_budget"], c["retries"],
                   reps.get(fx, {}).get("peak", "-")))
        print("(limit: tallies of the %d clients that were not killed; "
              "%d killed, %d started)" %
              (self.tallies("limit")["procs"], len(self.kills),
               len([p for p in self.procs if p.group == "limit"])))

    def stderr_digest(self):
        """Lines the guarded clients wrote on stderr, but the breaker
        transitions asked for: warnings of the shim, Python errors."""
        seen = {}
        for pr in self.procs:
            if not pr.err or pr.group == "fixture":
                continue
            try:
                with open(pr.err, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if re.search(r"breaker flappy|failover ", line):
                            continue
                        key = re.sub(r"\[\d+\]|\d+", "N", line.strip())
                        seen.setdefault(key, [0, line.strip()])[0] += 1
            except OSError:
                pass
        if seen:
            print("\nclient stderr (distinct lines, by count):")
            for key, (n, line) in sorted(seen.items(),
                                         key=lambda kv: -kv[1][0])[:12]:
                print("  %6d  %s" % (n, line[:150]))

    def shm_leftovers(self, before):
        """Removes our segment; fails when it was not there, or when a
        segment our clients could have made instead is new: one named
        like ours, or the policy's default fusebox-UID (a shim that
        ignored FUSEBOX_SEGMENT).  Other new entries belong to other
        programs (make test runs meanwhile) and are only listed."""
        path = "/dev/shm/" + self.segment
        try:
            os.unlink(path)
            removed = True
        except FileNotFoundError:
            removed = False
        try:
            new = set(os.listdir("/dev/shm")) - before
        except OSError:
            new = set()
        ours = sorted(n for n in new if n.startswith(self.segment) or
                      n == "fusebox-%d" % os.getuid())
        others = sorted(new - set(ours))
        self.check("no /dev/shm leftovers", removed and not ours,
                   "removed %s%s; left: %s%s" %
                   (path, "" if removed else " (it was not there)",
                    " ".join(ours) or "none",
                    "; not ours: " + " ".join(others) if others else ""))

    def run(self):
        try:
            shm_before = set(os.listdir("/dev/shm"))
        except OSError:
            shm_before = set()
        status = 1
        try:
            self.setup()
            log("segment %s, policy %s, load %.0f s, %d x %d limit "
                "clients, failover %s" %
                (self.segment, self.policy, load_seconds(self.args.seconds),
                 self.args.procs, self.args.threads,
                 "on" if self.failover else "skipped"))
            self.load()
            self.verify()
        except Exception as e:  # report, clean up, fail
            self.check("harness", False, "%s: %s" % (type(e).__name__, e))
        finally:
            self.kill_all()
            self.shm_leftovers(shm_before)
            try:
                self.stderr_digest()
                if self.final:
                    self.summary(*self.final)
            finally:
                if self.args.keep:
                    log("kept %s" % self.tmp)
                else:
                    shutil.rmtree(self.tmp, ignore_errors=True)
        fails = [n for n, ok, d in self.checks if ok is False]
        wall = time.monotonic() - self.t0
        print()
        if fails:
            print("stress: FAIL: %d of %d checks failed in %.1f s: %s" %
                  (len(fails), len(self.checks), wall, "; ".join(fails)))
        else:
            print("stress: PASS: %d checks in %.1f s" %
                  (len([c for c in self.checks if c[1]]), wall))
            status = 0
        return status


def diagnose(pid, group):
    """Where the threads of a process that did not end are: per thread
    its state, kernel wait channel and system call (/proc), then, when
    gdb is there, the top of each thread's stack."""
    out = ["stress: %s pid %d did not end by its deadline; its threads:" %
           (group, pid)]
    try:
        tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
    except OSError:
        tids = []
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        info = []
        for name in ("stat", "wchan", "syscall"):
            try:
                with open(base + name) as f:
                    v = f.read().strip()
            except OSError:
                v = "?"
            if name == "stat":
                v = v[v.rfind(")") + 2:].split(" ")[0]
            elif name == "syscall":
                v = " ".join(v.split()[:3])
            info.append(v)
        out.append("  tid %s: state %s wchan %s syscall %s" %
                   (tid, info[0], info[1], info[2]))
    if shutil.which("gdb"):
        try:
            r = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex",
                                "thread apply all bt 8"],
                               capture_output=True, timeout=60, text=True)
            out += ["  " + line for line in r.stdout.splitlines()
                    if line.startswith(("Thread ", "#"))][:120]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "\n".join(out)


def load_seconds(total):
    """How long the load runs in a run of total seconds."""
    return max(5.0, total - 6.0)


def rule_of(s, name):
    for r in (s or {}).get("rules", []):
        if r.get("name") == name:
            return r
    return {}


def addresses_of(s, name):
    return rule_of(s, name).get("addresses", [])


def counters(s, name, port=None, ip="127.0.0.1"):
    """The counters of rule name, summed over its addresses (or the one
    address ip:port)."""
    out = {k: 0 for k in COUNTER_NAMES}
    for a in addresses_of(s, name):
        if port is not None and a.get("address") != "%s:%d" % (ip, port):
            continue
        for k in COUNTER_NAMES:
            out[k] += a.get("counters", {}).get(k, 0)
    return out


def main():
    p = argparse.ArgumentParser(description="make stress")
    p.add_argument("--build", required=True, help="the build directory")
    p.add_argument("--seconds", type=int,
                   default=int(os.environ.get("STRESS_SECONDS", "60")))
    p.add_argument("--procs", type=int,
                   default=int(os.environ.get("STRESS_PROCS", "6")))
    p.add_argument("--threads", type=int,
                   default=int(os.environ.get("STRESS_THREADS", "16")))
    p.add_argument("--no-failover", action="store_true")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    args = p.parse_args()
    if args.seconds < 10:
        p.error("--seconds: 10 at least")
    # a SIGTERM (a CI timeout) still kills what we started
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    return Stress(args).run()


if __name__ == "__main__":
    sys.exit(main())
