#!/usr/bin/env bash
# Directory publication: smimed publishes users' current certificates to a
# real OpenLDAP slapd of the test's own (userSMIMECertificate as a certs-only
# PKCS#7, userCertificate;binary), after every issuance, renewal and
# revocation; ldapsearch reads them back; smime encrypt --ldap finds a
# recipient there and OpenSSL decrypts; a slapd stopped during publication
# gets the update once it is back, and so does one that refused the
# service's bind until smimed restarted; ambiguous and missing entries are
# reported and retried; smime admin directory sync and status.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "directory publication" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
if ! have_slapd; then
	skip "directory publication" "slapd, slapadd or ldap-utils are not installed (scripts/install-deps.sh)"
	done_testing
	exit
fi

if ! start_slapd "$T/slapd"; then not_ok "slapd starts" "$(cat "$T/slapd/slapd.log" 2>/dev/null)"; done_testing; exit 1; fi
trap 'stop_smimed; _slapd_exit' EXIT
PEOPLE=ou=people,$SLAPD_BASE
person() { # UID MAIL [OBJECTCLASS]
	printf 'dn: uid=%s,%s\nobjectClass: %s\nuid: %s\ncn: %s\nsn: %s\nmail: %s\n\n' \
		"$1" "$PEOPLE" "${3:-inetOrgPerson}" "$1" "$1" "$1" "$2"
}
{
	printf 'dn: %s\nobjectClass: organizationalUnit\nou: people\n\n' "$PEOPLE"
	person alice alice@example.org
	person bob bob@example.org
	person carol carol@example.org
	person tag 'tag+news@example.org'
	person dup1 dup@example.org
	person dup2 dup@example.org
	person rights rights@example.org
	person dora dora@example.org
} >"$T/people.ldif"
ldap_admin ldapadd -f "$T/people.ldif" >/dev/null 2>&1 && ok "the directory has its people" || not_ok "ldapadd people"

printf '%s\n' "$SLAPD_ADMIN_PW" >"$T/ldap.pw"
chmod 600 "$T/ldap.pw"
conf() { # FILE PASSWORD_FILE
	cat >"$1" <<CONF
ldap_url = $SLAPD_URL
ldap_base = $PEOPLE
ldap_bind_dn = $SLAPD_ADMIN_DN
ldap_password_file = $2
ldap_retry_min = 1
ldap_retry_max = 2
CONF
}
conf "$T/smimed.conf" "$T/ldap.pw"

# --- the configuration is checked ----------------------------------------------
bad_conf() { # NAME WANT-IN-MESSAGE LINE...
	local name=$1 want=$2
	shift 2
	cp "$T/smimed.conf" "$T/bad.conf"
	printf '%s\n' "$@" >>"$T/bad.conf"
	run "$name" "$SMIMED" --data "$T/check" --config "$T/bad.conf" --check-config
	if [ "$rc" -ne 0 ] && grep -qi -- "$want" "$T/.err"; then ok "$name"; else not_ok "$name" "$(detail)"; fi
}
bad_conf "an http:// ldap_url is refused" "ldap_url" "ldap_url = http://127.0.0.1:389"
bad_conf "a URL with a base DN is refused (the base is ldap_base)" "ldap_url" "ldap_url = $SLAPD_URL/dc=example,dc=org"
bad_conf "a filter without %s is refused" "ldap_filter" "ldap_filter = (mail=alice@example.org)"
bad_conf "a filter that is not one parenthesised filter is refused" "ldap_filter" "ldap_filter = mail=%s"
bad_conf "a bind DN without a password file is refused" "ldap_password_file" "ldap_password_file ="
bad_conf "retry_min above retry_max is refused" "ldap_retry_min" "ldap_retry_min = 60" "ldap_retry_max = 10"
bad_conf "StartTLS with ldaps:// is refused" "ldap_starttls" "ldap_url = ldaps://127.0.0.1:636" "ldap_starttls = 1"
run "check-config" "$SMIMED" --data "$T/check" --config "$T/smimed.conf" --check-config
is_pass "the test's configuration is accepted"

D=$T/data
if ! start_smimed "$D" --config "$T/smimed.conf"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
ok "smimed starts with a directory"
status_is "directory status" 200 GET /api/v1/directory
jq -e '.configured == true and .url == "'"$SLAPD_URL"'" and .pending == 0' "$T/.body" >/dev/null &&
	ok "status: configured, nothing pending" || not_ok "status" "$(cat "$T/.body")"
curl -s -o "$T/.body" -w '%{http_code}' "$SVC_URL/api/v1/directory" >"$T/code"
[ "$(cat "$T/code")" = 401 ] && ok "the status needs an admin token" || not_ok "status without a token" "$(cat "$T/code")"
curl -s -o "$T/.body" -w '%{http_code}' -X POST "$SVC_URL/api/v1/directory/sync" >"$T/code"
[ "$(cat "$T/code")" = 401 ] && ok "a sync needs an admin token" || not_ok "sync without a token" "$(cat "$T/code")"

# attr MAIL ATTRIBUTE OUT: the attribute's values of the entry with MAIL, one
# DER file each, OUT.1, OUT.2, ...; echoes how many.
attr() {
	local mail=$1 a=$2 out=$3 i=0 line
	rm -f "$out".*
	ldapsearch -x -LLL -o ldif-wrap=no -H "$SLAPD_URL" -b "$PEOPLE" "(mail=$mail)" "$a" 2>/dev/null >"$T/.ldif"
	while IFS= read -r line; do
		if [ "${line%%:: *}" = "$a" ]; then
			i=$((i + 1))
			printf '%s' "${line#*:: }" | base64 -d >"$out.$i"
		fi
	done <"$T/.ldif"
	echo "$i"
}
# wait_attr NAME MAIL ATTRIBUTE WANT: until the entry has WANT values (20 s).
wait_attr() {
	local name=$1 mail=$2 a=$3 want=$4 n i
	for i in $(seq 1 100); do
		n=$(attr "$mail" "$a" "$T/.wait")
		[ "$n" = "$want" ] && { ok "$name"; return 0; }
		sleep 0.2
	done
	not_ok "$name ($n values of $a, wanted $want)" "$(cat "$T/.ldif"; curl -s -H "Authorization: Bearer $SVC_TOKEN" "$SVC_URL/api/v1/directory")"
	return 1
}
fp() { openssl x509 -inform "${2:-DER}" -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }

# --- issuance is published -------------------------------------------------------
for u in alice bob carol rights; do
	api POST /api/v1/users "{\"emails\":[\"$u@example.org\"]}" >/dev/null
done
api POST /api/v1/users '{"emails":["tag+news@example.org"]}' >/dev/null
api POST /api/v1/users '{"emails":["dup@example.org"]}' >/dev/null
api POST /api/v1/users '{"emails":["nobody@example.org"]}' >/dev/null
printf 'p12-secret\n' >"$T/p12pw"
expect 0 "alice gets an encryption certificate (a generated key)" "$SMIME" admin cert issue --user alice@example.org --profile encryption -o "$T/alice.p12" --password-file "$T/p12pw"
openssl pkcs12 -in "$T/alice.p12" -passin file:"$T/p12pw" -nodes -out "$T/alice.pem" 2>/dev/null
openssl x509 -in "$T/alice.pem" -out "$T/alice.crt"
wait_attr "alice's userSMIMECertificate is published" alice@example.org userSMIMECertificate 1
n=$(attr alice@example.org 'userCertificate;binary' "$T/ac")
[ "$n" = 1 ] && [ "$(fp "$T/ac.1")" = "$(fp "$T/alice.crt" PEM)" ] &&
	ok "userCertificate;binary holds alice's certificate, DER" || not_ok "userCertificate;binary" "$n values"
attr alice@example.org userSMIMECertificate "$T/as" >/dev/null
openssl pkcs7 -inform DER -in "$T/as.1" -print_certs -out "$T/as.pem" 2>"$T/p7.err" &&
	ok "userSMIMECertificate is a PKCS#7 OpenSSL reads" || not_ok "PKCS#7" "$(cat "$T/p7.err")"
openssl cms -cmsout -inform DER -in "$T/as.1" -print >"$T/as.txt" 2>&1
grep -q 'contentType: pkcs7-signedData' "$T/as.txt" && grep -q 'eContent: <ABSENT>' "$T/as.txt" &&
	! grep -A1 'signerInfos:' "$T/as.txt" | grep -q 'version:' && ok "it is certs-only: a SignedData without content or signers" || not_ok "certs-only" "$(grep -E 'contentType|signerInfos|eContent' "$T/as.txt")"
expect 0 "the service's chain" "$SMIME" admin ca export -o "$T/chain.pem"
awk '/BEGIN/{n++} n==1' "$T/chain.pem" >"$T/issuing.pem"
awk '/BEGIN/{n++} n==2' "$T/chain.pem" >"$T/root.pem"
grep -c 'BEGIN CERTIFICATE' "$T/as.pem" | grep -qx 2 && grep -q "$(openssl x509 -in "$T/issuing.pem" -noout -subject | sed 's/^subject=//')" "$T/as.pem" &&
	ok "the PKCS#7 carries the certificate and the issuing CA (not the root)" || not_ok "PKCS#7 contents" "$(grep subject "$T/as.pem")"
[ "$(attr bob@example.org userSMIMECertificate "$T/x")" = 0 ] && ok "a user without certificates publishes nothing" || not_ok "bob has nothing yet"

# --- smime encrypt --ldap finds alice there, OpenSSL decrypts --------------------
KS=$T/ks-sender
"$SMIME" --home "$KS" import --trust "$T/root.pem" >/dev/null 2>&1
printf 'To: alice@example.org\nFrom: sender@example.org\nSubject: published\n\nfound in the directory\n' >"$T/msg.eml"
expect 0 "smime encrypt --ldap finds alice's published certificate" "$SMIME" --home "$KS" encrypt --no-self --ldap "$SLAPD_URL/$PEOPLE" --to alice@example.org -i "$T/msg.eml" -o "$T/msg.p7m"
openssl cms -decrypt -in "$T/msg.p7m" -inkey "$T/alice.pem" -recip "$T/alice.crt" -out "$T/msg.out" 2>"$T/dec.err" &&
	grep -q 'found in the directory' "$T/msg.out" && ok "OpenSSL decrypts it with alice's key" || not_ok "openssl decrypts" "$(cat "$T/dec.err")"

# --- renewal, a second user, an escaped address ----------------------------------
old=$(fp "$T/alice.crt" PEM)
expect 0 "alice's certificate is renewed" "$SMIME" admin cert issue --user alice@example.org --profile encryption -o "$T/alice2.p12" --password-file "$T/p12pw"
openssl pkcs12 -in "$T/alice2.p12" -passin file:"$T/p12pw" -nokeys -clcerts -out "$T/alice2.crt" 2>/dev/null
new=$(fp "$T/alice2.crt" PEM)
for i in $(seq 1 100); do
	attr alice@example.org 'userCertificate;binary' "$T/ac" >/dev/null
	[ -f "$T/ac.1" ] && [ "$(fp "$T/ac.1")" = "$new" ] && break
	sleep 0.2
done
[ -f "$T/ac.1" ] && [ "$(fp "$T/ac.1")" = "$new" ] && [ ! -f "$T/ac.2" ] &&
	ok "the renewal replaces the published certificate" || not_ok "renewal published" "old $old new $new"
expect 0 "bob gets a dual-use certificate" "$SMIME" admin cert issue --user bob@example.org --profile dual -o "$T/bob.p12" --password-file "$T/p12pw"
wait_attr "bob's certificate is published" bob@example.org 'userCertificate;binary' 1
expect 0 "an address with '+' gets a certificate" "$SMIME" admin cert issue --user tag+news@example.org --profile encryption -o "$T/tag.p12" --password-file "$T/p12pw"
wait_attr "it is published on its entry (the filter escapes the address)" 'tag+news@example.org' userSMIMECertificate 1

# --- revocation removes ------------------------------------------------------------
openssl pkcs12 -in "$T/bob.p12" -passin file:"$T/p12pw" -nokeys -clcerts -out "$T/bob.crt" 2>/dev/null
bob_serial=$(openssl x509 -in "$T/bob.crt" -noout -serial | sed 's/serial=//')
expect 0 "bob's certificate is revoked" "$SMIME" admin cert revoke "$bob_serial" --reason keyCompromise
wait_attr "the revoked certificate leaves the directory" bob@example.org 'userCertificate;binary' 0
[ "$(attr bob@example.org userSMIMECertificate "$T/x")" = 0 ] && ok "so does its PKCS#7" || not_ok "userSMIMECertificate removed"

# --- the distrust list and withdrawal remove too ------------------------------------
P=$T/partner
mkca "$P"
mkuser "$P" dora dora@example.org rsa2048 dual
printf 'pw\n' >"$T/dora.pw"
api POST /api/v1/users '{"emails":["dora@example.org"]}' >/dev/null
expect 0 "a partner CA is trusted" "$SMIME" admin trust import "$P/ca.crt"
expect 0 "dora's certificate of the partner CA is imported" "$SMIME" admin import --user dora@example.org --password-file "$T/dora.pw" "$P/dora.p12"
wait_attr "dora's imported certificate is published" dora@example.org 'userCertificate;binary' 1
expect 0 "the partner CA is distrusted (and still trusted)" "$SMIME" admin trust import --distrust "$P/ca.crt"
wait_attr "a certificate under a distrusted CA leaves the directory" dora@example.org 'userCertificate;binary' 0
expect 0 "the CA leaves the distrust list" "$SMIME" admin trust remove --distrust "$(fp "$P/ca.crt" PEM)"
wait_attr "dora's certificate is published again" dora@example.org 'userCertificate;binary' 1
expect 0 "dora's certificate is withdrawn" "$SMIME" admin cert withdraw "$(openssl x509 -in "$P/dora.crt" -noout -serial | cut -d= -f2)"
wait_attr "a withdrawn certificate leaves the directory" dora@example.org 'userCertificate;binary' 0

# --- entries that cannot take it -------------------------------------------------------
expect 0 "a user with two directory entries gets a certificate" "$SMIME" admin cert issue --user dup@example.org --profile encryption -o "$T/dup.p12" --password-file "$T/p12pw"
expect 0 "a user without a directory entry gets a certificate" "$SMIME" admin cert issue --user nobody@example.org --profile encryption -o "$T/nobody.p12" --password-file "$T/p12pw"
for i in $(seq 1 100); do
	api GET /api/v1/directory >/dev/null
	jq -e '[.queue[] | select(.attempts > 0)] | length == 2' "$T/.body" >/dev/null && break
	sleep 0.2
done
cp "$T/.body" "$T/status.json"
jq -e '.pending == 2' "$T/status.json" >/dev/null && ok "both stay queued" || not_ok "two pending" "$(cat "$T/status.json")"
grep -q 'entries under.*match\|more than one entry' "$T/status.json" && ok "two entries: publishing to none, with the reason" || not_ok "ambiguous reason" "$(cat "$T/status.json")"
grep -q 'no entry under' "$T/status.json" && ok "no entry: the reason" || not_ok "no entry reason" "$(cat "$T/status.json")"
[ "$(attr dup@example.org userSMIMECertificate "$T/x")" = 0 ] && ok "neither of the two entries was written" || not_ok "ambiguous entries untouched"
expect 7 "smime admin directory sync: exit 7 while users cannot be published" "$SMIME" admin directory sync
in_err "the reason is shown" "not published"
grep -qE '^nobody@example.org +1 .*no entry under' "$T/.out" && ok "the failing users are listed with the reason" || not_ok "nobody listed" "$(cat "$T/.out")"
grep -qE '^dup@example.org +1 .*2 entries under' "$T/.out" && ok "each of them" || not_ok "dup listed" "$(cat "$T/.out")"
ldap_admin ldapdelete "uid=dup2,$PEOPLE" >/dev/null 2>&1
wait_attr "once the directory has one entry, the retry publishes" dup@example.org userSMIMECertificate 1

# --- attackers: addresses that would be filter syntax never reach a filter ------------
status_is "an address with '*' is refused" 400 POST /api/v1/users '{"emails":["*@example.org"]}'
status_is "an address with ')(' is refused" 400 POST /api/v1/users '{"emails":["a)(mail=*@example.org"]}'
status_is "an address with a NUL is refused" 400 POST /api/v1/users '{"emails":["a\u0000b@example.org"]}'
anon_rc=0
printf 'dn: uid=carol,%s\nchangetype: modify\nreplace: mail\nmail: evil@example.org\n' "$PEOPLE" |
	ldapmodify -x -H "$SLAPD_URL" >/dev/null 2>&1 || anon_rc=$?
[ "$anon_rc" -ne 0 ] && ok "anonymous writes are refused by the directory (the test's ACL holds)" || not_ok "anonymous write"

# --- slapd stopped during publication: the update arrives after it is back ------------
stop_slapd
expect 0 "carol gets a certificate while the directory is down" "$SMIME" admin cert issue --user carol@example.org --profile encryption -o "$T/carol.p12" --password-file "$T/p12pw"
for i in $(seq 1 50); do
	api GET /api/v1/directory >/dev/null
	jq -e '.pending >= 1 and .connected == false and (.last_error // "" | length) > 0' "$T/.body" >/dev/null && break
	sleep 0.2
done
jq -e '.pending >= 1 and .connected == false' "$T/.body" >/dev/null && ok "status: not connected, carol queued" || not_ok "down status" "$(cat "$T/.body")"
jq -r '.last_error' "$T/.body" | grep -qi "contact\|connect" && ok "status: why (the server cannot be contacted)" || not_ok "down reason" "$(cat "$T/.body")"
curl -s "$SVC_URL/metrics" | grep -E '^smimed_directory_failures_total [1-9]' >/dev/null && ok "metrics count the failures" || not_ok "failure metric"
sleep 3
restart_slapd && ok "slapd comes back" || not_ok "slapd restarts" "$(tail "$SLAPD_DIR/slapd.log")"
wait_attr "carol's certificate arrives once the directory is back" carol@example.org userSMIMECertificate 1

person nobody nobody@example.org | ldap_admin ldapadd >/dev/null 2>&1
wait_attr "a user whose entry is added later is published at the next retry" nobody@example.org userSMIMECertificate 1

# --- directory sync republishes what the directory lost --------------------------------
printf 'dn: uid=alice,%s\nchangetype: modify\ndelete: userSMIMECertificate\n-\ndelete: userCertificate;binary\n' "$PEOPLE" |
	ldap_admin ldapmodify >/dev/null 2>&1
[ "$(attr alice@example.org userSMIMECertificate "$T/x")" = 0 ] && ok "alice's attributes are deleted behind the service's back" || not_ok "deleted"
expect 0 "smime admin directory sync" "$SMIME" admin directory sync
[ "$(attr alice@example.org 'userCertificate;binary' "$T/ac")" = 1 ] && [ "$(fp "$T/ac.1")" = "$new" ] &&
	ok "after sync the directory has alice's current certificate again" || not_ok "sync republished"
expect 0 "smime admin directory status --json" "$SMIME" --json admin directory status
jq -e '.configured and .connected and .pending == 0' "$T/.out" >/dev/null && ok "status: connected, nothing waits" || not_ok "status after sync" "$(cat "$T/.out")"
api GET "/api/v1/audit?limit=1000" >/dev/null
jq -e '[.items[] | select(.action == "directory.sync")] | length >= 2' "$T/.body" >/dev/null && ok "each sync is audited" || not_ok "sync audited" "$(jq -c '[.items[].action]' "$T/.body")"
curl -s "$SVC_URL/metrics" | grep -E '^smimed_directory_published_total [1-9]' >/dev/null && ok "metrics count the publications" || not_ok "published metric"

# --- a directory that refuses the bind: nothing is lost across a restart ---------------
stop_smimed
printf 'not-the-password\n' >"$T/wrong.pw"
conf "$T/wrong.conf" "$T/wrong.pw"
if ! start_smimed "$D" --config "$T/wrong.conf"; then not_ok "smimed starts again" "$(tail "$D.log")"; fi
expect 0 "rights gets a certificate while the bind is refused" "$SMIME" admin cert issue --user rights@example.org --profile encryption -o "$T/rights.p12" --password-file "$T/p12pw"
for i in $(seq 1 50); do
	api GET /api/v1/directory >/dev/null
	jq -r '.last_error // ""' "$T/.body" | grep -qi 'credentials' && break
	sleep 0.2
done
jq -r '.last_error // ""' "$T/.body" | grep -qi 'invalid credentials' && ok "status: the bind is refused, with the directory's reason" || not_ok "bind refused" "$(cat "$T/.body")"
[ "$(attr rights@example.org userSMIMECertificate "$T/x")" = 0 ] && ok "nothing was written" || not_ok "nothing written"
stop_smimed
if ! start_smimed "$D" --config "$T/smimed.conf"; then not_ok "smimed starts with the right password" "$(tail "$D.log")"; fi
wait_attr "the queued update survives the restart and arrives" rights@example.org userSMIMECertificate 1
grep -q '"directory.published"' "$D.log" && ok "publications are logged" || not_ok "log lines"
grep -q 'admin-secret\|not-the-password' "$D.log" && not_ok "the bind password is never logged" || ok "the bind password is never logged"

# --- without a directory --------------------------------------------------------------------
stop_smimed
if ! start_smimed "$D"; then not_ok "smimed starts without a directory" "$(tail "$D.log")"; fi
status_is "sync without a directory: 409" 409 POST /api/v1/directory/sync
expect 5 "smime admin directory sync without a directory: status 5" "$SMIME" admin directory sync
in_err "it says why" "no directory to publish to"
status_is "status without a directory" 200 GET /api/v1/directory
jq -e '.configured == false' "$T/.body" >/dev/null && ok "status: not configured" || not_ok "not configured" "$(cat "$T/.body")"

done_testing
