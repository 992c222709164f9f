#!/usr/bin/env bash
# The trust collection's hygiene in a running smimed: what an import refuses
# (per certificate, with its reason), and the distrust list that every
# validation of the service honours (import, lookup, publication), with a
# CA this test makes and with the Windows disallowed-certificates SST.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "trust" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi

# sst OUT DER...: a Microsoft serialized store of the DER certificates.
sst() {
	python3 - "$@" <<'PY'
import struct, sys
out = open(sys.argv[1], "wb")
out.write(struct.pack("<II", 0, 0x54524543))
for path in sys.argv[2:]:
    der = open(path, "rb").read()
    out.write(struct.pack("<III", 0x20, 1, len(der)) + der)
out.write(b"\0" * 12)
PY
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f; }
# looked_up NAME EMAIL WANT: the public lookup answers HTTP WANT for EMAIL.
looked_up() {
	local code
	code=$(curl -s -o "$T/lookup.json" -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=$2")
	[ "$code" = "$3" ] && ok "$1" || not_ok "$1 (HTTP $code, wanted $3)" "$(head -c 400 "$T/lookup.json")"
}

# ---- what an import refuses ------------------------------------------------------
P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 dual
mkuser "$P" bob bob@example.org rsa2048 dual
CA_FP=$(fp "$P/ca.crt")
# A root for TLS only (EKU serverAuth, clientAuth), as most public roots' intermediates are.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
	-out "$T/tls.crt" -days 3650 -subj "/O=smimed tests/CN=TLS Only Root" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "extendedKeyUsage=serverAuth,clientAuth" -addext "subjectKeyIdentifier=hash" 2>/dev/null
cat "$P/ca.crt" "$T/tls.crt" "$P/alice.crt" >"$T/mixed.pem"
expect 1 "a file with certificates it refuses: exit 1" "$SMIME" admin trust import "$T/mixed.pem"
contains "the CA for mail is added" "$T/.out" "^added +$CA_FP  .*CN=Test Root CA"
contains "the TLS-only root is refused, with its reason" "$T/.out" "^refused .*CN=TLS Only Root,.*: its extended key usage does not allow emailProtection"
contains "the end-entity certificate is refused, with its reason" "$T/.out" "^refused .*CN=alice: not a CA"
contains "the summary counts them" "$T/.err" "1 added, 0 already there, 2 refused"
expect 1 "the same as JSON" "$SMIME" admin --json trust import "$T/mixed.pem"
[ "$(jq -r '[.rows[].status] | join(",")' "$T/.out")" = "exists,refused,refused" ] &&
	ok "--json: one row per certificate, in the file's order" || not_ok "--json rows" "$(cat "$T/.out")"

# ---- a CA this test makes: trusted, then distrusted ------------------------------
echo pw >"$T/pw"
expect 0 "alice is a user" "$SMIME" admin user add alice@example.org
expect 0 "bob is a user" "$SMIME" admin user add bob@example.org
expect 0 "alice's PKCS#12 under the trusted CA is imported" "$SMIME" admin import --user alice@example.org --password-file "$T/pw" "$P/alice.p12"
looked_up "alice is looked up" alice@example.org 200

openssl x509 -in "$P/ca.crt" -outform DER -out "$T/ca.der"
sst "$T/ca.sst" "$T/ca.der"
expect 0 "trust import --distrust of an SST holding the CA" "$SMIME" admin trust import --distrust "$T/ca.sst"
contains "the CA is distrusted" "$T/.out" "^distrusted +$CA_FP  .*CN=Test Root CA"
expect 0 "trust list" "$SMIME" admin trust list
contains "trust list shows the CA as trusted" "$T/.out" "^$CA_FP +imported "
contains "trust list shows it as distrusted too" "$T/.out" "^$CA_FP +distrusted "
expect 0 "trust list --json" "$SMIME" admin --json trust list
[ "$(jq --arg f "$CA_FP" '[.distrusted[] | select(.sha256 == $f)] | length' "$T/.out")" = 1 ] &&
	ok "trust list --json: the distrust list beside the collection" || not_ok "trust list --json" "$(head -c 600 "$T/.out")"
looked_up "distrusted although trusted: alice is no longer looked up" alice@example.org 404
expect 1 "bob's PKCS#12 under the distrusted CA is refused" "$SMIME" admin import --user bob@example.org --password-file "$T/pw" "$P/bob.p12"
contains "the reason names the distrust" "$T/.out" "refused .*distrust"
expect 0 "bob's certificates" "$SMIME" admin --json cert list --user bob@example.org
[ "$(jq '.items | length' "$T/.out")" = 0 ] && ok "nothing of bob's was recorded" || not_ok "bob's certificates" "$(cat "$T/.out")"
expect 0 "the CA leaves the collection" "$SMIME" admin trust remove "$CA_FP"
expect 1 "a distrusted CA cannot join the collection again" "$SMIME" admin trust import "$P/ca.crt"
contains "refused because distrusted" "$T/.out" "^refused .*distrust"
expect 0 "a distrusted entry is removed" "$SMIME" admin trust remove --distrust "$CA_FP"
expect 4 "removing it twice: not found" "$SMIME" admin trust remove --distrust "$CA_FP"
expect 0 "the CA is trusted again" "$SMIME" admin trust import "$P/ca.crt"
looked_up "no longer distrusted: alice is looked up again" alice@example.org 200

# A leaf on the distrust list (DER), and a PKCS#7 bundle of another.
openssl x509 -in "$P/alice.crt" -outform DER -out "$T/alice.der"
expect 0 "trust import --distrust of one end-entity certificate (DER)" "$SMIME" admin trust import --distrust "$T/alice.der"
looked_up "a distrusted leaf is not looked up" alice@example.org 404
openssl crl2pkcs7 -nocrl -certfile "$P/bob.crt" -out "$T/bob.p7b" 2>/dev/null
expect 0 "trust import --distrust of a PKCS#7 bundle" "$SMIME" admin trust import --distrust "$T/bob.p7b"
expect 1 "bob's PKCS#12 is refused: its certificate is distrusted" "$SMIME" admin import --user bob@example.org --password-file "$T/pw" "$P/bob.p12"
expect 0 "alice's entry is removed" "$SMIME" admin trust remove --distrust "$(fp "$P/alice.crt")"
looked_up "alice is looked up again" alice@example.org 200
expect 3 "trust import --distrust of a file that is no certificate: exit 3" "$SMIME" admin trust import --distrust "$T/pw"
expect 0 "the audit log" "$SMIME" admin --json audit
for a in distrust.import distrust.remove; do
	jq -e --arg a "$a" '[.items[] | select(.action == $a)] | length > 0' "$T/.out" >/dev/null && ok "the audit log has $a" || not_ok "audit $a"
done

# ---- the Windows disallowed-certificates store -----------------------------------
DIS=$SHARED/corpus/sst/windows-update-disallowedcert-2025-09-05.sst
if [ ! -f "$DIS" ]; then
	skip "the Windows disallowed SST" "no $DIS (../shared is absent)"
else
	want=$(grep -vc '^#' "${DIS%.sst}.expected.txt")
	expect 0 "the Windows disallowed SST imported with --distrust" "$SMIME" admin --json trust import --distrust "$DIS"
	[ "$(jq '[.rows[] | select(.status == "distrusted")] | length' "$T/.out")" = "$want" ] &&
		ok "all $want of its certificates are distrusted, CAs and leaves alike" || not_ok "distrusted count" "$(jq -c '.rows[] | [.status, .message]' "$T/.out" | sort | uniq -c | head)"
	expect 1 "the same SST as trust: nothing of it is trusted" "$SMIME" admin trust import "$DIS"
	contains "DigiNotar is refused as distrusted" "$T/.out" "^refused .*DigiNotar Root CA G2.*distrust"
	lacks "nothing added" "$T/.out" "^added"
	# A cross-certificate of DigiNotar Root CA G2's key under a trusted CA
	# (no key of DigiNotar is needed to certify its public key): it chains
	# to the trusted test CA, and it is a distrusted CA all the same.
	python3 - "$DIS" "$T/dn.der" <<'PY'
import struct, sys, subprocess
d = open(sys.argv[1], "rb").read()
o = 8
while o + 12 <= len(d):
    pid, enc, ln = struct.unpack_from("<III", d, o)
    o += 12
    if pid == 0:
        break
    v = d[o:o + ln]
    o += ln
    if pid == 0x20:
        s = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=v,
                           capture_output=True).stdout
        if b"DigiNotar Root CA G2" in s:
            open(sys.argv[2], "wb").write(v)
            break
PY
	openssl x509 -inform DER -in "$T/dn.der" -CA "$P/ca.crt" -CAkey "$P/ca.key" -days 365 -out "$T/cross.pem" 2>/dev/null
	if openssl verify -CAfile "$P/ca.crt" "$T/cross.pem" >/dev/null 2>&1; then ok "the cross-certificate chains to the trusted test CA"; else not_ok "cross-certificate"; fi
	expect 1 "the cross-certificate of a distrusted CA is refused" "$SMIME" admin trust import "$T/cross.pem"
	contains "the reason names DigiNotar's distrust" "$T/.out" "^refused .*DigiNotar Root CA G2.*distrust"
fi

done_testing
