#!/bin/sh
# SPDX-License-Identifier: MIT
# The architecture, checked: folders include one way (policy ← segment ←
# shim, cli), and the shim's modules call one way, from the hooks down
# to life.c, read from the symbols each object file uses and defines.
# Usage: tests/layers/check.sh BUILD_DIR
set -eu
B=${1:-build}
fail=0

# --- folders: what each may include --------------------------------------
check_includes() { # folder, pattern of folders it must not include
	if grep -nE "#include \"($2)/" "$1"/*.[ch] 2>/dev/null; then
		echo "layers: $1/ includes from $2 (see STYLE.md, Layout)" >&2
		fail=1
	fi
}
check_includes policy 'segment|shim|cli'
check_includes segment 'shim|cli'
check_includes cli 'shim'

# --- shim modules: rank of each; a call goes to a lower rank only --------
rank() {
	case $1 in
	life | real | clock) echo 0 ;; # the process's life; libc; clocks
	h2 | dns | fdtable) echo 1 ;; # pure parser, resolver memory, fd table
	state) echo 2 ;;           # policy, segment, reload, logging
	timer) echo 3 ;;           # deadlines: when, not what
	calls) echo 4 ;;           # admission and outcome of calls
	streams) echo 5 ;;         # watcher: HTTP/2 streams
	tls) echo 6 ;;             # watcher: TLS plaintext (and hooks of libssl)
	watch) echo 7 ;;           # watcher: TCP deadlines and aborts
	connect) echo 8 ;;         # hooks: the connect family
	replay) echo 9 ;;          # HTTP/1 requests sent again (connects again)
	hooks) echo 10 ;;          # hooks: I/O and descriptors
	stdio) echo 11 ;;          # hooks: stdio streams, read through hooks
	dl) echo 12 ;;             # hooks: dlopen, rebinds to all hooks
	*) echo "" ;;
	esac
}

defs=$(mktemp)
trap 'rm -f "$defs"' EXIT
for o in "$B"/shim/*.o; do
	m=$(basename "$o" .o)
	[ -f "shim/$m.c" ] || continue # a stale object of a moved file
	if [ -z "$(rank "$m")" ]; then
		echo "layers: shim/$m.c has no rank in $0" >&2
		fail=1
		continue
	fi
	nm --defined-only -g "$o" | awk -v m="$m" '{ print $3, m }' >>"$defs"
done
edges=0
for o in "$B"/shim/*.o; do
	m=$(basename "$o" .o)
	[ -f "shim/$m.c" ] && [ -n "$(rank "$m")" ] || continue
	for to in $(nm -u "$o" | awk '{ print $2 }' | sort -u |
		awk 'NR == FNR { def[$1] = $2; next } $1 in def { print def[$1] }' \
			"$defs" - | sort -u); do
		[ "$to" = "$m" ] && continue
		edges=$((edges + 1))
		if [ "$(rank "$to")" -ge "$(rank "$m")" ]; then
			echo "layers: shim/$m.c calls up into shim/$to.c" \
				"($(nm -u "$o" | awk '{ print $2 }' | sort -u |
					awk -v t="$to" 'NR == FNR { if ($2 == t) d[$1] = 1; next } $1 in d' \
						"$defs" - | tr '\n' ' '))" >&2
			fail=1
		fi
	done
done
[ "$fail" -eq 0 ] && echo "layers: one way ($edges calls between shim modules)"
exit "$fail"
