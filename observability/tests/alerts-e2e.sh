#!/usr/bin/env bash
# End-to-end alert test with the real Prometheus and Alertmanager (Debian packages) on loopback
# (scripts/test.d/30-alerts.sh).
#
# Starts log-service and the three services with `tracehop up --detach` from target/debug (free
# ports, a unique AMQP_PREFIX, a temporary log directory and database), a Prometheus scraping
# them and RabbitMQ's per-queue metrics every second with the shared rules (only `for:`
# shortened, in a temporary copy), and an Alertmanager with the shared configuration unchanged.
# Then, asserting through Alertmanager's /api/v2/alerts:
#   A. `--payment-failure-rate 1` and a few orders: HighErrorRate fires;
#   C. payments succeed again and every e-mail send fails (PUT /admin/faults on both, with
#      EMAIL_MAX_ATTEMPTS=1): confirmation e-mails are dead-lettered, EmailDeadLetters fires;
#   E. PUT /admin/faults {"latency_ms": 700} on payment-service: HighLatencyP95 fires;
#   D. every metric name the dashboards and rules read is in a real scrape of the services',
#      log-service's and RabbitMQ's metrics; `promtool check metrics` on each service;
#   B. email-service stopped, more orders: ServiceDown (email-service), RabbitMQNoConsumer and
#      RabbitMQQueueBacklog fire; ServiceDown inhibits email-service's alerts (state
#      "suppressed") and leaves order-gateway's and payment-service's active.
#   F. log-service's log alert rules (observability/log-alert-rules.json, which `tracehop up`
#      loads, evaluated every second) reach the same Alertmanager from the services' real log
#      lines: PaymentDeclines in A, EmailSendFailures and EmailsDeadLettered in C, each with a
#      `trace_url` that opens its trace in log-service.
# B comes last: `tracehop up` starts every service together and has no way to start one alone
# again, so the stopped email-service stays stopped until `tracehop down`.
# Skips (exit 0, loudly) only when the binaries cannot be built.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."
source "$here/stack_tools.sh"
shared=observability

started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started))s"; }

ensure_cmd prometheus prometheus
ensure_cmd prometheus-alertmanager prometheus-alertmanager
ensure_cmd promtool prometheus
ensure_cmd curl curl
ensure_python_yaml

# --- the broker: local RabbitMQ with the prometheus plugin (installed and started if missing) ----
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
RABBITMQ_METRICS=${RABBITMQ_METRICS:-127.0.0.1:15692}
# scripts/ensure-broker.sh installs and starts rabbitmq-server when nothing answers on :5672.
scripts/ensure-broker.sh
export PATH="$PATH:/usr/sbin"
if ! curl -fsS -o /dev/null "http://$RABBITMQ_METRICS/metrics"; then
  echo "enabling rabbitmq_prometheus"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" env PATH="$PATH" rabbitmq-plugins enable rabbitmq_prometheus >/dev/null
  for _ in $(seq 30); do curl -fsS -o /dev/null "http://$RABBITMQ_METRICS/metrics" && break; sleep 1; done
fi

# --- the binaries ---------------------------------------------------------------------------------
# scripts/test.sh has built them (cargo build --workspace --bins); run alone, build what is missing.
bins=(tracehop log-service order-gateway payment-service email-service)
missing() { local b out=(); for b in "${bins[@]}"; do [[ -x target/debug/$b ]] || out+=("$b"); done; echo "${out[*]}"; }
if [[ -n $(missing) ]] && command -v cargo >/dev/null 2>&1; then
  cargo build --workspace --bins -q 2>&1 | tail -20 || true
  echo "cargo build --workspace --bins: $(elapsed)"
fi
started=$(date +%s) # the test's own time, without the build
if [[ -n $(missing) ]]; then
  echo "################################################################################"
  echo "## SKIP 30-alerts: binaries missing in target/debug: $(missing)"
  echo "## (cargo build --workspace --bins did not produce them). The end-to-end alert test did NOT run."
  echo "################################################################################"
  echo "30-alerts: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
tracehop=target/debug/tracehop

tmp=$(mktemp -d)
pids=()
prefix="e2e$(date +%s)$RANDOM."
cleanup() {
  local rc=$?
  "$tracehop" down --log-dir "$tmp/logs" >"$tmp/down.out" 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # Remove this run's queues from the shared broker (exchanges stay: empty and harmless).
  if command -v rabbitmqctl >/dev/null 2>&1; then
    rabbitmqctl -q list_queues name 2>/dev/null | grep "^$prefix" | while read -r q; do
      rabbitmqctl -q delete_queue "$q" </dev/null >/dev/null 2>&1 || true
    done
  fi
  if [[ $rc -ne 0 ]]; then
    echo "--- logs of the failed run (tail) ---"
    for f in "$tmp"/*.out "$tmp"/logs/*.stdout "$tmp"/logs/*.log; do [[ -f $f ]] && { echo "== $f"; tail -n 15 "$f"; }; done
  fi
  if [[ -n ${TRACEHOP_E2E_KEEP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

failed=0
passed=0
ok() { passed=$((passed + 1)); echo "ok   [$(elapsed)] $*"; }
fail() { failed=$((failed + 1)); echo "FAIL [$(elapsed)] $*"; }

read -r og_port ps_port es_port ls_port otlp_grpc_port otlp_http_port grpc_port prom_port am_port \
  < <(free_ports 9)

# --- the services, through the CLI -----------------------------------------------------------------
# `tracehop up` passes its own environment on to the services; AMQP_PREFIX (this run's queues on
# the shared broker) and EMAIL_MAX_ATTEMPTS (dead-letter at the first failed send) have no flag.
# ALERT_EVAL_INTERVAL (log-service's) has no flag either. Alertmanager starts a little later:
# log-service's deliveries fail until then and firing alerts are sent again every evaluation.
if AMQP_PREFIX="$prefix" EMAIL_MAX_ATTEMPTS=1 ALERT_EVAL_INTERVAL=1s RUST_LOG=info "$tracehop" up --detach \
  --log-dir "$tmp/logs" --database "sqlite://$tmp/log-service.db" --amqp-url "$AMQP_URL" \
  --alertmanager-url "http://127.0.0.1:$am_port" \
  --gateway-port "$og_port" --payment-port "$ps_port" --email-port "$es_port" \
  --log-service-port "$ls_port" --otlp-grpc-port "$otlp_grpc_port" --otlp-http-port "$otlp_http_port" \
  --grpc-port "$grpc_port" --payment-failure-rate 1 --ready-timeout 60s >"$tmp/up.out" 2>&1; then
  ok "tracehop up --detach: log-service :$ls_port, gateway :$og_port, payment :$ps_port, email :$es_port"
else
  fail "tracehop up --detach: $(tail -n 3 "$tmp/up.out" | tr '\n' ' ')"
  exit 1
fi
# pid_of <service>: from the pid file `tracehop up --detach` writes.
pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/logs/tracehop.pids"; }

wait_http() { # wait_http <url> <seconds>
  local i
  for ((i = 0; i < $2 * 5; i++)); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  return 1
}

# --- Prometheus and Alertmanager with a test copy of the configuration ---------------------------
mkdir -p "$tmp/rules" "$tmp/prom" "$tmp/am"
# Only the `for:` durations shrink (1m -> 2s, 2m -> 3s, 5m -> 5s); expressions and windows stay.
sed -E 's/^(\s+for: )1m$/\12s/; s/^(\s+for: )2m$/\13s/; s/^(\s+for: )5m$/\15s/' \
  $shared/alerting/rules/tracehop.rules.yml >"$tmp/rules/tracehop.rules.yml"
prefix_re=${prefix//./\\\\.}
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$tmp/rules/tracehop.rules.yml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:$am_port"]}]
scrape_configs:
  - job_name: order-gateway
    static_configs: [{targets: ["127.0.0.1:$og_port"]}]
  - job_name: payment-service
    static_configs: [{targets: ["127.0.0.1:$ps_port"]}]
  - job_name: email-service
    static_configs: [{targets: ["127.0.0.1:$es_port"]}]
  - job_name: log-service
    static_configs: [{targets: ["127.0.0.1:$ls_port"]}]
  - job_name: rabbitmq
    metrics_path: /metrics/detailed
    params:
      family: [queue_coarse_metrics, queue_consumer_count]
    static_configs: [{targets: ["$RABBITMQ_METRICS"]}]
    # The broker is shared: keep only this run's queues.
    metric_relabel_configs:
      - source_labels: [queue]
        regex: "${prefix_re}.*"
        action: keep
YAML
promtool check config "$tmp/prometheus.yml" >/dev/null && ok "test copy of the Prometheus configuration is valid" || fail "test Prometheus configuration"

prometheus-alertmanager --config.file=$shared/alerting/alertmanager.yml --storage.path="$tmp/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$tmp/alertmanager.out" 2>&1 &
pids+=($!)
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$prom_port" --enable-feature=exemplar-storage \
  --rules.alert.resend-delay=1s >"$tmp/prometheus.out" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$am_port/-/ready" 30 && ok "alertmanager ready ($shared/alerting/alertmanager.yml)" || { fail "alertmanager not ready"; exit 1; }
wait_http "http://127.0.0.1:$prom_port/-/ready" 30 && ok "prometheus ready" || { fail "prometheus not ready"; exit 1; }

# alert_state <alertname> [label=value ...]: prints "active", "suppressed" or nothing.
alert_state() {
  curl -fsS "http://127.0.0.1:$am_port/api/v2/alerts" | /usr/bin/python3 -c '
import json, sys
name, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
for a in json.load(sys.stdin):
    labels = a["labels"]
    if labels.get("alertname") == name and all(labels.get(k, "").startswith(v) for k, v in want.items()):
        print(a["status"]["state"]); break
' "$@"
}
# await_alert <seconds> <states regex> <alertname> [label=value ...]
await_alert() {
  local secs=$1 states=$2 i s
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    s=$(alert_state "$@" || true)
    if [[ -n $s && $s =~ ^($states)$ ]]; then
      ok "alertmanager has $* ($s)"
      return 0
    fi
    sleep 0.5
  done
  fail "alertmanager has no $* in state $states within ${secs}s (last: ${s:-absent})"
  return 1
}
# order <count>: posts orders with an empty body, 4 at a time; prints the status codes seen.
order() {
  seq "$1" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$og_port/create-order" \
    | sort | uniq -c | tr '\n' ' '
}
# log_alert <alertname>: checks that log-service's alert links to a trace log-service has.
log_alert() {
  local url
  url=$(curl -fsS "http://127.0.0.1:$am_port/api/v2/alerts" | /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin):
    if a["labels"].get("alertname") == sys.argv[1] and a["labels"].get("source") == "log-service":
        print(a["annotations"].get("trace_url", "")); break
' "$1")
  if [[ $url == "http://127.0.0.1:$ls_port/api/v1/traces/"* ]] && curl -fsS -o /dev/null "$url"; then
    ok "$1 (log-service) links to its trace: $url"
  else
    fail "$1 (log-service) has no trace_url that log-service answers (${url:-none})"
  fi
}
query() { # query <promql>: prints the first value, or nothing
  curl -fsS -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
faults() { # faults <port> <json>: PUT /admin/faults
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$1/admin/faults" -H 'Content-Type: application/json' -d "$2"
}

jobs_re="order-gateway|payment-service|email-service|log-service|rabbitmq"
for ((i = 0; i < 60; i++)); do [[ $(query "count(up{job=~\"$jobs_re\"} == 1)") == 5 ]] && break; sleep 0.5; done
[[ $(query 'count(up == 1)') == 5 ]] && ok "prometheus scrapes the three services, log-service and RabbitMQ" || fail "targets up: $(query 'count(up == 1)')"

# --- A. payments declined -> HighErrorRate --------------------------------------------------------
# 30 declined orders keep the error ratio above 5% for the rest of the run (about 200 orders in
# the 5-minute window), so HighErrorRate is still active in B.
echo "== A: tracehop up --payment-failure-rate 1"
echo "     orders: $(order 30)"
await_alert 60 active HighErrorRate job=order-gateway || true
await_alert 30 active PaymentDeclines source=log-service service=payment-service tenant=default && log_alert PaymentDeclines || true
v=$(query 'sum(orders_created_total{status="payment_declined"})')
[[ -n $v && ${v%.*} -ge 1 ]] && ok "orders_created_total{status=\"payment_declined\"} = $v" || fail "no declined orders counted ($v)"

# --- C. every send fails -> EmailDeadLetters -------------------------------------------------------
# A declined payment sends no e-mail, so payments succeed again first.
echo "== C: payments succeed, every e-mail send fails (EMAIL_MAX_ATTEMPTS=1)"
faults "$ps_port" '{"failure_rate": 0}' && ok "PUT /admin/faults {\"failure_rate\": 0} on payment-service" || fail "PUT /admin/faults on payment-service"
faults "$es_port" '{"failure_rate": 1}' && ok "PUT /admin/faults {\"failure_rate\": 1} on email-service" || fail "PUT /admin/faults on email-service"
echo "     orders: $(order 10)"
await_alert 90 active EmailDeadLetters service=email-service || true
await_alert 30 active EmailSendFailures source=log-service service=email-service && log_alert EmailSendFailures || true
await_alert 30 active EmailsDeadLettered source=log-service service=email-service severity=critical || true

# --- E. slow payments -> HighLatencyP95 -----------------------------------------------------------
echo "== E: payment latency 700 ms (PUT /admin/faults)"
faults "$ps_port" '{"latency_ms": 700}' && ok "PUT /admin/faults {\"latency_ms\": 700} on payment-service" || fail "PUT /admin/faults latency on payment-service"
echo "     orders: $(order 40)"
await_alert 60 active HighLatencyP95 job=payment-service route=/process-payment || true
faults "$ps_port" '{"latency_ms": 0}' || true

# --- D. the names the dashboards and rules read, against a real scrape -------------------------------
echo "== D: real scrape vs the names in dashboards and rules"
echo "     orders: $(order 5)"
sleep 2
/usr/bin/python3 $shared/tests/check_stacks.py "$tmp/used-metrics.txt" >/dev/null 2>&1 || true
{
  for p in $og_port $ps_port $es_port $ls_port; do curl -fsS "http://127.0.0.1:$p/metrics"; done
  curl -fsS "http://$RABBITMQ_METRICS/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count"
} >"$tmp/scrape.txt"
missing_names=()
while read -r name; do
  [[ -z $name || $name == up ]] && continue
  grep -Eq "^${name}(\{| )" "$tmp/scrape.txt" || missing_names+=("$name")
done <"$tmp/used-metrics.txt"
if ((${#missing_names[@]} == 0)); then
  ok "every metric the dashboards and rules use is in a real scrape ($(grep -vc '^$' "$tmp/used-metrics.txt") names)"
else
  # Some series only appear once their event happened (a 5xx, a failed commit): say which.
  echo "     not yet in the scrape: ${missing_names[*]}"
  declared=()
  for n in "${missing_names[@]}"; do
    base=${n%_bucket}; base=${base%_count}; base=${base%_sum}
    grep -Eq "^# (TYPE|HELP) ($n|$base) " "$tmp/scrape.txt" || declared+=("$n")
  done
  ((${#declared[@]} == 0)) && ok "the remaining names are declared (# TYPE) by the services" || fail "metrics neither scraped nor declared: ${declared[*]}"
fi
for p in $og_port $ps_port $es_port $ls_port; do
  if curl -fsS "http://127.0.0.1:$p/metrics" | promtool check metrics >"$tmp/lint.out" 2>&1; then
    ok "promtool check metrics: 127.0.0.1:$p"
  else
    echo "WARN promtool check metrics 127.0.0.1:$p: $(head -3 "$tmp/lint.out" | tr '\n' ' ')"
  fi
done

# --- B. consumer stopped -> ServiceDown, RabbitMQNoConsumer, RabbitMQQueueBacklog -----------------
echo "== B: email-service stopped"
email_pid=$(pid_of email-service)
if [[ -n $email_pid ]] && kill "$email_pid"; then ok "stopped email-service (pid $email_pid from tracehop.pids)"; else fail "no email-service pid in $tmp/logs/tracehop.pids"; fi
for ((i = 0; i < 50; i++)); do kill -0 "$email_pid" 2>/dev/null || break; sleep 0.2; done
echo "     orders: $(order 130)"
await_alert 60 active ServiceDown job=email-service || true
await_alert 60 'active|suppressed' RabbitMQNoConsumer queue="$prefix" || true
await_alert 60 'active|suppressed' RabbitMQQueueBacklog queue="$prefix" || true
ready=$(query "sum(rabbitmq_detailed_queue_messages_ready)")
echo "     messages ready in ${prefix}*: ${ready:-none}"
# ServiceDown of email-service holds back email-service's alerts ...
await_alert 30 suppressed RabbitMQQueueBacklog queue="$prefix" || true
await_alert 30 suppressed RabbitMQNoConsumer queue="$prefix" || true
await_alert 30 suppressed EmailDeadLetters service=email-service || true
# ... and no other service's: those stay active while it fires.
for want in "HighErrorRate job=order-gateway" "HighLatencyP95 job=payment-service"; do
  s=$(alert_state $want || true)
  [[ $s == active ]] && ok "alertmanager keeps $want active while ServiceDown (email-service) fires" ||
    fail "$want is ${s:-absent} while ServiceDown (email-service) fires, want active"
done

echo "30-alerts: $passed passed, $failed failed (test time $(elapsed), without the build)"
[[ $failed -eq 0 ]]
