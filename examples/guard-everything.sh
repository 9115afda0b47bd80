#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# guard-everything.ini at work: no rule names any destination, yet every
# TCP connection of every program gets [default]'s timeouts, a retry and
# a breaker of its own address. curl, wget and python3 fail against a
# service that refuses; its breaker opens, while a healthy service next
# to it keeps working. Exits 0 when that was seen, else 1.
set -u
# shellcheck source=examples/common.sh
. "$(dirname "$0")/common.sh"

ex_init guard-everything
ex_fixture http --body ok
GOOD=$FX_PORT
ex_fixture refuse
BAD=$FX_PORT
POLICY=$EX_DIR/guard-everything.ini
OK=0
FAST=0

# client NAME PORT: one program, under fusebox, fetching a page of PORT.
client()
{
	local name=$1 url=http://127.0.0.1:$2/ t0 rc ms what
	local -a cmd
	case $name in
	curl) cmd=(curl -sS -m 10 -o /dev/null "$url") ;;
	wget) cmd=(wget -q -t 1 -T 10 -O /dev/null "$url") ;;
	python3) cmd=("$PYTHON" -c "import urllib.request as u
u.urlopen('$url', timeout=10).read()") ;;
	esac
	t0=$(ex_ms)
	"$FUSEBOX" run -p "$POLICY" -- "${cmd[@]}" >/dev/null 2>"$EX_TMP/err"
	rc=$?
	ms=$(($(ex_ms) - t0))
	if [ "$rc" = 0 ]; then
		what="${C_GREEN}ok${C_OFF}"
		OK=$((OK + 1))
	elif [ "$name" = curl ] && grep -q 'after 0 ms' "$EX_TMP/err"; then
		what="${C_YELLOW}failed at once: the breaker is open${C_OFF}"
		FAST=$((FAST + 1))
	else
		what="${C_RED}failed (exit $rc)${C_OFF}"
	fi
	printf '  %-8s 127.0.0.1:%-6s %s (%d ms)\n' "$name" "$2" "$what" "$ms"
}

ex_step "guard-everything.ini: sane defaults for every destination"
ex_say "Only a [default] section: every TCP destination a program" \
	"connects to is guarded, each address with a breaker of its own:"
grep -v '^;' "$POLICY" | sed 's/^/    /'
ex_say "fusebox explain shows that no rule is needed:"
"$FUSEBOX" explain -p "$POLICY" "127.0.0.1:$BAD" 2>&1 | grep -e ' -> ' |
	sed 's/^/    /'

ex_step "Step 1: three different programs reach a healthy service."
for p in curl wget python3; do client "$p" "$GOOD"; done

ex_step "Step 2: the same programs call a service that refuses."
ex_say "Each refused connect is retried once (retries = 1); after 5" \
	"failures, from whichever programs, the breaker of" \
	"127.0.0.1:$BAD opens and the next calls fail at once:"
for p in curl wget python3 curl curl; do client "$p" "$BAD"; done

ex_step "Step 3: the healthy service is not affected."
for p in curl wget python3; do client "$p" "$GOOD"; done
ex_stats

GOOD_BREAKER=$(ex_field default breaker "127.0.0.1:$GOOD")
BAD_BREAKER=$(ex_field default breaker "127.0.0.1:$BAD")
RETRIES=$(ex_field default retries "127.0.0.1:$BAD")
REJECTED=$(ex_field default rejected_breaker "127.0.0.1:$BAD")

ex_step "What the example showed"
ex_check "curl, wget and python3 reached the healthy service ($OK of 6)" \
	[ "$OK" = 6 ]
ex_check "refused connects were retried ($RETRIES retries)" \
	[ "$RETRIES" -gt 0 ]
ex_check "the breaker of 127.0.0.1:$BAD opened ($BAD_BREAKER)" \
	[ "$BAD_BREAKER" = open ]
ex_check "later calls failed at once ($REJECTED rejected by the breaker)" \
	[ "$REJECTED" -gt 0 -a "$FAST" -gt 0 ]
ex_check "the breaker of 127.0.0.1:$GOOD stayed closed ($GOOD_BREAKER)" \
	[ "$GOOD_BREAKER" = closed ]
ex_done
