#!/usr/bin/env bash
# Interoperability with OpenSSL's `openssl cms`, in both directions, for every
# algorithm of the client: what smime writes, openssl verifies and decrypts;
# what openssl writes, smime verifies and decrypts; the content is
# byte-identical after the round trip.
. "$(dirname "$0")/lib.sh"

P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual
mkuser "$P" bob bob@example.org rsa3072 dual
mkuser "$P" carol carol@example.org p256 dual
mkuser "$P" dave dave@example.org p384 dual
mkuser "$P" erin erin@example.org rsa2048 sign
mkuser "$P" ed ed@example.org ed25519 sign
mkuser "$P" erinenc erin@example.org p256 encrypt
mkuser "$P" bobold bob@example.org rsa2048 encrypt -800 -400

ks() { echo "$T/ks-$1"; }
for u in alice bob carol dave; do
	"$SMIME" --home "$(ks $u)" import --trust "$P/$u.p12" --password-file <(echo pw) >/dev/null 2>&1 ||
		not_ok "import $u.p12"
done
"$SMIME" --home "$(ks erin)" import --trust "$P/erin.p12" "$P/erinenc.p12" --password-file <(echo pw) >/dev/null 2>&1
"$SMIME" --home "$(ks ed)" import --trust "$P/ed.p12" --password-file <(echo pw) >/dev/null 2>&1
"$SMIME" --home "$(ks bob)" import "$P/bobold.p12" --password-file <(echo pw) >/dev/null 2>&1
# Everyone knows everyone's certificates (an address book).
for u in alice bob carol dave erin; do
	"$SMIME" --home "$(ks $u)" import "$P/alice.crt" "$P/bob.crt" "$P/carol.crt" "$P/dave.crt" \
		"$P/erinenc.crt" >/dev/null 2>&1
done

mkmsg "$T/msg.eml" alice@example.org bob@example.org
# The entity that is signed and encrypted: the Content-* headers and the body.
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello from the smimed tests.\r\n' >"$T/entity"

# --- smime writes, openssl reads -------------------------------------------
for signer in alice carol dave erin; do
	for digest in sha256 sha384 sha512; do
		for form in clear opaque; do
			name="smime sign $signer/$digest/$form -> openssl cms -verify"
			mkmsg "$T/in.eml" $signer@example.org bob@example.org
			args=(--digest $digest)
			[ $form = opaque ] && args+=(--opaque)
			if "$SMIME" --home "$(ks $signer)" sign "${args[@]}" -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err" &&
			    openssl cms -verify -in "$T/s.eml" -CAfile "$P/ca.crt" -purpose smimesign \
			        -out "$T/v.out" 2>"$T/err"; then
				same "$name: content byte-identical" "$T/entity" "$T/v.out"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done

# Ed25519 (RFC 8419): smime signs and verifies it; OpenSSL 3.0's CMS cannot
# (its EdDSA provider refuses the digest CMS hands it), which is said, not hidden.
for form in clear opaque; do
	mkmsg "$T/in.eml" ed@example.org bob@example.org
	args=()
	[ $form = opaque ] && args+=(--opaque)
	name="smime sign Ed25519/$form -> smime verify"
	if "$SMIME" --home "$(ks ed)" sign "${args[@]}" -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err"; then
		expect 0 "$name" "$SMIME" --home "$(ks bob)" verify -i "$T/s.eml" -o "$T/v.eml"
		contains "$name: reported as ed25519" "$T/.err" "ed25519/sha512"
		sed 's/Hello from/Hallo from/' "$T/s.eml" >"$T/bad.eml"
		[ $form = opaque ] || expect 1 "$name: an altered message fails" "$SMIME" --home "$(ks bob)" verify -i "$T/bad.eml"
		if openssl cms -verify -in "$T/s.eml" -CAfile "$P/ca.crt" -out "$T/v.out" 2>"$T/err"; then
			same "smime sign Ed25519/$form -> openssl cms -verify" "$T/entity" "$T/v.out"
		elif grep -q "invalid digest" "$T/err"; then
			skip "smime sign Ed25519/$form -> openssl cms -verify" "OpenSSL $(openssl version | cut -d' ' -f2) cannot verify Ed25519 SignedData (eddsa_digest_signverify_init: invalid digest)"
		else
			not_ok "smime sign Ed25519/$form -> openssl cms -verify" "$(cat "$T/err")"
		fi
	else
		not_ok "$name" "$(cat "$T/err")"
	fi
done

name="smime sign --pss -> openssl cms -verify"
if "$SMIME" --home "$(ks alice)" sign --pss -i "$T/msg.eml" -o "$T/s.eml" 2>"$T/err" &&
    openssl cms -verify -in "$T/s.eml" -CAfile "$P/ca.crt" -out "$T/v.out" 2>"$T/err" &&
    openssl cms -cmsout -print -in "$T/s.eml" | grep -q rsassaPss; then
	same "$name: RSASSA-PSS, content byte-identical" "$T/entity" "$T/v.out"
else
	not_ok "$name" "$(cat "$T/err")"
fi

name="signed attributes: content type, digest, signing time, SMIMECapabilities, SMIMEEncryptionKeyPreference"
mkmsg "$T/in.eml" erin@example.org bob@example.org
"$SMIME" --home "$(ks erin)" sign -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err"
openssl cms -cmsout -print -in "$T/s.eml" >"$T/print" 2>&1
for attr in contentType messageDigest signingTime "S/MIME Capabilities" "id-aa-encrypKeyPref|1\.2\.840\.113549\.1\.9\.16\.2\.11"; do
	contains "$name: $attr" "$T/print" "$attr"
done
contains "SMIMECapabilities list AES-256-GCM first" "$T/print" "aes-256-gcm"
lacks "SMIMECapabilities never offer RC2 or DES" "$T/print" "rc2|des-"

for cipher in aes-256-gcm aes-128-gcm aes-256-cbc aes-128-cbc; do
	for rcpt in bob carol dave; do
		for kt in pkcs1 oaep; do
			[ $kt = oaep ] && [ $rcpt != bob ] && continue
			name="smime encrypt $cipher to $rcpt ($kt) -> openssl cms -decrypt"
			args=(--cipher $cipher --to $rcpt@example.org --no-self)
			[ $kt = oaep ] && args+=(--oaep)
			mkmsg "$T/in.eml" alice@example.org ""
			if "$SMIME" --home "$(ks alice)" encrypt "${args[@]}" -i "$T/in.eml" -o "$T/e.eml" 2>"$T/err" &&
			    openssl cms -decrypt -in "$T/e.eml" -recip "$P/$rcpt.crt" -inkey "$P/$rcpt.key" \
			        -out "$T/d.out" 2>"$T/err"; then
				same "$name: byte-identical" "$T/entity" "$T/d.out"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done
contains "AES-GCM is written as authEnveloped-data" <("$SMIME" --home "$(ks alice)" encrypt --cipher aes-256-gcm --to bob@example.org -i "$T/msg.eml" 2>/dev/null | head -20) "smime-type=authEnveloped-data"
# bob announced nothing: the default, AES-256-CBC, is enveloped-data.
contains "the default (AES-256-CBC) is written as enveloped-data" <("$SMIME" --home "$(ks alice)" encrypt --to bob@example.org -i "$T/msg.eml" 2>/dev/null | head -20) "smime-type=enveloped-data"

name="smime encrypt --sign -> openssl decrypt | openssl verify"
if "$SMIME" --home "$(ks alice)" encrypt --sign -i "$T/msg.eml" -o "$T/se.eml" 2>"$T/err" &&
    openssl cms -decrypt -in "$T/se.eml" -recip "$P/bob.crt" -inkey "$P/bob.key" -out "$T/inner" 2>"$T/err" &&
    openssl cms -verify -in "$T/inner" -CAfile "$P/ca.crt" -out "$T/v.out" 2>"$T/err"; then
	same "$name: byte-identical" "$T/entity" "$T/v.out"
else
	not_ok "$name" "$(cat "$T/err")"
fi
name="the sender is a recipient too: alice reads her own sent mail"
expect 0 "$name" "$SMIME" --home "$(ks alice)" open -i "$T/se.eml"

# --- openssl writes, smime reads -------------------------------------------
openssl cms -sign -binary -nodetach -in "$T/entity" -signer "$P/ed.crt" -inkey "$P/ed.key" \
	-from ed@example.org -out "$T/o.eml" 2>"$T/err"
if grep -qE "invalid digest|no default digest" "$T/err"; then
	skip "openssl cms -sign Ed25519 -> smime verify" "OpenSSL $(openssl version | cut -d' ' -f2) cannot sign Ed25519 SignedData ($(grep -oE 'invalid digest|no default digest' "$T/err" | head -1))"
else
	expect 0 "openssl cms -sign Ed25519 -> smime verify" "$SMIME" --home "$(ks bob)" verify -i "$T/o.eml"
fi
for signer in alice carol dave erin; do
	for digest in sha256 sha512; do
		for form in clear opaque; do
			name="openssl cms -sign $signer/$digest/$form -> smime verify"
			args=(-md $digest)
			[ $form = opaque ] && args+=(-nodetach)
			if openssl cms -sign -binary -in "$T/entity" -signer "$P/$signer.crt" -inkey "$P/$signer.key" \
			    "${args[@]}" -from $signer@example.org -to bob@example.org -subject test \
			    -out "$T/o.eml" 2>"$T/err" &&
			    "$SMIME" --home "$(ks bob)" verify -i "$T/o.eml" -o "$T/v.eml" 2>"$T/err"; then
				entity_of "$T/v.eml" >"$T/v.ent"
				same "$name: byte-identical" "$T/entity" "$T/v.ent"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done

name="openssl cms -sign RSASSA-PSS -> smime verify"
openssl cms -sign -binary -in "$T/entity" -signer "$P/alice.crt" -inkey "$P/alice.key" \
	-keyopt rsa_padding_mode:pss -from alice@example.org -out "$T/o.eml" 2>"$T/err"
expect 0 "$name" "$SMIME" --home "$(ks bob)" verify -i "$T/o.eml"

for cipher in aes-256-gcm aes-128-gcm aes-256-cbc aes-128-cbc; do
	for rcpt in bob carol dave; do
		for kt in pkcs1 oaep; do
			[ $kt = oaep ] && [ $rcpt != bob ] && continue
			name="openssl cms -encrypt -$cipher to $rcpt ($kt) -> smime decrypt"
			args=(-recip "$P/$rcpt.crt")
			[ $kt = oaep ] && args+=(-keyopt rsa_padding_mode:oaep)
			if openssl cms -encrypt -binary -in "$T/entity" -$cipher "${args[@]}" -from alice@example.org \
			    -to $rcpt@example.org -out "$T/o.eml" 2>"$T/err" &&
			    "$SMIME" --home "$(ks $rcpt)" decrypt -i "$T/o.eml" -o "$T/d.eml" 2>"$T/err"; then
				entity_of "$T/d.eml" >"$T/d.ent"
				same "$name: byte-identical" "$T/entity" "$T/d.ent"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done

name="decrypt with an expired key from the encryption history"
openssl cms -encrypt -binary -in "$T/entity" -aes-256-cbc -recip "$P/bobold.crt" -out "$T/o.eml" 2>/dev/null
expect 0 "$name" "$SMIME" --home "$(ks bob)" decrypt -i "$T/o.eml"
name="the report says the integrity of CBC is none"
"$SMIME" --home "$(ks bob)" --json decrypt -i "$T/o.eml" >/dev/null 2>"$T/rep"
contains "$name" "$T/rep" '"integrity": "none"'

name="no matching key: exit 4 and the recipient identifiers listed"
openssl cms -encrypt -binary -in "$T/entity" -aes-256-gcm -recip "$P/carol.crt" -out "$T/o.eml" 2>/dev/null
expect 4 "$name" "$SMIME" --home "$(ks bob)" decrypt -i "$T/o.eml" -o "$T/none.eml"
contains "$name: names the issuer and serial" "$T/.err" "issuer=.*Test Root CA serial="
if [ -e "$T/none.eml" ]; then not_ok "no output file on failure"; else ok "no output file on failure"; fi

name="tampered AES-GCM: tag fails, nothing released"
openssl cms -encrypt -binary -in "$T/entity" -aes-256-gcm -recip "$P/bob.crt" -outform DER -out "$T/gcm.der" 2>/dev/null
# The MAC is the last field of AuthEnvelopedData (RFC 5083 2.1): flip its last bit.
python3 -c "
d=bytearray(open('$T/gcm.der','rb').read())
d[-1]^=1
open('$T/gcm-bad.der','wb').write(d)"
{ printf 'From: alice@example.org\r\nTo: bob@example.org\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n'; base64 -w 76 "$T/gcm-bad.der"; } >"$T/bad.eml"
expect 1 "$name" "$SMIME" --home "$(ks bob)" decrypt -i "$T/bad.eml" -o "$T/bad.out"
if [ -e "$T/bad.out" ]; then not_ok "$name: no output file"; else ok "$name: no output file"; fi

name="openssl sign then encrypt -> smime open"
openssl cms -sign -binary -in "$T/entity" -signer "$P/alice.crt" -inkey "$P/alice.key" -from alice@example.org \
	-to bob@example.org -out "$T/signed.eml" 2>/dev/null
openssl cms -encrypt -binary -in "$T/signed.eml" -aes-256-gcm -recip "$P/bob.crt" -from alice@example.org \
	-to bob@example.org -out "$T/se.eml" 2>/dev/null
expect 0 "$name" "$SMIME" --home "$(ks bob)" open -i "$T/se.eml" -o "$T/open.eml"
"$SMIME" --home "$(ks bob)" --json open -i "$T/se.eml" >/dev/null 2>"$T/rep"
contains "$name: two layers reported" "$T/rep" '"kind": "signed"'
contains "$name: the encrypted layer reported" "$T/rep" '"kind": "auth-enveloped"'

done_testing
