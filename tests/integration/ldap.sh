#!/usr/bin/env bash
# smime encrypt --ldap: recipients' certificates from a real directory
# (OpenLDAP slapd of our own on a free loopback port), as Outlook and
# Thunderbird look them up: what is taken, what is refused and why, what
# the contacts gain, LDAP injection through addresses, the bounds, and a
# directory that is down.
. "$(dirname "$0")/lib.sh"

if ! have_slapd; then
	skip "smime encrypt --ldap" "slapd, slapadd or ldap-utils are not installed (scripts/install-deps.sh)"
	done_testing
	exit
fi

# --- the people and their certificates ---------------------------------------
P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual                # the sender
mkuser "$P" bob bob@example.org rsa2048 dual                    # userSMIMECertificate (PKCS#7)
mkuser "$P" carol carol@example.org p256 encrypt                # userCertificate;binary (DER), ECDH
mkuser "$P" frank frank@example.org rsa2048 dual -60 -1         # expired yesterday
mkuser "$P" grace mallory@example.org rsa2048 dual              # published for grace, made for mallory
mkuser "$P" henry henry@example.org rsa2048 sign                # signing only
mkuser "$P" judy judy@example.org rsa2048 encrypt               # found through a filter of one's own
mkuser "$P" kim kim@example.org rsa2048 dual                    # one good certificate beside a bad one
mkuser "$P" mia mia@example.org rsa2048 dual                    # one good certificate beside a bad value
# dave's certificate comes from an intermediate CA that only the directory has.
I=$T/inter
mkdir -p "$I"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$I/ca.key" \
	-out "$I/ca.csr" -subj "/O=smimed tests/CN=Test Intermediate CA" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$I/ca.ext"
openssl x509 -req -in "$I/ca.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 365 \
	-extfile "$I/ca.ext" -out "$I/ca.crt" 2>/dev/null
mkuser "$I" dave dave@example.org rsa2048 dual
# eve's CA is not a trust anchor of the keystore.
E=$T/evil
mkca "$E"
mkuser "$E" eve eve@example.org rsa2048 dual
mkuser "$E" kim-evil kim@example.org rsa2048 dual

KA=$T/ks-alice
"$SMIME" --home "$KA" import --trust --password-file <(echo pw) "$P/alice.p12" >/dev/null 2>&1
counts "alice's keystore" "$KA" 2 1

der() { openssl x509 -in "$1" -outform DER | base64 -w0; }
p7() { # CERT... -> base64 of a PKCS#7 certs-only SignedData in DER
	local args=() c
	for c in "$@"; do args+=(-certfile "$c"); done
	openssl crl2pkcs7 -nocrl "${args[@]}" -outform DER | base64 -w0
}
person() { # UID MAIL [ATTRIBUTE:: VALUE]...
	local uid=$1 mail=$2
	shift 2
	printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s\n' \
		"$uid" "$SLAPD_BASE" "$uid" "$uid" "$uid" "$mail"
	printf '%s\n' "$@"
	printf '\n'
}

# --- the directory ---------------------------------------------------------
# A TLS certificate for 127.0.0.1 from the test CA: StartTLS and ldaps.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
	-out "$T/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >"$T/tls.ext"
openssl x509 -req -in "$T/tls.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
	-extfile "$T/tls.ext" -out "$T/tls.crt" 2>/dev/null
if SLAPD_TLS_CERT=$T/tls.crt SLAPD_TLS_KEY=$T/tls.key start_slapd "$T/slapd"; then
	ok "slapd started on $SLAPD_URL (pid $SLAPD_PID)"
else
	not_ok "slapd started" "$(cat "$T/slapd/"*.log 2>/dev/null | tail -20)"
	done_testing
	exit
fi
L=$SLAPD_URL/$SLAPD_BASE

{
	printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SLAPD_BASE"
	person bob bob@example.org "userSMIMECertificate:: $(p7 "$P/bob.crt" "$P/ca.crt")"
	person carol carol@example.org "userCertificate;binary:: $(der "$P/carol.crt")"
	person dave dave@example.org "userSMIMECertificate:: $(p7 "$I/dave.crt" "$I/ca.crt")"
	person eve eve@example.org "userSMIMECertificate:: $(p7 "$E/eve.crt" "$E/ca.crt")"
	person frank frank@example.org "userCertificate;binary:: $(der "$P/frank.crt")"
	person grace grace@example.org "userCertificate;binary:: $(der "$P/grace.crt")"
	person henry henry@example.org "userCertificate;binary:: $(der "$P/henry.crt")"
	person ivan ivan@example.org
	# judy's entry has another mail address; hers is in description (--ldap-filter)
	person judy judy.old@example.org "description: judy@example.org" \
		"userCertificate;binary:: $(der "$P/judy.crt")"
	# two certificates for one person: one refused, one taken
	person kim kim@example.org "userCertificate;binary:: $(der "$E/kim-evil.crt")" \
		"userCertificate;binary:: $(der "$P/kim.crt")"
	# values that are no certificate (BER, which slapd's Binary syntax asks for), and a good one
	person leo leo@example.org "userSMIMECertificate:: $(printf '\004\001A' | base64 -w0)" \
		"userSMIMECertificate:: $(printf '\060\003\002\001\005' | base64 -w0)"
	person mia mia@example.org "userSMIMECertificate:: $(printf '\060\003\002\001\005' | base64 -w0)" \
		"userSMIMECertificate:: $(p7 "$P/mia.crt")"
	for i in $(seq 1 20); do person "crowd$i" crowd@example.org; done
	# more values than allowed (33), and a value larger than allowed (70 KiB)
	many=()
	for i in $(seq 1 33); do
		many+=("userSMIMECertificate:: $(printf "\\004\\001\\$(printf %03o "$i")" | base64 -w0)")
	done
	person noah noah@example.org "${many[@]}"
	person olga olga@example.org "userSMIMECertificate:: $( { printf '\004\203\001\030\000'; head -c 71680 /dev/zero; } | base64 -w0)"
} >"$T/people.ldif"
expect 0 "ldapadd the people" ldap_admin ldapadd -f "$T/people.ldif"

mkmsg "$T/m.eml" alice@example.org "nobody@example.org" "Secret for the directory test."
# newks NAME: a keystore $T/NAME that trusts the test CA and holds nothing else.
newks() {
	rm -rf "${T:?}/$1"
	"$SMIME" --home "$T/$1" import --trust "$P/ca.crt" >/dev/null 2>&1
}
for k in ks-env ks-filter ks-pipe ks-bind ks-bind2 ks-none ks-tls1 ks-tls2 ks-tls3; do newks "$k"; done

# enc NAME WANT TO... : smime encrypt --ldap $L --to each TO, into $T/e.eml.
enc() {
	local name=$1 want=$2 args=() a
	shift 2
	for a in "$@"; do args+=(--to "$a"); done
	rm -f "$T/e.eml"
	expect "$want" "$name" "$SMIME" --home "$KA" encrypt --ldap "$L" --no-self "${args[@]}" \
		-i "$T/plain.eml" -o "$T/e.eml"
}
# decrypts NAME DIR USER: openssl cms -decrypt with USER's key gives the text.
decrypts() {
	if openssl cms -decrypt -in "$T/e.eml" -inkey "$2/$3.key" -recip "$2/$3.crt" >"$T/d.txt" 2>"$T/d.err" &&
		grep -q "Secret for the directory test" "$T/d.txt"; then
		ok "$1"
	else
		not_ok "$1" "$(cat "$T/d.err")"
	fi
}
mkmsg "$T/plain.eml" alice@example.org "undisclosed-recipients:;" "Secret for the directory test."

# --- found --------------------------------------------------------------------
enc "bob: userSMIMECertificate (PKCS#7) is found" 0 bob@example.org
contains "bob: added to the contacts is said" "$T/.err" "directory: bob@example.org: added to the contacts"
decrypts "bob: openssl cms -decrypt with bob's key" "$P" bob
enc "carol: userCertificate;binary (DER, EC key agreement) is found" 0 carol@example.org
decrypts "carol: openssl cms -decrypt with carol's key" "$P" carol
enc "dave: chained through the directory's intermediate" 0 dave@example.org
decrypts "dave: openssl cms -decrypt with dave's key" "$I" dave
# (otherMailbox, in the default filter for Active Directory, has no equality
# rule in OpenLDAP's cosine schema: slapd never matches it.)
enc "judy: not found through mail" 4 judy@example.org
rm -f "$T/e.eml"
expect 0 "judy: found with --ldap-filter '(|(mail=%s)(description=%s))'" "$SMIME" --home "$KA" encrypt \
	--ldap "$L" --ldap-filter '(|(mail=%s)(description=%s))' --no-self --to judy@example.org \
	-i "$T/plain.eml" -o "$T/e.eml"
decrypts "judy: openssl cms -decrypt with judy's key" "$P" judy
# the default URL from the environment, the base from --ldap-base, a filter of one's own
rm -f "$T/e.eml"
expect 0 "SMIME_LDAP and --ldap-base, several recipients at once" env SMIME_LDAP="$SLAPD_URL" \
	"$SMIME" --home "$T/ks-env" encrypt --ldap-base "$SLAPD_BASE" --no-self --to bob@example.org \
	--to carol@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "SMIME_LDAP: bob decrypts" "$P" bob
expect 0 "--ldap-filter (mail=%s)" "$SMIME" --home "$T/ks-filter" encrypt --ldap "$L" \
	--ldap-filter '(&(objectClass=inetOrgPerson)(mail=%s))' --no-self --to carol@example.org \
	-i "$T/plain.eml" -o "$T/e.eml"
expect 4 "--ldap-filter '(mail=%s)' does not find judy" "$SMIME" --home "$T/ks-filter" \
	encrypt --ldap "$L" --ldap-filter '(mail=%s)' --no-self --to judy@example.org -i "$T/plain.eml" -o "$T/e.eml"
# a pipe for input: read again after the lookup
rm -f "$T/e.eml"
if cat "$T/plain.eml" | "$SMIME" --home "$T/ks-pipe" encrypt --ldap "$L" --no-self --to bob@example.org \
	-o "$T/e.eml" 2>"$T/.err"; then ok "a message on a pipe is encrypted after the lookup"; else
	not_ok "a message on a pipe is encrypted after the lookup" "$(cat "$T/.err")"; fi
decrypts "pipe: bob decrypts" "$P" bob
# signed, then encrypted to a recipient from the directory, and to yourself
rm -f "$T/e.eml"
"$SMIME" --home "$T/ks-sign" import --trust --password-file <(echo pw) "$P/alice.p12" >/dev/null 2>&1
expect 0 "--sign with a recipient from the directory" "$SMIME" --home "$T/ks-sign" encrypt --sign \
	--ldap "$L" --to carol@example.org -i "$T/m.eml" -o "$T/e.eml" --drop-missing
decrypts "--sign: carol decrypts" "$P" carol
contains "--sign: what carol decrypts is signed" "$T/d.txt" "application/pkcs7-signature|signed-data"
"$SMIME" --home "$KA" --json encrypt --ldap "$L" --no-self --to kim@example.org -i "$T/plain.eml" \
	-o "$T/e.eml" 2>"$T/kim.json"
if jq -e '.directory[0].status == "found" and (.directory[0].refused | length) == 1' "$T/kim.json" >/dev/null 2>&1; then
	ok "--json: kim's good certificate taken, eve's refused, in .directory"
else
	not_ok "--json: kim's good certificate taken, eve's refused, in .directory" "$(cat "$T/kim.json")"
fi
decrypts "kim: openssl cms -decrypt with kim's key" "$P" kim

# --- refused ----------------------------------------------------------------
enc "eve (untrusted CA): missing, exit 4" 4 eve@example.org
contains "eve: the reason is the trust anchor" "$T/.err" "eve@example.org: refused .*not issued by a trust anchor"
contains "eve: reported missing" "$T/.err" "no usable encryption certificate for: eve@example.org"
enc "frank (expired): missing, exit 4" 4 frank@example.org
contains "frank: the reason is the expiry" "$T/.err" "frank@example.org: refused .*expired on"
enc "grace (a certificate for another address): missing, exit 4" 4 grace@example.org
contains "grace: the reason is the address" "$T/.err" "grace@example.org: refused .*for mallory@example.org, not grace@example.org"
enc "henry (signing only): missing, exit 4" 4 henry@example.org
contains "henry: the reason is the key usage" "$T/.err" "henry@example.org: refused .*key usage does not allow encryption"
enc "ivan (an entry without a certificate): missing, exit 4" 4 ivan@example.org
contains "ivan: no certificate is said" "$T/.err" "ivan@example.org: its directory entry holds no certificate"
enc "leo (a value that is no certificate): missing, exit 4" 4 leo@example.org
contains "leo: the value that is not DER is named" "$T/.err" "leo@example.org: refused value [12] of userSMIMECertificate(;binary)?: not DER"
contains "leo: the value that is no certificate is named" "$T/.err" "leo@example.org: refused value [12] of userSMIMECertificate(;binary)?: DER: a SEQUENCE starting with INTEGER"
enc "mia: a bad value beside a good one: the good one is taken" 0 mia@example.org
decrypts "mia: openssl cms -decrypt with mia's key" "$P" mia
contains "mia: the bad value is named" "$T/.err" "mia@example.org: refused value"
enc "nobody (not in the directory): missing, exit 4" 4 nobody@example.org
contains "nobody: not in the directory is said" "$T/.err" "nobody@example.org: no entry in the directory"
[ -e "$T/e.eml" ] && not_ok "nothing written when recipients are missing" || ok "nothing written when recipients are missing"
enc "the good with the bad: exit 4, all bad ones named" 4 bob@example.org eve@example.org henry@example.org
contains "the good with the bad: every missing one named" "$T/.err" "no usable encryption certificate for: eve@example.org, henry@example.org"
rm -f "$T/e.eml"
expect 0 "--drop-missing: encrypted to the good ones" "$SMIME" --home "$KA" encrypt --ldap "$L" --no-self \
	--drop-missing --to eve@example.org --to frank@example.org --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "--drop-missing: bob decrypts" "$P" bob

# --- the contacts -------------------------------------------------------------
expect 0 "smime list" "$SMIME" --home "$KA" list
for u in bob carol dave judy kim mia; do
	contains "the contacts hold $u" "$T/.out" "^contact .*$u@example.org"
done
for u in eve frank mallory henry; do
	lacks "the contacts do not hold $u" "$T/.out" "$u@example.org"
done
contains "dave's intermediate is kept as a CA" "$T/.out" "^ca .*Test Intermediate CA"
counts "alice's keystore after the lookups" "$KA" 9 1
# Found ones are not looked up again: the directory is not asked for bob.
expect 0 "a contact from the directory needs no directory" "$SMIME" --home "$KA" encrypt --ldap ldap://127.0.0.1:1/dc=x \
	--no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"

# --- injection ------------------------------------------------------------------
# Each must be refused before a search, or be escaped (RFC 4515) so that it
# matches nothing.  An argument cannot hold a NUL: bash passes
# $'eve\0@example.org' as "eve", which is refused; the escaping of NUL and
# of every other octet is the same code (filter_escape in cli/ldap.c).
for a in '*@example.org' 'bob*@example.org' '*' 'a)(mail=*' 'bob@example.org)(mail=*' \
	'*)(|(mail=*' 'x@example.org\2a' $'eve\0@example.org' 'b\\2a@example.org'; do
	newks ks-inj
	expect 4 "injection '$a': missing, exit 4" "$SMIME" --home "$T/ks-inj" encrypt --ldap "$L" --no-self \
		--to "$a" -i "$T/plain.eml" -o "$T/e.eml"
	counts "injection '$a': nobody's certificate is taken" "$T/ks-inj" 1 0
done
"$SMIME" --home "$T/ks-inj" encrypt --ldap "$L" --no-self --to 'a)(mail=*' -i "$T/plain.eml" 2>"$T/.err" >/dev/null
contains "an address with parentheses is refused before any search" "$T/.err" "a\)\(mail=\*: not looked up"
"$SMIME" --home "$T/ks-inj" encrypt --ldap "$L" --no-self --to '*@example.org' -i "$T/plain.eml" 2>"$T/.err" >/dev/null
contains "'*@example.org' is escaped: it matches no entry" "$T/.err" "\*@example.org: no entry in the directory"
# The server's log shows what was asked: the star as \2a.
if ldapsearch -x -LLL -H "$SLAPD_URL" -b "$SLAPD_BASE" '(mail=\2a@example.org)' dn | grep -q dn; then
	not_ok "'\\2a@example.org' matches nothing in slapd"; else ok "'\\2a@example.org' matches nothing in slapd"; fi

# --- bounds and errors ---------------------------------------------------------
enc "more values than allowed: exit 4" 4 noah@example.org
contains "the value limit is named" "$T/.err" "noah@example.org: an entry holds 33 values of userSMIMECertificate(;binary)?, more than the 32 allowed"
enc "a value larger than allowed: exit 4" 4 olga@example.org
contains "the value size limit is named" "$T/.err" "olga@example.org: value 1 of userSMIMECertificate(;binary)? holds 71685 octets, more than the 65536 allowed"
enc "more entries than the size limit: exit 4" 4 crowd@example.org
contains "the size limit is named" "$T/.err" "crowd@example.org: more than 16 entries answer .*size limit"
echo "$SLAPD_ADMIN_PW" >"$T/ldap.pw"
expect 0 "--ldap-bind-dn with --ldap-password-file" "$SMIME" --home "$T/ks-bind" encrypt --ldap "$L" \
	--ldap-bind-dn "$SLAPD_ADMIN_DN" --ldap-password-file "$T/ldap.pw" --no-self --to bob@example.org \
	-i "$T/plain.eml" -o "$T/e.eml"
expect 4 "a wrong bind password: missing, exit 4" "$SMIME" --home "$T/ks-bind2" encrypt --ldap "$L" \
	--ldap-bind-dn "$SLAPD_ADMIN_DN" --ldap-password-file <(echo wrong) --no-self --to bob@example.org \
	-i "$T/plain.eml" -o "$T/e.eml"
contains "a wrong bind password is named" "$T/.err" "bind was refused: Invalid credentials"
expect 4 "a base DN that does not exist: exit 4" "$SMIME" --home "$T/ks-bind2" encrypt \
	--ldap "$SLAPD_URL/dc=nowhere,dc=org" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
contains "the missing base DN is named" "$T/.err" "base DN 'dc=nowhere,dc=org' is not in the directory"
expect 2 "--ldap http://...: usage (2)" "$SMIME" --home "$KA" encrypt --ldap http://127.0.0.1/ --to x@example.org -i "$T/plain.eml"
expect 2 "no base DN: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$SLAPD_URL" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-filter without %s: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L" --ldap-filter '(mail=x)' --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-filter with another %: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L" --ldap-filter '(mail=%s%n)' --to x@example.org -i "$T/plain.eml"
expect 2 "a URL with a filter of its own: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L???(mail=*)" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-bind-dn without a password file: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L" --ldap-bind-dn "$SLAPD_ADMIN_DN" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-starttls with ldaps://: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$SLAPD_LDAPS_URL/$SLAPD_BASE" --ldap-starttls --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-cacert that cannot be read: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L" --ldap-starttls --ldap-cacert "$T/no-such-ca.pem" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-cacert without TLS: usage (2)" "$SMIME" --home "$KA" encrypt --ldap "$L" --ldap-cacert "$P/ca.crt" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap-base without a URL: usage (2)" "$SMIME" --home "$KA" encrypt --ldap-base "$SLAPD_BASE" --to x@example.org -i "$T/plain.eml"
expect 2 "--ldap on sign: usage (2)" "$SMIME" --home "$KA" sign --ldap "$L" -i "$T/m.eml"
expect 4 "--no-ldap leaves SMIME_LDAP unused" env SMIME_LDAP="$L" "$SMIME" --home "$T/ks-none" encrypt --no-ldap \
	--no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
lacks "--no-ldap: no directory asked" "$T/.err" "directory:"

# --- TLS ------------------------------------------------------------------------
expect 0 "StartTLS with --ldap-cacert" "$SMIME" --home "$T/ks-tls1" encrypt --ldap "$L" --ldap-starttls \
	--ldap-cacert "$P/ca.crt" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
expect 0 "ldaps:// with --ldap-cacert" "$SMIME" --home "$T/ks-tls2" encrypt --ldap "$SLAPD_LDAPS_URL/$SLAPD_BASE" \
	--ldap-cacert "$P/ca.crt" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "ldaps: bob decrypts" "$P" bob
expect 4 "ldaps:// with a server the system's CAs do not know: exit 4" "$SMIME" --home "$T/ks-tls3" encrypt \
	--ldap "$SLAPD_LDAPS_URL/$SLAPD_BASE" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
contains "an untrusted TLS certificate is named" "$T/.err" "directory: ldaps://.*cannot connect"
expect 4 "StartTLS with the wrong CA: exit 4" "$SMIME" --home "$T/ks-tls3" encrypt --ldap "$L" --ldap-starttls \
	--ldap-cacert "$E/ca.crt" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
contains "a StartTLS failure is named" "$T/.err" "StartTLS failed"

# --- memory on the error paths ----------------------------------------------------
if command -v valgrind >/dev/null; then
	vg() { # NAME WANT ARGS...
		local name=$1 want=$2
		shift 2
		expect "$want" "valgrind: $name" valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite "$SMIME" --home "$T/ks-vg" "$@" -i "$T/plain.eml" -o "$T/e.eml"
	}
	newks ks-vg
	vg "refused, not found, invalid, no certificate" 4 encrypt --ldap "$L" --no-self --to eve@example.org \
		--to frank@example.org --to nobody@example.org --to 'a)(x' --to ivan@example.org --to leo@example.org
	vg "the size limit" 4 encrypt --ldap "$L" --no-self --to crowd@example.org
	vg "found, with --json" 0 --json encrypt --ldap "$L" --no-self --to bob@example.org --to carol@example.org
	vg "a usage error" 2 encrypt --ldap "$L" --ldap-filter '(mail=x)' --to x@example.org
	vg "a refused bind" 4 encrypt --ldap "$L" --ldap-bind-dn "$SLAPD_ADMIN_DN" --ldap-password-file <(echo wrong) \
		--no-self --to dave@example.org
else
	skip "valgrind on the error paths" "valgrind is not installed"
fi

# --- a server that accepts and never answers -------------------------------------
# libldap 2.5 with GnuTLS would spin in the TLS handshake for as long as such a
# server keeps the connection open; the watchdog ends it.
mute_port=$(free_port)
python3 - "$mute_port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(5)
s.settimeout(1)
held, end = [], time.time() + 60
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except OSError:
        pass
PY
mute_pid=$!
for i in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$mute_port") 2>/dev/null && break; sleep 0.1; done
start=$(date +%s)
expect 4 "ldaps:// to a server that never answers: missing, exit 4" timeout 60 "$SMIME" --home "$T/ks-tls3" \
	encrypt --ldap "ldaps://127.0.0.1:$mute_port/dc=x" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
took=$(( $(date +%s) - start ))
[ "$took" -le 30 ] && ok "a silent server is given up within 30 s ($took s)" || not_ok "a silent server is given up within 30 s ($took s)"
contains "a silent server: no answer is said" "$T/.err" "ldaps://127.0.0.1:$mute_port/dc=x: cannot connect: no answer within"
kill "$mute_pid" 2>/dev/null
wait "$mute_pid" 2>/dev/null

# --- the directory is down --------------------------------------------------------
pid=$SLAPD_PID
stop_slapd
kill -0 "$pid" 2>/dev/null && not_ok "slapd stopped" || ok "slapd stopped"
enc "slapd down: missing, exit 4" 4 zed@example.org nobody@example.org
contains "slapd down: cannot connect is said" "$T/.err" "directory: ldap://127.0.0.1:[0-9]+/.*cannot connect"
contains "slapd down: the recipients are reported missing" "$T/.err" "no usable encryption certificate for: zed@example.org, nobody@example.org"
expect 0 "slapd down: --drop-missing still encrypts to the known ones" "$SMIME" --home "$KA" encrypt --ldap "$L" \
	--no-self --drop-missing --to bob@example.org --to nobody@example.org -i "$T/plain.eml" -o "$T/e.eml"

done_testing
