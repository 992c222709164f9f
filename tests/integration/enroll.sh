#!/usr/bin/env bash
# smime enroll: SCEP enrollment (RFC 8894) from the command line.
#
# Without a service: the options, a server that is not there, and a fake
# SCEP server of our own (a small Python server) that answers garbage, a
# CA we do not trust, weak algorithms, errors and redirects: each a clear
# error with its exit status, and nothing written to the keystore.
# With smimed's SCEP endpoint: a first enrollment with a challenge (RSA and
# EC), a request held PENDING until an admin approves it, a wait that runs
# out and --resume, refusals (wrong, used challenge; a key the profile does
# not take), and --renew; every certificate issued verifies with openssl
# against the chain from GetCACert.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIME" ]; then
	skip "smime enroll" "no smime binary at $SMIME"
	done_testing
	exit
fi
if ! command -v python3 >/dev/null || ! command -v jq >/dev/null; then
	skip "smime enroll" "python3 and jq are needed"
	done_testing
	exit
fi
unset SMIME_SCEP
FAKE_PIDS=()
cleanup() {
	local p
	for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	stop_smimed
	rm -rf "$T"
}
trap cleanup EXIT

# nothing_in NAME HOME: no key, no certificate, no pending request in the keystore HOME.
nothing_in() {
	if [ -n "$(find "$2" -path '*/keys/*' -type f 2>/dev/null)" ] ||
		[ -n "$(find "$2" -path '*/certs/*' -type f 2>/dev/null)" ] ||
		[ -n "$(find "$2" -path '*/scep-pending/*' -type f 2>/dev/null)" ]; then
		not_ok "$1: nothing written to the keystore" "$(find "$2" -type f)"
	else
		ok "$1: nothing written to the keystore"
	fi
}

# --- options ---------------------------------------------------------------
K=$T/ks
echo "s3cret-challenge" >"$T/challenge"
expect 0 "--help" "$SMIME" enroll --help
contains "--help names the options" "$T/.out" "--challenge-file FILE"
expect 2 "no --scep and no SMIME_SCEP" "$SMIME" --home "$K" enroll --challenge-file "$T/challenge"
contains "no server: says how to name it" "$T/.err" "give --scep URL or set SMIME_SCEP"
expect 2 "an ftp:// URL" "$SMIME" --home "$K" enroll --scep ftp://127.0.0.1/scep --challenge-file "$T/challenge"
expect 2 "a URL with a query" "$SMIME" --home "$K" enroll --scep "http://127.0.0.1:1/scep?x=1" --challenge-file "$T/challenge"
expect 2 "--challenge and --challenge-file" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge x --challenge-file "$T/challenge"
expect 2 "--renew with a challenge" "$SMIME" --home "$K" enroll --renew --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge"
expect 2 "--key dsa" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep --challenge-file "$T/challenge" --key dsa
expect 2 "--ca-fingerprint that is no SHA-256" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge" --ca-fingerprint abcdef
expect 2 "--poll-interval 0" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge" --poll-interval 0
expect 2 "--transaction-id without --resume" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge" --transaction-id ABC
expect 2 "--cacert for an http:// URL" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge" --cacert /etc/hosts
printf '' >"$T/empty"
expect 2 "an empty challenge file" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/empty"
expect 2 "no challenge and no terminal" setsid "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep </dev/null
expect 4 "--resume with nothing pending" "$SMIME" --home "$K" enroll --resume
expect 7 "a server that is not there" "$SMIME" --home "$K" enroll --scep http://127.0.0.1:1/scep \
	--challenge-file "$T/challenge"
contains "not there: cannot connect" "$T/.err" "http://127.0.0.1:1/scep: cannot connect"
nothing_in "a server that is not there" "$K"
"$SMIME" --home "$K" --json enroll --scep http://127.0.0.1:1/scep --challenge-file "$T/challenge" 2>"$T/j.err"
if jq -e '.error.code == "io" and .error.exit == 7' "$T/j.err" >/dev/null 2>&1; then
	ok "--json: the error as one object"
else
	not_ok "--json: the error as one object" "$(cat "$T/j.err")"
fi
SMIME_SCEP=http://127.0.0.1:1/env expect 7 "SMIME_SCEP names the server" "$SMIME" --home "$K" enroll \
	--challenge-file "$T/challenge"
contains "SMIME_SCEP: that URL is used" "$T/.err" "127.0.0.1:1/env"
expect 4 "--renew: nothing to renew (asked before the server)" "$SMIME" --home "$K" enroll --renew \
	--scep http://127.0.0.1:1/scep
contains "--renew: nothing to renew is said" "$T/.err" "nothing to renew"

# --- a fake SCEP server ------------------------------------------------------
P=$T/pki
mkca "$P"
openssl x509 -in "$P/ca.crt" -outform DER -out "$P/ca.der"
CA_FP=$(sha256sum <"$P/ca.der" | cut -c1-64)
cat >"$T/fake.py" <<'PY'
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, ca, log = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
GOOD = b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n"
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, code, body, ctype, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def answer(self, body=None):
        mode = self.path.split("/")[1]
        with open(log, "a") as f: f.write(self.command + " " + self.path + "\n")
        op = ""
        if "operation=" in self.path:
            op = self.path.split("operation=")[1].split("&")[0]
        if op == "GetCACaps":
            if mode == "binarycaps": return self.send(200, b"\x00\xff\xfe garbage", "text/plain")
            if mode == "htmlcaps": return self.send(200, b"<html>hi</html>", "text/html")
            if mode == "weak": return self.send(200, b"SHA-1\nDES3\n", "text/plain")
            if mode == "nocaps": return self.send(200, b"", "text/plain")
            if mode == "oops": return self.send(500, b"broke \x1b[31mred\nsecond line", "text/plain")
            if mode == "redirect": return self.send(302, b"", "text/plain", [("Location", "http://evil.example/scep")])
            return self.send(200, GOOD, "text/plain")
        if op == "GetCACert":
            if mode == "garbageca": return self.send(200, b"\x30\x03\x02\x01\x05", "application/x-x509-ca-cert")
            if mode == "htmlca": return self.send(200, b"<html>hi</html>", "text/html")
            if mode == "hugeca": return self.send(200, b"\x30" * 300000, "application/x-x509-ca-cert")
            return self.send(200, ca, "application/x-x509-ca-cert")
        if op == "PKIOperation":
            if mode == "plainpki": return self.send(200, b"hello", "text/plain")
            return self.send(200, b"\x30\x80 not a pkiMessage at all", "application/x-pki-message")
        return self.send(404, b"no such operation", "text/plain")
    def do_GET(self): self.answer()
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.answer()
srv = ThreadingHTTPServer(("127.0.0.1", port), H)
if len(sys.argv) > 5:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
start_fake F "$P/ca.der"
: >"$T/fake.log"

# fake NAME MODE EXIT PATTERN [ARGS...]: enroll against the fake in MODE.
fake() {
	local name=$1 mode=$2 want=$3 pattern=$4
	shift 4
	rm -rf "$K"
	expect "$want" "$name: exit $want" timeout 60 "$SMIME" --home "$K" enroll --scep "$F/$mode/scep" \
		--challenge-file "$T/challenge" "$@"
	contains "$name: the reason is said" "$T/.err" "$pattern"
	nothing_in "$name" "$K"
}
fake "binary GetCACaps" binarycaps 3 "the GetCACaps answer is not text"
fake "GetCACaps in HTML" htmlcaps 3 "GetCACaps answered text/html, not text/plain: is this the SCEP server's URL"
fake "only SHA-1 and DES3" weak 5 "announces neither SHA-256 nor SHA-512 .*--allow-weak"
fake "no capabilities at all" nocaps 5 "announces neither SHA-256 nor SHA-512"
fake "HTTP 500" oops 7 "GetCACaps: HTTP 500 \(broke \?\[31mred\)"
lacks "HTTP 500: the server's escape character is not printed" "$T/.err" $'\x1b'
fake "a redirect" redirect 7 "HTTP 302, a redirect to http://evil.example/scep; redirects are not followed"
fake "GetCACert: not a certificate" garbageca 3 "GetCACert: RFC 8894 4.2.1"
fake "GetCACert in HTML" htmlca 3 "GetCACert answered text/html"
fake "GetCACert: 300000 octets" hugeca 7 "an answer larger than 262144 octets"
: >"$T/fake.log"
fake "a CA that chains to no anchor" good 1 "does not chain to a trust anchor of the keystore .*nothing was sent.*--ca-fingerprint"
contains "untrusted CA: its fingerprint is said" "$T/.err" "$CA_FP"
lacks "untrusted CA: nothing is sent" "$T/fake.log" "PKIOperation"
fake "a CA with another fingerprint than the pin" good 1 "not 0{64} given with --ca-fingerprint; nothing was sent" \
	--ca-fingerprint "$(printf '0%.0s' $(seq 64))"
lacks "another fingerprint: nothing is sent" "$T/fake.log" "PKIOperation"
fake "pinned CA, a reply that is no pkiMessage" good 3 "the reply to the PKCSReq: RFC 8894 3.2" \
	--ca-fingerprint "$CA_FP"
contains "pinned: the request is POSTed" "$T/fake.log" "^POST /good/scep\?operation=PKIOperation"
fake "pin with colons and capitals" good 3 "the reply to the PKCSReq" \
	--ca-fingerprint "$(echo "$CA_FP" | tr a-f A-F | sed 's/../&:/g; s/:$//')"
rm -rf "$K"
"$SMIME" --home "$K" import --trust "$P/ca.crt" >/dev/null 2>&1
expect 3 "a CA that is a keystore anchor: the request is sent" timeout 60 "$SMIME" --home "$K" enroll \
	--scep "$F/good/scep" --challenge-file "$T/challenge"
contains "anchor: the reply is refused" "$T/.err" "the reply to the PKCSReq"
# A distrusted CA is refused even when pinned, and even when also an anchor.
rm -rf "$K"
"$SMIME" --home "$K" import --trust "$P/ca.crt" >/dev/null 2>&1
"$SMIME" --home "$K" import --distrust "$P/ca.crt" >/dev/null 2>&1
: >"$T/fake.log"
expect 1 "a distrusted CA, pinned: refused before sending" timeout 60 "$SMIME" --home "$K" enroll \
	--scep "$F/good/scep" --challenge-file "$T/challenge" --ca-fingerprint "$CA_FP"
contains "distrusted CA: the distrust list is said" "$T/.err" "on the keystore's distrust list; nothing was sent"
lacks "distrusted CA: nothing is sent" "$T/fake.log" "PKIOperation"
expect 1 "a distrusted CA, not pinned (also an anchor): refused" timeout 60 "$SMIME" --home "$K" enroll \
	--scep "$F/good/scep" --challenge-file "$T/challenge"
fake "a reply that is not application/x-pki-message" plainpki 3 "PKIOperation answered text/plain" \
	--ca-fingerprint "$CA_FP"
fake "--key ec-p256 is sent too" good 3 "the reply to the PKCSReq" --ca-fingerprint "$CA_FP" --key ec-p256
# https: the server's certificate is checked, against --cacert when given.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/tls.key" -out "$P/tls.csr" \
	-subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$P/tls.ext"
openssl x509 -req -in "$P/tls.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
	-extfile "$P/tls.ext" -out "$P/tls.crt" 2>/dev/null
start_fake FS "$P/ca.der" "$P/tls.crt" "$P/tls.key"
rm -rf "$K"
expect 7 "https with a private CA and no --cacert: exit 7" timeout 60 "$SMIME" --home "$K" enroll \
	--scep "$FS/good/scep" --challenge-file "$T/challenge" --ca-fingerprint "$CA_FP"
contains "https: TLS failed, --cacert is named" "$T/.err" "TLS failed: .*--cacert FILE"
nothing_in "https without --cacert" "$K"
expect 3 "https with --cacert: the exchange goes on (to the fake's garbage reply)" timeout 60 "$SMIME" \
	--home "$K" enroll --scep "$FS/good/scep" --cacert "$P/ca.crt" --challenge-file "$T/challenge" \
	--ca-fingerprint "$CA_FP"
contains "https with --cacert: the reply is read" "$T/.err" "the reply to the PKCSReq"

# A wrong keystore passphrase is found before anything is sent.
mkuser "$P" old old@example.org rsa2048 sign
rm -rf "$K"
"$SMIME" --home "$K" import --password-file <(echo pw) "$P/old.p12" >/dev/null 2>&1
: >"$T/fake.log"
SMIME_PASSPHRASE=not-the-passphrase expect 1 "a wrong keystore passphrase: exit 1" timeout 60 "$SMIME" \
	--home "$K" enroll --scep "$F/good/scep" --challenge-file "$T/challenge" --ca-fingerprint "$CA_FP"
[ -s "$T/fake.log" ] && not_ok "a wrong keystore passphrase: nothing is asked of the server" "$(cat "$T/fake.log")" ||
	ok "a wrong keystore passphrase: nothing is asked of the server"
expect 2 "no passphrase and no terminal: exit 2" env -u SMIME_PASSPHRASE setsid "$SMIME" --home "$K" enroll \
	--scep "$F/good/scep" --challenge-file "$T/challenge" </dev/null

# --- smimed's SCEP endpoint ----------------------------------------------------
if [ ! -x "$SMIMED" ]; then
	skip "smime enroll against smimed" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
if start_smimed "$D"; then ok "smimed started on $SVC_URL"; else
	not_ok "smimed starts" "$(tail -20 "$D.log")"; done_testing; exit 1; fi
S=$SVC_URL/scep
code=$(api GET /api/v1/scep-profiles)
if [ "$code" != 200 ]; then
	skip "smime enroll against smimed" "this smimed has no SCEP endpoint (GET /api/v1/scep-profiles: HTTP $code)"
	done_testing
	exit
fi

CA_ID=$(api GET /api/v1/cas >/dev/null; jq -r '(.items // .)[] | select(.issuing == true) | .id' "$T/.body" | head -1)
[ -n "$CA_ID" ] && ok "the issuing CA is $CA_ID" || not_ok "the issuing CA" "$(cat "$T/.body")"
profile() { # NAME APPROVAL EC_CURVES [VALIDITY_DAYS RENEWAL_DAYS]
	status_is "SCEP profile $1" 201 POST /api/v1/scep-profiles "{\"name\":\"$1\",\"ca\":\"$CA_ID\",
		\"rsa_min_bits\":2048,\"ec_curves\":$3,\"subject\":\"CN={email}\",\"san_email\":\"all\",
		\"non_repudiation\":false,\"validity_days\":${4:-365},\"renewal_days\":${5:-30},\"approval\":$2,
		\"challenge_minutes\":60,\"allow_sha1\":false}"
}
profile devices false '["P-256"]'
profile approved true '["P-256"]'
profile rsaonly false '[]'
caps=$(curl -s -o "$T/caps" -w '%{http_code}' "$S?operation=GetCACaps&message=devices")
[ "$caps" = 200 ] && ok "GetCACaps answers" || not_ok "GetCACaps answers (HTTP $caps)" "$(cat "$T/caps")"
expect 0 "user alice" "$SMIME" admin user add alice@example.org
expect 0 "user bob" "$SMIME" admin user add bob@example.org
device() { # USER NAME -> device id on stdout
	"$SMIME" admin --json device add --user "$1" --name "$2" --platform linux 2>/dev/null | jq -r .id
}
DEV_A=$(device alice@example.org laptop)
DEV_B=$(device bob@example.org desktop)
[ -n "$DEV_A" ] && [ "$DEV_A" != null ] && ok "devices registered" || not_ok "devices registered" "$DEV_A"
# challenge DEVICE PROFILE FILE: a one-time challenge for the device, into FILE.
challenge() {
	local code
	code=$(api POST "/api/v1/devices/$1/scep-challenge" "{\"profile\":\"$2\"}")
	jq -r .challenge "$T/.body" >"$3"
	[ "$code" = 201 ] && [ -s "$3" ] && [ "$(cat "$3")" != null ]
}
# The chain a device gets from GetCACert, for openssl verify.
curl -s -o "$T/cacert.bin" -D "$T/cacert.hdr" "$S?operation=GetCACert&message=devices"
if grep -qi 'x-x509-ca-ra-cert' "$T/cacert.hdr"; then
	openssl pkcs7 -inform DER -in "$T/cacert.bin" -print_certs -out "$T/chain.pem" 2>/dev/null
else
	openssl x509 -inform DER -in "$T/cacert.bin" -out "$T/chain.pem" 2>/dev/null
fi
[ -s "$T/chain.pem" ] && ok "GetCACert: the chain as PEM" || not_ok "GetCACert: the chain as PEM"
# The CA (a certificate of the answer that signs certificates) fingerprint, and the service's root.
curl -sf -o "$T/root.pem" "$SVC_URL/ca/root.pem" && ok "the service's root" || not_ok "the service's root"
PIN=$(api GET "/api/v1/cas/$CA_ID" >/dev/null; jq -r .sha256 "$T/.body" | tr -d ':' | tr A-F a-f)
[ ${#PIN} = 64 ] && ok "the CA's SHA-256 fingerprint from the API" || not_ok "the CA's SHA-256 fingerprint" "$PIN"
# verify_issued NAME HOME: the certificate that the last enroll said it stored (SHA256:PREFIX
# on stderr) is in the keystore and verifies with openssl against the service's root and
# the chain of GetCACert, for S/MIME signing.
# With --json the fingerprint is the report's, on standard output.
verify_issued() {
	local prefix f
	prefix=$(grep -oE '(enrolled|renewed): signing identity SHA256:[0-9a-f]{16}' "$T/.err" | tail -1 | sed 's/.*SHA256://')
	[ -n "$prefix" ] || prefix=$(jq -r '.fingerprint // empty' "$T/.out" 2>/dev/null)
	f=$(ls "$2/certs/$prefix"*.der 2>/dev/null | head -1)
	if [ -z "$prefix" ] || [ -z "$f" ]; then
		not_ok "$1: the certificate is in the keystore" "$(cat "$T/.err")"
		return
	fi
	openssl x509 -inform DER -in "$f" -out "$T/issued.pem"
	if openssl verify -purpose smimesign -CAfile "$T/root.pem" -untrusted "$T/chain.pem" "$T/issued.pem" >"$T/v.out" 2>&1; then
		ok "$1: openssl verify against the chain of GetCACert"
	else
		not_ok "$1: openssl verify against the chain of GetCACert" "$(cat "$T/v.out")"
	fi
}

# a first enrollment, pinned
KA=$T/ks-alice
challenge "$DEV_A" devices "$T/ch-a" && ok "a challenge for alice's laptop" || not_ok "a challenge for alice's laptop" "$(cat "$T/.body")"
expect 1 "not pinned and no anchor: refused before sending" timeout 60 "$SMIME" --home "$KA" enroll \
	--scep "$S" --profile devices --challenge-file "$T/ch-a"
contains "not pinned: how to pin is said" "$T/.err" "--ca-fingerprint"
nothing_in "not pinned" "$KA"
expect 0 "alice enrolls (RSA-2048, pinned)" timeout 120 "$SMIME" --home "$KA" enroll --scep "$S" \
	--profile devices --challenge-file "$T/ch-a" --ca-fingerprint "$PIN"
contains "alice: the identity is said" "$T/.err" "enrolled: signing identity SHA256:.*alice@example.org"
[ "$("$SMIME" --home "$KA" --json list 2>/dev/null | grep -c '"key": true')" = 1 ] &&
	ok "alice: the keystore holds one key" || not_ok "alice: the keystore holds one key"
verify_issued "alice" "$KA"
mkmsg "$T/m.eml" alice@example.org bob@example.org
expect 0 "alice signs with the enrolled identity" "$SMIME" --home "$KA" sign -i "$T/m.eml" -o "$T/s.eml"
expect 8 "the same challenge again is refused: exit 8" timeout 60 "$SMIME" --home "$T/ks-again" enroll \
	--scep "$S" --profile devices --challenge-file "$T/ch-a" --ca-fingerprint "$PIN"
if grep -qE "the CA refused the PKCSReq .*failInfo" "$T/.err"; then ok "used challenge: failInfo said"; else
	not_ok "used challenge: failInfo said" "$(cat "$T/.err")"; fi
echo "wrong-challenge" >"$T/ch-wrong"
expect 8 "a wrong challenge: exit 8" timeout 60 "$SMIME" --home "$T/ks-wrong" enroll --scep "$S" \
	--profile devices --challenge-file "$T/ch-wrong" --ca-fingerprint "$PIN"
nothing_in "a wrong challenge" "$T/ks-wrong"

# EC where the profile allows it, and not where it does not
challenge "$DEV_B" rsaonly "$T/ch-b" || not_ok "a challenge for bob (rsaonly)" "$(cat "$T/.body")"
expect 8 "ec-p256 on an RSA-only profile: exit 8" timeout 60 "$SMIME" --home "$T/ks-bob" enroll --scep "$S" \
	--profile rsaonly --challenge-file "$T/ch-b" --ca-fingerprint "$PIN" --key ec-p256
contains "RSA only: the hint names --key rsa-2048" "$T/.err" "failInfo bad(Alg|Request).*--key rsa-2048"
nothing_in "ec-p256 refused" "$T/ks-bob"
challenge "$DEV_B" devices "$T/ch-b2" || not_ok "a challenge for bob (devices)" "$(cat "$T/.body")"
"$SMIME" --home "$T/ks-bob" import --trust "$T/root.pem" >/dev/null 2>&1
expect 0 "bob enrolls an EC P-256 key (the root is a keystore anchor: no pin)" timeout 120 "$SMIME" \
	--home "$T/ks-bob" --json enroll --scep "$S" --profile devices --challenge-file "$T/ch-b2" --key ec-p256
if jq -e '.status == "issued" and .key == "ec-p256" and .signing == true and (.emails | test("bob@example.org"))' \
	"$T/.out" >/dev/null 2>&1; then ok "--json: issued, ec-p256, bob"; else not_ok "--json: issued, ec-p256, bob" "$(cat "$T/.out")"; fi
verify_issued "bob (EC)" "$T/ks-bob"

# PENDING until approved
KC=$T/ks-carol
expect 0 "user carol" "$SMIME" admin user add carol@example.org
DEV_C=$(device carol@example.org phone)
challenge "$DEV_C" approved "$T/ch-c" || not_ok "a challenge for carol" "$(cat "$T/.body")"
expect 9 "a request held for approval: still PENDING after --timeout 2" timeout 60 "$SMIME" --home "$KC" \
	enroll --scep "$S" --profile approved --challenge-file "$T/ch-c" --ca-fingerprint "$PIN" \
	--poll-interval 1 --timeout 2
contains "PENDING: the transaction and --resume are said" "$T/.err" "still PENDING .*transaction [0-9A-F]{64}.*--resume"
TID=$(grep -oE 'transaction [0-9A-F]{64}' "$T/.err" | head -1 | cut -d' ' -f2)
[ -n "$(find "$KC/scep-pending" -name "$TID.json" 2>/dev/null)" ] && ok "PENDING: the request is kept" ||
	not_ok "PENDING: the request is kept" "$(ls -la "$KC" "$KC/scep-pending" 2>&1)"
[ "$(stat -c %a "$KC/scep-pending/$TID.json" 2>/dev/null)" = 600 ] && ok "PENDING: its file is 0600" || not_ok "PENDING: its file is 0600"
lacks "PENDING: no clear key in the file" "$KC/scep-pending/$TID.json" "BEGIN (RSA |EC )?PRIVATE KEY"
contains "PENDING: the key is there, encrypted" "$KC/scep-pending/$TID.json" "BEGIN ENCRYPTED PRIVATE KEY"
counts "PENDING: no identity yet" "$KC" 0 0
( sleep 3; "$SMIME" admin scep approve "$TID" >/dev/null 2>&1; echo $? >"$T/approve.code" ) &
approver=$!
expect 0 "--resume polls until the approval" timeout 120 "$SMIME" --home "$KC" enroll --resume \
	--poll-interval 1 --timeout 60
wait "$approver"
[ "$(cat "$T/approve.code")" = 0 ] && ok "the admin approved (smime admin scep approve)" ||
	not_ok "the admin approved (smime admin scep approve)" "exit $(cat "$T/approve.code")"
contains "approved: carol's identity" "$T/.err" "enrolled: signing identity .*carol@example.org"
[ -z "$(find "$KC/scep-pending" -type f 2>/dev/null)" ] && ok "approved: the pending file is gone" ||
	not_ok "approved: the pending file is gone"
verify_issued "carol (approved)" "$KC"
"$SMIME" --home "$KC" --json list >"$T/l.json" 2>/dev/null
if jq -e --arg fp "$PIN" '.entries[] | select(.fingerprint == $fp) | .kind == "anchor"' "$T/l.json" >/dev/null; then
	ok "carol (--resume): the CA pinned before the wait is a trust anchor"
else
	not_ok "carol (--resume): the CA pinned before the wait is a trust anchor" "$(head -c 1500 "$T/l.json")"
fi

# a request approved while the command waits
KD=$T/ks-dave
expect 0 "user dave" "$SMIME" admin user add dave@example.org
DEV_D=$(device dave@example.org laptop)
challenge "$DEV_D" approved "$T/ch-d" || not_ok "a challenge for dave" "$(cat "$T/.body")"
(
	for i in $(seq 1 50); do
		tid=$(ls "$KD/scep-pending" 2>/dev/null | head -1 | cut -c1-64)
		[ -n "$tid" ] && break
		sleep 0.2
	done
	api POST "/api/v1/scep/requests/$tid/approve" '{}' >"$T/approve2.code"
) &
approver=$!
expect 0 "PENDING, approved while polling: issued" timeout 120 "$SMIME" --home "$KD" enroll --scep "$S" \
	--profile approved --challenge-file "$T/ch-d" --ca-fingerprint "$PIN" --poll-interval 1 --timeout 60
wait "$approver"
verify_issued "dave (approved while polling)" "$KD"

# a request an admin rejects: --resume gets the FAILURE, and the pending request goes
expect 0 "user frank" "$SMIME" admin user add frank@example.org
DEV_F=$(device frank@example.org laptop)
challenge "$DEV_F" approved "$T/ch-f" || not_ok "a challenge for frank" "$(cat "$T/.body")"
KF=$T/ks-frank
expect 9 "frank: PENDING, --timeout 0" timeout 60 "$SMIME" --home "$KF" enroll --scep "$S" \
	--profile approved --challenge-file "$T/ch-f" --ca-fingerprint "$PIN" --timeout 0
TID=$(grep -oE 'transaction [0-9A-F]{64}' "$T/.err" | head -1 | cut -d' ' -f2)
status_is "the admin rejects frank's request" 200 POST "/api/v1/scep/requests/$TID/reject" \
	'{"reason":"not this laptop"}'
expect 8 "frank --resume: refused, exit 8" timeout 60 "$SMIME" --home "$KF" enroll --resume \
	--transaction-id "${TID:0:12}"
contains "rejected: the CA's reason is said" "$T/.err" "the CA refused the PKCSReq .*not this laptop"
nothing_in "rejected" "$KF"

# the other path of the endpoint, and a CA id instead of a profile name
expect 0 "user grace" "$SMIME" admin user add grace@example.org
DEV_G=$(device grace@example.org tablet)
expect 0 "smime admin device challenge for grace's tablet" "$SMIME" admin device challenge "$DEV_G" --profile devices
cp "$T/.out" "$T/ch-g"
expect 0 "grace enrolls at /cgi-bin/pkiclient.exe with the CA's id" timeout 120 "$SMIME" \
	--home "$T/ks-grace" enroll --scep "$SVC_URL/cgi-bin/pkiclient.exe" --profile "$CA_ID" \
	--challenge-file "$T/ch-g" --ca-fingerprint "$PIN"
verify_issued "grace (pkiclient.exe)" "$T/ks-grace"
# The CA pinned by fingerprint is a trust anchor: colleagues' mail under it verifies.
"$SMIME" --home "$KA" --json list >"$T/l.json" 2>/dev/null
if jq -e --arg fp "$PIN" '.entries[] | select(.fingerprint == $fp) | .kind == "anchor"' "$T/l.json" >/dev/null; then
	ok "alice: the CA she pinned is a trust anchor"
else
	not_ok "alice: the CA she pinned is a trust anchor" "$(head -c 1500 "$T/l.json")"
fi
mkmsg "$T/g.eml" grace@example.org alice@example.org
expect 0 "grace signs with her enrolled identity" "$SMIME" --home "$T/ks-grace" sign -i "$T/g.eml" -o "$T/gs.eml"
expect 0 "alice verifies her colleague grace's mail (same CA, pinned): exit 0" "$SMIME" --home "$KA" verify -i "$T/gs.eml"
ROOT_FP=$(openssl x509 -in "$T/root.pem" -outform DER | sha256sum | cut -c1-64)
expect 0 "user hank" "$SMIME" admin user add hank@example.org
DEV_H=$(device hank@example.org laptop)
challenge "$DEV_H" devices "$T/ch-h" || not_ok "a challenge for hank" "$(cat "$T/.body")"
expect 0 "hank enrolls with the root's fingerprint as the pin (the CA chains to it)" timeout 120 \
	"$SMIME" --home "$T/ks-hank" enroll --scep "$S" --profile devices --challenge-file "$T/ch-h" \
	--ca-fingerprint "SHA256:$ROOT_FP"
verify_issued "hank (root pinned)" "$T/ks-hank"

# renewal: outside the profile's renewal window, refused; inside it, a new identity
expect 8 "alice renews 364 days early: refused, exit 8" timeout 120 "$SMIME" --home "$KA" enroll --renew \
	--scep "$S" --profile devices
contains "early renewal: the CA's reason is said" "$T/.err" "the CA refused the RenewalReq .*failInfo badRequest"
[ "$("$SMIME" --home "$KA" --json list 2>/dev/null | grep -c '"key": true')" = 1 ] &&
	ok "early renewal: nothing added" || not_ok "early renewal: nothing added"
profile short false '["P-256"]' 30 30
expect 0 "user erin" "$SMIME" admin user add erin@example.org
DEV_E=$(device erin@example.org laptop)
challenge "$DEV_E" short "$T/ch-e" || not_ok "a challenge for erin" "$(cat "$T/.body")"
KE=$T/ks-erin
expect 0 "erin enrolls (a profile of 30 days, renewable for 30)" timeout 120 "$SMIME" --home "$KE" enroll \
	--scep "$S" --profile short --challenge-file "$T/ch-e" --ca-fingerprint "$PIN"
FIRST=$(grep -oE 'signing identity SHA256:[0-9a-f]{16}' "$T/.err" | sed 's/.*SHA256://')
# The pin makes no trust anchor: to verify mail, the keystore needs the service's root.
"$SMIME" --home "$KE" import --trust "$T/root.pem" >/dev/null 2>&1
mkmsg "$T/e.eml" erin@example.org bob@example.org
expect 0 "erin signs" "$SMIME" --home "$KE" sign -i "$T/e.eml" -o "$T/e1.eml"
sleep 2 # a later notBefore than the first certificate's, so that the new one is chosen to sign
expect 0 "erin renews (no challenge, no pin: the CA issued the certificate renewed)" timeout 120 \
	"$SMIME" --home "$KE" enroll --renew --scep "$S"
contains "renewal: said" "$T/.err" "renewed: signing identity .*erin@example.org"
contains "renewal: the old one stays, said" "$T/.err" "the certificate renewed \(SHA256:$FIRST\) stays"
verify_issued "erin (renewed)" "$KE"
[ "$("$SMIME" --home "$KE" --json list 2>/dev/null | grep -c '"key": true')" = 2 ] &&
	ok "renewal: the old identity stays, with its key" || not_ok "renewal: the old identity stays, with its key"
RENEWED=$(grep -oE 'renewed: signing identity SHA256:[0-9a-f]{16}' "$T/.err" | sed 's/.*SHA256://')
expect 0 "erin signs with the renewed identity" "$SMIME" --home "$KE" sign -i "$T/e.eml" -o "$T/e2.eml"
expect 0 "the renewed signature verifies" "$SMIME" --home "$KE" --json verify -i "$T/e2.eml" -o /dev/null
if [ -n "$RENEWED" ] && jq -e --arg p "$RENEWED" '[.layers[].signers[]?.fingerprint | startswith($p)] | any' \
	"$T/.err" >/dev/null 2>&1; then ok "the new mail is signed by the renewed certificate"; else
	not_ok "the new mail is signed by the renewed certificate ($RENEWED)" "$(head -c 1500 "$T/.err")"; fi
expect 0 "the first signature still verifies" "$SMIME" --home "$KE" verify -i "$T/e1.eml" -o /dev/null
expect 4 "--renew --email for an address without an identity" "$SMIME" --home "$KE" enroll --renew --scep "$S" \
	--email nobody@example.org
done_testing
