#!/usr/bin/env bash
# make run: start smimed with its defaults (127.0.0.1:8080, the default data
# folder, its CA made on first start) and print its URL and admin token.
# It runs in the foreground; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
#   bash scripts/run.sh [BUILD_DIR] [smimed options...]
set -u
build=${1:-build}
shift || true
smimed=$build/smimed
[ -x "$smimed" ] || { echo "run: no $smimed (make build first)" >&2; exit 2; }
data=$("$smimed" "$@" --print-config | sed -n 's/^# data folder (--data, SMIMED_DATA): //p')
listen=$("$smimed" "$@" --print-config | sed -n 's/^listen = //p')
"$smimed" "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' INT TERM
for _ in $(seq 1 300); do
	if curl -sf -o /dev/null "http://$listen/healthz" 2>/dev/null ||
	   curl -skf -o /dev/null "https://$listen/healthz" 2>/dev/null; then
		echo
		echo "smimed is running (pid $pid); Ctrl-C stops it."
		echo "  admin token:  $(cat "$data/admin.token" 2>/dev/null)"
		echo "  try:          SMIME_SERVER=http://$listen SMIME_TOKEN=\$(cat $data/admin.token) build/smime admin user list"
		break
	fi
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
wait $pid
rc=$?
# A signal that stopped the wait: wait for smimed itself.
kill -0 $pid 2>/dev/null && wait $pid && rc=$?
exit $rc
