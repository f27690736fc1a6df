#!/usr/bin/env bash
# The Multiend demo, start to end on one machine:
#   installs what is missing and builds (unless MULTIEND_DEMO_SKIP_BUILD=1), starts a throwaway
#   testbed (PostgreSQL + Prosody on free loopback ports in a temp dir), starts the archive
#   component, creates alice with two devices and bob with one, runs a short conversation,
#   takes alice's second device offline while messages flow, brings it back to catch up from the
#   archive, prints who saw what, shows that the database holds only ciphertext, tears down.
#
#   deploy/demo.sh [--server prosody|ejabberd] [--keep]
#
# Needs root (the testbed runs PostgreSQL as `postgres`). Build folder: $MULTIEND_BUILD_DIR or build/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
SERVER=prosody
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --server) SERVER=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
  esac
done

BUILD=${MULTIEND_BUILD_DIR:-build}
if [ "${MULTIEND_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  echo "== installing dependencies and building (once; later runs are quick)"
  bash deploy/install-deps.sh >/dev/null
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$BUILD" --target multiend multiend-component -j "$(nproc)" >/dev/null
fi
CLI=$REPO/$BUILD/client/multiend
COMPONENT=$REPO/$BUILD/server/multiend-component
[ -x "$CLI" ] && [ -x "$COMPONENT" ] || { echo "demo: $CLI or $COMPONENT missing; build first" >&2; exit 1; }

T0=$(date +%s)
WORK=$(mktemp -d /tmp/multiend-demo.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  "$REPO/deploy/testbed" down --dir "$WORK/testbed" >/dev/null 2>&1 || true
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a throwaway $SERVER + PostgreSQL testbed in $WORK"
"$REPO/deploy/testbed" up --dir "$WORK/testbed" --server "$SERVER" --users "alice bob" >"$WORK/testbed.log" 2>&1 \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$WORK/testbed/env"
set +a

"$REPO/deploy/testbed" start-component --dir "$WORK/testbed" --bin "$COMPONENT" 2>>"$WORK/testbed.log" \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
echo "== component $MULTIEND_COMPONENT_DOMAIN attached to $SERVER (port $MULTIEND_COMPONENT_PORT)"

for u in alice bob; do printf '%spw\n' "$u" >"$WORK/$u.pw"; done
me() { "$CLI" "$1" --state "$WORK/$2.db" "${@:3}"; }
init() {
  local dev=$1 user=$2
  me init "$dev" --jid "$user@$MULTIEND_USER_DOMAIN" --password-file "$WORK/$user.pw" \
    --server "$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT" --ca-file "$MULTIEND_CA_FILE" \
    --component "$MULTIEND_COMPONENT_DOMAIN" --label "$dev" |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); j,n,f=d["jid"],d["device"],d["fingerprint"]; print(f"   {sys.argv[1]:14} {j:18} device {n:>10}  fingerprint {f[:35]}…")' "$dev"
}
say() {
  local dev=$1 to=$2 text=$3
  me send "$dev" --to "$to@$MULTIEND_USER_DOMAIN" --body "$text" |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); i,n=d["id"],len(d["devices"]); print(f"   {sys.argv[1]:14} → {sys.argv[2]:6} #{i:<3} \"{sys.argv[3]}\"  (encrypted for {n} devices)")' "$dev" "$to" "$text"
}

echo "== three devices register themselves (no keys copied by hand)"
init alice-phone alice
init alice-laptop alice
init bob-phone bob

echo "== a conversation"
say alice-phone bob "Hi Bob, lunch at noon?"
say bob-phone alice "Sure. Your usual place?"
me sync alice-laptop >/dev/null   # the laptop is up to date before it goes offline
say alice-phone bob "Yes. I'll bring the slides."

echo "== alice-laptop goes offline; messages keep flowing"
say bob-phone alice "Great, see you there."
say alice-phone bob "Running 5 minutes late, sorry!"
say bob-phone alice "No problem, I got us a table."

echo "== alice-laptop comes back and catches up from the archive"
me sync alice-laptop | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    if d["type"] == "synced":
        n = d["new"]
        print(f"   caught up: {n} new messages")
'
me sync alice-phone >/dev/null
me sync bob-phone >/dev/null

echo "== who saw what (each device's own decrypted history)"
python3 - "$CLI" "$WORK" <<'PY'
import json, subprocess, sys
cli, work = sys.argv[1], sys.argv[2]
devices = ["alice-phone", "alice-laptop", "bob-phone"]
hist = {d: [json.loads(l) for l in subprocess.run([cli, "history", "--state", f"{work}/{d}.db"],
        capture_output=True, text=True, check=True).stdout.splitlines()] for d in devices}
ids = sorted({e["id"] for h in hist.values() for e in h}, key=int)
print(f"   {'#':>3}  {'from':8} {'text':34}" + "".join(f"{d:>14}" for d in devices))
for i in ids:
    e = next(e for h in hist.values() for e in h if e["id"] == i)
    row = f"   {i:>3}  {e['from'].split('@')[0]:8} {e['body'][:34]:34}"
    for d in devices:
        row += f"{'✓':>14}" if any(x["id"] == i and x["type"] == "message" for x in hist[d]) else f"{'—':>14}"
    print(row)
same = len({json.dumps([(e["id"], e["body"]) for e in hist[d]]) for d in devices}) == 1
print(f"   every device holds the same {len(ids)} messages in the same order: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
PY

echo "== what the server stores (PostgreSQL, table messages): ciphertext only"
psql "$MULTIEND_PG_URL" -At -c "SELECT id, sender_bare, length(stanza), substr(stanza, strpos(stanza, '<payload>'), 60) FROM messages WHERE strpos(stanza, '<payload>') > 0 ORDER BY id LIMIT 3" |
  sed 's/^/   /; s/|/  /g'
if psql "$MULTIEND_PG_URL" -At -c "SELECT stanza FROM messages" | grep -q -e "lunch" -e "slides" -e "table"; then
  echo "   PLAINTEXT FOUND IN THE ARCHIVE" >&2; exit 1
fi
echo "   searched every stored stanza for the words of the conversation: none found"
echo "== done in $(( $(date +%s) - T0 )) s (after the build); tearing down"
