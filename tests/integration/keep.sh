#!/usr/bin/env bash
# The key archive keeps every key: keys the service makes are archived when
# their certificate is recorded; a known certificate whose key is missing
# gets it archived on import; a deleted user stays recoverable until an
# explicit, audited purge; recovery needs a reason, takes one key by serial
# or the whole history, and with recovery_approval = 2 needs a second token.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "keep" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
echo "zoe-p12-password" >"$T/pw"
echo "recovery-pw-1" >"$T/recpw"

# p12_keys FILE PASSFILE: the number of private keys in a PKCS#12.
p12_keys() { openssl pkcs12 -in "$1" -passin file:"$2" -nodes 2>/dev/null | grep -c 'BEGIN PRIVATE KEY'; }
# pubkey_of FILE PASSFILE: the public keys of a PKCS#12's private keys, one per line.
p12_pubs() {
	openssl pkcs12 -in "$1" -passin file:"$2" -nodes -nocerts 2>/dev/null |
		awk '/BEGIN PRIVATE KEY/{n++; f=sprintf("'"$T"'/pk%d", n)} f{print > f} /END PRIVATE KEY/{close(f); f=""}'
	for f in "$T"/pk[0-9]*; do openssl pkey -in "$f" -pubout 2>/dev/null | sed -n 2p; rm -f "$f"; done | sort
}

# A partner CA (an organisation's other CA), and signing certificates of it:
# signing_p12 NAME EMAIL OUT makes $P/NAME.key, $P/NAME.crt and the PKCS#12
# OUT under $T/pw.
P=$T/partner
mkdir -p "$P"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" \
	-subj "/O=Partner/CN=Partner CA" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
signing_p12() {
	local name=$1 email=$2 out=$3
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$name.key" -subj "/CN=$email" -out "$P/$name.csr" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$email" >"$P/$name.ext"
	openssl x509 -req -in "$P/$name.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 700 -extfile "$P/$name.ext" -out "$P/$name.crt" 2>/dev/null
	openssl pkcs12 -export -inkey "$P/$name.key" -in "$P/$name.crt" -certfile "$P/ca.crt" -passout file:"$T/pw" -out "$out"
}

# ---- keys the service makes are archived --------------------------------
expect 0 "a user" "$SMIME" admin user add zoe@example.org --name "Zoe"
zoe_id=$(cat "$T/.out")
expect 0 "an encryption certificate with a key the service makes" \
	"$SMIME" admin cert issue --user zoe@example.org --profile encryption --password-file "$T/pw" -o "$T/z1.p12"
expect 0 "a dual-use one too" \
	"$SMIME" admin cert issue --user zoe@example.org --profile dual --password-file "$T/pw" -o "$T/z2.p12"
expect 0 "and a re-key of the encryption certificate" \
	"$SMIME" admin cert issue --user zoe@example.org --profile encryption --password-file "$T/pw" -o "$T/z3.p12"
expect 2 "recover without --reason: refused" \
	"$SMIME" admin recover --user zoe@example.org -o "$T/r0.p12" --password-file "$T/recpw"
contains "the refusal names --reason" "$T/.err" "reason"
status_is "the API refuses a recovery without a reason (400)" 400 POST "/api/v1/users/zoe@example.org/recover" '{"password":"recovery-pw-1"}'
expect 0 "recover the generated keys" \
	"$SMIME" admin recover --user zoe@example.org --reason "test: generated keys" -o "$T/r1.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/r1.p12" "$T/recpw")" = 3 ] && ok "all three generated keys are in the archive" || not_ok "three generated keys recovered" "$(cat "$T/.err")"
{ p12_pubs "$T/z1.p12" "$T/pw"; p12_pubs "$T/z2.p12" "$T/pw"; p12_pubs "$T/z3.p12" "$T/pw"; } | sort >"$T/issued.pubs"
p12_pubs "$T/r1.p12" "$T/recpw" >"$T/recovered.pubs"
same "the recovered keys are the keys handed out" "$T/issued.pubs" "$T/recovered.pubs"

# One key by serial.
z1_serial=$(openssl pkcs12 -in "$T/z1.p12" -passin file:"$T/pw" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
expect 0 "recover one key by serial" \
	"$SMIME" admin recover --user zoe@example.org --serial "$z1_serial" --reason "one key" -o "$T/r2.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/r2.p12" "$T/recpw")" = 1 ] && ok "the export holds that one key" || not_ok "one key by serial"
p12_pubs "$T/r2.p12" "$T/recpw" >"$T/r2.pubs"
p12_pubs "$T/z1.p12" "$T/pw" >"$T/z1.pubs"
same "and it is the key of that certificate" "$T/z1.pubs" "$T/r2.pubs"
expect 4 "a serial that is not the user's: not found" \
	"$SMIME" admin recover --user zoe@example.org --serial 0123456789ABCDEF --reason "x" -o "$T/r3.p12" --password-file "$T/recpw"
expect 0 "the audit log" "$SMIME" admin audit --json
jq -e '[.items[] | select(.action == "archive.recover" and .detail.reason == "test: generated keys")] | length == 1' "$T/.out" >/dev/null &&
	ok "the reason is in the audit log" || not_ok "reason audited" "$(jq -c '[.items[] | select(.action == "archive.recover")]' "$T/.out")"

# A certificate recorded before its key was archived (an older smimed): the
# import archives the key instead of answering "already imported".
z1_fp=$(openssl pkcs12 -in "$T/z1.p12" -passin file:"$T/pw" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
stop_smimed
python3 - "$D/smimed.db" "$z1_fp" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("DELETE FROM archive WHERE sha256 = ?", (sys.argv[2],)).rowcount
db.commit()
sys.exit(0 if n == 1 else 1)
PY
[ $? = 0 ] && ok "(the key of one certificate taken out of the archive)" || not_ok "archive row removed"
if ! start_smimed "$D"; then not_ok "smimed restarts" "$(tail "$D.log")"; done_testing; exit 1; fi
expect 0 "import the PKCS#12 of a known certificate whose key is not archived" \
	"$SMIME" admin import --user zoe@example.org --password-file "$T/pw" "$T/z1.p12"
contains "its key is archived" "$T/.out" "^archived"
expect 0 "recover again" "$SMIME" admin recover --user zoe@example.org --reason "after re-import" -o "$T/r4.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/r4.p12" "$T/recpw")" = 3 ] && ok "all three keys again" || not_ok "three keys after re-import"
expect 0 "the same file again" "$SMIME" admin import --user zoe@example.org --password-file "$T/pw" "$T/z1.p12"
contains "now exists" "$T/.out" "^exists"

# ---- a deleted user keeps the archive ------------------------------------
expect 0 "delete zoe" "$SMIME" admin user delete zoe@example.org
expect 0 "user list" "$SMIME" admin user list --json
jq -e --arg id "$zoe_id" '[.items[] | select(.id == $id)] | length == 0' "$T/.out" >/dev/null && ok "zoe is not among the users" || not_ok "deleted user listed"
expect 0 "user list --deleted" "$SMIME" admin user list --deleted --json
jq -e --arg id "$zoe_id" '[.items[] | select(.id == $id and .deleted != null)] | length == 1' "$T/.out" >/dev/null && ok "zoe is among the deleted users" || not_ok "deleted list" "$(cat "$T/.out")"
expect 0 "user list --deleted (table)" "$SMIME" admin user list --deleted
contains "with her address" "$T/.out" "zoe@example.org"
expect 0 "recover a deleted user by address" \
	"$SMIME" admin recover --user zoe@example.org --reason "leaver's old mail" -o "$T/r5.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/r5.p12" "$T/recpw")" = 3 ] && ok "her three keys" || not_ok "deleted user recovered"
status_is "a deleted user gets no new certificate" 404 POST /api/v1/certificates '{"user":"zoe@example.org","profile":"encryption","generate":true,"password":"12345678"}'
expect 5 "her address is not taken by a new user without saying so" "$SMIME" admin user add zoe@example.org
contains "the refusal names the choice" "$T/.err" "reuse-addresses"
expect 0 "a new user takes the address with --reuse-addresses" "$SMIME" admin user add zoe@example.org --reuse-addresses --name "Zoe II"
zoe2_id=$(cat "$T/.out")
[ -n "$zoe2_id" ] && [ "$zoe2_id" != "$zoe_id" ] && ok "a new user" || not_ok "new user id ($zoe2_id)"
expect 0 "the deleted one is still recoverable by id" \
	"$SMIME" admin recover --user "$zoe_id" --reason "leaver, by id" -o "$T/r6.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/r6.p12" "$T/recpw")" = 3 ] && ok "her three keys, by id" || not_ok "deleted user by id"
expect 4 "the new user has nothing archived" \
	"$SMIME" admin recover --user zoe@example.org --reason "x" -o "$T/r7.p12" --password-file "$T/recpw"

# ---- purge: explicit, audited, and only of a deleted user ---------------------
expect 0 "another user" "$SMIME" admin user add yan@example.org
expect 0 "with a key" "$SMIME" admin cert issue --user yan@example.org --profile encryption --password-file "$T/pw" -o "$T/y1.p12"
expect 5 "purge of a user who is not deleted: refused" "$SMIME" admin user purge yan@example.org --reason "x"
expect 0 "purge of the deleted zoe" "$SMIME" admin user purge "$zoe_id" --reason "retention over"
expect 4 "her keys are gone" \
	"$SMIME" admin recover --user "$zoe_id" --reason "x" -o "$T/r8.p12" --password-file "$T/recpw"
expect 0 "the audit log" "$SMIME" admin audit --json
jq -e --arg id "$zoe_id" '[.items[] | select(.action == "user.purge" and .object == $id and .detail.keys == 3 and .detail.reason == "retention over")] | length == 1' "$T/.out" >/dev/null &&
	ok "the purge is audited with the keys it destroyed" || not_ok "purge audited" "$(jq -c '[.items[] | select(.action | test("purge|delete"))]' "$T/.out")"
n=$(sqlite3 "$D/smimed.db" "SELECT count(*) FROM archive" 2>/dev/null)
[ "$n" = 1 ] && ok "only yan's key is left in the archive" || not_ok "archive rows after purge ($n)"
stop_smimed

# ---- two-person recovery ---------------------------------------------------------------
D2=$T/data2
cat >"$T/two.conf" <<EOF
recovery_approval = 2
recovery_request_ttl = 6
archive_retention_days = 30
EOF
if ! start_smimed "$D2" --config "$T/two.conf"; then not_ok "smimed starts with recovery_approval = 2" "$(tail "$D2.log")"; done_testing; exit 1; fi
A=$SVC_TOKEN
# Two people, each with a token the first start's token made for them,
# before any request.
expect 0 "a token for the first person (admin)" "$SMIME" admin token create alice --role admin
X=$(cat "$T/.out")
expect 0 "a token for the second person (recovery)" "$SMIME" admin token create bob --role recovery
B=$(cat "$T/.out")
expect 0 "token list --json" "$SMIME" admin token list --json
a_id=$(jq -r '.items[] | select(.name == "initial") | .id' "$T/.out")
jq -e --arg a "$a_id" '([.items[] | select(.name == "initial" and .created_by == "system")] | length == 1) and
	([.items[] | select(.name == "alice" and .created_by == $a)] | length == 1)' "$T/.out" >/dev/null &&
	ok "token list says who made each token" || not_ok "created_by in token list" "$(cat "$T/.out")"
expect 0 "token list" "$SMIME" admin token list
contains "with a column for it" "$T/.out" "CREATED-BY"
expect 0 "a user" "$SMIME" admin user add una@example.org
expect 0 "with a generated key" "$SMIME" admin cert issue --user una@example.org --profile encryption --password-file "$T/pw" -o "$T/u1.p12"
sleep 1.1
SVC_TOKEN=$X
code=$(api POST /api/v1/users/una@example.org/recover '{"password":"recovery-pw-1","reason":"direct"}')
[ "$code" = 202 ] && jq -e '.pkcs12 == null and .request.status == "pending"' "$T/.body" >/dev/null &&
	ok "a recovery is a request, nothing exported (202)" || not_ok "direct recovery under approval 2 ($code)" "$(cat "$T/.body")"
export SMIME_TOKEN=$X
expect 0 "smime admin recover makes a request" \
	"$SMIME" admin recover --user una@example.org --reason "legal hold 42" -o "$T/u-r.p12" --password-file "$T/recpw"
req=$(cat "$T/.out")
[ -n "$req" ] && [ ! -e "$T/u-r.p12" ] && ok "its id is printed; no file is written yet" || not_ok "request id ($req)" "$(cat "$T/.err")"
expect 5 "the requester cannot approve their own request" "$SMIME" admin recovery approve "$req"
contains "saying why" "$T/.err" "requester|own request|second"
status_is "the API answers the requester's approval 403 with the JSON error" 403 POST "/api/v1/recovery-requests/$req/approve"
status_is "a request nobody made: 404" 404 POST "/api/v1/recovery-requests/0190a000-0000-7000-8000-000000000000/approve"
# The attacker's side: one admin alone, with the tokens an admin can make.
expect 0 "the requester makes itself a recovery token" "$SMIME" admin token create mine --role recovery
R=$(cat "$T/.out")
SMIME_TOKEN=$R expect 5 "which cannot approve the request of the token that made it" "$SMIME" admin recovery approve "$req"
contains "saying that the requester made it" "$T/.err" "made by the requester"
SVC_TOKEN=$R status_is "the API answers it 403" 403 POST "/api/v1/recovery-requests/$req/approve"
jq -e '.error.code == "forbidden" and (.error.message | test("made by the requester"))' "$T/.body" >/dev/null &&
	ok "with a JSON error that says why" || not_ok "JSON error of the refusal" "$(cat "$T/.body")"
expect 0 "and an admin token" "$SMIME" admin token create mine-admin --role admin
M=$(cat "$T/.out")
SMIME_TOKEN=$M expect 0 "which makes a recovery token" "$SMIME" admin token create mine2 --role recovery
R2=$(cat "$T/.out")
SMIME_TOKEN=$R2 expect 5 "a token made by a token the requester made cannot approve either" "$SMIME" admin recovery approve "$req"
SMIME_TOKEN=$A expect 5 "nor the token that made the requester's token" "$SMIME" admin recovery approve "$req"
contains "saying so" "$T/.err" "made the requester"
SMIME_TOKEN=$A expect 0 "the first start's token makes another token after the request" "$SMIME" admin token create late --role recovery
Z=$(cat "$T/.out")
SMIME_TOKEN=$Z expect 5 "a token made after the request cannot approve it" "$SMIME" admin recovery approve "$req"
contains "saying so" "$T/.err" "after the request"
SMIME_TOKEN=$R expect 5 "nor can the requester's token fetch it" "$SMIME" admin recovery fetch "$req" -o "$T/u-r.p12" --password-file "$T/recpw"
expect 5 "nor fetch it before approval" "$SMIME" admin recovery fetch "$req" -o "$T/u-r.p12" --password-file "$T/recpw"
SMIME_TOKEN=$B expect 0 "a token of another person, made before the request, approves (naming it by a prefix of its id)" "$SMIME" admin recovery approve "${req:0:13}"
SMIME_TOKEN=$B expect 5 "the approver cannot fetch what another requested" "$SMIME" admin recovery fetch "$req" -o "$T/u-b.p12" --password-file "$T/recpw"
expect 0 "the requester fetches the approved export" "$SMIME" admin recovery fetch "$req" -o "$T/u-r.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/u-r.p12" "$T/recpw")" = 1 ] && ok "with the key" || not_ok "approved export"
expect 5 "once only" "$SMIME" admin recovery fetch "$req" -o "$T/u-r2.p12" --password-file "$T/recpw"
expect 0 "recovery list" "$SMIME" admin recovery list --json
jq -e --arg r "$req" '[.items[] | select(.id == $r and .status == "exported" and .reason == "legal hold 42")] | length == 1' "$T/.out" >/dev/null &&
	ok "the request is listed, exported, with its reason" || not_ok "recovery list" "$(cat "$T/.out")"
# What the approver approves is what the archive held when the request was
# made: a key archived later is not in its export.
expect 0 "a request for una's whole history" "$SMIME" admin recover --user una@example.org --reason "scope" -o "$T/u-s.p12" --password-file "$T/recpw"
scope=$(cat "$T/.out")
sleep 1.1
expect 0 "una gets another key after the request" "$SMIME" admin cert issue --user una@example.org --profile encryption --password-file "$T/pw" -o "$T/u2.p12"
SMIME_TOKEN=$B expect 0 "the second token approves it" "$SMIME" admin recovery approve "$scope"
expect 0 "the requester fetches it" "$SMIME" admin recovery fetch "$scope" -o "$T/u-s.p12" --password-file "$T/recpw"
[ "$(p12_keys "$T/u-s.p12" "$T/recpw")" = 1 ] && ok "with the one key archived when it was asked for, not the later one" ||
	not_ok "the export holds only what was approved" "$(p12_keys "$T/u-s.p12" "$T/recpw") keys"
expect 0 "another request" "$SMIME" admin recover --user una@example.org --reason "too late" -o "$T/u-late.p12" --password-file "$T/recpw"
late=$(cat "$T/.out")
sleep 7
SMIME_TOKEN=$B expect 5 "an approval after expiry is refused" "$SMIME" admin recovery approve "$late"
contains "as expired" "$T/.err" "expire"
expect 5 "and nothing can be fetched" "$SMIME" admin recovery fetch "$late" -o "$T/u-late.p12" --password-file "$T/recpw"
expect 0 "the audit log" "$SMIME" admin audit --json
jq -e --arg r "$req" '([.items[] | select(.action == "recovery.request" and .object == $r and .detail.reason == "legal hold 42")] | length == 1) and
	([.items[] | select(.action == "recovery.approve" and .object == $r)] | length == 1) and
	([.items[] | select(.action == "archive.recover" and .detail.request == $r)] | length == 1)' "$T/.out" >/dev/null &&
	ok "request, approval and export are audited" || not_ok "two-person audit" "$(jq -c '[.items[] | select(.action | test("recover"))]' "$T/.out")"
# A signing key by two persons: the approver sees what is asked for, and the
# export is audited apart.
expect 0 "the partner CA joins the trust collection" "$SMIME" admin trust import "$P/ca.crt"
signing_p12 us una@example.org "$T/u-sign.p12"
expect 0 "una's signing certificate is imported" "$SMIME" admin import --user una@example.org --password-file "$T/pw" "$T/u-sign.p12"
us_serial=$(openssl x509 -in "$P/us.crt" -noout -serial | cut -d= -f2)
expect 0 "a request for her signing key" "$SMIME" admin recover --user una@example.org --serial "$us_serial" --reason "sign as una" -o "$T/u-sg.p12" --password-file "$T/recpw"
sreq=$(cat "$T/.out")
SMIME_TOKEN=$B expect 0 "the approver looks at it" "$SMIME" admin recovery show "$sreq" --json
jq -e '.signing == true' "$T/.out" >/dev/null && ok "and sees that it is a signing key" || not_ok "signing in the request" "$(cat "$T/.out")"
SMIME_TOKEN=$B expect 0 "recovery list" "$SMIME" admin recovery list
grep "^$sreq" "$T/.out" | grep -q "signing-key" && ok "lists it as a signing key" || not_ok "signing-key in the list" "$(cat "$T/.out")"
SMIME_TOKEN=$B expect 0 "approves it" "$SMIME" admin recovery approve "$sreq"
expect 0 "the requester fetches it" "$SMIME" admin recovery fetch "$sreq" -o "$T/u-sg.p12" --password-file "$T/recpw"
openssl pkey -in "$P/us.key" -pubout 2>/dev/null | sed -n 2p >"$T/us.pubs"
p12_pubs "$T/u-sg.p12" "$T/recpw" >"$T/u-sg.pubs"
same "it is her signing key" "$T/us.pubs" "$T/u-sg.pubs"
expect 0 "the audit log" "$SMIME" admin audit --json
jq -e --arg r "$sreq" '([.items[] | select(.action == "recovery.request" and .object == $r and .detail.signing == true)] | length == 1) and
	([.items[] | select(.action == "archive.recover-signing" and .detail.request == $r)] | length == 1)' "$T/.out" >/dev/null &&
	ok "its request and its export say it is a signing key" || not_ok "two-person signing audit" "$(jq -c '[.items[] | select(.action | test("recover"))]' "$T/.out")"
expect 0 "delete una" "$SMIME" admin user delete una@example.org
# A leaver's trail is what an audit looks for: by the address they held.
expect 0 "the audit of the deleted una, by her address" "$SMIME" admin audit --user una@example.org --json
[ -s "$T/.out" ] && jq -e '([.items[] | select(.action == "user.delete")] | length == 1) and ([.items[] | select(.action == "archive.recover")] | length >= 2)' "$T/.out" >/dev/null &&
	ok "finds her deletion and her recoveries" || not_ok "audit --user of a deleted user" "$(cat "$T/.out" "$T/.err")"
expect 5 "purge before archive_retention_days: refused" "$SMIME" admin user purge una@example.org --reason "x"
contains "naming the retention" "$T/.err" "retention|days"
expect 0 "another user" "$SMIME" admin user add vic@example.org
status_is "an alias a deleted user holds is not taken without saying so (409)" 409 PATCH /api/v1/users/vic@example.org '{"emails":["vic@example.org","una@example.org"]}'
grep -q reuse_addresses "$T/.body" && ok "the answer names reuse_addresses" || not_ok "PATCH names the choice" "$(cat "$T/.body")"
status_is "with reuse_addresses it is taken" 200 PATCH /api/v1/users/vic@example.org '{"emails":["vic@example.org","una@example.org"],"reuse_addresses":true}'
expect 0 "user list --deleted" "$SMIME" admin user list --deleted --json
jq -e '[.items[] | select(.emails == ["una@example.org"])] | length == 1' "$T/.out" >/dev/null && ok "una keeps it as a former address" || not_ok "former address" "$(cat "$T/.out")"
una_id=$(jq -r '.items[] | select(.emails == ["una@example.org"]) | .id' "$T/.out")
# Mail to that address is vic's to read now: the audit says whose address he took.
expect 0 "the audit of the change that took una's address" "$SMIME" admin audit --action user.update --user vic@example.org --json
[ -n "$una_id" ] && [ -s "$T/.out" ] && jq -e --arg u "$una_id" '[.items[] | select(.detail.reused == [{"address": "una@example.org", "from": $u}])] | length == 1' "$T/.out" >/dev/null &&
	ok "names the address taken and the deleted user it came from" || not_ok "reuse audited" "$(cat "$T/.out")"
stop_smimed

# ---- a long history: every key, past the first page of certificates ---------------------
# Years of device signing certificates (SCEP renewals) come before the
# newest encryption key; a recovery of the whole history holds that key too.
D3=$T/data3
if ! start_smimed "$D3"; then not_ok "smimed starts" "$(tail "$D3.log")"; done_testing; exit 1; fi
expect 0 "a user" "$SMIME" admin user add wes@example.org
wes_id=$(cat "$T/.out")
expect 0 "his encryption key, made by the service" "$SMIME" admin cert issue --user wes@example.org --profile encryption --password-file "$T/pw" -o "$T/w1.p12"
stop_smimed
sqlite3 "$D3/smimed.db" "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 1200)
	INSERT INTO certs (serial, ca_id, user_id, purpose, source, status, not_before, not_after, sha256, sha1, der, created)
	SELECT printf('7E%014X', n), c.ca_id, c.user_id, 1, 3, 2, c.not_before, c.not_after, lower(hex(randomblob(32))),
	lower(hex(randomblob(20))), x'3000', c.created - 100000 + n FROM i, certs c WHERE c.user_id = '$wes_id'" &&
	ok "1,200 older signing certificates of his devices (none archived)" || not_ok "history rows"
if start_smimed "$D3"; then
	expect 0 "recover his whole history" \
		"$SMIME" admin recover --user wes@example.org --reason "long history" -o "$T/w-r.p12" --password-file "$T/recpw"
	[ "$(p12_keys "$T/w-r.p12" "$T/recpw")" = 1 ] && ok "with his encryption key, past the first 1,000 certificates" ||
		not_ok "the newest key is in the export" "$(cat "$T/.err")"

	# ---- a signing key is exported only when asked for by its serial -------------
	# An imported signing certificate's key is archived, but a recovery of
	# the whole history is for reading old mail: it holds encryption and
	# dual-use keys; a signing key comes out by --serial alone, audited apart.
	signing_p12 s wes@example.org "$T/w-sign.p12"
	expect 0 "the partner CA joins the trust collection" "$SMIME" admin trust import "$P/ca.crt"
	expect 0 "wes's signing certificate and key are imported" "$SMIME" admin import --user wes@example.org --password-file "$T/pw" "$T/w-sign.p12"
	contains "as a signing certificate" "$T/.out" "^imported signing"
	sign_serial=$(openssl x509 -in "$P/s.crt" -noout -serial | cut -d= -f2)
	expect 0 "recover his whole history again" \
		"$SMIME" admin recover --user wes@example.org --reason "old mail" -o "$T/w-r2.p12" --password-file "$T/recpw"
	[ "$(p12_keys "$T/w-r2.p12" "$T/recpw")" = 1 ] && ok "it holds his encryption key, not his signing key" ||
		not_ok "no signing key in a whole-history export" "$(p12_keys "$T/w-r2.p12" "$T/recpw") keys"
	p12_pubs "$T/w1.p12" "$T/pw" >"$T/w1.pubs"
	p12_pubs "$T/w-r2.p12" "$T/recpw" >"$T/w-r2.pubs"
	same "and that key is the encryption key" "$T/w1.pubs" "$T/w-r2.pubs"
	code=$(api POST /api/v1/users/wes@example.org/recover '{"password":"recovery-pw-1","reason":"api"}')
	[ "$code" = 200 ] && jq -e --arg s "$sign_serial" '.keys == 1 and ([.serials[] | select(ascii_upcase == ($s | ascii_upcase))] | length == 0)' "$T/.body" >/dev/null &&
		ok "the API's answer names no signing serial" || not_ok "API whole history ($code)" "$(jq -c '.serials' "$T/.body")"
	expect 0 "recover the signing key by its serial" \
		"$SMIME" admin recover --user wes@example.org --serial "$sign_serial" --reason "sign as wes: court order" -o "$T/w-s.p12" --password-file "$T/recpw"
	openssl pkey -in "$P/s.key" -pubout 2>/dev/null | sed -n 2p >"$T/s.pubs"
	p12_pubs "$T/w-s.p12" "$T/recpw" >"$T/w-s.pubs"
	same "it is his signing key" "$T/s.pubs" "$T/w-s.pubs"
	expect 0 "the audit log" "$SMIME" admin audit --json
	jq -e '([.items[] | select(.action == "archive.recover-signing" and .detail.reason == "sign as wes: court order")] | length == 1) and
		([.items[] | select(.action == "archive.recover" and .detail.reason == "sign as wes: court order")] | length == 0) and
		([.items[] | select(.action == "archive.recover-signing" and .detail.reason == "old mail")] | length == 0)' "$T/.out" >/dev/null &&
		ok "the signing key's export is audited with its own action" || not_ok "archive.recover-signing" "$(jq -c '[.items[] | select(.action | test("recover"))]' "$T/.out")"
	expect 0 "a user with a signing key only" "$SMIME" admin user add sol@example.org
	signing_p12 t sol@example.org "$T/t.p12"
	expect 0 "imported" "$SMIME" admin import --user sol@example.org --password-file "$T/pw" "$T/t.p12"
	expect 4 "her whole history holds nothing to export" \
		"$SMIME" admin recover --user sol@example.org --reason "x" -o "$T/t-r.p12" --password-file "$T/recpw"
	contains "and the answer names --serial for signing keys" "$T/.err" "serial"
else
	not_ok "smimed starts again" "$(tail "$D3.log")"
fi
done_testing
