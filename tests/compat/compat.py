#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make compat: real client programs under fusebox, one row each.

For every client, against fixture servers on 127.0.0.1 only:
  output    the same stdout (and exit status) with and without fusebox
            against a healthy server (load generators: their summary);
  counted   the guarded run's calls are in `fusebox stats --json` of a
            segment private to this run: calls > 0 (exactly as many as
            the client made, where that is known), no failures;
  timeout   against a server that accepts and never answers, with
            response_timeout = 500ms: the client ends (it is killed at
            HANG_KILL s otherwise) and response_timeouts moved; no
            wall-clock threshold is asserted;
  breaker   separate runs against a refusing port open the breaker
            (breaker_failures = 3), a later separate run is rejected
            (rejected_breaker moved), and after the open period, the
            server back, a run succeeds with the healthy output and the
            breaker is closed.

Each cell is PASS, FAIL or SKIP with a short reason; a client whose
package is not installed is SKIPPED.  The table is printed and written
as markdown to BUILD/compat.md.  Exit 1 when a row FAILs, unless the
client is in UNGUARDABLE below.

Environment: COMPAT_ONLY=curl,psql runs a subset; COMPAT_JOBS clients
run at once (3); COMPAT_BUDGET seconds for the whole run (270).
Run with /usr/bin/python3 (Debian's: python3-grpcio, python3-requests).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Clients documented as unguardable (libfusebox(7), WHAT CANNOT BE
# GUARDED): name -> why.  Their FAILs are shown but do not fail the run.
UNGUARDABLE = {}

HANG_KILL = 10.0  # s: a client still waiting on the hung server is killed
RUN_KILL = 10.0  # s: any other run of a client
FAIL_RUNS = 5  # at most this many runs to open the breaker
SERVER_LIFE = 120  # s: every server stops by itself after this
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BODY = "hello from fixture\n"

POLICY = """\
; make compat: one rule per fixture of this client
[global]
reload = 0

[healthy]
match = 127.0.0.1:{healthy}
; generous: a server still starting on a loaded machine (grpcio's) is
; slow to its first frame, and this check is about the same output
response_timeout = 10s

[hang]
match = 127.0.0.1:{hang}
response_timeout = 500ms

[brk]
match = 127.0.0.1:{brk}
response_timeout = 2s
breaker = on
breaker_failures = 3
breaker_open = 3s
"""


# --- processes ----------------------------------------------------------------


class Result:
    def __init__(self, rc, out, err, killed, secs):
        self.rc, self.out, self.err = rc, out, err
        self.killed, self.secs = killed, secs

    def why(self):
        """The last line of stderr, for a reason."""
        lines = [l for l in self.err.splitlines() if l.strip()]
        return lines[-1].strip()[:70] if lines else ""


def killgroup(pid, sig=signal.SIGKILL):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv, env, timeout, stdin=None, cwd=None):
    """Run argv in a process group of its own; kill the group after
    timeout seconds.  Returns a Result."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    killed = False
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        killed = True
        killgroup(p.pid)
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            out, err = b"", b"(output lost: pipes held open)"
    killgroup(p.pid)  # whatever it left behind
    return Result(
        p.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        killed,
        time.monotonic() - t0,
    )


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, secs=5.0):
    end = time.monotonic() + secs
    while time.monotonic() < end and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """A server in its own process group, which stops by itself (its
    --lifetime, or timeout(1)).  The port is the first line it prints,
    or, when port is given, the one it is told to listen on."""

    def __init__(self, argv, env, port=None, cwd=None):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.port = port
        ok = False
        if port is None:
            r, _, _ = select.select([self.proc.stdout], [], [], 10.0)
            line = self.proc.stdout.readline() if r else b""
            if line.strip().isdigit():
                self.port = int(line)
                ok = True
        else:
            ok = wait_listening(port, self.proc)
        if not ok:
            self.stop()
            raise RuntimeError(
                "server did not start: %s: %s" % (argv[0], self.errors()[:200])
            )

    def errors(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").strip()

    def stop(self):
        if self.proc.poll() is None:
            killgroup(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        killgroup(self.proc.pid)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            pass
        self.proc.stdout.close()


# --- one client's run -------------------------------------------------------------


class Ctx:
    """What one client's checks share: its directory, segment, policy,
    servers and the fusebox build."""

    def __init__(self, opts, client, tmp):
        self.opts = opts
        self.client = client
        self.tmp = tmp
        self.seg = "fusebox-compat-%d-%s" % (os.getpid(), client.name)
        self.fusebox = os.path.join(opts.build, "fusebox")
        self.fixture = os.path.join(opts.build, "fixture")
        self.servers_py = os.path.join(opts.src, "tests/compat/servers.py")
        self.policy = os.path.join(tmp, "policy.ini")
        self.servers = []
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("FUSEBOX_")
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
            and k not in ("LD_PRELOAD", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "PYTHONPATH")
            and not k.startswith(("PG", "GIT_", "NODE_", "RUBY", "PHP"))
        }
        env.update(
            PATH=PATH,
            HOME=tmp,
            LC_ALL="C.UTF-8",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            PGPASSFILE="/dev/null",
            REDISCLI_HISTFILE="/dev/null",
            NODE_NO_WARNINGS="1",
            FUSEBOX_SEGMENT=self.seg,
        )
        self.plain_env = dict(env)
        del self.plain_env["FUSEBOX_SEGMENT"]
        self.env = env

    def limit(self, secs):
        """secs, cut to what is left of the run's budget (at least 1 s)."""
        return max(1.0, min(secs, self.deadline - time.monotonic()))

    def guard(self, argv):
        return [self.fusebox, "run", "-p", self.policy, "--"] + argv

    def start(self, kind, port=None):
        """A server of this kind; port None: any free one."""
        life = ["--lifetime", str(SERVER_LIFE)]
        pp = ["--port", str(port)] if port else []
        py = ["/usr/bin/python3", self.servers_py]
        if kind in ("http", "echo", "hang"):
            argv = [self.fixture, kind] + life + pp
        elif kind in ("redis", "pg", "grpc"):
            argv = py + [kind] + life + pp
        elif kind == "git":
            argv = py + ["static", "--dir", git_root(self)] + life + pp
        elif kind == "h2":
            docs = os.path.join(self.tmp, "h2docs")
            os.makedirs(docs, exist_ok=True)
            with open(os.path.join(docs, "index.html"), "w") as f:
                f.write(BODY)
            port = port or free_port()
            argv = ["timeout", "-k", "1", str(SERVER_LIFE), shutil.which("nghttpd", path=PATH),
                    "--no-tls", "-a", "127.0.0.1", "-d", docs, str(port)]
            s = Server(argv, self.plain_env, port=port)
            self.servers.append(s)
            return s
        else:
            raise ValueError(kind)
        s = Server(argv, self.plain_env)
        self.servers.append(s)
        return s

    def stop_all(self):
        for s in self.servers:
            s.stop()
        self.servers = []

    def stats(self, rule):
        """Counters of the rule summed over its addresses, its breaker
        state and breaker_until (of its first address)."""
        r = run([self.fusebox, "stats", "--json", "-s", self.seg], self.env, 10)
        out = {"calls": 0, "breaker": None, "until": None, "error": None}
        if r.rc != 0:
            out["error"] = "stats: " + r.why()
            return out
        try:
            data = json.loads(r.out)
        except ValueError:
            out["error"] = "stats: not JSON"
            return out
        for rl in data.get("rules", []):
            if rl.get("name") != rule:
                continue
            for a in rl.get("addresses", []):
                for k, v in a.get("counters", {}).items():
                    out[k] = out.get(k, 0) + v
                if out["breaker"] is None:
                    out["breaker"] = a.get("breaker")
                    out["until"] = a.get("breaker_until")
        return out


def git_root(ctx):
    """A bare repository with one commit, served by the dumb HTTP
    protocol (what a plain file server offers)."""
    root = os.path.join(ctx.tmp, "gitroot")
    if os.path.isdir(root):
        return root
    work = os.path.join(ctx.tmp, "gitwork")
    env = dict(ctx.plain_env,
               GIT_AUTHOR_NAME="compat", GIT_AUTHOR_EMAIL="compat@localhost",
               GIT_COMMITTER_NAME="compat", GIT_COMMITTER_EMAIL="compat@localhost",
               GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    os.makedirs(work)
    for argv in (["git", "init", "-q", "-b", "main", work],
                 ["sh", "-c", "echo hello > README && git add README && "
                  "git commit -q -m hello && git tag v1"],
                 ["git", "clone", "-q", "--bare", work, os.path.join(root, "repo.git")],
                 ["git", "-C", os.path.join(root, "repo.git"), "update-server-info"]):
        r = run(argv, env, 20, cwd=work)
        if r.rc != 0:
            raise RuntimeError("git setup: " + r.why())
    return root


# --- the clients ------------------------------------------------------------------


def norm_ab(out):
    keep = [l.strip() for l in out.splitlines()
            if re.match(r"\s*(Complete requests|Failed requests|Non-2xx responses|Document Length)", l)]
    return "\n".join(keep) or out


def norm_h2load(out):
    keep = [l.strip() for l in out.splitlines() if re.match(r"(requests|status codes):", l)]
    return "\n".join(keep) or out


def norm_wrk(out):
    m = re.search(r"(\d+) requests in", out)
    return "requests>0=%s socket_errors=%s non2xx=%s" % (
        bool(m and int(m.group(1)) > 0),
        "Socket errors" in out,
        "Non-2xx" in out,
    )


PY_URLLIB = ("import sys, urllib.request as u\n"
             "sys.stdout.write(u.urlopen(sys.argv[1]).read().decode())\n")
PY_REQUESTS = ("import sys, requests\n"
               "r = requests.get(sys.argv[1])\n"
               "sys.stdout.write(r.text)\n"
               "sys.exit(0 if r.ok else 1)\n")
PY_ASYNCIO = """\
import asyncio, sys, urllib.parse
async def main(url):
    u = urllib.parse.urlsplit(url)
    r, w = await asyncio.open_connection(u.hostname, u.port)
    w.write(("GET %s HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n"
             % (u.path or "/", u.netloc)).encode())
    await w.drain()
    data = await r.read()
    w.close()
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    sys.stdout.write(body.decode())
    return 0 if b" 200 " in head.split(b"\\r\\n")[0] else 1
sys.exit(asyncio.run(main(sys.argv[1])))
"""
# Two calls on one channel, idle in between for longer than the healthy
# rule's response_timeout: what a long-lived channel does.
PY_GRPC = """\
import sys, time, grpc
ch = grpc.insecure_channel(sys.argv[1])
say = ch.unary_unary("/compat.Echo/Say")
print(say(b"one").decode(), flush=True)
time.sleep(2.5)
print(say(b"two").decode(), flush=True)
ch.close()
"""
PERL = ("use HTTP::Tiny; my $r = HTTP::Tiny->new(timeout => 60)->get($ARGV[0]);"
        "print $r->{content} if $r->{success};"
        "print STDERR \"$r->{status} $r->{content}\" unless $r->{success};"
        "exit($r->{success} ? 0 : 1);")
NODE_HTTP = ("require('http').get(process.argv[1], r => { let b = '';"
             " r.on('data', d => b += d); r.on('end', () => { process.stdout.write(b);"
             " process.exitCode = r.statusCode < 400 ? 0 : 1; }); })"
             ".on('error', e => { console.error(e.message); process.exit(1); });")
NODE_FETCH = ("fetch(process.argv[1]).then(r => r.text().then(t => {"
              " process.stdout.write(t); process.exitCode = r.ok ? 0 : 1; }))"
              ".catch(e => { console.error(String(e.cause || e)); process.exit(1); });")
RUBY = ("require 'net/http'; r = Net::HTTP.get_response(URI(ARGV[0]));"
        " print r.body; exit(r.code.to_i < 400 ? 0 : 1)")
PHP_FGC = ("$s = @file_get_contents($argv[1]);"
           " if ($s === false) { fwrite(STDERR, error_get_last()['message'] . \"\\n\"); exit(1); }"
           " echo $s;")
PHP_CURL = ("$c = curl_init($argv[1]); curl_setopt($c, CURLOPT_RETURNTRANSFER, true);"
            " $s = curl_exec($c);"
            " if ($s === false) { fwrite(STDERR, curl_error($c) . \"\\n\"); exit(1); }"
            " echo $s;")
JAVA = """\
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpClient c = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create(args[0])).build(),
                                        HttpResponse.BodyHandlers.ofString());
        System.out.print(r.body());
        System.exit(r.statusCode() < 400 ? 0 : 1);
    }
}
"""


def url(port, path="/"):
    return "http://127.0.0.1:%d%s" % (port, path)


def have(*names):
    """None when every program is on PATH, else a SKIP reason."""
    missing = [n for n in names if not shutil.which(n, path=PATH)]
    return "not installed: " + " ".join(missing) if missing else None


def have_py(module, deb):
    r = subprocess.run(["/usr/bin/python3", "-c", "import " + module],
                       capture_output=True)
    return None if r.returncode == 0 else "not installed: " + deb


def have_php_curl():
    h = have("php")
    if h:
        return h
    r = subprocess.run(["php", "-r", "exit(function_exists('curl_init') ? 0 : 1);"],
                       capture_output=True, env={"PATH": PATH})
    return None if r.returncode == 0 else "not installed: php-curl"


def have_java_source():
    h = have("java")
    if h:
        return h
    r = subprocess.run(["java", "--list-modules"], capture_output=True, env={"PATH": PATH})
    if b"jdk.compiler" not in r.stdout:
        return "no JDK (single-file source launch needs jdk.compiler)"
    return None


def have_nginx():
    h = have("nginx", "curl")
    return h


class Client:
    """name; the server kind it needs; argv(port, ctx) for one run;
    the Debian packages; avail() -> None or a SKIP reason; stdin; a
    normaliser for output; the calls one healthy run makes, when
    known."""

    def __init__(self, name, kind, argv, debs, avail, stdin=None, norm=None,
                 calls=None):
        self.name, self.kind, self.argv = name, kind, argv
        self.debs, self.avail, self.stdin = debs, avail, stdin
        self.norm = norm or (lambda s: s)
        self.calls = calls

    def setup(self, ctx):
        pass

    def run(self, ctx, port, guarded, timeout):
        timeout = ctx.limit(timeout)
        argv = self.argv(port, ctx)
        argv[0] = shutil.which(argv[0], path=PATH) or argv[0]
        if guarded:
            return run(ctx.guard(argv), ctx.env, timeout, self.stdin, cwd=ctx.tmp)
        return run(argv, ctx.plain_env, timeout, self.stdin, cwd=ctx.tmp)


class JavaClient(Client):
    def setup(self, ctx):
        with open(os.path.join(ctx.tmp, "Fetch.java"), "w") as f:
            f.write(JAVA)


class NginxClient(Client):
    """nginx, guarded, as a reverse proxy to the fixture; each run starts
    nginx (a master and two workers), sends one request with curl
    (unguarded) and stops nginx.  The guarded calls are the workers'
    connects to the upstream.  The workers run as nobody with a cleared
    environment, as nginx runs them: they keep the policy and the
    segment the master took at load (libfusebox(7))."""

    CONF = """\
daemon off;
master_process on;
worker_processes 2;
user nobody nogroup;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_read_timeout 60s;
        }}
    }}
}}
"""

    def run(self, ctx, port, guarded, timeout):
        timeout = ctx.limit(timeout)
        d = tempfile.mkdtemp(prefix="nginx-", dir=ctx.tmp)
        listen = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.CONF.format(dir=d, listen=listen, upstream=port))
        argv = [shutil.which("nginx", path=PATH), "-p", d, "-c", conf,
                "-e", os.path.join(d, "error.log")]
        if guarded:
            argv = ctx.guard(argv)
        argv = ["timeout", "-k", "1", str(SERVER_LIFE)] + argv
        try:
            srv = Server(argv, ctx.env if guarded else ctx.plain_env, port=listen)
        except RuntimeError as e:
            return Result(-1, "", str(e), False, 0.0)
        try:
            r = run([shutil.which("curl", path=PATH), "-sS", url(listen)],
                    ctx.plain_env, timeout)
        finally:
            srv.stop()
        try:
            with open(os.path.join(d, "error.log")) as f:
                r.err += f.read()
        except OSError:
            pass
        return r


PY = "/usr/bin/python3"
CLIENTS = [
    JavaClient("java-httpclient", "http",
               lambda p, c: ["java", os.path.join(c.tmp, "Fetch.java"), url(p)],
               ["openjdk-17-jdk-headless"], have_java_source, calls=1),
    Client("python-grpcio", "grpc",
           lambda p, c: [PY, "-c", PY_GRPC, "127.0.0.1:%d" % p],
           ["python3-grpcio"], lambda: have_py("grpc", "python3-grpcio"), calls=2),
    Client("curl", "http", lambda p, c: ["curl", "-sS", url(p)], ["curl"],
           lambda: have("curl"), calls=1),
    Client("wget", "http", lambda p, c: ["wget", "-q", "-O", "-", "--tries=1", url(p)],
           ["wget"], lambda: have("wget"), calls=1),
    Client("busybox-wget", "http", lambda p, c: ["busybox", "wget", "-q", "-O", "-", url(p)],
           ["busybox"], lambda: have("busybox"), calls=1),
    Client("python-urllib", "http", lambda p, c: [PY, "-c", PY_URLLIB, url(p)],
           ["python3"], lambda: None if os.path.exists(PY) else "not installed: python3",
           calls=1),
    Client("python-requests", "http", lambda p, c: [PY, "-c", PY_REQUESTS, url(p)],
           ["python3-requests"], lambda: have_py("requests", "python3-requests"), calls=1),
    Client("python-asyncio", "http", lambda p, c: [PY, "-c", PY_ASYNCIO, url(p)],
           ["python3"], lambda: None if os.path.exists(PY) else "not installed: python3",
           calls=1),
    Client("perl-http-tiny", "http", lambda p, c: ["perl", "-e", PERL, url(p)],
           ["perl"], lambda: have("perl"), calls=1),
    Client("node-http", "http", lambda p, c: ["node", "-e", NODE_HTTP, url(p)],
           ["nodejs"], lambda: have("node"), calls=1),
    Client("node-fetch", "http", lambda p, c: ["node", "-e", NODE_FETCH, url(p)],
           ["nodejs"], lambda: have("node"), calls=1),
    Client("ruby-net-http", "http", lambda p, c: ["ruby", "-e", RUBY, url(p)],
           ["ruby"], lambda: have("ruby"), calls=1),
    Client("php-file-get-contents", "http", lambda p, c: ["php", "-r", PHP_FGC, url(p)],
           ["php-cli"], lambda: have("php"), calls=1),
    Client("php-curl", "http", lambda p, c: ["php", "-r", PHP_CURL, url(p)],
           ["php-cli", "php-curl"], have_php_curl, calls=1),
    Client("git-http", "git", lambda p, c: ["git", "ls-remote", url(p, "/repo.git")],
           ["git"], lambda: have("git")),
    Client("psql", "pg",
           lambda p, c: ["psql", "host=127.0.0.1 port=%d user=compat dbname=compat" % p,
                         "-XAtc", "select 'hello'"],
           ["postgresql-client"], lambda: have("psql"), calls=3),  # SSLRequest, startup, query
    Client("redis-cli", "redis", lambda p, c: ["redis-cli", "-h", "127.0.0.1", "-p", str(p), "PING"],
           ["redis-tools"], lambda: have("redis-cli"), calls=1),
    NginxClient("nginx-proxy", "http", None, ["nginx", "curl"], have_nginx, calls=1),
    Client("socat", "echo", lambda p, c: ["socat", "-t", "30", "-", "TCP:127.0.0.1:%d" % p],
           ["socat"], lambda: have("socat"), stdin=b"hello from socat\n", calls=1),
    Client("wrk", "http", lambda p, c: ["wrk", "-t1", "-c1", "-d1s", "--timeout", "10s", url(p)],
           ["wrk"], lambda: have("wrk"), norm=norm_wrk),
    Client("ab", "http", lambda p, c: ["ab", "-q", "-n", "20", "-c", "1", "-s", "30", url(p)],
           ["apache2-utils"], lambda: have("ab"), norm=norm_ab, calls=20),
    Client("h2load", "h2", lambda p, c: ["h2load", "-n", "20", "-c", "1", url(p)],
           ["nghttp2-client", "nghttp2-server"], lambda: have("h2load", "nghttpd"),
           norm=norm_h2load, calls=20),
]


# --- the four checks ----------------------------------------------------------------


def PASS(why=""):
    return ("PASS", why)


def FAIL(why):
    return ("FAIL", why)


def SKIP(why):
    return ("SKIP", why)


def first_diff(a, b):
    al, bl = a.splitlines(), b.splitlines()
    for i in range(max(len(al), len(bl))):
        x = al[i] if i < len(al) else "<end>"
        y = bl[i] if i < len(bl) else "<end>"
        if x != y:
            return "line %d: %r vs %r" % (i + 1, x[:30], y[:30])
    return "same lines"


def check_output(c, ctx, ports, state):
    ref = c.run(ctx, ports["healthy"], False, RUN_KILL)
    if ref.killed or ref.rc != 0:
        return FAIL("fails without fusebox (rc %s): %s" % (ref.rc, ref.why()))
    state["ref"] = c.norm(ref.out)
    got = c.run(ctx, ports["healthy"], True, RUN_KILL)
    state["got"] = got
    if got.killed:
        return FAIL("guarded run killed at %gs" % RUN_KILL)
    if got.rc != ref.rc:
        return FAIL("exit %s under fusebox, %s without: %s" % (got.rc, ref.rc, got.why()))
    if c.norm(got.out) != state["ref"]:
        return FAIL("output differs, " + first_diff(state["ref"], c.norm(got.out)))
    return PASS()


def check_counted(c, ctx, ports, state):
    if "got" not in state:
        return SKIP("no guarded run (see output)")
    s = ctx.stats("healthy")
    if s["error"]:
        return FAIL(s["error"])
    calls, fails = s.get("calls", 0), s.get("failures", 0)
    if calls == 0:
        return FAIL("no call counted")
    if fails:
        kinds = ["%s=%d" % (k, s[k]) for k in ("response_timeouts", "resets", "connect_refused",
                                                 "connect_timeouts", "http_5xx") if s.get(k)]
        return FAIL("calls=%d failures=%d %s" % (calls, fails, " ".join(kinds)))
    if c.calls is not None and calls != c.calls:
        return FAIL("calls=%d, the client made %d" % (calls, c.calls))
    return PASS("calls=%d" % calls)


def check_hang(c, ctx, ports, state):
    r = c.run(ctx, ports["hang"], True, HANG_KILL)
    s = ctx.stats("hang")
    if s["error"]:
        return FAIL(s["error"])
    rt = s.get("response_timeouts", 0)
    if r.killed:
        return FAIL("still waiting at %.0fs, killed; response_timeouts=%d" % (r.secs, rt))
    if rt == 0:
        return FAIL("ended (exit %s) but response_timeouts=0, calls=%d" % (r.rc, s["calls"]))
    return PASS("exit %s, response_timeouts=%d" % (r.rc, rt))


def parse_until(s):
    if not s:
        return None
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def check_breaker(c, ctx, ports, state):
    reserve = state.pop("reserve")  # bound, not listening: connects are refused
    try:
        s = None
        for n in range(1, FAIL_RUNS + 1):
            if time.monotonic() > ctx.deadline:
                return FAIL("COMPAT_BUDGET spent after %d runs" % (n - 1))
            c.run(ctx, ports["brk"], True, RUN_KILL)
            s = ctx.stats("brk")
            if s["error"]:
                return FAIL(s["error"])
            if s["breaker"] == "open":
                break
        else:
            return FAIL("not open after %d runs: state=%s calls=%d failures=%d"
                        % (FAIL_RUNS, s["breaker"], s["calls"], s.get("failures", 0)))
        rej = s.get("rejected_breaker", 0)
        r = c.run(ctx, ports["brk"], True, RUN_KILL)
        s2 = ctx.stats("brk")
        if s2.get("rejected_breaker", 0) <= rej:
            return FAIL("opened after %d runs, but the next run was not rejected "
                        "(state=%s, exit %s)" % (n, s2["breaker"], r.rc))
        until = parse_until(s2["until"])
    finally:
        reserve.close()
    # the server comes back on the same port; wait out the open period
    ctx.start(c.kind, port=ports["brk"])
    if until:
        time.sleep(min(max(0.0, until + 1.1 - time.time()), 15.0, ctx.limit(15.0)))
    r = c.run(ctx, ports["brk"], True, RUN_KILL)
    s3 = ctx.stats("brk")
    if r.killed or r.rc != 0:
        return FAIL("opened, rejected; after recovery exit %s: %s (state=%s)"
                    % (r.rc, r.why(), s3["breaker"]))
    if state.get("ref") is not None and c.norm(r.out) != state["ref"]:
        return FAIL("opened, rejected; after recovery output differs, "
                    + first_diff(state["ref"], c.norm(r.out)))
    if s3["breaker"] != "closed":
        return FAIL("opened, rejected; after recovery a run succeeded but breaker=%s"
                    % s3["breaker"])
    return PASS("open after %d run%s, rejected %d, closed again"
                % (n, "s" if n > 1 else "", s2["rejected_breaker"] - rej))


CHECKS = [("output", check_output), ("counted", check_counted),
          ("timeout", check_hang), ("breaker", check_breaker)]


def run_client(c, opts, deadline):
    t0 = time.monotonic()
    why = c.avail()
    if why:
        return [SKIP(why)] * len(CHECKS), 0.0
    tmp = tempfile.mkdtemp(prefix="compat-%s-" % c.name)
    ctx = Ctx(opts, c, tmp)
    ctx.deadline = deadline
    cells = []
    try:
        c.setup(ctx)
        reserve = socket.socket()
        reserve.bind(("127.0.0.1", 0))
        ports = {"healthy": ctx.start(c.kind).port,
                 "hang": ctx.start("hang").port,
                 "brk": reserve.getsockname()[1]}
        with open(ctx.policy, "w") as f:
            f.write(POLICY.format(**ports))
        state = {"reserve": reserve}
        for name, fn in CHECKS:
            if time.monotonic() > deadline:
                cells.append(FAIL("not run: COMPAT_BUDGET spent"))
                continue
            try:
                cells.append(fn(c, ctx, ports, state))
            except Exception as e:  # a broken check is a FAIL, never a PASS
                cells.append(FAIL("%s: %s" % (type(e).__name__, str(e)[:80])))
        if "reserve" in state:
            state["reserve"].close()
    except Exception as e:
        cells += [FAIL("setup: %s" % str(e)[:80])] * (len(CHECKS) - len(cells))
    finally:
        ctx.stop_all()
        try:
            os.unlink("/dev/shm/" + ctx.seg)
        except OSError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return cells, time.monotonic() - t0


# --- the table -----------------------------------------------------------------


def cell_text(cell):
    st, why = cell
    return st + (" (%s)" % why if why else "")


def write_tables(rows, md_path, secs):
    heads = ["client"] + [n for n, _ in CHECKS]
    texts = [[name + (" (unguardable)" if name in UNGUARDABLE else "")]
             + [cell_text(x) for x in cells] for name, cells in rows]
    width = [max(len(h), 8) for h in heads]
    for t in texts:
        for i, x in enumerate(t):
            width[i] = max(width[i], min(len(x), 60 if i else 24))
    line = lambda t: "  ".join(x.ljust(width[i]) for i, x in enumerate(t)).rstrip()
    print(line(heads))
    for t in texts:
        print(line(t))
    with open(md_path, "w") as f:
        f.write("# fusebox compat matrix\n\n")
        f.write("Generated %s by `make compat` (tests/compat/compat.py) in %.0f s.\n\n"
                % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   secs))
        f.write("| " + " | ".join(heads) + " |\n")
        f.write("|" + "---|" * len(heads) + "\n")
        for t in texts:
            f.write("| " + " | ".join(x.replace("|", "\\|") for x in t) + " |\n")
        if UNGUARDABLE:
            f.write("\nDocumented as unguardable (their FAILs do not fail the run):\n\n")
            for k, v in sorted(UNGUARDABLE.items()):
                f.write("- %s: %s\n" % (k, v))


def main():
    ap = argparse.ArgumentParser(description="make compat")
    ap.add_argument("--build", required=True, help="the build directory (fusebox, fixture)")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    ap.add_argument("--only", default=os.environ.get("COMPAT_ONLY", ""))
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("COMPAT_JOBS", "3")))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("COMPAT_BUDGET", "270")))
    ap.add_argument("--list", action="store_true", help="print the client names and packages")
    opts = ap.parse_args()
    opts.build, opts.src = os.path.abspath(opts.build), os.path.abspath(opts.src)
    if opts.list:
        for c in CLIENTS:
            print("%-22s %s" % (c.name, " ".join(c.debs)))
        return 0
    for f in ("fusebox", "fixture", "libfusebox.so"):
        if not os.path.exists(os.path.join(opts.build, f)):
            sys.exit("compat: %s/%s missing; run make first" % (opts.build, f))
    clients = CLIENTS
    if opts.only:
        want = [w.strip() for w in opts.only.split(",") if w.strip()]
        unknown = [w for w in want if w not in [c.name for c in CLIENTS]]
        if unknown:
            sys.exit("compat: unknown client %s; known: %s"
                     % (", ".join(unknown), " ".join(c.name for c in CLIENTS)))
        clients = [c for c in CLIENTS if c.name in want]
    t0 = time.monotonic()
    deadline = t0 + opts.budget
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        futs = {pool.submit(run_client, c, opts, deadline): c for c in clients}
        for f in concurrent.futures.as_completed(futs):
            c = futs[f]
            cells, secs = f.result()
            results[c.name] = cells
            print("compat: %-22s %s  (%.1f s)" % (c.name, " ".join(x[0] for x in cells), secs),
                  flush=True)
    secs = time.monotonic() - t0
    rows = [(c.name, results[c.name]) for c in clients]
    print()
    write_tables(rows, os.path.join(opts.build, "compat.md"), secs)
    failed = [n for n, cells in rows if any(x[0] == "FAIL" for x in cells)]
    excused = [n for n in failed if n in UNGUARDABLE]
    bad = [n for n in failed if n not in UNGUARDABLE]
    print("\ncompat: %d clients in %.0f s; %d with a FAIL%s; table in %s"
          % (len(rows), secs, len(failed),
             " (%d documented unguardable)" % len(excused) if excused else "",
             os.path.join(opts.build, "compat.md")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
