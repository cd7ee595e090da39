#!/usr/bin/env bash
# Measures how fast 1 and 3 email-service replicas drain one backlog of payment events, and
# writes bench/consumers.md.
#
# For each case: order-gateway and payment-service (release builds, telemetry off) take ORDERS
# orders from `tracehop load` while no consumer runs, so the events wait in the queue; then
# REPLICAS email-service processes start on the same queue and the same outbox file, and the
# clock runs until the outbox holds one e-mail per confirmed order. Two mail servers:
#   latency 0:               each e-mail costs only CPU (the machine's cores are the limit)
#   latency EMAIL_LATENCY_MS: each e-mail waits on a slow mail server (the prefetch and the
#                            number of replicas are the limit)
# Every e-mail is counted: a run with a missing or a duplicated e-mail fails.
#
#   scripts/bench-consumers.sh                        # 20,000 orders per case
#   ORDERS=5000 EMAIL_LATENCY_MS=50 scripts/bench-consumers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS=${ORDERS:-20000}
EMAIL_LATENCY_MS=${EMAIL_LATENCY_MS:-20}
PREFETCH=${EMAIL_PREFETCH:-32}
PORT_BASE=${PORT_BASE:-14000}
OUT=${OUT:-bench}

scripts/ensure-broker.sh
echo "bench-consumers: building release binaries..."
cargo build --release --quiet -p tracehop -p order-gateway -p payment-service -p email-service
BIN=$PWD/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tracehop-bench-consumers.XXXXXX")
PIDS=()

stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT

# start NAME PORT [VAR=VALUE...]: starts a release binary in the background with the case's env.
start() {
  local name=$1 port=$2
  shift 2
  env "${CASE_ENV[@]}" BIND_ADDR="127.0.0.1:$port" "$@" "$BIN/$name" >>"$DIR/$name-$port.out" 2>&1 &
  PIDS+=($!)
  local tries=0
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/ready"; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "bench-consumers: $name not ready" >&2; tail -5 "$DIR/$name-$port.out" >&2; exit 1; }
    sleep 0.1
  done
}

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
outbox_lines() { [ -f "$DIR/outbox.jsonl" ] && wc -l < "$DIR/outbox.jsonl" || echo 0; }

# run_case REPLICAS LATENCY_MS: prints "replicas latency confirmed seconds rate cpu_s"
run_case() {
  local replicas=$1 latency=$2
  DIR="$WORK/r$replicas-l$latency"
  mkdir -p "$DIR"
  CASE_ENV=(AMQP_PREFIX="bench-consumers.$replicas.$latency.$$." LOG_DIR="$DIR" OTEL_SDK_DISABLED=true
            AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" RUST_LOG=warn
            EMAIL_PREFETCH="$PREFETCH" EMAIL_LATENCY_MS="$latency" PAYMENT_LATENCY_MS=0)
  start payment-service $((PORT_BASE + 1))
  start order-gateway "$PORT_BASE" PAYMENT_URL="http://127.0.0.1:$((PORT_BASE + 1))"
  # A fixed rate places exactly the orders asked for; the events wait in the queue.
  local rate=2000
  "$BIN/tracehop" --gateway "http://127.0.0.1:$PORT_BASE" load -r "$rate" \
    -d "$(( (ORDERS + rate - 1) / rate ))s" --json > "$DIR/load.json"
  local confirmed
  confirmed=$(jq '.status["201"] // .status_counts["201"] // 0' "$DIR/load.json")
  [ "$confirmed" -gt 0 ] || { echo "bench-consumers: no order confirmed: $(cat "$DIR/load.json")" >&2; exit 1; }
  stop_all

  local started i pids=()
  started=$(date +%s.%N)
  for i in $(seq 1 "$replicas"); do
    start email-service $((PORT_BASE + 1 + i))
    pids+=("${PIDS[-1]}")
  done
  local before=0 pid
  for pid in "${pids[@]}"; do before=$((before + $(cpu_ticks "$pid"))); done
  until [ "$(outbox_lines)" -ge "$confirmed" ]; do sleep 0.05; done
  local ended ticks=0
  ended=$(date +%s.%N)
  for pid in "${pids[@]}"; do ticks=$((ticks + $(cpu_ticks "$pid"))); done
  stop_all
  local distinct
  distinct=$(jq -r .event_id "$DIR/outbox.jsonl" | sort -u | wc -l)
  [ "$distinct" -eq "$confirmed" ] && [ "$(outbox_lines)" -eq "$confirmed" ] ||
    { echo "bench-consumers: $confirmed confirmed, $(outbox_lines) e-mails, $distinct distinct" >&2; exit 1; }
  awk -v r="$replicas" -v l="$latency" -v n="$confirmed" -v s="$started" -v e="$ended" \
      -v t="$(( ticks - before ))" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { d = e - s; printf "%d %d %d %.2f %.0f %.2f\n", r, l, n, d, n / d, t / hz }'
}

RESULTS=()
for latency in 0 "$EMAIL_LATENCY_MS"; do
  for replicas in 1 3; do
    echo "bench-consumers: $replicas replica(s), mail server latency ${latency} ms"
    line=$(run_case "$replicas" "$latency")
    echo "bench-consumers:   $line" | awk '{printf "bench-consumers:   %s e-mails in %s s: %s e-mails/s, %s CPU-s\n", $4, $5, $6, $7}'
    RESULTS+=("$line")
  done
done

cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mkdir -p "$OUT"
{
  echo "# Consumer replicas: draining one backlog"
  echo
  echo "Machine: $(nproc) cores ($cpu_model), RabbitMQ $(/usr/sbin/rabbitmqctl version 2>/dev/null || echo '?') on the same cores."
  echo "Command: \`ORDERS=$ORDERS EMAIL_LATENCY_MS=$EMAIL_LATENCY_MS scripts/bench-consumers.sh\`, prefetch $PREFETCH per replica, telemetry off."
  echo
  echo "| replicas | mail server latency | e-mails | seconds | e-mails/s | consumers' CPU-s |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for line in "${RESULTS[@]}"; do
    read -r r l n d rate cpu <<<"$line"
    echo "| $r | $l ms | $n | $d | $rate | $cpu |"
  done
  echo
  echo "Every run: each confirmed order e-mailed once (outbox lines = distinct event ids = confirmed orders)."
} > "$OUT/consumers.md"
cat "$OUT/consumers.md"
