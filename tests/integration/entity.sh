#!/usr/bin/env bash
# The canonical entity (RFC 8551 3.1) that sign and encrypt protect, on both
# paths of lib/message.c: read straight from the message when it is 7-bit
# text in lines of at most 998 octets (bare LFs made CRLF), else re-encoded
# by GMime (8-bit text, long lines, bare CR, no Content-Type).  OpenSSL must
# verify and decrypt every result, and find the very same entity in all three
# forms; on the straight path that entity is the message's own.
. "$(dirname "$0")/lib.sh"

alice_and_bob

hdr="From: alice@example.org
To: bob@example.org
Subject: entity
Date: $(date -R)
MIME-Version: 1.0"
crlf() { sed 's/$/\r/'; }
long=$(head -c 1200 /dev/zero | tr '\0' 'x')

# name, path the message should take, message (LF; crlf applied where named)
{ printf '%s\nContent-Type: text/plain\n\nplain text\n.\n\nend\n' "$hdr" | crlf; } >"$T/crlf.eml"
printf '%s\nContent-Type: text/plain\n\nplain text\n\nend\n' "$hdr" >"$T/lf.eml"
printf '%s\nContent-Type: multipart/mixed;\n\tboundary="b1"\n\n--b1\nContent-Type: text/plain\n\none\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQFBgcICQ==\n--b1--\n' "$hdr" >"$T/lf-multipart.eml"
{ printf '%s\nContent-Type: text/plain\n\nfirst\n' "$hdr" | crlf; printf 'second\nthird\r\n'; } >"$T/mixed-ends.eml"
printf '%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\303\251t\303\251\n' "$hdr" | crlf >"$T/8bit.eml"
printf '%s\nContent-Type: text/plain\n\n%s\n' "$hdr" "$long" | crlf >"$T/long-line.eml"
printf '%s\n\nno content type\n' "$hdr" | crlf >"$T/no-type.eml"
{ printf '%s\nContent-Type: text/plain\n\n' "$hdr" | crlf; printf 'bare\rcarriage return\r\n'; } >"$T/bare-cr.eml"

canonical() { entity_of "$1" | python3 -c 'import sys,re; d=sys.stdin.buffer.read(); sys.stdout.buffer.write(re.sub(rb"\r?\n", b"\r\n", d))'; }
is_canonical() { python3 -c 'import sys,re; d=open(sys.argv[1],"rb").read(); sys.exit(1 if re.search(rb"(?<!\r)\n", d) else 0)' "$1"; }
is_7bit() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if all(b < 128 for b in d) else 1)' "$1"; }

for m in crlf lf lf-multipart mixed-ends 8bit long-line no-type bare-cr; do
	in=$T/$m.eml
	"$SMIME" --home "$KA" sign -i "$in" -o "$T/$m.clear" 2>"$T/.err" || { not_ok "$m: sign" "$(cat "$T/.err")"; continue; }
	"$SMIME" --home "$KA" sign --opaque -i "$in" -o "$T/$m.opaque" 2>"$T/.err" || { not_ok "$m: sign --opaque" "$(cat "$T/.err")"; continue; }
	"$SMIME" --home "$KA" encrypt -q --to bob@example.org -i "$in" -o "$T/$m.enc" 2>"$T/.err" || { not_ok "$m: encrypt" "$(cat "$T/.err")"; continue; }
	# (-binary would make OpenSSL split multipart/signed at LF: text mode for the clear form)
	if openssl cms -verify -in "$T/$m.clear" -CAfile "$P/ca.crt" -out "$T/$m.e1" 2>"$T/.err"; then
		ok "$m: openssl verifies the clear-signed message"
	else
		not_ok "$m: openssl verifies the clear-signed message" "$(cat "$T/.err")"; continue
	fi
	openssl cms -verify -binary -in "$T/$m.opaque" -CAfile "$P/ca.crt" -out "$T/$m.e2" 2>/dev/null &&
		same "$m: opaque-signed: the same entity" "$T/$m.e1" "$T/$m.e2" || not_ok "$m: openssl verifies the opaque-signed message"
	openssl cms -decrypt -binary -in "$T/$m.enc" -recip "$P/bob.crt" -inkey "$P/bob.key" -out "$T/$m.e3" 2>/dev/null &&
		same "$m: encrypted: the same entity" "$T/$m.e1" "$T/$m.e3" || not_ok "$m: openssl decrypts the encrypted message"
	is_canonical "$T/$m.e1" && ok "$m: the signed entity is canonical (CRLF)" || not_ok "$m: the signed entity is canonical (CRLF)"
	is_7bit "$T/$m.e1" && ok "$m: the signed entity is 7-bit" || not_ok "$m: the signed entity is 7-bit"
	case $m in
	crlf | lf | lf-multipart | mixed-ends)
		canonical "$in" >"$T/$m.want"
		same "$m: the entity is the message's own, with CRLF" "$T/$m.want" "$T/$m.e1" ;;
	8bit)
		lacks "8bit: re-encoded for 7-bit transport" "$T/$m.e1" "Content-Transfer-Encoding: 8bit" ;;
	long-line)
		python3 -c 'import sys; sys.exit(0 if max(map(len, open(sys.argv[1],"rb").read().split(b"\r\n"))) <= 998 else 1)' "$T/$m.e1" &&
			ok "long-line: re-encoded into lines of at most 998 octets" ||
			not_ok "long-line: re-encoded into lines of at most 998 octets" ;;
	no-type)
		contains "no-type: a Content-Type is supplied" "$T/$m.e1" "^Content-Type: text/plain" ;;
	esac
done

done_testing
