#!/usr/bin/env bash
# What a new administrator runs into, against a real smimed: the start's
# log and warnings, public_url behind a reverse proxy, SCEP before any
# SCEP profile, CSV imports that say every row they did not create, names
# and addresses where ids were, id prefixes, a command for every API route
# (profiles, user update, group members, device update, CA import),
# expired certificates, and certificates withdrawn from publication.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "admin" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT

# json_is NAME FILTER [FILE]: jq -e FILTER holds on FILE (default: the
# output), which is not empty (jq -e passes on no input at all).
json_is() {
	if [ -s "${3:-$T/.out}" ] && jq -e "$2" "${3:-$T/.out}" >/dev/null 2>&1; then ok "$1"; else
		not_ok "$1" "jq '$2' on: $(head -c 1500 "${3:-$T/.out}")"; fi
}

# ---- the first start ------------------------------------------------------------
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
lacks "libmicrohttpd takes its options in its order (no EXTERNAL_LOGGER warning)" "$D.log" "EXTERNAL_LOGGER"
contains "the first start warns that the CAs' CRL and AIA URLs are loopback" "$D.log" '"level":"warn".*"event":"ca.url".*127\.0\.0\.1'
contains "and says how to set them" "$D.log" '"event":"ca.url".*public_url'

# ---- SCEP before any SCEP profile ----------------------------------------------------
code=$(curl -s -o "$T/caps" -w '%{http_code}' "$SVC_URL/scep?operation=GetCACaps")
[ "$code" = 404 ] && ok "GetCACaps without a SCEP profile: 404" || not_ok "GetCACaps: 404 ($code)" "$(cat "$T/caps")"
json_is "the 404 says how to make one" '.error.code == "not-found" and (.error.message | test("smime admin scep-profile create"))' "$T/caps"

# ---- CSV import: every row not created is a failure ----------------------------------
expect 0 "a user" "$SMIME" admin user add alice@example.org --name Alice --alias a@example.org
printf 'email,name,aliases\nalice@example.org,Alice,a@example.org\nbob@example.org,Bob,a@example.org\na@example.org,Someone,\ncarol@example.org,Carol,\n' >"$T/users.csv"
expect 1 "user import-csv with rows it cannot create: exit 1" "$SMIME" admin user import-csv "$T/users.csv"
contains "alice again: already present" "$T/.out" "^2 +alice@example.org +exists"
contains "bob, whose alias is alice's: failed, naming whose it is" "$T/.out" "^3 +bob@example.org +error +.*a@example.org .*alice@example.org"
contains "an address that is another user's alias: failed" "$T/.out" "^4 +a@example.org +error +.*alice@example.org"
contains "the summary counts the failures" "$T/.out" "^1 created, 1 already present, 2 failed, of 4 rows"
status_is "bob was not created" 404 GET /api/v1/users/bob@example.org
"$SMIME" admin --json user import-csv "$T/users.csv" >"$T/.out" 2>"$T/.err"
rc=$?
[ $rc = 1 ] && ok "--json: exit 1 as well" || not_ok "--json exit 1 (got $rc)"
json_is "--json: 0 created, 2 present, 2 failed" '.created == 0 and .existing == 2 and .failed == 2'

# ---- a command for every route -------------------------------------------------------
expect 0 "profile create" "$SMIME" admin profile create short --purpose encryption --ca issuing --validity-days 30 --key-alg rsa-3072 --generate
expect 0 "profile show" "$SMIME" admin --json profile show short
json_is "the profile as created" '.name == "short" and .purpose == "encryption" and .ca == "issuing" and .validity_days == 30 and .key_alg == "rsa-3072" and .allow_generate == true'
expect 0 "profile update: one field, the others kept" "$SMIME" admin profile update short --validity-days 60 --no-generate
expect 0 "profile show after the update" "$SMIME" admin --json profile show short
json_is "validity changed, the rest kept" '.validity_days == 60 and .purpose == "encryption" and .key_alg == "rsa-3072" and .allow_generate == false'
expect 2 "profile create without --purpose: usage" "$SMIME" admin profile create other --ca issuing
expect 5 "profile create of a taken name: refused" "$SMIME" admin profile create short --purpose signing --ca issuing
expect 0 "profile delete" "$SMIME" admin profile delete short
expect 4 "profile show of the deleted: not found" "$SMIME" admin profile show short

expect 0 "user update: the name" "$SMIME" admin user update alice@example.org --name "Alice Liddell"
expect 0 "user update: the aliases" "$SMIME" admin user update alice@example.org --alias al@example.org --alias liddell@example.org
expect 0 "user show" "$SMIME" admin --json user show alice@example.org
json_is "name and addresses replaced, the primary kept" '.name == "Alice Liddell" and .emails == ["alice@example.org","al@example.org","liddell@example.org"]'
expect 0 "user update: a new primary address" "$SMIME" admin user update alice@example.org --primary liddell@example.org
expect 0 "user show by the new primary" "$SMIME" admin --json user show liddell@example.org
json_is "the primary first, the old one an alias" '.emails[0] == "liddell@example.org" and (.emails | index("alice@example.org")) != null and .name == "Alice Liddell"'
expect 2 "user update with nothing to change: usage" "$SMIME" admin user update liddell@example.org

expect 0 "group add" "$SMIME" admin group add staff --description "Staff"
expect 0 "alice joins" "$SMIME" admin group add-member staff liddell@example.org
expect 0 "carol joins" "$SMIME" admin group add-member staff carol@example.org
expect 0 "group show" "$SMIME" admin group show staff
contains "group show lists the members by address" "$T/.out" "liddell@example.org"
contains "and by name" "$T/.out" "Carol"
expect 0 "group show --json" "$SMIME" admin --json group show staff
json_is "group show --json: the members" '(.members | map(.emails[0]) | sort) == ["carol@example.org","liddell@example.org"]'

expect 0 "device add" "$SMIME" admin device add --user liddell@example.org --name "Alice's phone" --platform ios
DEV=$(cat "$T/.out")
expect 0 "a second device" "$SMIME" admin device add --user carol@example.org --name "Carol's laptop" --platform linux
DEV2=$(cat "$T/.out")
expect 0 "device update" "$SMIME" admin device update "$DEV" --name "Alice's iPad" --platform ios
expect 0 "device show" "$SMIME" admin --json device show "$DEV"
json_is "the device renamed" '.name == "Alice'"'"'s iPad" and .platform == "ios"'
expect 2 "device update with nothing to change: usage" "$SMIME" admin device update "$DEV"

# ---- names and addresses where ids were; id prefixes ---------------------------------
expect 0 "device list" "$SMIME" admin device list
contains "device list: the user's address" "$T/.out" "^$DEV +liddell@example.org +ios +Alice's iPad"
lacks "device list: no bare user id" "$T/.out" "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} +ios"
expect 0 "device show by a unique prefix" "$SMIME" admin --json device show "${DEV:0:8}${DEV:9:4}"
expect 0 "device show by a unique prefix (with its dash)" "$SMIME" admin --json device show "${DEV:0:30}"
json_is "the same device" '.id == "'"$DEV"'"'
expect 5 "an ambiguous prefix: refused" "$SMIME" admin device show "${DEV:0:4}"
contains "it says ambiguous and names the candidates" "$T/.err" "ambiguous.*($DEV.*$DEV2|$DEV2.*$DEV)"
expect 4 "an unknown device: not found" "$SMIME" admin device show ffffffff-ffff
expect 0 "device show names the user" "$SMIME" admin device show "$DEV"
contains "device show: the user's address and name" "$T/.out" "^user: +liddell@example.org \(Alice Liddell\)"

# ---- certificates: names, expiry, withdrawal ------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/s.key" -out "$T/s.csr" -subj "/CN=x" 2>/dev/null
expect 0 "a signing certificate for alice's iPad" "$SMIME" admin cert issue --user liddell@example.org --profile signing --device "$DEV" --csr "$T/s.csr" -o "$T/s.pem"
SERIAL=$(openssl x509 -in "$T/s.pem" -noout -serial | cut -d= -f2)
expect 0 "cert show" "$SMIME" admin cert show "$SERIAL"
contains "cert show: the user by address" "$T/.out" "^user: +liddell@example.org \(Alice Liddell"
contains "cert show: the device by name" "$T/.out" "^device: +Alice's iPad"
expect 0 "cert show by a serial prefix" "$SMIME" admin --json cert show "${SERIAL:0:10}"
json_is "the same certificate" '.serial == "'"$SERIAL"'"'

# A partner CA's certificate, imported with its key, then withdrawn.
P=$T/pki
mkca "$P"
mkuser "$P" partner carol@example.org rsa2048 dual
echo pw >"$T/pw"
expect 0 "the partner CA is trusted" "$SMIME" admin trust import "$P/ca.crt"
expect 0 "carol's certificate from the partner CA" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$P/partner.p12"
PSERIAL=$(openssl x509 -in "$P/partner.crt" -noout -serial | cut -d= -f2)
code=$(curl -s -o "$T/l.json" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=carol@example.org")
[ "$code" = 200 ] && ok "carol is looked up" || not_ok "carol looked up ($code)" "$(cat "$T/l.json")"
expect 0 "cert withdraw" "$SMIME" admin cert withdraw "$PSERIAL"
code=$(curl -s -o "$T/l.json" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=carol@example.org")
[ "$code" = 404 ] && ok "a withdrawn certificate is not looked up" || not_ok "withdrawn: 404 ($code)" "$(cat "$T/l.json")"
expect 0 "cert show of the withdrawn" "$SMIME" admin --json cert show "$PSERIAL"
json_is "it is marked withdrawn, and keeps its status" '.withdrawn != null and .status == "active"'
echo recovery-pw >"$T/rpw"
expect 0 "its key stays archived: recover" "$SMIME" admin recover --user carol@example.org --reason "admin.sh: a withdrawn certificate keeps its key" --password-file "$T/rpw" -o "$T/carol.p12"
openssl pkcs12 -in "$T/carol.p12" -passin pass:recovery-pw -nocerts -nodes 2>/dev/null | grep -q "PRIVATE KEY" && ok "the recovered file holds the key" || not_ok "recovered key"
expect 5 "withdrawing a certificate the service issued: refused (revoke it)" "$SMIME" admin cert withdraw "$SERIAL"
contains "the refusal says to revoke" "$T/.err" "revoke"
expect 0 "the audit log" "$SMIME" admin --json audit
json_is "the withdrawal is audited" '[.items[] | select(.action == "cert.withdraw")] | length == 1'

# ---- CA import --------------------------------------------------------------------------
Q=$T/old
mkca "$Q"
openssl pkcs12 -export -inkey "$Q/ca.key" -in "$Q/ca.crt" -passout pass:pw -out "$Q/ca.p12"
expect 0 "ca import of a PKCS#12" "$SMIME" admin ca import old-root "$Q/ca.p12" --password-file "$T/pw"
expect 0 "ca show" "$SMIME" admin --json ca show old-root
json_is "the imported CA, with its key" '.id == "old-root"'
expect 0 "ca import of a certificate alone" "$SMIME" admin ca import partner-root "$P/ca.crt"
expect 5 "ca import under a taken id: refused" "$SMIME" admin ca import old-root "$Q/ca.p12" --password-file "$T/pw"

stop_smimed

# ---- public_url behind a reverse proxy ----------------------------------------------------
printf 'public_url = https://pki.example.org\n' >"$T/https.conf"
expect 0 "an https public_url is accepted" "$SMIMED" --config "$T/https.conf" --data "$T/d2" --check-config
if start_smimed "$T/d2" --config "$T/https.conf"; then
	ok "smimed starts with an https public_url"
	lacks "no loopback warning for a public name" "$T/d2.log" '"event":"ca.url"'
	expect 0 "the chain" "$SMIME" admin ca export -o "$T/chain.pem"
	openssl x509 -in "$T/chain.pem" -noout -text >"$T/issuing.txt"
	contains "the CRL URL in the CAs is plain http on the public name (S/MIME BR 7.1.2.3)" "$T/issuing.txt" "URI:http://pki.example.org/crl/"
	contains "so is the CA issuers URL" "$T/issuing.txt" "CA Issuers - URI:http://pki.example.org/ca/"
	contains "it prints the https URL it is reached by" "$T/d2.out" "https://pki.example.org"
	stop_smimed
else
	not_ok "smimed starts with an https public_url" "$(tail "$T/d2.log")"
fi

# ---- expired, not superseded ---------------------------------------------------------------
FTLIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -n "$FTLIB" ]; then
	REAL=$SMIMED
	printf '#!/bin/sh\nLD_PRELOAD=%s FAKETIME=-3d exec "%s" "$@"\n' "$FTLIB" "$REAL" >"$T/smimed-past"
	chmod +x "$T/smimed-past"
	SMIMED=$T/smimed-past
	if start_smimed "$T/d3"; then
		"$SMIME" admin user add dora@example.org >/dev/null 2>&1
		api POST /api/v1/profiles '{"name":"day","purpose":"encryption","ca":"issuing","validity_days":1,"key_alg":"rsa-3072"}' >/dev/null
		openssl req -new -newkey rsa:2048 -nodes -keyout "$T/e1.key" -out "$T/e1.csr" -subj "/CN=x" 2>/dev/null
		openssl req -new -newkey rsa:2048 -nodes -keyout "$T/e2.key" -out "$T/e2.csr" -subj "/CN=x" 2>/dev/null
		"$SMIME" admin cert issue --user dora@example.org --profile day --csr "$T/e1.csr" -o "$T/e1.pem" 2>/dev/null
		"$SMIME" admin cert issue --user dora@example.org --profile day --csr "$T/e2.csr" -o "$T/e2.pem" 2>/dev/null
		stop_smimed
		SMIMED=$REAL
		start_smimed "$T/d3" >/dev/null
		E1=$(openssl x509 -in "$T/e1.pem" -noout -serial | cut -d= -f2)
		E2=$(openssl x509 -in "$T/e2.pem" -noout -serial | cut -d= -f2)
		expect 0 "cert show of the superseded certificate, now past its validity" "$SMIME" admin --json cert show "$E1"
		json_is "it is expired, not superseded" '.status == "expired"'
		expect 0 "cert list --status expired" "$SMIME" admin --json cert list --status expired --user dora@example.org
		json_is "finds both, the superseded one too" '(.items | map(.serial) | sort) == (["'"$E1"'","'"$E2"'"] | sort)'
		expect 0 "cert list --status superseded" "$SMIME" admin --json cert list --status superseded --user dora@example.org
		json_is "finds none of them" '.items == []'
		stop_smimed
	else
		SMIMED=$REAL
		not_ok "smimed starts under faketime" "$(tail -5 "$T/d3.log")"
	fi
else
	skip "expired, not superseded" "faketime is not installed (scripts/install-deps.sh installs it)"
fi

done_testing
