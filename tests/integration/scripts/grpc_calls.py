# SPDX-License-Identifier: MIT
"""grpc_calls.py: unary gRPC calls on one channel, as a long-lived client
makes them: "a", an idle second with keepalive PINGs flowing, "b", then
"slow", which the server answers after 1.5 s.  Starts its own server
(grpcio, on 127.0.0.1, without LD_PRELOAD) and prints one line per call:
its name and "ok" or the status code."""
import os
import subprocess
import sys
import time

SERVER = r'''
import sys, time, grpc
from concurrent import futures
def say(req, ctx):
    if req == b"slow":
        time.sleep(1.5)
    return req
h = grpc.method_handlers_generic_handler(
    "t.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
s = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
    ("grpc.http2.min_ping_interval_without_data_ms", 50),
    ("grpc.http2.max_ping_strikes", 0)])
s.add_generic_rpc_handlers((h,))
port = s.add_insecure_port("127.0.0.1:0")
s.start()
print(port, flush=True)
time.sleep(30)
'''

env = {k: v for k, v in os.environ.items()
       if k != "LD_PRELOAD" and not k.startswith("FUSEBOX_")}
srv = subprocess.Popen([sys.executable, "-c", SERVER], env=env,
                       stdout=subprocess.PIPE, text=True)
try:
    import grpc
    port = int(srv.stdout.readline())
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
