# SPDX-License-Identifier: MIT
"""Protocol fixtures for make compat, beside build/fixture (which speaks
HTTP/1.1, echo, hang, ...): the servers that real clients need and
build/fixture does not speak.  Like build/fixture, each listens on
127.0.0.1 only, prints its port on one line and exits by itself after
--lifetime seconds (or on SIGTERM/SIGINT).

  servers.py static --dir DIR   HTTP/1.0 files from DIR (git's dumb protocol)
  servers.py redis              RESP: PING, GET, SET, ... (what redis-cli sends)
  servers.py pg                 PostgreSQL v3: trust login, every query
                                answers one text row 'hello from pg'
  servers.py grpc               gRPC (grpcio): /compat.Echo/Say echoes bytes

Run with /usr/bin/python3 (grpc needs Debian's python3-grpcio).
"""

import argparse
import functools
import http.server
import os
import signal
import socket
import socketserver
import struct
import sys
import threading


def announce(port):
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()


def stop_after(seconds):
    t = threading.Timer(seconds, lambda: os._exit(0))
    t.daemon = True
    t.start()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: os._exit(0))


class TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


# --- redis ----------------------------------------------------------------


class RedisHandler(socketserver.BaseRequestHandler):
    def handle(self):
        f = self.request.makefile("rb")
        store = {}
        try:
            while True:
                args = self.read_command(f)
                if args is None:
                    return
                self.request.sendall(self.answer(args, store))
        except (OSError, EOFError, ValueError):
            return

    @staticmethod
    def read_command(f):
        line = f.readline()
        if not line:
            return None
        if not line.startswith(b"*"):
            return line.strip().split()  # inline command
        args = []
        for _ in range(int(line[1:])):
            n = int(f.readline()[1:])
            args.append(f.read(n + 2)[:-2])
        return args

    @staticmethod
    def bulk(v):
        return b"$%d\r\n%s\r\n" % (len(v), v)

    def answer(self, args, store):
        cmd = args[0].upper() if args else b""
        if cmd == b"PING":
            return b"+PONG\r\n" if len(args) < 2 else self.bulk(args[1])
        if cmd == b"ECHO" and len(args) > 1:
            return self.bulk(args[1])
        if cmd == b"SET" and len(args) > 2:
            store[args[1]] = args[2]
            return b"+OK\r\n"
        if cmd == b"GET" and len(args) > 1:
            v = store.get(args[1], b"hello from redis")
            return self.bulk(v)
        if cmd == b"COMMAND":
            return b"*0\r\n"
        return b"+OK\r\n"


# --- postgres ----------------------------------------------------------------


def pg_msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


class PgHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        try:
            while True:  # SSLRequest / GSSENCRequest, then the startup
                (n,) = struct.unpack("!I", recv_exact(s, 4))
                body = recv_exact(s, n - 4)
                (code,) = struct.unpack("!I", body[:4])
                if code in (80877103, 80877104):
                    s.sendall(b"N")
                    continue
                if code == 80877102:  # CancelRequest
                    return
                break
            out = pg_msg(b"R", struct.pack("!I", 0))
            for k, v in (
                ("server_version", "15.0"),
                ("server_encoding", "UTF8"),
                ("client_encoding", "UTF8"),
                ("DateStyle", "ISO, MDY"),
                ("integer_datetimes", "on"),
                ("standard_conforming_strings", "on"),
                ("TimeZone", "UTC"),
            ):
                out += pg_msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
            out += pg_msg(b"K", struct.pack("!II", os.getpid(), 4242))
            out += pg_msg(b"Z", b"I")
            s.sendall(out)
            while True:
                kind = recv_exact(s, 1)
                (n,) = struct.unpack("!I", recv_exact(s, 4))
                recv_exact(s, n - 4)
                if kind == b"X":
                    return
                if kind != b"Q":
                    s.sendall(
                        pg_msg(b"E", b"SERROR\0C0A000\0Mnot supported\0\0")
                        + pg_msg(b"Z", b"I")
                    )
                    continue
                row = b"hello from pg"
                field = b"?column?\0" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
                s.sendall(
                    pg_msg(b"T", struct.pack("!h", 1) + field)
                    + pg_msg(b"D", struct.pack("!hI", 1, len(row)) + row)
                    + pg_msg(b"C", b"SELECT 1\0")
                    + pg_msg(b"Z", b"I")
                )
        except (OSError, EOFError, struct.error):
            return


# --- static files -----------------------------------------------------------


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# --- grpc -------------------------------------------------------------------


def serve_grpc(port, lifetime):
    from concurrent import futures

    import grpc

    def say(request, context):
        return b"echo: " + request

    handler = grpc.method_handlers_generic_handler(
        "compat.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:%d" % port)
    if not port:
        sys.exit("servers.py: grpc: cannot listen")
    server.start()
    announce(port)
    stop_after(lifetime)
    server.wait_for_termination()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["static", "redis", "pg", "grpc"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=60.0)
    ap.add_argument("--dir", default=".")
    a = ap.parse_args()
    if a.mode == "grpc":
        serve_grpc(a.port, a.lifetime)
        return
    if a.mode == "static":
        handler = functools.partial(QuietFiles, directory=a.dir)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler)
        server.daemon_threads = True
    else:
        handler = RedisHandler if a.mode == "redis" else PgHandler
        server = TCPServer(("127.0.0.1", a.port), handler)
    announce(server.server_address[1])
    stop_after(a.lifetime)
    server.serve_forever()


if __name__ == "__main__":
    main()
