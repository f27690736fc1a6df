#!/usr/bin/env bash
# The Multiend demo, start to end on one machine:
#   installs what is missing and builds (unless MULTIEND_DEMO_SKIP_BUILD=1), starts a throwaway
#   testbed (PostgreSQL + Prosody on free loopback ports in a temp dir), starts the archive
#   component, creates alice with two devices and bob with one, plus bob's phone app that speaks
#   only legacy OMEMO over PEP (as Conversations or Dino do: tests/e2e/oldmemo_xmpp_peer.py),
#   runs a short conversation, takes alice's second device offline while messages flow, brings it
#   back to catch up from both archives (the component's and the server's own MAM), prints who
#   saw what, shows that the database holds only ciphertext, tears down.
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

for u in alice bob; do printf '%spw\n' "$u" >"$WORK/$u.pw"; chmod 600 "$WORK/$u.pw"; done
me() { "$CLI" "$1" --state "$WORK/$2.db" "${@:3}"; }
init() {
  local dev=$1 user=$2
  me init "$dev" --jid "$user@$MULTIEND_USER_DOMAIN" --password-file "$WORK/$user.pw" \
    --server "$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT" --ca-file "$MULTIEND_CA_FILE" \
    --component "$MULTIEND_COMPONENT_DOMAIN" --label "$dev" |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); j,n,f=d["jid"],d["device"],d["fingerprint"]; print(f"   {sys.argv[1]:17} {j:18} device {n:>10}  fingerprint {f[:35]}…")' "$dev"
}
say() {
  local dev=$1 to=$2 text=$3
  me send "$dev" --to "$to@$MULTIEND_USER_DOMAIN" --body "$text" |
    python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
via = {}
for x in d["devices"]:
    via[x["protocol"]] = via.get(x["protocol"], 0) + 1
how = ", ".join(f"{n} {p}" for p, n in sorted(via.items()))
dev, to, text, n = sys.argv[1], sys.argv[2], sys.argv[3], len(d["devices"])
print(f"   {dev:17} → {to:6} \"{text}\"  (encrypted for {n} devices: {how})")' "$dev" "$to" "$text"
}
# bob's other phone app: legacy OMEMO only, keys in bob's PEP, no Multiend component
LEGACY="/usr/bin/python3 $REPO/tests/e2e/oldmemo_xmpp_peer.py"
legacy() { $LEGACY "$1" --state "$WORK/$2.json" "${@:3}"; }

echo "== three devices register themselves (no keys copied by hand)"
init alice-phone alice
init alice-laptop alice
init bob-phone bob
legacy init bob-conversations --jid "bob@$MULTIEND_USER_DOMAIN" --password bobpw \
  --server "$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT" --ca-file "$MULTIEND_CA_FILE" |
  python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); j,n,f=d["jid"],d["device"],d["fingerprint"]; print(f"   {sys.argv[1]:17} {j:18} device {n:>10}  fingerprint {f[:35]}…  (legacy OMEMO app)")' bob-conversations

echo "== a conversation"
say alice-phone bob "Hi Bob, lunch at noon?"
say bob-phone alice "Sure. Your usual place?"
me sync alice-laptop >/dev/null   # the laptop is up to date before it goes offline
say alice-phone bob "Yes. I'll bring the slides."

echo "== alice-laptop goes offline; messages keep flowing"
legacy sync bob-conversations >"$WORK/bob-conversations.seen"  # the app was online: it read them
legacy send bob-conversations --to "alice@$MULTIEND_USER_DOMAIN" --body "Great, see you there." |
  python3 -c 'import json,sys; n=len(json.loads(sys.stdin.read())["devices"]); print(f"   bob-conversations → alice  \"Great, see you there.\"  (a legacy OMEMO chat message, encrypted for {n} devices)")'
echo "Great, see you there." >"$WORK/bob-conversations.sent"
say alice-phone bob "Running 5 minutes late, sorry!"
say bob-phone alice "No problem, I got us a table."

echo "== alice-laptop comes back and catches up from the archive and from the server's MAM"
me sync alice-laptop | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    if d["type"] == "synced":
        a, s = d["new"], d["from_server"]
        print(f"   caught up: {a} from the archive, {s} from the server")
'
me sync alice-phone >/dev/null
me sync bob-phone >/dev/null
legacy sync bob-conversations >>"$WORK/bob-conversations.seen"

echo "== who saw what (each device's own decrypted history)"
python3 - "$CLI" "$WORK" <<'PY'
import json, subprocess, sys
cli, work = sys.argv[1], sys.argv[2]
devices = ["alice-phone", "alice-laptop", "bob-phone"]
hist = {d: [json.loads(l) for l in subprocess.run([cli, "history", "--state", f"{work}/{d}.db"],
        capture_output=True, text=True, check=True).stdout.splitlines()] for d in devices}
legacy = [json.loads(l) for l in open(f"{work}/bob-conversations.seen")]
seen = {d: {(e["from"], e["body"]) for e in h if e["type"] == "message"} for d, h in hist.items()}
seen["bob-conversations"] = {(e["from"], e["body"]) for e in legacy if e.get("type") == "message"}
sent_by_app = open(f"{work}/bob-conversations.sent").read().strip()  # an app cannot decrypt its own
seen["bob-conversations"] |= {(e["from"], e["body"]) for e in hist["bob-phone"] if e["body"] == sent_by_app}
rows = [(e["from"], e["body"], e["protocol"]) for e in hist["alice-laptop"] if e["type"] == "message"]
cols = devices + ["bob-conversations"]
print(f"   {'from':6} {'text':32} {'via':8}" + "".join(f"{d:>18}" for d in cols))
everyone = True
for frm, body, proto in rows:
    marks = ["✓" if (frm, body) in seen[d] else "—" for d in cols]
    everyone &= all(m == "✓" for m in marks)
    print(f"   {frm.split('@')[0]:6} {body[:32]:32} {proto:8}" + "".join(f"{m:>18}" for m in marks))
archive_order = {d: [e["id"] for e in h if e["via"] == "archive"] for d, h in hist.items()}
same = len({json.dumps(v) for v in archive_order.values()}) == 1
print(f"   every device saw all {len(rows)} messages: {'yes' if everyone else 'NO'}; "
      f"the Multiend devices list the archive's {len(archive_order['alice-laptop'])} in the same order: {'yes' if same else 'NO'}")
sys.exit(0 if same and everyone and len(rows) == 6 else 1)
PY

echo "== what the server stores (PostgreSQL, table messages): ciphertext only"
psql "$MULTIEND_PG_URL" -At -c "SELECT id, sender_bare, length(stanza), substr(stanza, strpos(stanza, '<payload>'), 60) FROM messages WHERE strpos(stanza, '<payload>') > 0 ORDER BY id LIMIT 3" |
  sed 's/^/   /; s/|/  /g'
if psql "$MULTIEND_PG_URL" -At -c "SELECT stanza FROM messages" | grep -q -e "lunch" -e "slides" -e "table"; then
  echo "   PLAINTEXT FOUND IN THE ARCHIVE" >&2; exit 1
fi
echo "   searched every stored stanza for the words of the conversation: none found"
echo "== done in $(( $(date +%s) - T0 )) s (after the build); tearing down"
