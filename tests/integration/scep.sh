#!/usr/bin/env bash
# SCEP (RFC 8894) against a running smimed: certmonger enrolls through its
# daemon and through its scep-submit helper driven directly; every refusal
# of the issue's list answers the right failInfo, issues nothing and is
# audited; PENDING until an admin approves; GetCert and GetCRL; the
# throttle of wrong challenges per address and per device.
. "$(dirname "$0")/lib.sh"

SCEP_TOOL=${SCEP_TOOL:-$(dirname "$SMIME")/tests/tools/scep_tool}
if [ ! -x "$SMIMED" ] || [ ! -x "$SCEP_TOOL" ]; then
	skip "SCEP tests" "smimed or tests/tools/scep_tool is not built"
	done_testing
	exit 0
fi

D=$T/svc
CM_PID=
cleanup() {
	[ -n "$CM_PID" ] && kill -TERM "$CM_PID" 2>/dev/null && wait "$CM_PID" 2>/dev/null
	stop_smimed >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

start_smimed "$D" || { not_ok "smimed starts" "$(tail -5 "$D.log")"; done_testing; exit 1; }
SCEP=$SVC_URL/scep

# ---- no SCEP profile yet -------------------------------------------------
got=$(curl -s -o "$T/.body" -w '%{http_code}' "$SCEP?operation=GetCACaps")
[ "$got" = 404 ] && jq -e .error.message "$T/.body" >/dev/null && ok "GetCACaps before any SCEP profile: 404 with a JSON error" ||
	not_ok "GetCACaps before any SCEP profile: 404 (got $got)" "$(cat "$T/.body")"

# ---- users, devices, profiles --------------------------------------------
api POST /api/v1/users '{"emails":["alice@example.com","alice.alt@example.com"],"name":"Alice"}' >/dev/null
ALICE=$(jq -r .id "$T/.body")
api POST /api/v1/users '{"emails":["bob@example.com"],"name":"Bob"}' >/dev/null
BOB=$(jq -r .id "$T/.body")
mkdev() { api POST /api/v1/devices "{\"user\":\"$1\",\"name\":\"$2\",\"platform\":\"linux\"}" >/dev/null; jq -r .id "$T/.body"; }
DA=$(mkdev "$ALICE" laptop)
DA2=$(mkdev "$ALICE" phone)
DA3=$(mkdev "$ALICE" tablet)
DB=$(mkdev "$BOB" laptop)
CA=$(api GET /api/v1/cas >/dev/null; jq -r '[.items[] | select(.issuing)][0].id' "$T/.body")
status_is "SCEP profile devices: created (renewal open the whole validity)" 201 POST /api/v1/scep-profiles \
	"{\"name\":\"devices\",\"ca\":\"$CA\",\"renewal_days\":365,\"non_repudiation\":true}"
status_is "SCEP profile approve: created (requests wait for an admin)" 201 POST /api/v1/scep-profiles \
	"{\"name\":\"approve\",\"ca\":\"$CA\",\"approval\":true}"
status_is "SCEP profile legacy: created (takes SHA-1)" 201 POST /api/v1/scep-profiles \
	"{\"name\":\"legacy\",\"ca\":\"$CA\",\"allow_sha1\":true}"
status_is "SCEP profile: a subject template outside S/MIME BR 7.1.4.2.3 is refused" 400 POST \
	/api/v1/scep-profiles "{\"name\":\"bad\",\"ca\":\"$CA\",\"subject\":\"CN={email},O=Evil\"}"
status_is "SCEP profile: an unknown CA is refused" 404 POST /api/v1/scep-profiles \
	'{"name":"bad","ca":"nope"}'

challenge() { # DEVICE PROFILE [SECONDS] -> the challenge text
	local extra=
	[ -n "${3:-}" ] && extra=",\"seconds\":$3"
	api POST "/api/v1/devices/$1/scep-challenge" "{\"profile\":\"$2\"$extra}" >/dev/null
	jq -r .challenge "$T/.body"
}
CH=$(challenge "$DA" devices)
if [[ "$CH" =~ ^[0-9a-f]{16}-[0-9a-f]{32}$ ]]; then ok "a challenge: 16 hex, '-', 32 hex"; else not_ok "a challenge: 16 hex, '-', 32 hex" "$CH"; fi
sqlite3 "$D/smimed.db" "SELECT hex(hash) FROM scep_challenges" >"$T/hashes"
secret=${CH#*-}
if grep -qi "$secret" "$T/hashes" || sqlite3 "$D/smimed.db" .dump | grep -q "$secret"; then
	not_ok "the challenge's secret is not in the database"
else ok "the challenge's secret is not in the database (its SHA-256 is)"; fi
[ "$(sqlite3 "$D/smimed.db" "SELECT lower(hex(hash)) FROM scep_challenges WHERE id='${CH%%-*}'")" = \
	"$(printf %s "$secret" | sha256sum | cut -d' ' -f1)" ] && ok "the stored hash is the SHA-256 of the secret" ||
	not_ok "the stored hash is the SHA-256 of the secret"

# ---- GetCACaps, GetCACert --------------------------------------------------
for path in /scep /cgi-bin/pkiclient.exe; do
	curl -s -D "$T/h" -o "$T/caps" "$SVC_URL$path?operation=GetCACaps&message=devices"
	for c in AES POSTPKIOperation SHA-256 SHA-512 Renewal SCEPStandard; do
		grep -qx "$c" "$T/caps" || { not_ok "GetCACaps at $path announces $c" "$(cat "$T/caps")"; continue 2; }
	done
	[ "$(head -1 "$T/caps")" = AES ] && ok "GetCACaps at $path: AES first, SHA-256, SHA-512, POSTPKIOperation, Renewal, SCEPStandard" ||
		not_ok "GetCACaps at $path: AES first" "$(cat "$T/caps")"
done
curl -s -D "$T/h" -o "$T/cacert.der" "$SCEP?operation=GetCACert&message=0"
grep -qix 'content-type: application/x-x509-ca-ra-cert' <(tr -d '\r' <"$T/h") &&
	ok "GetCACert: exactly application/x-x509-ca-ra-cert" || not_ok "GetCACert content type" "$(cat "$T/h")"
openssl pkcs7 -inform DER -in "$T/cacert.der" -print_certs >"$T/cacerts.pem" 2>/dev/null
awk -v d="$T" '/BEGIN/{n++} {print > (d "/gc" n ".pem")}' "$T/cacerts.pem"
for f in "$T"/gc*.pem; do
	if openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE'; then :; else cp "$f" "$T/ra.pem"; fi
done
api GET "/api/v1/cas/$CA/chain" >/dev/null
cp "$T/.body" "$T/chain.pem"
awk -v d="$T" '/BEGIN/{n++} {print > (d "/ch" n ".pem")}' "$T/chain.pem"
cp "$T/ch1.pem" "$T/issuing.pem"
cp "$T/ch2.pem" "$T/root.pem"
[ "$(grep -c BEGIN "$T/cacerts.pem")" = 3 ] && ok "GetCACert: the RA, the issuing CA and the root" ||
	not_ok "GetCACert: 3 certificates" "$(grep subject= "$T/cacerts.pem")"
openssl x509 -in "$T/ra.pem" -noout -text >"$T/ra.txt"
contains "the RA is RSA" "$T/ra.txt" 'rsaEncryption'
contains "the RA may encrypt keys (keyEncipherment)" "$T/ra.txt" 'Key Encipherment'
expect 0 "the RA verifies against the smimed chain" openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/ra.pem"
got=$(curl -s -o "$T/.body" -w '%{http_code}' "$SCEP?operation=GetNextCACert")
[ "$got" = 400 ] && ok "an operation SCEP does not offer here: 400" || not_ok "unknown operation: 400 (got $got)"
got=$(curl -s -o "$T/.body" -w '%{http_code}' "$SCEP")
[ "$got" = 400 ] && ok "no operation: 400" || not_ok "no operation: 400 (got $got)"

# ---- helpers: a request made to order, sent, its answer read --------------
"$SCEP_TOOL" key rsa:2048 "$T/k1.pem"
certs_of() { api GET "/api/v1/certificates?device=$1" >/dev/null; jq '.items | length' "$T/.body"; }
send() { # DER -> reply in $T/reply.der, HTTP status echoed
	curl -s -o "$T/reply.der" -w '%{http_code}' -H 'Content-Type: application/x-pki-message' \
		--data-binary "@$1" "$SCEP?operation=PKIOperation"
}
reply() { # KEY SELF -> "status=... failInfo=..." on stdout
	"$SCEP_TOOL" read --in "$T/reply.der" --key "$1" --cert "$2" --cert-out "$T/issued.pem" 2>&1
}
audited() { # NAME ACTION TRANSACTION [FAILINFO]
	api GET "/api/v1/audit?limit=1000" >/dev/null
	if jq -e --arg a "$2" --arg t "$3" --arg f "${4:-}" '[.items[] | select(.action == $a and
		.detail.transaction == $t and ($f == "" or .detail.failInfo == $f))] | length > 0' \
		"$T/.body" >/dev/null; then ok "$1: audited ($2${4:+, $4})"; else
		not_ok "$1: audited ($2${4:+, $4})" "$(jq -c '.items[-3:]' "$T/.body")"; fi
}
# refused NAME FAILINFO DEVICE MAKE-ARGS...: made, sent, FAILURE with FAILINFO,
# nothing issued to DEVICE, audited.
refused() {
	local name=$1 fail=$2 dev=$3 before tid
	shift 3
	before=$(certs_of "$dev")
	tid=$("$SCEP_TOOL" make --ra "$T/ra.pem" --ca "$T/issuing.pem" --out "$T/msg.der" --self "$T/self.pem" "$@") ||
		{ not_ok "$name: made" "scep_tool failed"; return; }
	send "$T/msg.der" >/dev/null
	local key
	key=$(printf '%s\n' "$@" | awk 'p{print; exit} /^--key$/{p=1}')
	reply "$key" "$T/self.pem" >"$T/.rep"
	contains "$name: FAILURE $fail" "$T/.rep" "status=FAILURE failInfo=$fail"
	[ "$(certs_of "$dev")" = "$before" ] && ok "$name: nothing issued" || not_ok "$name: nothing issued"
	audited "$name" scep.refuse "$tid" "$fail"
}

# ---- certmonger, through its daemon ----------------------------------------
CM=/usr/sbin/certmonger
if [ ! -x "$CM" ] || ! command -v getcert >/dev/null; then
	skip "certmonger enrolls through its daemon" "certmonger is not installed (scripts/install-deps.sh installs it)"
	skip "certmonger's scep-submit enrolls" "certmonger is not installed"
else
	B=$T/cm
	mkdir -p "$B/home" "$B/config" "$B/requests" "$B/cas" "$B/local" "$B/tmp"
	CM_ENV=(HOME="$B/home" CERTMONGER_CONFIG_DIR="$B/config" CERTMONGER_REQUESTS_DIR="$B/requests"
		CERTMONGER_CAS_DIR="$B/cas" CERTMONGER_LOCAL_CA_DIR="$B/local" CERTMONGER_TMPDIR="$B/tmp"
		CERTMONGER_SYSTEM_LOCK_FILE="$B/lock" CERTMONGER_PVT_ADDRESS="unix:path=$B/sock")
	cm_env() { env "${CM_ENV[@]}" "$@"; }
	# No bus at all: a private socket (-L), no fork (-n).  env execs the
	# daemon, so that $! is the daemon's own process.
	env "${CM_ENV[@]}" "$CM" -n -L -P "$B/sock" -d 2 -p "$B/pid" 2>>"$B/daemon.log" &
	CM_PID=$!
	for i in $(seq 100); do [ -S "$B/sock" ] && cm_env getcert list-cas >/dev/null 2>&1 && break; sleep 0.1; done
	cm_env getcert add-scep-ca -c smimed -u "$SCEP" >"$T/.out" 2>&1
	for i in $(seq 100); do cm_env getcert list-cas -c smimed 2>/dev/null | grep -q 'SCEP CA certificate thumbprint' && break; sleep 0.1; done
	# The request asks for another subject, another address and more key
	# usages than the profile gives; the certificate carries the profile's.
	cm_env getcert request -c smimed -I dev1 -k "$B/k.pem" -f "$B/c.pem" -N "CN=Someone Else,O=Mallory" \
		-E alice.alt@example.com -u digitalSignature -u keyEncipherment -u dataEncipherment \
		-U id-kp-serverAuth -L "$CH" -w --wait-timeout 60 >"$T/.out" 2>&1
	cm_env getcert list -i dev1 >"$T/cm.list" 2>&1
	contains "certmonger (daemon): the request is issued (MONITORING)" "$T/cm.list" 'status: MONITORING'
	expect 0 "certmonger (daemon): the certificate verifies against the smimed chain" \
		openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" -purpose smimesign "$B/c.pem"
	openssl x509 -in "$B/c.pem" -noout -text >"$T/c.txt" 2>&1
	contains "certmonger (daemon): subject from the profile (CN=alice@example.com)" "$T/c.txt" 'Subject: CN *= *alice@example.com$'
	lacks "certmonger (daemon): not the subject the request asked for" "$T/c.txt" 'Mallory|Someone Else'
	contains "certmonger (daemon): both of the user's addresses" "$T/c.txt" 'email:alice@example.com, email:alice.alt@example.com'
	contains "certmonger (daemon): key usage digitalSignature and nonRepudiation (the profile's)" "$T/c.txt" 'Digital Signature, Non Repudiation$'
	lacks "certmonger (daemon): none of the key usages the request added" "$T/c.txt" 'Key Encipherment|Data Encipherment'
	contains "certmonger (daemon): EKU emailProtection alone" "$T/c.txt" 'E-mail Protection$'
	lacks "certmonger (daemon): not the EKU the request asked for" "$T/c.txt" 'TLS Web Server'
	serial1=$(openssl x509 -in "$B/c.pem" -noout -serial | cut -d= -f2)
	api GET "/api/v1/certificates/$serial1" >/dev/null
	[ "$(jq -r '.source + " " + .device + " " + .status' "$T/.body")" = "scep $DA active" ] &&
		ok "certmonger (daemon): recorded as SCEP, for the challenge's device" ||
		not_ok "certmonger (daemon): recorded as SCEP, for the device" "$(cat "$T/.body")"
	api GET "/api/v1/audit?limit=1000" >/dev/null
	jq -e --arg s "$serial1" '[.items[] | select(.action == "scep.enroll" and .object == $s and
		(.detail.transaction | length > 0))] | length == 1' "$T/.body" >/dev/null &&
		ok "certmonger (daemon): the enrollment is audited with its transaction id" ||
		not_ok "certmonger (daemon): the enrollment is audited with its transaction id"

	# certmonger renews (here with a new key) by a PKCSReq signed with the
	# certificate it has.
	cm_env getcert rekey -i dev1 >"$T/.out" 2>&1
	for i in $(seq 150); do
		s=$(openssl x509 -in "$B/c.pem" -noout -serial 2>/dev/null | cut -d= -f2)
		[ -n "$s" ] && [ "$s" != "$serial1" ] && break
		sleep 0.2
	done
	serial2=$(openssl x509 -in "$B/c.pem" -noout -serial | cut -d= -f2)
	[ "$serial2" != "$serial1" ] && ok "certmonger (daemon): renewal signed with its current certificate gives a new one" ||
		not_ok "certmonger (daemon): renewal gives a new certificate" "$(cm_env getcert list -i dev1)"
	api GET "/api/v1/certificates/$serial1" >/dev/null
	[ "$(jq -r .status "$T/.body")" = superseded ] && ok "certmonger (daemon): the renewed certificate is superseded" ||
		not_ok "certmonger (daemon): the renewed certificate is superseded" "$(cat "$T/.body")"
	audited "certmonger (daemon) renewal" scep.renew "$(sqlite3 "$D/smimed.db" "SELECT id FROM scep_transactions WHERE renewal = 1 LIMIT 1")"

	# Approval: certmonger waits (CA_WORKING), an admin approves, it polls.
	CHP=$(challenge "$DA2" approve)
	cm_env getcert request -c smimed -I dev2 -k "$B/k2.pem" -f "$B/c2.pem" -N "CN=phone" -L "$CHP" >"$T/.out" 2>&1
	for i in $(seq 100); do cm_env getcert list -i dev2 | grep -q 'status: CA_WORKING' && break; sleep 0.2; done
	contains "certmonger (daemon): a profile with approval leaves the request waiting (CA_WORKING)" \
		<(cm_env getcert list -i dev2) 'status: CA_WORKING'
	api GET "/api/v1/scep/requests?status=pending" >/dev/null
	TIDP=$(jq -r --arg d "$DA2" '.items[] | select(.device == $d) | .transaction' "$T/.body")
	[ -n "$TIDP" ] && ok "the waiting request is listed as pending" || not_ok "the waiting request is listed" "$(cat "$T/.body")"
	status_is "an admin approves it" 200 POST "/api/v1/scep/requests/$TIDP/approve"
	audited "approval" scep.approve "$TIDP"
	status_is "approving twice: 409" 409 POST "/api/v1/scep/requests/$TIDP/approve"
	cm_env getcert refresh -i dev2 >/dev/null 2>&1
	for i in $(seq 100); do cm_env getcert list -i dev2 | grep -q 'status: MONITORING' && break; sleep 0.2; done
	contains "certmonger (daemon): after the approval its poll gets the certificate" <(cm_env getcert list -i dev2) 'status: MONITORING'
	expect 0 "certmonger (daemon): the approved certificate verifies" \
		openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$B/c2.pem"

	kill -TERM "$CM_PID" 2>/dev/null; wait "$CM_PID" 2>/dev/null; CM_PID=

	# ---- certmonger's scep-submit, driven directly ------------------------
	S=/usr/lib/certmonger/scep-submit
	timeout 30 "$S" -u "$SCEP" -c >"$T/sub.caps" 2>"$T/.err"; rc=$?
	[ $rc -eq 0 ] && grep -qx Renewal "$T/sub.caps" && ok "scep-submit GetCACaps: exit 0, Renewal announced" ||
		not_ok "scep-submit GetCACaps" "exit $rc $(cat "$T/.err" "$T/sub.caps")"
	timeout 30 "$S" -u "$SCEP" -C >"$T/sub.certs" 2>"$T/.err"; rc=$?
	[ $rc -eq 0 ] && [ "$(grep -c 'BEGIN CERTIFICATE' "$T/sub.certs")" -ge 2 ] && ok "scep-submit GetCACert: exit 0, RA and CA" ||
		not_ok "scep-submit GetCACert" "exit $rc $(cat "$T/.err")"
	CH3=$(challenge "$DA3" devices)
	"$SCEP_TOOL" key rsa:2048 "$T/k3.pem"
	"$SCEP_TOOL" make --type pkcsreq --key "$T/k3.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --challenge "$CH3" \
		--cn "tablet" --out "$T/req3.der" --self "$T/self3.pem" >/dev/null
	openssl pkcs7 -inform DER -in "$T/req3.der" -outform PEM -out "$T/req3.pem" 2>/dev/null ||
		{ printf -- '-----BEGIN PKCS7-----\n%s\n-----END PKCS7-----\n' "$(base64 -w 64 "$T/req3.der")" >"$T/req3.pem"; }
	timeout 30 "$S" -u "$SCEP" -r "$T/ra.pem" -N "$T/root.pem" -I "$T/issuing.pem" -p "$T/req3.pem" >"$T/env3.pem" 2>"$T/.err"; rc=$?
	[ $rc -eq 0 ] && ok "scep-submit PKIOperation: issued (exit 0)" || not_ok "scep-submit PKIOperation: issued (exit 0, got $rc)" "$(cat "$T/.err")"
	openssl cms -decrypt -in "$T/env3.pem" -inform PEM -inkey "$T/k3.pem" -binary -outform DER -out "$T/certs3.p7b" 2>"$T/.err" &&
		openssl pkcs7 -inform DER -in "$T/certs3.p7b" -print_certs -out "$T/c3.pem" 2>>"$T/.err"
	expect 0 "scep-submit: the certificate it received verifies against the smimed chain" \
		openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/c3.pem"
	openssl x509 -in "$T/c3.pem" -noout -subject -ext subjectAltName >"$T/c3.txt" 2>&1
	contains "scep-submit: the profile's subject, not the request's 'tablet'" "$T/c3.txt" 'subject=CN *= *alice@example.com'
fi

# ---- our own requests: success, then each refusal ---------------------------
CH4=$(challenge "$DA3" devices)
"$SCEP_TOOL" key rsa:2048 "$T/k4.pem"
TID4=$("$SCEP_TOOL" make --type pkcsreq --key "$T/k4.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --challenge "$CH4" \
	--email alice@example.com --out "$T/req4.der" --self "$T/self4.pem")
send "$T/req4.der" >/dev/null
reply "$T/k4.pem" "$T/self4.pem" >"$T/.rep"
contains "PKCSReq over POST with a fresh challenge: SUCCESS" "$T/.rep" 'status=SUCCESS'
cp "$T/issued.pem" "$T/c4.pem"
expect 0 "it verifies against the chain" openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/c4.pem"
# The same message again: a replay.
before=$(certs_of "$DA3")
send "$T/req4.der" >/dev/null
reply "$T/k4.pem" "$T/self4.pem" >"$T/.rep"
contains "the same PKCSReq again (a replayed transaction): FAILURE badRequest" "$T/.rep" 'status=FAILURE failInfo=badRequest'
contains "the replay is named" "$T/.rep" 'replay'
[ "$(certs_of "$DA3")" = "$before" ] && ok "the replay issues nothing" || not_ok "the replay issues nothing"
audited "the replay" scep.refuse "$TID4" badRequest

"$SCEP_TOOL" key rsa:2048 "$T/k5.pem"
refused "a reused challenge" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem" --challenge "$CH4"
CHX=$(challenge "$DA3" devices 1)
sleep 2
refused "an expired challenge" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem" --challenge "$CHX"
CHB=$(challenge "$DB" devices)
refused "a challenge of another device (the request names $DA3)" badRequest "$DB" --type pkcsreq --key "$T/k5.pem" \
	--challenge "$CHB" --serial-number "$DA3"
CHF=$(challenge "$DA3" devices)
refused "a CSR that asks for an address that is not the user's" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem" \
	--challenge "$CHF" --email alice@example.com --email bob@example.com
api GET "/api/v1/audit?limit=1000" >/dev/null
jq -e '[.items[] | select(.action == "scep.refuse" and (.detail.reason | contains("bob@example.com")))] | length > 0' \
	"$T/.body" >/dev/null && ok "the foreign address is named in the audit" || not_ok "the foreign address is named in the audit"
"$SCEP_TOOL" key rsa:1024 "$T/weak.pem"
refused "a weak key (RSA-1024)" badAlg "$DA3" --type pkcsreq --key "$T/weak.pem" --challenge "$CHF"
"$SCEP_TOOL" key ec:P-384 "$T/p384.pem"
refused "an EC key on a curve the profile does not take (P-384)" badAlg "$DA3" --type pkcsreq --key "$T/p384.pem" --challenge "$CHF"
refused "a SHA-1-only request where the profile forbids it" badAlg "$DA3" --type pkcsreq --key "$T/k5.pem" \
	--challenge "$CHF" --digest sha1
refused "an unknown challenge" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem" --challenge "0123456789abcdef-0123456789abcdef0123456789abcdef"
refused "no challenge at all" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem"
# The challenge CHF was never used by the refusals: it still works, EC P-256 too.
"$SCEP_TOOL" key ec:P-256 "$T/ec.pem"
"$SCEP_TOOL" make --type pkcsreq --key "$T/ec.pem" --ra "$T/ra.pem" --challenge "$CHF" --out "$T/m.der" --self "$T/selfec.pem" >/dev/null
send "$T/m.der" >/dev/null
reply "$T/ec.pem" "$T/selfec.pem" >"$T/.rep"
contains "an EC P-256 key with the challenge the refusals left unused: SUCCESS" "$T/.rep" 'status=SUCCESS'
CHL=$(challenge "$DA3" legacy)
"$SCEP_TOOL" make --type pkcsreq --key "$T/k5.pem" --ra "$T/ra.pem" --challenge "$CHL" --digest sha1 --cipher des-ede3-cbc \
	--out "$T/m.der" --self "$T/self5.pem" >/dev/null
send "$T/m.der" >/dev/null
reply "$T/k5.pem" "$T/self5.pem" >"$T/.rep"
contains "SHA-1 and triple DES where the profile allows SHA-1: SUCCESS" "$T/.rep" 'status=SUCCESS'

# Garbled and truncated pkiMessages.
head -c 700 /dev/urandom >"$T/garbage.der"
got=$(send "$T/garbage.der")
[ "$got" = 400 ] && jq -e .error.message "$T/reply.der" >/dev/null && ok "random bytes: 400 with a JSON error" || not_ok "random bytes: 400 (got $got)"
head -c 900 "$T/req4.der" >"$T/trunc.der"
got=$(send "$T/trunc.der")
[ "$got" = 400 ] && ok "a truncated pkiMessage: 400" || not_ok "a truncated pkiMessage: 400 (got $got)"
cp "$T/req4.der" "$T/tampered.der"
len=$(stat -c %s "$T/tampered.der")
flip_octet "$T/tampered.der" $((len - 2))
send "$T/tampered.der" >/dev/null
reply "$T/k4.pem" "$T/self4.pem" >"$T/.rep"
contains "a pkiMessage whose signature was changed: FAILURE badMessageCheck" "$T/.rep" 'status=FAILURE failInfo=badMessageCheck'
audited "the tampered message" scep.refuse "$TID4" badMessageCheck
got=$(curl -s -o "$T/.body" -w '%{http_code}' "$SCEP?operation=PKIOperation&message=not*base64")
[ "$got" = 400 ] && ok "GET PKIOperation with a message= that is not base64: 400" || not_ok "bad base64: 400 (got $got)"
got=$(curl -s -o "$T/.body" -w '%{http_code}' -H 'Content-Type: application/x-pki-message' \
	--data-binary @<(head -c $((300 * 1024)) /dev/zero) "$SCEP?operation=PKIOperation")
[ "$got" = 413 ] && ok "a pkiMessage over 256 KiB: 413" || not_ok "an oversized pkiMessage: 413 (got $got)"
# GET, as certmonger sends it, with + and / escaped.
CHG=$(challenge "$DA3" devices)
"$SCEP_TOOL" key rsa:2048 "$T/k6.pem"
"$SCEP_TOOL" make --type pkcsreq --key "$T/k6.pem" --ra "$T/ra.pem" --challenge "$CHG" --out "$T/m6.der" --self "$T/self6.pem" >/dev/null
msg=$(base64 -w0 "$T/m6.der" | sed 's/+/%2B/g; s/\//%2F/g')
curl -s -o "$T/reply.der" "$SCEP?operation=PKIOperation&message=$msg"
reply "$T/k6.pem" "$T/self6.pem" >"$T/.rep"
contains "PKIOperation over GET: SUCCESS" "$T/.rep" 'status=SUCCESS'
cp "$T/issued.pem" "$T/c6.pem"
# The same transactionID from another key.
refused "a transactionID that another key took" badRequest "$DA3" --type pkcsreq --key "$T/k5.pem" \
	--challenge "$(challenge "$DA3" devices)" --tid "$TID4"
# signingTime two hours off.
if command -v faketime >/dev/null; then
	CHT=$(challenge "$DA3" devices)
	before=$(certs_of "$DA3")
	TIDT=$(faketime -f -7200s "$SCEP_TOOL" make --type pkcsreq --key "$T/k5.pem" --ra "$T/ra.pem" --challenge "$CHT" \
		--out "$T/mt.der" --self "$T/selft.pem")
	send "$T/mt.der" >/dev/null
	reply "$T/k5.pem" "$T/selft.pem" >"$T/.rep"
	contains "a signingTime two hours off: FAILURE badTime" "$T/.rep" 'status=FAILURE failInfo=badTime'
	[ "$(certs_of "$DA3")" = "$before" ] && ok "badTime issues nothing" || not_ok "badTime issues nothing"
	audited "badTime" scep.refuse "$TIDT" badTime
else
	skip "badTime" "faketime is not installed (scripts/install-deps.sh installs it)"
fi

# ---- renewals ------------------------------------------------------------
"$SCEP_TOOL" key rsa:2048 "$T/k7.pem"
serial4=$(openssl x509 -in "$T/c4.pem" -noout -serial | cut -d= -f2)
serial6=$(openssl x509 -in "$T/c6.pem" -noout -serial | cut -d= -f2)
refused "a renewal signed by a superseded certificate" badCertId "$DA3" --type renewal --key "$T/k7.pem" \
	--signer-cert "$T/c4.pem" --signer-key "$T/k4.pem"
TIDR=$("$SCEP_TOOL" make --type renewal --key "$T/k7.pem" --ra "$T/ra.pem" --signer-cert "$T/c6.pem" --signer-key "$T/k6.pem" \
	--out "$T/m7.der")
send "$T/m7.der" >/dev/null
reply "$T/k6.pem" "$T/c6.pem" >"$T/.rep"
contains "RenewalReq signed with the device's current certificate, no challenge: SUCCESS" "$T/.rep" 'status=SUCCESS'
cp "$T/issued.pem" "$T/c7.pem"
api GET "/api/v1/certificates/$serial6" >/dev/null
[ "$(jq -r .status "$T/.body")" = superseded ] && ok "the renewed certificate is superseded" || not_ok "the renewed certificate is superseded" "$(cat "$T/.body")"
audited "the renewal" scep.renew "$TIDR"
# A renewal signed by a revoked certificate.
serial7=$(openssl x509 -in "$T/c7.pem" -noout -serial | cut -d= -f2)
status_is "revoke the renewed device certificate" 200 POST "/api/v1/certificates/$serial7/revoke" '{"reason":"keyCompromise"}'
"$SCEP_TOOL" key rsa:2048 "$T/k8.pem"
refused "a renewal signed by a revoked certificate" badCertId "$DA3" --type renewal --key "$T/k8.pem" \
	--signer-cert "$T/c7.pem" --signer-key "$T/k7.pem"
refused "a RenewalReq signed by a certificate that is not ours" badCertId "$DA3" --type renewal --key "$T/k8.pem"

# ---- CertPoll, GetCert, GetCRL, rejection ---------------------------------
CHP2=$(challenge "$DA3" approve)
"$SCEP_TOOL" key rsa:2048 "$T/k9.pem"
TID9=$("$SCEP_TOOL" make --type pkcsreq --key "$T/k9.pem" --ra "$T/ra.pem" --challenge "$CHP2" --cn "p9" --out "$T/m9.der" --self "$T/self9.pem")
send "$T/m9.der" >/dev/null
reply "$T/k9.pem" "$T/self9.pem" >"$T/.rep"
contains "a request of an approval profile: PENDING" "$T/.rep" 'status=PENDING'
audited "the pending request" scep.pending "$TID9"
poll9() {
	"$SCEP_TOOL" make --type poll --key "$T/k9.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --cn p9 --tid "$TID9" \
		--signer-cert "$T/self9.pem" --out "$T/p9.der" >/dev/null
	send "$T/p9.der" >/dev/null
	reply "$T/k9.pem" "$T/self9.pem"
}
poll9 >"$T/.rep"
contains "CertPoll while waiting: PENDING" "$T/.rep" 'status=PENDING'
"$SCEP_TOOL" key rsa:2048 "$T/k10.pem"
"$SCEP_TOOL" make --type poll --key "$T/k10.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --tid "$TID9" --out "$T/p10.der" --self "$T/self10.pem" >/dev/null
send "$T/p10.der" >/dev/null
reply "$T/k10.pem" "$T/self10.pem" >"$T/.rep"
contains "CertPoll of another key's transaction: FAILURE badCertId" "$T/.rep" 'status=FAILURE failInfo=badCertId'
status_is "an admin rejects it" 200 POST "/api/v1/scep/requests/$TID9/reject" '{"reason":"not a company device"}'
audited "the rejection" scep.reject "$TID9"
poll9 >"$T/.rep"
contains "CertPoll after the rejection: FAILURE badRequest with the reason" "$T/.rep" 'status=FAILURE failInfo=badRequest.*not a company device'

"$SCEP_TOOL" make --type getcert --key "$T/k5.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --cert-serial "$serial4" --out "$T/g.der" --self "$T/selfg.pem" >/dev/null
send "$T/g.der" >/dev/null
reply "$T/k5.pem" "$T/selfg.pem" >"$T/.rep"
contains "GetCert by issuer and serial: SUCCESS" "$T/.rep" 'status=SUCCESS'
cmp -s <(openssl x509 -in "$T/issued.pem" -outform DER) <(openssl x509 -in "$T/c4.pem" -outform DER) &&
	ok "GetCert: the certificate asked for" || not_ok "GetCert: the certificate asked for"
"$SCEP_TOOL" make --type getcert --key "$T/k5.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --cert-serial 0BADC0FFEE --out "$T/g.der" --self "$T/selfg.pem" >/dev/null
send "$T/g.der" >/dev/null
reply "$T/k5.pem" "$T/selfg.pem" >"$T/.rep"
contains "GetCert of a serial the CA never issued: FAILURE badCertId" "$T/.rep" 'status=FAILURE failInfo=badCertId'
"$SCEP_TOOL" make --type getcrl --key "$T/k5.pem" --ra "$T/ra.pem" --ca "$T/issuing.pem" --cert-serial "$serial7" --out "$T/g.der" --self "$T/selfg.pem" >/dev/null
send "$T/g.der" >/dev/null
reply "$T/k5.pem" "$T/selfg.pem" >"$T/.rep"
contains "GetCRL: SUCCESS" "$T/.rep" 'status=SUCCESS'
openssl crl -in "$T/issued.pem" -noout -text >"$T/crl.txt" 2>&1
contains "GetCRL: the CRL lists the revoked certificate" "$T/crl.txt" "Serial Number: $serial7"

# ---- a renewal signed by an expired certificate ---------------------------
if command -v faketime >/dev/null && ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
	stop_smimed
	# First start three days ago: the CA, a one-day profile, a certificate.
	SMIMED_REAL=$SMIMED
	# libfaketime preloaded into smimed itself: the faketime program would
	# run smimed as its child, which stop_smimed's signal would not reach.
	FTLIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
	printf '#!/bin/sh\nLD_PRELOAD=%s FAKETIME=-3d exec "%s" "$@"\n' "$FTLIB" "$SMIMED_REAL" >"$T/smimed-past"
	chmod +x "$T/smimed-past"
	SMIMED=$T/smimed-past
	if start_smimed "$T/old"; then
		api POST /api/v1/users '{"emails":["carol@example.com"]}' >/dev/null; C=$(jq -r .id "$T/.body")
		DC=$(mkdev "$C" old)
		OCA=$(api GET /api/v1/cas >/dev/null; jq -r '[.items[] | select(.issuing)][0].id' "$T/.body")
		api POST /api/v1/scep-profiles "{\"name\":\"short\",\"ca\":\"$OCA\",\"validity_days\":1,\"renewal_days\":1}" >/dev/null
		CHO=$(challenge "$DC" short)
		curl -s -o "$T/ocacert.der" "$SVC_URL/scep?operation=GetCACert"
		openssl pkcs7 -inform DER -in "$T/ocacert.der" -print_certs >"$T/oc.pem"
		awk -v d="$T" '/BEGIN/{n++} {print > (d "/oc" n ".pem")}' "$T/oc.pem"
		for f in "$T"/oc[0-9].pem; do openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q CA:TRUE || cp "$f" "$T/ora.pem"; done
		"$SCEP_TOOL" key rsa:2048 "$T/ko.pem"
		faketime -f -3d "$SCEP_TOOL" make --type pkcsreq --key "$T/ko.pem" --ra "$T/ora.pem" --challenge "$CHO" --out "$T/mo.der" --self "$T/selfo.pem" >/dev/null
		curl -s -o "$T/reply.der" -H 'Content-Type: application/x-pki-message' --data-binary "@$T/mo.der" "$SVC_URL/scep?operation=PKIOperation"
		reply "$T/ko.pem" "$T/selfo.pem" >"$T/.rep"
		cp "$T/issued.pem" "$T/co.pem"
		stop_smimed
		SMIMED=$SMIMED_REAL
		start_smimed "$T/old" >/dev/null
		SCEP=$SVC_URL/scep
		"$SCEP_TOOL" key rsa:2048 "$T/ko2.pem"
		TIDO=$("$SCEP_TOOL" make --type renewal --key "$T/ko2.pem" --ra "$T/ora.pem" --signer-cert "$T/co.pem" --signer-key "$T/ko.pem" \
			--out "$T/mo2.der")
		send "$T/mo2.der" >/dev/null
		reply "$T/ko2.pem" "$T/co.pem" >"$T/.rep"
		contains "a renewal signed by an expired certificate: FAILURE badCertId" "$T/.rep" 'status=FAILURE failInfo=badCertId'
		contains "the refusal says expired" "$T/.rep" 'expired'
		audited "the expired renewal" scep.refuse "$TIDO" badCertId
		stop_smimed
	else
		SMIMED=$SMIMED_REAL
		not_ok "smimed starts under faketime" "$(tail -5 "$T/old.log")"
	fi
else
	skip "a renewal signed by an expired certificate" "faketime is not installed (scripts/install-deps.sh installs it)"
fi

# ---- the throttle: per address, per device ----------------------------------
stop_smimed >/dev/null 2>&1
SMIMED_SCEP_MAX_FAILURES=3 SMIMED_SCEP_COOLDOWN=4 start_smimed "$T/thr" || not_ok "smimed starts (throttle)"
SCEP=$SVC_URL/scep
api POST /api/v1/users '{"emails":["dave@example.com"]}' >/dev/null; DV=$(jq -r .id "$T/.body")
DX=$(mkdev "$DV" x)
DY=$(mkdev "$DV" y)
TCA=$(api GET /api/v1/cas >/dev/null; jq -r '[.items[] | select(.issuing)][0].id' "$T/.body")
api POST /api/v1/scep-profiles "{\"name\":\"t\",\"ca\":\"$TCA\"}" >/dev/null
curl -s -o "$T/tcacert.der" "$SCEP?operation=GetCACert"
openssl pkcs7 -inform DER -in "$T/tcacert.der" -print_certs >"$T/tc.pem"
awk -v d="$T" '/BEGIN/{n++} {print > (d "/tc" n ".pem")}' "$T/tc.pem"
for f in "$T"/tc[0-9].pem; do openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q CA:TRUE || cp "$f" "$T/tra.pem"; done
CHXX=$(challenge "$DX" t)
CHYY=$(challenge "$DY" t)
wrong=${CHXX%%-*}-ffffffffffffffffffffffffffffffff
tsend() { # FROM-ADDRESS CHALLENGE -> reply line
	"$SCEP_TOOL" make --type pkcsreq --key "$T/k5.pem" --ra "$T/tra.pem" --challenge "$2" --out "$T/tm.der" --self "$T/tself.pem" >/dev/null
	curl -s --interface "$1" -o "$T/reply.der" -H 'Content-Type: application/x-pki-message' --data-binary "@$T/tm.der" \
		"$SCEP?operation=PKIOperation"
	reply "$T/k5.pem" "$T/tself.pem"
}
for i in 1 2 3; do tsend 127.0.0.1 "$wrong" >/dev/null; done
tsend 127.0.0.1 "$CHYY" >"$T/.rep"
contains "after 3 wrong challenges from an address: FAILURE without trying, even with a good challenge" "$T/.rep" \
	'status=FAILURE failInfo=badRequest.*too many'
tsend 127.0.0.2 "$CHXX" >"$T/.rep"
contains "from another address, the device of the wrong challenges is refused too" "$T/.rep" 'status=FAILURE.*too many.*device'
tsend 127.0.0.2 "$CHYY" >"$T/.rep"
contains "from another address, another device's challenge works" "$T/.rep" 'status=SUCCESS'
sleep 5
tsend 127.0.0.1 "$CHXX" >"$T/.rep"
contains "after the cool-down, the right challenge works" "$T/.rep" 'status=SUCCESS'
[ "$(sqlite3 "$T/thr/smimed.db" "SELECT count(*) FROM audit WHERE action = 'scep.refuse'")" -ge 4 ] &&
	ok "the wrong challenges are audited" || not_ok "the wrong challenges are audited"
stop_smimed
lacks "smimed's log never holds a challenge's secret" "$T/thr.log" "${CHXX#*-}|${CHYY#*-}"

done_testing
