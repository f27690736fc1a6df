#!/usr/bin/env bash
# Installs every build and test dependency of Multiend from Debian 12 packages.
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
#
#   deploy/install-deps.sh               everything: build, tests, test servers, tools
#   deploy/install-deps.sh --build-only  what `cmake` needs for the component and the client
#                                        (deploy/docker/Dockerfile's build stage)
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libsodium-dev libssl-dev libexpat1-dev libidn-dev
  libprotobuf-dev protobuf-compiler libpqxx-dev libsqlite3-dev
  nlohmann-json3-dev doctest-dev libspdlog-dev libcli11-dev prometheus-cpp-dev
)
OTHER_PKGS=(
  # fuzzing and benchmarks
  clang libclang-rt-14-dev libbenchmark-dev
  # test peers and services
  python3 python3-twomemo python3-omemo python3-xmlschema python3-nacl python3-slixmpp
  python3-oldmemo         # legacy OMEMO referees (tests/interop): oldmemo_interop
  libsignal-protocol-c-dev  # and libsignal_interop (what Dino and Profanity build on)
  postgresql prosody lua-unbound openssl ca-certificates
  ejabberd                # deploy/testbed up --server ejabberd (ejabberd 23.01)
  docker-compose          # deploy/docker/check.sh: `docker-compose config` (no engine needed)
  prometheus              # promtool: deploy/prometheus/check.sh (alert rules and their tests)
)

case "${1:-}" in
  "") PKGS=("${BUILD_PKGS[@]}" "${OTHER_PKGS[@]}") ;;
  --build-only) PKGS=("${BUILD_PKGS[@]}") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

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
