#!/bin/bash
# Builds every image of docker-compose.yml from nothing and runs the stack once, as an operator
# would with `docker-compose up`:
#   1. installs the container tools if missing (podman, podman-compose, buildah, runc,
#      debootstrap; or uses Docker when MULTIEND_ENGINE=docker and it is there),
#   2. keeps all container storage and configuration in a temp dir (nothing global is touched
#      but the packages, and the netavark firewall rules podman adds while the stack runs),
#   3. builds a local debian:12 base image from Debian's archive (no registry is reachable here),
#      and, only if postgres:15-bookworm cannot be pulled, a stand-in for it from Debian's
#      postgresql-15 (said so in the output),
#   4. builds the compose images, starts postgres, prosody and the component, waits for the
#      component's /readyz, runs the documented client demo and `devices`, and checks their
#      output, that the database holds ciphertext only, and the images' sizes,
#   5. stops everything and removes what it made.
#
#   deploy/docker/smoke.sh [--keep]          # --keep: leave the stack and the temp dir running
#
# Exit 0 only when every check passed. Ports 5222 and 9100 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
ENGINE=${MULTIEND_ENGINE:-podman}
T0=$(date +%s)
say() { echo "smoke: [$(( $(date +%s) - T0 )) s] $*"; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

# --- 1. tools -------------------------------------------------------------------------------
if [ "$ENGINE" = podman ]; then
  need=()
  # netavark + aardvark-dns: with the CNI backend (podman's default without them) services
  # cannot resolve each other by name.
  for p in podman buildah podman-compose debootstrap runc uidmap slirp4netns netavark aardvark-dns curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  COMPOSE=(podman-compose)
else
  command -v docker >/dev/null || fail "MULTIEND_ENGINE=docker but docker is not installed"
  COMPOSE=(docker compose)
  docker compose version >/dev/null 2>&1 || COMPOSE=(docker-compose)
fi

# --- 2. private storage and settings ----------------------------------------------------------
WORK=$(mktemp -d /tmp/multiend-smoke.XXXXXX)
export COMPOSE_PROJECT_NAME=multiend-smoke
cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ]; then say "kept: $WORK (CONTAINERS_CONF=$WORK/containers.conf)"; exit $rc; fi
  say "stopping and removing everything"
  "${COMPOSE[@]}" -p "$COMPOSE_PROJECT_NAME" down -v >/dev/null 2>&1 || true
  if [ "$ENGINE" = podman ]; then
    podman network rm -f "${COMPOSE_PROJECT_NAME}_default" >/dev/null 2>&1 || true
    podman system reset -f >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
if [ "$ENGINE" = podman ]; then
  # Settings this kind of sandbox needs (../shared/reference/testbed-notes.md, "Containers here"):
  # runc (crun refuses the hybrid cgroup layout), cgroupfs, file events, and ulimits the
  # sandbox can grant.
  cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
  cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
  export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_STORAGE_CONF=$WORK/storage.conf
fi
ENG=$ENGINE

# --- 3. base images ---------------------------------------------------------------------------
mirror() {  # the Debian mirror this machine installs from
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}
if ! $ENG image exists docker.io/library/debian:12 2>/dev/null && ! $ENG pull -q docker.io/library/debian:12 >/dev/null 2>&1; then
  say "no debian:12 image to pull: building it with debootstrap from $(mirror)"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  # What an official slim image leaves out as well: package caches, docs, man pages.
  rm -rf "$WORK/rootfs"/var/cache/apt/archives/*.deb "$WORK/rootfs"/var/lib/apt/lists/* \
    "$WORK/rootfs"/usr/share/doc/* "$WORK/rootfs"/usr/share/man/* "$WORK/rootfs"/usr/share/info/*
  tar --numeric-owner -C "$WORK/rootfs" -c . | $ENG import --change 'CMD ["bash"]' - docker.io/library/debian:12 >/dev/null
  rm -rf "$WORK/rootfs"
fi
if $ENG pull -q docker.io/library/postgres:15-bookworm >/dev/null 2>&1; then
  say "using the official postgres:15-bookworm image"
else
  say "postgres:15-bookworm cannot be pulled here: building a LOCAL STAND-IN from Debian's postgresql-15" \
      "(deploy/docker/postgres-standin/); the official image itself is not what runs"
  $ENG build --network=host -q -t docker.io/library/postgres:15-bookworm deploy/docker/postgres-standin >/dev/null
fi

# --- 4. build, start, check -------------------------------------------------------------------
say "building the images"
for spec in "multiend-prosody deploy/docker/Dockerfile.prosody -" "multiend-component deploy/docker/Dockerfile component" \
            "multiend-client deploy/docker/Dockerfile client"; do
  read -r name file target <<<"$spec"
  args=(--network=host -f "$file" -t "$name")  # the host resolves the Debian mirror
  [ "$target" != - ] && args+=(--target "$target")
  $ENG build "${args[@]}" . >"$WORK/build-$name.log" 2>&1 || { tail -30 "$WORK/build-$name.log"; fail "building $name"; }
done
say "built"

# A /readyz answered by some other process would make every later check meaningless.
for port in 5222 9100; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "127.0.0.1:$port is in use already"; fi
done
export MULTIEND_COMPONENT_SECRET=$(openssl rand -hex 32) MULTIEND_PG_PASSWORD=$(openssl rand -hex 16)
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT_NAME" up -d postgres prosody component >"$WORK/up.log" 2>&1 \
  || { tail -30 "$WORK/up.log"; fail "compose up"; }
say "stack started; waiting for the component's /readyz"
ready=0
for _ in $(seq 1 180); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9100/readyz || true)" = 200 ]; then ready=1; break; fi
  sleep 1
done
logs() { "${COMPOSE[@]}" -p "$COMPOSE_PROJECT_NAME" logs 2>&1 | tail -60; }
# The running container of a compose service. `ps` is read whole first: piped into `grep -m1`
# under pipefail, the engine could die of SIGPIPE after grep's first match and fail the check.
container_of() {
  local names
  names=$($ENG ps --format '{{.Names}}') || fail "$ENG ps failed"
  grep -m1 -e "_$1_" -e "-$1-" <<<"$names" && return 0
  $ENG ps -a >&2 || true
  fail "no running $1 container"
}
[ "$ready" = 1 ] || { logs; fail "/readyz never answered 200"; }
say "/readyz is 200"
# The images' healthchecks, as compose declares them. podman-compose never schedules them (no
# systemd), so run each once; Docker runs them itself: wait for "healthy".
for svc in postgres prosody component; do
  c=$(container_of "$svc")
  if [ "$ENGINE" = podman ]; then
    $ENG healthcheck run "$c" >/dev/null || fail "the healthcheck of $svc fails"
  else
    for _ in $(seq 1 60); do [ "$($ENG inspect --format '{{.State.Health.Status}}' "$c")" = healthy ] && break; sleep 1; done
    [ "$($ENG inspect --format '{{.State.Health.Status}}' "$c")" = healthy ] || fail "$svc is not healthy"
  fi
done
say "healthchecks of postgres, prosody and the component pass"

MESSAGE="smoke test $(openssl rand -hex 8)"
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT_NAME" run --rm --entrypoint multiend-client-demo client "$MESSAGE" >"$WORK/demo.out" 2>"$WORK/demo.err" || true
# podman-compose `run` exits 0 whatever the container did: judge by what it printed.
python3 - "$WORK/demo.out" "$MESSAGE" <<'PY' || { cat "$WORK/demo.out" "$WORK/demo.err"; logs; fail "the client demo"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
sent = [l for l in lines if l.get("type") == "sent" and l.get("id")]
got = [l for l in lines if l.get("type") == "message" and l.get("body") == sys.argv[2] and l.get("from") == "alice@localhost"]
assert sent, f"no sent line: {lines}"
assert got, f"bob did not decrypt the message: {lines}"
PY
say "client demo: alice sent, bob decrypted \"$MESSAGE\""
"${COMPOSE[@]}" -p "$COMPOSE_PROJECT_NAME" run --rm client devices --state /state/bob.db --of alice@localhost >"$WORK/devices.out" 2>&1 || true
python3 - "$WORK/devices.out" <<'PY' || { cat "$WORK/devices.out"; fail "devices"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
devs = [l for l in lines if l.get("type") == "device" and l.get("jid") == "alice@localhost" and l.get("active")]
assert devs and all(len(d["fingerprint"]) == 71 for d in devs), f"devices printed {lines}"
PY
say "devices: alice's device listed with its fingerprint"

PG=$(container_of postgres)
psql_q() { $ENG exec "$PG" psql -U multiend -d multiend -Atc "$1"; }
rows=$(psql_q "SELECT count(*) FROM messages")
[ "${rows:-0}" -ge 1 ] || fail "the archive holds no message"
if psql_q "SELECT stanza FROM messages" | grep -qF "$MESSAGE"; then fail "plaintext found in the database"; fi
psql_q "SELECT stanza FROM messages" | grep -q "urn:xmpp:omemo:2" || fail "no OMEMO ciphertext in the archive"
say "database: $rows archived message(s), ciphertext only"

for name in multiend-component multiend-client multiend-prosody; do
  size=$($ENG image inspect --format '{{.Size}}' "$name")
  say "image $name: $(( size / 1024 / 1024 )) MiB"
  if [ "$name" = multiend-component ] && [ "$size" -ge $(( 150 * 1024 * 1024 )) ]; then fail "the component image is over 150 MB"; fi
  user=$($ENG image inspect --format '{{.Config.User}}' "$name")
  # Prosody's entry point prepares its volumes as root, then execs Prosody as `prosody`.
  case "$name:$user" in multiend-prosody:*) ;; *:multiend*) ;; *) fail "$name does not run as a non-root user ($user)";; esac
  if $ENG image inspect --format '{{.Config.Env}}' "$name" | grep -qiE 'secret|password'; then
    fail "$name has a secret in its environment"
  fi
  if [ "$name" != multiend-prosody ]; then
    tools=$($ENG run --rm --network=none --entrypoint /bin/sh "$name" -c \
      'for t in gcc g++ cc c++ cmake ninja make protoc; do command -v $t; done; true')
    [ -z "$tools" ] || fail "$name carries build tools: $tools"
  fi
done
say "images: non-root, no secrets in their environment, no build tools in the runtime images"
say "passed in $(( $(date +%s) - T0 )) s"
