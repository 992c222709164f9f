#!/usr/bin/env bash
# smimed end to end: a real service on a loopback port with a temporary data
# folder, driven through the REST API (curl) and `smime admin`; certificates
# checked with openssl verify / x509 / ocsp; restart, backup and restore.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "service" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT

# ---- first start ------------------------------------------------------------
if start_smimed "$D"; then ok "smimed starts on a loopback port"; else
	not_ok "smimed starts" "$(tail -20 "$D.log")"; done_testing; exit 1; fi
contains "it prints its URL" "$D.out" "listening on http://127.0.0.1:$SVC_PORT"
contains "it prints where the admin token is" "$D.out" "admin token: $D/admin.token"
[ "$(stat -c %a "$D/admin.token")" = 600 ] && ok "admin.token is 0600" || not_ok "admin.token is 0600"
[ "$(stat -c %a "$D/master.key")" = 600 ] && ok "master.key is 0600" || not_ok "master.key is 0600"
[ "$(stat -c %a "$D")" = 700 ] && ok "the data folder is 0700" || not_ok "the data folder is 0700"
contains "the log is one JSON object per line" "$D.log" '^\{"time":"[0-9T:.-]+Z","level":"info","event":"start"'

status_is "healthz answers without a token" 200 GET /healthz
curl -s "$SVC_URL/metrics" >"$T/metrics"
contains "metrics count requests" "$T/metrics" '^smimed_http_requests_total\{code="2xx"\} [1-9]'
contains "metrics have a latency histogram" "$T/metrics" '^smimed_http_request_duration_seconds_bucket\{le="\+Inf"\}'

# ---- the API document and the server agree ---------------------------------------
# Each line: METHOD PATH ROLES, the roles as the route table names them and
# as each operation's x-roles lists them (tests/integration/roles.sh holds
# the service to them).
"$SMIMED" --routes | sort >"$T/routes.server"
python3 - "$SRC/docs/openapi.yaml" >"$T/routes.doc" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for path, item in doc["paths"].items():
    for m in item:
        if m in ("get", "post", "put", "patch", "delete"):
            roles = item[m].get("x-roles") or ["none"]
            print(m.upper(), path, ",".join(roles))
PY
sort -o "$T/routes.doc" "$T/routes.doc"
if [ -s "$T/routes.server" ] && cmp -s "$T/routes.server" "$T/routes.doc"; then
	ok "docs/openapi.yaml describes exactly the server's routes and their roles ($(wc -l <"$T/routes.server"))"
else
	not_ok "docs/openapi.yaml and the server's routes or roles differ" "$(diff "$T/routes.server" "$T/routes.doc")"
fi

# ---- authentication, from the attacker's side ----------------------------------
code=$(curl -s -o "$T/b" -w '%{http_code}' "$SVC_URL/api/v1/users")
[ "$code" = 401 ] && jq -e '.error.code == "unauthorized"' "$T/b" >/dev/null && ok "no token: 401 with a JSON error" || not_ok "no token: 401 ($code)" "$(cat "$T/b")"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H "Authorization: Bearer smt_$(printf '0%.0s' $(seq 32))_$(printf 'a%.0s' $(seq 64))" "$SVC_URL/api/v1/users")
[ "$code" = 401 ] && ok "an unknown token: 401" || not_ok "an unknown token: 401 ($code)"
bad=${SVC_TOKEN%?}x
code=$(curl -s -o "$T/b" -w '%{http_code}' -H "Authorization: Bearer ${SVC_TOKEN:0:37}$(printf 'b%.0s' $(seq 64))" "$SVC_URL/api/v1/users")
[ "$code" = 401 ] && ok "the right id with a wrong secret: 401" || not_ok "wrong secret: 401 ($code)"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H "Authorization: Basic $(printf 'admin:%s' "$SVC_TOKEN" | base64 -w0)" "$SVC_URL/api/v1/users")
[ "$code" = 401 ] && ok "Basic instead of Bearer: 401" || not_ok "Basic: 401 ($code)"

head -c 3000000 /dev/zero | tr '\0' a >"$T/upload.csv"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H 'Content-Type: text/csv' --data-binary @"$T/upload.csv" "$SVC_URL/api/v1/users/import")
[ "$code" = 401 ] && ok "a large upload without a token: 401 on the headers" || not_ok "upload without token ($code)"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H 'Content-Type: text/csv' -H 'Transfer-Encoding: chunked' --data-binary @"$T/upload.csv" "$SVC_URL/api/v1/users/import")
[ "$code" = 401 ] && ok "a chunked upload without a token: 401" || not_ok "chunked upload without token ($code)"
code=$(curl -s -o "$T/b" -w '%{http_code}' "$SVC_URL/ca/%ff.crt")
[ "$code" = 404 ] && jq -e .error.message "$T/b" >/dev/null && ok "a path that is not UTF-8: 404 with a JSON error" || not_ok "non-UTF-8 path ($code)" "$(cat "$T/b")"
code=$(curl -s -o "$T/b" -w '%{http_code}' "$SVC_URL/nothing/%ff%c3")
[ "$code" = 404 ] && jq -e .error.message "$T/b" >/dev/null && ok "an unknown route that is not UTF-8: 404 with a JSON error" || not_ok "non-UTF-8 route ($code)" "$(cat "$T/b")"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H 'Content-Length: 5' --data-binary 'hello' -X GET "$SVC_URL/healthz")
[ "$code" = 400 ] && ok "a body where none is taken: 400" || not_ok "body on GET /healthz ($code)"
curl -s -D "$T/h" -o /dev/null "$SVC_URL/ca/issuing.crt"
grep -qi '^Cache-Control: public, max-age=' "$T/h" && ok "CA certificates may be cached (RFC 5019)" || not_ok "Cache-Control of /ca" "$(cat "$T/h")"
status_is "a second token is made" 201 POST /api/v1/tokens '{"name":"ci","role":"admin"}'
TOK2=$(jq -r .token "$T/.body"); TOK2_ID=$(jq -r .id "$T/.body")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK2" "$SVC_URL/api/v1/users")
[ "$code" = 200 ] && ok "the new token works" || not_ok "the new token works ($code)"
status_is "the token list shows no secrets" 200 GET /api/v1/tokens
lacks "no secret in the token list" "$T/.body" "${TOK2:37}"
status_is "the token is revoked" 204 DELETE "/api/v1/tokens/$TOK2_ID"
code=$(curl -s -o "$T/b" -w '%{http_code}' -H "Authorization: Bearer $TOK2" "$SVC_URL/api/v1/users")
[ "$code" = 401 ] && ok "a revoked token: 401" || not_ok "a revoked token: 401 ($code)"

# ---- users, groups, devices through smime admin ---------------------------------
expect 0 "smime admin user add" "$SMIME" admin user add alice@example.org --name "Alice Example" --group staff
ALICE=$(cat "$T/.out")
[[ "$ALICE" =~ ^[0-9a-f-]{36}$ ]] && ok "user add prints the new id alone" || not_ok "user add prints the id" "$ALICE"
expect 0 "a second user" "$SMIME" admin user add bob@example.org --name Bob
expect 5 "an address that is taken: refused (409)" "$SMIME" admin user add ALICE@example.org
expect 0 "smime admin user list" "$SMIME" admin user list --json
[ "$(jq '.items | length' "$T/.out")" = 2 ] && ok "two users listed" || not_ok "two users listed" "$(cat "$T/.out")"
jq -e '.items[] | select(.emails[0]=="alice@example.org") | .groups == ["staff"]' "$T/.out" >/dev/null && ok "alice is in group staff" || not_ok "alice in staff" "$(cat "$T/.out")"
expect 0 "smime admin device add" "$SMIME" admin device add --user alice@example.org --name "Alice's phone" --platform ios
DEV=$(cat "$T/.out")
[[ "$DEV" =~ ^[0-9a-f-]{36}$ ]] && ok "device add prints the new id alone" || not_ok "device add prints the id" "$DEV"
expect 0 "bob's device" "$SMIME" admin device add --user bob@example.org --name laptop --platform linux
BOBDEV=$(cat "$T/.out")
expect 2 "a device on an unknown platform: usage error" "$SMIME" admin device add --user bob@example.org --name x --platform beos
expect 0 "smime admin device list --user" "$SMIME" admin device list --user alice@example.org --json
[ "$(jq '.items | length' "$T/.out")" = 1 ] && ok "alice has one device" || not_ok "alice has one device" "$(cat "$T/.out")"

printf 'email,name,groups,aliases\ncarol@example.org,"Carol, C.",staff;sales,c@example.org\ndave@example.org,Dave,,\nnot-an-address,X,,\nalice@example.org,Again,,\n' >"$T/users.csv"
"$SMIME" admin user import-csv "$T/users.csv" --json >"$T/import.json" 2>"$T/import.err"
rc=$?
[ $rc -ne 0 ] && ok "import-csv with bad rows exits non-zero ($rc)" || not_ok "import-csv with bad rows exits non-zero"
jq -e '.created == 2 and .existing == 1 and .failed == 1' "$T/import.json" >/dev/null && ok "import-csv: 2 created, 1 existing, 1 failed" || not_ok "import-csv report" "$(cat "$T/import.json" "$T/import.err")"
jq -e '.rows[] | select(.line == 4) | .status == "error"' "$T/import.json" >/dev/null && ok "the bad row is reported with its line" || not_ok "bad row line" "$(cat "$T/import.json")"
status_is "carol's alias finds her" 200 GET /api/v1/users/c@example.org
jq -e '.name == "Carol, C." and (.groups | sort) == ["sales","staff"]' "$T/.body" >/dev/null && ok "a quoted CSV field with a comma survives" || not_ok "quoted field" "$(cat "$T/.body")"
printf 'email,name\nfrank@example.org,Frank \xff\xfe\n' >"$T/bad-utf8.csv"
"$SMIME" admin user import-csv "$T/bad-utf8.csv" --json >"$T/import3.json" 2>/dev/null
jq -e '.failed == 1 and .created == 0' "$T/import3.json" >/dev/null && ok "a CSV name that is not UTF-8 is refused" || not_ok "non-UTF-8 CSV" "$(cat "$T/import3.json")"
status_is "and no such user exists" 404 GET /api/v1/users/frank@example.org
long=$(printf 'g%.0s' $(seq 128))
status_is "a group with a 128-character name" 201 POST /api/v1/groups "{\"name\":\"$long\"}"
api GET '/api/v1/groups?limit=1' >/dev/null
n=1
while [ "$(jq -r .next "$T/.body")" != null ] && [ $n -lt 20 ]; do
	code=$(api GET "/api/v1/groups?limit=1&after=$(jq -r .next "$T/.body")")
	[ "$code" = 200 ] || break
	n=$((n + 1))
done
[ "$(jq -r .next "$T/.body")" = null ] && [ $n -ge 3 ] && ok "groups page one by one to the end, past a long name ($n pages)" || not_ok "group pagination ($n, $code)" "$(cat "$T/.body")"
status_is "a group is renamed" 200 PATCH /api/v1/groups/sales '{"name":"sales-emea","description":"Sales, Europe"}'
status_is "its members follow" 200 GET /api/v1/users/carol@example.org
jq -e '(.groups | sort) == ["sales-emea","staff"]' "$T/.body" >/dev/null && ok "carol is in sales-emea" || not_ok "renamed group membership" "$(cat "$T/.body")"
status_is "renaming onto a taken name: 409" 409 PATCH /api/v1/groups/sales-emea '{"name":"staff"}'
status_is "renaming an unknown group: 404" 404 PATCH /api/v1/groups/nope '{"name":"x"}'
status_is "a group name with a '/': 400" 400 PATCH /api/v1/groups/sales-emea '{"name":"a/b"}'
status_is "and back" 200 PATCH /api/v1/groups/sales-emea '{"name":"sales"}'
"$SMIME" admin user import-csv "$T/users.csv" --json >"$T/import2.json" 2>/dev/null
jq -e '.created == 0 and .existing == 3' "$T/import2.json" >/dev/null && ok "importing the same file twice creates nothing" || not_ok "import twice" "$(cat "$T/import2.json")"

# ---- issuance, one per profile ------------------------------------------------------
expect 0 "smime admin ca export" "$SMIME" admin ca export -o "$T/chain.pem"
n=$(grep -c 'BEGIN CERTIFICATE' "$T/chain.pem")
[ "$n" = 2 ] && ok "the chain is issuing CA and root" || not_ok "the chain has 2 certificates ($n)"
awk '/BEGIN/{n++} n==1' "$T/chain.pem" >"$T/issuing.pem"
awk '/BEGIN/{n++} n==2' "$T/chain.pem" >"$T/root.pem"
openssl x509 -in "$T/root.pem" -noout -text >"$T/root.txt"
contains "the root is EC P-256 by default" "$T/root.txt" "NIST CURVE: P-256|prime256v1"
openssl x509 -in "$T/issuing.pem" -noout -text >"$T/issuing.txt"
contains "the issuing CA carries EKU emailProtection" "$T/issuing.txt" "E-mail Protection"
contains "the issuing CA has pathlen 0" "$T/issuing.txt" "CA:TRUE, pathlen:0"
lacks "the issuing CA names no OCSP responder (the root's CRL revokes it)" "$T/issuing.txt" "OCSP - URI"
contains "but the root's CRL" "$T/issuing.txt" "URI:$SVC_URL/crl/root.crl"

# signing: an EC key of alice's phone, the CSR asking for another name and address
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/sig.key" \
	-subj "/CN=mallory@evil.example/emailAddress=mallory@evil.example" -out "$T/sig.csr" 2>/dev/null
expect 0 "issue signing from a CSR" "$SMIME" admin cert issue --user alice@example.org --profile signing --device "$DEV" --csr "$T/sig.csr" -o "$T/sig.pem"
# encryption: the service makes the key (RSA-3072), PKCS#12 back
echo "p12-password-1" >"$T/p12pw"
expect 0 "issue encryption with a generated key" "$SMIME" admin cert issue --user alice@example.org --profile encryption -o "$T/enc.p12" --password-file "$T/p12pw"
[ "$(stat -c %a "$T/enc.p12")" = 600 ] && ok "the PKCS#12 is written 0600" || not_ok "PKCS#12 0600"
openssl pkcs12 -in "$T/enc.p12" -passin file:"$T/p12pw" -nokeys -clcerts -out "$T/enc.pem" 2>"$T/p12.err" && ok "openssl reads the PKCS#12" || not_ok "openssl reads the PKCS#12" "$(cat "$T/p12.err")"
openssl pkcs12 -in "$T/enc.p12" -passin file:"$T/p12pw" -nocerts -nodes 2>/dev/null | openssl pkey -noout -text 2>/dev/null | head -1 >"$T/enc.key.txt"
contains "the generated key is RSA 3072" "$T/enc.key.txt" "3072 bit"
# dual: an RSA key from a CSR
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dual.key" -subj "/CN=whatever" -out "$T/dual.csr" 2>/dev/null
expect 0 "issue dual from an RSA CSR" "$SMIME" admin cert issue --user bob@example.org --profile dual --csr "$T/dual.csr" -o "$T/dual.pem"

for c in sig enc dual; do
	if openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" -purpose smimesign "$T/$c.pem" >"$T/v" 2>&1 ||
	   openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" -purpose smimeencrypt "$T/$c.pem" >"$T/v" 2>&1; then
		ok "openssl verify accepts the $c certificate against the exported chain"
	else
		not_ok "openssl verify $c" "$(cat "$T/v")"
	fi
	openssl x509 -in "$T/$c.pem" -noout -text >"$T/$c.txt"
	openssl x509 -in "$T/$c.pem" -noout -ext subjectKeyIdentifier,authorityKeyIdentifier >"$T/$c.ki" 2>&1
	contains "$c: Subject Key Identifier" "$T/$c.txt" "X509v3 Subject Key Identifier"
	contains "$c: Authority Key Identifier" "$T/$c.txt" "X509v3 Authority Key Identifier"
	aki=$(openssl x509 -in "$T/$c.pem" -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' ' | sed 's/^keyid://')
	ski=$(openssl x509 -in "$T/issuing.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')
	[ "$aki" = "$ski" ] && ok "$c: AKI is the issuing CA's SKI" || not_ok "$c: AKI = CA SKI" "$aki vs $ski"
	contains "$c: EKU emailProtection only" "$T/$c.txt" "^ +E-mail Protection$"
	contains "$c: basicConstraints CA:FALSE" "$T/$c.txt" "CA:FALSE"
	contains "$c: CRL distribution point of this service" "$T/$c.txt" "URI:$SVC_URL/crl/issuing.crl"
	contains "$c: AIA OCSP of this service" "$T/$c.txt" "OCSP - URI:$SVC_URL/ocsp/issuing"
	contains "$c: AIA caIssuers of this service" "$T/$c.txt" "CA Issuers - URI:$SVC_URL/ca/issuing.crt"
	contains "$c: mailbox-validated strict policy (S/MIME BR 2.23.140.1.5.1.3)" "$T/$c.txt" "Policy: 2.23.140.1.5.1.3"
	serial=$(openssl x509 -in "$T/$c.pem" -noout -serial | cut -d= -f2)
	[ ${#serial} -ge 16 ] && ok "$c: serial of at least 64 bits ($serial)" || not_ok "$c: serial >= 64 bits ($serial)"
	nb=$(date -d "$(openssl x509 -in "$T/$c.pem" -noout -startdate | cut -d= -f2)" +%s)
	na=$(date -d "$(openssl x509 -in "$T/$c.pem" -noout -enddate | cut -d= -f2)" +%s)
	[ $(( (na - nb) / 86400 )) -le 825 ] && ok "$c: validity within 825 days" || not_ok "$c: validity <= 825 days"
done
contains "signing: keyUsage digitalSignature only" "$T/sig.txt" "Digital Signature$"
lacks "signing: no key agreement" "$T/sig.txt" "Key Agreement|Key Encipherment"
contains "signing: the user's address, not the CSR's" "$T/sig.txt" "email:alice@example.org"
lacks "signing: nothing of what the CSR asked" "$T/sig.txt" "mallory"
contains "encryption (RSA): keyUsage keyEncipherment only" "$T/enc.txt" "^ +Key Encipherment$"
contains "dual (RSA): digitalSignature and keyEncipherment" "$T/dual.txt" "Digital Signature, Key Encipherment"
contains "dual: bob's address" "$T/dual.txt" "email:bob@example.org"
contains "the subject is the mailbox address" "$T/sig.txt" "Subject: CN ?= ?alice@example.org"
# an EC encryption certificate carries keyAgreement
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/ecenc.key" -subj "/CN=x" -out "$T/ecenc.csr" 2>/dev/null
expect 0 "issue encryption from an EC CSR" "$SMIME" admin cert issue --user bob@example.org --profile encryption --csr "$T/ecenc.csr" -o "$T/ecenc.pem"
openssl x509 -in "$T/ecenc.pem" -noout -text >"$T/ecenc.txt"
contains "encryption (EC): keyUsage keyAgreement" "$T/ecenc.txt" "^ +Key Agreement$"

expect 0 "smime admin cert list --user" "$SMIME" admin cert list --user alice@example.org --json
[ "$(jq '.items | length' "$T/.out")" = 2 ] && ok "alice has two certificates" || not_ok "alice has two certificates" "$(cat "$T/.out")"
jq -e --arg d "$DEV" '.items[] | select(.purpose=="signing") | .device == $d and .source == "issued" and .status == "active"' "$T/.out" >/dev/null && ok "the signing certificate is recorded with its device" || not_ok "signing record" "$(cat "$T/.out")"
# a second signing certificate for the same device supersedes the first
SIG1=$(openssl x509 -in "$T/sig.pem" -noout -serial | cut -d= -f2)
expect 0 "a renewed signing certificate" "$SMIME" admin cert issue --user alice@example.org --profile signing --device "$DEV" --csr "$T/sig.csr" -o "$T/sig2.pem"
status_is "the old one is still there" 200 GET "/api/v1/certificates/$SIG1"
jq -e '.status == "superseded"' "$T/.body" >/dev/null && ok "and superseded, not revoked" || not_ok "superseded" "$(cat "$T/.body")"
status_is "serials are accepted with colons and in lower case" 200 GET "/api/v1/certificates/$(echo "$SIG1" | tr A-F a-f | sed 's/../&:/g;s/:$//')"

# ---- bad requests, from the attacker's side: each 4xx, nothing changes ---------------
snapshot() { for p in users devices certificates; do api GET "/api/v1/$p?limit=1000" >/dev/null; jq -c '.items | length' "$T/.body"; done; }
before=$(snapshot)
status_is "malformed JSON: 400" 400 POST /api/v1/users '{"emails":["x@example.org"'
status_is "not an object: 400" 400 POST /api/v1/users '["x@example.org"]'
status_is "an unknown field: 400" 400 POST /api/v1/users '{"emails":["x@example.org"],"admin":true}'
status_is "a wrong type: 400" 400 POST /api/v1/users '{"emails":"x@example.org"}'
status_is "a duplicate key: 400" 400 POST /api/v1/users '{"emails":["x@example.org"],"emails":["y@example.org"]}'
deep=$(printf '{"emails":["x@example.org"],"name":%s1%s}' "$(printf '[%.0s' $(seq 40))" "$(printf ']%.0s' $(seq 40))")
status_is "deep nesting: 400" 400 POST /api/v1/users "$deep"
head -c 200000 /dev/zero | tr '\0' a | sed 's/^/{"name":"/;s/$/"}/' >"$T/big.json"
code=$(curl -s --expect100-timeout 30 -o "$T/.body" -w '%{http_code}' -H "Authorization: Bearer $SVC_TOKEN" -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$SVC_URL/api/v1/users")
[ "$code" = 413 ] && jq -e '.error.code == "payload-too-large"' "$T/.body" >/dev/null && ok "an oversize body: 413" || not_ok "oversize body: 413 ($code)"
code=$(curl -s -o "$T/.body" -w '%{http_code}' -H "Authorization: Bearer $SVC_TOKEN" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" "$SVC_URL/api/v1/users")
[ "$code" = 413 ] && ok "an oversize chunked body: 413" || not_ok "oversize chunked body: 413 ($code)"
code=$(curl -s -o "$T/.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $SVC_TOKEN" -H 'Content-Type: text/plain' --data 'x' "$SVC_URL/api/v1/users")
[ "$code" = 415 ] && ok "a body that is not JSON: 415" || not_ok "415 ($code)"
status_is "an address with LDAP filter syntax: 400" 400 POST /api/v1/users '{"emails":["a*)(uid=*@example.org"]}'
status_is "an address with a NUL: 400" 400 POST /api/v1/users '{"emails":["a\u0000b@example.org"]}'
status_is "an unknown route: 404" 404 GET /api/v1/nothing
status_is "a wrong method: 405" 405 PUT /api/v1/users
status_is "bob's device for alice: 404" 404 POST /api/v1/certificates "{\"user\":\"alice@example.org\",\"profile\":\"signing\",\"device\":\"$BOBDEV\",\"csr\":$(jq -Rs . "$T/sig.csr")}"
openssl req -new -newkey rsa:1024 -nodes -keyout "$T/weak.key" -subj "/CN=x" -out "$T/weak.csr" 2>/dev/null
status_is "a CSR with an RSA-1024 key: 422" 422 POST /api/v1/certificates "{\"user\":\"alice@example.org\",\"profile\":\"dual\",\"csr\":$(jq -Rs . "$T/weak.csr")}"
# a CSR whose signature does not match: flip an octet of the signature
openssl req -in "$T/dual.csr" -outform DER -out "$T/dual.der"
size=$(stat -c %s "$T/dual.der")
cp "$T/dual.der" "$T/badsig.der"
flip_octet "$T/badsig.der" $((size - 10))
openssl req -inform DER -in "$T/badsig.der" -out "$T/badsig.csr" 2>/dev/null
status_is "a CSR with a bad signature: 400" 400 POST /api/v1/certificates "{\"user\":\"alice@example.org\",\"profile\":\"dual\",\"csr\":$(jq -Rs . "$T/badsig.csr")}"
status_is "garbage for a CSR: 400" 400 POST /api/v1/certificates '{"user":"alice@example.org","profile":"dual","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}'
status_is "generate where the profile forbids it: 422" 422 POST /api/v1/certificates '{"user":"alice@example.org","profile":"signing","generate":true,"password":"long-enough"}'
status_is "an unknown profile: 404" 404 POST /api/v1/certificates "{\"user\":\"alice@example.org\",\"profile\":\"nope\",\"csr\":$(jq -Rs . "$T/dual.csr")}"
status_is "an unknown user: 404" 404 POST /api/v1/certificates "{\"user\":\"nobody@example.org\",\"profile\":\"dual\",\"csr\":$(jq -Rs . "$T/dual.csr")}"
status_is "an unknown reason: 400" 400 POST "/api/v1/certificates/$SIG1/revoke" '{"reason":"because"}'
status_is "certificateHold (a revocation is final): 400" 400 POST "/api/v1/certificates/$SIG1/revoke" '{"reason":"certificateHold"}'
status_is "cACompromise for a subscriber certificate: 400" 400 POST "/api/v1/certificates/$SIG1/revoke" '{"reason":"cACompromise"}'
status_is "revoking an unknown serial: 404" 404 POST /api/v1/certificates/0123456789ABCDEF/revoke '{"reason":"keyCompromise"}'
status_is "a serial that is not hex: 400" 400 GET /api/v1/certificates/xyz
status_is "a page limit out of range: 400" 400 GET '/api/v1/users?limit=100000'
status_is "a forged cursor: 400" 400 GET '/api/v1/users?after=%27%3B%20DROP%20TABLE%20users%3B--'
after=$(snapshot)
[ "$before" = "$after" ] && ok "none of the bad requests changed anything" || not_ok "bad requests changed the state" "$before / $after"

# ---- revocation: CRL and OCSP -------------------------------------------------------
DUAL=$(openssl x509 -in "$T/dual.pem" -noout -serial | cut -d= -f2)
expect 0 "smime admin cert revoke --reason keyCompromise" "$SMIME" admin cert revoke "$DUAL" --reason keyCompromise
expect 5 "revoking twice: refused (409)" "$SMIME" admin cert revoke "$DUAL" --reason keyCompromise
curl -sf -o "$T/issuing.crl" "$SVC_URL/crl/issuing.crl" && ok "the CRL is served at its distribution point" || not_ok "CRL served"
openssl crl -inform DER -in "$T/issuing.crl" -noout -text >"$T/crl.txt" 2>&1
contains "the CRL lists the revoked serial" "$T/crl.txt" "Serial Number: $DUAL"
contains "with its reason" "$T/crl.txt" "Key Compromise"
openssl crl -inform DER -in "$T/issuing.crl" -out "$T/issuing.crl.pem"
curl -sf -o "$T/root.crl" "$SVC_URL/crl/root.crl" && openssl crl -inform DER -in "$T/root.crl" -out "$T/root.crl.pem" 2>/dev/null
cat "$T/issuing.crl.pem" "$T/root.crl.pem" >"$T/crls.pem"
openssl verify -crl_check_all -CRLfile "$T/crls.pem" -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/dual.pem" >"$T/v" 2>&1
contains "openssl verify -crl_check: the revoked one is revoked" "$T/v" "certificate revoked"
if openssl verify -crl_check_all -CRLfile "$T/crls.pem" -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/sig2.pem" >"$T/v" 2>&1; then
	ok "openssl verify -crl_check: another is good"; else not_ok "crl_check good" "$(cat "$T/v")"; fi
openssl ocsp -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -cert "$T/dual.pem" -url "$SVC_URL/ocsp/issuing" >"$T/ocsp1" 2>&1
contains "openssl ocsp: the revoked one is revoked" "$T/ocsp1" "dual.pem: revoked"
contains "openssl ocsp: the response verifies" "$T/ocsp1" "Response verify OK"
openssl ocsp -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -cert "$T/sig2.pem" -url "$SVC_URL/ocsp/issuing" >"$T/ocsp2" 2>&1
contains "openssl ocsp: another is good" "$T/ocsp2" "sig2.pem: good"
contains "openssl ocsp: a nonce is echoed" "$T/ocsp2" "Response verify OK"
lacks "openssl ocsp: no nonce warning" "$T/ocsp2" "WARNING: no nonce"
openssl ocsp -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -serial 0x0123456789ABCDEF -url "$SVC_URL/ocsp/issuing" >"$T/ocsp3" 2>&1
contains "openssl ocsp: a serial never issued is unknown" "$T/ocsp3" "unknown"
# GET (RFC 6960 A.1)
openssl ocsp -issuer "$T/issuing.pem" -cert "$T/dual.pem" -no_nonce -reqout "$T/req.der" >/dev/null 2>&1
req=$(base64 -w0 "$T/req.der" | sed 's/+/%2B/g;s|/|%2F|g;s/=/%3D/g')
curl -sf -o "$T/resp.der" "$SVC_URL/ocsp/issuing/$req" && openssl ocsp -respin "$T/resp.der" -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -cert "$T/dual.pem" >"$T/ocsp4" 2>&1
contains "OCSP over GET: revoked" "$T/ocsp4" "dual.pem: revoked"

# ---- audit -------------------------------------------------------------------------
expect 0 "smime admin audit" "$SMIME" admin audit --json
for a in cert.issue cert.revoke token.create token.revoke token.use user.create device.create; do
	jq -e --arg a "$a" '[.items[] | select(.action == $a)] | length > 0' "$T/.out" >/dev/null && ok "the audit log has $a" || not_ok "audit $a"
done

# ---- deleting is not revoking ------------------------------------------------------------
SIG2=$(openssl x509 -in "$T/sig2.pem" -noout -serial | cut -d= -f2)
expect 0 "smime admin device delete" "$SMIME" admin device delete "$DEV"
status_is "the device is gone" 404 GET "/api/v1/devices/$DEV"
status_is "its certificate is still recorded" 200 GET "/api/v1/certificates/$SIG2"
jq -e '.status == "active"' "$T/.body" >/dev/null && ok "and still active: deleting a device does not revoke" || not_ok "device delete revoked" "$(cat "$T/.body")"
openssl ocsp -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -cert "$T/sig2.pem" -url "$SVC_URL/ocsp/issuing" >"$T/ocsp6" 2>&1
contains "OCSP still says good" "$T/ocsp6" "sig2.pem: good"
expect 0 "smime admin user delete" "$SMIME" admin user delete dave@example.org
status_is "the user is gone" 404 GET /api/v1/users/dave@example.org
expect 0 "the audit log after the deletions" "$SMIME" admin audit --json
for a in device.delete user.delete; do
	jq -e --arg a "$a" '[.items[] | select(.action == $a)] | length > 0' "$T/.out" >/dev/null && ok "the audit log has $a" || not_ok "audit $a"
done

# ---- more CAs: one made under the root, one imported ---------------------------------
status_is "a second issuing CA under the root" 201 POST /api/v1/cas '{"id":"issuing-2","parent":"root","key_alg":"ec-p384"}'
jq -e '.parent == "root" and .issuing == true and .has_key == true' "$T/.body" >/dev/null && ok "it issues and has its key" || not_ok "issuing-2" "$(cat "$T/.body")"
status_is "a profile naming it" 201 POST /api/v1/profiles '{"name":"sign-2","purpose":"signing","ca":"issuing-2","validity_days":90}'
expect 0 "issue from the second CA" "$SMIME" admin cert issue --user alice@example.org --profile sign-2 --csr "$T/sig.csr" -o "$T/sig-2.pem"
"$SMIME" admin ca export --ca issuing-2 -o "$T/chain-2.pem" >/dev/null 2>&1
openssl verify -CAfile "$T/root.pem" -untrusted "$T/chain-2.pem" "$T/sig-2.pem" >"$T/v" 2>&1 && ok "it chains to the same root" || not_ok "second CA chain" "$(cat "$T/v")"
openssl x509 -in "$T/sig-2.pem" -noout -text | grep -q "URI:$SVC_URL/crl/issuing-2.crl" && ok "with the second CA's CRL URL" || not_ok "CRL URL of issuing-2"
status_is "a CA id that exists: 409" 409 POST /api/v1/cas '{"id":"issuing-2","parent":"root"}'
status_is "a CA under an unknown parent: 404" 404 POST /api/v1/cas '{"id":"x","parent":"nope"}'
# an external root (certificate only, then with its key: it still does not
# issue, S/MIME BR 6.1.7), and its intermediate with its key, which does
openssl req -x509 -new -newkey rsa:3072 -nodes -keyout "$T/ext.key" -out "$T/ext.crt" -days 3650 \
	-subj "/O=Elsewhere/CN=Elsewhere SMIME Root" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -addext "subjectKeyIdentifier=hash" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/extsub.key" -out "$T/extsub.csr" \
	-subj "/O=Elsewhere/CN=Elsewhere SMIME Issuing" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/extsub.ext"
openssl x509 -req -in "$T/extsub.csr" -CA "$T/ext.crt" -CAkey "$T/ext.key" -CAcreateserial -days 1825 \
	-extfile "$T/extsub.ext" -out "$T/extsub.crt" 2>/dev/null
status_is "import a root with its key (PEM)" 201 POST /api/v1/cas "$(jq -n --rawfile c "$T/ext.crt" --rawfile k "$T/ext.key" '{id:"elsewhere",certificate:$c,key:$k}')"
jq -e '.parent == null and .has_key == true and .issuing == false' "$T/.body" >/dev/null && ok "an imported root does not issue, even with its key" || not_ok "imported root" "$(cat "$T/.body")"
status_is "a profile on the imported root: 422" 422 POST /api/v1/profiles '{"name":"enc-root","purpose":"encryption","ca":"elsewhere"}'
status_is "import its intermediate with its key" 201 POST /api/v1/cas "$(jq -n --rawfile c "$T/extsub.crt" --rawfile k "$T/extsub.key" '{id:"elsewhere-sub",certificate:$c,key:$k}')"
jq -e '.parent == "elsewhere" and .issuing == true' "$T/.body" >/dev/null && ok "the intermediate finds its parent and issues" || not_ok "imported intermediate" "$(cat "$T/.body")"
status_is "a profile on the imported intermediate" 201 POST /api/v1/profiles '{"name":"enc-ext","purpose":"encryption","ca":"elsewhere-sub"}'
expect 0 "issue from the imported CA" "$SMIME" admin cert issue --user bob@example.org --profile enc-ext --csr "$T/dual.csr" -o "$T/ext-leaf.pem"
openssl verify -CAfile "$T/ext.crt" -untrusted "$T/extsub.crt" "$T/ext-leaf.pem" >"$T/v" 2>&1 && ok "it verifies against the imported chain" || not_ok "imported CA issues" "$(cat "$T/v")"
status_is "a PKCS#12 that is not base64: 400" 400 POST /api/v1/cas '{"id":"bad-b64","pkcs12":"====","password":"x"}'
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ext2.key" -out "$T/ext2.crt" -days 3650 \
	-subj "/CN=Elsewhere 2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl pkcs12 -export -inkey "$T/ext2.key" -in "$T/ext2.crt" -passout pass:import-pw -out "$T/ext2.p12" 2>/dev/null
status_is "import a CA from PKCS#12" 201 POST /api/v1/cas "$(jq -n --arg p "$(base64 -w0 "$T/ext2.p12")" '{id:"elsewhere-2",pkcs12:$p,password:"import-pw"}')"
status_is "a PKCS#12 with a wrong password: 4xx" 422 POST /api/v1/cas "$(jq -n --arg p "$(base64 -w0 "$T/ext2.p12")" '{id:"elsewhere-3",pkcs12:$p,password:"wrong"}')"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leafca.key" -out "$T/leafca.crt" -days 30 -subj "/CN=not a CA" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
code=$(api POST /api/v1/cas "$(jq -n --rawfile c "$T/leafca.crt" --rawfile k "$T/leafca.key" '{id:"not-a-ca",certificate:$c,key:$k}')")
case $code in 4??) ok "a certificate that is no CA is refused ($code)" ;; *) not_ok "a non-CA import is refused ($code)" ;; esac
code=$(api POST /api/v1/cas "$(jq -n --rawfile c "$T/ext.crt" --rawfile k "$T/ext2.key" '{id:"mismatch",certificate:$c,key:$k}')")
case $code in 4??) ok "a key that does not match the certificate is refused ($code)" ;; *) not_ok "key mismatch refused ($code)" ;; esac
status_is "the refused imports left no CA behind" 404 GET /api/v1/cas/mismatch

# ---- the trust collection ------------------------------------------------------------
expect 0 "smime admin trust list" "$SMIME" admin trust list --json
[ "$(jq '[.items[] | select(.source == "service")] | length' "$T/.out")" -ge 2 ] && ok "the service's own CAs are in the trust collection from the start" || not_ok "service CAs in trust" "$(head -c 600 "$T/.out")"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tr1.key" -out "$T/tr1.crt" -days 3650 \
	-subj "/O=Partner/CN=Partner Root" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tr2.key" -out "$T/tr2.crt" -days 3650 \
	-subj "/O=Partner/CN=Partner Root 2" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl crl2pkcs7 -nocrl -certfile "$T/tr1.crt" -certfile "$T/tr2.crt" -outform DER -out "$T/partners.p7b" 2>/dev/null
expect 0 "import roots from a PKCS#7 file" "$SMIME" admin trust import "$T/partners.p7b"
contains "both are added" "$T/.out" "^added .*Partner Root 2"
expect 0 "the same file again changes nothing" "$SMIME" admin trust import --json "$T/partners.p7b"
jq -e '.added == 0 and .existing == 2' "$T/.out" >/dev/null && ok "reported as already there" || not_ok "trust import twice" "$(cat "$T/.out")"
# a CA certificate without a subject key identifier, and a leaf, are refused with the reason
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/noski.key" -subj "/CN=No SKI CA" -out "$T/noski.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n' >"$T/noski.ext"
openssl x509 -req -in "$T/noski.csr" -signkey "$T/noski.key" -days 30 -extfile "$T/noski.ext" -out "$T/noski.crt" 2>/dev/null
expect 1 "a CA without a subject key identifier is refused (exit 1)" "$SMIME" admin trust import "$T/noski.crt"
contains "with that reason" "$T/.out" "refused .*no subject key identifier"
expect 1 "a leaf certificate is refused" "$SMIME" admin trust import "$T/sig.pem"
contains "not a CA" "$T/.out" "refused .*not a CA"
contains "the service's own CAs in the same file are there already" "$T/.out" "^exists .*a CA of this service"
cat "$T/tr1.key" "$T/tr1.crt" >"$T/withkey.pem"
expect 3 "a file that holds a private key is refused whole" "$SMIME" admin trust import "$T/withkey.pem"
contains "saying why" "$T/.err" "private key"
status_is "a file that is no certificate: 400" 400 POST /api/v1/trust '{"file":"aGVsbG8gd29ybGQ="}'
fp=$(openssl x509 -in "$T/tr2.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
expect 0 "smime admin trust remove" "$SMIME" admin trust remove "$fp"
expect 4 "removing it again: not found" "$SMIME" admin trust remove "$fp"
status_is "a fingerprint that is not one: 400" 400 DELETE /api/v1/trust/xyz
rootfp=$(openssl x509 -in "$T/root.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
status_is "the service's own root cannot be removed: 404" 404 DELETE "/api/v1/trust/$rootfp"
if [ -f "$SHARED/corpus/sst/windows-update-roots-2021-10-01.sst" ]; then
	"$SMIME" admin trust import --json "$SHARED/corpus/sst/windows-update-roots-2021-10-01.sst" >"$T/sst.json" 2>"$T/sst.err"
	jq -e '.added > 10' "$T/sst.json" >/dev/null && ok "roots from a Windows SST are imported ($(jq .added "$T/sst.json") added, $(jq .refused "$T/sst.json") refused)" || not_ok "SST import" "$(head -c 600 "$T/sst.json" "$T/sst.err")"
	jq -e '[.rows[] | select(.status == "refused") | .message] | all(test("subject key identifier|emailProtection|not valid now|keyCertSign|not a CA"))' "$T/sst.json" >/dev/null && ok "every refused root says why" || not_ok "SST refusals" "$(jq -c '[.rows[] | select(.status == "refused")][0:3]' "$T/sst.json")"
	"$SMIME" admin trust import --json "$SHARED/corpus/sst/windows-update-roots-2021-10-01.sst" >"$T/sst2.json" 2>/dev/null
	jq -e '.added == 0' "$T/sst2.json" >/dev/null && ok "the SST imported twice adds nothing" || not_ok "SST twice" "$(head -c 300 "$T/sst2.json")"
else
	skip "roots from a Windows SST" "no $SHARED/corpus/sst (the shared corpus is absent)"
fi
expect 0 "the audit log has the trust changes" "$SMIME" admin audit --json
jq -e '[.items[] | select(.action == "trust.import" or .action == "trust.remove")] | length >= 3' "$T/.out" >/dev/null && ok "trust.import and trust.remove are audited" || not_ok "trust audit"

# ---- no private key in clear in the data folder ---------------------------------------------
openssl pkcs12 -in "$T/enc.p12" -passin file:"$T/p12pw" -nocerts -nodes 2>/dev/null | openssl pkey -outform DER -out "$T/enc.key.der" 2>/dev/null
keyhex=$(xxd -p "$T/enc.key.der" | tr -d '\n' | cut -c1-200)
found=$(for f in "$D"/*; do xxd -p "$f" | tr -d '\n' | grep -c "$keyhex"; done | paste -sd+ | bc)
[ -n "$keyhex" ] && [ "$found" = 0 ] && ok "the generated key is nowhere in the data folder" || not_ok "generated key found in the data folder"
# An unencrypted PKCS#8 EC or RSA key begins with version 0 and its algorithm.
ec8=020100301306072a8648ce3d0201
rsa8=020100300d06092a864886f70d0101010500
found=$(for f in "$D"/*; do xxd -p "$f" | tr -d '\n' | grep -cE "$ec8|$rsa8"; done | paste -sd+ | bc)
[ "$found" = 0 ] && ok "no clear PKCS#8 private key in the data folder (CA keys are wrapped)" || not_ok "a clear PKCS#8 key in the data folder"
grep -rl "PRIVATE KEY" "$D" >/dev/null 2>&1 && not_ok "a PEM private key in the data folder" || ok "no PEM private key in the data folder"

# ---- restart: everything is still there ------------------------------------------------
certs_before=$(api GET '/api/v1/certificates?limit=1000' >/dev/null; jq -c '[.items[].serial] | sort' "$T/.body")
stop_smimed && ok "SIGTERM stops smimed with status 0" || not_ok "SIGTERM exit status"
contains "the log says it stopped" "$D.log" '"event":"stopped"'
if start_smimed "$D"; then ok "smimed starts again"; else not_ok "smimed starts again" "$(tail "$D.log")"; fi
certs_after=$(api GET '/api/v1/certificates?limit=1000' >/dev/null; jq -c '[.items[].serial] | sort' "$T/.body")
[ "$certs_before" = "$certs_after" ] && [ "$certs_before" != "[]" ] && ok "every certificate is there after a restart" || not_ok "certificates after restart" "$certs_before / $certs_after"
status_is "users too" 200 GET /api/v1/users/alice@example.org
openssl ocsp -issuer "$T/issuing.pem" -CAfile "$T/chain.pem" -cert "$T/dual.pem" -url "$SVC_URL/ocsp/issuing" >"$T/ocsp5" 2>&1
contains "and the revocation" "$T/ocsp5" "dual.pem: revoked"
expect 0 "the CA is the same after a restart" "$SMIME" admin ca export -o "$T/chain2.pem"
same "the exported chain is unchanged" "$T/chain.pem" "$T/chain2.pem"

# ---- backup and restore, online ------------------------------------------------------
expect 0 "smimed backup while it runs" "$SMIMED" --data "$D" backup "$T/backup.db"
[ "$(stat -c %a "$T/backup.db")" = 600 ] && ok "the backup is 0600" || not_ok "backup 0600"
expect 0 "a user made after the backup" "$SMIME" admin user add erin@example.org
expect 0 "smimed restore while it runs" "$SMIMED" --data "$D" restore "$T/backup.db"
sleep 1
status_is "after the restore the later user is gone" 404 GET /api/v1/users/erin@example.org
status_is "and the earlier ones are there" 200 GET /api/v1/users/alice@example.org
stop_smimed
if start_smimed "$D"; then ok "smimed starts on the restored store"; else not_ok "start after restore" "$(tail "$D.log")"; fi
certs_restored=$(api GET '/api/v1/certificates?limit=1000' >/dev/null; jq -c '[.items[].serial] | sort' "$T/.body")
[ "$certs_before" = "$certs_restored" ] && ok "every certificate is in the restored store" || not_ok "certificates after restore"
# into a new data folder, with the master key carried over by hand
mkdir -m 700 "$T/d2" && cp "$D/master.key" "$T/d2/" && chmod 600 "$T/d2/master.key"
expect 0 "restore into a new data folder" "$SMIMED" --data "$T/d2" restore "$T/backup.db"
stop_smimed
if start_smimed "$T/d2"; then ok "smimed starts on the new folder"; else not_ok "start on the new folder" "$(tail "$T/d2.log")"; fi
SVC_TOKEN=$(cat "$D/admin.token"); export SMIME_TOKEN=$SVC_TOKEN
status_is "the old token works on the restored service" 200 GET /api/v1/users/alice@example.org
expect 0 "it issues with the restored CA key" "$SMIME" admin cert issue --user bob@example.org --profile dual --csr "$T/dual.csr" -o "$T/dual3.pem"
openssl verify -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/dual3.pem" >/dev/null 2>&1 && ok "and the new certificate chains to the same root" || not_ok "chain after restore"
stop_smimed

# ---- SIGTERM lets a request in flight finish ---------------------------------------------------
if start_smimed "$T/d2"; then
	SVC_TOKEN=$(cat "$D/admin.token"); export SMIME_TOKEN=$SVC_TOKEN
	api POST /api/v1/profiles '{"name":"slow","purpose":"encryption","ca":"issuing","key_alg":"rsa-4096","allow_generate":true}' >/dev/null
	curl -s -o "$T/slow.json" -w '%{http_code}' -H "Authorization: Bearer $SVC_TOKEN" -H 'Content-Type: application/json' \
		--data '{"user":"bob@example.org","profile":"slow","generate":true,"password":"long-password"}' "$SVC_URL/api/v1/certificates" >"$T/slow.code" &
	cpid=$!
	sleep 0.3
	kill -TERM "$SVC_PID"
	wait $cpid
	wait "$SVC_PID"; rc=$?
	SVC_PID=
	[ "$(cat "$T/slow.code")" = 201 ] && jq -e '.pkcs12 | length > 100' "$T/slow.json" >/dev/null && ok "a request in flight at SIGTERM is answered (RSA-4096 key made)" || not_ok "in-flight request at SIGTERM" "$(cat "$T/slow.code")"
	[ $rc = 0 ] && ok "and smimed exits 0 after it" || not_ok "exit after in-flight ($rc)"
else
	not_ok "smimed starts for the shutdown test" "$(tail "$T/d2.log")"
fi

# ---- configuration -------------------------------------------------------------------------
printf 'listen = 127.0.0.1:99999\n' >"$T/bad.conf"
expect 2 "--check-config refuses a bad port" "$SMIMED" --config "$T/bad.conf" --data "$T/d3" --check-config
contains "naming the key" "$T/.err" "listen"
printf 'ca_country = Germany\n' >"$T/bad3.conf"
expect 2 "--check-config refuses a country that is not two letters" "$SMIMED" --config "$T/bad3.conf" --data "$T/d3" --check-config
printf 'lissten = 127.0.0.1:8080\n' >"$T/bad2.conf"
expect 2 "--check-config refuses an unknown key" "$SMIMED" --config "$T/bad2.conf" --data "$T/d3" --check-config
contains "with its line" "$T/.err" "bad2.conf:1"
printf '# comment\nlisten = 127.0.0.1:8443\nca_key_alg = rsa-3072\n' >"$T/good.conf"
expect 0 "--check-config accepts a good file" "$SMIMED" --config "$T/good.conf" --data "$T/d3" --check-config
SMIMED_CRL_REFRESH=abc "$SMIMED" --data "$T/d3" --check-config >"$T/.out" 2>"$T/.err"
[ $? = 2 ] && grep -q SMIMED_CRL_REFRESH "$T/.err" && ok "a bad environment override is named" || not_ok "env override" "$(cat "$T/.err")"
expect 0 "--print-config lists every key" "$SMIMED" --data "$T/d3" --print-config
contains "with defaults" "$T/.out" "^# .*\(default: 127.0.0.1:8080\)"

# ---- RSA CA and HTTPS ----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
	-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" -days 2 2>/dev/null
printf 'ca_key_alg = rsa-3072\nca_country = DE\nca_name = Example Org\ntls_cert = %s\ntls_key = %s\n' "$T/tls.crt" "$T/tls.key" >"$T/d4.conf"
expect 2 "TLS without a plain-HTTP public listener or URL is refused" "$SMIMED" --config "$T/d4.conf" --data "$T/d4" --check-config
contains "naming public_listen and the BR rule" "$T/.err" "public_listen.*7.1.2.3"
printf 'public_url = https://pki.example.org\n' >"$T/d5.conf"
expect 0 "an https public_url (behind a reverse proxy) is taken; certificates get its host over http (admin.sh)" "$SMIMED" --config "$T/d5.conf" --data "$T/d4" --check-config
printf 'public_url = ftp://pki.example.org\n' >"$T/d5.conf"
expect 2 "a public_url that is neither http nor https is refused" "$SMIMED" --config "$T/d5.conf" --data "$T/d4" --check-config
mkdir -m 700 "$T/d4"
P4=$(free_port); P5=$(free_port)
printf 'public_listen = 127.0.0.1:%s\n' "$P5" >>"$T/d4.conf"
"$SMIMED" --config "$T/d4.conf" --data "$T/d4" --listen "127.0.0.1:$P4" >"$T/d4.out" 2>"$T/d4.log" &
pid4=$!
for i in $(seq 1 300); do curl -sf --cacert "$T/tls.crt" -o /dev/null "https://127.0.0.1:$P4/healthz" && break; sleep 0.1; done
code=$(curl -s --cacert "$T/tls.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P4/healthz")
[ "$code" = 200 ] && ok "HTTPS with the configured certificate" || not_ok "HTTPS ($code)" "$(tail "$T/d4.log")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P4/healthz")
[ "$code" != 200 ] && ok "no plain HTTP on the TLS listener" || not_ok "plain HTTP on the TLS port"
SMIME_SERVER=https://127.0.0.1:$P4 SMIME_TOKEN=$(cat "$T/d4/admin.token") "$SMIME" admin ca export --cacert "$T/tls.crt" -o "$T/rsa-chain.pem" >/dev/null 2>&1
openssl x509 -in "$T/rsa-chain.pem" -noout -text 2>/dev/null | grep -q "Public-Key: (3072 bit)" && ok "ca_key_alg = rsa-3072 makes an RSA-3072 CA" || not_ok "RSA CA"
openssl x509 -in "$T/rsa-chain.pem" -noout -text 2>/dev/null | grep -q "URI:http://127.0.0.1:$P5/crl/root.crl" && ok "the URLs in certificates are the plain-HTTP listener's" || not_ok "http URLs with TLS" "$(openssl x509 -in "$T/rsa-chain.pem" -noout -text | grep URI)"
openssl x509 -in "$T/rsa-chain.pem" -noout -subject 2>/dev/null | grep -qE "C ?= ?DE, O ?= ?Example Org, CN ?= ?Example Org S/MIME Issuing CA" && ok "ca_country and ca_name are in the CA's subject" || not_ok "CA subject" "$(openssl x509 -in "$T/rsa-chain.pem" -noout -subject)"
grep -q "public listener (CA certificates, CRLs, OCSP): http://127.0.0.1:$P5" "$T/d4.out" && ok "it prints the public listener" || not_ok "public listener printed" "$(cat "$T/d4.out")"
curl -sf -o "$T/pub-root.crl" "http://127.0.0.1:$P5/crl/root.crl" && openssl crl -inform DER -in "$T/pub-root.crl" -noout 2>/dev/null && ok "the CRL is served over plain HTTP" || not_ok "CRL over the public listener"
code=$(curl -s -o "$T/.body" -w '%{http_code}' -H "Authorization: Bearer $(cat "$T/d4/admin.token")" "http://127.0.0.1:$P5/api/v1/users")
[ "$code" = 404 ] && ok "the admin API is not on the public listener, even with a token" || not_ok "admin API on the public listener ($code)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P5/metrics")
[ "$code" = 404 ] && ok "/metrics is not on the public listener" || not_ok "/metrics on the public listener ($code)"
kill -TERM $pid4; wait $pid4

done_testing
