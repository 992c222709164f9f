#!/usr/bin/env bash
# The client against what real mail clients write and read (issue 15):
# whole messages signed by `openssl cms -sign` and NSS `cmsutil -S` (the From
# is inside the signed content), a correspondent with separate signing and
# encryption certificates (NSS, Thunderbird), the default cipher every client
# reads, the keystore's distrust list, and the frictions of import and list.
. "$(dirname "$0")/lib.sh"

alice_and_bob
mkuser "$P" carol carol@example.org rsa2048 dual
# tom, as Thunderbird has him: a signing certificate and an encryption certificate.
mkuser "$P" tom tom@example.org rsa2048 sign
mkuser "$P" tomenc tom@example.org rsa2048 encrypt

have_nss=
if command -v cmsutil >/dev/null && command -v certutil >/dev/null && command -v pk12util >/dev/null; then
	have_nss=1
	NSSV="NSS $(dpkg-query -W -f='${Version}' libnss3 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')"
	D=sql:$T/nss
	mkdir -p "$T/nss"
	certutil -N -d "$D" --empty-password
	for u in alice bob tom tomenc; do
		pk12util -i "$P/$u.p12" -d "$D" -W pw >/dev/null 2>"$T/err" || not_ok "pk12util -i $u.p12" "$(cat "$T/err")"
	done
	certutil -A -d "$D" -n "Test Root CA" -t "C,C,C" -i "$P/ca.crt"
fi
nick() { echo "$1 - smimed tests"; } # pk12util's nickname for a PKCS#12 without friendlyName
b64crlf() { base64 -w 76 "$1" | sed 's/$/\r/'; }
# p7m DER [HEADERS]: an application/pkcs7-mime signed-data message, with only HEADERS before it.
p7m() {
	printf '%sMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n' "${2:-}"
	b64crlf "$1"
}
# detached DER CONTENT: multipart/signed over CONTENT's exact bytes, no From outside.
detached() {
	local b="nss-$RANDOM$RANDOM"
	printf 'MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n\tboundary="%s"\r\n\r\nThis is a signed message.\r\n--%s\r\n' "$b" "$b"
	cat "$2"
	printf '\r\n--%s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n\r\n' "$b"
	b64crlf "$1"
	printf -- '--%s--\r\n' "$b"
}
# mime2cms MSG: $T/cms.der, the body of an application/pkcs7-mime message.
mime2cms() {
	python3 - "$1" "$T/cms.der" <<'PY'
import sys, base64
data = open(sys.argv[1], 'rb').read()
body = data.partition(b'\r\n\r\n')[2]
open(sys.argv[2], 'wb').write(base64.b64decode(body))
PY
}
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello from the smimed tests.\r\n' >"$T/entity"

# --- 1. a whole message signed as it stands: the From is inside ---------------
mkmsg "$T/msg.eml" alice@example.org bob@example.org
openssl cms -sign -in "$T/msg.eml" -signer "$P/alice.crt" -inkey "$P/alice.key" -out "$T/ws.eml" 2>/dev/null
lacks "openssl cms -sign of a whole .eml: no From outside" <(sed '/^\r*$/q' "$T/ws.eml") "^From:"
expect 0 "openssl cms -sign -in message.eml (clear-signed): verifies, exit 0" "$SMIME" --home "$KB" verify -i "$T/ws.eml" -o "$T/v.eml"
contains "... the signed From is what was compared" "$T/.err" "alice@example.org"
contains "... the output is the message" "$T/v.eml" "Hello from the smimed tests"
openssl cms -sign -nodetach -in "$T/msg.eml" -signer "$P/alice.crt" -inkey "$P/alice.key" -out "$T/wo.eml" 2>/dev/null
expect 0 "openssl cms -sign -nodetach -in message.eml (opaque): exit 0" "$SMIME" --home "$KB" verify -i "$T/wo.eml"
expect 0 "smime open of the same: exit 0" "$SMIME" --home "$KB" open -i "$T/wo.eml"

mkmsg "$T/mallory.eml" mallory@example.org bob@example.org
openssl cms -sign -in "$T/mallory.eml" -signer "$P/alice.crt" -inkey "$P/alice.key" -out "$T/wm.eml" 2>/dev/null
expect 1 "signed by alice, inner From mallory: a real mismatch, exit 1" "$SMIME" --home "$KB" verify -i "$T/wm.eml" -o "$T/wm.out"
contains "... named" "$T/.err" "not the sender mallory@example.org"
[ -s "$T/wm.out" ] && not_ok "... nothing written" || ok "... nothing written"
expect 6 "... with --allow-from-mismatch: a warning, exit 6" "$SMIME" --home "$KB" verify --allow-from-mismatch -i "$T/wm.eml"

printf 'To: bob@example.org\r\nSubject: no sender\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nwho am I\r\n' >"$T/nofrom.eml"
openssl cms -sign -in "$T/nofrom.eml" -signer "$P/alice.crt" -inkey "$P/alice.key" -out "$T/wn.eml" 2>/dev/null
expect 6 "no From anywhere: valid with a warning, exit 6" "$SMIME" --home "$KB" verify -i "$T/wn.eml"
contains "... the warning says so" "$T/.err" "no From address"
expect 6 "... with --allow-from-mismatch too: exit 6" "$SMIME" --home "$KB" verify --allow-from-mismatch -i "$T/wn.eml"
expect 0 "an outer From that matches still verifies (smime sign)" "$SMIME" --home "$KA" sign -i "$T/msg.eml" -o "$T/s.eml"
expect 0 "... exit 0" "$SMIME" --home "$KB" verify -i "$T/s.eml"

if [ -n "$have_nss" ]; then
	if cmsutil -S -d "$D" -N "$(nick alice)" -G -P -Y NONE -i "$T/msg.eml" -o "$T/n.der" 2>"$T/err"; then
		p7m "$T/n.der" >"$T/nw.eml"
		expect 0 "cmsutil -S of a whole message (opaque, no From outside): exit 0" "$SMIME" --home "$KB" verify -i "$T/nw.eml"
	else
		not_ok "cmsutil -S of a whole message" "$(cat "$T/err")"
	fi
	if cmsutil -S -T -d "$D" -N "$(nick alice)" -G -P -Y NONE -i "$T/msg.eml" -o "$T/n.der" 2>"$T/err"; then
		detached "$T/n.der" "$T/msg.eml" >"$T/nd.eml"
		expect 0 "cmsutil -S -T of a whole message (detached): exit 0" "$SMIME" --home "$KB" verify -i "$T/nd.eml"
	else
		not_ok "cmsutil -S -T of a whole message" "$(cat "$T/err")"
	fi
	cmsutil -S -d "$D" -N "$(nick alice)" -G -P -Y NONE -i "$T/mallory.eml" -o "$T/n.der" 2>/dev/null
	p7m "$T/n.der" >"$T/nm.eml"
	expect 1 "cmsutil -S by alice of mallory's message: exit 1" "$SMIME" --home "$KB" verify -i "$T/nm.eml"
else
	skip "cmsutil -S of a whole message" "NSS cmsutil not installed (Debian libnss3-tools)"
fi

# --- 2. separate signing and encryption certificates (NSS, Thunderbird) ------
mkmsg "$T/tom.eml" tom@example.org bob@example.org
if [ -n "$have_nss" ]; then
	KT=$T/ks-bob-tom
	"$SMIME" --home "$KT" import --trust --password-file <(echo pw) "$P/bob.p12" >/dev/null 2>&1
	if cmsutil -S -d "$D" -N "$(nick tom)" -G -P -Y "$(nick tomenc)" -i "$T/tom.eml" -o "$T/t.der" 2>"$T/err"; then
		openssl cms -cmsout -print -inform DER -in "$T/t.der" >"$T/t.print" 2>&1
		contains "cmsutil -S -Y names the encryption certificate (SMIMEEncryptionKeyPreference)" "$T/t.print" "id-smime-aa-encrypKeyPref|1.2.840.113549.1.9.16.2.11"
		lacks "... and announces no AES-GCM" "$T/t.print" "aes-(128|256)-gcm|id-aes(128|256)-GCM"
		p7m "$T/t.der" "From: tom@example.org\r\nTo: bob@example.org\r\nSubject: from Thunderbird\r\n" >"$T/t.eml"
		expect 0 "bob verifies tom's NSS message (separate certificates): exit 0" "$SMIME" --home "$KT" verify -i "$T/t.eml"
		TOMENC_FP=$(openssl x509 -in "$P/tomenc.crt" -outform DER | sha256sum | cut -c1-64)
		"$SMIME" --home "$KT" --json list >"$T/l.json" 2>/dev/null
		if jq -e --arg fp "$TOMENC_FP" '.entries[] | select(.fingerprint == $fp and .kind == "contact")' "$T/l.json" >/dev/null; then
			ok "... tom's preferred encryption certificate is recorded as a contact"
		else
			not_ok "... tom's preferred encryption certificate is recorded as a contact" "$(cat "$T/l.json")"
		fi
		mkmsg "$T/reply.eml" bob@example.org tom@example.org "a reply to tom"
		if "$SMIME" --home "$KT" --json encrypt -i "$T/reply.eml" -o "$T/r.eml" 2>"$T/r.json"; then
			ok "bob encrypts a reply to tom"
			contains "... with AES-256-CBC, what tom announced" "$T/r.json" '"cipher": "aes-256-cbc"'
			mime2cms "$T/r.eml"
			if cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/r.out" 2>"$T/err"; then
				contains "... cmsutil -D (NSS) decrypts it" "$T/r.out" "a reply to tom"
			else
				not_ok "... cmsutil -D (NSS) decrypts it" "$(cat "$T/err")"
			fi
			if openssl cms -decrypt -in "$T/r.eml" -inkey "$P/tomenc.key" -recip "$P/tomenc.crt" -out "$T/r2.out" 2>"$T/err"; then
				contains "... to tom's encryption certificate (its key decrypts)" "$T/r2.out" "a reply to tom"
			else
				not_ok "... to tom's encryption certificate (its key decrypts)" "$(cat "$T/err")"
			fi
		else
			not_ok "bob encrypts a reply to tom" "$(cat "$T/r.json")"
		fi
	else
		not_ok "cmsutil -S -N signcert -P -Y enccert" "$(cat "$T/err")"
	fi
	# Capabilities belong to the person: tom's encryption certificate was
	# imported by hand, his capabilities came with his signing certificate.
	KC=$T/ks-bob-caps
	"$SMIME" --home "$KC" import --trust --password-file <(echo pw) "$P/bob.p12" "$P/tomenc.crt" >/dev/null 2>&1
	expect 0 "prefer-gcm set in bob's keystore" "$SMIME" --home "$KC" config prefer-gcm yes
	cmsutil -S -d "$D" -N "$(nick tom)" -G -P -Y NONE -i "$T/tom.eml" -o "$T/t2.der" 2>/dev/null
	p7m "$T/t2.der" "From: tom@example.org\r\nTo: bob@example.org\r\n" >"$T/t2.eml"
	expect 0 "bob verifies tom's message without a key preference" "$SMIME" --home "$KC" verify -i "$T/t2.eml"
	expect 0 "bob encrypts to tom's imported encryption certificate" "$SMIME" --home "$KC" --json encrypt --no-self --to tom@example.org -i "$T/reply.eml" -o "$T/r3.eml"
	contains "... the capabilities of tom's signing certificate count: AES-CBC" "$T/.err" '"cipher": "aes-256-cbc"'
	mime2cms "$T/r3.eml"
	if cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/r3.out" 2>"$T/err"; then ok "... cmsutil -D decrypts it"; else not_ok "... cmsutil -D decrypts it" "$(cat "$T/err")"; fi
else
	skip "separate signing and encryption certificates" "NSS cmsutil not installed (Debian libnss3-tools)"
fi

# --- 3. the default cipher ---------------------------------------------------
mkmsg "$T/tobob.eml" alice@example.org bob@example.org "to bob, who announced nothing"
expect 0 "encrypt to bob, who announced nothing" "$SMIME" --home "$KA" --json encrypt -i "$T/tobob.eml" -o "$T/e.eml"
contains "... AES-256-CBC" "$T/.err" '"cipher": "aes-256-cbc"'
contains "... the report says which rule chose it" "$T/.err" '"cipher_rule": "not-all-announced-gcm"'
if openssl cms -decrypt -in "$T/e.eml" -inkey "$P/bob.key" -recip "$P/bob.crt" -out "$T/e.out" 2>"$T/err"; then
	contains "... openssl cms -decrypt reads it" "$T/e.out" "who announced nothing"
else
	not_ok "... openssl cms -decrypt reads it" "$(cat "$T/err")"
fi
if [ -n "$have_nss" ]; then
	mime2cms "$T/e.eml"
	if cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/e2.out" 2>"$T/err"; then
		contains "... cmsutil -D (NSS) reads it" "$T/e2.out" "who announced nothing"
	else
		not_ok "... cmsutil -D (NSS) reads it" "$(cat "$T/err")"
	fi
else
	skip "... cmsutil -D (NSS) reads it" "NSS cmsutil not installed"
fi
# alice's smime announces AES-GCM in every signature: once bob has it, GCM.
expect 0 "alice signs to bob (smime announces AES-GCM)" "$SMIME" --home "$KA" sign -i "$T/msg.eml" -o "$T/s2.eml"
expect 0 "bob verifies (harvests alice's capabilities)" "$SMIME" --home "$KB" verify -i "$T/s2.eml"
mkmsg "$T/toalice.eml" bob@example.org alice@example.org
expect 0 "bob encrypts to alice, who announced AES-GCM" "$SMIME" --home "$KB" --json encrypt -i "$T/toalice.eml" -o "$T/e3.eml"
contains "... AES-256-GCM" "$T/.err" '"cipher": "aes-256-gcm"'
contains "... because every recipient announced it" "$T/.err" '"cipher_rule": "all-announced-gcm"'
mkmsg "$T/tocarol.eml" bob@example.org alice@example.org
"$SMIME" --home "$KB" import "$P/carol.crt" >/dev/null 2>&1
expect 0 "bob encrypts to alice and carol (who announced nothing)" "$SMIME" --home "$KB" --json encrypt --to carol@example.org -i "$T/toalice.eml" -o "$T/e4.eml"
contains "... AES-256-CBC: not every recipient announced GCM" "$T/.err" '"cipher": "aes-256-cbc"'
expect 0 "--cipher aes-256-gcm decides alone" "$SMIME" --home "$KA" --json encrypt --cipher aes-256-gcm -i "$T/tobob.eml" -o "$T/e5.eml"
contains "... GCM" "$T/.err" '"cipher": "aes-256-gcm"'
contains "... rule: asked" "$T/.err" '"cipher_rule": "asked"'
expect 0 "smime config prefer-gcm yes" "$SMIME" --home "$KA" config prefer-gcm yes
expect 0 "smime config prefer-gcm" "$SMIME" --home "$KA" config prefer-gcm
in_out "... reads yes" "yes"
expect 0 "with prefer-gcm, to bob who announced nothing" "$SMIME" --home "$KA" --json encrypt -i "$T/tobob.eml" -o "$T/e6.eml"
contains "... GCM" "$T/.err" '"cipher": "aes-256-gcm"'
contains "... rule: prefer-gcm" "$T/.err" '"cipher_rule": "prefer-gcm"'
expect 2 "smime config prefer-gcm maybe: usage" "$SMIME" --home "$KA" config prefer-gcm maybe
expect 2 "smime config an unknown setting: usage" "$SMIME" --home "$KA" config colour blue
expect 0 "smime config --unset prefer-gcm" "$SMIME" --home "$KA" config --unset prefer-gcm
expect 0 "... back to CBC" "$SMIME" --home "$KA" --json encrypt -i "$T/tobob.eml" -o "$T/e7.eml"
contains "... AES-256-CBC" "$T/.err" '"cipher": "aes-256-cbc"'

# --- 4. a wrong passphrase on a message with two recipients ----------------------
expect 0 "alice encrypts to bob and herself" "$SMIME" --home "$KA" encrypt -i "$T/tobob.eml" -o "$T/two.eml"
expect 1 "bob decrypts with a wrong passphrase: exit 1" env SMIME_PASSPHRASE=wrong "$SMIME" --home "$KB" decrypt -i "$T/two.eml"
contains "... the passphrase is said to be wrong" "$T/.err" "wrong keystore passphrase"
lacks "... not 'no own key'" "$T/.err" "no own key"
expect 1 "... smime open too: exit 1" env SMIME_PASSPHRASE=wrong "$SMIME" --home "$KB" open -i "$T/two.eml"

# --- 5. a failed import into a new keystore leaves nothing ----------------------
printf 'no certificate here\n' >"$T/junk"
expect 3 "import garbage into a new keystore: exit 3" "$SMIME" --home "$T/new-ks" import "$T/junk"
[ -e "$T/new-ks" ] && not_ok "... no keystore is left behind" "$(ls -la "$T/new-ks")" || ok "... no keystore is left behind"
expect 1 "import a PKCS#12 with a wrong password into new/deep/ks: exit 1" "$SMIME" --home "$T/new/deep/ks" import --password-file <(echo wrong) "$P/alice.p12"
[ -e "$T/new" ] && not_ok "... none of the folders made for it is left" "$(find "$T/new")" || ok "... none of the folders made for it is left"
expect 0 "a good import into a new keystore still works" "$SMIME" --home "$T/new-ks" import "$P/bob.crt"
expect 3 "a failed import into an existing keystore" "$SMIME" --home "$T/new-ks" import "$T/junk"
[ -f "$T/new-ks/index" ] && ok "... keeps it" || not_ok "... keeps it"

# --- 6. import --trust of a PEM file with text before the block (openssl ca) ----
openssl req -new -newkey rsa:2048 -nodes -keyout "$P/dan.key" -out "$P/dan.csr" -subj "/O=smimed tests/CN=dan" 2>/dev/null
sed 's/email:carol@/email:dan@/' "$P/carol.ext" >"$P/dan.ext"
openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -days 30 \
	-extfile "$P/dan.ext" -in "$P/dan.csr" -out "$P/dan-text.pem" >/dev/null 2>&1
head -1 "$P/dan-text.pem" | grep -q "^Certificate:" && ok "openssl ca writes text before the PEM block" || not_ok "openssl ca writes text before the PEM block" "$(head -3 "$P/dan-text.pem")"
expect 0 "import --trust of openssl ca's output" "$SMIME" --home "$T/ks-text" import --trust "$P/dan-text.pem"
contains "... dan is imported" "$T/.err" "imported .*dan"
openssl x509 -in "$P/ca.crt" -text >"$T/ca-text.pem"
expect 0 "import --trust of a CA certificate with its text (openssl x509 -text)" "$SMIME" --home "$T/ks-text" import --trust "$T/ca-text.pem"
expect 0 "list" "$SMIME" --home "$T/ks-text" list
contains "... the CA is an anchor" "$T/.out" "^anchor .*Test Root CA"

# --- 8. list --json: emails is an array ------------------------------------------
"$SMIME" --home "$KA" --json list >"$T/l.json" 2>/dev/null
if jq -e '[.entries[] | .emails | type == "array"] | all' "$T/l.json" >/dev/null &&
    jq -e '.entries[] | select(.kind == "identity") | .emails == ["alice@example.org"]' "$T/l.json" >/dev/null; then
	ok "smime list --json gives emails as an array"
else
	not_ok "smime list --json gives emails as an array" "$(head -c 1500 "$T/l.json")"
fi

# --- 9. the distrust list ----------------------------------------------------
# A CA of our own, trusted and then distrusted.
E=$T/evil
mkca "$E"
mkuser "$E" eve eve@example.org rsa2048 dual
KE=$T/ks-bob-eve
"$SMIME" --home "$KE" import --trust --password-file <(echo pw) "$P/bob.p12" "$E/ca.crt" >/dev/null 2>&1
mkmsg "$T/eve.eml" eve@example.org bob@example.org
openssl cms -sign -in "$T/eve.eml" -signer "$E/eve.crt" -inkey "$E/eve.key" -out "$T/eve-s.eml" 2>/dev/null
expect 0 "eve's CA trusted: her signed mail verifies" "$SMIME" --home "$KE" verify -i "$T/eve-s.eml"
expect 0 "import --distrust eve's CA" "$SMIME" --home "$KE" import --distrust "$E/ca.crt"
contains "... it was an anchor, and is no more" "$T/.err" "no longer trusted"
expect 1 "distrusted CA (also imported as trusted): her signed mail fails, exit 1" "$SMIME" --home "$KE" verify -i "$T/eve-s.eml"
contains "... the distrust list is named" "$T/.err" "distrust"
expect 4 "... eve (a contact under it) is never encrypted to: exit 4" "$SMIME" --home "$KE" encrypt --no-self --to eve@example.org -i "$T/tobob.eml"
expect 0 "import --trust eve's CA again" "$SMIME" --home "$KE" import --trust "$E/ca.crt"
expect 1 "... it stays distrusted: exit 1" "$SMIME" --home "$KE" verify -i "$T/eve-s.eml"
expect 0 "smime list" "$SMIME" --home "$KE" list
contains "... shows the distrust list" "$T/.out" "^distrusted .*Test Root CA"
"$SMIME" --home "$KE" --json list >"$T/l.json" 2>/dev/null
jq -e '[.entries[] | select(.distrusted)] | length == 1' "$T/l.json" >/dev/null &&
	ok "... --json: one distrusted entry" || not_ok "... --json: one distrusted entry" "$(cat "$T/l.json")"
expect 2 "--trust with --distrust: usage" "$SMIME" --home "$KE" import --trust --distrust "$E/ca.crt"

# A distrusted leaf: alice's certificate, under a trusted CA.
KL=$T/ks-bob-leaf
"$SMIME" --home "$KL" import --trust --password-file <(echo pw) "$P/bob.p12" "$P/alice.crt" >/dev/null 2>&1
expect 0 "alice's mail verifies" "$SMIME" --home "$KL" verify -i "$T/s.eml"
expect 0 "import --distrust alice's certificate" "$SMIME" --home "$KL" import --distrust "$P/alice.crt"
expect 1 "a distrusted leaf: exit 1" "$SMIME" --home "$KL" verify -i "$T/s.eml"
expect 4 "... and it is never encrypted to: exit 4" "$SMIME" --home "$KL" encrypt --no-self --to alice@example.org -i "$T/tobob.eml"

# A distrusted CA that comes back re-issued (same name and key) under a trusted root.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/sub.key" -out "$P/sub.csr" \
	-subj "/O=smimed tests/CN=Rogue Sub CA" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$P/sub.ext"
openssl x509 -req -in "$P/sub.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
	-extfile "$P/sub.ext" -out "$P/sub.crt" 2>/dev/null
openssl req -x509 -key "$P/sub.key" -subj "/O=smimed tests/CN=Rogue Sub CA" -days 30 \
	-addext "basicConstraints=critical,CA:TRUE" -out "$P/sub-self.crt" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$P/fay.key" -out "$P/fay.csr" -subj "/O=smimed tests/CN=fay" 2>/dev/null
sed 's/email:carol@/email:fay@/; s/^basicConstraints.*/basicConstraints=CA:FALSE/' "$P/carol.ext" >"$P/fay.ext"
openssl x509 -req -in "$P/fay.csr" -CA "$P/sub.crt" -CAkey "$P/sub.key" -CAcreateserial -days 30 \
	-extfile "$P/fay.ext" -out "$P/fay.crt" 2>/dev/null
mkmsg "$T/fay.eml" fay@example.org bob@example.org
openssl cms -sign -in "$T/fay.eml" -signer "$P/fay.crt" -inkey "$P/fay.key" -certfile "$P/sub.crt" -out "$T/fay-s.eml" 2>/dev/null
KR=$T/ks-bob-rogue
"$SMIME" --home "$KR" import --trust --password-file <(echo pw) "$P/bob.p12" >/dev/null 2>&1
expect 0 "fay's mail (her sub-CA in the message) verifies" "$SMIME" --home "$KR" verify --no-harvest -i "$T/fay-s.eml"
expect 0 "import --distrust another certificate of the sub-CA (same name and key)" "$SMIME" --home "$KR" import --distrust "$P/sub-self.crt"
expect 1 "... the sub-CA the message carries is distrusted too: exit 1" "$SMIME" --home "$KR" verify -i "$T/fay-s.eml"

# The Windows disallowed-certificates store.
SST=$(ls "$SHARED"/corpus/sst/windows-update-disallowedcert-*.sst 2>/dev/null | head -1)
if [ -n "$SST" ]; then
	n=$(grep -cvE '^#' "${SST%.sst}.expected.txt")
	KW=$T/ks-windows
	expect 0 "import --distrust the Windows disallowed store ($(basename "$SST"))" "$SMIME" --home "$KW" import --distrust "$SST"
	"$SMIME" --home "$KW" --json list >"$T/l.json" 2>/dev/null
	got=$(jq '[.entries[] | select(.kind == "distrusted")] | length' "$T/l.json")
	[ "$got" = "$n" ] && ok "... all $n of its certificates are on the distrust list" || not_ok "... all $n of its certificates are on the distrust list (got $got)"
	lacks "... none became an anchor" "$T/l.json" '"kind": "anchor"'
	expect 0 "... then eve's CA as trusted" "$SMIME" --home "$KW" import --trust "$E/ca.crt"
	expect 0 "... mail under a CA not on the list still verifies" "$SMIME" --home "$KW" verify --no-harvest -i "$T/eve-s.eml"
else
	skip "the Windows disallowed-certificates store" "the corpus is absent: no $SHARED/corpus/sst/windows-update-disallowedcert-*.sst"
fi

done_testing
