#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A load generator for make stress: THREADS threads, each looping up to
# ITERATIONS times (and no longer than SECONDS): connect to HOST:PORT,
# send PAYLOAD bytes, read them back, shut down its side, read the
# server's end of stream, close.  Run under the shim, it is a real
# program with real sockets: the shim sees connect, send, recv, close.
#
# Tallies (connects attempted, connected, refused by errno, echo errors,
# bytes) are written to --tally as JSON, through a rename, only when the
# process exits normally: a process killed with SIGKILL leaves none.
# --state names a file of one byte per thread, shared with the harness
# through mmap: 'W' while the thread is in connect (waiting in line),
# 'H' while it holds a connection, '.' otherwise, so that the harness
# knows what it killed.
#
# The graceful close (shutdown, then the server's FIN) orders things:
# the fixture has seen this connection end before its slot under
# max_connections is given back, so the fixture's peak is a fair measure.
import argparse
import errno
import json
import mmap
import os
import random
import socket
import struct
import sys
import threading
import time

TIMEOUT = 4  # seconds: a read or a timed connect that waits longer fails


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--payload", type=int, default=64)
    p.add_argument("--hold-ms", type=float, default=0.0,
                   help="longest random hold of a connection")
    p.add_argument("--pause-ms", type=float, default=0.0,
                   help="pause after each connect")
    p.add_argument("--backoff-ms", type=float, default=5.0,
                   help="pause after a failed connect")
    p.add_argument("--nonblock-every", type=int, default=0,
                   help="every Nth thread uses a socket timeout "
                   "(a non-blocking socket underneath)")
    p.add_argument("--connect-only", action="store_true",
                   help="connect and close, no exchange")
    p.add_argument("--tally", required=True)
    p.add_argument("--state")
    return p.parse_args()


class Tally:
    """What the threads did, summed under a lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = 0
        self.connected = 0
        self.errnos = {}
        self.echo_errors = 0
        self.echo_kinds = {}
        self.bytes_sent = 0
        self.bytes_received = 0
        self.first = None
        self.last = None
        self.max_connect_s = 0.0

    def add(self, t0, dur, err, sent, got, echo_ok, why):
        with self.lock:
            self.attempted += 1
            if self.first is None:
                self.first = t0
            self.last = t0 + dur
            self.max_connect_s = max(self.max_connect_s, dur)
            if err == 0:
                self.connected += 1
                if not echo_ok:
                    self.echo_errors += 1
                    self.echo_kinds[why] = self.echo_kinds.get(why, 0) + 1
            else:
                k = errno.errorcode.get(err, str(err))
                self.errnos[k] = self.errnos.get(k, 0) + 1
            self.bytes_sent += sent
            self.bytes_received += got


def exchange(s, payload, args):
    """Sends payload, reads it back, closes our side, reads the end;
    returns (sent, received, ok, what went wrong)."""
    sent = got = 0
    try:
        s.sendall(payload)
        sent = len(payload)
        while got < len(payload):
            b = s.recv(len(payload) - got)
            if not b:
                return sent, got, False, "end of stream before the echo"
            got += len(b)
        if args.hold_ms > 0:
            time.sleep(random.uniform(0, args.hold_ms) / 1000.0)
        s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += len(b)
        return sent, got, True, None
    except OSError as e:
        return sent, got, False, "%s after %d bytes back" % (
            errno.errorcode.get(e.errno, str(e)), got)


def worker(i, args, tally, state, deadline):
    nonblock = args.nonblock_every and i % args.nonblock_every == 0
    payload = bytes((i + k) % 251 for k in range(args.payload))
    for _ in range(args.iterations):
        if time.monotonic() >= deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if nonblock:
            s.settimeout(TIMEOUT)
        else:
            # bounded reads on a blocking socket: SO_RCVTIMEO
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                         struct.pack("ll", TIMEOUT, 0))
        if state is not None:
            state[i] = ord("W")
        t0 = time.monotonic()
        try:
            err = s.connect_ex((args.host, args.port))
        except socket.timeout:
            err = errno.ETIMEDOUT
        dur = time.monotonic() - t0
        sent = got = 0
        ok, why = True, None
        if err == 0:
            if state is not None:
                state[i] = ord("H")
            if not args.connect_only:
                sent, got, ok, why = exchange(s, payload, args)
        s.close()
        if state is not None:
            state[i] = ord(".")
        tally.add(t0, dur, err, sent, got, ok, why)
        if err != 0 and args.backoff_ms > 0:
            time.sleep(random.uniform(0.5, 1.0) * args.backoff_ms / 1000.0)
        elif args.pause_ms > 0:
            time.sleep(args.pause_ms / 1000.0)


def main():
    args = parse()
    state = None
    if args.state:
        with open(args.state, "wb") as f:
            f.write(b"." * args.threads)
        fd = os.open(args.state, os.O_RDWR)
        state = mmap.mmap(fd, args.threads)
        os.close(fd)
    if not args.host[0].isdigit():
        # resolve once, as many programs do: the shim remembers every
        # address of the name (failover), the client tries the first
        args.host = socket.gethostbyname(args.host)
    tally = Tally()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=worker,
                                args=(i, args, tally, state, deadline))
               for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for why, n in sorted(tally.echo_kinds.items()):
        sys.stderr.write("client: %d exchanges failed: %s\n" % (n, why))
    out = {
        "pid": os.getpid(),
        "attempted": tally.attempted,
        "connected": tally.connected,
        "errnos": tally.errnos,
        "echo_errors": tally.echo_errors,
        "echo_kinds": tally.echo_kinds,
        "bytes_sent": tally.bytes_sent,
        "bytes_received": tally.bytes_received,
        "first": tally.first,
        "last": tally.last,
        "max_connect_s": tally.max_connect_s,
    }
    tmp = args.tally + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.rename(tmp, args.tally)
    return 0


if __name__ == "__main__":
    sys.exit(main())
