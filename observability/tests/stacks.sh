#!/usr/bin/env bash
# Static checks of the observability stacks; needs no Docker engine (scripts/test.d/20-stacks.sh).
#  1. `docker-compose config -q` of the root file alone and with each stack, and
#     `scripts/stack.sh <stack> config -q`;
#  2. promtool: Prometheus configuration, alert rules, rule unit tests (every alert fires when it
#     should and stays silent when it should not);
#  3. amtool: Alertmanager configuration and routing by severity; a real Alertmanager with the
#     shared configuration: ServiceDown of one service inhibits that service's alerts only;
#  4. check_stacks.py: layout, files parse, datasource uids and derived fields, exported metrics
#     and exemplars, collector pipelines and scrape jobs, compose rules (pinned images, loopback
#     ports, healthchecks, memory limits, the environment of docs/architecture.md), ELK settings,
#     alert labels, annotations and inhibition, Dockerfile;
#  5. the Kibana setup script against a stand-in Kibana: valid data view and saved search.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."
source "$here/stack_tools.sh"
shared=observability

ensure_cmd docker-compose docker-compose
ensure_cmd promtool prometheus
ensure_cmd amtool prometheus-alertmanager
ensure_cmd curl curl
ensure_python_yaml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
passed=0
step() {
  local what=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
    sed 's/^/     /' "$tmp/out"
  fi
}

echo "== compose"
step "docker-compose config: root" docker-compose -f docker-compose.yml config -q
for stack in observability elk lgtm; do
  step "docker-compose config: root + $stack" docker-compose -f docker-compose.yml -f "$stack/docker-compose.yml" config -q
done
step "docker-compose config: root + the three-node RabbitMQ cluster" docker-compose -f docker-compose.yml -f observability/rabbitmq/docker-compose.cluster.yml config -q
for stack in classic elk lgtm; do
  step "scripts/stack.sh $stack config -q" scripts/stack.sh "$stack" config -q
done
step "scripts/stack.sh rejects an unknown stack" bash -c '! scripts/stack.sh nosuch up'

echo "== prometheus"
mkdir -p "$tmp/prom/rules"
cp $shared/alerting/rules/*.yml "$tmp/prom/rules/"
sed "s|/etc/prometheus/rules|$tmp/prom/rules|" $shared/prometheus/prometheus.yml >"$tmp/prom/prometheus.yml"
step "promtool check config $shared/prometheus/prometheus.yml" promtool check config "$tmp/prom/prometheus.yml"
step "promtool check rules $shared/alerting/rules" promtool check rules $shared/alerting/rules/*.yml
step "promtool test rules $shared/alerting/tests" promtool test rules $shared/alerting/tests/*.test.yml

echo "== alertmanager"
am_config=$shared/alerting/alertmanager.yml
step "amtool check-config $am_config" amtool check-config $am_config
step "critical alerts go to tracehop-critical" bash -c "[[ \$(amtool config routes test --config.file=$am_config severity=critical alertname=ServiceDown 2>/dev/null) == tracehop-critical ]]"
step "warning alerts go to tracehop-warning" bash -c "[[ \$(amtool config routes test --config.file=$am_config severity=warning alertname=HighErrorRate 2>/dev/null) == tracehop-warning ]]"

# amtool cannot evaluate inhibition offline: run the real Alertmanager with the shared
# configuration, post alerts as the rules label them, and read back each one's state.
am_port=$(free_port)
mkdir -p "$tmp/am"
prometheus-alertmanager --config.file=$am_config --storage.path="$tmp/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$tmp/alertmanager.log" 2>&1 &
am_pid=$!
trap 'kill $am_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$am_port/-/ready" 2>/dev/null && break; sleep 0.1; done
step "inhibition: ServiceDown of email-service holds back email-service's alerts only" \
  /usr/bin/python3 - "http://127.0.0.1:$am_port" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
def alert(name, severity, **labels):
    return {"labels": {"alertname": name, "severity": severity, **labels}}
alerts = [
    alert("ServiceDown", "critical", job="email-service", service="email-service", instance="email-service:3002"),
    alert("RabbitMQNoConsumer", "critical", service="email-service", vhost="/", queue="email.payments"),
    alert("EmailDeadLetters", "warning", service="email-service", queue="email.payments"),
    alert("HighErrorRate", "warning", job="order-gateway", service="order-gateway"),
    alert("HighLatencyP95", "warning", job="payment-service", service="payment-service", route="/process-payment"),
]
req = urllib.request.Request(f"{base}/api/v2/alerts", json.dumps(alerts).encode(), {"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
want = {"ServiceDown": "active", "RabbitMQNoConsumer": "suppressed", "EmailDeadLetters": "suppressed",
        "HighErrorRate": "active", "HighLatencyP95": "active"}
deadline = time.time() + 15
while True:
    got = {a["labels"]["alertname"]: a["status"]["state"] for a in json.load(urllib.request.urlopen(f"{base}/api/v2/alerts"))}
    if got == want or time.time() > deadline:
        break
    time.sleep(0.2)
for name in want:
    print(f"{name:20} {got.get(name)} (want {want[name]})")
assert got == want, got
PY
kill $am_pid 2>/dev/null || true

echo "== files, datasources, metrics, compose rules"
step "$shared/tests/check_stacks.py" /usr/bin/python3 $shared/tests/check_stacks.py
grep -E '^(check_stacks|FAIL)' "$tmp/out" || true

echo "== kibana setup"
port=$(free_port)
/usr/bin/python3 - "$port" "$tmp/kibana-requests.json" <<'PY' &
# A stand-in Kibana: answers /api/status as available and records every write request.
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
seen = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"status":{"overall":{"level":"available"}}}'
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(n).decode()
        seen.append({"path": self.path, "xsrf": self.headers.get("kbn-xsrf"), "body": raw})
        json.dump(seen, open(out, "w"))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
fake=$!
trap 'kill $fake $am_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/api/status" >/dev/null 2>&1 && break; sleep 0.1; done
step "elk/kibana/setup.sh runs against a stand-in Kibana" env KIBANA_URL="http://127.0.0.1:$port" bash elk/kibana/setup.sh
step "kibana setup: data view, default, saved search on trace.id" /usr/bin/python3 - "$tmp/kibana-requests.json" <<'PY'
import json, sys
reqs = json.load(open(sys.argv[1]))
by_path = {r["path"].split("?")[0]: r for r in reqs}
assert all(r["xsrf"] for r in reqs), "kbn-xsrf header missing"
dv = json.loads(by_path["/api/data_views/data_view"]["body"])["data_view"]
assert dv["title"] == "tracehop-logs-*" and dv["timeFieldName"] == "@timestamp", dv
assert dv["fieldFormats"]["trace.id"]["params"]["urlTemplate"].endswith("/trace/{{value}}"), dv
assert json.loads(by_path["/api/data_views/default"]["body"])["data_view_id"] == dv["id"]
ss = json.loads(by_path["/api/saved_objects/search/tracehop-order-logs"]["body"])
assert "trace.id" in ss["attributes"]["columns"], ss
src = json.loads(ss["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
assert src["query"]["language"] == "kuery", src
assert ss["references"][0]["id"] == dv["id"] and ss["references"][0]["name"] == src["indexRefName"], ss
print("data view", dv["id"], "and saved search OK")
PY
step "logstash pipeline: beats in, ECS renames, daily tracehop-logs index" bash -c '
  f=elk/logstash/pipeline/tracehop.conf
  grep -q "beats" $f && grep -q "\"trace_id\" => \"\[trace\]\[id\]\"" $f && grep -q "\"span_id\"  => \"\[span\]\[id\]\"" $f &&
  grep -q "\"service\"  => \"\[service\]\[name\]\"" $f && grep -q "tracehop-logs-%{+YYYY.MM.dd}" $f'
step "filebeat: filestream input with the ndjson parser" /usr/bin/python3 -c '
import yaml
c = yaml.safe_load(open("elk/filebeat/filebeat.yml"))
i = c["filebeat.inputs"][0]
assert i["type"] == "filestream" and i["id"] and any("ndjson" in p for p in i["parsers"]), i
assert all(p.startswith("/var/log/tracehop/") for p in i["paths"]), i
assert c["output.logstash"]["hosts"] == ["logstash:5044"]
'
step "logstash index template parses and maps trace.id as keyword" /usr/bin/python3 -c '
import json
t = json.load(open("elk/logstash/templates/tracehop-logs.json"))
assert t["index_patterns"] == ["tracehop-logs-*"]
assert t["template"]["mappings"]["properties"]["trace"]["properties"]["id"]["type"] == "keyword"
'
step "shell scripts parse" bash -c 'for f in scripts/stack.sh scripts/test.d/*.sh elk/kibana/setup.sh observability/tests/*.sh; do bash -n "$f" || exit 1; done'

echo "20-stacks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
