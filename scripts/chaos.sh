#!/usr/bin/env bash
# The chaos suite (issue 14): the fleet as separate processes on private
# nats-server and PostgreSQL, one fault per scenario under a steady load,
# and a table of accepted, errors by code, lost, sent twice, charge
# mismatches, self-recovery and recovery time. Fails on any lost,
# duplicated or wrongly charged message, never on a timing.
#   scripts/chaos.sh            the full table (docs/reliability.md has the last one)
#   scripts/chaos.sh --short    the CI form
# Other arguments go to `smsfleet-bench chaos` (e.g. --only "kill -9 ledger").
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --locked -p smsfleet -p smsfleet-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/debug/smsfleet-bench" --bin "$target/debug/smsfleet" chaos --table "$target/chaos/chaos.md" "$@"
