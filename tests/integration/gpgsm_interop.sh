#!/usr/bin/env bash
# Interoperability with GnuPG's `gpgsm` (Kleopatra, GpgOL), in both directions,
# for every algorithm gpgsm has: what smime writes, gpgsm verifies and
# decrypts; what gpgsm writes, smime verifies and decrypts; the content is
# byte-identical after the round trip.  gpgsm reads and writes bare CMS
# (--base64), so smime's MIME is taken apart and gpgsm's output wrapped.  What
# gpgsm lacks is a "# SKIP" naming gpgsm, its version and the error it gave,
# and only after OpenSSL's equivalent message failed in gpgsm the same way.
. "$(dirname "$0")/lib.sh"

if ! command -v gpgsm >/dev/null; then
	skip "gpgsm" "gpgsm not installed (Debian gpgsm)"
	done_testing
	exit
fi
GV="gpgsm $(gpgsm --version | head -1 | awk '{print $NF}')"

P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual
mkuser "$P" bob bob@example.org rsa3072 dual
mkuser "$P" carol carol@example.org p256 dual
mkuser "$P" dave dave@example.org p384 dual
mkuser "$P" ed ed@example.org ed25519 sign

ks() { echo "$T/ks-$1"; }
for u in alice bob carol dave ed; do
	"$SMIME" --home "$(ks $u)" import --trust "$P/$u.p12" --password-file <(echo pw) >/dev/null 2>&1 ||
		not_ok "smime import $u.p12"
	"$SMIME" --home "$(ks $u)" import "$P/alice.crt" "$P/bob.crt" "$P/carol.crt" "$P/dave.crt" >/dev/null 2>&1
done

# A throw-away GNUPGHOME: no CRLs, loopback passphrases, the root CA trusted.
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
echo disable-crl-checks >"$GNUPGHOME/gpgsm.conf"
echo allow-loopback-pinentry >"$GNUPGHOME/gpg-agent.conf"
echo "$(openssl x509 -in "$P/ca.crt" -noout -fingerprint -sha1 | cut -d= -f2) S relax" >"$GNUPGHOME/trustlist.txt"
trap 'gpgconf --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
# gpgsm with the keys' passphrase ("pw") on standard input.
G() { echo pw | gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 "$@"; }
gpgsm --batch --import "$P/ca.crt" >/dev/null 2>&1

# --- identities: smime export -> gpgsm --import ------------------------------
name="smime export (AES-256, PBKDF2/hmacWithSHA256) -> gpgsm --import"
"$SMIME" --home "$(ks alice)" export --password-file <(echo pw) -o "$T/alice-aes.p12" alice@example.org 2>/dev/null
if G --import "$T/alice-aes.p12" >/dev/null 2>"$T/err" && grep -q "secret keys imported: 1" "$T/err"; then
	ok "$name"
elif openssl pkcs12 -export -inkey "$P/alice.key" -in "$P/alice.crt" -passout pass:pw -out "$T/o.p12" 2>/dev/null &&
    ! G --import "$T/o.p12" >/dev/null 2>&1; then
	skip "$name" "$GV cannot read a PBES2/AES-256/hmacWithSHA256 PKCS#12, OpenSSL's neither ($(grep -m1 -oE 'error at "[^"]*"' "$T/err"))"
else
	not_ok "$name" "$(cat "$T/err")"
fi
# gpg-agent key files for EC keys, when gpgsm cannot import them itself.
agent_key() { # KEYFILE CURVE EMAIL
	local grip
	grip=$(gpgsm --with-keygrip --list-keys "$3" 2>/dev/null | awk '/keygrip/ {print $2; exit}')
	python3 - "$1" "$2" "$GNUPGHOME/private-keys-v1.d/$grip.key" <<'PY'
import sys, subprocess, re
txt = subprocess.run(['openssl', 'pkey', '-in', sys.argv[1], '-noout', '-text'], capture_output=True, text=True).stdout
def field(label):
    m = re.search(label + r':\s*\n((?:\s+[0-9a-f:]+\n)+)', txt)
    return re.sub(r'[^0-9a-f]', '', m.group(1)).upper()
open(sys.argv[3], 'w').write('Key: (private-key (ecc (curve "%s")(q #%s#)(d #%s#)))\n' % (sys.argv[2], field('pub'), field('priv')))
PY
}
mkdir -p -m 700 "$GNUPGHOME/private-keys-v1.d"
# gpgsm 2.2.40 fails to decrypt about one 3DES PKCS#12 in forty, whoever
# wrote it (OpenSSL's too: 5 of 200 here): it depends on the random salts.
# So a file is exported and imported afresh up to three times before either
# side is judged.
for u in alice bob carol dave ed; do
	name="smime export --legacy $u -> gpgsm --import"
	imported=
	exported=1
	for try in 1 2 3; do
		"$SMIME" --home "$(ks $u)" export --legacy --password-file <(echo pw) -o "$T/$u.p12" $u@example.org 2>"$T/err" ||
			{ exported=; break; }
		G --import "$T/$u.p12" >/dev/null 2>"$T/err"
		if grep -q "secret keys imported: 1\|secret keys unchanged: 1" "$T/err"; then
			imported=1
			break
		fi
	done
	if [ -n "$imported" ]; then
		ok "$name"
		continue
	fi
	[ -n "$exported" ] || { not_ok "$name: smime export" "$(cat "$T/err")"; continue; }
	# Fails the same with OpenSSL's 3DES PKCS#12?  Then gpgsm lacks it.
	for try in 1 2 3; do
		openssl pkcs12 -export -inkey "$P/$u.key" -in "$P/$u.crt" -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
			-macalg sha1 -passout pass:pw -out "$T/o.p12" 2>/dev/null
		G --import "$T/o.p12" >/dev/null 2>"$T/err2"
		grep -q "secret keys imported: 1" "$T/err2" && break
	done
	if grep -q "secret keys imported: 1" "$T/err2"; then
		not_ok "$name (OpenSSL's PKCS#12 of the same key imports)" "$(cat "$T/err")"
	else
		why=$(grep -m1 -E 'Segmentation|error at|error' "$T/err" | sed 's/^gpgsm: //')
		gpgsm --batch --import "$P/$u.crt" >/dev/null 2>&1
		case $u in
		carol) agent_key "$P/carol.key" "NIST P-256" carol@example.org; why="$why; the key is given to gpg-agent directly" ;;
		dave) agent_key "$P/dave.key" "NIST P-384" dave@example.org; why="$why; the key is given to gpg-agent directly" ;;
		esac
		skip "$name" "$GV cannot import this PKCS#12, OpenSSL's neither: $why"
	fi
done
gpgconf --kill gpg-agent >/dev/null 2>&1 # rereads private-keys-v1.d

# --- MIME <-> bare CMS (as in nss_interop.sh) ---------------------------------
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
	base64 -w 64 "$2/cms.der" >"$2/cms.b64"
}
b64crlf() { base64 -w 76 "$1" | sed 's/$/\r/'; }
p7m_entity() { # DER SMIME-TYPE
	printf 'Content-Type: application/pkcs7-mime; smime-type=%s; name="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n' "$2"
	b64crlf "$1"
}
wrap_p7m() { # DER SMIME-TYPE FROM TO
	printf 'From: %s\r\nTo: %s\r\nSubject: from gpgsm\r\nMIME-Version: 1.0\r\n' "$3" "$4"
	p7m_entity "$1" "$2"
}
signed_entity() { # DER CONTENT MICALG BOUNDARY
	printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=%s;\r\n\tboundary="%s"\r\n\r\nThis is a signed message.\r\n--%s\r\n' "$3" "$4" "$4"
	cat "$2"
	printf '\r\n--%s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7s"\r\n\r\n' "$4"
	b64crlf "$1"
	printf -- '--%s--\r\n' "$4"
}
wrap_signed() { # DER CONTENT MICALG FROM TO
	printf 'From: %s\r\nTo: %s\r\nSubject: from gpgsm\r\nMIME-Version: 1.0\r\n' "$4" "$5"
	signed_entity "$1" "$2" "$3" "gpgsm-$RANDOM$RANDOM"
}

mkmsg "$T/msg.eml" alice@example.org bob@example.org
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello from the smimed tests.\r\n' >"$T/entity"

# g_verify: gpgsm --verify of $T/cms.b64 (with $T/content when detached) into $T/v.out;
# $T/st gets the status lines.
g_verify() {
	rm -f "$T/v.out"
	if [ -f "$T/content" ]; then
		gpgsm --batch --status-fd 3 --assume-base64 --verify "$T/cms.b64" "$T/content" 3>"$T/st" 2>"$T/err" &&
			cp "$T/content" "$T/v.out"
	else
		gpgsm --batch --status-fd 3 --assume-base64 --verify -o "$T/v.out" "$T/cms.b64" 3>"$T/st" 2>"$T/err"
	fi
}

# --- smime signs, gpgsm verifies ----------------------------------------------
g_sign_test() { # NAME SIGNER SMIME-SIGN-ARGS...
	local name=$1 signer=$2
	shift 2
	mkmsg "$T/in.eml" $signer@example.org bob@example.org
	if ! "$SMIME" --home "$(ks $signer)" sign "$@" -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err"; then
		not_ok "$name: smime sign" "$(cat "$T/err")"
	elif mime2cms "$T/s.eml" "$T" && g_verify && grep -q GOODSIG "$T/st"; then
		same "$name: good signature, content byte-identical" "$T/entity" "$T/v.out"
	elif grep -q "hash is not valid for a .* ECC key" "$T/err" && grep -q GOODSIG "$T/st"; then
		skip "$name" "$GV refuses by policy what it calls a good signature: $(grep -m1 -o 'a [0-9]* bit hash is not valid for a [0-9]* bit ECC key' "$T/err")"
	elif grep -q "DSA requires the hash length" "$T/err"; then
		skip "$name" "$GV cannot verify Ed25519 SignedData ($(grep -m1 -o 'DSA requires the hash length[^:]*' "$T/err"))"
	else
		not_ok "$name" "$(cat "$T/err")"
	fi
}
for signer in alice bob carol dave; do
	for digest in sha256 sha384 sha512; do
		for form in clear opaque; do
			args=(--digest $digest)
			[ $form = opaque ] && args+=(--opaque)
			g_sign_test "smime sign $signer/$digest/$form -> gpgsm --verify" $signer "${args[@]}"
		done
	done
done
for digest in sha256 sha384 sha512; do
	for form in clear opaque; do
		args=(--pss --digest $digest)
		[ $form = opaque ] && args+=(--opaque)
		g_sign_test "smime sign --pss alice/$digest/$form -> gpgsm --verify" alice "${args[@]}"
	done
done
g_sign_test "smime sign Ed25519/clear -> gpgsm --verify" ed
g_sign_test "smime sign Ed25519/opaque -> gpgsm --verify" ed --opaque

# The default digest: RFC 5480 (section 7, its table of curves and digests) pairs P-384 with SHA-384, and gpgsm holds
# every signer to it (exit 2 for SHA-256 with a P-384 key).
name="smime sign with a P-384 key and the default digest -> gpgsm --verify exits 0"
mkmsg "$T/in.eml" dave@example.org bob@example.org
if "$SMIME" --home "$(ks dave)" sign -i "$T/in.eml" -o "$T/s.eml" 2>"$T/err" &&
    mime2cms "$T/s.eml" "$T" && g_verify; then
	ok "$name"
else
	not_ok "$name" "$(grep -v CRLs "$T/err")"
fi

name="a clear-signed message altered after signing: gpgsm --verify fails"
"$SMIME" --home "$(ks alice)" sign -i "$T/msg.eml" -o "$T/s.eml" 2>/dev/null
mime2cms "$T/s.eml" "$T"
sed -i 's/Hello/Hallo/' "$T/content"
if g_verify; then not_ok "$name" "gpgsm accepted it"; else contains "$name" "$T/st" "BADSIG"; fi

# --- gpgsm signs, smime verifies ----------------------------------------------
for signer in alice bob carol dave; do
	for hash in SHA256 SHA384 SHA512; do
		for form in detached opaque; do
			name="gpgsm --sign $signer/$hash/$form -> smime verify"
			md=$(echo $hash | tr A-Z a-z)
			args=(-u $signer@example.org --digest-algo $hash --sign --base64 -o "$T/g.b64")
			[ $form = detached ] && args+=(--detach-sign)
			rm -f "$T/g.b64"
			if ! G "${args[@]}" "$T/entity" 2>"$T/err"; then
				if grep -q "Invalid length" "$T/err" && [ $signer = dave ] && [ $hash = SHA256 ]; then
					skip "$name" "$GV cannot sign SHA-256 with a P-384 key ($(grep -m1 -o 'error creating signature.*' "$T/err"))"
				else
					not_ok "$name: gpgsm --sign" "$(cat "$T/err")"
				fi
				continue
			fi
			base64 -d "$T/g.b64" >"$T/g.der"
			if [ $form = detached ]; then
				wrap_signed "$T/g.der" "$T/entity" "sha-${md#sha}" $signer@example.org bob@example.org >"$T/g.eml"
			else
				wrap_p7m "$T/g.der" signed-data $signer@example.org bob@example.org >"$T/g.eml"
			fi
			if "$SMIME" --home "$(ks bob)" verify -i "$T/g.eml" -o "$T/v.eml" 2>"$T/err"; then
				entity_of "$T/v.eml" >"$T/v.ent"
				same "$name: byte-identical" "$T/entity" "$T/v.ent"
				contains "$name: reported as $md" "$T/err" "with (rsa|ecdsa)/$md"
			else
				not_ok "$name" "$(cat "$T/err")"
			fi
		done
	done
done
if G -u ed@example.org --sign --base64 -o "$T/g.b64" "$T/entity" 2>"$T/err"; then
	base64 -d "$T/g.b64" >"$T/g.der"
	wrap_p7m "$T/g.der" signed-data ed@example.org bob@example.org >"$T/g.eml"
	expect 0 "gpgsm --sign Ed25519 -> smime verify" "$SMIME" --home "$(ks bob)" verify -i "$T/g.eml"
else
	skip "gpgsm --sign Ed25519 -> smime verify" "$GV has no Ed25519 key to sign with (its PKCS#12 import failed above): $(grep -m1 -oE "can't sign.*|error.*" "$T/err")"
fi
# RSASSA-PSS: gpgsm has no option to sign with it; the only way would be an
# id-RSASSA-PSS key, which it refuses to import (tried here).
openssl req -new -newkey rsa-pss -pkeyopt rsa_keygen_bits:2048 -nodes -keyout "$P/pat.key" \
	-out "$P/pat.csr" -subj "/O=smimed tests/CN=pat" 2>/dev/null
sed 's/^keyUsage=.*/keyUsage=critical,digitalSignature,nonRepudiation/; s/email:ed@/email:pat@/' "$P/ed.ext" >"$P/pat.ext"
openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -notext -days 365 \
	-extfile "$P/pat.ext" -in "$P/pat.csr" -out "$P/pat.crt" >/dev/null 2>&1
openssl pkcs12 -export -inkey "$P/pat.key" -in "$P/pat.crt" -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
	-macalg sha1 -passout pass:pw -out "$P/pat.p12" 2>/dev/null
G --import "$P/pat.p12" >/dev/null 2>"$T/err"
if G -u pat@example.org --sign --base64 -o "$T/g.b64" "$T/entity" 2>"$T/err2"; then
	base64 -d "$T/g.b64" >"$T/g.der"
	wrap_p7m "$T/g.der" signed-data pat@example.org bob@example.org >"$T/g.eml"
	"$SMIME" --home "$(ks bob)" import "$P/pat.crt" >/dev/null 2>&1
	expect 0 "gpgsm --sign RSASSA-PSS -> smime verify" "$SMIME" --home "$(ks bob)" verify -i "$T/g.eml"
else
	skip "gpgsm --sign RSASSA-PSS -> smime verify" "$GV has no RSASSA-PSS signing option and does not import an RSASSA-PSS key ($(grep -m1 -o 'error at "[^"]*"' "$T/err"); $(grep -m1 -o "can't sign.*" "$T/err2"))"
fi

# --- smime encrypts, gpgsm decrypts -------------------------------------------
# g_lacks WHAT OPENSSL-ARGS...: gpgsm also fails on OpenSSL's message of the same
# algorithms: it lacks them; $reason says so.
g_lacks() {
	local what=$1 gerr
	shift
	gerr=$(grep -vE 'CRLs not checked|encrypted to|should not have been used' "$T/err" | head -1 | sed 's/^gpgsm: //')
	openssl cms -encrypt -binary -in "$T/entity" "$@" -outform DER -out "$T/o.der" 2>/dev/null || return 1
	if ! G --decrypt -o "$T/o.out" "$T/o.der" 2>/dev/null; then
		reason="$GV cannot decrypt $what ($gerr; OpenSSL's message too)"
		return 0
	fi
	return 1
}
for cipher in aes-256-gcm aes-128-gcm aes-256-cbc aes-128-cbc; do
	for rcpt in bob bob-oaep carol dave; do
		r=${rcpt%-oaep}
		name="smime encrypt $cipher to $rcpt -> gpgsm --decrypt"
		args=(--cipher $cipher --to $r@example.org --no-self)
		oargs=(-$cipher -recip "$P/$r.crt")
		what=$cipher
		case $cipher in *gcm) what="authEnveloped-data ($cipher)" ;; esac
		case $rcpt in
		bob-oaep) args+=(--oaep); oargs+=(-keyopt rsa_padding_mode:oaep); what="$what with RSAES-OAEP" ;;
		carol | dave) oargs+=(-keyopt ecdh_kdf_md:sha256); what="$what with ECDH ($rcpt)" ;;
		esac
		mkmsg "$T/in.eml" alice@example.org ""
		rm -f "$T/d.out"
		if ! "$SMIME" --home "$(ks alice)" encrypt "${args[@]}" -i "$T/in.eml" -o "$T/e.eml" 2>"$T/err"; then
			not_ok "$name: smime encrypt" "$(cat "$T/err")"
		elif mime2cms "$T/e.eml" "$T" && G --assume-base64 --decrypt -o "$T/d.out" "$T/cms.b64" 2>"$T/err"; then
			same "$name: byte-identical" "$T/entity" "$T/d.out"
		elif g_lacks "$what" "${oargs[@]}"; then
			skip "$name" "$reason"
		else
			not_ok "$name (OpenSSL's equivalent decrypts in gpgsm)" "$(cat "$T/err")"
		fi
	done
done

# --- gpgsm encrypts, smime decrypts -------------------------------------------
for cipher in AES AES192 AES256 3DES CAMELLIA128 CAMELLIA256 SEED; do
	name="gpgsm --encrypt --cipher-algo $cipher to bob -> smime decrypt"
	if gpgsm --batch --cipher-algo $cipher -r bob@example.org --encrypt --base64 -o "$T/g.b64" "$T/entity" 2>"$T/err"; then
		base64 -d "$T/g.b64" >"$T/g.der"
		wrap_p7m "$T/g.der" enveloped-data alice@example.org bob@example.org >"$T/g.eml"
		if "$SMIME" --home "$(ks bob)" --json decrypt -i "$T/g.eml" -o "$T/d.eml" 2>"$T/rep"; then
			entity_of "$T/d.eml" >"$T/d.ent"
			same "$name ($(grep -m1 -oE '"cipher": "[^"]*"' "$T/rep" | cut -d'"' -f4)): byte-identical" "$T/entity" "$T/d.ent"
		else
			not_ok "$name" "$(cat "$T/rep")"
		fi
	else
		not_ok "$name: gpgsm --encrypt" "$(cat "$T/err")"
	fi
done
# Serpent is GnuPG's own; smime (OpenSSL) has none: a clean refusal, nothing written.
name="gpgsm --encrypt --cipher-algo SERPENT128 -> smime decrypt refuses it cleanly"
gpgsm --batch --cipher-algo SERPENT128 -r bob@example.org --encrypt -o "$T/g.der" "$T/entity" 2>/dev/null
wrap_p7m "$T/g.der" enveloped-data alice@example.org bob@example.org >"$T/g.eml"
rm -f "$T/d.eml"
"$SMIME" --home "$(ks bob)" decrypt -i "$T/g.eml" -o "$T/d.eml" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ ! -e "$T/d.eml" ]; then ok "$name (exit $rc)"; else not_ok "$name (exit $rc)" "$(cat "$T/err")"; fi
for rcpt in carol dave; do
	name="gpgsm --encrypt to $rcpt (ECDH) -> smime decrypt"
	if gpgsm --batch -r $rcpt@example.org --encrypt --base64 -o "$T/g.b64" "$T/entity" 2>"$T/err"; then
		base64 -d "$T/g.b64" >"$T/g.der"
		wrap_p7m "$T/g.der" enveloped-data alice@example.org $rcpt@example.org >"$T/g.eml"
		if "$SMIME" --home "$(ks $rcpt)" decrypt -i "$T/g.eml" -o "$T/d.eml" 2>"$T/err"; then
			entity_of "$T/d.eml" >"$T/d.ent"
			same "$name: byte-identical" "$T/entity" "$T/d.ent"
		else
			not_ok "$name" "$(cat "$T/err")"
		fi
	else
		skip "$name" "$GV cannot encrypt to an EC certificate: $(grep -m1 -o "can't encrypt.*" "$T/err")"
	fi
done

# --- sign then encrypt, both ways ---------------------------------------------
name="smime encrypt --sign (aes-256-cbc) -> gpgsm --decrypt -> gpgsm --verify"
if "$SMIME" --home "$(ks alice)" encrypt --sign --cipher aes-256-cbc --no-self -i "$T/msg.eml" -o "$T/se.eml" 2>"$T/err" &&
    mime2cms "$T/se.eml" "$T" && G --assume-base64 --decrypt -o "$T/inner" "$T/cms.b64" 2>"$T/err" &&
    mime2cms "$T/inner" "$T" && g_verify && grep -q GOODSIG "$T/st"; then
	same "$name: byte-identical" "$T/entity" "$T/v.out"
else
	not_ok "$name" "$(cat "$T/err")"
fi
for form in detached opaque; do
	name="gpgsm --sign ($form) then gpgsm --encrypt -> smime open"
	args=(-u alice@example.org --sign -o "$T/g.der")
	[ $form = detached ] && args+=(--detach-sign)
	rm -f "$T/g.der"
	if G "${args[@]}" "$T/entity" 2>"$T/err"; then
		if [ $form = detached ]; then
			signed_entity "$T/g.der" "$T/entity" sha-256 "gpgsm-inner-$RANDOM" >"$T/inner"
		else
			p7m_entity "$T/g.der" signed-data >"$T/inner"
		fi
		if gpgsm --batch -r bob@example.org --encrypt --base64 -o "$T/ge.b64" "$T/inner" 2>"$T/err"; then
			base64 -d "$T/ge.b64" >"$T/ge.der"
			wrap_p7m "$T/ge.der" enveloped-data alice@example.org bob@example.org >"$T/ge.eml"
			if "$SMIME" --home "$(ks bob)" --json open -i "$T/ge.eml" -o "$T/open.eml" 2>"$T/rep"; then
				entity_of "$T/open.eml" >"$T/open.ent"
				same "$name: byte-identical" "$T/entity" "$T/open.ent"
				contains "$name: the signed layer reported" "$T/rep" '"kind": "(opaque-)?signed"'
			else
				not_ok "$name" "$(cat "$T/rep")"
			fi
		else
			not_ok "$name: gpgsm --encrypt" "$(cat "$T/err")"
		fi
	else
		not_ok "$name: gpgsm --sign" "$(cat "$T/err")"
	fi
done

done_testing
