#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/) for SECONDS (default 600),
# one after the other: scripts/fuzz.sh [SECONDS] [TARGET...]. The corpus
# grows in fuzz/corpus/<target> (not committed), starting from the small
# committed seeds in fuzz/seeds/<target>; a crash is saved in
# fuzz/artifacts/<target>/ and fails the script (turn it into a #[test]
# in the crate that owns the parser). Needs the nightly toolchain;
# installs cargo-fuzz if missing. CI runs it with a short time.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# No sanitizer: our crates forbid unsafe code, so what the fuzzer hunts is
# panics, arithmetic overflow (debug assertions are on), hangs and memory
# blow-ups; ASan would only halve the executions.
fuzz=(cargo +nightly fuzz run --sanitizer none --debug-assertions)
cargo +nightly fuzz build --sanitizer none --debug-assertions

failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
  log="artifacts/$target/last-run.log"
  echo "== fuzz $target for ${seconds}s"
  if "${fuzz[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    >"$log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
    echo "   ok: ${runs:-see $log}, corpus $(find "corpus/$target" -type f | wc -l) inputs"
  else
    failed=1
    echo "   CRASH in $target: see $log and fuzz/artifacts/$target/"
    grep -E 'panicked at|SUMMARY|Test unit written' "$log" | head -5 || true
  fi
done
exit "$failed"
