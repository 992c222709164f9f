#!/usr/bin/env bash
# The key archive: a user's encryption history imported from PKCS#12 files
# (modern and legacy, some expired) into a running smimed, checked against
# the trust collection; the same files twice change nothing; files that
# must be refused are, with their reason; no key in clear in the data folder.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "archive" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
# The archive's KEK is kept in the store, wrapped under the master key (so a
# backup of the store and the master key restore the archive): no file of its own.
[ ! -e "$D/archive.kek" ] && ok "no archive.kek file beside the store" || not_ok "archive.kek made"
kek=$(sqlite3 "$D/smimed.db" "SELECT value FROM meta WHERE key = 'archive_kek'" 2>/dev/null)
[ "${#kek}" -ge 128 ] && ! grep -qi "$(xxd -p -c 64 "$D/master.key")" <<<"$kek" && ok "the KEK is in the store, wrapped (${#kek} hex digits)" || not_ok "wrapped KEK in the store" "$kek"

# A partner CA (as an organisation's old CA would be), in the trust collection.
P=$T/partner
mkdir -p "$P/new"
: >"$P/index.txt"
echo 1000 >"$P/serial"
cat >"$P/ca.cnf" <<CNF
[ ca ]
default_ca = partner
[ partner ]
dir = $P
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
CNF
# The CA is older than the history it issued: self-signed from 2020 on.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ca.key" -out "$P/ca.csr" \
	-subj "/O=Partner/CN=Partner CA" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' >"$P/ca.ext"
openssl ca -batch -notext -selfsign -config "$P/ca.cnf" -keyfile "$P/ca.key" -in "$P/ca.csr" -out "$P/ca.crt" \
	-startdate 20200101000000Z -enddate 20400101000000Z -extfile "$P/ca.ext" >/dev/null 2>&1
expect 0 "the partner CA joins the trust collection" "$SMIME" admin trust import "$P/ca.crt"
expect 0 "a user" "$SMIME" admin user add carol@example.org --alias c.smith@example.org

# issue NAME EMAIL START END KU: a certificate of the partner CA and its key
issue() {
	local name=$1 email=$2 start=$3 end=$4 ku=$5
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,%s\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$ku" "$email" >"$P/$name.ext"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$P/$name.key" -subj "/CN=$email" -out "$P/$name.csr" 2>/dev/null
	openssl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -in "$P/$name.csr" \
		-out "$P/$name.crt" -startdate "$start" -enddate "$end" -extfile "$P/$name.ext" >/dev/null 2>&1
}
# Four years of encryption certificates: two expired, two valid; one file legacy.
issue y1 carol@example.org 20220101000000Z 20230101000000Z keyEncipherment
issue y2 carol@example.org 20230101000000Z 20240101000000Z keyEncipherment
issue y3 c.smith@example.org 20240101000000Z 20360101000000Z keyEncipherment
issue y4 carol@example.org 20250101000000Z 20370101000000Z "digitalSignature,keyEncipherment"
mkdir -p "$T/pfx"
for y in y1 y2 y4; do
	openssl pkcs12 -export -inkey "$P/$y.key" -in "$P/$y.crt" -certfile "$P/ca.crt" -passout pass:history-pw -out "$T/pfx/$y.p12"
done
openssl pkcs12 -export -legacy -inkey "$P/y3.key" -in "$P/y3.crt" -passout pass:history-pw -out "$T/pfx/y3.p12" 2>/dev/null ||
	openssl pkcs12 -export -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -inkey "$P/y3.key" -in "$P/y3.crt" -passout pass:history-pw -out "$T/pfx/y3.p12"
openssl pkcs12 -in "$T/pfx/y3.p12" -info -passin pass:history-pw -noout 2>&1 | grep -q "3DES\|RC2" && ok "one file is legacy (3DES)" || not_ok "legacy file"
echo history-pw >"$T/pw"

expect 0 "smime admin import: the four years" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/pfx/y1.p12" "$T/pfx/y2.p12" "$T/pfx/y3.p12" "$T/pfx/y4.p12"
[ "$(grep -c '^imported' "$T/.out")" = 4 ] && ok "all four imported" || not_ok "four imported" "$(cat "$T/.out" "$T/.err")"
[ "$(grep -c '(expired)' "$T/.out")" = 2 ] && ok "the two expired ones join the history" || not_ok "expired into the history" "$(cat "$T/.out")"
contains "an encryption certificate is classified so" "$T/.out" "^imported encryption"
contains "a signing-and-encryption one is dual" "$T/.out" "^imported dual"
expect 0 "the same files again" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/pfx/y1.p12" "$T/pfx/y2.p12" "$T/pfx/y3.p12" "$T/pfx/y4.p12"
[ "$(grep -c '^exists' "$T/.out")" = 4 ] && ok "change nothing (exists)" || not_ok "second import" "$(cat "$T/.out")"
expect 0 "carol's certificates" "$SMIME" admin cert list --user carol@example.org --json
[ "$(jq '[.items[] | select(.source == "imported")] | length' "$T/.out")" = 4 ] && ok "four imported certificates recorded" || not_ok "recorded" "$(cat "$T/.out")"
[ "$(jq '[.items[] | select(.status == "expired")] | length' "$T/.out")" = 2 ] && ok "two of them shown expired" || not_ok "expired status" "$(cat "$T/.out")"

# A folder of files for several users, passwords from a CSV.
expect 0 "a second user" "$SMIME" admin user add dave@example.org
issue d1 dave@example.org 20250101000000Z 20360101000000Z keyEncipherment
issue d2 dave@example.org 20230101000000Z 20240101000000Z keyEncipherment
mkdir -p "$T/folder"
openssl pkcs12 -export -inkey "$P/d1.key" -in "$P/d1.crt" -certfile "$P/ca.crt" -passout pass:dave-1 -out "$T/folder/dave-2025.pfx"
openssl pkcs12 -export -inkey "$P/d2.key" -in "$P/d2.crt" -passout 'pass:dave, "two"' -out "$T/folder/dave-2023.p12"
cp "$T/pfx/y1.p12" "$T/folder/carol-2022.pfx"
cp "$T/pfx/y2.p12" "$T/folder/carol-bad.pfx"
printf 'file,password\ndave-2025.pfx,dave-1\n"dave-2023.p12","dave, ""two"""\ncarol-2022.pfx,history-pw\ncarol-bad.pfx,not-the-password\n' >"$T/passwords.csv"
"$SMIME" admin import-folder "$T/folder" --passwords "$T/passwords.csv" --json >"$T/folder.json" 2>"$T/folder.err"
rc=$?
[ $rc = 1 ] && ok "import-folder with one bad password exits 1" || not_ok "import-folder exit ($rc)" "$(cat "$T/folder.err")"
jq -e '.imported == 2 and .existing == 1 and .failed == 1' "$T/folder.json" >/dev/null && ok "two imported (dave), one already there (carol), one failed" || not_ok "import-folder report" "$(cat "$T/folder.json" "$T/folder.err")"
jq -e '.files[] | select(.file == "carol-bad.pfx") | .status == "error" and (.message | test("password"))' "$T/folder.json" >/dev/null && ok "the bad password is named in its row" || not_ok "bad password row" "$(cat "$T/folder.json")"
jq -e '.files[] | select(.file == "dave-2023.p12") | .user == "dave@example.org"' "$T/folder.json" >/dev/null && ok "files are matched to users by the certificate's address (a quoted CSV password)" || not_ok "matched by address" "$(cat "$T/folder.json")"
"$SMIME" admin import-folder "$T/folder" --passwords "$T/passwords.csv" --json >"$T/folder2.json" 2>/dev/null
jq -e '.imported == 0 and .existing == 3' "$T/folder2.json" >/dev/null && ok "the same folder again changes nothing" || not_ok "import-folder twice" "$(cat "$T/folder2.json")"
expect 0 "dave's certificates" "$SMIME" admin cert list --user dave@example.org --json
[ "$(jq '.items | length' "$T/.out")" = 2 ] && ok "dave has his two" || not_ok "dave's two" "$(cat "$T/.out")"

# The public lookup: no token, the current certificates, nothing private.
code=$(curl -s -o "$T/lookup.json" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=carol@example.org")
[ "$code" = 200 ] && ok "lookup without a token: 200" || not_ok "lookup ($code)" "$(cat "$T/lookup.json")"
y4=$(openssl x509 -in "$P/y4.crt" -noout -serial | cut -d= -f2)
jq -e --arg s "$y4" '.encryption.serial == $s' "$T/lookup.json" >/dev/null && ok "the newest valid encryption certificate is the current one" || not_ok "current encryption" "$(jq -c '.encryption.serial' "$T/lookup.json")"
jq -r .encryption.pem "$T/lookup.json" >"$T/lookup.pem"
openssl x509 -in "$T/lookup.pem" -noout 2>/dev/null && cmp -s <(openssl x509 -in "$T/lookup.pem" -outform DER) <(jq -r .encryption.der "$T/lookup.json" | base64 -d) && ok "PEM and DER forms of the same certificate" || not_ok "PEM/DER forms"
lacks "nothing private or internal in the answer" "$T/lookup.json" '"(id|name|user|password|key|pkcs12)"'
code=$(curl -s -o "$T/lookup2.json" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=C.Smith@Example.org")
[ "$code" = 200 ] && jq -e --arg s "$y4" '.encryption.serial == $s' "$T/lookup2.json" >/dev/null && ok "the same by another address of the user, in any case" || not_ok "lookup by alias ($code)"
for q in nobody@example.org '*@example.org' 'a)(mail=*' '' 'not-an-address'; do
	code=$(curl -s -o "$T/b" -w '%{http_code}' -G --data-urlencode "email=$q" "$SVC_URL/api/v1/lookup")
	[ "$code" = 404 ] && jq -e '.error.code == "not-found"' "$T/b" >/dev/null && ok "lookup of '$q': the same 404" || not_ok "lookup of '$q' ($code)"
done
expect 0 "a user without certificates" "$SMIME" admin user add erin@example.org
code=$(curl -s -o "$T/b" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=erin@example.org")
[ "$code" = 404 ] && cmp -s <(jq -S . "$T/b") <(curl -s "$SVC_URL/api/v1/lookup?email=nobody@example.org" | jq -S .) && ok "a user without certificates looks like no user" || not_ok "no existence leak ($code)" "$(cat "$T/b")"
# A newer certificate becomes current at once (the answer cache follows every change).
issue y5 carol@example.org 20260101000000Z 20380101000000Z keyEncipherment
openssl pkcs12 -export -inkey "$P/y5.key" -in "$P/y5.crt" -passout pass:history-pw -out "$T/y5.p12"
expect 0 "a fifth, newer certificate" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/y5.p12"
y5=$(openssl x509 -in "$P/y5.crt" -noout -serial | cut -d= -f2)
curl -s -o "$T/lookup3.json" "$SVC_URL/api/v1/lookup?email=carol@example.org"
jq -e --arg s "$y5" '.encryption.serial == $s' "$T/lookup3.json" >/dev/null && ok "the lookup answers the newer one at once" || not_ok "lookup after import" "$(jq -c .encryption.serial "$T/lookup3.json")"
flood=()
for i in $(seq 300); do flood+=(-o /dev/null "$SVC_URL/api/v1/lookup?email=carol@example.org"); done
curl -s -w '%{http_code}\n' "${flood[@]}" >"$T/flood" 2>/dev/null
n429=$(grep -c '^429$' "$T/flood"); n200=$(grep -c '^200$' "$T/flood")
[ "$n429" -gt 0 ] && [ "$n200" -ge 100 ] && ok "a lookup flood is limited: $n200 answered, $n429 refused with 429" || not_ok "rate limit ($n200 / $n429)"
sleep 2
code=$(curl -s -o /dev/null -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=carol@example.org")
[ "$code" = 200 ] && ok "and answered again after a pause" || not_ok "after the flood ($code)"

# What must be refused, and why.
echo wrong >"$T/wrongpw"
expect 5 "a wrong password: refused (422)" "$SMIME" admin import --user carol@example.org --password-file "$T/wrongpw" "$T/pfx/y1.p12"
contains "saying so" "$T/.err" "wrong password"
issue other mallory@example.org 20250101000000Z 20360101000000Z keyEncipherment
openssl pkcs12 -export -inkey "$P/other.key" -in "$P/other.crt" -passout pass:history-pw -out "$T/other.p12"
expect 1 "a certificate for another user's address: refused" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/other.p12"
contains "for another address" "$T/.out" "refused .*another address"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" -out "$T/rogue.crt" \
	-days 365 -subj "/CN=Rogue CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:carol@example.org\nsubjectKeyIdentifier=hash\n' >"$T/rogue.ext"
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/r.key" -subj "/CN=carol@example.org" -out "$T/r.csr" 2>/dev/null
openssl x509 -req -in "$T/r.csr" -CA "$T/rogue.crt" -CAkey "$T/rogue.key" -CAcreateserial -days 30 -extfile "$T/rogue.ext" -out "$T/r.crt" 2>/dev/null
openssl pkcs12 -export -inkey "$T/r.key" -in "$T/r.crt" -certfile "$T/rogue.crt" -passout pass:history-pw -out "$T/rogue.p12"
expect 1 "a certificate outside the trust collection: refused" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/rogue.p12"
contains "not trusted" "$T/.out" "refused .*not trusted"
head -c 3000 /dev/urandom >"$T/garbage.p12"
expect 3 "a file that is no PKCS#12: refused as malformed" "$SMIME" admin import --user carol@example.org --password-file "$T/pw" "$T/garbage.p12"
expect 4 "an unknown user" "$SMIME" admin import --user nobody@example.org --password-file "$T/pw" "$T/pfx/y1.p12"
expect 0 "nothing of that was recorded" "$SMIME" admin cert list --user carol@example.org --json
[ "$(jq '.items | length' "$T/.out")" = 5 ] && ok "carol still has her five certificates" || not_ok "refusals changed nothing" "$(cat "$T/.out")"

# No archived key, in DER or PEM, anywhere in the data folder or the database.
found=0
for y in y1 y2 y3 y4; do
	openssl pkey -in "$P/$y.key" -outform DER -out "$T/$y.der" 2>/dev/null
	hex=$(xxd -p "$T/$y.der" | tr -d '\n' | cut -c1-400)
	pemline=$(sed -n 2p "$P/$y.key")
	for f in "$D"/*; do
		xxd -p "$f" | tr -d '\n' | grep -q "$hex" && found=$((found + 1))
		grep -qF -- "$pemline" "$f" && found=$((found + 1))
	done
done
[ "$found" = 0 ] && ok "no archived key in clear (DER or PEM) in the data folder" || not_ok "an archived key in clear ($found)"
# The recovery export: the whole history in one PKCS#12; a message encrypted
# to each of the four certificates decrypts with the keys in it (openssl).
echo "recovery-pw-1" >"$T/recpw"
expect 2 "recover without -o: refused" "$SMIME" admin recover --user carol@example.org --reason "old mail" --password-file "$T/recpw"
expect 0 "smime admin recover" "$SMIME" admin recover --user carol@example.org --reason "old mail" -o "$T/history.p12" --password-file "$T/recpw"
[ "$(stat -c %a "$T/history.p12")" = 600 ] && ok "the export is written 0600" || not_ok "export mode"
openssl pkcs12 -in "$T/history.p12" -passin file:"$T/recpw" -nodes -out "$T/history.pem" 2>"$T/p12.err" && ok "openssl reads the export" || not_ok "openssl reads the export" "$(cat "$T/p12.err")"
[ "$(grep -c 'BEGIN PRIVATE KEY' "$T/history.pem")" = 5 ] && ok "all five keys in it" || not_ok "five keys" "$(grep -c 'BEGIN PRIVATE KEY' "$T/history.pem")"
# split the keys out
awk '/BEGIN PRIVATE KEY/{n++; f=sprintf("'"$T"'/rk%d.pem", n)} f{print > f} /END PRIVATE KEY/{f=""}' "$T/history.pem"
printf 'Content-Type: text/plain\r\n\r\nold mail %s\r\n' "$(date +%s)" >"$T/msg.txt"
for y in y1 y2 y3 y4 y5; do
	openssl cms -encrypt -aes-256-cbc -in "$T/msg.txt" -out "$T/$y.msg" -recip "$P/$y.crt" 2>/dev/null
	done_ok=0
	for k in "$T"/rk*.pem; do
		if openssl cms -decrypt -in "$T/$y.msg" -inkey "$k" -recip "$P/$y.crt" -out "$T/$y.out" 2>/dev/null &&
		   cmp -s "$T/msg.txt" "$T/$y.out"; then
			done_ok=1
			break
		fi
	done
	[ $done_ok = 1 ] && ok "mail to the $y certificate decrypts with a key of the export" || not_ok "decrypt $y with the export"
done
expect 4 "a user with nothing archived: not found" "$SMIME" admin recover --user nobody@example.org --reason "old mail" -o "$T/none.p12" --password-file "$T/recpw"
expect 0 "the audit log" "$SMIME" admin audit --json
jq -e '[.items[] | select(.action == "archive.recover")] | length == 1' "$T/.out" >/dev/null && ok "the recovery export is audited" || not_ok "archive.recover audited"
[ "$(jq '[.items[] | select(.action == "cert.import")] | length' "$T/.out")" = 7 ] && ok "seven cert.import entries (five of carol, two of dave)" || not_ok "audit cert.import"

# Another CA that numbers its certificates as the partner does: a serial
# names a certificate only together with its issuer.
Q=$T/second
mkdir -p "$Q"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$Q/ca.key" -out "$Q/ca.crt" \
	-days 3650 -subj "/O=Second Partner/CN=Second Partner CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" 2>/dev/null
expect 0 "a second partner CA joins the trust collection" "$SMIME" admin trust import "$Q/ca.crt"
expect 0 "a user of the second partner" "$SMIME" admin user add sam@example.org
y4_serial=$(openssl x509 -in "$P/y4.crt" -noout -serial | sed 's/serial=//')
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:sam@example.org\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$Q/sam.ext"
openssl req -new -newkey rsa:2048 -nodes -keyout "$Q/sam.key" -subj "/CN=sam@example.org" -out "$Q/sam.csr" 2>/dev/null
openssl x509 -req -in "$Q/sam.csr" -CA "$Q/ca.crt" -CAkey "$Q/ca.key" -set_serial "0x$y4_serial" -days 365 \
	-extfile "$Q/sam.ext" -out "$Q/sam.crt" 2>/dev/null
openssl pkcs12 -export -inkey "$Q/sam.key" -in "$Q/sam.crt" -passout pass:history-pw -out "$T/sam.p12"
expect 0 "a certificate with the serial of one of carol's, from another CA, is imported" "$SMIME" admin import --user sam@example.org --password-file "$T/pw" "$T/sam.p12"
status_is "the serial alone is ambiguous now: 409" 409 GET "/api/v1/certificates/$y4_serial"
grep -q 'SHA-256 fingerprint' "$T/.body" && ok "the answer says how to name one" || not_ok "ambiguity reason" "$(cat "$T/.body")"
sam_fp=$(openssl x509 -in "$Q/sam.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g')
status_is "each is found by its fingerprint" 200 GET "/api/v1/certificates/$sam_fp"
jq -e '.user != null and (.subject | test("sam@example.org"))' "$T/.body" >/dev/null && ok "sam's, by fingerprint" || not_ok "sam by fingerprint" "$(cat "$T/.body")"
expect 0 "carol's certificates" "$SMIME" admin cert list --user carol@example.org --json
[ "$(jq '.items | length' "$T/.out")" = 5 ] && ok "carol still has her five" || not_ok "carol's five" "$(cat "$T/.out")"
done_testing
