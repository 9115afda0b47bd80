#!/bin/sh
# SPDX-License-Identifier: MIT
# How the shim's cost grows with the size of what it holds: one
# connect+close of a guarded TCP connection to a listener on 127/8 under
# policies of 1 to 10,000 rules, with 1 to 10,000 destinations live in
# the segment, from 1 to 64 threads and 8 processes at once; a policy
# reload in a process holding 10,000 open guarded connections; the
# deadline thread with 10,000 connections open.  Instructions are
# counted by callgrind as bench/callgrind.sh does (each workload with N1
# and N2 iterations, the difference divided by N2-N1: stable on a busy
# machine); wall clock (median of 3) where callgrind cannot tell
# (threads, stalls).  Prints a table and writes it to
# BUILD_DIR/bench/scale.md; about 90 s on 2 CPUs.
#   bench/scale.sh BUILD_DIR        (make bench-scale)
# SCALE_SECTIONS="1 5" runs only those sections.
set -eu
B=${1:-build}
H="$B/bench-scale"
LIB=$(realpath "$B/libfusebox.so")
N1=500 # callgrind iterations: two runs, the difference is N2-N1
N2=3000
NW=5000 # wall-clock iterations of one run
tmp=$(mktemp -d)
seg="fusebox-scale-$$"
out="$B/bench/scale.md"
serve_pid=
cleanup() {
	[ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
	rm -rf "$tmp"
	rm -f /dev/shm/"$seg"-*
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$B/bench"
started=$(date +%s)
port=$("$H" port)

# --- helpers ------------------------------------------------------------

# want N: section N is to run
want() {
	case " ${SCALE_SECTIONS:-1 2 3 4 5} " in *" $1 "*) return 0 ;; esac
	return 1
}

# count POLICY SEGMENT ARGS...: instructions of one run of bench-scale
# (no POLICY: without the shim)
count() {
	pol=$1 sg=$2
	shift 2
	if [ -n "$pol" ]; then
		env LD_PRELOAD="$LIB" FUSEBOX_POLICY="$pol" \
		    FUSEBOX_SEGMENT="$sg" FUSEBOX_LOG=error \
		    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		    "$H" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
	else
		valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		    "$H" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
	fi
}

# per POLICY SEGMENT K [FIRST [NAME]]: instructions per connect+close,
# the connects going round K destinations from dest(FIRST) (bench-scale
# connect)
per() {
	pol=$1 sg=$2
	shift 2
	a=$(count "$pol" "$sg" connect "$port" $N1 "$@")
	b=$(count "$pol" "$sg" connect "$port" $N2 "$@")
	echo $(((b - a) / (N2 - N1)))
}

# run POLICY SEGMENT ARGS...: bench-scale under the shim (no POLICY:
# without)
run() {
	pol=$1 sg=$2
	shift 2
	if [ -n "$pol" ]; then
		env LD_PRELOAD="$LIB" FUSEBOX_POLICY="$pol" \
		    FUSEBOX_SEGMENT="$sg" FUSEBOX_LOG=error "$H" "$@"
	else
		"$H" "$@"
	fi
}

# field NAME LINE: the number after the word NAME in LINE
field() {
	printf '%s\n' "$2" | awk -v f="$1" '{ for (i = 1; i < NF; i++)
		if ($i == f) print $(i + 1) }'
}

# wall POLICY SEGMENT K [FIRST [NAME]]: µs per connect+close, natively,
# the median of 3 runs
wall() {
	pol=$1 sg=$2
	shift 2
	for i in 1 2 3; do
		field ns_per_connect "$(run "$pol" "$sg" connect "$port" $NW "$@")"
	done | sort -n | sed -n 2p | awk '{ printf "%.1f", $1 / 1000 }'
}

# serve [hold]: starts the server of sections 3-5 (no shim) on the port
serve() {
	rm -f "$tmp/serve.out"
	"$H" serve "$port" 120 "$@" > "$tmp/serve.out" &
	serve_pid=$!
	i=0
	while [ ! -s "$tmp/serve.out" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -s "$tmp/serve.out" ] || { echo "scale.sh: no server" >&2; exit 1; }
}

unserve() {
	kill "$serve_pid" 2>/dev/null || true
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=
}

# genpol RULES AT MODE HEADER [EXTRA]: a policy of RULES rules, the
# measured one, [target], at position AT (0-based), the others matching
# other destinations.  HEADER opens the file ([global], [default]);
# EXTRA, if any, is added to [target].  MODE:
#   mix     others in turn: 10.x.y.z:80 | 127.1.0.1-2 at another port |
#           host-N.example:443 | *.zone-N.example | 11.x.y.0/24;
#           [target]: 127.1.0.1 and 127.1.0.2 at the port (exact)
#   nosame  the same without the rules on 127.1.0.1-2
#   globs   others: svc-*.zone-N.example (a glob not of the *LITERAL
#           kind); [target]: 127.0.0.0/8 at the port (CIDR)
#   any     others: *:PORT_N (a wildcard at another port); [target]:
#           *:the port
genpol() {
	awk -v n="$1" -v at="$2" -v mode="$3" -v head="$4" -v port="$port" \
	    -v extra="${5:-}" 'BEGIN {
		printf "%s", head
		kinds = mode == "mix" ? 5 : 4
		for (i = 0; i < n; i++) {
			if (i == at) {
				printf "[target]\n"
				if (mode == "globs")
					printf "match = 127.0.0.0/8:%d\n", port
				else if (mode == "any")
					printf "match = *:%d\n", port
				else
					printf "match = 127.1.0.1:%d 127.1.0.2:%d\n", port, port
				printf "connect_timeout = 5s\nbreaker = on\n%s", extra
				continue
			}
			printf "[r%d]\n", i
			k = i % kinds
			if (mode != "mix" && k >= 1)
				k++
			if (mode == "globs")
				printf "match = svc-*.zone-%d.example\n", i
			else if (mode == "any")
				printf "match = *:%d\n", 1024 + i
			else if (k == 0)
				printf "match = 10.%d.%d.%d:80\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256
			else if (k == 1)
				printf "match = 127.1.0.%d:%d\n", 1 + int(i / 5) % 2, 1024 + i
			else if (k == 2)
				printf "match = host-%d.example:443\n", i
			else if (k == 3)
				printf "match = *.zone-%d.example\n", i
			else
				printf "match = 11.%d.%d.0/24\n", int(i / 256) % 256, i % 256
			printf "connect_timeout = 2s\n"
		}
	}'
}

# table rows, to stdout and to the markdown file
say() {
	printf '%s\n' "$*"
	printf '%s\n' "$*" >> "$out"
}

: > "$out"
say "# fusebox: how the per-connect cost scales"
say ""
say "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -sr), $(nproc) CPUs, load" \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the start.  Instructions:" \
    "callgrind, per connect+close (socket, connect, the listener's" \
    "accept and close, close) over $((N2 - N1)) iterations; \"added\"" \
    "is over the same loop without the shim.  Wall: median of 3 runs" \
    "of $NW iterations, µs per connect+close, with fusebox (without:" \
    "first row)."
say ""

# the same loops without the shim: 1 destination, 2 alternating
base1=$(per "" "" 1)
base2=$(per "" "" 2)

# --- 1. rules -----------------------------------------------------------
if want 1; then
# One destination: the thread's last match is reused (shim/state.c
# state_classify), so the policy is not searched; two alternating
# destinations: every connect is matched and its segment slot found.
head='[global]
reload = 0
'
say "## 1. Policy size"
say ""
say "| policy | instr, 1 destination (added) | instr, 2 alternating (added) | wall µs, 2 alternating |"
say "|---|---:|---:|---:|"
say "| no fusebox | $base1 | $base2 | $(wall "" "" 2) |"
rules_row() { # LABEL RULES AT MODE [NAME]
	genpol "$2" "$3" "$4" "$head" > "$tmp/rules.ini"
	sg="$seg-rules"
	rm -f "/dev/shm/$sg"
	one=$(per "$tmp/rules.ini" "$sg" 1 0 ${5:+"$5"})
	two=$(per "$tmp/rules.ini" "$sg" 2 0 ${5:+"$5"})
	w=$(wall "$tmp/rules.ini" "$sg" 2 0 ${5:+"$5"})
	say "| $1 | $one (+$((one - base1))) | $two (+$((two - base2))) | $w |"
}
rules_row "1 rule" 1 0 mix
rules_row "100 rules, target last" 100 99 mix
rules_row "100 rules, target in the middle" 100 50 mix
rules_row "10,000 rules, target last" 10000 9999 mix
rules_row "10,000 rules, target in the middle" 10000 5000 mix
rules_row "10,000 rules, last, none on the target's addresses" \
    10000 9999 nosame
rules_row "100 rules: globs svc-*.zone-N.example; target CIDR, last" \
    100 99 globs localhost
rules_row "10,000 rules: globs svc-*.zone-N.example; target CIDR, last" \
    10000 9999 globs localhost
rules_row "100 rules: *:PORT_N; target *:port, last" 100 99 any
rules_row "10,000 rules: *:PORT_N; target *:port, last" 10000 9999 any
say ""
say "Destinations: 127.1.0.1 and 127.1.0.2 at the listener's port; [target] matches both.  Rows \"target last\" and \"in the middle\": the other rules take in turn 10.x.y.z:80, 127.1.0.1-2 at another port, host-N.example:443, *.zone-N.example, 11.x.y.0/24, and [target] matches by exact address.  Glob rows: the first destination is 127.0.0.1, which the program resolved as localhost (so the globs are tried on that name), [target] is 127.0.0.0/8 at the port.  Wildcard rows: [target] is *:port, the others *:1024+N."
say ""

fi
# --- 2. live addresses --------------------------------------------------
if want 2; then
say "## 2. Destinations live in the segment"
say ""
say "| addresses live | instr, 1 destination (added) | instr, round the live ones (added) | wall µs, round the live ones |"
say "|---|---:|---:|---:|"
printf '[global]\nreload = 0\nsegment_addresses = 16384\n[default]\nconnect_timeout = 5s\nbreaker = on\n' \
	> "$tmp/addrs.ini"
printf '[global]\nreload = 0\n[default]\nconnect_timeout = 5s\nbreaker = on\n' \
	> "$tmp/addrs-full.ini"
addrs_row() { # LABEL LIVE POLICY FIRST: the segment filled with LIVE
	sg="$seg-addrs"
	rm -f "/dev/shm/$sg"
	run "$3" "$sg" connect "$port" "$2" "$2" > /dev/null
	one=$(per "$3" "$sg" 1 "$4")
	rr=$(per "$3" "$sg" "$2" "$4")
	w=$(wall "$3" "$sg" "$2" "$4")
	say "| $1 | $one (+$((one - base1))) | $rr (+$((rr - base1))) | $w |"
}
addrs_row "1" 1 "$tmp/addrs.ini" 0
addrs_row "1,000" 1000 "$tmp/addrs.ini" 0
addrs_row "10,000" 10000 "$tmp/addrs.ini" 0
addrs_row "10,000 tried, table full (4,096), destinations not in it" \
    10000 "$tmp/addrs-full.ini" 5000
say ""
say "The segment is filled first by one process that connects once to each of N addresses 127.1.x.y ([default] guards them; segment_addresses = 16384).  The last row keeps the default segment_addresses (4,096): the table is full and the destinations measured are among those that did not fit.  \"round the live ones\": connect i goes to address i mod N."
say ""

fi
# --- 3. threads and processes -------------------------------------------
if want 3; then
# The server (no shim) accepts and closes; the clients close with a
# reset (SO_LINGER 0) so that no port is left in TIME_WAIT; at most
# 2,048 connects a run, which the listener's backlog holds even if the
# server gets no CPU.
printf '[global]\nreload = 0\n[default]\nconnect_timeout = 5s\nbreaker = on\nmax_connections = 1000\nrate = 1000000/s\nretries = 2\n' \
	> "$tmp/threads.ini"
serve
say "## 3. Threads and processes (wall clock, median of 3)"
say ""
say "| who | bare µs/connect | fusebox µs/connect | bare median latency µs | fusebox median latency µs | bare p99 µs | fusebox p99 µs |"
say "|---|---:|---:|---:|---:|---:|---:|"
# clients POLICY PROCESSES THREADS N: µs per connect (first start to
# last end over all connects), the median latency (of the processes'
# medians), the highest p99
clients() {
	for p in $(seq "$2"); do
		run "$1" "$seg-threads" threads "$port" "$3" "$4" \
		    > "$tmp/proc.$p" &
	done
	wait # a subshell: its only children are these
	m=$(for p in $(seq "$2"); do field median_ns "$(cat "$tmp/proc.$p")"; done |
	    sort -n | sed -n "$((($2 + 1) / 2))p")
	cat "$tmp"/proc.* | awk -v m="$m" '{
		for (i = 1; i < NF; i++) v[$i] = $(i + 1)
		if (NR == 1 || v["first_ns"] < f) f = v["first_ns"]
		if (v["last_ns"] > l) l = v["last_ns"]
		n += v["connects"]; if (v["p99_ns"] > p) p = v["p99_ns"] }
		END { printf "%.1f %.1f %.1f\n", (l - f) / n / 1000, m / 1000,
		    p / 1000 }'
	rm -f "$tmp"/proc.*
}
# med3 CMD...: of 3 runs, the one whose first field is the median
med3() {
	for i in 1 2 3; do "$@"; done | sort -n | sed -n 2p
}
threads_row() { # LABEL PROCESSES THREADS N
	b=$(med3 clients "" "$2" "$3" "$4")
	f=$(med3 clients "$tmp/threads.ini" "$2" "$3" "$4")
	set -- "$1" $b $f
	say "| $1 | $2 | $5 | $3 | $6 | $4 | $7 |"
}
threads_row "1 thread" 1 1 2000
threads_row "8 threads, 1 process" 1 8 256
threads_row "64 threads, 1 process" 1 64 32
threads_row "8 processes, 1 thread each" 8 1 256
unserve
say ""
say "µs/connect: from the first connect's start to the last one's end, over all connects (the inverse of the throughput); latency: one connect+close as its thread sees it.  Policy: breaker, max_connections, rate and retries on [default].  Past 2 threads the p99 is the scheduler's (2 CPUs): compare bare and fusebox."
say ""

fi
# --- 4. reload under 10,000 open guarded connections --------------------
if want 4; then
say "## 4. Policy reload in a process holding 10,000 open guarded connections"
say ""
rhead='[global]
reload = 100ms
[default]
connect_timeout = 5s
response_timeout = 5s
idle_timeout = 10m
breaker = on
'
printf '%s' "$rhead" > "$tmp/live.ini"
printf '%s' "$rhead" | sed 's/connect_timeout = 5s/connect_timeout = 4s/' \
	> "$tmp/small-changed"
genpol 10000 9999 mix "$rhead" > "$tmp/to-10000-rules"
genpol 10000 9999 mix "$rhead" 'retries = 1
' > "$tmp/10000-rules-changed"
genpol 10000 9999 mix "$rhead" > "$tmp/10000-rules-again"
# the loader alone, without the shim
l_small=$(field median_load_ns "$("$H" load "$tmp/live.ini" 9)")
l_big=$(field median_load_ns "$("$H" load "$tmp/to-10000-rules" 9)")
# reload HELD: the reload workload holding HELD connections, into
# $tmp/reload.HELD
reload() {
	serve hold
	rm -f "/dev/shm/$seg-reload"
	printf '%s' "$rhead" > "$tmp/live.ini"
	env LD_PRELOAD="$LIB" FUSEBOX_POLICY="$tmp/live.ini" \
	    FUSEBOX_SEGMENT="$seg-reload" FUSEBOX_LOG=info "$H" reload \
	    "$port" "$1" 100 "$tmp/live.ini" "$tmp/small-changed" \
	    "$tmp/to-10000-rules" "$tmp/10000-rules-changed" \
	    > "$tmp/reload.$1" 2> "$tmp/reload.err" || {
		cat "$tmp/reload.err" >&2
		exit 1
	}
	unserve
}
reload 10000
reload 0
held_ms=$(awk '/^held/ { print $4 }' "$tmp/reload.10000")
solo_med=$(field median_connect_us "$(grep '^solo median' "$tmp/reload.10000")")
say "10,000 guarded connections opened in $held_ms ms and held (their far ends in another process).  The shim reloads at the first connect 100 ms or more after its last check that sees the file changed (reload = 100ms; shim/state.c maybe_reload, load).  \"alone\": the connect that reloads, no other thread running, median of 3 (a connect takes $solo_med µs otherwise).  \"under load\": 2 threads connect+close in a loop and 2 send+recv one byte on a connection of their own, every call timed; the reloading connect (the one that used the most CPU time), then the longest of the other calls from the change to 300 ms after the reload, against the longest in the quiet second before.  The fourth column: the same in a process that holds no connection.  CPU: the thread's own CPU time in the call (CLOCK_THREAD_CPUTIME_ID), which preemption does not inflate."
say ""
say "| reload | policy_load() alone ms | reloading connect, alone: wall ms (CPU ms) | the same, 0 connections held | reloading connect under load: wall ms (CPU ms) | longest other connect ms (quiet) | longest send µs (quiet) | longest recv µs (quiet) |"
say "|---|---:|---:|---:|---:|---:|---:|---:|"
ms() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%.2f", x / d }'; }
reload_row() { # LABEL PHASE LOAD_NS
	solo=$(grep "^solo $2 " "$tmp/reload.10000" || true)
	solo0=$(grep "^solo $2 " "$tmp/reload.0" || true)
	line=$(grep "^phase $2 " "$tmp/reload.10000" || true)
	if [ "$(field reloaded "$solo")" != 1 ] ||
	    [ "$(field reloaded "$line")" != 1 ]; then
		say "| $1 | $(ms "$3" 1000000) | no reload seen | | | | | |"
		return
	fi
	say "| $1 | $(ms "$3" 1000000) |" \
	    "$(ms "$(field connect_us "$solo")" 1000) ($(ms "$(field cpu_us "$solo")" 1000)) |" \
	    "$(ms "$(field connect_us "$solo0")" 1000) ($(ms "$(field cpu_us "$solo0")" 1000)) |" \
	    "$(ms "$(field reload_us "$line")" 1000) ($(ms "$(field reload_cpu_us "$line")" 1000)) |" \
	    "$(ms "$(field busy_max_connect_us "$line")" 1000) ($(ms "$(field quiet_max_connect_us "$line")" 1000)) |" \
	    "$(field busy_max_send_us "$line") ($(field quiet_max_send_us "$line")) |" \
	    "$(field busy_max_recv_us "$line") ($(field quiet_max_recv_us "$line")) |"
}
reload_row "small → small (connect_timeout changed)" small-changed "$l_small"
reload_row "small → 10,000 rules" to-10000-rules "$l_big"
reload_row "10,000 → 10,000 rules (one rule changed)" 10000-rules-changed \
    "$l_big"
say ""
say "The maxima under load include the scheduler's preemption on this shared 2-CPU machine: compare each with its quiet one.  A reload parses the file outside the policy lock, on the deadline thread when it runs (it looks 20 ms before a connect would), else on the thread whose connect found it changed; the other threads go on with the old policy until the new one is in."
say ""

fi
# --- 5. the deadline thread with many connections open -----------------
if want 5; then
say "## 5. Deadline thread: 1,000 idle_timeout deadlines firing beside N open connections (median of 3)"
say ""
say "| connections open beside | fired | deadline thread CPU ms | per deadline µs |"
say "|---|---:|---:|---:|"
printf '[global]\nreload = 0\n[default]\nidle_timeout = 10m\n[fire]\nmatch = 127.0.0.2\nidle_timeout = 1500ms\n' \
	> "$tmp/idle.ini"
# idle_row BACKGROUND: the median of 3 runs
idle_row() {
	for i in 1 2 3; do
		serve hold
		rm -f "/dev/shm/$seg-idle"
		line=$(run "$tmp/idle.ini" "$seg-idle" idle "$port" "$1" 1000 \
		    1000 1500)
		unserve
		# CPU ms, fired, background aborted
		printf '%s\n' "$line" | awk '{ print $10, $8, $4 }'
	done | sort -n | sed -n 2p > "$tmp/idle.med"
	read -r cpu fired bg < "$tmp/idle.med"
	say "| $1 ($bg aborted) | $fired | $cpu |" \
	    "$(awk -v c="$cpu" -v n="$fired" 'BEGIN { printf "%.0f", c * 1000 / n }') |"
}
idle_row 0
idle_row 1000
idle_row 10000
say ""
say "N connections to 127.0.0.1 with idle_timeout = 10m (they never fire) opened first, then 1,000 to 127.0.0.2 evenly over 1 s, each aborted by idle_timeout 1.5 s after it opened; CPU time of the shim's deadline thread meanwhile (/proc schedstat)."
say ""
fi
say "Took $(($(date +%s) - started)) s."
echo "written to $out"
