#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A tiny stand-in for Redis on 127.0.0.1, enough for redis-cli: PING,
ECHO, BLPOP (always times out: it holds the connection for its timeout,
like a worker waiting for a job), INFO (connected_clients and
peak_clients, the most connections it ever had at once) and QUIT.
Prints its port on the first line, like build/fixture, and stops after
--lifetime seconds or on SIGTERM."""
import argparse
import asyncio
import signal
import socket

clients = 0
peak = 0
live = {}  # writer -> its socket, for clients still counted


def gone(sock):
    """True when the peer of sock has closed: a client that exited while
    its handler slept (BLPOP) must not count against the next one."""
    try:
        with sock.dup() as s:
            return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def uncount(writer):
    global clients
    if live.pop(writer, None) is not None:
        clients -= 1


def bulk(s):
    b = s.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


async def read_command(reader):
    """One command, as a RESP array or an inline line; None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.decode(errors="replace").split()
    args = []
    for _ in range(int(line[1:])):
        size = int((await reader.readline())[1:])
        args.append((await reader.readexactly(size + 2))[:-2].decode(
            errors="replace"))
    return args


async def reply(args):
    cmd = args[0].upper() if args else ""
    if cmd == "PING":
        return b"+PONG\r\n" if len(args) < 2 else bulk(args[1])
    if cmd == "ECHO" and len(args) == 2:
        return bulk(args[1])
    if cmd == "BLPOP" and len(args) >= 3:
        await asyncio.sleep(float(args[-1]))
        return b"*-1\r\n"
    if cmd == "INFO":
        return bulk("# Clients\r\nconnected_clients:%d\r\npeak_clients:%d"
                    "\r\n" % (clients, peak))
    if cmd == "QUIT":
        return b"+OK\r\n"
    return b"-ERR unknown command '%s'\r\n" % cmd.encode()


async def serve(reader, writer):
    global clients, peak
    for w, sock in list(live.items()):
        if gone(sock):
            uncount(w)
    live[writer] = writer.get_extra_info("socket")
    clients += 1
    peak = max(peak, clients)
    try:
        while True:
            args = await read_command(reader)
            if args is None:
                break
            if not args:
                continue
            writer.write(await reply(args))
            await writer.drain()
            if args[0].upper() == "QUIT":
                break
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        uncount(writer)
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=60)
    opts = ap.parse_args()
    server = await asyncio.start_server(serve, "127.0.0.1", opts.port)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), opts.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
