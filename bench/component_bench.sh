#!/usr/bin/env bash
# Component benchmark: the Multiend archive component alone (bench/component_load plays the XMPP
# server's side of XEP-0114), against baselines measured in the same run on the same PostgreSQL.
#
#   bench/component_bench.sh            (root: the testbed runs PostgreSQL as `postgres`)
#
# 1. builds bench/component_load and bench/insert_baseline (g++, nice, one at a time; skipped
#    when the binaries are newer than their sources) into $BUILD/bench-component/;
# 2. deploy/testbed up (only its PostgreSQL is used; Prosody is stopped at once);
#    DURABLE=1 (default) turns fsync and full_page_writes back on (the testbed runs with
#    fsync=off) with ALTER SYSTEM + reload inside the testbed's own data dir;
# 3. migrates the component's schema into `public` and a copy into `bench_baseline`;
# 4. write path: component_load registers USERS users × 2 devices, sends WARMUP messages, then
#    ROUNDS × MESSAGES messages (3 recipients × 2 devices + the sender's other device, 1 KiB
#    payload) with WINDOW in flight, then LIGHT messages one at a time; the component runs
#    against it; then the database is checked (rows, pending fan-out);
# 5. baseline: insert_baseline writes the same rows (1 stanza row of the component's measured
#    average size + 4 archive rows per message) with multi-row INSERT (100/tx) and COPY
#    (1000/tx), ROUNDS × BASELINE_MESSAGES each, into bench_baseline; and, to split the gap, the
#    component's own statements for those rows replayed without XMPP (component_sql);
# 6. MAM: bench/fill_archive.sql fills ARCHIVE_MESSAGES messages across MAM_USERS users (two
#    sessions in parallel, fsync off while filling: the fill is not a figure), VACUUM ANALYZE,
#    durability back on; component_load --mode mam runs MAM_QUERIES pages of 50 through the
#    component, insert_baseline --mam-ids runs the same page SQL alone (the MAM baseline);
# 7. prints a summary (ratios to the baselines) and writes everything to RESULTS_DIR.
# The testbed, the component and the generator are stopped at the end, also on failure.
#
# Environment (defaults): MESSAGES=20000 ROUNDS=3 WARMUP=1000 WINDOW=500 USERS=100 LIGHT=300 PACED_SECONDS=5
#   PAYLOAD_BYTES=1024 BASELINE_MESSAGES=$MESSAGES ARCHIVE_MESSAGES=1000000 MAM_USERS=1000
#   MAM_QUERIES=1500 DURABLE=1 WAL_INIT_ZERO=off SKIP_MAM=0 BUILD=build RESULTS_DIR=$BUILD/bench-component/results
#   BASELINE_EXTERNAL=0 (1: also run the INSERT/COPY baseline with the stanza column stored
#   EXTERNAL, i.e. without the pglz compression attempt; informational)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

MESSAGES=${MESSAGES:-20000}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1000}
WINDOW=${WINDOW:-500}
USERS=${USERS:-100}
LIGHT=${LIGHT:-300}
PACED_SECONDS=${PACED_SECONDS:-5}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-1024}
BASELINE_MESSAGES=${BASELINE_MESSAGES:-$MESSAGES}
ARCHIVE_MESSAGES=${ARCHIVE_MESSAGES:-1000000}
MAM_USERS=${MAM_USERS:-1000}
MAM_QUERIES=${MAM_QUERIES:-1500}
DURABLE=${DURABLE:-1}
# A fresh cluster has no WAL segments to recycle, so with wal_init_zero=on each new 16 MB
# segment is zero-filled and fsynced first: a ~200 ms stall every ~1.1 s at 2,800 messages/s
# (seen as the only latency spikes at half load). A server in steady state recycles segments;
# off makes the bench see that. WAL_INIT_ZERO=on shows the fresh-cluster behaviour.
WAL_INIT_ZERO=${WAL_INIT_ZERO:-off}
SKIP_MAM=${SKIP_MAM:-0}
BASELINE_EXTERNAL=${BASELINE_EXTERNAL:-0}
BUILD=${BUILD:-build}
BIN=$REPO/$BUILD/bench-component
RESULTS_DIR=${RESULTS_DIR:-$BIN/results}
PY=/usr/bin/python3
T_START=$(date +%s)

say() { echo "component_bench: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
elapsed() { echo "$(( $(date +%s) - T_START ))s"; }

[ "$(id -u)" -eq 0 ] || die "needs root (the testbed runs PostgreSQL as the postgres user)"
[ -x "$BUILD/server/multiend-component" ] || die "$BUILD/server/multiend-component missing: build the project first"
for lib in "$BUILD/protocol/libmultiend_protocol.a" "$BUILD/protocol/libmultiend_proto_gen.a"; do
  [ -f "$lib" ] || die "$lib missing: build the project first"
done
COMPONENT=$REPO/$BUILD/server/multiend-component

# ---------------------------------------------------------------------------------------------
# build (one compiler at a time, niced: the machine has 2 cores)
mkdir -p "$BIN" "$RESULTS_DIR"
CXXFLAGS=(-std=c++20 -O2 -g -Wall -Wextra -Wno-maybe-uninitialized -Wno-mismatched-new-delete)
needs_build() {  # binary sources…
  local bin=$1; shift
  [ -x "$bin" ] || return 0
  local s
  for s in "$@"; do [ "$s" -nt "$bin" ] && return 0; done
  return 1
}
if needs_build "$BIN/component_load" bench/component_load.cpp "$BUILD/protocol/libmultiend_protocol.a"; then
  say "building component_load"
  nice g++ "${CXXFLAGS[@]}" -I. -I"$BUILD/protocol" bench/component_load.cpp \
    "$BUILD/protocol/libmultiend_protocol.a" "$BUILD/protocol/libmultiend_proto_gen.a" \
    -lsodium -lcrypto -lexpat -lprotobuf-lite -pthread -o "$BIN/component_load" || die "building component_load"
fi
if needs_build "$BIN/insert_baseline" bench/insert_baseline.cpp; then
  say "building insert_baseline"
  nice g++ "${CXXFLAGS[@]}" bench/insert_baseline.cpp -lpqxx -lpq -lsodium -o "$BIN/insert_baseline" \
    || die "building insert_baseline"
fi

# ---------------------------------------------------------------------------------------------
# processes we start, and teardown
WORK=$(mktemp -d /tmp/multiend-bench.XXXXXX)
chmod 755 "$WORK"  # the postgres user must reach the testbed inside it
TESTBED=$WORK/testbed
GEN_PID=""
COMP_PID=""
FILL_PIDS=()

stop_pid() {  # pid [seconds]: TERM, wait, then KILL — only a process this script started
  local pid=$1 secs=${2:-15}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "pid $pid did not stop in ${secs}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$GEN_PID" 5
  stop_pid "$COMP_PID" 15
  local p
  for p in "${FILL_PIDS[@]}"; do stop_pid "$p" 5; done
  if [ -f "$TESTBED/env" ]; then
    "$REPO/deploy/testbed" down --dir "$TESTBED" >/dev/null 2>&1 || say "testbed down failed (dir $TESTBED)"
  fi
  if [ $rc -ne 0 ]; then
    say "exit $rc; logs and partial results in $RESULTS_DIR"
    cp -f "$WORK"/*.log "$WORK"/*.json "$RESULTS_DIR"/ 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------------------------------------
# testbed: PostgreSQL only
say "testbed up in $TESTBED ($(elapsed))"
"$REPO/deploy/testbed" up --dir "$TESTBED" --users "" >"$WORK/testbed.log" 2>&1 || { cat "$WORK/testbed.log" >&2; die "testbed up"; }
"$REPO/deploy/testbed" stop-prosody --dir "$TESTBED" >>"$WORK/testbed.log" 2>&1 || true
set -a; . "$TESTBED/env"; set +a
DB=$MULTIEND_DATABASE_URL
psql_db() { psql -X -q -v ON_ERROR_STOP=1 "$DB" "$@"; }
psql_su() {  # superuser over the testbed's own socket dir
  (cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 \
    -h "$TESTBED/pg/run" -p "$MULTIEND_PG_PORT" -U postgres -d postgres "$@")
}
set_pg() {  # name=value … ; ALTER SYSTEM + reload (all of these are reloadable)
  local kv
  for kv in "$@"; do psql_su -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'"; done
  psql_su -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.3
}
pg_settings_json() {
  psql_db -At -c "SELECT json_object_agg(name, setting) FROM pg_settings WHERE name IN
    ('fsync','synchronous_commit','full_page_writes','wal_sync_method','wal_init_zero','shared_buffers','max_wal_size','server_version')"
}
say "testbed's own settings: $(pg_settings_json)"
if [ "$DURABLE" = 1 ]; then
  set_pg fsync=on full_page_writes=on synchronous_commit=on wal_init_zero="$WAL_INIT_ZERO"
  psql_su -c "CHECKPOINT"
fi
WRITE_SETTINGS=$(pg_settings_json)
say "write benchmarks run with: $WRITE_SETTINGS"

# ---------------------------------------------------------------------------------------------
# schema
MULTIEND_DATABASE_URL="$DB" "$COMPONENT" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrate"; }
psql_db -c "CREATE SCHEMA bench_baseline"
MULTIEND_DATABASE_URL="$DB?options=-csearch_path%3Dbench_baseline" "$COMPONENT" migrate >>"$WORK/migrate.log" 2>&1 \
  || { cat "$WORK/migrate.log" >&2; die "migrate (bench_baseline)"; }
MULTIEND_COMPONENT_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export MULTIEND_COMPONENT_SECRET

# Starts component_load (args…) and then the component pointed at it; sets GEN_PID, COMP_PID,
# HTTP_PORT. $1 = a name for the files.
start_pair() {
  local name=$1; shift
  rm -f "$WORK/$name.port" "$WORK/$name.pid"
  HTTP_PORT=$(free_port)
  "$BIN/component_load" --port-file "$WORK/$name.port" --component-pid-file "$WORK/$name.pid" \
    --metrics-address "127.0.0.1:$HTTP_PORT" "$@" >"$WORK/$name.json" 2>"$WORK/$name-generator.log" &
  GEN_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; kill -0 "$GEN_PID" 2>/dev/null || break; sleep 0.1; done
  [ -s "$WORK/$name.port" ] || { cat "$WORK/$name-generator.log" >&2; die "component_load did not start"; }
  ( umask 077; : >"$WORK/$name-config.json" )  # it may hold the database password
  ( umask 077; : >"$WORK/$name-config.json" )  # it holds the database password: the component wants it private
  cat >"$WORK/$name-config.json" <<EOF
{"xmpp_host": "127.0.0.1", "component_port": $(cat "$WORK/$name.port"), "component_domain": "$MULTIEND_COMPONENT_DOMAIN",
 "user_domain": "$MULTIEND_USER_DOMAIN", "database_url": "$DB", "http_address": "127.0.0.1:$HTTP_PORT",
 "reconnect_max_backoff_seconds": 1}
EOF
  "$COMPONENT" --config "$WORK/$name-config.json" >"$WORK/$name-component.log" 2>&1 &
  COMP_PID=$!
  echo "$COMP_PID" >"$WORK/$name.pid.tmp" && mv "$WORK/$name.pid.tmp" "$WORK/$name.pid"
  # PERF=PREFIX: a CPU profile of the component in this round, PREFIX.<round> (perf record -g).
  PERF_PID=""
  if [ -n "${PERF:-}" ]; then perf record -q -g -p "$COMP_PID" -o "$PERF.$name" 2>/dev/null & PERF_PID=$!; fi
}

# Waits for the generator, then stops the component (SIGTERM: it drains and flushes its marks).
finish_pair() {
  local name=$1 rc=0
  wait "$GEN_PID" || rc=$?
  GEN_PID=""
  if [ -n "${PERF_PID:-}" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""; fi
  curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK/$name-metrics.txt" 2>/dev/null || true
  # Peak resident memory of the component in this phase (VmHWM), beside /metrics' current figure.
  awk '/^VmHWM/ {print $2 * 1024}' "/proc/$COMP_PID/status" >"$WORK/$name-hwm.txt" 2>/dev/null || true
  stop_pid "$COMP_PID" 20
  wait "$COMP_PID" 2>/dev/null || true
  COMP_PID=""
  if [ $rc -ne 0 ]; then
    tail -n 20 "$WORK/$name-generator.log" "$WORK/$name-component.log" >&2 || true
    die "component_load ($name) exited with $rc"
  fi
}

# ---------------------------------------------------------------------------------------------
# write path through the component
say "load: $USERS users × 2 devices, warm-up $WARMUP, $ROUNDS × $MESSAGES messages, window $WINDOW ($(elapsed))"
start_pair load --mode load --users "$USERS" --messages "$MESSAGES" --rounds "$ROUNDS" --warmup "$WARMUP" \
  --window "$WINDOW" --payload-bytes "$PAYLOAD_BYTES" --light "$LIGHT" --paced-seconds "$PACED_SECONDS" --timeout 420
finish_pair load
grep -E "round|light|registered" "$WORK/load-generator.log" | sed 's/^/  /' >&2 || true
# What the database holds afterwards.
psql_db -At -c "SELECT json_build_object(
    'messages', (SELECT count(*) FROM messages),
    'archive_rows', (SELECT count(*) FROM archive),
    'not_fanned_out', (SELECT count(*) FROM messages WHERE NOT fanned_out),
    'messages_without_4_archive_rows', (SELECT count(*) FROM (SELECT m.id FROM messages m LEFT JOIN archive a
        ON a.message_id = m.id GROUP BY m.id HAVING count(a.owner) <> 4) x),
    'stanza_bytes_avg', (SELECT avg(length(stanza))::int FROM messages),
    'toast_compressed_share', (SELECT round(avg(CASE WHEN pg_column_size(stanza) < length(stanza) THEN 1 ELSE 0 END), 3) FROM messages))" \
  >"$WORK/load-db.json"
say "database after the load: $(cat "$WORK/load-db.json")"
STANZA_BYTES=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["stanza_bytes_avg"])' "$WORK/load-db.json")

# ---------------------------------------------------------------------------------------------
# baseline: the same rows, plain INSERT and COPY
say "baseline: $ROUNDS × $BASELINE_MESSAGES messages, stanza $STANZA_BYTES bytes ($(elapsed))"
psql_su -c "CHECKPOINT"
"$BIN/insert_baseline" --database-url "$DB" --schema bench_baseline --messages "$BASELINE_MESSAGES" \
  --rounds "$ROUNDS" --stanza-bytes "$STANZA_BYTES" --users "$USERS" >"$WORK/baseline.json" 2>"$WORK/baseline.log" \
  || { cat "$WORK/baseline.log" >&2; die "insert_baseline"; }
sed 's/^/  /' "$WORK/baseline.log" >&2
if [ "$BASELINE_EXTERNAL" = 1 ]; then
  psql_db -c "ALTER TABLE bench_baseline.messages ALTER stanza SET STORAGE EXTERNAL"
  psql_su -c "CHECKPOINT"
  "$BIN/insert_baseline" --database-url "$DB" --schema bench_baseline --messages "$BASELINE_MESSAGES" \
    --rounds "$ROUNDS" --stanza-bytes "$STANZA_BYTES" --users "$USERS" >"$WORK/baseline-external.json" \
    2>"$WORK/baseline-external.log" || { cat "$WORK/baseline-external.log" >&2; die "insert_baseline (external)"; }
fi
psql_db -c "SET client_min_messages = warning" -c "DROP SCHEMA bench_baseline CASCADE"

# ---------------------------------------------------------------------------------------------
# MAM
MAM_SETTINGS="{}"
if [ "$SKIP_MAM" != 1 ]; then
  say "fill: $ARCHIVE_MESSAGES messages across $MAM_USERS users, two sessions, fsync off while filling ($(elapsed))"
  set_pg fsync=off full_page_writes=off max_wal_size=8GB
  half=$(( ARCHIVE_MESSAGES / 2 ))
  t0=$(date +%s.%N)
  psql_db -v n="$ARCHIVE_MESSAGES" -v users="$MAM_USERS" -v first=1 -v last="$half" -v vacuum=false \
    -v user_domain="$MULTIEND_USER_DOMAIN" -v component_domain="$MULTIEND_COMPONENT_DOMAIN" \
    -f bench/fill_archive.sql >"$WORK/fill-1.log" 2>&1 &
  FILL_PIDS+=($!)
  psql_db -v n="$ARCHIVE_MESSAGES" -v users="$MAM_USERS" -v first=$((half + 1)) -v last="$ARCHIVE_MESSAGES" -v vacuum=false \
    -v user_domain="$MULTIEND_USER_DOMAIN" -v component_domain="$MULTIEND_COMPONENT_DOMAIN" \
    -f bench/fill_archive.sql >"$WORK/fill-2.log" 2>&1 &
  FILL_PIDS+=($!)
  for p in "${FILL_PIDS[@]}"; do wait "$p" || { cat "$WORK"/fill-*.log >&2; die "fill"; }; done
  FILL_PIDS=()
  t1=$(date +%s.%N)
  psql_db -c "VACUUM ANALYZE messages" -c "VACUUM ANALYZE archive" -c "VACUUM ANALYZE owners"
  t2=$(date +%s.%N)
  psql_su -c "ALTER SYSTEM RESET max_wal_size"
  if [ "$DURABLE" = 1 ]; then set_pg fsync=on full_page_writes=on; else set_pg fsync=off full_page_writes=off; fi
  psql_su -c "CHECKPOINT"
  MAM_SETTINGS=$(pg_settings_json)
  psql_db -At -c "SELECT json_build_object('messages', (SELECT count(*) FROM messages),
      'archive_rows', (SELECT count(*) FROM archive),
      'fill_users', $MAM_USERS,
      'archive_rows_per_fill_user', (SELECT round(count(*)::numeric / $MAM_USERS) FROM archive WHERE owner LIKE 'user%'),
      'database_size', pg_size_pretty(pg_database_size(current_database())),
      'fill_seconds', round(($t1 - $t0)::numeric, 1), 'vacuum_analyze_seconds', round(($t2 - $t1)::numeric, 1))" \
    >"$WORK/fill.json"
  say "archive: $(cat "$WORK/fill.json")"
  # Random ids of the fill users' archives, for RSM after/before.
  psql_db -At -F ' ' -c "SELECT split_part(a.owner, '@', 1), a.message_id FROM archive a
      WHERE a.message_id IN (SELECT lo + floor(random() * (hi - lo + 1))::bigint
                             FROM generate_series(1, $MAM_QUERIES), (SELECT min(id) lo, max(id) hi FROM messages) b)
        AND a.owner LIKE 'user%'" >"$WORK/mam-ids.txt"
  say "MAM: $MAM_QUERIES pages of 50 through the component, one at a time ($(elapsed))"
  start_pair mam --mode mam --ids-file "$WORK/mam-ids.txt" --queries "$MAM_QUERIES" --mam-users "$MAM_USERS" \
    --mam-user-prefix user --timeout 300
  finish_pair mam
  say "MAM baseline: the same page SQL from insert_baseline ($(elapsed))"
  "$BIN/insert_baseline" --database-url "$DB" --mam-ids "$WORK/mam-ids.txt" --queries "$MAM_QUERIES" \
    --mam-users "$MAM_USERS" --mam-user-prefix user --user-domain "$MULTIEND_USER_DOMAIN" \
    >"$WORK/mam-baseline.json" 2>"$WORK/mam-baseline.log" || { cat "$WORK/mam-baseline.log" >&2; die "MAM baseline"; }
fi

# ---------------------------------------------------------------------------------------------
# results
echo "$WRITE_SETTINGS" >"$WORK/write-settings.json"
echo "$MAM_SETTINGS" >"$WORK/mam-settings.json"
cp -f "$WORK"/*.json "$WORK"/*.log "$WORK"/*-metrics.txt "$RESULTS_DIR"/ 2>/dev/null || true
$PY - "$WORK" "$(elapsed)" <<'PY' | tee "$RESULTS_DIR/summary.txt"
import json, os, sys
w, took = sys.argv[1], sys.argv[2]
def load(name):
    p = os.path.join(w, name)
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None
ld, db, bl, ws = load("load.json"), load("load-db.json"), load("baseline.json"), load("write-settings.json")
ble, fill, mam, mb, ms = load("baseline-external.json"), load("fill.json"), load("mam.json"), load("mam-baseline.json"), load("mam-settings.json")
f = lambda v: f"{v:,.0f}"
print()
print(f"Multiend component benchmark (PostgreSQL {ws['server_version']}; writes with fsync={ws['fsync']}, "
      f"synchronous_commit={ws['synchronous_commit']}, full_page_writes={ws['full_page_writes']}, "
      f"wal_init_zero={ws.get('wal_init_zero', '?')}; whole run {took})")
print()
print(f"Write path: {ld['users']} users × {ld['devices_per_user']} devices, {ld['recipients_per_message']} recipients "
      f"+ the sender's other device per message, {ld['payload_bytes']} B payload, stored stanza {db['stanza_bytes_avg']} B,")
print(f"  window {ld['window']}, {len(ld['rounds'])} rounds × {ld['rounds'][0]['messages']:,} messages (median round shown)")
rows = [
    ("component: messages archived/s", f(ld["archived_per_s"])),
    ("component: fan-out stanzas/s (4 per message)", f(ld["fanout_stanzas_per_s"])),
    (f"component: receipt latency p50 / p99, window {ld['window']}", f"{ld['receipt_p50_ms']:.1f} / {ld['receipt_p99_ms']:.1f} ms"),
]
if "light_load" in ld:
    rows.append(("component: receipt latency p50 / p99, window 1", f"{ld['light_load']['p50_ms']:.2f} / {ld['light_load']['p99_ms']:.2f} ms"))
if "half_peak" in ld:
    hp = ld["half_peak"]
    rows.append((f"component: receipt latency p50 / p99 at half the peak rate ({hp['rate_per_s']:,.0f}/s)",
                 f"{hp['p50_ms']:.2f} / {hp['p99_ms']:.2f} ms"))
rows += [
    (f"baseline: multi-row INSERT, {bl['insert_batch']}/tx, messages/s", f(bl["insert"]["messages_per_s"])),
    (f"baseline: COPY, {bl['copy_batch']}/tx, messages/s", f(bl["copy"]["messages_per_s"])),
    ("RATIO component / INSERT baseline", f"{ld['archived_per_s'] / bl['insert']['messages_per_s']:.2f}"),
    ("RATIO component / COPY baseline", f"{ld['archived_per_s'] / bl['copy']['messages_per_s']:.2f}"),
]
if "component_sql" in bl:
    cs = bl["component_sql"]["messages_per_s"]
    rows += [("(split) the component's SQL replayed alone, 100/tx, msgs/s", f(cs)),
             ("(split) component SQL / INSERT baseline", f"{cs / bl['insert']['messages_per_s']:.2f}"),
             ("(split) component / its SQL replayed alone", f"{ld['archived_per_s'] / cs:.2f}")]
if ble:
    rows += [("(info) INSERT / COPY with stanza STORAGE EXTERNAL",
              f"{f(ble['insert']['messages_per_s'])} / {f(ble['copy']['messages_per_s'])}")]
for k, v in rows: print(f"  {k:58} {v:>22}")
med = sorted(ld["rounds"], key=lambda r: r["archived_per_s"])[len(ld["rounds"]) // 2]
cpu, gc = med["cpu"], med.get("group_commit", {})
print(f"  per-round messages/s: {', '.join(f(r['archived_per_s']) for r in ld['rounds'])};"
      f" baseline INSERT {', '.join(f(x) for x in bl['insert']['per_round'])}; COPY {', '.join(f(x) for x in bl['copy']['per_round'])}")
print(f"  CPU µs per message (median round): component {cpu.get('component_us_per_message')}, "
      f"PostgreSQL {cpu.get('postgres_us_per_message')}, load generator {cpu.get('generator_us_per_message')}, "
      f"whole machine {cpu.get('machine_busy_us_per_message')} (2 vCPUs)")
print(f"  PostgreSQL CPU µs per message in the baselines (per round): INSERT {bl['insert']['postgres_cpu_us_per_message']}, "
      f"COPY {bl['copy']['postgres_cpu_us_per_message']}"
      + (f", component SQL {bl['component_sql']['postgres_cpu_us_per_message']}" if "component_sql" in bl else ""))
print(f"  max gap between two receipts (per round): {', '.join(str(r['max_gap_between_receipts_ms']) for r in ld['rounds'])} ms")
if gc:
    print(f"  group commit (median round): {gc['commits']:.0f} commits, mean batch {gc['mean_batch']:.1f}, mean write {gc['mean_write_ms']:.1f} ms")
def memory(name):
    rss = hwm = None
    p = os.path.join(w, f"{name}-metrics.txt")
    if os.path.exists(p):
        for line in open(p):
            if line.startswith("process_resident_memory_bytes "):
                rss = float(line.split()[1]) / 2**20
    p = os.path.join(w, f"{name}-hwm.txt")
    if os.path.exists(p) and open(p).read().strip():
        hwm = int(open(p).read().strip()) / 2**20
    return rss, hwm
for name, label in (("load", "write bench"), ("mam", "MAM bench")):
    rss, hwm = memory(name)
    if rss is not None or hwm is not None:
        print(f"  component resident memory, {label}: at the end {rss or 0:.1f} MiB (/metrics), peak {hwm or 0:.1f} MiB (VmHWM)")
c = ld["checks"]
bad = {k: v for k, v in c.items() if k not in ("messages_sent", "timed_out") and v}
print(f"  checks: {c['messages_sent']:,} messages sent; errors {sum(ld['errors']['by_condition'].values())}; "
      f"{'all receipts and fan-outs arrived once, in order' if not bad and not c['timed_out'] else 'PROBLEMS ' + json.dumps(bad)}; "
      f"database: {db['not_fanned_out']} not marked fanned out, {db['messages_without_4_archive_rows']} without 4 archive rows")
if mam:
    print()
    print(f"MAM: {fill['messages']:,} messages, {fill['archive_rows']:,} archive rows, {fill['fill_users']} users "
          f"(~{fill['archive_rows_per_fill_user']} per archive), {fill['database_size']}; fsync={ms['fsync']}; warm cache;")
    print(f"  {mam['queries']} pages of max {mam['page_max']} one at a time (avg {mam['results_per_page_avg']} results); "
          f"baseline = the component's page SQL alone, one statement, same mix")
    print(f"  {'page kind':22} {'component p50 / p99 ms':>24} {'SQL alone p50 / p99 ms':>24} {'ratio p50':>10}")
    kinds = [("all", mam, mb)] + [(k, mam["by_kind"][k], mb["by_kind"].get(k, {})) for k in sorted(mam["by_kind"])]
    for name, a, b in kinds:
        r = a["p50_ms"] / b["p50_ms"] if b.get("p50_ms") else float("nan")
        print(f"  {name:22} {a['p50_ms']:>11.2f} / {a['p99_ms']:<10.2f} {b.get('p50_ms', 0):>11.2f} / {b.get('p99_ms', 0):<10.2f} {r:>9.1f}x")
    mc = mam["cpu"]
    print(f"  component's own database time per query (metric multiend_mam_query_seconds): {mam.get('component_db_ms_mean', '?')} ms mean")
    print(f"  CPU µs per page: component {mc.get('component_us_per_query')}, PostgreSQL {mc.get('postgres_us_per_query')}, "
          f"load generator {mc.get('generator_us_per_query')}; MAM errors: {sum(mam['errors']['by_condition'].values())}, "
          f"short pages {mam['short_pages']}")
print()
PY
say "results in $RESULTS_DIR ($(elapsed))"
