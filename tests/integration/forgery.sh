#!/usr/bin/env bash
# Forged and relabelled encrypted messages, and signing that must not lose
# content: each built from a real message by rewriting its DER (a small
# definite-length DER editor below; OpenSSL writes the originals).
#  - CBC EnvelopedData relabelled as AuthEnvelopedData, with an invented
#    mac: refused (RFC 5083 2.1), never reported as authenticated;
#  - AES-GCM with its tag cut to 4 octets, or a 16-octet tag where the GCM
#    parameters say 12: refused (RFC 5084 3.2);
#  - bytes after the ContentInfo: refused;
#  - RSASSA-PSS signing of a message that GMime must re-encode (8-bit):
#    the whole entity is signed and written.
. "$(dirname "$0")/lib.sh"

alice_and_bob

printf 'Content-Type: text/plain\r\n\r\nsecret body\r\n' >"$T/inner.eml"
openssl cms -encrypt -aes-256-cbc -binary -in "$T/inner.eml" -recip "$P/bob.crt" -outform DER -out "$T/cbc.ber"
openssl cms -encrypt -aes-256-gcm -binary -in "$T/inner.eml" -recip "$P/bob.crt" -outform DER -out "$T/gcm.ber"
# OpenSSL writes indefinite lengths: re-encode as DER for the editor.
openssl cms -cmsout -inform DER -in "$T/cbc.ber" -outform DER -out "$T/cbc.der"
openssl cms -cmsout -inform DER -in "$T/gcm.ber" -outform DER -out "$T/gcm.der"

python3 - "$T" <<'PY'
import os, sys
T = sys.argv[1]
def rd(b, i):
    tag = b[i]; n = b[i + 1]; i += 2
    if n & 0x80:
        k = n & 0x7f; n = int.from_bytes(b[i:i + k], 'big'); i += k
    return tag, i, n
def length(n):
    if n < 0x80: return bytes([n])
    s = n.to_bytes((n.bit_length() + 7) // 8, 'big'); return bytes([0x80 | len(s)]) + s
def tlv(tag, c): return bytes([tag]) + length(len(c)) + c
def children(b):
    t, s, n = rd(b, 0); out = []; i = s
    while i < s + n:
        _, cs, cl = rd(b, i); out.append(b[i:cs + cl]); i = cs + cl
    return out
def content_info(path):
    oid, ctx0 = children(open(path, 'rb').read())
    return oid, children(children(ctx0)[0])
AUTH_OID = bytes.fromhex('060b2a864886f70d0109100117')
def build(oid, parts): return tlv(0x30, oid + tlv(0xa0, tlv(0x30, b''.join(parts))))
# CBC EnvelopedData { version, recipientInfos, encryptedContentInfo } as AuthEnvelopedData
_, (ver, ris, eci) = content_info(T + '/cbc.der')
open(T + '/relabelled.der', 'wb').write(build(AUTH_OID, [ver, ris, eci, tlv(4, os.urandom(16))]))
# AES-GCM: the tag cut to 4 octets; bytes after the ContentInfo
oid, parts = content_info(T + '/gcm.der')
_, ts, tn = rd(parts[-1], 0)
tag = parts[-1][ts:ts + tn]
open(T + '/short-tag.der', 'wb').write(build(oid, parts[:-1] + [tlv(4, tag[:4])]))
open(T + '/trailing.der', 'wb').write(build(oid, parts) + b'\x05\x00')
# AES-GCM parameters that say aes-ICVlen 12 while the mac has 16 octets
eci = parts[-2]
ect, alg, enc = children(eci)
aoid, params = children(alg)
nonce = children(params)[0]
alg12 = tlv(0x30, aoid + tlv(0x30, nonce + bytes.fromhex('02010c')))
open(T + '/icv12.der', 'wb').write(build(oid, parts[:-2] + [tlv(0x30, ect + alg12 + enc), parts[-1]]))
PY

# mail MIME-TYPE DER OUT: the DER as an S/MIME message
mail() {
	{ printf 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n'
	  printf 'Content-Type: application/pkcs7-mime; smime-type=%s; name="smime.p7m"\r\n' "$1"
	  printf 'Content-Transfer-Encoding: base64\r\n\r\n'
	  base64 -w 76 "$2" | sed 's/$/\r/'; } >"$3"
}
mail authEnveloped-data "$T/gcm.der" "$T/gcm.eml"
expect 0 "the genuine AES-GCM message (re-encoded as DER) decrypts" "$SMIME" --home "$KB" decrypt -i "$T/gcm.eml" -o "$T/gcm.out"
contains "... to its body" "$T/gcm.out" "secret body"

mail authEnveloped-data "$T/relabelled.der" "$T/relabelled.eml"
expect 3 "CBC relabelled as AuthEnvelopedData: refused (3)" "$SMIME" --home "$KB" decrypt -i "$T/relabelled.eml" -o "$T/r.out"
contains "... naming RFC 5083" "$T/.err" "RFC 5083"
lacks "... never reported as authenticated" "$T/.err" "aead"
[ -e "$T/r.out" ] && not_ok "... no output file" || ok "... no output file"
expect 3 "CBC relabelled as AuthEnvelopedData: open refuses it too" "$SMIME" --home "$KB" open -i "$T/relabelled.eml" -o "$T/r2.out"
"$SMIME" --home "$KB" --json decrypt -i "$T/relabelled.eml" -o "$T/r3.out" >"$T/r.json" 2>&1
lacks "... nor in --json" "$T/r.json" '"integrity": *"aead"'

for f in short-tag icv12 trailing; do
	mail authEnveloped-data "$T/$f.der" "$T/$f.eml"
	expect 3 "AES-GCM, $f: refused (3)" "$SMIME" --home "$KB" decrypt -i "$T/$f.eml" -o "$T/$f.out"
	[ -e "$T/$f.out" ] && not_ok "AES-GCM, $f: no output file" || ok "AES-GCM, $f: no output file"
	"$SMIME" --home "$KB" decrypt -i "$T/$f.eml" >"$T/$f.pipe" 2>/dev/null
	[ -s "$T/$f.pipe" ] && not_ok "AES-GCM, $f: nothing on a pipe" || ok "AES-GCM, $f: nothing on a pipe"
done
contains "a short tag is named as such" <("$SMIME" --home "$KB" decrypt -i "$T/short-tag.eml" -o "$T/x.out" 2>&1) "RFC 5084"

# RSASSA-PSS over a message that must be re-encoded: nothing may be lost.
printf 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: pss\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline one\r\n\303\251t\303\251\r\nlast line\r\n' "$(date -R)" >"$T/8bit.eml"
for form in clear opaque; do
	opt=; [ $form = opaque ] && opt=--opaque
	expect 0 "sign --pss $form of an 8-bit message" "$SMIME" --home "$KA" sign --pss $opt -i "$T/8bit.eml" -o "$T/pss-$form.eml"
	if openssl cms -verify -in "$T/pss-$form.eml" -CAfile "$P/ca.crt" -out "$T/pss-$form.ent" 2>"$T/.err"; then
		ok "sign --pss $form: openssl verifies it"
	else
		not_ok "sign --pss $form: openssl verifies it" "$(cat "$T/.err")"
	fi
	contains "sign --pss $form: the signed entity has its Content-Type" "$T/pss-$form.ent" "^Content-Type: text/plain"
	python3 - "$T/pss-$form.ent" <<'PY' && ok "sign --pss $form: the whole body is signed" || not_ok "sign --pss $form: the whole body is signed"
import email, sys
m = email.message_from_bytes(open(sys.argv[1], 'rb').read())
body = m.get_payload(decode=True).decode('utf-8')
sys.exit(0 if body.replace('\r\n', '\n') == 'line one\n\u00e9t\u00e9\nlast line\n' else 1)
PY
done

done_testing
