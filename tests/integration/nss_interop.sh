#!/usr/bin/env bash
# Interoperability with NSS (the library of Thunderbird) through its `cmsutil`,
# in both directions, for every algorithm NSS has: what smime writes, cmsutil
# verifies and decrypts; what cmsutil writes, smime verifies and decrypts; the
# content is byte-identical after the round trip.  cmsutil reads and writes bare
# CMS (DER or BER), so smime's MIME is taken apart and NSS's output wrapped.
# What NSS lacks is a "# SKIP" naming NSS, its version and the error it gave,
# and only after OpenSSL's equivalent message failed in NSS the same way.
. "$(dirname "$0")/lib.sh"

if ! command -v cmsutil >/dev/null || ! command -v certutil >/dev/null; then
	skip "NSS cmsutil" "cmsutil not installed (Debian libnss3-tools)"
	done_testing
	exit
fi
NSSV="NSS $(dpkg-query -W -f='${Version}' libnss3 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')"
[ "$NSSV" = "NSS " ] && NSSV="NSS (unknown version)"

P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual
mkuser "$P" bob bob@example.org rsa3072 dual
mkuser "$P" carol carol@example.org p256 dual
mkuser "$P" dave dave@example.org p384 dual
mkuser "$P" ed ed@example.org ed25519 sign
# pat: an RSASSA-PSS key (id-RSASSA-PSS SubjectPublicKeyInfo), the only way to
# make NSS sign with RSA-PSS.
openssl req -new -newkey rsa-pss -pkeyopt rsa_keygen_bits:2048 -nodes -keyout "$P/pat.key" \
	-out "$P/pat.csr" -subj "/O=smimed tests/CN=pat" 2>/dev/null
sed 's/^keyUsage=.*/keyUsage=critical,digitalSignature,nonRepudiation/; s/email:ed@/email:pat@/' "$P/ed.ext" >"$P/pat.ext"
openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -notext -days 365 \
	-extfile "$P/pat.ext" -in "$P/pat.csr" -out "$P/pat.crt" >/dev/null 2>&1
openssl pkcs12 -export -inkey "$P/pat.key" -in "$P/pat.crt" -passout pass:pw -out "$P/pat.p12" 2>/dev/null

ks() { echo "$T/ks-$1"; }
for u in alice bob carol dave ed; do
	"$SMIME" --home "$(ks $u)" import --trust "$P/$u.p12" --password-file <(echo pw) >/dev/null 2>&1 ||
		not_ok "smime import $u.p12"
	"$SMIME" --home "$(ks $u)" import "$P/alice.crt" "$P/bob.crt" "$P/carol.crt" "$P/dave.crt" >/dev/null 2>&1
done

# The NSS database: every identity, and the root CA trusted for S/MIME.
D=sql:$T/nss
mkdir -p "$T/nss"
certutil -N -d "$D" --empty-password
nick() { echo "$1 - smimed tests"; } # pk12util's nickname for a PKCS#12 without friendlyName
for u in alice bob carol dave pat; do
	pk12util -i "$P/$u.p12" -d "$D" -W pw >/dev/null 2>"$T/err" || not_ok "pk12util -i $u.p12" "$(cat "$T/err")"
done
certutil -A -d "$D" -n "Test Root CA" -t "C,C,C" -i "$P/ca.crt"
if pk12util -i "$P/ed.p12" -d "$D" -W pw >/dev/null 2>"$T/err"; then
	ed_in_nss=1
	ok "pk12util -i an Ed25519 PKCS#12"
else
	ed_in_nss=
	skip "pk12util -i an Ed25519 PKCS#12" "$NSSV cannot import an Ed25519 key ($(grep -oE 'SEC_ERROR_[A-Z0-9_]+' "$T/err" | head -1))"
fi

name="smime export (AES-256, PBKDF2) -> pk12util -i into a fresh NSS database"
mkdir -p "$T/nss2"
certutil -N -d "sql:$T/nss2" --empty-password
if "$SMIME" --home "$(ks carol)" export --password-file <(echo pw) -o "$T/carol-x.p12" carol@example.org 2>"$T/err" &&
    pk12util -i "$T/carol-x.p12" -d "sql:$T/nss2" -W pw >/dev/null 2>"$T/err" &&
    certutil -K -d "sql:$T/nss2" >"$T/keys" 2>&1; then
	contains "$name: the EC private key is there" "$T/keys" "^<.*> ec "
else
	not_ok "$name" "$(cat "$T/err")"
fi

# --- MIME <-> bare CMS ------------------------------------------------------
# mime2cms MSG DIR: DIR/cms.der (the signature or the whole pkcs7-mime body)
# and, for multipart/signed, DIR/content: the exact bytes of the signed part
# (RFC 2046 5.1.1: the CRLF before a boundary belongs to the boundary).
mime2cms() {
	rm -f "$2/cms.der" "$2/content"
	python3 - "$1" "$2" <<'PY'
import sys, re, base64
data = open(sys.argv[1], 'rb').read()
out = sys.argv[2]
hdr, _, body = data.partition(b'\r\n\r\n')
unfolded = re.sub(rb'\r\n[ \t]+', b' ', hdr)
ct = re.search(rb'(?im)^content-type:(.*)$', unfolded).group(1)
if b'multipart/signed' in ct.lower():
    b = re.search(rb'(?i)boundary="?([^";\r\n]+)"?', ct).group(1)
    parts = (b'\r\n' + body).split(b'\r\n--' + b)
    open(out + '/content', 'wb').write(parts[1][2:])
    sig = parts[2][2:].partition(b'\r\n\r\n')[2]
    open(out + '/cms.der', 'wb').write(base64.b64decode(sig))
else:
    open(out + '/cms.der', 'wb').write(base64.b64decode(body))
PY
}
b64crlf() { base64 -w 76 "$1" | sed 's/$/\r/'; }
# p7m_entity DER SMIME-TYPE: an application/pkcs7-mime entity (no message headers).
p7m_entity() {
	printf 'Content-Type: application/pkcs7-mime; smime-type=%s; name="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n' "$2"
	b64crlf "$1"
}
# wrap_p7m DER SMIME-TYPE FROM TO: a whole message.
wrap_p7m() {
	printf 'From: %s\r\nTo: %s\r\nSubject: from NSS\r\nMIME-Version: 1.0\r\n' "$3" "$4"
	p7m_entity "$1" "$2"
}
# wrap_signed DER CONTENT MICALG FROM TO: multipart/signed with CONTENT's exact bytes.
wrap_signed() {
	local b="nss-$RANDOM$RANDOM"
	printf 'From: %s\r\nTo: %s\r\nSubject: from NSS\r\nMIME-Version: 1.0\r\n' "$4" "$5"
	signed_entity "$@" "$b"
}
signed_entity() { # DER CONTENT MICALG FROM TO BOUNDARY
	local b=$6
	printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=%s;\r\n\tboundary="%s"\r\n\r\nThis is a signed message.\r\n--%s\r\n' "$3" "$b" "$b"
	cat "$2"
	printf '\r\n--%s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7s"\r\n\r\n' "$b"
	b64crlf "$1"
	printf -- '--%s--\r\n' "$b"
}

mkmsg "$T/msg.eml" alice@example.org bob@example.org
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello from the smimed tests.\r\n' >"$T/entity"

# nss_verify: cmsutil -D of $T/cms.der (with $T/content when detached) into $T/v.out.
nss_verify() {
	if [ -f "$T/content" ]; then
		cmsutil -D -d "$D" -i "$T/cms.der" -c "$T/content" -o "$T/v.out" 2>"$T/err"
	else
		cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/v.out" 2>"$T/err"
	fi
}

# --- smime signs, NSS verifies ----------------------------------------------
for signer in alice carol dave; do
	for digest in sha256 sha384 sha512; do
		for form in clear opaque; do
			name="smime sign $signer/$digest/$form -> cmsutil -D"
			mkmsg "$T/in.eml" $signer@example.org bob@example.org
			args=(--digest $digest)
			[ $form = opaque ] && args+=(--opaque)
			if "$SMIME" --home "$(ks $signer)" sign "${args[@]}" -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err" &&
			    mime2cms "$T/s.eml" "$T" && nss_verify; then
				same "$name: content byte-identical" "$T/entity" "$T/v.out"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done
for digest in sha256 sha384 sha512; do
	for form in clear opaque; do
		name="smime sign --pss alice/$digest/$form -> cmsutil -D"
		args=(--pss --digest $digest)
		[ $form = opaque ] && args+=(--opaque)
		if "$SMIME" --home "$(ks alice)" sign "${args[@]}" -i "$T/msg.eml" -o "$T/s.eml" 2>"$T/err" &&
		    mime2cms "$T/s.eml" "$T" && nss_verify; then
			same "$name: RSASSA-PSS, content byte-identical" "$T/entity" "$T/v.out"
		else
			not_ok "$name" "$(cat "$T/err")"
		fi
	done
done
for form in clear opaque; do
	name="smime sign Ed25519/$form -> cmsutil -D"
	mkmsg "$T/in.eml" ed@example.org bob@example.org
	args=()
	[ $form = opaque ] && args+=(--opaque)
	if ! "$SMIME" --home "$(ks ed)" sign "${args[@]}" -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err"; then
		not_ok "$name: smime sign" "$(cat "$T/err")"
	elif mime2cms "$T/s.eml" "$T" && nss_verify; then
		same "$name: content byte-identical" "$T/entity" "$T/v.out"
	elif openssl cms -cmsout -print -inform DER -in "$T/cms.der" 2>/dev/null | grep -q "ED25519" && [ -z "$ed_in_nss" ]; then
		skip "$name" "$NSSV cannot verify Ed25519 SignedData ($(grep -oE 'status = [A-Za-z]+' "$T/err" | head -1))"
	else
		not_ok "$name" "$(cat "$T/err")"
	fi
done

name="a clear-signed message altered after signing: cmsutil -D fails"
"$SMIME" --home "$(ks alice)" sign -i "$T/msg.eml" -o "$T/s.eml" 2>/dev/null
mime2cms "$T/s.eml" "$T"
sed -i 's/Hello/Hallo/' "$T/content"
if nss_verify; then not_ok "$name" "cmsutil accepted it"; else contains "$name" "$T/err" "DigestMismatch|BAD_SIGNATURE"; fi

# --- NSS signs, smime verifies ------------------------------------------------
for signer in alice bob carol dave; do
	for hash in SHA256 SHA384 SHA512; do
		for form in detached opaque; do
			name="cmsutil -S $signer/$hash/$form -> smime verify"
			md=$(echo $hash | tr A-Z a-z)
			args=(-S -d "$D" -N "$(nick $signer)" -H $hash -G -P -Y NONE -i "$T/entity" -o "$T/n.der")
			[ $form = detached ] && args+=(-T)
			if ! cmsutil "${args[@]}" 2>"$T/err"; then
				not_ok "$name: cmsutil -S" "$(cat "$T/err")"
				continue
			fi
			if [ $form = detached ]; then
				wrap_signed "$T/n.der" "$T/entity" "sha-${md#sha}" $signer@example.org bob@example.org >"$T/n.eml"
			else
				wrap_p7m "$T/n.der" signed-data $signer@example.org bob@example.org >"$T/n.eml"
			fi
			if "$SMIME" --home "$(ks bob)" verify -i "$T/n.eml" -o "$T/v.eml" 2>"$T/err"; then
				entity_of "$T/v.eml" >"$T/v.ent"
				same "$name: byte-identical" "$T/entity" "$T/v.ent"
				contains "$name: reported as $md" "$T/err" "with (rsa|ecdsa)/$md"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done

name="cmsutil -S RSASSA-PSS (a PSS key) -> smime verify"
if cmsutil -S -d "$D" -N "$(nick pat)" -G -Y NONE -i "$T/entity" -o "$T/n.der" 2>"$T/err"; then
	wrap_p7m "$T/n.der" signed-data pat@example.org bob@example.org >"$T/n.eml"
	# RFC 4056 2.2: the parameters MUST be present in a signature's AlgorithmIdentifier.
	if openssl cms -cmsout -print -inform DER -in "$T/n.der" 2>/dev/null |
	    grep -A2 'signatureAlgorithm:' | grep -A1 rsassaPss | grep -q 'parameter: <ABSENT>'; then
		skip "$name" "$NSSV writes the RSASSA-PSS signatureAlgorithm without its parameters (RFC 4056 2.2 says they MUST be present); OpenSSL refuses it too"
	elif "$SMIME" --home "$(ks bob)" verify -i "$T/n.eml" -o "$T/v.eml" 2>"$T/err"; then
		entity_of "$T/v.eml" >"$T/v.ent"
		same "$name: byte-identical" "$T/entity" "$T/v.ent"
	else
		not_ok "$name" "$(cat "$T/err")"
	fi
else
	skip "$name" "$NSSV cmsutil cannot sign with an RSASSA-PSS key: $(tail -1 "$T/err")"
fi
if [ -z "$ed_in_nss" ]; then
	skip "cmsutil -S Ed25519 -> smime verify" "$NSSV has no Ed25519 key to sign with (the PKCS#12 import failed above)"
fi

# --- smime encrypts, NSS decrypts ---------------------------------------------
# nss_lacks WHAT OPENSSL-ARGS...: when cmsutil also fails on OpenSSL's message of
# the same algorithms, NSS lacks them: print the SKIP reason and succeed.
nss_lacks() {
	local what=$1 nsserr
	shift
	nsserr=$(grep -oE 'SEC_ERROR_[A-Z0-9_]+' "$T/err" | head -1)
	openssl cms -encrypt -binary -in "$T/entity" "$@" -outform DER -out "$T/o.der" 2>/dev/null || return 1
	if ! cmsutil -D -d "$D" -i "$T/o.der" -o /dev/null 2>/dev/null; then
		reason="$NSSV cannot decrypt $what ($nsserr, for OpenSSL's message too)"
		return 0
	fi
	return 1
}
for cipher in aes-256-gcm aes-128-gcm aes-256-cbc aes-128-cbc; do
	for rcpt in bob bob-oaep carol dave; do
		r=${rcpt%-oaep}
		name="smime encrypt $cipher to $rcpt -> cmsutil -D"
		args=(--cipher $cipher --to $r@example.org --no-self)
		oargs=(-$cipher -recip "$P/$r.crt")
		what="$cipher"
		case $cipher in *gcm) what="authEnveloped-data ($cipher)" ;; esac
		case $rcpt in
		bob-oaep) args+=(--oaep); oargs+=(-keyopt rsa_padding_mode:oaep); what="$what with RSAES-OAEP" ;;
		carol | dave) oargs+=(-keyopt ecdh_kdf_md:sha256); what="$what with ECDH ($rcpt)" ;;
		esac
		mkmsg "$T/in.eml" alice@example.org ""
		if ! "$SMIME" --home "$(ks alice)" encrypt "${args[@]}" -i "$T/in.eml" -o "$T/e.eml" 2>"$T/err"; then
			not_ok "$name: smime encrypt" "$(cat "$T/err")"
		elif mime2cms "$T/e.eml" "$T" && cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/d.out" 2>"$T/err"; then
			same "$name: byte-identical" "$T/entity" "$T/d.out"
		elif nss_lacks "$what" "${oargs[@]}"; then
			skip "$name" "$reason"
		else
			not_ok "$name (OpenSSL's equivalent decrypts in NSS)" "$(cat "$T/err")"
		fi
	done
done

# --- NSS encrypts, smime decrypts ---------------------------------------------
# cmsutil -E has no option for the cipher or the key transport: NSS picks them.
for rcpt in bob carol dave; do
	name="cmsutil -E to $rcpt -> smime decrypt"
	if cmsutil -E -d "$D" -r $rcpt@example.org -i "$T/entity" -o "$T/n.der" 2>"$T/err"; then
		wrap_p7m "$T/n.der" enveloped-data alice@example.org $rcpt@example.org >"$T/n.eml"
		if "$SMIME" --home "$(ks $rcpt)" --json decrypt -i "$T/n.eml" -o "$T/d.eml" 2>"$T/rep"; then
			entity_of "$T/d.eml" >"$T/d.ent"
			cipher=$(grep -oE '"cipher": "[^"]*"' "$T/rep" | head -1 | cut -d'"' -f4)
			same "$name ($cipher): byte-identical" "$T/entity" "$T/d.ent"
		else
			not_ok "$name" "$(cat "$T/rep")"
		fi
	else
		skip "$name" "$NSSV cmsutil -E cannot encrypt to an EC certificate (ECDH): $(grep -oE 'SEC_ERROR_[A-Z0-9_]+' "$T/err" | head -1)"
	fi
done

# --- sign then encrypt, both ways ---------------------------------------------
name="smime encrypt --sign (aes-256-cbc) -> cmsutil -D (decrypt) -> cmsutil -D (verify)"
if "$SMIME" --home "$(ks alice)" encrypt --sign --cipher aes-256-cbc --no-self -i "$T/msg.eml" -o "$T/se.eml" 2>"$T/err" &&
    mime2cms "$T/se.eml" "$T" && cmsutil -D -d "$D" -i "$T/cms.der" -o "$T/inner" 2>"$T/err" &&
    mime2cms "$T/inner" "$T" && nss_verify; then
	same "$name: byte-identical" "$T/entity" "$T/v.out"
else
	not_ok "$name" "$(cat "$T/err")"
fi
for form in detached opaque; do
	name="cmsutil -S ($form) then cmsutil -E -> smime open"
	args=(-S -d "$D" -N "$(nick alice)" -G -P -i "$T/entity" -o "$T/n.der")
	[ $form = detached ] && args+=(-T)
	if cmsutil "${args[@]}" 2>"$T/err"; then
		if [ $form = detached ]; then
			signed_entity "$T/n.der" "$T/entity" sha-256 - - "nss-inner-$RANDOM" >"$T/inner"
		else
			p7m_entity "$T/n.der" signed-data >"$T/inner"
		fi
		if cmsutil -E -d "$D" -r bob@example.org -i "$T/inner" -o "$T/ne.der" 2>"$T/err"; then
			wrap_p7m "$T/ne.der" enveloped-data alice@example.org bob@example.org >"$T/ne.eml"
			if "$SMIME" --home "$(ks bob)" --json open -i "$T/ne.eml" -o "$T/open.eml" 2>"$T/rep"; then
				entity_of "$T/open.eml" >"$T/open.ent"
				same "$name: byte-identical" "$T/entity" "$T/open.ent"
				contains "$name: the signed layer reported" "$T/rep" '"kind": "(opaque-)?signed"'
			else
				not_ok "$name" "$(cat "$T/rep")"
			fi
		else
			not_ok "$name: cmsutil -E" "$(cat "$T/err")"
		fi
	else
		not_ok "$name: cmsutil -S" "$(cat "$T/err")"
	fi
done

done_testing
