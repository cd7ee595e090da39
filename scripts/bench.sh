#!/usr/bin/env bash
# Benchmarks the order path with `tracehop load` and writes bench/results.md and bench/results.json.
#
# Three runs of the release binaries started by `tracehop up --detach`, PAYMENT_LATENCY_MS=0,
# CONCURRENCY connections for DURATION seconds after a short warm-up:
#   telemetry on:   the services export traces and logs over OTLP to a running log-service
#   telemetry sink: the same export to an OTLP/gRPC receiver that decodes and discards
#                   (otlp-sink: testkit's OTLP receiver counting only): the services' own cost
#                   of telemetry, without a backend storing it on the same cores
#   telemetry off:  OTEL_SDK_DISABLED=true, no log-service (JSON log files are still written)
# For each: orders/s, latency p50/p99, CPU seconds per 1000 orders per service (utime+stime
# deltas from /proc/<pid>/stat over the measured run), of RabbitMQ (every beam.smp) and of the
# load generator (its own getrusage), how much of the two cores each used, and peak RSS per
# service (VmHWM). Then, when scripts/bench-log-service.sh exists, its log-service ingest and
# lookup figures.
#
#   scripts/bench.sh                         # 20 s per run
#   DURATION=5 LOG_BENCH=0 scripts/bench.sh  # a quick run without the log-service benchmark
#   BIN=/tmp/old-build scripts/bench.sh      # binaries from elsewhere, no build (A/B of two builds)
#   PROFILE=1 scripts/bench.sh               # then two more runs (to a sink, to log-service)
#                                            # under a system-wide `perf record`: bench/profile.md
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}           # seconds of measured load per run
WARMUP=${WARMUP:-3}                # seconds of load before measuring (connections, caches)
CONCURRENCY=${CONCURRENCY:-32}
PORT_BASE=${PORT_BASE:-13000}      # ports away from a running demo: gateway PORT_BASE, payment +1, ...
LOG_BENCH=${LOG_BENCH:-1}          # 0 skips scripts/bench-log-service.sh
LOG_BENCH_ROWS=${LOG_BENCH_ROWS:-200000}
LOG_BENCH_INGEST_ROWS=${LOG_BENCH_INGEST_ROWS:-100000}
PROFILE=${PROFILE:-0}              # 1: profile runs with perf (installed with apt-get when missing)
OUT=${OUT:-bench}
export AMQP_PREFIX=${AMQP_PREFIX:-bench.}

if ! command -v jq >/dev/null; then
  echo "bench: installing jq (apt-get)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq jq >/dev/null
fi
if [ "$PROFILE" != 0 ] && ! command -v perf >/dev/null; then
  echo "bench: installing perf (apt-get linux-perf)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq linux-perf >/dev/null
fi
scripts/ensure-broker.sh
if [ -n "${BIN:-}" ]; then
  # A copy of another build's binaries (tracehop, the four servers, otlp-sink), to compare two
  # builds on the same machine state.
  echo "bench: using the binaries in $BIN"
else
  echo "bench: building release binaries..."
  cargo build --release --quiet -p tracehop -p order-gateway -p payment-service -p email-service -p log-service
  cargo build --release --quiet -p testkit --bin otlp-sink
  BIN=$PWD/target/release
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tracehop-bench.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)
SERVICES="order-gateway payment-service email-service log-service"
SINK_PID=

cleanup() {
  for dir in "$WORK"/*/; do
    [ -f "$dir/tracehop.pids" ] && "$BIN/tracehop" down --log-dir "$dir" >/dev/null 2>&1 || true
  done
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# utime+stime of a pid in clock ticks (fields 14 and 15; the name in parentheses has no spaces here).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
pid_of() { awk -v n="$2" '$1 == n {print $2}' "$1/tracehop.pids"; }
# Every RabbitMQ node on the machine (the broker of the run is one of them), comma-separated.
broker_pids() { pgrep -x beam.smp | paste -sd, -; }
broker_ticks() {
  local total=0 pid
  for pid in $(pgrep -x beam.smp); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}

# run_case NAME [up flags...]: starts the services, warms up, measures, stops; writes $WORK/NAME.json.
run_case() {
  local name=$1
  shift
  local dir="$WORK/$name"
  mkdir -p "$dir"
  echo "bench: $name: starting the services"
  "$BIN/tracehop" up --detach --log-dir "$dir" --database "sqlite://$dir/log-service.db" \
    --gateway-port "$PORT_BASE" --payment-port $((PORT_BASE + 1)) --email-port $((PORT_BASE + 2)) \
    --log-service-port $((PORT_BASE + 3)) --otlp-grpc-port $((PORT_BASE + 4)) \
    --otlp-http-port $((PORT_BASE + 5)) --grpc-port $((PORT_BASE + 6)) \
    --payment-latency-ms 0 "$@" >/dev/null
  local gateway="http://127.0.0.1:$PORT_BASE"
  "$BIN/tracehop" --gateway "$gateway" load -c "$CONCURRENCY" -d "${WARMUP}s" --json > "$dir/warmup.json"

  declare -A before
  local s pid
  for s in $SERVICES; do
    pid=$(pid_of "$dir" "$s")
    [ -n "$pid" ] && before[$s]=$(cpu_ticks "$pid")
  done
  [ -n "$SINK_PID" ] && before[otlp-sink]=$(cpu_ticks "$SINK_PID")
  before[rabbitmq]=$(broker_ticks)
  # The 1-minute load average before and after: more than the load itself shows other work
  # competing for the cores, which the figures then include.
  local load_before
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  echo "bench: $name: $CONCURRENCY connections for ${DURATION}s"
  local perf_pid=
  if [ -n "${PROFILE_TO:-}" ]; then
    # Both cores at 499 Hz, no call graphs: a flat profile costs the run about 1%.
    perf record -a -F 499 -o "$dir/perf.data" -- sleep "$DURATION" 2>"$dir/perf.err" &
    perf_pid=$!
  fi
  "$BIN/tracehop" --gateway "$gateway" load -c "$CONCURRENCY" -d "${DURATION}s" --json > "$dir/load.json" &
  local load_pid=$!
  wait "$load_pid"
  local answered
  answered=$(jq .answered "$dir/load.json")
  local services='{}'
  for s in $SERVICES otlp-sink rabbitmq load; do
    case $s in
      otlp-sink) pid=$SINK_PID ;;
      rabbitmq) pid=$(broker_pids) ;;
      load) pid=$load_pid ;;
      *) pid=$(pid_of "$dir" "$s") ;;
    esac
    [ -n "$pid" ] || continue
    local ticks rss
    case $s in
      rabbitmq) ticks=$(( $(broker_ticks) - ${before[$s]} )); rss=0 ;;
      load) ticks=$(jq ".cpu_seconds * $CLK_TCK | round" "$dir/load.json"); rss=0 ;;
      *) ticks=$(( $(cpu_ticks "$pid") - ${before[$s]} )); rss=$(peak_rss_kib "$pid") ;;
    esac
    services=$(jq -c --arg s "$s" --argjson ticks "$ticks" --argjson tck "$CLK_TCK" \
      --argjson orders "$answered" --argjson rss "$rss" --arg pid "$pid" \
      --argjson wall "$(jq .duration_s "$dir/load.json")" \
      '. + {($s): {pid: $pid, cpu_seconds: ($ticks / $tck),
                  cpu_seconds_per_1000_orders: (if $orders > 0 then ($ticks / $tck) / $orders * 1000 else null end),
                  cores: ($ticks / $tck / $wall),
                  peak_rss_mib: (if $rss > 0 then $rss / 1024 else null end)}}' <<<"$services")
  done
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    local specs=() p
    for s in $SERVICES otlp-sink rabbitmq load; do
      p=$(jq -r --arg s "$s" '.[$s].pid // empty' <<<"$services")
      [ -n "$p" ] && specs+=("$s=$p")
    done
    {
      printf '## %s\n\n' "$PROFILE_TO"
      jq -r '"\(.answered) orders in \(.duration_s | . * 10 | round / 10) s, \(.throughput_rps | floor) orders/s."' "$dir/load.json"
      echo
      scripts/perf-summary.py "$dir/perf.data" "${specs[@]}"
      echo
    } >> "$WORK/profile.md"
    rm -f "$dir/perf.data"
  fi
  # What log-service stored, counted from the warm-up on: every order has six spans, so fewer
  # spans per order means the services' export queues dropped some (the writer fell behind).
  local stored='null'
  if [ -n "$(pid_of "$dir" log-service)" ]; then
    sleep 1 # the services' last export (every 200 ms)
    stored=$(curl -sf "http://127.0.0.1:$((PORT_BASE + 3))/metrics" | awk '
      /^log_service_ingested_records_total\{.*outcome="accepted".*signal="spans"/ {spans += $NF}
      /^log_service_ingested_records_total\{.*outcome="accepted".*signal="logs"/ {logs += $NF}
      /^log_service_commit_duration_seconds_sum / {busy = $NF}
      /^log_service_commit_rows_sum / {rows = $NF}
      END {printf "{\"spans\": %d, \"logs\": %d, \"writer_busy_s\": %f, \"rows\": %d}", spans, logs, busy, rows}')
  fi
  "$BIN/tracehop" down --log-dir "$dir" >/dev/null 2>&1
  jq --argjson services "$services" --argjson lb "$load_before" --argjson la "$(cut -d' ' -f1 /proc/loadavg)" \
    --argjson stored "$stored" --argjson warmup "$(jq .answered "$dir/warmup.json")" \
    '{load: ., services: $services, loadavg_1m: {before: $lb, after: $la}, orders_with_warmup: (.answered + $warmup),
      stored: (if $stored == null then null else $stored + {
        spans_per_order: ($stored.spans / (.answered + $warmup)),
        writer_busy_us_per_row: ($stored.writer_busy_s / ([$stored.rows, 1] | max) * 1e6)} end)}' \
    "$dir/load.json" > "$WORK/$name.json"
  jq -r '"bench: \(.load.throughput_rps | floor) orders/s, p50 \(.load.latency_ms.p50) ms, p99 \(.load.latency_ms.p99) ms"' "$WORK/$name.json"
}

run_case telemetry_on

echo "bench: telemetry_sink: starting the OTLP sink"
"$BIN/otlp-sink" "127.0.0.1:$((PORT_BASE + 4))" > "$WORK/sink-counts.json" &
SINK_PID=$!
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$((PORT_BASE + 4))" run_case telemetry_sink --no-log-service
kill "$SINK_PID"
wait "$SINK_PID" || true
SINK_PID=
jq -c . "$WORK/sink-counts.json" >/dev/null || { echo "bench: the OTLP sink printed no counts" >&2; exit 1; }
echo "bench: telemetry_sink: the sink received $(cat "$WORK/sink-counts.json")"

OTEL_SDK_DISABLED=true run_case telemetry_off --no-log-service

if [ "$PROFILE" != 0 ]; then
  echo "bench: profile runs"
  "$BIN/otlp-sink" "127.0.0.1:$((PORT_BASE + 4))" > /dev/null &
  SINK_PID=$!
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$((PORT_BASE + 4))" \
    PROFILE_TO="to a sink" run_case profile_sink --no-log-service
  kill "$SINK_PID"
  wait "$SINK_PID" || true
  SINK_PID=
  PROFILE_TO="to log-service" run_case profile_on
fi

log_bench='null'
if [ "$LOG_BENCH" != 0 ] && [ -x scripts/bench-log-service.sh ]; then
  echo "bench: log-service ingest and lookup (scripts/bench-log-service.sh, sqlite, $LOG_BENCH_ROWS rows)"
  if ROWS=$LOG_BENCH_ROWS INGEST_ROWS=$LOG_BENCH_INGEST_ROWS BACKEND=sqlite \
      BENCH_DIR="$WORK/log-bench" scripts/bench-log-service.sh > "$WORK/log-bench.txt" 2>"$WORK/log-bench.err"; then
    status=ok
  else
    status=failed
    tail -n 5 "$WORK/log-bench.err" >> "$WORK/log-bench.txt"
  fi
  log_bench=$(jq -n --arg status "$status" --rawfile output "$WORK/log-bench.txt" \
    --arg command "ROWS=$LOG_BENCH_ROWS INGEST_ROWS=$LOG_BENCH_INGEST_ROWS BACKEND=sqlite scripts/bench-log-service.sh" \
    '{command: $command, status: $status, output: ($output | sub("^\\s+"; ""))}')
fi

cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
mkdir -p "$OUT"
jq -n \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpu "${cpu_model:-unknown}" --argjson cores "$(nproc)" --argjson mem "$mem_kib" \
  --arg kernel "$(uname -r)" \
  --argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson concurrency "$CONCURRENCY" \
  --slurpfile on "$WORK/telemetry_on.json" --slurpfile off "$WORK/telemetry_off.json" \
  --slurpfile sink "$WORK/telemetry_sink.json" --slurpfile sink_counts "$WORK/sink-counts.json" \
  --argjson log_bench "$log_bench" \
  '{
    generated_at: $date, commit: $commit,
    machine: {cpu_model: $cpu, cores: $cores, memory_gib: ($mem / 1048576 * 10 | round / 10), kernel: $kernel},
    settings: {duration_s: $duration, warmup_s: $warmup, concurrency: $concurrency, payment_latency_ms: 0,
               load_generator: "tracehop load on the same machine"},
    telemetry_on: $on[0], telemetry_sink: ($sink[0] + {received: $sink_counts[0]}), telemetry_off: $off[0],
    ratio_on_over_off: {
      throughput: ($on[0].load.throughput_rps / $off[0].load.throughput_rps),
      p50: ($on[0].load.latency_ms.p50 / $off[0].load.latency_ms.p50),
      p99: ($on[0].load.latency_ms.p99 / $off[0].load.latency_ms.p99)
    },
    ratio_sink_over_off: {
      throughput: ($sink[0].load.throughput_rps / $off[0].load.throughput_rps),
      p50: ($sink[0].load.latency_ms.p50 / $off[0].load.latency_ms.p50),
      p99: ($sink[0].load.latency_ms.p99 / $off[0].load.latency_ms.p99)
    },
    log_service: $log_bench
  }' > "$OUT/results.json"

# The Markdown view of the same numbers.
jq -r '
  def f(n): if n == null then "-" else (n * 100 | round / 100 | tostring) end;
  def svc(run; s): run.services[s];
  "# Order path benchmark\n",
  "Generated \(.generated_at) at commit \(.commit) by `scripts/bench.sh`.\n",
  "Machine: \(.machine.cpu_model), \(.machine.cores) cores, \(.machine.memory_gib) GiB memory, Linux \(.machine.kernel).",
  "The load generator (`tracehop load`) and every service share these cores. The 1-minute load average includes the four to five busy processes of the run itself, and its before value still carries the decay of the previous run, so only a value far above that points to other work, which the figures would then include.\n",
  "Load: `tracehop load --concurrency \(.settings.concurrency) --duration \(.settings.duration_s)s` (sample order, empty body) after a \(.settings.warmup_s) s warm-up, PAYMENT_LATENCY_MS=0, release builds started by `tracehop up --detach`.",
  "Three runs: **to log-service**, OTLP traces and logs to a running log-service (SQLite) on the same cores; **to a sink**, the same export to an OTLP/gRPC receiver that decodes and discards (`otlp-sink`, received \(.telemetry_sink.received.spans) spans and \(.telemetry_sink.received.logs) log records), which is what telemetry costs the services themselves; **off**, OTEL_SDK_DISABLED=true and no receiver. JSON log files are written in all three.\n",
  "| | to log-service | to a sink | off | log-service / off | sink / off |",
  "|---|---:|---:|---:|---:|---:|",
  "| orders/s | \(f(.telemetry_on.load.throughput_rps)) | \(f(.telemetry_sink.load.throughput_rps)) | \(f(.telemetry_off.load.throughput_rps)) | \(f(.ratio_on_over_off.throughput)) | \(f(.ratio_sink_over_off.throughput)) |",
  "| p50 latency (ms) | \(f(.telemetry_on.load.latency_ms.p50)) | \(f(.telemetry_sink.load.latency_ms.p50)) | \(f(.telemetry_off.load.latency_ms.p50)) | \(f(.ratio_on_over_off.p50)) | \(f(.ratio_sink_over_off.p50)) |",
  "| p99 latency (ms) | \(f(.telemetry_on.load.latency_ms.p99)) | \(f(.telemetry_sink.load.latency_ms.p99)) | \(f(.telemetry_off.load.latency_ms.p99)) | \(f(.ratio_on_over_off.p99)) | \(f(.ratio_sink_over_off.p99)) |",
  "| p99.9 latency (ms) | \(f(.telemetry_on.load.latency_ms.p99_9)) | \(f(.telemetry_sink.load.latency_ms.p99_9)) | \(f(.telemetry_off.load.latency_ms.p99_9)) | | |",
  "| max latency (ms) | \(f(.telemetry_on.load.latency_ms.max)) | \(f(.telemetry_sink.load.latency_ms.max)) | \(f(.telemetry_off.load.latency_ms.max)) | | |",
  "| orders answered | \(.telemetry_on.load.answered) | \(.telemetry_sink.load.answered) | \(.telemetry_off.load.answered) | | |",
  "| errors (transport + non-2xx/402) | \(.telemetry_on.load.errors) | \(.telemetry_sink.load.errors) | \(.telemetry_off.load.errors) | | |",
  "| spans / logs per order received (warm-up included; six spans per order) | \(f(.telemetry_on.stored.spans_per_order)) / \(f(.telemetry_on.stored.logs / .telemetry_on.orders_with_warmup)) stored | \(f(.telemetry_sink.received.spans / .telemetry_sink.orders_with_warmup)) / \(f(.telemetry_sink.received.logs / .telemetry_sink.orders_with_warmup)) | | | |",
  "| log-service writer busy per row stored (µs) | \(f(.telemetry_on.stored.writer_busy_us_per_row)) | | | | |",
  "| 1-min load average before / after | \(.telemetry_on.loadavg_1m.before) / \(.telemetry_on.loadavg_1m.after) | \(.telemetry_sink.loadavg_1m.before) / \(.telemetry_sink.loadavg_1m.after) | \(.telemetry_off.loadavg_1m.before) / \(.telemetry_off.loadavg_1m.after) | | |",
  "",
  "CPU seconds per 1000 orders (utime+stime over the measured run) and peak RSS (VmHWM, MiB):\n",
  "| process | CPU s / 1000 orders: to log-service | to a sink | off | peak RSS MiB: to log-service | to a sink | off |",
  "|---|---:|---:|---:|---:|---:|---:|",
  (. as $r | ["order-gateway", "payment-service", "email-service", "log-service", "otlp-sink", "rabbitmq", "load"][] as $s |
    "| \(if $s == "load" then "load generator" elif $s == "rabbitmq" then "RabbitMQ (beam.smp)" else $s end) | \(f(svc($r.telemetry_on; $s).cpu_seconds_per_1000_orders)) | \(f(svc($r.telemetry_sink; $s).cpu_seconds_per_1000_orders)) | \(f(svc($r.telemetry_off; $s).cpu_seconds_per_1000_orders)) | \(f(svc($r.telemetry_on; $s).peak_rss_mib)) | \(f(svc($r.telemetry_sink; $s).peak_rss_mib)) | \(f(svc($r.telemetry_off; $s).peak_rss_mib)) |"),
  "",
  "Where the \(.machine.cores) cores went (CPU seconds per second of the run), and the ceiling: the orders/s at which these processes would use every core, from their CPU per order (a run below its ceiling waited on something other than CPU):\n",
  "| cores used | to log-service | to a sink | off |",
  "|---|---:|---:|---:|",
  (. as $r | [["the three services", ["order-gateway", "payment-service", "email-service"]],
              ["telemetry receiver", ["log-service", "otlp-sink"]],
              ["RabbitMQ", ["rabbitmq"]], ["load generator", ["load"]],
              ["all of them", ["order-gateway", "payment-service", "email-service", "log-service", "otlp-sink", "rabbitmq", "load"]]][] as $g |
    "| \($g[0]) | " + ([[$r.telemetry_on, $r.telemetry_sink, $r.telemetry_off][] as $run | [$g[1][] as $s | $run.services[$s].cores // 0] | add | f(.)] | join(" | ")) + " |"),
  (. as $r | "| ceiling, orders/s | " + ([[$r.telemetry_on, $r.telemetry_sink, $r.telemetry_off][] as $run | ([$run.services[] | .cpu_seconds_per_1000_orders // 0] | add) as $cpu | if $cpu > 0 then ($r.machine.cores / $cpu * 1000 | floor | tostring) else "-" end] | join(" | ")) + " |"),
  "",
  (if .log_service == null then "log-service ingest and lookup: not run (LOG_BENCH=0 or scripts/bench-log-service.sh missing)."
   else "## log-service ingest and lookup\n\n`\(.log_service.command)` (\(.log_service.status)):\n\n```\n\(.log_service.output)```" end)
' "$OUT/results.json" > "$OUT/results.md"

if [ "$PROFILE" != 0 ]; then
  {
    echo "# Where the CPU goes"
    echo
    echo "Generated $(date -u +%Y-%m-%dT%H:%M:%SZ) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown) by \`PROFILE=1 scripts/bench.sh\` on $cpu_model, $(nproc) cores: the same load as the runs in results.md, sampled on every core by \`perf record -a -F 499\` (self time, no call graphs)."
    echo
    cat "$WORK/profile.md"
  } > "$OUT/profile.md"
  echo "bench: wrote $OUT/profile.md"
fi
echo "bench: wrote $OUT/results.md and $OUT/results.json"
cat "$OUT/results.md"
