#!/bin/bash
# Entry point of the Prosody container of docker-compose.yml (deploy/docker/Dockerfile.prosody).
# Runs as root only to prepare the volumes, then Prosody runs as the `prosody` user:
#   1. the first time, a private CA and a server certificate for MULTIEND_USER_DOMAIN and
#      MULTIEND_COMPONENT_DOMAIN in /certs (ca.crt is what clients verify against; ca.key stays
#      root-only; server.key readable by prosody only) - as deploy/testbed does;
#   2. registers every user of MULTIEND_USERS with the password from MULTIEND_USER_PASSWORD_FILE
#      (one "user password" pair per line), else the testbed's "<user>pw" (demo only);
#   3. execs `prosody -F` on the mounted config (MULTIEND_PROSODY_CONFIG).
set -euo pipefail

CFG=${MULTIEND_PROSODY_CONFIG:-/etc/prosody/multiend.cfg.lua}
USER_DOMAIN=${MULTIEND_USER_DOMAIN:-localhost}
COMPONENT_DOMAIN=${MULTIEND_COMPONENT_DOMAIN:-archive.localhost}
CERT=${MULTIEND_TLS_CERT:-/certs/server.crt}
KEY=${MULTIEND_TLS_KEY:-/certs/server.key}
CERTS=$(dirname "$CERT")

[ -r "$CFG" ] || { echo "prosody-entrypoint: no config at $CFG (mount deploy/prosody/multiend.cfg.lua)" >&2; exit 1; }
[ -n "${MULTIEND_COMPONENT_SECRET:-}" ] || { echo "prosody-entrypoint: MULTIEND_COMPONENT_SECRET is not set" >&2; exit 1; }

if [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
  echo "prosody-entrypoint: making a private CA and a certificate for $USER_DOMAIN, $COMPONENT_DOMAIN in $CERTS"
  install -d -m 0755 "$CERTS"
  tmp=$(mktemp -d)
  (
    cd "$tmp"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
      -keyout ca.key -out ca.crt -subj "/CN=Multiend compose CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=$USER_DOMAIN" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$USER_DOMAIN,DNS:$COMPONENT_DOMAIN" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -extfile server.ext -out server.crt 2>/dev/null
  )
  install -m 0600 -o root -g root "$tmp/ca.key" "$CERTS/ca.key"
  install -m 0644 "$tmp/ca.crt" "$CERTS/ca.crt"
  install -m 0644 "$tmp/server.crt" "$CERT"
  install -m 0640 -o root -g prosody "$tmp/server.key" "$KEY"
  rm -rf "$tmp"
fi

data=${MULTIEND_PROSODY_DATA:-/var/lib/prosody}
install -d -o prosody -g prosody -m 0750 "$data"

password_of() {  # user
  if [ -n "${MULTIEND_USER_PASSWORD_FILE:-}" ]; then
    awk -v u="$1" '$1 == u { print $2; exit }' "$MULTIEND_USER_PASSWORD_FILE"
  else
    printf '%spw' "$1"
  fi
}
for u in ${MULTIEND_USERS:-}; do
  mark="$data/.multiend-registered-$u@$USER_DOMAIN"
  [ -f "$mark" ] && continue
  pw=$(password_of "$u")
  [ -n "$pw" ] || { echo "prosody-entrypoint: no password for $u" >&2; exit 1; }
  (cd "$data" && runuser -u prosody -- prosodyctl --config "$CFG" register "$u" "$USER_DOMAIN" "$pw") >/dev/null
  touch "$mark"
  echo "prosody-entrypoint: registered $u@$USER_DOMAIN"
done

exec runuser -u prosody -- prosody -F --config "$CFG"
