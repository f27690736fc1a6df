#!/bin/bash
# Container healthcheck without curl or a shell one-liner (podman-compose 1.0.3 mangles
# `bash -c` in an array CMD; Docker and podman both run this form as it is):
#   healthcheck HOST PORT         the port accepts a TCP connection
#   healthcheck HOST PORT PATH    an HTTP GET of PATH answers 200
#   healthcheck                   the same with the image's MULTIEND_HEALTHCHECK ("HOST PORT [PATH]")
# Compose calls it without arguments: podman-compose 1.0.3 turns an array CMD into one
# `/bin/sh -c` string and garbles the quoting of any further array items.
set -eu
# shellcheck disable=SC2086  # word splitting of the default is intended
[ $# -gt 0 ] || set -- ${MULTIEND_HEALTHCHECK:?no arguments and no MULTIEND_HEALTHCHECK}
exec 3<>"/dev/tcp/$1/$2"
[ $# -lt 3 ] && exit 0
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
