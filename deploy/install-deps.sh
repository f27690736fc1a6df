#!/usr/bin/env bash
# Installs every build and test dependency of Multiend from Debian 12 packages.
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libboost1.81-dev libsodium-dev libssl-dev libexpat1-dev
  libprotobuf-dev protobuf-compiler libpqxx-dev libsqlite3-dev
  nlohmann-json3-dev doctest-dev libspdlog-dev libcli11-dev libbenchmark-dev prometheus-cpp-dev
  # test peers and services
  python3 python3-twomemo python3-omemo python3-xmlschema python3-nacl python3-slixmpp
  postgresql prosody lua-unbound openssl ca-certificates
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Services must not start system-wide: tests start their own instances in temp dirs.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
