#!/usr/bin/env bash
# Runs every check and test of the workspace, after installing what the
# build needs. This is what CI runs (.ci/run calls it). The last line is a
# summary over every test binary: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build (binaries the end-to-end tests start, examples)"
cargo build --workspace --bins --examples
echo "== fuzz every cargo-fuzz target for 30 s (scripts/fuzz.sh)"
scripts/fuzz.sh 30
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i + 1) ~ /^passed/) p += $i
         if ($(i + 1) ~ /^failed/) f += $i
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
