#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo of `make demo`: an order client (short-lived curl processes)
# calls a payment service that turns from healthy to hanging and back;
# fusebox times the calls out, opens the breaker, fails the next orders
# fast and closes the breaker once the service answers again.
# Runs in about 15 s; exits 0 when all of that was seen, else 1.
# FUSEBOX_BUILD: the build directory (default: build/ of this tree).
# FUSEBOX_DEMO_SEGMENT: the segment to use (default fusebox-demo-PID);
# it is removed at the end either way.
set -u
# shellcheck source=examples/common.sh
. "$(dirname "$0")/../common.sh"

PAUSE=${DEMO_PAUSE:-1}	# seconds between the steps, to read them
CLIENT_TIMEOUT=5	# the order client's own limit (curl -m)
ORDER=0
FAST=0	# orders that failed at once: rejected by the open breaker
SEEN_OPEN=0
SEEN_CLOSED=0
PAID_AFTER=0

ex_init demo

# The breaker state of the payment service, from `fusebox stats --json`
# (grep, not python: the demo needs no more than the build and curl).
breaker_state()
{
	"$FUSEBOX" stats --json 2>/dev/null |
		grep -oE '"breaker": *"[a-z_]+"' | head -n 1 |
		sed -E 's/.*"([a-z_]+)"$/\1/'
}

# order [--bare]: one order, a new curl process, under fusebox unless
# --bare; prints its number, result and time. Returns curl's status.
order()
{
	local t0 t1 rc ms what colour
	local -a cmd=("$FUSEBOX" run -p "$POLICY" --)
	[ "${1:-}" = --bare ] && cmd=()
	ORDER=$((ORDER + 1))
	t0=$(ex_ms)
	"${cmd[@]}" curl -sS -m "$CLIENT_TIMEOUT" -o /dev/null "$URL" \
		2>"$EX_TMP/err"
	rc=$?
	t1=$(ex_ms)
	ms=$((t1 - t0))
	case $rc in
	0)
		what=paid colour=$C_GREEN ;;
	7)
		what="failed fast: the breaker is open, fusebox refused it"
		colour=$C_YELLOW
		FAST=$((FAST + 1)) ;;
	28)
		what="failed: no answer, curl gave up after $CLIENT_TIMEOUT s"
		colour=$C_RED ;;
	56)
		what="failed: no answer in 500 ms, fusebox timed it out"
		colour=$C_RED ;;
	*)
		what="failed: curl exit $rc: $(head -n 1 "$EX_TMP/err")"
		colour=$C_RED ;;
	esac
	[ "${1:-}" = --bare ] && what="failed, no fusebox: ${what#failed: }"
	printf '  order %2d  %s%-54s%s %5d ms\n' "$ORDER" "$colour" "$what" \
		"$C_OFF" "$ms"
	return "$rc"
}

# payment MODE: the payment service on $PORT becomes MODE.
payment()
{
	[ -n "${PAY_PID:-}" ] && ex_stop "$PAY_PID"
	ex_fixture "$@" --port "$PORT"
	PAY_PID=$FX_PID
}

START=$(ex_ms)
ex_fixture http --body paid
PAY_PID=$FX_PID
PORT=$FX_PORT
URL=http://127.0.0.1:$PORT/pay
POLICY=$(ex_policy "$EX_DIR/demo/demo.ini" payment "$PORT")

ex_step "fusebox demo: an order client calls a payment service"
ex_say "The payment service listens on 127.0.0.1:$PORT. Every order is" \
	"a new, short-lived process:"
echo "    build/fusebox run -p examples/demo/demo.ini -- curl $URL"
ex_say "fusebox is preloaded into each curl and applies the policy" \
	"examples/demo/demo.ini (its match pointed at this port): connect" \
	"and response timeouts of 500 ms," \
	"a breaker that opens after 3 failures in a row and stays open" \
	"3 s. The curls share what they learn through the shared-memory" \
	"segment $FUSEBOX_SEGMENT; watch it live from another terminal:"
echo "    build/fusebox top -s $FUSEBOX_SEGMENT"
sleep "$PAUSE"

ex_step "Step 1: the payment service is healthy."
for _ in 1 2 3; do order; done
ex_say "fusebox stats: the breaker is closed, every call succeeded:"
ex_stats
[ "$(breaker_state)" = closed ] && SEEN_CLOSED=1
sleep "$PAUSE"

ex_step "Step 2: the payment service starts hanging."
payment hang
ex_say "It accepts connections and never answers. Without fusebox each" \
	"order waits until the client's own timeout, here $CLIENT_TIMEOUT s:"
order --bare
ex_say "With fusebox, each order gives up after 500 ms" \
	"(response_timeout). After 3 failures in a row the breaker opens," \
	"and the next orders fail at once, without touching the network:"
for _ in 1 2 3 4 5 6; do order; done
[ "$(breaker_state)" = open ] && SEEN_OPEN=1
ex_say "fusebox stats: the breaker is open; REJ counts the orders it" \
	"refused:"
ex_stats
sleep "$PAUSE"

ex_step "Step 3: the payment service recovers."
payment http --body paid
ex_say "The breaker stays open for 3 s (breaker_open), giving the" \
	"service room. Then fusebox lets one order through as a probe; it" \
	"succeeds and the breaker closes for every process at once:"
for _ in $(seq 20); do
	if order; then
		PAID_AFTER=1
		break
	fi
	sleep 0.4
done
[ "$(breaker_state)" = closed ] || SEEN_CLOSED=0

ex_step "Step 4: back to normal."
for _ in 1 2; do order; done
ex_say "fusebox stats: the breaker is closed again:"
ex_stats
[ "$(breaker_state)" = closed ] || SEEN_CLOSED=0

ex_step "What you just saw"
ex_say "Unmodified curl processes, each living a few milliseconds, shared" \
	"one circuit breaker. While the payment service hung, an order cost" \
	"500 ms instead of $CLIENT_TIMEOUT s, then a few milliseconds once" \
	"the breaker was open ($FAST orders failed fast), and the orders" \
	"went through again 3 s after the service came back."
ex_say "Next: examples/README.md (more scenarios), docs/fusebox.ini.5" \
	"(every setting), examples/kubernetes/ (a fleet). To watch a run" \
	"live, start this in a second terminal:"
echo "    build/fusebox top -s fusebox-demo"
ex_say "and then, in this one:"
echo "    FUSEBOX_DEMO_SEGMENT=fusebox-demo make demo"
echo
ex_check "the breaker opened" [ "$SEEN_OPEN" = 1 ]
ex_check "orders failed fast while it was open" [ "$FAST" -gt 0 ]
ex_check "an order was paid once the service was back" [ "$PAID_AFTER" = 1 ]
ex_check "the breaker closed" [ "$SEEN_CLOSED" = 1 ]
ELAPSED=$(($(ex_ms) - START))
printf '  the demo took %d.%d s\n' $((ELAPSED / 1000)) $((ELAPSED % 1000 / 100))
ex_done
