# SPDX-License-Identifier: MIT
"""tls_client.py KIND URL COUNT: COUNT GET requests to URL over HTTPS on
one connection, the way the client KIND makes them (http.client,
requests, asyncio, aiohttp; urllib opens one per request), certificate
unchecked, its own timeout 20 s.
Prints one line per request: the status code, or "ERR <exception>" (and
stops there)."""
import asyncio
import http.client
import ssl
import sys
import urllib.parse

KIND, URL, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3])
U = urllib.parse.urlsplit(URL)
CTX = ssl._create_unverified_context()


def say(x):
    print(x, flush=True)


def err(e):
    say("ERR %s" % type(e).__name__)


def with_http_client():
    c = http.client.HTTPSConnection(U.hostname, U.port, timeout=20,
                                    context=CTX)
    for i in range(COUNT):
        try:
            c.request("GET", "%s?%d" % (U.path, i))
            r = c.getresponse()
            r.read()
            say(r.status)
        except Exception as e:
            return err(e)


def with_urllib():
    import urllib.error
    import urllib.request
    for i in range(COUNT):
        try:
            r = urllib.request.urlopen("%s?%d" % (URL, i), context=CTX,
                                       timeout=20)
            r.read()
            say(r.status)
        except urllib.error.HTTPError as e:
            say(e.code)
        except Exception as e:
            return err(e)


def with_requests():
    import requests
    import urllib3
    urllib3.disable_warnings()
    s = requests.Session()
    for i in range(COUNT):
        try:
            r = s.get("%s?%d" % (URL, i), verify=False, timeout=20)
            say(r.status_code)
        except Exception as e:
            return err(e)


async def with_asyncio():
    try:
        r, w = await asyncio.open_connection(U.hostname, U.port, ssl=CTX)
    except Exception as e:
        return err(e)
    for i in range(COUNT):
        try:
            w.write(b"GET %s?%d HTTP/1.1\r\nHost: x\r\n\r\n" %
                    (U.path.encode(), i))
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 20)
            if not line:
                raise ConnectionResetError("closed")
            length = 0
            while True:
                h = await r.readline()
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
                if h in (b"\r\n", b""):
                    break
            await r.readexactly(length)
            say(int(line.split()[1]))
        except Exception as e:
            return err(e)
    w.close()


async def with_aiohttp():
    import aiohttp
    conn = aiohttp.TCPConnector(ssl=False, limit=1)
    t = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=conn, timeout=t) as s:
        for i in range(COUNT):
            try:
                async with s.get("%s?%d" % (URL, i)) as r:
                    await r.read()
                    say(r.status)
            except Exception as e:
                return err(e)


if KIND == "http.client":
    with_http_client()
elif KIND == "urllib":
    with_urllib()
elif KIND == "requests":
    with_requests()
elif KIND == "asyncio":
    asyncio.run(with_asyncio())
elif KIND == "aiohttp":
    asyncio.run(with_aiohttp())
else:
    sys.exit("unknown kind " + KIND)
