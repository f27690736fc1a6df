#!/usr/bin/env bash
# Runs bench/omemo_bench (C++) and the same operations in python3-twomemo in one go, and prints
# each figure with the ratio twomemo / Multiend (how many times faster we are).
# Usage: bench/compare_twomemo.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BUILD/bench/omemo_bench" --benchmark_format=json --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true >"$out/cpp.json"
/usr/bin/python3 tests/interop/twomemo_bench.py --json >"$out/py.json"
/usr/bin/python3 - "$out/cpp.json" "$out/py.json" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1]))
py = json.load(open(sys.argv[2]))
med = {}
for b in cpp["benchmarks"]:
    if b.get("aggregate_name") == "median":
        name = b["run_name"].split("/iterations")[0]
        unit = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        med[name] = b["real_time"] * unit
pairs = [
    ("session setup, active", "BM_SessionSetupActive", "session_setup_active_us"),
    ("session setup, passive", "BM_SessionSetupPassive", "session_setup_passive_us"),
    ("encrypt for 1 device", "BM_Encrypt/1", "encrypt_1_us"),
    ("encrypt for 10 devices", "BM_Encrypt/10", "encrypt_10_us"),
    ("encrypt for 100 devices", "BM_Encrypt/100", "encrypt_100_us"),
    ("decrypt (XML parse incl.)", "BM_Decrypt", "decrypt_us"),
]
print(f"{'operation':28} {'multiend µs':>12} {'twomemo µs':>12} {'ratio':>8}")
for label, c, p in pairs:
    cv, pv = med.get(c), py.get(p)
    if cv is None or pv is None:
        print(f"{label:28} {'?':>12} {'?':>12}")
        continue
    print(f"{label:28} {cv:12.1f} {pv:12.1f} {pv / cv:7.1f}x")
PY
