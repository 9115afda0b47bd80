#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A TCP client for the integration tests, blocking or asyncio:
#   client.py block|async connect|request|idle|send PORT [HOST]
# connect: connect only; request: send a request, read the reply;
# idle: connect, send nothing, wait for data; send: push 64 MiB.
# HOST (default 127.0.0.1) is resolved with gethostbyname, which keeps
# only the first address: the client tries no other, as many do.
# Prints "ok BYTES SECS" or "error ERRNO SECS"; always exits 0.
import asyncio
import socket
import sys
import time

mode, action, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = socket.gethostbyname(sys.argv[4]) if len(sys.argv) > 4 else "127.0.0.1"
REQ = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
BIG = b"x" * (64 << 20)


def blocking():
    s = socket.create_connection((host, port))
    if action == "connect":
        s.close()
        return 0
    if action == "request":
        s.sendall(REQ)
    if action == "send":
        s.sendall(BIG)
        return len(BIG)
    got = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    s.close()
    return got


async def nonblocking():
    r, w = await asyncio.open_connection(host, port)
    if action == "connect":
        w.close()
        return 0
    if action == "request":
        w.write(REQ)
        await w.drain()
    if action == "send":
        w.write(BIG)
        await w.drain()
        return len(BIG)
    got = 0
    while True:
        b = await r.read(65536)
        if not b:
            break
        got += len(b)
    w.close()
    return got


t0 = time.monotonic()
try:
    n = blocking() if mode == "block" else asyncio.run(nonblocking())
    print("ok %d %.3f" % (n, time.monotonic() - t0))
except OSError as e:
    print("error %s %.3f" % (e.errno, time.monotonic() - t0))
