#!/usr/bin/env bash
# Bounded memory: every message operation's peak resident memory stays
# under a fixed bound while the message grows from 1 MiB to 16 MiB, and the
# streamed results are byte-identical with OpenSSL's on the same input, in
# both directions.  (The speed and the 512 MiB figures are the benchmark's:
# bench/run.sh; this test only guards the bound.)
. "$(dirname "$0")/lib.sh"

BOUND_KB=$((24 * 1024))   # fixed, whatever the size
GROWTH_KB=$((4 * 1024))   # 1 MiB -> 16 MiB may not add more than this

alice_and_bob

# mkbig FILE MIB: a message with a text part and a MIB MiB binary attachment.
mkbig() {
	python3 - "$1" "$2" "$(date -R)" <<'PY'
import sys, os, base64
mib = int(sys.argv[2])
date = sys.argv[3].encode()
with open(sys.argv[1], "wb") as f:
    f.write(b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: large\r\n"
            b"Date: " + date + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=LL\r\n\r\n--LL\r\n"
            b"Content-Type: text/plain\r\n\r\nThe attachment.\r\n--LL\r\n"
            b"Content-Type: application/octet-stream; name=blob.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    for _ in range(mib):
        f.write(base64.encodebytes(os.urandom(1 << 20)).replace(b"\n", b"\r\n"))
    f.write(b"--LL--\r\n")
PY
}
mkbig "$T/m1.eml" 1
mkbig "$T/m16.eml" 16

# peak NAME OUT CMD...: run CMD, put its peak RSS (KiB) in $peak, pass when exit 0.
peak() {
	local name=$1
	shift
	/usr/bin/time -f '%M' -o "$T/.rss" "$@" >"$T/.out" 2>"$T/.err"
	local rc=$?
	peak=$(tail -n 1 "$T/.rss")
	[ "$rc" -eq 0 ] || { not_ok "$name: exit 0 (got $rc)" "$(cat "$T/.err")"; peak=0; return 1; }
	return 0
}

# bounded OP-NAME CMD-TEMPLATE: CMD-TEMPLATE with {in} and {out}, at 1 and 16 MiB.
bounded() {
	local name=$1 tmpl=$2 p1 p16 cmd
	for n in 1 16; do
		cmd=${tmpl//\{in\}/$T/in$n.eml}
		cmd=${cmd//\{out\}/$T/out$n.eml}
		peak "$name at $n MiB" bash -c "$cmd" || return
		[ "$n" = 1 ] && p1=$peak || p16=$peak
	done
	if [ "$p16" -lt "$BOUND_KB" ] && [ $((p16 - p1)) -lt "$GROWTH_KB" ]; then
		ok "$name: peak RSS ${p1} KiB at 1 MiB, ${p16} KiB at 16 MiB (bound ${BOUND_KB} KiB)"
	else
		not_ok "$name: peak RSS ${p1} KiB at 1 MiB, ${p16} KiB at 16 MiB (bound ${BOUND_KB} KiB, growth < ${GROWTH_KB} KiB)"
	fi
}

for n in 1 16; do cp "$T/m$n.eml" "$T/in$n.eml"; done
bounded "sign (clear)" "'$SMIME' --home '$KA' sign -i {in} -o {out}"
for n in 1 16; do cp "$T/out$n.eml" "$T/clear$n.eml"; done
bounded "sign (opaque)" "'$SMIME' --home '$KA' sign --opaque -i {in} -o {out}"
for n in 1 16; do cp "$T/out$n.eml" "$T/opaque$n.eml"; done
bounded "encrypt (AES-256-GCM)" "'$SMIME' --home '$KA' encrypt -q --cipher aes-256-gcm --to bob@example.org -i {in} -o {out}"
for n in 1 16; do cp "$T/out$n.eml" "$T/gcm$n.eml"; done
bounded "encrypt (AES-256-CBC)" "'$SMIME' --home '$KA' encrypt -q --cipher aes-256-cbc --to bob@example.org -i {in} -o {out}"
for n in 1 16; do cp "$T/out$n.eml" "$T/cbc$n.eml"; done
bounded "encrypt --sign" "'$SMIME' --home '$KA' encrypt -q --sign --to bob@example.org -i {in} -o {out}"
for n in 1 16; do cp "$T/out$n.eml" "$T/se$n.eml"; done
for n in 1 16; do cp "$T/clear$n.eml" "$T/in$n.eml"; done
bounded "verify (clear-signed)" "'$SMIME' --home '$KB' -q verify -i {in} -o {out}"
bounded "verify (clear-signed) from a pipe" "cat {in} | '$SMIME' --home '$KB' -q verify -o {out}"

for n in 1 16; do cp "$T/opaque$n.eml" "$T/in$n.eml"; done
bounded "verify (opaque signed-data)" "'$SMIME' --home '$KB' -q verify -i {in} -o {out}"
for n in 1 16; do cp "$T/gcm$n.eml" "$T/in$n.eml"; done
bounded "decrypt (AES-256-GCM)" "'$SMIME' --home '$KB' -q decrypt -i {in} -o {out}"
bounded "decrypt (AES-256-GCM) from a pipe to a pipe" "cat {in} | '$SMIME' --home '$KB' -q decrypt | cat > {out}"
for n in 1 16; do cp "$T/cbc$n.eml" "$T/in$n.eml"; done
bounded "decrypt (AES-256-CBC)" "'$SMIME' --home '$KB' -q decrypt -i {in} -o {out}"
for n in 1 16; do cp "$T/se$n.eml" "$T/in$n.eml"; done
bounded "open (signed, then encrypted)" "'$SMIME' --home '$KB' -q open -i {in} -o {out}"

# Nothing is released from what is not authentic: no output file, a non-zero exit.
python3 - "$T/gcm16.eml" "$T/gcm-bad.eml" "$T/gcm-eoc.eml" <<'PY'
import sys, base64, re
raw = open(sys.argv[1], "rb").read()
head, body = raw.split(b"\r\n\r\n", 1)
der = bytearray(base64.b64decode(re.sub(rb"\s+", b"", body)))
def write(path, der):
    open(path, "wb").write(head + b"\r\n\r\n" + base64.encodebytes(bytes(der)).replace(b"\n", b"\r\n"))
mac = der.rfind(b"\x04\x10", len(der) - 64)   # the 16-byte MessageAuthenticationCode
assert mac > 0
der[mac + 2 + 7] ^= 1
write(sys.argv[2], der)
der[mac + 2 + 7] ^= 1
der[-3] ^= 1   # the end-of-contents after the mac
write(sys.argv[3], der)
PY
expect 1 "a tampered AES-GCM tag: exit 1" "$SMIME" --home "$KB" -q decrypt -i "$T/gcm-bad.eml" -o "$T/bad.out"
[ -e "$T/bad.out" ] && not_ok "a tampered AES-GCM tag: no output file" || ok "a tampered AES-GCM tag: no output file"
"$SMIME" --home "$KB" -q decrypt -i "$T/gcm-bad.eml" >"$T/bad.pipe" 2>/dev/null
[ -s "$T/bad.pipe" ] && not_ok "a tampered AES-GCM tag: nothing on a pipe" || ok "a tampered AES-GCM tag: nothing on a pipe"
expect 3 "a malformed end after the AES-GCM tag: exit 3" "$SMIME" --home "$KB" -q decrypt -i "$T/gcm-eoc.eml" -o "$T/eoc.out"
[ -e "$T/eoc.out" ] && not_ok "a malformed end after the tag: no output file" || ok "a malformed end after the tag: no output file"
head -c $(( $(stat -c %s "$T/gcm16.eml") / 2 )) "$T/gcm16.eml" >"$T/trunc.eml"
"$SMIME" --home "$KB" -q decrypt -i "$T/trunc.eml" -o "$T/trunc.out" 2>"$T/.err"
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && ok "a truncated message: exit $rc" || not_ok "a truncated message: non-zero exit, no crash (got $rc)"
[ -e "$T/trunc.out" ] && not_ok "a truncated message: no output file" || ok "a truncated message: no output file"
python3 - "$T/opaque16.eml" "$T/opaque-bad.eml" <<'PY'
import sys, base64, re
raw = open(sys.argv[1], "rb").read()
head, body = raw.split(b"\r\n\r\n", 1)
der = bytearray(base64.b64decode(re.sub(rb"\s+", b"", body)))
der[len(der) // 2] ^= 1   # in the content: the digest will not match
open(sys.argv[2], "wb").write(head + b"\r\n\r\n" + base64.encodebytes(bytes(der)).replace(b"\n", b"\r\n"))
PY
expect 1 "opaque signed-data with a bad signature: exit 1" "$SMIME" --home "$KB" -q verify -i "$T/opaque-bad.eml" -o "$T/obad.out"
[ -e "$T/obad.out" ] && not_ok "opaque signed-data with a bad signature: no output file" || ok "opaque signed-data with a bad signature: no output file"

# The streamed output is what OpenSSL makes of the same input, both ways.
entity() { entity_of "$1" | tr -d '\r'; }
openssl cms -verify -in "$T/clear16.eml" -CAfile "$P/ca.crt" -out "$T/o.ent" 2>/dev/null
entity "$T/m16.eml" >"$T/m16.ent"
tr -d '\r' <"$T/o.ent" | cmp -s - "$T/m16.ent" && ok "16 MiB clear-signed: openssl verifies the very entity" ||
	not_ok "16 MiB clear-signed: openssl verifies the very entity"
openssl cms -verify -in "$T/opaque16.eml" -CAfile "$P/ca.crt" -out "$T/o.ent" 2>/dev/null
tr -d '\r' <"$T/o.ent" | cmp -s - "$T/m16.ent" && ok "16 MiB opaque-signed: openssl verifies the very entity" ||
	not_ok "16 MiB opaque-signed: openssl verifies the very entity"
for c in gcm cbc; do
	openssl cms -decrypt -in "$T/${c}16.eml" -inkey "$P/bob.key" -recip "$P/bob.crt" -out "$T/o.ent" 2>/dev/null
	tr -d '\r' <"$T/o.ent" | cmp -s - "$T/m16.ent" && ok "16 MiB $c: openssl decrypts the very entity" ||
		not_ok "16 MiB $c: openssl decrypts the very entity"
done
entity_of "$T/m16.eml" >"$T/m16.crlf"
openssl cms -sign -binary -in "$T/m16.crlf" -signer "$P/alice.crt" -inkey "$P/alice.key" \
	-from alice@example.org -to bob@example.org -out "$T/os16.eml" 2>/dev/null
"$SMIME" --home "$KB" -q verify -i "$T/os16.eml" -o "$T/v.eml" 2>"$T/.err" &&
	entity "$T/v.eml" | cmp -s - "$T/m16.ent" && ok "openssl clear-signs 16 MiB: smime verifies, byte-identical" ||
	not_ok "openssl clear-signs 16 MiB: smime verifies, byte-identical" "$(cat "$T/.err")"

entity "$T/out16.eml" | cmp -s - "$T/m16.ent" && ok "open of 16 MiB (signed, then encrypted): the very entity" ||
	not_ok "open of 16 MiB (signed, then encrypted): the very entity"
openssl cms -encrypt -binary -aes-256-gcm -in "$T/m16.crlf" -recip "$P/bob.crt" -from alice@example.org \
	-to bob@example.org -out "$T/oe16.eml" 2>/dev/null
"$SMIME" --home "$KB" -q decrypt -i "$T/oe16.eml" -o "$T/d.eml" 2>"$T/.err" &&
	entity "$T/d.eml" | cmp -s - "$T/m16.ent" && ok "openssl encrypts 16 MiB (GCM): smime decrypts, byte-identical" ||
	not_ok "openssl encrypts 16 MiB (GCM): smime decrypts, byte-identical" "$(cat "$T/.err")"
openssl cms -sign -binary -nodetach -in "$T/m16.crlf" -signer "$P/alice.crt" -inkey "$P/alice.key" \
	-from alice@example.org -to bob@example.org -out "$T/oo16.eml" 2>/dev/null
"$SMIME" --home "$KB" -q verify -i "$T/oo16.eml" -o "$T/v.eml" 2>"$T/.err" &&
	entity "$T/v.eml" | cmp -s - "$T/m16.ent" && ok "openssl opaque-signs 16 MiB: smime verifies, byte-identical" ||
	not_ok "openssl opaque-signs 16 MiB: smime verifies, byte-identical" "$(cat "$T/.err")"

done_testing
