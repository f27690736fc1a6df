#!/usr/bin/env bash
# Sending benchmark: one script sending many messages to one contact through Prosody and the
# component, with the `multiend` CLI as scripts use it. Baselines from the same run:
#   one-at-a-time  `send --lines --window 1`: one connection, each message receipted before the
#                  next is encrypted (what the library did per message before the window);
#   one-shot       a `multiend send` process per message (connect, catch up, send, exit).
# Measured: `send --lines` with a window of $WINDOW and `run` ({"send":…} JSON commands), each
# message still committed to the outbox before it leaves and removed with its receipt. The
# component's resident memory is read from its /metrics (process_resident_memory_bytes) after
# each phase, and its peak from /proc (VmHWM).
#
#   bench/send_bench.sh            (root: the testbed runs PostgreSQL as `postgres`)
# Environment: MESSAGES=10000 BASELINE_MESSAGES=1000 ONESHOT=20 WINDOW=64 BUILD=build
#              RATE_LIMIT=raised|default (the component's per-account message rate) LINES_LOG=FILE
#              RESULTS=$BUILD/bench-send.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MESSAGES=${MESSAGES:-10000}
BASELINE_MESSAGES=${BASELINE_MESSAGES:-1000}
ONESHOT=${ONESHOT:-20}
WINDOW=${WINDOW:-64}
BUILD=${BUILD:-build}
RESULTS=${RESULTS:-$BUILD/bench-send.jsonl}
CLI=$REPO/$BUILD/client/multiend
COMPONENT=$REPO/$BUILD/server/multiend-component
[ -x "$CLI" ] && [ -x "$COMPONENT" ] || { echo "build $BUILD first (targets multiend multiend-component)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/multiend-sendbench.XXXXXX)
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
# One account sends at full speed: the per-account rate limit (100/s after a burst of 2,000 by
# default) is raised, as docs/configuration.md says to for bots. RATE_LIMIT=default keeps it.
if [ "${RATE_LIMIT:-raised}" = raised ]; then
  export MULTIEND_COMPONENT_EXTRA_CONFIG='"message_rate_per_account": 1000000, "message_burst_per_account": 10000000'
fi
"$REPO/deploy/testbed" start-component --dir "$WORK/testbed" --bin "$COMPONENT" --log-level warn 2>>"$WORK/testbed.log" \
  || { cat "$WORK/testbed.log" >&2; exit 1; }
HTTP=$(cat "$WORK/testbed/component/http")
PID=$(cat "$WORK/testbed/component/pid")
SERVER="$MULTIEND_XMPP_HOST:$MULTIEND_C2S_PORT"
DOMAIN=$MULTIEND_USER_DOMAIN

for u in carol dave; do
  printf '%spw\n' "$u" >"$WORK/$u.pw"
  chmod 600 "$WORK/$u.pw"
  "$CLI" init --state "$WORK/$u.db" --jid "$u@$DOMAIN" --password-file "$WORK/$u.pw" --server "$SERVER" \
    --ca-file "$MULTIEND_CA_FILE" --component "$MULTIEND_COMPONENT_DOMAIN" --label "$u" >/dev/null
done
me() { "$CLI" "$1" --state "$WORK/carol.db" "${@:2}"; }
rss() { python3 -c 'import re,sys,urllib.request
b = urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=5).read().decode()
print(int(float(re.search(r"^process_resident_memory_bytes (\S+)$", b, re.M).group(1))))' "$HTTP"; }
now() { date +%s.%N; }

echo "== warm-up: sessions both ways"
me send --to "dave@$DOMAIN" --body warm-up >/dev/null
"$CLI" sync --state "$WORK/dave.db" >/dev/null
"$CLI" send --state "$WORK/dave.db" --to "carol@$DOMAIN" --body back >/dev/null
me sync >/dev/null

echo "== one-at-a-time baseline: $BASELINE_MESSAGES messages, send --lines --window 1"
seq 1 "$BASELINE_MESSAGES" | sed 's/^/baseline /' >"$WORK/baseline.txt"
t0=$(now); me send --to "dave@$DOMAIN" --lines --window 1 <"$WORK/baseline.txt" >"$WORK/baseline.out"; t1=$(now)
BASE_S=$(echo "$t1 - $t0" | bc -l); RSS_BASE=$(rss)

echo "== one-shot baseline: $ONESHOT 'multiend send' processes"
t0=$(now)
for i in $(seq 1 "$ONESHOT"); do me send --to "dave@$DOMAIN" --body "one-shot $i" >/dev/null; done
t1=$(now); ONESHOT_S=$(echo "$t1 - $t0" | bc -l)

echo "== send --lines --window $WINDOW: $MESSAGES messages"
seq 1 "$MESSAGES" | sed 's/^/windowed /' >"$WORK/lines.txt"
t0=$(now); me send --to "dave@$DOMAIN" --lines --window "$WINDOW" ${LINES_LOG:+--log-level info} <"$WORK/lines.txt" >"$WORK/lines.out" 2>"${LINES_LOG:-/dev/stderr}"; t1=$(now)
LINES_S=$(echo "$t1 - $t0" | bc -l); RSS_LINES=$(rss)

echo "== run: $MESSAGES JSON send commands"
seq 1 "$MESSAGES" | awk -v to="dave@$DOMAIN" '{printf "{\"send\":{\"to\":[\"%s\"],\"body\":\"run %d\",\"ref\":%d}}\n", to, $1, $1}' >"$WORK/run.jsonl"
t0=$(now); me run --window "$WINDOW" <"$WORK/run.jsonl" >"$WORK/run.out"; t1=$(now)
RUN_S=$(echo "$t1 - $t0" | bc -l); RSS_RUN=$(rss)
HWM=$(awk '/^VmHWM/ {print $2 * 1024}' "/proc/$PID/status")

echo "== dave reads them all (each exactly once)"
"$CLI" sync --state "$WORK/dave.db" >"$WORK/dave.out"

python3 - "$WORK" "$MESSAGES" "$BASELINE_MESSAGES" "$ONESHOT" "$WINDOW" "$BASE_S" "$ONESHOT_S" "$LINES_S" "$RUN_S" \
  "$RSS_BASE" "$RSS_LINES" "$RSS_RUN" "$HWM" <<'PY' | tee -a "$RESULTS"
import collections, json, sqlite3, sys
work, n, nb, n1, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
base_s, oneshot_s, lines_s, run_s = map(float, sys.argv[6:10])
rss_base, rss_lines, rss_run, hwm = map(int, sys.argv[10:14])
def sent(path):
    return [json.loads(l) for l in open(path) if l.strip()]
assert sum(1 for o in sent(f"{work}/baseline.out") if o["type"] == "sent") == nb, "baseline: not every message receipted"
assert sum(1 for o in sent(f"{work}/lines.out") if o["type"] == "sent") == n, "send --lines: not every message receipted"
assert sum(1 for o in sent(f"{work}/run.out") if o["type"] == "sent") == n, "run: not every message receipted"
db = sqlite3.connect(f"{work}/carol.db")
assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, "the outbox is not empty"
got = collections.Counter(o.get("body") for o in sent(f"{work}/dave.out") if o.get("type") == "message")
for prefix, count in (("baseline ", nb), ("windowed ", n), ("run ", n)):
    read = {b: c for b, c in got.items() if b and b.startswith(prefix)}
    assert len(read) == count and all(c == 1 for c in read.values()), f"dave read {len(read)} of {count} '{prefix}' messages"
r = {"bench": "send", "messages": n, "window": window,
     "one_at_a_time_msg_s": nb / base_s, "oneshot_ms_per_process": 1000 * oneshot_s / n1,
     "lines_msg_s": n / lines_s, "run_msg_s": n / run_s,
     "component_rss_mib": {"after_baseline": rss_base / 2**20, "after_lines": rss_lines / 2**20,
                           "after_run": rss_run / 2**20, "peak": hwm / 2**20}}
print(json.dumps(r))
print(f"sending {n} messages to one contact through Prosody: send --lines (window {window}) "
      f"{r['lines_msg_s']:,.0f} msg/s, run {r['run_msg_s']:,.0f} msg/s; one at a time {r['one_at_a_time_msg_s']:,.0f} msg/s; "
      f"RATIO window / one-at-a-time {r['lines_msg_s'] / r['one_at_a_time_msg_s']:.1f}x; "
      f"one-shot send {r['oneshot_ms_per_process']:.0f} ms per process; "
      f"component RSS peak {r['component_rss_mib']['peak']:.1f} MiB")
PY
