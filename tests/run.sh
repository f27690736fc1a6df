#!/usr/bin/env bash
# Runs every test of Multiend on a fresh Debian 12 machine:
#   1. installs the dependencies (deploy/install-deps.sh, idempotent),
#   2. builds and runs the whole ctest suite (unit, interop with python3-twomemo, fuzz-corpus replays,
#      integration of the component with a real PostgreSQL and Prosody, the same on ejabberd, the
#      e2e CLI suite on Prosody and on ejabberd, the compose file check, and the container smoke
#      test: every image of docker-compose.yml built from nothing and the stack run with podman),
#   3. builds again with ASan+UBSan and runs the unit tests, corpus replays, interop, the
#      integration and the e2e suites on Prosody (deploy/testbed) under the sanitizers.
# Build folders: build/ and build-asan/ (override with MULTIEND_BUILD_DIR / MULTIEND_ASAN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

BUILD=${MULTIEND_BUILD_DIR:-build}
ASAN=${MULTIEND_ASAN_DIR:-build-asan}
JOBS=${MULTIEND_JOBS:-$(nproc)}

echo "== build ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "== tests"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS"

echo "== sanitizer build ($ASAN)"
cmake -S . -B "$ASAN" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMULTIEND_SANITIZE=ON -DMULTIEND_BENCH=OFF >/dev/null
cmake --build "$ASAN" -j "$JOBS"
echo "== unit, interop, integration and e2e tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  ctest --test-dir "$ASAN" --output-on-failure -j "$JOBS" -L "unit|interop|integration|e2e" -LE ejabberd
