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
	time bsdutils python3
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
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
