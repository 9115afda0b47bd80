# SPDX-License-Identifier: MIT
# Helpers the example scripts source: where the build is, fixture servers
# on 127.0.0.1, a segment and a temporary directory of their own that are
# removed on exit or Ctrl-C, timing in milliseconds, colour on a tty.
# bash only; the scripts run with `set -u`.

EX_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EX_SRC=$(cd "$EX_DIR/.." && pwd)
EX_BUILD=${FUSEBOX_BUILD:-$EX_SRC/build}
FUSEBOX=$EX_BUILD/fusebox
FIXTURE=$EX_BUILD/fixture
EX_PIDS=()
EX_TMP=
EX_FAILED=0

# Colour only when stdout is a terminal (and NO_COLOR is not set).
# shellcheck disable=SC2034 # the scripts that source this use them
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	C_BOLD=$'\e[1m' C_DIM=$'\e[2m' C_RED=$'\e[31m' C_GREEN=$'\e[32m'
	C_YELLOW=$'\e[33m' C_OFF=$'\e[0m'
else
	C_BOLD='' C_DIM='' C_RED='' C_GREEN='' C_YELLOW='' C_OFF=''
fi

# Stops the servers we started, removes our files and our segment.
ex_cleanup()
{
	local pid
	for pid in "${EX_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${EX_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	EX_PIDS=()
	[ -n "$EX_TMP" ] && rm -rf "$EX_TMP"
	[ -n "${FUSEBOX_SEGMENT:-}" ] && rm -f "/dev/shm/$FUSEBOX_SEGMENT"
}

# ex_init NAME: checks the build, makes a temporary directory, names the
# segment fusebox-NAME-PID (or $FUSEBOX_DEMO_SEGMENT) and sets the traps.
ex_init()
{
	local f
	for f in "$FUSEBOX" "$FIXTURE" "$EX_BUILD/libfusebox.so"; do
		if [ ! -x "$f" ] && [ ! -f "$f" ]; then
			echo "$0: $f is missing: run make first" \
			     "(or set FUSEBOX_BUILD)" >&2
			exit 2
		fi
	done
	unset LD_PRELOAD FUSEBOX_POLICY FUSEBOX_DISABLE
	export FUSEBOX_SEGMENT=${FUSEBOX_DEMO_SEGMENT:-fusebox-$1-$$}
	rm -f "/dev/shm/$FUSEBOX_SEGMENT"
	EX_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fusebox-$1.XXXXXX") || exit 2
	trap ex_cleanup EXIT
	trap 'echo; echo "interrupted" >&2; exit 130' INT
	trap 'exit 143' TERM
}

# ex_fixture MODE [ARG...]: starts build/fixture MODE ARGS on 127.0.0.1;
# sets FX_PID and FX_PORT. The fixture stops by itself after 60 s.
ex_fixture()
{
	local out=$EX_TMP/fixture.$RANDOM _
	: >"$out"
	"$FIXTURE" "$@" --lifetime 60 >"$out" &
	FX_PID=$!
	EX_PIDS+=("$FX_PID")
	FX_PORT=
	for _ in $(seq 100); do
		read -r FX_PORT <"$out"
		[ -n "$FX_PORT" ] && return 0
		sleep 0.05
	done
	echo "$0: fixture $1 did not start" >&2
	exit 2
}

# ex_stop PID: stops one server we started and waits for it.
ex_stop()
{
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# ex_policy SRC RULE PORT: copies policy SRC to $EX_TMP/policy.ini with
# the match of [RULE] pointed at 127.0.0.1:PORT (the fixture); prints
# the new path. Everything else in the policy is as shipped.
ex_policy()
{
	local out
	out=$EX_TMP/$(basename "$1")
	awk -v rule="[$2]" -v port="$3" '
		/^[ \t]*\[/ { sect = $1 }
		sect == rule && /^[ \t]*match[ \t]*=/ {
			if (!done) print "match = 127.0.0.1:" port
			done = 1; next
		}
		{ print }' "$1" >"$out"
	echo "$out"
}

# Milliseconds on the wall clock.
ex_ms()
{
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# Narration: a step heading, a plain line, a result line.
ex_step()
{
	printf '\n%s%s%s\n' "$C_BOLD" "$*" "$C_OFF"
}

ex_say()
{
	printf '%s\n' "$*" | fold -s -w 76 | sed 's/ *$//; s/^/  /'
}

# ex_stats: the `fusebox stats` table, indented.
ex_stats()
{
	printf '%s' "$C_DIM"
	"$FUSEBOX" stats 2>&1 | sed 's/^/    | /; s/ *$//'
	printf '%s' "$C_OFF"
}

# ex_json: `fusebox stats --json` of our segment.
ex_json()
{
	"$FUSEBOX" stats --json
}

# ex_check WHAT CONDITION...: prints "ok" or "FAILED" for one claim the
# example makes and remembers a failure for the exit status.
ex_check()
{
	local what=$1
	shift
	if "$@"; then
		printf '  %sok%s      %s\n' "$C_GREEN" "$C_OFF" "$what"
	else
		printf '  %sFAILED%s  %s\n' "$C_RED" "$C_OFF" "$what"
		EX_FAILED=1
	fi
}

# ex_done: the exit status of the example, with a last line to say so.
ex_done()
{
	echo
	if [ "$EX_FAILED" = 0 ]; then
		echo "${C_GREEN}$(basename "$0"): the behaviour was shown.${C_OFF}"
		exit 0
	fi
	echo "${C_RED}$(basename "$0"): the behaviour was NOT shown.${C_OFF}"
	exit 1
}

# The python3 to run (Debian's when present).
if [ -x /usr/bin/python3 ]; then
	PYTHON=/usr/bin/python3
else
	PYTHON=python3
fi

# ex_field RULE KEY [ADDRESS]: one figure of `fusebox stats --json`:
# a counter, "breaker", "active", "pending", summed over the rule's
# addresses unless ADDRESS names one. Prints -1 when there is none.
ex_field()
{
	ex_json | "$PYTHON" -c '
import json, sys
rule, key = sys.argv[1], sys.argv[2]
addr = sys.argv[3] if len(sys.argv) > 3 else None
doc = json.load(sys.stdin)
for r in doc["rules"]:
    if r["name"] != rule:
        continue
    if key == "active":
        print(r["connections_active"]); sys.exit()
    if key == "pending":
        print(r["pending"]); sys.exit()
    addrs = [a for a in r["addresses"] if addr in (None, a["address"])]
    if key == "breaker":
        print(" ".join(a["breaker"] for a in addrs) or -1); sys.exit()
    print(sum(a["counters"].get(key, 0) for a in addrs) if addrs else -1)
    sys.exit()
print(-1)' "$@"
}
