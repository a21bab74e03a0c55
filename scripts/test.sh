#!/usr/bin/env bash
# Runs every check and test of the workspace, after installing what the
# build needs. This is what CI runs (.ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build (binaries the end-to-end tests start, examples)"
cargo build --workspace --bins --examples
echo "== cargo test"
cargo test --workspace
