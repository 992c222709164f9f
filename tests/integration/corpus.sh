#!/usr/bin/env bash
# Real-world S/MIME material (../shared/corpus, read in place): every row of
# shared/corpus/README.md run through smime, asserting its `expected` column:
#   PASS          exit 0 (decrypt: the plaintext appears; a row that asks for
#                 the SHA-1 warning: exit 6 with that warning)
#   PASS (import) import exits 0 and the keystore holds the certificates/keys
#   **FAIL**      non-zero, never 0 nor 6, the reason names the problem; a
#                 part wrapped in a multipart: never 0, the report names the part
#   WARN          exit 6 or 1 (never 0), with the warning text
#   PASS*         exit 0 and the signer shown is the real signer
# Every call runs under `timeout 20` and must exit below 128 (no crash).
. "$(dirname "$0")/lib.sh"

C=$SHARED/corpus
if [ ! -d "$C" ]; then
	echo "ok 1 - shared corpus # SKIP ../shared is absent"
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
	run "$1 import" "$SMIME" --home "$h" import --password-file "$T/pw" "$2"
	is_pass "$1 import"
	counts "$1" "$h" "$4" "$5"
}
ks() { # HOME [import args...]: add to a keystore quietly
	local h=$1
	shift
	timeout 20 "$SMIME" --home "$h" import "$@" >/dev/null 2>&1
}
# wrap FILE > eml: arbitrary bytes as an application/pkcs7-mime message.
wrap() {
	printf 'From: fuzz@example.org\r\nTo: fuzz@example.org\r\nSubject: fuzz input\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n'
	base64 -w 76 "$1" | sed 's/$/\r/'
}
# signer_is NAME EMAIL: the only signer email in the report is EMAIL.
signer_is() {
	local got
	got=$(grep -E '^ +email: ' "$T/.err" | awk '{print $2}' | sort -u | tr '\n' ' ')
	[ "$got" = "$2 " ] && ok "$1: the signer shown is $2" || not_ok "$1: the signer shown is $2 (shown: $got)" "$(detail)"
}
# whole NAME: the report does not say the whole message is covered.
not_whole() { lacks "$1: not 'the whole message'" "$T/.err" "covers: the whole message"; }
# mime_partial NAME PART: a signed part inside an unsigned multipart (PART: a regex;
# the README numbers parts like Thunderbird, "1.2" = second child of the root).
mime_partial() {
	[ "$rc" -ne 0 ] && ok "$1: never exit 0 (exit $rc)" || not_ok "$1: never exit 0" "$(detail)"
	in_err "$1: the report names part $2" "part $2"
	not_whole "$1"
}
# expired NAME CMD...: without --at-time the expired certificate is reported.
expired() {
	local name=$1
	shift
	run "$name (today)" "$@"
	[ "$rc" -eq 1 ] && ok "$name (today): exit 1" || not_ok "$name (today): exit 1 (got $rc)" "$(detail)"
	in_err "$name (today): says expired" "expired"
}

# === 1. sst/ ================================================================
S=$C/sst
for x in windows-update-root-2025-08-29:507 windows-update-roots-2021-10-01:434 windows-update-disallowedcert-2025-09-05:95 windows-update-pinrules-2022-05-29:12; do
	n=${x%%:*}
	run "sst/$n.sst import" "$SMIME" --home "$T/sst-$n" --json import "$S/$n.sst"
	is_pass "sst/$n.sst import"
	# Every certificate of the store is accounted for in the import report:
	# imported (roots, intermediates, S/MIME certificates), or skipped with its
	# reason when it is no S/MIME certificate (the code-signing certificates of
	# the disallowed list must not become contacts).
	got=$(grep -c '"fingerprint"' "$T/.out")
	[ "$got" -eq "${x#*:}" ] && ok "sst/$n.sst: ${x#*:} certificates read and reported" ||
		not_ok "sst/$n.sst: ${x#*:} certificates read and reported (got $got)" "$(head -c 800 "$T/.out")"
	lacks "sst/$n.sst: no code-signing certificate became a contact" <("$SMIME" --home "$T/sst-$n" list 2>/dev/null) "^contact "
done

# === 2a. johnny-you-are-fired/ ==============================================
J=$C/johnny-you-are-fired
KJ=$T/ks-johnny
ks "$KJ" --trust "$J/globalsign-root-r3.pem"
ks "$KJ" "$J/assets-certificates-intermediate_ca.crt"
AT=(--at-time @1551398400)
jv() { # NAME FILE [verify options]: verify a johnny file at 2019-03-01
	local n=$1 f=$2
	shift 2
	run "johnny/$n verify" "$SMIME" --home "$KJ" verify --no-harvest "${AT[@]}" "$@" -i "$J/$f"
}
for x in 01-cms-valid_email_from_manager.eml:manager assets-valid-signed-manager-smime.eml:manager assets-valid-signed-eve-smime.eml:eve; do
	f=${x%%:*}
	jv "$f" "$f"
	is_pass "johnny/$f"
	signer_is "johnny/$f" "${x#*:}@bigcorporation.de"
	expired "johnny/$f" "$SMIME" --home "$KJ" verify --no-harvest -i "$J/$f"
done
for f in 01-cms-c1_eContent-confusion-eContent_confusion.eml 01-cms-c1_eContent-confusion-eContent_confusion_refinement.eml; do
	jv "$f" "$f"
	is_fail "johnny/$f"
	in_err "johnny/$f: names the eContent confusion" "eContent"
	lacks "johnny/$f: the embedded content is not output" "$T/.out" "[Pp]romoted"
done
for f in 01-cms-c2_multiple-signerInfos-multiple_signerInfos_append_johnny.eml 01-cms-c2_multiple-signerInfos-multiple_signerInfos_prepend_johnny.eml; do
	jv "$f" "$f"
	is_fail "johnny/$f"
	# manager's replayed SignerInfo is INVALID, eve's is the only valid one
	awk '/signer [0-9]+: /{s=$3} /email:/{print s, $2}' "$T/.err" >"$T/.signers"
	grep -qx 'INVALID manager@bigcorporation.de' "$T/.signers" && ! grep -q 'valid manager@' "$T/.signers" &&
		ok "johnny/$f: manager's signer is INVALID" || not_ok "johnny/$f: manager's signer is INVALID" "$(cat "$T/.signers")"
	grep -qx 'valid eve@bigcorporation.de' "$T/.signers" && ok "johnny/$f: eve's signer is the valid one" ||
		not_ok "johnny/$f: eve's signer is the valid one" "$(cat "$T/.signers")"
done
for f in 01-cms-c3_no-signerInfos-no_signerInfos_detached.eml 01-cms-c3_no-signerInfos-no_certificates-no_signerInfos_no_certificates_detached.eml; do
	jv "$f" "$f"
	is_fail "johnny/$f"
	in_err "johnny/$f: says no signers" "no SignerInfo|no signer|not signed"
done
f=01-cms-crashes-crash_01.eml
jv "$f" "$f"
is_fail "johnny/$f"
lacks "johnny/$f: no layer is reported ok" "$T/.err" "^layer .*: ok$"
for x in m1-prepending-text-m1-smime:2 m2-hiding-with-html-m2-smime-mix:2 m3-hiding-in-reference-m3-smime:2 m4-hiding-as-attachment-m4-smime:2; do
	f=03-mime-${x%%:*}.eml
	jv "$f" "$f"
	mime_partial "johnny/$f" "${x#*:}"
done
for f in 04-id-i1-sender-signer-checks-i1-from-unequals-signer-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-empty-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-nonexistent-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-only-a-name-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-sender-signer-a-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-sender-signer-b-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-signer-sender-a-smime.eml \
	04-id-i2-display-name-confusion-i2-from-is-signer-sender-b-smime.eml \
	04-id-i3-from-sender-confusion-i3-from-is-sender-sender-signer-smime.eml \
	04-id-i3-from-sender-confusion-i3-from-is-sender-signer-sender-smime.eml \
	04-id-i3-from-sender-confusion-i3-from-sender-others-signer-smime.eml \
	04-id-i3-from-sender-confusion-i3-from1-sender-from2-signer-smime.eml \
	04-id-i3-from-sender-confusion-i3-from1-signer-from2-sender-smime.eml; do
	jv "$f" "$f"
	is_warn "johnny/$f (signer is not From)" "sender|From"
	signer_is "johnny/$f" eve@bigcorporation.de
done
for f in 04-id-i2-display-name-confusion-i2-from-contains-signer-smime.eml 04-id-i3-from-sender-confusion-i3-from-signer-others-sender-smime.eml; do
	jv "$f" "$f"
	is_pass "johnny/$f (PASS*)"
	signer_is "johnny/$f (PASS*)" eve@bigcorporation.de
	lacks "johnny/$f (PASS*): manager is not presented as the signer" "$T/.err" "manager|The Manager"
done
f=05-ui-u1-ui-redressing-u1-generic.eml
jv "$f" "$f"
is_fail "johnny/$f"
in_err "johnny/$f: says not signed" "not signed"

# === 2b. covert-content-attacks/ ============================================
V=$C/covert-content-attacks
KC=$T/ks-covert
printf 'test12345678\n' >"$T/pw"
run "covert/manager@bigcorporation.pfx import" "$SMIME" --home "$KC" import --password-file "$T/pw" "$V/manager@bigcorporation.pfx"
is_pass "covert/manager@bigcorporation.pfx import"
timeout 20 "$SMIME" --home "$KC" --json list >"$T/.list" 2>/dev/null
[ "$(grep -c '"key": true' "$T/.list")" -eq 1 ] && ok "covert/manager@bigcorporation.pfx: the key is imported" ||
	not_ok "covert/manager@bigcorporation.pfx: the key is imported" "$(cat "$T/.list")"
SECRET='THIS IS A PGP/MIME ENCRYPTED MESSAGE'
run "covert/00-original-mail.eml decrypt" "$SMIME" --home "$KC" decrypt -i "$V/00-original-mail.eml"
is_pass "covert/00-original-mail.eml decrypt"
contains "covert/00-original-mail.eml decrypt: the plaintext" "$T/.out" "$SECRET"
for f in 01-reply-mix-822 01-reply-mix-alt 01-reply-mix-crlf 01-reply-mix-css 01-reply-mix-dbl 02-reply-rel reeval2020-01-reply-mix-css-modified; do
	for cmd in decrypt open; do
		run "covert/$f.eml $cmd" "$SMIME" --home "$KC" $cmd -i "$V/$f.eml"
		is_fail "covert/$f.eml $cmd"
		lacks "covert/$f.eml $cmd: the smuggled ciphertext is not decrypted" "$T/.out" "$SECRET"
		in_err "covert/$f.eml $cmd: names the non-root encrypted part" "not the message root"
	done
done

# === 2c/3. thunderbird-smime/ ===============================================
B=$C/thunderbird-smime
KT=$T/ks-tb
ks "$KT" --trust "$B/TestCA.pem"
printf 'nss\n' >"$T/pw"
ks "$KT" --password-file "$T/pw" "$B/Bob.p12"
for p in Alice Bob Dave Eve Alice-ec; do
	run "thunderbird-smime/$p.p12 import" "$SMIME" --home "$T/tb-$p" import --password-file "$T/pw" "$B/$p.p12"
	is_pass "thunderbird-smime/$p.p12 import"
	counts "thunderbird-smime/$p.p12" "$T/tb-$p" 2 1
done
tv() { # CMD FILE [options]
	local cmd=$1 f=$2
	shift 2
	run "thunderbird-smime/$f $cmd" "$SMIME" --home "$KT" $cmd "$@" -i "$B/$f"
}
for f in alice.dsig.SHA256.multipart.eml alice.sig.SHA256.opaque.eml alice.html.sig.SHA256.opaque.eml; do
	tv verify "$f"
	is_pass "thunderbird-smime/$f verify"
	signer_is "thunderbird-smime/$f" alice@example.com
done
contains "thunderbird-smime/alice.html.sig.SHA256.opaque.eml: HTML returned as is" "$T/.out" "<(html|HTML|p|body|b)"
tv verify alice.dsig.SHA1.multipart.eml
is_warn "thunderbird-smime/alice.dsig.SHA1.multipart.eml verify (SHA-1)" "sha-?1"
tv verify alice.dsig.SHA256.multipart.bad.eml
is_fail "thunderbird-smime/alice.dsig.SHA256.multipart.bad.eml verify"
in_err "thunderbird-smime/alice.dsig.SHA256.multipart.bad.eml: names the digest mismatch" "digest"
tv verify alice.dsig.SHA256.multipart.mismatch-econtent.eml
is_fail "thunderbird-smime/alice.dsig.SHA256.multipart.mismatch-econtent.eml verify"
in_err "thunderbird-smime/alice.dsig.SHA256.multipart.mismatch-econtent.eml: names the eContent confusion" "eContent"
tv verify alice.future.dsig.SHA256.multipart.eml
is_warn "thunderbird-smime/alice.future.dsig.SHA256.multipart.eml verify (Date vs signingTime)" "signing time|date"
tv decrypt alice.env.eml
is_pass "thunderbird-smime/alice.env.eml decrypt"
contains "thunderbird-smime/alice.env.eml decrypt: the plaintext" "$T/.out" "This is a test message from Alice to Bob."
ks "$T/tb-alice-only" --password-file "$T/pw" "$B/Alice.p12"
run "thunderbird-smime/alice.env.eml decrypt as Alice" "$SMIME" --home "$T/tb-alice-only" decrypt -i "$B/alice.env.eml"
[ "$rc" -eq 4 ] && ok "thunderbird-smime/alice.env.eml as Alice: no key (4)" || not_ok "thunderbird-smime/alice.env.eml as Alice: no key (4) (got $rc)" "$(detail)"
in_err "thunderbird-smime/alice.env.eml as Alice: says no matching recipient" "recipient"
for f in alice.sig.SHA256.opaque.env.eml alice.dsig.SHA256.multipart.env.eml; do
	tv open "$f"
	is_pass "thunderbird-smime/$f open"
	signer_is "thunderbird-smime/$f open" alice@example.com
	contains "thunderbird-smime/$f open: decrypted" "$T/.out" "This is a test message from Alice to Bob."
done
for f in alice.env.sig.SHA256.opaque.eml alice.env.dsig.SHA256.multipart.eml; do
	tv open "$f"
	is_warn "thunderbird-smime/$f open (signature around encryption)" "encrypt"
done
f=alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml
tv open "$f"
is_warn "thunderbird-smime/$f open (three layers)" "encrypt|digest|sender"
f=alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml
tv verify "$f"
is_pass "thunderbird-smime/$f verify (outer Dave valid)"
in_err "thunderbird-smime/$f: Dave is the outer signer" "dave@example.com"
f=alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml
tv verify "$f"
is_warn "thunderbird-smime/$f verify (nesting)" "sender|nest|layer"
f=manual-alice.env.mixed.dsig.SHA256.multipart.eml
for cmd in verify open; do
	tv $cmd "$f"
	is_fail "thunderbird-smime/$f $cmd"
	lacks "thunderbird-smime/$f $cmd: the wrapped encrypted part is not shown" "$T/.out" "This is a test message from Alice to Bob."
done
for f in manual-alice.dsig.SHA256.multipart.env.dsig.eml manual-outer-smime-bad-sig-inner-smime-enc-sig.eml; do
	tv open "$f"
	is_warn "thunderbird-smime/$f open (outer signature bad, inner good)" "digest|issuer|chain|trust|encrypt"
done
f=manual-outer-smime-bad-sig-inner-smime-enc.eml
tv open "$f"
is_fail "thunderbird-smime/$f open"
in_err "thunderbird-smime/$f: the outer signature is invalid" "issuer|chain|trust|digest"
f=mochitest-multipart-alternative.eml
for cmd in decrypt open; do
	tv $cmd "$f"
	is_fail "thunderbird-smime/$f $cmd"
	lacks "thunderbird-smime/$f $cmd: SECRET-TEXT is never output" "$T/.out" "SECRET-TEXT"
	in_err "thunderbird-smime/$f $cmd: names the non-root encrypted part" "not the message root"
done
tv verify mochitest-alice.dsig.SHA256.multipart.in.mixed.eml
mime_partial "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.eml" "(1\.)?1"
[ "$rc" -eq 6 ] || [ "$rc" -eq 1 ] && ok "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.eml: WARN (6 or 1)" || not_ok "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.eml: WARN (6 or 1)" "$(detail)"
tv verify mochitest-alice.dsig.SHA256.multipart.in.mixed.with.header.eml
mime_partial "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.with.header.eml" "(1\.)?2"
[ "$rc" -eq 6 ] || [ "$rc" -eq 1 ] && ok "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.with.header.eml: WARN (6 or 1)" || not_ok "thunderbird-smime/mochitest-alice.dsig.SHA256.multipart.in.mixed.with.header.eml: WARN (6 or 1)" "$(detail)"
f=mochitest-nested-sigs.eml
tv verify "$f"
is_fail "thunderbird-smime/$f verify (outer content verify error)"
in_err "thunderbird-smime/$f: names the digest mismatch" "digest"
[ "$(grep -c '^layer ' "$T/.err")" -ge 2 ] && ok "thunderbird-smime/$f: the inner signature is reported separately" ||
	not_ok "thunderbird-smime/$f: the inner signature is reported separately" "$(detail)"

# === 3a. real-clients-hiraoka/ ==============================================
H=$C/real-clients-hiraoka
KH=$T/ks-hiraoka
ks "$KH" --trust "$H/ca_smime.crt"
printf 'smime2\n' >"$T/pw"
run "hiraoka/smime-2-secret.pfx import" "$SMIME" --home "$T/hiraoka-pfx" import --password-file "$T/pw" "$H/smime-2-secret.pfx"
is_pass "hiraoka/smime-2-secret.pfx import"
timeout 20 "$SMIME" --home "$T/hiraoka-pfx" --json list >"$T/.list" 2>/dev/null
[ "$(grep -c '"key": true' "$T/.list")" -eq 1 ] && ok "hiraoka/smime-2-secret.pfx: the key is imported" || not_ok "hiraoka/smime-2-secret.pfx: the key is imported" "$(cat "$T/.list")"
ks "$KH" --password-file "$T/pw" "$H/smime-2-secret.pfx"
hv() {
	local cmd=$1 f=$2
	run "hiraoka/$f $cmd" "$SMIME" --home "$KH" $cmd -i "$H/$f"
}
hv verify received-Message_from_smime1_to_smime2_signed.eml
is_warn "hiraoka/received-Message_from_smime1_to_smime2_signed.eml verify (valid, SHA-1 warning)" "sha-?1"
[ "$rc" -eq 6 ] && ok "hiraoka/received-Message_from_smime1_to_smime2_signed.eml: valid (6)" || not_ok "hiraoka/received-Message_from_smime1_to_smime2_signed.eml: valid (6)" "$(detail)"
hv open received-Message_from_smime1_to_smime2_signed_and_encrypted.eml
is_warn "hiraoka/received-Message_from_smime1_to_smime2_signed_and_encrypted.eml open (valid, SHA-1 warning)" "sha-?1"
[ "$rc" -eq 6 ] && ok "hiraoka/received-Message_from_smime1_to_smime2_signed_and_encrypted.eml: valid (6)" || not_ok "hiraoka/received-Message_from_smime1_to_smime2_signed_and_encrypted.eml: valid (6)" "$(detail)"
hv verify received-Writing_from_smime1_to_smime2_signed.eml
is_pass "hiraoka/received-Writing_from_smime1_to_smime2_signed.eml verify"
signer_is "hiraoka/received-Writing_from_smime1_to_smime2_signed.eml" smime1@hmailserver.test
hv open received-Writing_from_smime1_to_smime2_signed_and_encrypted.eml
is_pass "hiraoka/received-Writing_from_smime1_to_smime2_signed_and_encrypted.eml open"
for f in received-Message_from_smime1_to_smime2_encrypted.eml received-Writing_from_smime1_to_smime2_encrypted.eml; do
	hv decrypt "$f"
	is_pass "hiraoka/$f decrypt"
done
hv decrypt received-Message_from_smime1_to_smime2_encrypted.eml
contains "hiraoka/received-Message_from_smime1_to_smime2_encrypted.eml: multipart/mixed inside" "$T/.out" "multipart/mixed"

# === 3b. real-clients-simple-java-mail/ =====================================
M=$C/real-clients-simple-java-mail
KM=$T/ks-sjm
ks "$KM" --trust "$M/ca.crt" "$M/actalis-authentication-root-ca.pem"
printf 'letmein\n' >"$T/pw"
ks "$KM" --password-file "$T/pw" "$M/smime_test_user.p12"
mv() {
	local cmd=$1 f=$2
	shift 2
	run "simple-java-mail/$f $cmd" "$SMIME" --home "$KM" $cmd --no-harvest "$@" -i "$M/$f"
}
mv verify thunderbird52-signed.eml
is_pass "simple-java-mail/thunderbird52-signed.eml verify"
signer_is "simple-java-mail/thunderbird52-signed.eml" benny@bennybottema.com
run "simple-java-mail/thunderbird52-encrypted.eml decrypt" "$SMIME" --home "$KM" decrypt -i "$M/thunderbird52-encrypted.eml"
is_pass "simple-java-mail/thunderbird52-encrypted.eml decrypt"
mv open thunderbird52-signed-and-encrypted.eml
is_pass "simple-java-mail/thunderbird52-signed-and-encrypted.eml open"
mv verify outlook-2018-opaque-signed.eml --at-time @1543420144
is_warn "simple-java-mail/outlook-2018-opaque-signed.eml verify at signing time (SHA-1 warning)" "sha-?1"
[ "$rc" -eq 6 ] && ok "simple-java-mail/outlook-2018-opaque-signed.eml: valid at signing time (6)" || not_ok "simple-java-mail/outlook-2018-opaque-signed.eml: valid at signing time (6)" "$(detail)"
signer_is "simple-java-mail/outlook-2018-opaque-signed.eml" shatzing5@outlook.com
expired "simple-java-mail/outlook-2018-opaque-signed.eml" "$SMIME" --home "$KM" verify --no-harvest -i "$M/outlook-2018-opaque-signed.eml"
mv verify outlook-2021-multipart-signed-large.eml --at-time @1614005704
# The README row says PASS, but the message is signed with SHA-1 (micalg=SHA1,
# digestAlgorithm sha1), which the README's own WARN rule and smime's contract
# (exit 6) cover: valid, with the SHA-1 warning, never refused.
is_warn "simple-java-mail/outlook-2021-multipart-signed-large.eml verify at signing time (SHA-1)" "sha-?1"
[ "$rc" -eq 6 ] && ok "simple-java-mail/outlook-2021-multipart-signed-large.eml: valid with a warning (6)" ||
	not_ok "simple-java-mail/outlook-2021-multipart-signed-large.eml: valid with a warning (6) (got $rc)" "$(detail)"
signer_is "simple-java-mail/outlook-2021-multipart-signed-large.eml" sielenkemper@otris.de
expired "simple-java-mail/outlook-2021-multipart-signed-large.eml" "$SMIME" --home "$KM" verify --no-harvest -i "$M/outlook-2021-multipart-signed-large.eml"
run "simple-java-mail/smime_keystore.pkcs12 import" "$SMIME" --home "$T/sjm-ks" import --password-file "$T/pw" "$M/smime_keystore.pkcs12"
is_pass "simple-java-mail/smime_keystore.pkcs12 import"
timeout 20 "$SMIME" --home "$T/sjm-ks" --json list >"$T/.list" 2>/dev/null
[ "$(grep -c '"key": true' "$T/.list")" -eq 2 ] && ok "simple-java-mail/smime_keystore.pkcs12: both keys imported" || not_ok "simple-java-mail/smime_keystore.pkcs12: both keys imported" "$(cat "$T/.list")"
run "simple-java-mail/smime_test_user.p12 import" "$SMIME" --home "$T/sjm-p12" import --password-file "$T/pw" "$M/smime_test_user.p12"
is_pass "simple-java-mail/smime_test_user.p12 import"
timeout 20 "$SMIME" --home "$T/sjm-p12" --json list >"$T/.list" 2>/dev/null
[ "$(grep -c '"key": true' "$T/.list")" -eq 1 ] && ok "simple-java-mail/smime_test_user.p12: the key is imported" || not_ok "simple-java-mail/smime_test_user.p12: the key is imported" "$(cat "$T/.list")"
run "simple-java-mail/smime_test_user.pem.openssl.crt import" "$SMIME" --home "$T/sjm-aux" import "$M/smime_test_user.pem.openssl.crt"
is_pass "simple-java-mail/smime_test_user.pem.openssl.crt import (TRUSTED CERTIFICATE)"
counts "simple-java-mail/smime_test_user.pem.openssl.crt" "$T/sjm-aux" 1 0
run "simple-java-mail/smime_test_user.p7b import" "$SMIME" --home "$T/sjm-p7b" import "$M/smime_test_user.p7b"
is_pass "simple-java-mail/smime_test_user.p7b import"
n=$(openssl pkcs7 -in "$M/smime_test_user.p7b" -print_certs 2>/dev/null | grep -c 'BEGIN CERTIFICATE')
counts "simple-java-mail/smime_test_user.p7b" "$T/sjm-p7b" "$n" 0

# === 3c. mimekit/ ===========================================================
X=$C/mimekit
KX=$T/ks-mimekit
ks "$KX" --trust "$X/StartComCertificationAuthority.crt"
ks "$KX" "$X/StartComClass1PrimaryIntermediateClientCA.crt"
run "mimekit/thunderbird-signed.txt verify at 2013-11-03" "$SMIME" --home "$KX" verify --no-harvest --at-time @1383436800 -i "$X/thunderbird-signed.txt"
is_warn "mimekit/thunderbird-signed.txt verify at 2013-11-03 (valid, SHA-1)" "sha-?1"
[ "$rc" -eq 6 ] && ok "mimekit/thunderbird-signed.txt: valid at that time (6)" || not_ok "mimekit/thunderbird-signed.txt: valid at that time (6)" "$(detail)"
signer_is "mimekit/thunderbird-signed.txt" fejj@gnome.org
expired "mimekit/thunderbird-signed.txt" "$SMIME" --home "$KX" verify --no-harvest -i "$X/thunderbird-signed.txt"

# === 4a. pkcs12-variants/ ===================================================
Q=$C/pkcs12-variants
for x in windows7-certmgr-export:foo nss-chrome-export:foo openssl-3des-rc2:foo pbes2-aes128-hmacsha1:foo pbes2-aes128-hmacsha256:foo \
	no-encryption:foo empty-password: null-password: 'unicode-password:Hello, 世界'; do
	n=${x%%:*}
	printf '%s\n' "${x#*:}" >"$T/pw"
	run "pkcs12-variants/$n.p12 import" "$SMIME" --home "$T/pv-$n" import --password-file "$T/pw" "$Q/$n.p12"
	is_pass "pkcs12-variants/$n.p12 import"
	timeout 20 "$SMIME" --home "$T/pv-$n" --json list >"$T/.list" 2>/dev/null
	c=$(grep -c '"fingerprint"' "$T/.list")
	k=$(grep -c '"key": true' "$T/.list")
	[ "$k" -eq 1 ] && [ "$c" -ge 1 ] && ok "pkcs12-variants/$n.p12: key + certificate(s) ($c)" ||
		not_ok "pkcs12-variants/$n.p12: key + certificate(s) (got $c certs, $k keys)" "$(cat "$T/.list")"
done

# === 4b. fuzz-openssl/ ======================================================
Z=$C/fuzz-openssl
for f in "$Z"/cms/* "$Z"/x509/*; do
	n=${f#"$Z"/}
	wrap "$f" >"$T/fz.eml"
	run "fuzz/$n inspect (wrapped)" "$SMIME" inspect -i "$T/fz.eml"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] && ok "fuzz/$n inspect: exit 0 or 3" || not_ok "fuzz/$n inspect: exit 0 or 3 (got $rc)" "$(detail)"
	run "fuzz/$n verify (wrapped)" "$SMIME" --home "$KT" verify --no-harvest -i "$T/fz.eml"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 6 ] && ok "fuzz/$n verify: not valid (exit $rc)" || not_ok "fuzz/$n verify: not valid (got $rc)" "$(detail)"
	run "fuzz/$n import" "$SMIME" --home "$T/fz-ks" import "$f"
	case $rc in 0 | 1 | 3 | 4 | 5) ok "fuzz/$n import: accepted or refused cleanly (exit $rc)" ;; *) not_ok "fuzz/$n import: accepted or refused cleanly (got $rc)" "$(detail)" ;; esac
done
for f in "$Z"/smime/*; do
	n=${f#"$Z"/}
	run "fuzz/$n inspect" "$SMIME" inspect -i "$f"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] && ok "fuzz/$n inspect: exit 0 or 3" || not_ok "fuzz/$n inspect: exit 0 or 3 (got $rc)" "$(detail)"
	run "fuzz/$n verify" "$SMIME" --home "$KT" verify --no-harvest -i "$f"
	is_fail "fuzz/$n verify (its CA is not supplied)"
done

# === inspect over every .eml ================================================
for f in "$C"/*/*.eml "$X/thunderbird-signed.txt"; do
	run "inspect ${f#"$C"/}" "$SMIME" inspect -i "$f"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] && ok "inspect ${f#"$C"/}: exit 0 or 3" || not_ok "inspect ${f#"$C"/}: exit 0 or 3 (got $rc)" "$(detail)"
done

done_testing
