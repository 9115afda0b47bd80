#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions the shim adds per call, counted by callgrind (stable on a
# noisy machine, unlike time).  Each workload runs with N1 and N2
# iterations, with and without libfusebox.so; the difference of the
# differences divided by N2-N1 is the cost per iteration.
#   bench/callgrind.sh BUILD_DIR
set -eu
B=${1:-build}
N1=2000
N2=12000
tmp=$(mktemp -d)
printf '[default]\nconnect_timeout = 5s\n' > "$tmp/guard.ini"
printf '[default]\nconnect_timeout = 5s\nresponse_timeout = 5s\nidle_timeout = 5m\n' \
	> "$tmp/timeouts.ini"
printf '; nothing guarded\n' > "$tmp/empty.ini"
printf '[default]\nconnect_timeout = 2s\nresponse_timeout = 5s\nbreaker = on\nclassify = http\n' \
	> "$tmp/http.ini"
printf '[default]\nconnect_timeout = 2s\nresponse_timeout = 5s\nbreaker = on\nclassify = http\nretries = 2\nretry_on = refused, empty, 5xx, response-timeout\n' \
	> "$tmp/replay.ini"
printf '[default]\nconnect_timeout = 5s\nbreaker = on\n' > "$tmp/breaker.ini"
printf '[default]\nbreaker = on\nbreaker_failures = 1\nbreaker_open = 1h\nbreaker_open_max = 2h\n' \
	> "$tmp/open.ini"
printf '[default]\nconnect_timeout = 2s\nresponse_timeout = 5s\nbreaker = on\nmax_connections = 1000\nrate = 1000000/s\n' \
	> "$tmp/wall.ini"
printf '[default]\nbreaker = on\nmax_connections = 1000\nrate = 1000000/s\nretries = 2\n' \
	> "$tmp/limits.ini"
printf '[db]\nmatch = 10.0.0.0/8:5432\n[svc]\nmatch = 127.0.0.1\nbreaker = on\nmax_connections = 1000\nrate = 1000000/s\nretries = 2\n' \
	> "$tmp/rule.ini"
export FUSEBOX_SEGMENT="fusebox-bench-$$"

# The HTTPS fixture for the TLS rows, without the shim.
"$B/fixture-tls" ok --lifetime 3600 >"$tmp/tls.port" &
tls_pid=$!
trap 'kill $tls_pid 2>/dev/null; rm -rf "$tmp"; rm -f "/dev/shm/$FUSEBOX_SEGMENT"' EXIT
while [ ! -s "$tmp/tls.port" ]; do sleep 0.1; done
tls_port=$(cat "$tmp/tls.port")
printf '[default]\nconnect_timeout = 2s\nresponse_timeout = 5s\nbreaker = on\nclassify = http\nmax_connections = 1000\nrate = 1000000/s\n' \
	> "$tmp/tls.ini"

# the program and arguments of WORKLOAD
prog() {
	case $1 in
	tls) echo "$B/bench-tls $tls_port" ;;
	*) echo "$B/bench-io $1" ;;
	esac
}

# count WORKLOAD N [POLICY]: instructions of one run
count() {
	if [ -n "${3:-}" ]; then
		env LD_PRELOAD="$(realpath "$B/libfusebox.so")" \
		    FUSEBOX_POLICY="$3" valgrind --tool=callgrind \
		    --callgrind-out-file=/dev/null $(prog "$1") "$2" \
		    2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
	else
		valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		    $(prog "$1") "$2" 2>&1 |
		    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
	fi
}

# per WORKLOAD [POLICY]: instructions per iteration (TLS: fewer, each
# costs the cipher's thousands)
per() {
	n1=$N1 n2=$N2
	[ "$1" = tls ] && n1=200 n2=1200
	a=$(count "$1" $n1 "${2:-}")
	b=$(count "$1" $n2 "${2:-}")
	echo $(( (b - a) / (n2 - n1) ))
}

row() { # row LABEL WORKLOAD CALLS POLICY
	base=$(per "$2")
	with=$(per "$2" "$4")
	added=$(( with - base ))
	printf '%-44s %8d %8d %8d %8d\n' "$1" "$base" "$with" "$added" \
		$(( added / $3 ))
}

printf '%-44s %8s %8s %8s %8s\n' "workload (per iteration)" "bare" \
	"fusebox" "added" "per call"
row "send+recv, guarded, the policy of wall.sh" guarded 2 "$tmp/wall.ini"
row "the same, program multi-threaded already" guarded-mt 2 "$tmp/wall.ini"
row "connect+close, the policy of wall.sh" connect 1 "$tmp/wall.ini"
row "refused connect, open breaker, multi-thr." refused-mt 1 "$tmp/open.ini"
row "send+recv, unguarded socket, empty policy" unguarded 2 "$tmp/empty.ini"
row "send+recv, unguarded socket, [default]" unguarded 2 "$tmp/guard.ini"
row "send+recv, guarded socket, connect_timeout" guarded 2 "$tmp/guard.ini"
row "send+recv, guarded, response+idle timeouts" guarded 2 "$tmp/timeouts.ini"
row "connect+close, guarded, connect_timeout" connect 1 "$tmp/guard.ini"
row "connect+close, empty policy" connect 1 "$tmp/empty.ini"
row "send+recv, guarded, breaker and counters" guarded 2 "$tmp/breaker.ini"
row "connect+close, guarded, breaker and counters" connect 1 "$tmp/breaker.ini"
row "refused connect: kernel vs open breaker" refused 1 "$tmp/open.ini"
row "connect+close, breaker, limits, rate, budget" connect 1 "$tmp/limits.ini"
row "connect+close, the same as a named rule" connect 1 "$tmp/rule.ini"
row "HTTP/1.1 request+reply, guarded, classify" http 1 "$tmp/http.ini"
row "HTTP/1.1 request+reply, with replays on" http 1 "$tmp/replay.ini"
row "SSL_write+SSL_read, guarded TLS, per pair" tls 1 "$tmp/tls.ini"
row "SSL_write+SSL_read, TLS, nothing guarded" tls 1 "$tmp/empty.ini"
