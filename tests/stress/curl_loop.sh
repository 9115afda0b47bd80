#!/bin/sh
# SPDX-License-Identifier: MIT
# curl_loop.sh URL COUNT SECONDS TALLY: runs curl on URL up to COUNT
# times, for at most SECONDS, one connect each; on a normal end writes
# its tally as JSON to TALLY (through a rename): runs, replies, connects
# refused (curl exit 7), other failures.  Run under the shim by make
# stress; curl itself is the guarded program.
set -u
url=$1 count=$2 secs=$3 tally=$4
end=$(($(date +%s) + secs))
n=0 ok=0 refused=0 other=0
while [ "$n" -lt "$count" ] && [ "$(date +%s)" -lt "$end" ]; do
	n=$((n + 1))
	curl -s -o /dev/null --max-time 10 "$url"
	rc=$?
	case $rc in
	0) ok=$((ok + 1)) ;;
	7) refused=$((refused + 1)) ;;
	*) other=$((other + 1)) ;;
	esac
done
printf '{"attempted": %d, "connected": %d, "errnos": {"ECONNREFUSED": %d}, "other": %d}\n' \
	"$n" "$ok" "$refused" "$other" >"$tally.tmp" && mv "$tally.tmp" "$tally"
