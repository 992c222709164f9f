#!/usr/bin/env bash
# The lookup benchmark of issue 6: GET /api/v1/lookup (the public address
# book) against 10,000 users with a certificate each, driven by wrk on
# loopback; target 20,000 lookups/s with p99 under 5 ms on 2 cores.
# Writes the "lookup" section of bench/RESULTS.md.  See bench/README.md.
#
#   bash bench/lookup.sh [--users N] [--seconds N] [--out FILE] [--smimed PATH]
{
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="bash bench/lookup.sh${*:+ $*}"
USERS=10000
SECONDS_RUN=10
OUT=$ROOT/bench/RESULTS.md
SMIMED_SRC=$ROOT/build/smimed
while [ $# -gt 0 ]; do
	case $1 in
	--users) USERS=$2; shift ;;
	--seconds) SECONDS_RUN=$2; shift ;;
	--out) OUT=$2; shift ;;
	--smimed) SMIMED_SRC=$2; shift ;;
	-h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
for tool in wrk curl jq openssl python3; do
	command -v $tool >/dev/null || { echo "bench: $tool missing (make deps)" >&2; exit 2; }
done
[ -x "$SMIMED_SRC" ] || { echo "bench: no $SMIMED_SRC (make build first)" >&2; exit 2; }
T=$(mktemp -d /tmp/smimed-lookup.XXXXXX)
trap '[ -n "${PID:-}" ] && kill -TERM $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
cp "$SMIMED_SRC" "$T/smimed"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
START=$(date +%s)
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
URL=http://127.0.0.1:$P
# The benchmark's client is one address: its rate limit and connection limit are lifted.
SMIMED_LOOKUP_RATE=1000000 SMIMED_LOOKUP_BURST=10000000 SMIMED_PER_IP_CONNECTION_LIMIT=4096 \
	"$T/smimed" --data "$T/data" --listen "127.0.0.1:$P" >"$T/out" 2>"$T/log" &
PID=$!
for i in $(seq 1 300); do curl -sf -o /dev/null "$URL/healthz" && break; sleep 0.1; done
TOKEN=$(cat "$T/data/admin.token")

log "making $USERS users, each with an encryption certificate"
python3 - "$URL" "$TOKEN" "$USERS" "$T" <<'PY'
import http.client, json, subprocess, sys, urllib.parse
url, token, n, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(host.hostname, host.port)
h = {"Authorization": "Bearer " + token}
csv = "email,name\n" + "".join(f"user{i}@example.org,User {i}\n" for i in range(n))
for start in range(0, n, 5000):
    part = "email,name\n" + "".join(f"user{i}@example.org,User {i}\n" for i in range(start, min(n, start + 5000)))
    c.request("POST", "/api/v1/users/import", part, {**h, "Content-Type": "text/csv"})
    r = c.getresponse(); body = json.loads(r.read())
    assert r.status == 200 and body["failed"] == 0, body
subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", tmp + "/k", "-subj", "/CN=x", "-out", tmp + "/csr"],
               check=True, capture_output=True)
csr = open(tmp + "/csr").read()
for i in range(n):
    c.request("POST", "/api/v1/certificates",
              json.dumps({"user": f"user{i}@example.org", "profile": "encryption", "csr": csr}),
              {**h, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY
[ $? = 0 ] || { log "making the users failed"; exit 1; }
code=$(curl -s -o "$T/one.json" -w '%{http_code}' "$URL/api/v1/lookup?email=user42@example.org")
checked=$([ "$code" = 200 ] && jq -e '.encryption.pem | startswith("-----BEGIN CERTIFICATE")' "$T/one.json" >/dev/null && echo checked || echo FAILED)
cat >"$T/lookup.lua" <<LUA
math.randomseed(os.time())
request = function()
	return wrk.format("GET", "/api/v1/lookup?email=user" .. math.random(0, $USERS - 1) .. "@example.org")
end
LUA
cat >"$T/paced.lua" <<LUA
math.randomseed(os.time())
request = function()
	return wrk.format("GET", "/api/v1/lookup?email=user" .. math.random(0, $USERS - 1) .. "@example.org")
end
function delay() return 5 end
LUA
log "lookups as fast as they go (32 connections, ${SECONDS_RUN}s)"
wrk -t2 -c32 -d"${SECONDS_RUN}s" --latency -s "$T/lookup.lua" "$URL" >"$T/wrk.max" 2>&1
log "lookups paced (144 connections, 5 ms apart each)"
wrk -t2 -c144 -d"${SECONDS_RUN}s" --latency -s "$T/paced.lua" "$URL" >"$T/wrk.paced" 2>&1
kill -TERM $PID; wait $PID; PID=
ELAPSED=$(( $(date +%s) - START ))
GIT_HEAD=$(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-100)
python3 - "$T/wrk.max" "$T/wrk.paced" >"$T/section.md" <<PY
import re, sys
def parse(path):
    t = open(path).read()
    ms = lambda v, u: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    pct = {p: ms(v, u) for p, v, u in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    return rps, pct, int(bad.group(1)) if bad else 0
print("# smimed lookup benchmark")
print()
print("Written by \`bench/lookup.sh\` (see \`bench/README.md\`); every figure below is from this one run.")
print()
print("- **Date:** $(date -u '+%Y-%m-%d %H:%M UTC')")
print("- **Command:** \`$CMDLINE\` ($ELAPSED s in all)")
print("- **smimed:** built from \`$GIT_HEAD\`")
print("- **Machine:** $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), \`nproc\` = $(nproc)")
print("- **Data:** $USERS users, each with one encryption certificate (issued from a CSR); lookups of random users; the answer checked: $checked")
print("- **Load:** wrk on the same machine (client and service share the cores); the service's per-address limits lifted for the one client address")
print("- **Cache:** the service keeps each answer until the next committed change or for 10 s; the first run starts cold, so its figures include the first lookup of every user")
print()
print("| run | lookups/s | p50 ms | p90 ms | p99 ms | non-2xx | target 20,000/s, p99 < 5 ms |")
print("|---|---|---|---|---|---|---|")
for name, path, paced in (("as fast as it goes, 32 connections", sys.argv[1], False), ("paced: 144 connections, 5 ms apart", sys.argv[2], True)):
    rps, pct, bad = parse(path)
    verdict = ("**PASS**" if rps >= 20000 and pct.get("99", 99) < 5 and bad == 0 and "$checked" == "checked" else "**MISS**") if paced else "(throughput)"
    print(f"| {name} | {rps:.0f} | {pct.get('50',0):.2f} | {pct.get('90',0):.2f} | {pct.get('99',0):.2f} | {bad} | {verdict} |")
PY
python3 "$ROOT/bench/merge.py" lookup "$OUT" <"$T/section.md"
cat "$T/section.md"
log "done in ${ELAPSED}s: $OUT"
exit 0
}
