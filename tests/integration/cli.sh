#!/usr/bin/env bash
# The command-line contract: help, exit statuses, bad input, recipients
# without certificates, partial output, the keystore's files.
. "$(dirname "$0")/lib.sh"

P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual
mkuser "$P" bob bob@example.org p256 dual
mkuser "$P" nokey server.example.org rsa2048 dual
KA=$T/ks-alice
KB=$T/ks-bob

# --- help -----------------------------------------------------------------
expect 0 "smime --help" "$SMIME" --help
contains "smime --help names every command" "$T/.out" "sign.*" 
for c in sign encrypt decrypt verify open import export list config inspect; do
	expect 0 "smime $c --help" "$SMIME" $c --help
	contains "smime $c --help has a usage line" "$T/.out" "^usage: smime $c"
done
expect 2 "no command: usage (2)" "$SMIME"
expect 2 "unknown command: usage (2)" "$SMIME" frobnicate
expect 2 "unknown option: usage (2)" "$SMIME" sign --frobnicate
expect 2 "encrypt options on sign: usage (2)" "$SMIME" --home "$KA" sign --to x@example.org
expect 2 "bad --at-time: usage (2)" "$SMIME" verify --at-time yesterday
for m in sign encrypt decrypt verify open import export list config inspect; do
	[ -f "$SRC/docs/smime-$m.1" ] && ok "docs/smime-$m.1 exists" || not_ok "docs/smime-$m.1 exists"
done

# --- import ---------------------------------------------------------------
expect 0 "import PKCS#12 with --trust" "$SMIME" --home "$KA" import --trust --password-file <(echo pw) "$P/alice.p12"
expect 1 "import PKCS#12 with a wrong password: exit 1" "$SMIME" --home "$KB" import --password-file <(echo wrong) "$P/bob.p12"
contains "wrong password is named" "$T/.err" "password"
expect 0 "import bob" "$SMIME" --home "$KB" import --trust --password-file <(echo pw) "$P/bob.p12"
expect 0 "import contacts (PEM)" "$SMIME" --home "$KA" import "$P/bob.crt"
openssl x509 -in "$P/bob.crt" -outform DER -out "$T/bob.der"
expect 0 "import the same certificate as DER: already present" "$SMIME" --home "$KA" import "$T/bob.der"
contains "already present is said" "$T/.err" "present"
printf 'garbage that is no certificate\n' >"$T/junk"
expect 3 "import garbage: malformed (3)" "$SMIME" --home "$KA" import "$T/junk"
head -c 300 "$P/alice.p12" >"$T/trunc.p12"
expect 3 "import a truncated PKCS#12: malformed (3)" "$SMIME" --home "$KA" import --password-file <(echo pw) "$T/trunc.p12"
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.csr" -subj "/CN=www.example.org" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n' >"$T/tls.ext"
openssl x509 -req -in "$T/tls.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 10 \
	-extfile "$T/tls.ext" -out "$T/tls.crt" 2>/dev/null
expect 5 "a certificate without emailProtection is refused (5)" "$SMIME" --home "$KA" import "$T/tls.crt"
expect 0 "list" "$SMIME" --home "$KA" list
contains "list shows the identity" "$T/.out" "^identity +dual-use +key"
contains "list shows the contact" "$T/.out" "^contact .*bob@example.org"
contains "list shows the anchor" "$T/.out" "^anchor "
expect 0 "list --json" "$SMIME" --home "$KA" --json list
contains "list --json is JSON" "$T/.out" '"entries"'

# --- keystore files -------------------------------------------------------
bad=$(find "$KA" -type f ! -perm 600 | head -3)
[ -z "$bad" ] && ok "every keystore file is 0600" || not_ok "every keystore file is 0600" "$bad"
[ "$(stat -c %a "$KA")" = 700 ] && ok "the keystore folder is 0700" || not_ok "the keystore folder is 0700"
keyder=$(openssl pkey -in "$P/alice.key" -outform DER | od -An -tx1 | tr -d ' \n' | head -c 64)
found=$(for f in $(find "$KA" -type f); do od -An -tx1 "$f" | tr -d ' \n' | grep -c "$keyder"; done | grep -v '^0$' | head -1)
[ -z "$found" ] && ok "no private key in clear in the keystore" || not_ok "no private key in clear in the keystore"
grep -rqs "PRIVATE KEY-----" "$KA" && grep -rls "BEGIN PRIVATE KEY" "$KA" >/dev/null &&
	not_ok "no PEM private key in the keystore" || ok "no PEM private key in the keystore"

# --- passphrase -----------------------------------------------------------
mkmsg "$T/m.eml" alice@example.org bob@example.org
expect 1 "wrong keystore passphrase: exit 1" env SMIME_PASSPHRASE=wrong "$SMIME" --home "$KA" sign -i "$T/m.eml"
expect 2 "no passphrase and no terminal: usage (2)" env -u SMIME_PASSPHRASE setsid "$SMIME" --home "$KA" sign -i "$T/m.eml"
echo test-passphrase >"$T/pass"
expect 0 "--passphrase-file" env -u SMIME_PASSPHRASE "$SMIME" --home "$KA" --passphrase-file "$T/pass" sign -i "$T/m.eml"

# --- sign / verify exit statuses -------------------------------------------
"$SMIME" --home "$KA" sign -i "$T/m.eml" -o "$T/s.eml"
expect 0 "verify a good signature: 0" "$SMIME" --home "$KB" verify -i "$T/s.eml"
contains "report names the signer email" "$T/.err" "alice@example.org"
contains "report names the fingerprint" "$T/.err" "SHA256:[0-9a-f]{64}"
contains "report says what the signature covers" "$T/.err" "covers: the whole message"
sed 's/Hello from/Hallo from/' "$T/s.eml" >"$T/tampered.eml"
expect 1 "verify an altered message: 1" "$SMIME" --home "$KB" verify -i "$T/tampered.eml" -o "$T/t.out"
[ -e "$T/t.out" ] && not_ok "no output for a bad signature" || ok "no output for a bad signature"
expect 0 "a keystore without trust anchors" "$SMIME" --home "$T/empty" import "$P/bob.crt"
expect 1 "untrusted signer: 1" "$SMIME" --home "$T/empty" verify -i "$T/s.eml"
sed 's/^From: alice@example.org/From: mallory@example.org/' "$T/s.eml" >"$T/from.eml"
expect 1 "signer is not From: 1" "$SMIME" --home "$KB" verify -i "$T/from.eml"
contains "mismatch is explained" "$T/.err" "not the sender"
expect 6 "--allow-from-mismatch: a warning (6)" "$SMIME" --home "$KB" verify --allow-from-mismatch -i "$T/from.eml"
{ printf 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: partial\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nYou are fired.\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n'; cat "$T/s.eml"; printf '\r\n--XX--\r\n'; } >"$T/partial.eml"
expect 6 "a signed part inside an unsigned multipart: 6" "$SMIME" --home "$KB" verify -i "$T/partial.eml"
contains "names the part" "$T/.err" "only part"
mkmsg "$T/plain.eml" alice@example.org bob@example.org
expect 1 "an unsigned message: 1" "$SMIME" --home "$KB" verify -i "$T/plain.eml"
contains "says not signed" "$T/.err" "not signed"
printf 'From: a@b\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBIjAN\r\n--B--\r\n' >"$T/garbled.eml"
expect 3 "a garbled signature: malformed (3)" "$SMIME" --home "$KB" verify -i "$T/garbled.eml"
: >"$T/empty.eml"
expect 3 "an empty message: malformed (3)" "$SMIME" --home "$KB" verify -i "$T/empty.eml"
expect 7 "a missing input file: 7" "$SMIME" --home "$KB" verify -i "$T/does-not-exist.eml"

# --- encrypt: recipients ---------------------------------------------------
mkmsg "$T/m2.eml" alice@example.org "bob@example.org, carol@example.org, dan@example.org"
expect 4 "recipients without a certificate: 4" "$SMIME" --home "$KA" encrypt -i "$T/m2.eml" -o "$T/e.eml"
contains "every missing recipient is named" "$T/.err" "carol@example.org"
contains "every missing recipient is named (2)" "$T/.err" "dan@example.org"
[ -e "$T/e.eml" ] && not_ok "no output when recipients are missing" || ok "no output when recipients are missing"
# On a terminal the user is asked, as Outlook does (script(1) gives a pty).
if command -v script >/dev/null; then
	(sleep 1; echo y) | script -qec "'$SMIME' --home '$KA' encrypt -i '$T/m2.eml' -o '$T/tty-y.eml'" /dev/null >"$T/tty.out" 2>&1
	contains "on a terminal: asked whether to remove them" "$T/tty.out" "Remove them and encrypt to the others"
	[ -s "$T/tty-y.eml" ] && ok "on a terminal: answering y encrypts to the others" || not_ok "on a terminal: answering y encrypts to the others" "$(cat "$T/tty.out")"
	(sleep 1; echo n) | script -qec "'$SMIME' --home '$KA' encrypt -i '$T/m2.eml' -o '$T/tty-n.eml'" /dev/null >"$T/tty.out" 2>&1
	[ -e "$T/tty-n.eml" ] && not_ok "on a terminal: answering n writes nothing" || ok "on a terminal: answering n writes nothing"
else
	skip "on a terminal: asked whether to remove them" "script(1) is not installed"
fi
expect 0 "--drop-missing goes on" "$SMIME" --home "$KA" encrypt --drop-missing -i "$T/m2.eml" -o "$T/e.eml"
expect 0 "bob decrypts" "$SMIME" --home "$KB" decrypt -i "$T/e.eml"
expect 5 "des-ede3-cbc without --allow-weak: policy (5)" "$SMIME" --home "$KA" encrypt --cipher des-ede3-cbc --to bob@example.org -i "$T/m.eml"
expect 0 "des-ede3-cbc with --allow-weak" "$SMIME" --home "$KA" encrypt --allow-weak --cipher des-ede3-cbc --to bob@example.org -i "$T/m.eml" -o "$T/3des.eml"
expect 2 "an unknown cipher: usage (2)" "$SMIME" --home "$KA" encrypt --cipher rc2 -i "$T/m.eml"
expect 0 "decrypt --json" "$SMIME" --home "$KB" --json decrypt -i "$T/e.eml"
# bob announced nothing yet: AES-256-CBC, which every mail client reads.
contains "decrypt --json names the cipher (CBC: bob announced nothing)" "$T/.err" '"cipher": "aes-256-cbc"'
contains "decrypt --json says no integrity (CBC)" "$T/.err" '"integrity": "none"'
expect 0 "encrypt --cipher aes-256-gcm" "$SMIME" --home "$KA" encrypt --cipher aes-256-gcm --to bob@example.org -i "$T/m.eml" -o "$T/gcm.eml"
expect 0 "decrypt --json the GCM message" "$SMIME" --home "$KB" --json decrypt -i "$T/gcm.eml"
contains "decrypt --json names the cipher (GCM when asked)" "$T/.err" '"cipher": "aes-256-gcm"'
contains "decrypt --json says aead" "$T/.err" '"integrity": "aead"'
expect 3 "decrypt an unencrypted message: 3" "$SMIME" --home "$KB" decrypt -i "$T/m.eml"

# --- capabilities harvested from signed mail choose the cipher ---------------
# bob announces only AES-CBC: a signed message whose SMIMECapabilities omit GCM.
printf 'Content-Type: text/plain\r\n\r\nold client\r\n' >"$T/ent"
openssl cms -sign -binary -in "$T/ent" -signer "$P/bob.crt" -inkey "$P/bob.key" -from bob@example.org \
	-to alice@example.org -out "$T/oldclient.eml" 2>/dev/null
expect 0 "verify bob's mail (harvests his capabilities)" "$SMIME" --home "$KA" verify -i "$T/oldclient.eml"
expect 0 "encrypt to bob after harvesting" "$SMIME" --home "$KA" --json encrypt --no-self --to bob@example.org -i "$T/m.eml" -o "$T/cbc.eml"
contains "bob's announced capabilities (no GCM) choose AES-CBC" "$T/.err" '"cipher": "aes-256-cbc"'

# --- export ---------------------------------------------------------------
expect 0 "export PKCS#12 (AES)" "$SMIME" --home "$KA" export --password-file <(echo exportpw) -o "$T/out.p12"
openssl pkcs12 -in "$T/out.p12" -passin pass:exportpw -info -noout >"$T/p12info" 2>&1
contains "openssl reads the export (AES-256)" "$T/p12info" "AES-256-CBC"
expect 0 "export --legacy" "$SMIME" --home "$KA" export --legacy --password-file <(echo exportpw) -o "$T/legacy.p12"
openssl pkcs12 -legacy -in "$T/legacy.p12" -passin pass:exportpw -info -noout >"$T/p12info" 2>&1
contains "openssl reads the legacy export (3DES)" "$T/p12info" "3-KeyTripleDES|des-ede3"
expect 0 "re-import the export into a new keystore" "$SMIME" --home "$T/ks-re" import --password-file <(echo exportpw) "$T/out.p12"
expect 0 "export --certs-only" "$SMIME" --home "$KA" export --certs-only -o "$T/certs.p7c" alice@example.org
contains "certs-only message" "$T/certs.p7c" "smime-type=certs-only"
openssl cms -cmsout -print -in "$T/certs.p7c" >"$T/print" 2>&1
contains "openssl reads the certs-only message" "$T/print" "alice"
expect 0 "import a certs-only message" "$SMIME" --home "$T/ks-certs" import "$T/certs.p7c"
expect 0 "inspect" "$SMIME" inspect -i "$T/gcm.eml"
contains "inspect shows the CMS structure" "$T/.out" "authEnvelopedData"

# --- import from an .eml attachment ---------------------------------------
{ printf 'From: alice@example.org\r\nTo: alice@example.org\r\nSubject: my cert\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=QQ\r\n\r\n--QQ\r\nContent-Type: text/plain\r\n\r\nhere\r\n--QQ\r\nContent-Type: application/x-pkcs12; name=alice.p12\r\nContent-Disposition: attachment; filename=alice.p12\r\nContent-Transfer-Encoding: base64\r\n\r\n'; base64 -w 76 "$P/alice.p12"; printf '\r\n--QQ--\r\n'; } >"$T/mycert.eml"
expect 0 "import a .p12 attached to an .eml" "$SMIME" --home "$T/ks-eml" import --password-file <(echo pw) "$T/mycert.eml"
expect 0 "list after .eml import" "$SMIME" --home "$T/ks-eml" list
contains "the identity came from the attachment" "$T/.out" "^identity .*alice@example.org"

# --- attachments survive byte for byte -------------------------------------
head -c 70000 /dev/urandom >"$T/blob.bin"
python3 - "$T/blob.bin" "$T/att.eml" <<'PY'
import sys, base64
blob = open(sys.argv[1], "rb").read()
b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
msg = (b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: attachment\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=AA\r\n\r\n"
       b"--AA\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       b"Gr\xc3\xbc\xc3\x9fe, see the attachment.\r\n"
       b"--AA\r\nContent-Type: application/octet-stream; name=blob.bin\r\n"
       b"Content-Disposition: attachment; filename=blob.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + b64 + b"--AA--\r\n")
open(sys.argv[2], "wb").write(msg)
PY
expect 0 "sign then encrypt a message with a binary attachment" "$SMIME" --home "$KA" encrypt --sign -i "$T/att.eml" -o "$T/att.enc"
expect 0 "open it" "$SMIME" --home "$KB" open -i "$T/att.enc" -o "$T/att.out"
python3 - "$T/att.out" "$T/blob.bin" >"$T/att.check" 2>&1 <<'PY'
import sys, email
from email import policy
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
blob = open(sys.argv[2], "rb").read()
parts = {p.get_filename(): p for p in m.walk() if p.get_filename()}
text = [p for p in m.walk() if p.get_content_type() == "text/plain"][0]
print("attachment-equal" if parts["blob.bin"].get_payload(decode=True) == blob else "attachment-differs")
print("text-equal" if text.get_content().startswith("Gr\u00fc\u00dfe, see") else "text-differs")
PY
contains "the attachment is byte-identical after sign, encrypt and open" "$T/att.check" "^attachment-equal"
contains "the 8-bit text part is intact (moved to a 7-bit encoding)" "$T/att.check" "^text-equal"

done_testing
