#!/usr/bin/env bash
# The benchmark of issue 4: smime against `openssl cms` (and gpgsm where it
# can do the same operation) on generated messages of 1 KiB .. 512 MiB.
# Wall time, throughput and peak resident memory of every operation, every
# result checked, and bench/RESULTS.md written.  See bench/README.md.
#
#   bash bench/run.sh [--sizes 1K,1M,64M,512M] [--quick] [--runs N]
#                     [--variants mixed,text] [--history N] [--no-gpgsm]
#                     [--smime PATH] [--out FILE] [--keep]
# The whole script is one { } group, read before it runs: editing or
# replacing this file during a run does not disturb the run.
{
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="bash bench/run.sh${*:+ $*}"
SIZES=1K,1M,64M,512M
RUNS=
QUICK=0
VARIANTS=mixed,text
HISTORY=1000
USE_GPGSM=1
SMIME_SRC=$ROOT/build/smime
OUT=$ROOT/bench/RESULTS.md
KEEP=0

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) SIZES=$2; shift ;;
	--sizes=*) SIZES=${1#*=} ;;
	--quick) QUICK=1 ;;
	--runs) RUNS=$2; shift ;;
	--runs=*) RUNS=${1#*=} ;;
	--variants) VARIANTS=$2; shift ;;
	--variants=*) VARIANTS=${1#*=} ;;
	--history) HISTORY=$2; shift ;;
	--history=*) HISTORY=${1#*=} ;;
	--no-gpgsm) USE_GPGSM=0 ;;
	--smime) SMIME_SRC=$2; shift ;;
	--smime=*) SMIME_SRC=${1#*=} ;;
	--out) OUT=$2; shift ;;
	--out=*) OUT=${1#*=} ;;
	--keep) KEEP=1 ;;
	-h | --help) usage 0 ;;
	*) echo "bench: unknown option $1" >&2; usage 2 >&2 ;;
	esac
	shift
done
if [ $QUICK = 1 ]; then
	case " $CMDLINE " in *" --sizes"*) ;; *) SIZES=1K,1M,16M ;; esac
	: "${RUNS:=2}"
fi
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
[ -x "$SMIME_SRC" ] || { echo "bench: no $SMIME_SRC (make build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (apt-get install time; make deps)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench: python3 missing" >&2; exit 2; }
if [ $USE_GPGSM = 1 ] && ! command -v gpgsm >/dev/null; then USE_GPGSM=0; GPGSM_NOTE="gpgsm not installed"; fi

T=$(mktemp -d /tmp/smime-bench.XXXXXX)
chmod 700 "$T"
cleanup() {
	[ -n "${GNUPGHOME:-}" ] && gpgconf --kill all >/dev/null 2>&1
	if [ $KEEP = 1 ]; then echo "bench: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export SMIME_PASSPHRASE=bench-passphrase
unset SMIME_HOME SMIME_P12_PASSWORD
export LC_ALL=C
T0=$EPOCHREALTIME

# build/smime may be relinked while we run: benchmark a private copy.
S=$T/smime
cp "$SMIME_SRC" "$S"
since() { awk -v a="$2" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; } # since T1 T2: T2 - T1
log() { printf '[%6.0fs] %s\n' "$(since "$T0" "$EPOCHREALTIME")" "$*" >&2; }

bytes_of() { # 1K 16M 1G 123 -> bytes
	local v=${1^^}
	case $v in
	*K) echo $(( ${v%K} * 1024 )) ;;
	*M) echo $(( ${v%M} * 1048576 )) ;;
	*G) echo $(( ${v%G} * 1073741824 )) ;;
	*) echo $(( v )) ;;
	esac
}

# --- the PKI ------------------------------------------------------------------
log "PKI, keystores and gpgsm home in $T"
P=$T/pki
mkdir -p "$P"
echo pw >"$T/pw"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$P/ca.key" -out "$P/ca.crt" -days 3650 -subj "/O=smimed bench/CN=Bench Root CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" 2>/dev/null
mkdir -p "$P/db" && : >"$P/db/index"
cat >"$P/ca.cnf" <<CNF
[ca]
default_ca = bench
[bench]
database = $P/db/index
new_certs_dir = $P/db
rand_serial = yes
default_md = sha256
default_days = 365
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
CNF
mkuser() { # NAME EMAIL rsa3072|p256 KEYUSAGE
	local alg
	case $3 in rsa3072) alg=(-newkey rsa:3072) ;; p256) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;; esac
	openssl req -new "${alg[@]}" -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/O=smimed bench/CN=$1" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,%s\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' \
		"$4" "$2" >"$P/$1.ext"
	openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -notext \
		-extfile "$P/$1.ext" -in "$P/$1.csr" -out "$P/$1.crt" >/dev/null 2>&1 || { echo "bench: cannot issue $1" >&2; exit 1; }
	openssl pkcs12 -export -inkey "$P/$1.key" -in "$P/$1.crt" -certfile "$P/ca.crt" -passout pass:pw -out "$P/$1.p12" 2>/dev/null
}
mkuser alice alice@example.org rsa3072 digitalSignature,nonRepudiation   # the sender
mkuser bob bob@example.org rsa3072 keyEncipherment                        # RSA-3072 recipient
mkuser carol carol@example.org p256 keyAgreement                          # EC P-256 recipient

imp() { # HOME FILE...
	local h=$1
	shift
	"$S" --home "$h" import --trust --password-file "$T/pw" "$@" >"$T/imp.log" 2>&1 ||
		{ echo "bench: smime import into $h failed:" >&2; cat "$T/imp.log" >&2; exit 1; }
}
KA=$T/ks-alice KB=$T/ks-bob KC=$T/ks-carol KH=$T/ks-carol-history
imp "$KA" "$P/alice.p12" "$P/bob.crt" "$P/carol.crt"
imp "$KB" "$P/bob.p12" "$P/alice.crt"
imp "$KC" "$P/carol.p12" "$P/alice.crt"
imp "$KH" "$P/carol.p12" "$P/alice.crt"

# The history: HISTORY-1 more P-256 encryption keys of carol@example.org,
# expired one after the other (as years of yearly renewals would leave them).
# One PEM bundle of keys and certificates written by python3-cryptography (or
# an openssl loop without it), imported in one `smime import` call.
log "history of $HISTORY keys"
t=$EPOCHREALTIME
N_HIST=$((HISTORY - 1))
if python3 -c 'import cryptography' 2>/dev/null; then
	HIST_HOW="python3-cryptography, one PEM bundle"
	python3 - "$P" carol@example.org "$N_HIST" "$T/history.pem" <<'PY'
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
cadir, email, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ca_key = serialization.load_pem_private_key(open(cadir + '/ca.key', 'rb').read(), None)
ca = x509.load_pem_x509_certificate(open(cadir + '/ca.crt', 'rb').read())
now = datetime.datetime.now(datetime.timezone.utc)
aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
with open(out, 'wb') as f:
    for i in range(n):
        k = ec.generate_private_key(ec.SECP256R1())
        start = now - datetime.timedelta(days=10 * (n - i) + 400)
        c = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'smimed bench'),
                                      x509.NameAttribute(NameOID.COMMON_NAME, 'carol history %d' % i)]))
             .issuer_name(ca.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, True, False, False, False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
             .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
             .add_extension(aki, critical=False)
             .sign(ca_key, hashes.SHA256()))
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
        f.write(c.public_bytes(serialization.Encoding.PEM))
PY
else
	HIST_HOW="openssl loop, one PEM bundle"
	: >"$T/history.pem"
	for i in $(seq 1 "$N_HIST"); do
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/h.key" -out "$T/h.csr" \
			-subj "/O=smimed bench/CN=carol history $i" 2>/dev/null
		openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.crt" -keyfile "$P/ca.key" -notext \
			-startdate "$(date -u -d "@$(( $(date +%s) - (N_HIST - i) * 864000 - 400 * 86400 ))" +%Y%m%d%H%M%SZ)" \
			-enddate "$(date -u -d "@$(( $(date +%s) - (N_HIST - i) * 864000 - 35 * 86400 ))" +%Y%m%d%H%M%SZ)" \
			-extfile "$P/carol.ext" -in "$T/h.csr" -out "$T/h.crt" >/dev/null 2>&1
		cat "$T/h.key" "$T/h.crt" >>"$T/history.pem"
	done
fi
HIST_GEN=$(since $t $EPOCHREALTIME)
t=$EPOCHREALTIME
imp "$KH" "$T/history.pem"
HIST_IMPORT=$(since $t $EPOCHREALTIME)
HIST_KEYS=$("$S" --home "$KH" list 2>/dev/null | grep -c 'carol')
log "history: generated in ${HIST_GEN}s, imported in ${HIST_IMPORT}s ($HIST_KEYS carol certificates in the keystore)"

# gpgsm: a throw-away GNUPGHOME, no CRLs, loopback passphrases, the CA trusted.
GPGSM_NOTE=${GPGSM_NOTE:-}
if [ $USE_GPGSM = 1 ]; then
	export GNUPGHOME=$T/gnupg
	mkdir -m 700 "$GNUPGHOME"
	echo disable-crl-checks >"$GNUPGHOME/gpgsm.conf"
	echo allow-loopback-pinentry >"$GNUPGHOME/gpg-agent.conf"
	echo "$(openssl x509 -in "$P/ca.crt" -noout -fingerprint -sha1 | cut -d= -f2) S relax" >"$GNUPGHOME/trustlist.txt"
	# gpgsm's wrapper: passphrase "pw" on fd 3, status lines appended to $T/gst.
	printf '#!/bin/sh\nexec gpgsm --batch --pinentry-mode loopback --passphrase-fd 3 --status-fd 4 "$@" 3<"%s" 4>>"%s"\n' \
		"$T/pw" "$T/gst" >"$T/G"
	chmod +x "$T/G"
	G=$T/G
	gpgsm --batch --import "$P/ca.crt" >/dev/null 2>&1
	for u in alice bob; do # gpgsm 2.2 reads the legacy (3DES, SHA-1 MAC) PKCS#12
		openssl pkcs12 -export -inkey "$P/$u.key" -in "$P/$u.crt" -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
			-macalg sha1 -passout pass:pw -out "$P/$u-legacy.p12" 2>/dev/null
		"$G" --import "$P/$u-legacy.p12" >/dev/null 2>"$T/gimp.log"
		grep -q "secret keys imported: 1" "$T/gimp.log" ||
			{ USE_GPGSM=0; GPGSM_NOTE="gpgsm could not import $u's key: $(head -c 300 "$T/gimp.log")"; }
	done
fi

# --- measuring ----------------------------------------------------------------
R=$T/results.tsv
: >"$R"
# bench SIZE VARIANT OP TOOL NRUNS CHECK OUTFILE -- CMD...
#   runs CMD NRUNS times (OUTFILE removed before each), each under
#   /usr/bin/time; a run is correct when CMD exits 0 and CHECK (a shell
#   snippet, $OUT is the output) succeeds.  Appends a line to $R.
bench() {
	local size=$1 variant=$2 op=$3 tool=$4 n=$5 check=$6 out=$7 i
	shift 8
	row_start
	for ((i = 0; i < n; i++)); do
		timed_run A "$check" "$out" "$@" || break
	done
	row_end A "$size" "$variant" "$op" "$tool"
}
# bench_pair SIZE VARIANT OP-A OP-B NRUNS CHECK OUTFILE CMD-A... -- CMD-B...:
#   two smime commands compared with each other, run alternately (A, B, A,
#   B, ...) so that the state of the machine (page cache, writeback of
#   earlier outputs) weighs on both alike; a row for each.
bench_pair() {
	local size=$1 variant=$2 opa=$3 opb=$4 n=$5 check=$6 out=$7 i a=() b=()
	shift 7
	while [ $# -gt 0 ] && [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	row_start
	for ((i = 0; i < n; i++)); do
		timed_run A "$check" "$out" "${a[@]}" || break
		timed_run B "$check" "$out" "${b[@]}" || break
	done
	row_end A "$size" "$variant" "$opa" smime
	row_end B "$size" "$variant" "$opb" smime
}
# One row's runs are gathered in arrays per side (A, B).
row_start() { times_A=() rsss_A=() status_A=ok note_A= times_B=() rsss_B=() status_B=ok note_B=; }
timed_run() { # SIDE CHECK OUTFILE CMD...: one timed run; non-zero when it failed
	local side=$1 check=$2 out=$3 rc t1 t2 rss
	shift 3
	rm -f "$out" "$T/gst"
	sync
	t1=$EPOCHREALTIME
	/usr/bin/time -f '%M' -o "$T/tm" "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
	rc=$?
	t2=$EPOCHREALTIME
	rss=$(tail -1 "$T/tm")
	eval "times_$side+=(\"\$(since \$t1 \$t2)\"); rsss_$side+=(\"\$rss\")"
	if [ $rc -ne 0 ]; then
		eval "status_$side=FAILED"
		printf -v "note_$side" '%s' "exit $rc: $(grep -v '^ ' "$T/stderr" | grep -v '^$' | head -2 | tr '\n\t' '  ' | head -c 200)"
		return 1
	fi
	if ! OUT=$out bash -c "$check" >/dev/null 2>&1; then
		eval "status_$side=FAILED"
		printf -v "note_$side" '%s' "wrong result: $check"
		return 1
	fi
	return 0
}
row_end() { # SIDE SIZE VARIANT OP TOOL: append the row to $R
	local side=$1 size=$2 variant=$3 op=$4 tool=$5 times rsss status note
	eval "times=\"\${times_$side[*]}\" rsss=\"\${rsss_$side[*]}\" status=\$status_$side note=\$note_$side"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$MSGBYTES" "$variant" "$op" "$tool" "$status" \
		"$times" "$rsss" "$note" >>"$R"
	log "$size $variant $op $tool: $status $times s, $rsss KiB $note"
}
# xcheck SIZE VARIANT OP NOTE CMD...: an untimed cross-check of smime's output
# by openssl; a failure is recorded and marks smime's row FAILED in the report.
xcheck() {
	local size=$1 variant=$2 op=$3 what=$4
	shift 4
	if ! "$@" >/dev/null 2>"$T/xerr"; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$MSGBYTES" "$variant" "$op" smime XFAIL "" "" \
			"$what: $(head -c 200 "$T/xerr" | tr '\n' ' ')" >>"$R"
		log "$size $variant $op: cross-check FAILED: $what"
	fi
}

# mkmsg VARIANT BYTES FILE: an RFC 5322 message of about BYTES bytes, CRLF.
#   mixed: multipart/mixed, a short text part and a random binary attachment
#          in base64;  text: text/plain only.
mkmsg() {
	local variant=$1 want=$2 f=$3 hdr body
	hdr=$(printf 'From: alice@example.org\r\nTo: undisclosed-recipients:;\r\nSubject: smimed benchmark, %s, %s bytes\r\nDate: %s\r\nMessage-ID: <bench.%s@example.org>\r\nMIME-Version: 1.0' \
		"$variant" "$want" "$(date -R)" "$RANDOM$RANDOM")
	body='Hello,\r\n\r\nthis message was generated by the smimed benchmark (bench/run.sh).\r\nRegards, Alice\r\n'
	if [ "$variant" = mixed ]; then
		{
			printf '%s\r\nContent-Type: multipart/mixed; boundary="=_bench_boundary_7f3a9c"\r\n\r\n' "$hdr"
			printf 'This is a multi-part message in MIME format.\r\n--=_bench_boundary_7f3a9c\r\n'
			printf 'Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'"$body"
			printf '\r\n--=_bench_boundary_7f3a9c\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
			printf 'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\n'
		} >"$f"
		local have raw
		have=$(( $(stat -c %s "$f") + 32 ))
		raw=$(( (want - have) * 57 / 78 ))
		[ $raw -lt 57 ] && raw=57
		head -c "$raw" /dev/urandom | base64 -w 76 | sed 's/$/\r/' >>"$f"
		printf '\r\n--=_bench_boundary_7f3a9c--\r\n' >>"$f"
	else
		{
			printf '%s\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' "$hdr"
			printf "$body"
		} >"$f"
		local have lines
		have=$(stat -c %s "$f")
		local line=$'The quick brown fox jumps over the lazy dog; pack my box with five dozen.\r'
		lines=$(( (want - have) / (${#line} + 1) ))
		[ $lines -lt 1 ] && lines=1
		yes "$line" | head -n "$lines" >>"$f"
	fi
}

OSSL_SPEED=$(openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null | tail -1 | awk '{print $NF}' | tr -d k)
log "openssl speed -evp aes-256-gcm -bytes 16384: ${OSSL_SPEED} kB/s"

W=$T/w
mkdir -p "$W"
IFS=, read -ra SIZE_LIST <<<"$SIZES"
IFS=, read -ra VARIANT_LIST <<<"$VARIANTS"
for size in "${SIZE_LIST[@]}"; do
	want=$(bytes_of "$size")
	if [ -n "$RUNS" ]; then n=$RUNS; elif [ "$want" -ge $((512 * 1048576)) ]; then n=1; else n=3; fi
	for variant in "${VARIANT_LIST[@]}"; do
		M=$W/msg.eml
		log "$size $variant: generating the message"
		mkmsg "$variant" "$want" "$M"
		MSGBYTES=$(stat -c %s "$M")
		cmpM="cmp -s '$M' \"\$OUT\""
		nonempty='test -s "$OUT"'

		# sign and verify, clear and opaque
		for form in clear opaque; do
			o=(); oo=(); go=(--detach-sign)
			[ $form = opaque ] && { o=(--opaque); oo=(-nodetach); go=(); }
			bench "$size" "$variant" "sign-$form" smime "$n" "$nonempty" "$W/s-smime" -- \
				"$S" -q --home "$KA" sign "${o[@]}" -i "$M" -o "$W/s-smime"
			xcheck "$size" "$variant" "sign-$form" "openssl cms -verify of smime's output" \
				openssl cms -verify -in "$W/s-smime" -CAfile "$P/ca.crt" -out /dev/null
			bench "$size" "$variant" "verify-$form" smime "$n" "$cmpM" "$W/v-smime" -- \
				"$S" -q --home "$KB" verify --no-harvest -i "$W/s-smime" -o "$W/v-smime"
			rm -f "$W/s-smime" "$W/v-smime"
			bench "$size" "$variant" "sign-$form" openssl "$n" "$nonempty" "$W/s-openssl" -- \
				openssl cms -sign -binary -stream "${oo[@]}" -in "$M" -signer "$P/alice.crt" -inkey "$P/alice.key" -out "$W/s-openssl"
			bench "$size" "$variant" "verify-$form" openssl "$n" "$cmpM" "$W/v-openssl" -- \
				openssl cms -verify -binary -in "$W/s-openssl" -CAfile "$P/ca.crt" -out "$W/v-openssl"
			rm -f "$W/s-openssl" "$W/v-openssl"
			if [ $USE_GPGSM = 1 ]; then # bare DER CMS: gpgsm has no MIME
				bench "$size" "$variant" "sign-$form" gpgsm "$n" "$nonempty" "$W/s-gpgsm" -- \
					"$G" -u alice@example.org --sign "${go[@]}" -o "$W/s-gpgsm" "$M"
				if [ $form = clear ]; then
					bench "$size" "$variant" "verify-$form" gpgsm "$n" "grep -q GOODSIG '$T/gst'" "$W/v-gpgsm" -- \
						"$G" --verify "$W/s-gpgsm" "$M"
				else
					bench "$size" "$variant" "verify-$form" gpgsm "$n" "grep -q GOODSIG '$T/gst' && $cmpM" "$W/v-gpgsm" -- \
						"$G" --verify -o "$W/v-gpgsm" "$W/s-gpgsm"
				fi
				rm -f "$W/s-gpgsm" "$W/v-gpgsm"
			fi
		done

		# encrypt and decrypt: AES-256-GCM and AES-256-CBC, to RSA-3072 and to P-256
		for cipher in gcm cbc; do
			for kt in rsa ec; do
				case $kt in rsa) r=bob kr=$KB ;; ec) r=carol kr=$KC ;; esac
				op=$cipher-$kt
				bench "$size" "$variant" "encrypt-$op" smime "$n" "$nonempty" "$W/e-smime" -- \
					"$S" -q --home "$KA" encrypt --cipher "aes-256-$cipher" --to $r@example.org --no-self -i "$M" -o "$W/e-smime"
				xcheck "$size" "$variant" "encrypt-$op" "openssl cms -decrypt of smime's output" \
					openssl cms -decrypt -binary -in "$W/e-smime" -recip "$P/$r.crt" -inkey "$P/$r.key" -out /dev/null
				if [ $op = gcm-ec ] && [ "$variant" = "${VARIANT_LIST[0]}" ]; then
					# 1 key and the history of HISTORY keys, alternately; below
					# 512 MiB at least 5 runs each, as the minimum is compared
					np=$n
					[ "$(bytes_of "$size")" -lt $((512 << 20)) ] && [ "$np" -lt 5 ] && np=5
					bench_pair "$size" "$variant" "decrypt-$op" "decrypt-$op/${HISTORY}keys" "$np" "$cmpM" "$W/d-smime" \
						"$S" -q --home "$kr" decrypt -i "$W/e-smime" -o "$W/d-smime" -- \
						"$S" -q --home "$KH" decrypt -i "$W/e-smime" -o "$W/d-smime"
				else
					bench "$size" "$variant" "decrypt-$op" smime "$n" "$cmpM" "$W/d-smime" -- \
						"$S" -q --home "$kr" decrypt -i "$W/e-smime" -o "$W/d-smime"
				fi
				rm -f "$W/e-smime" "$W/d-smime"
				bench "$size" "$variant" "encrypt-$op" openssl "$n" "$nonempty" "$W/e-openssl" -- \
					openssl cms -encrypt -binary -stream "-aes-256-$cipher" -in "$M" -recip "$P/$r.crt" -out "$W/e-openssl"
				bench "$size" "$variant" "decrypt-$op" openssl "$n" "$cmpM" "$W/d-openssl" -- \
					openssl cms -decrypt -binary -in "$W/e-openssl" -recip "$P/$r.crt" -inkey "$P/$r.key" -out "$W/d-openssl"
				rm -f "$W/e-openssl" "$W/d-openssl"
				if [ $USE_GPGSM = 1 ] && [ $op = cbc-rsa ]; then # gpgsm 2.2: no GCM, no ECDH recipients
					bench "$size" "$variant" "encrypt-$op" gpgsm "$n" "$nonempty" "$W/e-gpgsm" -- \
						"$G" --cipher-algo AES256 -r bob@example.org --encrypt -o "$W/e-gpgsm" "$M"
					bench "$size" "$variant" "decrypt-$op" gpgsm "$n" "$cmpM" "$W/d-gpgsm" -- \
						"$G" --decrypt -o "$W/d-gpgsm" "$W/e-gpgsm"
					rm -f "$W/e-gpgsm" "$W/d-gpgsm"
				fi
			done
		done

		# open: sign then encrypt (clear-signed inside AES-256-GCM to bob)
		if "$S" -q --home "$KA" encrypt --sign --to bob@example.org --no-self -i "$M" -o "$W/se" 2>"$T/se.err"; then
			bench "$size" "$variant" open smime "$n" "$cmpM" "$W/o-smime" -- \
				"$S" -q --home "$KB" open --no-harvest -i "$W/se" -o "$W/o-smime"
		else
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$MSGBYTES" "$variant" open smime FAILED "" "" \
				"encrypt --sign failed: $(head -c 200 "$T/se.err" | tr '\n' ' ')" >>"$R"
		fi
		rm -f "$W/se" "$W/o-smime" "$M"
	done
done
ELAPSED=$(since $T0 $EPOCHREALTIME)

# --- the report ---------------------------------------------------------------
log "writing $OUT"
SMIME_VERSION=$("$S" --version 2>&1 | head -1)
GIT_HEAD=$(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-100)
GIT_DIRTY=$(git -C "$ROOT" status --short -- lib cli include meson.build 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
export SMIME_VERSION GIT_HEAD GIT_DIRTY CMDLINE ELAPSED OSSL_SPEED HIST_GEN HIST_IMPORT HIST_HOW HIST_KEYS HISTORY \
	USE_GPGSM GPGSM_NOTE SIZES RUNS QUICK
python3 "$ROOT/bench/report.py" "$R" >"$T/section.md" && python3 "$ROOT/bench/merge.py" messages "$OUT" <"$T/section.md"
log "done in ${ELAPSED}s: $OUT"
grep -q $'\tFAILED\t\|\tXFAIL\t' "$R" && exit 1
exit 0
}
