#!/usr/bin/env bash
# Runs every test of tracehop: formatting, lints, the Rust unit and integration tests (against a
# real RabbitMQ, started here when needed, and a real Alertmanager, installed here when missing),
# then the checks in scripts/test.d/.
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

step "alertmanager (log-service's alert tests start the real binary)"
# shellcheck source=../observability/tests/stack_tools.sh
source observability/tests/stack_tools.sh
ensure_cmd prometheus-alertmanager prometheus-alertmanager

step "chromium (the web view's browser test drives it through chromedriver)"
ensure_cmd chromium chromium
ensure_cmd chromedriver chromium-driver

step "cargo test"
cargo test --workspace

for check in scripts/test.d/*.sh; do
  [ -x "$check" ] || continue
  step "$check"
  "$check"
done

step "all tests passed"
