#!/usr/bin/env bash
# Third-party S/MIME and PKCS test vectors (../shared/vectors, read in place):
# every row of shared/vectors/README.md run through smime, asserting what the
# README says the file gives.  The README records what OpenSSL 3.0.22 makes of
# each file; "OK" rows must pass, rows the README marks "must FAIL" must fail.
# Where the same file is also in shared/corpus/README.md (thunderbird-smime/),
# the corpus `expected` column decides (SHA-1, date mismatch, signature around
# encryption: WARN, i.e. exit 6 or 1 and never 0).  SHA-1 signatures are WARN
# everywhere (corpus policy: "valid, with the SHA-1 warning").
#
# Every smime call runs under `timeout 20`; every call must exit below 128
# (no crash) and must not time out (no hang).
. "$(dirname "$0")/lib.sh"

V=$SHARED/vectors
if [ ! -d "$V" ]; then
	echo "ok 1 - shared vectors # SKIP ../shared is absent"
	echo "1..1"
	exit 0
fi

# --- helpers (the shared ones are in lib.sh) ---------------------------------
# import_p12 NAME FILE PASSWORD CERTS KEYS: into a fresh keystore.
n_ks=0
import_p12() {
	n_ks=$((n_ks + 1))
	local h=$T/p12-$n_ks
	printf '%s\n' "$3" >"$T/pw"
	run "$1 import" "$SMIME" --home "$h" --json import --password-file "$T/pw" "$2"
	is_pass "$1 import"
	# Every certificate of the file is accounted for in the import report
	# (imported, or skipped with its reason when it is no S/MIME certificate,
	# such as a TLS server certificate riding along), and every key is kept.
	local c k
	c=$(grep -c '"fingerprint"' "$T/.out")
	timeout 20 "$SMIME" --home "$h" --json list >"$T/.list" 2>/dev/null
	k=$(grep -c '"key": true' "$T/.list")
	if [ "$c" -eq "$4" ] && [ "$k" -eq "$5" ]; then ok "$1: $4 certificate(s) read, $5 key(s) kept"; else
		not_ok "$1: $4 certificate(s) read, $5 key(s) kept (got $c, $k)" "$(head -c 1500 "$T/.out")"; fi
}
# wrap DER FROM SMIMETYPE > eml: a bare CMS ContentInfo as an application/pkcs7-mime message.
wrap() {
	printf 'From: %s\r\nTo: bobrsa@example.com\r\nSubject: RFC 4134 example\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=%s; name=smime.p7m\r\nContent-Disposition: attachment; filename=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' "$2" "$3"
	base64 -w 76 "$1" | sed 's/$/\r/'
}
ks() { # HOME [import args...]: add to a keystore quietly
	local h=$1
	shift
	timeout 20 "$SMIME" --home "$h" import "$@" >/dev/null 2>&1
}

# === rfc9216/ ===============================================================
R=$V/rfc9216
for p in alice bob carlos dana; do
	import_p12 "rfc9216/$p.p12" "$R/$p.p12" "$p" 3 2
	# the '-----BEGIN PKCS12-----' armour holds the same bytes: same keystore.
	import_p12 "rfc9216/$p.p12.pem" "$R/$p.p12.pem" "$p" 3 2
	a=$(timeout 20 "$SMIME" --home "$T/p12-$((n_ks - 1))" list 2>/dev/null | awk '{print $0}' | sort)
	b=$(timeout 20 "$SMIME" --home "$T/p12-$n_ks" list 2>/dev/null | sort)
	[ -n "$a" ] && [ "$a" = "$b" ] && ok "rfc9216/$p.p12.pem gives the same keystore as $p.p12" ||
		not_ok "rfc9216/$p.p12.pem gives the same keystore as $p.p12" "$(diff <(echo "$a") <(echo "$b"))"
done
# Certificate checks: signing certs are signing, encryption certs (RSA
# keyEncipherment, X25519 keyAgreement) are encryption, all chain to their CA.
for c in alice.sign bob.sign carlos.sign dana.sign alice.encrypt bob.encrypt carlos.encrypt dana.encrypt; do
	want=signing
	case $c in *.encrypt) want=encryption ;; esac
	h=$T/cert-$c
	run "rfc9216/$c.crt import" "$SMIME" --home "$h" import "$R/$c.crt"
	is_pass "rfc9216/$c.crt import"
	timeout 20 "$SMIME" --home "$h" list >"$T/.list" 2>&1
	grep -qE "^contact +$want " "$T/.list" && ok "rfc9216/$c.crt is a $want certificate" ||
		not_ok "rfc9216/$c.crt is a $want certificate" "$(cat "$T/.list")"
done
# The README names the bare keys (bob.encrypt.key with bob.encrypt.crt):
# importing the certificate and its key together must give an identity.
h=$T/bare-key
run "rfc9216/bob.encrypt.crt + bob.encrypt.key import" "$SMIME" --home "$h" import "$R/bob.encrypt.crt" "$R/bob.encrypt.key"
is_pass "rfc9216/bob.encrypt.crt + bob.encrypt.key import"
counts "rfc9216/bob.encrypt.crt + bob.encrypt.key" "$h" 1 1

# === lamps-header-protection/ (RFC 9216 keys) ===============================
L=$V/lamps-header-protection
KB=$T/ks-9216-bob
KA=$T/ks-9216-alice
# the rows name the bare PEM keys: pair each key with its certificate in one
# PEM file (the separate-file import is asserted above).
cat "$R/bob.encrypt.crt" "$R/bob.encrypt.key" >"$T/bob.encrypt.pem"
cat "$R/alice.encrypt.crt" "$R/alice.encrypt.key" >"$T/alice.encrypt.pem"
ks "$KB" --trust "$R/ca.rsa.crt"
ks "$KB" "$T/bob.encrypt.pem"
ks "$KA" --trust "$R/ca.rsa.crt"
ks "$KA" "$T/alice.encrypt.pem"
for f in smime-one-part smime-multipart smime-multipart-complex smime-one-part-wrapped; do
	run "lamps/$f.eml verify" "$SMIME" --home "$KB" verify -i "$L/$f.eml"
	is_pass "lamps/$f.eml verify"
	in_out "lamps/$f.eml verify" "MIME-Version: 1.0"
done
for f in smime-enc-signed smime-enc-signed-injected-strong-legacy; do
	run "lamps/$f.eml open (Bob)" "$SMIME" --home "$KB" open -i "$L/$f.eml"
	is_pass "lamps/$f.eml open (Bob)"
	in_out "lamps/$f.eml open (Bob)" "MIME-Version: 1.0"
	in_err "lamps/$f.eml open (Bob): signer is Alice" "alice@smime.example"
	run "lamps/$f.eml decrypt (Bob)" "$SMIME" --home "$KB" decrypt -i "$L/$f.eml"
	is_pass "lamps/$f.eml decrypt (Bob)"
	in_out "lamps/$f.eml decrypt (Bob)" "MIME-Version: 1.0"
done
run "lamps/smime-enc-signed.eml open (Alice)" "$SMIME" --home "$KA" open -i "$L/smime-enc-signed.eml"
is_pass "lamps/smime-enc-signed.eml open (Alice)"
in_out "lamps/smime-enc-signed.eml open (Alice)" "MIME-Version: 1.0"

# === autocrypt-protected-headers/ (older draft keys) ========================
A=$V/autocrypt-protected-headers
import_p12 "autocrypt/bob.p12 (base64 armour)" "$A/bob.p12" bob 2 1
KP=$T/ks-ac
ks "$KP" --trust "$A/sample-ca.pem"
printf 'bob\n' >"$T/pw"
ks "$KP" --password-file "$T/pw" "$A/bob.p12"
for f in smime-onepart-signed smime-multipart-signed; do
	run "autocrypt/$f.eml verify" "$SMIME" --home "$KP" verify -i "$A/$f.eml"
	is_pass "autocrypt/$f.eml verify"
	in_out "autocrypt/$f.eml verify" 'Content-Type: text/plain; charset="us-ascii"; protected-headers="v1"'
done
run "autocrypt/smime-enc+legacy-disp.eml decrypt" "$SMIME" --home "$KP" decrypt -i "$A/smime-enc+legacy-disp.eml"
is_pass "autocrypt/smime-enc+legacy-disp.eml decrypt"
in_out "autocrypt/smime-enc+legacy-disp.eml decrypt" "From: Alice Lovelace <alice@smime.example>"
for f in smime-sign+enc smime-sign+enc+legacy-disp; do
	run "autocrypt/$f.eml open" "$SMIME" --home "$KP" open -i "$A/$f.eml"
	is_pass "autocrypt/$f.eml open"
	in_out "autocrypt/$f.eml open" "From: Alice Lovelace <alice@smime.example>"
done

# === thunderbird/ ===========================================================
B=$V/thunderbird
for p in Alice Bob Dave Eve Alice-ec; do import_p12 "thunderbird/$p.p12" "$B/$p.p12" nss 2 1; done
for p in Fran Fran-ec; do import_p12 "thunderbird/$p.p12" "$B/$p.p12" nss 1 1; done
KT=$T/ks-tb
ks "$KT" --trust "$B/TestCA.pem"
printf 'nss\n' >"$T/pw"
ks "$KT" --password-file "$T/pw" "$B/Bob.p12" "$B/Fran.p12" "$B/Fran-ec.p12"
FL='Content-Type: text/plain; charset=utf-8; format=flowed'
run "thunderbird/alice.env.eml decrypt" "$SMIME" --home "$KT" decrypt -i "$B/alice.env.eml"
is_pass "thunderbird/alice.env.eml decrypt"
in_out "thunderbird/alice.env.eml decrypt" "$FL"
for d in SHA256 SHA384 SHA512; do
	f=alice.dsig.$d.multipart.eml
	run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
	is_pass "thunderbird/$f verify"
	in_out "thunderbird/$f verify" "$FL"
done
for d in SHA256 SHA512; do
	f=alice.sig.$d.opaque.eml
	run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
	is_pass "thunderbird/$f verify"
	in_out "thunderbird/$f verify" "Content-Type: text/plain"
done
run "thunderbird/alice.html.sig.SHA256.opaque.eml verify" "$SMIME" --home "$KT" verify -i "$B/alice.html.sig.SHA256.opaque.eml"
is_pass "thunderbird/alice.html.sig.SHA256.opaque.eml verify"
in_out "thunderbird/alice.html.sig.SHA256.opaque.eml verify" "Content-Type: text/html"
for f in alice.dsig.SHA1.multipart.eml alice.sig.SHA1.opaque.eml; do
	run "thunderbird/$f verify (SHA-1)" "$SMIME" --home "$KT" verify -i "$B/$f"
	is_warn "thunderbird/$f verify (SHA-1)" "sha-?1"
done
run "thunderbird/alice.dsig.SHA256.multipart.bad.eml verify" "$SMIME" --home "$KT" verify -i "$B/alice.dsig.SHA256.multipart.bad.eml"
is_fail "thunderbird/alice.dsig.SHA256.multipart.bad.eml verify"
in_err "thunderbird/alice.dsig.SHA256.multipart.bad.eml: the reason is the digest" "digest"
run "thunderbird/alice.dsig.SHA256.multipart.mismatch-econtent.eml verify" "$SMIME" --home "$KT" verify -i "$B/alice.dsig.SHA256.multipart.mismatch-econtent.eml"
is_fail "thunderbird/alice.dsig.SHA256.multipart.mismatch-econtent.eml verify"
in_err "thunderbird/alice.dsig.SHA256.multipart.mismatch-econtent.eml: the reason names the embedded content" "econtent|embedded|detached|content"
run "thunderbird/alice.future.dsig.SHA256.multipart.eml verify" "$SMIME" --home "$KT" verify -i "$B/alice.future.dsig.SHA256.multipart.eml"
is_warn "thunderbird/alice.future.dsig.SHA256.multipart.eml verify (Date vs signingTime)" "signing time|date"
for f in alice.dsig.SHA256.multipart.env.eml alice.sig.SHA256.opaque.env.eml; do
	run "thunderbird/$f open" "$SMIME" --home "$KT" open -i "$B/$f"
	is_pass "thunderbird/$f open"
	case $f in *dsig*) in_out "thunderbird/$f open" "$FL" ;; *) in_out "thunderbird/$f open" "Content-Type: text/plain" ;; esac
	in_err "thunderbird/$f open: signer is Alice" "alice@example.com"
done
run "thunderbird/alice.env.sig.SHA256.opaque.eml open" "$SMIME" --home "$KT" open -i "$B/alice.env.sig.SHA256.opaque.eml"
is_warn "thunderbird/alice.env.sig.SHA256.opaque.eml open (signature around encryption)" "encrypt"
in_out "thunderbird/alice.env.sig.SHA256.opaque.eml open: decrypts" "$FL"
run "thunderbird/alice.env.dsig.SHA256.multipart.eml open" "$SMIME" --home "$KT" open -i "$B/alice.env.dsig.SHA256.multipart.eml"
is_fail "thunderbird/alice.env.dsig.SHA256.multipart.eml open (signed over LF, not canonical CRLF)"
# second row (CRs stripped, openssl -binary): smime has no binary mode and must
# not call the LF-signed part a plain valid signature.
tr -d '\r' <"$B/alice.env.dsig.SHA256.multipart.eml" >"$T/lf.eml"
run "thunderbird/alice.env.dsig.SHA256.multipart.eml (CRs stripped) open" "$SMIME" --home "$KT" open -i "$T/lf.eml"
[ "$rc" -ne 0 ] && ok "thunderbird/alice.env.dsig.SHA256.multipart.eml (CRs stripped): never a plain valid signature" ||
	not_ok "thunderbird/alice.env.dsig.SHA256.multipart.eml (CRs stripped): never a plain valid signature" "$(detail)"
f=alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml
run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
is_warn "thunderbird/$f verify (nested signatures)" "dave|nest|layer|sender"
f=alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml
run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
is_pass "thunderbird/$f verify"
in_out "thunderbird/$f verify" "Content-Type: text/plain"
f=alice.env.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml
run "thunderbird/$f open" "$SMIME" --home "$KT" open -i "$B/$f"
is_warn "thunderbird/$f open (signatures around encryption)" "encrypt"
in_out "thunderbird/$f open: decrypts" "$FL"
f=alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml
run "thunderbird/$f open" "$SMIME" --home "$KT" open -i "$B/$f"
is_warn "thunderbird/$f open (inner LF-signed layer fails)" "digest|encrypt"
f=outer-smime-bad-sig-inner-smime-enc.eml
run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
is_fail "thunderbird/$f verify (outer signature bad)"
in_err "thunderbird/$f: the reason names the chain or the digest" "issuer|chain|trust|digest"
run "thunderbird/$f open" "$SMIME" --home "$KT" open -i "$B/$f"
is_fail "thunderbird/$f open (outer signature bad)"
run "thunderbird/$f open --unverified-output" "$SMIME" --home "$KT" open --unverified-output -i "$B/$f"
in_out "thunderbird/$f open --unverified-output: the inner part decrypts" "$FL"
f=alice.env.mixed.dsig.SHA256.multipart.eml
run "thunderbird/$f verify" "$SMIME" --home "$KT" verify -i "$B/$f"
is_fail "thunderbird/$f verify"
run "thunderbird/$f open" "$SMIME" --home "$KT" open -i "$B/$f"
is_fail "thunderbird/$f open"
for f in fran-oaep_ossl fran-oaep-label_ossl fran-oaep-sha256hash_ossl fran-oaep-sha256hash-sha256mgf_ossl fran-ec_ossl-aes128-sha256 fran-ec_ossl-aes256-sha512; do
	run "thunderbird/$f.env decrypt" "$SMIME" --home "$KT" decrypt -i "$B/$f.env"
	is_pass "thunderbird/$f.env decrypt"
	in_out "thunderbird/$f.env decrypt" "This is a test message to Fran."
done

# === rfc4134/ ===============================================================
# Bare DER ContentInfos are wrapped in an application/pkcs7-mime message whose
# From is the signer's address (smime reads mail, not bare DER).
F=$V/rfc4134
K4=$T/ks-4134
ks "$K4" --trust "$F/CarlDSSSelf.cer" "$F/CarlRSASelf.cer"
{ openssl x509 -inform DER -in "$F/BobRSASignByCarl.cer"; openssl pkey -inform DER -in "$F/BobPrivRSAEncrypt.pri"; } >"$T/bobrsa.pem" 2>/dev/null
ks "$K4" "$T/bobrsa.pem"
SC='This is some sample content.'
for x in 4.1:alicedss 4.2:alicersa 4.4:alicedss 4.5:alicersa 4.7:alicedss 4.10:alicedss; do
	n=${x%%:*}
	wrap "$F/$n.bin" "${x#*:}@example.com" signed-data >"$T/$n.eml"
	run "rfc4134/$n.bin verify" "$SMIME" --home "$K4" verify -i "$T/$n.eml"
	is_warn "rfc4134/$n.bin verify (valid, SHA-1)" "sha-?1"
	[ "$rc" -eq 6 ] && ok "rfc4134/$n.bin: valid (6, not refused)" || not_ok "rfc4134/$n.bin: valid (6, not refused)" "$(detail)"
	in_out "rfc4134/$n.bin verify" "$SC"
done
wrap "$F/4.6.bin" alicedss@example.com signed-data >"$T/4.6.eml"
run "rfc4134/4.6.bin verify" "$SMIME" --home "$K4" verify -i "$T/4.6.eml"
is_fail "rfc4134/4.6.bin verify (Diane's DSA key inherits its parameters)"
in_err "rfc4134/4.6.bin: the reason names Diane's key, not the content" "key|param"
lacks "rfc4134/4.6.bin: the reason does not blame the content digest" "$T/.err" "content digest does not match"
# RFC 4134's own example has From: aliceDss@examples.com while the signer is
# AliceDSS@example.com (another domain): RFC 8550 3 makes that a mismatch.
# The cryptography is valid (checked with --allow-from-mismatch, which turns
# the mismatch into a warning); without it the message must not pass.
for n in 4.8 4.9; do
	run "rfc4134/$n.eml verify" "$SMIME" --home "$K4" verify -i "$F/$n.eml"
	[ "$rc" -eq 1 ] && ok "rfc4134/$n.eml: From (examples.com) is not the signer (example.com): exit 1" ||
		not_ok "rfc4134/$n.eml: From (examples.com) is not the signer (example.com): exit 1 (got $rc)" "$(detail)"
	in_err "rfc4134/$n.eml: the mismatch is named" "not the sender"
	run "rfc4134/$n.eml verify --allow-from-mismatch" "$SMIME" --home "$K4" verify --allow-from-mismatch -i "$F/$n.eml"
	is_warn "rfc4134/$n.eml verify (valid, SHA-1)" "sha-?1"
	[ "$rc" -eq 6 ] && ok "rfc4134/$n.eml: valid (6, not refused)" || not_ok "rfc4134/$n.eml: valid (6, not refused)" "$(detail)"
	in_out "rfc4134/$n.eml verify" "$SC"
done
wrap "$F/4.3.bin" alicedss@example.com signed-data >"$T/4.3.eml"
run "rfc4134/4.3.bin inspect" "$SMIME" inspect -i "$T/4.3.eml"
is_pass "rfc4134/4.3.bin inspect"
contains "rfc4134/4.3.bin inspect: detached signedData" "$T/.out" "signedData.*detached"
skip "rfc4134/4.3.bin verify with ExContent.bin" "smime verifies MIME entities; a detached signature over bare bytes has no MIME form"
run "rfc4134/4.11.bin import (certs-only)" "$SMIME" --home "$T/ks-4.11" import "$F/4.11.bin"
is_pass "rfc4134/4.11.bin import (certs-only)"
counts "rfc4134/4.11.bin" "$T/ks-4.11" 2 0
for n in 5.1 5.2; do
	wrap "$F/$n.bin" user1@example.com enveloped-data >"$T/$n.eml"
	run "rfc4134/$n.bin decrypt" "$SMIME" --home "$K4" decrypt -i "$T/$n.eml"
	is_pass "rfc4134/$n.bin decrypt"
	in_out "rfc4134/$n.bin decrypt" "$SC"
done
run "rfc4134/5.3.eml decrypt" "$SMIME" --home "$K4" decrypt -i "$F/5.3.eml"
is_pass "rfc4134/5.3.eml decrypt"
in_out "rfc4134/5.3.eml decrypt" "$SC"
# data, digestedData, encryptedData: not S/MIME content types; inspect shows them.
for x in 3.1:pkcs7-data 3.2:pkcs7-data 6.0:digest 7.1:encryptedData 7.2:encryptedData; do
	n=${x%%:*}
	wrap "$F/$n.bin" user1@example.com signed-data >"$T/$n.eml"
	run "rfc4134/$n.bin inspect" "$SMIME" inspect -i "$T/$n.eml"
	is_pass "rfc4134/$n.bin inspect"
	contains "rfc4134/$n.bin inspect names ${x#*:}" "$T/.out" "${x#*:}"
done

# === pyca-cryptography/ =====================================================
P=$V/pyca-cryptography
KY=$T/ks-pyca
cat "$P/ca/rsa_ca.pem" "$P/ca/rsa_key.pem" >"$T/pyca-rsa.pem"
ks "$KY" "$T/pyca-rsa.pem"
for x in enveloped-aes-256-cbc:'Hello world!' enveloped-triple-des:'Hello, World!' enveloped-rsa-oaep:'Hello, world!'; do
	n=${x%%:*}
	# PEM 'PKCS7' armour -> DER -> application/pkcs7-mime
	sed '1d;$d' "$P/pkcs7/$n.pem" | base64 -d >"$T/$n.der" 2>/dev/null
	wrap "$T/$n.der" user1@example.com enveloped-data >"$T/$n.eml"
	run "pyca/pkcs7/$n.pem decrypt" "$SMIME" --home "$KY" decrypt -i "$T/$n.eml"
	is_pass "pyca/pkcs7/$n.pem decrypt"
	contains "pyca/pkcs7/$n.pem decrypt: '${x#*:}'" "$T/.out" "${x#*:}"
done
for x in isrg.pem:1 amazon-roots.der:2 amazon-roots.p7b:2; do
	n=${x%%:*}
	run "pyca/pkcs7/$n import (certs-only)" "$SMIME" --home "$T/ks-$n" import "$P/pkcs7/$n"
	is_pass "pyca/pkcs7/$n import (certs-only)"
	counts "pyca/pkcs7/$n" "$T/ks-$n" "${x#*:}" 0
done
# file:password:certs:keys
for x in cert-key-aes256cbc:cryptography:1:1 cert-aes256cbc-no-key:cryptography:1:0 no-cert-key-aes256cbc:cryptography:0:1 \
	cert-none-key-none:cryptography:1:1 cert-rc2-key-3des:cryptography:1:1 no-password::1:1 \
	name-1-pwd:password:3:1 name-1-no-pwd::3:1 name-2-3-pwd:password:3:1 name-all-pwd:password:3:1 \
	name-all-no-pwd::3:1 name-unicode-pwd:password:3:1 no-name-no-pwd::3:1 no-cert-name-all-pwd:password:2:0 \
	no-cert-no-name-no-pwd::2:0; do
	IFS=: read -r n pw c k <<<"$x"
	if [ "$n" = no-cert-key-aes256cbc ]; then
		# a key without any certificate: smime has no place for it; the
		# README's "1 object" is the key, which must be read (not an error).
		n_ks=$((n_ks + 1))
		printf '%s\n' "$pw" >"$T/pw"
		run "pyca/pkcs12/$n.p12 import" "$SMIME" --home "$T/p12-$n_ks" import --password-file "$T/pw" "$P/pkcs12/$n.p12"
		[ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] && ok "pyca/pkcs12/$n.p12: read (0, or 4: a key without a certificate)" ||
			not_ok "pyca/pkcs12/$n.p12: read (0, or 4: a key without a certificate)" "$(detail)"
		in_err "pyca/pkcs12/$n.p12: says the key has no certificate" "without (its )?certificate|no certificate"
		continue
	fi
	import_p12 "pyca/pkcs12/$n.p12" "$P/pkcs12/$n.p12" "$pw" "$c" "$k"
done

# === every message through inspect ==========================================
for f in "$V"/*/*.eml "$V"/thunderbird/*.env; do
	run "inspect ${f#"$V"/}" "$SMIME" inspect -i "$f"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] && ok "inspect ${f#"$V"/}: exit 0 or 3" || not_ok "inspect ${f#"$V"/}: exit 0 or 3 (got $rc)" "$(detail)"
done

done_testing
