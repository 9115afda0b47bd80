#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# chaos.ini at work: one curl makes 50 requests to an order service on
# 127.0.0.1, each on a new connection; fusebox refuses about 20% of the
# connects and delays about 30% by 200 ms. The service itself is
# healthy: it sees only the connects that fusebox let through, and
# `fusebox stats` counts only those as calls. Exits 0 when aborted and
# delayed connects were both seen and the counts agree, else 1.
set -u
# shellcheck source=examples/common.sh
. "$(dirname "$0")/common.sh"

N=50
ex_init chaos
: >"$EX_TMP/accepts"
ex_fixture count --log "$EX_TMP/accepts"
PORT=$FX_PORT
POLICY=$(ex_policy "$EX_DIR/chaos.ini" orders "$PORT")

ex_step "chaos.ini: fault injection"
ex_say "The rule [orders] of examples/chaos.ini, with its match pointed" \
	"at a healthy order service on 127.0.0.1:$PORT:"
sed -n '/^\[orders\]/,$p' "$POLICY" | sed 's/^/    /'

ex_step "One curl, $N requests, a new connection each"
ex_say "Each mark is a request: '.' answered, 'd' answered after a" \
	"delayed connect, 'X' refused by fusebox before it left the" \
	"process."
args=()
for i in $(seq "$N"); do
	args+=(-o /dev/null "http://127.0.0.1:$PORT/order/$i")
done
"$FUSEBOX" run -p "$POLICY" -- curl -s -m 5 -H 'Connection: close' \
	-w '%{exitcode} %{http_code} %{time_connect}\n' "${args[@]}" \
	>"$EX_TMP/results"
OK=0 DELAYED=0 ABORTED=0 OTHER=0 MARKS=
while read -r rc code connect; do
	if [ "$rc" = 7 ]; then
		ABORTED=$((ABORTED + 1)) MARKS+=X
	elif [ "$rc/$code" != 0/200 ]; then
		OTHER=$((OTHER + 1)) MARKS+='?'
	elif [ "$(awk -v t="$connect" 'BEGIN { print int(t * 1000) }')" \
		-ge 150 ]; then
		OK=$((OK + 1)) DELAYED=$((DELAYED + 1)) MARKS+=d
	else
		OK=$((OK + 1)) MARKS+=.
	fi
done <"$EX_TMP/results"
printf '    %s\n' "$(echo "$MARKS" | sed -E 's/(.{10})/\1 /g; s/ $//')" |
	sed -E "s/X/${C_RED}X${C_OFF}/g; s/d/${C_YELLOW}d${C_OFF}/g"
ACCEPTED=$(grep -c "^accept$" "$EX_TMP/accepts")
CALLS=$(ex_field orders calls)
ex_say "$OK answered ($DELAYED of them after a 200 ms delay)," \
	"$ABORTED refused by fault injection. The service accepted" \
	"$ACCEPTED connections; fusebox stats counts $CALLS calls: the" \
	"injected refusals never reached the network."
ex_stats

ex_step "What the example showed"
ex_check "fault_abort refused some connects ($ABORTED of $N)" \
	[ "$ABORTED" -gt 0 -a "$ABORTED" -lt "$N" ]
ex_check "fault_delay held some connects 200 ms ($DELAYED)" \
	[ "$DELAYED" -gt 0 ]
ex_check "every other request was answered ($OK + $ABORTED = $N)" \
	[ "$((OK + ABORTED))" = "$N" -a "$OTHER" = 0 ]
ex_check "the service saw only the connects let through ($ACCEPTED)" \
	[ "$ACCEPTED" = "$OK" ]
ex_check "fusebox stats counts them as the calls ($CALLS)" \
	[ "$CALLS" = "$OK" ]
ex_done
