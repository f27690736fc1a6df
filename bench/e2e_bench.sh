#!/usr/bin/env bash
# End-to-end benchmark: several scripts send at once through Prosody and the archive component,
# and the same traffic through a do-nothing component (bench/null_component.py: receipts and
# fan-out headlines, nothing stored), which is the XMPP server's ceiling for this traffic. The
# figure is the ratio of the two rates, measured in the same run.
#
#   bench/e2e_bench.sh            (root: the testbed runs PostgreSQL as `postgres`)
#
# 1. deploy/testbed up; the component from $BUILD (its per-account message rate raised, as for
#    bots); SENDERS pairs sN → rN register with the CLI and exchange a message both ways;
# 2. real: every sender runs `multiend send --lines --window $WINDOW` with MESSAGES/SENDERS lines
#    to its receiver, all at once; wall time from the first start to the last exit;
# 3. the component is stopped, the device lists are copied into the null component, which takes
#    its place; the same traffic again;
# 4. prints both rates, the ratio, and the CPU seconds Prosody, the component (or the null
#    component) and PostgreSQL spent in each phase.
# Environment: MESSAGES=20000 SENDERS=4 WINDOW=64 BUILD=build RESULTS=$BUILD/bench-e2e.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MESSAGES=${MESSAGES:-20000}
SENDERS=${SENDERS:-4}
WINDOW=${WINDOW:-64}
BUILD=${BUILD:-build}
RESULTS=${RESULTS:-$BUILD/bench-e2e.jsonl}
CLI=$REPO/$BUILD/client/multiend
COMPONENT=$REPO/$BUILD/server/multiend-component
[ -x "$CLI" ] && [ -x "$COMPONENT" ] || { echo "build $BUILD first (targets multiend multiend-component)" >&2; exit 2; }
PER=$((MESSAGES / SENDERS))

WORK=$(mktemp -d /tmp/multiend-e2ebench.XXXXXX)
chmod 755 "$WORK"
NULL_PID=""
cleanup() {
  [ -n "$NULL_PID" ] && kill "$NULL_PID" 2>/dev/null || true
  "$REPO/deploy/testbed" down --dir "$WORK/testbed" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

USERS=""
for i in $(seq 1 "$SENDERS"); do USERS="$USERS s$i r$i"; done
"$REPO/deploy/testbed" up --dir "$WORK/testbed" --users "${USERS# }" >"$WORK/testbed.log" 2>&1 \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$WORK/testbed/env"
set +a
export MULTIEND_COMPONENT_EXTRA_CONFIG='"message_rate_per_account": 1000000, "message_burst_per_account": 10000000'
"$REPO/deploy/testbed" start-component --dir "$WORK/testbed" --bin "$COMPONENT" --log-level warn 2>>"$WORK/testbed.log" \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
SERVER="$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT"
DOMAIN=$MULTIEND_USER_DOMAIN

cli() { "$CLI" "$1" --state "$WORK/$2.db" "${@:3}"; }
for u in $USERS; do
  printf '%spw\n' "$u" >"$WORK/$u.pw"
  chmod 600 "$WORK/$u.pw"
  "$CLI" init --state "$WORK/$u.db" --jid "$u@$DOMAIN" --password-file "$WORK/$u.pw" --server "$SERVER" \
    --ca-file "$MULTIEND_CA_FILE" --component "$MULTIEND_COMPONENT_DOMAIN" --label "$u" >/dev/null
done
echo "== $SENDERS pairs: sessions both ways"
for i in $(seq 1 "$SENDERS"); do
  cli send "s$i" --to "r$i@$DOMAIN" --body hello >/dev/null
  cli sync "r$i" >/dev/null
  cli send "r$i" --to "s$i@$DOMAIN" --body back >/dev/null
  cli sync "s$i" >/dev/null
done

prosody_pid() { pgrep -f "prosody.*$WORK" | head -1; }
ticks() { local t=0; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
pg_pids() { pgrep -u postgres -d ' ' postgres || true; }
HZ=$(getconf CLK_TCK)
PROSODY=$(prosody_pid)

# phase NAME OTHER_PID: all senders at once; prints "seconds prosody_cpu other_cpu pg_cpu".
phase() {
  local name=$1 other=$2 pids=() t0 t1 p0 o0 g0
  for i in $(seq 1 "$SENDERS"); do seq 1 "$PER" | sed "s/^/$name $i /" >"$WORK/$name-$i.txt"; done
  p0=$(ticks "$PROSODY"); o0=$(ticks "$other"); g0=$(ticks $(pg_pids))
  t0=$(date +%s.%N)
  for i in $(seq 1 "$SENDERS"); do
    cli send "s$i" --to "r$i@$DOMAIN" --lines --window "$WINDOW" --timeout 60 <"$WORK/$name-$i.txt" >"$WORK/$name-$i.out" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  for i in $(seq 1 "$SENDERS"); do
    n=$(grep -c '"type":"sent"' "$WORK/$name-$i.out")
    [ "$n" -eq "$PER" ] || { echo "$name: sender $i got $n receipts of $PER" >&2; exit 1; }
  done
  echo "$(echo "$t1 - $t0" | bc -l) $(( ($(ticks "$PROSODY") - p0) )) $(( ($(ticks "$other") - o0) )) $(( ($(ticks $(pg_pids)) - g0) ))"
}

echo "== real component: $SENDERS senders × $PER messages"
REAL=$(phase real "$(cat "$WORK/testbed/component/pid")")
ARCHIVED=$(psql "$MULTIEND_PG_URL" -Atc "SELECT count(*) FROM messages WHERE stanza LIKE '%<payload>%' AND sender_bare LIKE 's%'")

echo "== null component (receipts and fan-out, nothing stored): the same traffic"
psql "$MULTIEND_PG_URL" -Atc "SELECT json_object_agg(owner, ids) FROM (SELECT owner, json_agg(device_id) AS ids FROM devices GROUP BY owner) d" >"$WORK/devices.json"
"$REPO/deploy/testbed" stop-component --dir "$WORK/testbed" >/dev/null 2>&1
/usr/bin/python3 "$REPO/bench/null_component.py" --testbed-dir "$WORK/testbed" --devices "$WORK/devices.json" \
  >"$WORK/null.json" 2>"$WORK/null.log" &
NULL_PID=$!
for _ in $(seq 1 100); do grep -q attached "$WORK/null.log" 2>/dev/null && break; sleep 0.1; done
grep -q attached "$WORK/null.log" || { cat "$WORK/null.log" >&2; exit 1; }
NULL=$(phase null "$NULL_PID")
kill -TERM "$NULL_PID"; wait "$NULL_PID" || true; NULL_PID=""

python3 - "$MESSAGES" "$SENDERS" "$WINDOW" "$HZ" "$ARCHIVED" "$REAL" "$NULL" "$(cat "$WORK/null.json")" <<'PY' | tee -a "$RESULTS"
import json, sys
n, senders, window, hz, archived = map(int, sys.argv[1:6])
real, null = [list(map(float, a.split())) for a in sys.argv[6:8]]
nulljson = json.loads(sys.argv[8])
assert archived >= n, f"the archive holds {archived} of the {n} messages"
assert nulljson["messages"] >= n, f"the null component saw {nulljson['messages']} messages"
def rate(p): return n / p[0]
r = {"bench": "e2e", "messages": n, "senders": senders, "window": window,
     "real_msg_s": rate(real), "null_msg_s": rate(null), "ratio": rate(real) / rate(null),
     "cpu_seconds": {"real": {"prosody": real[1] / hz, "component": real[2] / hz, "postgres": real[3] / hz},
                     "null": {"prosody": null[1] / hz, "null_component": null[2] / hz, "postgres": null[3] / hz}},
     "seconds": {"real": real[0], "null": null[0]}}
print(json.dumps(r))
c = r["cpu_seconds"]
print(f"end to end, {senders} senders × {n // senders} messages through Prosody: component {r['real_msg_s']:,.0f} msg/s, "
      f"do-nothing component {r['null_msg_s']:,.0f} msg/s: RATIO component / do-nothing {r['ratio']:.2f}; "
      f"CPU s (prosody/component/postgres): {c['real']['prosody']:.1f}/{c['real']['component']:.1f}/{c['real']['postgres']:.1f} "
      f"vs {c['null']['prosody']:.1f}/{c['null']['null_component']:.1f}/{c['null']['postgres']:.1f}")
PY
