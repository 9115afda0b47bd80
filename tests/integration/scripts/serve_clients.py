#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Hostile and numerous clients of `fusebox serve` on 127.0.0.1:PORT:
#   serve_clients.py PORT [N]
# Runs, all at once: a client that sends nothing, one that sends half a
# request, one that sends garbage, one that sends a huge header, 50 that
# vanish mid-reply, and N (default 200) that connect together and then
# each GET /metrics.  Then one last normal request.  Prints one line:
#   ok=N garbage=STATUS huge=STATUS silent=closed|open
#   partial=closed|open final=STATUS
# Every wait is bounded; exits 0 unless the script itself broke.
import socket
import struct
import sys
import threading
import time

PORT = int(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
ADDR = ("127.0.0.1", PORT)
REQ = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def read_all(s, limit=30.0):
    """Reads until EOF or the time limit; returns the bytes."""
    s.settimeout(limit)
    data = b""
    end = time.monotonic() + limit
    try:
        while time.monotonic() < end:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (socket.timeout, OSError):
        pass
    return data


def status(data):
    """The status code of a reply, or 0."""
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def complete_200(data):
    """Says whether data is a whole 200 reply of /metrics."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or status(data) != 200:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            if int(line.split(b":")[1]) != len(body):
                return False
    return b"fusebox_up" in body


results = {}


def silent(name, payload):
    """Connects, sends payload (maybe nothing), waits for the server to
    close the connection (its timeout), at most 25 s."""
    s = socket.create_connection(ADDR, timeout=5)
    if payload:
        s.sendall(payload)
    s.settimeout(25)
    closed = "open"
    try:
        end = time.monotonic() + 25
        while time.monotonic() < end:
            if not s.recv(4096):
                closed = "closed"
                break
    except socket.timeout:
        pass
    except OSError:
        closed = "closed"
    s.close()
    results[name] = closed


def garbage():
    s = socket.create_connection(ADDR, timeout=5)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n")
    results["garbage"] = status(read_all(s, 10))
    s.close()


def huge():
    s = socket.create_connection(ADDR, timeout=5)
    got = b""
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 200000)
    except OSError:
        pass
    got = read_all(s, 10)
    results["huge"] = status(got)
    s.close()


def vanish():
    for _ in range(50):
        s = socket.create_connection(ADDR, timeout=5)
        s.sendall(REQ)
        # close with RST, before the reply is read
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()


ok = []
barrier = threading.Barrier(N, timeout=30)


def many(i):
    try:
        s = socket.create_connection(ADDR, timeout=10)
    except OSError:
        return
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    try:
        s.sendall(REQ)
        if complete_200(read_all(s, 30)):
            ok.append(i)
    except OSError:
        pass
    s.close()


side = [threading.Thread(target=silent, args=("silent", b"")),
        threading.Thread(target=silent,
                         args=("partial", b"GET /metrics HTTP/1.1\r\nHo")),
        threading.Thread(target=garbage),
        threading.Thread(target=huge),
        threading.Thread(target=vanish)]
for t in side:
    t.start()
crowd = [threading.Thread(target=many, args=(i,)) for i in range(N)]
for t in crowd:
    t.start()
for t in crowd + side:
    t.join(60)

s = socket.create_connection(ADDR, timeout=5)
s.sendall(REQ)
final = read_all(s, 10)
s.close()
print("ok=%d garbage=%d huge=%d silent=%s partial=%s final=%d" % (
    len(ok), results.get("garbage", -1), results.get("huge", -1),
    results.get("silent", "?"), results.get("partial", "?"),
    200 if complete_200(final) else status(final)))
