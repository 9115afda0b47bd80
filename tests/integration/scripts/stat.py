#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Reads `fusebox stats --json` on stdin and prints one line of
# KEY=VALUE for rule RULE (its first address, or the one named):
#   stat.py RULE [ADDRESS]
# Keys: breaker, consecutive, active, pending, every counter, until (1
# if set), first_byte_us (p50 of first-byte latency, 0: no sample).
import json
import sys

d = json.load(sys.stdin)
rule = sys.argv[1]
want = sys.argv[2] if len(sys.argv) > 2 else None
for r in d["rules"]:
    if r["name"] != rule:
        continue
    out = {"active": r["connections_active"], "pending": r["pending"]}
    for a in r["addresses"]:
        if want and a["address"] != want:
            continue
        out["breaker"] = a["breaker"]
        out["consecutive"] = a["consecutive_failures"]
        out["until"] = 1 if a["breaker_until"] else 0
        out.update(a["counters"])
        fb = a.get("latency_ms", {}).get("first_byte", {}).get("p50")
        out["first_byte_us"] = int((fb or 0) * 1000)
        break
    print(" ".join("%s=%s" % kv for kv in out.items()))
    sys.exit(0)
print("norule")
