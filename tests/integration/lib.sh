# Shared helpers for the integration tests: TAP output, exit-code checks and
# a throw-away PKI made with the openssl command line.
#
# Each test script sources this file, calls the checks, and ends with `done_testing`.
set -u

SMIME=${SMIME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/smime}
SRC=${SMIME_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SHARED=${SMIME_SHARED:-$SRC/../shared}
T=$(mktemp -d /tmp/smime-it.XXXXXX)
trap 'rm -rf "$T"' EXIT
export SMIME_PASSPHRASE=test-passphrase
unset SMIME_HOME SMIME_P12_PASSWORD
_n=0
_failed=0

# ok NAME / not_ok NAME [DETAIL]
ok() { _n=$((_n + 1)); echo "ok $_n - $1"; }
not_ok() {
	_n=$((_n + 1)); _failed=$((_failed + 1)); echo "not ok $_n - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /' | head -n 40
	return 0
}
skip() { _n=$((_n + 1)); echo "ok $_n - $1 # SKIP $2"; }

# expect CODE NAME CMD...: run CMD, pass when its exit status is CODE.
expect() {
	local want=$1 name=$2 rc
	shift 2
	"$@" >"$T/.out" 2>"$T/.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name"
	else
		not_ok "$name (exit $rc, wanted $want)" "$(cat "$T/.err")"
	fi
}

# same NAME FILE1 FILE2: byte-identical files.
same() {
	if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1" "$(diff <(od -c "$2" | head -20) <(od -c "$3" | head -20))"; fi
}

# contains NAME FILE PATTERN (grep -E)
contains() {
	if grep -qE -- "$3" "$2"; then ok "$1"; else not_ok "$1" "no /$3/ in: $(head -c 2000 "$2")"; fi
}
lacks() {
	if grep -qE -- "$3" "$2"; then not_ok "$1" "found /$3/ in: $(grep -E -- "$3" "$2" | head -5)"; else ok "$1"; fi
}

done_testing() {
	echo "1..$_n"
	[ "$_failed" -eq 0 ]
}

# The entity (headers from Content-* on, and body) of a message, with CRLF.
entity_of() { # FILE -> stdout: from the first Content- header line on
	awk 'BEGIN{h=1} h && /^\r?$/ {h=0} h && tolower($0) ~ /^content-/ {p=1} h && !/^[ \t]/ && tolower($0) !~ /^content-/ {p=0} !h || p {print}' "$1"
}

# alice_and_bob: a CA and two RSA-2048 users in P=$T/pki, and their
# keystores KA (alice's key, bob's certificate) and KB (the other way round).
alice_and_bob() {
	P=$T/pki
	KA=$T/ks-a
	KB=$T/ks-b
	mkca "$P"
	mkuser "$P" alice alice@example.org rsa2048 dual
	mkuser "$P" bob bob@example.org rsa2048 dual
	"$SMIME" --home "$KA" import --trust --password-file <(echo pw) "$P/alice.p12" "$P/bob.crt" >/dev/null 2>&1
	"$SMIME" --home "$KB" import --trust --password-file <(echo pw) "$P/bob.p12" "$P/alice.crt" >/dev/null 2>&1
}

# mkca DIR: a root CA (EC P-256) in DIR/ca.{key,crt}.
mkca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 3650 -subj "/O=smimed tests/CN=Test Root CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" 2>/dev/null
}

# mkuser DIR NAME EMAIL KEYTYPE USAGE [DAYS_FROM DAYS_TO]
#   KEYTYPE: rsa2048 rsa3072 p256 p384 ed25519
#   USAGE: sign | encrypt | dual
# Writes DIR/NAME.{key,crt,p12} (p12 password "pw").
mkuser() {
	local d=$1 name=$2 email=$3 kt=$4 use=$5 from=${6:-0} to=${7:-365} ku alg
	case $kt in
	rsa2048) alg=(-newkey rsa:2048) ;;
	rsa3072) alg=(-newkey rsa:3072) ;;
	p256) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	p384) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
	ed25519) alg=(-newkey ed25519) ;;
	esac
	case $use in
	sign) ku="digitalSignature,nonRepudiation" ;;
	encrypt) case $kt in p*) ku="keyAgreement" ;; *) ku="keyEncipherment" ;; esac ;;
	dual) case $kt in p*) ku="digitalSignature,keyAgreement" ;; *) ku="digitalSignature,keyEncipherment" ;; esac ;;
	esac
	openssl req -new "${alg[@]}" -nodes -keyout "$d/$name.key" -out "$d/$name.csr" \
		-subj "/O=smimed tests/CN=$name" 2>/dev/null
	cat >"$d/$name.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=emailProtection
subjectAltName=email:$email
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
	local start end
	start=$(date -u -d "@$(( $(date +%s) + from * 86400 - 3600 ))" +%Y%m%d%H%M%SZ)
	end=$(date -u -d "@$(( $(date +%s) + to * 86400 ))" +%Y%m%d%H%M%SZ)
	mkdir -p "$d/db"
	[ -f "$d/db/index" ] || : >"$d/db/index"
	cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $d/db/index
new_certs_dir = $d/db
serial = $d/db/serial
rand_serial = yes
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
CNF
	openssl ca -batch -config "$d/ca.cnf" -cert "$d/ca.crt" -keyfile "$d/ca.key" -notext \
		-startdate "$start" -enddate "$end" -extfile "$d/$name.ext" \
		-in "$d/$name.csr" -out "$d/$name.crt" >/dev/null 2>"$d/$name.err" ||
		{ cat "$d/$name.err" >&2; return 1; }
	openssl pkcs12 -export -inkey "$d/$name.key" -in "$d/$name.crt" -certfile "$d/ca.crt" \
		-passout pass:pw -out "$d/$name.p12" 2>/dev/null
}

# A plain test message from FROM to TO (CRLF line ends).
# Invert the octet at OFFSET of FILE in place (every bit: the file always
# changes, as writing a fixed value would not when the octet held it).
flip_octet() { # FILE OFFSET
	local v
	v=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf '%03o' $((v ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

mkmsg() { # FILE FROM TO [BODY]
	printf 'From: %s\r\nTo: %s\r\nSubject: test message\r\nDate: %s\r\nMessage-ID: <%s@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n' \
		"$2" "$3" "$(date -R)" "$RANDOM$RANDOM" "${4:-Hello from the smimed tests.}" >"$1"
}

# --- helpers of the shared-material tests (corpus.sh, vectors.sh) ---------
rc=0
# run NAME CMD...: run under timeout 20; output in $T/.out, report in $T/.err,
# exit status in $rc; asserts no crash and no hang.
run() {
	local name=$1
	shift
	timeout 20 "$@" >"$T/.out" 2>"$T/.err"
	rc=$?
	if [ "$rc" -eq 124 ]; then
		not_ok "$name: no hang" "timed out after 20 s"
	elif [ "$rc" -ge 128 ]; then
		not_ok "$name: no crash (exit $rc, signal $((rc - 128)))" "$(tail -5 "$T/.err")"
	else
		ok "$name: no crash, no hang"
	fi
}
detail() { printf 'exit %s; stderr: %s' "$rc" "$(grep -v '^    ' "$T/.err" | head -c 1500)"; }
# PASS: exit 0.
is_pass() { [ "$rc" -eq 0 ] && ok "$1: exit 0" || not_ok "$1: exit 0 (got $rc)" "$(detail)"; }
# FAIL: non-zero, never 0 nor 6.
is_fail() {
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 6 ] && [ "$rc" -lt 124 ]; then ok "$1: refused (exit $rc)"; else not_ok "$1: refused, never 0 nor 6 (got $rc)" "$(detail)"; fi
}
# WARN PATTERN: exit 6 or 1 (never 0) and the warning text in the report.
is_warn() {
	if [ "$rc" -eq 6 ] || [ "$rc" -eq 1 ]; then ok "$1: warned or refused (exit $rc)"; else not_ok "$1: exit 6 or 1, never 0 (got $rc)" "$(detail)"; fi
	if grep -qiE -- "$2" "$T/.err"; then ok "$1: the report says /$2/"; else not_ok "$1: the report says /$2/" "$(detail)"; fi
}
# in_out NAME TEXT: a line of the output is exactly TEXT (CR ignored).
in_out() {
	if tr -d '\r' <"$T/.out" | grep -qxF -- "$2"; then ok "$1: output has '$2'"; else not_ok "$1: output has '$2'" "output: $(head -c 600 "$T/.out")"; fi
}
in_err() { if grep -qiE -- "$2" "$T/.err"; then ok "$1: report says /$2/"; else not_ok "$1: report says /$2/" "$(detail)"; fi; }
# counts NAME HOME CERTS KEYS: the keystore lists CERTS certificates, KEYS of them with a key.
counts() {
	local c k
	timeout 20 "$SMIME" --home "$2" --json list >"$T/.list" 2>/dev/null
	c=$(grep -c '"fingerprint"' "$T/.list")
	k=$(grep -c '"key": true' "$T/.list")
	if [ "$c" -eq "$3" ] && [ "$k" -eq "$4" ]; then ok "$1: $3 certificate(s), $4 key(s) in the keystore"; else
		not_ok "$1: $3 certificate(s), $4 key(s) in the keystore (got $c, $k)" "$(cat "$T/.list" | head -c 1500)"; fi
}

# start_fake VAR DATA [CERT KEY]: run $T/fake.py (a test's fake HTTP
# server: PORT DATA LOG [CERT KEY]) on a free port, https with CERT and KEY;
# its URL in VAR, its process in FAKE_PIDS (the test stops them).
start_fake() {
	local var=$1 data=$2 port i scheme=http
	shift 2
	port=$(free_port)
	[ $# -gt 0 ] && scheme=https
	python3 "$T/fake.py" "$port" "$data" "$T/fake.log" "$@" 2>>"$T/fake.err" &
	FAKE_PIDS+=($!)
	for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
	printf -v "$var" '%s://127.0.0.1:%s' "$scheme" "$port"
}

# ---- the service -------------------------------------------------------
SMIMED=${SMIMED:-$(dirname "$SMIME")/smimed}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_smimed DIR [ARGS...]: run smimed on a free loopback port with data in
# DIR; sets SVC_PID, SVC_PORT, SVC_URL, SVC_TOKEN; its log is DIR.log.
# Returns non-zero when it does not answer /healthz within 30 s.
start_smimed() {
	local dir=$1 i
	shift
	SVC_PORT=${SVC_PORT_FIXED:-$(free_port)}
	SVC_URL=http://127.0.0.1:$SVC_PORT
	"$SMIMED" --data "$dir" --listen "127.0.0.1:$SVC_PORT" "$@" >"$dir.out" 2>>"$dir.log" &
	SVC_PID=$!
	for i in $(seq 1 300); do
		if curl -sf -o /dev/null "$SVC_URL/healthz" 2>/dev/null; then
			SVC_TOKEN=$(cat "$dir/admin.token" 2>/dev/null)
			export SMIME_SERVER=$SVC_URL SMIME_TOKEN=$SVC_TOKEN
			return 0
		fi
		kill -0 "$SVC_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_smimed: SIGTERM and wait; returns smimed's exit status.
stop_smimed() {
	local rc=0
	[ -n "${SVC_PID:-}" ] || return 0
	kill -TERM "$SVC_PID" 2>/dev/null
	wait "$SVC_PID" || rc=$?
	SVC_PID=
	return $rc
}

# api METHOD PATH [JSON]: the service's answer body in $T/.body, status echoed.
api() {
	local method=$1 path=$2 body=${3-}
	if [ -n "$body" ]; then
		curl -s -o "$T/.body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $SVC_TOKEN" \
			-H 'Content-Type: application/json' --data-binary "$body" "$SVC_URL$path"
	else
		curl -s -o "$T/.body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $SVC_TOKEN" \
			"$SVC_URL$path"
	fi
}

# status_is NAME WANT METHOD PATH [JSON]: pass when the answer has status WANT
# and, for 4xx/5xx, the JSON error body.
status_is() {
	local name=$1 want=$2 got
	shift 2
	got=$(api "$@")
	if [ "$got" != "$want" ]; then
		not_ok "$name (HTTP $got, wanted $want)" "$(head -c 600 "$T/.body")"
	elif [ "$want" -ge 400 ] && ! jq -e '.error.code and .error.message' "$T/.body" >/dev/null 2>&1; then
		not_ok "$name (HTTP $got without a JSON error body)" "$(head -c 600 "$T/.body")"
	else
		ok "$name"
	fi
}

# ---- the directory (OpenLDAP slapd) -------------------------------------
# No test looks anything up in a directory it did not start.
unset SMIME_LDAP
SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}

# have_slapd: slapd and the LDAP tools are installed (scripts/install-deps.sh).
have_slapd() {
	[ -x "$SLAPD" ] && [ -x "$SLAPADD" ] &&
		[ -f /etc/ldap/schema/inetorgperson.ldif ] && command -v ldapadd >/dev/null
}

# start_slapd DIR: a slapd of our own, as the current user, on a free
# loopback port: schemas core, cosine and inetorgperson, one mdb database
# dc=example,dc=org holding its base entry, a rootdn with a password, the
# default access (everyone reads).  Its configuration is DIR/slapd.d (made by
# slapadd -n0 from DIR/config.ldif), its data DIR/db, its pid DIR/slapd.pid.
# Sets SLAPD_URL SLAPD_PID SLAPD_BASE SLAPD_ADMIN_DN SLAPD_ADMIN_PW and
# SLAPD_DIR; the slapd is stopped when the test script exits, whatever
# happens.  Returns non-zero when it does not answer within 30 s.  One at a
# time: stop_slapd before starting another.
# With SLAPD_TLS_CERT and SLAPD_TLS_KEY (PEM files) set, it also speaks
# StartTLS on SLAPD_URL and TLS on SLAPD_LDAPS_URL (another free port).
start_slapd() {
	local dir=$1 port i tls= urls
	mkdir -p "$dir/db" "$dir/slapd.d"
	dir=$(cd "$dir" && pwd)
	port=$(free_port)
	SLAPD_DIR=$dir
	SLAPD_URL=ldap://127.0.0.1:$port
	SLAPD_BASE=dc=example,dc=org
	SLAPD_ADMIN_DN=cn=admin,$SLAPD_BASE
	SLAPD_ADMIN_PW=admin-secret-$RANDOM
	SLAPD_PID=
	SLAPD_LDAPS_URL=
	urls="$SLAPD_URL/"
	if [ -n "${SLAPD_TLS_CERT:-}" ] && [ -n "${SLAPD_TLS_KEY:-}" ]; then
		cp "$SLAPD_TLS_CERT" "$dir/tls.crt"
		cp "$SLAPD_TLS_KEY" "$dir/tls.key"
		chmod 600 "$dir/tls.key"
		tls="olcTLSCertificateFile: $dir/tls.crt
olcTLSCertificateKeyFile: $dir/tls.key"
		local tls_port=$port
		while [ "$tls_port" = "$port" ]; do tls_port=$(free_port); done
		SLAPD_LDAPS_URL=ldaps://127.0.0.1:$tls_port
		urls="$urls $SLAPD_LDAPS_URL/"
	fi
	cat >"$dir/config.ldif" <<CONF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/slapd.pid
olcArgsFile: $dir/slapd.args
$tls

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SLAPD_BASE
olcRootDN: $SLAPD_ADMIN_DN
olcRootPW: $SLAPD_ADMIN_PW
olcDbDirectory: $dir/db
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: mail eq
CONF
	"$SLAPADD" -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 ||
		{ cat "$dir/slapadd.log" >&2; return 1; }
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n' \
		"$SLAPD_BASE" >"$dir/base.ldif"
	"$SLAPADD" -F "$dir/slapd.d" -b "$SLAPD_BASE" -l "$dir/base.ldif" >>"$dir/slapadd.log" 2>&1 ||
		{ cat "$dir/slapadd.log" >&2; return 1; }
	trap '_slapd_exit' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"$SLAPD" -h "$urls" -F "$dir/slapd.d" >"$dir/slapd.log" 2>&1 ||
		{ cat "$dir/slapd.log" >&2; return 1; }
	_slapd_wait
}

# _slapd_wait: until the slapd just started answers (30 s); sets SLAPD_PID.
_slapd_wait() {
	local i
	for i in $(seq 1 300); do
		[ -z "$SLAPD_PID" ] && [ -s "$SLAPD_DIR/slapd.pid" ] && SLAPD_PID=$(cat "$SLAPD_DIR/slapd.pid")
		if [ -n "$SLAPD_PID" ] && ldapsearch -x -LLL -H "$SLAPD_URL" -b "$SLAPD_BASE" -s base \
			dn >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# stop_slapd: SIGTERM, and wait (at most 10 s, then SIGKILL) until it is gone.
stop_slapd() {
	local i
	[ -n "${SLAPD_PID:-}" ] || return 0
	kill -TERM "$SLAPD_PID" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$SLAPD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$SLAPD_PID" 2>/dev/null && kill -KILL "$SLAPD_PID" 2>/dev/null
	SLAPD_PID=
	return 0
}

# restart_slapd: start the slapd that stop_slapd stopped again, on the same
# URL with the same configuration and data.
restart_slapd() {
	rm -f "$SLAPD_DIR/slapd.pid"
	"$SLAPD" -h "$SLAPD_URL/" -F "$SLAPD_DIR/slapd.d" >>"$SLAPD_DIR/slapd.log" 2>&1 || return 1
	_slapd_wait
}

_slapd_exit() {
	local rc=$?
	stop_slapd
	rm -rf "$T"
	exit $rc
}

# ldap_admin TOOL ARGS...: ldapadd, ldapmodify, ldapdelete as the rootdn.
ldap_admin() {
	local tool=$1
	shift
	"$tool" -x -H "$SLAPD_URL" -D "$SLAPD_ADMIN_DN" -w "$SLAPD_ADMIN_PW" "$@"
}
