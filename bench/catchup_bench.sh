#!/usr/bin/env bash
# Catch-up benchmark: a device that was offline reads N archived messages (MAM fetch, decrypt,
# store): our client library (bench/catchup_bench) beside the twomemo referee client
# (tests/e2e/twomemo_xmpp_peer.py, python3-twomemo) on the same archive in the same run.
#
#   bench/catchup_bench.sh            (root: the testbed runs PostgreSQL as `postgres`)
#
# 1. deploy/testbed up (Prosody + PostgreSQL), the component from $BUILD;
# 2. carol (sender, ours) and dave (receiver, ours) register; dave gets a second device, the
#    twomemo peer;
# 3. warm-up: one message, both receivers catch up (answering the key exchange), the sender
#    reads the answers — so the N messages that follow travel in confirmed sessions, as in a
#    conversation under way, for both clients alike;
# 4. carol sends N messages to dave (each encrypted for both of dave's devices);
# 5. dave's device catches up, timed; the twomemo device catches up on the same N, timed;
# 6. prints both rates and their ratio; writes JSON lines to $RESULTS.
# Environment: MESSAGES=10000 BUILD=build RESULTS=$BUILD/bench-catchup.jsonl PERF=FILE (profile)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MESSAGES=${MESSAGES:-10000}
BUILD=${BUILD:-build}
RESULTS=${RESULTS:-$BUILD/bench-catchup.jsonl}
BENCH=$REPO/$BUILD/bench/catchup_bench
COMPONENT=$REPO/$BUILD/server/multiend-component
PEER=$REPO/tests/e2e/twomemo_xmpp_peer.py
[ -x "$BENCH" ] && [ -x "$COMPONENT" ] || { echo "build $BUILD first (targets catchup_bench multiend-component)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/multiend-catchup.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  "$REPO/deploy/testbed" down --dir "$WORK/testbed" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$REPO/deploy/testbed" up --dir "$WORK/testbed" --users "carol dave" >"$WORK/testbed.log" 2>&1 \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$WORK/testbed/env"
set +a
"$REPO/deploy/testbed" start-component --dir "$WORK/testbed" --bin "$COMPONENT" --log-level warn 2>>"$WORK/testbed.log" \
  || { cat "$WORK/testbed.log" >&2; exit 1; }

SERVER="$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT"
ARGS=(--dir "$WORK" --server "$SERVER" --ca-file "$MULTIEND_CA_FILE" --component "$MULTIEND_COMPONENT_DOMAIN"
      --domain "$MULTIEND_USER_DOMAIN" --sender carol --receiver dave)
peer() { /usr/bin/python3 "$PEER" "$1" --state "$WORK/dave-twomemo.json" "${@:2}"; }

"$BENCH" setup "${ARGS[@]}" >/dev/null
peer init --jid "dave@$MULTIEND_USER_DOMAIN" --password davepw --server "$SERVER" \
  --ca-file "$MULTIEND_CA_FILE" --component "$MULTIEND_COMPONENT_DOMAIN" >/dev/null
echo "== warm-up (key exchanges answered on both clients)"
"$BENCH" fill "${ARGS[@]}" --messages 1 >/dev/null
"$BENCH" catchup "${ARGS[@]}" >/dev/null
peer sync >/dev/null
"$BENCH" sender-catchup "${ARGS[@]}" >/dev/null
echo "== carol sends $MESSAGES messages to dave's two devices"
"$BENCH" fill "${ARGS[@]}" --messages "$MESSAGES" | tee -a "$RESULTS"
echo "== dave catches up: Multiend (C++)"
# PERF=FILE: record a CPU profile of our catch-up (perf record -g) into FILE.
if [ -n "${PERF:-}" ]; then
  OURS=$(perf record -q -g -o "$PERF" -- "$BENCH" catchup "${ARGS[@]}")
else
  OURS=$("$BENCH" catchup "${ARGS[@]}" 2>/tmp/pages.txt)
fi
echo "$OURS" | tee -a "$RESULTS"
echo "== dave catches up: twomemo (python3-twomemo, same archive)"
THEIRS=$(peer bench-catchup | tail -1)
echo "$THEIRS" | tee -a "$RESULTS"
python3 - "$OURS" "$THEIRS" "$MESSAGES" <<'PY'
import json, sys
ours, theirs, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
a = ours["messages_per_second"]
b = theirs.get("rate") or theirs["messages"] / theirs["seconds"]
print(f"catch-up of {n} archived messages: multiend {a:,.0f} msg/s ({ours['seconds']:.1f} s), "
      f"twomemo {b:,.0f} msg/s ({theirs['seconds']:.1f} s): ratio {a / b:.1f}x")
PY
