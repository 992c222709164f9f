#!/usr/bin/env bash
# Install every Debian package that smimed's build and tests need.
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	libssl-dev openssl
	libgmime-3.0-dev
	libcmocka-dev
	clang libclang-rt-14-dev
	libnss3-tools
	libjansson-dev
	libmicrohttpd-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev
	curl wrk jq python3-yaml
	gpgsm gnupg
	libldap-dev slapd ldap-utils
	time bsdutils python3
	certmonger faketime
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	sudo=sudo
else
	sudo=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Services that packages bring (slapd) must not start: the tests run their
# own on free ports.  policy-rc.d 101 tells invoke-rc.d "not now"; ours is
# removed again unless one was there before.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	own_policy=1
fi
rc=0
$sudo apt-get update -qq &&
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
[ -n "$own_policy" ] && $sudo rm -f "$policy"
# Where an init system started the slapd just installed anyway, stop and
# disable it (a slapd that was there before is left alone).
case " ${missing[*]} " in *" slapd "*) new_slapd=1 ;; *) new_slapd= ;; esac
if [ -n "$new_slapd" ] && [ -e /run/slapd/slapd.pid ]; then
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now slapd >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/slapd ]; then
		$sudo /etc/init.d/slapd stop >/dev/null 2>&1 || true
	fi
fi
exit $rc
