#!/usr/bin/env bash
# Runs smsfleet locally: every role in one process, private NATS and
# PostgreSQL under ./.smsfleet, the SMSC simulator as the default route.
# Prints the first admin's token and a curl line. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release -p smsfleet -- all "$@"
