#!/usr/bin/env bash
# Installs every Debian package logferry needs to build, test, benchmark and run its quick start.
# Idempotent: packages already present are left alone, apt is asked only when something is missing.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  debhelper devscripts fakeroot lintian debootstrap systemd-container
  libuv1-dev libhttp-parser-dev libcurl4-openssl-dev libarchive-dev libsodium-dev
  libmariadb-dev libjansson-dev libinih-dev libsqlite3-dev libpcre2-dev
  libcmocka-dev zlib1g-dev libnats-dev
)
run_pkgs=(
  mariadb-server mariadb-client sqlite3 curl zip unzip python3 iproute2 procps psmisc
  nginx-light wrk e2fsprogs util-linux chromium chromium-driver openssl strace bash-completion man-db faketime
  nats-server
)

missing=()
for p in "${build_pkgs[@]}" "${run_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps Debian from starting the packaged mariadb/nginx services: logferry starts its
  # own private instances.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
