#!/usr/bin/env bash
# Runs the c2s connection integration test (tests/integration/c2s_connection_test.cpp) against a
# fresh testbed: Prosody 0.12 with STARTTLS required and a private CA (deploy/testbed). The
# testbed is torn down on exit, also on failure or Ctrl-C. Needs root (the testbed does).
#
#   tests/integration/c2s_connection_test.sh [PATH/TO/c2s_connection_test]
#
# Without an argument: $C2S_TEST_BIN, else build/tests/integration/c2s_connection_test.
# Exit status: the test program's (0 = all passed), 2 for setup problems.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-${C2S_TEST_BIN:-$REPO/build/tests/integration/c2s_connection_test}}
[ -x "$BIN" ] || { echo "$0: test program not found or not executable: $BIN" >&2; exit 2; }

DIR=$(mktemp -d /tmp/multiend-c2s-test.XXXXXX)
UPLOG=$(mktemp /tmp/multiend-c2s-test-up.XXXXXX)
cleanup() {
  "$REPO/deploy/testbed" down --dir "$DIR" >/dev/null 2>&1 || true
  rmdir "$DIR" 2>/dev/null || true
  rm -f "$UPLOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$REPO/deploy/testbed" up --dir "$DIR" >"$UPLOG" 2>&1; then
  cat "$UPLOG" >&2
  echo "$0: deploy/testbed up failed" >&2
  exit 2
fi

set -a
# shellcheck disable=SC1091
. "$DIR/env"
set +a
"$BIN"
