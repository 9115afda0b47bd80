#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# payments.ini at work: a payment service on 127.0.0.1 that is healthy,
# then flooded (max_connections = 50 lets 50 connections in, all
# processes together), then down (refused connects are retried twice,
# five failures open the breaker, later orders fail at once).
# Exits 0 when all of that was seen, else 1. A few seconds.
set -u
# shellcheck source=examples/common.sh
. "$(dirname "$0")/common.sh"

ex_init payments
ex_fixture http --body paid
PAY_PID=$FX_PID
PORT=$FX_PORT
URL=http://127.0.0.1:$PORT/pay
POLICY=$(ex_policy "$EX_DIR/payments.ini" payments "$PORT")
PAID=0
FAST=0

# order: one order, a new curl under fusebox; prints result and time.
order()
{
	local t0 rc ms what
	t0=$(ex_ms)
	"$FUSEBOX" run -p "$POLICY" -- curl -sS -m 10 -o /dev/null "$URL" \
		2>"$EX_TMP/err"
	rc=$?
	ms=$(($(ex_ms) - t0))
	case $rc in
	0) what="${C_GREEN}paid${C_OFF}"; PAID=$((PAID + 1)) ;;
	7) if grep -q 'after 0 ms' "$EX_TMP/err"; then
		what="${C_YELLOW}failed at once: the breaker is open${C_OFF}"
		FAST=$((FAST + 1))
	   else
		what="${C_RED}failed: connection refused, retried${C_OFF}"
	   fi ;;
	*) what="${C_RED}failed: curl exit $rc${C_OFF}" ;;
	esac
	printf '  order  %s (%d ms)\n' "$what" "$ms"
}

ex_step "payments.ini: breaker, retries and a connection limit"
ex_say "The rule [payments] of examples/payments.ini, with its match" \
	"pointed at a payment service on 127.0.0.1:$PORT:"
sed -n '/^\[payments\]/,$p' "$POLICY" | sed 's/^/    /'

ex_step "Step 1: the payment service is healthy."
for i in 1 2 3; do order; done

ex_step "Step 2: a burst: 5 processes open 11 connections each."
ex_say "max_connections = 50 counts the connections of every process" \
	"together: 50 get in, the other 5 are refused at once instead of" \
	"piling onto the service."
HOLDERS=()
for i in 1 2 3 4 5; do
	: >"$EX_TMP/hold.$i"
	"$FUSEBOX" run -p "$POLICY" -- "$PYTHON" "$EX_DIR/tools/hold.py" \
		"$PORT" 11 "$EX_TMP/release" >"$EX_TMP/hold.$i" 2>&1 &
	EX_PIDS+=($!)
	HOLDERS+=($!)
done
for i in $(seq 200); do
	[ "$(cat "$EX_TMP"/hold.* | grep -c connected)" = 5 ] && break
	sleep 0.05
done
CONNECTED=0 REFUSED=0
for i in 1 2 3 4 5; do
	read -r _ c _ r _ <"$EX_TMP/hold.$i"
	printf '  process %d: %2d connected, %d refused\n' "$i" "${c:-0}" \
		"${r:-0}"
	CONNECTED=$((CONNECTED + ${c:-0}))
	REFUSED=$((REFUSED + ${r:-0}))
done
ACTIVE=$(ex_field payments active)
ex_say "fusebox stats while they hold them (ACTIVE $ACTIVE of MAX 50):"
ex_stats
touch "$EX_TMP/release"
wait "${HOLDERS[@]}"

ex_step "Step 3: the payment service goes down."
ex_stop "$PAY_PID"
ex_say "Its port now refuses connections. fusebox retries each refused" \
	"connect twice (retries = 2, with backoff); five failures open the" \
	"breaker, and the orders after that fail at once:"
for i in 1 2 3 4 5; do order; done
ex_stats

RETRIES=$(ex_field payments retries)
BREAKER=$(ex_field payments breaker)
REJECTED=$(ex_field payments rejected_breaker)

ex_step "What the example showed"
ex_check "3 orders paid while the service was healthy" [ "$PAID" = 3 ]
ex_check "the burst: 50 connections in ($CONNECTED), 5 refused ($REFUSED)" \
	[ "$CONNECTED/$REFUSED" = 50/5 ]
ex_check "fusebox counted 50 active connections at once ($ACTIVE)" \
	[ "$ACTIVE" = 50 ]
ex_check "refused connects were retried ($RETRIES retries)" \
	[ "$RETRIES" -gt 0 ]
ex_check "the breaker opened ($BREAKER)" [ "$BREAKER" = open ]
ex_check "later orders failed at once ($REJECTED rejected by the breaker)" \
	[ "$REJECTED" -gt 0 -a "$FAST" -gt 0 ]
ex_done
