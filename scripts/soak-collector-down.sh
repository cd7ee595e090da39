#!/usr/bin/env bash
# Telemetry backpressure soak: the three services, started by `tracehop up --detach` without
# log-service, export OTLP to a port where nothing listens while `tracehop load` drives
# POST /create-order; prints each service's RSS every INTERVAL seconds, then orders, throughput,
# p99 and outbox lines. Flat RSS and unchanged throughput mean the bounded export queues drop
# instead of growing. Usage: DURATION=300 scripts/soak-collector-down.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-300}
INTERVAL=${INTERVAL:-30}
CONNECTIONS=${CONNECTIONS:-32}
PORT_BASE=${PORT_BASE:-14000}
WORK=$(mktemp -d)
BIN=target/release
LOG_DIR="$WORK/logs"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  [ -f "$LOG_DIR/tracehop.pids" ] && "$BIN/tracehop" down --log-dir "$LOG_DIR" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

scripts/ensure-broker.sh >/dev/null
cargo build --release --quiet -p order-gateway -p payment-service -p email-service -p tracehop

# With --no-log-service, tracehop up leaves the OTLP endpoint to the environment: port 1, where
# nothing listens.
AMQP_PREFIX="soak-$$." OTEL_SDK_DISABLED=false OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 \
  "$BIN/tracehop" up --detach --no-log-service --log-dir "$LOG_DIR" \
  --gateway-port "$PORT_BASE" --payment-port $((PORT_BASE + 1)) --email-port $((PORT_BASE + 2)) \
  --payment-latency-ms 0 >/dev/null
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$LOG_DIR/tracehop.pids"; }
gate=$(pid_of order-gateway) pay=$(pid_of payment-service) mail=$(pid_of email-service)

"$BIN/tracehop" --gateway "http://127.0.0.1:$PORT_BASE" load -c "$CONNECTIONS" -d "${DURATION}s" \
  --json > "$WORK/load.json" 2>/dev/null & load=$!
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
for t in $(seq "$INTERVAL" "$INTERVAL" "$DURATION"); do
  sleep "$INTERVAL"
  echo "t=${t}s RSS MiB: order-gateway $(rss $gate), payment-service $(rss $pay), email-service $(rss $mail)"
done
wait "$load" || true
python3 - "$WORK/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("orders answered {} ({} errors), {:.0f} orders/s, p50 {} ms, p99 {} ms".format(
    r["answered"], r["errors"], r["throughput_rps"], r["latency_ms"]["p50"], r["latency_ms"]["p99"]))
PY
sleep 2
echo "outbox lines: $(wc -l < "$LOG_DIR/outbox.jsonl")"
