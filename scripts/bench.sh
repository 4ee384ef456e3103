#!/usr/bin/env bash
# The benchmark, as one command: builds the release binaries, then runs
# every scenario against private nats-server and PostgreSQL instances and
# writes bench-results/<timestamp>/report.{json,md} and chart.png.
# Arguments go to smsfleet-bench, e.g. `--scenario ingress-pv` or `--smoke`.
# See docs/benchmark.md for the method.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p smsfleet -p smsfleet-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/smsfleet-bench" --bin "$target/release/smsfleet" "$@"
