#!/usr/bin/env bash
# The round-trip demo that `make run` shows: a demo CA and two identities in
# temporary keystores, then sign, encrypt, decrypt and verify a sample message.
set -euo pipefail
SMIME=${1:-build/smime}
SMIME=$(cd "$(dirname "$SMIME")" && pwd)/$(basename "$SMIME")
work=$(mktemp -d /tmp/smime-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export SMIME_PASSPHRASE=demo-passphrase SMIME_P12_PASSWORD=demo
step() { printf '\n== %s\n' "$*"; }

step "1. a demo certification authority (EC P-256)"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.crt -days 30 -subj "/O=smimed demo/CN=Demo Root CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" 2>/dev/null
openssl x509 -in ca.crt -noout -subject

for who in alice bob; do
	step "2. $who: an RSA-3072 key and a dual-use S/MIME certificate for $who@example.org"
	openssl req -new -newkey rsa:3072 -nodes -keyout $who.key -out $who.csr \
		-subj "/O=smimed demo/CN=$who" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s@example.org\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' $who >$who.ext
	openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
		-extfile $who.ext -out $who.crt 2>/dev/null
	openssl pkcs12 -export -inkey $who.key -in $who.crt -certfile ca.crt -passout pass:demo \
		-out $who.p12
	rm -f $who.key
	"$SMIME" --home $who.keystore import --trust $who.p12
done

step "3. alice learns bob's certificate (bob sends her a signed message)"
printf 'From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hello\r\nDate: %s\r\n\r\nHi Alice, this is my certificate.\r\n' "$(date -R)" |
	"$SMIME" --home bob.keystore sign > from-bob.eml
"$SMIME" --home alice.keystore verify -i from-bob.eml >/dev/null
"$SMIME" --home alice.keystore list

step "4. the sample message"
printf 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: quarterly figures\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDear Bob,\r\nthe figures are attached in spirit. Grüße, Alice\r\n' "$(date -R)" > message.eml
cat message.eml

step "5. alice signs and encrypts it to bob (and to herself)"
"$SMIME" --home alice.keystore encrypt --sign -i message.eml -o encrypted.eml
"$SMIME" inspect -i encrypted.eml

step "6. bob decrypts it"
"$SMIME" --home bob.keystore decrypt -i encrypted.eml -o decrypted.eml

step "7. bob verifies the signature inside"
"$SMIME" --home bob.keystore verify -i decrypted.eml -o plain.eml
cat plain.eml

step "8. or both at once: smime open"
"$SMIME" --home bob.keystore open -i encrypted.eml >/dev/null
echo
echo "round trip complete."
