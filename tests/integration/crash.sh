#!/usr/bin/env bash
# smimed killed with SIGKILL during a burst of concurrent issuances: after a
# restart every certificate a client received is in the store, the store
# opens cleanly, and no serial number repeats.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "crash" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
api POST /api/v1/users '{"emails":["burst@example.org"]}' >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k" -subj /CN=x -out "$T/csr" 2>/dev/null
jq -n --rawfile csr "$T/csr" '{user:"burst@example.org",profile:"dual",csr:$csr}' >"$T/req.json"

# Four clients issue as fast as they can; each keeps the serials it received.
for w in 1 2 3 4; do
	(
		while :; do
			code=$(curl -s -o "$T/w$w.body" -w '%{http_code}' -H "Authorization: Bearer $SVC_TOKEN" \
				-H 'Content-Type: application/json' --data-binary @"$T/req.json" "$SVC_URL/api/v1/certificates")
			[ "$code" = 201 ] || break
			jq -r .certificate.serial "$T/w$w.body" >>"$T/received.$w"
		done
	) &
done
sleep 3
kill -KILL "$SVC_PID"
wait "$SVC_PID" 2>/dev/null
SVC_PID=
wait
cat "$T"/received.* >"$T/received" 2>/dev/null
n=$(wc -l <"$T/received")
[ "$n" -gt 10 ] && ok "clients received $n certificates before the kill" || not_ok "a burst of issuances ($n)"
[ -z "$(sort "$T/received" | uniq -d)" ] && ok "no serial was handed out twice" || not_ok "duplicate serials received"

integrity=$(sqlite3 "$D/smimed.db" 'PRAGMA integrity_check;' 2>&1)
[ "$integrity" = ok ] && ok "the store passes its integrity check after SIGKILL" || not_ok "integrity check" "$integrity"
if start_smimed "$D"; then ok "smimed starts after SIGKILL"; else not_ok "restart after SIGKILL" "$(tail "$D.log")"; done_testing; exit 1; fi
missing=0
api GET '/api/v1/certificates?limit=1000' >/dev/null
jq -r '.items[].serial' "$T/.body" >"$T/stored"
while [ "$(jq -r .next "$T/.body")" != null ]; do
	api GET "/api/v1/certificates?limit=1000&after=$(jq -r .next "$T/.body")" >/dev/null
	jq -r '.items[].serial' "$T/.body" >>"$T/stored"
done
while read -r s; do grep -qx "$s" "$T/stored" || missing=$((missing + 1)); done <"$T/received"
[ "$missing" = 0 ] && ok "every certificate a client received is in the store ($(wc -l <"$T/stored") stored)" || not_ok "$missing received certificates are missing from the store"
[ -z "$(sort "$T/stored" | uniq -d)" ] && ok "no serial repeats in the store" || not_ok "duplicate serials in the store"
code=$(api POST /api/v1/certificates "$(cat "$T/req.json")")
[ "$code" = 201 ] && ok "it issues again after the crash" || not_ok "issue after crash ($code)"
done_testing
