# SPDX-License-Identifier: MIT
"""grpc_server.py: a grpcio echo server for the tests' gRPC clients, run
in its own process on 127.0.0.1 without LD_PRELOAD or FUSEBOX_*.
start(say) takes the source of a `def say(req, ctx)` (the unary method
/t.Echo/Say; `time` and `grpc` are imported) and returns the process and
its port; the server exits after 30 s."""
import os
import subprocess
import sys

SERVE = r'''
import time, grpc
from concurrent import futures
%s
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


def start(say):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("FUSEBOX_")}
    srv = subprocess.Popen([sys.executable, "-c", SERVE % say], env=env,
                           stdout=subprocess.PIPE, text=True)
    return srv, int(srv.stdout.readline())
