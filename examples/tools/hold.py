#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Open N connections to 127.0.0.1:PORT, print how many connected and
how many were refused, and hold them until FILE exists (at most 20 s).
The payments example runs several of these at once under fusebox."""
import os
import socket
import sys
import time


def main():
    port, n, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    held, refused, other = [], 0, 0
    for _ in range(n):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            held.append(s)
        except ConnectionRefusedError:
            refused += 1
            s.close()
        except OSError:
            other += 1
            s.close()
    print(f"connected {len(held)} refused {refused} other {other}",
          flush=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
