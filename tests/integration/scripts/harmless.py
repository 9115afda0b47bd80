#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Python clients for the "do no harm" tests; each writes what it got to
# stdout so that runs with and without fusebox can be compared bytewise:
#   harmless.py urllib URL | raw PORT | async PORT | udp_unix
# raw/async send DATA to the echo fixture, half-close, read to EOF.
# udp_unix exercises UDP and Unix sockets with replies slower than the
# policy's timeouts and prints "ok" when every reply arrived intact.
import asyncio
import os
import socket
import sys
import threading
import time
import urllib.request

DATA = bytes(range(256)) * 24  # 6 KiB, every byte value
LATE = 0.6  # seconds: longer than the 300ms timeouts of the udp_unix test


def raw(port):
    s = socket.create_connection(("127.0.0.1", port))  # blocking
    s.sendall(DATA)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got


async def aio(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(DATA)
    await w.drain()
    w.write_eof()
    got = await asyncio.wait_for(r.read(), 10)
    w.close()
    await w.wait_closed()
    return got


def late_reply(sock, udp):
    """Answers one message on sock, LATE seconds after it arrived."""
    if udp:
        msg, peer = sock.recvfrom(65536)
        time.sleep(LATE)
        sock.sendto(msg[::-1], peer)
    else:
        msg = sock.recv(65536)
        time.sleep(LATE)
        sock.sendall(msg[::-1])


def udp_unix():
    msg = DATA[:1000]
    # UDP, unconnected then connected
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(10)
    for connected in (False, True):
        cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cli.settimeout(10)
        t = threading.Thread(target=late_reply, args=(srv, True))
        t.start()
        if connected:
            cli.connect(srv.getsockname())
            cli.send(msg)
            got = cli.recv(65536)
        else:
            cli.sendto(msg, srv.getsockname())
            got = cli.recvfrom(65536)[0]
        t.join()
        assert got == msg[::-1], "udp reply differs"
        cli.close()
    srv.close()
    # Unix stream socket pair
    a, b = socket.socketpair()
    t = threading.Thread(target=late_reply, args=(b, False))
    t.start()
    a.sendall(msg)
    assert a.recv(65536) == msg[::-1], "socketpair reply differs"
    t.join()
    a.close()
    b.close()
    # Unix stream socket connected by path
    path = "/tmp/fusebox-unix-%d.sock" % os.getpid()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.settimeout(10)
    cli.connect(path)
    conn, _ = srv.accept()
    t = threading.Thread(target=late_reply, args=(conn, False))
    t.start()
    cli.sendall(msg)
    assert cli.recv(65536) == msg[::-1], "unix reply differs"
    t.join()
    for s in (cli, conn, srv):
        s.close()
    os.unlink(path)
    return b"ok\n"


def main():
    what = sys.argv[1]
    if what == "urllib":
        with urllib.request.urlopen(sys.argv[2], timeout=10) as r:
            out = r.read()
    elif what == "raw":
        out = raw(int(sys.argv[2]))
    elif what == "async":
        out = asyncio.run(aio(int(sys.argv[2])))
    elif what == "udp_unix":
        out = udp_unix()
    else:
        sys.exit("harmless.py: unknown client " + what)
    sys.stdout.buffer.write(out)


main()
