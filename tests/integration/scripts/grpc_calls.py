# SPDX-License-Identifier: MIT
"""grpc_calls.py: unary gRPC calls on one channel, as a long-lived client
makes them: "a", an idle second with keepalive PINGs flowing, "b", then
"slow", which the server answers after 1.5 s.  Starts its own server
(grpcio, on 127.0.0.1, without LD_PRELOAD) and prints one line per call:
its name and "ok" or the status code."""
import sys
import time

import grpc_server

SAY = r'''
def say(req, ctx):
    if req == b"slow":
        time.sleep(1.5)
    return req
'''

srv, port = grpc_server.start(SAY)
try:
    import grpc
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.keepalive_time_ms", 100),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0)])
    say = ch.unary_unary("/t.Echo/Say")
    for name, pause in (("a", 1.0), ("b", 0), ("slow", 0)):
        try:
            say(name.encode(), timeout=10)
            print(name, "ok", flush=True)
        except grpc.RpcError as e:
            print(name, e.code().name, flush=True)
        time.sleep(pause)
    ch.close()
finally:
    srv.kill()
    srv.wait()
