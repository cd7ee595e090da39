#!/usr/bin/env bash
# The whole demo on one machine, no Docker: makes sure RabbitMQ runs, builds release binaries,
# starts log-service and the three services in the background with `tracehop up --detach`
# (logs under ./logs), places one order, shows its log lines and its trace as stored by
# log-service, and says how to stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_DIR=${LOG_DIR:-$PWD/logs}
export LOG_DIR
export TRACEHOP_STATE_DIR="$LOG_DIR"   # keeps `trace --last` inside the demo's log directory
mkdir -p "$LOG_DIR" data

scripts/ensure-broker.sh

echo "building release binaries (the first build takes a few minutes)..."
cargo build --release --bins --quiet
BIN=target/release

# An earlier demo may still run: stop it first so the ports are free.
"$BIN/tracehop" down --log-dir "$LOG_DIR" >/dev/null 2>&1 || true
"$BIN/tracehop" up --detach --log-dir "$LOG_DIR" --database "sqlite://$PWD/data/log-service.db"

echo
echo "\$ tracehop order"
order=$("$BIN/tracehop" order --json)
echo "$order"
trace_id=$(printf '%s' "$order" | sed -n 's/.*"trace_id": *"\([0-9a-f]\{32\}\)".*/\1/p' | head -n 1)

echo
echo "\$ tracehop trace --last"
"$BIN/tracehop" trace --last

if [ -n "$trace_id" ]; then
  echo
  echo "the same trace in the JSON log files (grep '\"trace_id\":\"$trace_id\"' $LOG_DIR/*.log):"
  for service in order-gateway payment-service email-service; do
    echo "--- $service"
    grep -h "\"trace_id\":\"$trace_id\"" "$LOG_DIR/$service.log" || echo "(none)"
  done
fi

echo
if [ -n "$trace_id" ]; then
  echo "the order's trace in the browser: ${TRACEHOP_LOG_SERVICE_URL:-http://127.0.0.1:5002}/trace/$trace_id"
fi
echo "the web view (logs, traces, services, alerts): ${TRACEHOP_LOG_SERVICE_URL:-http://127.0.0.1:5002}/"
echo "Everything keeps running. Try:"
echo "  $BIN/tracehop order --count 5"
echo "  $BIN/tracehop load --concurrency 16 --duration 10s"
echo "  $BIN/tracehop faults payment failure_rate=0.5"
echo "  $BIN/tracehop logs --level warn --since 5m"
echo "Stop everything with: $BIN/tracehop down --log-dir $LOG_DIR"
