#!/usr/bin/env bash
# Backup and restore as docs/smimed.8 tells it: a backup taken while smimed
# runs, a fresh data folder with only the master key copied, `smimed
# restore`, and every archived key recovered: old mail decrypts with them
# (openssl cms -decrypt).  A wrong or missing master key: smimed refuses to
# start, names the file, and changes nothing.  An installation whose archive
# KEK is the file archive.kek (smimed before the KEK moved into the store)
# keeps its keys (with SMIMED_OLD, a smimed binary of that kind).
. "$(dirname "$0")/lib.sh"

if [ ! -x "$SMIMED" ]; then
	skip "backup" "no smimed binary at $SMIMED"
	done_testing
	exit
fi
D=$T/data
trap 'stop_smimed; rm -rf "$T"' EXIT
if ! start_smimed "$D"; then not_ok "smimed starts" "$(tail "$D.log")"; done_testing; exit 1; fi
TOKEN=$SVC_TOKEN
echo "issued-pw-123" >"$T/pw"
echo "recovery-pw-1" >"$T/recpw"
[ ! -e "$D/archive.kek" ] && ok "no archive.kek file: the KEK is kept in the store, wrapped under the master key" || not_ok "archive.kek made"
[ "$(ls "$D" | sort | tr '\n' ' ')" = "admin.token master.key smimed.db smimed.db-shm smimed.db-wal smimed.pid " ] ||
	[ "$(ls "$D" | sort | tr '\n' ' ')" = "admin.token master.key smimed.db smimed.db-shm smimed.db-wal " ] &&
	ok "the data folder holds the store, the master key and the first token" || not_ok "data folder" "$(ls "$D")"

# Keys of two users, made by the service; old mail to each certificate.
expect 0 "a user" "$SMIME" admin user add ann@example.org
expect 0 "another" "$SMIME" admin user add ben@example.org
n=0
for who in ann ann ben; do
	n=$((n + 1))
	expect 0 "$who: a certificate with a generated key ($n)" \
		"$SMIME" admin cert issue --user "$who@example.org" --profile encryption --password-file "$T/pw" -o "$T/k$n.p12"
	openssl pkcs12 -in "$T/k$n.p12" -passin file:"$T/pw" -nokeys -clcerts 2>/dev/null | openssl x509 -out "$T/c$n.pem"
	printf 'Content-Type: text/plain\r\n\r\nold mail %s to %s\r\n' "$n" "$who" >"$T/m$n.txt"
	openssl cms -encrypt -aes-256-cbc -in "$T/m$n.txt" -out "$T/m$n.msg" -recip "$T/c$n.pem" 2>/dev/null
done
expect 0 "ben is deleted (a leaver): his key stays" "$SMIME" admin user delete ben@example.org

expect 0 "smimed backup while it runs" "$SMIMED" backup "$T/backup.db" --data "$D"
contains "the backup says the master key is kept apart" "$T/.out" "master.key"
stop_smimed

# ---- a fresh folder with only the master key ------------------------------------
R=$T/restored
mkdir -m 700 "$R"
cp -p "$D/master.key" "$R/master.key"
expect 0 "smimed restore into the fresh folder" "$SMIMED" restore "$T/backup.db" --data "$R"
if ! start_smimed "$R"; then not_ok "the restored smimed starts" "$(tail "$R.log")"; done_testing; exit 1; fi
ok "the restored smimed starts"
export SMIME_TOKEN=$TOKEN SVC_TOKEN=$TOKEN
[ ! -e "$R/archive.kek" ] && ok "and makes no new archive key" || not_ok "archive.kek made on restore"
for who in ann ben; do
	expect 0 "recover $who on the restored service" \
		"$SMIME" admin recover --user "$who@example.org" --reason "restore test" -o "$T/$who.p12" --password-file "$T/recpw"
	openssl pkcs12 -in "$T/$who.p12" -passin file:"$T/recpw" -nodes -nocerts 2>/dev/null |
		awk '/BEGIN PRIVATE KEY/{n++; f=sprintf("'"$T"'/'"$who"'-key%d.pem", n)} f{print > f} /END PRIVATE KEY/{close(f); f=""}'
done
[ "$(ls "$T"/ann-key*.pem "$T"/ben-key*.pem 2>/dev/null | wc -l)" = 3 ] && ok "every key (three) recovered" || not_ok "three keys" "$(ls "$T")"
for n in 1 2 3; do
	good=0
	for k in "$T"/ann-key*.pem "$T"/ben-key*.pem; do
		if openssl cms -decrypt -in "$T/m$n.msg" -inkey "$k" -recip "$T/c$n.pem" -out "$T/m$n.out" 2>/dev/null && cmp -s "$T/m$n.txt" "$T/m$n.out"; then
			good=1
			break
		fi
	done
	[ $good = 1 ] && ok "old mail $n decrypts with a recovered key (openssl cms -decrypt)" || not_ok "old mail $n"
done
expect 0 "the restored service issues" "$SMIME" admin cert issue --user ann@example.org --profile encryption --password-file "$T/pw" -o "$T/k4.p12"
stop_smimed

# ---- a restore into a running smimed that made an archive key of its own ------------------
# Step 3 after a first start: the new service made its CA and archive key,
# then `smimed restore` replaced its store (SIGHUP).  The store keeps the
# backed-up installation's archive key: the running service must not seal
# keys under its own any more (they would open with no key the store keeps,
# and the newest of them would stop the next start).
N=$T/running
mkdir -m 700 "$N"
cp -p "$D/master.key" "$N/master.key"
if start_smimed "$N"; then
	expect 0 "smimed restore into a running service that made its own archive key" "$SMIMED" restore "$T/backup.db" --data "$N"
	for i in $(seq 1 100); do grep -q '"reload"\|"archive.reload"' "$N.log" && break; sleep 0.1; done
	export SMIME_TOKEN=$TOKEN SVC_TOKEN=$TOKEN
	grep -q '"archive.reload"' "$N.log" && ok "the reload says the store keeps another archive key" || not_ok "archive.reload logged" "$(tail -3 "$N.log")"
	if "$SMIME" admin cert issue --user ann@example.org --profile encryption --password-file "$T/pw" -o "$T/k5.p12" >"$T/.out" 2>&1; then
		not_ok "no generated key is sealed under an archive key the store does not keep" "$(cat "$T/.out")"
	else
		ok "no generated key is sealed under an archive key the store does not keep (refused)"
	fi
	stop_smimed
	if start_smimed "$N"; then
		ok "the restarted service starts on the restored store"
		export SMIME_TOKEN=$TOKEN SVC_TOKEN=$TOKEN
		expect 0 "and recovers ann's keys" \
			"$SMIME" admin recover --user ann@example.org --reason "restore into a running service" -o "$T/ann-n.p12" --password-file "$T/recpw"
		[ "$(openssl pkcs12 -in "$T/ann-n.p12" -passin file:"$T/recpw" -nodes 2>/dev/null | grep -c 'BEGIN PRIVATE KEY')" = 2 ] &&
			ok "both of them, none lost" || not_ok "ann's two keys" "$(openssl pkcs12 -in "$T/ann-n.p12" -passin file:"$T/recpw" -nodes 2>&1 | grep -c 'BEGIN PRIVATE KEY')"
		expect 0 "and issues again" "$SMIME" admin cert issue --user ann@example.org --profile encryption --password-file "$T/pw" -o "$T/k6.p12"
		stop_smimed
	else
		not_ok "the restarted service starts on the restored store" "$(tail -3 "$N.log")"
	fi
else
	not_ok "a fresh smimed starts beside the copied master key" "$(tail "$N.log")"
fi

# ---- a wrong master key: refused, nothing changed --------------------------------------
W=$T/wrong
mkdir -m 700 "$W"
head -c 32 /dev/urandom >"$W/master.key"
chmod 600 "$W/master.key"
expect 0 "smimed restore into a folder with another master key" "$SMIMED" restore "$T/backup.db" --data "$W"
snap() { (cd "$1" && for f in $(ls | grep -v '\.pid$' | sort); do printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done); }
snap "$W" >"$T/before"
port=$(free_port)
timeout 60 "$SMIMED" --data "$W" --listen "127.0.0.1:$port" >"$T/w.out" 2>"$T/w.err"
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && ok "smimed refuses to start (exit $rc)" || not_ok "wrong master key started (exit $rc)" "$(cat "$T/w.err")"
grep -q "$W/master.key" "$T/w.err" && ok "naming the master key file" || not_ok "names master.key" "$(cat "$T/w.err")"
grep -qi "does not open\|not the master key" "$T/w.err" && ok "saying it does not open what it must" || not_ok "clear message" "$(cat "$T/w.err")"
snap "$W" >"$T/after"
same "the folder is unchanged (no new key, token or archive key; the store untouched)" "$T/before" "$T/after"

# ---- no master key at all: refused, none made -------------------------------------------------
M=$T/missing
mkdir -m 700 "$M"
expect 0 "smimed restore into a folder without a master key" "$SMIMED" restore "$T/backup.db" --data "$M"
timeout 60 "$SMIMED" --data "$M" --listen "127.0.0.1:$port" >"$T/m.out" 2>"$T/m.err"
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && ok "smimed refuses to start without the master key (exit $rc)" || not_ok "missing master key (exit $rc)" "$(cat "$T/m.err")"
grep -q "$M/master.key" "$T/m.err" && ok "naming the file it needs" || not_ok "names the missing file" "$(cat "$T/m.err")"
[ ! -e "$M/master.key" ] && ok "and makes no new master key" || not_ok "a master key was made"

# ---- archive.kek: the KEK of older installations, moved into the store -----------------------
# An installation laid out as an older smimed left it: the KEK in
# DATA/archive.kek, none in the store, keys sealed under it.
K=$T/kekfile
mkdir -m 700 "$K"
head -c 32 /dev/urandom >"$K/archive.kek"
chmod 600 "$K/archive.kek"
kek_sum=$(sha256sum <"$K/archive.kek")
if ! start_smimed "$K"; then not_ok "smimed starts beside an archive.kek" "$(tail "$K.log")"; done_testing; exit 1; fi
export SMIME_TOKEN=$SVC_TOKEN
K_TOKEN=$SVC_TOKEN
expect 0 "a user" "$SMIME" admin user add kay@example.org
expect 0 "a key sealed under the archive.kek's key" "$SMIME" admin cert issue --user kay@example.org --profile encryption --password-file "$T/pw" -o "$T/kay.p12"
stop_smimed
grep -q '"how":"moved from archive.kek"' "$K.log" && ok "the file's key was moved into the store" || not_ok "moved from archive.kek" "$(grep archive "$K.log")"
drop_kek() { python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("DELETE FROM meta WHERE key = ?", ("archive_kek",)); d.commit()' "$1/smimed.db"; }
# As before the move: no KEK in the store, the file beside it.
drop_kek "$K"
mv "$K/archive.kek" "$T/kay.kek"
timeout 60 "$SMIMED" --data "$K" --listen "127.0.0.1:$port" >"$T/k.out" 2>"$T/k.err"
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "$K/archive.kek" "$T/k.err" && ok "archived keys without their KEK: refuses to start, naming archive.kek (exit $rc)" || not_ok "no KEK (exit $rc)" "$(cat "$T/k.err")"
[ ! -e "$K/archive.kek" ] && [ -z "$(sqlite3 "$K/smimed.db" "SELECT value FROM meta WHERE key = 'archive_kek'")" ] && ok "and makes no new KEK over them" || not_ok "a KEK was made"
head -c 32 /dev/urandom >"$K/archive.kek"
chmod 600 "$K/archive.kek"
timeout 60 "$SMIMED" --data "$K" --listen "127.0.0.1:$port" >"$T/k.out" 2>"$T/k.err"
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "$K/archive.kek does not open the archived keys" "$T/k.err" && ok "another archive.kek: refuses to start, naming it (exit $rc)" || not_ok "wrong archive.kek (exit $rc)" "$(cat "$T/k.err")"
[ -z "$(sqlite3 "$K/smimed.db" "SELECT value FROM meta WHERE key = 'archive_kek'")" ] && ok "and keeps nothing of it" || not_ok "a wrong KEK was kept"
cp -p "$T/kay.kek" "$K/archive.kek"
if start_smimed "$K"; then
	export SMIME_TOKEN=$K_TOKEN SVC_TOKEN=$K_TOKEN
	expect 0 "with its own archive.kek it starts and recovers" \
		"$SMIME" admin recover --user kay@example.org --reason "migration" -o "$T/kay-r.p12" --password-file "$T/recpw"
	[ "$(openssl pkcs12 -in "$T/kay-r.p12" -passin file:"$T/recpw" -nodes 2>/dev/null | grep -c 'BEGIN PRIVATE KEY')" = 1 ] && ok "the key" || not_ok "key after migration"
	stop_smimed
else
	not_ok "start with the right archive.kek" "$(tail "$K.log")"
fi
[ "$(sha256sum <"$K/archive.kek")" = "$kek_sum" ] && ok "archive.kek is left as it was" || not_ok "archive.kek changed"
rm "$K/archive.kek"
if start_smimed "$K"; then
	export SMIME_TOKEN=$K_TOKEN SVC_TOKEN=$K_TOKEN
	expect 0 "once moved, the file is no longer needed" \
		"$SMIME" admin recover --user kay@example.org --reason "migration 2" -o "$T/kay-r2.p12" --password-file "$T/recpw"
	stop_smimed
else
	not_ok "start after the move without archive.kek" "$(tail "$K.log")"
fi

# ---- an archive.kek installation made by an older smimed binary (SMIMED_OLD) -----------------
if [ -n "${SMIMED_OLD:-}" ] && [ -x "$SMIMED_OLD" ]; then
	O=$T/old
	SMIMED_SAVED=$SMIMED
	SMIMED=$SMIMED_OLD
	if start_smimed "$O"; then
		export SMIME_TOKEN=$SVC_TOKEN
		OLD_TOKEN=$SVC_TOKEN
		"$SMIME" admin user add old@example.org >/dev/null 2>&1
		# The old service archives imported keys: a PKCS#12 of a partner CA's.
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pca.key" -out "$T/pca.crt" \
			-days 3650 -subj "/O=Partner/CN=Partner CA" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" 2>/dev/null
		printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:old@example.org\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/old.ext"
		openssl req -new -newkey rsa:2048 -nodes -keyout "$T/old.key" -subj "/CN=old@example.org" -out "$T/old.csr" 2>/dev/null
		openssl x509 -req -in "$T/old.csr" -CA "$T/pca.crt" -CAkey "$T/pca.key" -CAcreateserial -days 365 -extfile "$T/old.ext" -out "$T/old.crt" 2>/dev/null
		openssl pkcs12 -export -inkey "$T/old.key" -in "$T/old.crt" -passout file:"$T/pw" -out "$T/old.p12"
		"$SMIME" admin trust import "$T/pca.crt" >/dev/null 2>&1
		expect 0 "the old service archives an imported key" "$SMIME" admin import --user old@example.org --password-file "$T/pw" "$T/old.p12"
		stop_smimed
		SMIMED=$SMIMED_SAVED
		[ -f "$O/archive.kek" ] && ok "the old installation has archive.kek" || not_ok "old archive.kek"
		kek_sum=$(sha256sum <"$O/archive.kek")
		if start_smimed "$O"; then
			ok "this smimed starts on it"
			export SMIME_TOKEN=$OLD_TOKEN SVC_TOKEN=$OLD_TOKEN
			expect 0 "and recovers the key archived under archive.kek" \
				"$SMIME" admin recover --user old@example.org --reason "migration" -o "$T/old-r.p12" --password-file "$T/recpw"
			[ "$(openssl pkcs12 -in "$T/old-r.p12" -passin file:"$T/recpw" -nodes 2>/dev/null | grep -c 'BEGIN PRIVATE KEY')" = 1 ] && ok "the key" || not_ok "migrated key"
			[ "$(sha256sum <"$O/archive.kek")" = "$kek_sum" ] && ok "archive.kek is left as it was" || not_ok "archive.kek changed"
			stop_smimed
			mv "$O/archive.kek" "$T/old-archive.kek"
			if start_smimed "$O"; then
				export SMIME_TOKEN=$OLD_TOKEN SVC_TOKEN=$OLD_TOKEN
				expect 0 "once migrated, the file is no longer needed" \
					"$SMIME" admin recover --user old@example.org --reason "migration 2" -o "$T/old-r2.p12" --password-file "$T/recpw"
				stop_smimed
			else
				not_ok "start without archive.kek after migration" "$(tail "$O.log")"
			fi
		else
			not_ok "this smimed starts on an archive.kek installation" "$(tail "$O.log")"
		fi
	else
		SMIMED=$SMIMED_SAVED
		not_ok "the old smimed starts" "$(tail "$O.log")"
	fi
else
	skip "archive.kek migration" "SMIMED_OLD (a smimed that keeps archive.kek) not given"
fi
done_testing
