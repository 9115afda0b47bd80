#!/bin/sh
# SPDX-License-Identifier: MIT
# Wall-clock side by side: the same client (bench-wall) talks to an echo
# server on 127.0.0.1 directly, under libfusebox.so, and through an
# HAProxy TCP sidecar.  The three setups run interleaved (direct, fusebox,
# haproxy, direct, ...) so that the machine's noise falls on all alike;
# each figure is the median of RUNS runs.  Prints the table; writes
# BUILD_DIR/bench/report.md (with the matcher and callgrind outputs that
# `make bench` left in BUILD_DIR/bench/) and BUILD_DIR/bench/bench.svg.
#   bench/wall.sh BUILD_DIR
# Counts can be changed from the environment: BENCH_RUNS (9),
# BENCH_RR_COUNT (6000 round trips on one connection), BENCH_PAR_COUNT
# (2000 round trips on each of 8 connections), BENCH_CC_COUNT (2000
# connect + round trip + close cycles).  About a minute on 2 cores.
set -eu
B=${1:-build}
RUNS=${BENCH_RUNS:-9}
RR_COUNT=${BENCH_RR_COUNT:-6000}
PAR_COUNT=${BENCH_PAR_COUNT:-2000}
CC_COUNT=${BENCH_CC_COUNT:-2000}
LIMIT=120 # seconds one client run may take
OUT=$B/bench
WALL=$B/bench-wall
LIB=$(realpath "$B/libfusebox.so")

for tool in haproxy gnuplot; do
	command -v $tool >/dev/null || {
		echo "bench/wall.sh: $tool missing (make deps)" >&2
		exit 1
	}
done
mkdir -p "$OUT"
tmp=$(mktemp -d)
srv_pid=
hap_pid=
export FUSEBOX_SEGMENT="fusebox-bench-wall-$$"
cleanup() {
	set +e
	for pid in $hap_pid $srv_pid; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
	rm -f "/dev/shm/$FUSEBOX_SEGMENT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The echo server, in its own process and never under the shim; it ends
# by itself after 15 minutes should we be killed.
"$WALL" serve 0 900 >"$tmp/srv.port" &
srv_pid=$!
i=0
while [ ! -s "$tmp/srv.port" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
srv_port=$(cat "$tmp/srv.port")
[ -n "$srv_port" ] || {
	echo "bench/wall.sh: echo server did not start" >&2
	exit 1
}

# The sidecar: plain TCP forwarding, haproxy's defaults otherwise (one
# thread per CPU); foreground, no root, no system service.
hap_port=$("$WALL" port)
cat >"$tmp/haproxy.cfg" <<EOF
global
	maxconn 4096
defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend bench
	bind 127.0.0.1:$hap_port
	default_backend echo
backend echo
	server echo 127.0.0.1:$srv_port
EOF
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
hap_pid=$!
i=0
until "$WALL" 127.0.0.1 "$hap_port" cc 1 1 >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -ge 50 ] || ! kill -0 $hap_pid 2>/dev/null; then
		echo "bench/wall.sh: haproxy did not start:" >&2
		cat "$tmp/haproxy.log" >&2
		exit 1
	fi
	sleep 0.1
done

# Everything guarded: admission, a connect and a response deadline.
cat >"$tmp/fusebox.ini" <<EOF
[default]
connect_timeout = 2s
response_timeout = 5s
breaker = on
max_connections = 1000
rate = 1000000/s
EOF

# run SETUP MODE COUNT CONNS: seconds of one client run
run() {
	case $1 in
	direct) timeout $LIMIT "$WALL" 127.0.0.1 "$srv_port" "$2" "$3" "$4" ;;
	fusebox)
		LD_PRELOAD="$LIB" FUSEBOX_POLICY="$tmp/fusebox.ini" \
			timeout $LIMIT "$WALL" 127.0.0.1 "$srv_port" "$2" "$3" "$4"
		;;
	haproxy) timeout $LIMIT "$WALL" 127.0.0.1 "$hap_port" "$2" "$3" "$4" ;;
	esac
}

SETUPS="direct fusebox haproxy"
# workload WORKLOAD: its mode, count and connections
workload() {
	case $1 in
	rr1) echo "rr $RR_COUNT 1" ;;
	rr8) echo "rr $PAR_COUNT 8" ;;
	cc) echo "cc $CC_COUNT 1" ;;
	esac
}
# label WORKLOAD: its name in the tables
label() {
	case $1 in
	rr1) echo "1 connection, 64 B round trips" ;;
	rr8) echo "8 connections in parallel, 64 B round trips" ;;
	cc) echo "connect, 64 B round trip, close" ;;
	esac
}
# short WORKLOAD: its name under the chart's bars
short() {
	case $1 in
	rr1) echo "1 connection, round trips" ;;
	rr8) echo "8 connections, round trips" ;;
	cc) echo "connect, round trip, close" ;;
	esac
}
WORKLOADS="rr1 rr8 cc"

# A short warm-up of each setup, not counted (caches, the segment).
for s in $SETUPS; do
	run $s rr 500 1 >/dev/null
	run $s cc 100 1 >/dev/null
done

echo "wall clock: $RUNS runs of each, interleaved" \
	"(direct fusebox haproxy ...)" >&2
r=1
while [ $r -le "$RUNS" ]; do
	for w in $WORKLOADS; do
		for s in $SETUPS; do
			# shellcheck disable=SC2046 # MODE COUNT CONNS
			t=$(run "$s" $(workload "$w"))
			echo "$t" >>"$tmp/$w.$s"
		done
	done
	printf '  run %d of %d done\n' $r "$RUNS" >&2
	r=$((r + 1))
done

# median FILE: the median of the numbers in FILE, one a line
median() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# us_per_op WORKLOAD SECONDS: microseconds per operation, all
# connections' operations together (the inverse of throughput)
us_per_op() {
	# shellcheck disable=SC2046 # MODE COUNT CONNS
	set -- $(workload "$1") "$2"
	awk -v t="$4" -v n="$2" -v c="$3" 'BEGIN { printf "%.2f", t * 1e6 / (n * c) }'
}

# ops US: operations per second at US microseconds each
ops() { awk -v u="$1" 'BEGIN { printf "%.0f", 1e6 / u }'; }

# The table of every workload's medians per setup, as text, Markdown
# and gnuplot data ($tmp/table.txt, .md, .dat).
: >"$tmp/table.dat"
: >"$tmp/table.md"
printf '%-45s %9s %9s %9s %9s %9s\n' "workload (us per op, median)" \
	direct fusebox haproxy "fb/direct" "hap/direct" >"$tmp/table.txt"
for w in $WORKLOADS; do
	d=$(us_per_op "$w" "$(median "$tmp/$w.direct")")
	f=$(us_per_op "$w" "$(median "$tmp/$w.fusebox")")
	h=$(us_per_op "$w" "$(median "$tmp/$w.haproxy")")
	fr=$(awk -v a="$f" -v b="$d" 'BEGIN { printf "%.2f", a / b }')
	hr=$(awk -v a="$h" -v b="$d" 'BEGIN { printf "%.2f", a / b }')
	printf '%-45s %9s %9s %9s %8sx %8sx\n' "$(label "$w")" \
		"$d" "$f" "$h" "$fr" "$hr" >>"$tmp/table.txt"
	printf '| %s (%s) | %s | %s | %s | %s× | %s× |\n' \
		"$(label "$w")" "$(workload "$w" |
			awk '{ print ($3 > 1 ? $3 " × " : "") $2 }')" \
		"$d ($(ops "$d")/s)" "$f ($(ops "$f")/s)" \
		"$h ($(ops "$h")/s)" "$fr" "$hr" >>"$tmp/table.md"
	printf '%s "%s" %s %s %s\n' "$w" "$(short "$w")" \
		"$d" "$f" "$h" >>"$tmp/table.dat"
done
cat "$tmp/table.txt"

# The chart: grouped bars, one group per workload.
cat >"$tmp/chart.gp" <<EOF
set terminal svg size 860,480 dynamic enhanced font 'sans,12' background rgb 'white'
set encoding utf8
set output '$OUT/bench.svg'
set title 'fusebox wall clock: µs per operation (median of $RUNS, lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'µs per operation'
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set grid ytics
set xtics scale 0
set xrange [-0.55:2.55]
set key top left Left reverse
plot '$tmp/table.dat' using 3:xtic(2) title 'direct' lc rgb '#4c72b0', \
     '' using 4 title 'fusebox (LD\_PRELOAD)' lc rgb '#dd8452', \
     '' using 5 title 'haproxy sidecar (mode tcp)' lc rgb '#55a868', \
     '' using (\$0 - 0.25):3:(sprintf('%.1f', \$3)) with labels offset 0,0.7 notitle, \
     '' using (\$0):4:(sprintf('%.1f', \$4)) with labels offset 0,0.7 notitle, \
     '' using (\$0 + 0.25):5:(sprintf('%.1f', \$5)) with labels offset 0,0.7 notitle
EOF
gnuplot "$tmp/chart.gp"

# The report.
{
	echo "# fusebox benchmark report"
	echo
	echo "- machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo |
		sed 's/.*: //'), $(nproc) cores"
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "- haproxy: $(haproxy -v | head -1 | awk '{ print $3 }')," \
		"$(nproc) threads (its default)"
	echo
	if [ -s "$OUT/match.txt" ]; then
		echo "## Policy matcher (bench-match)"
		echo
		echo '```'
		cat "$OUT/match.txt"
		echo '```'
		echo
	fi
	if [ -s "$OUT/callgrind.txt" ]; then
		echo "## Instructions per iteration (callgrind; the stable figures)"
		echo
		echo '```'
		cat "$OUT/callgrind.txt"
		echo '```'
		echo
	fi
	echo "## Wall clock (noisy; medians of $RUNS interleaved runs)"
	echo
	echo "Microseconds per operation, all connections' operations together"
	echo "(operations per second in brackets); ratios against direct."
	echo "Policy under fusebox: \`[default]\` connect_timeout = 2s,"
	echo "response_timeout = 5s, breaker = on, max_connections = 1000,"
	echo "rate = 1000000/s."
	echo
	echo "| workload (count) | direct | fusebox | haproxy |" \
		"fusebox / direct | haproxy / direct |"
	echo "|---|---:|---:|---:|---:|---:|"
	cat "$tmp/table.md"
	echo
	echo "Every run, seconds:"
	echo
	echo '```'
	for w in $WORKLOADS; do
		for s in $SETUPS; do
			printf '%-4s %-8s %s\n' "$w" "$s" "$(tr '\n' ' ' <"$tmp/$w.$s")"
		done
	done
	echo '```'
	echo
	echo "Chart: [bench.svg](bench.svg)"
	echo
	echo "![µs per operation, direct / fusebox / haproxy](bench.svg)"
} >"$OUT/report.md"
echo "wrote $OUT/report.md and $OUT/bench.svg" >&2
