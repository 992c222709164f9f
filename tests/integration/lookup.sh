#!/usr/bin/env bash
# smime encrypt --lookup: recipients' certificates from the public lookup of
# a real smimed (GET /api/v1/lookup) and from a lying one (a small Python
# server of our own): what is taken, with the intermediate from the
# answer's chain, what is refused and why, what the contacts gain, the
# service down or slow, rate limits, TLS, the report and the options.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "smime encrypt --lookup" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
unset SMIME_LOOKUP
D=$T/data
FAKE_PIDS=()
cleanup() {
	local p
	for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	stop_smimed
	rm -rf "$T"
}
trap cleanup EXIT

if start_smimed "$D"; then ok "smimed started on $SVC_URL"; else
	not_ok "smimed starts" "$(tail -20 "$D.log")"; done_testing; exit 1; fi

# --- the service's users and their certificates (keys made by the service) -------
echo "p12-password-for-lookup" >"$T/p12pw"
p12_parts() { # NAME: NAME.key and NAME.crt from NAME.p12
	openssl pkcs12 -in "$T/$1.p12" -passin file:"$T/p12pw" -nocerts -nodes -out "$T/$1.key" 2>/dev/null &&
		openssl pkcs12 -in "$T/$1.p12" -passin file:"$T/p12pw" -nokeys -clcerts -out "$T/$1.crt" 2>/dev/null
}
for u in bob carol; do
	expect 0 "user $u@example.org" "$SMIME" admin user add "$u@example.org"
done
expect 0 "bob: an encryption certificate with a key the service makes" "$SMIME" admin cert issue \
	--user bob@example.org --profile encryption -o "$T/bob.p12" --password-file "$T/p12pw"
expect 0 "carol: a dual-use certificate with a key the service makes" "$SMIME" admin cert issue \
	--user carol@example.org --profile dual -o "$T/carol.p12" --password-file "$T/p12pw"
p12_parts bob && p12_parts carol && ok "the keys are read from the PKCS#12 files" ||
	not_ok "the keys are read from the PKCS#12 files"
BOB_FP=$(openssl x509 -in "$T/bob.crt" -outform DER | sha256sum | cut -c1-64)

# The keystores trust the service's root only: the issuing CA must come from the answer.
curl -sf -o "$T/root.pem" "$SVC_URL/ca/root.pem" && openssl x509 -in "$T/root.pem" -noout 2>/dev/null &&
	ok "the service's root from GET /ca/root.pem" || not_ok "the service's root from GET /ca/root.pem"
[ "$(openssl x509 -in "$T/root.pem" -noout -subject_hash)" = "$(openssl x509 -in "$T/root.pem" -noout -issuer_hash)" ] &&
	ok "it is self-signed (a root, not the issuing CA)" || not_ok "it is self-signed (a root, not the issuing CA)"
curl -s -o "$T/bob.json" "$SVC_URL/api/v1/lookup?email=bob@example.org"
if jq -e '(.chain | length) >= 1 and (.encryption.der | length) > 100' "$T/bob.json" >/dev/null 2>&1; then
	ok "the lookup answers bob's certificate and a chain"
else
	not_ok "the lookup answers bob's certificate and a chain" "$(head -c 600 "$T/bob.json")"
fi
# newks NAME [CA...]: a keystore $T/NAME that trusts CA (default: the service's root) only.
newks() {
	local name=$1
	shift
	rm -rf "${T:?}/$name"
	"$SMIME" --home "$T/$name" import --trust "${@:-$T/root.pem}" >/dev/null 2>&1
}
mkmsg "$T/plain.eml" alice@example.org "undisclosed-recipients:;" "Secret for the lookup test."
# enc NAME WANT HOME URL TO...: smime encrypt --lookup URL --to each TO, into $T/e.eml.
enc() {
	local name=$1 want=$2 home=$3 url=$4 args=() a
	shift 4
	for a in "$@"; do args+=(--to "$a"); done
	rm -f "$T/e.eml"
	expect "$want" "$name" timeout 60 "$SMIME" --home "$T/$home" encrypt --lookup "$url" --no-self \
		"${args[@]}" -i "$T/plain.eml" -o "$T/e.eml"
}
# decrypts NAME USER: openssl cms -decrypt with USER's key from the PKCS#12 gives the text.
decrypts() {
	if openssl cms -decrypt -in "$T/e.eml" -inkey "$T/$2.key" -recip "$T/$2.crt" >"$T/d.txt" 2>"$T/d.err" &&
		grep -q "Secret for the lookup test" "$T/d.txt"; then
		ok "$1"
	else
		not_ok "$1" "$(cat "$T/d.err")"
	fi
}

# --- found ----------------------------------------------------------------------
newks ks
counts "the keystore holds the root only" "$T/ks" 1 0
enc "bob: found through the lookup" 0 ks "$SVC_URL" bob@example.org
contains "bob: added to the contacts is said" "$T/.err" "smime encrypt: lookup: bob@example.org: added to the contacts SHA256:${BOB_FP:0:16}"
decrypts "bob: openssl cms -decrypt with bob's key from the PKCS#12" bob
expect 0 "smime list" "$SMIME" --home "$T/ks" list
contains "the contacts hold bob" "$T/.out" "^contact .*bob@example.org"
contains "the issuing CA, from the answer's chain, is kept as a CA" "$T/.out" "^ca .*Issuing CA"
counts "the keystore: root, issuing CA, bob" "$T/ks" 3 0
expect 0 "a contact from the lookup needs no lookup (a closed port)" "$SMIME" --home "$T/ks" encrypt \
	--lookup "http://127.0.0.1:1" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
lacks "the service is not asked for a known contact" "$T/.err" "lookup:"
newks ks-slash
enc "carol (dual use), a URL with a trailing slash" 0 ks-slash "$SVC_URL/" carol@example.org
decrypts "carol: openssl cms -decrypt with carol's key" carol
newks ks-two
enc "two recipients at once" 0 ks-two "$SVC_URL" bob@example.org carol@example.org
decrypts "two at once: bob decrypts" bob
decrypts "two at once: carol decrypts" carol
# a pipe for input: read again after the lookup
newks ks-pipe
rm -f "$T/e.eml"
if cat "$T/plain.eml" | "$SMIME" --home "$T/ks-pipe" encrypt --lookup "$SVC_URL" --no-self \
	--to bob@example.org -o "$T/e.eml" 2>"$T/.err"; then ok "a message on a pipe is encrypted after the lookup"; else
	not_ok "a message on a pipe is encrypted after the lookup" "$(cat "$T/.err")"; fi
decrypts "pipe: bob decrypts" bob

# --- the report (--json) ----------------------------------------------------------
newks ks-json
"$SMIME" --home "$T/ks-json" --json encrypt --lookup "$SVC_URL" --no-self --to bob@example.org \
	-i "$T/plain.eml" -o "$T/e.eml" 2>"$T/json.err"
if jq -e --arg fp "$BOB_FP" '.status == "ok" and .recipients == ["bob@example.org"] and
	(.directory | length) == 1 and .directory[0].address == "bob@example.org" and
	.directory[0].source == "lookup" and .directory[0].status == "found" and
	.directory[0].certificates[0].fingerprint == $fp and .directory[0].certificates[0].added == true' \
	"$T/json.err" >/dev/null 2>&1; then
	ok "--json: found, bob's fingerprint, added, in .directory"
else
	not_ok "--json: found, bob's fingerprint, added, in .directory" "$(cat "$T/json.err")"
fi
lacks "--json: no text lines" "$T/json.err" "^smime encrypt: lookup:"
newks ks-json2
"$SMIME" --home "$T/ks-json2" --json encrypt --lookup "$SVC_URL" --no-self --to nobody@example.org \
	--to bob@example.org --to 'a)(x' -i "$T/plain.eml" -o "$T/e.eml" 2>"$T/json2.err"
rc=$?
[ "$rc" -eq 4 ] && ok "--json, one missing: exit 4" || not_ok "--json, one missing: exit 4 (got $rc)"
if grep '^{' "$T/json2.err" | jq -e '.error.exit == 4 and
	(.directory | map({(.address): .status}) | add) == {"nobody@example.org": "not-found",
	"bob@example.org": "found", "a)(x": "invalid-address"} and
	(.directory[] | select(.address == "nobody@example.org") | .reason) ==
	"the lookup service has no certificate for it"' >/dev/null 2>&1; then
	ok "--json: not-found with its reason, found, invalid-address"
else
	not_ok "--json: not-found with its reason, found, invalid-address" "$(cat "$T/json2.err")"
fi

# --- not found, not trusted ------------------------------------------------------
newks ks-none
expect 4 "nobody without --lookup: exit 4" "$SMIME" --home "$T/ks-none" encrypt --no-self \
	--to nobody@example.org -i "$T/plain.eml" -o "$T/e.eml"
enc "nobody (unknown to the service): the same exit 4" 4 ks-none "$SVC_URL" nobody@example.org
contains "nobody: the reason is said" "$T/.err" "lookup: nobody@example.org: the lookup service has no certificate for it"
contains "nobody: reported missing" "$T/.err" "no usable encryption certificate for: nobody@example.org"
[ -e "$T/e.eml" ] && not_ok "nothing written when a recipient is missing" || ok "nothing written when a recipient is missing"
expect 0 "user dave without a certificate" "$SMIME" admin user add dave@example.org
enc "dave (a user without a certificate): exit 4" 4 ks-none "$SVC_URL" dave@example.org
contains "dave: no certificate is said" "$T/.err" "dave@example.org: the lookup service has no certificate for it"
rm -f "$T/e.eml"
expect 0 "--drop-missing: encrypted to the found one" "$SMIME" --home "$T/ks-none" encrypt --lookup "$SVC_URL" \
	--no-self --drop-missing --to nobody@example.org --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "--drop-missing: bob decrypts" bob
O=$T/other
mkca "$O"
newks ks-other "$O/ca.crt"
enc "a keystore that does not trust the service's root: exit 4" 4 ks-other "$SVC_URL" bob@example.org
contains "refused: not issued by a trust anchor" "$T/.err" "lookup: bob@example.org: refused SHA256:${BOB_FP:0:16} .*not issued by a trust anchor"
contains "bob reported missing" "$T/.err" "no usable encryption certificate for: bob@example.org"
counts "the untrusting keystore gained nothing" "$T/ks-other" 1 0

# --- the service down, and the order of --lookup and --ldap ---------------------------
DOWN=$(free_port)
newks ks-down
enc "a service that is down: exit 4" 4 ks-down "http://127.0.0.1:$DOWN" bob@example.org carol@example.org
contains "down: cannot connect is said" "$T/.err" "lookup: bob@example.org: http://127.0.0.1:$DOWN: cannot connect"
contains "down: the recipients are reported missing" "$T/.err" "no usable encryption certificate for: bob@example.org, carol@example.org"
"$SMIME" --home "$T/ks-down" --json encrypt --lookup "http://127.0.0.1:$DOWN" --no-self --to bob@example.org \
	--to carol@example.org -i "$T/plain.eml" -o "$T/e.eml" 2>"$T/down.json"
if grep '^{' "$T/down.json" | jq -e '.directory[0].status == "error" and (.directory[0].reason | test("cannot connect")) and
	.directory[1].status == "skipped" and (.directory[1].reason | test("the lookup service failed"))' >/dev/null 2>&1; then
	ok "down: the first address is an error, the others are skipped"
else
	not_ok "down: the first address is an error, the others are skipped" "$(cat "$T/down.json")"
fi
newks ks-both
rm -f "$T/e.eml"
expect 0 "--lookup and --ldap: the lookup is asked first" "$SMIME" --home "$T/ks-both" encrypt \
	--lookup "$SVC_URL" --ldap "ldap://127.0.0.1:$DOWN/dc=example,dc=org" --no-self --to bob@example.org \
	-i "$T/plain.eml" -o "$T/e.eml"
lacks "--lookup and --ldap: the directory is not asked for what the lookup found" "$T/.err" "directory:"
expect 4 "--lookup and --ldap: the directory is asked for the rest" "$SMIME" --home "$T/ks-both" encrypt \
	--lookup "$SVC_URL" --ldap "ldap://127.0.0.1:$DOWN/dc=example,dc=org" --no-self --to bob@example.org \
	--to nobody@example.org -i "$T/plain.eml" -o "$T/e.eml"
contains "--lookup and --ldap: the lookup's answer for nobody" "$T/.err" "lookup: nobody@example.org: the lookup service has no certificate for it"
contains "--lookup and --ldap: then the directory, for nobody only" "$T/.err" "directory: ldap://127.0.0.1:$DOWN/dc=example,dc=org: cannot connect"

# --- the environment and the options ---------------------------------------------------
newks ks-env
rm -f "$T/e.eml"
expect 0 "SMIME_LOOKUP names the service" env SMIME_LOOKUP="$SVC_URL" "$SMIME" --home "$T/ks-env" encrypt \
	--no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "SMIME_LOOKUP: bob decrypts" bob
newks ks-nolookup
expect 4 "--no-lookup leaves SMIME_LOOKUP unused" env SMIME_LOOKUP="$SVC_URL" "$SMIME" --home "$T/ks-nolookup" \
	encrypt --no-lookup --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
lacks "--no-lookup: no lookup asked" "$T/.err" "lookup:"
counts "--no-lookup: nothing added" "$T/ks-nolookup" 1 0
expect 2 "SMIME_LOOKUP that is not a URL: usage (2)" env SMIME_LOOKUP="not a url" "$SMIME" --home "$T/ks-nolookup" \
	encrypt --no-self --to bob@example.org -i "$T/plain.eml"
contains "SMIME_LOOKUP is named" "$T/.err" "SMIME_LOOKUP"
usage() { # NAME ARGS...: exit 2, nothing asked
	local name=$1
	shift
	expect 2 "$name: usage (2)" "$SMIME" --home "$T/ks-nolookup" "$@" -i "$T/plain.eml"
}
usage "--lookup-cacert with an http:// URL" encrypt --lookup "$SVC_URL" --lookup-cacert "$T/root.pem" --to x@example.org
contains "--lookup-cacert with http://: why" "$T/.err" "--lookup-cacert is for an https:// URL"
usage "--lookup ftp://" encrypt --lookup "ftp://127.0.0.1/" --to x@example.org
contains "--lookup ftp://: why" "$T/.err" "not an http:// or https:// URL"
usage "--lookup ldap://" encrypt --lookup "ldap://127.0.0.1/dc=x" --to x@example.org
usage "--lookup without a scheme" encrypt --lookup "127.0.0.1:8080" --to x@example.org
usage "--lookup with a query" encrypt --lookup "$SVC_URL/?email=x" --to x@example.org
usage "--lookup with a user" encrypt --lookup "http://user:pw@127.0.0.1:8080" --to x@example.org
usage "--lookup with a space" encrypt --lookup "http://127.0.0.1:8080/ x" --to x@example.org
usage "--lookup ''" encrypt --lookup "" --to x@example.org
usage "--lookup-cacert without --lookup" encrypt --lookup-cacert "$T/root.pem" --to x@example.org
usage "--lookup-cacert that cannot be read" encrypt --lookup "https://127.0.0.1:1" --lookup-cacert "$T/no-such.pem" --to x@example.org
usage "--no-lookup with --lookup" encrypt --no-lookup --lookup "$SVC_URL" --to x@example.org
usage "--lookup on sign" sign --lookup "$SVC_URL"
expect 0 "smime encrypt --help" "$SMIME" encrypt --help
contains "--help names --lookup" "$T/.out" "--lookup URL"
contains "--help names --lookup-cacert" "$T/.out" "--lookup-cacert FILE"
contains "--help names SMIME_LOOKUP" "$T/.out" "SMIME_LOOKUP"

# --- a lying service -------------------------------------------------------------------
# fake.py PORT ANSWER LOG [CERT KEY]: answers GET /MODE/api/v1/lookup?email=ADDR as MODE
# says, from bob's real answer; every request line goes to LOG.
cat >"$T/fake.py" <<'PY'
import base64, copy, json, ssl, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, real, log = int(sys.argv[1]), json.load(open(sys.argv[2])), sys.argv[3]
asked = {}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json", headers=(), length=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        u = urllib.parse.urlsplit(self.path)
        mode, _, rest = u.path.lstrip("/").partition("/")
        email = urllib.parse.parse_qs(u.query).get("email", [""])[0]
        if rest != "api/v1/lookup":
            return self.send(404, "no such page", "text/plain")
        ans = copy.deepcopy(real)
        ans["email"] = email
        enc, chain = ans["encryption"], ans["chain"]
        notfound = {"error": {"code": "not-found", "message": "no certificate for that address"}}
        if mode == "good":
            return self.send(200, ans) if email == "bob@example.org" else self.send(404, notfound)
        if mode == "liar":
            return self.send(200, ans)
        if mode == "wrongemail":
            ans["email"] = "someone-else@example.org"
            return self.send(200, ans)
        if mode == "nochain":
            del ans["chain"]
            return self.send(200, ans)
        if mode == "huge":
            return self.send(200, '{"email":"' + "x" * (2 << 20) + '"}')
        if mode == "hugenolen":
            return self.send(200, '{"email":"' + "x" * (2 << 20) + '"}', length=False)
        if mode == "bigder":
            enc["der"] = base64.b64encode(b"\x30" * 70000).decode()
            return self.send(200, ans)
        if mode == "badb64":
            enc["der"] = enc["der"][:40] + "!!!!" + enc["der"][44:]
            return self.send(200, ans)
        if mode == "newlines":
            enc["der"] = enc["der"][:64] + "\n" + enc["der"][64:]
            return self.send(200, ans)
        if mode == "notcert":
            enc["der"] = base64.b64encode(b"\x30\x03\x02\x01\x05").decode()
            return self.send(200, ans)
        if mode == "badjson":
            return self.send(200, '{"email": "' + email + '", "encryption": ')
        if mode == "dupkey":
            return self.send(200, '{"email":"%s","email":"%s","encryption":null,"signing":[]}' % (email, email))
        if mode == "types":
            ans["signing"] = {"not": "an array"}
            return self.send(200, ans)
        if mode == "ca":
            ans["encryption"] = chain[0]
            return self.send(200, ans)
        if mode == "leafchain":
            ans["chain"] = [enc]
            return self.send(200, ans)
        if mode == "many":
            ans["signing"] = [enc] * 65
            return self.send(200, ans)
        if mode == "sha":
            enc["sha256"] = "0" * 64
            return self.send(200, ans)
        if mode == "html":
            return self.send(200, "<html>hello</html>", "text/html")
        if mode == "plain404":
            return self.send(404, "not here", "text/plain")
        if mode == "oops":
            return self.send(500, {"error": {"code": "internal", "message": "broke \x1b[31mred"}})
        if mode == "redirect":
            return self.send(302, "", "text/plain", [("Location", "http://evil.example/")])
        if mode == "slow":
            time.sleep(15)
            return self.send(200, ans)
        if mode == "busy":
            return self.send(429, {"error": {"code": "too-many-requests", "message": "slow down"}},
                             headers=[("Retry-After", "60")])
        if mode == "flaky":
            asked[email] = asked.get(email, 0) + 1
            if asked[email] == 1:
                return self.send(429, {"error": {"code": "too-many-requests", "message": "slow down"}},
                                 headers=[("Retry-After", "1")])
            return self.send(200, ans)
        if mode == "stubborn":
            return self.send(429, {"error": {"code": "too-many-requests", "message": "slow down"}},
                             headers=[("Retry-After", "1")])
        return self.send(404, notfound)

srv = ThreadingHTTPServer(("127.0.0.1", port), H)
if len(sys.argv) > 5:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
start_fake F "$T/bob.json"
: >"$T/fake.log"
newks ks-fake
enc "the fake service answers bob like smimed" 0 ks-fake "$F/good" bob@example.org
decrypts "fake good: bob decrypts" bob
contains "the address is percent-encoded in the query" "$T/fake.log" "^/good/api/v1/lookup\?email=bob%40example.org$"
newks ks-fake
enc "an address with + and '" 4 ks-fake "$F/good" "o'neil+x@example.org"
contains "+ and ' are percent-encoded" "$T/fake.log" "email=o%27neil%2Bx%40example.org$"

# lie NAME MODE PATTERN [TO]: exit 4, no crash, the reason on stderr, nothing added.
lie() {
	local name=$1 mode=$2 pattern=$3 to=${4:-mallory@example.org}
	newks ks-lie
	enc "$name: missing, exit 4" 4 ks-lie "$F/$mode" "$to"
	contains "$name: the reason is said" "$T/.err" "$pattern"
	contains "$name: reported missing" "$T/.err" "no usable encryption certificate for: $to"
	counts "$name: nothing added" "$T/ks-lie" 1 0
}
lie "bob's certificate for mallory" liar "lookup: mallory@example.org: refused SHA256:${BOB_FP:0:16} .*it is for bob@example.org, not mallory@example.org"
lie "an answer about another address" wrongemail "email: the answer is about another address"
lie "no chain, the root as the only anchor" nochain "lookup: bob@example.org: refused .*not issued by a trust anchor" bob@example.org
lie "a 2 MiB answer" huge "an answer larger than 1048576 octets"
lie "a 2 MiB answer without Content-Length" hugenolen "an answer larger than 1048576 octets"
lie "a certificate of 70000 octets" bigder "encryption.der: longer than the base64 of a certificate of 64 KiB"
lie "bad base64" badb64 "encryption.der: not base64: a character outside the alphabet"
lie "base64 with a line feed" newlines "encryption.der: not base64"
lie "DER that is no certificate" notcert "encryption.der: not a DER certificate"
lie "bad JSON" badjson "an answer the lookup API does not describe: not JSON"
lie "a name twice" dupkey "not JSON .*duplicate"
lie "signing is not an array" types "signing: not an array"
lie "a CA certificate as the encryption certificate" ca "encryption: a CA certificate, not a recipient's"
lie "a leaf in the chain" leafchain "chain\[0\]: not a CA certificate"
lie "65 signing certificates" many "67 certificates, more than the 64 allowed in one answer"
lie "a sha256 that is not the certificate's" sha "encryption.sha256: not the SHA-256 of its certificate"
lie "200 text/html" html "the answer is not application/json but text/html: is this smimed's base URL"
lie "404 without the API's error" plain404 "/api/v1/lookup answered 404 without the API's JSON error: is this smimed's base URL"
lie "HTTP 500" oops "lookup: .*: HTTP 500: broke \?\[31mred"
lacks "HTTP 500: the service's escape character is not printed" "$T/.err" $'\x1b'
lie "a redirect" redirect "HTTP 302, a redirect to http://evil.example/; redirects are not followed"
start=$(date +%s)
lie "429 with Retry-After: 60" busy "rate limited \(HTTP 429, Retry-After 60 s\)"
took=$(( $(date +%s) - start ))
[ "$took" -le 5 ] && ok "429 with Retry-After: 60 is not waited for ($took s)" || not_ok "429 with Retry-After: 60 is not waited for ($took s)"
lie "429 twice" stubborn "rate limited \(HTTP 429, Retry-After 1 s\)"
[ "$(grep -c '^/stubborn/' "$T/fake.log")" = 2 ] && ok "429 twice: asked twice, not more" ||
	not_ok "429 twice: asked twice, not more" "$(grep -c '^/stubborn/' "$T/fake.log")"
start=$(date +%s)
lie "a service that does not answer" slow "no answer within 10 s"
took=$(( $(date +%s) - start ))
[ "$took" -le 20 ] && ok "a silent service is given up within 20 s ($took s)" || not_ok "a silent service is given up within 20 s ($took s)"
newks ks-lie
enc "429 with Retry-After: 1, then the answer" 0 ks-lie "$F/flaky" bob@example.org
contains "429: the wait is said" "$T/.err" "lookup: bob@example.org: rate limited; trying again in 1 s"
decrypts "429 then the answer: bob decrypts" bob
[ "$(grep -c '^/flaky/' "$T/fake.log")" = 2 ] && ok "429 then the answer: asked twice" ||
	not_ok "429 then the answer: asked twice" "$(grep '^/flaky/' "$T/fake.log")"
# A service that answers badly is not asked about the others.
: >"$T/fake.log"
newks ks-lie
"$SMIME" --home "$T/ks-lie" --json encrypt --lookup "$F/badjson" --no-self --to a@example.org \
	--to b@example.org -i "$T/plain.eml" -o "$T/e.eml" 2>"$T/bad.json"
if grep '^{' "$T/bad.json" | jq -e '.directory[0].status == "error" and .directory[1].status == "skipped"' >/dev/null 2>&1 &&
	[ "$(wc -l <"$T/fake.log")" = 1 ]; then
	ok "after bad JSON the service is not asked again"
else
	not_ok "after bad JSON the service is not asked again" "$(cat "$T/bad.json" "$T/fake.log")"
fi
# A refused certificate is about that address only: the others are still asked.
: >"$T/fake.log"
newks ks-lie
expect 4 "a certificate refused for one address, the next still asked" "$SMIME" --home "$T/ks-lie" encrypt \
	--lookup "$F/liar" --no-self --to mallory@example.org --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
[ "$(wc -l <"$T/fake.log")" = 2 ] && ok "both addresses asked" || not_ok "both addresses asked" "$(cat "$T/fake.log")"
contains "and bob's certificate taken for bob" "$T/.err" "lookup: bob@example.org: added to the contacts"
contains "and only mallory missing" "$T/.err" "no usable encryption certificate for: mallory@example.org$"

# --- TLS ---------------------------------------------------------------------------
P=$T/pki
mkca "$P"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
	-out "$T/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >"$T/tls.ext"
openssl x509 -req -in "$T/tls.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
	-extfile "$T/tls.ext" -out "$T/tls.crt" 2>/dev/null
start_fake FS "$T/bob.json" "$T/tls.crt" "$T/tls.key"
newks ks-tls
rm -f "$T/e.eml"
expect 0 "https:// with --lookup-cacert" "$SMIME" --home "$T/ks-tls" encrypt --lookup "$FS/good" \
	--lookup-cacert "$P/ca.crt" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
decrypts "https: bob decrypts" bob
newks ks-tls
enc "https:// with a certificate the system's CAs do not know: exit 4" 4 ks-tls "$FS/good" bob@example.org
contains "https: the TLS failure is said" "$T/.err" "lookup: bob@example.org: https://127.0.0.1:[0-9]+/good: TLS failed: .*--lookup-cacert"
expect 4 "https:// with the wrong CA: exit 4" "$SMIME" --home "$T/ks-tls" encrypt --lookup "$FS/good" \
	--lookup-cacert "$O/ca.crt" --no-self --to bob@example.org -i "$T/plain.eml" -o "$T/e.eml"
contains "https with the wrong CA: the TLS failure is said" "$T/.err" "TLS failed"

# --- memory on the error paths --------------------------------------------------------
if command -v valgrind >/dev/null; then
	vg() { # NAME WANT ARGS...
		local name=$1 want=$2
		shift 2
		newks ks-vg
		expect "$want" "valgrind: $name" valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite "$SMIME" --home "$T/ks-vg" "$@" -i "$T/plain.eml" -o "$T/e.eml"
	}
	vg "found, with --json" 0 --json encrypt --lookup "$SVC_URL" --no-self --to bob@example.org --to carol@example.org
	vg "not found, invalid, refused" 4 encrypt --lookup "$F/liar" --no-self --to mallory@example.org --to 'a(b'
	vg "bad JSON, then skipped" 4 encrypt --lookup "$F/badjson" --no-self --to a@example.org --to b@example.org
	vg "too many certificates" 4 encrypt --lookup "$F/many" --no-self --to a@example.org
	vg "a huge answer" 4 encrypt --lookup "$F/hugenolen" --no-self --to a@example.org
	vg "the service down" 4 encrypt --lookup "http://127.0.0.1:$DOWN" --no-self --to a@example.org
else
	skip "valgrind on the error paths" "valgrind is not installed"
fi

# --- the real service's rate limit --------------------------------------------------------
# One lookup a second, a burst of one: the curl takes the token, smime gets
# 429 with Retry-After: 1, waits and is answered.
stop_smimed
if SMIMED_LOOKUP_RATE=1 SMIMED_LOOKUP_BURST=1 start_smimed "$D"; then
	ok "smimed started again with lookup_rate = 1, lookup_burst = 1"
	curl -s -o /dev/null "$SVC_URL/api/v1/lookup?email=bob@example.org"
	code=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' "$SVC_URL/api/v1/lookup?email=bob@example.org")
	[ "$code" = 429 ] && grep -qi '^Retry-After: 1' "$T/h" && ok "the service answers 429 with Retry-After: 1" ||
		not_ok "the service answers 429 with Retry-After: 1 ($code)" "$(cat "$T/h")"
	newks ks-rate
	enc "rate limited by smimed: waited for once, then found" 0 ks-rate "$SVC_URL" bob@example.org
	contains "rate limited by smimed: the wait is said" "$T/.err" "rate limited; trying again in 1 s"
	decrypts "rate limited by smimed: bob decrypts" bob
else
	not_ok "smimed started again with lookup_rate = 1" "$(tail -5 "$D.log")"
fi

done_testing
