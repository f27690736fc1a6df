#!/bin/bash
# Scripted messaging with the `multiend` CLI, as the compose `client` service runs it:
#
#   docker-compose run --rm --entrypoint multiend-client-demo client [MESSAGE]
#
# alice and bob each get one device (state files in $MULTIEND_STATE_DIR, kept between runs),
# alice sends MESSAGE to bob, bob catches up from the archive and prints his history. Works the
# same outside a container against deploy/testbed (set the variables below from its env file).
set -euo pipefail

STATE=${MULTIEND_STATE_DIR:-/state}
DOMAIN=${MULTIEND_USER_DOMAIN:-localhost}
COMPONENT=${MULTIEND_COMPONENT_DOMAIN:-archive.$DOMAIN}
SERVER=${MULTIEND_XMPP_SERVER:-prosody:5222}
CA=${MULTIEND_CA_FILE:-/certs/ca.crt}
MULTIEND=${MULTIEND_CLI:-multiend}
MESSAGE=${1:-hello from the compose client, $(date -u +%FT%TZ)}

device() {  # user: makes the device once; the password is the demo's "<user>pw" unless a file exists
  local u=$1
  if [ ! -f "$STATE/$u.pw" ]; then (umask 077; printf '%spw\n' "$u" >"$STATE/$u.pw"); fi
  if [ ! -f "$STATE/$u.db" ]; then
    "$MULTIEND" init --state "$STATE/$u.db" --jid "$u@$DOMAIN" --password-file "$STATE/$u.pw" \
      --server "$SERVER" --component "$COMPONENT" --ca-file "$CA" --label "demo-$u"
  fi
}

device alice
device bob
"$MULTIEND" send --state "$STATE/alice.db" --to "bob@$DOMAIN" --body "$MESSAGE"
"$MULTIEND" sync --state "$STATE/bob.db"
"$MULTIEND" history --state "$STATE/bob.db" --with "alice@$DOMAIN" --limit 5
