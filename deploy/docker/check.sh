#!/bin/bash
# Checks docker-compose.yml and the images' Dockerfiles without a Docker engine (ctest: compose_config).
#
#   deploy/docker/check.sh      exit 0 = OK, 1 = a check failed, 77 = skipped (no docker-compose)
#
# 1. `docker-compose config` accepts the file (with throwaway values for the required secrets) and
#    refuses it when those secrets are not set;
# 2. the prosody service mounts the testbed's Prosody config: the file deploy/testbed copies
#    verbatim (PROSODY_CFG_TEMPLATE), read-only, at the path its MULTIEND_PROSODY_CONFIG names, and
#    sets no MULTIEND_* variable that file does not read;
# 3. the Dockerfiles: every stage starts from debian:12, the build stage uses install-deps.sh and
#    CMake, the runtime stages run as a non-root user.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
COMPOSE_FILE="$REPO/docker-compose.yml"
fail() { echo "check.sh: FAIL: $*" >&2; exit 1; }

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "check.sh: SKIPPED: docker-compose is not installed (deploy/install-deps.sh installs it)"
  exit 77
fi
PY=/usr/bin/python3
"$PY" -c 'import yaml' 2>/dev/null || fail "python3-yaml missing (docker-compose depends on it)"

compose() { docker-compose --project-directory "$REPO" -f "$COMPOSE_FILE" "$@"; }

# 1. the file is valid, and the secrets are required
out=$(MULTIEND_COMPONENT_SECRET=check-secret MULTIEND_PG_PASSWORD=check-password compose config 2>&1) \
  || fail "docker-compose config: $out"
if env -u MULTIEND_COMPONENT_SECRET -u MULTIEND_PG_PASSWORD docker-compose --project-directory "$REPO" \
     -f "$COMPOSE_FILE" config >/dev/null 2>&1; then
  fail "docker-compose config passes without MULTIEND_COMPONENT_SECRET / MULTIEND_PG_PASSWORD"
fi

# 2. the Prosody config is the testbed's
grep -q '^PROSODY_CFG_TEMPLATE="$REPO/deploy/prosody/multiend.cfg.lua"$' "$REPO/deploy/testbed" \
  || fail "deploy/testbed no longer takes its Prosody config from deploy/prosody/multiend.cfg.lua"
grep -q 'cp "$PROSODY_CFG_TEMPLATE" ' "$REPO/deploy/testbed" \
  || fail "deploy/testbed no longer copies deploy/prosody/multiend.cfg.lua verbatim"
"$PY" - "$REPO" "$out" <<'PYEOF'
import re, sys, yaml
repo = sys.argv[1]
cfg = yaml.safe_load(sys.argv[2])
services = cfg.get("services", {})
for name in ("postgres", "prosody", "component", "client"):
    if name not in services:
        sys.exit(f"check.sh: FAIL: no service {name!r} in docker-compose.yml")
prosody = services["prosody"]
env = prosody.get("environment") or {}
target = env.get("MULTIEND_PROSODY_CONFIG")
if not target:
    sys.exit("check.sh: FAIL: the prosody service does not set MULTIEND_PROSODY_CONFIG")
want_src = f"{repo}/deploy/prosody/multiend.cfg.lua"
mounts = []
for v in prosody.get("volumes") or []:
    if isinstance(v, str):
        parts = v.split(":")
        mounts.append((parts[0], parts[1] if len(parts) > 1 else "", "ro" in parts[2:]))
    else:
        mounts.append((v.get("source", ""), v.get("target", ""), bool(v.get("read_only"))))
hits = [m for m in mounts if m[1] == target]
if not hits:
    sys.exit(f"check.sh: FAIL: nothing is mounted at MULTIEND_PROSODY_CONFIG={target}")
src, _, ro = hits[0]
if src != want_src:
    sys.exit(f"check.sh: FAIL: the prosody service mounts {src} at {target}, not the testbed's {want_src}")
if not ro:
    sys.exit(f"check.sh: FAIL: {want_src} is mounted writable")
lua = open(want_src).read()
read = set(re.findall(r'env\("(MULTIEND_[A-Z0-9_]+)"', lua))
unknown = sorted(k for k in env if k.startswith("MULTIEND_") and k not in read
                 and k not in ("MULTIEND_PROSODY_CONFIG", "MULTIEND_USERS", "MULTIEND_USER_PASSWORD_FILE"))
if unknown:
    sys.exit(f"check.sh: FAIL: the prosody service sets {unknown}, which multiend.cfg.lua never reads")
if "MULTIEND_COMPONENT_SECRET" not in env:
    sys.exit("check.sh: FAIL: the prosody service does not pass MULTIEND_COMPONENT_SECRET")
comp_env = services["component"].get("environment") or {}
if comp_env.get("MULTIEND_COMPONENT_SECRET") != env["MULTIEND_COMPONENT_SECRET"]:
    sys.exit("check.sh: FAIL: component and prosody get different MULTIEND_COMPONENT_SECRET values")
PYEOF

# 3. the Dockerfiles
df="$REPO/deploy/docker/Dockerfile"
dfp="$REPO/deploy/docker/Dockerfile.prosody"
for f in "$df" "$dfp" "$REPO/deploy/docker/prosody-entrypoint.sh" "$REPO/deploy/docker/client-demo.sh"; do
  [ -f "$f" ] || fail "missing $f"
done
awk '/^FROM /{ if ($2 != "debian:12") { print FILENAME ": " $0; bad=1 } } END { exit bad }' "$df" "$dfp" \
  || fail "a stage does not start from debian:12"
grep -q 'deploy/install-deps.sh --build-only' "$df" || fail "the build stage does not use deploy/install-deps.sh"
grep -q 'cmake --build' "$df" || fail "the build stage does not build with CMake"
for stage in component client; do
  user=$(awk -v s="$stage" '/^FROM /{ cur = $4 } cur == s && /^USER /{ u = $2 } END { print u }' "$df")
  case "$user" in ""|root|root:*|0|0:*) fail "stage $stage does not switch to a non-root USER" ;; esac
done
for t in component client; do
  grep -q "^FROM debian:12 AS $t\$" "$df" || fail "no stage $t in $df"
done

echo "check.sh: OK (docker-compose.yml valid; prosody mounts deploy/prosody/multiend.cfg.lua; Dockerfiles checked)"
