#!/usr/bin/env bash
# Checks the alert rules with promtool (Debian's `prometheus` package): syntax, and the unit
# tests that show each alert fires when it should and not otherwise. Exit 77 (skipped) when
# promtool is not installed.
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || { echo "promtool not installed (apt-get install prometheus): skipped"; exit 77; }
promtool check rules multiend-alerts.yml
promtool test rules multiend-alerts.test.yml
# Every metric the rules use must be one the component exports (a renamed metric would make
# an alert silently never fire).
for m in $(grep -oE '\b(multiend_[a-z_]+|process_[a-z_]+)' multiend-alerts.yml | sed -E 's/_(bucket|count|sum)$//' | sort -u); do
  grep -rqF "\"$m\"" ../../server || { echo "check.sh: $m is used by an alert but not exported by server/"; exit 1; }
done
echo "alert rules: ok"
# The Grafana dashboard: valid JSON, and every metric its panels query is exported.
python3 - ../grafana/multiend-dashboard.json <<'PY'
import json, re, sys, pathlib
dash = json.load(open(sys.argv[1]))
exported = "".join(p.read_text() for p in pathlib.Path("../../server").rglob("*.cpp"))
bad = []
for panel in dash["panels"]:
    for t in panel["targets"]:
        for m in re.findall(r"\b((?:multiend|process)_[a-z_]+)", t["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", m)
            if f'"{base}"' not in exported:
                bad.append(f"{panel['title']}: {m}")
if bad:
    sys.exit("dashboard queries metrics the component does not export: " + ", ".join(bad))
print(f"grafana dashboard: ok ({len(dash['panels'])} panels)")
PY
