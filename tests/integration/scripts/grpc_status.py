# SPDX-License-Identifier: MIT
"""grpc_status.py CALL...: unary gRPC calls on one channel, one per
argument, to a server it starts (grpcio, on 127.0.0.1, without
LD_PRELOAD): "ok" answers; "unavailable", "internal" and "not_found"
fail with that status at once (a trailers-only reply); "late_internal"
sends its headers, then fails with INTERNAL (the status in trailers).
Prints one line per call: its name and "ok" or the status code."""
import sys

import grpc_server

SAY = r'''
def say(req, ctx):
    if req == b"unavailable":
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")
    if req == b"internal":
        ctx.abort(grpc.StatusCode.INTERNAL, "bug")
    if req == b"not_found":
        ctx.abort(grpc.StatusCode.NOT_FOUND, "none")
    if req == b"late_internal":
        ctx.send_initial_metadata((("x-stage", "started"),))
        time.sleep(0.05)
        ctx.abort(grpc.StatusCode.INTERNAL, "late")
    return req
'''

srv, port = grpc_server.start(SAY)
try:
    import grpc
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    say = ch.unary_unary("/t.Echo/Say")
    for name in sys.argv[1:]:
        try:
            say(name.encode(), timeout=10)
            print(name, "ok", flush=True)
        except grpc.RpcError as e:
            print(name, e.code().name, flush=True)
    ch.close()
finally:
    srv.kill()
    srv.wait()
