#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Reload check: times a blocking connect to PORT, replaces POLICY with the
# text of NEW (by rename or in place), waits for the reload, times again.
#   reload.py POLICY NEW rename|inplace PORT
# Prints one line per attempt: "SECS ERRNO".
import os
import socket
import sys
import time

policy, new, how, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def attempt():
    t0 = time.monotonic()
    s = socket.socket()
    try:
        s.settimeout(4)
        s.connect(("127.0.0.1", port))
        err = 0
    except OSError as e:
        err = e.errno if e.errno is not None else -1
    s.close()
    print("%.3f %s" % (time.monotonic() - t0, err), flush=True)


attempt()
text = open(new).read()
if how == "rename":
    with open(policy + ".tmp", "w") as f:
        f.write(text)
    os.rename(policy + ".tmp", policy)
else:
    with open(policy, "r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()
time.sleep(0.7)
attempt()
