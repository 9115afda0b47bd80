# SPDX-License-Identifier: MIT
"""keepalive.py PORT COUNT PAUSE: COUNT GET requests on one kept-alive
http.client connection to 127.0.0.1:PORT, PAUSE seconds apart.  Prints
one line per request: the status, or "ERR <exception>" (and goes on: the
next request reconnects, as http.client does)."""
import http.client
import sys
import time

port, count, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(count):
    if i:
        time.sleep(pause)
    try:
        c.request("GET", "/k%d" % i)
        r = c.getresponse()
        r.read()
        print(r.status, flush=True)
    except Exception as e:
        print("ERR %s" % type(e).__name__, flush=True)
        c.close()
