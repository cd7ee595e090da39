#!/usr/bin/env bash
# Telemetry backpressure soak: the three services export OTLP to a port where nothing listens
# while `tracehop load` drives POST /create-order; prints each service's RSS every INTERVAL
# seconds, then orders, throughput, p99 and outbox lines. Flat RSS and unchanged throughput mean the bounded export
# queues drop instead of growing. Usage: DURATION=300 scripts/soak-collector-down.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-300}
INTERVAL=${INTERVAL:-30}
CONNECTIONS=${CONNECTIONS:-32}
PORT_BASE=${PORT_BASE:-14000}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

scripts/ensure-broker.sh >/dev/null
cargo build --release --quiet -p order-gateway -p payment-service -p email-service -p tracehop
BIN=target/release

export AMQP_PREFIX="soak-$$." LOG_DIR="$WORK/logs" OTEL_SDK_DISABLED=false
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 PAYMENT_LATENCY_MS=0
BIND_ADDR=127.0.0.1:$((PORT_BASE + 1)) "$BIN/payment-service" >/dev/null 2>&1 & pay=$!
BIND_ADDR=127.0.0.1:$((PORT_BASE + 2)) "$BIN/email-service" >/dev/null 2>&1 & mail=$!
BIND_ADDR=127.0.0.1:$PORT_BASE PAYMENT_URL=http://127.0.0.1:$((PORT_BASE + 1)) \
  "$BIN/order-gateway" >/dev/null 2>&1 & gate=$!
for port in $((PORT_BASE + 1)) $((PORT_BASE + 2)) $PORT_BASE; do
  for _ in $(seq 100); do curl -fs "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
done

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
