#!/usr/bin/env python3
"""Static checks of the observability stacks (run by observability/tests/stacks.sh).

Python standard library plus PyYAML (Debian's python3-yaml, which docker-compose depends on).
Run from the repository root. Prints one line per check and exits non-zero when any fails.

Checks:
  - the shared files sit under observability/ (no top-level grafana/, alerting/, rabbitmq/) and
    observability/README.md names only files that exist;
  - every YAML and JSON file of the stacks parses;
  - every datasource uid that a dashboard, a derived field, a trace-to-logs/metrics link, an
    exemplar destination or a service map names exists in that stack's Grafana, with the
    type the dashboard expects; the Loki derived field matches the key `trace_id` only;
  - every metric a dashboard or an alert rule reads is one the services or log-service export
    (docs/architecture.md, "Metrics"), a RabbitMQ per-queue metric of the scraped families,
    `up`, or a span metric the Classic collector or Tempo generates; every query with
    exemplars on reads a histogram that carries them;
  - the collector pipelines only use defined components, and use all of them; every stack
    scrapes the services, RabbitMQ and log-service under the same job names;
  - the merged compose configuration of each stack follows the house rules: pinned images,
    127.0.0.1 host ports, healthchecks and memory limits, the environment of
    docs/architecture.md ("Configuration"); Jaeger's in-memory trace cap fits its memory limit;
  - ELK: Logstash's current API settings, one shape of `error` in every document, Kibana's
    readiness on the overall status level;
  - the alert rules have the six contract alerts with severity, service and annotations, and
    Alertmanager inhibits the others while ServiceDown fires, for the same service only;
  - the Dockerfile is multi-stage, non-root, builds every binary with a new enough Rust.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from typing import Any, Iterable

import yaml

STACKS = {
    # stack: (compose overlay, grafana datasource provisioning dir or None, stack-only dashboards dir or None)
    "classic": ("observability/docker-compose.yml", "observability/grafana/provisioning/datasources", None),
    "elk": ("elk/docker-compose.yml", None, None),
    "lgtm": ("lgtm/docker-compose.yml", "lgtm/grafana/provisioning/datasources", "lgtm/grafana/dashboards"),
}
SHARED = "observability"
SHARED_DASHBOARDS = f"{SHARED}/grafana/dashboards"
DASHBOARD_PROVIDER = f"{SHARED}/grafana/provisioning/dashboards/tracehop.yaml"
RULES = f"{SHARED}/alerting/rules/tracehop.rules.yml"
ALERTMANAGER = f"{SHARED}/alerting/alertmanager.yml"
LOG_ALERT_RULES = f"{SHARED}/log-alert-rules.json"
PROMETHEUS = f"{SHARED}/prometheus/prometheus.yml"
RABBITMQ_PLUGINS = f"{SHARED}/rabbitmq/enabled_plugins"
CLASSIC_COLLECTOR = f"{SHARED}/otel-collector/config.yaml"
LGTM_COLLECTOR = "lgtm/otel-collector/config.yaml"
# The top level holds the workspace, the stacks and the docs; nothing a stack shares.
TOP_LEVEL = {
    "Cargo.toml", "Cargo.lock", "apps", "crates", "observability", "elk", "lgtm", "docker-compose.yml",
    "scripts", "README.md", "docs", "bench", "Dockerfile",
}

# docs/architecture.md "Metrics" (contract). Histograms expand to _bucket, _count, _sum.
CONTRACT_COUNTERS = {
    "orders_created_total",
    "payment_processed_total",
    "emails_sent_total",
    "amqp_messages_published_total",
    "amqp_messages_consumed_total",
    "amqp_publisher_errors_total",
    "amqp_consumer_errors_total",
}
CONTRACT_HISTOGRAMS = {"http_request_duration_seconds", "amqp_message_processing_duration_seconds"}
# log-service's own /metrics (REST port 5002), apps/log-service/src/metrics.rs.
LOG_SERVICE_COUNTERS = {"log_service_ingested_records_total", "log_service_commit_failures_total"}
LOG_SERVICE_GAUGES = {"log_service_write_queue_rows"}
LOG_SERVICE_HISTOGRAMS = {"log_service_commit_duration_seconds", "log_service_commit_rows"}
# Every scrape job, the same in Prometheus (Classic, ELK) and the LGTM collector: `up{job}` and
# the rules behave the same in every stack.
SCRAPE_JOBS = {
    "order-gateway": "order-gateway:3000",
    "payment-service": "payment-service:3001",
    "email-service": "email-service:3002",
    "log-service": "log-service:5002",
    "rabbitmq": "rabbitmq:15692",
}
# rabbitmq_prometheus, /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count
RABBITMQ_DETAILED = {
    "rabbitmq_detailed_queue_messages_ready",
    "rabbitmq_detailed_queue_messages_unacked",
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_process_reductions_total",
    "rabbitmq_detailed_queue_consumers",
}
# Tempo metrics generator (span-metrics and service-graphs processors), LGTM only.
TEMPO_GENERATED = {
    "traces_spanmetrics_calls_total",
    "traces_spanmetrics_size_total",
    "traces_service_graph_request_total",
    "traces_service_graph_request_failed_total",
    "traces_service_graph_unpaired_spans_total",
    "traces_service_graph_dropped_spans_total",
} | {
    f"{h}_{s}"
    for h in (
        "traces_spanmetrics_latency",
        "traces_service_graph_request_server_seconds",
        "traces_service_graph_request_client_seconds",
        "traces_service_graph_request_messaging_system_seconds",
    )
    for s in ("bucket", "count", "sum")
}
# Histograms whose buckets carry trace id exemplars. The services' own histograms have none (the
# prometheus client they use writes no exemplars). Tempo's metrics generator records one per
# observation for span latency and the service-graph edges.
TEMPO_EXEMPLARS = {
    "traces_spanmetrics_latency_bucket",
    "traces_service_graph_request_server_seconds_bucket",
    "traces_service_graph_request_client_seconds_bucket",
    "traces_service_graph_request_messaging_system_seconds_bucket",
}
REQUIRED_ALERTS = {
    "HighErrorRate",
    "HighLatencyP95",
    "ServiceDown",
    "RabbitMQQueueBacklog",
    "RabbitMQNoConsumer",
    "EmailDeadLetters",
}
APP_SERVICES = {"order-gateway": 3000, "payment-service": 3001, "email-service": 3002}
BINARIES = ["order-gateway", "payment-service", "email-service", "log-service", "tracehop"]

failures: list[str] = []
passes = 0


def check(ok: bool, what: str, detail: str = "") -> bool:
    global passes
    if ok:
        passes += 1
        print(f"ok   {what}")
    else:
        failures.append(what)
        print(f"FAIL {what}" + (f": {detail}" if detail else ""))
    return ok


def load_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Parsing


def stack_files() -> list[str]:
    files: list[str] = []
    for top in ("observability", "elk", "lgtm"):
        for ext in ("yml", "yaml", "json"):
            files += glob.glob(f"{top}/**/*.{ext}", recursive=True)
    files += ["docker-compose.yml"]
    return sorted(set(files))


def check_layout() -> None:
    """The shared files live under observability/, and its README names only real files."""
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True)
    if tracked.returncode == 0:
        tops = {line.split("/", 1)[0] for line in tracked.stdout.splitlines() if line and not line.startswith(".")}
        tops = {t for t in tops if os.path.exists(t)}
        check(tops <= TOP_LEVEL, "layout: the top level holds only the workspace, the stacks, scripts and docs", f"unexpected {sorted(tops - TOP_LEVEL)}")
    for old in ("grafana", "alerting", "rabbitmq"):
        check(not os.path.exists(old), f"layout: no top-level {old}/ (shared files live under {SHARED}/)")
    readme = f"{SHARED}/README.md"
    if not check(os.path.exists(readme), f"{readme} exists"):
        return
    text = open(readme, encoding="utf-8").read()
    named = sorted(set(re.findall(r"`((?:observability|elk|lgtm)/[^`*<> ]+)`", text)))
    check(len(named) >= 10, f"{readme} names the shared files", str(named))
    for path in named:
        check(os.path.exists(path.rstrip("/")), f"{readme}: {path} exists")
    for path in (RULES, ALERTMANAGER, PROMETHEUS, RABBITMQ_PLUGINS, DASHBOARD_PROVIDER, f"{SHARED}/otel-collector/Dockerfile",
                 f"{SHARED}/loki/loki.yaml", f"{SHARED}/alerting/tests/tracehop.rules.test.yml"):
        check(f"`{path}`" in text, f"{readme} lists {path}")


def check_parse() -> None:
    for path in stack_files():
        try:
            data = load_json(path) if path.endswith(".json") else load_yaml(path)
            check(data is not None, f"parses: {path}", "empty document")
        except Exception as e:  # noqa: BLE001 - report any parse error
            check(False, f"parses: {path}", str(e))


# ---------------------------------------------------------------------------------------------
# PromQL metric names


PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "bool", "offset", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2", "start", "end",
}


def promql_metrics(expr: str) -> set[str]:
    """Returns the metric names a PromQL expression selects (best effort, enough for our files)."""
    s = re.sub(r"\$\{?__\w+\}?", "1m", expr)  # Grafana variables
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', s)  # string literals
    s = re.sub(r"'(?:\\.|[^'\\])*'", "''", s)
    s = re.sub(r"\{[^}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # range selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def exported_metric(name: str, extra: set[str] = frozenset()) -> bool:
    """A name some scrape target serves (a service, log-service, RabbitMQ), `up`, or in `extra`."""
    if name in CONTRACT_COUNTERS | LOG_SERVICE_COUNTERS | LOG_SERVICE_GAUGES | RABBITMQ_DETAILED or name == "up" or name in extra:
        return True
    if name.startswith("process_"):
        return True
    for h in CONTRACT_HISTOGRAMS | LOG_SERVICE_HISTOGRAMS:
        if name in (f"{h}_bucket", f"{h}_count", f"{h}_sum"):
            return True
    return False


def classic_span_metrics() -> tuple[set[str], set[str]]:
    """(every name, the names with exemplars) the Classic collector's spanmetrics connector writes
    to Prometheus, derived from its configuration the way the remote-write exporter names them:
    namespace dots to underscores, the histogram's unit as a suffix, counters with _total."""
    cfg = load_yaml(CLASSIC_COLLECTOR)
    sm = (cfg.get("connectors") or {}).get("spanmetrics") or {}
    prefix = sm.get("namespace", "traces.span.metrics").replace(".", "_")
    unit = {"s": "seconds", "ms": "milliseconds"}[(sm.get("histogram") or {}).get("unit", "ms")]
    hist = f"{prefix}_duration_{unit}"
    names = {f"{prefix}_calls_total"} | {f"{hist}_{s}" for s in ("bucket", "count", "sum")}
    with_exemplars = {f"{hist}_bucket"} if (sm.get("exemplars") or {}).get("enabled") else set()
    return names, with_exemplars


def walk(obj: Any) -> Iterable[Any]:
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk(v)


def dashboard_targets(dash: dict) -> list[tuple[dict, dict]]:
    """Returns (panel, target) pairs, rows' nested panels included."""
    out = []
    panels = list(dash.get("panels", []))
    while panels:
        p = panels.pop(0)
        panels.extend(p.get("panels", []) or [])
        for t in p.get("targets", []) or []:
            out.append((p, t))
    return out


def dashboard_exprs(dash: dict) -> list[str]:
    return [t["expr"] for p, t in dashboard_targets(dash) if (t.get("datasource") or p.get("datasource") or {}).get("type") == "prometheus" and t.get("expr")]


def rule_exprs() -> list[tuple[str, str]]:
    data = load_yaml(RULES)
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in data["groups"] for r in g["rules"]]


def check_metrics(written: list[str]) -> None:
    # The shared dashboard runs in Classic (collector span metrics) and LGTM (Tempo's): a span
    # panel has one query for each, and each stack fills its own.
    span_names, _ = classic_span_metrics()
    for path in sorted(glob.glob(f"{SHARED_DASHBOARDS}/*.json")):
        for expr in dashboard_exprs(load_json(path)):
            unknown = sorted(n for n in promql_metrics(expr) if not exported_metric(n, span_names | TEMPO_GENERATED))
            check(not unknown, f"{path}: metrics exported or generated from spans ({expr[:60]}...)", f"unknown {unknown}")
    for path in sorted(glob.glob("lgtm/grafana/dashboards/*.json")):
        for expr in dashboard_exprs(load_json(path)):
            unknown = sorted(n for n in promql_metrics(expr) if not exported_metric(n, TEMPO_GENERATED))
            check(not unknown, f"{path}: metrics exported or generated by Tempo ({expr[:50]}...)", f"unknown {unknown}")
    for name, expr in rule_exprs():
        unknown = sorted(n for n in promql_metrics(expr) if not exported_metric(n))
        check(not unknown, f"rule {name}: metrics exported", f"unknown {unknown}")
    for want in ("log_service_ingested_records_total", "log_service_commit_failures_total"):
        used = any(want in promql_metrics(e) for path in glob.glob(f"{SHARED_DASHBOARDS}/*.json") for e in dashboard_exprs(load_json(path)))
        check(used, f"orders dashboard shows {want}")
    # The same extraction feeds the e2e test's comparison with a real scrape; metrics generated
    # from spans never appear in a scrape.
    names = set()
    for path in glob.glob(f"{SHARED_DASHBOARDS}/*.json"):
        for expr in dashboard_exprs(load_json(path)):
            names |= promql_metrics(expr)
    for _, expr in rule_exprs():
        names |= promql_metrics(expr)
    written.extend(sorted(n for n in names if exported_metric(n)))


def check_exemplars() -> None:
    """A query with exemplars on must read only histograms whose buckets carry them, in a stack
    whose storage keeps them; anything else shows no diamond and promises a link that never comes."""
    _, classic_ex = classic_span_metrics()
    check(bool(classic_ex), f"{CLASSIC_COLLECTOR}: spanmetrics connector records exemplars")
    prom_cmd = " ".join(load_yaml("observability/docker-compose.yml")["services"]["prometheus"]["command"])
    check("exemplar-storage" in prom_cmd and "remote-write-receiver" in prom_cmd, "classic: Prometheus stores the exemplars the collector remote-writes")
    dashboards = [(p, classic_ex | TEMPO_EXEMPLARS) for p in sorted(glob.glob(f"{SHARED_DASHBOARDS}/*.json"))]
    dashboards += [(p, TEMPO_EXEMPLARS) for p in sorted(glob.glob("lgtm/grafana/dashboards/*.json"))]
    for path, carriers in dashboards:
        seen = 0
        for panel, target in dashboard_targets(load_json(path)):
            if not target.get("exemplar"):
                continue
            seen += 1
            names = promql_metrics(target.get("expr", ""))
            without = sorted(names - carriers)
            check(bool(names) and not without, f"{os.path.basename(path)}: '{panel.get('title')}' {target.get('refId')} has exemplars on a metric that carries them",
                  f"no exemplars on {without}")
        check(seen > 0, f"{os.path.basename(path)}: some latency panel links to traces through exemplars")


def check_dashboard_promql_syntax(tmp: str) -> None:
    """Feeds every dashboard query to `promtool check rules` as a recording rule."""
    rules = []
    for path in sorted(glob.glob(f"{SHARED_DASHBOARDS}/*.json") + glob.glob("lgtm/grafana/dashboards/*.json")):
        for i, expr in enumerate(dashboard_exprs(load_json(path))):
            e = expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$__interval", "1m")
            rules.append({"record": f"dashboard:query{len(rules)}", "expr": e})
    out = os.path.join(tmp, "dashboard-queries.rules.yml")
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
    r = subprocess.run(["promtool", "check", "rules", out], capture_output=True, text=True)
    check(r.returncode == 0, f"promtool parses all {len(rules)} dashboard queries", r.stdout + r.stderr)


# ---------------------------------------------------------------------------------------------
# Grafana datasources and dashboards


def provisioned_datasources(dirpath: str) -> dict[str, dict]:
    out = {}
    for path in sorted(glob.glob(f"{dirpath}/*.y*ml")):
        for ds in load_yaml(path).get("datasources", []):
            out[ds["uid"]] = ds
    return out


def referenced_uids_in_datasource(ds: dict) -> list[tuple[str, str]]:
    """(where, uid) pairs for every cross-datasource link in a datasource's jsonData."""
    jd = ds.get("jsonData", {}) or {}
    refs = []
    for f in jd.get("derivedFields", []) or []:
        refs.append(("derivedFields." + f.get("name", "?"), f.get("datasourceUid")))
    for f in jd.get("exemplarTraceIdDestinations", []) or []:
        refs.append(("exemplarTraceIdDestinations." + f.get("name", "?"), f.get("datasourceUid")))
    for key in ("tracesToLogsV2", "tracesToLogs", "tracesToMetrics", "tracesToProfiles", "serviceMap", "lokiSearch"):
        if key in jd:
            refs.append((key, jd[key].get("datasourceUid")))
    return refs


# Keys a log line can carry next to trace_id: a derived field must take the trace id only.
NOT_TRACE_ID_KEYS = ["parent_trace_id", "trace_id_hex", "link.trace_id", "baggage.trace_id", "x_trace_id"]


def check_derived_field(stack: str, f: dict) -> None:
    """Grafana tests a label matcher's regex against every label and structured-metadata key
    (unanchored RegExp.test) and takes the first key it matches; a regex matcher's first group
    is the value taken from the log line. Either way only `trace_id` itself may match."""
    # Provisioning expands environment variables: `$$` is a literal `$`.
    rx = (f.get("matcherRegex") or "").replace("$$", "$")
    where = f"{stack}: derived field {f.get('name')} ({f.get('matcherType', 'regex')} {rx!r})"
    try:
        compiled = re.compile(rx)
    except re.error as e:
        check(False, f"{where} compiles", str(e))
        return
    if f.get("matcherType") == "label":
        check(bool(compiled.search("trace_id")), f"{where} matches the key trace_id")
        wrong = [k for k in NOT_TRACE_ID_KEYS if compiled.search(k)]
        check(not wrong, f"{where} matches no other key", f"also matches {wrong}")
    else:
        tid = "4bf92f3577b34da6a3ce929d0e0e4736"
        m = compiled.search('{"level":"INFO","trace_id":"%s","span_id":"00f067aa0ba902b7"}' % tid)
        check(bool(m) and m.group(1) == tid, f"{where} takes the trace_id value from a JSON line")
        for k in NOT_TRACE_ID_KEYS:
            m = compiled.search('{"%s":"%s"}' % (k, "f" * 32))
            check(not m, f"{where} ignores the key {k}")


def check_grafana() -> None:
    shared = sorted(glob.glob(f"{SHARED_DASHBOARDS}/*.json"))
    check(bool(shared), "shared dashboards exist")
    for stack, (_, ds_dir, stack_dash) in STACKS.items():
        if not ds_dir:
            continue
        dss = provisioned_datasources(ds_dir)
        check({"metrics", "logs", "traces", "alertmanager"} <= set(dss), f"{stack}: datasource uids metrics, logs, traces, alertmanager", str(sorted(dss)))
        for uid, ds in dss.items():
            for where, ref in referenced_uids_in_datasource(ds):
                check(ref in dss, f"{stack}: datasource {uid} {where} -> {ref} exists")
        logs = dss.get("logs", {})
        dfs = (logs.get("jsonData") or {}).get("derivedFields") or []
        check(any(f.get("datasourceUid") == "traces" for f in dfs), f"{stack}: Loki derived field -> traces")
        for f in dfs:
            check_derived_field(stack, f)
        t2l = (dss.get("traces", {}).get("jsonData") or {}).get("tracesToLogsV2") or {}
        check(t2l.get("datasourceUid") == "logs" and "trace_id=" in (t2l.get("query") or ""), f"{stack}: traces tracesToLogsV2 -> logs, filtered by trace id")
        if stack == "lgtm":
            tags = t2l.get("tags") or []
            check({"key": "service.name", "value": "service_name"} in tags, "lgtm: Tempo tracesToLogsV2 maps service.name -> service_name")
            tjd = dss["traces"]["jsonData"]
            check(tjd.get("serviceMap", {}).get("datasourceUid") == "metrics", "lgtm: Tempo service map reads Mimir")
            ex = dss["metrics"]["jsonData"].get("exemplarTraceIdDestinations") or []
            check(any(e.get("name") == "traceID" and e.get("datasourceUid") == "traces" for e in ex), "lgtm: Mimir exemplars (traceID) -> Tempo")
        for s in re.findall(r"(?<!\$)\$\{__", open(glob.glob(f"{ds_dir}/*.y*ml")[0], encoding="utf-8").read()):
            check(False, f"{stack}: '$' escaped as '$$' in datasource provisioning", s)
        dashboards = shared + (sorted(glob.glob(f"{stack_dash}/*.json")) if stack_dash else [])
        uids_seen = set()
        for path in dashboards:
            dash = load_json(path)
            check(dash.get("uid") not in uids_seen, f"{stack}: {path} uid unique")
            uids_seen.add(dash.get("uid"))
            for node in walk(dash):
                if isinstance(node, dict) and isinstance(node.get("datasource"), dict):
                    ref = node["datasource"]
                    uid, typ = ref.get("uid"), ref.get("type")
                    if uid in ("-- Grafana --", "grafana", None) or (isinstance(uid, str) and uid.startswith("$")):
                        continue
                    ok = uid in dss and (typ is None or dss[uid]["type"] == typ)
                    check(ok, f"{stack}: {os.path.basename(path)} datasource {uid} ({typ}) exists", f"provisioned: { {k: v['type'] for k, v in dss.items()} }")
            # Explore links name datasources by uid inside a URL-encoded pane definition.
            for link in re.findall(r'%22datasource%22%3A%22([A-Za-z0-9_-]+)%22', json.dumps(dash)):
                check(link in dss, f"{stack}: {os.path.basename(path)} Explore link datasource {link} exists")
    prov = load_yaml(DASHBOARD_PROVIDER)
    check(prov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards", "dashboard provider reads /etc/grafana/dashboards")


# ---------------------------------------------------------------------------------------------
# Collector pipelines


def check_collectors() -> None:
    for path in sorted(glob.glob("*/otel-collector/config.yaml")):
        cfg = load_yaml(path)
        svc = cfg["service"]
        used: dict[str, set] = {"receivers": set(), "processors": set(), "exporters": set()}
        for name, p in svc["pipelines"].items():
            for kind in used:
                for comp in p.get(kind, []) or []:
                    used[kind].add(comp)
                    defined = comp in (cfg.get(kind) or {}) or (kind != "processors" and comp in (cfg.get("connectors") or {}))
                    check(defined, f"{path}: pipeline {name} {kind[:-1]} {comp} is defined")
        for kind in used:
            for comp in (cfg.get(kind) or {}):
                check(comp in used[kind], f"{path}: {kind[:-1]} {comp} is used by a pipeline")
        for comp in (cfg.get("connectors") or {}):
            check(comp in used["exporters"] and comp in used["receivers"], f"{path}: connector {comp} joins two pipelines")
        for ext in svc.get("extensions", []):
            check(ext in (cfg.get("extensions") or {}), f"{path}: extension {ext} is defined")
        hc = (cfg.get("extensions") or {}).get("health_check") or {}
        check(hc.get("endpoint", "").endswith(":13133"), f"{path}: health_check on :13133 (compose healthcheck)")
        for proto in ("grpc", "http"):
            ep = cfg["receivers"]["otlp"]["protocols"][proto]["endpoint"]
            check(ep.startswith("0.0.0.0:"), f"{path}: OTLP {proto} listens on every interface")
    tempo = load_yaml("lgtm/tempo/tempo.yaml")
    for proto in ("grpc", "http"):
        ep = tempo["distributor"]["receivers"]["otlp"]["protocols"][proto]["endpoint"]
        check(ep.startswith("0.0.0.0:"), f"lgtm/tempo: OTLP {proto} receiver listens on 0.0.0.0")
    procs = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]
    check({"service-graphs", "span-metrics"} <= set(procs), "lgtm/tempo: service graph and span metrics processors on")
    check(all(rw.get("send_exemplars") for rw in tempo["metrics_generator"]["storage"]["remote_write"]), "lgtm/tempo: generator sends exemplars")
    mimir = load_yaml("lgtm/mimir/mimir.yaml")
    check(mimir["ruler"]["alertmanager_url"] == "http://alertmanager:9093", "lgtm/mimir: ruler sends to Alertmanager")
    check(mimir["limits"].get("max_global_exemplars_per_user", 0) > 0, "lgtm/mimir: exemplar storage on")
    check_scrape_jobs()
    loki = load_yaml("observability/loki/loki.yaml")
    check(loki["limits_config"].get("allow_structured_metadata") is True and loki["schema_config"]["configs"][-1]["schema"] == "v13",
          "loki: structured metadata (OTLP trace_id) allowed, schema v13")


def scrape_jobs(configs: list[dict]) -> dict[str, dict]:
    return {c["job_name"]: c for c in configs}


def check_scrape_jobs() -> None:
    """Prometheus (Classic, ELK) and the LGTM collector scrape the same targets under the same job
    names, log-service included: it runs in every stack (docker-compose.yml)."""
    prom = scrape_jobs(load_yaml(PROMETHEUS)["scrape_configs"])
    lgtm = scrape_jobs(load_yaml(LGTM_COLLECTOR)["receivers"]["prometheus"]["config"]["scrape_configs"])
    for where, jobs in ((PROMETHEUS, prom), (LGTM_COLLECTOR, lgtm)):
        for job, target in SCRAPE_JOBS.items():
            c = jobs.get(job)
            targets = [t for sc in (c or {}).get("static_configs", []) for t in sc.get("targets", [])]
            # A job over replicas finds them by name in DNS: the name and port count as its target.
            targets += [f"{n}:{sd.get('port')}" for sd in (c or {}).get("dns_sd_configs", []) if sd.get("type") == "A" for n in sd.get("names", [])]
            check(target in targets, f"{where}: job {job} scrapes {target}", str(targets))
        ls = jobs.get("log-service") or {}
        check(ls.get("metrics_path", "/metrics") == "/metrics", f"{where}: log-service scraped on /metrics")
        rmq = jobs.get("rabbitmq") or {}
        check(rmq.get("metrics_path") == "/metrics/detailed" and set((rmq.get("params") or {}).get("family", [])) == {"queue_coarse_metrics", "queue_consumer_count"},
              f"{where}: RabbitMQ per-queue families")
    root = load_yaml("docker-compose.yml")["services"]
    check(root["log-service"]["environment"].get("BIND_ADDR", "").endswith(":5002"), "root: log-service REST (and /metrics) on 5002")


# ---------------------------------------------------------------------------------------------
# Compose


def compose_config(files: list[str]) -> dict:
    args = ["docker-compose"]
    for f in files:
        args += ["-f", f]
    r = subprocess.run(args + ["config"], capture_output=True, text=True)
    if r.returncode != 0:
        check(False, f"docker-compose {' '.join(files)} config", r.stderr)
        return {}
    return yaml.safe_load(r.stdout)


FLOATING_TAGS = {"", "latest", "stable", "edge", "main", "master", "lts", "nightly", "dev"}


def image_pinned(image: str) -> bool:
    """An explicit tag that is no floating alias (a digest is fine too)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in FLOATING_TAGS


def check_compose() -> None:
    root = compose_config(["docker-compose.yml"])
    for name, port in APP_SERVICES.items():
        svc = root["services"][name]
        env = svc.get("environment", {})
        check(env.get("BIND_ADDR") == f"0.0.0.0:{port}", f"root: {name} BIND_ADDR 0.0.0.0:{port}")
        check(env.get("AMQP_URL", "").startswith("amqp://") and "@rabbitmq:5672" in env.get("AMQP_URL", ""), f"root: {name} AMQP_URL -> rabbitmq")
        check(env.get("LOG_DIR") == "/var/log/tracehop", f"root: {name} LOG_DIR=/var/log/tracehop")
        check(env.get("OTEL_SERVICE_NAME") == name, f"root: {name} OTEL_SERVICE_NAME")
        check(any(str(v).startswith("tracehop-logs:") or (isinstance(v, dict) and v.get("source") == "tracehop-logs") for v in svc.get("volumes", [])),
              f"root: {name} writes into the tracehop-logs volume")
        hc = " ".join(svc.get("healthcheck", {}).get("test", []))
        check(f"127.0.0.1:{port}/ready" in hc, f"root: {name} healthcheck on /ready")
        check(svc.get("image") == "tracehop:local" and " ".join(svc.get("command", [])) == name, f"root: {name} runs from the one image with its command")
    email_ports = [str(p.get("published") if isinstance(p, dict) else p) for p in root["services"]["email-service"].get("ports", [])]
    check(any("-" in p for p in email_ports), "root: email-service has a host port range, so it scales to replicas", str(email_ports))
    check("EMAIL_OUTBOX" not in root["services"]["email-service"]["environment"], "root: email-service replicas share the outbox in LOG_DIR (the shared volume)")
    check(root["services"]["order-gateway"]["environment"].get("PAYMENT_URL") == "http://payment-service:3001", "root: order-gateway PAYMENT_URL")
    rmq = root["services"]["rabbitmq"]
    check(any(str(v).startswith("rabbitmq-data:") or (isinstance(v, dict) and v.get("source") == "rabbitmq-data") for v in rmq.get("volumes", [])), "root: rabbitmq durable volume")
    check(open(RABBITMQ_PLUGINS).read().strip() == "[rabbitmq_management,rabbitmq_prometheus].", "root: rabbitmq management and prometheus plugins enabled")
    check(any(str(v).startswith(f"{os.path.abspath(RABBITMQ_PLUGINS)}:/etc/rabbitmq/enabled_plugins") or
              (isinstance(v, dict) and v.get("source") == os.path.abspath(RABBITMQ_PLUGINS)) for v in rmq.get("volumes", [])),
          f"root: rabbitmq mounts {RABBITMQ_PLUGINS}", str(rmq.get("volumes")))

    for stack, (overlay, _, _) in STACKS.items():
        cfg = compose_config(["docker-compose.yml", overlay])
        if not cfg:
            continue
        services = cfg["services"]
        for name, svc in services.items():
            img = svc.get("image", "")
            check(image_pinned(img), f"{stack}: {name} image pinned ({img})")
            for p in svc.get("ports", []) or []:
                host_ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
                check(host_ip == "127.0.0.1", f"{stack}: {name} port {p} bound to 127.0.0.1")
            one_shot = svc.get("restart") == "no"
            if not one_shot:
                check(bool(svc.get("healthcheck", {}).get("test")), f"{stack}: {name} has a healthcheck")
            check(bool(svc.get("mem_limit") or (svc.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory"))), f"{stack}: {name} has a memory limit")
        for name in APP_SERVICES:
            ep = services[name]["environment"].get("OTEL_EXPORTER_OTLP_ENDPOINT")
            check(ep == "http://otel-collector:4317", f"{stack}: {name} OTLP -> the stack's collector")
        grafana_port = {"classic": "4000", "lgtm": "5000"}.get(stack)
        if grafana_port:
            ports = services["grafana"]["ports"]
            check(any(str(p.get("published") if isinstance(p, dict) else p).find(grafana_port) >= 0 for p in ports), f"{stack}: Grafana on host port {grafana_port}")
            vols = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in services["grafana"]["volumes"]]
            check(any(f"{SHARED_DASHBOARDS}:/etc/grafana/dashboards/shared" in v for v in vols),
                  f"{stack}: Grafana mounts the shared dashboards", str(vols))
            check(any(f"{os.path.dirname(DASHBOARD_PROVIDER)}:/etc/grafana/provisioning/dashboards" in v for v in vols),
                  f"{stack}: Grafana mounts the shared dashboard provider", str(vols))
            home = services["grafana"]["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
            check(os.path.exists(home.replace("/etc/grafana/dashboards/shared", SHARED_DASHBOARDS)), f"{stack}: Grafana home dashboard exists")
        if stack in ("classic", "elk"):
            vols = " ".join(str(v) for v in services["prometheus"]["volumes"])
            check(f"{SHARED}/alerting/rules:" in vols and f"{PROMETHEUS}:" in vols, f"{stack}: Prometheus loads the shared configuration and rules")
        check("alertmanager" in services, f"{stack}: has Alertmanager")
        am_vols = " ".join(str(v) for v in services.get("alertmanager", {}).get("volumes", []))
        check(f"{ALERTMANAGER}:/etc/alertmanager/alertmanager.yml" in am_vols, f"{stack}: Alertmanager loads {ALERTMANAGER}", am_vols)
        ls_env = services["log-service"].get("environment", {})
        check(ls_env.get("ALERTMANAGER_URL") == "http://alertmanager:9093", f"{stack}: log-service sends its log alerts to the stack's Alertmanager")
        ls_vols = " ".join(str(v) if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in services["log-service"].get("volumes", []))
        rules_target = ls_env.get("ALERT_RULES_FILE", "")
        check(bool(rules_target) and f"{os.path.abspath(LOG_ALERT_RULES)}:{rules_target}" in ls_vols,
              f"{stack}: log-service loads {LOG_ALERT_RULES}", ls_vols)
        if stack == "elk":
            check(any(str(p).find("5601") >= 0 for p in services["kibana"]["ports"]), "elk: Kibana on 5601")
            fb = " ".join(str(v) for v in services["filebeat"]["volumes"])
            check("tracehop-logs" in fb and "/var/log/tracehop" in fb, "elk: Filebeat reads the services' log volume")
            check(services["kibana-setup"].get("restart") == "no", "elk: kibana-setup is one-shot")
            es_env = services["elasticsearch"]["environment"]
            check("-Xmx" in es_env.get("ES_JAVA_OPTS", "") and es_env.get("discovery.type") == "single-node", "elk: single node Elasticsearch with a bounded heap")
        if stack == "lgtm":
            vols = " ".join(str(v) for v in services["mimir"]["volumes"])
            check(f"{SHARED}/alerting/rules:/etc/mimir/rules/anonymous" in vols, "lgtm: Mimir ruler loads the shared rules")

    for path in ["Dockerfile"] + glob.glob("*/*/Dockerfile") + glob.glob("*/Dockerfile"):
        for line in open(path, encoding="utf-8"):
            m = re.match(r"\s*FROM\s+(\S+)", line, re.I)
            if m:
                check(image_pinned(m.group(1)), f"{path}: base image pinned ({m.group(1)})")


# ---------------------------------------------------------------------------------------------
# Jaeger and ELK details


def mem_bytes(value: Any) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", str(value).strip().lower())
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


# In-memory size of one order's trace (six spans with their attributes and events), and the
# memory Jaeger needs besides its traces (runtime, UI, OTLP receiver).
JAEGER_BYTES_PER_TRACE = 10 * 1024
JAEGER_BASE_BYTES = 64 << 20


def check_jaeger_memory() -> None:
    """The in-memory store keeps MEMORY_MAX_TRACES traces; Go's GC lets the heap grow to about
    twice the live data (GOGC=100), so twice the traces plus the base must fit the limit."""
    jaeger = load_yaml("observability/docker-compose.yml")["services"]["jaeger"]
    env = jaeger.get("environment") or {}
    if env.get("SPAN_STORAGE_TYPE") != "memory":
        return
    limit = mem_bytes(jaeger.get("mem_limit"))
    traces = int(env.get("MEMORY_MAX_TRACES", 0))
    need = 2 * traces * JAEGER_BYTES_PER_TRACE + JAEGER_BASE_BYTES
    check(traces > 0 and limit > 0 and need <= limit,
          f"classic: Jaeger MEMORY_MAX_TRACES={traces} fits mem_limit {jaeger.get('mem_limit')}",
          f"needs ~{need >> 20} MiB (2 x {traces} x {JAEGER_BYTES_PER_TRACE >> 10} KiB + {JAEGER_BASE_BYTES >> 20} MiB)")
    soft = env.get("GOMEMLIMIT")
    if soft:
        m = re.fullmatch(r"(\d+)MiB", str(soft))
        check(bool(m) and (int(m.group(1)) << 20) < limit, f"classic: Jaeger GOMEMLIMIT {soft} under mem_limit")


# Kibana's /api/status: the overall level first, then every plugin's own level.
KIBANA_DEGRADED = ('{"name":"kibana","status":{"overall":{"level":"degraded","summary":"1 service is degraded"},'
                   '"core":{"elasticsearch":{"level":"available"}},"plugins":{"data":{"level":"available"}}}}')
KIBANA_AVAILABLE = ('{"name":"kibana","status":{"overall":{"level":"available","summary":"All services are available"},'
                    '"core":{"elasticsearch":{"level":"available"}},"plugins":{"data":{"level":"available"}}}}')


def grep_pattern(cmd: str) -> tuple[str, bool] | None:
    """(pattern, extended) of the first `grep -q`/`grep -Eq` in a shell command."""
    m = re.search(r"grep\s+-(E?)q\s+'([^']+)'", cmd) or re.search(r"grep\s+-q(E?)\s+'([^']+)'", cmd)
    return (m.group(2), m.group(1) == "E") if m else None


def grep_matches(pattern: str, extended: bool, text: str) -> bool:
    r = subprocess.run(["grep", "-Eq" if extended else "-q", pattern], input=text, text=True)
    return r.returncode == 0


def check_elk() -> None:
    ls = load_yaml("elk/logstash/logstash.yml")
    deprecated = sorted(k for k in ls if k.startswith("http."))
    check(not deprecated, "elk/logstash: no deprecated http.* settings", str(deprecated))
    check(str(ls.get("api.http.host")) == "0.0.0.0" and str(ls.get("api.http.port")) == "9600", "elk/logstash: api.http.host 0.0.0.0, api.http.port 9600")
    elk = load_yaml("elk/docker-compose.yml")["services"]
    check(":9600/" in " ".join(elk["logstash"]["healthcheck"]["test"]), "elk/logstash: healthcheck on the API port")

    # Kibana is ready when the overall level is available, not when any one plugin is.
    for where, cmd in (("elk: Kibana healthcheck", " ".join(elk["kibana"]["healthcheck"]["test"])),
                       ("elk/kibana/setup.sh wait", open("elk/kibana/setup.sh", encoding="utf-8").read())):
        pat = grep_pattern(cmd)
        if not check(pat is not None, f"{where} greps /api/status"):
            continue
        check(grep_matches(*pat, KIBANA_AVAILABLE), f"{where} accepts an overall level of available")
        check(not grep_matches(*pat, KIBANA_DEGRADED), f"{where} rejects a degraded overall level while plugins are available")

    # One shape of `error` per index: services log a string, Filebeat's add_error_key an object.
    fb = load_yaml("elk/filebeat/filebeat.yml")["filebeat.inputs"][0]
    adds_error_object = any((pp.get("ndjson") or {}).get("add_error_key") for pp in fb.get("parsers", []))
    conf = open("elk/logstash/pipeline/tracehop.conf", encoding="utf-8").read()
    filt = conf[conf.find("filter {"):conf.find("output {")]
    ruby = re.search(r"ruby\s*\{.*?is_a\?\(String\).*?event\.set\(\s*\"\[error\]\[message\]\"", filt, re.S)
    check(not adds_error_object or bool(ruby), "elk/logstash: a string error becomes [error][message]")
    if ruby:
        retry = filt.find("json {")
        check(retry < 0 or retry < ruby.start(), "elk/logstash: error is normalised after the JSON retry (which can bring a string error back)")
    tpl = load_json("elk/logstash/templates/tracehop-logs.json")["template"]["mappings"]["properties"]
    err = tpl.get("error") or {}
    check(err.get("type") == "object" and (err.get("properties") or {}).get("message", {}).get("type") in ("text", "match_only_text", "keyword"),
          "elk/logstash template: error is an object with error.message")


# ---------------------------------------------------------------------------------------------
# Alerts


def check_alerts() -> None:
    rules = {r["alert"]: r for g in load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r}
    check(set(rules) == REQUIRED_ALERTS, "alert rules are exactly the six contract alerts", str(sorted(rules)))
    for name, r in rules.items():
        check(r.get("labels", {}).get("severity") in ("critical", "warning"), f"{name}: severity critical or warning")
        ann = r.get("annotations", {})
        check(all(ann.get(k) for k in ("summary", "description", "where_to_look")), f"{name}: summary, description, where_to_look")
    check("0.5" in rules["HighLatencyP95"]["expr"] and "http_request_duration_seconds_bucket" in rules["HighLatencyP95"]["expr"], "HighLatencyP95: p95 of http_request_duration_seconds above 500 ms")
    check("0.05" in rules["HighErrorRate"]["expr"] and "[5m]" in rules["HighErrorRate"]["expr"], "HighErrorRate: above 5% over 5 minutes")
    am = load_yaml(ALERTMANAGER)
    receivers = {r["name"] for r in am["receivers"]}
    routes = [am["route"]] + am["route"].get("routes", [])
    for r in routes:
        check(r["receiver"] in receivers, f"alertmanager: route receiver {r['receiver']} exists")
    for r in am["receivers"]:
        for hook in r.get("webhook_configs", []) or []:
            check(False, f"alertmanager: receiver {r['name']} has no webhook to a route that may 404", hook.get("url", ""))
    sev = {m for r in am["route"].get("routes", []) for m in r.get("matchers", [])}
    check({'severity="critical"', 'severity="warning"'} <= sev, "alertmanager: routes by severity")
    inh = am.get("inhibit_rules", [])
    src_ok = any('alertname="ServiceDown"' in i.get("source_matchers", []) for i in inh)
    targets = " ".join(m for i in inh for m in i.get("target_matchers", []))
    check(src_ok and all(a in targets for a in REQUIRED_ALERTS - {"ServiceDown"}), "alertmanager: ServiceDown inhibits the other five")
    # Without `equal`, one service down silences every other service's alerts too. A label in
    # `equal` that an alert lacks compares as empty on that side, so every alert must set it.
    for i in inh:
        equal = i.get("equal") or []
        check("service" in equal, f"alertmanager: inhibition {i.get('source_matchers')} only within the same service (equal: [service])", str(equal))
        for label in equal:
            missing = sorted(n for n, r in rules.items() if label not in (r.get("labels") or {}))
            check(not missing, f"alertmanager: every alert sets the inhibition label {label}", f"missing on {missing}")
    for name, r in rules.items():
        svc = str((r.get("labels") or {}).get("service", ""))
        expr = r["expr"]
        if "$labels.job" in svc:
            keeps_job = bool(re.search(r"by\s*\(\s*job\b", expr)) or expr.strip().startswith("up{")
            check(keeps_job, f"{name}: service label from job, and the expression keeps job")
        else:
            check(svc in SCRAPE_JOBS, f"{name}: service label names a scraped service", repr(svc))


# ---------------------------------------------------------------------------------------------
# Dockerfile


def max_locked_rust_version() -> tuple[tuple[int, ...], str] | None:
    if not os.path.exists("Cargo.lock"):
        return None
    lock = open("Cargo.lock", encoding="utf-8").read()
    pkgs = re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry', lock)
    srcs = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
    if not srcs:
        return None
    best = None
    for n, v in pkgs:
        for s in srcs:
            p = f"{s}{n}-{v}/Cargo.toml"
            if os.path.exists(p):
                m = re.search(r'^rust-version\s*=\s*"([0-9.]+)"', open(p, encoding="utf-8").read(), re.M)
                if m:
                    ver = tuple(int(x) for x in m.group(1).split("."))
                    if best is None or ver > best[0]:
                        best = (ver, f"{n} {v}")
                break
    return best


def check_dockerfile() -> None:
    text = open("Dockerfile", encoding="utf-8").read()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(froms) >= 2, "Dockerfile: multi-stage")
    check(froms[0][0].startswith("rust:") and froms[-1][0].startswith("debian:") and "slim" in froms[-1][0], "Dockerfile: rust builder -> debian slim runtime")
    final = text[text.rfind("\nFROM "):]
    m = re.search(r"^USER\s+(\S+)", final, re.M)
    check(bool(m) and not m.group(1).startswith(("root", "0")), "Dockerfile: runtime runs as a non-root user")
    for b in BINARIES:
        check(f"--bin {b}" in text and f"target/release/{b}" in text, f"Dockerfile: builds and ships {b}")
    rv = re.match(r"rust:(\d+)\.(\d+)", froms[0][0])
    best = max_locked_rust_version()
    if best and rv:
        have = (int(rv.group(1)), int(rv.group(2)))
        check(have >= best[0][:2], f"Dockerfile: rust {have[0]}.{have[1]} >= highest rust-version in Cargo.lock ({'.'.join(map(str, best[0]))}, {best[1]})")
    else:
        print("skip Dockerfile rust version vs Cargo.lock (no local registry sources)")
    ignore = [l.strip().rstrip("/") for l in open(".dockerignore", encoding="utf-8") if l.strip() and not l.startswith("#")]
    check("target" in ignore, ".dockerignore: leaves target/ out of the build context")
    for needed in ("apps", "crates", "Cargo.toml", "Cargo.lock"):
        check(needed not in ignore, f".dockerignore: keeps {needed} in the build context")
    try:
        meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        # The apps are what runs in a container; binaries of the crates (test and bench tools
        # such as otlp-sink) stay out of the image.
        apps_dir = os.path.abspath("apps") + os.sep
        bins = sorted(t["name"] for p in meta["packages"] if p["manifest_path"].startswith(apps_dir)
                      for t in p["targets"] if "bin" in t["kind"])
        check(bins == sorted(BINARIES), "Dockerfile: ships exactly the binaries of apps/", f"apps/: {bins}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"skip Dockerfile binaries vs cargo metadata ({e})")


def main() -> int:
    import tempfile

    written: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        check_layout()
        check_parse()
        check_grafana()
        check_metrics(written)
        check_exemplars()
        check_dashboard_promql_syntax(tmp)
        check_collectors()
        check_compose()
        check_jaeger_memory()
        check_elk()
        check_alerts()
        check_dockerfile()
    if len(sys.argv) > 1:
        # The e2e alert test compares these names with a real scrape of the services.
        with open(sys.argv[1], "w", encoding="utf-8") as f:
            f.write("\n".join(written) + "\n")
    print(f"check_stacks: {passes} passed, {len(failures)} failed")
    for f in failures:
        print(f"  failed: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
