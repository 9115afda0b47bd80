#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# db-pool.ini at work: 12 redis-cli processes start at once, each a
# worker that blocks 1.5 s on BLPOP. max_connections = 4 lets 4 talk to
# the server at a time, max_pending = 4 more wait in line, and the other
# 4 are refused at once. The server (examples/tools/resp-server.py, a
# stand-in for Redis) reports the most connections it ever had at once.
# Exits 0 when the server never saw more than 4, some workers waited and
# got in, and some were refused; else 1.
set -u
# shellcheck source=examples/common.sh
. "$(dirname "$0")/common.sh"

N=12
HOLD=1.5
ex_init db-pool
: >"$EX_TMP/port"
"$PYTHON" "$EX_DIR/tools/resp-server.py" --lifetime 60 >"$EX_TMP/port" &
EX_PIDS+=($!)
for i in $(seq 100); do
	read -r PORT <"$EX_TMP/port" && break
	sleep 0.05
done
if [ -z "${PORT:-}" ]; then
	echo "$0: resp-server.py did not start" >&2
	exit 2
fi
POLICY=$(ex_policy "$EX_DIR/db-pool.ini" redis "$PORT")

ex_step "db-pool.ini: a connection pool for redis-cli"
ex_say "The rule [redis] of examples/db-pool.ini, with its match pointed" \
	"at a Redis stand-in on 127.0.0.1:$PORT:"
sed -n '/^\[redis\]/,$p' "$POLICY" | grep -v '^;' | sed 's/^/    /'
echo "    server: $(redis-cli -p "$PORT" ping)"

ex_step "$N workers start at once: redis-cli BLPOP jobs $HOLD"
WORKERS=()
T0=$(ex_ms)
for i in $(seq "$N"); do
	(
		"$FUSEBOX" run -p "$POLICY" -- redis-cli -p "$PORT" \
			BLPOP jobs "$HOLD" >/dev/null 2>"$EX_TMP/err.$i"
		echo "$? $(($(ex_ms) - T0))" >"$EX_TMP/worker.$i"
	) &
	WORKERS+=($!)
	EX_PIDS+=($!)
done
# a look while the first ones hold their connections
for i in $(seq 40); do
	[ "$(ex_field redis pending)" -gt 0 ] 2>/dev/null && break
	sleep 0.05
done
ex_say "fusebox stats a moment later: ACTIVE connections, PENDING in" \
	"line:"
ex_stats
wait "${WORKERS[@]}"

SERVED=0 REFUSED=0 OTHER=0
for i in $(seq "$N"); do
	read -r rc ms <"$EX_TMP/worker.$i"
	if [ "$rc" = 0 ]; then
		what="${C_GREEN}served${C_OFF}"
		SERVED=$((SERVED + 1))
	elif grep -q 'Connection refused' "$EX_TMP/err.$i"; then
		what="${C_YELLOW}refused at once: pool and line full${C_OFF}"
		REFUSED=$((REFUSED + 1))
	else
		what="${C_RED}failed: $(head -n 1 "$EX_TMP/err.$i")${C_OFF}"
		OTHER=$((OTHER + 1))
	fi
	printf '  worker %2d  %s, done after %d ms\n' "$i" "$what" "$ms"
done
PEAK=$(redis-cli -p "$PORT" info | tr -d '\r' |
	sed -n 's/^peak_clients://p')
REJECTED=$(ex_field redis rejected_limit)
ex_say "Workers served one after the other finished in a later turn: they" \
	"waited in line for a connection. The server never had more than" \
	"$PEAK clients at once."
ex_stats

ex_step "What the example showed"
ex_check "the server never had more than 4 connections ($PEAK)" \
	[ "${PEAK:-99}" -le 4 ]
ex_check "more workers were served than fit at once ($SERVED)" \
	[ "$SERVED" -gt 4 ]
# redis-cli connects a second time when the first connect fails
ex_check "the others were refused at once ($REFUSED workers, $REJECTED connects)" \
	[ "$REFUSED" -gt 0 -a "$REJECTED" -ge "$REFUSED" ]
ex_check "every worker was served or refused ($SERVED + $REFUSED)" \
	[ "$((SERVED + REFUSED))" = "$N" -a "$OTHER" = 0 ]
ex_done
