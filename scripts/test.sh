#!/usr/bin/env bash
# Runs every test of tracehop: formatting, lints, the Rust unit and integration tests (against a
# real RabbitMQ, started here when needed), then the checks in scripts/test.d/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "broker"
scripts/ensure-broker.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "binaries (process-level tests and script checks run them)"
cargo build --workspace --bins

step "cargo test"
cargo test --workspace

for check in scripts/test.d/*.sh; do
  [ -x "$check" ] || continue
  step "$check"
  "$check"
done

step "all tests passed"
