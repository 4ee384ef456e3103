#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the bus contract
# check, unit, integration and end-to-end tests. Tests start their own
# nats-server and PostgreSQL (set SMSFLEET_TEST_NATS_URL /
# SMSFLEET_TEST_DATABASE_URL to use existing ones).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== npm ci (the routesms client used by the bulk API end-to-end test)"
npm ci --prefix tests/e2e/node --no-audit --no-fund
echo "== cargo test"
# Two test binaries at a time: each starts its own servers, and the
# machine has two cores.
cargo test --workspace --locked -- --test-threads 4
