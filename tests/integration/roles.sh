#!/usr/bin/env bash
# Least privilege for admins, from the attacker's side: every route that
# `smimed --routes` lists is called with a token of every role.  A call the
# route does not accept must be answered 403 with the JSON error and change
# nothing (the whole store and data folder are compared before and after,
# and the calls are real writes: real targets, valid bodies); a call it
# accepts must not be 403.  Without a token, with a wrong, a revoked or an
# expired one, every admin route answers 401.  The routes come from the
# service, so routes added later are walked too; one that names no role fails.
# Then: the roles the table gives follow the definitions of the roles; token
# use is recorded once per hour; the audit log's filters.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "roles" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
if ! command -v sqlite3 >/dev/null; then
	skip "roles" "no sqlite3 command (to compare the store before and after)"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
ADMIN=$SVC_TOKEN
ROLES="admin operator recovery auditor"

# call TOKEN METHOD PATH [BODY [CONTENT-TYPE]]: status on stdout, body in $T/.body
call() {
	local tok=$1 method=$2 path=$3 body=${4-} ct=${5:-application/json} auth=()
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	if [ -n "$body" ]; then
		curl -s -o "$T/.body" -w '%{http_code}' -X "$method" "${auth[@]}" -H "Content-Type: $ct" \
			--data-binary "$body" "$SVC_URL$path"
	else
		curl -s -o "$T/.body" -w '%{http_code}' -X "$method" "${auth[@]}" "$SVC_URL$path"
	fi
}
# Everything the service keeps: the store's content and the data folder's other files.
snapshot() {
	sqlite3 "$D/smimed.db" .dump >"$1" 2>&1
	(cd "$D" && find . -type f ! -name 'smimed.db*' -print0 | sort -z | xargs -0 sha256sum) >>"$1"
}
b64() { base64 -w0 "$1"; }

# ---- fixtures: something real behind every parameter ----------------------------
P=$T/pki
mkca "$P"
mkuser "$P" alice alice@example.org rsa2048 encrypt
mkuser "$P" bob bob@example.org rsa2048 encrypt
mkdir -p "$T/other"
mkca "$T/other"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/sig.key" \
	-subj "/CN=alice@example.org" -out "$T/sig.csr" 2>/dev/null
expect 0 "fixture: the test CA is trusted" "$SMIME" admin trust import "$P/ca.crt"
expect 0 "fixture: alice" "$SMIME" admin user add alice@example.org --group staff
expect 0 "fixture: bob" "$SMIME" admin user add bob@example.org
expect 0 "fixture: alice's key is archived" "$SMIME" admin import --user alice@example.org --password-file <(echo pw) "$P/alice.p12"
expect 0 "fixture: alice's device" "$SMIME" admin device add --user alice@example.org --name phone --platform ios
DEV=$(head -1 "$T/.out")
expect 0 "fixture: a certificate to revoke" "$SMIME" admin cert issue --user alice@example.org --profile signing --csr "$T/sig.csr" -o "$T/sig.crt"
SERIAL=$(openssl x509 -in "$T/sig.crt" -noout -serial | cut -d= -f2)
status_is "fixture: a spare profile" 201 POST /api/v1/profiles '{"name":"spare","purpose":"signing","ca":"issuing"}'
status_is "fixture: a SCEP profile" 201 POST /api/v1/scep-profiles '{"name":"devices","ca":"issuing"}'
TRUST=$(openssl x509 -in "$P/ca.crt" -outform DER | sha256sum | cut -c1-64)
ALICE=$(curl -s -H "Authorization: Bearer $ADMIN" "$SVC_URL/api/v1/users/alice@example.org" | jq -r .id)
BOB=$(curl -s -H "Authorization: Bearer $ADMIN" "$SVC_URL/api/v1/users/bob@example.org" | jq -r .id)
[ -n "$ALICE" ] && [ "$ALICE" != null ] && [ -n "$BOB" ] && [ "$BOB" != null ] && [ -n "$SERIAL" ] && [ -n "$DEV" ] &&
	ok "fixture: ids of alice, bob, the device and the certificate" || not_ok "fixture ids" "alice=$ALICE bob=$BOB dev=$DEV serial=$SERIAL"

declare -A TOK TOKID
for r in operator recovery auditor; do
	code=$(call "$ADMIN" POST /api/v1/tokens "{\"name\":\"$r\",\"role\":\"$r\"}")
	TOK[$r]=$(jq -r .token "$T/.body"); TOKID[$r]=$(jq -r .id "$T/.body")
	[ "$code" = 201 ] && [ "$(jq -r .role "$T/.body")" = "$r" ] && ok "a $r token is made" || not_ok "a $r token is made ($code)" "$(cat "$T/.body")"
done
TOK[admin]=$ADMIN
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"victim","role":"auditor"}')
VICTIM=$(jq -r .id "$T/.body")
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"norole"}')
[ "$code" = 400 ] && ok "a token without a role is refused (400): no role by default" || not_ok "a token without a role ($code)" "$(cat "$T/.body")"
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"x","role":"root"}')
[ "$code" = 400 ] && ok "an unknown role is refused (400)" || not_ok "an unknown role ($code)"
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"x","role":"auditor","expires_days":0}')
[ "$code" = 400 ] && ok "an expiry of 0 days is refused (400)" || not_ok "expires_days 0 ($code)"

# The value of a path parameter: the real object when the call must be refused,
# one that does not exist when it is a probe of an accepted call.
param() { # NAME REAL(1|0)
	local real=$2
	if [ "$real" = 0 ]; then
		case $1 in
		file) echo nosuchca.crt ;; sha256) printf '0%.0s' $(seq 64) ;; serial) echo 0BADC0DE ;;
		*) echo roles-probe-nothing ;;
		esac
		return
	fi
	case $1 in
	user) echo "$BOB" ;; group) echo staff ;; device) echo "$DEV" ;; profile) echo spare ;;
	transaction) echo roles-transaction ;; ca) echo issuing ;; serial) echo "$SERIAL" ;;
	token) echo "$VICTIM" ;; sha256) echo "$TRUST" ;; file) echo issuing.crt ;; request) echo MAo= ;;
	*) echo roles-unknown-parameter ;;
	esac
}
# A body that would make the write happen (for the refused calls); "{}" for
# a route this test does not know yet.
body_for() { # METHOD PATTERN -> body on stdout (ct_for: its content type)
	case "$1 $2" in
	"POST /api/v1/users") echo '{"emails":["mallory@example.org"],"groups":["staff"]}' ;;
	"POST /api/v1/users/import") printf 'email,name\nmallory2@example.org,M\n' ;;
	"PATCH /api/v1/users/{user}") echo '{"name":"Owned"}' ;;
	"POST /api/v1/users/{user}/certificates/import") echo "{\"pkcs12\":\"$(b64 "$P/bob.p12")\",\"password\":\"pw\"}" ;;
	"POST /api/v1/users/{user}/recover") echo '{"password":"a long recovery password"}' ;;
	"POST /api/v1/groups") echo '{"name":"rogue"}' ;;
	"PATCH /api/v1/groups/{group}") echo '{"description":"owned"}' ;;
	"POST /api/v1/devices") echo "{\"user\":\"$ALICE\",\"name\":\"rogue\",\"platform\":\"linux\"}" ;;
	"PATCH /api/v1/devices/{device}") echo '{"name":"owned"}' ;;
	"POST /api/v1/devices/{device}/scep-challenge") echo '{"profile":"devices"}' ;;
	"POST /api/v1/profiles") echo '{"name":"rogue","purpose":"signing","ca":"issuing"}' ;;
	"PUT /api/v1/profiles/{profile}") echo '{"name":"spare","purpose":"signing","ca":"issuing","validity_days":30}' ;;
	"POST /api/v1/scep-profiles") echo '{"name":"rogue","ca":"issuing"}' ;;
	"PUT /api/v1/scep-profiles/{profile}") echo '{"name":"spare","ca":"issuing","validity_days":30}' ;;
	"POST /api/v1/scep/requests/{transaction}/reject") echo '{"reason":"owned"}' ;;
	"POST /api/v1/cas") echo '{"id":"rogue"}' ;;
	"POST /api/v1/certificates") jq -cn --arg u "$ALICE" --rawfile csr "$T/sig.csr" '{user:$u,profile:"signing",csr:$csr}' ;;
	"POST /api/v1/certificates/{serial}/revoke") echo '{"reason":"keyCompromise"}' ;;
	"POST /api/v1/tokens") echo '{"name":"rogue","role":"admin"}' ;;
	"POST /api/v1/trust") echo "{\"file\":\"$(b64 "$T/other/ca.crt")\"}" ;;
	GET\ *|DELETE\ *) ;;
	*) echo '{}' ;;
	esac
}
ct_for() { case "$1 $2" in "POST /api/v1/users/import") echo text/csv ;; *) echo application/json ;; esac; }
# The path of PATTERN with its parameters filled in.
fill() { # PATTERN REAL
	local path=$1 name
	while [[ $path =~ \{([a-z0-9_]+)\} ]]; do
		name=${BASH_REMATCH[1]}
		path=${path/"{$name}"/$(param "$name" "$2")}
	done
	echo "$path"
}

# ---- every route, every role ---------------------------------------------------
"$SMIMED" --routes >"$T/routes"
nroutes=$(wc -l <"$T/routes")
[ "$nroutes" -ge 60 ] && ok "smimed --routes lists the routes ($nroutes)" || not_ok "smimed --routes lists the routes ($nroutes)"
refused=0 accepted=0
while read -r method pattern roles; do
	if [ -z "${roles:-}" ] || [ "$roles" = none ]; then
		not_ok "$method $pattern declares the roles it accepts" "got '${roles:-}'"
		continue
	fi
	for r in $ROLES; do
		if [ "$roles" = public ] || [[ ,$roles, == *,$r,* ]]; then
			# Accepted: a probe that changes nothing (a target that is not
			# there, an empty body) must get past the role check.
			path=$(fill "$pattern" 0)
			body=$( [ "$method" = GET ] || [ "$method" = DELETE ] || echo '{}')
			code=$(call "${TOK[$r]}" "$method" "$path" "$body")
			if [ "$code" = 403 ] || [ "$code" = 401 ] || [ "$code" = 000 ]; then
				not_ok "$r may $method $pattern (got $code)" "$(head -c 300 "$T/.body")"
			else
				accepted=$((accepted + 1))
			fi
			continue
		fi
		# Refused: the real thing, which must not happen.
		path=$(fill "$pattern" 1)
		body=$(body_for "$method" "$pattern")
		snapshot "$T/before"
		code=$(call "${TOK[$r]}" "$method" "$path" "$body" "$(ct_for "$method" "$pattern")")
		snapshot "$T/after"
		if [ "$code" != 403 ]; then
			not_ok "$r may not $method $pattern: 403 (got $code)" "$(head -c 300 "$T/.body")"
		elif ! jq -e '.error.code == "forbidden" and (.error.message | test("role"))' "$T/.body" >/dev/null 2>&1; then
			not_ok "$r may not $method $pattern: the JSON error" "$(head -c 300 "$T/.body")"
		elif ! cmp -s "$T/before" "$T/after"; then
			not_ok "$r may not $method $pattern: nothing changed" "$(diff "$T/before" "$T/after" | head -20)"
		else
			refused=$((refused + 1))
		fi
	done
done <"$T/routes"
[ "$refused" -ge 60 ] && ok "$refused calls of a role a route does not accept: 403, the JSON error, nothing changed" ||
	not_ok "refused calls ($refused)"
[ "$accepted" -ge 100 ] && ok "$accepted calls of a role a route accepts: past the role check" || not_ok "accepted calls ($accepted)"
status_is "the objects behind the refused calls are all still there" 200 GET "/api/v1/users/$BOB"
code=$(call "${TOK[auditor]}" GET "/api/v1/tokens")
jq -e --arg v "$VICTIM" '[.items[] | select(.id == $v and .revoked_at == null)] | length == 1' "$T/.body" >/dev/null &&
	ok "the token others tried to revoke is not revoked" || not_ok "victim token" "$(cat "$T/.body")"
code=$(call "${TOK[operator]}" GET "/api/v1/users?limit=1000")
jq -e '[.items[] | select(.emails[0] | startswith("mallory"))] | length == 0' "$T/.body" >/dev/null &&
	ok "no user was made by a refused call" || not_ok "mallory exists" "$(cat "$T/.body")"

# ---- the table follows the definitions of the roles -------------------------------
# Whatever a branch adds, these hold: admin every admin route; auditor reads
# only; recovery writes only to recover; operator no tokens, no audit log, no
# recovery, no CA, profile or trust changes.
bad=$(awk '$3 != "public" && $3 !~ /(^|,)admin(,|$)/' "$T/routes")
[ -z "$bad" ] && ok "admin may call every admin route" || not_ok "admin may call every admin route" "$bad"
bad=$(awk '$3 ~ /(^|,)auditor(,|$)/ && $1 != "GET"' "$T/routes")
[ -z "$bad" ] && ok "auditor only reads" || not_ok "auditor only reads" "$bad"
bad=$(awk '$3 ~ /(^|,)recovery(,|$)/ && $1 != "GET" && $2 !~ /recover/' "$T/routes")
[ -z "$bad" ] && ok "recovery writes only to recover keys" || not_ok "recovery writes only to recover keys" "$bad"
bad=$(awk '$3 ~ /(^|,)recovery(,|$)/ && $1 == "GET" && $2 ~ /^\/api\/v1\/(users|groups|devices)$|audit|tokens/' "$T/routes")
[ -z "$bad" ] && ok "recovery lists no users, groups or devices, no tokens, no audit log" || not_ok "recovery reads too much" "$bad"
bad=$(awk '$3 ~ /(^|,)operator(,|$)/ && ($2 ~ /tokens|audit|recover/ || ($1 != "GET" && $2 ~ /^\/api\/v1\/(cas|trust|profiles|scep-profiles)(\/[^\/]*)?$/))' "$T/routes")
[ -z "$bad" ] && ok "operator: no tokens, audit log, recovery, CA, profile or trust changes" || not_ok "operator may do too much" "$bad"
for want in "GET /api/v1/audit admin,auditor" "POST /api/v1/users/{user}/recover admin,recovery" \
	"POST /api/v1/certificates/{serial}/revoke admin,operator" "POST /api/v1/scep/requests/{transaction}/approve admin,operator" \
	"GET /api/v1/users/{user} admin,operator,recovery,auditor" "GET /api/v1/tokens admin,auditor"; do
	grep -qxF "$want" "$T/routes" && ok "route table: $want" || not_ok "route table: $want" "$(grep -F "${want% *} " "$T/routes")"
done

# ---- no token, a wrong, a revoked, an expired token: 401 everywhere ----------------
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"soon","role":"admin","expires_days":1}')
EXPIRED=$(jq -r .token "$T/.body"); EXPIRED_ID=$(jq -r .id "$T/.body")
exp=$(jq -r .expires "$T/.body")
exp_s=$(date -u -d "$exp" +%s 2>/dev/null || echo 0)
[ "$code" = 201 ] && [ $((exp_s - $(date +%s))) -gt 86000 ] && [ $((exp_s - $(date +%s))) -le 86400 ] &&
	ok "a token with --expires-days 1 expires in a day ($exp)" || not_ok "expiry of a one-day token ($code, $exp)"
code=$(call "$EXPIRED" GET /api/v1/users)
[ "$code" = 200 ] && ok "it works before it expires" || not_ok "the one-day token works ($code)"
# A day later, as far as the token is concerned.
sqlite3 "$D/smimed.db" "UPDATE tokens SET expires = CAST(strftime('%s','now') AS INTEGER) - 5 WHERE id = '$EXPIRED_ID'"
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"revoked","role":"admin"}')
REVOKED=$(jq -r .token "$T/.body")
call "$ADMIN" DELETE "/api/v1/tokens/$(jq -r .id "$T/.body")" >/dev/null
WRONG=smt_$(printf '0%.0s' $(seq 32))_$(printf 'a%.0s' $(seq 64))
snapshot "$T/before"
n401=0
while read -r method pattern roles; do
	[ "$roles" = public ] && continue
	path=$(fill "$pattern" 1)
	body=$(body_for "$method" "$pattern"); ct=$(ct_for "$method" "$pattern")
	for kind in none wrong revoked expired; do
		case $kind in none) tok= ;; wrong) tok=$WRONG ;; revoked) tok=$REVOKED ;; expired) tok=$EXPIRED ;; esac
		code=$(call "$tok" "$method" "$path" "$body" "$ct")
		if [ "$code" != 401 ] || ! jq -e '.error.code == "unauthorized"' "$T/.body" >/dev/null 2>&1; then
			not_ok "$kind token: 401 for $method $pattern (got $code)" "$(head -c 300 "$T/.body")"
		elif [ "$kind" = expired ] && ! jq -e '.error.message | test("expired")' "$T/.body" >/dev/null; then
			not_ok "an expired token is told it expired ($method $pattern)" "$(cat "$T/.body")"
		else
			n401=$((n401 + 1))
		fi
	done
done <"$T/routes"
snapshot "$T/after"
[ "$n401" -ge 200 ] && ok "$n401 calls without a token, with a wrong, a revoked or an expired one: 401 with the JSON error" || not_ok "401 calls ($n401)"
if cmp -s "$T/before" "$T/after"; then ok "none of them changed anything"; else not_ok "401 calls changed something" "$(diff "$T/before" "$T/after" | head)"; fi

# ---- the command line ---------------------------------------------------------------
expect 0 "smime admin token create --role operator --expires-days 30" "$SMIME" admin token create ci-op --role operator --expires-days 30
grep -qE '^smt_[0-9a-f]{32}_[0-9a-f]{64}$' "$T/.out" && ok "it prints the secret" || not_ok "the secret" "$(cat "$T/.out")"
CLI_OP=$(cat "$T/.out")
expect 2 "token create without --role is a usage error" "$SMIME" admin token create ci-none
in_err "it names --role" "--role"
expect 2 "an unknown role is a usage error" "$SMIME" admin token create ci-x --role superuser
expect 2 "--expires-days 0 is a usage error" "$SMIME" admin token create ci-x --role auditor --expires-days 0
expect 0 "smime admin token list" "$SMIME" admin token list
contains "token list has ROLE and EXPIRES columns" "$T/.out" '^ID +NAME +ROLE +CREATED +EXPIRES +LAST-USED +REVOKED'
contains "token list shows the operator token's role" "$T/.out" ' ci-op +operator '
contains "token list shows the initial token as admin, never expiring" "$T/.out" ' initial +admin +[0-9T:-]+Z +- '
expect 5 "an operator token cannot list tokens (403: exit 5)" env SMIME_TOKEN="$CLI_OP" "$SMIME" admin token list
in_err "the CLI says the role may not" "role operator may not"
expect 0 "an operator token adds a user" env SMIME_TOKEN="$CLI_OP" "$SMIME" admin user add carol@example.org
expect 0 "token list --json" "$SMIME" admin --json token list
OP_ID=$(jq -r '.items[] | select(.name == "ci-op") | .id' "$T/.out")
expect 0 "token revoke by a unique prefix of the id" "$SMIME" admin token revoke "${OP_ID:0:8}"
expect 5 "the operator token revoked: refused (exit 5)" env SMIME_TOKEN="$CLI_OP" "$SMIME" admin user list
expect 0 "the audit log" "$SMIME" admin --json audit --action token.revoke
jq -e --arg id "$OP_ID" '[.items[] | select(.object == $id)] | length == 1' "$T/.out" >/dev/null &&
	ok "the revocation is audited under the whole id" || not_ok "token.revoke audit" "$(cat "$T/.out")"
expect 4 "token revoke of a prefix nobody has: not found" "$SMIME" admin token revoke ffffffff
expect 5 "an expired token: exit 5" env SMIME_TOKEN="$EXPIRED" "$SMIME" admin user list
in_err "the CLI says it expired" "expired"

# ---- token use: once per token per hour -----------------------------------------------
uses() { sqlite3 "$D/smimed.db" "SELECT count(*) FROM audit WHERE action = 'token.use' AND actor = 'token:$1'"; }
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"busy","role":"operator"}')
BUSY=$(jq -r .token "$T/.body"); BUSY_ID=$(jq -r .id "$T/.body")
for i in $(seq 1 20); do call "$BUSY" GET /api/v1/users >/dev/null; done
call "$BUSY" POST /api/v1/groups '{"name":"busy-group"}' >/dev/null
for i in $(seq 1 5); do call "$BUSY" GET /api/v1/groups >/dev/null; done
[ "$(uses "$BUSY_ID")" = 1 ] && ok "26 requests of one token within the hour: one token.use row" || not_ok "token.use rows: $(uses "$BUSY_ID")"
[ "$(sqlite3 "$D/smimed.db" "SELECT count(*) FROM audit WHERE action = 'group.create' AND actor = 'token:$BUSY_ID'")" = 1 ] &&
	ok "its write is audited in a row of its own" || not_ok "group.create by the busy token"
last=$(sqlite3 "$D/smimed.db" "SELECT last_used FROM tokens WHERE id = '$BUSY_ID'")
[ $(( $(date +%s) - last )) -lt 120 ] && ok "last_used is set" || not_ok "last_used ($last)"
# An hour later (as far as the token's record is concerned): one more.
sqlite3 "$D/smimed.db" "UPDATE tokens SET last_used = last_used - 3600 WHERE id = '$BUSY_ID'"
call "$BUSY" GET /api/v1/users >/dev/null
call "$BUSY" GET /api/v1/users >/dev/null
[ "$(uses "$BUSY_ID")" = 2 ] && ok "after an hour, the next request is recorded once more" || not_ok "token.use after an hour: $(uses "$BUSY_ID")"
# Twenty at once, from a token not yet used: still one row.
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"burst","role":"auditor"}')
BURST=$(jq -r .token "$T/.body"); BURST_ID=$(jq -r .id "$T/.body")
pids=()
for i in $(seq 1 20); do curl -s -o /dev/null -H "Authorization: Bearer $BURST" "$SVC_URL/api/v1/audit?limit=1" & pids+=($!); done
wait "${pids[@]}"
[ "$(uses "$BURST_ID")" = 1 ] && ok "twenty requests at once of a fresh token: one token.use row" || not_ok "burst token.use rows: $(uses "$BURST_ID")"

# ---- the audit log's filters ------------------------------------------------------------
A=(env SMIME_TOKEN="${TOK[auditor]}" "$SMIME" --json admin audit)
expect 0 "audit --action cert.issue" "${A[@]}" --action cert.issue
jq -e '(.items | length) >= 1 and all(.items[]; .action == "cert.issue")' "$T/.out" >/dev/null && ok "only cert.issue rows" || not_ok "--action" "$(head -c 600 "$T/.out")"
expect 0 "audit --action 'user.*'" "${A[@]}" --action 'user.*'
jq -e '(.items | length) >= 3 and all(.items[]; .action | startswith("user."))' "$T/.out" >/dev/null && ok "only user.* rows" || not_ok "--action user.*" "$(head -c 600 "$T/.out")"
expect 0 "audit --actor token:ID" "${A[@]}" --actor "token:$BUSY_ID"
jq -e '(.items | length) == 3 and all(.items[]; .actor == "token:'"$BUSY_ID"'")' "$T/.out" >/dev/null && ok "only that token's rows (2 uses, 1 group)" || not_ok "--actor" "$(head -c 600 "$T/.out")"
expect 0 "audit --actor with the bare token id" "${A[@]}" --actor "$BUSY_ID"
jq -e '(.items | length) == 3' "$T/.out" >/dev/null && ok "the same rows" || not_ok "--actor ID" "$(head -c 600 "$T/.out")"
status_is "alice's device is renamed" 200 PATCH "/api/v1/devices/$DEV" '{"name":"phone 2"}'
expect 0 "audit --user alice@example.org" "${A[@]}" --user alice@example.org
jq -e --arg u "$ALICE" '(.items | length) >= 5 and all(.items[]; .user == $u) and ([.items[].action] | index("user.create") and index("cert.import") and index("cert.issue") and index("device.create") and index("device.update"))' "$T/.out" >/dev/null &&
	ok "alice's rows: user.create, cert.import, cert.issue, device.create, device.update, and only hers" || not_ok "--user" "$(head -c 900 "$T/.out")"
expect 0 "audit --user with an id" "${A[@]}" --user "$BOB"
jq -e --arg u "$BOB" '(.items | length) >= 1 and all(.items[]; .user == $u)' "$T/.out" >/dev/null && ok "bob's rows" || not_ok "--user id" "$(head -c 600 "$T/.out")"
expect 4 "audit --user of an unknown address: not found" "${A[@]}" --user nobody@example.org
now=$(date -u +%Y-%m-%dT%H:%M:%SZ); later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
expect 0 "audit --since an hour ahead" "${A[@]}" --since "$later"
jq -e '.items | length == 0' "$T/.out" >/dev/null && ok "nothing after now" || not_ok "--since later" "$(head -c 300 "$T/.out")"
expect 0 "audit --until the day the service started" "${A[@]}" --until "$(date -u +%Y-%m-%d)"
jq -e '.items | length == 0' "$T/.out" >/dev/null && ok "nothing before today" || not_ok "--until today" "$(head -c 300 "$T/.out")"
expect 0 "audit --since 2000-01-01 --until an hour ahead --action token.create" "${A[@]}" --since 2000-01-01 --until "$later" --action token.create
jq -e '(.items | length) >= 5 and all(.items[]; .action == "token.create")' "$T/.out" >/dev/null && ok "every token.create" || not_ok "combined filters" "$(head -c 300 "$T/.out")"
expect 0 "filters page as the whole log does (--limit 2)" "${A[@]}" --action token.create --limit 2
jq -e '(.items | length) == 2 and (.next | type == "string")' "$T/.out" >/dev/null && ok "two rows and a next cursor" || not_ok "paged filter" "$(head -c 300 "$T/.out")"
expect 2 "--since that is not a time: usage" "${A[@]}" --since yesterday
code=$(call "${TOK[auditor]}" GET "/api/v1/audit?since=yesterday")
[ "$code" = 400 ] && ok "the API refuses since=yesterday (400)" || not_ok "since=yesterday ($code)"
code=$(call "${TOK[auditor]}" GET "/api/v1/audit?action=DROP%20TABLE")
[ "$code" = 400 ] && ok "the API refuses an action that is no action (400)" || not_ok "action=DROP TABLE ($code)"
code=$(call "${TOK[auditor]}" GET "/api/v1/audit?actor=system&action=ca.create&since=$now")
[ "$code" = 200 ] && jq -e '.items | length == 0' "$T/.body" >/dev/null && ok "API filters: actor, action and since together" || not_ok "API combined ($code)" "$(cat "$T/.body")"
expect 5 "an operator cannot read the audit log" env SMIME_TOKEN="${TOK[operator]}" "$SMIME" admin audit

done_testing
