#!/usr/bin/env bash
# smime admin for SCEP, against a real smimed: SCEP profiles (create, list,
# show, update, delete, and what the service refuses, each with its HTTP
# status, message and exit status), device challenges (one line alone on
# standard output, --json, unknown device or profile), and the requests an
# admin decides: PKCSReqs made with tests/tools/scep_tool under a profile
# with approval, listed, shown, approved (the certificate is issued and
# known to smime admin cert show) and rejected (the device is told why),
# each decision in the audit log with the transaction id.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "smime admin for SCEP" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
if ! command -v jq >/dev/null; then
	skip "smime admin for SCEP" "jq is needed"
	done_testing
	exit
fi
# The tools are built next to smime (scripts/run-tests.sh: SMIME=build/smime).
SCEP_TOOL=${SCEP_TOOL:-$(dirname "$SMIME")/tests/tools/scep_tool}
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT

if start_smimed "$D"; then ok "smimed starts"; else
	not_ok "smimed starts" "$(tail -20 "$D.log")"; done_testing; exit 1; fi
S=$SVC_URL/scep

# json_is NAME FILTER [FILE]: jq -e FILTER holds on FILE (default: the output).
json_is() {
	if jq -e "$2" "${3:-$T/.out}" >/dev/null 2>&1; then ok "$1"; else
		not_ok "$1" "jq '$2' on: $(head -c 1500 "${3:-$T/.out}")"; fi
}
# refused NAME EXIT HTTP MESSAGE CMD...: CMD exits EXIT, and says MESSAGE and (HTTP n).
refused() {
	local name=$1 want=$2 http=$3 msg=$4
	shift 4
	expect "$want" "$name: exit $want" "$@"
	contains "$name: says /$msg/" "$T/.err" "$msg"
	contains "$name: HTTP $http" "$T/.err" "\(HTTP $http\)$"
}

# ---- help ------------------------------------------------------------------
expect 0 "device challenge --help" "$SMIME" admin device challenge --help
contains "the help says the challenge is shown once" "$T/.out" "shown this once"
contains "the help says it is single use" "$T/.out" "single use"
for v in "scep-profile list" "scep-profile show" "scep-profile create" "scep-profile update" \
	"scep-profile delete" "scep list" "scep show" "scep approve" "scep reject"; do
	# shellcheck disable=SC2086
	expect 0 "$v --help" "$SMIME" admin $v --help
done
expect 0 "scep-profile create --help" "$SMIME" admin scep-profile create --help
for o in --rsa-min-bits --ec-curves --subject --san-email "--\[no-\]non-repudiation" --validity-days \
	--renewal-days "--\[no-\]approval" --challenge-minutes "--\[no-\]allow-sha1"; do
	contains "create --help names $o" "$T/.out" "^  $o"
done
expect 0 "smime admin --help" "$SMIME" admin --help
contains "the admin help lists scep-profile create" "$T/.out" "smime admin scep-profile create NAME --ca ID"
contains "the admin help lists device challenge" "$T/.out" "smime admin device challenge ID --profile NAME"
contains "the admin help lists scep approve" "$T/.out" "smime admin scep approve TRANSACTION"
expect 2 "scep without an action" "$SMIME" admin scep
contains "scep without an action: names them" "$T/.err" "list, show, approve, reject"
expect 2 "an unknown object names the SCEP ones" "$SMIME" admin scep-profiles list
contains "the unknown object's message names scep-profile" "$T/.err" "scep-profile, scep,"

# ---- SCEP profiles -----------------------------------------------------------
expect 0 "scep-profile list with none" "$SMIME" admin scep-profile list --json
json_is "no SCEP profiles at first" '.items == []'
expect 0 "scep-profile create with the defaults" "$SMIME" admin scep-profile create devices --ca issuing
contains "create prints the profile: its CA" "$T/.out" "^ca: +issuing$"
contains "create prints the defaults: rsa_min_bits 2048" "$T/.out" "^rsa_min_bits: +2048$"
contains "create prints the defaults: ec_curves P-256" "$T/.out" "^ec_curves: +P-256$"
contains "create prints the defaults: subject CN={email}" "$T/.out" "^subject: +CN=\{email\}$"
contains "create prints the defaults: validity 365" "$T/.out" "^validity_days: +365$"
contains "create prints the defaults: no approval" "$T/.out" "^approval: +no$"
expect 0 "scep-profile create with every option (--json)" "$SMIME" admin --json scep-profile create \
	strict --ca issuing --rsa-min-bits 3072 --ec-curves 'P-384, P-521' \
	--subject 'CN={email},serialNumber={device}' --san-email primary --non-repudiation \
	--validity-days 730 --renewal-days 60 --approval --challenge-minutes 15 --allow-sha1
json_is "every option is in the profile" '.name == "strict" and .ca == "issuing" and
	.rsa_min_bits == 3072 and .ec_curves == ["P-384","P-521"] and
	.subject == "CN={email},serialNumber={device}" and .san_email == "primary" and
	.non_repudiation == true and .validity_days == 730 and .renewal_days == 60 and
	.approval == true and .challenge_minutes == 15 and .allow_sha1 == true and
	(.created | test("^[0-9-]+T[0-9:]+Z$"))'
expect 0 "--no- forms and no EC curves" "$SMIME" admin --json scep-profile create rsaonly --ca issuing \
	--ec-curves '' --no-non-repudiation --no-approval --no-allow-sha1
json_is "--ec-curves '': none; the --no- forms: false" '.ec_curves == [] and .rsa_min_bits == 2048 and
	.non_repudiation == false and .approval == false and .allow_sha1 == false'

refused "the same name again" 5 409 "a SCEP profile named 'devices' exists" \
	"$SMIME" admin scep-profile create devices --ca issuing
refused "a curve that is not P-256, P-384, P-521" 3 400 "ec_curves: P-256, P-384 and P-521" \
	"$SMIME" admin scep-profile create bad --ca issuing --ec-curves P-256,P-192
refused "a curve twice" 3 400 "each once" \
	"$SMIME" admin scep-profile create bad --ca issuing --ec-curves P-256,P-256
refused "rsa_min_bits 1024" 3 400 "rsa_min_bits: 0 \(no RSA\) or 2048 to 8192" \
	"$SMIME" admin scep-profile create bad --ca issuing --rsa-min-bits 1024
refused "rsa_min_bits 16384" 3 400 "rsa_min_bits" \
	"$SMIME" admin scep-profile create bad --ca issuing --rsa-min-bits 16384
refused "no RSA and no curve: no key would be taken" 3 400 "no key would be taken" \
	"$SMIME" admin scep-profile create bad --ca issuing --rsa-min-bits 0 --ec-curves ''
refused "a subject template with an unknown attribute" 3 400 "subject: 'CN=\{name\}' is not one of" \
	"$SMIME" admin scep-profile create bad --ca issuing --subject 'CN={name}'
refused "a subject template with a field twice" 3 400 "repeated" \
	"$SMIME" admin scep-profile create bad --ca issuing --subject 'CN={email},CN={email}'
refused "an unknown CA" 4 404 "no CA 'nope'" \
	"$SMIME" admin scep-profile create bad --ca nope
refused "a CA that does not issue (the root)" 5 422 "CA 'root' does not issue certificates" \
	"$SMIME" admin scep-profile create bad --ca root
refused "san_email neither all nor primary" 3 400 "san_email: all or primary" \
	"$SMIME" admin scep-profile create bad --ca issuing --san-email some
refused "validity_days 826" 3 400 "validity_days: 1 to 825" \
	"$SMIME" admin scep-profile create bad --ca issuing --validity-days 826
refused "renewal_days beyond the validity" 3 400 "renewal_days: 0 to validity_days" \
	"$SMIME" admin scep-profile create bad --ca issuing --validity-days 30 --renewal-days 31
refused "challenge_minutes 0" 3 400 "challenge_minutes: 1 to 10080" \
	"$SMIME" admin scep-profile create bad --ca issuing --challenge-minutes 0
refused "a name with capitals" 3 400 "name: 1 to 64 of a-z, 0-9 and '-'" \
	"$SMIME" admin scep-profile create Bad_Name --ca issuing
expect 2 "create without --ca: usage error" "$SMIME" admin scep-profile create bad
contains "without --ca: says so" "$T/.err" "--ca is required"
expect 2 "--validity-days that is no number: usage error" "$SMIME" admin scep-profile create bad \
	--ca issuing --validity-days 12x
contains "not a number: named" "$T/.err" "--validity-days: a whole number, not '12x'"
expect 2 "an option of another action: usage error" "$SMIME" admin scep-profile create bad --ca issuing \
	--reason x
contains "an option of another action: says so" "$T/.err" "--reason does not apply here"
"$SMIME" admin --json scep-profile create bad --ca issuing --rsa-min-bits 1024 >"$T/.out" 2>"$T/.err"
rc=$?
[ $rc = 3 ] && jq -e '.error.http == 400 and .error.exit == 3 and (.error.message | test("rsa_min_bits"))' \
	"$T/.err" >/dev/null && ok "--json: the refusal as one JSON error on standard error" ||
	not_ok "--json refusal ($rc)" "$(cat "$T/.err")"
expect 0 "scep-profile list --json" "$SMIME" admin scep-profile list --json
json_is "the refused profiles were not made" '[.items[].name] | sort == ["devices","rsaonly","strict"]'
expect 0 "scep-profile list" "$SMIME" admin scep-profile list
contains "the list is a table with a header" "$T/.out" "^NAME +CA +RSA-MIN +EC-CURVES +DAYS +RENEW +APPROVAL +CHALLENGE-MIN +SUBJECT$"
contains "the list has strict's row" "$T/.out" "^strict +issuing +3072 +P-384,P-521 +730 +60 +yes +15 +CN=\{email\},serialNumber=\{device\}$"
contains "an empty curve list shows as -" "$T/.out" "^rsaonly +issuing +2048 +- "
[ "$(wc -l <"$T/.out")" = 4 ] && ok "the list: a header and three rows" || not_ok "the list: 4 lines" "$(cat "$T/.out")"
expect 0 "scep-profile show" "$SMIME" admin scep-profile show strict
contains "show: san_email" "$T/.out" "^san_email: +primary$"
contains "show: non_repudiation" "$T/.out" "^non_repudiation: +yes$"
contains "show: updated" "$T/.out" "^updated: +[0-9-]+T[0-9:]+Z$"
expect 4 "show an unknown profile: exit 4" "$SMIME" admin scep-profile show nope
contains "show an unknown profile: HTTP 404" "$T/.err" "\(HTTP 404\)"

# update: what is given changes, the rest stays
expect 0 "scep-profile show --json (before the update)" "$SMIME" admin scep-profile show strict --json
cp "$T/.out" "$T/strict-before.json"
sleep 1
expect 0 "scep-profile update two fields" "$SMIME" admin scep-profile update strict --validity-days 400 \
	--no-approval
contains "update prints the profile: validity changed" "$T/.out" "^validity_days: +400$"
expect 0 "scep-profile show --json (after the update)" "$SMIME" admin scep-profile show strict --json
json_is "update: the two fields changed" '.validity_days == 400 and .approval == false'
jq -S 'del(.validity_days, .approval, .updated)' "$T/strict-before.json" >"$T/a.json"
jq -S 'del(.validity_days, .approval, .updated)' "$T/.out" >"$T/b.json"
same "update: every other field is as it was (created too)" "$T/a.json" "$T/b.json"
[ "$(jq -r .updated "$T/.out")" != "$(jq -r .updated "$T/strict-before.json")" ] &&
	ok "update: updated is later" || not_ok "update: updated is later" "$(cat "$T/.out")"
expect 0 "update the curves, the subject and the CA" "$SMIME" admin --json scep-profile update strict \
	--ec-curves P-256 --subject 'emailAddress={email}' --ca issuing --san-email all --allow-sha1 \
	--rsa-min-bits 4096 --renewal-days 10 --challenge-minutes 120 --no-non-repudiation
json_is "update: every option reaches the profile" '.ec_curves == ["P-256"] and
	.subject == "emailAddress={email}" and .san_email == "all" and .allow_sha1 == true and
	.rsa_min_bits == 4096 and .renewal_days == 10 and .challenge_minutes == 120 and
	.non_repudiation == false and .validity_days == 400'
expect 0 "scep-profile show --json (before a refused update)" "$SMIME" admin scep-profile show strict --json
cp "$T/.out" "$T/strict-before.json"
refused "update with a bad curve" 3 400 "ec_curves" \
	"$SMIME" admin scep-profile update strict --ec-curves P-256,secp256k1
refused "update with rsa_min_bits 1024" 3 400 "rsa_min_bits" \
	"$SMIME" admin scep-profile update strict --rsa-min-bits 1024
refused "update to a bad subject template" 3 400 "subject" \
	"$SMIME" admin scep-profile update strict --subject 'O={email}'
refused "update to an unknown CA" 4 404 "no CA 'nope'" \
	"$SMIME" admin scep-profile update strict --ca nope
refused "update to renewal_days beyond the validity" 3 400 "renewal_days" \
	"$SMIME" admin scep-profile update strict --renewal-days 401
expect 0 "scep-profile show --json (after the refused updates)" "$SMIME" admin scep-profile show strict --json
same "the refused updates changed nothing" "$T/strict-before.json" "$T/.out"
refused "update an unknown profile" 4 404 "no SCEP profile 'nope'" \
	"$SMIME" admin scep-profile update nope --approval
expect 2 "update without an option: usage error" "$SMIME" admin scep-profile update strict
contains "update without an option: says so" "$T/.err" "nothing to change"

# delete
expect 0 "scep-profile delete" "$SMIME" admin scep-profile delete rsaonly
contains "delete says so on standard error" "$T/.err" "SCEP profile rsaonly deleted"
[ ! -s "$T/.out" ] && ok "delete prints nothing on standard output" || not_ok "delete: empty stdout" "$(cat "$T/.out")"
expect 4 "it is gone" "$SMIME" admin scep-profile show rsaonly
refused "delete it again" 4 404 "no SCEP profile 'rsaonly'" "$SMIME" admin scep-profile delete rsaonly
expect 0 "delete --json" "$SMIME" admin --json scep-profile delete strict
json_is "delete --json answers ok" '.ok == true'
expect 0 "the audit log" "$SMIME" admin audit --json
json_is "the profiles' changes are audited" '([.items[] | select(.action == "scep.profile.create")] | length) == 3 and
	([.items[] | select(.action == "scep.profile.update" and .object == "strict")] | length) == 2 and
	([.items[] | select(.action == "scep.profile.delete")] | length) == 2'

# ---- device challenges -----------------------------------------------------
expect 0 "a user" "$SMIME" admin user add carol@example.org --name Carol
CAROL=$(cat "$T/.out")
expect 0 "carol's laptop" "$SMIME" admin device add --user carol@example.org --name laptop --platform linux
DEV=$(cat "$T/.out")
expect 0 "device challenge" "$SMIME" admin device challenge "$DEV" --profile devices
[ "$(wc -l <"$T/.out")" = 1 ] && ok "device challenge: one line on standard output" ||
	not_ok "device challenge: one line" "$(cat "$T/.out")"
grep -qxE '[0-9a-f]{16}-[0-9a-f]{32}' "$T/.out" && ok "device challenge: the line is 16hex-32hex" ||
	not_ok "device challenge: 16hex-32hex" "$(cat "$T/.out")"
ID=$(cut -c1-16 "$T/.out")
SECRET=$(cut -c18- "$T/.out")
contains "device challenge: standard error says it is shown once" "$T/.err" "challenge $ID for device $DEV .*shown this once"
CH=$("$SMIME" admin device challenge "$DEV" --profile devices 2>/dev/null)
[[ "$CH" =~ ^[0-9a-f]{16}-[0-9a-f]{32}$ ]] && ok 'CH=$(smime admin device challenge ...) holds the challenge alone' ||
	not_ok 'CH=$(...) holds the challenge' "$CH"
[ "$CH" != "$(cat "$T/.out")" ] && ok "each challenge is new" || not_ok "each challenge is new"
expect 0 "device challenge -q" "$SMIME" admin -q device challenge "$DEV" --profile devices
[ ! -s "$T/.err" ] && [ "$(wc -l <"$T/.out")" = 1 ] && ok "-q: the challenge only, nothing on standard error" ||
	not_ok "-q" "$(cat "$T/.out" "$T/.err")"
expect 0 "device challenge --json --seconds 120" "$SMIME" admin device challenge "$DEV" --profile devices \
	--seconds 120 --json
json_is "--json: the whole answer" '(.challenge | test("^[0-9a-f]{16}-[0-9a-f]{32}$")) and
	.id == (.challenge | .[0:16]) and .profile == "devices" and .device == "'"$DEV"'" and
	.user == "'"$CAROL"'" and (.expires | test("Z$"))'
left=$(( $(date -d "$(jq -r .expires "$T/.out")" +%s) - $(date +%s) ))
[ "$left" -ge 100 ] && [ "$left" -le 125 ] && ok "--seconds 120: it expires in two minutes ($left s)" ||
	not_ok "--seconds 120: expires in two minutes" "$left s"
expect 0 "device challenge --json without --seconds" "$SMIME" admin --json device challenge "$DEV" --profile devices
left=$(( $(date -d "$(jq -r .expires "$T/.out")" +%s) - $(date +%s) ))
[ "$left" -ge 3500 ] && [ "$left" -le 3605 ] && ok "without --seconds: the profile's 60 minutes ($left s)" ||
	not_ok "without --seconds: 60 minutes" "$left s"
refused "a challenge for an unknown device" 4 404 "no device 'no-such-device'" \
	"$SMIME" admin device challenge no-such-device --profile devices
[ ! -s "$T/.out" ] && ok "an unknown device: nothing on standard output" || not_ok "unknown device: stdout" "$(cat "$T/.out")"
refused "a challenge of an unknown profile" 4 404 "no SCEP profile 'nope'" \
	"$SMIME" admin device challenge "$DEV" --profile nope
[ ! -s "$T/.out" ] && ok "an unknown profile: nothing on standard output" || not_ok "unknown profile: stdout" "$(cat "$T/.out")"
refused "--seconds 0" 3 400 "seconds: 1 to 604800" "$SMIME" admin device challenge "$DEV" --profile devices --seconds 0
refused "--seconds 604801" 3 400 "seconds: 1 to 604800" "$SMIME" admin device challenge "$DEV" --profile devices --seconds 604801
expect 2 "--seconds that is no number: usage error" "$SMIME" admin device challenge "$DEV" --profile devices --seconds soon
expect 2 "without --profile: usage error" "$SMIME" admin device challenge "$DEV"
contains "without --profile: says so" "$T/.err" "--profile is required"
expect 2 "without the device: usage error" "$SMIME" admin device challenge --profile devices
contains "without the device: names it" "$T/.err" "missing ID"
"$SMIME" admin --json device challenge "$DEV" --profile nope >"$T/.out" 2>"$T/.err"
[ $? = 4 ] && jq -e '.error.http == 404 and .error.code == "not-found"' "$T/.err" >/dev/null &&
	ok "--json: an unknown profile as a JSON error" || not_ok "--json unknown profile" "$(cat "$T/.err")"
expect 0 "the audit log" "$SMIME" admin audit --json
json_is "the challenge is audited by its id" '[.items[] | select(.action == "scep.challenge" and
	.object == "'"$DEV"'" and .detail.challenge == "'"$ID"'" and .detail.profile == "devices")] | length == 1'
lacks "the secret half is in no audit entry" "$T/.out" "$SECRET"

# ---- requests waiting for an admin ------------------------------------------
if [ ! -x "$SCEP_TOOL" ]; then
	skip "SCEP requests: list, show, approve, reject" "no scep_tool at $SCEP_TOOL (build the tests: ninja -C $(dirname "$SMIME"))"
	done_testing
	exit
fi
expect 0 "a SCEP profile with approval" "$SMIME" admin scep-profile create approved --ca issuing --approval
# The RA certificate: the one of GetCACert that is not a CA.
curl -s -o "$T/getcacert.der" "$S?operation=GetCACert"
openssl pkcs7 -inform DER -in "$T/getcacert.der" -print_certs -out "$T/getcacert.pem" 2>/dev/null
awk -v d="$T" '/BEGIN CERTIFICATE/{n++} n{print > (d "/gcc" n ".pem")}' "$T/getcacert.pem"
for f in "$T"/gcc*.pem; do
	openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE' || cp "$f" "$T/ra.pem"
done
[ -s "$T/ra.pem" ] && ok "GetCACert has the RA certificate" || not_ok "GetCACert: the RA" "$(ls "$T")"

# send NAME CHALLENGE: a PKCSReq of a new key with CHALLENGE for carol's
# laptop, sent to the endpoint; its transaction id in $TID, key and
# self-signed certificate in $T/NAME.{key,self}, the reply read in $T/NAME.read.
send() {
	local n=$1
	"$SCEP_TOOL" key rsa:2048 "$T/$n.key"
	TID=$("$SCEP_TOOL" make --type pkcsreq --key "$T/$n.key" --ra "$T/ra.pem" --challenge "$2" \
		--cn "$n" --out "$T/$n.der" --self "$T/$n.self")
	curl -s -o "$T/$n.reply" --data-binary @"$T/$n.der" -H 'Content-Type: application/x-pki-message' \
		"$S?operation=PKIOperation"
	"$SCEP_TOOL" read --in "$T/$n.reply" --key "$T/$n.key" --cert "$T/$n.self" >"$T/$n.read" 2>&1
}
# pending NAME [PROFILE]: send with a new challenge of PROFILE (default
# approved), and check that the request is PENDING.
pending() {
	send "$1" "$("$SMIME" admin device challenge "$DEV" --profile "${2:-approved}" 2>/dev/null)"
	grep -q "status=PENDING tid=$TID" "$T/$1.read" && ok "$1: the request is PENDING ($TID)" ||
		not_ok "$1: the request is PENDING" "$(cat "$T/$1.read")"
}
# poll NAME TID: the device's CertPoll, its reply read into $T/NAME.poll.
poll() {
	"$SCEP_TOOL" make --type poll --key "$T/$1.key" --ra "$T/ra.pem" --signer-cert "$T/$1.self" \
		--tid "$2" --cn "$1" --out "$T/$1.poll.der" >/dev/null
	curl -s -o "$T/$1.poll.reply" --data-binary @"$T/$1.poll.der" -H 'Content-Type: application/x-pki-message' \
		"$S?operation=PKIOperation"
	"$SCEP_TOOL" read --in "$T/$1.poll.reply" --key "$T/$1.key" --cert "$T/$1.self" \
		--cert-out "$T/$1.issued.pem" >"$T/$1.poll" 2>&1
}

expect 0 "scep list with nothing pending" "$SMIME" admin scep list
[ "$(wc -l <"$T/.out")" = 1 ] && contains "scep list: only the header" "$T/.out" \
	"^TRANSACTION +STATUS +PROFILE +USER +DEVICE +RENEWAL +CREATED$" || not_ok "scep list: only the header" "$(cat "$T/.out")"
# A second apart: the list is ordered by the second each came in.
pending one; TID1=$TID
sleep 1.1
pending two; TID2=$TID
sleep 1.1
pending three; TID3=$TID
expect 0 "scep list" "$SMIME" admin scep list
for t in "$TID1" "$TID2" "$TID3"; do
	contains "scep list: ${t:0:12}... pending, profile, user by address, device by name" "$T/.out" "^$t +pending +approved +carol@example.org +laptop +no +[0-9-]+T[0-9:]+Z$"
done
expect 0 "scep list --json" "$SMIME" admin scep list --json
json_is "scep list --json: three pending, oldest first" '[.items[].transaction] == ["'"$TID1"'","'"$TID2"'","'"$TID3"'"] and
	all(.items[]; .status == "pending" and .ca == "issuing" and .renewal == false)'
expect 0 "scep show" "$SMIME" admin scep show "$TID1"
contains "scep show: the transaction" "$T/.out" "^transaction: +$TID1$"
contains "scep show: pending" "$T/.out" "^status: +pending$"
contains "scep show: the device by name, its id beside" "$T/.out" "^device: +laptop, id $DEV$"
contains "scep show: the user by address, its id beside" "$T/.out" "^user: +carol@example.org.*, id $CAROL$"
contains "scep show: no certificate yet" "$T/.out" "^certificate: +-$"
expect 0 "scep show by the first six characters of the transaction id" "$SMIME" admin --json scep show "${TID1:0:6}"
json_is "the same request" '.transaction == "'"$TID1"'" and .user_email == "carol@example.org" and .device_name == "laptop"'
refused "scep show of an unknown transaction" 4 404 "no SCEP transaction 'ABCDEF'" "$SMIME" admin scep show ABCDEF

# approve
status_is "an approval with a reason (only rejections have one): 400" 400 POST \
	"/api/v1/scep/requests/$TID1/approve" '{"reason":"looks fine"}'
expect 0 "scep approve" "$SMIME" admin scep approve "$TID1"
SERIAL=$(cat "$T/.out")
[ "$(wc -l <"$T/.out")" = 1 ] && [[ "$SERIAL" =~ ^[0-9A-F]{16,64}$ ]] && ok "approve prints the serial alone ($SERIAL)" ||
	not_ok "approve prints the serial alone" "$(cat "$T/.out")"
contains "approve says what was issued" "$T/.err" "SCEP request $TID1 approved: certificate $SERIAL issued for carol@example.org"
expect 0 "smime admin cert show knows the serial" "$SMIME" admin cert show "$SERIAL" --json
json_is "the certificate: carol's, from SCEP, of profile approved, active" '.serial == "'"$SERIAL"'" and
	.source == "scep" and .profile == "approved" and .email == "carol@example.org" and
	.device == "'"$DEV"'" and .status == "active"'
CERT_SHA=$(jq -r .sha256 "$T/.out")
expect 0 "scep show after the approval" "$SMIME" admin scep show "$TID1" --json
json_is "the request is issued, naming the certificate" '.status == "issued" and .certificate == "'"$CERT_SHA"'"'
poll one "$TID1"
contains "the device's CertPoll gets SUCCESS" "$T/one.poll" "status=SUCCESS"
if [ -s "$T/one.issued.pem" ] && [ "$(openssl x509 -in "$T/one.issued.pem" -noout -serial | cut -d= -f2)" = "$SERIAL" ]; then
	ok "and the certificate approved"
else
	not_ok "the CertPoll's certificate is the approved one" "$(cat "$T/one.poll")"
fi
refused "approve it again" 5 409 "SCEP request $TID1 is issued, not pending" "$SMIME" admin scep approve "$TID1"
[ ! -s "$T/.out" ] && ok "approve again: nothing on standard output" || not_ok "approve again: stdout" "$(cat "$T/.out")"
refused "reject the issued one" 5 409 "is issued, not pending" "$SMIME" admin scep reject "$TID1"
refused "approve an unknown transaction" 4 404 "no SCEP transaction" "$SMIME" admin scep approve ABCDEF

# reject
expect 0 "scep reject --reason" "$SMIME" admin scep reject "$TID2" --reason "not a company device"
[ ! -s "$T/.out" ] && ok "reject prints nothing on standard output" || not_ok "reject: stdout" "$(cat "$T/.out")"
contains "reject says so, with the reason" "$T/.err" "SCEP request $TID2 rejected \(not a company device\)"
expect 0 "scep show after the rejection" "$SMIME" admin scep show "$TID2"
contains "the request is rejected" "$T/.out" "^status: +rejected$"
contains "with the reason" "$T/.out" "^error: +not a company device$"
poll two "$TID2"
contains "the device's CertPoll gets FAILURE with the reason" "$T/two.poll" "status=FAILURE failInfo=badRequest text=.*not a company device"
refused "reject it again" 5 409 "is rejected, not pending" "$SMIME" admin scep reject "$TID2"
refused "approve the rejected one" 5 409 "is rejected, not pending" "$SMIME" admin scep approve "$TID2"
long=$(printf 'x%.0s' $(seq 201))
refused "a reason of 201 characters" 3 400 "reason: 1 to 200 characters" "$SMIME" admin scep reject "$TID3" --reason "$long"
refused "an empty reason" 3 400 "reason: 1 to 200 characters" "$SMIME" admin scep reject "$TID3" --reason ""
expect 0 "the refused rejections left it pending" "$SMIME" admin scep show "$TID3" --json
json_is "still pending" '.status == "pending"'
expect 0 "scep reject --json without a reason" "$SMIME" admin --json scep reject "$TID3"
json_is "reject --json: the request, rejected by an admin" '.request.transaction == "'"$TID3"'" and
	.request.status == "rejected" and .request.error == "rejected by an admin"'

# the lists by status
expect 0 "scep list: nothing pending now" "$SMIME" admin scep list --json
json_is "nothing pending" '.items == []'
expect 0 "scep list --status issued" "$SMIME" admin scep list --status issued --json
json_is "one issued" '[.items[].transaction] == ["'"$TID1"'"] and .items[0].certificate == "'"$CERT_SHA"'"'
expect 0 "scep list --status rejected" "$SMIME" admin scep list --status rejected
contains "rejected: two" "$T/.out" "^$TID2 +rejected "
contains "rejected: three" "$T/.out" "^$TID3 +rejected "
expect 0 "scep list --status all" "$SMIME" admin scep list --status all --json
json_is "all three" '(.items | length) == 3'
expect 0 "scep list --status all --limit 2" "$SMIME" admin scep list --status all --limit 2 --json
json_is "--limit 2: the two oldest" '[.items[].transaction] == ["'"$TID1"'","'"$TID2"'"]'
expect 2 "--status that is none of them: usage error" "$SMIME" admin scep list --status done
contains "the statuses are named" "$T/.err" "pending, issued, rejected, all"
expect 2 "--limit 0: usage error" "$SMIME" admin scep list --limit 0
expect 0 "--limit beyond one page of the service" "$SMIME" admin scep list --status all --limit 1001 --json
json_is "--limit 1001: all three, oldest first" '[.items[].transaction] == ["'"$TID1"'","'"$TID2"'","'"$TID3"'"]'
# the API's pages, one request each, oldest first
status_is "GET scep/requests?status=all&limit=1" 200 GET "/api/v1/scep/requests?status=all&limit=1"
jq -e '[.items[].transaction] == ["'"$TID1"'"] and (.next | type) == "string"' "$T/.body" >/dev/null &&
	ok "page 1: the oldest, and a cursor" || not_ok "page 1: the oldest, and a cursor" "$(head -c 600 "$T/.body")"
NEXT=$(jq -r .next "$T/.body")
status_is "page 2" 200 GET "/api/v1/scep/requests?status=all&limit=1&after=$NEXT"
jq -e '[.items[].transaction] == ["'"$TID2"'"] and (.next | type) == "string"' "$T/.body" >/dev/null &&
	ok "page 2: the next one" || not_ok "page 2: the next one" "$(head -c 600 "$T/.body")"
NEXT=$(jq -r .next "$T/.body")
status_is "page 3" 200 GET "/api/v1/scep/requests?status=all&limit=1&after=$NEXT"
jq -e '[.items[].transaction] == ["'"$TID3"'"] and .next == null' "$T/.body" >/dev/null &&
	ok "page 3: the last, no cursor" || not_ok "page 3: the last, no cursor" "$(head -c 600 "$T/.body")"
status_is "a cursor of another list: 400" 400 GET "/api/v1/scep/requests?status=all&after=a.1"
status_is "limit beyond 1000: 400" 400 GET "/api/v1/scep/requests?limit=1001"

# the audit log
expect 0 "the audit log" "$SMIME" admin audit --json
json_is "scep.approve is audited with the transaction id" '[.items[] | select(.action == "scep.approve" and
	.object == "'"$SERIAL"'" and .detail.transaction == "'"$TID1"'" and .detail.serial == "'"$SERIAL"'")] | length == 1'
json_is "scep.reject is audited with the transaction id and the reason" '[.items[] | select(.action == "scep.reject" and
	.object == "'"$TID2"'" and .detail.transaction == "'"$TID2"'" and .detail.reason == "not a company device")] | length == 1'
json_is "the rejection without a reason too" '[.items[] | select(.action == "scep.reject" and
	.detail.transaction == "'"$TID3"'" and .detail.reason == "rejected by an admin")] | length == 1'
json_is "no decision was audited for the refused attempts" '[.items[] | select(.action == "scep.approve" or .action == "scep.reject")] | length == 3'
expect 0 "the audit table shows the approval" "$SMIME" admin audit
contains "the audit table: scep.approve with the transaction" "$T/.out" "scep\.approve +$SERIAL +.*$TID1"

# a SCEP profile deleted: its challenges are void; a request waiting under it
# cannot be approved (the profile decides the certificate) but can be rejected
expect 0 "a second profile with approval" "$SMIME" admin scep-profile create gone --ca issuing --approval
pending four gone; TID4=$TID
expect 0 "a challenge of it, not used yet" "$SMIME" admin device challenge "$DEV" --profile gone
CH5=$(cat "$T/.out")
expect 0 "the profile is deleted" "$SMIME" admin scep-profile delete gone
send five "$CH5"
contains "its unused challenge is refused by the endpoint" "$T/five.read" "status=FAILURE failInfo=badRequest"
refused "approving a request whose profile is gone" 4 404 "no SCEP profile 'gone'" "$SMIME" admin scep approve "$TID4"
expect 0 "it can be rejected" "$SMIME" admin scep reject "$TID4" --reason "profile retired"

done_testing
